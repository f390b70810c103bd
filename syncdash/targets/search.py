"""Full-text search over a source's target table (`search: [title, artist, genre]`).

The index lives in the target database and is written by the same statements, in the same transaction, as the
rows, so it can never disagree with the table (across resume, a killed run, hard and soft deletes):

- SQLite: an FTS5 external-content table `syncdash_fts_<table>` (content= the target table): a batch's inserted
  rows are indexed by one INSERT ... SELECT in the batch (index_inserted); updates and deletes by triggers on
  the table, and an update touches the index only when a searched column really changed.
- PostgreSQL: a generated `_search tsvector` column (config 'simple') with a GIN index; the column's comment
  names the indexed columns, so a changed `search:` list rebuilds it.
- MySQL/MariaDB: a `FULLTEXT` index `syncdash_search` over the columns (made case-insensitive, see _ensure_my).

Soft-deleted rows stay indexed (the index mirrors the table exactly) and are filtered out when searching.
`ensure_index` builds the index once when `search:` is added and drops it when `search:` is removed.

User query text is never passed to a query parser as is: it is cut into words (letters and digits) and each
word becomes a quoted prefix term, all required; so quotes, operators and any unicode are plain text.
Highlighting is computed in Python from the same words for every dialect, as character spans.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from syncdash.common.dialect import MYSQL, POSTGRES, Conn

MAX_TERMS = 16
MAX_LIMIT = 1000
RANK_SCAN = 2000  # SQLite: a query matching more rows ranks the first this many (see _search_sqlite)
PREFIX_WORDS = 8  # SQLite: a query word standing for at most this many indexed words is spelled as them
_WORD = re.compile(r"[^\W_]+")
PG_COLUMN = "_search"
MY_INDEX = "syncdash_search"


def _qi(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def fts_name(table: str) -> str:
    """The FTS5 table of a SQLite target table."""
    return f"syncdash_fts_{table}"


def terms(query: str) -> list[str]:
    """The words of a user's query (lower-cased, letters and digits only, at most MAX_TERMS)."""
    return _WORD.findall(query.casefold())[:MAX_TERMS]


# ---- index maintenance ----------------------------------------------------------------------------------


def ensure_index(db: Any, dialect: str, table: str, fields: list[str] | None, key: list[str] | None = None) -> None:
    """Create, rebuild (other columns) or drop (`fields` empty) the table's index; runs in ensure()'s
    transaction. `db`: a sqlite3 connection on SQLite, a Conn on a server."""
    if dialect == POSTGRES:
        _ensure_pg(db, table, fields or [])
    elif dialect == MYSQL:
        _ensure_my(db, table, fields or [], key or [])
    else:
        _ensure_sqlite(db, table, fields or [])


def _ensure_sqlite(conn: Any, table: str, fields: list[str]) -> None:
    fts, t = _qi(fts_name(table)), _qi(table)
    have = [r[1] for r in conn.execute(f"PRAGMA table_info({fts})").fetchall()]
    triggers = [_qi(f"{fts_name(table)}_{s}") for s in ("ad", "au")]
    if have == fields and (not fields or conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND tbl_name = ? AND name IN (?, ?)",
            (table, *(f"{fts_name(table)}_{s}" for s in ("ad", "au")))).fetchone()[0] == 2):
        return
    for trig in triggers:
        conn.execute(f"DROP TRIGGER IF EXISTS {trig}")
    conn.execute(f"DROP TABLE IF EXISTS {fts}")
    if not fields:
        return
    cols = ", ".join(_qi(c) for c in fields)
    new = ", ".join(f"new.{_qi(c)}" for c in fields)
    old = ", ".join(f"old.{_qi(c)}" for c in fields)
    changed = " OR ".join(f"old.{_qi(c)} IS NOT new.{_qi(c)}" for c in fields)
    conn.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content={_lit(table)}, content_rowid='rowid', "
                 "tokenize='unicode61 remove_diacritics 0')")
    # inserts are indexed by index_inserted() in the same batch, one INSERT ... SELECT per batch: a per-row
    # AFTER INSERT trigger made a million-row load ~3x slower (each FTS5 insert is a statement of its own)
    conn.execute(f"CREATE TRIGGER {triggers[0]} AFTER DELETE ON {t} BEGIN "
                 f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); END")
    # only rows whose searched text changed touch the index (a re-sync's other updates, soft deletes: none)
    conn.execute(f"CREATE TRIGGER {triggers[1]} AFTER UPDATE OF {cols} ON {t} WHEN {changed} BEGIN "
                 f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); "
                 f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new}); END")
    conn.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def index_inserted(conn: Any, table: str, fields: list[str], by_keys: str, keys_json: str) -> None:
    """Index the rows a batch just inserted (SQLite; in the batch's transaction). by_keys: `FROM <table> t
    WHERE <the batch's keys>` with one ? for keys_json (TargetTable's own key lookup)."""
    fts = _qi(fts_name(table))
    cols = ", ".join(_qi(c) for c in fields)
    conn.execute(f"INSERT INTO {fts}(rowid, {cols}) SELECT t.rowid, {', '.join(f't.{_qi(c)}' for c in fields)} "
                 f"{by_keys}", (keys_json,))


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ensure_pg(db: Conn, table: str, fields: list[str]) -> None:
    row = db.one("SELECT col_description(c.oid, a.attnum) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                 "WHERE c.oid = to_regclass(?) AND a.attname = ? AND NOT a.attisdropped", (_qi(table), PG_COLUMN))
    want = ",".join(fields)
    if row is not None and (row[0] or "") == want and fields:
        return
    t = _qi(table)
    if row is not None:
        db.execute(f"ALTER TABLE {t} DROP COLUMN {PG_COLUMN}")
    if not fields:
        return
    doc = " || ' ' || ".join(f"coalesce({_qi(c)}, '')" for c in fields)
    db.execute(f"ALTER TABLE {t} ADD COLUMN {PG_COLUMN} tsvector GENERATED ALWAYS AS "
               f"(to_tsvector('simple'::regconfig, {doc})) STORED")
    db.execute(f"COMMENT ON COLUMN {t}.{PG_COLUMN} IS {_lit(want)}")
    db.execute(f"CREATE INDEX {_qi(('syncdash_gin_' + table)[:63])} ON {t} USING gin ({PG_COLUMN})")


def _ensure_my(db: Conn, table: str, fields: list[str], key: list[str]) -> None:
    """The table's utf8mb4_bin collation would make FULLTEXT case-sensitive: searched columns that are not
    key columns (which must compare exactly) are switched to a case-insensitive collation first."""
    have = [r[0] for r in db.all("SELECT column_name FROM information_schema.statistics WHERE "
                                 "table_schema = DATABASE() AND table_name = ? AND index_name = ? "
                                 "ORDER BY seq_in_index", (table, MY_INDEX))]
    if have == fields:
        return
    t = _qi(table)
    if have:
        db.execute(f"ALTER TABLE {t} DROP INDEX {MY_INDEX}")
    if fields:
        for c in fields:
            if c not in key:
                db.execute(f"ALTER TABLE {t} MODIFY {_qi(c)} LONGTEXT CHARACTER SET utf8mb4 "
                           "COLLATE utf8mb4_unicode_ci")
        db.execute(f"ALTER TABLE {t} ADD FULLTEXT INDEX {MY_INDEX} ({', '.join(_qi(c) for c in fields)})")


# ---- queries --------------------------------------------------------------------------------------------


@dataclass
class Hit:
    """One matching live row: its key columns, its searched fields, and where the query's words are."""

    source: str
    table: str
    key: dict[str, Any]
    fields: dict[str, str | None]
    score: float
    spans: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def marked(self, column: str, start: str = "[", end: str = "]") -> str:
        """The field's text with each matched word wrapped in start/end (e.g. rich markup)."""
        text = self.fields.get(column) or ""
        out, pos = [], 0
        for a, b in self.spans.get(column, []):
            out += [text[pos:a], start, text[a:b], end]
            pos = b
        out.append(text[pos:])
        return "".join(out)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "table": self.table, "key": self.key, "score": round(self.score, 6),
                "fields": self.fields,
                "highlights": {c: [list(s) for s in v] for c, v in self.spans.items()}}


def spans_of(text: str | None, words: list[str]) -> list[tuple[int, int]]:
    """Character spans of the words of `text` that start with one of the query's words."""
    if not text or not words:
        return []
    return [(m.start(), m.end()) for m in _WORD.finditer(text)
            if any(m.group().casefold().startswith(w) for w in words)]


def search(db: Conn, table: str, fields: list[str], key: list[str], query: str, *, limit: int = 20,
           source: str = "") -> list[Hit]:
    """Live rows of `table` matching every word of `query` in its `fields` (a source's `search:` list),
    best first, at most `limit` (capped at MAX_LIMIT).

    db: a connection to the table's database (targets.open.connect); key: the table's primary key columns.
    Any query text is safe (see the module doc); a query without words returns []. Each Hit carries the
    key, the searched fields' values, a relevance score (higher is better; comparable within one table)
    and, per field, the character spans of the matched words (Hit.marked renders them).
    """
    words = terms(query)
    limit = max(1, min(int(limit), MAX_LIMIT))
    if not words:
        return []
    t = _qi(table)
    sel = ", ".join(f"t.{_qi(c)}" for c in [*key, *fields])
    if db.dialect == POSTGRES:
        tsq = " & ".join(f"{w}:*" for w in words)
        sql = (f"SELECT {sel}, ts_rank(t.{PG_COLUMN}, q) AS score FROM {t} t, to_tsquery('simple', ?) q "
               f"WHERE t.{PG_COLUMN} @@ q AND t._deleted_at IS NULL ORDER BY score DESC LIMIT {limit}")
        rows = db.all(sql, (tsq,))
    elif db.dialect == MYSQL:
        cols = ", ".join(f"t.{_qi(c)}" for c in fields)
        boolean = " ".join(f"+{w}*" for w in words)
        sql = (f"SELECT {sel}, MATCH ({cols}) AGAINST (? IN BOOLEAN MODE) AS score FROM {t} t "
               f"WHERE MATCH ({cols}) AGAINST (? IN BOOLEAN MODE) AND t._deleted_at IS NULL "
               f"ORDER BY score DESC LIMIT {limit}")
        rows = db.all(sql, (boolean, boolean))
    else:
        rows = _search_sqlite(db, table, sel, words, limit)
    hits = []
    nk = len(key)
    for r in rows:
        values = {c: (None if v is None else str(v)) for c, v in zip(fields, r[nk:nk + len(fields)], strict=True)}
        hits.append(Hit(source=source, table=table, key=dict(zip(key, r[:nk], strict=True)), fields=values,
                        score=float(r[-1] or 0.0),
                        spans={c: s for c, v in values.items() if (s := spans_of(v, words))}))
    return hits


def _search_sqlite(db: Conn, table: str, sel: str, words: list[str], limit: int) -> list[tuple[Any, ...]]:
    """FTS5, made fast on big tables (bench/search.py: 1,000,000 rows) in two ways that keep what matches:

    - A prefix term (`"person"*`) makes FTS5 copy the doclists of every indexed word with that prefix into
      one in memory before it can seek in it: 1,000,000 entries for a word every row has. The index's
      vocabulary (an fts5vocab table, TEMP so nothing is added to the target database) says which words a
      prefix stands for; when they are few, the term is spelled as those words (`"person"`,
      `("cafe" OR "cafes")`), which FTS5 seeks in without copying. Same rows; a word no row has ends the
      search at once.
    - bm25() is computed for every matching row before the best are picked: ~40 ms per 25,000 matches. When
      more than RANK_SCAN rows match, only the first RANK_SCAN of them (in rowid order) are ranked: a
      query that broad ranks its matches on field length alone (every match has every word), so the
      best of 2,000 are as good as the best of 25,000; a narrower query is ranked exactly.
    """
    fts = _qi(fts_name(table))
    parts = []
    for w in words:
        part = _expand_prefix(db, table, w)
        if part is None:
            return []
        parts.append(part)
    match = " AND ".join(parts)
    scan = max(RANK_SCAN, 2 * limit)
    # the (scan+1)-th match, if there is one: rank only the rows before it (FTS5 takes rowid ranges itself)
    edge = db.one(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid LIMIT 1 OFFSET {scan}", (match,))
    sql = (f"SELECT {sel}, -bm25({fts}) FROM {fts} JOIN {_qi(table)} t ON t.rowid = {fts}.rowid "
           f"WHERE {fts} MATCH ? {{}}AND t._deleted_at IS NULL ORDER BY bm25({fts}) LIMIT {limit}")
    if edge is not None:
        rows = db.all(sql.format(f"AND {fts}.rowid < ? "), (match, edge[0]))
        if len(rows) == limit:
            return rows
        # soft-deleted rows took places among the first `scan`: rank them all rather than show too few
    return db.all(sql.format(""), (match,))


def _expand_prefix(db: Conn, table: str, word: str) -> str | None:
    """The FTS5 term for a query word that must start an indexed word: the indexed words themselves when
    there are at most PREFIX_WORDS, the prefix query otherwise; None when no indexed word starts with it.

    The word itself is looked up with a MATCH (a seek), not in the vocabulary: an fts5vocab row counts the
    documents of each word it lists, a walk of 1,000,000 entries for a word every row has. The vocabulary
    lists only the longer words (from word + "0": index words are letters and digits, all above "0")."""
    fts = _qi(fts_name(table))
    vocab = _qi(f"syncdash_vocab_{table}")
    last = ord(word[-1])
    if last >= 0x10FFFF or 0xD7FF <= last <= 0xDFFF:
        return f'"{word}"*'
    found = [word] if db.one(f'SELECT rowid FROM {fts} WHERE {fts} MATCH ? LIMIT 1', (f'"{word}"',)) else []
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{vocab} USING fts5vocab(main, {fts}, 'row')")
    found += [r[0] for r in db.all(f"SELECT term FROM temp.{vocab} WHERE term >= ? AND term < ? LIMIT "
                                   f"{PREFIX_WORDS + 1}", (word + "0", word[:-1] + chr(last + 1)))]
    if not found:
        return None
    if len(found) > PREFIX_WORDS:
        return f'"{word}"*'
    quoted = ['"' + f.replace('"', '""') + '"' for f in found]
    return quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")"


def searchable_sources(config: Any, source: str | None = None) -> list[Any]:
    """The config's sources with a `search:` list (only `source` when given)."""
    return [s for s in config.source_list if getattr(s, "search", None) and (source is None or s.name == source)]


def search_project(connect: Callable[[Any], Conn], config: Any, query: str, source: str | None = None,
                   limit: int = 20) -> list[Hit]:
    """Search every searchable source's table (or one source's), at most `limit` hits overall, highest
    scores first. connect(source config) opens that source's target database (targets.open.connect)."""
    hits: list[Hit] = []
    for src in searchable_sources(config, source):
        db = connect(src)
        try:
            if src.table not in db.table_names(src.table):
                continue
            hits += search(db, src.table, list(src.search), list(src.primary_key), query, limit=limit,
                           source=src.name)
        finally:
            db.close()
    hits.sort(key=lambda h: -h.score)
    return hits[:max(1, min(int(limit), MAX_LIMIT))]
