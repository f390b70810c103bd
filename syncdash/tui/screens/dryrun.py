"""A dry run's plan (counts, sample changes, warnings), computed without writing; `a` applies it.

A push's plan is the requests it would send (syncdash.tui.pushplan: per tenant, method, URL, masked headers,
body), as `syncdash run PUSH --dry-run` prints them, instead of a table of changed rows: a push changes no row
here, what matters is what would go over the wire."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from syncdash.store.models import RunStatus
from syncdash.tui import format as fmt
from syncdash.tui import pushplan
from syncdash.tui.screens.page import Page

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp


class DryRunScreen(Page):
    BINDINGS = [Binding("escape", "back", "Back"), Binding("a", "apply", "Apply (run it)")]
    app: SyncdashApp

    def __init__(self, name: str) -> None:
        super().__init__()
        self.source = name
        self.ready = False
        self.crumb = f"dry run {name}"
        self.push = False

    def compose(self) -> ComposeResult:
        src = self.app.config.source(self.source)
        self.push = src is not None and src.kind == "push"
        doing = "building the requests, sending nothing" if self.push else "reading and comparing, writing nothing"
        yield Header()
        yield Static(f"Dry run of [b]{escape(self.source)}[/b]: {doing}...", id="plan-summary")
        if self.push:
            with VerticalScroll(id="push-plan"):
                yield Static("", id="push-requests")
        else:
            yield DataTable(id="plan-sample", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        if not self.push:
            t = self.query_one("#plan-sample", DataTable)
            for c in ("change", "key", "before", "after"):
                t.add_column(c, key=c)
        self.plan()

    @work(thread=True, exclusive=True, group="dry-run")
    def plan(self) -> None:
        from syncdash.engine import Engine, RunOptions

        try:
            result = Engine(self.app.store, self.app.config).run(
                self.source, RunOptions(trigger="console", dry_run=True, read_ahead=False))
        except Exception as e:
            self.app.call_from_thread(self.query_one("#plan-summary", Static).update,
                                      f"[red]The dry run could not start:[/] {escape(self.app.config.redact(str(e)))}")
            return
        self.app.call_from_thread(self._show, result)

    def _show(self, result: Any) -> None:
        self.ready = result.status in (RunStatus.SUCCEEDED, RunStatus.PARTIAL)
        redact = self.app.config.redact
        lines = [f"Dry run of [b]{escape(self.source)}[/b] (run {result.run_id}): "
                 f"{fmt.styled(result.status, fmt.STATUS_STYLE.get(result.status, ''))}",
                 ("plan: " + escape(pushplan.counts_text(result.counts)) if self.push else
                  "would apply: " + fmt.counts(result.counts))]
        if result.error:
            lines.append(f"[red]error:[/] {escape(redact(result.error))}")
        lines += [f"[yellow]warning:[/] {escape(redact(w))}" for w in result.warnings]
        verb = "send them" if self.push else "run it for real"
        lines.append(f"Press [b]a[/b] to {verb}, [b]escape[/b] to go back." if self.ready else
                     "Nothing to apply.")
        self.query_one("#plan-summary", Static).update("\n".join(lines))
        if self.push:
            self.query_one("#push-requests", Static).update(pushplan.render(result.sample, redact))
            return
        t = self.query_one("#plan-sample", DataTable)
        for s in result.sample:
            t.add_row(s["change"], escape(redact(str(s["key"]))), escape(redact(str(s["before"] or ""))[:80]),
                      escape(redact(str(s["after"] or ""))[:80]))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_apply(self) -> None:
        if not self.ready:
            self.notify("The plan is not ready yet.", severity="warning")
            return
        self.app.start_run(self.source)
        self.app.pop_screen()
