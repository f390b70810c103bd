"""The console's own widgets: a live card per running run, with a progress bar per phase, and a footer that fits."""

from __future__ import annotations

from datetime import datetime

from rich.cells import cell_len
from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widget import MountError
from textual.widgets import Footer, Label, ProgressBar, Static

from syncdash.store.models import PhaseStatus
from syncdash.tui import format as fmt
from syncdash.tui.data import PhaseView, RunView

COUNT_MARKS = (("inserted", "[green]+", "[/]"), ("updated", "[yellow]~", "[/]"), ("unchanged", "=", ""),
               ("deleted", "[magenta]-", "[/]"), ("failed", "[red]!", "[/]"))


def brief_counts(c: dict[str, int]) -> str:
    """A phase's own counts in the run's symbols, the non-zero ones only: a phase line has little room."""
    return " ".join(f"{start}{c[k]}{end}" for k, start, end in COUNT_MARKS if c.get(k))


class PhaseRow(Horizontal):
    """name | bar | done/total unit, rate, ETA."""

    def __init__(self, phase: PhaseView) -> None:
        super().__init__(classes="phase")
        self.phase_name = phase.name
        self._last: tuple[PhaseView, datetime] | None = None

    def compose(self) -> ComposeResult:
        name = Label(escape(self.phase_name), classes="phase-name")
        name.tooltip = self.phase_name
        yield name
        yield ProgressBar(total=None, show_eta=False, show_percentage=True, classes="phase-bar")
        yield Label("", classes="phase-text")

    def on_resize(self) -> None:
        self.refill()

    def refill(self) -> None:
        """The bar rounds its fill to the width it had when updated: fill it again at the width it has now."""
        bar = self.query(ProgressBar)
        if self._last is None or not bar:
            return
        b = bar.first(ProgressBar)
        progress, total = b.progress, b.total
        b.update(total=total, progress=0 if progress else 1)  # a different value, so the next one re-validates
        b.update(total=total, progress=progress)

    def show(self, phase: PhaseView, now: datetime, run_counts: dict[str, int] | None = None) -> None:
        """The phase's bar and text. A phase whose own counts differ from its run's (a flow's step, a push
        run's tenant, a finalize that deleted rows) shows them: each step its own, not the flow's running total.
        A running phase with no known total (a web source's pages) shows an indeterminate bar, not 0%."""
        self._last = (phase, now)
        try:  # a row shown after a refresh may be gone by then: its run ended and the card was removed
            bar = self.query_one(ProgressBar)
            text = self.query_one(".phase-text", Label)
        except NoMatches:
            return
        if phase.status == PhaseStatus.DONE:
            total = phase.total or phase.done or 1
            bar.update(total=total, progress=total)
        elif phase.total:
            bar.update(total=phase.total, progress=min(phase.done, phase.total))
        elif phase.status == PhaseStatus.RUNNING:
            bar.update(total=None)  # indeterminate: moving, with no percentage to pretend
        else:  # pending, or failed/skipped before a total was known: an empty bar that does not move
            bar.update(total=1, progress=0)
        rate = phase.rate(now)
        eta = phase.eta(now)
        parts = [escape(fmt.progress(phase.done, phase.total or None, phase.unit)), escape(phase.status)]
        if rate and phase.status == PhaseStatus.RUNNING:
            parts.append(escape(fmt.rate(rate)))
        if eta is not None:
            parts.append(escape(f"ETA {fmt.seconds(eta)}"))
        own = phase.counts
        if run_counts is not None and any(own.values()) and own != run_counts:
            parts.append(brief_counts(own))  # last: on a narrow card the rate and ETA matter more
        text.update(" · ".join(parts))


class RunCard(Vertical):
    """One running (or claimed) run: title, a PhaseRow per phase, live counts and the current position."""

    def __init__(self, view: RunView) -> None:
        super().__init__(id=f"run-{view.run.id}", classes="run-card")
        self.run_id = view.run.id
        self._phase_rows: dict[str, PhaseRow] = {}

    def compose(self) -> ComposeResult:
        yield Label("", classes="run-title")
        yield Vertical(classes="phases")
        counts = Static("", classes="run-counts")
        counts.tooltip = "+ inserted  ~ updated  = unchanged  - deleted  ! failed"
        yield counts

    def show(self, view: RunView, now: datetime) -> None:
        try:
            self._show(view, now)
        except NoMatches:  # not composed yet: the next snapshot draws it
            pass

    def _show(self, view: RunView, now: datetime) -> None:
        r = view.run
        took = fmt.seconds((now - r.started_at).total_seconds()) if r.started_at else "waiting"
        resumed = f" · resumed x{r.resumes}" if r.resumes else ""
        self.query_one(".run-title", Label).update(
            f"[b]run {r.id}[/b] · {escape(r.source)} · {r.trigger} · {r.status} · {took}{resumed}")
        box = self.query_one(".phases", Vertical)
        for ph in view.phases:
            row = self._phase_rows.get(ph.name)
            if row is None:
                row = PhaseRow(ph)
                try:
                    box.mount(row)
                except MountError:  # the run ended and its card was removed before this callback ran
                    return
                self._phase_rows[ph.name] = row
                row.call_after_refresh(row.show, ph, now, view.counts)
            else:
                row.show(ph, now, view.counts)
        detail = next((p.detail for p in view.phases if p.status == PhaseStatus.RUNNING and p.detail), None)
        text = fmt.counts(view.counts)
        if detail:
            text += f"  ·  {escape(detail)}"
        self.query_one(".run-counts", Static).update(text)


# ---- the footer ------------------------------------------------------------------------------------------

HELP_ACTION = "help"  # the one key the footer always keeps: `?` lists every key the footer had no room for
# cells around a footer key in the default (non-compact) style: " k " then "description " (FooterKey's CSS)
KEY_PADDING = 2
DESCRIPTION_PADDING = 1


def footer_key_width(key_display: str, description: str) -> int:
    """Cells a FooterKey takes in the default style: its key padded both sides, its description then a space."""
    if not description:
        return cell_len(key_display)
    return cell_len(key_display) + KEY_PADDING + cell_len(description) + DESCRIPTION_PADDING


def fit_bindings(items: list[tuple[str, int]], width: int, keep: str = HELP_ACTION) -> list[str]:
    """Which actions fit in `width` cells, given (action, cells) in priority order (most important first).

    The `keep` action is placed first, whatever its position, so the way to every other key is never dropped;
    then each action in turn if it still fits, so a short key further down may take a gap a long one left.
    The result keeps the original order. Why not cut at the first key that does not fit: a footer shows as
    many keys as it can, and the dropped ones are all under `?`."""
    room = width
    chosen: set[str] = set()
    for action, cells in items:
        if action == keep and cells <= room:
            chosen.add(action)
            room -= cells
    for action, cells in items:
        if action not in chosen and cells <= room:
            chosen.add(action)
            room -= cells
    return [action for action, _ in items if action in chosen]


class FitFooter(Footer):
    """A Footer that never cuts a key mid-word: on a terminal too narrow for every key it drops the
    lowest-priority ones and keeps `?` (help), which lists them all.

    Priority is the order Textual gives the active bindings: the focused widget's, then the screen's own, then
    the app-wide ones (quit, help, history, errors, browse), so the keys particular to this screen stay longest.
    The stock Footer lays every key out in one line and lets the last ones run under the palette key (`… h Histo▏`).
    Only the default (non-compact, ungrouped) style is supported: the console uses no other.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dropped: list[str] = []  # descriptions of the keys left out, for tests and the `?` tooltip
        self._fitted_width = 0

    def _available(self) -> int:
        width = self.size.width or self.app.size.width
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if palette is not None:
                # docked right; its border and padding are drawn inside the same cells as any key's
                width -= footer_key_width(self.app.get_key_display(palette.binding), palette.binding.description)
        return width

    def compose(self) -> ComposeResult:
        """The stock Footer's keys, less those that do not fit (the palette key is docked apart: always kept)."""
        if not self._bindings_ready:
            return
        first: dict[str, Binding] = {}  # one key per action, as the stock Footer shows
        for _, binding, _enabled, _tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in first and binding.key != self.app.COMMAND_PALETTE_BINDING:
                first[binding.action] = binding
        sizes = [(action, footer_key_width(self.app.get_key_display(b), b.description)) for action, b in first.items()]
        self._fitted_width = self.size.width or self.app.size.width
        shown = set(fit_bindings(sizes, self._available()))
        self.dropped = [b.description for a, b in first.items() if a not in shown]
        for widget in super().compose():
            action = getattr(widget, "action", None)
            if widget.has_class("-command-palette") or action in shown:
                if action == HELP_ACTION and self.dropped:
                    widget.tooltip = "every key; not shown here: " + ", ".join(self.dropped)
                yield widget

    def on_resize(self) -> None:
        """The keys that fit depend on the width: choose them again when it changes."""
        if self._bindings_ready and self.size.width != self._fitted_width:
            self.call_after_refresh(self.recompose)
