"""Open the store database and keep SQLite safe for several processes at once.

Every write transaction on SQLite starts with BEGIN IMMEDIATE: a deferred transaction that reads
and then writes can fail with "database is locked" without waiting; an immediate one waits on the
busy timeout instead. WAL lets readers (console, CLI) proceed while a sync writes.

The schema is versioned (syncdash/store/migrations, Alembic): opening a store reads its revision with one SELECT
and upgrades it, in one transaction, only when it is behind.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from syncdash.common.dialect import (
    MYSQL,
    SQLITE,
    Conn,
    connect_sqlite,
    database_errors,
    dialect_of,
    mask_url,
    normalize_url,
    require_driver,
    sqlite_file,
    sqlite_path,
    to_format_style,
)
from syncdash.common.files import private_dir, touch_private
from syncdash.errors import AlreadyRunning, StoreError
from syncdash.store.migrations import HEAD, VERSION_TABLE
from syncdash.store.owners import owner_alive, owner_id
from syncdash.store.rows import BREAKERS, RUNS, SOURCE_STATE, RunStatus, default_database_url, format_ts, utcnow

if TYPE_CHECKING:  # SQLAlchemy and the models are imported when first used (see the Store docstring)
    from sqlalchemy import Engine
    from sqlmodel import Session

    from syncdash.store.models import Run, SourceState

# owner_id and owner_alive live in syncdash.store.owners; importing them from here keeps working
__all__ = ["LEASE_SECONDS", "MIGRATION_LOCK", "Store", "default_database_url", "dumps", "format_ts", "install_qmark",
           "owner_alive", "owner_id"]

LEASE_SECONDS = 60
# pg_advisory_xact_lock key of schema creation and upgrades (the bytes of "syncdash")
MIGRATION_LOCK = int.from_bytes(b"syncdash", "big")


class Store:
    """The store: runs, phases, errors, source state, changes and commands.

    A run writes its rows as SQL text on the store's DB-API connections (`conn`, `write`), whatever the
    dialect; on an SQLite file those are sqlite3 connections of a small pool of the Store's own, so a CLI run
    never imports SQLAlchemy (~200 ms; SQLModel and the models another ~150 ms). SQLAlchemy is loaded when
    something needs it: `engine` (a server's connection pool; migrations of a new or older store) and
    `session` (the ORM, which the console, the API and the daemon's bookkeeping still use)."""

    IDLE_SQLITE = 8  # pooled sqlite3 connections kept open between uses

    def __init__(self, url: str | None = None) -> None:
        self.url = normalize_url(url or default_database_url())
        try:
            self.dialect = dialect_of(self.url)
        except ValueError as e:
            raise StoreError(f"database {mask_url(self.url)}: {e}") from None
        if self.dialect == MYSQL:
            raise StoreError(f"database {mask_url(self.url)}: the store runs on SQLite or PostgreSQL; MySQL and "
                             "MariaDB can hold target tables (target: mysql://...)")
        require_driver(self.url, "store")
        self.is_sqlite = self.dialect == SQLITE
        path = sqlite_path(self.url)
        if path is not None:
            try:  # owner-only (0700 folders it creates, a 0600 file; SQLite gives WAL/SHM the file's mode)
                private_dir(path.parent)
            except OSError as e:
                raise StoreError(f"cannot create the store directory {path.parent}: {e}") from None
            try:
                touch_private(path)
            except OSError as e:
                raise StoreError(f"cannot create the store {path}: {e}") from None
        self.path = path
        # the SQLite file conn() opens with sqlite3; None: connections come from SQLAlchemy's pool (`engine`)
        self.file = sqlite_file(self.url) if self.is_sqlite else None
        self._idle: list[Any] = []  # sqlite3 connections to _file, free for the next conn()
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._store_id: str | None = None
        self.migrate()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the store (built, and SQLAlchemy imported, on first use)."""
        with self._lock:
            if self._engine is None:
                from sqlmodel import create_engine

                if self.is_sqlite:
                    from syncdash.common.dialect import BUSY_TIMEOUT_MS, setup_sqlite

                    eng = create_engine(self.url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000,
                                                                "check_same_thread": False})
                    setup_sqlite(eng)
                    from sqlalchemy import event

                    # engine.dispose() means every connection to the file is closed: the sqlite3 ones too
                    # (the last one to close checkpoints the WAL into the file and removes it)
                    event.listen(eng, "engine_disposed", lambda _eng: self._close_idle())
                else:
                    eng = create_engine(self.url, pool_pre_ping=True, pool_size=8, max_overflow=16)
                    install_qmark(eng)
                self._engine = eng
            return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        """Hand the store another engine (tests: one whose database is gone): every connection comes from it."""
        with self._lock:
            self._engine = engine
            self.file = None
        self._close_idle()

    def schema_version(self) -> str | None:
        """The store's schema revision, or None when it has none yet (empty, or made before versioning).

        One SELECT on a pooled connection outside any transaction: it takes no lock, even on SQLite."""
        c = self.conn()
        try:
            version = c.scalar(f"SELECT version_num FROM {VERSION_TABLE}")
        except database_errors():
            return None
        finally:
            c.close()
        return None if version is None else str(version)

    def migrate(self) -> None:
        """Bring the schema to HEAD, in one transaction, one process at a time.

        Several processes may open a new store at once (three daemons started together): on PostgreSQL a
        transaction-scoped advisory lock serializes them, on SQLite BEGIN IMMEDIATE (the engine's begin hook)
        does. Whoever comes second finds the work done: the upgrade re-reads the version under the lock."""
        try:
            if self.schema_version() == HEAD:
                return
        except database_errors() as e:  # the SQLite file cannot be opened
            raise StoreError(f"cannot open the store {mask_url(self.url)}: {e}") from None
        except Exception as e:
            if getattr(e, "orig", None) is None:  # not a database error SQLAlchemy wrapped (server down, ...)
                raise
            raise StoreError(f"cannot open the store {mask_url(self.url)}: {e.orig}") from None  # type: ignore[attr-defined]
        if self.file is not None and self._create_sqlite_head():
            return
        from sqlalchemy.exc import DBAPIError, OperationalError

        from syncdash.store.migrations import fresh

        try:
            with self.engine.begin() as c:
                if not self.is_sqlite:
                    c.exec_driver_sql("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
                if fresh.is_empty(c):  # a new store: the head schema at once (re-checked under the lock)
                    fresh.create_head(c)
                    return
                from syncdash.store.migrations.upgrade import upgrade_store  # Alembic: only for real upgrades

                upgrade_store(c)
        except (OperationalError, DBAPIError) as e:
            raise StoreError(f"cannot open the store {mask_url(self.url)}: {e.orig}") from None

    def _create_sqlite_head(self) -> bool:
        """A new SQLite store gets the head schema as plain DDL (migrations/sqlite_head.py, generated from the
        models), so its first run loads no SQLAlchemy. BEGIN IMMEDIATE makes a second process wait, then find
        the tables made. False when the file already holds store tables (or a foreign schema version): those go
        the SQLAlchemy/Alembic way, which adopts or upgrades them."""
        from syncdash.store.migrations import sqlite_head

        try:
            with self.write() as c:
                names = {str(n) for (n,) in c.all("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if VERSION_TABLE in names and c.scalar(f"SELECT version_num FROM {VERSION_TABLE}") == HEAD:
                    return True  # another process made it while this one waited for the lock
                if VERSION_TABLE in names or any(n.startswith("syncdash_") for n in names):
                    return False
                for sql in sqlite_head.STATEMENTS:
                    c.execute(sql)
                c.execute(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (?)", (sqlite_head.REVISION,))
        except database_errors() as e:
            raise StoreError(f"cannot open the store {mask_url(self.url)}: {e}") from None
        return True

    @property
    def store_id(self) -> str:
        """This store's identity, kept in it: journals in a separate target database are keyed by it, so
        two stores writing to one target database never replay each other's batches."""
        if self._store_id is None:
            with self.write() as c:
                row = c.one("SELECT value FROM syncdash_meta WHERE key = 'store_id'")
                if row is None:
                    c.execute("INSERT INTO syncdash_meta (key, value) VALUES ('store_id', ?) "
                              "ON CONFLICT (key) DO NOTHING", (uuid.uuid4().hex,))
                    row = c.one("SELECT value FROM syncdash_meta WHERE key = 'store_id'")
            self._store_id = str(row[0]) if row else "unknown"
        return self._store_id

    # ---- DB-API connections: the run path's, for every dialect ------------------------------------------

    def conn(self) -> Conn:
        """A connection of the store's pool (autocommit until `begin`); close() hands it back."""
        if self.file is None:
            raw = self.engine.raw_connection()
            return Conn(raw.driver_connection, self.dialect, release=raw.close)
        with self._lock:
            con = self._idle.pop() if self._idle else None
        if con is None:
            con = connect_sqlite(self.file)
        return Conn(con, SQLITE, release=lambda: self._give_back(con))

    def _give_back(self, con: Any) -> None:
        with self._lock:
            if len(self._idle) < self.IDLE_SQLITE:
                self._idle.append(con)
                return
        con.close()

    def _close_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for con in idle:
            con.close()

    def close(self) -> None:
        """Close the pooled connections (SQLAlchemy's too, when it was loaded); the Store stays usable."""
        self._close_idle()
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Conn]:
        """One write transaction (BEGIN IMMEDIATE on SQLite): committed when the block ends, rolled back when
        it raises."""
        c = self.conn()
        try:
            c.begin()
            yield c
            c.commit()
        finally:
            c.close()  # rolls back what is still open

    def all(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        """Rows of one statement, outside any transaction (StoreReader's face, on any dialect)."""
        c = self.conn()
        try:
            return c.all(sql, params)
        finally:
            c.close()

    def scalar(self, sql: str, params: Any = ()) -> Any:
        rows = self.all(sql, params)
        return rows[0][0] if rows else None

    def run_row(self, run_id: int) -> Any:
        """The run as a light row (syncdash.store.rows), read without the ORM; None when there is none."""
        return RUNS.first(self, "WHERE id = ?", (run_id,))

    def source_state(self, source: str) -> Any:
        """The source's state as a light row (syncdash.store.rows), read without the ORM; None when none yet."""
        return SOURCE_STATE.first(self, "WHERE source = ?", (source,))

    def session(self) -> Session:
        from sqlmodel import Session

        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self.session() as s:
            yield s
            s.commit()

    # ---- leases: a source never runs twice at once ------------------------------------------

    def acquire_lease_in(self, c: Conn, source: str, run_id: int, owner: str) -> list[int]:
        """Take the source's lease for run_id inside the caller's transaction on `c`.

        Returns the ids of runs found dead (owner gone or lease lapsed) and marked interrupted.
        """
        now = utcnow()
        if not self.is_sqlite:  # two claimers on a server: the state row is the lock (SQLite: BEGIN IMMEDIATE)
            c.execute("INSERT INTO syncdash_source_state (source, paused) VALUES (?, FALSE) "
                      "ON CONFLICT (source) DO NOTHING", (source,))
        st = SOURCE_STATE.first(c, "WHERE source = ?" + ("" if self.is_sqlite else " FOR UPDATE"), (source,))
        if st is not None and st.lock_run_id is not None and st.lock_run_id != run_id:
            alive = owner_alive(st.lock_owner)
            expired = st.lease_until is None or st.lease_until < now
            if alive or (alive is None and not expired):
                who = st.lock_owner.split(":")[0] if st.lock_owner else "?"
                raise AlreadyRunning(f"source {source!r} is already running (run {st.lock_run_id}, {who})")
        interrupted = self._mark_dead_runs(c, source, exclude=run_id)
        c.execute("INSERT INTO syncdash_source_state (source, paused, lock_run_id, lock_owner, lease_until) "
                  "VALUES (?, FALSE, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET lock_run_id = excluded.lock_run_id, "
                  "lock_owner = excluded.lock_owner, lease_until = excluded.lease_until",
                  (source, run_id, owner, format_ts(now + timedelta(seconds=LEASE_SECONDS))))
        return interrupted

    def release_lease_in(self, c: Conn, source: str, run_id: int) -> None:
        """Give the lease up inside the caller's transaction on `c` (only if run_id holds it)."""
        c.execute("UPDATE syncdash_source_state SET lock_run_id = NULL, lock_owner = NULL, lease_until = NULL "
                  "WHERE source = ? AND lock_run_id = ?", (source, run_id))

    def _mark_dead_runs(self, c: Conn, source: str, exclude: int | None = None) -> list[int]:
        stale = utcnow() - timedelta(seconds=LEASE_SECONDS)
        dead: list[int] = []
        for rid, owner, beat in c.all("SELECT id, owner, heartbeat_at FROM syncdash_runs WHERE source = ? "
                                      "AND status = ?", (source, RunStatus.RUNNING.value)):
            if rid == exclude:
                continue
            alive = owner_alive(owner)
            beat_at = datetime.fromisoformat(beat) if isinstance(beat, str) else beat
            if alive is False or (alive is None and (beat_at is None or beat_at < stale)):
                c.execute("UPDATE syncdash_runs SET status = ? WHERE id = ?", (RunStatus.INTERRUPTED.value, rid))
                dead.append(rid)
        return dead

    def renew_lease(self, source: str, run_id: int) -> None:
        now = utcnow()
        with self.write() as c:
            c.execute("UPDATE syncdash_source_state SET lease_until=? WHERE source=? AND lock_run_id=?",
                      (format_ts(now + timedelta(seconds=LEASE_SECONDS)), source, run_id))
            c.execute("UPDATE syncdash_runs SET heartbeat_at=? WHERE id=?", (format_ts(now), run_id))

    def release_lease(self, source: str, run_id: int) -> None:
        with self.write() as c:
            self.release_lease_in(c, source, run_id)

    # ---- reads for the CLI and console ---------------------------------------------------------

    def get_run(self, run_id: int) -> Run | None:
        from syncdash.store.models import Run

        with self.session() as s:
            return s.get(Run, run_id)

    def source_states(self) -> dict[str, SourceState]:
        from sqlmodel import select

        from syncdash.store.models import SourceState

        with self.session() as s:
            return {st.source: st for st in s.exec(select(SourceState))}

    def last_runs(self) -> dict[str, Run]:
        from sqlmodel import select

        from syncdash.store.models import Run

        out: dict[str, Run] = {}
        with self.session() as s:
            for run in s.exec(select(Run).where(Run.dry_run == False).order_by(Run.id.desc()).limit(5000)):  # type: ignore[union-attr] # noqa: E712
                out.setdefault(run.source, run)
        return out

    # ---- circuit breakers (REST sources) ----------------------------------------------------------

    def breaker(self, host: str) -> Any:
        """The host's breaker as a light row (syncdash.store.rows): a REST run reads it before its first
        request, so it goes without the ORM like the rest of the run path; None when the host has none."""
        return BREAKERS.first(self, "WHERE host = ?", (host,))

    def breakers(self) -> list[Any]:
        return BREAKERS.fetch(self, "ORDER BY host")

    def save_breaker(self, host: str, state: str, failures: int, opened_at: datetime | None,
                     retry_at: datetime | None, last_error: str | None, source: str | None) -> None:
        ts = [None if t is None else format_ts(t) for t in (opened_at, retry_at, utcnow())]
        with self.write() as c:
            c.execute(
                "INSERT INTO syncdash_breakers (host, state, failures, opened_at, retry_at, last_error, source, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET state=excluded.state, "
                "failures=excluded.failures, opened_at=excluded.opened_at, retry_at=excluded.retry_at, "
                "last_error=excluded.last_error, source=excluded.source, updated_at=excluded.updated_at",
                (host, state, failures, ts[0], ts[1], last_error, source, ts[2]))


def install_qmark(engine: Engine) -> None:
    """Raw SQL in syncdash uses `?` placeholders (SQLite's); servers' drivers want `%s`. Only driver-level
    statements (exec_driver_sql) are rewritten: SQLAlchemy's compiled ones already speak the driver's style."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _qmark(_conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any,
               _many: bool) -> tuple[str, Any]:
        if parameters and context is not None and context.compiled is None:
            statement = to_format_style(statement)
        return statement, parameters


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
