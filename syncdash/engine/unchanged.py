"""An input that did not change since the last complete read of it is not read again.

A cron job re-running on an export that did not change would otherwise parse, map and hash every row of it
only to find them all unchanged. A stream that reads local files (CSV: `input_files()`) is therefore checked
before its load: when every file is byte-identical to what the last run of the source read completely (same
names, sizes and blake2b digests; a new mtime alone does not matter), the source's config is the same, that
run finished successfully with no failed row, no other run of the source has touched its table since, and
the table still holds the live rows that run left, the stream is not read. The run reports all of its rows
as unchanged, writes no row, deletes nothing, and says why in a warning.

These read as usual: `--full`, a retry, a resumed run, a run whose files or config changed; a dry run may
skip but never records. The record lives where the source's resume state already lives: the
stream's entry of syncdash_source_state.cursor (a CSV source has no incremental cursor), so `syncdash state
--reset` forgets it and the next run reads again. It holds the names, sizes and digests of the files, the
config fingerprint, the run that read them and the run that last confirmed them, the rows they hold and the
live rows the table had.

The digests of a normal read are taken by a lowest-priority thread of the run's process while the load
runs (hashlib releases the GIL while it hashes and reads; the load's end finishes what it left), from a stat
snapshot taken before the read began: they are recorded only when the files still have the same sizes and
modification times once the read is done, so they describe the bytes the reader parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncdash.common.dialect import Conn, database_errors, mask_url
from syncdash.engine.batch import BatchWriter
from syncdash.errors import SourceUnavailable
from syncdash.store.db import dumps
from syncdash.store.rows import RunStatus

ALGO = "blake2b"
VERSION = 1
# config keys that say when or how often a source runs, not what it reads or writes
SCHEDULING = {"description", "schedule", "timezone", "jitter", "enabled", "catch_up", "run_retry", "notify"}

InputFile = tuple[str, Path, int, int]  # name as stored, path, size, mtime_ns


def config_fingerprint(w: BatchWriter) -> str:
    """Everything of the source's config that decides what is read and how it is written (fields, mapping,
    key, table, target, CSV options, mode, deletes, ...): any change makes the next run read again."""
    life = w.life
    cfg = life.cfg.model_dump(mode="json", by_alias=True, exclude=SCHEDULING)
    url = life.db.target_url
    payload = {"config": cfg, "target": mask_url(url) if url else None, "stream": w.stream.phase,
               "scope": w.stream.scope or None}
    text = life.config.redact(json.dumps(payload, sort_keys=True, default=str))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


class FileHasher(threading.Thread):
    """Digests of a snapshot of files, taken beside the load (see the module docstring).

    In the background the thread runs at the lowest priority, on the time the reader child and the writer
    leave; finish() then takes over what is left on the calling thread, so a thread starved by a busy
    machine never makes the run wait on it."""

    CHUNK = 1 << 18

    def __init__(self, files: list[InputFile], known: dict[tuple[str, int, int], str], background: bool) -> None:
        super().__init__(name="syncdash-digest", daemon=True)
        self.files = files
        self.known = known  # digests the skip check already took of the same snapshot
        self.background = background
        self.hurry = threading.Event()
        self.done: list[str] = []
        self.partial: tuple[Any, Path, int] | None = None  # (blake2b so far, path, offset) when handed over
        self.failed = False

    def run(self) -> None:
        if self.background:
            try:  # on Linux a thread has a nice value of its own
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except (AttributeError, OSError):
                pass
        try:
            self._hash_files()
        except OSError:
            self.failed = True

    def _hash_files(self, resume: tuple[Any, Path, int] | None = None) -> None:
        while len(self.done) < len(self.files):
            name, path, size, mtime = self.files[len(self.done)]
            known = self.known.get((name, size, mtime))
            if known is not None:
                self.done.append(known)
                continue
            h, offset = (resume[0], resume[2]) if resume is not None else (hashlib.blake2b(digest_size=32), 0)
            resume = None
            buf = bytearray(self.CHUNK)
            view = memoryview(buf)
            with open(path, "rb") as f:
                f.seek(offset)
                while n := f.readinto(buf):
                    h.update(view[:n])  # releases the GIL
                    if self.hurry.is_set() and threading.current_thread() is self:
                        self.partial = (h, path, f.tell())
                        return
            self.done.append(h.hexdigest())

    def finish(self) -> list[str] | None:
        """The digests (None when a file could not be read), finished on this thread if need be."""
        self.hurry.set()
        self.join()
        if self.failed:
            return None
        try:
            self._hash_files(self.partial)
        except OSError:
            return None
        return self.done


class Unchanged:
    """One stream's check before its load (skip) and record after its finalize (record)."""

    def __init__(self, w: BatchWriter, resumed: bool) -> None:
        self.w = w
        self.resumed = resumed
        self.input_files: Callable[[], list[InputFile]] | None = getattr(w.stream, "input_files", None)
        self.hasher: FileHasher | None = None
        self.snapshot: list[InputFile] | None = None
        self.known: dict[tuple[str, int, int], str] = {}
        self.fingerprint = ""

    # ---- before the load -----------------------------------------------------------------------------

    def skip(self) -> bool:
        """True when the stream was recognised unchanged and its load and finalize phases are done; else the
        load goes ahead (and, when it can record, its files are hashed meanwhile)."""
        if self.input_files is None:
            return False
        w, life = self.w, self.w.life
        opt = life.opt
        self.fingerprint = config_fingerprint(w)
        try:
            self.snapshot = list(self.input_files())
        except (SourceUnavailable, OSError):
            return False  # the read says what is missing
        readable = not (opt.full or life.mode == "retry" or self.resumed or opt.limit_pages
                        or opt.backfill_from is not None)
        if readable:
            failures: tuple[type[BaseException], ...] = (OSError, *database_errors())
            try:
                rec = self._unchanged_record()
            except failures:  # a file or table that cannot be checked is read as usual
                rec = None
            if rec is not None:
                self._skip(rec)
                return True
        if self._may_record():
            self.hasher = FileHasher(self.snapshot, self.known, background=True)
            self.hasher.start()
        return False

    def _stored(self) -> tuple[dict[str, Any] | None, int | None, str | None]:
        """This stream's record, the source's last run and its status."""
        w, life = self.w, self.w.life
        row = life.db.own_store.one("SELECT cursor, last_run_id, last_status FROM syncdash_source_state "
                                    "WHERE source=?", (life.cfg.name,))
        if row is None:
            return None, None, None
        try:
            cursors = json.loads(row[0]) if row[0] else {}
        except ValueError:
            cursors = {}
        rec = cursors.get(w.stream.phase) if isinstance(cursors, dict) else None
        ok = isinstance(rec, dict) and rec.get("v") == VERSION and rec.get("algo") == ALGO
        return (rec if ok else None), row[1], row[2]

    def _unchanged_record(self) -> dict[str, Any] | None:
        """The stored record when every condition of a skip holds, else None (cheapest checks first)."""
        w, life = self.w, self.w.life
        rec, last_run, last_status = self._stored()
        if rec is None or rec.get("config") != self.fingerprint:
            return None
        run = rec.get("run")
        if not isinstance(run, int) or last_run != run or last_status != RunStatus.SUCCEEDED.value:
            return None
        sdb = life.db.own_store
        name = life.cfg.name
        row = sdb.one("SELECT status, failed FROM syncdash_runs WHERE id=?", (run,))
        if row is None or row[0] != RunStatus.SUCCEEDED.value or row[1]:
            return None
        # any later run that may have written (interrupted, cancelled, failed, retried) reads again
        later = sdb.scalar("SELECT COUNT(*) FROM syncdash_runs WHERE source=? AND id>? AND id<>? AND dry_run=? "
                           "AND status NOT IN (?, ?)", (name, run, life.run_id, False, RunStatus.QUEUED.value,
                                                        RunStatus.CLAIMED.value))
        if later:
            return None
        if sdb.scalar("SELECT COUNT(*) FROM syncdash_item_errors WHERE source=? AND resolved_at IS NULL",
                      (name,)):
            return None
        assert self.snapshot is not None
        files = rec.get("files")
        if not isinstance(files, list) or [[f[0], f[2]] for f in self.snapshot] != [f[:2] for f in files]:
            return None  # other names or sizes: no need to hash
        # the files are hashed while the table's rows are counted (both release the GIL)
        hasher = FileHasher(self.snapshot, {}, background=False)
        hasher.start()
        try:
            t = w.target
            table_ok = set(t.columns) <= t.available_columns() and \
                t.live_count(w.stream.scope or None) == rec.get("live")
        finally:
            digests = hasher.finish()
        if digests is None:
            return None
        for (fname, _, size, mtime), digest in zip(self.snapshot, digests, strict=True):
            self.known[(fname, size, mtime)] = digest  # a read that follows need not hash them again
        if [f[2] for f in files] != digests:
            return None
        return rec if table_ok else None  # else the table lost rows or columns since: the read puts them back

    def _skip(self, rec: dict[str, Any]) -> None:
        """Both phases done without reading: every row the files hold is unchanged, nothing is deleted."""
        w, life = self.w, self.w.life
        rows, skipped = int(rec.get("rows", 0)), int(rec.get("skipped", 0))
        size = sum(f[2] for f in self.snapshot or [])
        names = [Path(f[0]).name for f in self.snapshot or []]
        what = names[0] if len(names) == 1 else f"{len(names)} files ({', '.join(names[:3])}" + (
            ", ...)" if len(names) > 3 else ")")
        read_run = rec.get("read_run", rec.get("run"))
        life.warnings.append(life.config.redact(
            f"{what} unchanged since run {read_run} (same size and {ALGO}): not read; {rows} row(s) counted "
            "unchanged, nothing written or deleted (--full reads it)"))
        life.phase_start(w.load_phase, size)
        life.count("unchanged", rows)
        life.count("skipped", skipped)
        detail = life.config.redact(f"{what}: unchanged, not read")
        self._write(None if life.opt.dry_run else dict(rec, run=life.run_id), skip_detail=detail)
        life.phase_done(w.load_phase, size, size)
        life.report(w.load_phase, size, size, detail, w.stream.unit)
        life.phase_start(w.fin_phase)
        life.phase_done(w.fin_phase, 0, 0)
        life.report(w.fin_phase, 0, 0, None)

    # ---- after the finalize ------------------------------------------------------------------------

    def _may_record(self) -> bool:
        life = self.w.life
        opt = life.opt
        return not (opt.dry_run or life.mode == "retry" or opt.limit_pages or opt.backfill_from is not None)

    def record(self) -> None:
        """After a complete, clean read: store what was read, so an identical next run can skip it. Any other
        real run drops a record left by an earlier one (the next run reads)."""
        if self.input_files is None or not self._may_record():
            return
        rec = None
        if self.hasher is not None:
            rec = self._new_record()
        if rec is None:
            stored, _, _ = self._stored()
            if stored is None:
                return
        self._write(rec)

    def _new_record(self) -> dict[str, Any] | None:
        w, life = self.w, self.w.life
        assert self.hasher is not None and self.snapshot is not None and self.input_files is not None
        if w.stream.truncated or life.phase_counts["failed"] or w.keyless_errors or life.counts["failed"]:
            self.hasher.hurry.set()  # not recorded: the thread stops at its next chunk
            return None
        digests = self.hasher.finish()
        if digests is None:
            return None
        try:  # the files the reader parsed are the ones hashed: none changed size or mtime meanwhile
            if [(f[0], f[2], f[3]) for f in self.input_files()] != [(f[0], f[2], f[3]) for f in self.snapshot]:
                return None
        except (SourceUnavailable, OSError):
            return None
        pc = life.phase_counts
        rows = pc["inserted"] + pc["updated"] + pc["unchanged"]
        # a full read that applied its deletes left exactly the rows it read live; a table that was empty,
        # what it inserted; else count them (deletes kept, incremental mode)
        if life.mode == "full" and w.cfg.deletes != "keep" and not w.fresh:
            live = rows
        else:
            live = pc["inserted"] if w.fresh else w.target.live_count(w.stream.scope or None)
        return {"v": VERSION, "algo": ALGO, "run": life.run_id, "read_run": life.run_id,
                "config": self.fingerprint, "rows": rows, "skipped": pc["skipped"], "live": live,
                "files": [[f[0], f[2], d] for f, d in zip(self.snapshot, digests, strict=True)]}

    def _write(self, rec: dict[str, Any] | None, skip_detail: str | None = None) -> None:
        """The record (None: drop it) and, for a skip, the load phase's counts and detail, in one store
        transaction."""
        w, life = self.w, self.w.life
        sdb: Conn = life.db.own_store
        name = life.cfg.name
        sdb.begin()
        try:
            if skip_detail is not None:
                pc = life.phase_counts
                sdb.execute("UPDATE syncdash_run_phases SET unchanged=?, skipped=?, detail=? WHERE id=?",
                            (pc["unchanged"], pc["skipped"], skip_detail, life.phase_ids[w.load_phase]))
                c = life.counts
                sdb.execute("UPDATE syncdash_runs SET unchanged=?, skipped=? WHERE id=?",
                            (c["unchanged"], c["skipped"], life.run_id))
            if rec is not None or not life.opt.dry_run:
                row = sdb.one("SELECT cursor FROM syncdash_source_state WHERE source=?", (name,))
                try:
                    cursors = json.loads(row[0]) if row and row[0] else {}
                except ValueError:
                    cursors = {}
                if not isinstance(cursors, dict):
                    cursors = {}
                if rec is None:
                    cursors.pop(w.stream.phase, None)
                else:
                    cursors[w.stream.phase] = rec
                sdb.execute("UPDATE syncdash_source_state SET cursor=? WHERE source=?",
                            (dumps(cursors) if cursors else None, name))
            sdb.commit()
        except BaseException:
            sdb.rollback()
            raise
