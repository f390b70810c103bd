"""What a caller hands the engine (RunOptions) and what it gets back (Progress while running, RunResult after).

These are the engine's public data: the CLI, the console, the API and the daemon build RunOptions, watch
Progress and read RunResult, and a queued run keeps the part of its options another process needs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syncdash.store.rows import RunStatus

if TYPE_CHECKING:
    from syncdash.store.models import Run

PROGRESS_INTERVAL = 0.25  # seconds between phase-progress writes


@dataclass
class RunOptions:
    trigger: str = "cli"
    full: bool = False
    dry_run: bool = False
    retry_of: int | None = None
    retry_errors: list[int] | None = None  # with retry_of: only these item errors (the console's selection)
    cancel: threading.Event | None = None
    on_progress: Callable[[Progress], None] | None = None
    sample_changes: int = 20  # changes kept in memory for a dry run's plan
    read_ahead: bool = True  # parse and map in a child process while writing (see readahead.py)
    limit_pages: int | None = None  # REST: stop each stream after this many pages (with dry_run: a preview)
    run_id: int | None = None  # a queued run claimed by the caller (queue.claim): executed under that id
    shutdown: threading.Event | None = None  # the daemon is stopping: end as `interrupted`, resume next start
    backfill_from: str | None = None  # incremental: send this instead of the stored cursor
    flow_run_id: int | None = None  # a step of this flow run (the flow's run detail lists its steps' runs)


QUEUED_OPTIONS = ("full", "dry_run", "limit_pages", "backfill_from", "retry_of", "retry_errors")


def queued_options(opts: RunOptions) -> dict[str, Any]:
    """What a queued run must remember of its options (the rest belongs to the process executing it)."""
    return {k: getattr(opts, k) for k in QUEUED_OPTIONS if getattr(opts, k) not in (None, False)}


def options_from_queue(run: Run, **live: Any) -> RunOptions:
    """The options of a queued run, plus what only the executing process has (cancel events, callbacks)."""
    data = json.loads(run.options) if run.options else {}
    return RunOptions(trigger=run.trigger, run_id=run.id, **{k: v for k, v in data.items() if k in QUEUED_OPTIONS},
                      **live)


@dataclass
class Progress:
    """What a live view of one run needs; the same numbers are in the store for other processes."""

    run_id: int
    source: str
    phase: str
    done: int
    total: int | None
    unit: str
    counts: dict[str, int]
    detail: str | None = None
    resumed: bool = False


@dataclass
class RunResult:
    run_id: int
    source: str
    status: RunStatus
    counts: dict[str, int]
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False
    error_type: str | None = None
    retryable: bool = False  # a failure that may pass by itself (network, 5xx, breaker, a locked database)
