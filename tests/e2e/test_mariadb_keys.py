"""Issue 15: on MariaDB a text key lives in a VARCHAR(255) column. A longer key is an item error for its row
(naming the line and the limit), not a failed run; the other rows load, on a first load and on a re-sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Project, ServerDb, server_db

SOURCE = """\
sources:
  - name: codes
    kind: csv
    path: data/codes.csv
    table: codes
    primary_key: [code]
    fields:
      code: code
      label: label
"""


@pytest.fixture
def mariadb(project: Project) -> Iterator[ServerDb]:
    db = server_db("mysql")
    project.target = db
    try:
        yield db
    finally:
        db.drop()


def test_a_key_longer_than_the_key_column_is_an_item_error(project: Project, mariadb: ServerDb) -> None:
    long_key = "k" * 300
    project.write("data/codes.csv", f"code,label\na,first\n{long_key},too long\nb,second\n")
    project.config(SOURCE)
    [res] = project.run_json("codes", expect=3)  # partial, not failed
    assert res["status"] == "partial" and res["counts"]["inserted"] == 2 and res["counts"]["failed"] == 1
    assert mariadb.query('SELECT code, label FROM codes ORDER BY code') == [("a", "first"), ("b", "second")]
    [(line, etype, message)] = project.query("SELECT line, error_type, message FROM syncdash_item_errors")
    assert line == 3 and etype == "too_large"
    assert "300 characters" in message and "255" in message and "code" in message
    # a re-sync (the table holds rows: the screened path) sorts it out the same way
    project.write("data/codes.csv", f"code,label\na,first\n{long_key},too long\nb,changed\nc,third\n")
    [again] = project.run_json("codes", expect=3)
    assert again["counts"]["failed"] == 1 and again["counts"]["updated"] == 1 and again["counts"]["inserted"] == 1
    assert mariadb.query('SELECT code, label FROM codes ORDER BY code') == [
        ("a", "first"), ("b", "changed"), ("c", "third")]
