"""What SQLite, PostgreSQL and MySQL/MariaDB do differently, in one place: URLs, drivers, transactions,
parameter style and error classes.

The engine writes batches on raw DBAPI connections (SQLAlchemy's per-statement cost is a measurable share
of a million-row load); `Conn` gives those connections one face. SQL in syncdash is written once with `?`
placeholders and "double-quoted" identifiers: `Conn` rewrites the placeholders for drivers that want `%s`,
and MySQL sessions run with ANSI_QUOTES so the quoting holds there too.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syncdash.common.files import chmod_private
from syncdash.errors import StoreError, TargetError

if TYPE_CHECKING:  # SQLAlchemy costs ~150 ms to import: `validate` and `schema` never need it
    from sqlalchemy import Engine
    from sqlalchemy.engine import Connection

SQLITE, POSTGRES, MYSQL = "sqlite", "postgresql", "mysql"

_DRIVERS = {POSTGRES: ("psycopg", "postgres"), MYSQL: ("pymysql", "mysql")}


def dialect_of(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "sqlite":
        return SQLITE
    if scheme in ("postgresql", "postgres"):
        return POSTGRES
    if scheme in ("mysql", "mariadb"):
        return MYSQL
    raise ValueError(f"unsupported database {scheme!r}: use sqlite:///..., postgresql://... or mysql://...")


def normalize_url(url: str) -> str:
    """Pick the drivers syncdash installs: postgresql:// means psycopg 3, mysql:// and mariadb:// PyMySQL.

    An explicit driver (postgresql+psycopg2://) is kept: the user may have reasons.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    base = scheme.split("+", 1)[0].lower()
    if "+" in scheme:
        return url
    if base in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    if base in ("mysql", "mariadb"):
        return f"mysql+pymysql://{rest}"
    return url


def require_driver(url: str, what: str = "database") -> None:
    """A missing driver is a set-up problem with a one-line fix: say which extra to install."""
    d = dialect_of(url)
    if d == SQLITE:
        return
    module, extra = _DRIVERS[d]
    scheme = url.split("://", 1)[0]
    if "+" in scheme:
        module = {"psycopg2": "psycopg2", "psycopg": "psycopg", "pymysql": "pymysql", "mysqldb": "MySQLdb",
                  "mysqlconnector": "mysql.connector"}.get(scheme.split("+", 1)[1], module)
    try:
        __import__(module)
    except ImportError:
        err = StoreError if what == "store" else TargetError
        raise err(f"the {what} {d} database needs the {module} driver: pip install 'syncdash[{extra}]'") from None


_PASSWORD_PARAM = re.compile(r"(?i)^(password|passwd|pwd|pass|sslpassword|secret|token|api_key|apikey)$")


# an SQLite file URL whose path SQLAlchemy's URL renders verbatim (it percent-quotes all but these characters)
_PLAIN_SQLITE_URL = re.compile(r"sqlite:///[\w.~ +/-]*", re.ASCII)


def mask_url(url: str) -> str:
    """A database URL with its password hidden in every form SQLAlchemy accepts (`user:pw@`, `:pw@`,
    `?password=`), rendered by SQLAlchemy's URL object, for messages and the store."""
    if _PLAIN_SQLITE_URL.fullmatch(url):
        return url  # a file path: nothing to hide, and SQLAlchemy renders it unchanged (not imported for it)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        # not a URL SQLAlchemy reads: hide whatever sits between "://...:" and "@", and password params
        out = re.sub(r"(://[^/@]*?:)[^@/]*@", r"\1***@", url)
        return re.sub(r"(?i)([?&](?:password|passwd|pwd|pass|sslpassword)=)[^&#]*", r"\1***", out)
    if any(_PASSWORD_PARAM.match(k) for k in u.query):
        u = u.update_query_dict({k: "***" for k in u.query if _PASSWORD_PARAM.match(k)})
    return u.render_as_string(hide_password=True)


@lru_cache(maxsize=4096)
def to_format_style(sql: str) -> str:
    """`?` placeholders to `%s` (psycopg, PyMySQL); a literal % must then be doubled."""
    return sql.replace("%", "%%").replace("?", "%s")


def _loaded_driver_errors(attr: str) -> list[type[BaseException]]:
    """`attr` of each server driver this process has imported. A driver that is not imported cannot have
    raised anything, so it is not imported just to name its error classes (psycopg and PyMySQL cost
    ~70 ms to import, paid by every SQLite run that only wanted a `except database_errors()`)."""
    out: list[type[BaseException]] = []
    for mod in ("psycopg", "pymysql"):
        module = sys.modules.get(mod)
        if module is not None and hasattr(module, attr):
            out.append(getattr(module, attr))
    return out


def database_errors() -> tuple[type[BaseException], ...]:
    """The DBAPI error base classes of every loaded driver (what a run turns into error_type database)."""
    return (sqlite3.Error, *_loaded_driver_errors("Error"))


def integrity_errors() -> tuple[type[BaseException], ...]:
    return (sqlite3.IntegrityError, *_loaded_driver_errors("IntegrityError"))


def transient(e: BaseException) -> bool:
    """Errors that may pass by themselves (locked, connection lost, serialization failure, deadlock)."""
    if isinstance(e, sqlite3.OperationalError):
        return True
    name = type(e).__name__
    if name in ("OperationalError", "SerializationFailure", "DeadlockDetected", "InterfaceError"):
        return True
    return type(e).__module__.startswith("psycopg") and name in ("LockNotAvailable", "AdminShutdown")


class Conn:
    """A raw DBAPI connection with explicit transactions, whatever the driver.

    Outside a transaction every statement commits by itself (SQLite isolation_level None, psycopg and
    PyMySQL autocommit); `begin` opens one (BEGIN IMMEDIATE on SQLite, so a writer waits on the busy
    timeout instead of failing with "database is locked" when it first writes).
    """

    def __init__(self, raw: Any, dialect: str, release: Any = None) -> None:
        self.raw = raw
        self.dialect = dialect
        self.is_sqlite = dialect == SQLITE
        self._release = release
        self._tx = False
        if dialect == POSTGRES:
            if raw.info.transaction_status != 0:  # a pooled connection left mid-transaction
                raw.rollback()
            raw.autocommit = True
        elif dialect == MYSQL:
            raw.autocommit(True)
            cur = raw.cursor()
            # "quoted" identifiers as everywhere else; exact (binary) key comparison is the table's collation
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
            cur.close()

    # ---- statements ------------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self.is_sqlite else to_format_style(sql)

    def execute(self, sql: str, params: Any = ()) -> Any:
        if self.is_sqlite:
            return self.raw.execute(sql, params)
        cur = self.raw.cursor()
        if params:
            cur.execute(self._sql(sql), tuple(params))
        else:  # no parameters: the driver does not look for placeholders, so % stays as written
            cur.execute(sql)
        return cur

    def executemany(self, sql: str, seq: Any) -> int:
        """Returns the rows affected (drivers disagree on what executemany's rowcount means: summed here)."""
        if self.is_sqlite:
            before = self.raw.total_changes
            self.raw.executemany(sql, seq)
            return int(self.raw.total_changes - before)
        rows = seq if isinstance(seq, list) else list(seq)
        if not rows:
            return 0
        cur = self.raw.cursor()
        cur.executemany(self._sql(sql), rows)
        n = cur.rowcount
        cur.close()
        return int(n) if n is not None and n >= 0 else 0

    def insert(self, sql: str, params: Any = ()) -> int:
        """Run an INSERT of one row into a table with an `id` key; returns the new row's id."""
        if self.is_sqlite:
            return int(self.raw.execute(sql, params).lastrowid)
        row = self.one(sql + " RETURNING id", params)
        assert row is not None
        return int(row[0])

    def rowcount(self, sql: str, params: Any = ()) -> int:
        cur = self.execute(sql, params)
        return int(cur.rowcount)

    def all(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        cur = self.execute(sql, params)
        rows = cur.fetchall()
        return [tuple(r) for r in rows]

    def one(self, sql: str, params: Any = ()) -> tuple[Any, ...] | None:
        cur = self.execute(sql, params)
        row = cur.fetchone()
        return None if row is None else tuple(row)

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    # ---- transactions ----------------------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        return bool(self.raw.in_transaction) if self.is_sqlite else self._tx

    def begin(self) -> None:
        if self.is_sqlite:
            self.raw.execute("BEGIN IMMEDIATE")
        else:
            self.execute("BEGIN")
            self._tx = True

    def commit(self) -> None:
        if self.is_sqlite:
            self.raw.execute("COMMIT")
        else:
            self._tx = False
            self.execute("COMMIT")

    def rollback(self) -> None:
        if not self.in_transaction:
            return
        if self.is_sqlite:
            self.raw.execute("ROLLBACK")
        else:
            self._tx = False
            try:
                self.execute("ROLLBACK")
            except Exception:  # the connection is gone: nothing is left to roll back
                pass

    def savepoint(self, name: str) -> None:
        self.execute(f"SAVEPOINT {name}")

    def rollback_to(self, name: str) -> None:
        self.execute(f"ROLLBACK TO SAVEPOINT {name}")
        self.execute(f"RELEASE SAVEPOINT {name}")

    def release(self, name: str) -> None:
        self.execute(f"RELEASE SAVEPOINT {name}")

    # ---- catalogue ----------------------------------------------------------------------------------

    def table_names(self, prefix: str) -> list[str]:
        """Tables of the current database/schema whose name starts with prefix."""
        like = prefix.replace("_", "\\_") + "%"
        if self.is_sqlite:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\\'"
        elif self.dialect == POSTGRES:
            sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                   "AND table_name LIKE ? ESCAPE '\\'")
        else:
            sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                   "AND table_name LIKE ? ESCAPE '\\\\'")
        return [r[0] for r in self.all(sql, (like,))]

    def close(self) -> None:
        try:
            self.rollback()
        finally:
            if self.dialect == POSTGRES:
                try:
                    self.raw.autocommit = False
                except Exception:
                    pass
            if self._release is not None:
                self._release()


# A writer waits this long for SQLite's lock before "database is locked": a daemon's batch can hold it for seconds.
BUSY_TIMEOUT_MS = 60_000


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///"):]
        if rest and rest != ":memory:":
            return Path(rest)
    return None


def prepare_sqlite(dbapi_conn: sqlite3.Connection) -> None:
    """Every SQLite connection of syncdash (store or target), opened by SQLAlchemy's pool or by
    connect_sqlite: autocommit (BEGIN is issued explicitly), WAL so readers never wait on the writer, the
    busy timeout, foreign keys on; and the -wal/-shm files as private as the database."""
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    row = cur.execute("PRAGMA database_list").fetchone()
    cur.close()
    if row and row[2]:
        private_sidecars(str(row[2]))


def connect_sqlite(path: Path) -> sqlite3.Connection:
    """A DB-API connection to an SQLite file, set up as every syncdash connection is (prepare_sqlite): what
    Conn wraps for a run, without SQLAlchemy (~200 ms to import) in between."""
    con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        prepare_sqlite(con)
    except BaseException:
        con.close()
        raise
    return con


def sqlite_file(url: str) -> Path | None:
    """The file of an `sqlite:///path` URL that connect_sqlite can open as it is (no in-memory database, no
    URL query such as `?mode=ro`, which only SQLAlchemy reads); None for anything else."""
    if "?" in url:
        return None
    return sqlite_path(url)


def setup_sqlite(engine: Engine) -> None:
    """Every SQLite connection of an SQLAlchemy engine (store sessions, migrations): prepare_sqlite, and
    BEGIN IMMEDIATE, because a deferred transaction that reads then writes fails with "database is locked"
    without waiting, where an immediate one waits on the busy timeout."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        prepare_sqlite(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def private_sidecars(db_file: str) -> None:
    """A 0600 database keeps its -wal and -shm 0600 too. SQLite already gives them the database file's mode
    when it creates them; this covers ones left by an older syncdash or made by another tool. A database
    the user keeps readable by others is the user's choice: its sidecars are left as SQLite made them."""
    try:
        if os.stat(db_file).st_mode & 0o077:
            return
    except OSError:
        return
    chmod_private(db_file + "-wal", db_file + "-shm")
