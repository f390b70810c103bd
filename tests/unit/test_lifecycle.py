"""The run lifecycle on its own: the lease, a second run refused, a dead owner's run resumed, phases and the
finish. A tiny executor stands in for pull/push/flow; the store is a real SQLite file (and, once, PostgreSQL)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import server_db
from sqlmodel import select

from syncdash.common.dialect import Conn
from syncdash.config.load import load_config
from syncdash.config.models import Config
from syncdash.engine import RunOptions
from syncdash.engine.lifecycle import RunLifecycle
from syncdash.errors import AlreadyRunning, RunCancelled
from syncdash.store.db import Store
from syncdash.store.models import COUNTS, PhaseStatus, Run, RunPhase, RunStatus, SourceState, utcnow

DEAD_OWNER = "999999999@{host}:0"  # a pid no process has on this host: owner_alive says False


class StubExecutor:
    """Two phases; execute() runs the test's body with the lifecycle in hand."""

    def __init__(self, life: RunLifecycle, body: Callable[[RunLifecycle], None] | None = None) -> None:
        self.life = life
        self.body = body
        self.resolved: list[int] = []

    def phase_specs(self) -> list[tuple[str, str]]:
        return [("load", "rows"), ("finalize", "rows")]

    def execute(self) -> None:
        if self.body is not None:
            self.body(self.life)

    def resolve_retried(self, c: Conn, run_id: int, now: datetime) -> None:
        self.resolved.append(run_id)


def make_config(tmp_path: Path, database: str) -> Config:
    (tmp_path / "people.csv").write_text("id,name\n1,a\n")
    path = tmp_path / "syncdash.yaml"
    path.write_text(textwrap.dedent(f"""\
        database: {database}
        sources:
          - name: people
            kind: csv
            path: people.csv
            table: people
            primary_key: [id]
            fields:
              id: {{type: int}}
              name: name
        """))
    return load_config(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Config]]:
    """A store and a one-source config, on an SQLite file or a scratch PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        yield Store(url), make_config(tmp_path, url)
        return
    db = server_db("postgresql")
    try:
        store = Store(db.url)
        yield store, make_config(tmp_path, db.url)
        store.engine.dispose()
    finally:
        db.drop()


def lifecycle(store: Store, config: Config, **opts: Any) -> RunLifecycle:
    cfg = config.source("people")
    assert cfg is not None
    return RunLifecycle(store, config, cfg, RunOptions(**opts))


def state(store: Store) -> SourceState:
    st = store.source_states().get("people")
    assert st is not None
    return st


def test_lease_taken_while_running_and_released_after(setup: tuple[Store, Config]) -> None:
    store, config = setup
    life = lifecycle(store, config)
    during: list[SourceState] = []
    result = life.execute(StubExecutor(life, lambda lf: during.append(state(store))))
    assert during[0].lock_run_id == result.run_id and during[0].lock_owner == life.owner
    assert during[0].lease_until is not None and during[0].lease_until > utcnow()
    after = state(store)
    assert (after.lock_run_id, after.lock_owner, after.lease_until) == (None, None, None)
    assert after.last_run_id == result.run_id and after.last_status == RunStatus.SUCCEEDED


def test_second_run_of_the_same_source_is_refused(setup: tuple[Store, Config]) -> None:
    store, config = setup
    refused: list[AlreadyRunning] = []

    def second(first: RunLifecycle) -> None:
        other = lifecycle(store, config)
        with pytest.raises(AlreadyRunning) as e:
            other.begin(lambda: [("load", "rows")])
        refused.append(e.value)

    life = lifecycle(store, config)
    result = life.execute(StubExecutor(life, second))
    assert refused and f"run {result.run_id}" in str(refused[0])
    assert result.status == RunStatus.SUCCEEDED
    with store.session() as s:  # the refused run left no row behind
        assert [r.id for r in s.exec(select(Run))] == [result.run_id]


def test_dead_owners_run_is_marked_interrupted_and_resumed(setup: tuple[Store, Config]) -> None:
    store, config = setup
    import socket

    cfg = config.source("people")
    assert cfg is not None
    dead = DEAD_OWNER.format(host=socket.gethostname())
    now = utcnow()
    with store.tx() as s:  # a run whose process died mid-run: it holds the lease and has a checkpoint
        run = Run(source="people", kind="csv", trigger="cli", mode="full", status=RunStatus.RUNNING, started_at=now,
                  heartbeat_at=now, owner=dead, fingerprint=cfg.mapping_fingerprint(), checkpoint='{"stream":0}',
                  inserted=7, failed=2)
        s.add(run)
        s.flush()
        assert run.id is not None
        old_id = run.id
        for seq, name in enumerate(("load", "finalize")):
            s.add(RunPhase(run_id=run.id, seq=seq, name=name, unit="rows", inserted=7 if name == "load" else 0))
        s.add(SourceState(source="people", lock_run_id=run.id, lock_owner=dead, lease_until=now))

    life = lifecycle(store, config)
    seen: list[tuple[bool, int, dict[str, int]]] = []
    result = life.execute(StubExecutor(life, lambda lf: seen.append((lf.resumed, lf.run_id, dict(lf.counts)))))
    assert result.resumed and result.run_id == old_id
    assert seen == [(True, old_id, {**dict.fromkeys(COUNTS, 0), "inserted": 7, "failed": 2})]
    assert result.status == RunStatus.PARTIAL  # the restored failed count makes it partial
    with store.session() as s:
        runs = list(s.exec(select(Run)))
        assert [(r.id, r.status, r.resumes) for r in runs] == [(old_id, RunStatus.PARTIAL, 1)]
    assert state(store).lock_run_id is None


def test_phases_and_finish_write_status_and_counts(setup: tuple[Store, Config]) -> None:
    store, config = setup

    def work(lf: RunLifecycle) -> None:
        lf.phase_start("load", 10)
        lf.count("inserted", 6)
        lf.count("updated", 2)
        lf.count("failed", 1)
        lf.phase_done("load", 10, 10)
        lf.phase_start("finalize")
        lf.warnings.append("a warning")

    life = lifecycle(store, config)
    result = life.execute(StubExecutor(life, work))
    assert result.status == RunStatus.PARTIAL and result.warnings == ["a warning"]
    with store.session() as s:
        run = s.get(Run, result.run_id)
        assert run is not None and run.finished_at is not None and run.status == RunStatus.PARTIAL
        assert {n: getattr(run, n) for n in COUNTS} == {**dict.fromkeys(COUNTS, 0), "inserted": 6, "updated": 2,
                                                        "failed": 1}
        assert run.warnings is not None and "a warning" in run.warnings
        phases = {p.name: p for p in s.exec(select(RunPhase).where(RunPhase.run_id == result.run_id))}
    assert (phases["load"].status, phases["load"].done, phases["load"].total) == (PhaseStatus.DONE, 10, 10)
    assert phases["finalize"].status == PhaseStatus.DONE  # running at a successful finish: done
    assert state(store).last_status == RunStatus.PARTIAL and state(store).last_success_run_id == result.run_id


def test_cancelled_run_skips_pending_phases_and_keeps_no_success(setup: tuple[Store, Config]) -> None:
    store, config = setup

    def work(lf: RunLifecycle) -> None:
        lf.phase_start("load")
        raise RunCancelled()

    life = lifecycle(store, config)
    result = life.execute(StubExecutor(life, work))
    assert result.status == RunStatus.CANCELLED and result.error == "cancelled on request"
    with store.session() as s:
        phases = {p.name: p.status for p in s.exec(select(RunPhase).where(RunPhase.run_id == result.run_id))}
    assert phases == {"load": PhaseStatus.FAILED, "finalize": PhaseStatus.SKIPPED}
    st = state(store)
    assert st.last_status == RunStatus.CANCELLED and st.last_success_run_id is None and st.lock_run_id is None
