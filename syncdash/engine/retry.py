"""`retry RUN` of a pull: re-read exactly the items that failed, then say what became of each.

An item is located by (file, line) as its error stored it (file redacted), or by its key when the kind reads
items by key (REST details, web detail pages). After the retry run each error is resolved: fixed (loaded
now) or gone (the input no longer has it); one that failed again stays open, updated in place by the retry
run (one more occurrence and attempt), or, when it failed in another way, is closed as retried and the retry
run's new error carries the attempt count on.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, col, select

from syncdash.store.db import Store
from syncdash.store.models import ItemError, Resolution
from syncdash.store.queries import in_runs

Location = tuple[str | None, int | None]


def resolve_error(s: Session, err: ItemError, *, loaded: bool, failed: bool, run_id: int, now: datetime) -> None:
    """Close one retried error: fixed (its item loaded now), retried (it failed again: the retry run's new error
    carries it on) or gone (the input no longer has it). Pull and push retries both decide this way."""
    e = s.get(ItemError, err.id)
    if e is None or e.resolved_at is not None:
        return
    if failed and not loaded and e.last_run_id == run_id:
        return  # failed again the same way: the retry run updated it, and it stays open
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
                in_runs([self.retry_of or 0]), col(ItemError.resolved_at).is_(None),
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
