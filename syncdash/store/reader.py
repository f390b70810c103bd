"""A read-only view of an SQLite store through the DB-API: what `status`, `runs`, `errors` and `show` open.

Opening a `Store` imports SQLAlchemy and SQLModel and builds the ORM (~200 ms before the first query); these
commands only read a few rows. `open_reader` hands out a `StoreReader` when the store is an SQLite file
whose schema is already at HEAD (one SELECT of the version row says so); anything else (a server database,
a new store, one behind HEAD that must be upgraded) gets the full `Store`, which creates or upgrades it.

The questions themselves stay in syncdash.store.queries (and health): each function there answers from
either kind of store, so the CLI, the console and the HTTP API keep one read model.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncdash.common.dialect import (
    BUSY_TIMEOUT_MS,
    SQLITE,
    connect_sqlite,
    normalize_url,
    private_sidecars,
    sqlite_path,
)
from syncdash.store.migrations import HEAD, VERSION_TABLE
from syncdash.store.rows import RUNS, SOURCE_STATE, Table, default_database_url, format_ts

if TYPE_CHECKING:
    from pathlib import Path

    from syncdash.store.db import Store


class StoreReader:
    """An SQLite store at HEAD, read with sqlite3: the read model's functions take it wherever they take a Store.

    Every statement runs in autocommit (a reader never holds a lock a writer waits on, WAL lets it read
    while a sync writes); rows come back as syncdash.store.rows objects with the models' attributes."""

    is_sqlite = True
    dialect = SQLITE

    def __init__(self, url: str, path: Path, con: sqlite3.Connection) -> None:
        self.url = url
        self.path = path
        self.con = con

    def rows(self, table: Table, where: str = "", params: Any = ()) -> list[Any]:
        """`SELECT <every column> FROM table <where>` as row objects."""
        cur = self.con.execute(f"SELECT {table.select} FROM {table.name} {where}", tuple(params))
        return [table.row(r) for r in cur.fetchall()]

    def all(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.con.execute(sql, tuple(params)).fetchall()]

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.con.execute(sql, tuple(params)).fetchone()
        return None if row is None else row[0]

    def ts(self, dt: datetime) -> str:
        """A datetime as a query parameter compared with stored DATETIME text."""
        return format_ts(dt)

    # the Store methods the read model calls, answered with the same SQL the ORM sends

    def get_run(self, run_id: int) -> Any:
        found = self.rows(RUNS, "WHERE id = ?", (run_id,))
        return found[0] if found else None

    def source_states(self) -> dict[str, Any]:
        return {st.source: st for st in self.rows(SOURCE_STATE)}

    def close(self) -> None:
        self.con.close()


def read_view(store: Store) -> Store | StoreReader:
    """An open store for the read model (syncdash.store.queries, health): on an SQLite file a StoreReader of its
    own connection (no ORM to load: what a CLI run reads after running; close it after use), else the Store."""
    if store.file is None:
        return store
    return StoreReader(store.url, store.file, connect_sqlite(store.file))


def open_reader(url: str | None) -> Store | StoreReader:
    """The store at `url` for reading: a StoreReader when it is an SQLite file at HEAD, else the full Store
    (which creates the store, or upgrades it, exactly as any other command would)."""
    url = normalize_url(url or default_database_url())
    path = sqlite_path(url) if url.startswith("sqlite:") else None
    if path is not None and path.is_file():
        con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            version = con.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
        except sqlite3.Error:  # no version table (empty, or too old): the Store decides what to do
            version = None
        if version is not None and str(version[0]) == HEAD:
            private_sidecars(str(path.resolve()))
            return StoreReader(url, path, con)
        con.close()
    from syncdash.store.db import Store

    return Store(url)
