"""Issue 15: a CSV value over `max_field` (default 10 MB) is an item error naming the file and line, not a row
and not a failed run; the error keeps only the head of the value, so the store stays small."""

from __future__ import annotations

import json
import os

from conftest import Project

SOURCE = """\
sources:
  - name: items
    kind: csv
    path: data/items.csv
    table: items
    primary_key: [id]
    {extra}
    fields:
      id: {{type: int}}
      note: note
"""


def test_a_100_mb_value_is_an_item_error_and_does_not_grow_the_store(project: Project) -> None:
    path = project.root / "data" / "items.csv"
    path.parent.mkdir()
    with open(path, "w", encoding="utf-8") as f:  # a real 100 MB row between two good ones
        f.write('id,note\n1,first\n2,"')
        chunk = "x" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
        f.write('"\n3,last\n')
    project.config(SOURCE.format(extra=""))
    [res] = project.run_json("items", expect=3)  # partial: one bad row
    assert res["counts"]["inserted"] == 2 and res["counts"]["failed"] == 1
    assert project.query("SELECT id, note FROM items ORDER BY id") == [(1, "first"), (3, "last")]
    [(item, etype, column, message, payload)] = project.query(
        "SELECT item, error_type, \"column\", message, payload FROM syncdash_item_errors")
    assert item == f"{path}:3" and etype == "too_large" and column == "note"
    assert f"{path}:3" in message and str(100 << 20) in message and "max_field" in message
    assert len(payload) < 4096 and json.loads(payload)[0] == "2"
    store = sum(os.path.getsize(f) for f in project.root.glob("syncdash.db*"))
    assert store < 5 << 20, f"the store is {store} bytes"


def test_max_field_is_configurable_and_a_bad_size_names_the_field(project: Project) -> None:
    project.write("data/items.csv", "id,note\n1,short\n2," + "é" * 600 + "\n3,ok\n")  # 1200 bytes, 600 chars
    project.config(SOURCE.format(extra="max_field: 1KB"))
    [res] = project.run_json("items", expect=3)
    assert res["counts"]["inserted"] == 2 and res["counts"]["failed"] == 1
    [(line, message)] = project.query("SELECT line, message FROM syncdash_item_errors")
    assert line == 3 and "1200 bytes, over the 1000-byte limit" in message
    project.config(SOURCE.format(extra="max_field: 2KB"))
    [res] = project.run_json("items", expect=0)
    assert res["counts"]["inserted"] == 1
    project.config(SOURCE.format(extra="max_field: lots"))
    bad = project.cli("validate")
    assert bad.returncode == 2 and "max_field" in bad.stderr and "'lots' is not a size" in bad.stderr, bad.stderr
