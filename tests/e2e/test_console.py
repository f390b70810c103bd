"""The console driven through Textual's Pilot against a real store, real runs and (for attached mode) a real
daemon process. Every wait is on a condition (the store or the screen), with a deadline."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

from conftest import Project
from test_resume import read_store, write_big

from syncdash.config.load import load_config
from syncdash.store.db import Store
from syncdash.tui.app import SyncdashApp

CSV = """\
sources:
  - name: big
    kind: csv
    path: data/big.csv
    table: big
    primary_key: [id]
    batch_size: 2000
    schedule: every 1h
    fields:
      id: {type: int}
      name: name
      amount: {type: float}
  - name: small
    kind: csv
    path: data/small.csv
    table: small
    primary_key: [id]
    fields:
      id: {type: int}
      plays: {type: int}
"""


def make_app(project: Project, host: bool | None = None) -> SyncdashApp:
    cfg = load_config(project.root / "syncdash.yaml")
    return SyncdashApp(cfg, Store(cfg.database), host=host, poll_interval=0.2)


async def until(cond: Callable[[], Any], pilot: Any, timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def start_daemon(project: Project) -> subprocess.Popen[str]:
    """A real `syncdash daemon`, returned once its row in syncdash_daemons says it is alive."""
    daemon = project.popen("daemon")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not read_store(
            project.db, "SELECT 1 FROM syncdash_daemons WHERE kind='daemon' AND stopped_at IS NULL"):
        time.sleep(0.1)
    return daemon


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())


def setup(project: Project) -> None:
    project.config(CSV)
    write_big(project, 1, n=60_000)
    project.write("data/small.csv", "id,plays\n1,10\n2,x\n3,30\n")


def test_sync_from_the_dashboard_shows_progress_and_lands_in_history(project: Project) -> None:
    setup(project)
    write_big(project, 1, n=1_600_000)  # ~5 s here: long enough to watch even when the machine is loaded

    async def scenario() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None, pilot, what="first snapshot")
            assert app.mode == "hosted"
            await pilot.press("s")  # the cursor starts on the first source: big
            seen: set[str] = set()

            def progress() -> bool:
                cards = app.screen.query(".phase-text")
                seen.update(str(c.render()) for c in cards if "running" in str(c.render()))
                return len(seen) >= 2
            try:
                await until(progress, pilot, what="a run card with moving progress")
            except AssertionError as e:  # say what the store and the screen showed, to tell a slow start apart
                runs = project.query("SELECT id, status, inserted FROM syncdash_runs")
                raise AssertionError(f"{e}; saw {seen}; runs {runs}; mode {app.mode}") from None
            assert any("bytes" in s and "/s" in s for s in seen), seen
            await until(lambda: project.query("SELECT status FROM syncdash_runs WHERE source='big'") ==
                        [("succeeded",)], pilot, what="the run succeeded")
            await until(lambda: not app.screen.query(".run-card"), pilot, what="the card went away")
            await pilot.press("h")
            await until(lambda: app.screen.query("#runs") and app.screen.query_one("#runs").row_count == 1, pilot,
                        what="history lists the run")
            assert "1-1 of 1" in str(app.screen.query_one("#history-title").render())
            await pilot.press("enter")
            await until(lambda: "run 1" in str(app.screen.query_one("#run-summary").render()), pilot,
                        what="run detail")
            await pilot.press("escape", "escape", "q")
        assert project.query("SELECT kind, stopped_at IS NOT NULL FROM syncdash_daemons") == [("console", 1)]

    run(scenario)


def test_retry_from_the_errors_screen_resolves_the_error(project: Project) -> None:
    setup(project)
    assert project.cli("run", "small").returncode == 3  # row 2: plays 'x' is not an integer
    project.write("data/small.csv", "id,plays\n1,10\n2,20\n3,30\n")

    async def scenario() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None, pilot)
            await pilot.press("e")
            await until(lambda: app.screen.query("#errors") and app.screen.query_one("#errors").row_count == 1,
                        pilot, what="the error is listed")
            assert "not an integer" in str(app.screen.query_one("#error-detail").render())
            await pilot.press("r")
            await until(lambda: project.query("SELECT resolved_at IS NOT NULL, resolution FROM syncdash_item_errors")
                        == [(1, "fixed")], pilot, what="the retry fixed the error")
            await until(lambda: app.screen.query_one("#errors").row_count == 0, pilot, what="the list empties")
            await pilot.press("q")
        assert project.query("SELECT plays FROM small WHERE id=2") == [(20,)]

    run(scenario)


def test_pause_and_dry_run_then_apply(project: Project) -> None:
    setup(project)

    async def scenario() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None, pilot)
            await pilot.press("p")
            await until(lambda: project.query("SELECT paused FROM syncdash_source_state WHERE source='big'")
                        == [(1,)], pilot, what="big paused")
            await until(lambda: "(paused)" in str(app.screen.query_one("#sources").get_row("big")[2]), pilot,
                        what="the table says paused")
            status = json.loads(project.cli("status", "--json").stdout)
            assert status[0]["health"] == "paused" and status[0]["next_run"] is None
            await pilot.press("p")
            await until(lambda: project.query("SELECT paused FROM syncdash_source_state WHERE source='big'")
                        == [(0,)], pilot, what="big resumed")
            await pilot.press("down", "d")  # small: a dry run shows its plan, writes nothing
            await until(lambda: "would apply" in str(app.screen.query_one("#plan-summary").render()), pilot,
                        timeout=30, what="the plan")
            assert project.query("SELECT name FROM sqlite_master WHERE name='small'") == []
            await pilot.press("a")
            await until(lambda: project.query("SELECT status FROM syncdash_runs WHERE dry_run=0 AND source='small'")
                        == [("partial",)], pilot, what="applied")
            await pilot.press("q")

    run(scenario)


def test_cancel_a_running_sync(project: Project) -> None:
    setup(project)
    project.config(CSV.replace("batch_size: 2000", "batch_size: 50"))  # thousands of batches: time to cancel
    write_big(project, 1, n=400_000)

    async def scenario() -> None:
        app = make_app(project)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None, pilot)
            await pilot.press("s")
            await until(lambda: app.screen.query(".run-card"), pilot, what="the run started")
            await pilot.press("c")
            await until(lambda: project.query("SELECT status FROM syncdash_runs WHERE source='big'")
                        in ([("cancelled",)], [("succeeded",)]), pilot, what="the run ended")
            assert project.query("SELECT status, error FROM syncdash_runs WHERE source='big'") == [
                ("cancelled", "cancelled on request")]
            await pilot.press("q")

    run(scenario)


def test_attached_mode_queues_runs_that_a_real_daemon_executes(project: Project) -> None:
    setup(project)
    daemon = start_daemon(project)
    try:

        async def scenario() -> None:
            app = make_app(project)
            async with app.run_test(size=(120, 40)) as pilot:
                await until(lambda: app.snapshot is not None, pilot)
                assert app.mode == "attached" and app.hosted is None
                await until(lambda: "attached to daemon" in str(app.screen.query_one("#statusline").render()), pilot)
                await pilot.press("down", "s")
                await until(lambda: project.query("SELECT status, owner FROM syncdash_runs WHERE source='small'"),
                            pilot)
                rows = await until(lambda: [r for r in project.query(
                    "SELECT status, owner FROM syncdash_runs WHERE source='small'") if r[0] == "partial"], pilot,
                    what="the daemon ran it")
                assert rows[0][1].split("@")[0] == str(daemon.pid)
                await pilot.press("q")

        run(scenario)
    finally:
        daemon.terminate()
        daemon.wait(30)


def test_keys_history_filter_help_palette_theme_and_a_small_terminal(project: Project) -> None:
    setup(project)
    for _ in range(3):
        project.cli("run", "small")
    project.cli("run", "big")

    async def scenario() -> None:
        app = make_app(project, host=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(lambda: app.snapshot is not None, pilot)
            assert app.mode == "read-only"
            sources = app.screen.query_one("#sources")
            await until(lambda: sources.get_cell("big", "rows") == "60k", pilot, what="rows in the big table")
            await pilot.press("G")
            assert sources.cursor_row == 1
            await pilot.press("R")  # small's last run with failed items: a retry is queued (read-only: it waits)
            await until(lambda: project.query("SELECT trigger, options FROM syncdash_runs WHERE status='queued'"),
                        pilot, what="a queued retry")
            [(trigger, options)] = project.query("SELECT trigger, options FROM syncdash_runs WHERE status='queued'")
            assert trigger == "retry" and json.loads(options)["retry_of"] == 3
            await pilot.press("g")
            assert sources.cursor_row == 0
            await pilot.press("f")
            await until(lambda: project.query("SELECT options FROM syncdash_runs WHERE status='queued' AND "
                                              "source='big'"), pilot, what="a queued full sync")
            assert json.loads(project.query("SELECT options FROM syncdash_runs WHERE status='queued' AND "
                                            "source='big'")[0][0]) == {"full": True}
            await until(lambda: "queue 2" in str(app.screen.query_one("#statusline").render()), pilot,
                        what="the queue depth")
            await pilot.press("slash", "s", "m")  # filter: small only
            await until(lambda: sources.row_count == 1, pilot, what="filtered")
            await pilot.press("escape")
            await until(lambda: sources.row_count == 2, pilot, what="filter cleared")
            await pilot.press("h")
            runs = await until(lambda: app.screen.query("#runs") and app.screen.query_one("#runs"), pilot)
            await until(lambda: runs.row_count == 6, pilot, what="4 finished runs and 2 queued")
            await pilot.press("slash")
            for ch in "status:partial":
                await pilot.press(ch if ch != ":" else "colon")
            await pilot.press("enter")
            await until(lambda: runs.row_count == 3, pilot, what="the 3 partial runs")
            await pilot.press("escape", "escape", "e")
            errors = await until(lambda: app.screen.query("#errors") and app.screen.query_one("#errors"), pilot)
            # the same bad row in 3 runs: one open error, seen 3 times
            await until(lambda: errors.row_count == 1, pilot, what="small's one error")
            await until(lambda: "seen 3 times" in str(app.screen.query_one("#error-detail").render()), pilot,
                        what="seen 3 times")
            await pilot.press("x")
            await until(lambda: project.query("SELECT COUNT(*) FROM syncdash_item_errors WHERE resolution='manual'")
                        == [(1,)], pilot, what="marked resolved")
            await until(lambda: errors.row_count == 0, pilot, what="the list empties")
            await pilot.press("escape", "tab")
            assert app.focused is not None and app.focused.id == "active"  # the next panel: active runs
            await pilot.press("question_mark")
            await until(lambda: app.screen.query("#help"), pilot, what="help")
            await pilot.press("escape")
            dark = app.theme
            await pilot.press("t")
            assert app.theme != dark
            await pilot.press("ctrl+p")
            for ch in "Open small":
                await pilot.press(ch if ch != " " else "space")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await until(lambda: app.screen.query("#source-state") and "small" in str(
                app.screen.query_one("#source-state").render()), pilot, what="source detail from the palette")
            await pilot.press("q")

    run(scenario)


def test_attached_cancel_goes_through_the_command_queue(project: Project) -> None:
    setup(project)
    project.config(CSV.replace("batch_size: 2000", "batch_size: 50"))
    write_big(project, 1, n=300_000)
    daemon = start_daemon(project)
    try:

        async def scenario() -> None:
            app = make_app(project)
            async with app.run_test(size=(120, 40)) as pilot:
                await until(lambda: app.snapshot is not None and app.mode == "attached", pilot)
                await pilot.press("s")
                await until(lambda: app.screen.query(".run-card"), pilot, what="the daemon started it")
                await pilot.press("c")
                await until(lambda: project.query("SELECT status FROM syncdash_runs WHERE source='big'")
                            == [("cancelled",)], pilot, timeout=30, what="the daemon cancelled it")
                assert project.query("SELECT action, status, claimed_by IS NOT NULL FROM syncdash_commands") == [
                    ("cancel", "done", 1)]
                await pilot.press("q")

        run(scenario)
    finally:
        daemon.terminate()
        daemon.wait(30)


def test_a_rest_source_synced_from_the_console(project: Project) -> None:
    from syncdash_demo.sampleapi import SampleApi

    with SampleApi(n=400, latency=0.02, lifetime=120) as api:
        project.config(f"""\
            sources:
              - name: players
                kind: rest
                url: {api.url}/v1/page/players
                records: data.items
                pagination: {{type: page, size: 40, total_path: meta.total}}
                retry: {{attempts: 3, initial: 0.01s}}
                table: players
                primary_key: [id]
                fields: {{id: {{type: int}}, name: profile.display_name}}
            """)
        api.fail("page=3&", 500, times=1)

        async def scenario() -> None:
            app = make_app(project)
            async with app.run_test(size=(120, 40)) as pilot:
                await until(lambda: app.snapshot is not None, pilot)
                await pilot.press("s")
                await until(lambda: project.query("SELECT status, inserted FROM syncdash_runs") ==
                            [("succeeded", 400)], pilot, what="the REST run")
                await pilot.press("enter")
                state = await until(lambda: app.screen.query("#source-state") and app.screen.query_one(
                    "#source-state"), pilot)
                await until(lambda: "breaker 127.0.0.1" in str(state.render()), pilot, what="the host's breaker")
                assert "closed, 0 failure(s)" in str(state.render())
                await pilot.press("escape", "h", "enter")
                summary = await until(lambda: app.screen.query("#run-summary") and app.screen.query_one(
                    "#run-summary"), pilot)
                await until(lambda: "retry after http 500" in str(summary.render()), pilot,
                            what="the retry is visible in the run's warnings")
                await pilot.press("q")

        run(scenario)
