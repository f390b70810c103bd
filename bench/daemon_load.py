"""Daemon figures: idle CPU, queue claim latency and runs per minute for small sources, on a SQLite store
(the baseline, same run) and on PostgreSQL (one daemon with --workers, and three daemons sharing the queue).

    python bench/daemon_load.py [--idle 60] [--runs 60] [--workers 3] [--sources 10] [--no-postgres]

Idle: a daemon with schedules far in the future, its CPU time (utime+stime from /proc) over --idle seconds.
Claim latency: runs queued with `syncdash run --queue`-equivalent inserts while the daemon waits; latency is
started_at - queued_at per run (idle workers are woken: data_version watch on SQLite, LISTEN/NOTIFY on
PostgreSQL; before wake-ups they polled once a second and waited ~650 ms).
Throughput: --runs tiny CSV runs over --sources sources, all queued at once, --workers workers.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from syncdash.store import queue
from syncdash.store.db import Store

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def write_project(root: Path, sources: int, url: str) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    lines = ["sources:"]
    for i in range(sources):
        (root / "data" / f"s{i}.csv").write_text("id,name\n" + "".join(f"{j},n{j}\n" for j in range(200)))
        lines += [f"  - name: s{i}", "    kind: csv", f"    path: data/s{i}.csv", f"    table: t{i}",
                  "    primary_key: [id]", "    schedule: \"0 0 1 1 *\"", "    fields: {id: {type: int}, name: name}"]
    cfg = root / f"syncdash-{url.split(':')[0]}.yaml"
    cfg.write_text(f"database: {url}\n" + "\n".join(lines) + "\n")
    return cfg


class Scratch:
    """A scratch PostgreSQL database on 127.0.0.1, dropped afterwards."""

    def __init__(self) -> None:
        import psycopg

        self.name = f"sd_bench_{uuid.uuid4().hex[:8]}"
        self._admin = "postgresql://postgres@127.0.0.1:5432/postgres"
        with psycopg.connect(self._admin, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {self.name}")
        self.url = f"postgresql://postgres@127.0.0.1:5432/{self.name}"

    def drop(self) -> None:
        import psycopg

        from syncdash.targets import open as target_db

        target_db.dispose()
        with psycopg.connect(self._admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def measure(root: Path, url: str, args: argparse.Namespace, daemons: int, workers: int) -> dict[str, float]:
    exe = [sys.executable, "-m", "syncdash"]
    cfg = write_project(root, args.sources, url)
    store = Store(url)
    env = {**os.environ, "SYNCDASH_CONFIG": str(cfg)}
    procs = [subprocess.Popen([*exe, "daemon", "--workers", str(workers)], env=env, stderr=subprocess.DEVNULL)
             for _ in range(daemons)]
    out: dict[str, float] = {}
    try:
        time.sleep(3)  # start-up (imports, first maintenance) is not idle time
        if args.idle:
            c0, t0 = sum(cpu_seconds(p.pid) for p in procs), time.monotonic()
            time.sleep(args.idle)
            c1, t1 = sum(cpu_seconds(p.pid) for p in procs), time.monotonic()
            out["idle_pct"] = 100 * (c1 - c0) / (t1 - t0) / daemons
        # claim latency: one run at a time, queued while the daemon idles
        lat = []
        for i in range(20):
            rid = queue.enqueue(store, f"s{i % args.sources}", trigger="cli", kind="csv")
            while (run := store.get_run(rid or 0)) is None or run.started_at is None:
                time.sleep(0.01)
            lat.append((run.started_at - run.queued_at).total_seconds())
            while store.get_run(rid or 0).finished_at is None:  # type: ignore[union-attr]
                time.sleep(0.01)
            time.sleep(0.3)
        out["lat_median_ms"] = statistics.median(lat) * 1000
        out["lat_max_ms"] = max(lat) * 1000
        # throughput: everything queued at once
        ids = [queue.enqueue(store, f"s{i % args.sources}", trigger="cli", kind="csv") for i in range(args.runs)]
        t_start = time.monotonic()
        while True:
            done = [store.get_run(i or 0) for i in ids]
            if all(r is not None and r.finished_at is not None for r in done):
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t_start
        out["runs_per_min"] = args.runs / elapsed * 60
        out["ok"] = sum(1 for r in done if r is not None and r.status == "succeeded")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        store.engine.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--sources", type=int, default=10)
    ap.add_argument("--no-postgres", action="store_true", help="SQLite only (no server at 127.0.0.1:5432)")
    args = ap.parse_args()
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows.append((f"SQLite, 1 daemon x {args.workers} workers (baseline)",
                     measure(root / "sqlite", f"sqlite:///{root / 'store.db'}", args, 1, args.workers)))
        if not args.no_postgres:
            for daemons, workers in ((1, args.workers), (3, 1)):
                pg = Scratch()
                try:
                    rows.append((f"PostgreSQL, {daemons} daemon(s) x {workers} worker(s)",
                                 measure(root / f"pg{daemons}", pg.url, args, daemons, workers)))
                finally:
                    pg.drop()
    print(f"{args.sources} sources, {args.runs} queued runs of 200 rows; idle over {args.idle:.0f} s "
          "(idle workers are woken by the store, not polling)")
    base = rows[0][1]["runs_per_min"]
    print(f"{'store':45} {'idle CPU':>9} {'claim p50':>10} {'claim max':>10} {'runs/min':>9} {'x SQLite':>9}")
    for name, r in rows:
        idle = f"{r['idle_pct']:.2f}%" if "idle_pct" in r else "-"
        print(f"{name:45} {idle:>9} {r['lat_median_ms']:>8.0f}ms {r['lat_max_ms']:>8.0f}ms "
              f"{r['runs_per_min']:>9.0f} {r['runs_per_min'] / base:>9.2f}")
    return 0 if all(r["ok"] == args.runs for _, r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
