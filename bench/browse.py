"""The console browser's page time on a 1,000,000-row SQLite target table (syncdash/targets/browse.py).

Builds (once, cached under bench/.data/) a table shaped like a synced one: an integer key, text and number
columns, the bookkeeping columns, an index on one sortable column. Then times, over --pages consecutive pages:

  baseline   a plain `SELECT ... ORDER BY id LIMIT 50` (the first page only: the cheapest possible read)
  by key     browse.page() walking forward by key from deep in the table (keyset: no OFFSET scan)
  by city    the same, sorted by the indexed, non-unique `city` column (the cursor is (city, id))

and prints p50/p95 per page beside the baseline measured in the same run. Target: p95 < 100 ms per page.
Exit status 1 when it is missed.

    python bench/browse.py [--rows 1000000] [--pages 200]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from syncdash.common.dialect import Conn  # noqa: E402
from syncdash.targets import browse  # noqa: E402

CITIES = ["lyon", "nice", "paris", "lille", "nantes", "brest", "metz", "caen"]


def build(path: Path, n: int) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    con.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, city TEXT, total REAL, _synced_at TEXT, "
                "_run_id INTEGER, _hash INTEGER, _deleted_at TEXT)")
    con.executemany("INSERT INTO people VALUES (?, ?, ?, ?, '2025-01-01', 1, 0, NULL)",
                    ((i, f"person {i}", CITIES[i * 7919 % len(CITIES)], (i * 31) % 1000 / 3) for i in range(1, n + 1)))
    con.execute("CREATE INDEX people_city ON people (city, id)")
    con.commit()
    con.close()
    tmp.rename(path)


def percentiles(xs: list[float]) -> tuple[float, float]:
    xs = sorted(xs)
    return statistics.median(xs), xs[min(len(xs) - 1, int(len(xs) * 0.95))]


def walk(conn: Conn, pages: int, start: tuple[Any, ...] | None, **kw: Any) -> list[float]:
    times = []
    after = start
    for _ in range(pages):
        t = time.perf_counter()
        p = browse.page(conn, "people", ["id"], after=after, **kw)
        times.append((time.perf_counter() - t) * 1000)
        after = p.cursor
    return times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--pages", type=int, default=200)
    args = ap.parse_args()
    path = HERE / ".data" / f"browse_{args.rows}.db"
    build(path, args.rows)
    raw = sqlite3.connect(path, isolation_level=None)
    conn = Conn(raw, "sqlite")
    base = []
    for _ in range(args.pages):
        t = time.perf_counter()
        raw.execute("SELECT id, name, city, total FROM people ORDER BY id LIMIT 51").fetchall()
        base.append((time.perf_counter() - t) * 1000)
    deep = (args.rows // 2,)
    by_key = walk(conn, args.pages, deep)
    mid_city = raw.execute("SELECT city, id FROM people WHERE id = ?", deep).fetchone()
    by_city = walk(conn, args.pages, tuple(mid_city), sort="city")
    b50, b95 = percentiles(base)
    print(f"{args.rows:,} rows, {args.pages} pages of {browse.PAGE} (SQLite)")
    print(f"  baseline SELECT ... LIMIT  p50 {b50:6.2f} ms  p95 {b95:6.2f} ms")
    worst = 0.0
    for name, xs in (("browse by key (deep)", by_key), ("browse by city (deep)", by_city)):
        p50, p95 = percentiles(xs)
        worst = max(worst, p95)
        print(f"  {name:<25} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  ({p95 / b95:.1f}x baseline p95)")
    ok = worst < 100
    print(f"target p95 < 100 ms per page: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
