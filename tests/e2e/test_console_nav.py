"""How the console moves (issue 17): `h`/`e` switch top-level screens instead of stacking them, escape goes
back one level and from a top-level screen home, a screen shown again is read again (never stale), the
breadcrumb says where you are, the palette lists commands on open, the theme is remembered, and a live
column widens when its value grows. Real Textual app through Pilot, on the deterministic store of
tests/console_fixtures.py (read-only, fixed clock, one poll an hour: only a re-read can show new data)."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import Project
from console_fixtures import dashboard_ready, fixed_clock, make_app, rows, wait_for
from test_console import make_app as make_project_app
from test_console import setup, until

from syncdash.store.models import Run


def names(app: Any) -> list[str]:
    return [type(s).__name__ for s in app.screen_stack[1:]]


def crumb(app: Any) -> str:
    return str(app.screen.sub_title)


def test_top_level_screens_switch_and_escape_goes_back_one_level_then_home(tmp_path: Path) -> None:
    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            assert crumb(app) == "dashboard"
            await pilot.press("h")
            await wait_for(pilot, lambda: rows(pilot, "#runs") == 13, what="history")
            assert crumb(app) == "dashboard \u203a history"
            await pilot.press("e", "h", "e")  # switching, never stacking
            await wait_for(pilot, lambda: rows(pilot, "#errors") == 4, what="errors")
            assert names(app) == ["DashboardScreen", "ErrorsScreen"]
            await pilot.press("h")
            await wait_for(pilot, lambda: names(app)[-1] == "HistoryScreen" and rows(pilot, "#runs") == 13,
                           what="history again")
            await pilot.press("enter")  # the newest run: 13
            await wait_for(pilot, lambda: names(app)[-1] == "RunDetailScreen", what="run detail")
            assert names(app) == ["DashboardScreen", "HistoryScreen", "RunDetailScreen"]
            assert crumb(app) == "dashboard \u203a history \u203a run 13"
            await pilot.press("escape")  # one level: back to the list the run was opened from
            await wait_for(pilot, lambda: names(app)[-1] == "HistoryScreen", what="back to history")
            assert crumb(app) == "dashboard \u203a history"
            await pilot.press("escape")  # a top-level screen: home
            await wait_for(pilot, lambda: names(app) == ["DashboardScreen"], what="home")
            assert crumb(app) == "dashboard"
            await pilot.press("enter")  # a source opened from the dashboard, then `e` from there
            await wait_for(pilot, lambda: names(app)[-1] == "SourceScreen", what="source")
            assert crumb(app) == "dashboard \u203a source customers"
            await pilot.press("e")
            await wait_for(pilot, lambda: names(app) == ["DashboardScreen", "ErrorsScreen"], what="errors")
            await pilot.press("escape")
            await wait_for(pilot, lambda: names(app) == ["DashboardScreen"], what="one escape home")

    asyncio.run(scenario())


def test_a_screen_shown_again_is_never_stale(tmp_path: Path) -> None:
    """A run queued while the run detail is open shows in the history the moment escape lands on it, although
    the app polls once an hour here."""

    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            await pilot.press("h")
            await wait_for(pilot, lambda: rows(pilot, "#runs") == 13, what="history")
            await pilot.press("enter")
            await wait_for(pilot, lambda: names(app)[-1] == "RunDetailScreen", what="run detail")
            with app.store.tx() as s:
                s.add(Run(source="orders", kind="csv", trigger="cli", status="queued",
                          queued_at=fixed_clock() - timedelta(seconds=5)))
            await pilot.press("escape")
            await wait_for(pilot, lambda: names(app)[-1] == "HistoryScreen" and rows(pilot, "#runs") == 14,
                           what="the new run listed on return")
            assert "1-14 of 14" in str(app.screen.query_one("#history-title").render())

    asyncio.run(scenario())


def test_the_palette_lists_the_apps_commands_as_soon_as_it_opens(tmp_path: Path) -> None:
    from textual.command import CommandList

    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            await pilot.press("ctrl+p")

            def prompts() -> list[str]:
                lst = app.screen.query_one(CommandList)
                return [str(lst.get_option_at_index(i).prompt) for i in range(lst.option_count)]

            await wait_for(pilot, lambda: any("Sync customers" in p for p in prompts()), what="commands listed")
            shown = "\n".join(prompts())
            for expected in ("Run history", "Errors", "Full sync orders", "Dry run players", "Pause/resume prices",
                             "Toggle light/dark theme"):
                assert expected in shown, expected

    asyncio.run(scenario())


def test_the_theme_is_remembered_across_starts(tmp_path: Path) -> None:
    saved = Path(os.environ["SYNCDASH_CONSOLE_DIR"]) / "console.json"

    async def first() -> str:
        app = make_app(tmp_path / "a")
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            before = app.theme
            await pilot.press("t")
            await wait_for(pilot, lambda: saved.exists(), what="the theme saved")
            assert app.theme != before
            return str(app.theme)

    async def second() -> str:
        app = make_app(tmp_path / "b")
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            return str(app.theme)

    chosen = asyncio.run(first())
    assert json.loads(saved.read_text(encoding="utf-8")) == {"theme": chosen}
    assert asyncio.run(second()) == chosen


def test_the_last_run_column_widens_when_a_source_first_runs(project: Project) -> None:
    """At start `small` has never run ("-"): once it has, the column fits "#n partial …" whole."""
    setup(project)

    async def scenario() -> None:
        app = make_project_app(project, host=False)
        async with app.run_test(size=(160, 40)) as pilot:
            await until(lambda: app.snapshot is not None, pilot)
            sources = app.screen.query_one("#sources")
            await until(lambda: sources.row_count == 2, pilot)
            await asyncio.to_thread(project.cli, "run", "small")
            cell = await until(lambda: "#" in str(sources.get_row("small")[4]) and sources.get_row("small")[4],
                               pilot, what="small's first run on the dashboard")
            from rich.text import Text

            width = Text.from_markup(str(cell)).cell_len
            await until(lambda: sources.columns["last"].content_width >= width, pilot, what="the column widened")

    asyncio.run(scenario())


def test_browse_pages_sorts_and_filters_a_target_table(tmp_path: Path) -> None:
    """`b`, pick customers (12,532 live rows, one soft-deleted): keyset pages forward and back, `s` on the
    key column reverses it, `/` filters, escape closes the filter and then goes home."""

    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            await pilot.press("b")
            await wait_for(pilot, lambda: names(app) == ["DashboardScreen", "BrowseScreen"], what="browse")
            await pilot.press("enter")  # the first table: customers
            await wait_for(pilot, lambda: rows(pilot, "#browse-rows") == 50, what="the first page")
            t = app.screen.query_one("#browse-rows")

            def first_id() -> str:
                return str(t.get_row_at(0)[0])

            assert first_id() == "1" and crumb(app) == "dashboard \u203a browse \u203a customers"
            await pilot.press("n")
            await wait_for(pilot, lambda: first_id() == "51", what="page 2")
            await pilot.press("n", "p")
            await wait_for(pilot, lambda: first_id() == "51" and "page 2" in str(
                app.screen.query_one("#browse-title").render()), what="back to page 2")
            await pilot.press("s")  # the cursor is on `id`: the key, reversed
            await wait_for(pilot, lambda: first_id() == "12532", what="descending by id")
            await pilot.press("slash", *"id<=3", "enter")
            await wait_for(pilot, lambda: rows(pilot, "#browse-rows") == 3 and first_id() == "3", what="filtered")
            await pilot.press("slash", *"town:x", "enter")  # a typo names the column and the known ones
            await pilot.pause(0.3)
            assert rows(pilot, "#browse-rows") == 3
            await pilot.press("escape", "escape")
            await wait_for(pilot, lambda: names(app) == ["DashboardScreen"], what="home")

    asyncio.run(scenario())


def test_a_row_opened_from_browse_shows_the_runs_that_changed_it(tmp_path: Path) -> None:
    """Row 1042 of customers was updated by run 8 (credit and tier before/after in the fixture's change log);
    escape returns to the browser (one level), enter on the update opens run 8."""

    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await dashboard_ready(pilot)
            await pilot.press("b", "enter")
            await wait_for(pilot, lambda: rows(pilot, "#browse-rows") == 50, what="the first page")
            await pilot.press("slash", *"id=1042", "enter")
            await wait_for(pilot, lambda: rows(pilot, "#browse-rows") == 1, what="row 1042")
            await pilot.press("enter")
            await wait_for(pilot, lambda: names(app)[-1] == "RowScreen" and rows(pilot, "#row-history") >= 1,
                           what="the row's history")
            assert crumb(app) == "dashboard \u203a browse \u203a customers row 1042"
            hist = app.screen.query_one("#row-history")
            cells = [hist.get_row_at(i) for i in range(hist.row_count)]
            assert cells[0][0] == "8" and cells[0][3] == "update"
            with app.store.tx() as s:  # what the fixture recorded for 1042, straight from the store
                from syncdash.store.models import Change

                rec = s.get(Change, 1)
                assert rec is not None and json.loads(rec.key) == [1042]
                fields = list(json.loads(rec.after or "{}"))
            assert [str(c[4]) for c in cells] == fields
            await pilot.press("escape")
            await wait_for(pilot, lambda: names(app)[-1] == "BrowseScreen", what="back to browse")
            assert rows(pilot, "#browse-rows") == 1  # the filtered page, as it was
            await pilot.press("enter")
            await wait_for(pilot, lambda: names(app)[-1] == "RowScreen", what="the row again")
            await wait_for(pilot, lambda: rows(pilot, "#row-history") >= 1, what="its history")
            await pilot.press("enter")
            await wait_for(pilot, lambda: names(app)[-1] == "RunDetailScreen" and app.screen.run_id == 8,
                           what="run 8 from the row's history")

    asyncio.run(scenario())


def test_at_80_columns_the_sources_table_keeps_source_last_run_and_health(tmp_path: Path) -> None:
    """Narrow: lower-priority columns go and the table fits the screen; widened again, they come back."""

    async def scenario() -> None:
        app = make_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await dashboard_ready(pilot)
            t = app.screen.query_one("#sources")
            keys = [str(k.value) for k in t.columns]
            assert {"name", "last", "health"} <= set(keys) and "breaker" not in keys and "kind" not in keys
            assert sum(c.get_render_width(t) for c in t.columns.values()) <= 80
            assert "#11 running" in str(t.get_cell("customers", "last"))
            await pilot.resize_terminal(120, 40)
            await wait_for(pilot, lambda: len(t.columns) == 8 and t.row_count == 5, what="every column back")
            assert str(t.get_cell("customers", "breaker")) == "-"

    asyncio.run(scenario())
