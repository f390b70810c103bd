"""Target tables on a database server (PostgreSQL, MySQL/MariaDB): the same contract as target.py's SQLite
tables, in each dialect's own SQL.

A batch's keys and hashes travel as one JSON array, as on SQLite: PostgreSQL unpacks it with
jsonb_array_elements, MySQL/MariaDB with JSON_TABLE, so a batch costs one statement per question
(which rows differ, which keys were seen) however large it is. Upserts are each dialect's own: ON CONFLICT
on PostgreSQL, ON DUPLICATE KEY on MySQL.

Column types: str TEXT, int BIGINT, float DOUBLE, bool BOOLEAN, date DATE, json JSONB/JSON; datetimes stay
ISO 8601 text (a TIMESTAMP column would drop the offset a source gave). MySQL tables use the utf8mb4_bin
collation: keys compare exactly ('A' and 'a' are two rows), as they do on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from syncdash.common.dialect import MYSQL, POSTGRES, Conn
from syncdash.errors import TargetError
from syncdash.targets.search import ensure_index
from syncdash.targets.table import FAILED, keys_json, q, scope_sql

_PG_TYPES = {"str": "TEXT", "int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN", "date": "DATE",
             "datetime": "TEXT", "json": "JSONB"}
_MY_TYPES = {"str": "LONGTEXT", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "date": "DATE",
             "datetime": "VARCHAR(64)", "json": "JSON"}
# key columns on MySQL need a bounded length to be indexed
_MY_KEY_TYPES = {**_MY_TYPES, "str": "VARCHAR(255)", "json": "VARCHAR(255)"}
# how a JSON value becomes a key column's type inside the unpacking SQL
_PG_CASTS = {"str": "text", "int": "bigint", "float": "double precision", "bool": "boolean", "date": "date",
             "datetime": "text", "json": "jsonb"}
_MY_JT = {"str": "VARCHAR(255)", "int": "BIGINT", "float": "DOUBLE", "bool": "INT", "date": "DATE",
          "datetime": "VARCHAR(64)", "json": "VARCHAR(255)"}
_MY_TABLE_OPTS = " DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


def column_type(dialect: str, ftype: str, key: bool = False) -> str:
    if dialect == POSTGRES:
        return _PG_TYPES[ftype]
    return (_MY_KEY_TYPES if key else _MY_TYPES)[ftype]


def _stamp(dialect: str) -> str:
    return "TIMESTAMP" if dialect == POSTGRES else "DATETIME(6)"


class _Unpack:
    """SQL that turns one bound JSON array into rows: (pos, key columns..., hash)."""

    def __init__(self, dialect: str, key_types: list[str]) -> None:
        self.dialect = dialect
        self.key_types = key_types
        self.n = len(key_types)

    def source(self, with_hash: bool) -> tuple[str, list[str], str | None, str]:
        """(FROM clause with one ? for the JSON, key expressions, hash expression, position expression).

        with_hash: items are [key..., hash]; otherwise a one-column key's items are bare values and a
        composite key's items are [key...] (keys_json's shape).
        """
        bare = not with_hash and self.n == 1
        if self.dialect == POSTGRES:
            src = "jsonb_array_elements(CAST(? AS jsonb)) WITH ORDINALITY AS j(v, ord)"
            if bare:
                keys = [f"CAST(j.v #>> '{{}}' AS {_PG_CASTS[self.key_types[0]]})"]
            else:
                keys = [f"CAST(j.v ->> {i} AS {_PG_CASTS[t]})" for i, t in enumerate(self.key_types)]
            h = f"CAST(j.v ->> {self.n} AS bigint)" if with_hash else None
            return src, keys, h, "(j.ord - 1)"
        cols = ["ord FOR ORDINALITY"]
        if bare:
            cols.append(f"k0 {_MY_JT[self.key_types[0]]} PATH '$'")
        else:
            cols += [f"k{i} {_MY_JT[t]} PATH '$[{i}]'" for i, t in enumerate(self.key_types)]
        if with_hash:
            cols.append(f"h BIGINT PATH '$[{self.n}]'")
        src = f"JSON_TABLE(?, '$[*]' COLUMNS ({', '.join(cols)})) AS j"
        keys = [f"j.k{i}" if _MY_JT[t] != "VARCHAR(255)" else f"j.k{i} COLLATE utf8mb4_bin"
                for i, t in enumerate(self.key_types)]
        return src, keys, ("j.h" if with_hash else None), "(j.ord - 1)"


class ServerTargetTable:
    """One target table on PostgreSQL or MySQL/MariaDB (see target.TargetTable for the contract)."""

    def __init__(self, conn: Conn, table: str, columns: list[str], types: list[str],
                 primary_key: list[str], search: list[str] | None = None) -> None:
        self.db = conn
        self.search = list(search or [])  # columns of the full-text index (targets/search.py)
        self.dialect = conn.dialect
        self.table = table
        self.columns = columns
        self.types = types
        self.pk = primary_key
        self.key_index = [columns.index(k) for k in primary_key]
        self.single_key = len(primary_key) == 1
        self.qt = q(table)
        self._available: set[str] | None = None
        self.unpack = _Unpack(self.dialect, [types[i] for i in self.key_index])
        cols = ", ".join(q(c) for c in columns)
        marks = ", ".join(self._mark(t) for t in types)
        self._insert_head = f"INSERT INTO {self.qt} ({cols}, _hash, _synced_at, _run_id) VALUES ({marks}, ?, ?, ?)"
        non_key = [c for c in columns if c not in primary_key]
        self._non_key_index = [columns.index(c) for c in non_key]
        sets = ", ".join(f"{q(c)}={self._mark(types[columns.index(c)])}" for c in non_key)
        where = " AND ".join(f"{q(k)}=?" for k in primary_key)
        self._update_sql = (f"UPDATE {self.qt} SET {sets}{', ' if sets else ''}_hash=?, _synced_at=?, "
                            f"_run_id=?, _deleted_at=NULL WHERE {where}")
        self._json_cols = [i for i, t in enumerate(types) if t == "json"]
        self._date_cols = [i for i, t in enumerate(types) if t == "date"]
        # MySQL/MariaDB key columns of text are VARCHAR(255) (an index needs a bounded length): a longer key
        # would fail the whole batch, so the engine makes it an item error (key_too_long)
        self.key_limits = {pos: 255 for pos, i in enumerate(self.key_index)
                           if self.dialect == MYSQL and types[i] in ("str", "json")}

    def key_too_long(self, key: Any) -> str | None:
        """Why this key does not fit its key column, or None (always None on PostgreSQL)."""
        if not self.key_limits:
            return None
        parts = (key,) if self.single_key else key
        for pos, limit in self.key_limits.items():
            v = parts[pos]
            if isinstance(v, str) and len(v) > limit:
                return (f"key {self.pk[pos]} is {len(v)} characters; the key column of {self.table} on "
                        f"MySQL/MariaDB holds at most {limit}")
        return None

    def _mark(self, ftype: str) -> str:
        # converters give booleans as 0/1; PostgreSQL will not assign an integer to a boolean column unasked
        return "CAST(CAST(? AS integer) AS boolean)" if ftype == "bool" and self.dialect == POSTGRES else "?"

    # ---- schema -------------------------------------------------------------------------------

    def _describe(self) -> tuple[list[str], list[str]]:
        """(columns, primary key columns in order) of the table as it is now; ([], []) when it is missing."""
        schema = "current_schema()" if self.dialect == POSTGRES else "DATABASE()"
        cols = [r[0] for r in self.db.all(
            f"SELECT column_name FROM information_schema.columns WHERE table_schema = {schema} "
            "AND table_name = ? ORDER BY ordinal_position", (self.table,))]
        if not cols:
            return [], []
        pk = [r[0] for r in self.db.all(
            "SELECT k.column_name FROM information_schema.table_constraints c "
            "JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name "
            "AND k.table_schema = c.table_schema AND k.table_name = c.table_name "
            f"WHERE c.constraint_type = 'PRIMARY KEY' AND c.table_schema = {schema} AND c.table_name = ? "
            "ORDER BY k.ordinal_position", (self.table,))]
        return cols, pk

    def ensure(self) -> None:
        self._available = None
        have, have_pk = self._describe()
        stamp = _stamp(self.dialect)
        if not have:
            defs = [f"{q(c)} {column_type(self.dialect, t, c in self.pk)}"
                    for c, t in zip(self.columns, self.types, strict=True)]
            defs += [f"_synced_at {stamp}", "_run_id BIGINT", "_hash BIGINT", f"_deleted_at {stamp}"]
            pk = ", ".join(q(k) for k in self.pk)
            opts = _MY_TABLE_OPTS if self.dialect == MYSQL else ""
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {self.qt} ({', '.join(defs)}, PRIMARY KEY ({pk})){opts}")
            ensure_index(self.db, self.dialect, self.table, self.search, self.pk)
            return
        if have_pk != self.pk:
            raise TargetError(
                f"table {self.table!r} exists with primary key ({', '.join(have_pk) or 'none'}) but the "
                f"config says ({', '.join(self.pk)}); drop or rename the table, or fix primary_key")
        for c, t in zip(self.columns, self.types, strict=True):
            if c not in have:
                self.db.execute(f"ALTER TABLE {self.qt} ADD COLUMN {q(c)} {column_type(self.dialect, t)}")
        for c, decl in (("_synced_at", stamp), ("_run_id", "BIGINT"), ("_hash", "BIGINT"), ("_deleted_at", stamp)):
            if c not in have:
                self.db.execute(f"ALTER TABLE {self.qt} ADD COLUMN {c} {decl}")
        ensure_index(self.db, self.dialect, self.table, self.search, self.pk)

    def seen_keys(self, name: str, persistent: bool = False, keep: bool = False) -> ServerSeenKeys:
        types = [self.types[i] for i in self.key_index]
        return ServerSeenKeys(self.db, self.pk, name, types, persistent=persistent, keep=keep)

    def is_empty(self) -> bool:
        return self.db.one(f"SELECT 1 FROM {self.qt} LIMIT 1") is None

    def live_count(self, scope: dict[str, Any] | None = None) -> int:
        where, params = scope_sql(scope, "")
        return int(self.db.scalar(f"SELECT count(*) FROM {self.qt} WHERE _deleted_at IS NULL{where}", params) or 0)

    # ---- reads --------------------------------------------------------------------------------

    def key_hash_json(self, keys: Sequence[Any], rows: Sequence[tuple[Any, ...]]) -> str:
        if self.single_key:
            return json.dumps([(k, r[-1]) for k, r in zip(keys, rows, strict=True)], default=str)
        return json.dumps([(*k, r[-1]) for k, r in zip(keys, rows, strict=True)], default=str)

    def _join_on(self, keys: list[str]) -> str:
        return " AND ".join(f"t.{q(k)} = {e}" for k, e in zip(self.pk, keys, strict=True))

    def lookup(self, keys: Sequence[Any]) -> dict[Any, tuple[int | None, Any]]:
        src, kx, _, _ = self.unpack.source(with_hash=False)
        pk = ", ".join(f"t.{q(k)}" for k in self.pk)
        rows = self.db.all(f"SELECT {pk}, t._hash, t._deleted_at FROM {src} JOIN {self.qt} t ON "
                           f"{self._join_on(kx)}", (keys_json(keys),))
        n = len(self.pk)
        if n == 1:
            return {self._norm_key(r[0]): (r[1], r[2]) for r in rows}
        return {tuple(self._norm_key(v) for v in r[:n]): (r[n], r[n + 1]) for r in rows}

    def differing(self, payload: str) -> list[tuple[int, int]]:
        src, kx, h, pos = self.unpack.source(with_hash=True)
        first = q(self.pk[0])
        rows = self.db.all(
            f"SELECT {pos}, CASE WHEN t.{first} IS NULL THEN 0 ELSE 1 END FROM {src} LEFT JOIN {self.qt} t ON "
            f"{self._join_on(kx)} WHERE t._hash IS NULL OR t._hash <> {h} OR t._deleted_at IS NOT NULL "
            f"ORDER BY 1", (payload,))
        return [(int(p), int(e)) for p, e in rows]

    def fetch(self, keys: Sequence[Any]) -> dict[Any, tuple[Any, ...]]:
        src, kx, _, _ = self.unpack.source(with_hash=False)
        out = {}
        for r in self.db.all(f"SELECT {self._select_cols()}, t._deleted_at FROM {src} JOIN {self.qt} t ON "
                             f"{self._join_on(kx)}", (keys_json(keys),)):
            row = self._normalize(r)
            out[self.key_of(row)] = row
        return out

    def key_of(self, row: Sequence[Any]) -> Any:
        if self.single_key:
            return row[self.key_index[0]]
        return tuple(row[i] for i in self.key_index)

    @staticmethod
    def _norm_key(v: Any) -> Any:
        return v.isoformat() if isinstance(v, date) else v

    def _normalize(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """Values as the row mapper makes them, so a diff compares like with like: dates as ISO text,
        JSON as its canonical text, booleans as 0/1, DECIMAL as float."""
        out = list(row)
        for i in self._date_cols:
            if isinstance(out[i], date):
                out[i] = out[i].isoformat()
        for i in self._json_cols:
            v = out[i]
            if v is not None and not isinstance(v, str):
                out[i] = json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        for i, v in enumerate(out[:len(self.columns)]):
            if isinstance(v, bool):
                out[i] = int(v)
            elif isinstance(v, Decimal):
                out[i] = float(v)
        if isinstance(out[-1], datetime):
            out[-1] = out[-1].isoformat(" ")
        return tuple(out)

    def _select_cols(self) -> str:
        have = self.available_columns()
        return ", ".join(f"t.{q(c)}" if c in have else "NULL" for c in self.columns)

    def available_columns(self) -> set[str]:
        if self._available is None:
            self._available = set(self._describe()[0])
        return self._available

    def exists(self) -> bool:
        return bool(self.available_columns())

    def rows(self, columns: list[str], order: list[str]) -> list[tuple[Any, ...]]:
        cols = ", ".join(q(c) for c in columns)
        return [self._normalize((*r, None))[:-1] if len(columns) == len(self.columns) else r
                for r in self.db.all(f"SELECT {cols} FROM {self.qt} WHERE _deleted_at IS NULL ORDER BY "
                                     + ", ".join(q(c) for c in order))]

    # ---- writes -------------------------------------------------------------------------------

    def insert(self, rows: Sequence[Any], synced_at: str, run_id: int) -> None:
        self.db.executemany(self._insert_head, [(*r, synced_at, run_id) for r in rows])

    def update(self, rows: Sequence[Any], synced_at: str, run_id: int) -> None:
        nk, ki = self._non_key_index, self.key_index
        self.db.executemany(
            self._update_sql,
            [(*tuple(r[i] for i in nk), r[-1], synced_at, run_id, *tuple(r[i] for i in ki)) for r in rows])

    @property
    def _absent(self) -> str:
        return "syncdash_absent"

    def _drop_temp(self, name: str) -> None:
        self.db.execute(f"DROP TEMPORARY TABLE IF EXISTS {name}" if self.dialect == MYSQL
                        else f"DROP TABLE IF EXISTS pg_temp.{name}")

    def collect_absent(self, seen: ServerSeenKeys, scope: dict[str, Any] | None = None) -> int:
        pk = ", ".join(f"t.{q(k)}" for k in self.pk)
        where, params = scope_sql(scope)
        self._drop_temp(self._absent)
        temp = "TEMPORARY" if self.dialect == MYSQL else "TEMP"
        # created empty, then filled: PostgreSQL takes no parameters in CREATE TABLE AS
        self.db.execute(f"CREATE {temp} TABLE {self._absent} AS SELECT {pk} FROM {self.qt} t WHERE 1 = 0")
        self.db.execute(f"INSERT INTO {self._absent} SELECT {pk} FROM {self.qt} t "
                        f"WHERE t._deleted_at IS NULL AND NOT {seen.contains_sql('t')}{where}", params)
        return int(self.db.scalar(f"SELECT count(*) FROM {self._absent}") or 0)

    def _on_absent(self) -> str:
        return " AND ".join(f"t.{q(k)} = a.{q(k)}" for k in self.pk)

    def absent_rows(self, limit: int | None = None) -> list[tuple[Any, ...]]:
        sql = f"SELECT {self._select_cols()} FROM {self._absent} a JOIN {self.qt} t ON {self._on_absent()}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._normalize((*r, None))[:-1] for r in self.db.all(sql)]

    def delete_absent(self, how: str, now: str, run_id: int) -> int:
        """Joins, not `IN (subquery)`: MariaDB runs an IN subquery of an UPDATE once per row of the table."""
        on, a, t = self._on_absent(), self._absent, self.qt
        if self.dialect == MYSQL:
            if how == "hard":
                n = self.db.rowcount(f"DELETE t FROM {t} t JOIN {a} a ON {on}")
            else:
                n = self.db.rowcount(f"UPDATE {t} t JOIN {a} a ON {on} SET t._deleted_at=?, t._run_id=?, "
                                     "t._synced_at=?", (now, run_id, now))
        elif how == "hard":
            n = self.db.rowcount(f"DELETE FROM {t} t USING {a} a WHERE {on}")
        else:
            n = self.db.rowcount(f"UPDATE {t} t SET _deleted_at=?, _run_id=?, _synced_at=? FROM {a} a WHERE {on}",
                                 (now, run_id, now))
        self._drop_temp(a)
        return n


class ServerSeenKeys:
    """The keys a full run has read so far (see target.SeenKeys): a temporary table, or with persistent a
    table committed with each batch, for sources that cannot cheaply re-read their prefix on resume."""

    def __init__(self, conn: Conn, primary_key: list[str], name: str, types: list[str],
                 persistent: bool = False, keep: bool = False) -> None:
        self.db = conn
        self.dialect = conn.dialect
        self.pk = primary_key
        self.n = len(primary_key)
        self.persistent = persistent
        self.table = q(f"syncdash_{name}") if persistent else q(f"syncdash_tmp_{name}")
        self.key_cols = [f"k{i}" for i in range(self.n)]
        self.unpack = _Unpack(self.dialect, types)
        if not keep:
            self.drop()
        decls = ", ".join(f"{c} {column_type(self.dialect, t, key=True)}"
                          for c, t in zip(self.key_cols, types, strict=True))
        temp = "" if persistent else ("TEMPORARY " if self.dialect == MYSQL else "TEMP ")
        opts = _MY_TABLE_OPTS if self.dialect == MYSQL else ""
        self.db.execute(f"CREATE {temp}TABLE IF NOT EXISTS {self.table} ({decls}, b INTEGER NOT NULL, "
                        f"PRIMARY KEY ({', '.join(self.key_cols)})){opts}")

    @property
    def name(self) -> str:
        return self.table

    def contains_sql(self, alias: str) -> str:
        conds = " AND ".join(f"s.k{i} = {alias}.{q(k)}" for i, k in enumerate(self.pk))
        return f"EXISTS (SELECT 1 FROM {self.table} s WHERE {conds})"

    def _on(self, kx: list[str]) -> str:
        return " AND ".join(f"s.k{i} = {e}" for i, e in enumerate(kx))

    def add(self, keys: Sequence[Any], batch_no: int, key_hash: str | None = None) -> int:
        """Add keys; returns how many were new (or upgraded from FAILED). See target.SeenKeys.add."""
        with_hash = key_hash is not None
        payload = key_hash if with_hash else keys_json(keys)
        src, kx, _, _ = self.unpack.source(with_hash=with_hash)
        # keys already present as valid rows are the ones the upsert leaves as they are
        fresh = int(self.db.scalar(
            f"SELECT count(*) FROM {src} LEFT JOIN {self.table} s ON {self._on(kx)} "
            "WHERE s.k0 IS NULL OR s.b = ?", (payload, FAILED)) or 0)
        cols = ", ".join(self.key_cols)
        select = f"SELECT {', '.join(kx)}, ? FROM {src}"
        if self.dialect == POSTGRES:
            tail = ("ON CONFLICT DO NOTHING" if batch_no == FAILED else
                    f"ON CONFLICT ({cols}) DO UPDATE SET b = EXCLUDED.b WHERE {self.table}.b = {FAILED}")
            self.db.execute(f"INSERT INTO {self.table} ({cols}, b) {select} {tail}", (batch_no, payload))
        elif batch_no == FAILED:
            self.db.execute(f"INSERT IGNORE INTO {self.table} ({cols}, b) {select}", (batch_no, payload))
        else:
            self.db.execute(f"INSERT INTO {self.table} ({cols}, b) {select} ON DUPLICATE KEY UPDATE "
                            f"b = IF(b = {FAILED}, VALUES(b), b)", (batch_no, payload))
        return fresh

    def mark_failed(self, keys: Sequence[Any]) -> None:
        src, kx, _, _ = self.unpack.source(with_hash=False)
        if self.dialect == MYSQL:
            self.db.execute(f"UPDATE {self.table} s JOIN {src} ON {self._on(kx)} SET s.b = {FAILED}",
                            (keys_json(keys),))
        else:
            self.db.execute(f"UPDATE {self.table} s SET b = {FAILED} FROM {src} WHERE {self._on(kx)}",
                            (keys_json(keys),))

    def seen_before(self, keys: Sequence[Any], batch_no: int) -> set[Any]:
        src, kx, _, _ = self.unpack.source(with_hash=False)
        cols = ", ".join(f"s.{c}" for c in self.key_cols)
        rows = self.db.all(f"SELECT {cols} FROM {src} JOIN {self.table} s ON {self._on(kx)} "
                           "WHERE s.b >= 0 AND s.b < ?", (keys_json(keys), batch_no))
        norm = ServerTargetTable._norm_key
        return {norm(r[0]) for r in rows} if self.n == 1 else {tuple(norm(v) for v in r) for r in rows}

    def drop(self) -> None:
        if self.persistent:
            self.db.execute(f"DROP TABLE IF EXISTS {self.table}")
        elif self.dialect == MYSQL:
            self.db.execute(f"DROP TEMPORARY TABLE IF EXISTS {self.table}")
        else:
            self.db.execute(f"DROP TABLE IF EXISTS pg_temp.{self.table}")
