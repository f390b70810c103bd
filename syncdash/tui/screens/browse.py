"""`b`: the synced data itself. Pick a target table, page through its live rows (keyset pages from the target
database, so page 1,000 costs what page 1 does), sort by the column under the cursor, filter with `/`.
All reads run in a worker (syncdash.targets.browse); this screen only keeps the cursors to page back.

`/` takes `column:value` and `column>value` filters and words. When the table's source declares `search:`,
the words search its full-text index (ranked by relevance, matched words highlighted); otherwise each word
is a plain "any column contains it" filter. Cells are Rich Text built from the values, never markup, so a
value like `[b]` or `[/link]` shows as typed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input, Label, OptionList

from syncdash.tui import data
from syncdash.tui.screens.page import Page

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp


MATCH_STYLE = "bold black on yellow"  # a matched word in a search result's cell (readable on every theme)


class BrowseScreen(Page):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        Binding("n", "next_page", "Next"),
        Binding("p", "prev_page", "Prev"),
        Binding("s", "sort", "Sort"),
        Binding("l", "pick_table", "Tables"),
    ]
    app: SyncdashApp
    crumb = "browse"
    top_level = True

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[data.BrowsableTable] = []
        self.current: data.BrowsableTable | None = None
        self.sort: str | None = None
        self.descending = False
        self.filter_text = ""
        self.cursors: list[tuple[Any, ...] | None] = [None]  # the `after` of every page shown so far
        self.next_cursor: tuple[Any, ...] | None = None
        self.columns: list[str] = []
        self.page: Any = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Browse: pick a table", classes="panel-title", id="browse-title")
        yield OptionList(id="browse-tables")
        yield Input(placeholder="filter: column:value  column>value  words; enter applies, escape closes",
                    id="browse-filter")
        yield DataTable(id="browse-rows", cursor_type="cell", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.tables = data.browsable_tables(self.app.config)
        tables = self.query_one("#browse-tables", OptionList)
        for t in self.tables:
            tables.add_option(f"{t.table}  (source {t.source}, key {', '.join(t.key)})")
        self.query_one("#browse-filter", Input).display = False
        self.query_one("#browse-rows", DataTable).display = False
        if not self.tables:
            self.query_one("#browse-title", Label).update("Browse: no source writes a table yet.")
        else:
            tables.highlighted = 0
        tables.focus()

    def reshow(self) -> None:
        if self.current is not None:
            self.load()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.open_table(self.tables[event.option_index])

    def open_table(self, which: data.BrowsableTable) -> None:
        self.current, self.sort, self.descending, self.filter_text = which, None, False, ""
        self.cursors = [None]
        self.query_one("#browse-filter", Input).placeholder = (
            "search words (ranked)  column:value  column>value; enter applies, escape closes"
            if self.search_fields(which) else
            "filter: column:value  column>value  words; enter applies, escape closes")
        self.query_one("#browse-tables", OptionList).display = False
        t = self.query_one("#browse-rows", DataTable)
        t.display = True
        t.focus()
        self.load()

    @work(thread=True, exclusive=True, group="browse")
    def load(self) -> None:
        from syncdash.targets.browse import parse_filter

        which = self.current
        if which is None:
            return
        try:
            filters = parse_filter(self.filter_text, self.columns) if self.filter_text and self.columns else []
            fields = self.search_fields(which)
            words = " ".join(c.value for c in filters if c.column is None)
            if fields and words:
                page = self.search_page(which, fields, words, filters)
            else:
                page = data.browse_page(self.app.store, self.app.config, which, sort=self.sort,
                                        descending=self.descending, filters=filters, after=self.cursors[-1])
        except Exception as e:  # a bad filter, a target database that is down: say so, keep the screen
            self.app.call_from_thread(self.notify, str(e), severity="error")
            return
        self.app.call_from_thread(self._show, page)

    def search_fields(self, which: data.BrowsableTable) -> list[str]:
        """The source's `search:` columns when this table is the one it indexes (not a child table)."""
        src = self.app.config.source(which.source)
        return list(getattr(src, "search", None) or []) if getattr(src, "table", None) == which.table else []

    def search_page(self, which: data.BrowsableTable, fields: list[str], words: str, filters: list[Any]) -> Any:
        """A page of full-text matches, best first (targets.browse.search_page), in this worker thread."""
        from syncdash.targets import browse
        from syncdash.targets import open as target_db

        src = self.app.config.source(which.source)
        db = target_db.connect(self.app.store, target_db.target_url(self.app.config, src))
        try:
            return browse.search_page(db, which.table, which.key, fields, words, filters=filters,
                                      after=self.cursors[-1])
        finally:
            db.close()

    def _show(self, page: Any) -> None:
        t = self.query_one("#browse-rows", DataTable)
        if page.columns != self.columns:
            t.clear(columns=True)
            for c in page.columns:
                t.add_column(c, key=c)
            self.columns = list(page.columns)
        else:
            t.clear()
        if page.query is None:
            for row in page.rows:
                t.add_row(*(escape("" if v is None else str(v)) for v in row))
        for row, spans in zip(page.rows if page.query is not None else [], page.spans, strict=True):
            cells = []
            for c, v in zip(page.columns, row, strict=True):
                cell = Text("" if v is None else str(v))
                for a, b in spans.get(c, []):
                    cell.stylize(MATCH_STYLE, a, b)
                cells.append(cell)
            t.add_row(*cells)
        self.next_cursor = page.cursor
        self.page = page
        which = self.current
        assert which is not None
        order = f"{page.sort} {'desc' if page.descending else 'asc'}"
        more = "  ·  n next" if page.cursor is not None else "  ·  last page"
        filt = f"  ·  filter {escape(self.filter_text)}" if self.filter_text else ""
        if page.query is not None:
            order = "relevance"
            found = f"{page.matches}+" if page.cursor is not None else str(page.matches)
            filt = f"  ·  search {escape(self.filter_text)}: {found} match(es)"
        self.query_one("#browse-title", Label).update(
            f"[b]{escape(which.table)}[/b] (source {escape(which.source)})  ·  page {len(self.cursors)}  ·  "
            f"{len(page.rows)} row(s)  ·  by {escape(order)}{filt}{more}")
        self.sub_title = f"dashboard \u203a browse \u203a {which.table}"

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        """enter on a row: its provenance (the runs that wrote it) in the row screen."""
        page, which = self.page, self.current
        if page is None or which is None or event.coordinate.row >= len(page.rows):
            return
        row = page.rows[event.coordinate.row]
        self.app.open_row(which.source, which.table, list(page.key_of(row)), dict(zip(page.columns, row, strict=True)))

    def action_next_page(self) -> None:
        if self.current is not None and self.next_cursor is not None:
            self.cursors.append(self.next_cursor)
            self.load()

    def action_prev_page(self) -> None:
        if self.current is not None and len(self.cursors) > 1:
            self.cursors.pop()
            self.load()

    def action_sort(self) -> None:
        """The column under the cursor; again on the same column reverses it."""
        t = self.query_one("#browse-rows", DataTable)
        if self.current is None or not self.columns:
            return
        if self.page is not None and self.page.query is not None:
            self.notify("search results are ranked by relevance: clear the search (/, empty) to sort")
            return
        col = self.columns[min(t.cursor_column, len(self.columns) - 1)]
        current = self.sort or self.current.key[0]
        self.descending = not self.descending if col == current else False
        self.sort = col
        self.cursors = [None]
        self.load()

    def action_filter(self) -> None:
        if self.current is None:
            return
        box = self.query_one("#browse-filter", Input)
        box.display = True
        box.value = self.filter_text
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value.strip()
        self.cursors = [None]
        self.query_one("#browse-rows", DataTable).focus()
        self.load()

    def action_pick_table(self) -> None:
        self.current = None
        self.query_one("#browse-rows", DataTable).display = False
        self.query_one("#browse-filter", Input).display = False
        box = self.query_one("#browse-tables", OptionList)
        box.display = True
        box.focus()
        self.query_one("#browse-title", Label).update("Browse: pick a table")

    def action_back(self) -> None:
        box = self.query_one("#browse-filter", Input)
        if box.display:
            box.display = False
            self.query_one("#browse-rows", DataTable).focus()
            return
        self.app.pop_screen()
