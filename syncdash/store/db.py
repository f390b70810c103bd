"""Open the store database and keep SQLite safe for several processes at once.

Every write transaction on SQLite starts with BEGIN IMMEDIATE: a deferred transaction that reads
and then writes can fail with "database is locked" without waiting; an immediate one waits on the
busy timeout instead. WAL lets readers (console, CLI) proceed while a sync writes.

The schema is versioned (syncdash/store/migrations, Alembic): opening a store reads its revision with one SELECT
and upgrades it, in one transaction, only when it is behind.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, create_engine, select

from syncdash.common.dialect import (
    BUSY_TIMEOUT_MS,
    MYSQL,
    SQLITE,
    Conn,
    database_errors,
    dialect_of,
    mask_url,
    normalize_url,
    require_driver,
    setup_sqlite,
    sqlite_path,
    to_format_style,
)
from syncdash.common.files import private_dir, touch_private
from syncdash.errors import AlreadyRunning, StoreError
from syncdash.store import models
from syncdash.store.migrations import HEAD, VERSION_TABLE
from syncdash.store.models import Run, RunStatus, SourceState, utcnow
from syncdash.store.owners import owner_alive, owner_id
from syncdash.store.rows import default_database_url, format_ts

# owner_id and owner_alive live in syncdash.store.owners; importing them from here keeps working
__all__ = ["LEASE_SECONDS", "MIGRATION_LOCK", "Store", "default_database_url", "dumps", "format_ts", "install_qmark",
           "owner_alive", "owner_id"]

LEASE_SECONDS = 60
# pg_advisory_xact_lock key of schema creation and upgrades (the bytes of "syncdash")
MIGRATION_LOCK = int.from_bytes(b"syncdash", "big")


class Store:
    """The store: runs, phases, errors, source state, changes and commands."""

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
        connect_args: dict[str, Any] = {}
        if self.is_sqlite:
            connect_args = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            self.engine: Engine = create_engine(self.url, connect_args=connect_args)
            setup_sqlite(self.engine)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=8, max_overflow=16)
            install_qmark(self.engine)
        self._store_id: str | None = None
        self.migrate()

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
            from syncdash.store.migrations import fresh

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

    @property
    def store_id(self) -> str:
        """This store's identity, kept in it: journals in a separate target database are keyed by it, so
        two stores writing to one target database never replay each other's batches."""
        if self._store_id is None:
            with self.engine.begin() as c:
                row = c.exec_driver_sql("SELECT value FROM syncdash_meta WHERE key = 'store_id'").first()
                if row is None:
                    new = uuid.uuid4().hex
                    c.exec_driver_sql("INSERT INTO syncdash_meta (key, value) VALUES ('store_id', ?) "
                                      "ON CONFLICT (key) DO NOTHING", (new,))
                    row = c.exec_driver_sql("SELECT value FROM syncdash_meta WHERE key = 'store_id'").first()
            self._store_id = str(row[0]) if row else "unknown"
        return self._store_id

    def conn(self) -> Conn:
        """A raw connection of the store's pool, for the engine's batch transactions."""
        raw = self.engine.raw_connection()
        return Conn(raw.driver_connection, self.dialect, release=raw.close)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        with self.session() as s:
            yield s
            s.commit()

    # ---- leases: a source never runs twice at once ------------------------------------------

    def acquire_lease_in(self, s: Session, source: str, run_id: int, owner: str) -> list[int]:
        """Take the source's lease for run_id inside the caller's transaction.

        Returns the ids of runs found dead (owner gone or lease lapsed) and marked interrupted.
        """
        now = utcnow()
        if not self.is_sqlite:  # two claimers on a server: the state row is the lock (SQLite: BEGIN IMMEDIATE)
            s.connection().exec_driver_sql("INSERT INTO syncdash_source_state (source, paused) VALUES (?, FALSE) "
                                           "ON CONFLICT (source) DO NOTHING", (source,))
        st = s.get(SourceState, source, with_for_update=not self.is_sqlite) or SourceState(source=source)
        if st.lock_run_id is not None and st.lock_run_id != run_id:
            alive = owner_alive(st.lock_owner)
            expired = st.lease_until is None or st.lease_until < now
            if alive or (alive is None and not expired):
                who = st.lock_owner.split(":")[0] if st.lock_owner else "?"
                raise AlreadyRunning(f"source {source!r} is already running (run {st.lock_run_id}, {who})")
        interrupted = self._mark_dead_runs(s, source, exclude=run_id)
        st.lock_run_id = run_id
        st.lock_owner = owner
        st.lease_until = now + timedelta(seconds=LEASE_SECONDS)
        s.add(st)
        s.flush()
        return interrupted

    def release_lease_in(self, s: Session, source: str, run_id: int) -> None:
        st = s.get(SourceState, source)
        if st is not None and st.lock_run_id == run_id:
            st.lock_run_id = None
            st.lock_owner = None
            st.lease_until = None
            s.add(st)

    def _mark_dead_runs(self, s: Session, source: str, exclude: int | None = None) -> list[int]:
        now = utcnow()
        dead: list[int] = []
        for run in s.exec(select(Run).where(Run.source == source, Run.status == RunStatus.RUNNING)):
            if run.id == exclude:
                continue
            alive = owner_alive(run.owner)
            stale = run.heartbeat_at is None or run.heartbeat_at < now - timedelta(seconds=LEASE_SECONDS)
            if alive is False or (alive is None and stale):
                run.status = RunStatus.INTERRUPTED
                s.add(run)
                dead.append(run.id or 0)
        return dead

    def renew_lease(self, source: str, run_id: int) -> None:
        now = utcnow()
        with self.engine.begin() as c:
            c.exec_driver_sql(
                "UPDATE syncdash_source_state SET lease_until=? WHERE source=? AND lock_run_id=?",
                (format_ts(now + timedelta(seconds=LEASE_SECONDS)), source, run_id))
            c.exec_driver_sql("UPDATE syncdash_runs SET heartbeat_at=? WHERE id=?", (format_ts(now), run_id))

    def release_lease(self, source: str, run_id: int) -> None:
        with self.engine.begin() as c:
            c.exec_driver_sql(
                "UPDATE syncdash_source_state SET lock_run_id=NULL, lock_owner=NULL, lease_until=NULL "
                "WHERE source=? AND lock_run_id=?", (source, run_id))

    # ---- reads for the CLI and console ---------------------------------------------------------

    def get_run(self, run_id: int) -> Run | None:
        with self.session() as s:
            return s.get(Run, run_id)

    def source_states(self) -> dict[str, SourceState]:
        with self.session() as s:
            return {st.source: st for st in s.exec(select(SourceState))}

    def last_runs(self) -> dict[str, Run]:
        out: dict[str, Run] = {}
        with self.session() as s:
            for run in s.exec(select(Run).where(Run.dry_run == False).order_by(Run.id.desc()).limit(5000)):  # type: ignore[union-attr] # noqa: E712
                out.setdefault(run.source, run)
        return out


    # ---- circuit breakers (REST sources) ----------------------------------------------------------

    def breaker(self, host: str) -> models.Breaker | None:
        with self.session() as s:
            return s.get(models.Breaker, host)

    def breakers(self) -> list[models.Breaker]:
        with self.session() as s:
            return list(s.exec(select(models.Breaker)))

    def save_breaker(self, host: str, state: str, failures: int, opened_at: datetime | None,
                     retry_at: datetime | None, last_error: str | None, source: str | None) -> None:
        ts = [None if t is None else format_ts(t) for t in (opened_at, retry_at, utcnow())]
        with self.engine.begin() as c:
            c.exec_driver_sql(
                "INSERT INTO syncdash_breakers (host, state, failures, opened_at, retry_at, last_error, source, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET state=excluded.state, "
                "failures=excluded.failures, opened_at=excluded.opened_at, retry_at=excluded.retry_at, "
                "last_error=excluded.last_error, source=excluded.source, updated_at=excluded.updated_at",
                (host, state, failures, ts[0], ts[1], last_error, source, ts[2]))


def install_qmark(engine: Engine) -> None:
    """Raw SQL in syncdash uses `?` placeholders (SQLite's); servers' drivers want `%s`. Only driver-level
    statements (exec_driver_sql) are rewritten: SQLAlchemy's compiled ones already speak the driver's style."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _qmark(_conn: Any, _cursor: Any, statement: str, parameters: Any, context: Any,
               _many: bool) -> tuple[str, Any]:
        if parameters and context is not None and context.compiled is None:
            statement = to_format_style(statement)
        return statement, parameters


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, default=str)
