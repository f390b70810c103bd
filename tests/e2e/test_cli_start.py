"""The read-only commands import only what they need: no HTTP client, console, browser or web server, and, on
an SQLite store at HEAD, no SQLAlchemy or SQLModel either (they read through syncdash.store.reader).

(A kind package's `__init__` is its registry entry and is loaded to read the config; its client, source and
browser modules are what must stay out.)

Not a timing test (timings belong in bench/cli_start.py): each command runs in a fresh interpreter through
the real `main()`, and the modules it left in `sys.modules` are compared with the heavy stacks that only
other commands use. One stray top-level import (say `import httpx` in a module `status` pulls in) fails it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import Project

from syncdash.config import load_config
from syncdash.store import models
from syncdash.store.db import Store
from syncdash.store.health import live_daemons
from syncdash.store.queries import (
    ErrorFilter,
    RunFilter,
    error_json,
    errors_page,
    run_detail,
    run_detail_json,
    run_json,
    runs_page,
    source_statuses,
)
from syncdash.store.reader import StoreReader, open_reader
from syncdash.store.rows import LIGHT_TABLES, utcnow

# stacks the read-only commands never need; each costs tens of milliseconds to a second to import
HEAVY = ("httpx", "httpcore", "textual", "playwright", "starlette", "uvicorn", "prometheus_client", "alembic",
         "syncdash.engine", "syncdash.targets", "syncdash.kinds.rest.client", "syncdash.kinds.rest.source",
         "syncdash.kinds.web.browser", "syncdash.kinds.web.source", "syncdash.service", "syncdash.tui",
         "syncdash.api",
         # an SQLite store at HEAD is read through the DB-API: ~200 ms of ORM never loads (syncdash.store.reader);
         # nor does APScheduler for a config without a schedule
         "sqlalchemy", "sqlmodel", "syncdash.store.models", "syncdash.store.db", "apscheduler")

PROBE = """\
import contextlib, io, json, sys
from syncdash.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
               and any(m == h or m.startswith(h + ".") for h in HEAVY))
print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue()}))
"""


@pytest.fixture
def history(project: Project) -> Project:
    project.write("people.csv", "id,name\n1,Ada\nx,Bad\n")
    project.config("""\
        sources:
          - name: people
            kind: csv
            path: people.csv
            table: people
            primary_key: [id]
            fields:
              id: {from: id, type: int}
              name: name
        """)
    proc = project.cli("run", "people")
    assert proc.returncode == 3, proc.stderr  # partial: line 3 fails, so `errors` has a row to show
    return project


@pytest.mark.parametrize("argv", [["status"], ["runs"], ["errors"], ["show", "1"], ["status", "--json"]])
def test_read_commands_import_no_heavy_stack(history: Project, argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + PROBE, *argv], cwd=history.root,
                          env=history.env, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 0
    assert "people" in got["out"]  # it answered from the store, not from an early exit
    assert got["heavy"] == [], f"`syncdash {' '.join(argv)}` imported {got['heavy']}"


# a CSV run needs the engine, but no HTTP client (webhooks load theirs when they deliver), no browser, no REST or
# web kind, no flow model for a config without flows, no console and no web server; and on an SQLite store at
# HEAD no ORM either: the run writes its rows as SQL on the store's DB-API connections (syncdash.store.runlog)
RUN_HEAVY = ("httpx", "httpcore", "tenacity", "playwright", "textual", "starlette", "uvicorn", "alembic",
             "syncdash.kinds.rest.config", "syncdash.kinds.rest.client", "syncdash.kinds.rest.source",
             "syncdash.kinds.web.config", "syncdash.kinds.web.browser", "syncdash.kinds.web.source",
             "syncdash.kinds.flow.config", "syncdash.tui", "syncdash.api",
             "sqlalchemy", "sqlmodel", "syncdash.store.models", "apscheduler")


def test_a_csv_run_imports_no_http_client_or_other_kind(history: Project) -> None:
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {RUN_HEAVY!r}\n" + PROBE, "run", "people"],
                          cwd=history.root, env=history.env, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 3 and "people: run 2" in got["out"]  # it ran (line 3 fails again: partial)
    assert got["heavy"] == [], f"`syncdash run people` imported {got['heavy']}"


@pytest.mark.parametrize("argv", [["run", "people", "--json"], ["run", "people", "--full"], ["run", "--all"]])
def test_a_csv_run_into_another_sqlite_file_imports_no_orm(history: Project, argv: list[str]) -> None:
    """The target in a second SQLite file (batches journaled across the two) and the run's JSON answer: still no
    SQLAlchemy, SQLModel or models; the rows land in that file and the store records the run."""
    cfg = history.root / "syncdash.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("    table: people\n",
                                                           "    table: people\n    target: sqlite:///target.db\n"),
                   encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {RUN_HEAVY!r}\n" + PROBE, *argv],
                          cwd=history.root, env=history.env, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 3, got  # partial: line 3 fails in every run
    assert got["heavy"] == [], f"`syncdash {' '.join(argv)}` imported {got['heavy']}"
    if "--json" in argv:
        assert [(r["source"], r["status"], r["counts"]["inserted"]) for r in json.loads(got["out"])] == [
            ("people", "partial", 1)]
    with sqlite3.connect(history.root / "target.db") as con:
        assert con.execute("SELECT id, name FROM people").fetchall() == [(1, "Ada")]
    with sqlite3.connect(history.db) as con:
        assert con.execute("SELECT status, failed FROM syncdash_runs WHERE id = 2").fetchone() == ("partial", 1)


def test_light_rows_carry_the_models_columns() -> None:
    """The reader's rows stand in for the models' instances: same attributes, in the same order."""
    for name, table in LIGHT_TABLES.items():
        model = getattr(models, name)
        assert table.name == model.__tablename__
        assert table.columns == tuple(c.name for c in model.__table__.columns), name
        kinds = {c.name: c.type.python_type for c in model.__table__.columns}
        assert table.datetimes == {c for c, t in kinds.items() if t is datetime_type}, name
        assert table.bools == {c for c, t in kinds.items() if t is bool}, name


datetime_type = type(utcnow())


def test_the_reader_answers_as_the_store_does(history: Project) -> None:
    """Every question the read-only commands ask gets the same answer from the DB-API reader and the ORM."""
    history.config(history.root.joinpath("syncdash.yaml").read_text(encoding="utf-8")
                   + "    schedule: every 1h\n")  # a schedule: next fire and the overdue verdict are computed too
    assert history.cli("run", "people").returncode == 3
    cfg = load_config(str(history.root / "syncdash.yaml"))
    store = Store(cfg.database)
    reader = open_reader(cfg.database)
    assert isinstance(reader, StoreReader)
    now = utcnow()
    for where in (None, RunFilter(source="people"), RunFilter(status="partial", text="peo"), RunFilter(source="x")):
        for cursor in (None, 2):
            a, b = (runs_page(s, where, limit=1, cursor=cursor, with_total=True) for s in (store, reader))
            assert [run_json(r) for r in a.items] == [run_json(r) for r in b.items]
            assert (a.next_cursor, a.total) == (b.next_cursor, b.total)
    for ef in (None, ErrorFilter(run_id=1), ErrorFilter(source="people", resolved=False), ErrorFilter(resolved=True)):
        for newest in (True, False):
            a, b = (errors_page(s, ef, limit=1, newest_first=newest) for s in (store, reader))
            assert [error_json(e) for e in a.items] == [error_json(e) for e in b.items]
            assert a.next_cursor == b.next_cursor
    for run_id in (1, 2, 99):
        a_detail, b_detail = run_detail(store, run_id), run_detail(reader, run_id)
        assert (a_detail is None) == (b_detail is None)
        if a_detail is not None and b_detail is not None:
            assert run_detail_json(a_detail, cfg) == run_detail_json(b_detail, cfg)
    a_rows, b_rows = (source_statuses(s, cfg, now) for s in (store, reader))
    assert [r.json(now) for r in a_rows] == [r.json(now) for r in b_rows]
    assert a_rows[0].next_fire is not None and a_rows[0].health == b_rows[0].health
    assert live_daemons(store, now) == [] and live_daemons(reader, now) == []


def test_a_store_that_is_not_at_head_opens_as_the_full_store(project: Project,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing store is created, an old one upgraded: only the full Store does that, so the reader steps aside."""
    from syncdash.store import reader

    url = f"sqlite:///{project.root / 'new.db'}"
    assert type(open_reader(url)) is Store  # created at HEAD
    assert isinstance(open_reader(url), StoreReader)
    monkeypatch.setattr(reader, "HEAD", "0000")  # as a newer release sees this store: behind its head
    assert type(open_reader(url)) is Store
    assert type(open_reader(f"sqlite:///{project.root / 'other.db'}")) is Store


@pytest.mark.parametrize("url", ["sqlite:////tmp/a b/store.db", "sqlite:///rel_ative/st-ore~1.db", "sqlite:///C:/x/y.db",
                                 "sqlite:////tmp/we:ird/store.db", "sqlite:////tmp/é/s.db", "sqlite:////tmp/50%/s.db"])
def test_a_sqlite_url_is_masked_as_sqlalchemy_renders_it(url: str) -> None:
    """`status` prints its store URL without importing SQLAlchemy: a plain file URL comes back as SQLAlchemy
    renders it (URLs with userinfo, a query or escapes still go through SQLAlchemy)."""
    from sqlalchemy.engine import make_url

    from syncdash.common.dialect import mask_url

    assert mask_url(url) == make_url(url).render_as_string(hide_password=True)


# a REST run loads its HTTP client and its kind, but on an SQLite store at HEAD still no ORM: the host's circuit
# breaker, read before the first request, comes back as a light row (it used to load ~0.4 s of models mid-run)
REST_RUN_HEAVY = ("playwright", "textual", "starlette", "uvicorn", "alembic", "syncdash.kinds.web.browser",
                  "syncdash.kinds.web.source", "syncdash.tui", "syncdash.api",
                  "sqlalchemy", "sqlmodel", "syncdash.store.models", "apscheduler")


def test_a_rest_run_imports_no_orm(project: Project) -> None:
    from syncdash_demo.sampleapi import SampleApi

    with SampleApi(n=30, lifetime=60) as api:
        project.config(f"""\
            sources:
              - name: players
                kind: rest
                url: {api.url}/v1/page/players
                records: data.items
                pagination: {{type: page, page_param: page, size_param: limit, size: 10, total_path: meta.total}}
                concurrency: 2
                table: players
                primary_key: [id]
                fields:
                  id: {{from: id, type: int}}
                  name: profile.display_name
            """)
        assert project.cli("run", "players").returncode == 0  # the store exists: this is a run like every later one
        proc = subprocess.run([sys.executable, "-c", f"HEAVY = {REST_RUN_HEAVY!r}\n" + PROBE, "run", "players"],
                              cwd=project.root, env=project.env, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and "30 unchanged" in got["out"], got
    assert got["heavy"] == [], f"`syncdash run players` imported {got['heavy']}"
