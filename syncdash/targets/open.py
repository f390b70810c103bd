"""Where a source's target tables live: the store's own database (the default) or another one named by
`target:` (per source or for the whole config), and a connection to it.

When the target is the store's database, a batch's rows and its bookkeeping share one connection and one
transaction. When it is another database, see journal.py for how a batch stays exact across the two.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from syncdash.common.dialect import (
    BUSY_TIMEOUT_MS,
    SQLITE,
    Conn,
    connect_sqlite,
    database_errors,
    dialect_of,
    mask_url,
    normalize_url,
    require_driver,
    setup_sqlite,
    sqlite_file,
    sqlite_path,
)
from syncdash.common.files import touch_private
from syncdash.errors import TargetError
from syncdash.targets.table import q  # noqa: F401  (re-exported: quoting for callers holding a Conn)

if TYPE_CHECKING:  # SQLAlchemy pools server targets only: an SQLite target file is opened with sqlite3
    from sqlalchemy import Engine

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def target_url(config: Any, src: Any) -> str | None:
    """The target database URL of a source; None means the store's database."""
    url = getattr(src, "target", None) or getattr(config, "target", None)
    return normalize_url(url) if url else None


def same_database(store: Any, url: str | None) -> bool:
    return url is None or normalize_url(url) == store.url


def _check(url: str) -> None:
    """A target URL syncdash can open: a known dialect with its driver; an SQLite file exists (owner-only)."""
    try:
        dialect_of(url)
    except ValueError as e:
        raise TargetError(f"target {mask_url(url)}: {e}") from None
    require_driver(url, "target")
    if dialect_of(url) == SQLITE:
        path = sqlite_path(url)
        if path is not None:  # a database syncdash creates is owner-only, like the store
            try:
                touch_private(path)
            except OSError as e:
                raise TargetError(f"cannot create the target database {path}: {e}") from None


def _engine(url: str) -> Engine:
    with _lock:
        eng = _engines.get(url)
        if eng is None:
            _check(url)
            from sqlalchemy import create_engine

            if dialect_of(url) == SQLITE:
                eng = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000,
                                                       "check_same_thread": False})
                setup_sqlite(eng)
            else:
                eng = create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=8)
            _engines[url] = eng
        return eng


def connect(store: Any, url: str | None) -> Conn:
    """A connection to the target database (the store's own pool when they are the same)."""
    if same_database(store, url):
        return store.conn()
    assert url is not None
    file = sqlite_file(url) if url.startswith("sqlite:") else None
    if file is not None:  # a file: sqlite3 opens it in well under a millisecond, no pool (nor SQLAlchemy) needed
        _check(url)
        try:
            con = connect_sqlite(file)
        except database_errors() as e:
            raise TargetError(f"cannot connect to the target database {mask_url(url)}: {e}") from None
        return Conn(con, SQLITE, release=con.close)
    try:
        raw = _engine(url).raw_connection()
    except TargetError:
        raise
    except Exception as e:  # the server is down, the database does not exist, bad credentials
        orig = getattr(e, "orig", e)
        raise TargetError(f"cannot connect to the target database {mask_url(url)}: {orig}", ) from None
    return Conn(raw.driver_connection, dialect_of(url), release=raw.close)


def open_table(conn: Conn, table: str, columns: list[str], types: list[str], primary_key: list[str],
               search: list[str] | None = None) -> Any:
    """The target table object for the connection's dialect (target.TargetTable's contract); search: the
    columns of its full-text index (none: no index, and ensure() drops one left by an earlier config)."""
    if conn.is_sqlite:
        from syncdash.targets.table import TargetTable

        return TargetTable(conn.raw, table, columns, types, primary_key, search)
    from syncdash.targets.server import ServerTargetTable

    return ServerTargetTable(conn, table, columns, types, primary_key, search)


def dispose() -> None:
    """Close pooled target connections (tests that drop their databases; a daemon that stops)."""
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()
