"""`syncdash` with no arguments: the console.

Thin on purpose: the store is read in a thread worker once a second (data.snapshot) and the result posted
to the screens; actions go through core.control, i.e. through the store. With no daemon alive on the
database the console hosts the scheduler and a worker itself (stopped on quit: running runs end
interrupted and resume next time); with one alive it attaches and only reads and queues.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from datetime import datetime
from functools import partial
from typing import Any

from rich.markup import escape
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Provider
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen

from syncdash.config.models import Config
from syncdash.store import commands as control
from syncdash.store.db import Store
from syncdash.store.models import utcnow
from syncdash.tui import data, settings
from syncdash.tui.screens.dashboard import DashboardScreen

ACTIVE_POLL = 0.3  # seconds between store reads while a run is active (the engine writes progress every 0.25 s)


class SnapshotReady(Message):
    def __init__(self, snapshot: data.Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class SourceCommands(Provider):
    """The command palette (ctrl+p) offers every action on every source, and the screens."""

    def _commands(self) -> list[tuple[str, Any, str]]:
        app = self.app
        assert isinstance(app, SyncdashApp)
        items: list[tuple[str, Any, str]] = [
            ("Dashboard", app.action_dashboard, "every source, live runs, recent errors"),
            ("Run history", app.action_history, "every run, newest first"),
            ("Errors", app.action_errors, "unresolved item errors"),
            ("Browse a table", app.action_browse, "the synced rows: paged, sorted, filtered"),
            ("Help: keys", app.action_help, "every key by screen"),
            ("Toggle light/dark theme", app.action_toggle_dark, "remembered across starts"),
        ]
        for src in app.config.source_list:
            n = src.name
            items += [(f"Sync {n}", partial(app.start_run, n), "queue a run now"),
                      (f"Full sync {n}", partial(app.start_run, n, full=True), "ignore checkpoints, apply deletes"),
                      (f"Dry run {n}", partial(app.open_dry_run, n), "show the plan, write nothing"),
                      (f"Pause/resume {n}", partial(app.toggle_pause, n), "its schedule"),
                      (f"Retry failed items of {n}", partial(app.retry_source_errors, n), "its last run with errors"),
                      (f"Open {n}", partial(app.open_source, n), "config, state, schedule, runs"),
                      (f"History of {n}", partial(app.action_history, n), "its runs, newest first")]
        return items

    async def discover(self) -> Any:
        """The palette lists the console's own commands as soon as it opens, before anything is typed."""
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Any:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)


class SyncdashApp(App[None]):
    COMMANDS = App.COMMANDS | {SourceCommands}
    CSS_PATH = "syncdash.tcss"
    TITLE = "syncdash"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("1", "dashboard", "Dashboard", show=False),
        Binding("h", "history", "History"),
        Binding("e", "errors", "Errors"),
        Binding("b", "browse", "Browse"),
        Binding("t", "toggle_dark", "Theme", show=False),
    ]

    def __init__(self, config: Config, store: Store, *, host: bool | None = None, poll_interval: float = 1.0,
                 clock: Any = utcnow) -> None:
        super().__init__()
        self.config = config
        self.store = store
        self.poll_interval = poll_interval
        self.clock = clock
        self.want_host = host
        self.hosted: Any = None  # the Daemon this console runs, in hosted mode
        self._host_thread: threading.Thread | None = None
        self.snapshot: data.Snapshot | None = None
        self.mode = "starting"
        from syncdash.config.load import is_project_store

        if is_project_store(config):  # no `database:`: say which store this config's history is in
            self.sub_title = f"store {store.url.removeprefix('sqlite:///')}"

    # ---- lifecycle -----------------------------------------------------------------------------------

    def on_mount(self) -> None:
        logging.getLogger("syncdash").handlers[:] = [logging.NullHandler()]  # never print over the screen
        logging.getLogger("syncdash").propagate = False
        saved = settings.load().get("theme")
        if saved and saved in self.available_themes:
            self.theme = saved
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.screen_change_signal.subscribe(self, self._fit_footer)
        self.push_screen(DashboardScreen())
        self._decide_mode()
        self.poll()
        self._last_poll = 0.0
        self.set_interval(min(self.poll_interval, ACTIVE_POLL), self._tick)
        # Everything alive now (widgets, SQLAlchemy, config) is long-lived: keep it out of the collector's
        # full passes, which otherwise stall the screen for 100+ ms during a large sync in the hosted worker
        gc.freeze()
        # a large sync in the hosted worker allocates millions of short-lived rows: collect the young generation
        # rarely and the old one almost never, so no collection pass freezes the screen
        gc.set_threshold(100_000, 50, 1000)

    def _tick(self) -> None:
        """Poll every poll_interval, and faster while runs are active: progress moves several times a second."""
        busy = self.snapshot is not None and bool(self.snapshot.active)
        now = time.monotonic()
        if busy or now - self._last_poll >= self.poll_interval - 0.01:
            self._last_poll = now
            self.poll()

    def _decide_mode(self) -> None:
        from syncdash.service.daemon import Daemon
        from syncdash.store.health import live_daemons

        others = [d for d in live_daemons(self.store) if d.kind == "daemon"]
        if others or self.want_host is False:
            self.mode = "attached" if others else "read-only"
            return
        self.hosted = Daemon(self.config, self.store, workers=self.config.daemon.workers, kind="console")
        self._host_thread = threading.Thread(target=self.hosted.run, name="hosted-daemon", daemon=True)
        self._host_thread.start()
        self.mode = "hosted"

    async def action_quit(self) -> None:
        if self.hosted is not None:
            import asyncio

            self.notify("Stopping: running runs finish their batch and resume next time...")
            self.hosted.stop()
            if self._host_thread is not None:
                await asyncio.to_thread(self._host_thread.join, 60)
        self.exit()

    # ---- the store, read off the event loop -------------------------------------------------------------

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self) -> None:
        try:
            snap = data.snapshot(self.store, self.config, self.clock())
        except Exception as e:  # a locked or missing store must not kill the console
            self.call_from_thread(self.notify, f"could not read the store: {e}", severity="error")
            return
        self.post_message(SnapshotReady(snap))

    def on_worker_state_changed(self, event: Any) -> None:
        """A worker that failed says so in a notification; the console never shows a traceback."""
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(f"{event.worker.name or 'action'} failed: {event.worker.error}", severity="error")

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snapshot = message.snapshot
        for screen in self.screen_stack:
            show = getattr(screen, "show_snapshot", None)
            if show is not None and screen.is_mounted:
                try:
                    show(message.snapshot)
                except NoMatches:
                    # only a screen being torn down (the app closing) lacks its own widgets; the next poll
                    # brings a fresh snapshot anyway, so skipping this one loses nothing
                    continue

    def status_text(self, snap: data.Snapshot) -> str:
        if self.mode == "hosted":
            who = f"[b]hosted[/b]: scheduler and {self.config.daemon.workers} worker(s) in this console"
        elif self.mode == "attached":
            ds = [d for d in snap.daemons if d.kind == "daemon"]
            who = "[b]attached[/b] to daemon " + ", ".join(d.owner.split(":")[0] for d in ds) if ds else \
                "[yellow]attached daemon is gone[/]: restart the console to host the workers"
            api = next((d.http for d in ds if d.http), None)
            if api:
                who += f"  ·  API {escape(api)}"
        else:
            who = "[b]read-only[/b]: no daemon; runs queue until one starts"
        return f"{who}  ·  queue {snap.queue_depth}  ·  {snap.unresolved} unresolved error(s)"

    def refresh_now(self) -> None:
        self.poll()

    # ---- actions (through the store) --------------------------------------------------------------------

    @work(thread=True, group="actions", exit_on_error=False)
    def start_run(self, source: str, *, full: bool = False, dry_run: bool = False) -> None:
        try:
            rid = control.request_run(self.store, self.config, source, full=full, dry_run=dry_run)
        except Exception as e:
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        if self.hosted is not None:
            self.hosted.wake.set()
        what = "full sync" if full else "sync"
        self.call_from_thread(self.notify, f"{source}: {what} queued as run {rid}")
        self.call_from_thread(self.refresh_now)

    @work(thread=True, group="actions", exit_on_error=False)
    def cancel_run(self, run_id: int) -> None:
        how = control.request_cancel(self.store, run_id, self.hosted)
        self.call_from_thread(self.notify, f"run {run_id}: {how}")
        self.call_from_thread(self.refresh_now)

    @work(thread=True, group="actions", exit_on_error=False)
    def toggle_pause(self, source: str) -> None:
        st = self.store.source_states().get(source)
        paused = not (st is not None and st.paused)
        control.set_paused(self.store, source, paused)
        self.call_from_thread(self.notify, f"{source}: {'paused' if paused else 'resumed'}")
        self.call_from_thread(self.refresh_now)

    @work(thread=True, group="actions", exit_on_error=False)
    def retry_source_errors(self, source: str) -> None:
        why = control.why_no_item_retry(self.config, source)
        if why is not None:  # say why, and start nothing: a retry that cannot re-read the items would only fail
            self.call_from_thread(self.notify, why, title="Not retried", severity="warning", timeout=10)
            return
        run = control.last_failed_run(self.store, source)
        if run is None or run.id is None:
            self.call_from_thread(self.notify, f"{source}: no run with failed items", severity="warning")
            return
        rid = control.retry_errors(self.store, self.config, run.id)
        if self.hosted is not None:
            self.hosted.wake.set()
        self.call_from_thread(self.notify, f"{source}: retrying the failed items of run {run.id} (run {rid})")

    @work(thread=True, group="actions", exit_on_error=False)
    def retry_run(self, run_id: int, error_ids: list[int] | None = None) -> None:
        try:
            rid = control.retry_errors(self.store, self.config, run_id, error_ids)
        except Exception as e:
            self.call_from_thread(self.notify, str(e), severity="error")
            return
        if self.hosted is not None:
            self.hosted.wake.set()
        self.call_from_thread(self.notify, f"retrying the failed items of run {run_id} as run {rid}")

    @work(thread=True, group="actions", exit_on_error=False)
    def open_artifacts(self, text: str | None) -> None:
        """A web page that never rendered: show its screenshot and HTML in a desktop viewer when there is one
        (a console browser would take over this terminal, so none is tried without a display); else copy the
        paths so they can be opened elsewhere."""
        import os
        import sys
        import webbrowser
        from pathlib import Path

        from syncdash.tui.format import artifact_paths

        paths = artifact_paths(text)
        if not paths:
            self.call_from_thread(self.notify, "No screenshot or HTML saved for this error.", severity="warning")
            return
        desktop = sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        opened = desktop and all(webbrowser.open(Path(p).as_uri()) for p in paths if Path(p).exists())
        if not opened:
            self.call_from_thread(self.copy_to_clipboard, "\n".join(paths))
        self.call_from_thread(self.notify, ("Opened " if opened else "No desktop to open them on; paths copied: ")
                              + "  ".join(paths))

    @work(thread=True, group="actions", exit_on_error=False)
    def resolve(self, ids: list[int]) -> None:
        n = data.resolve_errors(self.store, ids)
        self.call_from_thread(self.notify, f"{n} error(s) marked resolved")
        self.call_from_thread(self.refresh_now)

    # ---- navigation -------------------------------------------------------------------------------------

    def _to_dashboard(self) -> None:
        """Pop everything above the dashboard (the default screen is under it); the dashboard refreshes as
        it resumes."""
        from syncdash.tui.screens.dashboard import DashboardScreen

        while len(self.screen_stack) > 1 and not isinstance(self.screen, DashboardScreen):
            self.pop_screen()

    def switch_top(self, screen: Screen[None]) -> None:
        """`h`, `e`: the top-level screens replace each other above the dashboard instead of stacking, so
        one escape always leads home; the screen is new, so what it shows was read just now."""
        self._to_dashboard()
        self.push_screen(screen)

    def _fit_footer(self, screen: Screen[Any]) -> None:
        """Every screen's footer fits the terminal: a screen composed with the stock Footer gets a FitFooter
        in its place (the console's screens yield FitFooter themselves; this covers any that do not)."""
        from textual.widgets import Footer

        from syncdash.tui.widgets import FitFooter

        def swap() -> None:
            if not screen.is_attached:  # left before its first refresh
                return
            for footer in screen.query(Footer):
                if not isinstance(footer, FitFooter):
                    footer.remove()
                    screen.mount(FitFooter())

        if screen.is_mounted:
            swap()
        else:
            screen.call_after_refresh(swap)

    def action_dashboard(self) -> None:
        self._to_dashboard()

    def action_history(self, source: str | None = None) -> None:
        from syncdash.tui.screens.history import HistoryScreen

        self.switch_top(HistoryScreen(source=source))

    def action_errors(self) -> None:
        from syncdash.tui.screens.errors import ErrorsScreen

        self.switch_top(ErrorsScreen())

    def action_browse(self) -> None:
        from syncdash.tui.screens.browse import BrowseScreen

        self.switch_top(BrowseScreen())

    def action_help(self) -> None:
        from syncdash.tui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def open_run(self, run_id: int) -> None:
        from syncdash.tui.screens.run_detail import RunDetailScreen

        self.push_screen(RunDetailScreen(run_id))

    def open_source(self, name: str) -> None:
        from syncdash.tui.screens.source import SourceScreen

        self.push_screen(SourceScreen(name))

    def open_row(self, source: str, table: str, key: list[Any], values: dict[str, Any]) -> None:
        from syncdash.tui.screens.row import RowScreen

        self.push_screen(RowScreen(source, table, key, values))

    def open_dry_run(self, name: str) -> None:
        from syncdash.tui.screens.dryrun import DryRunScreen

        self.push_screen(DryRunScreen(name))

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def _theme_changed(self, theme: Any) -> None:
        """Any theme change (`t`, or the palette's theme picker) is remembered for the next start."""
        settings.save(theme=theme.name)

    def now(self) -> datetime:
        return self.clock()


class NoConfigApp(App[None]):
    """`syncdash` before any config exists: say where it looked and how to start, instead of a traceback."""

    BINDINGS = [Binding("q", "quit", "Quit"), Binding("escape", "quit", "Quit")]
    CSS = "#why { margin: 2 4; padding: 1 2; border: round $warning; height: auto; }"

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def compose(self) -> Any:
        from rich.markup import escape
        from textual.widgets import Header, Static

        from syncdash.tui.widgets import FitFooter

        yield Header()
        yield Static(f"[b]No config to show.[/b]\n\n{escape(self.message)}\n\n"
                     "Create one with [b]syncdash init[/b] (a starter config and sample data in this directory), "
                     "or try everything on sample data with [b]syncdash demo[/b]. Press q to quit.", id="why")
        yield FitFooter()
