"""The read model's queries on a small real SQLite store: a run's detail (a flow's errors and changes are its
steps'), the last run of a source (never a dry run, never a queued one), and paging that never shifts."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from syncdash.config import load_config
from syncdash.store import queries
from syncdash.store.db import Store
from syncdash.store.models import Change, ItemError, Run, RunPhase, RunStatus
from syncdash.store.queries import ErrorFilter, RunFilter

T0 = datetime(2026, 11, 23, 12, 0, 0)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'store.db'}")


def add_run(store: Store, source: str, status: str = RunStatus.SUCCEEDED, **kw: object) -> int:
    with store.tx() as s:
        run = Run(source=source, status=status, started_at=T0, finished_at=T0 + timedelta(seconds=2), **kw)
        s.add(run)
        s.flush()
        assert run.id is not None
        return run.id


def add_error(store: Store, run_id: int, source: str, error_type: str = "type", resolved: bool = False) -> int:
    with store.tx() as s:
        e = ItemError(run_id=run_id, source=source, error_type=error_type, message="bad",
                      resolved_at=T0 if resolved else None, resolution="fixed" if resolved else None)
        s.add(e)
        s.flush()
        assert e.id is not None
        return e.id


def add_change(store: Store, run_id: int, source: str, change: str, key: int) -> None:
    with store.tx() as s:
        s.add(Change(run_id=run_id, source=source, change=change, key=f"[{key}]",
                     after='{"name": "x"}' if change != "delete" else None))


def test_a_flow_runs_detail_has_its_steps_errors_changes_and_phase_counts(store: Store) -> None:
    flow = add_run(store, "day", kind="flow", checkpoint='{"step": 2}')
    step1 = add_run(store, "pull", flow_run_id=flow)
    step2 = add_run(store, "push", flow_run_id=flow, status=RunStatus.PARTIAL)
    add_run(store, "push")  # another run of a step's source: none of the flow's business
    with store.tx() as s:
        s.add(RunPhase(run_id=flow, seq=0, name="pull", status="done", done=3, inserted=3))
        s.add(RunPhase(run_id=flow, seq=1, name="push", status="done", done=2, inserted=1, failed=1))
    first = add_error(store, step2, "push")
    add_error(store, step2, "push", "http", resolved=True)
    for k in range(3):
        add_change(store, step1, "pull", "insert", k)
    add_change(store, step2, "push", "update", 9)

    d = queries.run_detail(store, flow, changes_limit=2, errors_limit=1)
    assert d is not None
    assert [s.id for s in d.steps] == [step1, step2]
    assert (d.errors.total, d.errors.unresolved, d.errors.by_type) == (2, 1, {"type": 1, "http": 1})
    assert [e.id for e in d.errors.first] == [first]
    assert d.change_counts == {"insert": 3, "update": 1, "delete": 0}
    assert [c.key for c in d.changes["insert"]] == [[0], [1]]  # limited per kind
    assert [c.change for c in d.changes_in_order()] == ["insert", "insert", "update"]
    assert [(p.name, p.counts["inserted"], p.counts["failed"]) for p in d.phases] == [("pull", 3, 0), ("push", 1, 1)]
    assert d.checkpoint == {"step": 2}

    data = queries.run_detail_json(d, None)
    assert data["errors"]["total"] == data["error_count"] == 2
    assert data["changes"] == data["changes_recorded"] == {"insert": 3, "update": 1, "delete": 0}
    assert data["change_rows"]["update"] == [{"key": [9], "before": None, "after": {"name": "x"}}]
    assert [s["id"] for s in data["steps"]] == [step1, step2]
    assert data["rerun"] == "syncdash run day"
    assert queries.run_detail(store, 999) is None


def test_a_dry_run_or_a_queued_run_is_never_the_last_run(store: Store, tmp_path: Path) -> None:
    real = add_run(store, "people", status=RunStatus.FAILED)
    add_run(store, "people", dry_run=True)
    add_run(store, "people", status=RunStatus.QUEUED)
    add_run(store, "dry_only", dry_run=True)
    latest = queries.latest_runs(store)
    assert latest["people"].id == real and "dry_only" not in latest

    (tmp_path / "x.csv").write_text("id\n1\n")
    (tmp_path / "syncdash.yaml").write_text("sources:\n" + "".join(
        f"  - {{name: {n}, kind: csv, path: x.csv, table: {n}, primary_key: [id], fields: {{id: id}}}}\n"
        for n in ("people", "dry_only")))
    cfg = load_config(str(tmp_path / "syncdash.yaml"))
    rows = {r["source"]: r for r in queries.source_rows(store, cfg)}
    assert (rows["people"]["last_run"], rows["people"]["status"], rows["people"]["health"]) == (real, "failed",
                                                                                                "failing")
    assert (rows["dry_only"]["last_run"], rows["dry_only"]["health"]) == (None, "never run")


def test_pages_of_runs_and_errors_never_shift(store: Store) -> None:
    ids = [add_run(store, "a" if i % 2 else "b") for i in range(7)]
    first = queries.runs_page(store, RunFilter(source="a"), limit=2, with_total=True)
    assert [r.id for r in first.items] == [ids[5], ids[3]] and first.total == 3
    assert first.next_cursor == str(ids[3])
    add_run(store, "a")  # a new run does not move the next page
    rest = queries.runs_page(store, RunFilter(source="a"), limit=2, cursor=int(first.next_cursor))
    assert [r.id for r in rest.items] == [ids[1]] and rest.next_cursor is None
    assert [r.id for r in queries.runs_page(store, limit=3, offset=1).items] == [ids[6], ids[5], ids[4]]

    errs = [add_error(store, ids[0], "b", resolved=i == 0) for i in range(4)]
    page = queries.errors_page(store, ErrorFilter(resolved=False), limit=2)
    assert [e.id for e in page.items] == [errs[3], errs[2]] and page.next_cursor == str(errs[2])
    oldest = queries.errors_page(store, ErrorFilter(source="b"), limit=2, newest_first=False)
    assert [e.id for e in oldest.items] == errs[:2]
    assert [e.id for e in queries.errors_page(store, ErrorFilter(run_id=ids[1])).items] == []
    assert queries.unresolved_count(store) == 3
