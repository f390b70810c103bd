"""The command-line surface, end to end: real `syncdash` processes, real CSV files, real SQLite.

Most tests read one shared history (five runs of three sources, built once per module) because every
CLI process costs most of a second; tests that change things get their own project.
"""

from __future__ import annotations

import csv
import json
import os
import pty
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import Project

# its module-scoped fixture is built once and its tests read what earlier ones left: one xdist worker
pytestmark = pytest.mark.xdist_group("test_cli")

CONFIG = """\
    sources:
      - name: people
        kind: csv
        path: people.csv
        table: people
        primary_key: [id]
        fields:
          id: {from: id, type: int}
          name: {from: name, required: true}
          email: email
      - name: orders
        kind: csv
        path: orders.csv
        table: orders
        primary_key: [id]
        mode: incremental
        fields:
          id: {from: id, type: int}
          item: item
          qty: {from: qty, type: int}
      - name: broken
        kind: csv
        path: missing.csv
        table: broken
        primary_key: [id]
        fields: {id: id}
    """

# user data that looks like rich markup / emoji codes: the CLI must print it exactly as stored
BAD_QTY = "[red]x[/red] :thumbs_up:"
NEW_NAME = "Ada [b]L[/b]"


@dataclass
class History:
    project: Project
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)  # run id -> `run --json` entry
    codes: dict[int, int] = field(default_factory=dict)  # run id -> exit code of its `run`


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Runs 1-5: people ok, orders partial (incremental), broken failed, orders --full partial,
    people again after an update, a delete and an insert. Same isolation as conftest's `project`."""
    base = tmp_path_factory.mktemp("cli")
    home = base / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCDASH_")}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / ".local/share"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"), COLUMNS="200", NO_COLOR="1")
    (base / "proj").mkdir()
    p = Project(base / "proj", env)
    p.config(CONFIG)
    p.write("people.csv", "id,name,email\n1,Ada,ada@x.org\n2,Grace,grace@x.org\n3,Alan,alan@x.org\n")
    p.write("orders.csv", f"id,item,qty\n1,[bold]book[/bold],2\n2,pen,{BAD_QTY}\n3,cup\n")
    h = History(p)

    def run(*args: str) -> None:
        proc = p.cli("run", *args, "--json")
        [result] = json.loads(proc.stdout)
        h.runs[result["id"]] = result
        h.codes[result["id"]] = proc.returncode

    run("people")
    run("orders")
    run("broken")
    run("orders", "--full")
    p.write("people.csv", f"id,name,email\n1,{NEW_NAME},ada@x.org\n2,Grace,grace@x.org\n4,Linus,linus@x.org\n")
    run("people")
    assert sorted(h.runs) == [1, 2, 3, 4, 5]
    yield h


RUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": int, "source": str, "kind": str, "trigger": str, "mode": str, "dry_run": bool, "status": str,
    "started_at": str, "finished_at": str, "duration_s": (int, float), "counts": dict, "resumes": int,
    "parent_run_id": (int, type(None)), "error": (str, type(None)), "error_type": (str, type(None)),
    "warnings": list,
}
COUNT_KEYS = {"inserted", "updated", "unchanged", "deleted", "failed", "skipped"}
ERROR_KEYS: dict[str, type | tuple[type, ...]] = {
    "id": int, "run_id": int, "source": str, "phase": (str, type(None)), "item": (str, type(None)),
    "key": object, "file": (str, type(None)), "line": (int, type(None)), "column": (str, type(None)),
    "error_type": str, "message": str, "retryable": bool, "attempts": int, "payload": object,
    "resolved_at": (str, type(None)), "resolution": (str, type(None)),
    "occurrences": int, "first_seen_at": str, "last_seen_at": str, "last_run_id": int, "seen": str,
    "payload_truncated": bool,
}


def assert_shape(obj: dict[str, Any], keys: dict[str, type | tuple[type, ...]]) -> None:
    """Scripts rely on these keys and types (render.run_json / error_json); extra keys are allowed."""
    for key, typ in keys.items():
        assert key in obj, f"missing {key!r} in {obj}"
        assert isinstance(obj[key], typ), f"{key}={obj[key]!r} is not {typ}"


def cli_json(project: Project, *args: str) -> Any:
    proc = project.cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---- run: exit codes and --json ---------------------------------------------------------------------

def test_run_exit_codes_and_json(history: History) -> None:
    """0 succeeded, 3 partial, 1 failed; each run's --json has the documented keys and counts."""
    assert history.codes == {1: 0, 2: 3, 3: 1, 4: 3, 5: 0}
    for run in history.runs.values():
        assert_shape(run, RUN_KEYS)
        assert set(run["counts"]) == COUNT_KEYS and all(isinstance(v, int) for v in run["counts"].values())
        assert isinstance(run["sample"], list)
    r = history.runs
    assert (r[1]["status"], r[1]["mode"], r[1]["counts"]["inserted"]) == ("succeeded", "full", 3)
    assert (r[2]["status"], r[2]["mode"], r[2]["counts"]["inserted"], r[2]["counts"]["failed"]) == (
        "partial", "incremental", 1, 2)
    assert (r[3]["status"], r[3]["error_type"]) == ("failed", "unavailable")
    assert "missing.csv" in r[3]["error"]
    assert (r[4]["status"], r[4]["mode"]) == ("partial", "full")
    assert {k: r[5]["counts"][k] for k in ("inserted", "updated", "unchanged", "deleted")} == {
        "inserted": 1, "updated": 1, "unchanged": 1, "deleted": 1}


def test_usage_errors_exit_2(history: History) -> None:
    """Mistyped commands and names must fail loudly and before anything runs."""
    p = history.project
    cases = [
        (("frobnicate",), "unknown command 'frobnicate'"),
        (("stauts",), "unknown command 'stauts'; did you mean `status`?"),
        (("run",), "give one or more names, or --all"),
        (("run", "people", "nosuch"), "unknown source 'nosuch'"),
        (("show", "99"), "no run 99"),
        # only target tables are exportable: not the store's own (in any case) nor SQLite's
        (("export", "SYNCDASH_RUNS"), "no table 'SYNCDASH_RUNS'"),
        (("export", "sqlite_master"), "no table 'sqlite_master'"),
    ]
    for args, message in cases:
        proc = p.cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert p.cli().returncode == 2  # no command: help, and a usage exit code


# ---- status / runs ------------------------------------------------------------------------------------

def test_status_json(history: History) -> None:
    """One row per configured source with its latest run."""
    rows = {r["source"]: r for r in cli_json(history.project, "status")}
    assert list(rows) == ["people", "orders", "broken"]
    for r in rows.values():
        assert {"source", "kind", "table", "status", "last_run", "last_run_status", "last_run_at",
                "last_success_at", "running_run", "paused", "next_run"} <= set(r)
        assert r["kind"] == "csv" and r["table"] == r["source"] and r["paused"] is False
    assert (rows["people"]["status"], rows["people"]["last_run"]) == ("succeeded", 5)
    assert (rows["orders"]["status"], rows["orders"]["last_run"]) == ("partial", 4)
    assert (rows["broken"]["status"], rows["broken"]["last_success_at"]) == ("failed", None)
    assert isinstance(rows["people"]["last_success_at"], str)
    proc = history.project.cli("status")
    assert proc.returncode == 0
    table = {cells[0]: cells for cells in ([c.strip() for c in ln.split("│")[1:-1]]
                                           for ln in proc.stdout.splitlines() if ln.startswith("│"))}
    assert table["people"][1:5] == ["csv", "healthy", "-", "-"] and table["people"][5].startswith("#5 succeeded")
    assert table["broken"][2] == "failing" and table["broken"][6] == "-"  # never succeeded
    assert (rows["people"]["health"], rows["broken"]["health"]) == ("healthy", "failing")
    assert "daemon: none running" in proc.stdout
    # where the store is: the text's `store:` line and every JSON row say the same SQLite file
    assert {r["store"] for r in rows.values()} == {str(history.project.db)}
    assert f"store: sqlite:///{history.project.db}" in proc.stdout.replace("\n", "")


def test_status_json_names_a_server_store_with_its_password_masked(project: Project) -> None:
    from conftest import server_db

    db = server_db("postgresql")
    secret = "st0re-pw/x+y"
    try:  # trust authentication: the password is ignored by the server, but it is in the URL all the same
        url = db.url.replace("postgres@", "postgres:${STORE_PW}@", 1)
        assert "${STORE_PW}" in url, db.url
        project.config(f"database: {url}\nsources:\n  - {{name: people, kind: csv, path: people.csv, "
                       "table: people, primary_key: [id], fields: {id: id}}\n")
        proc = project.cli("status", "--json", env={"STORE_PW": secret})
        assert proc.returncode == 0, proc.stderr
        [row] = json.loads(proc.stdout)
        assert row["store"] == db.url.replace("postgres@", "postgres:***@", 1), row["store"]
        text = project.cli("status", env={"STORE_PW": secret}).stdout
        assert "postgres:***@" in text
        for out in (proc.stdout + proc.stderr, text):
            assert secret not in out and "st0re-pw" not in out
    finally:
        db.drop()


def test_runs_filters(history: History) -> None:
    """Newest first; --source, --status and --limit narrow the list; text and --json agree."""
    p = history.project
    all_runs = cli_json(p, "runs")
    assert [r["id"] for r in all_runs] == [5, 4, 3, 2, 1]  # also: no usage error above created a run
    for r in all_runs:
        assert_shape(r, RUN_KEYS)
    assert [r["id"] for r in cli_json(p, "runs", "--source", "orders", "--status", "partial", "--limit", "1")] == [4]
    proc = p.cli("runs", "--status", "succeeded")
    assert proc.returncode == 0
    rows = [[cell.strip() for cell in ln.split("│")[1:-1]] for ln in proc.stdout.splitlines() if ln.startswith("│")]
    assert [(r[0], r[1], r[4]) for r in rows] == [("5", "people", "succeeded"), ("1", "people", "succeeded")]


# ---- show / errors ------------------------------------------------------------------------------------

def test_show_json(history: History) -> None:
    """`show --json`: the run plus phases, errors, changes and a rerun command."""
    data = cli_json(history.project, "show", "2")
    assert_shape(data, RUN_KEYS)
    assert [ph["name"] for ph in data["phases"]] == ["load", "finalize"]
    for ph in data["phases"]:
        assert {"name", "status", "done", "total", "unit", "started_at", "finished_at"} <= set(ph)
        assert ph["status"] == "done"
    assert data["error_count"] == 2 and data["errors"]["total"] == 2 and len(data["errors"]["first"]) == 2
    for e in data["errors"]["first"]:
        assert_shape(e, ERROR_KEYS)
        assert e["run_id"] == 2 and e["source"] == "orders" and e["file"].endswith("orders.csv")
    by_line = {e["line"]: e for e in data["errors"]["first"]}
    assert by_line[3]["error_type"] == "type" and by_line[3]["column"] == "qty" and BAD_QTY in by_line[3]["message"]
    assert by_line[3]["key"] == [2] and by_line[3]["retryable"] is True
    assert by_line[4]["error_type"] == "ragged"
    assert data["change_rows"]["insert"] == [{"key": [1], "before": None, "after": None}]
    assert data["changes"] == {"insert": 1, "update": 0, "delete": 0}
    assert data["changes_recorded"] == {"insert": 1, "update": 0, "delete": 0}
    assert isinstance(data["checkpoint"], dict)
    assert isinstance(data["rerun"], str) and data["rerun"].endswith("run orders")


def test_show_lists_what_changed(history: History) -> None:
    """Updates show field: before -> after; deletes and inserts list their keys."""
    p = history.project
    data = cli_json(p, "show", "5")
    assert data["change_rows"]["update"] == [{"key": [1], "before": {"name": "Ada"}, "after": {"name": NEW_NAME}}]
    assert [c["key"] for c in data["change_rows"]["insert"]] == [[4]]
    assert [c["key"] for c in data["change_rows"]["delete"]] == [[3]]
    assert data["change_rows"]["delete"][0]["before"]["name"] == "Alan"
    proc = p.cli("show", "5")
    assert proc.returncode == 0
    assert f"1: name: 'Ada' -> '{NEW_NAME}'" in proc.stdout  # verbatim: the [b] tags are data
    assert "deletes (1 recorded):" in proc.stdout and "inserts (1 recorded):" in proc.stdout
    assert proc.stdout.rstrip().endswith(f"rerun: syncdash --config {p.root / 'syncdash.yaml'} run people")


def test_show_prints_user_data_verbatim(history: History) -> None:
    """Values and messages that look like rich markup or emoji codes are data: print them as stored."""
    proc = history.project.cli("show", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "run 2 orders (csv) partial, incremental" in out
    assert "counts: 1 inserted, 0 updated, 0 unchanged, 0 deleted, 2 failed, 0 skipped" in out
    assert "phases:\n  load      done" in out and "\n  finalize  done" in out
    assert f"[type] qty (from qty): '{BAD_QTY}' is not an integer" in out
    assert "[ragged] row has 2 columns, header has 3" in out
    assert "errors (2, first 2):" in out
    assert "\N{THUMBS UP SIGN}" not in out


def test_rerun_hint_suggests_full_only_for_incremental_sources(history: History) -> None:
    """`--full` changes nothing for a full-mode source; suggest it only to repeat a forced full sync."""
    p = history.project
    cfg = f"syncdash --config {p.root / 'syncdash.yaml'}"
    assert cli_json(p, "show", "1")["rerun"] == f"{cfg} run people"  # full source: no --full
    assert cli_json(p, "show", "4")["rerun"] == f"{cfg} run orders --full"  # incremental source run --full


def test_errors_filters_and_output(history: History) -> None:
    """Unresolved item errors, by run or source; text shows messages verbatim."""
    p = history.project
    all_errors = cli_json(p, "errors")
    # runs 2 and 4 hit the same two bad rows: two open errors, added by run 2 and seen again by run 4
    assert sorted((e["run_id"], e["last_run_id"], e["occurrences"]) for e in all_errors) == [(2, 4, 2)] * 2
    for e in all_errors:
        assert_shape(e, ERROR_KEYS)
    assert {e["last_run_id"] for e in cli_json(p, "errors", "4", "--source", "orders")} == {4}
    assert cli_json(p, "errors", "--source", "people") == []
    proc = p.cli("errors", "2")
    assert proc.returncode == 0
    assert f"'{BAD_QTY}' is not an integer" in proc.stdout
    assert "ragged" in proc.stdout and "row has 2 columns, header has 3" in proc.stdout
    # the item is the file beside the config and its line, not an absolute path that squeezes the message
    assert "orders.csv:3" in proc.stdout and str(p.root) not in proc.stdout
    assert all(e["item"].startswith(str(p.root)) for e in all_errors)  # JSON keeps the stored item


# ---- export ---------------------------------------------------------------------------------------------

def _live_rows(p: Project, deleted: bool = False) -> list[dict[str, Any]]:
    """The table as SQLite has it, minus the internal _hash column export leaves out."""
    cols = [c[1] for c in p.query("PRAGMA table_info(people)") if c[1] != "_hash"]
    where = "" if deleted else " WHERE _deleted_at IS NULL"
    rows = p.query(f"SELECT {', '.join(cols)} FROM people{where} ORDER BY id")
    return [dict(zip(cols, r, strict=True)) for r in rows]


def test_export_matches_the_table(history: History) -> None:
    """csv and jsonl carry exactly the table's rows; soft-deleted ones only with --include-deleted."""
    p = history.project
    live = _live_rows(p)
    assert [r["id"] for r in live] == [1, 2, 4] and live[0]["name"] == NEW_NAME

    proc = p.cli("export", "people", "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    assert sorted((json.loads(ln) for ln in proc.stdout.splitlines()), key=lambda r: r["id"]) == live

    proc = p.cli("export", "people", "--format", "jsonl", "--include-deleted")
    every = sorted((json.loads(ln) for ln in proc.stdout.splitlines()), key=lambda r: r["id"])
    assert every == _live_rows(p, deleted=True)
    assert [(r["id"], r["_deleted_at"] is not None) for r in every] == [(1, False), (2, False), (3, True),
                                                                      (4, False)]

    proc = p.cli("export", "people", "-o", "nodir/people.csv")
    assert proc.returncode == 2 and "cannot write nodir/people.csv" in proc.stderr, proc.stderr
    proc = p.cli("export", "people", "--format", "csv", "-o", "people.out.csv")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 3 rows" in proc.stderr and proc.stdout == ""
    with open(p.root / "people.out.csv", newline="", encoding="utf-8") as fh:
        exported = sorted(csv.DictReader(fh), key=lambda r: int(r["id"]))
    assert exported == [{k: "" if v is None else str(v) for k, v in r.items()} for r in live]


# ---- init -----------------------------------------------------------------------------------------------

def test_init_writes_a_starter_that_runs(project: Project) -> None:
    """The starter config validates and syncs its sample data into syncdash.db beside it."""
    proc = project.cli("init")
    assert proc.returncode == 0, proc.stderr
    cfg = project.root / "syncdash.yaml"
    starter = cfg.read_text()
    assert (project.root / "data/customers.csv").is_file()

    cfg.write_text("# my edits\n" + starter)
    proc = project.cli("init")
    assert proc.returncode == 2 and "exists" in proc.stderr and "--force" in proc.stderr
    assert cfg.read_text().startswith("# my edits")
    assert project.cli("init", "--force").returncode == 0
    assert cfg.read_text() == starter

    proc = project.cli("validate")
    assert proc.returncode == 0, proc.stderr
    assert "customers (csv) -> table customers" in proc.stdout
    [run] = project.run_json("--all", expect=0)
    assert run["counts"]["inserted"] == 3 and run["counts"]["failed"] == 0
    assert project.db.is_file()  # the starter's `database: sqlite:///syncdash.db`: beside the config
    assert project.query("SELECT id, name, signed_up, balance FROM customers ORDER BY id") == [
        (1, "Ada Lovelace", "2023-12-10", 120.5), (2, "Grace Hopper", "2023-12-09", 0.0),
        (3, "Alan Turing", "2024-06-23", 42.0)]


# ---- cancel ---------------------------------------------------------------------------------------------

def test_ctrl_c_cancels_the_run_with_exit_130(project: Project) -> None:
    """Ctrl-C finishes the current batch, records the run as cancelled and exits 130."""
    project.write("big.csv", "id,v\n" + "".join(f"{i},v{i}\n" for i in range(60_000)))
    project.config("""\
        sources:
          - name: big
            kind: csv
            path: big.csv
            table: big
            primary_key: [id]
            batch_size: 10
            fields: {id: {from: id, type: int}, v: v}
        """)
    proc = project.popen("run", "big")
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the first progress line: the run is under way
        assert "big run 1 load" in first, first
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stdout + stderr
    assert "run 1 cancelled" in stdout
    [run] = cli_json(project, "runs")
    assert run["status"] == "cancelled" and 0 < run["counts"]["inserted"] < 60_000
    assert project.query("SELECT count(*) FROM big")[0][0] == run["counts"]["inserted"]


def test_run_on_a_terminal_shows_live_progress_and_finishes(project: Project) -> None:
    """On a terminal the run shows live bars; it must still end (a console writing to its own redirected
    stderr once looped forever here)."""
    project.write("people.csv", "id,name\n" + "".join(f"{i},[b]n{i}[/b]\n" for i in range(2000)))
    project.config("""\
        sources:
          - name: people
            kind: csv
            path: people.csv
            table: people
            primary_key: [id]
            batch_size: 100
            fields: {id: {from: id, type: int}, name: name}
        """)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "syncdash", "run", "people"], cwd=project.root, env=project.env,
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # keep reading so the child never blocks on a full terminal buffer
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(5)
        os.close(master)
    out = b"".join(chunks).decode(errors="replace")
    assert "100.0%" in out and "run 1 succeeded: 2000 inserted" in out
    assert project.query("SELECT name FROM people WHERE id = 7") == [("[b]n7[/b]",)]
