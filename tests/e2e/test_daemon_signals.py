"""SIGHUP reloads a running daemon's config (and a bad config is logged and ignored); a daemon killed with
SIGKILL is seen as gone by `status` within 5 s. Real daemon processes on a real SQLite store."""

from __future__ import annotations

import json
import signal
import time

from conftest import Project

from syncdash.store import queue
from syncdash.store.db import Store
from syncdash.store.health import live_daemons

SOURCE = """\
  - name: {name}
    kind: csv
    path: data.csv
    table: {name}
    primary_key: [id]
    fields: {{id: {{type: int}}, name: name}}
"""


def config(project: Project, *names: str, extra: str = "") -> None:
    project.config("sources:\n" + "".join(SOURCE.format(name=n) for n in names) + extra)


def wait_log(lines: list[dict[str, object]], proc: object, msg: str, timeout: float = 20) -> dict[str, object]:
    """The first JSON log line with `msg`, reading the daemon's stderr as it comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in lines:
            if e.get("msg") == msg:
                return e
        line = proc.stderr.readline()  # type: ignore[attr-defined]
        if not line:
            break
        lines.append(json.loads(line))
    raise AssertionError(f"no log line {msg!r} within {timeout} s: {lines}")


def test_sighup_reloads_the_config_and_logs_what_changed(project: Project) -> None:
    project.write("data.csv", "id,name\n1,a\n")
    config(project, "keep", "drop", "edit")
    daemon = project.popen("daemon")
    lines: list[dict[str, object]] = []
    try:
        wait_log(lines, daemon, "daemon started")
        config(project, "keep", "edit", "fresh")
        project.write("syncdash.yaml", project.root.joinpath("syncdash.yaml").read_text()
                      .replace("name: edit\n    kind: csv\n    path: data.csv\n    table: edit",
                               "name: edit\n    kind: csv\n    path: data.csv\n    table: edited"))
        daemon.send_signal(signal.SIGHUP)
        got = wait_log(lines, daemon, "config reloaded")
        assert (got["added"], got["removed"], got["changed"]) == (["fresh"], ["drop"], ["edit"])
        # the reloaded config is the one runs use: a source added by the reload runs
        queued = project.cli("run", "fresh", "--queue")
        assert queued.returncode == 0, queued.stderr
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and project.query(
                "SELECT status FROM syncdash_runs WHERE source = 'fresh'") != [("succeeded",)]:
            time.sleep(0.05)
        assert project.query("SELECT status FROM syncdash_runs WHERE source = 'fresh'") == [("succeeded",)]

        # a broken config on reload: the error (file and line) is logged, the daemon keeps the old config
        project.write("syncdash.yaml", project.root.joinpath("syncdash.yaml").read_text() + "  - name: [oops\n")
        daemon.send_signal(signal.SIGHUP)
        bad = None
        deadline = time.monotonic() + 20
        while bad is None and time.monotonic() < deadline:
            e = json.loads(daemon.stderr.readline())  # type: ignore[union-attr]
            if str(e["msg"]).startswith("config reload failed"):
                bad = e
        assert bad is not None and bad["level"] == "error", lines
        assert "syncdash.yaml:21" in str(bad["msg"]) and "invalid YAML" in str(bad["msg"])
        assert daemon.poll() is None, "a bad config on reload does not stop the daemon"
        # the old config still serves: a run of `fresh` (queued past the broken file) is run with it
        store = Store(f"sqlite:///{project.db}")
        rid = queue.enqueue(store, "fresh", trigger="api", kind="csv")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and project.query(
                "SELECT status FROM syncdash_runs WHERE id = ?", (rid,)) != [("succeeded",)]:
            time.sleep(0.05)
        assert project.query("SELECT status FROM syncdash_runs WHERE id = ?", (rid,)) == [("succeeded",)]
        assert len(live_daemons(store)) == 1
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)
    assert daemon.returncode == 0


def test_a_killed_daemon_is_seen_gone_by_status_within_5_s(project: Project) -> None:
    project.write("data.csv", "id,name\n1,a\n")
    config(project, "one")
    daemon = project.popen("daemon")
    lines: list[dict[str, object]] = []
    wait_log(lines, daemon, "daemon started")
    assert "daemon: none running" not in project.cli("status").stdout
    daemon.kill()
    daemon.wait(30)
    killed = time.monotonic()
    while "daemon: none running" not in (out := project.cli("status").stdout):
        assert time.monotonic() - killed < 5, out
    assert time.monotonic() - killed < 5
