"""One row opened from the browser: its values, and its provenance from syncdash_changes: every run that
inserted, updated or soft-deleted it, with each update's fields before and after (what retention kept).

The source item (CSV file:line, REST page, web page URL) a row was read from is not recorded by syncdash
for rows written successfully: the change log keeps keys and values, the row only `_run_id`. The screen says
so, and shows the items the store does link to the key: records of it that failed (item errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Label, Static

from syncdash.store.queries import RowEvent, RowItem, row_source_items
from syncdash.tui import data
from syncdash.tui import format as fmt
from syncdash.tui.screens.page import Page

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp


class RowScreen(Page):
    BINDINGS = [Binding("escape", "back", "Back")]
    app: SyncdashApp

    def __init__(self, source: str, table: str, key: list[Any], values: dict[str, Any]) -> None:
        super().__init__()
        self.source, self.table, self.key, self.values = source, table, key, values
        self.lines: list[str] = []
        self.crumb = f"{table} row {', '.join(map(str, key))}"

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="row-detail"):
            yield Static("", id="row-values")
            yield Label("History (from the change log; retention applies)", classes="panel-title")
            yield DataTable(id="row-history", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#row-history", DataTable)
        for c in ("run", "when", "trigger", "change", "field", "before", "after"):
            t.add_column(c, key=c)
        t.focus()
        width = max((len(k) for k in self.values), default=0)
        lines = [f"[b]{escape(self.table)}[/b] · source {escape(self.source)} · key "
                 f"{escape(', '.join(map(str, self.key)))}"]
        lines += [f"{escape(k.ljust(width))}  {escape('' if v is None else str(v))}" for k, v in self.values.items()]
        self.lines = lines
        self.query_one("#row-values", Static).update("\n".join(lines))
        self.load()

    def reshow(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="row")
    def load(self) -> None:
        events = data.row_history(self.app.store, self.source, self.key)
        items = row_source_items(self.app.store, self.source, self.key)
        self.app.call_from_thread(self._show, events, items)

    def _show(self, events: list[RowEvent], items: list[RowItem] | None = None) -> None:
        now = self.app.now()
        if items:
            seen = [f"{escape(i.item)} (run {i.run_id}, {escape(i.error_type)}"
                    + (f", {fmt.age(i.seen_at, now)})" if i.seen_at else ")") for i in items]
            source = "source item  not recorded for written rows; failed as " + "; ".join(seen)
        else:
            source = "source item  not recorded for a written row (no file:line or page URL kept)"
        self.query_one("#row-values", Static).update("\n".join([*self.lines, f"[dim]{source}[/dim]"]))
        t = self.query_one("#row-history", DataTable)
        t.clear()
        for i, e in enumerate(events):
            run = e.run
            head = (str(run.id), fmt.age(run.started_at or run.queued_at, now), run.trigger)
            if e.change == "update" and e.after:
                for n, (name, after) in enumerate(e.after.items()):
                    before = (e.before or {}).get(name)
                    t.add_row(*(head if n == 0 else ("", "", "")), "update" if n == 0 else "", escape(name),
                              escape(repr(before)), escape(repr(after)), key=f"{i}-{n}")
            else:
                t.add_row(*head, e.change, "", "", "", key=str(i))
        if not events:
            t.add_row("-", "", "", "no recorded change (older than retention, or past a run's max_changes)",
                      "", "", "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        row = event.data_table.get_row(event.row_key)
        if row and str(row[0]).isdigit():
            self.app.open_run(int(str(row[0])))

    def action_back(self) -> None:
        self.app.pop_screen()
