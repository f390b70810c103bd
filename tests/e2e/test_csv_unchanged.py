"""Issue 18: a CSV source whose files are byte-identical to what its last clean run read completely is not
read again: the run counts every row unchanged, writes and deletes nothing, and says why. Any change of
content (not of mtime), of config, `--full`, a failed row, a reset or a table changed behind its back reads
again, with the counts a read gives."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, SqliteFileDb, server_db

SOURCE = """\
sources:
  - name: people
    kind: csv
    path: {path}
    table: people
    primary_key: [id]
    batch_size: {batch}
    fields:
      id: {{type: int}}
      name: name
      qty: {{type: int}}
"""

SKIP = "people.csv unchanged since run {run} (same size and blake2b): not read"


def _csv(n: int = 200, skip: tuple[int, ...] = (), bad: int | None = None, name13: str = "name 13") -> bytes:
    lines = ["id,name,qty"]
    for i in range(1, n + 1):
        if i in skip:
            continue
        if i == 100:
            lines.append("")  # a blank line: skipped, not a row
        qty = "many" if i == bad else str(i)
        lines.append(f"{i},{name13 if i == 13 else f'name {i}'},{qty}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(params=["sqlite-file", "postgresql"])
def target(request: pytest.FixtureRequest, project: Project, tmp_path: Path) -> Iterator[str]:
    """Target tables apart from the store, so that what the run writes to them can be measured."""
    db: Any = SqliteFileDb(tmp_path / "target.db") if request.param == "sqlite-file" else server_db(request.param)
    project.target = db
    try:
        yield request.param
    finally:
        db.drop()


class Writes:
    """Whether anything committed to the target: SQLite's data_version (it moves when another connection
    commits to the file), and on any target the rows' own run ids and sync times."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.con = sqlite3.connect(project.target.path) if isinstance(project.target, SqliteFileDb) else None
        self.before = self.state()

    def state(self) -> tuple[Any, ...]:
        version = self.con.execute("PRAGMA data_version").fetchone()[0] if self.con is not None else None
        stamps = self.project.tquery('SELECT MAX("_run_id"), MAX("_synced_at"), COUNT(*) FROM "people"')[0]
        return version, *(str(v) for v in stamps)

    def none(self) -> bool:
        try:
            return self.state() == self.before
        finally:
            if self.con is not None:
                self.con.close()


def _exec(project: Project, sql: str) -> None:
    """A change made to the target table by someone else than syncdash."""
    if isinstance(project.target, SqliteFileDb):
        con = sqlite3.connect(project.target.path)
        try:
            con.execute(sql)
            con.commit()
        finally:
            con.close()
    else:
        assert project.target is not None
        project.target.query(sql)


def _run(project: Project, *args: str, expect: int = 0) -> dict[str, Any]:
    [res] = project.run_json("people", *args, expect=expect)
    return res


def _counts(res: dict[str, Any]) -> tuple[int, ...]:
    c = res["counts"]
    return c["inserted"], c["updated"], c["unchanged"], c["deleted"], c["failed"], c["skipped"]


def _skipped(res: dict[str, Any], run: int) -> bool:
    return any(w.startswith(SKIP.format(run=run)) for w in res["warnings"])


def test_unchanged_csv_is_not_read_again(project: Project, target: str) -> None:
    path = project.write_bytes("data/people.csv", _csv())
    project.config(SOURCE.format(path="data/people.csv", batch=50))
    first = _run(project)
    assert _counts(first) == (200, 0, 0, 0, 0, 1)

    # the same bytes: nothing is read, written or deleted, and the run says why
    writes = Writes(project)
    same = _run(project)
    assert writes.none()
    assert same["status"] == "succeeded" and _counts(same) == (0, 0, 200, 0, 0, 1), same
    assert _skipped(same, first["id"]), same["warnings"]
    phases = project.query("SELECT name, status, done, total, unchanged, detail FROM syncdash_run_phases "
                           "WHERE run_id=? ORDER BY seq", (same["id"],))
    size = path.stat().st_size
    assert phases == [("load", "done", size, size, 200, "people.csv: unchanged, not read"),
                      ("finalize", "done", 0, 0, 0, None)], phases
    assert project.query("SELECT unchanged, skipped FROM syncdash_runs WHERE id=?", (same["id"],)) == [(200, 1)]

    # a new mtime with the same content still skips (since the run that read it)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    writes = Writes(project)
    touched = _run(project)
    assert writes.none() and _counts(touched) == (0, 0, 200, 0, 0, 1) and _skipped(touched, first["id"])

    # one byte changed, same size: read, with a read's counts
    path.write_bytes(_csv(name13="name X3"))
    assert path.stat().st_size == size
    changed = _run(project)
    assert _counts(changed) == (0, 1, 199, 0, 0, 1) and not changed["warnings"], changed
    assert project.tquery('SELECT "name" FROM "people" WHERE "id" = 13') == [("name X3",)]
    assert _skipped(_run(project), changed["id"])

    # a row removed from the file: read, and deleted as ever
    path.write_bytes(_csv(name13="name X3", skip=(7,)))
    removed = _run(project)
    assert _counts(removed) == (0, 0, 199, 1, 0, 1), removed
    assert project.tquery('SELECT "_deleted_at" IS NOT NULL FROM "people" WHERE "id" = 7') == [(True,)] or \
        project.tquery('SELECT "_deleted_at" IS NOT NULL FROM "people" WHERE "id" = 7') == [(1,)]
    again = _run(project)
    assert _counts(again) == (0, 0, 199, 0, 0, 1) and _skipped(again, removed["id"])

    # --full reads whatever the files say
    full = _run(project, "--full")
    assert _counts(full) == (0, 0, 199, 0, 0, 1) and not full["warnings"], full
    assert _skipped(_run(project), full["id"])


def test_config_change_reset_and_table_change_read_again(project: Project, target: str) -> None:
    project.write_bytes("data/people.csv", _csv())
    project.config(SOURCE.format(path="data/people.csv", batch=50))
    _run(project)
    assert _skipped(_run(project), 1)

    # any change of the source's config reads again (here only the batch size)
    project.config(SOURCE.format(path="data/people.csv", batch=70))
    other = _run(project)
    assert _counts(other) == (0, 0, 200, 0, 0, 1) and not other["warnings"], other
    assert _skipped(_run(project), other["id"])

    # `state` words the record (it is not an incremental cursor); `--json` keeps it apart from the cursor
    shown = project.cli("state", "people")
    assert shown.returncode == 0, shown.stderr
    assert f"files read (load): 1 file(s) as run {other['id']} read them whole, 200 live row(s)" in shown.stdout
    assert "cursor (load)" not in shown.stdout and "blake2b" not in shown.stdout, shown.stdout
    as_json = json.loads(project.cli("state", "people", "--json").stdout)
    assert as_json["cursor"] == {} and as_json["files_read"]["load"]["read_run"] == other["id"], as_json

    # a file stream has no cursor to set: refused with the way to read again, and the record is kept
    refused = project.cli("state", "people", "--set-cursor", "5")
    assert refused.returncode == 2 and "has no incremental cursor" in refused.stderr, refused
    assert "--full" in refused.stderr
    assert _skipped(_run(project), other["id"])

    # `state --reset` forgets what was read
    proc = project.cli("state", "people", "--reset")
    assert proc.returncode == 0, proc.stderr
    reset = _run(project)
    assert _counts(reset) == (0, 0, 200, 0, 0, 1) and not reset["warnings"], reset
    assert _skipped(_run(project), reset["id"])

    # rows deleted from the table behind the source's back: the row count guard reads again
    _exec(project, 'DELETE FROM "people" WHERE "id" IN (5, 6)')
    guarded = _run(project)
    assert _counts(guarded) == (2, 0, 198, 0, 0, 1) and not guarded["warnings"], guarded
    assert _skipped(_run(project), guarded["id"])

    # a table that is gone: read into a new one
    _exec(project, 'DROP TABLE "people"')
    gone = _run(project)
    assert _counts(gone) == (200, 0, 0, 0, 0, 1) and not gone["warnings"], gone


def test_a_failed_row_is_read_and_counted_again(project: Project) -> None:
    path = project.write_bytes("data/people.csv", _csv(bad=42))
    project.config(SOURCE.format(path="data/people.csv", batch=50))
    first = _run(project, expect=3)
    assert first["status"] == "partial" and _counts(first) == (199, 0, 0, 0, 1, 1), first
    again = _run(project, expect=3)
    assert again["status"] == "partial" and _counts(again) == (0, 0, 199, 0, 1, 1), again
    assert not again["warnings"], again

    path.write_bytes(_csv())  # fixed: read, the error resolves, and from then on it skips
    fixed = _run(project)
    assert _counts(fixed) == (1, 0, 199, 0, 0, 1), fixed
    assert project.query("SELECT COUNT(*) FROM syncdash_item_errors WHERE resolved_at IS NULL") == [(0,)]
    assert _skipped(_run(project), fixed["id"])


def test_a_glob_skips_only_when_every_file_is_the_same(project: Project) -> None:
    project.write_bytes("data/a.csv", _csv(50))
    b = project.write_bytes("data/b.csv", b"id,name,qty\n1001,x,1\n1002,y,2\n")
    project.config(SOURCE.format(path="data/*.csv", batch=20))
    first = _run(project)
    assert _counts(first) == (52, 0, 0, 0, 0, 0), first
    same = _run(project)
    assert _counts(same) == (0, 0, 52, 0, 0, 0)
    assert any(w.startswith(f"2 files (a.csv, b.csv) unchanged since run {first['id']}") for w in same["warnings"])

    b.write_bytes(b"id,name,qty\n1001,x,1\n1002,y,3\n")
    one = _run(project)
    assert _counts(one) == (0, 1, 51, 0, 0, 0) and not one["warnings"], one

    project.write_bytes("data/c.csv", b"id,name,qty\n2001,z,1\n")  # a new file joins the glob
    more = _run(project)
    assert _counts(more) == (1, 0, 52, 0, 0, 0) and not more["warnings"], more

    dry = _run(project, "--dry-run")  # a dry run may skip too, and records nothing
    assert _counts(dry) == (0, 0, 53, 0, 0, 0) and _skipped_any(dry)
    assert _skipped_any(_run(project))


def _skipped_any(res: dict[str, Any]) -> bool:
    return any("unchanged since run" in w and "not read" in w for w in res["warnings"])


def test_kept_deletes_skip_on_the_rows_the_table_holds(project: Project) -> None:
    path = project.write_bytes("data/people.csv", _csv(20))
    project.config(SOURCE.format(path="data/people.csv", batch=50).replace("    batch_size", "    deletes: keep\n"
                                                                            "    batch_size"))
    _run(project)
    path.write_bytes(_csv(20, skip=(3,)))
    shrunk = _run(project)
    assert _counts(shrunk) == (0, 0, 19, 0, 0, 0), shrunk
    assert project.query('SELECT COUNT(*) FROM "people" WHERE "_deleted_at" IS NULL') == [(20,)]
    same = _run(project)  # the table holds 20 live rows, the file 19: counted as the file has them
    assert _counts(same) == (0, 0, 19, 0, 0, 0) and _skipped(same, shrunk["id"]), same
