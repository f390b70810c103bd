"""History cleanup: what goes, what always stays, batching and foreign keys, on a real store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event
from sqlmodel import select

from syncdash.store import retention
from syncdash.store.db import Store
from syncdash.store.models import Change, ItemError, Run, RunPhase, SourceState
from syncdash.store.retention import RetentionConfig, cleanup, parse_duration

NOW = datetime(2026, 11, 23, 12, 0, 0)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'store.db'}")


def add_run(store: Store, source: str, status: str, finished_days_ago: float | None, *, dry_run: bool = False,
            changes: int = 1, errors: int = 1, error_age: float | None = None) -> int:
    """A run with one phase, `changes` change rows and `errors` item errors (created when it finished)."""
    finished = days_ago(finished_days_ago) if finished_days_ago is not None else None
    started = (finished or days_ago(error_age or 0)) - timedelta(minutes=1)
    with store.tx() as s:
        run = Run(source=source, status=status, dry_run=dry_run, queued_at=started, started_at=started,
                  finished_at=finished)
        s.add(run)
        s.flush()
        assert run.id is not None
        s.add(RunPhase(run_id=run.id, name="load", status="done"))
        for i in range(changes):
            s.add(Change(run_id=run.id, source=source, change="insert", key=f"[{i}]"))
        created = days_ago(error_age) if error_age is not None else (finished or started)
        for i in range(errors):
            s.add(ItemError(run_id=run.id, source=source, message=f"bad row {i}", created_at=created))
        return run.id


def set_state(store: Store, source: str, last: int | None, success: int | None) -> None:
    with store.tx() as s:
        st = s.get(SourceState, source) or SourceState(source=source)
        st.last_run_id, st.last_success_run_id = last, success
        s.add(st)


def ids(store: Store, model: Any) -> set[int]:
    with store.session() as s:
        if model is Run:
            return {r.id for r in s.exec(select(Run))}
        return {r.run_id for r in s.exec(select(model))}


def count(store: Store, model: Any) -> int:
    with store.session() as s:
        return len(list(s.exec(select(model))))


# ---- durations --------------------------------------------------------------------------------------------


def test_parse_duration() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration(" 45s ") == timedelta(seconds=45)
    for bad in ("90", "d", "1.5d", "-3d", "3w", "0d", "", "3 days"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_config_validates_durations() -> None:
    assert RetentionConfig().model_dump() == {"runs": "90d", "errors": "90d", "changes": "30d"}
    assert RetentionConfig(runs=None).runs is None
    with pytest.raises(ValidationError, match="invalid duration '3 months'"):
        RetentionConfig(runs="3 months")
    with pytest.raises(ValidationError):
        RetentionConfig.model_validate({"run": "90d"})


# ---- what goes and what stays -----------------------------------------------------------------------------


def test_cleanup_deletes_old_history_and_keeps_what_is_needed(store: Store) -> None:
    # source a: an old history, then a recent failure; its latest success is old and must stay
    a_old = add_run(store, "a", "succeeded", 200)
    a_old_failed = add_run(store, "a", "failed", 150)
    a_success = add_run(store, "a", "partial", 120)  # latest successful run of a: kept despite its age
    a_cancelled = add_run(store, "a", "cancelled", 100)
    a_recent_changes = add_run(store, "a", "succeeded", 45, errors=0)  # changes expire (30d), run stays (90d)
    a_last = add_run(store, "a", "failed", 1)
    a_dry = add_run(store, "a", "succeeded", 0.5, dry_run=True)  # dry runs never count as latest
    set_state(store, "a", a_last, a_success)
    # source b: everything old; its latest finished (failed) and latest success stay, by query alone
    b_success = add_run(store, "b", "succeeded", 300)
    b_last = add_run(store, "b", "failed", 200)
    # runs that are not finished stay whatever their age, errors included
    b_queued = add_run(store, "b", "queued", None, error_age=400, changes=0)
    b_running = add_run(store, "b", "running", None, error_age=400)
    b_interrupted = add_run(store, "b", "interrupted", None, error_age=400)
    # a dry run that is the only finished run of c: old, not protected
    c_dry = add_run(store, "c", "succeeded", 100, dry_run=True)

    expected = {"syncdash_changes": 0, "syncdash_item_errors": 0, "syncdash_run_phases": 0, "syncdash_runs": 0}
    deleted_runs = {a_old, a_old_failed, a_cancelled, c_dry}
    expected["syncdash_runs"] = expected["syncdash_run_phases"] = len(deleted_runs)
    # changes: every finished run older than 30 days, protected or not (a_success, a_recent_changes, b_*)
    expected["syncdash_changes"] = len(deleted_runs) + 4
    # errors: everything created over 90 days ago except those of unfinished runs (a_recent_changes has none)
    expected["syncdash_item_errors"] = len(deleted_runs) + 3

    dry = cleanup(store.engine, RetentionConfig(), now=NOW, dry_run=True)
    assert dry == expected
    assert count(store, Run) == 13  # a dry run deletes nothing

    assert cleanup(store.engine, RetentionConfig(), now=NOW) == expected
    kept = {a_success, a_recent_changes, a_last, a_dry, b_success, b_last, b_queued, b_running, b_interrupted}
    assert ids(store, Run) == kept
    assert ids(store, RunPhase) == kept
    assert ids(store, Change) == {a_last, a_dry, b_running, b_interrupted}
    assert ids(store, ItemError) == {a_last, a_dry, b_queued, b_running, b_interrupted}

    # nothing left to do: a second pass is a no-op
    assert cleanup(store.engine, RetentionConfig(), now=NOW) == dict.fromkeys(expected, 0)


def test_none_keeps_forever(store: Store) -> None:
    old = add_run(store, "a", "succeeded", 1000)
    add_run(store, "a", "succeeded", 1)
    cfg = RetentionConfig(runs=None, errors=None, changes=None)
    assert cleanup(store.engine, cfg, now=NOW) == dict.fromkeys(
        ("syncdash_changes", "syncdash_item_errors", "syncdash_run_phases", "syncdash_runs"), 0)
    assert count(store, Run) == 2

    # only runs: its children go with it even though their own windows are "forever"
    assert cleanup(store.engine, RetentionConfig(runs="30d", errors=None, changes=None), now=NOW) == {
        "syncdash_changes": 1, "syncdash_item_errors": 1, "syncdash_run_phases": 1, "syncdash_runs": 1}
    assert old not in ids(store, Run)


def test_state_pointers_protect_runs(store: Store) -> None:
    """A run named by source_state stays even when a newer run exists (e.g. state written by another tool)."""
    pinned = add_run(store, "a", "succeeded", 500)
    other = add_run(store, "a", "succeeded", 400)
    newest = add_run(store, "a", "succeeded", 2)
    set_state(store, "a", newest, pinned)
    cleanup(store.engine, RetentionConfig(), now=NOW)
    assert ids(store, Run) == {pinned, newest}
    assert other not in ids(store, Run)


def test_short_windows_and_aware_now(store: Store) -> None:
    hours = add_run(store, "a", "succeeded", 0.5)  # 12 hours ago
    add_run(store, "a", "failed", 0.01)
    add_run(store, "a", "succeeded", 0.001)
    out = cleanup(store.engine, RetentionConfig(runs="6h", errors="30m", changes="45s"), now=NOW.replace(tzinfo=UTC))
    assert out["syncdash_runs"] == 1
    assert hours not in ids(store, Run)
    assert out["syncdash_changes"] == 3  # all three finished more than 45 s ago
    assert out["syncdash_item_errors"] == 1  # only the 12-hour-old run's error is older than 30 minutes


def test_batches_and_foreign_keys(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """More rows than a batch: deleted over several transactions, and SQLite's foreign keys never complain."""
    monkeypatch.setattr(retention, "BATCH", 7)
    for i in range(20):
        add_run(store, "a", "succeeded", 200 - i, changes=5, errors=2)
    last = add_run(store, "a", "succeeded", 1)
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    transactions = 0

    @event.listens_for(store.engine, "commit")
    def _count_commit(conn: Any) -> None:
        nonlocal transactions
        transactions += 1

    out = cleanup(store.engine, RetentionConfig(runs="90d", errors=None, changes=None), now=NOW)
    assert out == {"syncdash_changes": 100, "syncdash_item_errors": 40, "syncdash_run_phases": 20,
                   "syncdash_runs": 20}
    assert ids(store, Run) == {last}
    assert ids(store, Change) == ids(store, ItemError) == ids(store, RunPhase) == {last}
    assert transactions >= 100 // 7 + 40 // 7 + 20 // 7 + 20 // 7


def test_stragglers_of_a_run_that_became_deletable_go_with_it(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """If a run loses its protection between the child deletes and the run deletes, its children still go first."""
    run = add_run(store, "a", "succeeded", 200, changes=3)
    calls: list[str] = []

    def children_skipped(engine: Any, table: str, q: Any) -> int:
        calls.append(table)
        return 0  # as if the run had still been protected while its children were considered

    monkeypatch.setattr(retention, "_delete_batched", children_skipped)
    add_run(store, "a", "succeeded", 1, changes=0, errors=0)
    out = cleanup(store.engine, RetentionConfig(runs="90d", errors=None, changes=None), now=NOW)
    assert calls == ["syncdash_changes", "syncdash_item_errors", "syncdash_run_phases"]
    assert out == {"syncdash_changes": 3, "syncdash_item_errors": 1, "syncdash_run_phases": 1, "syncdash_runs": 1}
    assert run not in ids(store, Run)
