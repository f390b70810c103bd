"""The life of one run, whatever it executes: the run row (created, or a claimed queued one), the source's
lease and its heartbeat, resume detection, phases and their progress, and the finish (status, error,
warnings, counts, the source's state, the lease released).

An executor (pull, push, flow) does the work in between; it is handed this object and asks it for the
run, the phases and the counts instead of sharing a base class with it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from syncdash.common.dialect import Conn, database_errors, transient
from syncdash.config.models import Config, SourceConfig
from syncdash.engine.commit import BatchCommit
from syncdash.engine.options import Progress, RunOptions, RunResult
from syncdash.errors import (
    DeleteGuardTripped,
    RunCancelled,
    RunInterrupted,
    SourceError,
    SyncdashError,
    TargetError,
    UsageError,
)
from syncdash.kinds.contract import Source, Stream
from syncdash.store import journal, runlog
from syncdash.store.db import LEASE_SECONDS, Store, dumps, owner_id
from syncdash.store.rows import COUNTS, RunStatus, utcnow
from syncdash.targets import open as target_db
from syncdash.targets.table import q

CHANGE_KINDS = ("insert", "update", "delete")
SUCCESSFUL = (RunStatus.SUCCEEDED, RunStatus.PARTIAL)


class Executor(Protocol):
    """What the lifecycle needs of pull, push and flow executors."""

    def phase_specs(self) -> list[tuple[str, str]]:
        """(name, unit) of the run's phases, in order."""

    def execute(self) -> None:
        """Do the run's work; raise to fail, cancel or interrupt it."""

    def resolve_retried(self, c: Conn, run_id: int, now: datetime) -> None:
        """A retry run that finished: mark the item errors it retried fixed, retried or gone (in the run's
        finishing transaction on the store's connection `c`)."""


def phase_specs(streams: Sequence[Stream], names: Callable[[Stream], tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, unit) of a stream executor's phases: its work phase in the stream's unit, then its closing phase
    in rows, per stream (pull: load/finalize; push: push/deletes)."""
    out: list[tuple[str, str]] = []
    for st in streams:
        work, closing = names(st)
        out += [(work, st.unit), (closing, "rows")]
    return out


class RunLifecycle:
    """One run's row, lease, phases, counts and finish; see the module docstring."""

    def __init__(self, store: Store, config: Config, cfg: SourceConfig, options: RunOptions) -> None:
        self.store = store
        self.config = config
        self.cfg = cfg
        self.opt = options
        self.owner = owner_id()
        self.mode = "retry" if options.retry_of else ("full" if options.full else cfg.mode)
        self.fingerprint = cfg.mapping_fingerprint()
        self.run: Any = None  # the run's row as it began (a light row of syncdash.store.rows: read-only)
        self.resumed = False
        self.counts = dict.fromkeys(COUNTS, 0)  # the run's
        self.phase_counts = dict.fromkeys(COUNTS, 0)  # the current load phase's
        self.changes_kept = dict.fromkeys(CHANGE_KINDS, 0)  # change rows stored so far (max_changes each)
        self.warnings: list[str] = []
        self.sample: list[dict[str, Any]] = []
        self.failed_parts: list[str] = []  # flow steps that failed without failing the run (-> partial)
        self.phase_ids: dict[str, int] = {}
        self.waits: list[dict[str, Any]] = []
        self.requests: int | None = None
        self.db = BatchCommit(store, target_db.target_url(config, cfg), cfg.name)
        self._stop_heartbeat = threading.Event()
        self._early_error: BaseException | None = None

    # ---- the run ----------------------------------------------------------------------------------

    @property
    def run_id(self) -> int:
        assert self.run is not None and self.run.id is not None, "the run has not begun"
        return self.run.id

    def checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint a resumed run continues from (None for a new run)."""
        if self.resumed and self.run is not None and self.run.checkpoint:
            ck = json.loads(self.run.checkpoint)
            return ck if isinstance(ck, dict) else None
        return None

    def execute(self, executor: Executor) -> RunResult:
        """Begin, let the executor work, finish with the status its outcome means."""
        self.begin(executor.phase_specs)
        run_id = self.run_id
        hb = threading.Thread(target=self._heartbeat, name=f"heartbeat-{run_id}", daemon=True)
        hb.start()
        status, error, error_type, retryable = RunStatus.FAILED, None, None, False
        try:
            if self._early_error is not None:
                raise self._early_error
            executor.execute()
            status = RunStatus.PARTIAL if self.counts["failed"] or self.failed_parts else RunStatus.SUCCEEDED
        except RunInterrupted:
            status, error = RunStatus.INTERRUPTED, "stopped by a daemon shutdown; resumes on its next start"
        except RunCancelled:
            status, error = RunStatus.CANCELLED, "cancelled on request"
        except KeyboardInterrupt:
            status, error = RunStatus.CANCELLED, "interrupted (Ctrl-C)"
        except (SourceError, TargetError, DeleteGuardTripped) as e:
            status, error = RunStatus.FAILED, self.config.redact(str(e))
            error_type = str(getattr(e, "error_type", "source"))
            retryable = bool(getattr(e, "retryable", False))  # classes of the error tree declare both or neither
        except SyncdashError as e:
            status, error, error_type = RunStatus.FAILED, self.config.redact(str(e)), "internal"
        except database_errors() as e:
            status, error = RunStatus.FAILED, self.config.redact(f"database error: {e}".strip())
            error_type, retryable = "database", transient(e)  # locked, connection lost, deadlock: may pass
        except BaseException as e:
            self.finish(executor, RunStatus.FAILED,
                        self.config.redact(f"internal error: {type(e).__name__}: {e}"), "internal")
            self.db.close()
            raise
        finally:
            self._stop_heartbeat.set()
        try:
            self.finish(executor, status, error, error_type)
        finally:
            self.db.close()
        return RunResult(run_id=run_id, source=self.cfg.name, status=status, counts=dict(self.counts),
                         error=error, warnings=self.warnings, sample=self.sample, resumed=self.resumed,
                         error_type=error_type, retryable=retryable)

    def begin(self, phase_specs: Callable[[], list[tuple[str, str]]]) -> None:
        """Take the lease and create (or pick up for resume) the run.

        With the lease held, batches a dead run committed to a separate target database but not to the store
        are replayed first (journal.py), so the resume decision sees the store as the target does.
        """
        with self.store.write() as c:  # AlreadyRunning rolls the new run row back with it
            run_id = self._run_row(c)
            self.store.acquire_lease_in(c, self.cfg.name, run_id, self.owner)
            self.run = runlog.get_run(c, run_id)
        try:
            self.db.connect()
        except BaseException as e:  # the run row exists: it fails with this error, like any other
            self._early_error = e
            self.db.run_id = self.run_id
            return
        if self.mode != "retry" and not self.opt.full and not self.opt.dry_run:
            self._resume_interrupted()
        self.db.run_id = self.run_id
        assert self.run is not None
        self.db.seq = self.run.applied_seq or 0
        if self.resumed:
            self._restore()
        else:
            with self.store.write() as c:
                self.phase_ids.update(runlog.insert_phases(c, self.run_id, phase_specs()))

    def _run_row(self, c: Conn) -> int:
        """A new run row, or the claimed queued one this execution takes over: its id."""
        now = utcnow()
        started = {"kind": self.cfg.kind, "mode": self.mode, "dry_run": self.opt.dry_run,
                   "status": RunStatus.RUNNING, "started_at": now, "heartbeat_at": now, "owner": self.owner,
                   "fingerprint": self.fingerprint}
        if self.opt.run_id is None:
            return runlog.insert_run(c, source=self.cfg.name, trigger=self.opt.trigger,
                                     parent_run_id=self.opt.retry_of, flow_run_id=self.opt.flow_run_id, **started)
        run = runlog.get_run(c, self.opt.run_id)
        if run is None or run.status != RunStatus.CLAIMED or run.source != self.cfg.name:
            raise UsageError(f"run {self.opt.run_id} is not a claimed run of {self.cfg.name}")
        runlog.update_run(c, run.id, **started, parent_run_id=run.parent_run_id or self.opt.retry_of,
                          flow_run_id=run.flow_run_id or self.opt.flow_run_id)
        return int(run.id)

    def _resume_interrupted(self) -> None:
        """Continue the latest interrupted run instead, when it read the same input the same way and no
        finished run came after it; the placeholder run row goes (or, a schedule fire's, is cancelled)."""
        now = utcnow()
        name = self.cfg.name
        with self.store.write() as c:
            run = runlog.get_run(c, self.run_id)
            assert run is not None
            cand = runlog.latest_interrupted(c, name, exclude=run.id)
            if (cand is not None and cand.checkpoint and cand.mode == self.mode
                    and cand.fingerprint == self.fingerprint
                    and not runlog.finished_after(c, name, cand.id, exclude=run.id)):
                # the lease is ours (taken for the placeholder run above): hand it to cand,
                # or acquire_lease_in sees a live owner (us) on another run and refuses
                self.store.release_lease_in(c, name, run.id)
                if run.fire_key is not None:  # a schedule fire keeps its row: its key stays taken
                    runlog.update_run(c, run.id, status=RunStatus.CANCELLED, finished_at=now,
                                      error=f"resumed the interrupted run {cand.id} instead")
                else:
                    runlog.delete_run(c, run.id)
                runlog.update_run(c, cand.id, status=RunStatus.RUNNING, owner=self.owner, heartbeat_at=now,
                                  resumes=cand.resumes + 1, finished_at=None)
                self.store.acquire_lease_in(c, name, cand.id, self.owner)
                run = runlog.get_run(c, cand.id)
                self.resumed = True
            self.run = run

    def _restore(self) -> None:
        """A resumed run's counts, phases and kept change rows, as it committed them."""
        assert self.run is not None
        for name in COUNTS:
            self.counts[name] = getattr(self.run, name)
        c = self.store.conn()
        try:
            self.phase_ids.update(runlog.phase_ids(c, self.run_id))
            kept = runlog.change_counts(c, self.run_id)
        finally:
            c.close()
        for kind in CHANGE_KINDS:
            self.changes_kept[kind] = kept.get(kind, 0)

    def _heartbeat(self) -> None:
        run_id = self.run_id
        while not self._stop_heartbeat.wait(LEASE_SECONDS / 4):
            try:
                self.store.renew_lease(self.cfg.name, run_id)
            except Exception:  # a missed beat is retried; the lease is generous
                pass

    def check_cancel(self) -> None:
        """Raise at a safe point when the daemon stops (interrupted) or someone cancelled the run."""
        if self.opt.shutdown is not None and self.opt.shutdown.is_set():
            raise RunInterrupted()
        if self.opt.cancel is not None and self.opt.cancel.is_set():
            raise RunCancelled()

    # ---- counts, phases and progress ---------------------------------------------------------------

    def count(self, name: str, n: int) -> None:
        self.counts[name] += n
        self.phase_counts[name] += n

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        """The counts before a batch: a batch that rolls back takes its counts with it (see restore)."""
        return dict(self.counts), dict(self.phase_counts)

    def restore(self, snap: tuple[dict[str, int], dict[str, int]]) -> None:
        self.counts, self.phase_counts = dict(snap[0]), dict(snap[1])

    def phase_start(self, name: str, total: int | None = None) -> None:
        with self.store.write() as c:
            runlog.phase_start(c, self.phase_ids[name], total)

    def phase_done(self, name: str, done: int | None = None, total: int | None = None) -> None:
        with self.store.write() as c:
            runlog.phase_done(c, self.phase_ids[name], done, total)

    def set_total(self, phase: str, total: int) -> None:
        with self.store.write() as c:
            c.execute("UPDATE syncdash_run_phases SET total=? WHERE id=?", (total, self.phase_ids[phase]))

    def report(self, phase: str, done: int, total: int | None, detail: str | None, unit: str = "rows") -> None:
        """Tell the caller's live view (the store has the same numbers for other processes)."""
        if self.opt.on_progress is None or self.run is None or self.run.id is None:
            return
        self.opt.on_progress(Progress(run_id=self.run.id, source=self.cfg.name, phase=phase, done=done,
                                      total=total, unit=unit, counts=dict(self.counts), detail=detail,
                                      resumed=self.resumed))

    def collect(self, streams: Sequence[Stream], source: Source, clients: Sequence[Any] | None = None) -> None:
        """The streams' warnings and the HTTP clients' waits and request counts, onto the run."""
        for st in streams:
            self.warnings.extend(self.config.redact(w) for w in st.warnings)
        used = list(source.http_clients() if clients is None else clients)
        waits = [w for c in used for w in c.waits]
        if waits:
            total = sum(w.seconds for w in waits)
            kinds: dict[str, int] = {}
            for w in waits:
                kinds[w.reason] = kinds.get(w.reason, 0) + 1
            what = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:6])
            self.warnings.append(f"waited {len(waits)} time(s), {total:.1f} s in total: {what}")
            self.waits = [{"url": w.url, "reason": w.reason, "seconds": round(w.seconds, 3)} for w in waits]
        if used:
            self.requests = sum(c.attempts for c in used)

    # ---- seen keys kept in the target database -------------------------------------------------------

    @property
    def seen_prefix(self) -> str:
        """Names of this run's stored seen-key tables; in a target database other stores may share, the
        store's id tells them apart."""
        return f"seen_{self.run_id}" if self.db.same_db else f"seen_{self.store.store_id[:8]}_{self.run_id}"

    def _drop_kept_seen(self) -> None:
        """A finished run (any status but interrupted) is never resumed: its stored seen keys can go."""
        tdb = self.db.tdb
        if tdb is None:
            return
        for name in tdb.table_names(f"syncdash_{self.seen_prefix}_"):
            tdb.execute(f"DROP TABLE IF EXISTS {q(name)}")

    # ---- finish ---------------------------------------------------------------------------------------

    def finish(self, executor: Executor, status: RunStatus, error: str | None, error_type: str | None) -> None:
        """The run's outcome, counts and warnings; its phases closed; the source's state and lease."""
        run_id = self.run_id
        now = utcnow()
        if status != RunStatus.INTERRUPTED:
            try:
                self._drop_kept_seen()
                if not self.db.same_db and self.db.tdb is not None:
                    journal.forget(self.db.tdb, self.store.store_id, run_id)
            except database_errors():  # a target that went away: the tables are dropped by a later run
                pass
        outcome: dict[str, Any] = {"status": status, "finished_at": now, "error": error, "error_type": error_type,
                                   **self.counts}
        if self.warnings:
            outcome["warnings"] = self.config.redact(dumps(self.warnings))
        if self.requests is not None:
            outcome["http"] = self.config.redact(dumps({"requests": self.requests, "waits": self.waits[:200]}))
        successful = status in SUCCESSFUL
        with self.store.write() as c:
            runlog.update_run(c, run_id, **outcome)
            runlog.close_phases(c, run_id, successful, now)
            if self.mode == "retry" and successful and not self.opt.dry_run:
                executor.resolve_retried(c, run_id, now)
            if not self.opt.dry_run and status != RunStatus.INTERRUPTED:
                # the lease goes in the same transaction
                runlog.record_outcome(c, self.cfg.name, run_id, status, now, success=successful,
                                      fingerprint=self.fingerprint if self.mode != "retry" else None)
            else:
                self.store.release_lease_in(c, self.cfg.name, run_id)
