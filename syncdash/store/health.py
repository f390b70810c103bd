"""One verdict per source for `status`, the console and the HTTP API: running, paused, failing, overdue,
healthy (or never run). Computed from the store, so every process agrees on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from syncdash.config.models import Config, SourceConfig
from syncdash.store.db import LEASE_SECONDS, Store
from syncdash.store.models import Daemon, Run, SourceState, utcnow

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
        from syncdash.common.schedule import overdue

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


def latest_runs(store: Store) -> dict[str, Run]:
    """Each source's newest real (not dry) run, whatever its status."""
    from sqlalchemy import func
    from sqlmodel import col

    with store.session() as s:
        ids = s.exec(select(func.max(Run.id)).where(Run.dry_run == False).group_by(Run.source)).all()  # noqa: E712
        return {r.source: r for r in s.exec(select(Run).where(col(Run.id).in_([i for i in ids if i])))}


def source_rows(store: Store, config: Config, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per source: health verdict, schedule, next fire, last run and success. `syncdash status --json` prints
    these rows and the HTTP API serves them, so both always say the same thing."""
    from syncdash.store.shapes import iso

    now = now or utcnow()
    latest = latest_runs(store)
    states = store.source_states()
    rows = []
    for src in config.source_list:
        run = latest.get(src.name)
        st = states.get(src.name)
        running = st is not None and st.lock_run_id is not None
        sched = schedule_of(src, st.schedule_override if st else None)
        text, _, overridden = schedule_text(src, st.schedule_override if st else None)
        nxt = sched.next_fire(now.replace(tzinfo=UTC)).replace(tzinfo=None) if sched and src.enabled else None
        rows.append({
            "source": src.name, "kind": src.kind, "table": ", ".join(t for t, _ in src.target_tables()),
            "status": "running" if running else (run.status if run else "never run"),
            "health": verdict(src, st, recent_runs(store, src.name), sched, now),
            "schedule": text, "schedule_override": overridden, "enabled": src.enabled,
            "last_run": run.id if run else None,
            "last_run_status": run.status if run else None,
            "last_run_at": iso(run.started_at) if run else None,
            "last_success_at": iso(st.last_success_at) if st else None,
            "last_success_age_s": round((now - st.last_success_at).total_seconds()) if st and st.last_success_at
            else None,
            "running_run": st.lock_run_id if running and st else None,
            "paused": bool(st.paused) if st else False,
            "next_run": iso(nxt) if nxt and not (st and st.paused) else None,
        })
    return rows


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


def schedule_of(src: SourceConfig, override: str | None) -> Any:
    """The source's effective schedule, or None."""
    from syncdash.common.schedule import parse_schedule

    text, tz, _ = schedule_text(src, override)
    return parse_schedule(text, tz) if text else None
