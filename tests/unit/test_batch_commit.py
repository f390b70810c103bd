"""The batch commit on its own terms: one batch's target rows, content hashes, counts and checkpoint become
durable together or not at all; a dry run writes nothing; a resume continues after the last committed batch
without writing it again. Real SQLite files, the real CSV kind, the engine in process (no read-ahead child,
so the batches are exactly the configured ones)."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from syncdash.config.load import load_config
from syncdash.config.models import Config
from syncdash.engine import Engine, Progress, RunOptions, RunResult
from syncdash.store.db import Store
from syncdash.store.models import RunStatus

ROWS = 10
BATCH = 3  # batches of 3, 3, 3 and 1 rows


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "store.db"
        (root / "people.csv").write_text("id,name\n" + "".join(f"{i},name {i}\n" for i in range(1, ROWS + 1)))
        path = root / "syncdash.yaml"
        path.write_text(textwrap.dedent(f"""\
            database: sqlite:///{self.db}
            sources:
              - name: people
                kind: csv
                path: people.csv
                table: people
                primary_key: [id]
                batch_size: {BATCH}
                fields:
                  id: {{type: int}}
                  name: name
            """))
        self.config: Config = load_config(path)
        self.store = Store(f"sqlite:///{self.db}")

    def run(self, **opts: Any) -> RunResult:
        return Engine(self.store, self.config).run("people", RunOptions(read_ahead=False, **opts))

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.db)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def execute(self, sql: str) -> None:
        con = sqlite3.connect(self.db)
        try:
            con.executescript(sql)
        finally:
            con.close()

    def checkpoint(self, run_id: int) -> dict[str, Any] | None:
        (text,) = self.query(f"SELECT checkpoint FROM syncdash_runs WHERE id = {run_id}")[0]
        return json.loads(text) if text else None


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def test_a_failing_store_write_takes_the_batchs_target_rows_with_it(project: Project) -> None:
    project.run()  # creates the tables; then start over from an empty target
    project.execute("DELETE FROM people; DELETE FROM syncdash_source_state;")
    # the store refuses the second batch's checkpoint, inside the batch's transaction
    project.execute("""CREATE TRIGGER fail_second_batch BEFORE UPDATE OF checkpoint ON syncdash_runs
                       WHEN NEW.checkpoint LIKE '%"batches":2}%'
                       BEGIN SELECT RAISE(ABORT, 'injected store failure'); END;""")
    result = project.run()
    assert result.status == RunStatus.FAILED and "injected store failure" in (result.error or "")
    # batch 1 committed whole; batch 2's rows went with its refused checkpoint, and nothing after it ran
    assert project.query("SELECT id FROM people ORDER BY id") == [(1,), (2,), (3,)]
    ck = project.checkpoint(result.run_id)
    assert ck is not None and ck["batches"] == 1
    assert project.query(f"SELECT inserted FROM syncdash_runs WHERE id = {result.run_id}") == [(3,)]
    # the content hashes are the target rows' own column: none for rows that are not there
    assert project.query("SELECT count(*) FROM people WHERE _hash IS NOT NULL") == [(3,)]


def test_dry_run_writes_nothing(project: Project) -> None:
    result = project.run(dry_run=True)
    assert result.status == RunStatus.SUCCEEDED and result.counts["inserted"] == ROWS
    assert project.query("SELECT name FROM sqlite_master WHERE name = 'people'") == []  # not even the table
    assert project.checkpoint(result.run_id) is None
    assert project.query("SELECT fingerprint, last_run_id FROM syncdash_source_state") in ([], [(None, None)])
    assert len(result.sample) > 0  # the plan is in memory for the caller


def test_resume_continues_after_the_committed_batch_without_rewriting_it(project: Project) -> None:
    stop = threading.Event()
    reports: list[Progress] = []

    def progress(p: Progress) -> None:
        reports.append(p)
        if p.phase == "load" and len(reports) == 2:  # batch 2 committed: the daemon stops
            stop.set()

    first = project.run(shutdown=stop, on_progress=progress)
    assert first.status == RunStatus.INTERRUPTED
    ck = project.checkpoint(first.run_id)
    assert ck is not None and ck["batches"] == 2
    assert project.query("SELECT count(*) FROM people") == [(6,)]
    # were a committed batch written again, this mark would be overwritten (or the row refused as a duplicate)
    project.execute("UPDATE people SET name = 'committed before' WHERE id = 1")

    again: list[Progress] = []
    second = project.run(on_progress=again.append)
    assert second.resumed and second.run_id == first.run_id and second.status == RunStatus.SUCCEEDED
    assert second.counts["inserted"] == ROWS and second.counts["failed"] == 0
    # it went on with batch 3 (6 rows counted before it) and never read batches 1 and 2 again
    assert [p.counts["inserted"] for p in again if p.phase == "load"] == [9, 10, 10]  # (the last: end of file)
    assert project.query("SELECT name FROM people WHERE id = 1") == [("committed before",)]
    assert project.query("SELECT count(*) FROM people") == [(ROWS,)]
    assert project.query("SELECT count(*) FROM syncdash_item_errors") == [(0,)]
    assert project.query(f"SELECT resumes FROM syncdash_runs WHERE id = {first.run_id}") == [(1,)]
