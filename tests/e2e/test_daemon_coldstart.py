"""Three daemons started at the same instant on an empty store all come up (schema creation is serialized:
an advisory lock on PostgreSQL, SQLite's write lock), ten times in a row, with real daemon processes."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from contextlib import closing

import pytest
from conftest import Project, server_db

ROUNDS = 10


def started(proc: object) -> dict[str, object]:
    """The daemon's `daemon started` log line (it registered in the store), or a failure with its stderr."""
    while line := proc.stderr.readline():  # type: ignore[attr-defined]
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("msg") == "daemon started":
            return event
    raise AssertionError(f"daemon exited (exit {proc.wait()}) before starting")  # type: ignore[attr-defined]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_three_daemons_started_at_once_on_an_empty_store_all_come_up(project: Project, db: str) -> None:
    project.write("data.csv", "id,name\n1,a\n")
    for n in range(ROUNDS):
        pg = server_db("postgresql") if db == "postgresql" else None
        try:
            url = pg.url if pg is not None else f"sqlite:///{project.root / f'store{n}.db'}"
            project.config(f"database: {url}\nsources:\n  - name: one\n    kind: csv\n    path: data.csv\n"
                           "    table: one\n    primary_key: [id]\n    fields: {id: {type: int}, name: name}\n")
            procs = [project.popen("daemon") for _ in range(3)]
            try:
                owners = {str(started(p)["owner"]) for p in procs}
                assert len(owners) == 3
                sql = "SELECT COUNT(*) FROM syncdash_daemons WHERE stopped_at IS NULL"
                if pg is not None:
                    assert pg.query(sql) == [(3,)]
                else:
                    with closing(sqlite3.connect(project.root / f"store{n}.db")) as con:
                        assert con.execute(sql).fetchall() == [(3,)]
            finally:
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                codes = []
                for p in procs:
                    _out, err = p.communicate(timeout=60)
                    codes.append((p.returncode, err[-500:]))
            assert [c for c, _ in codes] == [0, 0, 0], codes
        finally:
            if pg is not None:
                time.sleep(0.1)
                pg.drop()
