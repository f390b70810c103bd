"""`retry RUN` of a pull: re-read exactly the items that failed, then say what became of each.

An item is located by (file, line) as its error stored it (file redacted). After the retry run each error
is resolved: fixed (loaded now), retried (failed again: the new error carries the attempt count on) or gone
(the input no longer has it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, col, select

from syncdash.store.db import Store
from syncdash.store.models import ItemError, Resolution

Location = tuple[str | None, int | None]


def resolve_error(s: Session, err: ItemError, *, loaded: bool, failed: bool, run_id: int, now: datetime) -> None:
    """Close one retried error: fixed (its item loaded now), retried (it failed again: the retry run's new error
    carries it on) or gone (the input no longer has it). Pull and push retries both decide this way."""
    e = s.get(ItemError, err.id)
    if e is None:
        return
    e.resolution = Resolution.FIXED if loaded else Resolution.RETRIED if failed else Resolution.GONE
    e.resolved_at = now
    e.resolved_by_run = run_id
    s.add(e)


class PullRetry:
    """The retried errors of one retry run and what became of them."""

    def __init__(self, store: Store, retry_of: int | None, only: list[int] | None) -> None:
        self.store = store
        self.retry_of = retry_of
        self.only = only
        self.targets: dict[Location, ItemError] = {}
        self.loaded: set[Location] = set()
        self.failed: dict[Location, int] = {}

    def want(self, redact_path: Callable[[str | None], str | None]) -> Callable[[str | None, int | None], bool]:
        """Load the errors to retry; the filter a stream's batches() applies to record locations."""
        with self.store.session() as s:
            qy = select(ItemError).where(
                ItemError.run_id == self.retry_of, col(ItemError.resolved_at).is_(None),
                col(ItemError.retryable) == True)  # noqa: E712
            if self.only:
                qy = qy.where(col(ItemError.id).in_(self.only))
            self.targets = {(e.file, e.line): e for e in s.exec(qy).all()}
        locs = set(self.targets)
        return lambda f, ln: (redact_path(f), ln) in locs  # errors store redacted files

    def resolve(self, s: Session, run_id: int, now: datetime) -> None:
        for loc, err in self.targets.items():
            resolve_error(s, err, loaded=loc in self.loaded, failed=loc in self.failed, run_id=run_id, now=now)
        if self.failed:
            # carry the attempt count forward onto the new errors of this retry run
            for new in s.exec(select(ItemError).where(ItemError.run_id == run_id)):
                old = self.targets.get((new.file, new.line))
                if old is not None:
                    new.attempts = old.attempts + 1
                    s.add(new)
