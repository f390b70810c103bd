"""The console's own widgets: a live card per running run, with a progress bar per phase."""

from __future__ import annotations

from datetime import datetime

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widget import MountError
from textual.widgets import Label, ProgressBar, Static

from syncdash.store.models import PhaseStatus
from syncdash.tui import format as fmt
from syncdash.tui.data import PhaseView, RunView


class PhaseRow(Horizontal):
    """name | bar | done/total unit, rate, ETA."""

    def __init__(self, phase: PhaseView) -> None:
        super().__init__(classes="phase")
        self.phase_name = phase.name
        self._last: tuple[PhaseView, datetime] | None = None

    def compose(self) -> ComposeResult:
        yield Label(escape(self.phase_name), classes="phase-name")
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

    def show(self, phase: PhaseView, now: datetime) -> None:
        self._last = (phase, now)
        try:
            bar = self.query_one(ProgressBar)
        except NoMatches:
            return
        if phase.status == PhaseStatus.DONE:
            total = phase.total or phase.done or 1
            bar.update(total=total, progress=total)
        elif phase.total:
            bar.update(total=phase.total, progress=min(phase.done, phase.total))
        elif phase.status == PhaseStatus.PENDING:
            bar.update(total=1, progress=0)
        else:
            bar.update(total=None)
        rate = phase.rate(now)
        eta = phase.eta(now)
        parts = [f"{fmt.number(phase.done)}/{fmt.number(phase.total)} {phase.unit}" if phase.total else
                 f"{fmt.number(phase.done)} {phase.unit}", phase.status]
        if rate and phase.status == PhaseStatus.RUNNING:
            parts.append(fmt.rate(rate))
        if eta is not None:
            parts.append(f"ETA {fmt.seconds(eta)}")
        self.query_one(".phase-text", Label).update(escape(" · ".join(parts)))


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
                row.call_after_refresh(row.show, ph, now)
            else:
                row.show(ph, now)
        detail = next((p.detail for p in view.phases if p.status == PhaseStatus.RUNNING and p.detail), None)
        text = fmt.counts(view.counts)
        if detail:
            text += f"  ·  {escape(detail)}"
        self.query_one(".run-counts", Static).update(text)
