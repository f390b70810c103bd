"""Crash/resume, cancellation, concurrent runs, stale leases and live progress, against real processes.

The runs here load 200k rows in batches of 2000 so they last a couple of seconds; the tests poll the store
(read-only, tolerating locks) with deadlines instead of sleeping for fixed times.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, SqliteFileDb, server_db

N = 120_000  # rows: at batches of 2000 a run lasts a second or two, long enough to interrupt
CONFIG = """\
sources:
  - name: big
    kind: csv
    path: data/big.csv
    table: big
    primary_key: [id]
    batch_size: 2000
    fields:
      id: {type: int}
      name: name
      amount: {type: float}
"""


def write_big(project: Project, version: int = 1, n: int = N) -> Path:
    """Version 2 drops 1% of the rows, changes 1% and appends 1000 new ones."""
    lines = ["id,name,amount"]
    for i in range(n):
        if version == 2 and i % 100 == 0:
            continue
        lines.append(f"{i},name{i},{i * 1.5 + (1 if version == 2 and i % 100 == 50 else 0)}")
    if version == 2:
        lines += [f"{i},new{i},{i}" for i in range(n, n + 1000)]
    path = project.root / "data/big.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_store(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]] | None:
    """A read-only look at a store another process is writing; None while it is missing or busy."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    except sqlite3.Error:
        return None
    try:
        return con.execute(sql, params).fetchall()
    except sqlite3.Error:
        return None
    finally:
        con.close()


def poll(db: Path, sql: str, until: Callable[[list[tuple[Any, ...]]], bool], proc: subprocess.Popen[str],
         params: tuple[Any, ...] = (), timeout: float = 60) -> list[tuple[Any, ...]]:
    """Rows of `sql` once `until` accepts them; fails if the process exits first or the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = read_store(db, sql, params)
        if rows is not None and until(rows):
            return rows
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run ended (exit {proc.returncode}) before the condition held:\n{out}\n{err}")
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    raise AssertionError(f"condition not met within {timeout}s: {sql}")


def batches_committed(project: Project, proc: subprocess.Popen[str], at_least: int) -> tuple[int, int]:
    """Wait until the running run has committed `at_least` batches; returns (run id, inserted so far)."""
    def ok(rows: list[tuple[Any, ...]]) -> bool:
        return bool(rows) and rows[0][1] == "running" and bool(rows[0][2]) and \
            json.loads(rows[0][2])["batches"] >= at_least
    rows = poll(project.db, "SELECT id, status, checkpoint, inserted FROM syncdash_runs WHERE dry_run = 0 "
                "ORDER BY id DESC LIMIT 1", ok, proc)
    return rows[0][0], rows[0][3]


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL and reap: an unreaped zombie still looks alive to the next run's owner check."""
    proc.kill()
    proc.wait(timeout=30)


def table(project: Project, cols: str = "id, name, amount, _hash, _deleted_at IS NOT NULL, _run_id"
          ) -> list[tuple[Any, ...]]:
    return project.tquery(f"SELECT {cols} FROM big ORDER BY id")


def copy_db(src: Path, dst: Path) -> None:
    s, d = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        s.backup(d)
    finally:
        s.close()
        d.close()


def clean_twin(project: Project, tmp_path: Path, request: pytest.FixtureRequest) -> Project:
    """A second project with the same store history and target table as `project` after its first load,
    for the uninterrupted run to compare with (its own scratch database when the target is a server)."""
    clean = Project(tmp_path / "clean", project.env)
    clean.root.mkdir()
    if project.target is not None:
        clean.target = server_db(project.target.dialect)
        request.addfinalizer(clean.target.drop)
    clean.config(CONFIG)
    if project.target is None:
        copy_db(project.db, clean.db)
    else:
        write_big(clean, 1)
        assert clean.run_json("big", expect=0)[0]["counts"]["inserted"] == N
    return clean


def test_sigkill_mid_run_then_run_resumes_from_the_checkpoint(project: Project, tmp_path: Path, tdb: str,
                                                             request: pytest.FixtureRequest) -> None:
    """A full sync killed mid-run is picked up by the next `run` under the same run id: committed batches are
    not redone, the keys they saw still count for deletes, the stale lease is taken over, and the table and
    counts equal those of an uninterrupted run of the same input."""
    project.config(CONFIG)
    write_big(project, 1)
    assert project.run_json("big", expect=0)[0]["counts"]["inserted"] == N

    clean = clean_twin(project, tmp_path, request)
    write_big(clean, 2)
    write_big(project, 2)

    proc = project.popen("run", "big", "--json")
    run_id, _ = batches_committed(project, proc, 3)
    kill(proc)
    assert project.query("SELECT status, resumes FROM syncdash_runs WHERE id=?", (run_id,)) == [("running", 0)]
    assert project.query("SELECT lock_run_id FROM syncdash_source_state WHERE source='big'") == [(run_id,)]
    committed = dict(project.tquery("SELECT id, _synced_at FROM big WHERE _run_id=?", (run_id,)))
    assert committed, "the killed run committed no row changes; the checkpoint test proves nothing"

    resumed = project.run_json("big", expect=0)[0]
    assert resumed["id"] == run_id and resumed["resumes"] == 1 and resumed["status"] == "succeeded"
    expected = clean.run_json("big", expect=0)[0]
    assert expected["id"] == run_id and expected["resumes"] == 0
    assert resumed["counts"] == expected["counts"] == {
        "inserted": 1000, "updated": N // 100, "unchanged": N - N // 50, "deleted": N // 100, "failed": 0,
        "skipped": 0}

    # rows written before the kill were not rewritten by the resumed process
    after = dict(project.tquery("SELECT id, _synced_at FROM big WHERE _run_id=?", (run_id,)))
    assert {k: after[k] for k in committed} == committed
    assert len(set(after.values())) > len(set(committed.values()))

    assert table(project) == table(clean)
    assert project.query("SELECT lock_run_id FROM syncdash_source_state") == [(None,)]
    assert project.query("SELECT count(*) FROM syncdash_runs") == [(2,)]


@pytest.mark.parametrize("where", ["sqlite-file", "postgresql", "mysql"])
def test_a_crash_between_the_target_and_the_store_commit_is_replayed(project: Project, tmp_path: Path, where: str,
                                                                     request: pytest.FixtureRequest) -> None:
    """Target tables in another database than the store: a process killed after a batch committed in the
    target but before the store got its counts, errors and checkpoint loses nothing. The next run replays
    the batch's journal entry into the store, resumes after that batch, and ends with the counts and table of
    an uninterrupted run."""
    project.target = SqliteFileDb(tmp_path / "target.db") if where == "sqlite-file" else server_db(where)
    request.addfinalizer(project.target.drop)
    project.config(CONFIG)
    write_big(project, 1)
    assert project.run_json("big", expect=0)[0]["counts"]["inserted"] == N
    clean = Project(tmp_path / "clean", project.env)
    clean.root.mkdir()
    clean.config(CONFIG)
    write_big(clean, 1)
    clean.run_json("big", expect=0)
    write_big(clean, 2)
    write_big(project, 2)

    crashed = project.cli("run", "big", "--json", env={"SYNCDASH_FAULT_CRASH_AFTER_TARGET_COMMIT": "3"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    [(run_id, status, applied, ck)] = project.query(
        "SELECT id, status, applied_seq, checkpoint FROM syncdash_runs ORDER BY id DESC LIMIT 1")
    assert (status, applied, json.loads(ck)["batches"]) == ("running", 2, 2)  # the store lags one batch
    assert project.tquery("SELECT count(*) FROM syncdash_journal") == [(1,)]

    resumed = project.run_json("big", expect=0)[0]
    expected = clean.run_json("big", expect=0)[0]
    assert (resumed["id"], resumed["resumes"]) == (run_id, 1)
    assert resumed["counts"] == expected["counts"]
    assert project.query("SELECT count(*) FROM syncdash_changes WHERE run_id=?", (run_id,)) == \
        clean.query("SELECT count(*) FROM syncdash_changes WHERE run_id=?", (expected["id"],))
    assert project.query("SELECT checkpoint IS NOT NULL, applied_seq > 3 FROM syncdash_runs WHERE id=?",
                         (run_id,)) == [(1, 1)]
    assert table(project, "id, name, amount, _hash, _deleted_at IS NOT NULL") == \
        table(clean, "id, name, amount, _hash, _deleted_at IS NOT NULL")
    assert project.tquery("SELECT count(*) FROM syncdash_journal") == [(0,)]


def test_a_resumed_run_remembers_rows_that_failed_without_a_key(project: Project) -> None:
    """A row whose key could not be read makes a full sync skip deletes (it may be any absent row); that must
    hold when the row failed before a crash and the run is resumed."""
    project.config(CONFIG)
    n = 100_000
    rows = [f"{i},name{i},{i}" for i in range(n)]
    project.write("data/big.csv", "id,name,amount\n" + "\n".join(rows) + "\n")
    project.run_json("big", expect=0)
    rows[0] = ",no key,1"  # first batch: fails before its key is known
    project.write("data/big.csv", "id,name,amount\n" + "\n".join(rows[: n - 5000]) + "\n")

    proc = project.popen("run", "big", "--json")
    run_id, _ = batches_committed(project, proc, 2)
    kill(proc)
    resumed = project.run_json("big", expect=3)[0]
    assert (resumed["id"], resumed["resumes"], resumed["status"]) == (run_id, 1, "partial")
    assert resumed["counts"]["deleted"] == 0 and resumed["counts"]["failed"] == 1
    assert any("deletes skipped" in w for w in resumed["warnings"]), resumed["warnings"]
    assert project.query("SELECT count(*) FROM big WHERE _deleted_at IS NULL") == [(n,)]


@pytest.mark.parametrize("target", ["process", "group"])
def test_sigterm_cancels_after_the_current_batch_and_keeps_committed_rows(project: Project, target: str) -> None:
    """SIGTERM (like Ctrl-C) stops the run at a batch boundary: exit 130, status cancelled, and exactly the
    committed batches' rows are in the table; the lease is released. "group" is how systemd and shells stop
    a job: the reader child gets the signal too and must not turn the cancel into a failure."""
    project.config(CONFIG)
    write_big(project, 1)
    proc = project.popen("run", "big", "--json", start_new_session=True)
    run_id, _ = batches_committed(project, proc, 2)
    if target == "group":
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    [run] = json.loads(out)
    assert (run["id"], run["status"], run["error"]) == (run_id, "cancelled", "cancelled on request")
    [(rows,)] = project.query("SELECT count(*) FROM big")
    assert rows == run["counts"]["inserted"] and 0 < rows < N
    assert rows % 2000 == 0
    assert project.query("SELECT lock_run_id FROM syncdash_source_state") == [(None,)]


def stop_outside_a_transaction(project: Project, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    """SIGSTOP the run at a moment it holds no write lock, so other processes can still write the store."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.send_signal(signal.SIGSTOP)
        con = sqlite3.connect(project.db, timeout=0, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:  # stopped inside a batch transaction: let it go on a little
            proc.send_signal(signal.SIGCONT)
            time.sleep(0.002)
        finally:
            con.close()
    proc.send_signal(signal.SIGCONT)
    kill(proc)
    raise AssertionError("could not catch the run between two transactions")


def test_a_second_process_on_a_running_source_is_refused(project: Project) -> None:
    """While one process runs a source, another `run` of it exits 4 saying it is already running, and leaves
    no run behind; the first run is unaffected. (The first is paused with SIGSTOP, outside any transaction,
    so the overlap does not depend on timing.)"""
    project.config(CONFIG)
    write_big(project, 1)
    first = project.popen("run", "big", "--json")
    run_id, _ = batches_committed(project, first, 1)
    stop_outside_a_transaction(project, first)
    try:
        second = project.cli("run", "big", "--json", timeout=60)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 4, second.stdout + second.stderr
    assert "already running" in second.stderr and f"run {run_id}" in second.stderr
    assert json.loads(second.stdout) == []
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert json.loads(out)[0]["counts"]["inserted"] == N
    assert project.query("SELECT id, status FROM syncdash_runs") == [(run_id, "succeeded")]
    assert project.query("SELECT count(*) FROM big") == [(N,)]


def test_progress_is_readable_live_and_a_killed_first_load_resumes(project: Project, tdb: str) -> None:
    """While a run is in flight another process reads its load phase (bytes done of the file's size) from the
    store. Killed during the first load into an empty table (the insert-only path, no seen-key set), the next
    run takes the dead run's lease over, resumes it and ends with exactly the file's rows."""
    project.config(CONFIG)
    n = 200_000  # progress is written every 0.25 s: the load must last long enough to see it move
    size = write_big(project, 1, n).stat().st_size
    proc = project.popen("run", "big")

    def mid_load(rows: list[tuple[Any, ...]]) -> bool:
        return bool(rows) and 0 < rows[0][2] < size

    [(run_id, status, done, total, unit)] = poll(
        project.db, "SELECT r.id, p.status, p.done, p.total, p.unit FROM syncdash_run_phases p "
        "JOIN syncdash_runs r ON r.id = p.run_id WHERE p.name = 'load' AND r.status = 'running'", mid_load, proc)
    assert (status, total, unit) == ("running", size, "bytes")
    later = poll(project.db, "SELECT done FROM syncdash_run_phases WHERE run_id=? AND name='load'",
                 lambda rows: rows[0][0] > done, proc, params=(run_id,))
    assert later[0][0] <= size
    assert read_store(project.db, "SELECT lock_run_id FROM syncdash_source_state") == [(run_id,)]
    kill(proc)
    [(kept,)] = project.tquery("SELECT count(*) FROM big")
    assert 0 < kept < n

    run = project.run_json("big", expect=0)[0]
    assert (run["id"], run["resumes"], run["status"]) == (run_id, 1, "succeeded")
    assert run["counts"] == {"inserted": n, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0, "skipped": 0}
    assert table(project, "id, name, amount, _deleted_at") == [(i, f"name{i}", i * 1.5, None) for i in range(n)]
    phases = project.query("SELECT name, status, done, total FROM syncdash_run_phases WHERE run_id=? ORDER BY seq",
                           (run_id,))
    assert phases[0] == ("load", "done", size, size)
