"""End-to-end sync semantics: types, change detection, change log, deletes, delete guard, dry runs, CSV options
and whole-source failures. Every test drives the real `syncdash` CLI against real files and a real SQLite store;
tests taking `tdb` run three times, with the target tables in SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import os
from typing import Any

from conftest import Project

BOOKKEEPING = ["_synced_at", "_run_id", "_hash", "_deleted_at"]

SIMPLE = """\
sources:
  - name: items
    kind: csv
    path: data/items.csv
    table: items
    primary_key: [id]
    {extra}
    fields:
      id: {{type: int}}
      name: name
      qty: {{type: int}}
      city: city
"""


def run1(project: Project, *args: str, expect: int) -> dict[str, Any]:
    """One source's run result from `run --json`, after checking the exit code."""
    results = project.run_json(*args, expect=expect)
    assert len(results) == 1, results
    return results[0]


def dump(project: Project, table: str) -> list[tuple[Any, ...]]:
    return project.tquery(f"SELECT * FROM {table} ORDER BY 1")


def rows_by_id(project: Project, table: str, cols: str) -> dict[Any, tuple[Any, ...]]:
    return {r[0]: r[1:] for r in project.tquery(f"SELECT id, {cols} FROM {table}")}


def counts(inserted: int = 0, updated: int = 0, unchanged: int = 0, deleted: int = 0, failed: int = 0,
           skipped: int = 0) -> dict[str, int]:
    return {"inserted": inserted, "updated": updated, "unchanged": unchanged, "deleted": deleted,
            "failed": failed, "skipped": skipped}


def changes_of(project: Project, run_id: int) -> list[tuple[str, Any, Any, Any]]:
    """The change log rows of a run, decoded, in a stable order."""
    rows = project.query("SELECT change, key, before, after FROM syncdash_changes WHERE run_id=? ORDER BY id",
                         (run_id,))
    return [(c, json.loads(k), json.loads(b) if b else None, json.loads(a) if a else None) for c, k, b, a in rows]


def table_exists(project: Project, table: str) -> bool:
    if project.dialect == "sqlite":
        return bool(project.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)))
    schema = "current_schema()" if project.dialect == "postgresql" else "DATABASE()"
    return bool(project.tquery(f"SELECT 1 FROM information_schema.tables WHERE table_schema = {schema} "
                               "AND table_name = ?", (table,)))


# ---- types and bookkeeping ---------------------------------------------------------------------------------


def test_every_type_is_converted_and_bookkeeping_columns_are_added(project: Project, tdb: str) -> None:
    """The table gets the fields plus _synced_at/_run_id/_hash/_deleted_at, and each type stores its canonical
    value (ISO dates, canonical JSON, 0/1 booleans, defaults for empty values)."""
    project.config("""\
        sources:
          - name: typed
            kind: csv
            path: data/typed.csv
            table: typed
            primary_key: [id]
            fields:
              id: {type: int}
              title: {required: true}
              plays: {type: int, default: 0}
              price: {type: float}
              active: {type: bool}
              released: {type: date, format: "%d/%m/%Y"}
              day: {type: date}
              seen_at: {type: datetime}
              stamp: {type: datetime, format: "%d/%m/%Y %H:%M"}
              meta: {type: json}
              note: {from: comment}
        """)
    project.write("data/typed.csv", "\n".join([
        "id,title,plays,price,active,released,day,seen_at,stamp,meta,comment",
        '1,Alpha,12,1.5,yes,01/02/2020,2021-03-04,2024-04-01T10:00:00Z,01/02/2020 13:45,"{""b"": 1, ""a"": [1, 2]}",hi',
        "2,Beta,,2,0,31/12/1999,2021-03-04T23:59:00,2024-04-01 10:00:00+02:00,31/12/1999 00:00,[],",
        '3,Gamma,3.0,-0.25,False,29/02/2024,1999-01-01,2024-04-01T10:00:00,01/01/2000 09:05,"{""z"": null}",x',
    ]) + "\n")
    run = run1(project, "typed", expect=0)
    assert run["status"] == "succeeded"
    assert run["counts"] == counts(inserted=3)

    if tdb == "sqlite":
        info = project.query("PRAGMA table_info(typed)")
        assert [(r[1], r[2]) for r in info] == [
            ("id", "INTEGER"), ("title", "TEXT"), ("plays", "INTEGER"), ("price", "REAL"), ("active", "INTEGER"),
            ("released", "TEXT"), ("day", "TEXT"), ("seen_at", "TEXT"), ("stamp", "TEXT"), ("meta", "TEXT"),
            ("note", "TEXT"), ("_synced_at", "TEXT"), ("_run_id", "INTEGER"), ("_hash", "INTEGER"),
            ("_deleted_at", "TEXT")]
        assert [r[1] for r in info if r[5]] == ["id"]
        storage = project.query("SELECT DISTINCT typeof(id), typeof(plays), typeof(price), typeof(active), "
                                "typeof(_run_id), typeof(_hash) FROM typed")
        assert storage == [("integer", "integer", "real", "integer", "integer", "integer")]
    else:  # each server's own types: dates as DATE, booleans as BOOLEAN, JSON as JSONB/JSON
        schema = "current_schema()" if tdb == "postgresql" else "DATABASE()"
        info = project.tquery(f"SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
                              f"{schema} AND table_name = 'typed' ORDER BY ordinal_position")
        want = {"postgresql": ["bigint", "text", "bigint", "double precision", "boolean", "date", "date", "text",
                               "text", "jsonb", "text", "timestamp without time zone", "bigint", "bigint",
                               "timestamp without time zone"],
                "mysql": ["bigint", "longtext", "bigint", "double", "tinyint", "date", "date", "varchar", "varchar",
                          "longtext", "longtext", "datetime", "bigint", "bigint", "datetime"]}[tdb]
        assert [r[0] for r in info] == ["id", "title", "plays", "price", "active", "released", "day", "seen_at",
                                        "stamp", "meta", "note", "_synced_at", "_run_id", "_hash", "_deleted_at"]
        assert [r[1].lower() for r in info] == want

    values = project.tquery("SELECT id, title, plays, price, active, released, day, seen_at, stamp, meta, note "
                           "FROM typed ORDER BY id")
    assert values == [
        (1, "Alpha", 12, 1.5, 1, "2020-02-01", "2021-03-04", "2024-04-01T10:00:00+00:00", "2020-02-01T13:45:00",
         '{"a":[1,2],"b":1}', "hi"),
        (2, "Beta", 0, 2.0, 0, "1999-12-31", "2021-03-04", "2024-04-01T10:00:00+02:00", "1999-12-31T00:00:00",
         "[]", None),
        (3, "Gamma", 3, -0.25, 0, "2024-02-29", "1999-01-01", "2024-04-01T10:00:00", "2000-01-01T09:05:00",
         '{"z":null}', "x"),
    ]
    book = project.tquery("SELECT _synced_at, _run_id, _deleted_at FROM typed")
    assert {r[1] for r in book} == {run["id"]}
    assert all(r[0] and r[2] is None for r in book)


# ---- change detection and the change log ---------------------------------------------------------------------


def test_rerun_of_the_same_file_rewrites_nothing(project: Project, tdb: str) -> None:
    """A second run over identical input reports every row unchanged and leaves every stored byte alone,
    including rows mapped by the slow path ("3.0" as int) and multi-line values."""
    project.config(SIMPLE.format(extra=""))
    project.write("data/items.csv", 'id,name,qty,city\n1,a,1,X\n2,"two\nlines",3.0,Y\n3,c,3,\n')
    first = run1(project, "items", expect=0)
    assert first["counts"] == counts(inserted=3)
    before = dump(project, "items")

    second = run1(project, "items", expect=0)
    assert second["id"] != first["id"]
    assert second["counts"] == counts(unchanged=3)
    assert second["sample"] == []
    assert dump(project, "items") == before
    assert {r[0] for r in project.tquery("SELECT _run_id FROM items")} == {first["id"]}
    assert changes_of(project, second["id"]) == []


def test_updates_inserts_deletes_and_revival_are_recorded(project: Project, tdb: str) -> None:
    """Changed rows keep only their changed fields as before/after, unchanged rows keep their first run's
    bookkeeping, absent rows are soft-deleted and a soft-deleted row that comes back is revived."""
    project.config(SIMPLE.format(extra=""))
    project.write("data/items.csv", "id,name,qty,city\n1,a,1,X\n2,b,2,Y\n3,c,3,Z\n4,d,4,W\n")
    r1 = run1(project, "items", expect=0)
    first = rows_by_id(project, "items", "_synced_at, _run_id")

    project.write("data/items.csv", "id,name,qty,city\n1,a,1,X\n2,B,2,Y\n3,c,30,ZZ\n5,e,5,V\n")
    r2 = run1(project, "items", expect=0)
    assert r2["counts"] == counts(inserted=1, updated=2, unchanged=1, deleted=1)

    after = rows_by_id(project, "items", "name, qty, city, _synced_at, _run_id, _deleted_at")
    assert after[1][3:5] == first[1]  # unchanged row: not rewritten
    assert after[2][:3] == ("B", 2, "Y") and after[2][4] == r2["id"] and after[2][5] is None
    assert after[3][:3] == ("c", 30, "ZZ") and after[3][4] == r2["id"]
    assert after[4][:3] == ("d", 4, "W") and after[4][5] is not None  # soft delete keeps the values
    assert after[5][:3] == ("e", 5, "V") and after[5][4] == r2["id"]

    show = json.loads(project.cli("show", str(r2["id"]), "--json").stdout)
    assert show["counts"] == r2["counts"]
    assert show["changes_recorded"] == {"insert": 1, "update": 2, "delete": 1}
    assert show["change_rows"]["update"] == [
        {"key": [2], "before": {"name": "b"}, "after": {"name": "B"}},
        {"key": [3], "before": {"qty": 3, "city": "Z"}, "after": {"qty": 30, "city": "ZZ"}},
    ]
    assert [c["key"] for c in show["change_rows"]["insert"]] == [[5]]
    assert show["change_rows"]["delete"] == [
        {"key": [4], "before": {"id": 4, "name": "d", "qty": 4, "city": "W"}, "after": None}]
    assert sorted((c, k) for c, k, _, _ in changes_of(project, r2["id"])) == [
        ("delete", [4]), ("insert", [5]), ("update", [2]), ("update", [3])]
    assert changes_of(project, r1["id"]) and all(c == "insert" for c, *_ in changes_of(project, r1["id"]))

    project.write("data/items.csv", "id,name,qty,city\n1,a,1,X\n2,B,2,Y\n3,c,30,ZZ\n4,d,4,W\n5,e,5,V\n")
    r3 = run1(project, "items", expect=0)
    assert r3["counts"] == counts(updated=1, unchanged=4)
    revived = rows_by_id(project, "items", "name, _run_id, _deleted_at")[4]
    assert revived == ("d", r3["id"], None)
    [(change, key, before, after_)] = changes_of(project, r3["id"])
    assert (change, key, after_) == ("update", [4], {"_deleted_at": None})
    assert before["_deleted_at"] == after[4][5]


def test_max_changes_caps_the_change_log_but_not_the_counts(project: Project, tdb: str) -> None:
    """Retention: at most max_changes keys per run and change kind are kept; the counts stay exact."""
    project.config(SIMPLE.format(extra="max_changes: 2"))
    project.write("data/items.csv", "id,name,qty,city\n" + "".join(f"{i},n{i},{i},C\n" for i in range(1, 6)))
    r1 = run1(project, "items", expect=0)
    assert r1["counts"] == counts(inserted=5)
    project.write("data/items.csv", "id,name,qty,city\n" + "".join(f"{i},n{i},{i * 10},C\n" for i in range(1, 6)))
    r2 = run1(project, "items", expect=0)
    assert r2["counts"] == counts(updated=5)
    for run_id, kind in ((r1["id"], "insert"), (r2["id"], "update")):
        kept = changes_of(project, run_id)
        assert len(kept) == 2 and {c for c, *_ in kept} == {kind}
    assert project.tquery("SELECT count(*) FROM items WHERE qty >= 10") == [(5,)]


# ---- deletes -------------------------------------------------------------------------------------------------


def test_delete_modes_and_incremental(project: Project, tdb: str) -> None:
    """soft marks absent rows, hard removes them, keep keeps them, and incremental never deletes (but upserts)."""
    body = "sources:\n"
    for name, mode in (("soft", "deletes: soft"), ("hard", "deletes: hard"), ("keep", "deletes: keep"),
                       ("incr", "mode: incremental")):
        body += f"""\
  - name: {name}
    kind: csv
    path: data/d.csv
    table: t_{name}
    primary_key: [id]
    {mode}
    fields: {{id: {{type: int}}, name: name, qty: {{type: int}}}}
"""
    project.config(body)
    project.write("data/d.csv", "id,name,qty\n1,a,1\n2,b,2\n3,c,3\n4,d,4\n")
    first = project.run_json("--all", expect=0)
    assert [r["counts"]["inserted"] for r in first] == [4, 4, 4, 4]

    project.write("data/d.csv", "id,name,qty\n1,a,1\n2,b,2\n3,c,33\n5,e,5\n")
    second = {r["source"]: r for r in project.run_json("--all", expect=0)}
    assert second["soft"]["counts"] == counts(inserted=1, updated=1, unchanged=2, deleted=1)
    assert second["hard"]["counts"] == counts(inserted=1, updated=1, unchanged=2, deleted=1)
    assert second["keep"]["counts"] == counts(inserted=1, updated=1, unchanged=2)
    assert second["incr"]["counts"] == counts(inserted=1, updated=1, unchanged=2)
    assert second["incr"]["mode"] == "incremental"

    def state(table: str) -> dict[int, tuple[Any, ...]]:
        return {r[0]: r[1:] for r in project.tquery(f"SELECT id, qty, _deleted_at IS NOT NULL FROM {table}")}

    live = {1: (1, 0), 2: (2, 0), 3: (33, 0), 5: (5, 0)}
    assert state("t_soft") == {**live, 4: (4, 1)}
    assert state("t_hard") == live
    assert state("t_keep") == {**live, 4: (4, 0)}
    assert state("t_incr") == {**live, 4: (4, 0)}


def test_delete_guard_refuses_to_delete_most_of_the_table(project: Project, tdb: str) -> None:
    """A full sync that would delete more than max_delete_ratio of the live rows fails and deletes nothing;
    a higher ratio lets the same input through."""
    project.config(SIMPLE.format(extra=""))
    project.write("data/items.csv", "id,name,qty,city\n" + "".join(f"{i},n{i},{i},C\n" for i in range(1, 11)))
    run1(project, "items", expect=0)
    project.write("data/items.csv", "id,name,qty,city\n" + "".join(f"{i},n{i},{i},C\n" for i in range(1, 5)))

    tripped = run1(project, "items", expect=1)
    assert tripped["status"] == "failed"
    assert tripped["error_type"] == "delete_guard"
    assert "would delete 6 of 10 rows" in tripped["error"]
    assert "max_delete_ratio" in tripped["error"] and "nothing was deleted" in tripped["error"]
    assert tripped["counts"]["deleted"] == 0
    assert project.tquery("SELECT count(*) FROM items WHERE _deleted_at IS NULL") == [(10,)]
    assert [c for c, *_ in changes_of(project, tripped["id"]) if c == "delete"] == []

    project.config(SIMPLE.format(extra="max_delete_ratio: 0.6"))
    passed = run1(project, "items", expect=0)
    assert passed["counts"] == counts(unchanged=4, deleted=6)
    assert project.tquery("SELECT id FROM items WHERE _deleted_at IS NULL ORDER BY id") == [(1,), (2,), (3,), (4,)]


# ---- dry run -------------------------------------------------------------------------------------------------


def test_dry_run_reports_the_real_runs_counts_and_writes_nothing(project: Project, tdb: str) -> None:
    """--dry-run goes through mapping, change detection and the delete plan, but the target stays untouched;
    its counts match the real run that follows."""
    project.config(SIMPLE.format(extra=""))
    project.write("data/items.csv", "id,name,qty,city\n1,a,1,X\n2,b,2,Y\n3,c,3,Z\n4,d,4,W\n")
    dry = run1(project, "items", "--dry-run", expect=0)
    assert dry["dry_run"] is True and dry["status"] == "succeeded"
    assert dry["counts"] == counts(inserted=4)
    assert sorted(s["key"] for s in dry["sample"] if s["change"] == "insert") == [[1], [2], [3], [4]]
    assert not table_exists(project, "items")
    real = run1(project, "items", expect=0)
    assert real["counts"] == dry["counts"]
    before = dump(project, "items")

    project.write("data/items.csv", "id,name,qty,city\n1,a,1,X\n2,B,2,Y\n3,c,30,Z\n5,e,5,V\n6,f,oops,U\n")
    dry2 = run1(project, "items", "--dry-run", expect=3)
    assert dry2["status"] == "partial"
    assert dry2["counts"] == counts(inserted=1, updated=2, unchanged=1, deleted=1, failed=1)
    sample = {(s["change"], tuple(s["key"])): s for s in dry2["sample"]}
    assert sample[("update", (2,))]["before"] == {"name": "b"} and sample[("update", (2,))]["after"] == {"name": "B"}
    assert sample[("delete", (4,))]["before"]["name"] == "d"
    assert ("insert", (5,)) in sample
    assert dump(project, "items") == before

    real2 = run1(project, "items", expect=3)
    assert real2["counts"] == dry2["counts"]
    assert dump(project, "items") != before


# ---- CSV options ---------------------------------------------------------------------------------------------


def test_csv_options_glob_delimiters_quotechar_encodings_and_no_header(project: Project) -> None:
    """Globs read several files as one source; ';' and tab delimiters, a custom quotechar, latin-1, utf-8-sig
    (and a BOM under plain utf-8) and header-less files with 1-based column numbers all load the right values."""
    project.config("""\
        sources:
          - name: glob
            kind: csv
            path: data/parts/p-*.csv
            table: globbed
            primary_key: [id]
            csv: {delimiter: ";", quotechar: "'"}
            fields: {id: {type: int}, name: name}
          - name: tsv
            kind: csv
            path: data/nh.tsv
            table: noheader
            primary_key: [id]
            csv: {delimiter: "\\t", header: false}
            fields: {id: {from: 2, type: int}, name: {from: 1}}
          - name: latin
            kind: csv
            path: data/latin.csv
            table: latin
            primary_key: [id]
            csv: {encoding: latin-1}
            fields: {id: {type: int}, name: name}
          - name: sig
            kind: csv
            path: data/sig.csv
            table: sig
            primary_key: [id]
            csv: {encoding: utf-8-sig}
            fields: {id: {type: int}, name: name}
          - name: bom
            kind: csv
            path: data/bom.csv
            table: bom
            primary_key: [id]
            fields: {id: {type: int}, name: name}
        """)
    project.write("data/parts/p-1.csv", "id;name\n1;'a;b'\n2;'multi\nline'\n")
    project.write("data/parts/p-2.csv", "id;name\n3;'it''s'\n")
    project.write("data/parts/other.csv", "id;name\n99;not matched\n")
    project.write("data/nh.tsv", "alpha\t10\tignored\nbeta, gamma\t20\n")
    project.write_bytes("data/latin.csv", b"id,name\n1,caf\xe9\n2,na\xefve\n")
    project.write_bytes("data/sig.csv", "\ufeffid,name\n1,café\n".encode())
    project.write_bytes("data/bom.csv", "\ufeffid,name\n7,über\n".encode())

    results = {r["source"]: r for r in project.run_json("--all", expect=0)}
    assert {s: r["status"] for s, r in results.items()} == dict.fromkeys(("glob", "tsv", "latin", "sig", "bom"),
                                                                         "succeeded")
    assert project.query("SELECT id, name FROM globbed ORDER BY id") == [(1, "a;b"), (2, "multi\nline"),
                                                                          (3, "it's")]
    assert project.query("SELECT id, name FROM noheader ORDER BY id") == [(10, "alpha"), (20, "beta, gamma")]
    assert project.query("SELECT id, name FROM latin ORDER BY id") == [(1, "café"), (2, "naïve")]
    assert project.query("SELECT id, name FROM sig") == [(1, "café")]
    assert project.query("SELECT id, name FROM bom") == [(7, "über")]


def test_header_false_rejects_column_zero(project: Project) -> None:
    """Column numbers are 1-based: `from: 0` must be a config error, not a silent read of the last column."""
    project.config("""\
        sources:
          - name: tsv
            kind: csv
            path: data/nh.csv
            table: noheader
            primary_key: [id]
            csv: {header: false}
            fields: {id: {from: 1, type: int}, name: {from: 0}}
        """)
    project.write("data/nh.csv", "1,a,last\n")
    proc = project.cli("run", "tsv")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "1-based column number" in proc.stderr
    assert "syncdash.yaml:9: sources.0.fields.name.from:" in proc.stderr  # line 1 is the added database:
    assert not project.db.exists() or not table_exists(project, "noheader")


# ---- whole-source failures -----------------------------------------------------------------------------------


def test_unreadable_sources_fail_the_run_and_say_what_is_missing(project: Project) -> None:
    """A missing file, a directory, an empty glob, an empty file, an unreadable file and a header without a
    mapped column each fail their run (exit 1) with a message naming the file or column."""
    sources = {
        "missing": "data/nope.csv",
        "isdir": "data/adir",
        "noglob": "data/none-*.csv",
        "empty": "data/empty.csv",
        "header": "data/header.csv",
    }
    as_root = os.geteuid() == 0
    if not as_root:  # root reads a chmod 000 file, so there the directory case stands in for it
        sources["locked"] = "data/locked.csv"
    body = "sources:\n" + "".join(f"""\
  - name: {name}
    kind: csv
    path: {path}
    table: t_{name}
    primary_key: [id]
    fields: {{id: {{type: int}}, title: {{from: song_name}}}}
""" for name, path in sources.items())
    project.config(body)
    (project.root / "data/adir").mkdir(parents=True)
    project.write("data/empty.csv", "")
    project.write("data/header.csv", "id,name\n1,x\n")
    if not as_root:
        locked = project.write("data/locked.csv", "id,song_name\n1,x\n")
        locked.chmod(0)

    proc = project.cli("run", "--all", "--json")
    assert proc.returncode == 1, proc.stderr
    results = {r["source"]: r for r in json.loads(proc.stdout)}
    assert set(results) == set(sources)
    assert all(r["status"] == "failed" and r["counts"]["inserted"] == 0 for r in results.values())
    err = {name: r["error"] for name, r in results.items()}
    assert "file not found" in err["missing"] and "nope.csv" in err["missing"]
    assert "not a file" in err["isdir"] and "adir" in err["isdir"]
    assert "no file matches" in err["noglob"] and "none-*.csv" in err["noglob"]
    assert "empty" in err["empty"] and "empty.csv" in err["empty"]
    assert "header.csv" in err["header"] and "'song_name'" in err["header"] and "lacks" in err["header"]
    assert "'id'" not in err["header"].split("header has")[0]
    if not as_root:
        assert "locked.csv" in err["locked"] and "denied" in err["locked"].lower()

    single = project.cli("run", "header")
    assert single.returncode == 1
    assert "song_name" in single.stdout + single.stderr


# ---- scale -----------------------------------------------------------------------------------------------------


def test_full_resync_of_int_and_composite_keys_stays_fast(project: Project, tdb: str) -> None:
    """Key lookups and the absent-row scan must use the primary key: an unindexed plan is quadratic and takes
    minutes on 20k rows (a composite-key lookup scanned the whole table per batch; an untyped seen-key set
    could not be searched by INTEGER keys). Also checks composite-key upserts and deletes."""
    project.config("""\
        sources:
          - name: single
            kind: csv
            path: data/rows.csv
            table: single
            primary_key: [id]
            fields: {id: {type: int}, region: region, num: {type: int}, v: v}
          - name: pair
            kind: csv
            path: data/rows.csv
            table: pair
            primary_key: [region, num]
            fields: {region: region, num: {type: int}, v: v}
        """)
    n = 20_000

    def write(version: int) -> None:
        lines = ["id,region,num,v"]
        for i in range(n):
            if version == 2 and i == 7:
                continue
            v = f"v{i}" + ("x" if version == 2 and i % 1000 == 0 else "")
            lines.append(f"{i},r{i % 7},{i},{v}")
        project.write("data/rows.csv", "\n".join(lines) + "\n")

    write(1)
    first = json.loads(project.cli("run", "--all", "--json", timeout=60).stdout)
    assert [r["counts"]["inserted"] for r in first] == [n, n]
    write(2)
    proc = project.cli("run", "--all", "--json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    second = {r["source"]: r for r in json.loads(proc.stdout)}
    for name in ("single", "pair"):
        assert second[name]["counts"] == counts(updated=20, unchanged=n - 21, deleted=1), name
    assert project.tquery("SELECT region, num, v FROM pair WHERE num IN (1000, 7) ORDER BY num") == [
        ("r0", 7, "v7"), ("r6", 1000, "v1000x")]
    assert project.tquery("SELECT count(*) FROM pair WHERE _deleted_at IS NOT NULL") == [(1,)]
    assert project.tquery("SELECT num FROM pair WHERE _deleted_at IS NOT NULL") == [(7,)]
