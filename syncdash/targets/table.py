"""The target table: DDL, key lookups, writes and the run's seen-key set.

Everything here runs on the raw DBAPI connection inside the engine's batch transaction, because
SQLAlchemy's per-statement overhead is a measurable share of a 1M-row load. Identifiers are
validated by the config and still always quoted; values are always bound parameters.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from itertools import chain, compress, count
from operator import ne
from typing import Any

from syncdash.common.dialect import SQLITE
from syncdash.errors import TargetError
from syncdash.targets.search import ensure_index, index_inserted

BOOKKEEPING = ("_synced_at", "_run_id", "_hash", "_deleted_at")
SQLITE_TYPES = {"str": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "INTEGER",
                "date": "TEXT", "datetime": "TEXT", "json": "TEXT"}


def keys_json(keys: Iterable[Any]) -> str:
    """A batch's keys as one JSON array, bound to json_each(?) so a batch costs one statement."""
    return json.dumps(list(keys), default=str)


def scope_sql(scope: dict[str, Any] | None, alias: str = "t.") -> tuple[str, tuple[Any, ...]]:
    """` AND t."col" = ?...` for a tenant's share of a table (empty without a scope), and its parameters."""
    if not scope:
        return "", ()
    return "".join(f" AND {alias}{q(c)} = ?" for c in scope), tuple(scope.values())


def q(ident: str) -> str:
    """Quote an identifier; the config already restricts them, this makes SQL injection impossible."""
    return '"' + ident.replace('"', '""') + '"'


class TargetTable:
    def __init__(self, conn: sqlite3.Connection, table: str, columns: list[str], types: list[str],
                 primary_key: list[str], search: list[str] | None = None) -> None:
        self.conn = conn
        self.search = list(search or [])  # columns of the full-text index (targets/search.py)
        self.table = table
        self.columns = columns
        self.types = types
        self.pk = primary_key
        self.key_index = [columns.index(k) for k in primary_key]
        self.qt = q(table)
        self._available: set[str] | None = None
        cols = ", ".join(q(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        # _synced_at and _run_id are inlined per batch (our own timestamp and int, never user data):
        # appending them to every row tuple costs ~0.8 us/row on a 1M-row load
        self._insert_head = f"INSERT INTO {self.qt} ({cols}, _hash, _synced_at, _run_id) VALUES ({marks}, ?, "
        non_key = [c for c in columns if c not in primary_key]
        sets = ", ".join(f"{q(c)}=?" for c in non_key)
        where = " AND ".join(f"{q(k)}=?" for k in primary_key)
        self._non_key_index = [columns.index(c) for c in non_key]
        self._update_sql = (f"UPDATE {self.qt} SET {sets}{', ' if sets else ''}_hash=?, _synced_at=?, "
                            f"_run_id=?, _deleted_at=NULL WHERE {where}")
        self._where_key = where
        self.single_key = len(primary_key) == 1
        # rows of the batch's keys (one bound JSON array): driven by the key list, found by the primary key.
        # A correlated EXISTS over json_each for composite keys scanned the whole table once per batch.
        if self.single_key:
            self._by_keys = f"FROM {self.qt} t WHERE t.{q(primary_key[0])} IN (SELECT value FROM json_each(?))"
        else:
            conds = " AND ".join(f"t.{q(k)} = j.value->>{i}" for i, k in enumerate(primary_key))
            self._by_keys = f"FROM json_each(?) j CROSS JOIN {self.qt} t ON {conds}"

    # ---- schema -------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the table, or add columns the config gained; refuse a different primary key."""
        self._available = None
        existing = self.conn.execute(f"PRAGMA table_info({self.qt})").fetchall()
        if not existing:
            defs = [f"{q(c)} {SQLITE_TYPES[t]}" for c, t in zip(self.columns, self.types, strict=True)]
            defs += ["_synced_at TEXT", "_run_id INTEGER", "_hash INTEGER", "_deleted_at TEXT"]
            pk = ", ".join(q(k) for k in self.pk)
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {self.qt} ({', '.join(defs)}, PRIMARY KEY ({pk}))")
            ensure_index(self.conn, SQLITE, self.table, self.search)
            return
        have = {row[1]: row for row in existing}
        have_pk = [row[1] for row in sorted((r for r in existing if r[5]), key=lambda r: r[5])]
        if have_pk != self.pk:
            raise TargetError(
                f"table {self.table!r} exists with primary key ({', '.join(have_pk) or 'none'}) but the "
                f"config says ({', '.join(self.pk)}); drop or rename the table, or fix primary_key")
        for c, t in zip(self.columns, self.types, strict=True):
            if c not in have:
                self.conn.execute(f"ALTER TABLE {self.qt} ADD COLUMN {q(c)} {SQLITE_TYPES[t]}")
        for c, decl in (("_synced_at", "TEXT"), ("_run_id", "INTEGER"), ("_hash", "INTEGER"),
                        ("_deleted_at", "TEXT")):
            if c not in have:
                self.conn.execute(f"ALTER TABLE {self.qt} ADD COLUMN {c} {decl}")
        ensure_index(self.conn, SQLITE, self.table, self.search)
        self._available = None

    def seen_keys(self, name: str, persistent: bool = False, keep: bool = False) -> SeenKeys:
        """A seen-key set whose columns carry the key columns' types: with untyped columns SQLite applies
        numeric affinity to the comparison and cannot use the index, turning the delete scan quadratic."""
        types = [SQLITE_TYPES[self.types[i]] for i in self.key_index]
        return SeenKeys(self.conn, self.pk, name, types, persistent=persistent, keep=keep)

    def is_empty(self) -> bool:
        return self.conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {self.qt})").fetchone()[0] == 1

    def live_count(self, scope: dict[str, Any] | None = None) -> int:
        where, params = scope_sql(scope, "")
        return int(self.conn.execute(f"SELECT count(*) FROM {self.qt} WHERE _deleted_at IS NULL{where}",
                                     params).fetchone()[0])

    # ---- reads --------------------------------------------------------------------------------

    def key_hash_json(self, keys: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> str:
        """One batch's [key..., hash] rows as JSON, encoded once and bound to both differing() and
        SeenKeys.add (encoding the keys twice cost ~0.4 s of a million-row re-sync)."""
        if self.single_key:
            return self.encode_key_hash([(k, r[-1]) for k, r in zip(keys, rows, strict=True)])
        return json.dumps([(*k, r[-1]) for k, r in zip(keys, rows, strict=True)], default=str)

    def encode_key_hash(self, pairs: Sequence[tuple[Any, ...]]) -> str:
        """(key..., hash) tuples as key_hash_json encodes them. A one-column key goes flat, [k0, h0, k1, h1,
        ...]: json_each then yields scalars, where `value->>0` on nested pairs re-parsed each pair (~0.3 us
        a value, over half of an unchanged re-run's SQL). No database access: the read-ahead child calls it."""
        if self.single_key:
            return json.dumps(list(chain.from_iterable(pairs)), default=str)
        return json.dumps(pairs, default=str)

    def lookup(self, keys: Sequence[Any]) -> dict[Any, tuple[int | None, str | None]]:
        """key -> (stored hash, _deleted_at) for the keys that exist."""
        pk = ", ".join(f"t.{q(k)}" for k in self.pk)
        sql = f"SELECT {pk}, t._hash, t._deleted_at {self._by_keys}"
        n = len(self.pk)
        rows = self.conn.execute(sql, (keys_json(keys),))
        if n == 1:
            return {r[0]: (r[1], r[2]) for r in rows}
        return {tuple(r[:n]): (r[n], r[n + 1]) for r in rows}

    def differing(self, payload: str) -> list[tuple[int, int]]:
        """(position, exists) of the keys whose row is missing, soft-deleted or has another hash.

        The comparison runs in SQLite over one JSON array of [key..., hash] (key_hash_json): building a
        Python dict of every stored hash cost ~1.7 us a row on an unchanged million-row re-run.
        """
        n = len(self.pk)
        first = q(self.pk[0])
        if self.single_key:
            # flat [k0, h0, ...]: the stored hash of each key in order (NULL: no row; -1: soft-deleted or
            # unhashed, never a hash: those are >= 0), compared here in one pass
            sql = (f"SELECT json_group_array(CASE WHEN t.{first} IS NULL THEN NULL WHEN t._deleted_at IS NOT NULL "
                   f"OR t._hash IS NULL THEN -1 ELSE t._hash END) FROM json_each(?) j LEFT JOIN {self.qt} t "
                   f"ON t.{first} = j.value WHERE j.key % 2 = 0")
            stored = json.loads(self.conn.execute(sql, (payload,)).fetchone()[0])
            new = json.loads(payload)[1::2]
            if len(stored) != len(new):
                raise TargetError(f"table {self.table!r}: the hash comparison lost rows")
            if stored == new:  # the usual batch of a re-run: one C-level comparison
                return []
            return [(i, int(stored[i] is not None)) for i in compress(count(), map(ne, stored, new))]
        on = " AND ".join(f"t.{q(k)} = j.value->>{i}" for i, k in enumerate(self.pk))
        sql = (f"SELECT j.key, t.{first} IS NOT NULL FROM json_each(?) j LEFT JOIN {self.qt} t ON {on} "
               f"WHERE t._hash IS NOT j.value->>{n} OR t._deleted_at IS NOT NULL")
        return self.conn.execute(sql, (payload,)).fetchall()

    def fetch(self, keys: Sequence[Any]) -> dict[Any, tuple[Any, ...]]:
        """key -> full row (config columns, then _deleted_at) for diffing changed rows."""
        sql = f"SELECT {self._select_cols()}, t._deleted_at {self._by_keys}"
        out = {}
        for r in self.conn.execute(sql, (keys_json(keys),)):
            out[self.key_of(r)] = r
        return out

    def key_of(self, row: Sequence[Any]) -> Any:
        """Keys are scalars for one-column keys and tuples otherwise, everywhere in the engine."""
        if self.single_key:
            return row[self.key_index[0]]
        return tuple(row[i] for i in self.key_index)

    def _select_cols(self) -> str:
        """Columns the table lacks (a dry run before the config's new column exists) read as NULL."""
        have = self.available_columns()
        return ", ".join(f"t.{q(c)}" if c in have else "NULL" for c in self.columns)

    def available_columns(self) -> set[str]:
        if self._available is None:
            self._available = {r[1] for r in self.conn.execute(f"PRAGMA table_info({self.qt})")}
        return self._available

    def exists(self) -> bool:
        return bool(self.available_columns())

    # ---- writes -------------------------------------------------------------------------------

    def insert(self, rows: Sequence[Any], synced_at: str, run_id: int) -> None:
        sql = f"{self._insert_head}'{_ts_literal(synced_at)}', {int(run_id)})"
        self.conn.executemany(sql, rows)
        if self.search and rows:
            ki = self.key_index[0]
            index_inserted(self.conn, self.table, self.search, self._by_keys,
                           [r[ki] for r in rows] if self.single_key else [self.key_of(r) for r in rows],
                           self.pk[0] if self.single_key else None)

    def update(self, rows: Sequence[Any], synced_at: str, run_id: int) -> None:
        nk, ki = self._non_key_index, self.key_index
        self.conn.executemany(
            self._update_sql,
            [(*tuple(r[i] for i in nk), r[-1], synced_at, run_id, *tuple(r[i] for i in ki)) for r in rows])

    ABSENT = "temp.syncdash_absent"

    def collect_absent(self, seen: SeenKeys, scope: dict[str, Any] | None = None) -> int:
        """One scan: the keys of live rows the run did not see go to a temp table, which the change
        records and the delete then read (three scans of a million-row table took ~2.5 s)."""
        pk = ", ".join(f"t.{q(k)}" for k in self.pk)
        where, params = scope_sql(scope)
        self.conn.execute(f"DROP TABLE IF EXISTS {self.ABSENT}")
        self.conn.execute(f"CREATE TABLE {self.ABSENT} AS SELECT {pk} FROM {self.qt} t "
                          f"WHERE t._deleted_at IS NULL AND NOT {seen.contains_sql('t')}{where}", params)
        return int(self.conn.execute(f"SELECT count(*) FROM {self.ABSENT}").fetchone()[0])

    def _in_absent(self, alias: str) -> str:
        cols = ", ".join(f"{alias}.{q(k)}" for k in self.pk)
        sub = ", ".join(q(k) for k in self.pk)
        return f"({cols}) IN (SELECT {sub} FROM {self.ABSENT})"

    def absent_rows(self, limit: int | None = None) -> list[tuple[Any, ...]]:
        sql = f"SELECT {self._select_cols()} FROM {self.qt} t WHERE {self._in_absent('t')}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.conn.execute(sql).fetchall()

    def delete_absent(self, how: str, now: str, run_id: int) -> int:
        cond = self._in_absent(self.qt)
        if how == "hard":
            cur = self.conn.execute(f"DELETE FROM {self.qt} WHERE {cond}")
        else:
            cur = self.conn.execute(
                f"UPDATE {self.qt} SET _deleted_at=?, _run_id=?, _synced_at=? WHERE {cond}", (now, run_id, now))
        self.conn.execute(f"DROP TABLE IF EXISTS {self.ABSENT}")
        return cur.rowcount


FAILED = -1  # SeenKeys batch number of keys whose row failed


class SeenKeys:
    """The keys a full run has read so far, in a TEMP table (off the WAL, bounded memory).

    persistent: in the main database instead (syncdash_seen_<name>), written in each batch's transaction,
    for sources that cannot cheaply re-read their prefix on resume; keep: reuse it (a resume).
    """

    def __init__(self, conn: sqlite3.Connection, primary_key: list[str], name: str,
                 types: list[str] | None = None, persistent: bool = False, keep: bool = False) -> None:
        self.conn = conn
        self.n = len(primary_key)
        self.name = f"main.{q('syncdash_' + name)}" if persistent else f"temp.{q(name)}"
        self.key_cols = [f"k{i}" for i in range(self.n)]
        if not keep:
            conn.execute(f"DROP TABLE IF EXISTS {self.name}")
        decls = ", ".join(f"{c} {t}" for c, t in zip(self.key_cols, types or [""] * self.n, strict=True))
        cols = ", ".join(self.key_cols)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.name} ({decls}, b INTEGER, PRIMARY KEY ({cols})) "
                     "WITHOUT ROWID")
        self.pk = primary_key

    def contains_sql(self, alias: str) -> str:
        conds = " AND ".join(f"s.k{i} = {alias}.{q(k)}" for i, k in enumerate(self.pk))
        return f"EXISTS (SELECT 1 FROM {self.name} s WHERE {conds})"

    def _select(self) -> str:
        if self.n == 1:
            return "value"
        return ", ".join(f"value->>{i}" for i in range(self.n))

    def add(self, keys: Sequence[Any], batch_no: int, key_hash: str | None = None) -> int:
        """Add keys; returns how many were new (or upgraded from FAILED).

        Keys of rows that failed are added with batch_no FAILED: they protect the stored row from the delete
        scan but never make a later valid row with that key a duplicate, whatever the batch boundaries.
        """
        before = self.conn.total_changes
        # key_hash: the same keys as key_hash_json rows, already encoded; the key is the row's first items
        # (one-column keys: every other item of a flat array)
        where = "true"
        if key_hash is not None and self.n == 1:
            select, where = "value", "key % 2 = 0"
        elif key_hash is not None:
            select = ", ".join(f"value->>{i}" for i in range(self.n))
        else:
            select = self._select()
        if batch_no == FAILED:
            sql = f"INSERT OR IGNORE INTO {self.name} SELECT {select}, ? FROM json_each(?) WHERE {where}"
        else:
            sql = (f"INSERT INTO {self.name} SELECT {select}, ? FROM json_each(?) WHERE {where} "
                   f"ON CONFLICT DO UPDATE SET b = excluded.b WHERE b = {FAILED}")
        self.conn.execute(sql, (batch_no, key_hash if key_hash is not None else keys_json(keys)))
        return self.conn.total_changes - before

    def mark_failed(self, keys: Sequence[Any]) -> None:
        """Keys added as valid whose rows then failed to type: they keep protecting the stored row from
        deletion but must not make a later valid row with that key a duplicate."""
        cols = self.key_cols[0] if self.n == 1 else f"({', '.join(self.key_cols)})"
        self.conn.execute(f"UPDATE {self.name} SET b = {FAILED} WHERE {cols} IN (SELECT {self._select()} "
                          "FROM json_each(?))", (keys_json(keys),))

    def seen_before(self, keys: Sequence[Any], batch_no: int) -> set[tuple[Any, ...]]:
        """Keys of this batch that an earlier batch already had (duplicates across batches)."""
        if self.n == 1:
            sql = (f"SELECT k0 FROM {self.name} WHERE b >= 0 AND b < ? "
                   "AND k0 IN (SELECT value FROM json_each(?))")
            params: tuple[Any, ...] = (batch_no, keys_json(keys))
        else:  # driven by the batch's keys: a correlated EXISTS here scanned the whole set once per batch
            conds = " AND ".join(f"s.k{i} = j.value->>{i}" for i in range(self.n))
            cols = ", ".join(f"s.{c}" for c in self.key_cols)
            sql = (f"SELECT {cols} FROM json_each(?) j CROSS JOIN {self.name} s ON {conds} "
                   "WHERE s.b >= 0 AND s.b < ?")
            params = (keys_json(keys), batch_no)
        rows = self.conn.execute(sql, params)
        return {r[0] for r in rows} if self.n == 1 else {tuple(r) for r in rows}

    def drop(self) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {self.name}")


_TS = re.compile(r"^[0-9: .-]+$")


def _ts_literal(ts: str) -> str:
    if not _TS.match(ts):
        raise ValueError(f"not a timestamp: {ts!r}")
    return ts
