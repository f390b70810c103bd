"""One open error per failing item: the same bad row over several runs is one open error seen N times, a dry
run neither adds nor touches open errors nor counts as the source's last run, and a later full run resolves an
error by itself (fixed when the item loads, gone when it left the source). Real CLI, real SQLite file, and
the same over a PostgreSQL store."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Project, server_db
from test_flows import apis  # noqa: F401  (fixture)
from test_flows import config as flow_config

from syncdash_demo.sampleflow import RegistrationApi, ScoringApi

CONFIG = """\
sources:
  - name: items
    kind: csv
    path: data/items.csv
    table: items
    primary_key: [id]
    fields: {id: {type: int}, name: name, qty: {type: int}}
"""
BAD = "id,name,qty\n1,a,1\n42,bad,x\n3,c,3\n,nokey,4\n"


def errors(project: Project, *args: str) -> list[dict[str, Any]]:
    proc = project.cli("errors", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_same_failing_row_over_five_runs_is_one_open_error_seen_five_times(project: Project, store: str) -> None:
    db = server_db("postgresql") if store == "postgresql" else None
    try:
        project.config(CONFIG if db is None else f"database: {db.url}\n" + CONFIG)
        project.write("data/items.csv", BAD)
        runs = [project.run_json("items", expect=3)[0] for _ in range(5)]
        assert all(r["counts"]["failed"] == 2 for r in runs)
        open_ = errors(project)
        # the bad qty of key 42, and the row without a key (known by file and line)
        assert sorted((e["item"].rsplit("/", 1)[-1], e["occurrences"]) for e in open_) == [
            ("items.csv:3", 5), ("items.csv:5", 5)]
        for e in open_:
            assert (e["run_id"], e["last_run_id"]) == (runs[0]["id"], runs[-1]["id"])
            assert e["seen"].startswith("seen 5 times, first ") and ", last " in e["seen"]
            assert e["first_seen_at"] <= e["last_seen_at"]
        assert len(errors(project, "--all")) == 2  # no row per run
        # the first run (which added them) and the last run (which saw them last) list them
        assert len(errors(project, str(runs[0]["id"]))) == len(errors(project, str(runs[-1]["id"]))) == 2
        table = project.cli("errors")
        assert table.returncode == 0 and "5x, last " in table.stdout

        # a dry run reports what would fail in its own result, touches no open error, and is not the last run
        dry = project.run_json("items", "--dry-run", expect=3)[0]
        assert dry["dry_run"] and dry["counts"]["failed"] == 2
        [note] = [w for w in dry["warnings"] if w.startswith("dry run: 2 item(s) would fail: ")]
        assert "items.csv:3: " in note and "items.csv:5: " in note
        assert [e["occurrences"] for e in errors(project)] == [5, 5]
        [status] = json.loads(project.cli("status", "--json").stdout)
        assert status["last_run"] == runs[-1]["id"]
        shown = json.loads(project.cli("show", str(dry["id"]), "--json").stdout)
        assert shown["errors"]["total"] == 2 and shown["errors"]["unresolved"] == 0

        # key 42 fixed and the keyless row gone: the next full run resolves both by itself
        project.write("data/items.csv", "id,name,qty\n1,a,1\n42,bad,42\n3,c,3\n")
        fixed = project.run_json("items", expect=0)[0]
        assert errors(project) == []
        every = {e["item"].rsplit("/", 1)[-1]: e for e in errors(project, "--all") if e["resolution"] != "dry run"}
        assert (every["items.csv:3"]["resolution"], every["items.csv:5"]["resolution"]) == ("fixed", "gone")
        assert every["items.csv:3"]["resolved_at"] is not None
        assert fixed["counts"]["inserted"] == 1
    finally:
        if db is not None:
            db.drop()


def test_a_row_failing_again_after_it_was_fixed_opens_a_new_error(project: Project) -> None:
    """Resolved errors stay history: the same item failing later is a new open error, seen once."""
    project.config(CONFIG)
    project.write("data/items.csv", BAD)
    project.run_json("items", expect=3)
    project.write("data/items.csv", "id,name,qty\n1,a,1\n42,bad,42\n")
    project.run_json("items", expect=0)
    project.write("data/items.csv", "id,name,qty\n1,a,1\n42,bad,y\n")
    later = project.run_json("items", expect=3)[0]
    [e] = errors(project)
    assert (e["run_id"], e["occurrences"], e["seen"].startswith("seen once")) == (later["id"], 1, True)


def test_payload_over_64_kb_is_cut_and_flagged(project: Project) -> None:
    project.config(CONFIG)
    project.write("data/items.csv", "id,name,qty\n1," + "é" * 70_000 + ",x\n")
    project.run_json("items", expect=3)
    [e] = errors(project)
    assert e["payload_truncated"] is True and isinstance(e["payload"], str)
    [(n,)] = project.query("SELECT length(CAST(payload AS BLOB)) FROM syncdash_item_errors")
    assert 60_000 < n <= 64 * 1024


def test_a_push_rejected_on_every_run_is_one_open_error_fixed_by_the_run_that_gets_it_through(
        project: Project, apis: tuple[RegistrationApi, ScoringApi]) -> None:  # noqa: F811
    reg, score = apis
    flow_config(project, reg, score)
    score.reject_bibs = {103}
    project.run_json("race_day", expect=3)
    reg.set_participant("acme", 1003, last_name="Changed")  # so the next run sends it again
    project.run_json("race_day", expect=3)
    [e] = errors(project)
    assert (e["error_type"], e["occurrences"], e["item"]) == ("rejected", 2, "key tenant='acme', id=1003")
    score.reject_bibs.clear()
    reg.set_participant("acme", 1003, last_name="Again")
    project.run_json("race_day", expect=0)  # a plain run, not a retry, gets it through
    assert errors(project) == []
    assert [x["resolution"] for x in errors(project, "--all")] == ["fixed"]
