"""Layouts that fit (issue 17): at 80x24 and 120x40 the footer shows the keys that fit and `?` for the rest,
never a key cut mid-word; the help wraps inside its box; the active-runs panel is as tall as its cards. The real
Textual app through Pilot on the deterministic store of tests/console_fixtures.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from console_fixtures import dashboard_ready, make_app, on_screen, rows, wait_for

from syncdash.tui.widgets import FitFooter, fit_bindings


def footer_problems(app: Any) -> list[str]:
    """Every footer key laid out whole, left of the palette key and inside the screen; `?` among them."""
    footer = app.screen.query_one(FitFooter)
    keys = [w for w in footer.children if hasattr(w, "action")]
    palette = [w for w in keys if w.has_class("-command-palette")]
    right = palette[0].region.x if palette else footer.region.right
    problems = []
    for key in keys:
        if key in palette:
            continue
        r = key.region
        text = f"{key.key_display} {key.description}"
        if r.width == 0 or r.right > right:
            problems.append(f"{text!r} at {r.x}..{r.right}, palette from {right}")
        if r.width < len(key.key_display) + len(key.description) + 3:
            problems.append(f"{text!r} squeezed into {r.width} cells")
    if "help" not in [k.action for k in keys]:
        problems.append("no `?` key")
    return problems


async def settle(pilot: Any) -> None:
    await pilot.pause()
    await pilot.pause()


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_every_screens_footer_fits_and_keeps_help(tmp_path: Path, size: tuple[int, int]) -> None:
    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=size) as pilot:
            await dashboard_ready(pilot)
            seen: dict[str, list[str]] = {}

            async def check(name: str) -> None:
                await wait_for(pilot, lambda: on_screen(pilot, name) and bool(app.screen.query(FitFooter))
                               and bool(app.screen.query_one(FitFooter).children), what=name)
                await settle(pilot)
                assert footer_problems(app) == [], (name, footer_problems(app))
                seen[name] = app.screen.query_one(FitFooter).dropped

            await check("DashboardScreen")
            await pilot.press("e")
            await check("ErrorsScreen")
            await pilot.press("h")
            await wait_for(pilot, lambda: on_screen(pilot, "HistoryScreen") and rows(pilot, "#runs") == 13,
                           what="history")
            await check("HistoryScreen")
            await pilot.press("enter")
            await check("RunDetailScreen")
            await pilot.press("escape", "escape", "enter")
            await check("SourceScreen")
            await pilot.press("b")
            await check("BrowseScreen")
            if size == (80, 24):  # too narrow for every key: some are left to `?`
                assert seen["ErrorsScreen"] and seen["DashboardScreen"]
            else:
                # the dashboard's own keys all fit; what is left to `?` are app-wide ones, lowest priority
                assert set(seen["DashboardScreen"]) <= {"Quit", "History", "Errors", "Browse"}

    asyncio.run(scenario())


def test_the_footer_chooses_keys_again_when_the_terminal_is_resized(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(140, 40)) as pilot:
            await dashboard_ready(pilot)
            await settle(pilot)
            assert app.screen.query_one(FitFooter).dropped == []
            await pilot.resize_terminal(70, 24)
            await wait_for(pilot, lambda: app.screen.query_one(FitFooter).dropped != [], what="keys dropped")
            await settle(pilot)
            assert footer_problems(app) == []

    asyncio.run(scenario())


def test_fit_bindings_keeps_help_and_lets_a_short_key_take_a_gap() -> None:
    items = [("sync", 8), ("full_sync_of_everything", 30), ("quit", 7), ("help", 7), ("history", 10)]
    assert fit_bindings(items, 200) == [a for a, _ in items]
    assert fit_bindings(items, 25) == ["sync", "quit", "help"]  # help first, then what fits in order
    assert fit_bindings(items, 7) == ["help"]


def test_help_wraps_inside_its_box_at_80x24_with_every_key_whole(tmp_path: Path) -> None:
    from textual.containers import VerticalScroll
    from textual.widgets import Static

    from syncdash.tui.screens.help import SECTIONS

    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await dashboard_ready(pilot)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: on_screen(pilot, "HelpScreen"), what="help")
            await settle(pilot)
            box = app.screen.query_one("#help", VerticalScroll)
            body = app.screen.query_one("#help-keys", Static)
            assert box.region.right <= 80 and box.max_scroll_x == 0  # nothing to the right of the box
            width = body.content_region.width
            lines = [strip.text.rstrip() for strip in body.render_lines(body.content_region.reset_offset)]
            assert len(lines) == body.virtual_size.height > 20  # the whole text, scrollable, nothing dropped
            assert all(len(line) <= width for line in lines)
            text = "\n".join(lines)
            for _, items in SECTIONS:
                for item in items:  # each key with its description on one line, never split between two
                    assert item in text, item
            assert "stopped on quit" in " ".join(text.split())  # the notes wrap at words, all there

    asyncio.run(scenario())


def test_the_active_runs_panel_is_as_tall_as_its_cards_and_the_errors_take_the_rest(tmp_path: Path) -> None:
    from textual.containers import VerticalScroll
    from textual.widgets import DataTable, Static

    from syncdash.tui.widgets import RunCard

    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            await settle(pilot)
            active = app.screen.query_one("#active", VerticalScroll)
            cards = list(active.query(RunCard))
            need = sum(c.outer_size.height for c in cards) + 1  # a blank line between the two cards
            assert active.outer_size.height == need + 2  # and its border: no empty space inside
            assert active.max_scroll_y == 0
            errors = app.screen.query_one("#recent-errors", DataTable)
            status = app.screen.query_one("#statusline", Static)
            assert errors.region.bottom == status.region.y  # the errors list reaches the status line
            assert errors.region.height > 4 + 1  # all four errors and the header, room to spare
            assert errors.max_scroll_x == 0
            # at 80x24 the three panels still fit: the runs scroll, the errors keep their header and an error
            await pilot.resize_terminal(80, 24)
            await settle(pilot)
            await settle(pilot)
            assert errors.region.height >= 2 and errors.region.bottom == status.region.y
            assert active.region.height <= 24 // 2 and active.max_scroll_y > 0
            assert errors.max_scroll_x == 0  # narrower columns, no horizontal scrollbar

    asyncio.run(scenario())


def test_run_cards_show_an_indeterminate_bar_without_a_total_and_each_flow_step_its_own_counts(
        tmp_path: Path) -> None:
    from textual.widgets import ProgressBar

    from syncdash.tui.widgets import PhaseRow

    def phase_texts(app: Any) -> dict[str, str]:
        return {row.phase_name: str(row.query_one(".phase-text").render()) for row in app.screen.query(PhaseRow)}

    async def scenario() -> None:
        app = make_app(tmp_path / "main")
        with app.store.engine.begin() as c:  # a web source's pages: the run 12 load never learns its total
            c.exec_driver_sql("UPDATE syncdash_run_phases SET total = NULL, done = 59 WHERE run_id = 12 AND seq = 0")
        async with app.run_test(size=(120, 40)) as pilot:
            def drawn() -> bool:
                bars = [row.query_one(ProgressBar) for row in app.screen.query(PhaseRow)]
                return len(bars) == 4 and sum(b.total is None for b in bars) == 1 and all(
                    phase_texts(app).values())

            await wait_for(pilot, drawn, what="the run cards")
            card = app.screen.query_one("#run-12")
            load = card.query(PhaseRow).first(PhaseRow)
            assert load.query_one(ProgressBar).total is None  # indeterminate, moving
            text = str(load.query_one(".phase-text").render())
            assert text.startswith("59 pages · running") and "%" not in text
            assert "--%" in str(load.query_one(ProgressBar).query_one("PercentageStatus").render())

        app = make_app(tmp_path / "flow", "flow")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: len(phase_texts(app)) == 7 and all(phase_texts(app).values()),
                           what="the flow's cards")
            texts = phase_texts(app)
            # the flow's steps each with their own counts (the card's last line has the flow's)
            assert texts["registrations"].endswith(" · +3 ~9 =228")
            assert texts["participants_to_scoring"].endswith(" · +3 ~9 =156")
            assert texts["globex"].endswith(" · +3 =45")  # a push run's tenant, likewise
            assert "rows · pending" in texts["results"] and "+" not in texts["results"]

    asyncio.run(scenario())
