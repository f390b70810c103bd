"""Pages of a target table for the console's browser: keyset pagination, a sort column, and filters.

Why keyset and not OFFSET: page 500 of a 1,000,000-row table with OFFSET makes the database walk and throw
away 25,000 rows first; a page that starts after the last row shown (`WHERE (sort, key) > (...)`, expanded
so every database uses the index) costs the same on page 1 and page 40,000. The caller keeps the cursors of
the pages it has shown to go back. No Textual here: the console runs `page()` in a worker, and the tests
and bench/browse.py call it directly on SQLite, PostgreSQL and MariaDB.

NULL sorts before every value on all three databases (PostgreSQL is told so; SQLite and MariaDB do it by
default), so one cursor means the same row everywhere. Only live rows are listed (soft-deleted ones have
`_deleted_at` set); the bookkeeping columns (`_synced_at`, `_run_id`, `_hash`, `_deleted_at`) are hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from syncdash.common.dialect import MYSQL, POSTGRES, Conn
from syncdash.errors import UsageError
from syncdash.targets.table import q

HIDDEN = ("_synced_at", "_run_id", "_hash", "_deleted_at")
PAGE = 50
_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(>=|<=|!=|>|<|=|:)(.*)$")


@dataclass(frozen=True)
class Condition:
    """One filter term: `column:value` (contains, any case), `column>value` etc. (compared), or a word that
    any column may contain (column None)."""

    column: str | None
    op: str
    value: str


@dataclass
class Page:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    key_columns: list[str]
    sort: str
    descending: bool
    cursor: tuple[Any, ...] | None  # pass as `after` for the next page; None: this is the last page
    filters: list[Condition] = field(default_factory=list)
    # a full-text search page (search_page): rows best first, the query's words, and per row the character
    # spans of the matched words in each searched column (what the browser highlights)
    query: str | None = None
    spans: list[dict[str, list[tuple[int, int]]]] = field(default_factory=list)
    matches: int = 0  # matching live rows read (all of them up to search.MAX_LIMIT when filtered)

    def key_of(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A row's primary key, in key_columns order (what the row history looks up)."""
        return tuple(row[self.columns.index(c)] for c in self.key_columns)


def parse_filter(text: str, columns: list[str]) -> list[Condition]:
    """`/` in the browser: `city:lyon total>100 beatles`. An unknown column is an error naming the known ones,
    so a typo never silently matches nothing."""
    out: list[Condition] = []
    for term in text.split():
        m = _TERM.match(term)
        if m is None:
            out.append(Condition(None, ":", term))
            continue
        col, op, value = m.groups()
        if col not in columns:
            raise UsageError(f"filter {term!r}: no column {col!r} in this table (columns: {', '.join(columns)})")
        if not value:
            raise UsageError(f"filter {term!r}: a value is missing after {op!r}")
        out.append(Condition(col, op, value))
    return out


def table_columns(conn: Conn, table: str) -> list[str]:
    """The table's columns as the database reports them, bookkeeping columns last-and-hidden."""
    cur = conn.execute(f"SELECT * FROM {q(table)} WHERE 1 = 0")
    names = [d[0] for d in cur.description]
    cur.fetchall()
    return names


def _as_text(conn: Conn, col: str) -> str:
    return f"CAST({q(col)} AS {'CHAR' if conn.dialect == MYSQL else 'TEXT'})"


def _value(v: str) -> Any:
    """A compared value: a number when it reads as one (so `total>100` compares numbers, not text)."""
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def _where_filters(conn: Conn, conds: list[Condition], columns: list[str]) -> tuple[list[str], list[Any]]:
    sql: list[str] = []
    params: list[Any] = []
    for c in conds:
        if c.column is None:
            like = f"%{c.value.lower()}%"
            sql.append("(" + " OR ".join(f"LOWER({_as_text(conn, col)}) LIKE ?" for col in columns) + ")")
            params += [like] * len(columns)
        elif c.op == ":":
            sql.append(f"LOWER({_as_text(conn, c.column)}) LIKE ?")
            params.append(f"%{c.value.lower()}%")
        else:
            op = "<>" if c.op == "!=" else c.op
            sql.append(f"{q(c.column)} {op} ?")
            params.append(_value(c.value))
    return sql, params


def _after(order: list[str], descending: bool, values: tuple[Any, ...]) -> tuple[str, list[Any]]:
    """Rows strictly after `values` in ORDER BY order, with NULL as the smallest value: the lexicographic
    comparison spelled out as ORs of equalities, which every database turns into an index range."""
    ors: list[str] = []
    params: list[Any] = []
    for i, col in enumerate(order):
        ands: list[str] = []
        p: list[Any] = []
        for prev, v in zip(order[:i], values[:i], strict=True):
            if v is None:
                ands.append(f"{q(prev)} IS NULL")
            else:
                ands.append(f"{q(prev)} = ?")
                p.append(v)
        v = values[i]
        if not descending:
            if v is None:
                ands.append(f"{q(col)} IS NOT NULL")
            else:
                ands.append(f"{q(col)} > ?")
                p.append(v)
        else:
            if v is None:
                continue  # NULL is the last value in descending order: nothing comes after it in this column
            ands.append(f"({q(col)} < ? OR {q(col)} IS NULL)")
            p.append(v)
        ors.append("(" + " AND ".join(ands) + ")")
        params += p
    sql = "(" + " OR ".join(ors) + ")" if ors else "1 = 0"
    if not descending and values and values[0] is not None and len(order) > 1:
        # implied by the ORs, but spelled out: a range on the first column is what lets the planner start
        # reading the (sort, key) index at the cursor instead of scanning it (SQLite: 70 ms -> <1 ms at 1M)
        sql = f"{q(order[0])} >= ? AND {sql}"
        params.insert(0, values[0])
    return sql, params


def page(conn: Conn, table: str, key_columns: list[str], *, sort: str | None = None, descending: bool = False,
         filters: list[Condition] | None = None, after: tuple[Any, ...] | None = None, limit: int = PAGE) -> Page:
    """One page of live rows ordered by `sort` then the primary key (the key alone by default)."""
    all_cols = table_columns(conn, table)
    columns = [c for c in all_cols if c not in HIDDEN]
    missing = [k for k in key_columns if k not in all_cols]
    if missing:
        raise UsageError(f"table {table!r} has no key column {', '.join(missing)} (columns: {', '.join(columns)})")
    if sort is not None and sort not in columns:
        raise UsageError(f"sort: no column {sort!r} in {table!r} (columns: {', '.join(columns)})")
    conds = filters or []
    order = ([sort] if sort and sort not in key_columns else []) + list(key_columns)
    if sort in key_columns:  # sorting by a key column: that column first, then the rest of the key
        order = [sort] + [k for k in key_columns if k != sort]
    where: list[str] = []
    params: list[Any] = []
    if "_deleted_at" in all_cols:
        where.append(f"{q('_deleted_at')} IS NULL")
    fsql, fparams = _where_filters(conn, conds, columns)
    where += fsql
    params += fparams
    if after is not None:
        asql, aparams = _after(order, descending, after)
        where.append(asql)
        params += aparams
    direction = " DESC" if descending else ""
    nulls = (" NULLS LAST" if descending else " NULLS FIRST") if conn.dialect == POSTGRES else ""
    order_sql = ", ".join(f"{q(c)}{direction}{nulls}" for c in order)
    sql = (f"SELECT {', '.join(q(c) for c in columns)} FROM {q(table)}"
           + (f" WHERE {' AND '.join(where)}" if where else "") + f" ORDER BY {order_sql} LIMIT {int(limit) + 1}")
    rows = conn.all(sql, params)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = tuple(last[columns.index(c)] for c in order)
    return Page(columns=columns, rows=rows, key_columns=list(key_columns), sort=order[0], descending=descending,
                cursor=cursor, filters=conds)


def search_page(conn: Conn, table: str, key_columns: list[str], fields: list[str], query: str, *,
                filters: list[Condition] | None = None, after: tuple[Any, ...] | None = None,
                limit: int = PAGE) -> Page:
    """One page of the live rows matching `query` in the table's full-text index (the source's `search:`
    fields), best first, narrowed by `filters` (`column:value`, `column>value`; words belong in `query`).

    The ranking is the index's own (targets.search.search); the rows are then read by primary key, so the
    browser shows every column. Relevance has no keyset, so `after` is `(offset,)` and paging stops at the
    best search.MAX_LIMIT matches: a search narrows, it is not a way to walk a million rows (plain paging is).
    """
    from syncdash.targets import search as fts

    all_cols = table_columns(conn, table)
    columns = [c for c in all_cols if c not in HIDDEN]
    conds = [c for c in filters or [] if c.column is not None]
    offset = int(after[0]) if after else 0
    # without filters the best offset+limit+1 hits are enough; a filter may drop any of them: take them all
    want = fts.MAX_LIMIT if conds else offset + limit + 1
    hits = fts.search(conn, table, fields, key_columns, query, limit=want)
    words = fts.terms(query)
    rows = _rows_by_key(conn, table, columns, key_columns, [tuple(h.key[k] for k in key_columns) for h in hits],
                        conds)
    ranked = [r for r in rows if r is not None]
    shown = ranked[offset:offset + limit]
    more = len(ranked) > offset + limit
    spans = [{c: s for c in fields if c in columns
              and (s := fts.spans_of(None if r[columns.index(c)] is None else str(r[columns.index(c)]), words))}
             for r in shown]
    return Page(columns=columns, rows=shown, key_columns=list(key_columns), sort="relevance", descending=True,
                cursor=(offset + limit,) if more else None, filters=conds, query=query, spans=spans,
                matches=len(ranked))


def _rows_by_key(conn: Conn, table: str, columns: list[str], key_columns: list[str], keys: list[tuple[Any, ...]],
                 conds: list[Condition]) -> list[tuple[Any, ...] | None]:
    """The live rows with these keys that pass `conds`, in the keys' order (None where a key fails them)."""
    found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    fsql, fparams = _where_filters(conn, conds, columns)
    kidx = [columns.index(k) for k in key_columns]
    live = "_deleted_at" in table_columns(conn, table)
    for i in range(0, len(keys), 200):
        chunk = keys[i:i + 200]
        if len(key_columns) == 1:
            ksql = f"{q(key_columns[0])} IN ({', '.join('?' for _ in chunk)})"
            kparams: list[Any] = [k[0] for k in chunk]
        else:
            one = "(" + " AND ".join(f"{q(k)} = ?" for k in key_columns) + ")"
            ksql = "(" + " OR ".join(one for _ in chunk) + ")"
            kparams = [v for k in chunk for v in k]
        where = [ksql, *fsql]
        if live:
            where.append(f"{q('_deleted_at')} IS NULL")
        for r in conn.all(f"SELECT {', '.join(q(c) for c in columns)} FROM {q(table)} WHERE {' AND '.join(where)}",
                          kparams + fparams):
            found[tuple(r[j] for j in kidx)] = tuple(r)
    return [found.get(k) for k in keys]
