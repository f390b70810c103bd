"""Executing a pull: each of a Source's streams read batch by batch into its target table (load phase), then
its absent rows deleted (finalize phase), then its incremental cursor stored.

Composes the run's lifecycle (phases, counts, cancel), one BatchWriter per stream (the one-transaction batch)
and read-ahead (batches parsed and mapped in a child process while this one writes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from syncdash.common.dialect import Conn, database_errors
from syncdash.engine import readahead
from syncdash.engine.batch import BatchWriter
from syncdash.engine.finalize import finalize
from syncdash.engine.items import dry_run_summary
from syncdash.engine.lifecycle import RunLifecycle, phase_specs
from syncdash.engine.retry import PullRetry
from syncdash.engine.unchanged import Unchanged
from syncdash.errors import CheckpointInvalid, SourceError
from syncdash.kinds.contract import Batch, ReaderHooks, RunContext, Source, Stream
from syncdash.store import journal, runlog
from syncdash.store.db import dumps
from syncdash.store.rows import COUNTS
from syncdash.targets.table import q, scope_sql


class PullExecutor:
    """Reads a Source's streams into their tables; see the module docstring."""

    def __init__(self, life: RunLifecycle, source: Source) -> None:
        self.life = life
        self.source = source
        self.caps = source.capabilities
        self.streams: list[Stream] = list(source.streams())
        self.writers: list[BatchWriter] = []
        self.retry = PullRetry(life.store, life.opt.retry_of, life.opt.retry_errors) if life.mode == "retry" \
            else None

    def phase_names(self, stream: Stream) -> tuple[str, str]:
        if len(self.streams) == 1:
            return "load", "finalize"
        return stream.phase, f"{stream.phase} finalize"

    def phase_specs(self) -> list[tuple[str, str]]:
        """A load and a finalize phase per stream."""
        return phase_specs(self.streams, self.phase_names)

    def resolve_retried(self, c: Conn, run_id: int, now: datetime) -> None:
        if self.retry is not None:
            self.retry.resolve(c, run_id, now)

    # ---- the run ------------------------------------------------------------------------------------

    def execute(self) -> None:
        life = self.life
        tdb = life.db.target
        try:
            if tdb.is_sqlite:
                tdb.execute("PRAGMA cache_size=-32000")
                # fewer, larger checkpoints while loading (~10% off a million-row load); WAL stays <= ~80 MB
                tdb.execute("PRAGMA wal_autocheckpoint=20000")
            if not life.db.same_db and not life.opt.dry_run:
                journal.ensure(tdb)
            ck = life.checkpoint()
            first = int(ck.get("stream", 0)) if ck else 0
            self._bind()
            for i, stream in enumerate(self.streams):
                if i < first:
                    continue  # finished before the interruption
                writer = self._enter_stream(i, stream)
                same = Unchanged(writer, resumed=ck is not None and i == first)
                if same.skip():  # byte-identical to the last complete read: not read again
                    continue
                import gc
                # a load allocates ~10 objects a row and frees them by refcount: with the default thresholds
                # the collector ran ~1,300 times over a million-row load (~7% of this process's time)
                thresholds = gc.get_threshold()
                gc.set_threshold(100_000, 20, 100)
                try:
                    self._load(writer, ck if i == first else None)
                finally:
                    gc.set_threshold(*thresholds)
                finalize(writer)
                same.record()
                self._stream_done(stream)
        finally:
            life.collect(self.streams, self.source)
            if life.opt.dry_run:
                note = dry_run_summary(life.counts["failed"], [m for w in self.writers
                                                               for m in w.open_errors.would_fail])
                if note:
                    life.warnings.append(life.config.redact(note))
            life.db.rollback()
            if tdb.is_sqlite:
                tdb.execute("PRAGMA wal_autocheckpoint=1000")

    def _bind(self) -> None:
        life = self.life
        st = life.store.source_state(life.cfg.name)
        cursors = json.loads(st.cursor) if st is not None and st.cursor else {}
        opt = life.opt
        self.source.bind(RunContext(
            store=life.store, cancel=opt.cancel, full=opt.full, dry_run=opt.dry_run, limit_pages=opt.limit_pages,
            backfill_from=opt.backfill_from, cursors=cursors if isinstance(cursors, dict) else {},
            redact=life.config.redact, add_secret=life.config.add_secret, parent_rows=self._parent_rows))

    def _enter_stream(self, i: int, stream: Stream) -> BatchWriter:
        """The per-stream state (table, phases, counts) of stream i; a resumed stream's as it committed."""
        life = self.life
        phases = self.phase_names(stream)
        writer = BatchWriter(life, stream, i, phases, self.caps.replayable, self.retry)
        self.writers.append(writer)
        life.phase_counts = dict.fromkeys(COUNTS, 0)
        if life.resumed:
            c = life.store.conn()
            try:
                counts = runlog.phase_counts(c, life.phase_ids[phases[0]])
                if counts is not None:
                    life.phase_counts = counts
                # rows that failed before their key was read block this stream's deletes, resumed or not
                writer.keyless_errors = runlog.keyless_errors(c, life.run_id, phases[0])
            finally:
                c.close()
        return writer

    def _load(self, w: BatchWriter, ck: dict[str, Any] | None) -> None:
        life = self.life
        w.open(ck)
        life.phase_start(w.load_phase, w.stream.total())
        start = ck.get("source") if ck else None
        hooks = w.stream.reader_hooks() if readahead.enabled() and life.opt.read_ahead else None
        if hooks is not None:  # the whole stream, fetch threads included, in the read-ahead child
            before = w.batch_no
            try:
                self._read_forked(w, start, hooks)
            except CheckpointInvalid as e:
                if w.batch_no != before:
                    raise
                w.restart(str(e))
                self._read_forked(w, None, hooks)
            self._load_done(w)
            return
        if ck is not None and w.seen is not None and start is not None and self.caps.replayable:
            try:
                w.replay(w.stream.batches(None, stop=start))
            except CheckpointInvalid as e:
                w.restart(str(e))
                start = None
        try:
            batches = self._batches(w, start)
            first = next(batches, None)
        except CheckpointInvalid as e:
            w.restart(str(e))
            start = None
            batches = self._batches(w, start)
            first = next(batches, None)
        if first is not None:
            if readahead.enabled() and life.opt.read_ahead and self.caps.read_ahead:
                # the rest is parsed and mapped in a child process while this one writes (readahead.py),
                # the first batch included
                try:
                    for batch, prepared in readahead.read_ahead(batches, w.prepare, first.mapper,
                                                                meanwhile=lambda: w.process(first)):
                        life.check_cancel()
                        w.process(batch, prepared)
                except SourceError:
                    life.check_cancel()  # a reader killed along with us is a cancel, not a failure
                    raise
            else:
                w.process(first)
                for batch in batches:
                    w.process(batch)
        self._load_done(w)

    def _read_forked(self, w: BatchWriter, start: dict[str, Any] | None, hooks: ReaderHooks) -> None:
        life = self.life
        try:
            for batch, prepared in readahead.read_ahead(self._batches(w, start), w.prepare, hooks.mapper,
                                                        hooks=hooks, poll=life.check_cancel):
                life.check_cancel()
                w.process(batch, prepared)
        except SourceError:
            life.check_cancel()  # a reader killed along with us is a cancel, not a failure
            raise

    def _load_done(self, w: BatchWriter) -> None:
        life = self.life
        # progress writes are throttled: the phase's final position is written whatever the clock says
        last = w.last_batch
        if last is None:
            life.phase_done(w.load_phase)
        else:  # a phase counted in pages learns its total only at its end
            life.phase_done(w.load_phase, last.done, last.total if last.total is not None else last.done)

    def _batches(self, w: BatchWriter, start: dict[str, Any] | None) -> Iterator[Batch]:
        # the retried errors are loaded here, in the run's process, before the generator may go to a child
        want: Callable[[str | None, int | None], bool] | None = None
        if self.retry is not None:
            want = self.retry.want(w.items.redact_path)
        return self._read(w, start, want)

    def _read(self, w: BatchWriter, start: dict[str, Any] | None,
              want: Callable[[str | None, int | None], bool] | None) -> Iterator[Batch]:
        for batch in w.stream.batches(start, want=want):
            self.life.check_cancel()
            yield batch

    def _stream_done(self, stream: Stream) -> None:
        """Store the stream's incremental cursor: the run resumes by checkpoint, the next run by cursor."""
        life = self.life
        value = stream.final_cursor()
        if value is None or life.opt.dry_run:
            return
        sdb = life.db.own_store
        name = life.cfg.name
        sdb.begin()
        try:
            row = sdb.one("SELECT cursor FROM syncdash_source_state WHERE source=?", (name,))
            cursors = json.loads(row[0]) if row and row[0] else {}
            if not isinstance(cursors, dict):
                cursors = {}
            old = cursors.get(stream.phase)
            cursors[stream.phase] = stream.later_cursor(old, value) if old is not None else value
            sdb.execute("UPDATE syncdash_source_state SET cursor=? WHERE source=?", (dumps(cursors), name))
            sdb.commit()
        except BaseException:
            sdb.rollback()
            raise

    def _parent_rows(self, table: str, columns: list[str], key: list[str],
                     scope: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Live rows of an earlier stream's table (of one tenant, with scope), in key order: what a for_each
        stream fans out over."""
        tdb = self.life.db.target
        cols = ", ".join(q(c) for c in columns)
        order = ", ".join(q(c) for c in key)
        where, params = scope_sql(scope, "")
        try:
            rows = tdb.all(f"SELECT {cols} FROM {q(table)} WHERE _deleted_at IS NULL{where} ORDER BY {order}",
                           params)
        except database_errors():
            return []  # a dry run before the first real one: the parent table does not exist yet
        return [{c: (v.isoformat() if hasattr(v, "isoformat") else v) for c, v in zip(columns, r, strict=True)}
                for r in rows]
