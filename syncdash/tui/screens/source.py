"""One source: config (secrets masked), state (cursor, checkpoint, lease, breaker), schedule with the next
5 fire times, a sparkline of recent run durations, and its recent runs.

The stored state (cursor per stream, the checkpoint an interrupted run would resume from, the source's breakers)
is read with the same store functions as `syncdash state NAME`, and changed with the same ones: `x` resets it
(after a confirmation: the next run starts from `initial`), `C` sets the cursor (a modal; a bad value is said
there). Read again whenever a run of the source finishes, so it never shows a cursor the last run moved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml
from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

from syncdash.store import state
from syncdash.store.models import Breaker, Run
from syncdash.store.state import StoredState
from syncdash.tui import data
from syncdash.tui import format as fmt
from syncdash.tui.screens.page import Page

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp


class SourceScreen(Page):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("s", "sync", "Sync"), Binding("f", "full", "Full"),
                Binding("d", "dry_run", "Dry run"), Binding("p", "pause", "Pause/resume"),
                Binding("R", "retry_all", "Retry errors"), Binding("x", "reset_state", "Reset state"),
                Binding("C", "set_cursor", "Set cursor")]
    app: SyncdashApp

    def __init__(self, name: str) -> None:
        super().__init__()
        self.source = name
        self.crumb = f"source {name}"
        self.stored: StoredState | None = None
        self._seen: tuple[Any, ...] | None = None  # the source's last run and lease, when the state was read

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="source-detail"):
            yield Static("", id="source-state")
            yield Label("Run durations, oldest to newest (last 30)", classes="panel-title")
            yield Sparkline([], id="durations")
            yield Label("Throughput, rows/s (last 30)", classes="panel-title")
            yield Sparkline([], id="throughput")
            yield Label("Recent runs", classes="panel-title")
            yield DataTable(id="source-runs", cursor_type="row")
            yield Label("Config", classes="panel-title")
            yield Static("", id="source-config")
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#source-runs", DataTable)
        for c in ("run", "trigger", "status", "started", "took", "ins", "upd", "del", "fail"):
            t.add_column(c, key=c)
        src = self.app.config.source(self.source)
        if src is not None:
            text = yaml.safe_dump(src.model_dump(by_alias=True, exclude_defaults=True, mode="json"),
                                  sort_keys=False, allow_unicode=True)
            self.query_one("#source-config", Static).update(escape(self.app.config.redact(text)))
        self.load()

    def reshow(self) -> None:
        self.load()

    def show_snapshot(self, snap: data.Snapshot) -> None:
        self._state(snap)
        view = next((v for v in snap.sources if v.config.name == self.source), None)
        seen = None if view is None else (view.last_run.id if view.last_run else None,
                                          view.last_run.status if view.last_run else None,
                                          view.state.lock_run_id if view.state else None,
                                          view.breaker.state if view.breaker else None)
        if self._seen is not None and seen != self._seen:  # a run started, ended or tripped a breaker
            self.load()
        self._seen = seen

    @work(thread=True, exclusive=True, group="source")
    def load(self) -> None:
        runs = data.recent_runs_of(self.app.store, self.source)
        stored = state.read_state(self.app.store, self.source)
        self.app.call_from_thread(self._loaded, runs, stored)

    def _loaded(self, runs: list[Run], stored: StoredState) -> None:
        """Runs and state in one step: the screen never shows a new run beside the cursor from before it."""
        self.stored = stored
        self._runs(runs)

    def _stored_lines(self, live: Breaker | None) -> list[str]:
        """The stored state as `syncdash state NAME` words it (secrets in a breaker's last error masked). The
        breaker of the source's host from the last snapshot is fresher than the one read with the state."""
        import json

        st = self.stored
        if st is None:
            return []
        redact = self.app.config.redact
        lines = []
        lines += [f"files read ({escape(k)}): {escape(state.files_read_words(v))}" for k, v in st.files_read.items()]
        if st.cursor:
            lines += [f"cursor ({escape(k)}): {escape(redact(str(v)))}" for k, v in st.cursor.items()]
        elif not st.files_read:
            lines.append(f"cursor: none (the next incremental run starts from {escape(self._start())})")
        if st.checkpoint_run is not None:
            ck = fmt.checkpoint(json.dumps(st.checkpoint, default=str))[:300]
            lines.append(f"checkpoint: run {st.checkpoint_run} was interrupted; the next run resumes it at "
                         f"{escape(redact(ck))}")
        else:
            lines.append("checkpoint: none (no interrupted run to resume)")
        breakers = {b.host: b for b in st.breakers}
        if live is not None:
            breakers[live.host] = live
        for b in breakers.values():
            until = f", retry at {b.retry_at:%Y-%m-%d %H:%M:%S}Z" if b.retry_at and b.state != "closed" else ""
            why = f" ({redact(b.last_error)})" if b.last_error else ""
            lines.append(escape(f"breaker {b.host}: {b.state}, {b.failures} failure(s){until}{why}"))
        if not breakers:
            lines.append("breakers: none")
        lines.append("[dim]x reset the state · C set the cursor[/]")
        return lines

    def _start(self) -> str:
        """Where a run starts with no cursor: the config's `initial`, or the start."""
        inc = getattr(self.app.config.source(self.source), "incremental", None)
        initial = getattr(inc, "initial", None)
        return f"initial {initial!r}" if initial else "the start"

    def _runs(self, runs: list[Run]) -> None:
        now = self.app.now()
        t = self.query_one("#source-runs", DataTable)
        t.clear()
        durations, rates = [], []
        for r in runs:
            secs = ((r.finished_at or now) - r.started_at).total_seconds() if r.started_at else None
            if secs is not None and r.finished_at is not None:
                durations.append(secs)
                rates.append((r.inserted + r.updated + r.unchanged + r.deleted) / secs if secs > 0 else 0)
            t.add_row(str(r.id), r.trigger, fmt.styled(r.status, fmt.STATUS_STYLE.get(r.status, "")),
                      fmt.age(r.started_at, now), fmt.seconds(secs), str(r.inserted), str(r.updated), str(r.deleted),
                      str(r.failed), key=str(r.id))
        self.query_one("#durations", Sparkline).data = list(reversed(durations)) or [0]
        self.query_one("#throughput", Sparkline).data = list(reversed(rates)) or [0]
        if self.app.snapshot is not None:
            self._state(self.app.snapshot)

    def _state(self, snap: data.Snapshot) -> None:
        from datetime import UTC

        from syncdash.store.health import schedule_of

        view = next((v for v in snap.sources if v.config.name == self.source), None)
        if view is None:
            self.query_one("#source-state", Static).update(f"No source {escape(self.source)} in the config.")
            return
        st, now = view.state, snap.taken_at
        lines = [f"[b]{escape(self.source)}[/b] ({view.config.kind}) · "
                 f"{fmt.styled(view.health, fmt.HEALTH_STYLE.get(view.health, ''))}"]
        sched = None
        try:
            sched = schedule_of(view.config, st.schedule_override if st else None)
        except Exception:
            pass
        if sched is not None:
            nxt = [t.replace(tzinfo=None) for t in sched.next_fires(now.replace(tzinfo=UTC), 5)]
            lines.append(f"schedule: {escape(sched.describe())}" + (" (override)" if view.schedule_override else "")
                         + (" [magenta]paused[/]" if st and st.paused else ""))
            lines.append("next fires (UTC): " + ", ".join(f"{t:%m-%d %H:%M}" for t in nxt))
        else:
            lines.append("schedule: none (runs when you press s, or from the CLI)")
        if st is not None:
            lines.append(f"last success: {fmt.age(st.last_success_at, now)}")
            if st.lock_run_id:
                lines.append(f"lease: run {st.lock_run_id} held by {escape((st.lock_owner or '?').split(':')[0])}")
        limit = getattr(view.config, "rate_limit", None)
        if limit is not None:
            shared = ", shared by every source on the host" if limit.shared else ""
            lines.append(f"rate limit: {limit} (burst {limit.burst}{shared})")
        lines += self._stored_lines(view.breaker)
        self.query_one("#source-state", Static).update("\n".join(lines))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(int(str(event.row_key.value)))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_sync(self) -> None:
        self.app.start_run(self.source)

    def action_full(self) -> None:
        self.app.start_run(self.source, full=True)

    def action_dry_run(self) -> None:
        self.app.open_dry_run(self.source)

    def action_pause(self) -> None:
        self.app.toggle_pause(self.source)

    def action_retry_all(self) -> None:
        self.app.retry_source_errors(self.source)

    def _active_run(self) -> int | None:
        """The source's run in progress, if the last snapshot shows one: its state is not to be changed under it."""
        snap = self.app.snapshot
        return next((r.run.id for r in snap.active if r.run.source == self.source), None) if snap else None

    def action_reset_state(self) -> None:
        from syncdash.tui.modals import ConfirmModal

        if (rid := self._active_run()) is not None:
            self.notify(f"{self.source} is running (run {rid}): cancel it or let it finish, then reset.",
                        title="Not reset", severity="warning")
            return
        st = self.stored
        now = ", ".join(f"{k}: {v}" for k, v in st.cursor.items()) if st and st.cursor else "none"
        ck = f"the checkpoint of interrupted run {st.checkpoint_run} is dropped (it will not resume)" \
            if st and st.checkpoint_run is not None else "no checkpoint to drop"
        text = (f"[b]Reset the state of {escape(self.source)}?[/b]\n\nThe cursor ({escape(now)}) is cleared, "
                f"{ck}, and its breakers close.\nThe next run starts from {escape(self._start())}: "
                "it reads (or sends) everything again. Run history, errors and rows stay.")
        self.app.push_screen(ConfirmModal(text), self._reset_answered)

    def _reset_answered(self, yes: Any) -> None:
        if yes:
            self.reset_state()

    @work(thread=True, group="source-actions", exit_on_error=False)
    def reset_state(self) -> None:
        state.reset_state(self.app.store, self.source)
        self.app.call_from_thread(self.notify, f"{self.source}: state reset; the next run reads from "
                                               f"{self._start()}")
        self.app.call_from_thread(self.load)
        self.app.call_from_thread(self.app.refresh_now)

    def action_set_cursor(self) -> None:
        from syncdash.tui.modals import CursorModal

        if (rid := self._active_run()) is not None:
            self.notify(f"{self.source} is running (run {rid}): cancel it or let it finish, then set its cursor.",
                        title="Cursor not set", severity="warning")
            return
        src = self.app.config.source(self.source)
        mode = getattr(src, "mode", None) or "full"
        note = f"{self.source} runs in {mode} mode: only an incremental run reads the cursor." \
            if mode != "incremental" else ""
        cursors = dict(self.stored.cursor) if self.stored else {}
        store = self.app.store

        def apply(value: str, stream: str | None) -> dict[str, Any]:
            return state.set_cursor(store, self.source, value, stream)

        self.app.push_screen(CursorModal(self.source, cursors, apply, note), self._cursor_set)

    def _cursor_set(self, cursors: Any) -> None:
        if cursors is None:
            return
        self.notify(f"{self.source}: cursor set; the next incremental run starts after it")
        self.load()
        self.app.refresh_now()
