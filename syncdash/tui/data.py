"""What the console shows, read from the store in one go per refresh (in a worker thread, never on the
event loop). Plain dataclasses: the widgets only render them. No textual import here, so these queries are
testable and reusable (the HTTP API of [7/7] needs the same views)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, func, select

from syncdash.config.models import Config, SourceConfig
from syncdash.store import queue
from syncdash.store.db import Store
from syncdash.store.models import Breaker, Change, Daemon, ItemError, Run, RunPhase, SourceState, utcnow

COUNTS = ("inserted", "updated", "unchanged", "deleted", "failed", "skipped")


@dataclass
class PhaseView:
    name: str
    status: str
    done: int
    total: int | None
    unit: str
    detail: str | None
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int]

    def rate(self, now: datetime) -> float | None:
        """Units per second since the phase started (None until there is something to divide)."""
        if self.started_at is None or not self.done:
            return None
        secs = ((self.finished_at or now) - self.started_at).total_seconds()
        return self.done / secs if secs > 0 else None

    def eta(self, now: datetime) -> float | None:
        r = self.rate(now)
        if r is None or self.total is None or self.status != "running":
            return None
        return max(0.0, (self.total - self.done) / r)


@dataclass
class RunView:
    run: Run
    phases: list[PhaseView]

    @property
    def counts(self) -> dict[str, int]:
        return {k: getattr(self.run, k) for k in COUNTS}


@dataclass
class SourceView:
    config: SourceConfig
    state: SourceState | None
    last_run: Run | None
    health: str
    schedule: str | None
    schedule_override: bool
    next_fire: datetime | None
    breaker: Breaker | None
    rows: int | None = None  # live rows in its table(s), counted every few seconds


@dataclass
class Snapshot:
    taken_at: datetime
    sources: list[SourceView]
    active: list[RunView]
    errors: list[ItemError]
    queue_depth: int
    daemons: list[Daemon]
    unresolved: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _phases(s: Any, run_ids: list[int]) -> dict[int, list[PhaseView]]:
    out: dict[int, list[PhaseView]] = {}
    if not run_ids:
        return out
    for ph in s.exec(select(RunPhase).where(col(RunPhase.run_id).in_(run_ids)).order_by(RunPhase.run_id,
                                                                                         RunPhase.seq)):
        out.setdefault(ph.run_id, []).append(PhaseView(
            ph.name, ph.status, ph.done, ph.total, ph.unit, ph.detail, ph.started_at, ph.finished_at,
            {k: getattr(ph, k) for k in COUNTS}))
    return out


_row_counts: dict[tuple[str, str], tuple[datetime, int | None]] = {}
ROW_COUNT_EVERY = 10.0  # seconds: counting a million-row table takes tens of milliseconds


def table_rows(store: Store, config: Config, src: SourceConfig, now: datetime) -> int | None:
    """Live rows in the source's tables (cached; None before the first sync created them)."""
    key = (store.url, src.name)
    cached = _row_counts.get(key)
    if cached is not None and (now - cached[0]).total_seconds() < ROW_COUNT_EVERY:
        return cached[1]
    from syncdash.targets import open as target_db

    total: int | None = None
    try:
        db = target_db.connect(store, target_db.target_url(config, src))
    except Exception:  # a target database that is down: no count, the dashboard still shows the rest
        _row_counts[key] = (now, None)
        return None
    try:
        for table, _ in src.target_tables():
            try:
                n = db.scalar(f"SELECT COUNT(*) FROM {target_db.q(table)} WHERE _deleted_at IS NULL")
            except Exception:
                continue
            total = (total or 0) + int(n or 0)
    finally:
        db.close()
    _row_counts[key] = (now, total)
    return total


def snapshot(store: Store, config: Config, now: datetime | None = None) -> Snapshot:
    """Everything the dashboard shows, in a handful of queries."""
    from syncdash.store.health import live_daemons, recent_runs, schedule_of, schedule_text, source_host, verdict

    now = now or utcnow()
    with store.session() as s:
        states = {st.source: st for st in s.exec(select(SourceState))}
        active_runs = list(s.exec(select(Run).where(col(Run.status).in_(("running", "claimed")))
                                  .order_by(col(Run.id))))
        last: dict[str, Run] = {}
        for r in s.exec(select(Run).where(col(Run.status).notin_(("queued", "claimed"))).order_by(col(Run.id).desc())
                        .limit(2000)):
            last.setdefault(r.source, r)
        phases = _phases(s, [r.id for r in active_runs if r.id is not None])
        errors = list(s.exec(select(ItemError).where(ItemError.resolved_at == None)  # noqa: E711
                             .order_by(col(ItemError.id).desc()).limit(6)))
        unresolved = s.exec(select(func.count()).select_from(ItemError).where(ItemError.resolved_at == None)).one()  # noqa: E711
        breakers = {b.host: b for b in s.exec(select(Breaker))}
    views = []
    for src in config.source_list:
        st = states.get(src.name)
        try:
            sched = schedule_of(src, st.schedule_override if st else None)
        except Exception:
            sched = None
        text, _, override = schedule_text(src, st.schedule_override if st else None)
        nxt = None
        if sched is not None and src.enabled and not (st and st.paused):
            nxt = sched.next_fire(now.replace(tzinfo=UTC)).replace(tzinfo=None)
        host = source_host(src)
        health = verdict(src, st, recent_runs(store, src.name, 3), sched, now)
        views.append(SourceView(src, st, last.get(src.name), health, text, override, nxt,
                                breakers.get(host) if host else None, table_rows(store, config, src, now)))
    return Snapshot(taken_at=now, sources=views,
                    active=[RunView(r, phases.get(r.id or 0, [])) for r in active_runs],
                    errors=errors, queue_depth=queue.depth(store, now), daemons=live_daemons(store, now),
                    unresolved=int(unresolved))


def runs_page(store: Store, *, offset: int = 0, limit: int = 50, source: str | None = None,
              status: str | None = None, trigger: str | None = None, text: str | None = None) -> tuple[list[Run], int]:
    """One page of the history, newest first, and the number of matching runs (never loads them all)."""
    conds: list[Any] = []
    if source:
        conds.append(Run.source == source)
    if status:
        conds.append(Run.status == status)
    if trigger:
        conds.append(Run.trigger == trigger)
    if text:
        like = f"%{text}%"
        conds.append(col(Run.source).like(like) | col(Run.error).like(like) | col(Run.status).like(like))
    with store.session() as s:
        q = select(Run).where(*conds).order_by(col(Run.id).desc()).offset(offset).limit(limit)
        total = s.exec(select(func.count()).select_from(Run).where(*conds)).one()
        return list(s.exec(q)), int(total)


@dataclass
class RunDetail:
    run: Run
    phases: list[PhaseView]
    errors: list[ItemError]
    changes: list[Change]
    change_counts: dict[str, int]
    steps: list[Run] = field(default_factory=list)  # a flow's step runs: their errors and changes are the flow's


def run_detail(store: Store, run_id: int, limit: int = 200) -> RunDetail | None:
    with store.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            return None
        phases = _phases(s, [run_id]).get(run_id, [])
        steps = list(s.exec(select(Run).where(Run.flow_run_id == run_id).order_by(col(Run.id))))
        ids = [run_id, *(r.id for r in steps)]
        errors = list(s.exec(select(ItemError).where(col(ItemError.run_id).in_(ids)).order_by(col(ItemError.id))
                             .limit(limit)))
        changes = list(s.exec(select(Change).where(col(Change.run_id).in_(ids)).order_by(col(Change.id))
                              .limit(limit)))
        counts = {k: n for k, n in s.exec(select(Change.change, func.count()).where(col(Change.run_id).in_(ids))
                                          .group_by(Change.change))}
    return RunDetail(run, phases, errors, changes, counts, steps)


def error_groups(store: Store, limit: int = 500) -> list[ItemError]:
    """Unresolved item errors, grouped by source then type (the order the errors screen shows them in)."""
    with store.session() as s:
        return list(s.exec(select(ItemError).where(ItemError.resolved_at == None)  # noqa: E711
                           .order_by(ItemError.source, ItemError.error_type, col(ItemError.id).desc()).limit(limit)))


def resolve_errors(store: Store, ids: list[int], how: str = "manual") -> int:
    now = utcnow()
    with store.tx() as s:
        n = 0
        for e in s.exec(select(ItemError).where(col(ItemError.id).in_(ids), ItemError.resolved_at == None)):  # noqa: E711
            e.resolved_at, e.resolution = now, how
            s.add(e)
            n += 1
        return n


def recent_runs_of(store: Store, source: str, n: int = 30) -> list[Run]:
    with store.session() as s:
        return list(s.exec(select(Run).where(Run.source == source, col(Run.status).notin_(("queued", "claimed")))
                           .order_by(col(Run.id).desc()).limit(n)))
