"""Daemon figures: idle CPU, queue claim latency and runs per minute for small sources (SQLite store).

    python bench/daemon_load.py [--idle 60] [--runs 60] [--workers 3] [--sources 10]

Idle: a daemon with schedules far in the future, its CPU time (utime+stime from /proc) over --idle seconds.
Claim latency: runs queued with `syncdash run --queue`-equivalent inserts while the daemon waits; latency is
started_at - queued_at per run (the daemon polls once a second when idle, so the baseline is ~0.5 s).
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
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from syncdash.core import queue
from syncdash.core.store import Store

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def write_project(root: Path, sources: int) -> Path:
    (root / "data").mkdir(parents=True)
    lines = ["sources:"]
    for i in range(sources):
        (root / "data" / f"s{i}.csv").write_text("id,name\n" + "".join(f"{j},n{j}\n" for j in range(200)))
        lines += [f"  - name: s{i}", "    kind: csv", f"    path: data/s{i}.csv", f"    table: t{i}",
                  "    primary_key: [id]", "    schedule: \"0 0 1 1 *\"", "    fields: {id: {type: int}, name: name}"]
    cfg = root / "syncdash.yaml"
    cfg.write_text(f"database: sqlite:///{root / 'store.db'}\n" + "\n".join(lines) + "\n")
    return cfg


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--sources", type=int, default=10)
    args = ap.parse_args()
    exe = [sys.executable, "-m", "syncdash"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = write_project(root, args.sources)
        store = Store(f"sqlite:///{root / 'store.db'}")
        env = {**os.environ, "SYNCDASH_CONFIG": str(cfg)}
        daemon = subprocess.Popen([*exe, "daemon", "--workers", str(args.workers)], env=env,
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(3)  # start-up (imports, first maintenance) is not idle time
            c0, t0 = cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(args.idle)
            c1, t1 = cpu_seconds(daemon.pid), time.monotonic()
            idle_pct = 100 * (c1 - c0) / (t1 - t0)

            # claim latency: one run at a time, queued while the daemon idles
            lat = []
            for i in range(10):
                rid = queue.enqueue(store, f"s{i % args.sources}", trigger="cli", kind="csv")
                while (run := store.get_run(rid or 0)) is None or run.started_at is None:
                    time.sleep(0.01)
                lat.append((run.started_at - run.queued_at).total_seconds())
                while store.get_run(rid or 0).finished_at is None:  # type: ignore[union-attr]
                    time.sleep(0.01)
                time.sleep(0.3)

            # throughput: everything queued at once
            start = datetime.utcnow()
            ids = [queue.enqueue(store, f"s{i % args.sources}", trigger="cli", kind="csv") for i in range(args.runs)]
            t_start = time.monotonic()
            while True:
                done = [store.get_run(i or 0) for i in ids]
                if all(r is not None and r.finished_at is not None for r in done):
                    break
                time.sleep(0.05)
            elapsed = time.monotonic() - t_start
            ok = sum(1 for r in done if r is not None and r.status == "succeeded")
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(60)
    print(f"daemon on SQLite, {args.sources} sources, {args.workers} worker(s); started {start:%H:%M:%S}")
    print(f"idle CPU over {args.idle:.0f} s: {idle_pct:.2f}% of one core ({c1 - c0:.2f} s)")
    print(f"claim latency (queued -> started, idle daemon, 10 runs): median {statistics.median(lat) * 1000:.0f} ms, "
          f"max {max(lat) * 1000:.0f} ms (idle workers look at the queue once a second)")
    print(f"throughput: {args.runs} runs of 200 rows in {elapsed:.1f} s = {args.runs / elapsed * 60:.0f} runs/minute "
          f"({ok} succeeded)")
    return 0 if ok == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
