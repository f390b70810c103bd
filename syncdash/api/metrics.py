"""GET /metrics: a prometheus_client custom collector over a few aggregate store queries.

Every number comes from the store at scrape time, so any daemon on the same database reports the same totals
and a restart loses nothing. The collector is registered on a private `CollectorRegistry(auto_describe=False)`
(never the process-global default one, which would also publish whatever else registered itself there) and
rendered by prometheus_client's own exposition code. Only the daemon's HTTP API imports this module, so the
CLI never pays for prometheus_client's import.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from syncdash.store import queue
from syncdash.store.db import Store
from syncdash.store.models import COUNTS, FINAL_STATUSES

BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)
BREAKER_STATES = ("closed", "open", "half_open")
# what generate_latest writes (prometheus_client's CONTENT_TYPE_LATEST may name a newer format)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _epoch(ts: Any) -> float:
    dt = ts if isinstance(ts, datetime) else datetime.fromisoformat(str(ts))
    return dt.replace(tzinfo=UTC).timestamp()


class StoreCollector(Collector):
    """Yields every syncdash metric family from a handful of GROUP BY queries, however long the history."""

    def __init__(self, store: Store, uptime: Callable[[], float | None] = lambda: None) -> None:
        self.store = store
        self.uptime = uptime

    def collect(self) -> Iterator[Metric]:
        store = self.store
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
                f"SELECT source, COUNT(*), SUM({duration}), {buckets} FROM syncdash_runs WHERE started_at IS NOT "
                f"NULL AND finished_at IS NOT NULL AND status IN ({finished}) GROUP BY source ORDER BY source"
            ).fetchall()
            errors = c.exec_driver_sql(
                "SELECT source, error_type, COUNT(*), SUM(CASE WHEN resolved_at IS NULL THEN 1 ELSE 0 END) "
                "FROM syncdash_item_errors GROUP BY source, error_type ORDER BY source, error_type").fetchall()
            breakers = c.exec_driver_sql("SELECT host, state, failures FROM syncdash_breakers ORDER BY host"
                                         ).fetchall()
            success = c.exec_driver_sql("SELECT source, last_success_at FROM syncdash_source_state WHERE "
                                        "last_success_at IS NOT NULL ORDER BY source").fetchall()
            running = c.exec_driver_sql("SELECT COUNT(*) FROM syncdash_runs WHERE status IN ('claimed', 'running')"
                                        ).scalar()

        fam = CounterMetricFamily("syncdash_runs_total", "Finished runs by source and status",
                                  labels=["source", "status"])
        for s, st, n in runs:
            fam.add_metric([s, st], n)
        yield fam
        fam = CounterMetricFamily("syncdash_rows_total", "Rows by source and change kind (real runs, not dry runs)",
                                  labels=["source", "change"])
        for r in rows:
            for i, k in enumerate(COUNTS):
                fam.add_metric([r[0], k], int(r[i + 1] or 0))
        yield fam
        histogram = HistogramMetricFamily("syncdash_run_duration_seconds", "Run duration, start to finish",
                                          labels=["source"])
        for source, count, total, *cum in hist:
            les = [repr(b) for b in BUCKETS] + ["+Inf"]
            histogram.add_metric([source], [(le, int(n or 0)) for le, n in zip(les, (*cum, count), strict=True)],
                                 float(total or 0))
        yield histogram
        fam = CounterMetricFamily("syncdash_item_errors_total", "Item errors by source and type",
                                  labels=["source", "type"])
        for s, t, n, _u in errors:
            fam.add_metric([s, t], n)
        yield fam
        gauge = GaugeMetricFamily("syncdash_item_errors_unresolved", "Unresolved item errors by source and type",
                                  labels=["source", "type"])
        for s, t, _n, u in errors:
            gauge.add_metric([s, t], int(u or 0))
        yield gauge
        gauge = GaugeMetricFamily("syncdash_breaker_state", "Circuit breaker per host: 1 for its current state",
                                  labels=["host", "state"])
        for h, state, _f in breakers:
            for st in BREAKER_STATES:
                gauge.add_metric([h, st], int(state == st))
        yield gauge
        gauge = GaugeMetricFamily("syncdash_breaker_failures", "Consecutive failed requests per host",
                                  labels=["host"])
        for h, _s, f in breakers:
            gauge.add_metric([h], f)
        yield gauge
        yield GaugeMetricFamily("syncdash_queue_depth", "Queued runs that are due now", value=queue.depth(store))
        yield GaugeMetricFamily("syncdash_running_runs", "Runs claimed or running now", value=int(running or 0))
        gauge = GaugeMetricFamily("syncdash_last_success_timestamp_seconds",
                                  "When each source last succeeded (Unix time)", labels=["source"])
        for s, ts in success:
            gauge.add_metric([s], _epoch(ts))
        yield gauge
        uptime_s = self.uptime()
        if uptime_s is not None:
            yield GaugeMetricFamily("syncdash_daemon_uptime_seconds", "Seconds since this daemon started",
                                    value=round(uptime_s, 3))
        yield GaugeMetricFamily("syncdash_scrape_timestamp_seconds", "When this exposition was made",
                                value=round(time.time(), 3))


def registry_for(store: Store, uptime: Callable[[], float | None] = lambda: None) -> CollectorRegistry:
    """A private registry holding only the store's collector (auto_describe off: collect() runs queries)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, uptime))
    return registry


def render(store: Store, *, uptime_s: float | None = None) -> str:
    """The whole exposition (text format 0.0.4)."""
    return generate_latest(registry_for(store, lambda: uptime_s)).decode()
