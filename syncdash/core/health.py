"""One verdict per source for `status`, the console and the HTTP API: running, paused, failing, overdue,
healthy (or never run). Computed from the store, so every process agrees on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from syncdash.config.models import SourceConfig
from syncdash.core.models import Daemon, Run, SourceState, utcnow
from syncdash.core.store import LEASE_SECONDS, Store

FAILING_AFTER = 2  # this many finished runs in a row failed


def recent_runs(store: Store, source: str, n: int = 10) -> list[Run]:
    with store.session() as s:
        return list(s.exec(select(Run).where(Run.source == source, Run.dry_run == False,  # noqa: E712
                                             Run.status.in_(("succeeded", "partial", "failed")))  # type: ignore[attr-defined]
                           .order_by(Run.id.desc()).limit(n)))  # type: ignore[union-attr]


def verdict(src: SourceConfig, state: SourceState | None, runs: list[Run], schedule: Any,
            now: datetime | None = None) -> str:
    now = now or utcnow()
    if state is not None and state.lock_run_id is not None and state.lease_until and state.lease_until > now:
        return "running"
    if state is not None and state.paused:
        return "paused"
    if len(runs) >= FAILING_AFTER and all(r.status == "failed" for r in runs[:FAILING_AFTER]):
        return "failing"
    if schedule is not None and src.enabled:
        from syncdash.core.schedule import overdue

        last = state.last_success_at if state else None
        first = runs[-1].started_at if runs else None
        if overdue(schedule, None if last is None else last.replace(tzinfo=UTC), now.replace(tzinfo=UTC),
                   first_seen=None if first is None else first.replace(tzinfo=UTC)):
            return "overdue"
    if runs and runs[0].status == "failed":
        return "failing"
    if not runs:
        return "never run"
    return "healthy"


def live_daemons(store: Store, now: datetime | None = None) -> list[Daemon]:
    """Daemons (or hosting consoles) whose heartbeat is fresh: when there is one, the console attaches."""
    now = now or utcnow()
    with store.session() as s:
        return list(s.exec(select(Daemon).where(Daemon.stopped_at == None,  # noqa: E711
                                                Daemon.heartbeat_at > now - timedelta(seconds=LEASE_SECONDS / 2))))
