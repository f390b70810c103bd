"""Wake-ups, not polling: with the idle poll set to an hour, a run queued by another process is claimed at
once, on SQLite (data_version watch) and PostgreSQL (LISTEN/NOTIFY). Real daemon processes."""

from __future__ import annotations

import json
import time

import pytest
from conftest import Project, server_db
from test_daemon_signals import SOURCE, wait_log

from syncdash.store import queue
from syncdash.store.db import Store


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_a_run_queued_elsewhere_is_claimed_without_waiting_for_the_poll(project: Project, db: str) -> None:
    pg = server_db("postgresql") if db == "postgresql" else None
    try:
        database = f"database: {pg.url}\n" if pg is not None else ""
        project.write("data.csv", "id,name\n1,a\n")
        project.config(database + "sources:\n" + "".join(SOURCE.format(name=f"s{i}") for i in range(3)))
        daemon = project.popen("daemon", env={"SYNCDASH_DAEMON_POLL_SECONDS": "3600"})
        lines: list[dict[str, object]] = []
        try:
            wait_log(lines, daemon, "daemon started")
            time.sleep(0.5)  # the worker has looked once and now sleeps on the hour-long poll
            store = Store(pg.url if pg is not None else f"sqlite:///{project.db}")
            waits = []
            for i in range(3):
                queued = project.cli("run", f"s{i}", "--queue", "--json")  # another process queues it
                assert queued.returncode == 0, queued.stderr
                rid = json.loads(queued.stdout)[0]["run_id"]
                deadline = time.monotonic() + 10
                while (run := store.get_run(rid)) is not None and run.started_at is None:
                    assert time.monotonic() < deadline, "the queued run was not claimed"
                    time.sleep(0.01)
                assert run is not None and run.started_at is not None
                waits.append((run.started_at - run.queued_at).total_seconds())
            # nothing but the wake-up can explain a start this soon with an hour-long poll
            assert max(waits) < 2.0, waits
            assert queue.depth(store) == 0
            store.engine.dispose()
        finally:
            daemon.terminate()
            daemon.communicate(timeout=60)
    finally:
        if pg is not None:
            pg.drop()
