"""Every run, newest first, a page at a time from the store; filter by source, status, trigger and text."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input, Label

from syncdash.store.models import COUNTS, Run
from syncdash.tui import data
from syncdash.tui import format as fmt
from syncdash.tui.screens.page import Page

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp

PAGE = 50


class HistoryScreen(Page):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("n", "next_page", "Next page"),
        Binding("p", "prev_page", "Prev page"),
        Binding("g", "top", "Top", show=False),
        Binding("G", "bottom", "Bottom", show=False),
        Binding("r", "retry", "Retry failed items"),
    ]
    app: SyncdashApp
    top_level = True

    def __init__(self, source: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.page_offset = 0
        self.total = 0
        self.query_text = ""
        self.crumb = f"history of {source}" if source else "history"

    def reshow(self) -> None:
        self.load()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Run history", classes="panel-title", id="history-title")
        yield Input(placeholder="filter: words, or source:NAME status:failed trigger:schedule", id="history-filter")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#runs", DataTable)
        for c in ("run", "source", "trigger", "mode", "status", "started", "took", "ins", "upd", "same", "del",
                  "fail"):
            t.add_column(c, key=c)
        self.query_one("#history-filter", Input).display = False
        t.focus()
        self.load()

    def _filters(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {"source": self.source, "status": None, "trigger": None, "text": None}
        words = []
        for w in self.query_text.split():
            k, _, v = w.partition(":")
            if v and k in ("source", "status", "trigger"):
                out[k] = v
            else:
                words.append(w)
        out["text"] = " ".join(words) or None
        return out

    @work(thread=True, exclusive=True, group="history")
    def load(self) -> None:
        runs, total = data.runs_page(self.app.store, offset=self.page_offset, limit=PAGE, **self._filters())
        self.app.call_from_thread(self._show, runs, total)

    def _show(self, runs: list[Run], total: int) -> None:
        self.total = total
        now = self.app.now()
        t = self.query_one("#runs", DataTable)
        t.clear()
        for r in runs:
            took = fmt.seconds(((r.finished_at or now) - r.started_at).total_seconds()) if r.started_at else "-"
            t.add_row(str(r.id), escape(r.source), r.trigger, r.mode or "-",
                      fmt.styled(r.status, fmt.STATUS_STYLE.get(r.status, "")),
                      fmt.age(r.started_at or r.queued_at, now), took,
                      *(str(getattr(r, k)) for k in COUNTS[:5]),  # all but skipped
                      key=str(r.id))
        last = min(self.page_offset + PAGE, total)
        scope = f" of {self.source}" if self.source else ""
        self.query_one("#history-title", Label).update(
            f"Run history{escape(scope)}: {self.page_offset + 1 if total else 0}-{last} of {total}"
            + ("  (no runs yet: press [b]s[/b] on the dashboard)" if not total else ""))

    def action_back(self) -> None:
        box = self.query_one("#history-filter", Input)
        if box.display:
            box.display = False
            self.query_one("#runs", DataTable).focus()
            return
        self.app.pop_screen()

    def action_filter(self) -> None:
        box = self.query_one("#history-filter", Input)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_text = event.value
        self.page_offset = 0
        self.query_one("#runs", DataTable).focus()
        self.load()

    def action_next_page(self) -> None:
        if self.page_offset + PAGE < self.total:
            self.page_offset += PAGE
            self.load()

    def action_prev_page(self) -> None:
        if self.page_offset:
            self.page_offset = max(0, self.page_offset - PAGE)
            self.load()

    def action_top(self) -> None:
        self.query_one("#runs", DataTable).move_cursor(row=0)

    def action_bottom(self) -> None:
        t = self.query_one("#runs", DataTable)
        t.move_cursor(row=max(0, t.row_count - 1))

    def _selected(self) -> int | None:
        t = self.query_one("#runs", DataTable)
        if not t.row_count:
            return None
        return int(str(t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_run(int(str(event.row_key.value)))

    def action_retry(self) -> None:
        if (rid := self._selected()) is not None:
            self.app.retry_run(rid)
