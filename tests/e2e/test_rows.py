"""Malformed rows: each becomes an item error with file, line, column and reason while the rest loads, and
`retry` re-processes only a run's failed items. Drives the real CLI against real files and SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Project

CONFIG = """\
sources:
  - name: {name}
    kind: csv
    path: data/{name}.csv
    table: {name}
    primary_key: [id]
    batch_size: {batch_size}
    fields:
      id: {{type: int}}
      title: {{required: true}}
      plays: {{type: int}}
      released: {{type: date, format: "%d/%m/%Y"}}
"""


def errors_json(project: Project, *args: str) -> list[dict[str, Any]]:
    proc = project.cli("errors", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def by_line(errors: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out = {e["line"]: e for e in errors}
    assert len(out) == len(errors), f"two errors on one line: {errors}"
    return out


def test_malformed_rows_become_item_errors_with_exact_locations(project: Project) -> None:
    """Ragged rows (both ways), undecodable bytes, bad int, bad date, missing required value, empty key and
    duplicate keys (same batch and across batches) are reported on the right physical line, even after quoted
    multi-line fields and a blank line; every good row still loads and the run ends partial (exit 3)."""
    project.config(CONFIG.format(name="dirty", batch_size=3))
    data = b"".join([
        b"id,title,plays,released\n",  # 1
        b"1,One,10,01/01/2020\n",  # 2
        b'2,"Two\nlines",20,02/01/2020\n',  # 3-4
        b"3,Three,30\n",  # 5 too few fields
        b"4,Four,40,04/01/2020,extra\n",  # 6 too many fields
        b"5,Fi\xffve,50,05/01/2020\n",  # 7 not utf-8
        b"6,Six,abc,06/01/2020\n",  # 8 bad int
        b"7,Seven,70,31/02/2020\n",  # 9 bad date
        b"8,,80,08/01/2020\n",  # 10 missing required title
        b"1,Dup,11,01/01/2020\n",  # 11 duplicate of line 2 (an earlier batch)
        b"\n",  # 12 blank: skipped
        b'9,"Nine ""quoted""\n",90,09/01/2020\n',  # 13-14
        b"9,Nine again,91,09/01/2020\n",  # 15 duplicate within the batch
        b",NoKey,1,01/01/2020\n",  # 16 empty primary key
        b"10,Ten,100,10/01/2020\n",  # 17
    ])
    path = project.write_bytes("data/dirty.csv", data)

    proc = project.cli("run", "dirty", "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    [run] = json.loads(proc.stdout)
    assert run["status"] == "partial"
    assert run["counts"] == {"inserted": 4, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 9,
                             "skipped": 1}
    assert project.query("SELECT id, title, plays, released FROM dirty ORDER BY id") == [
        (1, "One", 10, "2020-01-01"), (2, "Two\nlines", 20, "2020-01-02"), (9, 'Nine "quoted"\n', 90, "2020-01-09"),
        (10, "Ten", 100, "2020-01-10")]

    errs = errors_json(project, str(run["id"]))
    assert len(errs) == 9
    assert all(Path(e["file"]).resolve() == path.resolve() and e["run_id"] == run["id"] for e in errs)
    found = by_line(errs)
    expected = {  # line: (error_type, column, key, words in the message)
        5: ("ragged", None, [3], "3 columns, header has 4"),
        6: ("ragged", None, [4], "5 columns, header has 4"),
        7: ("decode", "title", [5], "not valid utf-8"),
        8: ("type", "plays", [6], "'abc' is not an integer"),
        9: ("type", "released", [7], "'31/02/2020' is not a valid date"),
        10: ("missing", "title", [8], "required value is missing"),
        11: ("duplicate", None, [1], "duplicate key id=1"),
        15: ("duplicate", None, [9], "first on line 13"),
        16: ("missing", "id", None, "primary key value is missing"),
    }
    for line, (etype, column, key, words) in expected.items():
        e = found[line]
        assert (e["error_type"], e["column"], e["key"]) == (etype, column, key), e
        assert words in e["message"], e
        assert e["item"].endswith(f"dirty.csv:{line}"), e
    assert set(found) == set(expected)
    assert {ln for ln, e in found.items() if not e["retryable"]} == {11, 15}
    assert found[8]["payload"] == ["6", "Six", "abc", "06/01/2020"]

    text = project.cli("errors", str(run["id"]))
    assert "dirty.csv:8" in text.stdout and "not an integer" in text.stdout

    # a re-sync of the same file takes the screening path (key + hash first, typing only what differs), in the
    # reader process and inline: the same errors on the same lines, every loaded row unchanged
    for env in ({}, {"SYNCDASH_READER": "inline"}):
        again = project.cli("run", "dirty", "--json", env=env)
        assert again.returncode == 3, again.stdout + again.stderr
        [rerun] = json.loads(again.stdout)
        assert rerun["counts"] == {"inserted": 0, "updated": 0, "unchanged": 4, "deleted": 0, "failed": 9,
                                   "skipped": 1}
        redo = by_line(errors_json(project, str(rerun["id"])))
        assert {ln: (e["error_type"], e["column"], e["key"]) for ln, e in redo.items()} == {
            ln: (e["error_type"], e["column"], e["key"]) for ln, e in found.items()}


def test_line_numbers_on_the_fast_path_with_crlf_and_embedded_newlines(project: Project) -> None:
    """A clean file (no ragged or undecodable rows) maps in bulk; the errors it still finds must point at the
    starting physical line of the record, counting CRLF and LF breaks inside quoted values."""
    project.config(CONFIG.format(name="clean", batch_size=1000))
    project.write_bytes("data/clean.csv", b"".join([
        b"id,title,plays,released\r\n",  # 1
        b'1,"a\r\nb\r\nc",1,01/01/2020\r\n',  # 2-4
        b"2,two,x,01/01/2020\r\n",  # 5
        b'3,"x\ny",3,01/01/2020\r\n',  # 6-7
        b"4,four,4,32/01/2020\r\n",  # 8
        b"5,five,5,01/01/2020",  # 9, no final newline
    ]))
    run = project.run_json("clean", expect=3)[0]
    assert run["counts"]["inserted"] == 3 and run["counts"]["failed"] == 2
    found = by_line(errors_json(project, str(run["id"])))
    assert set(found) == {5, 8}
    assert (found[5]["column"], found[8]["column"]) == ("plays", "released")
    assert project.query("SELECT id, title FROM clean ORDER BY id") == [(1, "a\r\nb\r\nc"), (3, "x\ny"),
                                                                        (5, "five")]


def test_a_failed_row_keeps_its_old_version_and_is_not_deleted(project: Project, tdb: str) -> None:
    """When the new version of a row fails, the stored row stays as it was (not updated, not soft-deleted)."""
    project.config(CONFIG.format(name="keep", batch_size=1000))
    project.write("data/keep.csv", "id,title,plays,released\n1,a,1,01/01/2020\n2,b,2,01/01/2020\n3,c,3,01/01/2020\n")
    first = project.run_json("keep", expect=0)[0]
    project.write("data/keep.csv", "id,title,plays,released\n1,a,1,01/01/2020\n2,b,abc,01/01/2020\n"
                  "3,C,3,01/01/2020\n")
    second = project.run_json("keep", expect=3)[0]
    assert second["counts"] == {"inserted": 0, "updated": 1, "unchanged": 1, "deleted": 0, "failed": 1,
                                "skipped": 0}
    assert project.tquery("SELECT id, title, plays, _run_id, _deleted_at FROM keep ORDER BY id") == [
        (1, "a", 1, first["id"], None), (2, "b", 2, first["id"], None), (3, "C", 3, second["id"], None)]


def test_a_key_whose_first_row_failed_is_not_a_duplicate_anywhere(project: Project, tdb: str) -> None:
    """When the first row with a key fails and a later row with that key is valid, the outcome must not depend
    on batch boundaries, on whether the table was empty (insert-only first load) or on --dry-run: the valid row
    loads and only the broken row is an error."""
    body = "sources:\n" + "".join(CONFIG.format(name=name, batch_size=bs).split("sources:\n", 1)[1]
                                  .replace(f"data/{name}.csv", "data/k.csv") for name, bs in (("small", 2),
                                                                                              ("large", 1000)))
    project.config(body)
    project.write("data/k.csv", "id,title,plays,released\n1,a,x,01/01/2020\n2,b,2,01/01/2020\n"
                  "1,a2,1,01/01/2020\n3,c,3,01/01/2020\n2,b2,2,01/01/2020\n")
    want = {"inserted": 3, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 2, "skipped": 0}
    for args in (("--all", "--dry-run"), ("--all",)):
        results = project.run_json(*args, expect=3)
        assert [r["counts"] for r in results] == [want, want], args
    for name in ("small", "large"):
        assert project.tquery(f"SELECT id, title FROM {name} ORDER BY id") == [(1, "a2"), (2, "b"), (3, "c")]
    again = project.run_json("--all", expect=3)
    assert [r["counts"] for r in again] == [{**want, "inserted": 0, "unchanged": 3}] * 2
    lines = {(e["line"], e["error_type"]) for e in errors_json(project, str(again[0]["id"]))}
    assert lines == {(2, "type"), (6, "duplicate")}


def test_retry_reprocesses_only_the_failed_items(project: Project, tdb: str) -> None:
    """After the data is fixed in place, `retry RUN` loads the failed lines that now parse (resolved as fixed),
    leaves rows that did not fail alone, keeps still-broken lines as unresolved errors and never retries
    duplicates."""
    project.config("""\
        sources:
          - name: items
            kind: csv
            path: data/items.csv
            table: items
            primary_key: [id]
            fields: {id: {type: int}, name: name, qty: {type: int}}
        """)
    project.write("data/items.csv", "id,name,qty\n1,a,1\n2,b,x\n3,c\n4,d,4\n4,dd,5\n5,e,y\n")
    run = project.run_json("items", expect=3)[0]
    assert run["counts"]["inserted"] == 2 and run["counts"]["failed"] == 4
    first_errors = by_line(errors_json(project, str(run["id"])))
    assert set(first_errors) == {3, 4, 6, 7}

    # lines 3 and 4 fixed, line 7 still broken, and line 2 changed although it never failed
    project.write("data/items.csv", "id,name,qty\n1,CHANGED,1\n2,b,2\n3,c,3\n4,d,4\n4,dd,5\n5,e,y\n")
    proc = project.cli("retry", str(run["id"]), "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    [retry] = json.loads(proc.stdout)
    assert (retry["mode"], retry["parent_run_id"], retry["status"]) == ("retry", run["id"], "partial")
    assert retry["counts"] == {"inserted": 2, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 1,
                               "skipped": 0}
    assert project.tquery("SELECT id, name, qty FROM items ORDER BY id") == [
        (1, "a", 1), (2, "b", 2), (3, "c", 3), (4, "d", 4)]

    every = errors_json(project, "--all")
    old = by_line([e for e in every if e["run_id"] == run["id"]])
    assert old[3]["resolution"] == old[4]["resolution"] == "fixed"
    assert old[3]["resolved_at"] and old[4]["resolved_at"]
    assert old[6]["resolution"] is None and old[6]["retryable"] is False
    assert old[7]["resolution"] != "fixed"
    unresolved = [e for e in every if e["resolved_at"] is None]
    # line 7 failed again the same way: its one open error is updated in place, now last seen by the retry
    assert sorted((e["line"], e["run_id"], e["last_run_id"]) for e in unresolved) == [
        (6, run["id"], run["id"]), (7, run["id"], retry["id"])]
    assert [(e["attempts"], e["occurrences"]) for e in unresolved if e["line"] == 7] == [(2, 2)]
    assert len(every) == 4  # no second row for line 7
    assert sorted(e["line"] for e in errors_json(project, str(run["id"]))) == [6, 7]
    assert [e["line"] for e in errors_json(project, str(retry["id"]))] == [7]


def test_retry_matches_errors_whose_stored_path_is_masked(project: Project) -> None:
    """A ${VAR} in the path is masked in stored item errors and checkpoints; retry must still find those lines."""
    secret = "dir-s3cr3t-42"
    env = {"DATA_DIR": secret}
    project.config("""\
        sources:
          - name: items
            kind: csv
            path: ${DATA_DIR}/items.csv
            table: items
            primary_key: [id]
            fields: {id: {type: int}, qty: {type: int}}
        """)
    project.write(f"{secret}/items.csv", "id,qty\n1,1\n2,x\n")
    run = project.run_json("items", expect=3, env=env)[0]
    stored = project.query("SELECT item, file, message FROM syncdash_item_errors") + project.query(
        "SELECT checkpoint, coalesce(warnings, '') FROM syncdash_runs") + project.query(
        "SELECT coalesce(detail, '') FROM syncdash_run_phases")
    assert secret not in json.dumps(stored)
    [(item,)] = project.query("SELECT item FROM syncdash_item_errors")
    assert item.endswith("/***/items.csv:3")

    project.write(f"{secret}/items.csv", "id,qty\n1,1\n2,2\n")
    proc = project.cli("retry", str(run["id"]), "--json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)[0]["counts"]["inserted"] == 1
    assert project.query("SELECT resolution FROM syncdash_item_errors WHERE run_id=?", (run["id"],)) == [("fixed",)]
    assert project.query("SELECT id, qty FROM items ORDER BY id") == [(1, 1), (2, 2)]


def test_retry_json_with_nothing_to_retry_is_still_json(project: Project) -> None:
    """Scripts parse `retry RUN --json`; a run without retryable errors must still give JSON (an empty list)."""
    project.config(CONFIG.format(name="fine", batch_size=10))
    project.write("data/fine.csv", "id,title,plays,released\n1,a,1,01/01/2020\n")
    run = project.run_json("fine", expect=0)[0]
    proc = project.cli("retry", str(run["id"]), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
