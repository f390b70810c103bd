"""A source kind added from outside the package: tests/support/jsonl_kind.py plus the one line below.

It runs through the real Engine into a real SQLite store, in this process (the CLI subprocesses other tests
start would not know a kind registered here): an initial load, a re-sync with an updated record and a bad line
that becomes an item error with its line number, and `validate` (the CLI's own main(), in process) listing it.
Nothing in engine, store or config knows the kind.
"""

from __future__ import annotations

import json

import pytest
from conftest import Project
from support.jsonl_kind import JSONL_KIND, JsonlSource, JsonlSourceConfig

from syncdash.cli.main import main
from syncdash.config import load_config
from syncdash.config.kinds import KindSpec, known_kinds, register_kind
from syncdash.engine import Engine, RunOptions
from syncdash.errors import ConfigError
from syncdash.store.db import Store

register_kind(JSONL_KIND)

CONFIG = """
sources:
  - name: events
    kind: jsonl
    path: data/events.jsonl
    table: events
    primary_key: id
    fields:
      id: {type: int}
      title: title
      plays: {type: int}
"""


def lines(*records: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def test_jsonl_kind_loads_resyncs_and_reports_a_bad_line(project: Project) -> None:
    assert "jsonl" in known_kinds()
    path = project.config(CONFIG)
    project.write("data/events.jsonl", lines({"id": 1, "title": "a", "plays": 10},
                                             {"id": 2, "title": "b", "plays": 20}))
    cfg = load_config(path)
    store = Store(cfg.database)
    try:
        first = Engine(store, cfg).run("events", RunOptions(trigger="test"))
        assert (first.status, first.counts["inserted"], first.counts["failed"]) == ("succeeded", 2, 0), first.error
        assert project.query("SELECT id, title, plays FROM events ORDER BY id") == [(1, "a", 10), (2, "b", 20)]

        project.write("data/events.jsonl", lines({"id": 1, "title": "a", "plays": 10},
                                                  {"id": 2, "title": "b", "plays": 25},
                                                  "{not json",
                                                  {"id": 3, "title": "c", "plays": 30}))
        second = Engine(store, cfg).run("events", RunOptions(trigger="test"))
        assert second.status == "partial", second.error
        counts = second.counts
        assert (counts["inserted"], counts["updated"], counts["unchanged"], counts["failed"]) == (1, 1, 1, 1)
        assert project.query("SELECT id, plays FROM events ORDER BY id") == [(1, 10), (2, 25), (3, 30)]
        errors = project.query("SELECT run_id, line, error_type, item, message FROM syncdash_item_errors")
        assert len(errors) == 1
        run_id, line, error_type, item, message = errors[0]
        assert (run_id, line, error_type) == (second.run_id, 3, "parse")
        assert item.endswith("events.jsonl:3") and "not a JSON object" in message
    finally:
        store.engine.dispose()


def test_validate_lists_the_jsonl_source(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    path = project.config(CONFIG)
    project.write("data/events.jsonl", lines({"id": 1, "title": "a", "plays": 1}))
    assert main(["--config", str(path), "validate"]) == 0
    out = capsys.readouterr().out
    assert "- events (jsonl) -> table events, key (id)" in out
    assert "JSON lines: " in out and "events.jsonl" in out


def test_the_registry_offers_the_kind_and_refuses_a_second_one_of_the_same_name(project: Project) -> None:
    assert known_kinds() == ["csv", "jsonl", "push", "rest", "web"], "flow is internal: declared under flows:"
    register_kind(JSONL_KIND)  # the same spec again is harmless (a module imported twice)
    with pytest.raises(ConfigError, match="'jsonl' is registered twice"):
        register_kind(KindSpec("jsonl", config=JsonlSourceConfig, adapter=lambda cfg: JsonlSource(cfg)))
    path = project.config("sources:\n  - {name: x, kind: jsonx, path: a.jsonl, table: x, primary_key: id, "
                          "fields: {id: id}}\n")
    known = r"known kinds: csv, jsonl, push, rest, web"
    with pytest.raises(ConfigError, match=r"unknown source kind 'jsonx'; " + known):
        load_config(path)
