"""Full-text search benchmark (`search:`), each figure beside its baseline measured in the same run.

  load       `syncdash run` of the CSV (bench/csv_load.py's 10-column file) with `search: [name, city, status]`,
             beside the same load without `search:` (target: within 1.25x)
  resync     the changed file (1% changed, 0.5% new, 0.5% removed): how many index rows the run wrote,
             beside the rows in the table (target: only changed and new rows are written)
  search     p50/p95 of `targets.search.search()` over the loaded table, for specific queries (a person's
             number) and broad ones (a city and a status: 1 row in 40 matches), beside the query search()
             ran before (every word a prefix term, bm25 over every match; interleaved in the same run) and
             a LIKE scan (target: p95 under 50 ms on 1,000,000 rows)

Index rows rewritten and deleted are counted by counting triggers the bench adds, built from the index
triggers' own text in sqlite_master (same table, same WHEN clause), so they fire exactly when those do; rows
indexed on insert (one INSERT ... SELECT per batch) are counted from the index's own docsize table.

    python bench/search.py [--rows 1000000] [--repeat 1] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from csv_load import CONFIG, generate, measure, syncdash_cmd

from syncdash.common.dialect import SQLITE, Conn
from syncdash.targets.search import fts_name, search, terms

FIELDS = ["name", "city", "status"]


def write_config(work: Path, db: Path, csv_path: Path, with_search: bool) -> Path:
    text = CONFIG.format(db=db, csv=csv_path)
    if with_search:
        text = text.replace("    batch_size: 10000\n", f"    batch_size: 10000\n    search: [{', '.join(FIELDS)}]\n")
    cfg = work / f"{db.stem}.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def add_counters(db: Path) -> None:
    """A counting twin of each index trigger (same event, same WHEN), writing to bench_index_writes."""
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE IF NOT EXISTS bench_index_writes (kind TEXT)")
    fts = fts_name("people")
    for name, sql in con.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' AND name LIKE ?",
                                 (fts + "%",)).fetchall():
        kind = name.rsplit("_", 1)[1]
        head = sql[:sql.index(" BEGIN ")]
        twin = re.sub(r'^CREATE TRIGGER "[^"]+"', f'CREATE TRIGGER "bench_count_{kind}"', head)
        con.execute(f"{twin} BEGIN INSERT INTO bench_index_writes VALUES ('{kind}'); END")
    con.commit()
    con.close()


def pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))]


def legacy_search(raw: sqlite3.Connection, q: str) -> None:
    """The query search() ran before it spelled prefixes as words and capped the ranked matches: every word
    a prefix term, bm25 over every match (the baseline of the `search` lines)."""
    fts = fts_name("people")
    match = " ".join(f'"{w}"*' for w in terms(q))
    raw.execute(f"SELECT t.id, {', '.join('t.' + f for f in FIELDS)}, -bm25({fts}) FROM {fts} JOIN people t "
                f"ON t.rowid = {fts}.rowid WHERE {fts} MATCH ? AND t._deleted_at IS NULL ORDER BY bm25({fts}) "
                "LIMIT 20", (match,)).fetchall()


def time_queries(db: Path, queries: list[str], like: bool, legacy: bool = False) -> list[float]:
    raw = sqlite3.connect(db)
    conn = Conn(raw, SQLITE)
    out = []
    try:
        for q in queries:
            t0 = time.perf_counter()
            if like:  # the baseline: every word must appear in one of the fields, first 20 rows
                conds = " AND ".join("(" + " OR ".join(f"{f} LIKE ?" for f in FIELDS) + ")" for _ in q.split())
                params = [f"%{w}%" for w in q.split() for _ in FIELDS]
                raw.execute(f"SELECT id, {', '.join(FIELDS)} FROM people WHERE _deleted_at IS NULL AND {conds} "
                            "LIMIT 20", params).fetchall()
            elif legacy:
                legacy_search(raw, q)
            else:
                search(conn, "people", FIELDS, ["id"], q, limit=20)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        raw.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        first, second = generate(work, args.rows)
        plain_s, search_s = [], []
        for r in range(args.repeat):  # interleaved, so machine noise hits both sides
            for with_search, into in ((False, plain_s), (True, search_s)):
                db = work / f"{'search' if with_search else 'plain'}{r}.db"
                wall, _rss, _ = measure(syncdash_cmd(write_config(work, db, first, with_search)))
                into.append(wall)
        plain, withs = statistics.median(plain_s), statistics.median(search_s)
        print(f"rows: {args.rows:,}")
        print(f"load without search:  {plain:7.2f} s   (baseline)")
        print(f"load with search (3): {withs:7.2f} s   {withs / plain:.2f}x   (target <= 1.25x)")

        db = work / f"search{args.repeat - 1}.db"
        add_counters(db)
        docsize = f"{fts_name('people')}_docsize"
        con = sqlite3.connect(db)
        indexed_before = con.execute(f"SELECT count(*) FROM {docsize}").fetchone()[0]
        con.close()
        cfg = write_config(work, db, second, True)
        cfg.write_text(cfg.read_text().replace(str(first), str(second)))
        wall, _rss, out = measure(syncdash_cmd(cfg))
        counts = json.loads(out)[0]["counts"]
        con = sqlite3.connect(db)
        writes = dict(con.execute("SELECT kind, count(*) FROM bench_index_writes GROUP BY kind").fetchall())
        table_rows = con.execute("SELECT count(*) FROM people").fetchone()[0]
        # inserted rows are indexed by one statement per batch (no trigger): the index's own row count says how many
        writes["ai"] = con.execute(f"SELECT count(*) FROM {docsize}").fetchone()[0] - indexed_before + \
            writes.get("ad", 0)
        con.execute(f"INSERT INTO {fts_name('people')}({fts_name('people')}) VALUES ('integrity-check')")
        con.close()
        total = sum(writes.values())
        print(f"resync: {counts}")
        print(f"index rows written: {total:,} (inserted {writes.get('ai', 0):,}, rewritten {writes.get('au', 0):,}, "
              f"deleted {writes.get('ad', 0):,}) of {table_rows:,} table rows "
              f"(baseline: a rebuild writes {table_rows:,}); index integrity-check passed")

        rng = random.Random(7)
        specific = [f"person {rng.randrange(10**6):06d}" for _ in range(args.queries)]
        broad = [f"{rng.choice(['dublin', 'cork', 'lisbon', 'paris'])} {rng.choice(['active', 'pending'])}"
                 for _ in range(args.queries)]
        for label, qs in (("specific", specific), ("broad", broad)):
            fts_ms, old_ms = [], []
            for i in range(0, len(qs), 10):  # interleaved, so machine noise hits both sides
                fts_ms += time_queries(db, qs[i:i + 10], like=False)
                old_ms += time_queries(db, qs[i:i + 10], like=False, legacy=True)
            like_ms = time_queries(db, qs[:max(5, len(qs) // 10)], like=True)
            print(f"search {label:8}: p50 {pct(fts_ms, .5):6.2f} ms  p95 {pct(fts_ms, .95):6.2f} ms   "
                  f"(target p95 < 50 ms)\n"
                  f"   previous query   p50 {pct(old_ms, .5):6.2f} ms  p95 {pct(old_ms, .95):6.2f} ms   "
                  f"now {pct(fts_ms, .95) / pct(old_ms, .95):.2f}x at p95\n"
                  f"   LIKE scan        p50 {pct(like_ms, .5):6.2f} ms  p95 {pct(like_ms, .95):6.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
