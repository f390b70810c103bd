"""Times as people read them ("5m ago", "in 2h05m"), for the CLI and the console alike."""

from __future__ import annotations

from datetime import datetime


def age(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "-"
    secs = int((now - ts).total_seconds())
    if secs < 0:
        return until(ts, now)
    if secs < 60:
        return f"{secs}s ago"
    if secs < 3600:
        return f"{secs // 60}m ago"
    if secs < 86400:
        return f"{secs // 3600}h ago"
    return f"{secs // 86400}d ago"


def until(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "-"
    secs = int((ts - now).total_seconds())
    if secs < 60:
        return f"in {max(secs, 0)}s"
    if secs < 3600:
        return f"in {secs // 60}m"
    if secs < 86400:
        return f"in {secs // 3600}h{(secs % 3600) // 60:02d}m"
    return f"in {secs // 86400}d"


def unit_of(count: int | float | None, unit: str) -> str:
    """`unit` (a plural: rows, pages, bytes, records) as it reads after `count`: "1 page", "3 pages"; after a
    `done/total` pair it follows the total ("1/1 page", "1/9 pages")."""
    return unit[:-1] if count == 1 and unit.endswith("s") else unit
