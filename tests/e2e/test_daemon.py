"""The run queue, the daemon, retries, notifications and run-time schedule changes, with real processes, a real
SQLite store, the sample REST API and a local webhook receiver. No test sleeps for a real schedule interval:
intervals are seconds long and the tests poll the store with deadlines."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import Project, Receiver
from test_resume import CONFIG as BIG_CONFIG
from test_resume import batches_committed, copy_db, poll, table, write_big

from syncdash.store import queue
from syncdash.store.db import Store
from syncdash.store.models import utcnow
from syncdash_demo.sampleapi import SampleApi


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    return out, err


def runs(project: Project) -> list[tuple[Any, ...]]:
    return project.query("SELECT id, trigger, status, attempt, parent_run_id FROM syncdash_runs ORDER BY id")


# ---- the queue --------------------------------------------------------------------------------------

def test_queue_claims_by_priority_one_run_per_source_and_fires_once(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    retry = queue.enqueue(store, "a", trigger="retry")
    sched = queue.enqueue(store, "b", trigger="schedule", fire_key="b@2026-01-01T00:00:00")
    assert queue.enqueue(store, "b", trigger="schedule", fire_key="b@2026-01-01T00:00:00") is None, \
        "a schedule fire is queued once, however many daemons see it"
    manual = queue.enqueue(store, "c", trigger="cli")
    later = queue.enqueue(store, "d", trigger="cli", not_before=utcnow() + timedelta(hours=1))
    second_a = queue.enqueue(store, "a", trigger="cli")
    assert queue.depth(store) == 4
    got = []
    while (run := queue.claim(store, "w@host:1")) is not None:
        got.append(run.id)
    # manual runs first (c, then a's manual run), then the schedule fire; a's retry waits for a's manual run,
    # which is claimed (not finished), and d is not due yet
    assert got == [manual, second_a, sched]
    assert later not in got and retry not in got
    assert queue.claim(store, "w@host:1", now=utcnow() + timedelta(hours=2)) is not None  # d, once due


def test_run_queue_then_daemon_once(project: Project) -> None:
    project.config(BIG_CONFIG)
    write_big(project, 1, n=5000)
    queued = project.cli("run", "big", "--queue", "--json")
    assert queued.returncode == 0, queued.stderr
    [item] = json.loads(queued.stdout)
    assert project.query("SELECT status FROM syncdash_runs WHERE id=?", (item["run_id"],)) == [("queued",)]
    done = project.cli("daemon", "--once")
    assert done.returncode == 0, done.stderr
    assert project.query("SELECT status, inserted, owner IS NOT NULL FROM syncdash_runs WHERE id=?",
                         (item["run_id"],)) == [("succeeded", 5000, 1)]
    logs = [json.loads(line) for line in done.stderr.splitlines()]
    started = next(e for e in logs if e["msg"] == "run started")
    assert started["run_id"] == item["run_id"] and started["source"] == "big"
    status = json.loads(project.cli("status", "--json").stdout)
    assert status[0]["health"] == "healthy" and status[0]["last_success_at"]


# ---- crash, stop and resume ---------------------------------------------------------------------------

def test_daemon_killed_mid_run_resumes_on_restart(project: Project, tmp_path: Path) -> None:
    project.config(BIG_CONFIG)
    write_big(project, 1)
    assert project.run_json("big", expect=0)[0]["counts"]["inserted"] > 0
    clean = Project(tmp_path / "clean", project.env)
    clean.root.mkdir()
    clean.config(BIG_CONFIG)
    copy_db(project.db, clean.db)
    write_big(clean, 2)
    write_big(project, 2)

    project.cli("run", "big", "--queue")
    daemon = project.popen("daemon")
    run_id, _ = batches_committed(project, daemon, 3)
    daemon.kill()
    daemon.wait(30)
    again = project.cli("daemon", "--once")
    assert again.returncode == 0, again.stderr
    assert project.query("SELECT status, resumes FROM syncdash_runs WHERE id=?", (run_id,)) == [("succeeded", 1)]
    clean.run_json("big", expect=0)
    assert table(project) == table(clean)


def test_sigterm_interrupts_the_run_and_the_next_start_resumes(project: Project) -> None:
    project.config(BIG_CONFIG)
    write_big(project, 1)
    project.cli("run", "big", "--queue")
    daemon = project.popen("daemon", "--log-format", "text")
    run_id, _ = batches_committed(project, daemon, 2)
    _out, err = stop(daemon)
    assert daemon.returncode == 0, err
    assert project.query("SELECT status, checkpoint IS NOT NULL FROM syncdash_runs WHERE id=?",
                         (run_id,)) == [("interrupted", 1)]
    assert "finishing the current batches" in err
    again = project.cli("daemon", "--once")
    assert again.returncode == 0, again.stderr
    assert project.query("SELECT status, resumes FROM syncdash_runs WHERE id=?", (run_id,)) == [("succeeded", 1)]
    assert project.query("SELECT COUNT(*) FROM big")[0][0] == 120_000


# ---- retries and notifications ---------------------------------------------------------------------------

REST = """\
notify: {{webhooks: ["{hook}"], on: [failed, partial, recovered], backoff: 0.01}}
sources:
  - name: players
    kind: rest
    url: {url}/v1/page/players
    records: data.items
    pagination: {{type: page, size: 50, total_path: meta.total}}
    retry: {{attempts: 1}}
    circuit_breaker: {{failures: 100}}
    run_retry: {{attempts: 3, backoff: 0.5s}}
{auth}    table: players
    primary_key: [id]
    fields: {{id: {{type: int}}, name: profile.display_name}}
"""


def test_retryable_failure_is_retried_with_backoff_and_recovery_is_notified(project: Project,
                                                                           receiver: Receiver) -> None:
    with SampleApi(n=120, lifetime=120) as api:
        project.config(REST.format(url=api.url, hook=receiver.url, auth=""))
        api.fail("page=2&", 503, times=1)
        project.cli("run", "players", "--queue")
        daemon = project.popen("daemon")
        rows = poll(project.db, "SELECT status FROM syncdash_runs ORDER BY id",
                    lambda r: len(r) == 2 and r[1][0] in ("succeeded", "failed"), daemon, timeout=30)
        deadline = time.monotonic() + 10
        while not receiver.events and time.monotonic() < deadline:
            time.sleep(0.05)
        stop(daemon)
    assert rows == [("failed",), ("succeeded",)]
    (first, _t1, _s1, _a1, _p1), (second, t2, _s2, a2, p2) = runs(project)
    assert (t2, a2, p2) == ("retry", 2, first)
    started = project.query("SELECT finished_at, (SELECT started_at FROM syncdash_runs WHERE id=?) "
                            "FROM syncdash_runs WHERE id=?", (second, first))[0]
    from datetime import datetime
    gap = datetime.fromisoformat(started[1]) - datetime.fromisoformat(started[0])
    assert gap.total_seconds() >= 0.5, "the retry waited its backoff"
    # the first failure was not final (a retry was queued): only the recovery is notified
    assert [(e["event"], e["run_id"]) for e in receiver.events] == [("recovered", second)]


def test_non_retryable_failure_is_final_and_notified(project: Project, receiver: Receiver) -> None:
    from syncdash_demo.sampleapi import AuthSpec

    with SampleApi(n=60, auth=AuthSpec.bearer("right-token"), lifetime=120) as api:
        project.config(REST.format(url=api.url, hook=receiver.url,
                                   auth="    auth: {type: bearer, token: wrong-token}\n"))
        project.cli("run", "players", "--queue")
        done = project.cli("daemon", "--once")
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 10
        while not receiver.events and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [(r[1], r[2]) for r in runs(project)] == [("cli", "failed")]
    assert [e["event"] for e in receiver.events] == ["failed"]
    assert receiver.events[0]["error_type"] == "auth" and "wrong-token" not in json.dumps(receiver.events)


# ---- schedules ---------------------------------------------------------------------------------------

def test_schedule_fires_pause_and_runtime_change(project: Project) -> None:
    project.config(BIG_CONFIG.replace("    batch_size: 2000\n", "    batch_size: 2000\n    schedule: every 2s\n"))
    write_big(project, 1, n=500)
    daemon = project.popen("daemon")
    poll(project.db, "SELECT COUNT(*) FROM syncdash_runs WHERE trigger='schedule' AND status='succeeded'",
         lambda r: r[0][0] >= 2, daemon, timeout=30)
    keys = project.query("SELECT fire_key FROM syncdash_runs WHERE trigger='schedule'")
    assert len({k[0] for k in keys}) == len(keys) and all(k[0].startswith("big@") for k in keys)
    assert all(int(k[0][-2:]) % 2 == 0 for k in keys), "every 2s fires on even seconds (epoch-aligned)"
    assert project.cli("pause", "big").returncode == 0
    time.sleep(0.5)
    n_paused = project.query("SELECT COUNT(*) FROM syncdash_runs WHERE trigger='schedule'")[0][0]
    time.sleep(4.5)
    assert project.query("SELECT COUNT(*) FROM syncdash_runs WHERE trigger='schedule'")[0][0] <= n_paused + 1
    status = json.loads(project.cli("status", "--json").stdout)[0]
    assert status["health"] == "paused" and status["next_run"] is None
    stop(daemon)

    assert project.cli("resume", "big").returncode == 0
    changed = project.cli("schedule", "big", "--every", "6h")
    assert changed.returncode == 0 and "overrides the config" in changed.stdout
    status = json.loads(project.cli("status", "--json").stdout)[0]
    assert status["schedule"] == "every 6h" and status["schedule_override"] and status["next_run"]
    text = project.cli("status").stdout
    assert "every 6h (override)" in text
    assert project.cli("schedule", "big", "--reset").returncode == 0
    assert json.loads(project.cli("status", "--json").stdout)[0]["schedule"] == "every 2s"
    bad = project.cli("schedule", "big", "--cron", "0 3 * *")
    assert bad.returncode == 2 and "5 fields" in bad.stderr


def test_bad_schedule_is_a_config_error_with_its_line(project: Project) -> None:
    project.config(BIG_CONFIG.replace("    batch_size: 2000\n", "    batch_size: 2000\n    schedule: \"61 * * * *\"\n"))
    proc = project.cli("validate")
    assert proc.returncode == 2
    assert "syncdash.yaml:9: sources.0.schedule: '61 * * * *' is not a valid cron expression" in proc.stderr
