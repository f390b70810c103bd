"""The store on a real PostgreSQL server, shared by several daemon processes: every queued run executes exactly
once, a daemon killed mid-run leaves its run to another daemon, a schedule fire is queued once however many
daemons see it. The store and the target tables live in a scratch database created and dropped by each test."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import Project, Receiver, ServerDb, server_db
from test_resume import write_big

from syncdash.store import queue
from syncdash.store.db import LEASE_SECONDS, Store
from syncdash.store.models import SourceState, utcnow
from syncdash_demo.sampleapi import SampleApi

SOURCES = 10
RUNS_EACH = 3


@pytest.fixture
def pg(project: Project) -> Iterator[ServerDb]:
    db = server_db("postgresql")
    try:
        yield db
    finally:
        db.drop()


def config(project: Project, pg: ServerDb, api: SampleApi, extra: str = "") -> None:
    """Ten REST sources against one sample API, each tagged with its own query parameter so the server's
    request log shows which source's run fetched what (the side effect that proves a run ran once)."""
    body = f"database: {pg.url}\nsources:\n"
    for i in range(SOURCES):
        body += (f"  - name: s{i}\n    kind: rest\n    url: {api.url}/v1/page/players\n    records: data.items\n"
                 f"    params: {{tag: s{i}}}\n    pagination: {{type: page, size: 100, total_path: meta.total}}\n"
                 f"    circuit_breaker: {{failures: 1000}}\n"
                 f"    table: players_{i}\n    primary_key: [id]\n"
                 "    fields: {id: {type: int}, name: profile.display_name}\n")
    project.config(body + extra)


def wait_for(what: str, check: Callable[[], Any], procs: list[subprocess.Popen[str]], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        for p in procs:
            if p.poll() is not None and p.returncode not in (0, -signal.SIGKILL):
                _out, err = p.communicate()
                raise AssertionError(f"a daemon exited {p.returncode} while waiting for {what}:\n{err[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def stop_all(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()


def test_three_daemons_share_the_queue_and_run_everything_exactly_once(project: Project, pg: ServerDb) -> None:
    with SampleApi(n=250, latency=0.01, lifetime=240) as api:
        config(project, pg, api)
        store = Store(pg.url)
        queued = [queue.enqueue(store, f"s{i}", trigger="cli", kind="rest")
                  for _ in range(RUNS_EACH) for i in range(SOURCES)]
        assert len(set(queued)) == SOURCES * RUNS_EACH
        daemons = [project.popen("daemon", "--workers", "2") for _ in range(3)]
        try:
            final = wait_for("every queued run finished", lambda: pg.query(
                "SELECT count(*) FROM syncdash_runs WHERE status IN ('succeeded', 'partial', 'failed')")[0][0]
                == len(queued) and pg.query("SELECT id, status, owner, resumes FROM syncdash_runs ORDER BY id"),
                daemons)
        finally:
            stop_all(daemons)
    assert [r[0] for r in final] == sorted(queued)
    assert {r[1] for r in final} == {"succeeded"}, final
    assert {r[3] for r in final} == {0}, "nothing was interrupted, so nothing resumed"
    owners = {r[2].split("@")[0] for r in final}
    assert len(owners) >= 2, f"the runs were shared between daemons: {owners}"
    for i in range(SOURCES):
        first_pages = [r for r in api.requests if r.query.get("tag") == f"s{i}" and r.query.get("page") == "1"]
        assert len(first_pages) == RUNS_EACH, f"s{i}: {len(first_pages)} runs fetched page 1, not {RUNS_EACH}"
        # a source never has two runs at once: its runs started one after the other
        spans = pg.query("SELECT started_at, finished_at FROM syncdash_runs WHERE source = ? ORDER BY started_at",
                         (f"s{i}",))
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    assert pg.query("SELECT count(*) FROM players_3 WHERE _deleted_at IS NULL") == [(250,)]
    assert pg.query("SELECT lock_run_id FROM syncdash_source_state WHERE lock_run_id IS NOT NULL") == []


def test_a_killed_daemons_run_is_resumed_by_another_and_a_fire_is_queued_once(project: Project,
                                                                              pg: ServerDb) -> None:
    big = """\
  - name: big
    kind: csv
    path: data/big.csv
    table: big
    primary_key: [id]
    batch_size: 2000
    fields: {id: {type: int}, name: name, amount: {type: float}}
  - name: ticker
    kind: csv
    path: data/tick.csv
    table: tick
    primary_key: [id]
    schedule: every 2s
    fields: {id: {type: int}}
"""
    with SampleApi(n=10, lifetime=240) as api:
        config(project, pg, api, extra=big)
        write_big(project, 1, n=200_000)
        project.write("data/tick.csv", "id\n1\n2\n")
        store = Store(pg.url)
        run_id = queue.enqueue(store, "big", trigger="cli", kind="csv")
        first = project.popen("daemon")
        daemons = [first]
        try:
            owner = wait_for("the big run is under way", lambda: pg.query(
                "SELECT owner FROM syncdash_runs WHERE id = ? AND status = 'running' AND inserted >= 20000",
                (run_id,)), daemons)[0][0]
            assert owner.startswith(f"{first.pid}@")
            daemons += [project.popen("daemon"), project.popen("daemon")]
            wait_for("the other daemons beat", lambda: pg.query(
                "SELECT count(*) FROM syncdash_daemons WHERE stopped_at IS NULL")[0][0] >= 3, daemons)
            first.kill()
            first.wait(30)
            killed_at = time.monotonic()
            done = wait_for("the run finished on another daemon", lambda: pg.query(
                "SELECT status, resumes, owner FROM syncdash_runs WHERE id = ? AND status = 'succeeded'", (run_id,)),
                daemons)
            took = time.monotonic() - killed_at
            wait_for("two schedule fires ran", lambda: pg.query(
                "SELECT count(*) FROM syncdash_runs WHERE source = 'ticker' AND status = 'succeeded'")[0][0] >= 2,
                daemons, timeout=30)
        finally:
            stop_all(daemons)
    [(status, resumes, new_owner)] = done
    assert (status, resumes) == ("succeeded", 1)
    assert not new_owner.startswith(f"{first.pid}@"), "another daemon resumed it"
    assert took < LEASE_SECONDS, f"resumed {took:.1f}s after the kill, beyond the {LEASE_SECONDS}s lease"
    assert pg.query("SELECT count(*), count(DISTINCT id) FROM big WHERE _deleted_at IS NULL") == [(200_000, 200_000)]
    assert pg.query("SELECT inserted FROM syncdash_runs WHERE id = ?", (run_id,)) == [(200_000,)]
    fires = pg.query("SELECT fire_key, count(*) FROM syncdash_runs WHERE source = 'ticker' GROUP BY fire_key")
    assert fires and all(n == 1 for _, n in fires), fires
    assert all(k.startswith("ticker@") for k, _ in fires)


def test_an_overdue_source_is_notified_once_by_three_daemons(project: Project, pg: ServerDb,
                                                             receiver: Receiver) -> None:
    """The overdue flag lives in the store: of the daemons sharing it, exactly one sends the event."""
    project.write("data/tick.csv", "id\n1\n")
    project.config(f"""\
        database: {pg.url}
        notify: {{webhooks: ["{receiver.url}"], on: [overdue], backoff: 0.01}}
        sources:
          - name: yearly
            kind: csv
            path: data/tick.csv
            table: tick
            primary_key: [id]
            schedule: "0 0 1 1 *"
            fields: {{id: {{type: int}}}}
        """)
    store = Store(pg.url)
    with store.tx() as s:  # its last success was three years ago: two yearly fires came and went since
        s.add(SourceState(source="yearly", last_success_at=utcnow() - timedelta(days=3 * 366),
                          last_fire_at=utcnow() - timedelta(days=400)))
    daemons = [project.popen("daemon") for _ in range(3)]
    try:
        wait_for("an overdue event", lambda: receiver.events, daemons, timeout=30)
        time.sleep(5)  # each daemon looks again every couple of seconds
    finally:
        stop_all(daemons)
    assert [(e["event"], e["source"]) for e in receiver.events] == [("overdue", "yearly")]
    assert pg.query("SELECT overdue_notified_at IS NOT NULL FROM syncdash_source_state") == [(1,)]
