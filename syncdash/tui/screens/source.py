"""One source: config (secrets masked), state (cursor, checkpoint, lease, breaker), schedule with the next
5 fire times, a sparkline of recent run durations, and its recent runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml
from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

from syncdash.store.models import Run
from syncdash.tui import data
from syncdash.tui import format as fmt
from syncdash.tui.screens.page import Page

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp


class SourceScreen(Page):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("s", "sync", "Sync"), Binding("f", "full", "Full"),
                Binding("d", "dry_run", "Dry run"), Binding("p", "pause", "Pause/resume"),
                Binding("R", "retry_all", "Retry errors")]
    app: SyncdashApp

    def __init__(self, name: str) -> None:
        super().__init__()
        self.source = name
        self.crumb = f"source {name}"

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

    @work(thread=True, exclusive=True, group="source")
    def load(self) -> None:
        runs = data.recent_runs_of(self.app.store, self.source)
        self.app.call_from_thread(self._runs, runs)

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
            lines.append(f"last success: {fmt.age(st.last_success_at, now)} · cursor: {escape(st.cursor or '-')}")
            if st.lock_run_id:
                lines.append(f"lease: run {st.lock_run_id} held by {escape((st.lock_owner or '?').split(':')[0])}")
        limit = getattr(view.config, "rate_limit", None)
        if limit is not None:
            shared = ", shared by every source on the host" if limit.shared else ""
            lines.append(f"rate limit: {limit} (burst {limit.burst}{shared})")
        if view.breaker is not None:
            b = view.breaker
            lines.append(f"breaker {escape(b.host)}: {b.state}, {b.failures} failure(s)"
                         + (f", retry at {b.retry_at:%H:%M:%S}" if b.retry_at else ""))
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
