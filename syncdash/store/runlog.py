"""A run's own rows as the engine writes them: the run, its phases, its item errors' resolutions and the source's
state, as SQL text on the store's DB-API connection (syncdash.common.dialect.Conn), the same for SQLite and
PostgreSQL.

The engine's batches already commit on that connection; the rest of a run's bookkeeping goes the same way, so
a run never loads the ORM (SQLAlchemy, SQLModel and the models cost more to import than a small run takes).
Every function here works inside the caller's transaction (`Store.write()`), so the engine composes them
into the transactions it needs; reads come back as the light rows of syncdash.store.rows. The columns and
defaults are the models' (syncdash.store.models): tests/e2e/test_cli_start.py holds the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from syncdash.common.dialect import Conn
from syncdash.store.rows import (
    COUNTS,
    FINAL_STATUSES,
    ITEM_ERRORS,
    PUSHED,
    RUNS,
    PhaseStatus,
    Resolution,
    RunStatus,
    format_ts,
    utcnow,
)

# the Python-side defaults of models.Run: an INSERT here writes them, as the ORM does
RUN_DEFAULTS: dict[str, Any] = {"kind": "", "trigger": "cli", "attempt": 1, "mode": "full", "dry_run": False,
                                "status": RunStatus.QUEUED.value, "priority": 0, "resumes": 0, "applied_seq": 0,
                                **dict.fromkeys(COUNTS, 0)}


def _value(v: Any) -> Any:
    """A parameter as the drivers take it: datetimes as the text SQLAlchemy stores, enums as their value."""
    if isinstance(v, datetime):
        return format_ts(v)
    if isinstance(v, (RunStatus, PhaseStatus, Resolution)):
        return v.value
    return v


def marks(values: Sequence[Any]) -> str:
    """`?, ?, ?`: one placeholder per value of an IN list."""
    return ", ".join("?" * len(values))


# ---- runs ---------------------------------------------------------------------------------------------------

def insert_run(c: Conn, **values: Any) -> int:
    """A new run row (the models' defaults for what `values` leaves out); returns its id."""
    row = {**RUN_DEFAULTS, "queued_at": utcnow(), **values}
    cols = list(row)
    return c.insert(f"INSERT INTO syncdash_runs ({', '.join(cols)}) VALUES ({marks(cols)})",
                    [_value(row[k]) for k in cols])


def get_run(c: Conn, run_id: int) -> Any:
    """The run as a light row, or None."""
    return RUNS.first(c, "WHERE id = ?", (run_id,))


def update_run(c: Conn, run_id: int, **values: Any) -> int:
    """Set columns of one run; returns the rows changed (0: no such run)."""
    if not values:
        return 0
    sets = ", ".join(f"{k} = ?" for k in values)
    return c.rowcount(f"UPDATE syncdash_runs SET {sets} WHERE id = ?", [*map(_value, values.values()), run_id])


def delete_run(c: Conn, run_id: int) -> None:
    c.execute("DELETE FROM syncdash_runs WHERE id = ?", (run_id,))


def latest_interrupted(c: Conn, source: str, exclude: int) -> Any:
    """The source's latest interrupted real run other than `exclude` (light row), or None."""
    return RUNS.first(c, "WHERE source = ? AND status = ? AND dry_run = ? AND id != ? ORDER BY id DESC LIMIT 1",
                      (source, RunStatus.INTERRUPTED.value, False, exclude))


def finished_after(c: Conn, source: str, after: int, exclude: int) -> bool:
    """Whether a real run of the source newer than `after` (other than `exclude`) has finished."""
    return c.one(f"SELECT id FROM syncdash_runs WHERE source = ? AND id > ? AND id != ? AND dry_run = ? "
                 f"AND status IN ({marks(FINAL_STATUSES)}) LIMIT 1",
                 (source, after, exclude, False, *(s.value for s in FINAL_STATUSES))) is not None


def change_counts(c: Conn, run_id: int) -> dict[str, int]:
    """Change rows kept for the run, by change kind."""
    return {str(k): int(n) for k, n in c.all("SELECT change, COUNT(*) FROM syncdash_changes WHERE run_id = ? "
                                             "GROUP BY change", (run_id,))}


# ---- phases -------------------------------------------------------------------------------------------------

def insert_phases(c: Conn, run_id: int, specs: Sequence[tuple[str, str]]) -> dict[str, int]:
    """The run's phases, pending, in order; returns their ids by name."""
    return {name: c.insert("INSERT INTO syncdash_run_phases (run_id, seq, name, status, done, unit, inserted, "
                           "updated, unchanged, deleted, failed, skipped) VALUES (?, ?, ?, ?, 0, ?, 0, 0, 0, 0, 0, 0)",
                           (run_id, seq, name, PhaseStatus.PENDING.value, unit))
            for seq, (name, unit) in enumerate(specs)}


def phase_ids(c: Conn, run_id: int) -> dict[str, int]:
    return {str(name): int(pid) for pid, name in c.all("SELECT id, name FROM syncdash_run_phases WHERE run_id = ?",
                                                       (run_id,))}


def phase_counts(c: Conn, phase_id: int) -> dict[str, int] | None:
    row = c.one(f"SELECT {', '.join(COUNTS)} FROM syncdash_run_phases WHERE id = ?", (phase_id,))
    return None if row is None else {n: int(v) for n, v in zip(COUNTS, row, strict=True)}


def phase_start(c: Conn, phase_id: int, total: int | None) -> None:
    c.execute("UPDATE syncdash_run_phases SET status=?, started_at=COALESCE(started_at, ?), total=COALESCE(?, total) "
              "WHERE id=?", (PhaseStatus.RUNNING.value, format_ts(utcnow()), total, phase_id))


def phase_done(c: Conn, phase_id: int, done: int | None = None, total: int | None = None) -> None:
    if done is None:  # a phase counted in pages learns its total only at the end
        c.execute("UPDATE syncdash_run_phases SET status=?, finished_at=?, done=COALESCE(total, done), "
                  "total=COALESCE(total, done) WHERE id=?", (PhaseStatus.DONE.value, format_ts(utcnow()), phase_id))
    else:
        c.execute("UPDATE syncdash_run_phases SET status=?, finished_at=?, done=?, total=? WHERE id=?",
                  (PhaseStatus.DONE.value, format_ts(utcnow()), done, total, phase_id))


def close_phases(c: Conn, run_id: int, successful: bool, now: datetime) -> None:
    """A finished run's phases: a running one done (or failed), a pending one skipped when the run failed."""
    c.execute("UPDATE syncdash_run_phases SET status = ?, finished_at = ? WHERE run_id = ? AND status = ?",
              ((PhaseStatus.DONE if successful else PhaseStatus.FAILED).value, format_ts(now), run_id,
               PhaseStatus.RUNNING.value))
    if not successful:
        c.execute("UPDATE syncdash_run_phases SET status = ? WHERE run_id = ? AND status = ?",
                  (PhaseStatus.SKIPPED.value, run_id, PhaseStatus.PENDING.value))


# ---- the source's state -------------------------------------------------------------------------------------

def record_outcome(c: Conn, source: str, run_id: int, status: RunStatus, now: datetime, *, success: bool,
                   fingerprint: str | None) -> None:
    """The source's last run (and last success), its mapping fingerprint when given, and its lease released
    when this run held it: in the run's finishing transaction."""
    c.execute("INSERT INTO syncdash_source_state (source, paused) VALUES (?, FALSE) ON CONFLICT (source) DO NOTHING",
              (source,))
    sets: dict[str, Any] = {"last_run_id": run_id, "last_status": status.value}
    if success:
        sets |= {"last_success_at": format_ts(now), "last_success_run_id": run_id}
        if fingerprint is not None:
            sets["fingerprint"] = fingerprint
    c.execute(f"UPDATE syncdash_source_state SET {', '.join(f'{k} = ?' for k in sets)} WHERE source = ?",
              (*sets.values(), source))
    c.execute("UPDATE syncdash_source_state SET lock_run_id = NULL, lock_owner = NULL, lease_until = NULL "
              "WHERE source = ? AND lock_run_id = ?", (source, run_id))


# ---- item errors --------------------------------------------------------------------------------------------

def _phase_is(phase: str | None) -> tuple[str, tuple[Any, ...]]:
    return ("phase IS NULL", ()) if phase is None else ("phase = ?", (phase,))


def open_error_keys(c: Conn, source: str, phase: str | None) -> list[tuple[int, str, str | None, str | None,
                                                                           int | None]]:
    """(id, error_type, item_key, file, line) of the open errors of a source's phase, oldest first."""
    cond, params = _phase_is(phase)
    return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in c.all(
        f"SELECT id, error_type, item_key, file, line FROM syncdash_item_errors WHERE source = ? AND {cond} "
        "AND resolved_at IS NULL ORDER BY id", (source, *params))]


def keyless_errors(c: Conn, run_id: int, phase: str) -> int:
    """The run's errors in a phase on rows that failed before their key was read."""
    return int(c.scalar("SELECT COUNT(*) FROM syncdash_item_errors WHERE run_id = ? AND phase = ? "
                        "AND item_key IS NULL", (run_id, phase)) or 0)


def errors_not_hit(c: Conn, source: str, phase: str, run_id: int) -> list[Any]:
    """The open errors of a source's phase that run_id neither added nor hit again (light rows)."""
    return ITEM_ERRORS.fetch(c, "WHERE source = ? AND phase = ? AND resolved_at IS NULL AND run_id != ? "
                                "AND (last_run_id IS NULL OR last_run_id != ?)", (source, phase, run_id, run_id))


def retry_targets(c: Conn, run_ids: Sequence[int], only: Sequence[int] | None, phase: str | None = None) -> list[Any]:
    """The open, retryable errors of these runs (those they added or last hit), only some ids (and one phase)
    if given."""
    ids = list(run_ids)
    where = (f"WHERE (run_id IN ({marks(ids)}) OR last_run_id IN ({marks(ids)})) AND resolved_at IS NULL "
             "AND retryable = ?")
    params: list[Any] = [*ids, *ids, True]
    if phase is not None:
        where += " AND phase = ?"
        params.append(phase)
    if only:
        where += f" AND id IN ({marks(only)})"
        params += list(only)
    return ITEM_ERRORS.fetch(c, where, params)


def resolve(c: Conn, error_id: int, resolution: Resolution, run_id: int, now: datetime) -> None:
    """Close one error (if still open) as fixed, gone, retried... by run_id."""
    c.execute("UPDATE syncdash_item_errors SET resolution = ?, resolved_at = ?, resolved_by_run = ? "
              "WHERE id = ? AND resolved_at IS NULL", (resolution.value, format_ts(now), run_id, error_id))


def resolve_retried(c: Conn, error_id: int, *, loaded: bool, failed: bool, run_id: int, now: datetime) -> None:
    """Close one retried error: fixed (its item loaded now), retried (it failed again: the retry run's new error
    carries it on) or gone (the input no longer has it). Pull and push retries both decide this way."""
    row = c.one("SELECT last_run_id FROM syncdash_item_errors WHERE id = ? AND resolved_at IS NULL", (error_id,))
    if row is None:
        return
    if failed and not loaded and row[0] == run_id:
        return  # failed again the same way: the retry run updated it, and it stays open
    resolve(c, error_id, Resolution.FIXED if loaded else Resolution.RETRIED if failed else Resolution.GONE,
            run_id, now)


def new_errors(c: Conn, run_id: int) -> list[Any]:
    """The errors run_id added (light rows)."""
    return ITEM_ERRORS.fetch(c, "WHERE run_id = ?", (run_id,))


def set_attempts(c: Conn, error_id: int, attempts: int) -> None:
    c.execute("UPDATE syncdash_item_errors SET attempts = ? WHERE id = ?", (attempts, error_id))


# ---- what a push sent ---------------------------------------------------------------------------------------

def pushed_hashes(c: Conn, source: str, keys: Sequence[str]) -> dict[str, int]:
    """The hash each of these keys was last pushed with (keys never pushed are left out)."""
    if not keys:
        return {}
    return {str(k): int(h) for k, h in c.all(f"SELECT key, hash FROM syncdash_pushed WHERE source = ? "
                                             f"AND key IN ({marks(keys)})", (source, *keys))}


def pushed_rows(c: Conn, source: str, scope: str) -> list[Any]:
    """What a push (of one tenant) sent, in key order (light rows)."""
    return PUSHED.fetch(c, "WHERE source = ? AND scope = ? ORDER BY key", (source, scope))
