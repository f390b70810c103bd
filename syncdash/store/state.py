"""A source's stored state as `syncdash state` and `/v1/sources/{name}/state` show and change it: the
incremental cursor (one value per stream), the checkpoint an interrupted run would resume from, and the
circuit breakers the source's requests last changed.

Resetting clears all three, so the next run starts from the config's `initial` and reads from the start; it
does not touch run history, errors or target rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, select

from syncdash.store.db import Store, dumps
from syncdash.store.models import Breaker, Run, RunStatus, SourceState

DEFAULT_STREAM = "load"  # the phase (stream) name of a single-stream source


@dataclass
class StoredState:
    source: str
    cursor: dict[str, Any] = field(default_factory=dict)  # stream (phase) -> cursor value
    checkpoint_run: int | None = None  # the interrupted run a next run would resume
    checkpoint: Any = None
    breakers: list[Breaker] = field(default_factory=list)
    files_read: dict[str, Any] = field(default_factory=dict)  # stream -> what it last read whole (see is_files_read)

    def json(self) -> dict[str, Any]:
        return {
            "source": self.source, "cursor": self.cursor, "files_read": self.files_read,
            "checkpoint": None if self.checkpoint_run is None else {"run_id": self.checkpoint_run,
                                                                     "value": self.checkpoint},
            "breakers": [{"host": b.host, "state": b.state, "failures": b.failures,
                          "retry_at": b.retry_at.isoformat() + "Z" if b.retry_at else None,
                          "last_error": b.last_error} for b in self.breakers],
        }


def is_files_read(value: Any) -> bool:
    """Whether a stream's cursor entry is the record of the files it last read whole (names, sizes, digests:
    syncdash.engine.unchanged keeps it there, a file stream having no incremental cursor), not a cursor."""
    return isinstance(value, dict) and "algo" in value and "files" in value


def files_read_words(record: dict[str, Any]) -> str:
    """The record in words, for `syncdash state` and the console's source screen."""
    files = record.get("files") or []
    return (f"{len(files)} file(s) as run {record.get('read_run', record.get('run'))} read them whole, "
            f"{record.get('live')} live row(s), last confirmed by run {record.get('run')}: while they stay "
            "byte-identical a run does not read them again (reset the state or --full to read)")


def _cursor(st: SourceState | None) -> dict[str, Any]:
    try:
        value = json.loads(st.cursor) if st is not None and st.cursor else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _resumable(store: Store, source: str) -> list[Run]:
    """Interrupted runs holding a checkpoint (the newest is what a next run would resume)."""
    with store.session() as s:
        return list(s.exec(select(Run).where(
            Run.source == source, Run.status == RunStatus.INTERRUPTED, col(Run.checkpoint).is_not(None),
            col(Run.dry_run) == False,  # noqa: E712
        ).order_by(col(Run.id).desc())))


def read_state(store: Store, source: str) -> StoredState:
    with store.session() as s:
        st = s.get(SourceState, source)
        breakers = list(s.exec(select(Breaker).where(Breaker.source == source).order_by(col(Breaker.host))))
    entries = _cursor(st)
    out = StoredState(source, {k: v for k, v in entries.items() if not is_files_read(v)}, breakers=breakers,
                      files_read={k: v for k, v in entries.items() if is_files_read(v)})
    runs = _resumable(store, source)
    if runs:
        out.checkpoint_run = runs[0].id
        try:
            out.checkpoint = json.loads(runs[0].checkpoint or "null")
        except ValueError:
            out.checkpoint = runs[0].checkpoint
    return out


def reset_state(store: Store, source: str) -> StoredState:
    """Clear the cursor, drop interrupted runs' checkpoints (they no longer resume) and close the source's
    breakers. Returns what was there before."""
    before = read_state(store, source)
    with store.tx() as s:
        st = s.get(SourceState, source)
        if st is not None:
            st.cursor = None
            s.add(st)
        for run in s.exec(select(Run).where(Run.source == source, Run.status == RunStatus.INTERRUPTED,
                                            col(Run.checkpoint).is_not(None))):
            run.checkpoint = None
            s.add(run)
        for b in s.exec(select(Breaker).where(Breaker.source == source)):
            s.delete(b)
    return before


def set_cursor(store: Store, source: str, value: str, stream: str | None = None) -> dict[str, Any]:
    """Set the incremental cursor of one stream (the only one, or `stream`). A source with several streams
    must name one: a ValueError lists them. Returns the new cursor map."""
    with store.tx() as s:
        st = s.get(SourceState, source) or SourceState(source=source)
        cursors = _cursor(st)
        if stream is None:
            others = sorted(k for k in cursors if k != DEFAULT_STREAM)
            if others:
                raise ValueError(f"source {source!r} has a cursor per stream ({', '.join(sorted(cursors))}); "
                                 "name one with --stream")
            stream = DEFAULT_STREAM
        old = cursors.get(stream)
        if is_files_read(old):  # a file stream: its entry says what it read, there is no cursor to move
            raise ValueError(f"stream {stream!r} of {source!r} reads whole files and has no incremental cursor; "
                             "to read its files again, reset the state or run with --full")
        try:  # keep a numeric cursor numeric: the next run compares it with the values it reads
            cursors[stream] = int(value) if isinstance(old, int) else float(value) if isinstance(old, float) \
                else value
        except ValueError:
            raise ValueError(f"cursor {value!r} is not a number like the stored one ({old!r})") from None
        st.cursor = dumps(cursors)
        s.add(st)
    return cursors


def set_schedule_override(store: Store, source: str, override: dict[str, str] | None) -> None:
    """`syncdash schedule` and PUT /v1/sources/{name}/schedule: a schedule (and time zone) that beats the
    config's until reset (None). A new override fires from now on: no catch-up of the old schedule's fires."""
    with store.tx() as s:
        st = s.get(SourceState, source) or SourceState(source=source)
        if override is None:
            st.schedule_override = None
        else:
            st.schedule_override = json.dumps(override)
            st.last_fire_at = None
        s.add(st)
