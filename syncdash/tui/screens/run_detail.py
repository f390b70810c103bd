"""One run: phases with durations, counts, errors, what changed (before/after per field), the checkpoint
and the command that reruns it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Header, Label, Static

from syncdash.store.models import COUNTS
from syncdash.store.queries import counts_of
from syncdash.tui import data
from syncdash.tui import format as fmt
from syncdash.tui.screens.page import Page
from syncdash.tui.widgets import FitFooter

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp


class RunDetailScreen(Page):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("r", "retry", "Retry failed items"),
                Binding("c", "cancel", "Cancel run"), Binding("o", "open", "Open screenshot", show=False)]
    app: SyncdashApp

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.crumb = f"run {run_id}"
        self._detail: data.RunDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="run-detail"):
            yield Static("", id="run-summary")
            yield Label("Phases", classes="panel-title")
            yield DataTable(id="phases", cursor_type="row")
            yield Label("What changed", classes="panel-title")
            yield DataTable(id="changes", cursor_type="row")
            yield Label("Errors", classes="panel-title")
            yield DataTable(id="run-errors", cursor_type="row")
            yield Static("", id="run-checkpoint")
        yield FitFooter()

    def on_mount(self) -> None:
        for tid, cols in (("#phases", ("phase", "status", "progress", "took", "ins", "upd", "same", "del", "fail")),
                          ("#changes", ("change", "key", "field", "before", "after")),
                          ("#run-errors", ("item", "type", "column", "message"))):
            t = self.query_one(tid, DataTable)
            for c in cols:
                t.add_column(c, key=c)
        self.load()

    def reshow(self) -> None:
        self.load()

    def show_snapshot(self, snap: data.Snapshot) -> None:
        if any(v.run.id == self.run_id for v in snap.active):
            self.load()  # a live run: keep the detail moving

    @work(thread=True, exclusive=True, group="run-detail")
    def load(self) -> None:
        detail = data.run_detail(self.app.store, self.run_id)
        self.app.call_from_thread(self._show, detail)

    def _show(self, d: data.RunDetail | None) -> None:
        self._detail = d
        if d is None:
            self.query_one("#run-summary", Static).update(f"No run {self.run_id} in the store.")
            return
        r, now = d.run, self.app.now()
        took = fmt.seconds(((r.finished_at or now) - r.started_at).total_seconds()) if r.started_at else "-"
        warnings = d.warnings
        lines = [f"[b]run {r.id}[/b] · {escape(r.source)} ({r.kind}) · {r.trigger} · {r.mode}"
                 f"{' · dry run' if r.dry_run else ''} · "
                 f"{fmt.styled(r.status, fmt.STATUS_STYLE.get(r.status, ''))} · {took}",
                 fmt.counts(counts_of(r)) + f"   [dim]({fmt.COUNTS_LEGEND})[/]"]
        if r.error:
            lines.append(f"[red]error ({r.error_type}):[/] {escape(r.error)}")
        lines += [f"[yellow]warning:[/] {escape(w)}" for w in warnings]
        if d.steps:
            lines.append("steps: " + " → ".join(
                f"{escape(s.source)} run {s.id} {fmt.styled(s.status, fmt.STATUS_STYLE.get(s.status, ''))}"
                for s in d.steps))
        self.query_one("#run-summary", Static).update("\n".join(lines))
        ph = self.query_one("#phases", DataTable)
        ph.clear()
        for p in d.phases:
            secs = ((p.finished_at or now) - p.started_at).total_seconds() if p.started_at else None
            prog = fmt.progress(p.done, p.total, p.unit)
            shown = (str(p.counts[k]) for k in COUNTS[:5])  # all but skipped
            ph.add_row(escape(p.name), p.status, prog, fmt.seconds(secs), *shown)
        ch = self.query_one("#changes", DataTable)
        ch.clear()
        for c in d.changes_in_order():
            key = ", ".join(map(str, c.key))
            before, after = c.before or {}, c.after or {}
            if c.change == "update":
                for field in after:
                    ch.add_row("update", escape(key), escape(field), escape(repr(before.get(field))),
                               escape(repr(after.get(field))))
            else:
                ch.add_row(c.change, escape(key), "", "", "")
        err = self.query_one("#run-errors", DataTable)
        err.clear()
        for e in d.errors.first:
            err.add_row(escape(e.item or "-"), e.error_type, escape(e.column or "-"), escape(e.message[:160]))
        counts = ", ".join(f"{n} {k}" for k, n in sorted(d.change_counts.items()) if n) or "none"
        listed = sum(len(rows) for rows in d.changes.values())
        if listed < sum(d.change_counts.values()):
            counts += f" (the first {listed} listed; all: syncdash show {r.id} --changes N)"
        if len(d.errors.first) < d.errors.total:
            counts += (f"\n[b]errors:[/b] the first {len(d.errors.first)} of {d.errors.total} listed "
                       "(all: errors screen)")
        rerun = d.rerun.command(self.app.config, with_config_file=False)
        if r.failed:
            rerun += f"   # or only the failed items: syncdash retry {r.id}"
        ck = escape(fmt.checkpoint(r.checkpoint)[:400])
        self.query_one("#run-checkpoint", Static).update(
            f"[b]changes kept:[/b] {counts}\n[b]checkpoint:[/b] {ck}\n[b]rerun:[/b] {escape(rerun)}")

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_retry(self) -> None:
        self.app.retry_run(self.run_id)

    def action_open(self) -> None:
        """The run's error, or else the first of its errors that saved a screenshot of the page."""
        d = self._detail
        texts = ([d.run.error] if d.run.error else []) + [e.message for e in d.errors.first] if d is not None else []
        self.app.open_artifacts(next((t for t in texts if "screenshot " in t), None))

    def action_cancel(self) -> None:
        self.app.cancel_run(self.run_id)

