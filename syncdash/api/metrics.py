"""GET /metrics: the Prometheus text format (0.0.4), written by hand from a few aggregate queries.

Every number comes from the store at scrape time, so any daemon on the same database reports the same totals
and a restart loses nothing. A dozen metric families do not justify prometheus-client's registry and its
process-global state; the tests parse this output with prometheus-client's own parser.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from syncdash.store import queue
from syncdash.store.db import Store
from syncdash.store.models import FINAL_STATUSES
from syncdash.store.shapes import COUNTS

BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
BREAKER_STATES = ("closed", "open", "half_open")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _esc(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, Any]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items()) + "}"


def _num(v: float | int) -> str:
    return repr(float(v)) if isinstance(v, float) else str(int(v))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, Any], float | int]], suffix: str = "") -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        self.lines += [f"{name}{suffix}{_labels(labels)} {_num(v)}" for labels, v in samples]

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _epoch(ts: Any) -> float:
    dt = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
    return dt.replace(tzinfo=UTC).timestamp()


def render(store: Store, *, uptime_s: float | None = None) -> str:
    """The whole exposition; a handful of GROUP BY queries, however long the history."""
    out = Exposition()
    duration = ("(julianday(finished_at) - julianday(started_at)) * 86400.0" if store.is_sqlite
                else "EXTRACT(EPOCH FROM (finished_at - started_at))")
    finished = ", ".join(f"'{s}'" for s in (*FINAL_STATUSES, "interrupted"))
    buckets = ", ".join(f"SUM(CASE WHEN {duration} <= {b} THEN 1 ELSE 0 END)" for b in BUCKETS)
    with store.engine.begin() as c:
        runs = c.exec_driver_sql("SELECT source, status, COUNT(*) FROM syncdash_runs WHERE status IN "
                                 f"({finished}) GROUP BY source, status ORDER BY source, status").fetchall()
        rows = c.exec_driver_sql(f"SELECT source, {', '.join(f'SUM({k})' for k in COUNTS)} FROM syncdash_runs "
                                 "WHERE NOT dry_run GROUP BY source ORDER BY source").fetchall()
        hist = c.exec_driver_sql(
            f"SELECT source, COUNT(*), SUM({duration}), {buckets} FROM syncdash_runs WHERE started_at IS NOT NULL "
            f"AND finished_at IS NOT NULL AND status IN ({finished}) GROUP BY source ORDER BY source").fetchall()
        errors = c.exec_driver_sql(
            "SELECT source, error_type, COUNT(*), SUM(CASE WHEN resolved_at IS NULL THEN 1 ELSE 0 END) "
            "FROM syncdash_item_errors GROUP BY source, error_type ORDER BY source, error_type").fetchall()
        breakers = c.exec_driver_sql("SELECT host, state, failures FROM syncdash_breakers ORDER BY host").fetchall()
        success = c.exec_driver_sql("SELECT source, last_success_at FROM syncdash_source_state WHERE "
                                    "last_success_at IS NOT NULL ORDER BY source").fetchall()
        running = c.exec_driver_sql("SELECT COUNT(*) FROM syncdash_runs WHERE status IN ('claimed', 'running')"
                                    ).scalar()
    out.family("syncdash_runs_total", "counter", "Finished runs by source and status",
               (({"source": s, "status": st}, n) for s, st, n in runs))
    out.family("syncdash_rows_total", "counter", "Rows by source and change kind (real runs, not dry runs)",
               (({"source": r[0], "change": k}, int(r[i + 1] or 0)) for r in rows for i, k in enumerate(COUNTS)))
    out.lines += ["# HELP syncdash_run_duration_seconds Run duration, start to finish",
                  "# TYPE syncdash_run_duration_seconds histogram"]
    for source, count, total, *cum in hist:
        for b, n in zip((*BUCKETS, "+Inf"), (*cum, count), strict=True):
            le = b if isinstance(b, str) else repr(b)
            out.lines.append(f"syncdash_run_duration_seconds_bucket{_labels({'source': source, 'le': le})} "
                             f"{int(n or 0)}")
        out.lines.append(f"syncdash_run_duration_seconds_sum{_labels({'source': source})} {float(total or 0)!r}")
        out.lines.append(f"syncdash_run_duration_seconds_count{_labels({'source': source})} {int(count)}")
    out.family("syncdash_item_errors_total", "counter", "Item errors by source and type",
               (({"source": s, "type": t}, n) for s, t, n, _u in errors))
    out.family("syncdash_item_errors_unresolved", "gauge", "Unresolved item errors by source and type",
               (({"source": s, "type": t}, int(u or 0)) for s, t, _n, u in errors))
    out.family("syncdash_breaker_state", "gauge", "Circuit breaker per host: 1 for its current state",
               (({"host": h, "state": st}, int(state == st)) for h, state, _f in breakers for st in BREAKER_STATES))
    out.family("syncdash_breaker_failures", "gauge", "Consecutive failed requests per host",
               (({"host": h}, f) for h, _s, f in breakers))
    out.family("syncdash_queue_depth", "gauge", "Queued runs that are due now", [({}, queue.depth(store))])
    out.family("syncdash_running_runs", "gauge", "Runs claimed or running now", [({}, int(running or 0))])
    out.family("syncdash_last_success_timestamp_seconds", "gauge", "When each source last succeeded (Unix time)",
               (({"source": s}, _epoch(ts)) for s, ts in success))
    if uptime_s is not None:
        out.family("syncdash_daemon_uptime_seconds", "gauge", "Seconds since this daemon started",
                   [({}, round(uptime_s, 3))])
    out.family("syncdash_scrape_timestamp_seconds", "gauge", "When this exposition was made",
               [({}, round(time.time(), 3))])
    return out.text()
