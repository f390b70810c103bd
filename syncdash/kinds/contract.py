"""The contract every source kind implements: a Source (what the config names) made of Streams (what a run
reads batch by batch), with its Capabilities declared as data.

The engine owns mapping, change detection, writes, errors and progress; an adapter only knows how to read
its kind of input and where it is in it. Adding a kind: a package under kinds/ with a config model and a
Source subclass, and one `register_kind` line (or a `syncdash.kinds` entry point).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from syncdash.errors import CheckpointInvalid
from syncdash.kinds.mapping import Mapper


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


@dataclass(frozen=True)
class Capabilities:
    """What a kind can do, declared as data (as dlt declares destination capabilities): the engine reads
    these instead of probing adapters with hasattr/getattr."""

    execution: Literal["pull", "push", "flow"] = "pull"  # which executor runs it
    replayable: bool = True  # a resume may re-read batches up to the checkpoint (CSV); else seen keys are stored
    read_ahead: bool = True  # batches may be read in a forked child process (engine.readahead)
    incremental: bool = False  # streams have a cursor: final_cursor()/later_cursor() mean something
    retry_items: bool = True  # `retry RUN` can re-read exactly the failed items (batches(want=...))


@dataclass
class ReaderHooks:
    """How a stream that holds threads and HTTP state (REST) runs whole in the read-ahead child process.

    Such a stream is forked before its first batch (its fetch threads would not survive a fork), and what
    its child learns that the run's process needs comes back through the pipe, in order with the batches:
    `setup(send)` runs in the child first (send: any picklable message to the run's process); `finish()`
    runs in the child after the last batch or a failure and its result is sent too; `receive(message)`
    takes each message in the run's process (circuit-breaker saves, warnings, cursor, waits and requests).
    The child never touches the database: messages that need it are applied by `receive`.
    """

    mapper: Mapper
    setup: Callable[[Callable[[Any], None]], None]
    finish: Callable[[], Any]
    receive: Callable[[Any], None]


class Stream(ABC):
    """One stream of records with its own load phase: a CSV source is one, a REST source one per endpoint
    (and per tenant), a push one per tenant, a flow one per step."""

    config: Any
    unit: str = "rows"  # progress unit of the read phase: bytes | pages | rows
    phase: str = "load"  # the load phase's name
    scope: dict[str, Any] = {}
    warnings: list[str] = []
    truncated: str | None = None  # why the stream did not read everything (then nothing is deleted)

    @abstractmethod
    def total(self) -> int | None:
        """Progress total in `unit`, if knowable before reading."""

    def batches(self, start: dict[str, Any] | None, stop: dict[str, Any] | None = None,
                want: Callable[[str | None, int | None], bool] | None = None) -> Iterator[Batch]:
        """Batches after checkpoint `start`, up to checkpoint `stop` (for replay), optionally only
        the records at locations `want` accepts (for retry). Push and flow streams are driven by their
        executors instead and keep this default."""
        raise NotImplementedError(f"{type(self).__name__} has no batches of its own")

    def final_cursor(self) -> Any:
        """The incremental cursor to store once the stream finished (None: keep the stored one)."""
        return None

    def reader_hooks(self) -> ReaderHooks | None:
        """Hooks to read this whole stream in the read-ahead child (see ReaderHooks); None: it does not,
        and the engine reads it in this process unless the source's capabilities allow CSV-style read-ahead."""
        return None

    def later_cursor(self, old: Any, new: Any) -> Any:
        """Of two cursors, the one to keep (a resumed run must never move a cursor backwards)."""
        return new


class Source(ABC):
    """The adapter of one configured source: what `validate` prints and the streams a run reads."""

    capabilities: ClassVar[Capabilities] = Capabilities()
    config: Any
    unit: str = "rows"

    @abstractmethod
    def describe(self) -> list[str]:
        """Lines for `syncdash validate`: what this source would read."""

    def total(self) -> int | None:
        """Progress total of the whole source, if knowable before reading."""
        return None

    def streams(self) -> Sequence[Stream]:
        """The streams a run reads, in order. A single-stream source is its own stream."""
        assert isinstance(self, Stream), f"{type(self).__name__} must be a Stream or override streams()"
        return [self]

    def bind(self, ctx: RunContext) -> None:
        """Receive what the engine lends for one run (store, cancel event, cursors, redaction)."""
        return None

    def http_clients(self) -> list[Any]:
        """HTTP clients whose request counts and waits the run reports (REST, web)."""
        return []

    def close(self) -> None:
        """Release what the run held (HTTP clients, browsers)."""
        return None


__all__ = ["Batch", "Capabilities", "CheckpointInvalid", "ReaderHooks", "RecordProblem", "RunContext", "Source",
           "Stream"]
