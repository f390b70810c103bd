"""What the console shows, read from the store in one go per refresh (in a worker thread, never on the
event loop). Every query is the read model's (`syncdash.store.queries`), the same the CLI and the HTTP API
use; this module only bundles them per screen and counts the rows of target tables (which the store layer
cannot reach). No textual import here, so it stays testable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncdash.config.models import Config, SourceConfig
from syncdash.store import queries, queue
from syncdash.store.db import Store
from syncdash.store.health import live_daemons, source_host
from syncdash.store.models import Breaker, Daemon, ItemError, Resolution, Run, SourceState, utcnow
from syncdash.store.queries import ActiveRun, ErrorFilter, PhaseRow, RunDetail, RunFilter

# the widgets' names for the read model's rows
PhaseView = PhaseRow
RunView = ActiveRun


@dataclass
class SourceView:
    config: SourceConfig
    state: SourceState | None
    last_run: Run | None
    health: str
    schedule: str | None
    schedule_override: bool
    next_fire: datetime | None
    breaker: Breaker | None
    rows: int | None = None  # live rows in its table(s), counted every few seconds


@dataclass
class Snapshot:
    taken_at: datetime
    sources: list[SourceView]
    active: list[ActiveRun]
    errors: list[ItemError]
    queue_depth: int
    daemons: list[Daemon]
    unresolved: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


_row_counts: dict[tuple[str, str], tuple[datetime, int | None]] = {}
ROW_COUNT_EVERY = 10.0  # seconds: counting a million-row table takes tens of milliseconds


def table_rows(store: Store, config: Config, src: SourceConfig, now: datetime) -> int | None:
    """Live rows in the source's tables (cached; None before the first sync created them)."""
    key = (store.url, src.name)
    cached = _row_counts.get(key)
    if cached is not None and (now - cached[0]).total_seconds() < ROW_COUNT_EVERY:
        return cached[1]
    from syncdash.targets import open as target_db

    total: int | None = None
    try:
        db = target_db.connect(store, target_db.target_url(config, src))
    except Exception:  # a target database that is down: no count, the dashboard still shows the rest
        _row_counts[key] = (now, None)
        return None
    try:
        for table, _ in src.target_tables():
            try:
                n = db.scalar(f"SELECT COUNT(*) FROM {target_db.q(table)} WHERE _deleted_at IS NULL")
            except Exception:
                continue
            total = (total or 0) + int(n or 0)
    finally:
        db.close()
    _row_counts[key] = (now, total)
    return total


def snapshot(store: Store, config: Config, now: datetime | None = None) -> Snapshot:
    """Everything the dashboard shows, in a handful of queries."""
    now = now or utcnow()
    breakers = {b.host: b for b in store.breakers()}
    views = []
    for st in queries.source_statuses(store, config, now):
        host = source_host(st.config)
        views.append(SourceView(st.config, st.state, st.last_run, st.health, st.schedule, st.schedule_override,
                                st.next_fire, breakers.get(host) if host else None,
                                table_rows(store, config, st.config, now)))
    recent = queries.errors_page(store, ErrorFilter(resolved=False), limit=6).items
    return Snapshot(taken_at=now, sources=views, active=queries.active_runs(store), errors=recent,
                    queue_depth=queue.depth(store, now), daemons=live_daemons(store, now),
                    unresolved=queries.unresolved_count(store))


def runs_page(store: Store, *, offset: int = 0, limit: int = 50, source: str | None = None,
              status: str | None = None, trigger: str | None = None, text: str | None = None) -> tuple[list[Run], int]:
    """One page of the history, newest first, and the number of matching runs (never loads them all)."""
    page = queries.runs_page(store, RunFilter(source=source, status=status, trigger=trigger, text=text),
                             offset=offset, limit=limit, with_total=True)
    return page.items, page.total or 0


def run_detail(store: Store, run_id: int) -> RunDetail | None:
    """The run detail screen's model: exactly what `show RUN --json` and GET /v1/runs/{id} present (the same
    function with the same limits; the screen says when there are more errors or changes than it lists)."""
    return queries.run_detail(store, run_id)


def error_groups(store: Store, limit: int = 500) -> list[ItemError]:
    """Unresolved item errors, grouped by source then type (the order the errors screen shows them in)."""
    return queries.unresolved_errors(store, limit)


def resolve_errors(store: Store, ids: list[int], how: str = Resolution.MANUAL) -> int:
    from sqlmodel import col, select

    now = utcnow()
    with store.tx() as s:
        n = 0
        for e in s.exec(select(ItemError).where(col(ItemError.id).in_(ids), col(ItemError.resolved_at).is_(None))):
            e.resolved_at, e.resolution = now, how
            s.add(e)
            n += 1
        return n


def recent_runs_of(store: Store, source: str, n: int = 30) -> list[Run]:
    """The source's newest runs that have started (dry runs too: this is its history, not its health)."""
    return queries.runs_page(store, RunFilter(source=source, started_only=True), limit=n).items


@dataclass(frozen=True)
class BrowsableTable:
    source: str
    table: str
    key: list[str]


def browsable_tables(config: Config) -> list[BrowsableTable]:
    """Every target table a source writes and can be paged by key (push sources write none)."""
    out = []
    for src in config.source_list:
        key = list(getattr(src, "primary_key", None) or [])
        if not key:
            continue
        for table, _ in src.target_tables():
            out.append(BrowsableTable(src.name, table, key))
    return out


def browse_page(store: Store, config: Config, which: BrowsableTable, **kw: Any) -> Any:
    """One page of the table from its target database (targets.browse: keyset paging, sort, filters)."""
    from syncdash.targets import browse
    from syncdash.targets import open as target_db

    src = config.source(which.source)
    db = target_db.connect(store, target_db.target_url(config, src))
    try:
        return browse.page(db, which.table, which.key, **kw)
    finally:
        db.close()


def row_history(store: Store, source: str, key: list[Any]) -> list[queries.RowEvent]:
    """The runs that inserted, updated or deleted one row (the row screen's list)."""
    return queries.row_history(store, source, key)
