"""CSV load benchmark: syncdash against a plain csv.reader + sqlite3 executemany baseline, in the same run.

Generates 1,000,000 rows x 10 columns and a second file with 1% of rows changed, 0.5% new and 0.5% removed,
then times whole processes (median of --repeat runs, interleaved so machine noise hits both sides):

  raw        csv.reader + executemany into a table with the same primary key, one transaction, WAL
  init       `syncdash run` into an empty database
  resync     `syncdash run` of the changed file (inserts, updates, soft deletes, change records)
  unchanged  `syncdash run` of the same file again (must write 0 rows; recognised unchanged, it is not read)
  reread     `syncdash run --full` of the same file (read anyway: the cost of a re-run that cannot skip)

Peak RSS comes from the child's rusage. The same steps on 100,000 rows show whether memory grows with rows.
Targets (issue #18): init and resync <= 1.15x raw, unchanged <= 0.6x raw and writes 0 rows, peak RSS <= 150 MB
and flat. The baseline runs with journal_mode=WAL and the default synchronous=FULL (one fsync: one commit);
syncdash with WAL, synchronous=NORMAL, cache_size=-32000 and one commit per batch (batch_size 10000).

    python bench/csv_load.py [--rows 1000000] [--repeat 3] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HEADER = ["id", "name", "email", "city", "country", "amount", "quantity", "created_at", "updated_at", "status"]
CITIES = ["Dublin", "Cork", "Galway", "Limerick", "Waterford", "Lisbon", "Porto", "Berlin", "Paris", "Madrid"]
COUNTRIES = ["IE", "PT", "DE", "FR", "ES", "NL", "BE", "IT"]
STATUSES = ["active", "inactive", "pending", "closed"]

RAW_BASELINE = r"""
import csv, sqlite3, sys
src, db = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT, "
            "country TEXT, amount REAL, quantity INTEGER, created_at TEXT, updated_at TEXT, status TEXT)")
with open(src, newline="", encoding="utf-8") as f:
    r = csv.reader(f)
    next(r)
    con.execute("BEGIN")
    con.executemany("INSERT INTO people VALUES (?,?,?,?,?,?,?,?,?,?)", r)
    con.execute("COMMIT")
"""

CONFIG = """\
database: sqlite:///{db}
sources:
  - name: people
    kind: csv
    path: {csv}
    table: people
    primary_key: [id]
    mode: full
    deletes: soft
    batch_size: 10000
    fields:
      id: {{from: id, type: int}}
      name: name
      email: email
      city: city
      country: country
      amount: {{from: amount, type: float}}
      quantity: {{from: quantity, type: int}}
      created_at: {{from: created_at, type: datetime}}
      updated_at: {{from: updated_at, type: datetime}}
      status: status
"""


def make_row(rng: random.Random, i: int, base: datetime) -> list[str]:
    created = base + timedelta(seconds=rng.randrange(0, 86400 * 900))
    return [
        str(i), f"Person {rng.randrange(10**6):06d}", f"user{i}@example.com", rng.choice(CITIES),
        rng.choice(COUNTRIES), f"{rng.uniform(0, 10000):.2f}", str(rng.randrange(1, 500)),
        created.isoformat(timespec="seconds"),
        (created + timedelta(seconds=rng.randrange(0, 86400 * 30))).isoformat(timespec="seconds"),
        rng.choice(STATUSES),
    ]


def generate(dirpath: Path, rows: int) -> tuple[Path, Path]:
    """Initial file plus the changed one: 1% changed, 0.5% removed, 0.5% new (ids past the end)."""
    first, second = dirpath / f"people_{rows}.csv", dirpath / f"people_{rows}_changed.csv"
    if first.exists() and second.exists():
        return first, second
    rng = random.Random(rows)
    base = datetime(2023, 1, 1)
    with open(first, "w", newline="", encoding="utf-8") as f1, open(second, "w", newline="", encoding="utf-8") as f2:
        w1, w2 = csv.writer(f1), csv.writer(f2)
        w1.writerow(HEADER)
        w2.writerow(HEADER)
        for i in range(1, rows + 1):
            row = make_row(rng, i, base)
            w1.writerow(row)
            roll = rng.random()
            if roll < 0.005:
                continue  # removed
            if roll < 0.015:
                row = [*row]
                row[5] = f"{float(row[5]) + 1:.2f}"
                row[9] = "changed"
            w2.writerow(row)
        for i in range(rows + 1, rows + 1 + rows // 200):
            w2.writerow(make_row(rng, i, base))
    return first, second


WRAPPER = r"""
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
sys.stderr.write("\n@@stats " + json.dumps([wall, ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime]) + "\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measure_all(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run `cmd` under a fork/wait4 wrapper: the child's own wall time (exec to exit), peak RSS in MiB, CPU
    time (user + sys, of the child and the processes it waited for) and its stdout."""
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    wall, rss, cpu = json.loads(proc.stderr.rsplit("@@stats ", 1)[1])
    return wall, rss, cpu, proc.stdout


def measure(cmd: list[str]) -> tuple[float, float, str]:
    """`measure_all` without the CPU time: wall time, peak RSS in MiB, stdout."""
    wall, rss, _cpu, out = measure_all(cmd)
    return wall, rss, out


def syncdash_cmd(config: Path) -> list[str]:
    exe = Path(sys.executable).parent / "syncdash"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "syncdash"]
    return [*base, "--config", str(config), "run", "people", "--json"]


def one_round(work: Path, first: Path, second: Path) -> dict[str, tuple[float, float]]:
    """raw, init, resync, unchanged once each, on fresh databases; checks counts and writes."""
    for p in work.glob("*.db*"):
        p.unlink()
    res: dict[str, tuple[float, float]] = {}
    raw_db = work / "raw.db"
    wall, rss, _ = measure([sys.executable, "-c", RAW_BASELINE, str(first), str(raw_db)])
    res["raw"] = (wall, rss)

    data = work / "people.csv"
    db = work / "syncdash.db"
    config = work / "bench.yaml"
    config.write_text(CONFIG.format(db=db, csv=data))
    shutil.copyfile(first, data)
    wall, rss, out = measure(syncdash_cmd(config))
    run = json.loads(out)[0]
    assert run["status"] == "succeeded" and run["counts"]["inserted"] > 0, run
    res["init"] = (wall, rss)

    shutil.copyfile(second, data)
    wall, rss, out = measure(syncdash_cmd(config))
    run = json.loads(out)[0]
    c = run["counts"]
    assert run["status"] == "succeeded" and c["inserted"] and c["updated"] and c["deleted"], run
    res["resync"] = (wall, rss)
    res["resync_counts"] = (c["inserted"], c["updated"], c["deleted"], c["unchanged"])  # type: ignore[assignment]

    wall, rss, out = measure(syncdash_cmd(config))
    run = json.loads(out)[0]
    c = run["counts"]
    con = sqlite3.connect(db)
    written = con.execute("SELECT count(*) FROM people WHERE _run_id = ?", (run["id"],)).fetchone()[0]
    con.close()
    assert c["inserted"] == c["updated"] == c["deleted"] == 0 and written == 0, (run, written)
    res["unchanged"] = (wall, rss)
    recognised = any("not read" in w for w in run["warnings"])
    res["unchanged_written"] = (written, c["unchanged"], recognised)  # type: ignore[assignment]

    # the same file read anyway (--full): what an unchanged re-run costs when the file cannot be skipped
    wall, rss, out = measure([*syncdash_cmd(config), "--full"])
    run = json.loads(out)[0]
    c = run["counts"]
    assert c["inserted"] == c["updated"] == c["deleted"] == 0 and c["unchanged"] == res["unchanged_written"][1], run
    res["reread"] = (wall, rss)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000, help="row count for the RSS-flatness check")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", default=str(Path(__file__).parent / ".data"), help="where generated CSVs are kept")
    args = ap.parse_args()

    data_dir = Path(args.data)
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    t0 = time.perf_counter()
    first, second = generate(data_dir, args.rows)
    small_first, small_second = generate(data_dir, args.small)
    print(f"data: {first} ({first.stat().st_size / 2**20:.0f} MiB), generated/reused in "
          f"{time.perf_counter() - t0:.1f}s")

    rounds = []
    with tempfile.TemporaryDirectory(prefix="syncdash-bench-") as tmp:
        work = Path(tmp)
        for i in range(args.repeat):
            r = one_round(work, first, second)
            rounds.append(r)
            print(f"round {i + 1}: " + "  ".join(f"{k} {r[k][0]:.2f}s/{r[k][1]:.0f}MiB"
                                                 for k in ("raw", "init", "resync", "unchanged", "reread")),
                  flush=True)
        small = one_round(work, small_first, small_second)

    def med(key: str, idx: int) -> float:
        return statistics.median(r[key][idx] for r in rounds)

    raw = med("raw", 0)
    ins, upd, dele, same = rounds[-1]["resync_counts"]  # type: ignore[misc]
    written, unchanged, recognised = rounds[-1]["unchanged_written"]  # type: ignore[misc]
    print()
    print(f"{args.rows:,} rows, median of {args.repeat}; baseline = raw csv.reader + sqlite3 executemany")
    print(f"{'step':<10} {'wall s':>8} {'x raw':>7} {'peak MiB':>9} {'target':>10}  verdict")
    ok = True
    for key, target in (("raw", None), ("init", 1.15), ("resync", 1.15), ("unchanged", 0.6), ("reread", None)):
        wall, rss = med(key, 0), med(key, 1)
        ratio = wall / raw
        verdict = ""
        if target is not None:
            good = ratio <= target and rss <= 150
            ok &= good
            verdict = "ok" if good else "MISSED"
        print(f"{key:<10} {wall:>8.2f} {ratio:>7.2f} {rss:>9.0f} {('<= ' + str(target) + 'x') if target else '':>10}"
              f"  {verdict}")
    print(f"resync counts: +{ins} ~{upd} -{dele} ={same}")
    print(f"unchanged re-run: rows written {written} (target 0), unchanged {unchanged}, "
          f"{'recognised unchanged, not read' if recognised else 'read'}; reread = the same run with --full")
    big_rss = max(med(k, 1) for k in ("init", "resync", "unchanged", "reread"))
    small_rss = max(small[k][1] for k in ("init", "resync", "unchanged", "reread"))
    growth = big_rss / small_rss
    flat = big_rss <= 150 and growth <= 1.25
    ok &= flat and written == 0
    print(f"peak RSS: {args.small:,} rows {small_rss:.0f} MiB, {args.rows:,} rows {big_rss:.0f} MiB "
          f"(x{growth:.2f}; flat = <= 1.25x) {'ok' if flat else 'MISSED'}")
    print("all targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
