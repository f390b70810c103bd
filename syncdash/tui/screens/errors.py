"""Unresolved item errors grouped by source and type, with the item, the message and the raw payload.
r retries the selected error's item (or says in a notification why it cannot, and starts nothing), R every
retryable error's run, x marks resolved."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Label, Static

from syncdash.config.kinds import adapter_for
from syncdash.store.models import ItemError
from syncdash.store.queries import seen_text
from syncdash.tui import data
from syncdash.tui.screens.page import Page

# what fixes a non-retryable error, by type: retrying it as it is would only fail the same way again
_FIXES = {
    "duplicate": "two rows of the source share this key; make the keys unique in the source data",
    "validation": "the value itself is wrong (or the link is not allowed); fix it in the source or the config",
    "auth": "the server refused the credentials; fix them in the config",
}

if TYPE_CHECKING:
    from syncdash.tui.app import SyncdashApp


class ErrorsScreen(Page):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "retry", "Retry selected"),
        Binding("R", "retry_all", "Retry all retryable"),
        Binding("x", "resolve", "Mark resolved"),
        Binding("y", "copy", "Copy details"),
        Binding("o", "open", "Open screenshot", show=False),
        Binding("g", "top", "Top", show=False),
        Binding("G", "bottom", "Bottom", show=False),
    ]
    app: SyncdashApp
    crumb = "errors"
    top_level = True

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[int, ItemError] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("Unresolved errors", classes="panel-title", id="errors-title")
        yield DataTable(id="errors", cursor_type="row", zebra_stripes=True)
        yield Static("", id="error-detail")
        yield Footer()

    def on_mount(self) -> None:
        t = self.query_one("#errors", DataTable)
        for c in ("source", "type", "run", "item", "key", "message", "retry"):
            t.add_column(c, key=c)
        t.focus()
        self.load()

    def reshow(self) -> None:
        self.load()

    def show_snapshot(self, snap: data.Snapshot) -> None:
        if snap.unresolved != len(self.errors):
            self.load()

    @work(thread=True, exclusive=True, group="errors")
    def load(self) -> None:
        errs = data.error_groups(self.app.store)
        self.app.call_from_thread(self._show, errs)

    def _show(self, errs: list[ItemError]) -> None:
        t = self.query_one("#errors", DataTable)
        selected = self._selected()
        self.errors = {e.id or 0: e for e in errs}
        t.clear()
        for e in errs:
            t.add_row(escape(e.source), e.error_type, str(e.run_id), escape(e.item or "-"), escape(e.item_key or "-"),
                      escape(e.message[:100]), "yes" if e.retryable else "no", key=str(e.id))
        groups = len({(e.source, e.error_type) for e in errs})
        self.query_one("#errors-title", Label).update(
            f"Unresolved errors: {len(errs)} in {groups} group(s)" if errs else
            "No unresolved errors. Rows that fail to load show up here with their file, line and reason.")
        if selected is not None and selected in self.errors:
            keys = list(self.errors)
            t.move_cursor(row=keys.index(selected))
        self._detail()

    def _selected(self) -> int | None:
        t = self.query_one("#errors", DataTable)
        if not t.row_count:
            return None
        try:
            return int(str(t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value))
        except Exception:
            return None

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._detail()

    def _detail(self) -> None:
        e = self.errors.get(self._selected() or -1)
        box = self.query_one("#error-detail", Static)
        if e is None:
            box.update("")
            return
        payload = json.dumps(json.loads(e.payload), ensure_ascii=False)[:400] if e.payload else "-"
        box.update(f"[b]{escape(e.item or '-')}[/b] · {e.error_type} · column {escape(e.column or '-')} · "
                   f"attempts {e.attempts} · {seen_text(e)}\n{escape(e.message)}\n[dim]payload:[/] "
                   f"{escape(payload)}")

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_retry(self) -> None:
        e = self.errors.get(self._selected() or -1)
        if e is None:
            self.notify("No error selected.", severity="warning")
            return
        why = self.why_not_retried(e)
        if why is not None:  # say why, and start nothing: a run that can only fail again would mark it failing
            self.notify(why, title="Not retried", severity="warning", timeout=10)
            return
        self.app.retry_run(e.run_id, [e.id or 0])

    def why_not_retried(self, e: ItemError) -> str | None:
        """Why `r` cannot retry this error alone, in words a person can act on; None when it can."""
        item = f"{e.source} {e.item or 'item'}" + (f" (key {e.item_key})" if e.item_key else "")
        if not e.retryable:
            fix = _FIXES.get(e.error_type, f"a {e.error_type} error fails the same way every time it is read "
                                           "again; fix its cause")
            return f"{item} is not retryable: {fix}, then run {e.source} again."
        src = self.app.config.source(e.source)
        if src is None:
            return f"{e.source} is no longer in the config: there is nothing to retry {e.item or 'it'} with."
        try:
            caps = adapter_for(src.kind)(src).capabilities
        except Exception:  # an adapter that cannot be built here: the retry run will say why
            return None
        if not caps.retry_items and caps.execution != "flow":  # a flow retries through its steps' own kinds
            return (f"a {src.kind} source cannot re-read one item alone: run {e.source} again to retry "
                    f"{e.item or 'it'} with everything else.")
        return None

    def action_retry_all(self) -> None:
        """Retry every open error `r` could retry, grouped by run; the others are named with why, once per
        source, so `R` never starts a run that can only fail again."""
        by_run: dict[int, list[int]] = {}
        refused: dict[str, str] = {}
        for e in self.errors.values():
            if not e.retryable:
                continue
            why = self.why_not_retried(e)
            if why is None:
                by_run.setdefault(e.run_id, []).append(e.id or 0)
            else:
                refused.setdefault(e.source, why)
        for why in refused.values():
            self.notify(why, title="Not retried", severity="warning", timeout=10)
        if not by_run and not refused:
            self.notify("Nothing retryable.", severity="warning")
        for rid, ids in sorted(by_run.items()):
            self.app.retry_run(rid, sorted(ids))

    def action_resolve(self) -> None:
        if (eid := self._selected()) is not None:
            self.app.resolve([eid])

    def action_copy(self) -> None:
        e = self.errors.get(self._selected() or -1)
        if e is not None:
            self.app.copy_to_clipboard(f"{e.source} run {e.run_id} {e.item}: {e.error_type}: {e.message}\n"
                                       f"payload: {e.payload}")
            self.notify("Error details copied.")

    def action_open(self) -> None:
        e = self.errors.get(self._selected() or -1)
        self.app.open_artifacts(e.message if e is not None else None)

    def action_top(self) -> None:
        self.query_one("#errors", DataTable).move_cursor(row=0)

    def action_bottom(self) -> None:
        t = self.query_one("#errors", DataTable)
        t.move_cursor(row=max(0, t.row_count - 1))
