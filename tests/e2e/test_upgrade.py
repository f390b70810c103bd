"""The store's schema is versioned: a store written by the last release before versioning (tests/fixtures, built
by tests/fixtures/build_old_store.py with that release) opens with today's Store on SQLite and PostgreSQL with its
runs, item errors, source state, breakers, changes, pushed rows and target tables intact, and today's CLI reads it
and resumes its interrupted run from the checkpoint. A new store gets the head revision; opening again does
nothing (and imports no Alembic); an upgrade is one transaction; three processes opening one empty PostgreSQL
database at once all come up."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import Project, ServerDb, server_db
from sqlalchemy import Engine, create_engine, text

from syncdash.common.dialect import setup_sqlite
from syncdash.errors import StoreError
from syncdash.store.db import Store, install_qmark
from syncdash.store.migrations import HEAD, VERSION_TABLE
from syncdash.store.migrations.upgrade import head, upgrade_store
from syncdash_demo.sampleflow import RegistrationApi, ScoringApi, demo_participants

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED: dict[str, Any] = json.loads((FIXTURES / "store_v0.expected.json").read_text(encoding="utf-8"))
# the builder's tenants and sizes (tests/fixtures/build_old_store.py)
TENANTS = {"acme": ("reg-acme-token", "score-acme-token", "101"),
           "globex": ("reg-globex-token", "score-globex-token", "202")}
PARTICIPANTS = 5
BIG_ROWS = 50_000

Query = Callable[[str], list[tuple[Any, ...]]]


def load_facts() -> ModuleType:
    """tests/fixtures/expected_facts.py: what made store_v0.expected.json, read here from the upgraded store."""
    spec = importlib.util.spec_from_file_location("expected_facts", FIXTURES / "expected_facts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class OldStore:
    """A copy of a fixture store, not yet opened by today's code."""

    dialect: str
    url: str
    expected: dict[str, Any]
    query: Query
    server: ServerDb | None = None


def sqlite_query(path: Path) -> Query:
    def query(sql: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(path)) as con:
            return con.execute(sql).fetchall()
    return query


def load_dump(db: ServerDb) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed: the PostgreSQL fixture is a plain pg_dump")
    subprocess.run([psql, "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(FIXTURES / "store_v0.pg.sql"), db.url],
                   check=True, stdout=subprocess.DEVNULL)


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, project: Project) -> Iterator[OldStore]:
    if request.param == "sqlite":
        shutil.copyfile(FIXTURES / "store_v0.db", project.db)
        yield OldStore("sqlite", f"sqlite:///{project.db}", EXPECTED["store_v0.db"], sqlite_query(project.db))
        return
    db = server_db("postgresql")
    try:
        load_dump(db)
        yield OldStore("postgresql", db.url, EXPECTED["store_v0.pg.sql"], db.query, db)
    finally:
        db.drop()


@pytest.fixture
def apis() -> Iterator[tuple[RegistrationApi, ScoringApi]]:
    reg = RegistrationApi({t: (r, e) for t, (r, _s, e) in TENANTS.items()},
                          {t: demo_participants(t, e, PARTICIPANTS) for t, (_r, _s, e) in TENANTS.items()},
                          lifetime=120)
    score = ScoringApi({t: (s, e) for t, (_r, s, e) in TENANTS.items()}, lifetime=120)
    with reg, score:
        yield reg, score


def write_config(project: Project, store: OldStore, reg: RegistrationApi, score: ScoringApi) -> None:
    """The builder's config (same sources, mappings and ${DATA_DIR} paths); players' API is not served here."""
    project.env["DATA_DIR"] = str(project.root / "data")
    for t, (r, s, _e) in TENANTS.items():
        project.env[f"{t.upper()}_REG"], project.env[f"{t.upper()}_SCORE"] = r, s
    tenants = "".join(f'  {t}: {{reg_token: "${{{t.upper()}_REG}}", score_token: "${{{t.upper()}_SCORE}}", '
                      f'event: "{e}"}}\n' for t, (_r, _s, e) in TENANTS.items())
    project.config(f"""\
database: {store.url}
tenants:
{tenants}sources:
  - name: items
    kind: csv
    path: ${{DATA_DIR}}/items.csv
    table: items
    primary_key: [id]
    mode: full
    deletes: soft
    schedule: every 1h
    fields:
      id: {{type: int}}
      name: {{from: name, required: true}}
      qty: {{type: int}}
      price: {{type: float}}
      added: {{type: date}}
  - name: big
    kind: csv
    path: ${{DATA_DIR}}/big.csv
    table: big
    primary_key: [id]
    batch_size: 100
    fields:
      id: {{type: int}}
      name: name
      amount: {{type: float}}
  - name: players
    kind: rest
    url: http://127.0.0.1:9/v1/page/players
    records: data.items
    pagination: {{type: page, page_param: page, size_param: limit, size: 20, total_path: meta.total}}
    incremental: {{cursor_field: updated_at, param: updated_since, initial: "2000-01-01T00:00:00Z", lag: 5m}}
    schedule: every 6h
    table: players
    primary_key: [id]
    fields:
      id: {{from: id, type: int}}
      name: {{from: profile.display_name, required: true}}
      club: club.name
      first_tag: tags.0
      elo: {{type: float}}
      updated_at: {{type: datetime}}
  - name: registrations
    kind: rest
    for_each_tenant: true
    url: {reg.url}/v1/events/{{tenant.event}}/participants
    auth: {{type: bearer, token: "{{tenant.reg_token}}"}}
    records: participants
    pagination: {{type: page, size: 3, size_param: per_page, total_path: meta.total}}
    table: participants
    primary_key: [id]
    fields:
      id: {{type: int}}
      event_id: event_id
      first_name: first_name
      last_name: last_name
      bib: {{type: int}}
  - name: participants_to_scoring
    kind: push
    for_each_tenant: true
    from_table: participants
    key: [id]
    url: {score.url}/v1/events/{{event_id}}/participants
    batch: 2
    body: {{externalId: id, bib: bib, firstName: first_name, lastName: last_name}}
    auth: {{type: bearer, token: "{{tenant.score_token}}"}}
    idempotency_key: true
    retry: {{attempts: 3, initial: 0.01s, max: 0.05s}}
  - name: results
    kind: rest
    for_each_tenant: true
    url: {score.url}/v1/events/{{tenant.event}}/results
    auth: {{type: bearer, token: "{{tenant.score_token}}"}}
    records: results
    table: results
    primary_key: [external_id]
    fields: {{external_id: {{from: externalId, type: int}}, bib: {{type: int}}, time_s: {{type: int}}, name: name}}
flows:
  - name: race_day
    schedule: every 30m
    steps: [registrations, participants_to_scoring, results]
    on_error: stop
""")


def recreate_big_csv(project: Project, checkpoint: str) -> None:
    """The exact file the interrupted run was reading: same bytes, and the mtime its checkpoint recorded (a
    changed file would make the resume start over)."""
    [[masked, size, mtime_ns]] = json.loads(checkpoint)["source"]["files"]
    assert masked == "***/big.csv", "the builder's ${DATA_DIR} is masked in the checkpoint"
    lines = ["id,name,amount", *(f"{i},name{i},{i * 1.5}" for i in range(BIG_ROWS))]
    path = project.write("data/big.csv", "\n".join(lines) + "\n")
    assert path.stat().st_size == size
    os.utime(path, ns=(mtime_ns, mtime_ns))


def opened_facts(store: OldStore) -> dict[str, Any]:
    return dict(load_facts().facts(store.query, store.dialect))


def with_version_table(expected: dict[str, Any]) -> dict[str, Any]:
    """What an upgraded store holds: the old store's rows, the version table, and the (empty) tables added since."""
    return {**expected, "store_tables": {**expected["store_tables"], VERSION_TABLE: 1, "syncdash_rate_buckets": 0}}


def test_a_store_of_the_last_release_opens_with_everything_in_it(old_store: OldStore, project: Project,
                                                                 apis: tuple[RegistrationApi, ScoringApi]) -> None:
    expected = old_store.expected
    assert opened_facts(old_store) == expected, "the fixture itself changed"

    store = Store(old_store.url)
    assert store.schema_version() == HEAD
    assert opened_facts(old_store) == with_version_table(expected)

    # today's models read every kind of row
    interrupted = expected["interrupted_run"]
    run = store.get_run(interrupted["id"])
    assert run is not None and (run.source, run.status, run.checkpoint, run.inserted, run.resumes) == (
        "big", "running", interrupted["checkpoint"], interrupted["inserted"], 0)
    states = store.source_states()
    for source, fact in expected["source_state"].items():
        st = states[source]
        assert (st.cursor, st.paused, st.schedule_override, st.last_run_id, st.last_status, st.lock_run_id) == (
            fact["cursor"], fact["paused"], fact["schedule_override"], fact["last_run_id"], fact["last_status"],
            fact["lock_run_id"]), source
    assert states["players"].paused and states["players"].cursor == '{"load":"2030-01-01T12:00:00Z"}'
    assert sorted((b.host, b.state, b.source) for b in store.breakers()) == sorted(
        (b["host"], b["state"], b["source"]) for b in expected["breakers"])
    for r in expected["runs"]:
        got = store.get_run(r["id"])
        assert got is not None and (got.source, got.status, got.dry_run, got.parent_run_id, got.flow_run_id,
                                    got.inserted, got.failed) == (
            r["source"], r["status"], r["dry_run"], r["parent_run_id"], r["flow_run_id"], r["counts"]["inserted"],
            r["counts"]["failed"])

    # opening again changes nothing
    Store(old_store.url)
    assert opened_facts(old_store) == with_version_table(expected)

    # today's CLI on it
    reg, score = apis
    write_config(project, old_store, reg, score)
    status = project.cli("status")
    assert status.returncode == 0, status.stderr
    assert "every 2h (override)" in status.stdout and f"#{interrupted['id']} running" in status.stdout
    runs = project.cli("runs")
    assert runs.returncode == 0, runs.stderr
    assert all(f" {r['id']} " in runs.stdout for r in expected["runs"])
    show = project.cli("show", str(interrupted["id"]))
    assert show.returncode == 0, show.stderr
    assert f"run {interrupted['id']} big (csv) running" in show.stdout
    # the old checkpoint reads as today's (shown in words; the data folder came from ${DATA_DIR}, so masked)
    cp = json.loads(interrupted["checkpoint"])
    assert (f"checkpoint: stream 1, file ***/big.csv line {cp['source']['line']}, {cp['batches']} batch(es) "
            "committed") in show.stdout, show.stdout

    # the interrupted run resumes from its checkpoint: the rows it committed are not read again
    recreate_big_csv(project, interrupted["checkpoint"])
    [resumed] = project.run_json("big", expect=0)
    assert (resumed["id"], resumed["resumes"], resumed["status"]) == (interrupted["id"], 1, "succeeded")
    assert resumed["counts"]["inserted"] == BIG_ROWS
    assert resumed["sample"][0]["key"] == [interrupted["inserted"]]  # the first row after the checkpoint
    assert old_store.query("SELECT count(*) FROM big") == [(BIG_ROWS,)]
    assert old_store.query(f"SELECT count(*) FROM big WHERE _run_id = {interrupted['id']}") == [(BIG_ROWS,)]


def test_a_push_works_on_an_upgraded_postgresql_store(project: Project,
                                                      apis: tuple[RegistrationApi, ScoringApi]) -> None:
    """The last release declared syncdash_pushed.hash INTEGER: 32 bits on PostgreSQL, too small for the 63-bit
    hashes a push stores, so its flow failed there ("integer out of range"). Revision 0002 widens it."""
    db = server_db("postgresql")
    try:
        load_dump(db)
        store = OldStore("postgresql", db.url, EXPECTED["store_v0.pg.sql"], db.query, db)
        assert db.query("SELECT data_type FROM information_schema.columns WHERE table_name = 'syncdash_pushed' "
                        "AND column_name = 'hash'") == [("integer",)]
        reg, score = apis
        write_config(project, store, reg, score)
        [flow] = project.run_json("race_day", expect=0)
        assert flow["status"] == "succeeded", flow
        assert db.query("SELECT data_type FROM information_schema.columns WHERE table_name = 'syncdash_pushed' "
                        "AND column_name = 'hash'") == [("bigint",)]
        assert db.query("SELECT count(*), max(hash) > 2147483647 FROM syncdash_pushed") == [(PARTICIPANTS * 2, 1)]
        assert sum(len(people) for people in score.received.values()) == PARTICIPANTS * 2
    finally:
        db.drop()


# ---- the mechanics ------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, project: Project) -> Iterator[OldStore]:
    """An empty database: a new SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield OldStore("sqlite", f"sqlite:///{project.db}", {}, sqlite_query(project.db))
        return
    db = server_db("postgresql")
    try:
        yield OldStore("postgresql", db.url, {}, db.query, db)
    finally:
        db.drop()


def bare_engine(url: str) -> Engine:
    """An engine set up as Store sets its own up, without opening (and so migrating) the store."""
    if url.startswith("sqlite"):
        engine = create_engine(url)
        setup_sqlite(engine)
        return engine
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    install_qmark(engine)
    return engine


def schema(store: OldStore) -> set[tuple[Any, ...]]:
    """The shape of the store's tables (not the version table): what must match between a store made by the last
    release and one made by revision 0001."""
    if store.dialect == "sqlite":
        return set(store.query("SELECT type, name, sql FROM sqlite_master WHERE tbl_name LIKE 'syncdash%' "
                               f"AND tbl_name != '{VERSION_TABLE}'"))
    where = f"LIKE 'syncdash%' AND {{}} != '{VERSION_TABLE}'"
    columns = store.query("SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default "
                          "FROM information_schema.columns WHERE table_schema = 'public' AND table_name "
                          + where.format("table_name"))
    indexes = store.query("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND "
                          "tablename " + where.format("tablename"))
    constraints = store.query("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                              "WHERE conrelid::regclass::text " + where.format("conrelid::regclass::text"))
    return {("column", *c) for c in columns} | {("index", *i) for i in indexes} | {("constraint", *c)
                                                                                   for c in constraints}


def sqlite_shape(store: OldStore) -> set[tuple[Any, ...]]:
    """Each store table's columns (name, type, not null, default, key position), foreign keys and indexes."""
    tables = [t for (t,) in store.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE "
                                        f"'syncdash%' AND name != '{VERSION_TABLE}'")]
    shape: set[tuple[Any, ...]] = set()
    for t in tables:
        shape |= {("column", t, *row[1:]) for row in store.query(f"PRAGMA table_xinfo({t})")}
        shape |= {("fk", t, *row[2:]) for row in store.query(f"PRAGMA foreign_key_list({t})")}
        for _seq, name, unique, origin, _partial in store.query(f"PRAGMA index_list({t})"):
            cols = tuple(r[2] for r in store.query(f"PRAGMA index_info({name})"))
            shape.add(("index", t, name if origin == "c" else origin, unique, cols))
    return shape


def test_head_is_the_newest_revision() -> None:
    """HEAD is written by hand so the check on open needs no Alembic: it must name the newest revision."""
    assert head() == HEAD


def test_a_new_store_gets_the_head_revision_and_opening_again_is_a_no_op(empty: OldStore) -> None:
    store = Store(empty.url)
    assert store.schema_version() == HEAD
    assert empty.query(f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    shape = schema(empty)
    assert any("ix_syncdash_runs_fire_key" in row for row in shape)

    # a second open reads the version and stops there: Alembic is not even imported
    probe = ("import sys; from syncdash.store.db import Store; s = Store(sys.argv[1]); "
             "print(s.schema_version(), 'alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe, empty.url], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [HEAD, "False"]
    assert schema(empty) == shape
    assert empty.query(f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]


def test_the_frozen_sqlite_head_is_what_the_models_make() -> None:
    """A new SQLite store runs migrations/sqlite_head.py's DDL without SQLAlchemy: it must be what
    `fresh.create_head` makes from today's models, at today's HEAD (regenerate it when either changes)."""
    from syncdash.store.migrations import fresh, sqlite_head

    assert sqlite_head.REVISION == HEAD
    assert list(sqlite_head.STATEMENTS) == fresh.sqlite_statements(), (
        "the models changed: python -m syncdash.store.migrations.fresh > syncdash/store/migrations/sqlite_head.py")


def test_new_sqlite_stores_are_made_without_sqlalchemy_even_three_at_once(project: Project) -> None:
    """Three processes opening one new SQLite file at once: one creates the schema (BEGIN IMMEDIATE), the others
    wait and find it made; none loads SQLAlchemy, and the tables exist once, at HEAD."""
    probe = ("import sys; from syncdash.store.db import Store; s = Store(sys.argv[1]); "
             "print(s.schema_version(), 'sqlalchemy' in sys.modules)")
    url = f"sqlite:///{project.db}"
    procs = [subprocess.Popen([sys.executable, "-c", probe, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.split() == [HEAD, "False"]
    query = sqlite_query(project.db)
    assert query(f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
    assert query("SELECT count(*) FROM sqlite_master WHERE name = 'syncdash_runs'") == [(1,)]


def test_a_new_store_made_from_the_models_equals_one_made_by_every_revision(empty: OldStore,
                                                                          project: Project) -> None:
    """A new store skips Alembic (the head schema from the models, stamped HEAD); replaying every revision on an
    empty database must give the same tables, columns, keys and indexes. A model changed without a revision fails
    here. On SQLite the DDL text is compared with BIGINT read as INTEGER: 0002 widens syncdash_pushed.hash on
    PostgreSQL only, since SQLite's INTEGER already holds 64 bits."""
    Store(empty.url)
    made = schema(empty)
    assert empty.query(f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]

    def normalized(shape: set[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        return {tuple(str(v).replace("BIGINT", "INTEGER") if isinstance(v, str) else v for v in row)
                for row in shape}

    if empty.dialect == "sqlite":
        other = project.root / "replayed.db"
        engine = bare_engine(f"sqlite:///{other}")
        with engine.begin() as c:
            upgrade_store(c)
        engine.dispose()
        replayed = OldStore("sqlite", f"sqlite:///{other}", {}, sqlite_query(other))
        # SQLite keeps a column added by ALTER TABLE at the end of the CREATE text, after the constraints, where
        # create_all puts it before them: compare the columns, keys and indexes SQLite reports, not the text
        assert normalized(sqlite_shape(replayed)) == normalized(sqlite_shape(empty))
        assert any("BIGINT" in str(row) for row in made), "the models declare syncdash_pushed.hash BIGINT"
        return
    db = server_db("postgresql")
    try:
        engine = bare_engine(db.url)
        with engine.begin() as c:
            upgrade_store(c)
        engine.dispose()
        assert schema(OldStore("postgresql", db.url, {}, db.query, db)) == made
    finally:
        db.drop()


def test_revision_0001_makes_what_the_last_release_made(empty: OldStore, project: Project) -> None:
    """0001 is frozen: a store it creates has the same tables, columns, keys and indexes as one the last release
    created (the fixture), down to the DDL text on SQLite."""
    engine = bare_engine(empty.url)
    with engine.begin() as c:
        upgrade_store(c, to="0001")
    engine.dispose()
    assert empty.query(f"SELECT version_num FROM {VERSION_TABLE}") == [("0001",)]
    made = schema(empty)

    if empty.dialect == "sqlite":
        old = project.root / "old.db"
        shutil.copyfile(FIXTURES / "store_v0.db", old)
        release = OldStore("sqlite", f"sqlite:///{old}", {}, sqlite_query(old))
        assert schema(release) == made
        return
    db = server_db("postgresql")
    try:
        load_dump(db)
        assert schema(OldStore("postgresql", db.url, {}, db.query, db)) == made
    finally:
        db.drop()


def test_an_upgrade_is_one_transaction(old_store: OldStore) -> None:
    """Adopting an unversioned store, stamping it and running every revision happen in one transaction: when it
    does not commit, the store is exactly as it was (SQLite: BEGIN IMMEDIATE; PostgreSQL: transactional DDL)."""
    before = schema(old_store)
    engine = bare_engine(old_store.url)
    with pytest.raises(RuntimeError, match="stop"), engine.begin() as c:
        upgrade_store(c)
        assert c.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == HEAD
        raise RuntimeError("stop")
    engine.dispose()
    assert schema(old_store) == before
    assert opened_facts(old_store) == old_store.expected


def test_a_store_older_than_the_last_release_is_brought_up_to_date(project: Project) -> None:
    """Before versioning, each release added its new columns and tables on open; revision 0001 adopts a store of
    any of those releases: missing tables are created, missing columns added with their defaults, the fire_key
    index made."""
    shutil.copyfile(FIXTURES / "store_v0.db", project.db)
    with closing(sqlite3.connect(project.db)) as con:
        con.execute("DROP INDEX ix_syncdash_runs_fire_key")
        con.execute("ALTER TABLE syncdash_runs DROP COLUMN applied_seq")
        con.execute("ALTER TABLE syncdash_runs DROP COLUMN http")
        con.execute("ALTER TABLE syncdash_item_errors DROP COLUMN attempts")
        con.execute("DROP TABLE syncdash_pushed")
        con.execute("DROP TABLE syncdash_breakers")
        con.commit()
    store = Store(f"sqlite:///{project.db}")
    assert store.schema_version() == HEAD
    q = sqlite_query(project.db)
    assert q("SELECT count(*), sum(applied_seq), count(http) FROM syncdash_runs") == [(12, 0, 0)]
    assert q("SELECT DISTINCT attempts FROM syncdash_item_errors") == [(1,)]
    assert q("SELECT count(*) FROM syncdash_pushed") == [(0,)]
    assert q("SELECT name FROM sqlite_master WHERE name IN ('ix_syncdash_runs_fire_key', 'ix_syncdash_pushed_scope') "
             "ORDER BY name") == [("ix_syncdash_pushed_scope",), ("ix_syncdash_runs_fire_key",)]
    store.save_breaker("api.example.com", "open", 3, None, None, "HTTP 503", "players")
    assert [b.host for b in store.breakers()] == ["api.example.com"]


def test_a_store_from_a_newer_syncdash_is_refused(project: Project) -> None:
    Store(f"sqlite:///{project.db}")
    with closing(sqlite3.connect(project.db)) as con:
        con.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
        con.commit()
    with pytest.raises(StoreError, match="newer syncdash"):
        Store(f"sqlite:///{project.db}")


OPEN_AT = """\
import sys, time
from syncdash.store.db import Store
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
print(Store(sys.argv[1]).schema_version())
"""


@pytest.mark.parametrize("rounds", [3])
def test_three_processes_opening_an_empty_postgresql_database_at_once_all_come_up(rounds: int) -> None:
    """Without a lock around creation, concurrent CREATE TABLEs collide on PostgreSQL's catalogue (`duplicate key
    ... (typname, typnamespace)=(syncdash_runs, ...)`) and all but one process die. With the advisory lock the
    first creates, the others wait, find the head revision and go on."""
    for _ in range(rounds):
        db = server_db("postgresql")
        try:
            at = time.time() + 2.0  # all three past their imports, then opening in the same instant
            procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, db.url, str(at)], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(3)]
            outs = [p.communicate(timeout=60) for p in procs]
            assert [p.returncode for p in procs] == [0, 0, 0], [err for _out, err in outs]
            assert [out.strip() for out, _err in outs] == [HEAD] * 3
            assert db.query(f"SELECT version_num FROM {VERSION_TABLE}") == [(HEAD,)]
        finally:
            db.drop()


def test_an_old_store_gains_the_daemon_http_column(tmp_path: Path) -> None:
    """Moved from test_api.py: a store of a release before syncdash_daemons.http (and before versioning, so no
    version table either) gains the column on open."""
    db = tmp_path / "old.db"
    Store(f"sqlite:///{db}")
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE syncdash_daemons DROP COLUMN http")
    con.execute(f"DROP TABLE {VERSION_TABLE}")
    # and what revisions after 0001 added, which that release did not have either
    for table, column in (("syncdash_item_errors", "occurrences"), ("syncdash_item_errors", "last_seen_at"),
                          ("syncdash_item_errors", "last_run_id"), ("syncdash_item_errors", "payload_truncated"),
                          ("syncdash_runs", "notified_at"), ("syncdash_runs", "followed_up_at")):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    con.execute("DROP TABLE syncdash_rate_buckets")
    con.commit()
    con.close()
    Store(f"sqlite:///{db}")
    con = sqlite3.connect(db)
    assert "http" in {r[1] for r in con.execute("PRAGMA table_info(syncdash_daemons)")}
    con.close()


SCRUB_PASSWORD = "Pw-0004-s3cret"


def test_0004_removes_url_userinfo_the_store_kept(empty: OldStore) -> None:
    """Releases before userinfo was stripped at the source wrote `https://alice:PW@host/...` into checkpoints,
    errors, phase positions and breaker keys (`alice:PW@host:port`). Opening such a store with today's code
    leaves no trace of the password in any table (nor, on SQLite, in the file's free space), and keeps the
    rest: where a resumed run continues, the breaker's state under its bare host."""
    import base64
    from datetime import datetime

    from syncdash.store.models import Breaker, ItemError, Run, RunPhase

    store = Store(empty.url)
    url = f"https://alice:{SCRUB_PASSWORD}@127.0.0.1:8443/list?page=3"
    with store.tx() as s:
        run = Run(source="shop", kind="web", status="interrupted",
                  checkpoint=json.dumps({"source": {"page": {"n": 3, "url": url}}}),
                  error=f"GET {url}: 503", warnings=json.dumps([f"slow: {url}"]))
        s.add(run)
        s.flush()
        assert run.id is not None
        s.add(RunPhase(run_id=run.id, name="load", detail=url))
        s.add(ItemError(run_id=run.id, source="shop", item=url, message=f"detail page {url} answered 500",
                        payload=json.dumps({"href": url}), created_at=datetime(2026, 12, 1)))
        s.add(Breaker(host=f"alice:{SCRUB_PASSWORD}@127.0.0.1:8443", state="open", failures=5,
                      last_error=f"503 from {url}"))
        s.add(Breaker(host=f"alice:{SCRUB_PASSWORD}@127.0.0.2:8443", state="closed", failures=1))
        s.add(Breaker(host="127.0.0.2:8443", state="open", failures=3))  # written by today's code: it wins
    store.engine.dispose()  # as the old release left it: closed, its WAL checkpointed
    engine = bare_engine(empty.url)
    with engine.begin() as c:
        c.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0003'"))
    engine.dispose()

    store = Store(empty.url)
    assert store.schema_version() == HEAD
    every_text = " ".join(str(v) for table in ("syncdash_runs", "syncdash_run_phases", "syncdash_item_errors",
                                               "syncdash_breakers")
                          for row in empty.query(f"SELECT * FROM {table}") for v in row)
    assert SCRUB_PASSWORD not in every_text
    assert "alice" not in every_text
    clean = "https://127.0.0.1:8443/list?page=3"
    ck = json.loads(empty.query("SELECT checkpoint FROM syncdash_runs")[0][0])
    assert ck == {"source": {"page": {"n": 3, "url": clean}}}
    assert empty.query("SELECT error FROM syncdash_runs") == [(f"GET {clean}: 503",)]
    assert sorted(empty.query("SELECT host, state, failures FROM syncdash_breakers")) == [
        ("127.0.0.1:8443", "open", 5), ("127.0.0.2:8443", "open", 3)]
    if empty.dialect == "sqlite":
        db = Path(empty.url.removeprefix("sqlite:///"))
        store.engine.dispose()
        raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
        for form in (SCRUB_PASSWORD, base64.b64encode(f"alice:{SCRUB_PASSWORD}".encode()).decode()):
            assert form.encode() not in raw, form
