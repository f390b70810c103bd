"""The one read model: every question the CLI, the console and the HTTP API ask the store about runs, errors
and sources, answered by one function each.

The front ends only format what these return; they never query the tables themselves. That is what keeps
`syncdash show RUN --json`, `GET /v1/runs/{id}` and the console's run detail identical (`run_detail` plus
`run_detail_json`), and `status`, the console and the API in agreement on a source's last run and health
(`source_statuses`): a dry run is never a source's last run, it changes nothing.

The questions the read-only commands ask (runs, errors, a run's detail, the sources' statuses) take either a
`Store` (SQLAlchemy ORM) or a `StoreReader` (an SQLite store read through the DB-API, so `syncdash status`
starts without importing SQLAlchemy): each such function holds both forms of its one query side by side, and
tests/e2e/test_cli_start.py holds their answers equal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

from syncdash.store.health import recent_runs, schedule_of, schedule_text, verdict
from syncdash.store.reader import StoreReader
from syncdash.store.rows import CHANGES, COUNTS, ITEM_ERRORS, RUN_PHASES, RUNS, PhaseStatus, RunStatus, utcnow

if TYPE_CHECKING:  # SQLAlchemy, SQLModel and the models load only where a full Store is asked (see reader.py)
    from sqlmodel import Session

    from syncdash.config.models import Config, SourceConfig
    from syncdash.store.db import Store
    from syncdash.store.models import ItemError, Run, RunPhase, SourceState

AnyStore = Union["Store", StoreReader]  # every question below is answered from either (see syncdash.store.reader)

Json = dict[str, Any]  # a JSON object: values are whatever JSON holds
CHANGE_KINDS = ("insert", "update", "delete")
DETAIL_CHANGES = 20  # changes listed per kind in a run's detail (`show --changes N` lists more)
DETAIL_ERRORS = 20  # item errors listed in a run's detail (the rest: `syncdash errors RUN`, GET /v1/errors)
HEALTH_RUNS = 10  # finished runs the health verdict looks back on
NOT_STARTED = (RunStatus.QUEUED, RunStatus.CLAIMED)
ACTIVE = (RunStatus.CLAIMED, RunStatus.RUNNING)

T = TypeVar("T")


# ---- the JSON shapes of single rows (documented in the README; keys are only ever added) ------------------

def iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="seconds") + "Z"


def counts_of(row: Run | RunPhase) -> dict[str, int]:
    return {k: int(getattr(row, k)) for k in COUNTS}


def run_json(run: Run) -> Json:
    """The stable --json shape of a run."""
    return {
        "id": run.id, "source": run.source, "kind": run.kind, "trigger": run.trigger, "mode": run.mode,
        "dry_run": run.dry_run, "status": run.status, "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_s": None if run.started_at is None or run.finished_at is None
        else round((run.finished_at - run.started_at).total_seconds(), 3),
        "counts": counts_of(run),
        "resumes": run.resumes, "parent_run_id": run.parent_run_id, "error": run.error,
        "error_type": run.error_type, "warnings": json.loads(run.warnings) if run.warnings else [],
        "http": json.loads(run.http) if run.http else None,
    }


def error_json(e: ItemError) -> Json:
    """The stable --json shape of an item error. One open error stands for every run that hit the same item:
    `occurrences` counts them, `first_seen_at`/`last_seen_at` and `run_id`/`last_run_id` bracket them, and
    `seen` says it in words; a payload cut to 64 KB (`payload_truncated`) is its first part as a string."""
    return {
        "id": e.id, "run_id": e.run_id, "source": e.source, "phase": e.phase, "item": e.item,
        "key": json.loads(e.item_key) if e.item_key else None, "file": e.file, "line": e.line,
        "column": e.column, "error_type": e.error_type, "message": e.message, "retryable": e.retryable,
        "attempts": e.attempts, "payload": json.loads(e.payload) if e.payload else None,
        "resolved_at": iso(e.resolved_at), "resolution": e.resolution,
        "occurrences": e.occurrences, "first_seen_at": iso(e.created_at), "last_seen_at": iso(last_seen(e)),
        "last_run_id": e.last_run_id or e.run_id, "seen": seen_text(e),
        "payload_truncated": bool(e.payload_truncated),
    }


def last_seen(e: ItemError) -> datetime:
    return e.last_seen_at or e.created_at


def seen_text(e: ItemError) -> str:
    """"seen 5 times, first 2026-03-01 10:00:00Z, last 2026-03-01 10:04:00Z" (or "seen once, …"): the one
    wording the console, `syncdash errors` and the API share."""
    first = e.created_at.isoformat(sep=" ", timespec="seconds") + "Z"
    n = e.occurrences or 1
    if n <= 1:
        return f"seen once, {first}"
    last = last_seen(e).isoformat(sep=" ", timespec="seconds") + "Z"
    return f"seen {n} times, first {first}, last {last}"


def in_runs(run_ids: Sequence[int]) -> Any:
    """The errors these runs hit: those they added and those they found again (an open error a later run hits
    is updated in place, so it belongs to the run that added it and to the last run that saw it)."""
    from sqlmodel import col

    from syncdash.store.models import ItemError

    ids = list(run_ids)
    return col(ItemError.run_id).in_(ids) | col(ItemError.last_run_id).in_(ids)


def in_runs_sql(run_ids: Sequence[int]) -> tuple[str, list[Any]]:
    """`in_runs` as SQL text and its parameters, for the DB-API read path."""
    marks = _marks(run_ids)
    return f"(run_id IN ({marks}) OR last_run_id IN ({marks}))", [*run_ids, *run_ids]


def _marks(values: Sequence[Any]) -> str:
    """`?, ?, ?`: one placeholder per value of an IN list."""
    return ", ".join("?" * len(values))


# ---- one run's detail ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PhaseRow:
    """A phase of a run with its own share of the run's counts."""

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
        if r is None or self.total is None or self.status != PhaseStatus.RUNNING:
            return None
        return max(0.0, (self.total - self.done) / r)

    def json(self) -> Json:
        return {"name": self.name, "status": self.status, "done": self.done, "total": self.total, "unit": self.unit,
                "detail": self.detail, "counts": dict(self.counts), "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at)}


@dataclass(frozen=True)
class ChangeRow:
    """A recorded change: the key, and the changed fields' old and new values (a row for inserts/deletes)."""

    id: int
    change: str  # insert | update | delete
    key: list[Any]
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def json(self) -> Json:
        return {"key": self.key, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class ErrorSummary:
    """A run's item errors (a flow's are its steps'): how many, how many still open, per type, the first few."""

    total: int
    unresolved: int
    by_type: dict[str, int]
    first: list[ItemError]

    def json(self) -> Json:
        return {"total": self.total, "unresolved": self.unresolved, "by_type": dict(self.by_type),
                "first": [error_json(e) for e in self.first]}


@dataclass(frozen=True)
class RerunHint:
    """What the command that repeats a run depends on; the command text needs the config (`rerun_command`)."""

    source: str
    mode: str
    dry_run: bool
    retry_of: int | None  # a retry run repeats as `syncdash retry PARENT`

    def command(self, config: Config | None, *, with_config_file: bool = True) -> str:
        config_opt = f" --config {config.file}" if with_config_file and config is not None and config.file else ""
        if self.retry_of is not None:
            return f"syncdash{config_opt} retry {self.retry_of}"
        # --full only changes anything for an incremental source; a full source runs full anyway
        src = config.source(self.source) if config is not None else None
        full = self.mode == "full" and src is not None and src.mode == "incremental"
        return f"syncdash{config_opt} run {self.source}" + (" --full" if full else "") + (
            " --dry-run" if self.dry_run else "")


@dataclass(frozen=True)
class RunDetail:
    """Everything known about one run, as `show`, GET /v1/runs/{id} and the console's run detail present it."""

    run: Run
    phases: list[PhaseRow]
    checkpoint: Any  # the parsed JSON checkpoint (its shape is the source kind's), or None
    errors: ErrorSummary
    changes: dict[str, list[ChangeRow]]  # per kind, the first `changes_limit` recorded
    change_counts: dict[str, int]  # per kind, how many were recorded
    steps: list[Run] = field(default_factory=list)  # a flow's step runs: their errors and changes are the flow's

    @property
    def rerun(self) -> RerunHint:
        r = self.run
        return RerunHint(r.source, r.mode, r.dry_run, r.parent_run_id if r.mode == "retry" else None)

    @property
    def warnings(self) -> list[str]:
        return list(json.loads(self.run.warnings)) if self.run.warnings else []

    def changes_in_order(self) -> list[ChangeRow]:
        """The listed changes of every kind in the order they were recorded."""
        return sorted((c for rows in self.changes.values() for c in rows), key=lambda c: c.id)


def phases_of(s: Session | StoreReader, run_ids: Sequence[int]) -> dict[int, list[PhaseRow]]:
    out: dict[int, list[PhaseRow]] = {}
    if not run_ids:
        return out
    found: Any
    if isinstance(s, StoreReader):
        found = s.rows(RUN_PHASES, f"WHERE run_id IN ({_marks(run_ids)}) ORDER BY run_id, seq", run_ids)
    else:
        from sqlmodel import col, select

        from syncdash.store.models import RunPhase

        found = s.exec(select(RunPhase).where(col(RunPhase.run_id).in_(run_ids))
                       .order_by(col(RunPhase.run_id), col(RunPhase.seq)))
    for ph in found:
        out.setdefault(ph.run_id, []).append(PhaseRow(
            ph.name, ph.status, ph.done, ph.total, ph.unit, ph.detail, ph.started_at, ph.finished_at, counts_of(ph)))
    return out


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def run_detail(store: AnyStore, run_id: int, *, changes_limit: int = DETAIL_CHANGES,
               errors_limit: int = DETAIL_ERRORS) -> RunDetail | None:
    """One run with its phases, checkpoint, errors and changes (a flow run's include its steps'), or None."""
    if isinstance(store, StoreReader):
        return _run_detail_sql(store, run_id, changes_limit, errors_limit)
    from sqlalchemy import func
    from sqlmodel import col, select

    from syncdash.store.models import Change, ItemError, Run

    with store.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            return None
        steps = list(s.exec(select(Run).where(Run.flow_run_id == run_id).order_by(col(Run.id))))
        ids = [run_id, *(st.id for st in steps if st.id is not None)]
        in_run = in_runs(ids)
        by_type = {str(t): int(n) for t, n in s.exec(select(ItemError.error_type, func.count()).where(in_run)
                                                        .group_by(col(ItemError.error_type)))}
        unresolved = s.exec(select(func.count()).select_from(ItemError).where(
            in_run, col(ItemError.resolved_at).is_(None))).one()
        first = list(s.exec(select(ItemError).where(in_run).order_by(col(ItemError.id)).limit(errors_limit)))
        recorded = {str(k): int(n) for k, n in s.exec(select(Change.change, func.count())
                                                       .where(col(Change.run_id).in_(ids)).group_by(col(Change.change)))}
        changes = {kind: [ChangeRow(c.id or 0, c.change, json.loads(c.key), _loads(c.before), _loads(c.after))
                          for c in s.exec(select(Change).where(col(Change.run_id).in_(ids), Change.change == kind)
                                          .order_by(col(Change.id)).limit(changes_limit))]
                   for kind in CHANGE_KINDS}
        phases = phases_of(s, [run_id]).get(run_id, [])
    return RunDetail(run, phases, _loads(run.checkpoint),
                     ErrorSummary(sum(by_type.values()), int(unresolved), by_type, first), changes,
                     {kind: recorded.get(kind, 0) for kind in CHANGE_KINDS}, steps)


def _run_detail_sql(r: StoreReader, run_id: int, changes_limit: int, errors_limit: int) -> RunDetail | None:
    """run_detail's queries, statement for statement, as SQL text on the DB-API."""
    run = r.get_run(run_id)
    if run is None:
        return None
    steps = r.rows(RUNS, "WHERE flow_run_id = ? ORDER BY id", (run_id,))
    ids = [run_id, *(st.id for st in steps if st.id is not None)]
    in_run, params = in_runs_sql(ids)
    by_type = {str(t): int(n) for t, n in r.all(
        f"SELECT error_type, count(*) FROM {ITEM_ERRORS.name} WHERE {in_run} GROUP BY error_type", params)}
    unresolved = r.scalar(f"SELECT count(*) FROM {ITEM_ERRORS.name} WHERE {in_run} AND resolved_at IS NULL", params)
    first = r.rows(ITEM_ERRORS, f"WHERE {in_run} ORDER BY id LIMIT ?", (*params, errors_limit))
    recorded = {str(k): int(n) for k, n in r.all(
        f"SELECT change, count(*) FROM {CHANGES.name} WHERE run_id IN ({_marks(ids)}) GROUP BY change", ids)}
    changes = {kind: [ChangeRow(c.id or 0, c.change, json.loads(c.key), _loads(c.before), _loads(c.after))
                      for c in r.rows(CHANGES, f"WHERE run_id IN ({_marks(ids)}) AND change = ? ORDER BY id LIMIT ?",
                                      (*ids, kind, changes_limit))]
               for kind in CHANGE_KINDS}
    phases = phases_of(r, [run_id]).get(run_id, [])
    return RunDetail(run, phases, _loads(run.checkpoint),
                     ErrorSummary(sum(by_type.values()), int(unresolved), by_type, first), changes,
                     {kind: recorded.get(kind, 0) for kind in CHANGE_KINDS}, steps)


def run_detail_json(detail: RunDetail, config: Config | None) -> Json:
    """The one JSON shape of a run's detail: `show RUN --json` prints it and GET /v1/runs/{id} serves it.

    `errors` is the summary ({total, unresolved, by_type, first}) and `changes` the recorded count per kind, as
    the API has always served them; `change_rows` lists the first recorded changes of each kind (key,
    before, after); `error_count` and `changes_recorded` repeat the totals under the names `show` used."""
    r = detail.run
    return {
        **run_json(r),
        "queued_at": iso(r.queued_at), "attempt": r.attempt, "flow_run_id": r.flow_run_id,
        "phases": [p.json() for p in detail.phases],
        "checkpoint": detail.checkpoint,
        "errors": detail.errors.json(),
        "error_count": detail.errors.total,
        "changes": dict(detail.change_counts),
        "changes_recorded": dict(detail.change_counts),
        "change_rows": {kind: [c.json() for c in rows] for kind, rows in detail.changes.items()},
        "steps": [run_json(st) for st in detail.steps],
        "rerun": detail.rerun.command(config),
    }


# ---- lists: runs and errors ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page(Generic[T]):
    """Newest first. `next_cursor` (the last id shown) fetches the next page: ids only grow, so a page never
    shifts when new rows arrive. `total` is counted only when asked for."""

    items: list[T]
    next_cursor: str | None = None
    total: int | None = None


@dataclass(frozen=True)
class RunFilter:
    source: str | None = None
    status: str | None = None
    trigger: str | None = None
    text: str | None = None  # in the source name, status or error
    started_only: bool = False  # leave out queued and claimed runs

    def conditions(self) -> list[Any]:
        from sqlmodel import col

        from syncdash.store.models import Run

        conds: list[Any] = []
        if self.source:
            conds.append(Run.source == self.source)
        if self.status:
            conds.append(Run.status == self.status)
        if self.trigger:
            conds.append(Run.trigger == self.trigger)
        if self.text:
            like = f"%{self.text}%"
            conds.append(col(Run.source).like(like) | col(Run.error).like(like) | col(Run.status).like(like))
        if self.started_only:
            conds.append(col(Run.status).notin_(NOT_STARTED))
        return conds

    def sql(self) -> tuple[list[str], list[Any]]:
        """`conditions` as SQL text and parameters (the DB-API read path): keep the two in step."""
        conds: list[str] = []
        params: list[Any] = []
        if self.source:
            conds.append("source = ?")
            params.append(self.source)
        if self.status:
            conds.append("status = ?")
            params.append(self.status)
        if self.trigger:
            conds.append("trigger = ?")
            params.append(self.trigger)
        if self.text:
            conds.append("(source LIKE ? OR error LIKE ? OR status LIKE ?)")
            params += [f"%{self.text}%"] * 3
        if self.started_only:
            conds.append(f"status NOT IN ({_marks(NOT_STARTED)})")
            params += NOT_STARTED
        return conds, params


def _where(conds: Sequence[str]) -> str:
    return f"WHERE {' AND '.join(conds)}" if conds else ""


def runs_page(store: AnyStore, where: RunFilter | None = None, *, limit: int = 50, cursor: int | None = None,
              offset: int = 0, with_total: bool = False) -> Page[Run]:
    """One page of the run history, newest first (never loads them all)."""
    items: list[Any]
    total: int | None
    if isinstance(store, StoreReader):
        text, params = (where or RunFilter()).sql()
        if cursor is not None:
            text.append("id < ?")
            params.append(cursor)
        items = store.rows(RUNS, f"{_where(text)} ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit + 1, offset))
        total = int(store.scalar(f"SELECT count(*) FROM {RUNS.name} {_where(text)}", params)) if with_total else None
        more = len(items) > limit
        items = items[:limit]
        return Page(items, str(items[-1].id) if more and items else None, total)
    from sqlalchemy import func
    from sqlmodel import col, select

    from syncdash.store.models import Run

    conds = (where or RunFilter()).conditions()
    if cursor is not None:
        conds.append(col(Run.id) < cursor)
    with store.session() as s:
        items = list(s.exec(select(Run).where(*conds).order_by(col(Run.id).desc()).offset(offset).limit(limit + 1)))
        total = int(s.exec(select(func.count()).select_from(Run).where(*conds)).one()) if with_total else None
    more = len(items) > limit
    items = items[:limit]
    return Page(items, str(items[-1].id) if more and items else None, total)


@dataclass(frozen=True)
class ErrorFilter:
    source: str | None = None
    error_type: str | None = None
    resolved: bool | None = None  # None: both
    run_id: int | None = None  # a run's errors; a flow run's are its steps'


def errors_page(store: AnyStore, where: ErrorFilter | None = None, *, limit: int = 50, cursor: int | None = None,
                newest_first: bool = True) -> Page[ItemError]:
    """One page of item errors. `cursor` pages in the direction of `newest_first`."""
    f = where or ErrorFilter()
    if isinstance(store, StoreReader):
        return _errors_page_sql(store, f, limit, cursor, newest_first)
    from sqlmodel import col, select

    from syncdash.store.models import ItemError, Run

    conds: list[Any] = []
    with store.session() as s:
        if f.run_id is not None:
            steps = s.exec(select(Run.id).where(Run.flow_run_id == f.run_id)).all()
            conds.append(in_runs([f.run_id, *steps]))
        if f.source:
            conds.append(ItemError.source == f.source)
        if f.error_type:
            conds.append(ItemError.error_type == f.error_type)
        if f.resolved is not None:
            resolved = col(ItemError.resolved_at)
            conds.append(resolved.is_not(None) if f.resolved else resolved.is_(None))
        if cursor is not None:
            conds.append(col(ItemError.id) < cursor if newest_first else col(ItemError.id) > cursor)
        order = col(ItemError.id).desc() if newest_first else col(ItemError.id)
        items = list(s.exec(select(ItemError).where(*conds).order_by(order).limit(limit + 1)))
    more = len(items) > limit
    items = items[:limit]
    return Page(items, str(items[-1].id) if more and items else None)


def _errors_page_sql(r: StoreReader, f: ErrorFilter, limit: int, cursor: int | None,
                     newest_first: bool) -> Page[ItemError]:
    """errors_page's query as SQL text on the DB-API."""
    conds: list[str] = []
    params: list[Any] = []
    if f.run_id is not None:
        steps = [i for (i,) in r.all(f"SELECT id FROM {RUNS.name} WHERE flow_run_id = ?", (f.run_id,))]
        text, p = in_runs_sql([f.run_id, *steps])
        conds.append(text)
        params += p
    if f.source:
        conds.append("source = ?")
        params.append(f.source)
    if f.error_type:
        conds.append("error_type = ?")
        params.append(f.error_type)
    if f.resolved is not None:
        conds.append("resolved_at IS NOT NULL" if f.resolved else "resolved_at IS NULL")
    if cursor is not None:
        conds.append("id < ?" if newest_first else "id > ?")
        params.append(cursor)
    order = "id DESC" if newest_first else "id"
    items = r.rows(ITEM_ERRORS, f"{_where(conds)} ORDER BY {order} LIMIT ?", (*params, limit + 1))
    more = len(items) > limit
    items = items[:limit]
    return Page(items, str(items[-1].id) if more and items else None)


def unresolved_errors(store: Store, limit: int = 500) -> list[ItemError]:
    """Unresolved item errors grouped by source then type, newest first within a group."""
    from sqlmodel import col, select

    from syncdash.store.models import ItemError

    with store.session() as s:
        return list(s.exec(select(ItemError).where(col(ItemError.resolved_at).is_(None))
                           .order_by(col(ItemError.source), col(ItemError.error_type), col(ItemError.id).desc())
                           .limit(limit)))


def unresolved_count(store: Store) -> int:
    from sqlalchemy import func
    from sqlmodel import col, select

    from syncdash.store.models import ItemError

    with store.session() as s:
        return int(s.exec(select(func.count()).select_from(ItemError)
                          .where(col(ItemError.resolved_at).is_(None))).one())


def retryable_open_errors(store: Store, run_ids: Sequence[int], error_ids: Sequence[int] | None = None) -> int:
    """How many unresolved, retryable item errors these runs have (only `error_ids` of them, when given)."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from syncdash.store.models import ItemError

    with store.session() as s:
        qy = select(func.count()).select_from(ItemError).where(
            in_runs(run_ids), col(ItemError.resolved_at).is_(None),
            col(ItemError.retryable).is_(True))
        if error_ids:
            qy = qy.where(col(ItemError.id).in_(error_ids))
        return int(s.exec(qy).one())


def retry_outcome(store: Store, run_ids: Sequence[int]) -> dict[str, int]:
    """The retryable item errors of these runs per resolution (`unresolved` for those still open)."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from syncdash.store.models import ItemError, Run

    with store.session() as s:
        # an error failing again in a retry run stays open and moves on to it (last_run_id): count those too
        retries = s.exec(select(Run.id).where(col(Run.parent_run_id).in_(list(run_ids)), Run.mode == "retry")).all()
        rows = s.exec(select(ItemError.resolution, func.count()).where(
            in_runs([*run_ids, *(r for r in retries if r is not None)]), col(ItemError.retryable).is_(True))
            .group_by(col(ItemError.resolution))).all()
    return {str(k or "unresolved"): int(v) for k, v in rows}


def flow_steps(store: Store, run_id: int) -> list[Run]:
    from sqlmodel import col, select

    from syncdash.store.models import Run

    with store.session() as s:
        return list(s.exec(select(Run).where(Run.flow_run_id == run_id).order_by(col(Run.id))))


@dataclass(frozen=True)
class ActiveRun:
    """A claimed or running run and its phases (the dashboard's run cards)."""

    run: Run
    phases: list[PhaseRow]

    @property
    def counts(self) -> dict[str, int]:
        return counts_of(self.run)


def active_runs(store: Store) -> list[ActiveRun]:
    from sqlmodel import col, select

    from syncdash.store.models import Run

    with store.session() as s:
        runs = list(s.exec(select(Run).where(col(Run.status).in_(ACTIVE)).order_by(col(Run.id))))
        phases = phases_of(s, [r.id for r in runs if r.id is not None])
    return [ActiveRun(r, phases.get(r.id or 0, [])) for r in runs]


def running_run(store: Store, source: str) -> Run | None:
    """The source's oldest claimed or running run."""
    from sqlmodel import col, select

    from syncdash.store.models import Run

    with store.session() as s:
        return s.exec(select(Run).where(Run.source == source, col(Run.status).in_(ACTIVE))
                      .order_by(col(Run.id))).first()


# ---- sources: last run and health ---------------------------------------------------------------------------

def latest_runs(store: AnyStore) -> dict[str, Run]:
    """Each source's last run: its newest real run that has started (running or finished). A dry run is never
    a last run (it changes nothing), nor is one still waiting in the queue."""
    if isinstance(store, StoreReader):
        last = [i for (i,) in store.all(f"SELECT max(id) FROM {RUNS.name} WHERE dry_run = ? AND status NOT IN "
                                        f"({_marks(NOT_STARTED)}) GROUP BY source", (False, *NOT_STARTED)) if i]
        return {r.source: r for r in store.rows(RUNS, f"WHERE id IN ({_marks(last)})", last)} if last else {}
    from sqlalchemy import func
    from sqlmodel import col, select

    from syncdash.store.models import Run

    with store.session() as s:
        ids = s.exec(select(func.max(Run.id)).where(col(Run.dry_run).is_(False), col(Run.status).notin_(NOT_STARTED))
                     .group_by(col(Run.source))).all()
        return {r.source: r for r in s.exec(select(Run).where(col(Run.id).in_([i for i in ids if i])))}


@dataclass(frozen=True)
class SourceStatus:
    """One source as `status`, the console's dashboard and GET /v1/sources show it."""

    config: SourceConfig
    state: SourceState | None
    last_run: Run | None
    health: str  # running | paused | failing | overdue | healthy | never run
    schedule: str | None
    timezone: str | None
    schedule_override: bool
    next_fire: datetime | None  # None when paused, disabled or unscheduled
    running_run: int | None

    @property
    def status(self) -> str:
        if self.running_run is not None:
            return RunStatus.RUNNING
        return self.last_run.status if self.last_run is not None else "never run"

    def json(self, now: datetime) -> Json:
        """The row `status --json` prints and the API's source state is built from."""
        st, run = self.state, self.last_run
        return {
            "source": self.config.name, "kind": self.config.kind,
            "table": ", ".join(t for t, _ in self.config.target_tables()),
            "status": self.status, "health": self.health,
            "schedule": self.schedule, "schedule_override": self.schedule_override, "enabled": self.config.enabled,
            "last_run": run.id if run else None,
            "last_run_status": run.status if run else None,
            "last_run_at": iso(run.started_at) if run else None,
            "last_success_at": iso(st.last_success_at) if st else None,
            "last_success_age_s": round((now - st.last_success_at).total_seconds()) if st and st.last_success_at
            else None,
            "running_run": self.running_run,
            "paused": bool(st.paused) if st else False,
            "next_run": iso(self.next_fire),
        }


def source_statuses(store: AnyStore, config: Config, now: datetime | None = None) -> list[SourceStatus]:
    """Per configured source, in config order: last run, health verdict, schedule and next fire."""
    now = now or utcnow()
    latest = latest_runs(store)
    states = store.source_states()
    out = []
    for src in config.source_list:
        st = states.get(src.name)
        override = st.schedule_override if st else None
        try:
            sched = schedule_of(src, override)
        except Exception:  # a stored override the parser no longer accepts: shown, never fired
            sched = None
        text, tz, overridden = schedule_text(src, override)
        nxt = None
        if sched is not None and src.enabled and not (st and st.paused):
            nxt = sched.next_fire(now.replace(tzinfo=UTC)).replace(tzinfo=None)
        out.append(SourceStatus(
            src, st, latest.get(src.name), verdict(src, st, recent_runs(store, src.name, HEALTH_RUNS), sched, now),
            text, tz, overridden, nxt, st.lock_run_id if st is not None else None))
    return out


def source_rows(store: AnyStore, config: Config, now: datetime | None = None) -> list[Json]:
    """`status --json`: one row per source."""
    now = now or utcnow()
    return [s.json(now) for s in source_statuses(store, config, now)]


# ---- row history (the console's row provenance) --------------------------------------------------------------

@dataclass(frozen=True)
class RowEvent:
    """One recorded change of one row: the run that made it and, for an update, each field before and after."""

    change: str  # insert | update | delete
    run: Run
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def row_history(store: Store, source: str, key: Sequence[Any], limit: int = 200) -> list[RowEvent]:
    """The runs that inserted, updated or deleted the row with this primary key, oldest first.

    Read from syncdash_changes, so it holds what retention (`changes:`) kept and what each run's
    `max_changes` recorded; keys are matched in the engine's JSON form (store.db.dumps of the key list)."""
    from sqlmodel import Session, col, select

    from syncdash.store.db import dumps
    from syncdash.store.models import Change, Run

    with Session(store.engine) as s:
        found = s.exec(select(Change, Run).join(Run, col(Run.id) == col(Change.run_id))
                       .where(Change.source == source, Change.key == dumps(list(key)))
                       .order_by(col(Change.id)).limit(limit)).all()
        return [RowEvent(c.change, r, _loads(c.before), _loads(c.after)) for c, r in found]


@dataclass(frozen=True)
class RowItem:
    """A source item the store links to one row's key: today only a record that failed (item errors keep
    `file:line`, `page N item M` or the URL with the key); successful writes record no source item."""

    run_id: int
    item: str
    error_type: str
    seen_at: datetime | None


def row_source_items(store: Store, source: str, key: Sequence[Any], limit: int = 5) -> list[RowItem]:
    """The source items recorded for the row with this primary key, newest first (see RowItem)."""
    from sqlmodel import Session, col, select

    from syncdash.store.db import dumps
    from syncdash.store.models import ItemError

    with Session(store.engine) as s:
        found = s.exec(select(ItemError).where(ItemError.source == source, ItemError.item_key == dumps(list(key)),
                                               col(ItemError.item).is_not(None))
                       .order_by(col(ItemError.id).desc()).limit(limit)).all()
        return [RowItem(e.last_run_id or e.run_id, e.item or "", e.error_type, e.last_seen_at or e.created_at)
                for e in found]
