"""CLI start-up benchmark: whole `syncdash` processes against `python -c pass`, measured in the same run.

Builds a project with a 1-row CSV source whose store holds 10,000 finished runs (and an item error per
run), then times, interleaved so machine noise hits every command alike (median of --repeat rounds):

  python -c pass            the interpreter's own start: the floor no command can go under
  status / runs / errors / show 1    the read-only commands (target: under 0.3 s wall)
  run                        `syncdash run` of the 1-row CSV (target: under 0.4 s wall)

Each line prints the median wall time, the difference to `python -c pass`, the target, and the median CPU
time (user + system) of the process: on a loaded machine wall time waits for a core, CPU time much less so.
Nothing here is a test: timings are noisy on a shared machine, so read the difference, and run it several
times.

    python bench/cli_start.py [--repeat 7] [--runs 10000] [--keep]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """\
database: sqlite:///{db}
sources:
  - name: people
    kind: csv
    path: {csv}
    table: people
    primary_key: [id]
    fields:
      id: {{from: id, type: int}}
      name: name
"""

# (label, argv after `syncdash`, target seconds or None for the floor)
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("status", ["status"], 0.3),
    ("runs", ["runs"], 0.3),
    ("errors", ["errors"], 0.3),
    ("show 1", ["show", "1"], 0.3),
    ("run (1-row CSV)", ["run", "people"], 0.4),
]


def syncdash_argv() -> list[str]:
    exe = Path(sys.executable).parent / "syncdash"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "syncdash"]


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv: list[str], cwd: Path, cpu: list[float] | None = None) -> float:
    c0, t0 = cpu_children(), time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(cpu_children() - c0)
    return wall


def build_project(root: Path, runs: int) -> Path:
    """A config, a 1-row CSV, and a store grown to `runs` finished runs by copying the first one in SQL."""
    (root / "people.csv").write_text("id,name\n1,Ada\n", encoding="utf-8")
    cfg = root / "syncdash.yaml"
    cfg.write_text(CONFIG.format(db=root / "store.db", csv=root / "people.csv"), encoding="utf-8")
    subprocess.run([*syncdash_argv(), "--config", str(cfg), "run", "people"], cwd=root, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    con = sqlite3.connect(root / "store.db")
    cols = [r[1] for r in con.execute("PRAGMA table_info(syncdash_runs)") if r[1] != "id"]
    names = ", ".join(cols)
    with con:
        while (n := con.execute("SELECT count(*) FROM syncdash_runs").fetchone()[0]) < runs:
            con.execute(f"INSERT INTO syncdash_runs ({names}) SELECT {names} FROM syncdash_runs "
                        f"ORDER BY id LIMIT ?", (runs - n,))
        # one item error per run, so `errors` and `show` page through a realistic table
        con.execute("INSERT INTO syncdash_item_errors (run_id, source, phase, item, error_type, message, retryable, "
                    "attempts, occurrences, payload_truncated, created_at) "
                    "SELECT id, source, 'load', 'people.csv line 2', 'ConversionError', 'not an int', 1, 1, 1, 0, "
                    "started_at FROM syncdash_runs")
    con.close()
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--keep", action="store_true", help="keep the temporary project")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="syncdash-cli-start-"))
    try:
        cfg = build_project(root, a.runs)
        base = syncdash_argv()
        floor_argv = [sys.executable, "-c", "pass"]
        times: dict[str, list[float]] = {"python -c pass": []} | {label: [] for label, _, _ in COMMANDS}
        cpu: dict[str, list[float]] = {label: [] for label in times}
        for _, argv, _ in COMMANDS:  # one warm-up each: the page cache, not the first call, is measured
            timed([*base, "--config", str(cfg), *argv], root)
        for _ in range(a.repeat):
            times["python -c pass"].append(timed(floor_argv, root, cpu["python -c pass"]))
            for label, argv, _ in COMMANDS:
                times[label].append(timed([*base, "--config", str(cfg), *argv], root, cpu[label]))
        floor = statistics.median(times["python -c pass"])
        print(f"CLI start, {a.runs} runs in the store, medians of {a.repeat} (wall seconds)")
        print(f"{'command':18} {'median':>8} {'- pass':>8} {'target':>8} {'cpu':>7}  verdict")
        print(f"{'python -c pass':18} {floor:8.3f} {0.0:8.3f} {'-':>8} {statistics.median(cpu['python -c pass']):7.3f}")
        missed = 0
        for label, _, target in COMMANDS:
            med = statistics.median(times[label])
            ok = target is None or med < target
            missed += not ok
            print(f"{label:18} {med:8.3f} {med - floor:8.3f} {target or 0:8.2f} {statistics.median(cpu[label]):7.3f}  "
                  f"{'ok' if ok else 'MISSED'}")
        return 1 if missed else 0
    finally:
        if a.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
