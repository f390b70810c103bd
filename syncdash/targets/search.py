"""Full-text search over a source's target table (`search: [title, artist, genre]`).

The index lives in the target database and is written by the same statements, in the same transaction, as the
rows, so it can never disagree with the table (across resume, a killed run, hard and soft deletes):

- SQLite: an FTS5 external-content table `syncdash_fts_<table>` (content= the target table): a batch's inserted
  rows are indexed by one INSERT ... SELECT in the batch (index_inserted); updates and deletes by triggers on
  the table, and an update touches the index only when a searched column really changed. FTS5 finds the
  matches, Python ranks them (BM25, _search_sqlite); a table made with other options (FTS_OPTIONS) is
  rebuilt once by ensure_index, and searched as it is until then.
- PostgreSQL: a generated `_search tsvector` column (config 'simple') with a GIN index; the column's comment
  names the indexed columns, so a changed `search:` list rebuilds it.
- MySQL/MariaDB: a `FULLTEXT` index `syncdash_search` over the columns (made case-insensitive, see _ensure_my).

Soft-deleted rows stay indexed (the index mirrors the table exactly) and are filtered out when searching.
`ensure_index` builds the index once when `search:` is added (or its columns change) and drops it when
`search:` is removed.

User query text is never passed to a query parser as is: it is cut into words (letters and digits) and each
word becomes a quoted prefix term, all required; so quotes, operators and any unicode are plain text.
Highlighting is computed in Python from the same words for every dialect, as character spans.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from syncdash.common.dialect import MYSQL, POSTGRES, Conn

MAX_TERMS = 16
MAX_LIMIT = 1000
RANK_SCAN = 1000  # SQLite: the most matches a query ranks (see _search_sqlite)
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


# columnsize=0: no per-row %_docsize entry (a b-tree insert per row, ~20% of the index's cost on a load);
# only FTS5's own bm25() wanted it, and search ranks in Python (_rank). detail=none: no word positions
# (~10% less): searches ask only which rows hold a word (see _search_sqlite for the one thing it changes).
# A table the previous release made (without them) still searches the same; ensure_index rebuilds it once.
FTS_OPTIONS = "tokenize='unicode61 remove_diacritics 0', detail=none, columnsize=0"


def _fts_sql(table: str, fields: list[str]) -> str:
    cols = ", ".join(_qi(c) for c in fields)
    return (f"CREATE VIRTUAL TABLE {_qi(fts_name(table))} USING fts5({cols}, content={_lit(table)}, "
            f"content_rowid='rowid', {FTS_OPTIONS})")


def _ensure_sqlite(conn: Any, table: str, fields: list[str]) -> None:
    fts, t = _qi(fts_name(table)), _qi(table)
    have = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (fts_name(table),)).fetchone()
    triggers = [_qi(f"{fts_name(table)}_{s}") for s in ("ad", "au")]
    if fields and have is not None and have[0] == _fts_sql(table, fields) and conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND tbl_name = ? AND name IN (?, ?)",
            (table, *(f"{fts_name(table)}_{s}" for s in ("ad", "au")))).fetchone()[0] == 2:
        return
    if not fields and have is None:
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
    conn.execute(_fts_sql(table, fields))
    # inserts are indexed by index_inserted() in the same batch, one INSERT ... SELECT per batch: a per-row
    # AFTER INSERT trigger made a million-row load ~3x slower (each FTS5 insert is a statement of its own)
    conn.execute(f"CREATE TRIGGER {triggers[0]} AFTER DELETE ON {t} BEGIN "
                 f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); END")
    # only rows whose searched text changed touch the index (a re-sync's other updates, soft deletes: none)
    conn.execute(f"CREATE TRIGGER {triggers[1]} AFTER UPDATE OF {cols} ON {t} WHEN {changed} BEGIN "
                 f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); "
                 f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new}); END")
    # merge 64 segments of a level at a time, not 4 (each batch's commit writes one): ~25% less index work on
    # a load; a million rows in 10,000-row batches leave ~40 segments, and the searches of bench/search.py
    # take as long as with 4
    conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('automerge', 64)")
    conn.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('crisismerge', 256)")
    conn.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def index_inserted(conn: Any, table: str, fields: list[str], by_keys: str, keys: list[Any],
                   key_column: str | None = None) -> None:
    """Index the rows a batch just inserted (SQLite; in the batch's transaction). keys: the batch's keys
    (scalars, or lists for a composite key); key_column: the one key column (None for a composite key);
    by_keys: `FROM <table> t WHERE <the batch's keys>` with one ? for their JSON (TargetTable's key lookup).

    The keys of an initial load are often consecutive integers that are also the rowids (an INTEGER primary
    key): those rows are read as one rowid range (~0.25 s less per million rows than 10,000 key lookups per
    batch). The range holds exactly the batch when the key column is the table's rowid (_key_is_rowid) and
    the batch's keys are distinct integers spanning as many values as there are keys: every rowid of the
    range is then one of the batch's keys, and each of them is there (just inserted). Both are checked
    without reading the table: a count(*) of the range's rows, which proved the same, cost ~0.09 s per
    million rows (it reads every row of the range once more)."""
    fts = _qi(fts_name(table))
    head = (f"INSERT INTO {fts}(rowid, {', '.join(_qi(c) for c in fields)}) "
            f"SELECT t.rowid, {', '.join(f't.{_qi(c)}' for c in fields)} ")
    span = _span(keys) if key_column is not None and len(keys) > 1 else None
    if span is not None and _key_is_rowid(conn, table, key_column or ""):
        conn.execute(f"{head}FROM {_qi(table)} t WHERE t.rowid BETWEEN {span[0]} AND {span[1]}")
        return
    conn.execute(f"{head}{by_keys}", (json.dumps(keys, default=str),))


def _span(keys: list[Any]) -> tuple[int, int] | None:
    """(lowest, highest) when the keys are distinct and fill the integers between them with no gap, else None
    (the two ends are ints; a key between them not equal to an int is none an INTEGER primary key takes)."""
    try:
        low, high = min(keys), max(keys)
    except TypeError:  # keys of mixed types: not a range
        return None
    if type(low) is int and type(high) is int and high - low + 1 == len(keys) == len(set(keys)):
        return low, high
    return None


def _key_is_rowid(conn: Any, table: str, key_column: str) -> bool:
    """The table's primary key is this one column and it is the rowid itself (an INTEGER PRIMARY KEY of a
    rowid table): any other primary key, a WITHOUT ROWID table's included, has an index of its own."""
    return conn.execute(
        "SELECT (SELECT group_concat(name) FROM pragma_table_info(?1) WHERE pk > 0) = ?2 "
        "AND NOT EXISTS (SELECT 1 FROM pragma_index_list(?1) WHERE origin = 'pk')",
        (table, key_column)).fetchone()[0] == 1


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
        rows = _search_sqlite(db, table, sel, len(key), words, limit)
    hits = []
    nk = len(key)
    for r in rows:
        values = {c: (None if v is None else str(v)) for c, v in zip(fields, r[nk:nk + len(fields)], strict=True)}
        hits.append(Hit(source=source, table=table, key=dict(zip(key, r[:nk], strict=True)), fields=values,
                        score=float(r[-1] or 0.0),
                        spans={c: s for c, v in values.items() if (s := spans_of(v, words))}))
    return hits


def _search_sqlite(db: Conn, table: str, sel: str, nk: int, words: list[str], limit: int) -> list[tuple[Any, ...]]:
    """FTS5 finds the matching rows, Python ranks them (BM25): fast on big tables (bench/search.py: 1,000,000
    rows, p95 under 50 ms) and the same rows as a plain prefix query.

    - A prefix term (`"person"*`) makes FTS5 copy the doclists of every indexed word with that prefix into
      one in memory before it can seek in it: 1,000,000 entries for a word every row has. The index's
      vocabulary says which words a prefix stands for; when they are few, the term is spelled as those words
      (`"person"`, `("cafe" OR "cafes")`), which FTS5 seeks in without copying (_expand_prefix).
    - FTS5's bm25() counts, per query, every row holding each term (its IDF): a walk of 1,000,000 entries
      for a word every row has, ~70-200 ms before a single row is ranked. Here FTS5 only lists the first
      RANK_SCAN live matches (rowid order, stopping there) and they are ranked in Python (_rank) with each
      word's row count counted up to IDF_SCAN and estimated past it. A query matching more rows than that
      ranks its first RANK_SCAN: every such match has every word, so the ranking is on field length and
      word counts, and the best of 1,000 are as good as the best of 25,000; a narrower query is exact.
    - The index keeps no positions (detail=none), so FTS5 refuses a quoted word it cuts in two (a letter
      its tokenizer does not know, e.g. U+19B0): such a word is checked here, on the rows the other words
      find (or on every live row when no word is left), as the highlighting reads words.
    """
    fts, t = _qi(fts_name(table)), _qi(table)
    parts, loose = [], []
    for w in words:
        try:
            part = _expand_prefix(db, table, w)
        except sqlite3.OperationalError:  # "phrase queries are not supported (detail!=full)"
            loose.append(w)
            continue
        if part is None:
            return []
        parts.append((w, part))
    scan = max(RANK_SCAN, 2 * limit)
    if parts:
        sql = (f"SELECT {sel} FROM {fts} JOIN {t} t ON t.rowid = {fts}.rowid WHERE {fts} MATCH ? "
               "AND t._deleted_at IS NULL")
        params: tuple[Any, ...] = (" AND ".join(p for _, p in parts),)
    else:
        sql, params = f"SELECT {sel} FROM {t} t WHERE t._deleted_at IS NULL", ()
    if loose:
        rows = list(itertools.islice((tuple(r) for r in db.execute(sql, params) if _holds(r[nk:], loose)), scan))
    else:
        rows = db.all(f"{sql} LIMIT {scan}", params)
    if not rows:
        return []
    total, avg_len = _totals(db, table)
    weights = [(w, _idf(db, table, part, total)) for w, part in parts]
    weights += [(w, _idf_of(len(rows), max(total, len(rows)))) for w in loose]
    return _rank(rows, nk, weights, avg_len, limit)


def _holds(values: tuple[Any, ...], words: list[str]) -> bool:
    """Every word starts a word of the values (as the highlighting cuts them)."""
    tokens = _WORD.findall(" ".join(str(v) for v in values if v is not None).casefold())
    return all(any(tok.startswith(w) for tok in tokens) for w in words)


K1, B = 1.2, 0.75  # BM25's parameters, FTS5's values
IDF_SCAN = 1000  # a word in more rows than this: its row count is estimated from where its IDF_SCAN-th row is


def _rank(rows: list[tuple[Any, ...]], nk: int, weights: list[tuple[str, float]], avg_len: float,
          limit: int) -> list[tuple[Any, ...]]:
    """The best `limit` rows by BM25 (Lucene's IDF, never negative), each row with its score appended: a
    word's weight in a row is its IDF, scaled by how many of the row's words it starts and the row's length
    (in words) against the average; ties keep rowid order."""
    # per word, a pattern finding it where an indexed word starts (not preceded by a letter or digit)
    starts = [(re.compile(r"(?<![^\W_])" + re.escape(w)).findall, weight * (K1 + 1)) for w, weight in weights]
    count = _WORD.findall
    scored = []
    for r in rows:
        text = " ".join([str(v) for v in r[nk:] if v is not None]).casefold()
        norm = K1 * (1 - B + B * len(count(text)) / avg_len) if avg_len > 0 else K1
        score = 0.0
        for find, weight in starts:
            tf = len(find(text))
            score += weight * tf / (tf + norm)
        scored.append((*r, score))
    scored.sort(key=lambda r: -r[-1])
    return scored[:limit]


def _idf(db: Conn, table: str, part: str, total: int) -> float:
    """log(1 + (N - n + .5) / (n + .5)) for the rows n of N holding the term: counted up to IDF_SCAN, then
    estimated as IDF_SCAN * (the rowid span of the table) / (the span up to the IDF_SCAN-th such row)."""
    fts = _qi(fts_name(table))
    count, edge = db.one(f"SELECT count(*), max(rowid) FROM (SELECT rowid FROM {fts} WHERE {fts} MATCH ? "
                         f"LIMIT {IDF_SCAN})", (part,)) or (0, None)
    n = float(count)
    if count >= IDF_SCAN and edge is not None:
        # two subqueries: min() and max() in one SELECT would scan the table instead of reading its two ends
        low, high = db.one(f"SELECT (SELECT min(rowid) FROM {_qi(table)}), (SELECT max(rowid) FROM {_qi(table)})") \
            or (None, None)
        if low is not None and high is not None and edge >= low:
            n = min(max(n, IDF_SCAN * (high - low + 1) / (edge - low + 1)), float(max(total, count)))
    return _idf_of(n, max(total, count))


def _idf_of(n: float, total: int) -> float:
    return math.log(1 + (total - n + 0.5) / (n + 0.5))


def _totals(db: Conn, table: str) -> tuple[int, float]:
    """(rows indexed, average words per row) from the FTS5 index's averages record (its %_data row 1: a
    varint row count, then one varint token count per column), (0, 0.0) when it cannot be read."""
    row = db.one(f"SELECT block FROM {_qi(fts_name(table) + '_data')} WHERE id = 1")
    if row is None or not isinstance(row[0], bytes):
        return 0, 0.0
    values, pos, block = [], 0, row[0]
    while pos < len(block):
        value, pos = _varint(block, pos)
        values.append(value)
    if not values or values[0] <= 0:
        return 0, 0.0
    return values[0], sum(values[1:]) / values[0]


def _varint(block: bytes, pos: int) -> tuple[int, int]:
    """SQLite's varint (big-endian 7-bit groups, high bit = more; a 9th byte carries 8 bits)."""
    value = 0
    for i in range(9):
        if pos >= len(block):
            break
        b = block[pos]
        pos += 1
        if i == 8:
            return (value << 8) | b, pos
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            break
    return value, pos


def indexed_rows(db: Conn, table: str) -> int:
    """Rows in a SQLite table's index (the index's own count: tests and the bench compare it with the
    table's)."""
    return _totals(db, table)[0]


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
