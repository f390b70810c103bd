"""The one run path: every trigger (CLI, schedule, console key, retry, resume) ends up in Engine.run.

Per batch, in one transaction: the target rows, their hashes, the item errors, the change log, the
run's counts and its checkpoint. A crash therefore loses nothing committed and a resume repeats
nothing: the checkpoint and the rows it describes can never disagree.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import select

from syncdash.common.dialect import Conn, database_errors, integrity_errors, transient
from syncdash.config.kinds import adapter_for
from syncdash.config.models import Config, SourceConfig
from syncdash.engine import readahead
from syncdash.engine.readahead import Prepared
from syncdash.errors import (
    AlreadyRunning,
    DeleteGuardTripped,
    RunCancelled,
    RunInterrupted,
    SourceError,
    SyncdashError,
    TargetError,
    UsageError,
)
from syncdash.kinds.contract import Batch, CheckpointInvalid, RunContext, Source
from syncdash.store import journal
from syncdash.store.db import LEASE_SECONDS, Store, dumps, format_ts, owner_id
from syncdash.store.models import FINAL_STATUSES, ItemError, Run, RunPhase, SourceState, utcnow
from syncdash.targets import open as target_db
from syncdash.targets.table import FAILED, q, scope_sql

PROGRESS_INTERVAL = 0.25  # seconds between phase-progress writes
# tests: die right after the target committed journal entry N and before the store did (see journal.py)
_CRASH_AFTER_TARGET_COMMIT = int(os.environ.get("SYNCDASH_FAULT_CRASH_AFTER_TARGET_COMMIT", "0") or 0)
NOT_RETRYABLE = {"duplicate"}


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
    status: str
    counts: dict[str, int]
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False
    error_type: str | None = None
    retryable: bool = False  # a failure that may pass by itself (network, 5xx, breaker, a locked database)


COUNT_NAMES = ("inserted", "updated", "unchanged", "deleted", "failed", "skipped")


class Engine:
    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config

    def source_config(self, name: str) -> SourceConfig:
        src = self.config.source(name)
        if src is None:
            known = ", ".join(s.name for s in self.config.source_list) or "none"
            raise UsageError(f"unknown source {name!r}; sources in {self.config.file}: {known}")
        return src

    def run(self, name: str, options: RunOptions | None = None) -> RunResult:
        options = options or RunOptions()
        cfg = self.source_config(name)
        adapter: Source = adapter_for(cfg.kind)(cfg)
        # pulls, pushes and flows share the run's life (lease, phases, checkpoints, errors, resume, finish)
        execution = _execution_class(getattr(adapter, "execution", "pull"))
        try:
            return execution(self.store, self.config, cfg, adapter, options).execute()
        finally:
            close = getattr(adapter, "close", None)
            if close is not None:
                close()


class _RunExecution:
    def __init__(self, store: Store, config: Config, cfg: SourceConfig, adapter: Source,
                 options: RunOptions) -> None:
        self.store = store
        self.config = config
        self.cfg = cfg
        self.adapter = adapter
        self.source_adapter = adapter
        self.waits: list[dict[str, Any]] = []
        self.requests: int | None = None
        self.opt = options
        self.owner = owner_id()
        self.counts = dict.fromkeys(COUNT_NAMES, 0)
        self.changes_kept = {"insert": 0, "update": 0, "delete": 0}
        self.warnings: list[str] = []
        self.sample: list[dict[str, Any]] = []
        self.keyless_errors = 0
        self.mode = "retry" if options.retry_of else ("full" if options.full else cfg.mode)
        self.fingerprint = cfg.mapping_fingerprint()
        self.run: Run | None = None
        self.resumed = False
        self.batch_no = 0
        self._last_progress = 0.0
        self._phase_ids: dict[str, int] = {}
        self._stop_heartbeat = threading.Event()
        self.retry_targets: dict[tuple[str | None, int | None], ItemError] = {}
        self.retry_loaded: set[tuple[str | None, int | None]] = set()
        self.retry_failed: dict[tuple[str | None, int | None], int] = {}
        self._redacted: dict[str, str] = {}
        # a source reads one stream (CSV) or several (REST streams), each its own load phase and table
        self.source_cfg = cfg
        self.streams: list[Any] = list(adapter.streams()) if hasattr(adapter, "streams") else [adapter]
        self.stream_idx = 0
        self.load_phase = "load"
        self.fin_phase = "finalize"
        self.pcounts = dict.fromkeys(COUNT_NAMES, 0)
        self.screening = False
        self.step_failures: list[str] = []  # flows with on_error: continue: steps that failed
        # the store's and the target's connections (one and the same when the target is the store's database)
        self.target_url = target_db.target_url(config, cfg)
        self.same_db = target_db.same_database(store, self.target_url)
        self.sdb: Conn | None = None
        self.tdb: Conn | None = None
        self._pending: list[journal.Statement] = []  # the open batch's store statements
        self.seq = 0  # journal entries written by this run (target in another database)
        self._early_error: BaseException | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        self._begin()
        assert self.run is not None and self.run.id is not None
        run_id = self.run.id
        hb = threading.Thread(target=self._heartbeat, name=f"heartbeat-{run_id}", daemon=True)
        hb.start()
        status, error, error_type, retryable = "failed", None, None, False
        try:
            if self._early_error is not None:
                raise self._early_error
            self._execute_phases()
            status = "partial" if self.counts["failed"] or self.step_failures else "succeeded"
        except RunInterrupted:
            status, error = "interrupted", "stopped by a daemon shutdown; resumes on its next start"
        except RunCancelled:
            status, error = "cancelled", "cancelled on request"
        except KeyboardInterrupt:
            status, error = "cancelled", "interrupted (Ctrl-C)"
        except (SourceError, TargetError, DeleteGuardTripped) as e:
            status, error, error_type = "failed", self.config.redact(str(e)), getattr(e, "error_type", "source")
            retryable = bool(getattr(e, "retryable", False))
        except SyncdashError as e:
            status, error, error_type = "failed", self.config.redact(str(e)), "internal"
        except database_errors() as e:
            status, error, error_type = "failed", self.config.redact(f"database error: {e}".strip()), "database"
            retryable = transient(e)  # locked, connection lost, deadlock: may pass
        except BaseException as e:
            self._finish("failed", self.config.redact(f"internal error: {type(e).__name__}: {e}"), "internal")
            self._close_connections()
            raise
        finally:
            self._stop_heartbeat.set()
        try:
            self._finish(status, error, error_type)
        finally:
            self._close_connections()
        return RunResult(run_id=run_id, source=self.source_cfg.name, status=status, counts=dict(self.counts),
                         error=error, warnings=self.warnings, sample=self.sample, resumed=self.resumed,
                         error_type=error_type, retryable=retryable)

    def _begin(self) -> None:
        """Take the lease and create (or pick up for resume) the run.

        With the lease held, batches a dead run committed to a separate target database but not to the store
        are replayed first (journal.py), so the resume decision sees the store as the target does.
        """
        allow_resume = self.mode != "retry" and not self.opt.full and not self.opt.dry_run
        now = utcnow()
        with self.store.tx() as s:
            if self.opt.run_id is not None:  # queued and claimed: this run row becomes the execution
                claimed = s.get(Run, self.opt.run_id)
                if claimed is None or claimed.status != "claimed" or claimed.source != self.cfg.name:
                    raise UsageError(f"run {self.opt.run_id} is not a claimed run of {self.cfg.name}")
                run = claimed
                run.kind, run.mode, run.dry_run, run.status = self.cfg.kind, self.mode, self.opt.dry_run, "running"
                run.started_at, run.heartbeat_at, run.owner, run.fingerprint = now, now, self.owner, self.fingerprint
                run.parent_run_id = run.parent_run_id or self.opt.retry_of
                run.flow_run_id = run.flow_run_id or self.opt.flow_run_id
            else:
                run = Run(source=self.cfg.name, kind=self.cfg.kind, trigger=self.opt.trigger, mode=self.mode,
                          dry_run=self.opt.dry_run, status="running", started_at=now, heartbeat_at=now,
                          owner=self.owner, fingerprint=self.fingerprint, parent_run_id=self.opt.retry_of,
                          flow_run_id=self.opt.flow_run_id)
            s.add(run)
            s.flush()
            assert run.id is not None
            try:
                self.store.acquire_lease_in(s, self.cfg.name, run.id, self.owner)
            except AlreadyRunning:
                s.rollback()
                raise
            self.run = run
        try:
            self._connect()
        except BaseException as e:  # the run row exists: it fails with this error, like any other
            self._early_error = e
            return
        if allow_resume:
            with self.store.tx() as s:
                run = s.get(Run, self.run.id)
                assert run is not None and run.id is not None
                cand = s.exec(select(Run).where(
                    Run.source == self.cfg.name, Run.status == "interrupted", Run.dry_run == False,  # noqa: E712
                    Run.id != run.id).order_by(Run.id.desc()).limit(1)).first()  # type: ignore[union-attr]
                if (cand is not None and cand.checkpoint and cand.mode == self.mode
                        and cand.fingerprint == self.fingerprint):
                    newer = s.exec(select(Run.id).where(
                        Run.source == self.cfg.name, Run.id > cand.id, Run.id != run.id,
                        Run.dry_run == False, Run.status.in_(FINAL_STATUSES))).first()  # type: ignore[attr-defined] # noqa: E712
                    if newer is None:
                        # the lease is ours (taken for the placeholder run above): hand it to cand,
                        # or acquire_lease_in sees a live owner (us) on another run and refuses
                        self.store.release_lease_in(s, self.cfg.name, run.id)
                        if run.fire_key is not None:  # a schedule fire keeps its row: its key stays taken
                            run.status, run.finished_at = "cancelled", now
                            run.error = f"resumed the interrupted run {cand.id} instead"
                            s.add(run)
                        else:
                            s.delete(run)
                        s.flush()
                        cand.status = "running"
                        cand.owner = self.owner
                        cand.heartbeat_at = now
                        cand.resumes += 1
                        cand.finished_at = None
                        s.add(cand)
                        self.store.acquire_lease_in(s, self.cfg.name, cand.id or 0, self.owner)
                        run = cand
                        self.resumed = True
                self.run = run
        self.seq = self.run.applied_seq or 0
        assert self.run.id is not None
        if self.resumed:
            for name in COUNT_NAMES:
                self.counts[name] = getattr(self.run, name)
            with self.store.session() as s:
                for ph in s.exec(select(RunPhase).where(RunPhase.run_id == self.run.id)):
                    self._phase_ids[ph.name] = ph.id or 0
                for kind in self.changes_kept:
                    self.changes_kept[kind] = s.exec(
                        select(_count()).where(_change_table().c.run_id == self.run.id,
                                               _change_table().c.change == kind)).one()
        else:
            with self.store.tx() as s:
                for seq, (name, unit) in enumerate(self._phase_specs()):
                    ph = RunPhase(run_id=self.run.id, seq=seq, name=name, unit=unit)
                    s.add(ph)
                    s.flush()
                    self._phase_ids[name] = ph.id or 0

    def _phase_specs(self) -> list[tuple[str, str]]:
        """(name, unit) of the run's phases, in order: a load and a finalize phase per stream."""
        out = []
        for st in self.streams:
            load, fin = self._phase_names(st)
            out += [(load, st.unit), (fin, "rows")]
        return out

    def _phase_names(self, stream: Any) -> tuple[str, str]:
        if len(self.streams) == 1:
            return "load", "finalize"
        return stream.phase, f"{stream.phase} finalize"

    def _connect(self) -> None:
        """Open the run's store and target connections; replay what a dead run left in the journal."""
        self.sdb = self.store.conn()
        self.tdb = self.sdb if self.same_db else target_db.connect(self.store, self.target_url)
        if not self.same_db:
            journal.recover(self.sdb, self.tdb, self.store.store_id, self.source_cfg.name)

    def _close_connections(self) -> None:
        for c in {id(c): c for c in (self.tdb, self.sdb) if c is not None}.values():
            try:
                c.close()
            except Exception:  # a connection that broke mid-run: the pool discards it
                pass
        self.sdb = self.tdb = None

    @property
    def seen_prefix(self) -> str:
        """Names of this run's stored seen-key tables; in a target database other stores may share, the
        store's id tells them apart."""
        assert self.run is not None
        return f"seen_{self.run.id}" if self.same_db else f"seen_{self.store.store_id[:8]}_{self.run.id}"

    def _drop_kept_seen(self) -> None:
        """A finished run (any status but interrupted) is never resumed: its stored seen keys can go."""
        if self.tdb is None:
            return
        for name in self.tdb.table_names(f"syncdash_{self.seen_prefix}_"):
            self.tdb.execute(f"DROP TABLE IF EXISTS {q(name)}")

    def _heartbeat(self) -> None:
        assert self.run is not None and self.run.id is not None
        while not self._stop_heartbeat.wait(LEASE_SECONDS / 4):
            try:
                self.store.renew_lease(self.cfg.name, self.run.id)
            except Exception:  # a missed beat is retried; the lease is generous
                pass

    def _finish(self, status: str, error: str | None, error_type: str | None) -> None:
        assert self.run is not None and self.run.id is not None
        now = utcnow()
        if status != "interrupted":
            try:
                self._drop_kept_seen()
                if not self.same_db and self.tdb is not None:
                    journal.forget(self.tdb, self.store.store_id, self.run.id)
            except database_errors():  # a target that went away: the tables are dropped by a later run
                pass
        with self.store.tx() as s:
            run = s.get(Run, self.run.id)
            assert run is not None
            run.status = status
            run.finished_at = now
            run.error = error
            run.error_type = error_type
            for name in COUNT_NAMES:
                setattr(run, name, self.counts[name])
            if self.warnings:
                run.warnings = self.config.redact(dumps(self.warnings))
            if self.requests is not None:
                run.http = self.config.redact(dumps({"requests": self.requests, "waits": self.waits[:200]}))
            s.add(run)
            for ph in s.exec(select(RunPhase).where(RunPhase.run_id == run.id)):
                if ph.status == "running":
                    ph.status = "done" if status in ("succeeded", "partial") else "failed"
                    ph.finished_at = now
                elif ph.status == "pending" and status not in ("succeeded", "partial"):
                    ph.status = "skipped"
                s.add(ph)
            if self.mode == "retry" and status in ("succeeded", "partial") and not self.opt.dry_run:
                self._resolve_retried(s, run.id or 0, now)
            if not self.opt.dry_run and status != "interrupted":
                st = s.get(SourceState, self.cfg.name) or SourceState(source=self.cfg.name)
                st.last_run_id = run.id
                st.last_status = status
                if status in ("succeeded", "partial"):
                    st.last_success_at = now
                    st.last_success_run_id = run.id
                    if self.mode != "retry":
                        st.fingerprint = self.fingerprint
                if st.lock_run_id == run.id:
                    st.lock_run_id = None
                    st.lock_owner = None
                    st.lease_until = None
                s.add(st)
            else:
                self.store.release_lease_in(s, self.cfg.name, run.id or 0)

    # ---- phases -------------------------------------------------------------------------------------

    def _execute_phases(self) -> None:
        assert self.run is not None and self.run.id is not None
        tdb = self.tdb
        assert tdb is not None
        try:
            if tdb.is_sqlite:
                tdb.execute("PRAGMA cache_size=-32000")
                # fewer, larger checkpoints while loading (~10% off a million-row load); WAL stays <= ~80 MB
                tdb.execute("PRAGMA wal_autocheckpoint=20000")
            if not self.same_db and not self.opt.dry_run:
                journal.ensure(tdb)
            ck = json.loads(self.run.checkpoint) if self.resumed and self.run.checkpoint else None
            first = int(ck.get("stream", 0)) if ck else 0
            self._bind_adapter()
            for i, stream in enumerate(self.streams):
                if i < first:
                    continue  # finished before the interruption
                self._enter_stream(i, stream)
                self._load(ck if i == first else None)
                self._finalize()
                self._stream_done()
        finally:
            self._collect_adapter_warnings()
            self._tx_rollback()
            if tdb.is_sqlite:
                tdb.execute("PRAGMA wal_autocheckpoint=1000")

    def _bind_adapter(self) -> None:
        bind = getattr(self.adapter, "bind", None)
        if bind is None:
            return
        st = self.store.source_states().get(self.source_cfg.name)
        cursors = json.loads(st.cursor) if st is not None and st.cursor else {}
        bind(RunContext(store=self.store, cancel=self.opt.cancel, full=self.opt.full, dry_run=self.opt.dry_run,
                        limit_pages=self.opt.limit_pages, backfill_from=self.opt.backfill_from,
                        cursors=cursors if isinstance(cursors, dict) else {}, redact=self.config.redact,
                        add_secret=self.config.add_secret, parent_rows=self._parent_rows))

    def _enter_stream(self, i: int, stream: Any) -> None:
        """Point the per-stream state (config, table, phase, counts) at stream i."""
        self.stream_idx = i
        self.adapter = stream
        self.cfg = stream.config
        self.load_phase, self.fin_phase = self._phase_names(stream)
        self.batch_no = 0
        self.keyless_errors = 0
        self.pcounts = dict.fromkeys(COUNT_NAMES, 0)
        self._last_batch: Batch | None = None
        if self.resumed:
            with self.store.session() as s:
                ph = s.get(RunPhase, self._phase_ids[self.load_phase])
                if ph is not None:
                    self.pcounts = {n: getattr(ph, n) for n in COUNT_NAMES}
                # rows that failed before their key was read block this stream's deletes, resumed or not
                self.keyless_errors = s.exec(select(_count()).select_from(ItemError).where(
                    ItemError.run_id == self.run.id, ItemError.phase == self.load_phase,  # type: ignore[union-attr]
                    ItemError.item_key == None)).one()  # noqa: E711

    def _count(self, name: str, n: int) -> None:
        self.counts[name] += n
        self.pcounts[name] += n

    def _stream_done(self) -> None:
        """Store the stream's incremental cursor: the run resumes by checkpoint, the next run by cursor."""
        final = getattr(self.adapter, "final_cursor", None)
        value = final() if final is not None else None
        if value is None or self.opt.dry_run:
            return
        sdb = self.sdb
        assert sdb is not None
        sdb.begin()
        try:
            row = sdb.one("SELECT cursor FROM syncdash_source_state WHERE source=?", (self.source_cfg.name,))
            cursors = json.loads(row[0]) if row and row[0] else {}
            if not isinstance(cursors, dict):
                cursors = {}
            old = cursors.get(self.adapter.phase)
            better = getattr(self.adapter, "later_cursor", lambda a, b: b)
            cursors[self.adapter.phase] = better(old, value) if old is not None else value
            sdb.execute("UPDATE syncdash_source_state SET cursor=? WHERE source=?",
                        (dumps(cursors), self.source_cfg.name))
            sdb.commit()
        except BaseException:
            sdb.rollback()
            raise

    # ---- the batch transaction ------------------------------------------------------------------------

    def _tx_begin(self, dry: bool) -> None:
        """Open a batch: the target's transaction (none in a dry run, which writes only the store)."""
        self._pending = []
        if not dry:
            assert self.tdb is not None
            self.tdb.begin()

    def _store_write(self, sql: str, params: Any, many: bool = False) -> None:
        """A store statement of the open batch; it commits with the batch (see _tx_commit)."""
        self._pending.append((sql, params, many))

    def _tx_commit(self) -> None:
        """Commit the batch. One database: the store statements join the target's transaction. Two: the
        target commits with a journal entry holding the store statements, then the store commits them."""
        assert self.tdb is not None and self.sdb is not None and self.run is not None and self.run.id is not None
        stmts, self._pending = self._pending, []
        if self.same_db:
            if not self.tdb.in_transaction:
                self.tdb.begin()
            journal.apply(self.tdb, stmts)
            self.tdb.commit()
            return
        if self.tdb.in_transaction:
            self.seq += 1
            stmts.append(("UPDATE syncdash_runs SET applied_seq=? WHERE id=?", (self.seq, self.run.id), False))
            journal.write(self.tdb, self.store.store_id, self.run.id, self.seq, self.source_cfg.name, stmts)
            self.tdb.commit()
            if self.seq == _CRASH_AFTER_TARGET_COMMIT:  # fault injection: the one moment the journal exists for
                os.kill(os.getpid(), signal.SIGKILL)
        self.sdb.begin()
        try:
            journal.apply(self.sdb, stmts)
            self.sdb.commit()
        except BaseException:
            self.sdb.rollback()
            raise

    def _tx_rollback(self) -> None:
        self._pending = []
        for c in (self.tdb, self.sdb):
            if c is not None and c.in_transaction:
                c.rollback()

    def _collect_adapter_warnings(self) -> None:
        for st in self.streams:
            self.warnings.extend(self.config.redact(w) for w in getattr(st, "warnings", []))
        clients = getattr(self.source_adapter, "http_clients", lambda: [])()
        waits = [w for c in clients for w in c.waits]
        if waits:
            total = sum(w.seconds for w in waits)
            kinds: dict[str, int] = {}
            for w in waits:
                kinds[w.reason] = kinds.get(w.reason, 0) + 1
            what = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:6])
            self.warnings.append(f"waited {len(waits)} time(s), {total:.1f} s in total: {what}")
            self.waits = [{"url": w.url, "reason": w.reason, "seconds": round(w.seconds, 3)} for w in waits]
        if clients:
            self.requests = sum(c.attempts for c in clients)

    def _parent_rows(self, table: str, columns: list[str], key: list[str],
                     scope: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Live rows of an earlier stream's table (of one tenant, with scope), in key order: what a for_each
        stream fans out over."""
        assert self.tdb is not None
        cols = ", ".join(q(c) for c in columns)
        order = ", ".join(q(c) for c in key)
        where, params = scope_sql(scope, "")
        try:
            rows = self.tdb.all(f"SELECT {cols} FROM {q(table)} WHERE _deleted_at IS NULL{where} ORDER BY {order}",
                                params)
        except database_errors():
            return []  # a dry run before the first real one: the parent table does not exist yet
        return [{c: (v.isoformat() if hasattr(v, "isoformat") else v) for c, v in zip(columns, r, strict=True)}
                for r in rows]

    def _load(self, ck: dict[str, Any] | None) -> None:
        assert self.run is not None and self.run.id is not None and self.tdb is not None
        cfg = self.cfg
        columns = list(cfg.fields)
        self.target = target_db.open_table(self.tdb, cfg.table, columns, [cfg.fields[c].type for c in columns],
                                           cfg.primary_key)
        dry = self.opt.dry_run
        if not dry:
            self.tdb.begin()
            try:
                self.target.ensure()
                self.tdb.commit()
            except BaseException:
                self.tdb.rollback()
                raise
        self.target_exists = self.target.exists()
        if ck is not None:
            self.fresh = bool(ck.get("fresh"))
            self.rewrite = bool(ck.get("rewrite"))
            self.batch_no = int(ck.get("batches", 0))
        else:
            self.fresh = (not dry and self.mode != "retry" and self.target.is_empty())
            state = self.store.source_states().get(cfg.name)
            self.rewrite = (self.target_exists and not self.fresh and state is not None
                            and state.fingerprint not in (None, self.fingerprint))
            if self.rewrite:
                self.warnings.append("the field mapping changed since the last sync: every row is compared "
                                     "by value and rewritten with its new hash")
        replayable = getattr(self.adapter, "replayable", True)
        # a stream that cannot be replayed cheaply (REST) keeps its seen keys in the store, committed with
        # each batch, so a resume needs no refetch; CSV re-reads its prefix into a TEMP table (faster)
        self.seen = None if self.fresh else self.target.seen_keys(
            f"{self.seen_prefix}_{self.stream_idx}" if not replayable else self.seen_prefix,
            persistent=not replayable, keep=not replayable and ck is not None)
        # a re-sync types only the rows SQLite finds new or changed (_screened); a mapping change compares
        # by value (rewrite), a retry goes record by record
        self.screening = (self.seen is not None and self.target_exists and not self.rewrite and not self.fresh
                          and self.mode != "retry")
        self._phase_start(self.load_phase)
        start = ck.get("source") if ck else None
        if ck is not None and self.seen is not None and start is not None and replayable:
            try:
                self._replay(start)
            except CheckpointInvalid as e:
                start = self._restart(str(e))
        try:
            batches = self._batches(start)
            first = next(batches, None)
        except CheckpointInvalid as e:
            start = self._restart(str(e))
            batches = self._batches(start)
            first = next(batches, None)
        if first is not None:
            self._process(first)
            if readahead.enabled() and self.opt.read_ahead and getattr(self.adapter, "read_ahead", True):
                # the rest is parsed and mapped in a child process while this one writes (readahead.py)
                try:
                    for batch, prepared in readahead.read_ahead(batches, self._prepare, first):
                        self._check_cancel()
                        self._process(batch, prepared)
                except SourceError:
                    self._check_cancel()  # a reader killed along with us is a cancel, not a failure
                    raise
            else:
                for batch in batches:
                    self._process(batch)
        # progress writes are throttled: the phase's final position is written whatever the clock says
        last = self._last_batch
        if last is None:
            self._phase_done(self.load_phase)
        else:  # a phase counted in pages learns its total only at its end
            self._phase_done(self.load_phase, last.done, last.total if last.total is not None else last.done)

    def _prepare(self, batch: Batch, records: list[Any] | None = None, screen: bool = True) -> Prepared:
        """The pure part of a batch (no database): typed rows, their keys, row errors, in-batch duplicates.

        When the table already holds rows (a re-sync), only each record's key and hash are computed: the
        writer asks SQLite which rows are new or differ and types just those (see _screened).
        """
        if records is not None:
            batch.records = records
        kh = batch.mapper.key_hash
        if screen and self.screening and kh is not None and batch.records:
            try:
                pairs = list(map(kh, batch.records))
            except Exception:  # a key that does not type: the exact path says which and why
                pairs = None
            if pairs is not None:
                unique = {p[0] for p in pairs} if len(pairs[0]) == 2 else {p[:-1] for p in pairs}
                if len(unique) == len(pairs):
                    errors = [self._problem_error(batch, p) for p in batch.problems]
                    records, batch.records = batch.records, []
                    return records, batch.lines, errors, None, json.dumps(pairs, default=str)
        rows, lines, errors = self._map(batch)
        batch.records = []  # the raw records are done with; queued batches should not hold them
        keys = list(map(batch.mapper.key_of, rows))
        if len(set(keys)) != len(keys):
            rows, lines, keys = self._drop_batch_duplicates(batch, rows, lines, keys, errors)
        return rows, lines, errors, keys, None

    def _batches(self, start: dict[str, Any] | None) -> Iterator[Batch]:
        want = None
        if self.mode == "retry":
            targets = self.retry_targets = self._load_retry_targets()
            locs = set(targets)
            want = lambda f, ln: (self._redact_path(f), ln) in locs  # noqa: E731  (errors store redacted files)
        for batch in self.adapter.batches(start, want=want):
            self._check_cancel()
            yield batch

    def _check_cancel(self) -> None:
        if self.opt.shutdown is not None and self.opt.shutdown.is_set():
            raise RunInterrupted()
        if self.opt.cancel is not None and self.opt.cancel.is_set():
            raise RunCancelled()

    def _restart(self, why: str) -> None:
        """The input changed under an interrupted run: start over (the upsert makes that safe)."""
        assert self.run is not None
        self.warnings.append(f"could not resume ({why}); restarted from the beginning")
        self.counts = dict.fromkeys(COUNT_NAMES, 0)
        self.batch_no = 0
        self.fresh = False
        self.pcounts = dict.fromkeys(COUNT_NAMES, 0)
        replayable = getattr(self.adapter, "replayable", True)
        if self.seen is not None:
            self.seen.drop()
        self.seen = self.target.seen_keys(f"{self.seen_prefix}_{self.stream_idx}" if not replayable
                                          else self.seen_prefix, persistent=not replayable)
        return None

    def _replay(self, upto: dict[str, Any]) -> None:
        """Rebuild the seen-key set from the part of the input that committed before the crash."""
        assert self.seen is not None
        for batch in self.adapter.batches(None, stop=upto):
            keys, failed = [], []
            for rec in batch.records:
                try:
                    keys.append(batch.mapper.key_of(batch.mapper.fast(rec)))
                except Exception:
                    row, _ = batch.mapper.explain(rec)  # the slow path may still map it ("3.0" as int)
                    k = batch.mapper.key_of(row) if row is not None else batch.mapper.try_key(rec)
                    if k is not None:
                        (keys if row is not None else failed).append(k)
            failed += [p.key for p in batch.problems if p.key is not None]
            if failed:
                self.seen.add(failed, FAILED)
            if keys:
                self.seen.add(keys, 0)

    # ---- one batch --------------------------------------------------------------------------------

    def _map(self, batch: Batch) -> tuple[list[tuple[Any, ...]], list[int], list[dict[str, Any]]]:
        mapper = batch.mapper
        errors: list[dict[str, Any]] = [self._problem_error(batch, p) for p in batch.problems]
        try:
            rows = list(map(mapper.fast, batch.records))
            return rows, batch.lines, errors
        except Exception:
            pass
        rows, lines = [], []
        fast, explain = mapper.fast, mapper.explain
        for rec, ln in zip(batch.records, batch.lines or [None] * len(batch.records), strict=True):
            try:
                rows.append(fast(rec))
                lines.append(ln)
                continue
            except Exception:
                row, problems = explain(rec)
            if row is not None:
                rows.append(row)
                lines.append(ln)
                continue
            key = mapper.try_key(rec)
            first = problems[0]
            msg = "; ".join(f"{p.column} (from {p.source}): {p.reason}" for p in problems)
            errors.append(self._error(batch, ln, msg, first.error_type, column=first.source,
                                      payload=rec, key=key))
        return rows, lines, errors

    def _process(self, batch: Batch, prepared: Prepared | None = None) -> None:
        assert self.run is not None and self.run.id is not None
        self.batch_no += 1
        rows, lines, errors, keys, screened = prepared if prepared is not None else self._prepare(batch)
        key_hash: str | None = None
        key_of = batch.mapper.key_of
        dry = self.opt.dry_run
        now = format_ts(utcnow())
        run_id = self.run.id
        inserted = updated = unchanged = 0
        change_rows: list[tuple[Any, ...]] = []
        self._tx_begin(dry)
        try:
            verdict = None
            if screened is not None:
                verdict = self._screened(batch, rows, lines, errors, screened)
                if verdict is None:  # a key an earlier batch had: type every row, the exact path sorts it out
                    batch.problems = []  # already among `errors`
                    rows, lines, mapped_errors, keys, _ = self._prepare(batch, rows, screen=False)
                    bad = [e["_key"] for e in mapped_errors if e.get("_key") is not None]
                    if bad and self.seen is not None:
                        self.seen.mark_failed(bad)
                    errors = errors + mapped_errors
            if verdict is None and self.seen is not None:
                failed_keys = [e["_key"] for e in errors if e.get("_key") is not None]
                if failed_keys:
                    self.seen.add(failed_keys, FAILED)
                # [key, hash] pairs, encoded once for the seen set and the hash comparison. Encoded here and
                # not in the reader process: that one is the busier of the two (read + map + marshal)
                key_hash = self.target.key_hash_json(keys, rows) if keys else None
                added = self.seen.add(keys, self.batch_no, key_hash) if keys else 0
                if added < len(keys):
                    dups = self.seen.seen_before(keys, self.batch_no)
                    if dups:
                        rows, lines, keys = self._drop_seen_duplicates(batch, rows, lines, keys, dups, errors)
                        key_hash = self.target.key_hash_json(keys, rows) if keys else None
            if verdict is None and self.fresh and not dry:
                new, changed, unchanged = rows, [], 0
                if new and not self._try_insert(new, now, run_id):
                    existing = self.target.lookup(keys)
                    dups = set(existing)
                    rows, lines, keys = self._drop_seen_duplicates(batch, rows, lines, keys, dups, errors)
                    new = rows
                    if new:
                        self.target.insert(new, now, run_id)
                inserted = len(new)
            else:
                if verdict is not None:
                    new, changed, unchanged, lines = verdict
                else:
                    new, changed = [], []
                    if keys and self.target_exists and not self.rewrite:
                        # SQLite compares the hashes: Python only sees the few rows that are new or differ
                        assert key_hash is not None  # a run against existing rows has a seen set: encoded above
                        for i, exists in self.target.differing(key_hash):
                            (changed if exists else new).append(rows[i])
                        unchanged = len(rows) - len(new) - len(changed)
                    elif keys and self.target_exists:
                        existing = self.target.lookup(keys)
                        for r, k in zip(rows, keys, strict=True):
                            (changed if k in existing else new).append(r)
                    else:
                        new = rows
                updates, diffs, same = self._diff(changed, key_of)
                unchanged += same
                if not dry:
                    if new:
                        self.target.insert(new, now, run_id)
                    if updates:
                        self.target.update(updates, now, run_id)
                inserted, updated = len(new), len(diffs)
                change_rows.extend(self._update_changes(diffs))
            change_rows.extend(self._insert_changes(new, key_of))
            self._count("inserted", inserted)
            self._count("updated", updated)
            self._count("unchanged", unchanged)
            self._count("failed", len(errors))
            self._count("skipped", batch.skipped)
            self.keyless_errors += sum(1 for e in errors if e.get("_key") is None)
            if self.mode == "retry":
                for ln in lines:
                    self.retry_loaded.add((self._redact_path(batch.file), ln))
                for e in errors:
                    self.retry_failed[(e["file"], e["line"])] = 1
            self._write_store(batch, errors, change_rows, now)
            self._tx_commit()
        except BaseException:
            self._tx_rollback()
            raise
        self._last_batch = batch
        self._report(self.load_phase, batch.done, batch.total, batch.detail)

    def _screened(self, batch: Batch, records: list[Any], lines: Sequence[int], errors: list[dict[str, Any]],
                  key_hash: str) -> tuple[list[Any], list[Any], int, list[int]] | None:
        """A batch the reader only keyed and hashed: SQLite names the rows that are new or differ, and only
        those are typed. None when a key was already seen this run (the exact path then handles duplicates).

        On a re-sync that changes 2% of a million rows this skips typing (and shipping typed) 98% of them.
        """
        assert self.seen is not None
        failed_keys = [e["_key"] for e in errors if e.get("_key") is not None]
        if failed_keys:
            self.seen.add(failed_keys, FAILED)
        if self.seen.add((), self.batch_no, key_hash) < len(records):
            return None
        mapper = batch.mapper
        new: list[Any] = []
        changed: list[Any] = []
        bad: list[Any] = []
        loaded_lines: list[int] = []
        differing = self.target.differing(key_hash)
        for i, exists in differing:
            rec = records[i]
            try:
                row = mapper.fast(rec)
            except Exception:
                row, problems = mapper.explain(rec)
                if row is None:
                    key = mapper.try_key(rec)
                    first = problems[0]
                    msg = "; ".join(f"{p.column} (from {p.source}): {p.reason}" for p in problems)
                    errors.append(self._error(batch, lines[i], msg, first.error_type, column=first.source,
                                              payload=rec, key=key))
                    if key is not None:
                        bad.append(key)
                    continue
            (changed if exists else new).append(row)
            loaded_lines.append(lines[i])
        if bad:
            self.seen.mark_failed(bad)
        if self.mode == "retry":  # (retry runs take the exact path; kept for the lines contract)
            loaded_lines = list(lines)
        return new, changed, len(records) - len(differing), loaded_lines

    def _try_insert(self, rows: list[tuple[Any, ...]], now: str, run_id: int) -> bool:
        """Fast path for a table that was empty when the run began: duplicates surface as a PK clash."""
        tdb = self.tdb
        assert tdb is not None
        tdb.savepoint("batch_insert")
        try:
            self.target.insert(rows, now, run_id)
        except integrity_errors():
            tdb.rollback_to("batch_insert")
            return False
        tdb.release("batch_insert")
        return True

    def _drop_batch_duplicates(self, batch: Batch, rows: list[tuple[Any, ...]], lines: list[int],
                               keys: list[Any], errors: list[dict[str, Any]]
                               ) -> tuple[list[tuple[Any, ...]], list[int], list[Any]]:
        first: dict[Any, int | None] = {}
        out_r, out_l, out_k = [], [], []
        for r, ln, k in zip(rows, lines, keys, strict=True):
            if k in first:
                where = f" (first on line {first[k]})" if first[k] is not None else ""
                errors.append(self._error(batch, ln, f"duplicate key {self._key_text(k)}{where}", "duplicate",
                                          payload=None, key=k, retryable=False))
                continue
            first[k] = ln
            out_r.append(r)
            out_l.append(ln)
            out_k.append(k)
        return out_r, out_l, out_k

    def _drop_seen_duplicates(self, batch: Batch, rows: list[tuple[Any, ...]], lines: list[int],
                              keys: list[Any], dups: set[Any], errors: list[dict[str, Any]]
                              ) -> tuple[list[tuple[Any, ...]], list[int], list[Any]]:
        out_r, out_l, out_k = [], [], []
        for r, ln, k in zip(rows, lines, keys, strict=True):
            if k in dups:
                errors.append(self._error(batch, ln, f"duplicate key {self._key_text(k)} (an earlier row of "
                                          "this run has it)", "duplicate", key=k, retryable=False))
                continue
            out_r.append(r)
            out_l.append(ln)
            out_k.append(k)
        return out_r, out_l, out_k

    def _diff(self, changed: list[tuple[Any, ...]], key_of: Callable[[Any], Any]
              ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, dict[str, Any], dict[str, Any]]], int]:
        """Before/after of the fields that really changed; rows equal by value only get a new hash."""
        if not changed:
            return [], [], 0
        before = self.target.fetch([key_of(r) for r in changed])
        columns = self.target.columns
        updates, diffs, same = [], [], 0
        for r in changed:
            k = key_of(r)
            old = before.get(k)
            updates.append(r)
            if old is None:
                continue
            b, a = {}, {}
            for i, c in enumerate(columns):
                if old[i] != r[i]:
                    b[c], a[c] = old[i], r[i]
            if old[-1] is not None:
                b["_deleted_at"], a["_deleted_at"] = old[-1], None
            if b:
                diffs.append((k, b, a))
            else:
                same += 1
        return updates, diffs, same

    def _insert_changes(self, new: list[tuple[Any, ...]], key_of: Callable[[Any], Any]) -> list[tuple[Any, ...]]:
        room = self.cfg.max_changes - self.changes_kept["insert"]
        if room <= 0 or not new:
            return []
        take = new[:room]
        self.changes_kept["insert"] += len(take)
        self._sample("insert", [(key_of(r), None, dict(zip(self.target.columns, r, strict=False))) for r in
                                take[:self.opt.sample_changes]])
        return [("insert", self._key_json(key_of(r)), None, None) for r in take]

    def _update_changes(self, diffs: list[tuple[Any, dict[str, Any], dict[str, Any]]]) -> list[tuple[Any, ...]]:
        room = self.cfg.max_changes - self.changes_kept["update"]
        if room <= 0 or not diffs:
            return []
        take = diffs[:room]
        self.changes_kept["update"] += len(take)
        self._sample("update", take)
        return [("update", self._key_json(k), dumps(b), dumps(a)) for k, b, a in take]

    def _sample(self, kind: str, items: list[tuple[Any, Any, Any]]) -> None:
        for k, b, a in items:
            if len(self.sample) >= self.opt.sample_changes * 3:
                return
            if sum(1 for s in self.sample if s["change"] == kind) >= self.opt.sample_changes:
                return
            self.sample.append({"change": kind, "key": self._key_list(k), "before": b, "after": a})

    def _write_store(self, batch: Batch, errors: list[dict[str, Any]], change_rows: list[tuple[Any, ...]],
                     now: str) -> None:
        """The batch's bookkeeping: errors, change records, counts and the checkpoint (none in a dry run)."""
        assert self.run is not None and self.run.id is not None
        run_id = self.run.id
        dry = self.opt.dry_run
        if errors:
            self._store_write(
                "INSERT INTO syncdash_item_errors (run_id, source, phase, item, item_key, file, line, "
                "\"column\", error_type, code, message, retryable, attempts, payload, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, self.cfg.name, self.load_phase, e["item"], e["item_key"], e["file"], e["line"],
                  e["column"], e["error_type"], e.get("code"), e["message"], bool(e["retryable"]),
                  e.get("attempts", 1), e["payload"], now) for e in errors], many=True)
        if change_rows:
            self._store_write(
                "INSERT INTO syncdash_changes (run_id, source, change, key, before, after) "
                "VALUES (?, ?, ?, ?, ?, ?)", [(run_id, self.cfg.name, *c) for c in change_rows], many=True)
        ck = {"stream": self.stream_idx, "source": batch.checkpoint, "fresh": self.fresh,
              "rewrite": self.rewrite, "batches": self.batch_no}
        c = self.counts
        self._store_write(
            "UPDATE syncdash_runs SET inserted=?, updated=?, unchanged=?, deleted=?, failed=?, skipped=?, "
            "checkpoint=?, heartbeat_at=? WHERE id=?",
            (c["inserted"], c["updated"], c["unchanged"], c["deleted"], c["failed"], c["skipped"],
             None if dry else dumps(ck), now, run_id))
        p = self.pcounts
        self._store_write("UPDATE syncdash_run_phases SET inserted=?, updated=?, unchanged=?, failed=?, skipped=? "
                          "WHERE id=?", (p["inserted"], p["updated"], p["unchanged"], p["failed"], p["skipped"],
                                         self._phase_ids[self.load_phase]))
        t = time.monotonic()
        if t - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = t
            self._store_write("UPDATE syncdash_run_phases SET done=?, total=?, detail=? WHERE id=?",
                              (batch.done, batch.total, self.config.redact(batch.detail or "") or None,
                               self._phase_ids[self.load_phase]))

    # ---- finalize: deletes ----------------------------------------------------------------------------

    def _finalize(self) -> None:
        assert self.run is not None and self.run.id is not None
        self._phase_start(self.fin_phase)
        cfg = self.cfg
        if self.mode != "full" or cfg.deletes == "keep" or self.fresh or self.seen is None \
                or not self.target_exists:
            self._phase_done(self.fin_phase, 0, 0)
            self._drop_seen()
            return
        partial_read = getattr(self.adapter, "truncated", None) or (
            f"--limit-pages {self.opt.limit_pages}" if self.opt.limit_pages else None)
        if partial_read:
            self.warnings.append(f"deletes skipped: {partial_read}, so rows missing from what was read may still "
                                 "exist at the source")
            self._phase_done(self.fin_phase, 0, 0)
            self._drop_seen()
            return
        if self.keyless_errors:
            self.warnings.append(f"deletes skipped: {self.keyless_errors} row(s) failed before their key "
                                 "could be read, so absent rows cannot be told apart from them")
            self._phase_done(self.fin_phase, 0, 0)
            self._drop_seen()
            return
        dry = self.opt.dry_run
        self._tx_begin(dry)
        try:
            scope = getattr(self.adapter, "scope", None) or None
            live = self.target.live_count(scope)
            seen_live = self.counts["inserted"] + self.counts["updated"] + self.counts["unchanged"]
            # every row this run inserted, updated or found unchanged is live now, so at most
            # live - seen_live rows are absent: an unchanged re-run skips the scan (not in a dry run,
            # which inserted nothing)
            n = 0 if (not dry and live <= seen_live) else self.target.collect_absent(self.seen, scope)
            ratio = cfg.max_delete_ratio
            if n and ratio is not None and live and n / live > ratio:
                raise DeleteGuardTripped(
                    f"source {cfg.name}: the sync would delete {n} of {live} rows ({n / live:.0%}), more than "
                    f"max_delete_ratio {ratio:.0%}; nothing was deleted. If the source really shrank, raise "
                    "max_delete_ratio (or set it to null) for this source and run again")
            room = max(0, cfg.max_changes - self.changes_kept["delete"])
            absent = self.target.absent_rows(limit=room) if room and n else []
            key_of = self.target.key_of
            changes = [("delete", self._key_json(key_of(r)),
                        dumps(dict(zip(self.target.columns, r, strict=False))), None) for r in absent]
            self._sample("delete", [(key_of(r), dict(zip(self.target.columns, r, strict=False)), None)
                                    for r in absent[:self.opt.sample_changes]])
            now = format_ts(utcnow())
            deleted = self.target.delete_absent(cfg.deletes, now, self.run.id) if not dry and n else n
            self._count("deleted", deleted)
            self.changes_kept["delete"] += len(changes)
            if changes:
                self._store_write("INSERT INTO syncdash_changes (run_id, source, change, key, before, after) "
                                  "VALUES (?, ?, ?, ?, ?, ?)", [(self.run.id, cfg.name, *c) for c in changes],
                                  many=True)
            self._store_write("UPDATE syncdash_runs SET deleted=? WHERE id=?", (self.counts["deleted"], self.run.id))
            self._store_write("UPDATE syncdash_run_phases SET deleted=? WHERE id=?",
                              (self.pcounts["deleted"], self._phase_ids[self.load_phase]))
            self._store_write("UPDATE syncdash_run_phases SET done=?, total=?, status='done', finished_at=? "
                              "WHERE id=?", (deleted, n, now, self._phase_ids[self.fin_phase]))
            self._tx_commit()
        except BaseException:
            self._tx_rollback()
            raise
        finally:
            self._drop_seen()
        self._report(self.fin_phase, n, n, None)

    def _drop_seen(self) -> None:
        if self.seen is not None:
            self.seen.drop()

    # ---- retry bookkeeping ----------------------------------------------------------------------------

    def _load_retry_targets(self) -> dict[tuple[str | None, int | None], ItemError]:
        with self.store.session() as s:
            q = select(ItemError).where(
                ItemError.run_id == self.opt.retry_of, ItemError.resolved_at == None,  # noqa: E711
                ItemError.retryable == True)  # noqa: E712
            if self.opt.retry_errors:
                q = q.where(ItemError.id.in_(self.opt.retry_errors))  # type: ignore[union-attr]
            errs = s.exec(q).all()
        return {(e.file, e.line): e for e in errs}

    def _resolve_retried(self, s: Any, run_id: int, now: Any) -> None:
        for loc, err in self.retry_targets.items():
            e = s.get(ItemError, err.id)
            if e is None:
                continue
            if loc in self.retry_loaded:
                e.resolution = "fixed"
            elif loc in self.retry_failed:
                e.resolution = "retried"
            else:
                e.resolution = "gone"
            e.resolved_at = now
            e.resolved_by_run = run_id
            s.add(e)
        if self.retry_failed:
            # carry the attempt count forward onto the new errors of this retry run
            for new in s.exec(select(ItemError).where(ItemError.run_id == run_id)):
                old = self.retry_targets.get((new.file, new.line))
                if old is not None:
                    new.attempts = old.attempts + 1
                    s.add(new)

    # ---- helpers ----------------------------------------------------------------------------------------

    def _problem_error(self, batch: Batch, p: Any) -> dict[str, Any]:
        return self._error(batch, p.line, p.message, p.error_type, column=p.column, payload=p.payload,
                           key=p.key, file=p.file, retryable=p.retryable)

    def _error(self, batch: Batch, line: int | None, message: str, error_type: str, *,
               column: str | None = None, payload: Any = None, key: Any = None, file: str | None = None,
               retryable: bool | None = None) -> dict[str, Any]:
        file = self._redact_path(file or batch.file)
        item = f"{file}:{line}" if file and line is not None else (f"key {self._key_text(key)}" if key is not None
                                                                      else None)
        return {"item": item, "item_key": None if key is None else self._key_json(key), "_key": key,
                "file": file, "line": line, "column": column, "error_type": error_type,
                "message": self.config.redact(message),
                "retryable": (error_type not in NOT_RETRYABLE) if retryable is None else retryable,
                "payload": None if payload is None else dumps(payload)}

    def _redact_path(self, path: str | None) -> str | None:
        """File paths can hold ${VAR} values (path: ${DATA_DIR}/x.csv): mask them before they are stored."""
        if path is None:
            return None
        red = self._redacted.get(path)
        if red is None:
            red = self._redacted[path] = self.config.redact(path)
        return red

    def _key_list(self, k: Any) -> list[Any]:
        return list(k) if isinstance(k, tuple) else [k]

    def _key_json(self, k: Any) -> str:
        return dumps(self._key_list(k))

    def _key_text(self, k: Any) -> str:
        return ", ".join(f"{c}={v!r}" for c, v in zip(self.cfg.primary_key, self._key_list(k), strict=False))

    def _phase_start(self, name: str) -> None:
        pid = self._phase_ids[name]
        total = self.adapter.total() if name == self.load_phase else None
        with self.store.engine.begin() as c:
            c.exec_driver_sql(
                "UPDATE syncdash_run_phases SET status='running', started_at=COALESCE(started_at, ?), "
                "total=COALESCE(?, total) WHERE id=?", (format_ts(utcnow()), total, pid))

    def _phase_done(self, name: str, done: int | None = None, total: int | None = None) -> None:
        pid = self._phase_ids[name]
        with self.store.engine.begin() as c:
            if done is None:
                # a phase counted in pages learns its total only at the end
                c.exec_driver_sql("UPDATE syncdash_run_phases SET status='done', finished_at=?, "
                                  "done=COALESCE(total, done), total=COALESCE(total, done) WHERE id=?",
                                  (format_ts(utcnow()), pid))
            else:
                c.exec_driver_sql("UPDATE syncdash_run_phases SET status='done', finished_at=?, done=?, total=? "
                                  "WHERE id=?", (format_ts(utcnow()), done, total, pid))

    def _report(self, phase: str, done: int, total: int | None, detail: str | None) -> None:
        if self.opt.on_progress is None or self.run is None or self.run.id is None:
            return
        self.opt.on_progress(Progress(run_id=self.run.id, source=self.cfg.name, phase=phase, done=done,
                                      total=total, unit=self.adapter.unit if phase == self.load_phase else "rows",
                                      counts=dict(self.counts), detail=detail, resumed=self.resumed))


def _change_table() -> Any:
    from syncdash.store.models import Change

    return Change.__table__  # type: ignore[attr-defined]


def _count() -> Any:
    from sqlalchemy import func

    return func.count()


def _execution_class(kind: str) -> type[_RunExecution]:
    if kind == "push":
        from syncdash.engine.push import PushExecution

        return PushExecution
    if kind == "flow":
        from syncdash.engine.flow import FlowExecution

        return FlowExecution
    return _RunExecution
