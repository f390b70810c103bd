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
from typing import Any

from syncdash.common.dialect import Conn
from syncdash.store import runlog
from syncdash.store.db import Store

Location = tuple[str | None, int | None]


class PullRetry:
    """The retried errors of one retry run and what became of them."""

    def __init__(self, store: Store, retry_of: int | None, only: list[int] | None) -> None:
        self.store = store
        self.retry_of = retry_of
        self.only = only
        self.targets: dict[Location, Any] = {}  # the errors retried (light rows), by location
        self.loaded: set[Location] = set()
        self.failed: dict[Location, int] = {}

    def want(self, redact_path: Callable[[str | None], str | None]) -> Callable[[str | None, int | None], bool]:
        """Load the errors to retry; the filter a stream's batches() applies to record locations."""
        c = self.store.conn()
        try:
            self.targets = {(e.file, e.line): e for e in runlog.retry_targets(c, [self.retry_of or 0], self.only)}
        finally:
            c.close()
        locs = set(self.targets)
        return lambda f, ln: (redact_path(f), ln) in locs  # errors store redacted files

    def resolve(self, c: Conn, run_id: int, now: datetime) -> None:
        for loc, err in self.targets.items():
            runlog.resolve_retried(c, err.id, loaded=loc in self.loaded, failed=loc in self.failed, run_id=run_id,
                                   now=now)
        if self.failed:
            # carry the attempt count forward onto the new errors of this retry run
            for new in runlog.new_errors(c, run_id):
                old = self.targets.get((new.file, new.line))
                if old is not None:
                    runlog.set_attempts(c, new.id, old.attempts + 1)
