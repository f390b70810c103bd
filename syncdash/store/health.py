"""One verdict per source for `status`, the console and the HTTP API: running, paused, failing, overdue,
healthy (or never run). Computed from the store, so every process agrees on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from syncdash.store.reader import StoreReader
from syncdash.store.rows import DAEMONS, RUNS, RunStatus, utcnow

if TYPE_CHECKING:  # SQLAlchemy and the models load only for a full Store (see syncdash.store.reader)
    from syncdash.common.schedule import Schedule
    from syncdash.config.models import SourceConfig
    from syncdash.store.db import Store
    from syncdash.store.models import Daemon, Run, SourceState

FAILING_AFTER = 2  # this many finished runs in a row failed
# a cancelled run says nothing about the source's health
VERDICT_STATUSES = (RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED)


def recent_runs(store: Store | StoreReader, source: str, n: int = 10) -> list[Run]:
    if isinstance(store, StoreReader):
        marks = ", ".join("?" * len(VERDICT_STATUSES))
        return store.rows(RUNS, f"WHERE source = ? AND dry_run = ? AND status IN ({marks}) ORDER BY id DESC LIMIT ?",
                          (source, False, *VERDICT_STATUSES, n))
    from sqlmodel import col, select

    from syncdash.store.models import Run

    with store.session() as s:
        return list(s.exec(select(Run).where(Run.source == source, col(Run.dry_run).is_(False),
                                             col(Run.status).in_(VERDICT_STATUSES))
                           .order_by(col(Run.id).desc()).limit(n)))


def verdict(src: SourceConfig, state: SourceState | None, runs: list[Run], schedule: Schedule | None,
            now: datetime | None = None) -> str:
    now = now or utcnow()
    if state is not None and state.lock_run_id is not None and state.lease_until and state.lease_until > now:
        return "running"  # a health verdict, not a run status
    if state is not None and state.paused:
        return "paused"
    if len(runs) >= FAILING_AFTER and all(r.status == RunStatus.FAILED for r in runs[:FAILING_AFTER]):
        return "failing"
    if schedule is not None and src.enabled:
        from syncdash.common.schedule import overdue

        last = state.last_success_at if state else None
        first = runs[-1].started_at if runs else None
        if overdue(schedule, None if last is None else last.replace(tzinfo=UTC), now.replace(tzinfo=UTC),
                   first_seen=None if first is None else first.replace(tzinfo=UTC)):
            return "overdue"
    if runs and runs[0].status == RunStatus.FAILED:
        return "failing"
    if not runs:
        return "never run"
    return "healthy"


# a daemon beats every 1.5 s (service.daemon.HEARTBEAT_SECONDS): one silent this long is gone
DAEMON_STALE_SECONDS = 5.0


def live_daemons(store: Store | StoreReader, now: datetime | None = None) -> list[Daemon]:
    """Daemons (or hosting consoles) whose heartbeat is fresh: when there is one, the console attaches.

    One on this host whose process is gone (SIGKILL) is dropped at once; elsewhere the heartbeat decides."""
    from syncdash.store.owners import owner_alive

    now = now or utcnow()
    since = now - timedelta(seconds=DAEMON_STALE_SECONDS)
    rows: list[Any]
    if isinstance(store, StoreReader):
        rows = store.rows(DAEMONS, "WHERE stopped_at IS NULL AND heartbeat_at > ?", (store.ts(since),))
        return [d for d in rows if owner_alive(d.owner) is not False]
    from sqlmodel import select

    from syncdash.store.models import Daemon

    with store.session() as s:
        rows = list(s.exec(select(Daemon).where(Daemon.stopped_at == None,  # noqa: E711
                                                Daemon.heartbeat_at > since)))
    return [d for d in rows if owner_alive(d.owner) is not False]


def source_host(src: SourceConfig) -> str | None:
    """The host a REST source talks to: its circuit breaker's key."""
    from urllib.parse import urlsplit

    url = getattr(src, "url", None) or getattr(src, "base_url", None)
    return urlsplit(url).netloc if url else None


def schedule_text(src: SourceConfig, override: str | None) -> tuple[str | None, str | None, bool]:
    """(schedule, time zone, whether it is a run-time override): a stored override beats the config."""
    if override:
        data = json.loads(override)
        return data.get("schedule"), data.get("timezone", src.timezone), True
    return src.schedule, src.timezone, False


def schedule_of(src: SourceConfig, override: str | None) -> Schedule | None:
    """The source's effective schedule, or None."""
    text, tz, _ = schedule_text(src, override)
    if not text:
        return None
    from syncdash.common.schedule import parse_schedule  # APScheduler's triggers: only for a scheduled source

    return parse_schedule(text, tz)
