"""Full-text search benchmark (`search:`), each figure beside its baseline measured in the same run.

  load       `syncdash run` of the CSV (bench/csv_load.py's 10-column file) with `search: [name, city, status]`,
             beside the same load without `search:` (target: within 1.25x). The two loads alternate (plain
             first, then search first, ...) --repeat times; medians of wall time and of the run's CPU
             time (user + sys, its read-ahead child included: what another process on the machine hardly
             changes), and the median of the pairs' ratios.
  resync     the changed file (1% changed, 0.5% new, 0.5% removed): how many index rows the run wrote,
             beside the rows in the table (target: only changed and new rows are written)
  search     p50/p95 of `targets.search.search()` over the loaded table, for specific queries (a person's
             number) and broad ones (a city and a status: 1 row in 40 matches), and, for information,
             words as typed (the number's first 2 to 5 digits); each beside search() of the previous
             release on the index that release made (bm25() in SQL over a copy of the database:
             interleaved in the same run) and a LIKE scan (target: p95 under 50 ms on 1,000,000 rows)

Index rows rewritten and deleted are counted by counting triggers the bench adds, built from the index
triggers' own text in sqlite_master (same table, same WHEN clause), so they fire exactly when those do; rows
indexed on insert (one INSERT ... SELECT per batch) are counted from the index's own row count.

    python bench/search.py [--rows 1000000] [--repeat 5] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from csv_load import CONFIG, generate, measure_all, syncdash_cmd

from syncdash.common.dialect import SQLITE, Conn
from syncdash.targets.search import fts_name, indexed_rows, search, terms

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


# the index the previous release made (per-row sizes kept for FTS5's bm25())
PREVIOUS_FTS = ("CREATE VIRTUAL TABLE {fts} USING fts5(name, city, status, content='people', content_rowid='rowid', "
                "tokenize='unicode61 remove_diacritics 0')")
PREVIOUS_SCAN, PREVIOUS_WORDS = 2000, 8


def previous_index(db: Path, into: Path) -> None:
    """A copy of the database with the index the previous release made (for the previous search's figures)."""
    shutil.copyfile(db, into)
    con = sqlite3.connect(into)
    fts = fts_name("people")
    con.execute(f"DROP TABLE {fts}")
    con.execute(PREVIOUS_FTS.format(fts=fts))
    con.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
    con.commit()
    con.close()


def previous_search(raw: sqlite3.Connection, q: str) -> None:
    """search() of the previous release (the baseline of the `search` lines): prefixes spelled as the words
    they stand for (as now), then bm25() in SQL over the first 2,000 matches (FTS5 counts every row holding
    each word for its IDF first)."""
    fts = fts_name("people")
    raw.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.bench_vocab USING fts5vocab(main, {fts}, 'row')")
    parts = []
    for w in terms(q):
        found = [w] if raw.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? LIMIT 1", (f'"{w}"',)).fetchone() \
            else []
        found += [r[0] for r in raw.execute(f"SELECT term FROM temp.bench_vocab WHERE term >= ? AND term < ? LIMIT "
                                            f"{PREVIOUS_WORDS + 1}", (w + "0", w[:-1] + chr(ord(w[-1]) + 1)))]
        if not found:
            return
        parts.append(f'"{w}"*' if len(found) > PREVIOUS_WORDS else "(" + " OR ".join(f'"{f}"' for f in found) + ")")
    match = " AND ".join(parts)
    edge = raw.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rowid LIMIT 1 OFFSET {PREVIOUS_SCAN}",
                       (match,)).fetchone()
    sql = (f"SELECT t.id, {', '.join('t.' + f for f in FIELDS)}, -bm25({fts}) FROM {fts} JOIN people t "
           f"ON t.rowid = {fts}.rowid WHERE {fts} MATCH ? {{}}AND t._deleted_at IS NULL ORDER BY bm25({fts}) LIMIT 20")
    if edge is not None:
        raw.execute(sql.format(f"AND {fts}.rowid < ? "), (match, edge[0])).fetchall()
    else:
        raw.execute(sql.format(""), (match,)).fetchall()


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """The child's wall time, its CPU time (the read-ahead child's included) and its stdout."""
    wall, _rss, cpu, out = measure_all(cmd)
    return wall, cpu, out


def time_queries(db: Path, queries: list[str], like: bool, previous: bool = False) -> list[float]:
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
            elif previous:
                previous_search(raw, q)
            else:
                search(conn, "people", FIELDS, ["id"], q, limit=20)
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        raw.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    print(f"rows: {args.rows:,}   load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        first, second = generate(work, args.rows)
        runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for r in range(args.repeat):  # alternating, so machine noise and drift hit both sides
            for with_search in ((False, True) if r % 2 == 0 else (True, False)):
                db = work / f"{'search' if with_search else 'plain'}{r}.db"
                wall, cpu, _ = measure(syncdash_cmd(write_config(work, db, first, with_search)))
                runs[with_search].append((wall, cpu))
                if r < args.repeat - 1:
                    for p in work.glob(f"{db.name}*"):
                        p.unlink()
        for i, what in ((0, "wall"), (1, "cpu ")):
            plain = statistics.median(x[i] for x in runs[False])
            withs = statistics.median(x[i] for x in runs[True])
            ratios = [s[i] / p[i] for p, s in zip(runs[False], runs[True], strict=True)]
            print(f"load {what} without search:  {plain:7.2f} s   (baseline, median of {args.repeat})")
            print(f"load {what} with search (3): {withs:7.2f} s   {withs / plain:.2f}x   pairs "
                  f"{' '.join(f'{x:.2f}x' for x in ratios)}, median {statistics.median(ratios):.2f}x "
                  "(target <= 1.25x)")

        db = work / f"search{args.repeat - 1}.db"
        add_counters(db)
        con = sqlite3.connect(db)
        indexed_before = indexed_rows(Conn(con, SQLITE), "people")
        con.close()
        cfg = write_config(work, db, second, True)
        cfg.write_text(cfg.read_text().replace(str(first), str(second)))
        wall, _cpu, out = measure(syncdash_cmd(cfg))
        counts = json.loads(out)[0]["counts"]
        con = sqlite3.connect(db)
        writes = dict(con.execute("SELECT kind, count(*) FROM bench_index_writes GROUP BY kind").fetchall())
        table_rows = con.execute("SELECT count(*) FROM people").fetchone()[0]
        # inserted rows are indexed by one statement per batch (no trigger): the index's own row count says how many
        writes["ai"] = indexed_rows(Conn(con, SQLITE), "people") - indexed_before + writes.get("ad", 0)
        con.execute(f"INSERT INTO {fts_name('people')}({fts_name('people')}) VALUES ('integrity-check')")
        con.close()
        total = sum(writes.values())
        print(f"resync: {counts}")
        print(f"index rows written: {total:,} (inserted {writes.get('ai', 0):,}, rewritten {writes.get('au', 0):,}, "
              f"deleted {writes.get('ad', 0):,}) of {table_rows:,} table rows "
              f"(baseline: a rebuild writes {table_rows:,}); index integrity-check passed")

        old_db = work / "previous.db"
        previous_index(db, old_db)
        rng = random.Random(7)
        specific = [f"person {rng.randrange(10**6):06d}" for _ in range(args.queries)]
        broad = [f"{rng.choice(['dublin', 'cork', 'lisbon', 'paris'])} {rng.choice(['active', 'pending'])}"
                 for _ in range(args.queries)]
        typed = [f"person {rng.randrange(10**6):06d}"[:-rng.randrange(1, 5)] for _ in range(args.queries)]
        for label, qs in (("specific", specific), ("broad", broad), ("as typed", typed)):
            fts_ms, old_ms = [], []
            for i in range(0, len(qs), 10):  # interleaved, so machine noise hits both sides
                fts_ms += time_queries(db, qs[i:i + 10], like=False)
                old_ms += time_queries(old_db, qs[i:i + 10], like=False, previous=True)
            like_ms = time_queries(db, qs[:max(5, len(qs) // 10)], like=True)
            target = "(target p95 < 50 ms)" if label != "as typed" else "(for information)"
            print(f"search {label:8}: p50 {pct(fts_ms, .5):6.2f} ms  p95 {pct(fts_ms, .95):6.2f} ms   {target}\n"
                  f"   previous release p50 {pct(old_ms, .5):6.2f} ms  p95 {pct(old_ms, .95):6.2f} ms   "
                  f"now {pct(fts_ms, .95) / pct(old_ms, .95):.2f}x at p95\n"
                  f"   LIKE scan        p50 {pct(like_ms, .5):6.2f} ms  p95 {pct(like_ms, .95):6.2f} ms")
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
