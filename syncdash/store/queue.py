"""The run queue: every trigger (schedule, CLI, console, API, retry, resume) becomes a queued run here.

Workers claim the most urgent due run in one short write transaction, so two workers (threads or
daemons) never get the same run; a source never has two runs claimed or running at once. On SQLite
BEGIN IMMEDIATE serialises claims; on PostgreSQL claimers lock candidate rows with FOR UPDATE SKIP LOCKED and
the source's state row, so they pass each other instead of queueing behind one lock.
A schedule fire carries a unique key (source@fire time): however many daemons see it, it is queued once.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from syncdash.common.dialect import Conn, integrity_errors
from syncdash.store import runlog
from syncdash.store.db import LEASE_SECONDS, Store, format_ts, owner_alive
from syncdash.store.rows import PRIORITY, RunStatus, utcnow

if TYPE_CHECKING:
    from syncdash.store.models import Run

ACTIVE = (RunStatus.CLAIMED, RunStatus.RUNNING)


def sql_in(*statuses: RunStatus) -> str:
    """`('claimed', 'running')`: an SQL IN list written from the enum (constant values, never user input)."""
    return "(" + ", ".join(f"'{s.value}'" for s in statuses) + ")"


# the statuses as SQL literals, for the raw statements below
QUEUED, CLAIMED, INTERRUPTED = (f"'{s.value}'" for s in (RunStatus.QUEUED, RunStatus.CLAIMED, RunStatus.INTERRUPTED))
IS_ACTIVE = sql_in(*ACTIVE)


def enqueue(store: Store, source: str, *, trigger: str, kind: str = "", options: dict[str, Any] | None = None,
            not_before: datetime | None = None, fire_key: str | None = None, priority: int | None = None,
            parent_run_id: int | None = None, attempt: int = 1) -> int | None:
    """Queue a run; returns its id, or None when `fire_key` was queued before (by us or another daemon)."""
    opts = {k: v for k, v in (options or {}).items() if v not in (None, False)}
    from syncdash.store.wakeup import notify_local, notify_sql

    try:
        with store.write() as c:
            run_id = runlog.insert_run(
                c, source=source, kind=kind, trigger=trigger, status=RunStatus.QUEUED,
                mode="full" if opts.get("full") else "", dry_run=bool(opts.get("dry_run")),
                priority=PRIORITY.get(trigger, 20) if priority is None else priority,
                not_before=not_before, fire_key=fire_key, attempt=attempt, parent_run_id=parent_run_id,
                options=json.dumps(opts) if opts else None)
            if (notify := notify_sql(store)) is not None:  # delivered at commit: other daemons wake now
                c.execute(notify)
    except integrity_errors():
        if fire_key is None:
            raise
        return None
    notify_local()
    return run_id


def seconds_to_next_due(store: Store, now: datetime | None = None) -> float | None:
    """Seconds until the earliest queued run that is not due yet (a retry's backoff), or None: an idle worker
    sleeps until then instead of polling for it."""
    first = store.scalar(f"SELECT MIN(not_before) FROM syncdash_runs WHERE status = {QUEUED} AND not_before > ?",
                         (format_ts(now or utcnow()),))
    if first is None:
        return None
    when = first if isinstance(first, datetime) else datetime.fromisoformat(str(first))
    return max(0.0, (when - (now or utcnow())).total_seconds())


def claim(store: Store, owner: str, *, run_id: int | None = None, now: datetime | None = None) -> Any:
    """The most urgent due run whose source is idle, marked claimed by `owner` (a light row of
    syncdash.store.rows, read-only); None when nothing is due.

    run_id: claim that run only (the CLI runs the run it just queued, whatever else is waiting).
    """
    now = now or utcnow()
    ts = format_ts(now)
    if run_id is not None:  # a run killed earlier must not block its source forever
        r = store.run_row(run_id)
        if r is not None:
            sweep(store, now, source=r.source)
    where = "r.id = ?" if run_id is not None else "(r.not_before IS NULL OR r.not_before <= ?)"
    params: tuple[Any, ...] = (run_id,) if run_id is not None else (ts,)
    due_sql = (f"SELECT r.id, r.source FROM syncdash_runs r WHERE r.status = {QUEUED} AND " + where
               + " AND NOT EXISTS ("
               f"SELECT 1 FROM syncdash_runs o WHERE o.source = r.source AND o.status IN {IS_ACTIVE}) "
               "AND NOT (r.trigger = 'schedule' AND EXISTS (SELECT 1 FROM syncdash_source_state st "
               "WHERE st.source = r.source AND st.paused)) "
               "ORDER BY r.priority DESC, r.id")
    with store.write() as c:  # BEGIN IMMEDIATE on SQLite: one claimer at a time
        if store.is_sqlite:
            row = c.one(due_sql + " LIMIT 1", params)
            if row is None:
                return None
            got = c.rowcount(
                f"UPDATE syncdash_runs SET status = {CLAIMED}, owner = ?, heartbeat_at = ? "
                f"WHERE id = ? AND status = {QUEUED}", (owner, ts, row[0]))
            if not got:
                return None
            claimed_id = row[0]
        else:
            claimed_id = _claim_on_server(c, due_sql, params, owner, ts)
            if claimed_id is None:
                return None
    return store.run_row(claimed_id)


def _claim_on_server(c: Conn, due_sql: str, params: tuple[Any, ...], owner: str, ts: str) -> int | None:
    """Several daemons claim at once on a server: candidates are locked with SKIP LOCKED (another claimer's
    candidates are passed over, not waited for), then the source's state row is locked too, so two claimers of
    different runs of one source cannot both see it idle; the idle check is repeated under that lock."""
    for rid, source in c.all(due_sql + " LIMIT 20 FOR UPDATE OF r SKIP LOCKED", params):
        c.execute("INSERT INTO syncdash_source_state (source, paused) VALUES (?, FALSE) "
                  "ON CONFLICT (source) DO NOTHING", (source,))
        if c.one("SELECT 1 FROM syncdash_source_state WHERE source = ? FOR UPDATE SKIP LOCKED",
                 (source,)) is None:
            continue  # another claimer holds this source right now
        busy = c.one(f"SELECT 1 FROM syncdash_runs WHERE source = ? AND status IN {IS_ACTIVE} LIMIT 1",
                     (source,))
        if busy is not None:
            continue
        got = c.rowcount(f"UPDATE syncdash_runs SET status = {CLAIMED}, owner = ?, heartbeat_at = ? "
                         f"WHERE id = ? AND status = {QUEUED}", (owner, ts, rid))
        if got:
            return int(rid)
    return None


def unclaim(store: Store, run_id: int, delay: float = 5.0) -> None:
    """Put a claimed run back (its source turned out to be busy elsewhere): it is tried again later."""
    with store.write() as c:
        c.execute(f"UPDATE syncdash_runs SET status = {QUEUED}, owner = NULL, not_before = ? "
                  f"WHERE id = ? AND status = {CLAIMED}",
                  (format_ts(utcnow() + timedelta(seconds=delay)), run_id))


def drop(store: Store, run_id: int) -> None:
    """Remove a queued or claimed run that never started (e.g. the CLI found its source already running)."""
    with store.write() as c:
        c.execute("DELETE FROM syncdash_runs WHERE id = ? AND status IN "
                  + sql_in(RunStatus.QUEUED, RunStatus.CLAIMED), (run_id,))


def depth(store: Store, now: datetime | None = None) -> int:
    """Queued runs that are due now (the footer's and the metrics' queue depth)."""
    n = store.scalar(f"SELECT COUNT(*) FROM syncdash_runs WHERE status = {QUEUED} AND "
                     "(not_before IS NULL OR not_before <= ?)", (format_ts(now or utcnow()),))
    return int(n or 0)


def run_options(run: Run) -> dict[str, Any]:
    return json.loads(run.options) if run.options else {}


def sweep(store: Store, now: datetime | None = None, source: str | None = None) -> list[int]:
    """Runs whose worker died: a started one becomes interrupted (resume_interrupted queues its resume), a
    claimed one that never started goes back to the queue. Returns the ids of runs found dead."""
    now = now or utcnow()
    stale = now - timedelta(seconds=LEASE_SECONDS)
    dead: list[tuple[int, str, str, str]] = []
    with store.write() as c:
        for rid, src_name, kind, status, owner, beat in c.all(
                "SELECT id, source, kind, status, owner, heartbeat_at FROM syncdash_runs "
                f"WHERE status IN {IS_ACTIVE}" + (" AND source = ?" if source else ""),
                (source,) if source else ()):
            alive = owner_alive(owner)
            beat_dt = datetime.fromisoformat(str(beat)) if beat is not None else None
            if alive is False or (alive is None and (beat_dt is None or beat_dt < stale)):
                dead.append((rid, src_name, kind, status))
        for rid, name, _kind, status in dead:
            if status == RunStatus.CLAIMED:
                c.execute(f"UPDATE syncdash_runs SET status = {QUEUED}, owner = NULL WHERE id = ?", (rid,))
            else:
                c.execute(f"UPDATE syncdash_runs SET status = {INTERRUPTED} WHERE id = ?", (rid,))
                c.execute("UPDATE syncdash_source_state SET lock_run_id = NULL, lock_owner = NULL, "
                                  "lease_until = NULL WHERE source = ? AND lock_run_id = ?", (name, rid))
    return [d[0] for d in dead]


def resume_interrupted(store: Store) -> list[int]:
    """Queue a resume for every source whose latest run is interrupted and that has nothing queued or running.

    The daemon calls this after each sweep; the CLI does not (its own run resumes the interrupted one).
    """
    with store.write() as c:
        rows = c.all(
            f"SELECT r.source, r.kind FROM syncdash_runs r WHERE r.status = {INTERRUPTED} AND NOT r.dry_run "
            "AND r.id = (SELECT MAX(l.id) FROM syncdash_runs l WHERE l.source = r.source AND NOT l.dry_run "
            f"AND l.status NOT IN {sql_in(RunStatus.QUEUED, RunStatus.CLAIMED)}) "
            "AND NOT EXISTS (SELECT 1 FROM syncdash_runs o WHERE o.source = r.source "
            f"AND o.status IN {sql_in(RunStatus.QUEUED, *ACTIVE)})")
    return [rid for source, kind in rows if (rid := enqueue(store, source, trigger="resume", kind=kind))]
