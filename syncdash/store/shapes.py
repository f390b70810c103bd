"""The stable JSON shapes of runs and item errors, shared by `--json` output and the HTTP API.

Plain functions on the model objects, no SQLAlchemy import: `syncdash validate` must stay cheap, and the
CLI and the API must never drift apart on what a run looks like.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncdash.store.models import ItemError, Run

COUNTS = ("inserted", "updated", "unchanged", "deleted", "failed", "skipped")


def iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="seconds") + "Z"


def run_json(run: Run) -> dict[str, Any]:
    """The stable --json shape of a run (documented in the README)."""
    return {
        "id": run.id, "source": run.source, "kind": run.kind, "trigger": run.trigger, "mode": run.mode,
        "dry_run": run.dry_run, "status": run.status, "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_s": None if run.started_at is None or run.finished_at is None
        else round((run.finished_at - run.started_at).total_seconds(), 3),
        "counts": {k: getattr(run, k) for k in COUNTS},
        "resumes": run.resumes, "parent_run_id": run.parent_run_id, "error": run.error,
        "error_type": run.error_type, "warnings": json.loads(run.warnings) if run.warnings else [],
        "http": json.loads(run.http) if run.http else None,
    }


def error_json(e: ItemError) -> dict[str, Any]:
    """The stable --json shape of an item error."""
    return {
        "id": e.id, "run_id": e.run_id, "source": e.source, "phase": e.phase, "item": e.item,
        "key": json.loads(e.item_key) if e.item_key else None, "file": e.file, "line": e.line,
        "column": e.column, "error_type": e.error_type, "message": e.message, "retryable": e.retryable,
        "attempts": e.attempts, "payload": json.loads(e.payload) if e.payload else None,
        "resolved_at": iso(e.resolved_at), "resolution": e.resolution,
    }
