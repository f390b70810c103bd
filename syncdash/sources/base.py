"""The one protocol every source kind implements: fetch batches, report totals, give a checkpoint.

The engine owns mapping, change detection, writes, errors and progress; an adapter only knows how
to read its kind of input and where it is in it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from syncdash.config.models import SourceConfig
from syncdash.core.mapping import Mapper


@dataclass
class RecordProblem:
    """A record the adapter could not even hand over (ragged row, undecodable bytes)."""

    message: str
    error_type: str
    line: int | None = None
    file: str | None = None
    column: str | None = None
    payload: Any = None
    key: tuple[Any, ...] | None = None
    retryable: bool = True


@dataclass
class Batch:
    records: list[Any]
    mapper: Mapper
    lines: Sequence[int] = field(default_factory=list)  # location of each record (CSV line numbers)
    file: str | None = None
    problems: list[RecordProblem] = field(default_factory=list)
    checkpoint: dict[str, Any] = field(default_factory=dict)  # position after this batch
    done: int = 0  # progress units consumed so far (bytes for CSV)
    total: int | None = None
    skipped: int = 0
    detail: str | None = None  # "file.csv line 12000", shown by progress views

    def item(self, i: int) -> str:
        if self.file and self.lines:
            return f"{self.file}:{self.lines[i]}"
        return f"record {i}"


@dataclass
class RunContext:
    """What the engine lends an adapter for one run (adapters with a `bind(ctx)` method get it)."""

    store: Any = None  # the Store: shared state such as circuit breakers
    cancel: threading.Event | None = None
    full: bool = False  # --full: ignore incremental cursors
    dry_run: bool = False
    limit_pages: int | None = None  # --limit-pages: stop each stream after this many pages
    backfill_from: str | None = None  # --backfill-from: send this instead of the stored cursor
    cursors: dict[str, Any] = field(default_factory=dict)  # stored incremental cursor per stream
    redact: Callable[[str], str] = lambda s: s
    add_secret: Callable[[str], None] = lambda s: None  # a token obtained at run time (OAuth2)
    # for_each: (table, columns, key, scope) -> the earlier stream's live rows (scope: {column: value} filter)
    parent_rows: Callable[..., list[dict[str, Any]]] | None = None


class CheckpointInvalid(Exception):
    """The checkpoint no longer matches the input (the file changed): restart from the beginning."""


class Source(Protocol):
    config: SourceConfig
    unit: str  # progress unit of the read phase: bytes | pages | rows

    def describe(self) -> list[str]:
        """Lines for `syncdash validate`: what this source would read."""
        ...

    def total(self) -> int | None:
        """Progress total in `unit`, if knowable before reading."""
        ...

    def batches(self, start: dict[str, Any] | None, stop: dict[str, Any] | None = None,
                want: Callable[[str | None, int | None], bool] | None = None) -> Iterator[Batch]:
        """Batches after checkpoint `start`, up to checkpoint `stop` (for replay), optionally only
        the records at locations `want` accepts (for retry)."""
        ...
