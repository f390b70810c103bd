"""Delete old run history so the store does not grow forever.

Every run leaves a run row, phase rows, item errors and up to `max_changes` change rows per kind; a source
synced every five minutes makes hundreds of thousands of rows a month. `cleanup` removes what is older than
the configured windows while keeping what the CLI and console rely on:

- runs that are queued, running or interrupted (an interrupted run resumes; its rows are its checkpoint),
  and their errors;
- per source, the latest finished run and the latest successful one (succeeded or partial), whether found
  by scanning the runs or named by `syncdash_source_state` (`last_run_id`, `last_success_run_id`,
  `lock_run_id`): `status` and the console show them.

Deletes go in batches of `BATCH` rows, each its own short transaction, so a huge backlog never holds SQLite's
write lock for long: syncs in other processes keep committing between batches. Only portable SQL is used
(subqueries, IN lists, ORDER BY ... LIMIT), typed bind parameters for datetimes and booleans, so the same
code runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from syncdash.config.ops import RetentionConfig, parse_duration
from syncdash.store.models import FINAL_STATUSES, RunStatus, utcnow

BATCH = 5000

RUNS = "syncdash_runs"
PHASES = "syncdash_run_phases"
ERRORS = "syncdash_item_errors"
CHANGES = "syncdash_changes"
CHILD_TABLES = (CHANGES, ERRORS, PHASES)  # every table with a foreign key to syncdash_runs

UNFINISHED_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.INTERRUPTED)
SUCCESS_STATUSES = (RunStatus.SUCCEEDED, RunStatus.PARTIAL)  # what the engine records as last_success_run_id



def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo is not None else ts


def _in(name: str, values: tuple[Any, ...] | list[Any]) -> tuple[str, sa.BindParameter[Any]]:
    """An expanding IN parameter (renders its own parentheses) per dialect, never string-formatted values."""
    return f":{name}", sa.bindparam(name, list(values), expanding=True)


class _Query:
    """A WHERE clause with its bind parameters, so one condition drives both counting and deleting."""

    def __init__(self, where: str, params: list[sa.BindParameter[Any]]) -> None:
        self.where = where
        self.params = params

    def stmt(self, sql: str, *extra: sa.BindParameter[Any]) -> sa.TextClause:
        return sa.text(sql.replace("{where}", self.where)).bindparams(*self.params, *extra)


def _deletable_runs(runs_cut: datetime) -> _Query:
    """Runs older than the cutoff that nothing still needs (see the module docstring).

    Columns are qualified: the clause is also used inside subqueries of child tables that have their own
    `id` and `status`."""
    final, final_p = _in("final_statuses", FINAL_STATUSES)
    success, success_p = _in("success_statuses", SUCCESS_STATUSES)
    where = (
        f"{RUNS}.status IN {final} AND {RUNS}.finished_at IS NOT NULL AND {RUNS}.finished_at < :runs_cut"
        f" AND {RUNS}.id NOT IN (SELECT last_run_id FROM syncdash_source_state WHERE last_run_id IS NOT NULL)"
        f" AND {RUNS}.id NOT IN (SELECT last_success_run_id FROM syncdash_source_state"
        " WHERE last_success_run_id IS NOT NULL)"
        f" AND {RUNS}.id NOT IN (SELECT lock_run_id FROM syncdash_source_state WHERE lock_run_id IS NOT NULL)"
        f" AND {RUNS}.id NOT IN (SELECT MAX(r2.id) FROM syncdash_runs r2 WHERE r2.status IN {final}"
        " AND r2.dry_run = :not_dry GROUP BY r2.source)"
        f" AND {RUNS}.id NOT IN (SELECT MAX(r3.id) FROM syncdash_runs r3 WHERE r3.status IN {success}"
        " AND r3.dry_run = :not_dry GROUP BY r3.source)"
    )
    return _Query(where, [final_p, success_p,
                          sa.bindparam("runs_cut", runs_cut, type_=sa.DateTime()),
                          sa.bindparam("not_dry", False, type_=sa.Boolean())])


def _child_query(table: str, runs_cut: datetime | None, errors_cut: datetime | None,
                 changes_cut: datetime | None) -> _Query | None:
    """Rows of a child table to delete: those its own window expires, plus those of runs being deleted."""
    parts: list[str] = []
    params: list[sa.BindParameter[Any]] = []
    if table == CHANGES and changes_cut is not None:
        parts.append(f"run_id IN (SELECT id FROM {RUNS} WHERE finished_at IS NOT NULL AND finished_at < :changes_cut)")
        params.append(sa.bindparam("changes_cut", changes_cut, type_=sa.DateTime()))
    if table == ERRORS and errors_cut is not None:
        unfinished, unfinished_p = _in("unfinished_statuses", UNFINISHED_STATUSES)
        parts.append(f"(created_at < :errors_cut"
                     f" AND run_id NOT IN (SELECT id FROM {RUNS} WHERE status IN {unfinished}))")
        params += [sa.bindparam("errors_cut", errors_cut, type_=sa.DateTime()), unfinished_p]
    if runs_cut is not None:
        runs = _deletable_runs(runs_cut)
        parts.append(f"run_id IN (SELECT id FROM {RUNS} WHERE {runs.where})")
        params += runs.params
    if not parts:
        return None
    return _Query(" OR ".join(parts), params)


def _count(engine: sa.Engine, table: str, q: _Query) -> int:
    with engine.connect() as c:
        return int(c.execute(q.stmt(f"SELECT COUNT(*) FROM {table} WHERE {{where}}")).scalar_one())


def _delete_batched(engine: sa.Engine, table: str, q: _Query) -> int:
    """Delete matching rows BATCH at a time, one transaction each; returns how many went."""
    total = 0
    while True:
        with engine.begin() as c:
            ids = list(c.execute(q.stmt(f"SELECT id FROM {table} WHERE {{where}} ORDER BY id LIMIT {BATCH}")).scalars())
            if ids:
                ph, p = _in("batch_ids", ids)
                c.execute(sa.text(f"DELETE FROM {table} WHERE id IN {ph}").bindparams(p))
        total += len(ids)
        if len(ids) < BATCH:
            return total


def _delete_runs(engine: sa.Engine, q: _Query, counts: dict[str, int]) -> None:
    """Delete runs BATCH at a time. Their children went before; any left (a run that became deletable
    meanwhile because a newer one finished) go in the same transaction, so foreign keys always hold."""
    while True:
        with engine.begin() as c:
            ids = list(c.execute(q.stmt(f"SELECT id FROM {RUNS} WHERE {{where}} ORDER BY id LIMIT {BATCH}")).scalars())
            if ids:
                ph, p = _in("batch_ids", ids)
                for table in CHILD_TABLES:
                    res = c.execute(sa.text(f"DELETE FROM {table} WHERE run_id IN {ph}").bindparams(p))
                    counts[table] += max(res.rowcount or 0, 0)
                c.execute(sa.text(f"DELETE FROM {RUNS} WHERE id IN {ph}").bindparams(p))
        counts[RUNS] += len(ids)
        if len(ids) < BATCH:
            return


def cleanup(engine: sa.Engine, config: RetentionConfig, now: datetime | None = None,
            dry_run: bool = False) -> dict[str, int]:
    """Delete history older than `config`'s windows; returns rows deleted (or, dry_run, that would be) per table.

    `now` (naive UTC like the store, or aware) is injectable for tests. Child rows are deleted before their
    runs so foreign keys hold whether or not the database enforces them.
    """
    now = _naive_utc(now) if now is not None else utcnow()
    runs_cut = now - parse_duration(config.runs) if config.runs is not None else None
    errors_cut = now - parse_duration(config.errors) if config.errors is not None else None
    changes_cut = now - parse_duration(config.changes) if config.changes is not None else None

    counts = {CHANGES: 0, ERRORS: 0, PHASES: 0, RUNS: 0}
    for table in CHILD_TABLES:
        q = _child_query(table, runs_cut, errors_cut, changes_cut)
        if q is not None:
            counts[table] = _count(engine, table, q) if dry_run else _delete_batched(engine, table, q)
    if runs_cut is not None:
        runs = _deletable_runs(runs_cut)
        if dry_run:
            counts[RUNS] = _count(engine, RUNS, runs)
        else:
            _delete_runs(engine, runs, counts)
    return counts
