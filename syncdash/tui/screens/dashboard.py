"""The first screen: every source at a glance, live runs with a bar per phase, the latest errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Header, Input, Label, Static

from syncdash.tui import format as fmt
from syncdash.tui.data import Snapshot, SourceView
from syncdash.tui.screens.page import Page
from syncdash.tui.widgets import FitFooter, RunCard

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp


COLUMNS = ("name", "kind", "schedule", "next", "last", "health", "rows", "breaker")
COLUMN_LABELS = {"name": "source", "kind": "kind", "schedule": "schedule", "next": "next run", "last": "last run",
                 "health": "health", "rows": "rows", "breaker": "breaker"}
# dropped first to last on a narrow terminal: source, last run and health always stay
DROP_ORDER = ("breaker", "kind", "schedule", "rows", "next")
WIDE_ENOUGH = 110  # columns: below this the sources table drops its lower-priority columns
TALL_ENOUGH = 30  # lines: below this the panels lose their blank line above the title (class `-short`)


class DashboardScreen(Page):
    BINDINGS = [
        Binding("s", "sync", "Sync"),
        Binding("f", "sync_full", "Full"),
        Binding("d", "dry_run", "Dry run"),
        Binding("c", "cancel", "Cancel"),
        Binding("p", "pause", "Pause/resume"),
        Binding("R", "retry_all", "Retry errors"),
        Binding("enter", "open", "Open", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("g", "top", "Top", show=False),
        Binding("G", "bottom", "Bottom", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    app: SyncdashApp
    crumb = "dashboard"
    top_level = True

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.snapshot: Snapshot | None = None
        self.shown_columns: tuple[str, ...] = COLUMNS
        self.error_widths: tuple[int, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="dashboard"):
            yield Label("Sources", classes="panel-title")
            yield Input(placeholder="filter sources (name, kind, health); escape clears", id="source-filter")
            yield DataTable(id="sources", cursor_type="row", zebra_stripes=True)
            yield Label("Active runs", classes="panel-title")
            yield VerticalScroll(Static("No run is active. Select a source and press [b]s[/b] to sync it.",
                                        id="no-runs"), id="active")
            yield Label("Recent errors", classes="panel-title")
            yield DataTable(id="recent-errors", cursor_type="row")
        yield Static("", id="statusline")
        yield FitFooter()

    def on_mount(self) -> None:
        self.set_class(self.app.size.height < TALL_ENOUGH, "-short")
        table = self.query_one("#sources", DataTable)
        self.shown_columns = self._columns_for(self.app.size.width)
        for key in self.shown_columns:
            table.add_column(COLUMN_LABELS[key], key=key)
        self._add_error_columns()
        self.query_one("#source-filter", Input).display = False
        table.focus()
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)

    def reshow(self) -> None:
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)
        self.app.refresh_now()

    def _add_error_columns(self) -> None:
        """Fixed widths (an auto-sized table filled after mounting could keep its empty-table header widths),
        chosen for the terminal's width so the table never needs a horizontal scrollbar: at 80 columns that
        line is one error fewer."""
        errs = self.query_one("#recent-errors", DataTable)
        self.error_widths = self._error_widths_for(self.app.size.width)
        for key, width in zip(("source", "type", "item", "message"), self.error_widths, strict=True):
            errs.add_column(key, key=key, width=width)

    @staticmethod
    def _error_widths_for(width: int) -> tuple[int, int, int, int]:
        item = 34 if width >= WIDE_ENOUGH else 22
        # each column has a cell of padding either side, and the panel may show a vertical scrollbar (2)
        message = max(16, min(80, width - 14 - 10 - item - 4 * 2 - 2))
        return 14, 10, item, message

    @staticmethod
    def _columns_for(width: int) -> tuple[str, ...]:
        """Every column from WIDE_ENOUGH up; below, drop in DROP_ORDER (about 14 cells each) until it fits."""
        drop: set[str] = set()
        budget = WIDE_ENOUGH
        for key in DROP_ORDER:
            if width >= budget:
                break
            drop.add(key)
            budget -= 12
        return tuple(k for k in COLUMNS if k not in drop)

    def on_resize(self) -> None:
        self.set_class(self.app.size.height < TALL_ENOUGH, "-short")
        if self._error_widths_for(self.app.size.width) != self.error_widths:
            self.query_one("#recent-errors", DataTable).clear(columns=True)
            self._add_error_columns()
            if self.snapshot is not None:
                self._show_errors(self.snapshot)
        wanted = self._columns_for(self.app.size.width)
        if wanted == self.shown_columns:
            return
        self.shown_columns = wanted
        table = self.query_one("#sources", DataTable)
        table.clear(columns=True)
        for key in wanted:
            table.add_column(COLUMN_LABELS[key], key=key)
        if self.snapshot is not None:
            self.show_snapshot(self.snapshot)

    # ---- rendering ------------------------------------------------------------------------------------

    def show_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self._show_sources(snap)
        self._show_runs(snap)
        self._show_errors(snap)
        self.query_one("#statusline", Static).update(self.app.status_text(snap))

    def _visible(self, snap: Snapshot) -> list[SourceView]:
        f = self.filter_text.lower()
        return [v for v in snap.sources if not f or f in v.config.name.lower() or f in v.config.kind
                or f in v.health]

    def _show_sources(self, snap: Snapshot) -> None:
        table = self.query_one("#sources", DataTable)
        now = snap.taken_at
        rows = self._visible(snap)
        keys = [v.config.name for v in rows]
        if [str(k.value) for k in table.rows] != keys:
            selected = self.selected_source()
            table.clear()
            for v in rows:
                cells = dict(zip(COLUMNS, self._cells(v, now), strict=True))
                table.add_row(*(cells[k] for k in self.shown_columns), key=v.config.name)
            if selected in keys:
                table.move_cursor(row=keys.index(selected))
            if not rows:
                self.query_one("#no-runs", Static).update(
                    "No sources match the filter." if self.filter_text else
                    "No sources in the config. Add one (see config.sample.yaml) and restart.")
            return
        for v in rows:
            for col, value in zip(COLUMNS, self._cells(v, now), strict=True):
                if col not in self.shown_columns:
                    continue
                table.update_cell(v.config.name, col, value, update_width=True)  # "#1 succeeded" never cut

    @staticmethod
    def _cells(v: SourceView, now: object) -> tuple[str, ...]:
        from datetime import datetime

        assert isinstance(now, datetime)
        last = v.last_run
        last_text = (fmt.styled(f"#{last.id} {last.status}", fmt.STATUS_STYLE.get(last.status, "")) +
                     f" {fmt.age(last.started_at, now)}") if last else "-"
        sched = escape(v.schedule or "-") + (" [dim](override)[/]" if v.schedule_override else "")
        if v.state is not None and v.state.paused:
            sched += " [magenta](paused)[/]"
        rows = fmt.number(v.rows) if v.rows is not None else "-"
        breaker = "-"
        if v.breaker is not None:
            style = {"open": "red", "half_open": "yellow"}.get(v.breaker.state, "green")
            breaker = fmt.styled(v.breaker.state, style)
        return (escape(v.config.name), v.config.kind, sched, fmt.until(v.next_fire, now) if v.next_fire else "-",
                last_text, fmt.styled(v.health, fmt.HEALTH_STYLE.get(v.health, "")), rows, breaker)

    def _show_runs(self, snap: Snapshot) -> None:
        box = self.query_one("#active", VerticalScroll)
        live = {f"run-{v.run.id}": v for v in snap.active}
        for card in list(box.query(RunCard)):
            if card.id not in live:
                card.remove()
        for key, view in live.items():
            cards = box.query(f"#{key}")
            if cards:
                card = cards.first(RunCard)
                card.show(view, snap.taken_at)
            else:
                card = RunCard(view)
                box.mount(card)
                card.call_after_refresh(card.show, view, snap.taken_at)
        shown = [c for c in box.query(RunCard) if c.id in live]
        for i, c in enumerate(shown):  # the panel is as tall as its cards: no margin under the last one
            c.set_class(i == len(shown) - 1, "-last")
        self.query_one("#no-runs", Static).display = not snap.active

    def _show_errors(self, snap: Snapshot) -> None:
        table = self.query_one("#recent-errors", DataTable)
        table.clear()
        for e in snap.errors:
            item = e.item or "-"
            room = self.error_widths[2] if self.error_widths else 34
            if len(item) > room:  # keep the file name and line: the end of a path says most
                item = "…" + item[-(room - 1):]
            table.add_row(escape(e.source), e.error_type, escape(item), escape(e.message[:120]), key=str(e.id))

    # ---- actions ----------------------------------------------------------------------------------------

    def selected_source(self) -> str | None:
        table = self.query_one("#sources", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:
            return None
        return str(key.value) if key is not None else None

    def _need_source(self) -> str | None:
        name = self.selected_source()
        if name is None:
            self.notify("Select a source first (arrow keys).", severity="warning")
        return name

    def action_sync(self) -> None:
        if (name := self._need_source()) is not None:
            self.app.start_run(name)

    def action_sync_full(self) -> None:
        if (name := self._need_source()) is not None:
            self.app.start_run(name, full=True)

    def action_dry_run(self) -> None:
        if (name := self._need_source()) is not None:
            self.app.open_dry_run(name)

    def action_cancel(self) -> None:
        name = self._need_source()
        if name is None or self.snapshot is None:
            return
        active = [v.run.id for v in self.snapshot.active if v.run.source == name]
        if not active:
            self.notify(f"{name} has no active run.", severity="warning")
            return
        self.app.cancel_run(active[0] or 0)

    def action_pause(self) -> None:
        if (name := self._need_source()) is not None:
            self.app.toggle_pause(name)

    def action_retry_all(self) -> None:
        if (name := self._need_source()) is not None:
            self.app.retry_source_errors(name)

    def action_open(self) -> None:
        if (name := self.selected_source()) is not None:
            self.app.open_source(name)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "sources":
            self.app.open_source(str(event.row_key.value))
        elif event.data_table.id == "recent-errors":
            self.app.action_errors()

    def action_filter(self) -> None:
        box = self.query_one("#source-filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#source-filter", Input)
        box.value = ""
        box.display = False
        self.filter_text = ""
        self.query_one("#sources", DataTable).focus()
        if self.snapshot:
            self.show_snapshot(self.snapshot)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "source-filter":
            self.filter_text = event.value
            if self.snapshot:
                self.show_snapshot(self.snapshot)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#sources", DataTable).focus()

    def action_top(self) -> None:
        self.query_one("#sources", DataTable).move_cursor(row=0)

    def action_bottom(self) -> None:
        t = self.query_one("#sources", DataTable)
        t.move_cursor(row=max(0, t.row_count - 1))
