"""Issue 15: table and column names must match the whole pattern (no trailing newline sneaks past `$`), and
names that differ only in case are refused by `validate` (databases fold or compare them without case)."""

from __future__ import annotations

import json

import pytest
from conftest import Project

from syncdash.config.models import check_identifier

BASE = {"name": "items", "kind": "csv", "path": "data/items.csv", "table": "items", "primary_key": ["id"],
        "fields": {"id": {"type": "int"}, "name": "name"}}


@pytest.mark.parametrize("bad", ["items\n", "items\r\n", "\nitems", "it ems", "items;", "1items"])
def test_a_name_with_a_trailing_newline_or_other_junk_is_not_an_identifier(bad: str) -> None:
    with pytest.raises(ValueError, match="not a valid identifier"):
        check_identifier(bad, "table name")
    assert check_identifier("items", "table name") == "items"


def validate(project: Project, sources: list[dict[str, object]]) -> tuple[int, str]:
    project.config("sources: " + json.dumps(sources) + "\n")  # JSON is YAML: "\n" in a name stays a newline
    proc = project.cli("validate")
    return proc.returncode, proc.stderr + proc.stdout


@pytest.mark.parametrize(("field", "value"), [("table", "items\n"), ("name", "items\n")])
def test_validate_refuses_a_table_or_source_name_ending_in_a_newline(project: Project, field: str,
                                                                     value: str) -> None:
    code, out = validate(project, [{**BASE, field: value}])
    assert code == 2 and field in out, out


def test_validate_refuses_a_column_name_ending_in_a_newline(project: Project) -> None:
    code, out = validate(project, [{**BASE, "fields": {"id": {"type": "int"}, "name\n": "name"}}])
    assert code == 2 and "not a valid identifier" in out, out


def test_validate_refuses_columns_that_differ_only_in_case(project: Project) -> None:
    code, out = validate(project, [{**BASE, "fields": {"id": {"type": "int"}, "Name": "name", "name": "other"}}])
    assert code == 2, out
    assert "'Name' and 'name' differ only in case" in out and "syncdash.yaml" in out, out


def test_validate_refuses_tables_that_differ_only_in_case(project: Project) -> None:
    code, out = validate(project, [BASE, {**BASE, "name": "other", "table": "Items"}])
    assert code == 2 and "table 'Items' is already the target of source 'items'" in out, out
    code, out = validate(project, [BASE, {**BASE, "name": "other", "table": "items2"}])
    assert code == 0, out
