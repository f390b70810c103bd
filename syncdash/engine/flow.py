"""Executing a flow: its steps' runs, one after the other, as the phases of one flow run.

Each step is the step source's own run through the same Engine.run path as any trigger (trigger `flow`,
linked by flow_run_id), so its lease, cursor, checkpoint and errors stay the source's. The flow run mirrors
each step's live progress and final counts into its phase row, and its checkpoint names the next step, so an
interrupted flow resumes at the step it was in (whose own run then resumes from its checkpoint).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

from syncdash.common.dialect import Conn
from syncdash.common.humanize import unit_of
from syncdash.engine.lifecycle import RunLifecycle
from syncdash.engine.options import Progress, RunOptions, RunResult
from syncdash.errors import AlreadyRunning, RunCancelled, RunInterrupted, SourceError
from syncdash.kinds.contract import Source
from syncdash.kinds.flow.config import FlowConfig
from syncdash.store.db import dumps, format_ts
from syncdash.store.rows import COUNTS, PhaseStatus, RunStatus, utcnow

RELAY_EVERY = 0.25  # seconds between copies of a step's progress into the flow's phase row
DONE_COUNTS = ("inserted", "updated", "unchanged", "deleted", "failed")  # what a step's phase shows as done

RunStep = Callable[[str, RunOptions], RunResult]  # Engine.run: a step is its source's own run


class FlowStepFailed(SourceError):
    """A step of a flow with on_error: stop failed; carries the step run's error type and retryability."""

    def __init__(self, message: str, error_type: str | None, retryable: bool) -> None:
        super().__init__(message)
        self.error_type = error_type or "source"
        self.retryable = retryable


class FlowExecutor:
    """Runs a flow's steps through the engine (handed in as run_step, so this module needs no Engine)."""

    def __init__(self, life: RunLifecycle, source: Source, run_step: RunStep) -> None:
        assert isinstance(life.cfg, FlowConfig)
        self.life = life
        self.flow: FlowConfig = life.cfg
        self.source = source
        self.run_step = run_step
        self.checkpoint: str | None = None  # the flow run's checkpoint as last written (None: as it began)

    def phase_specs(self) -> list[tuple[str, str]]:
        return [(st.phase, "rows") for st in self.source.streams()]

    def resolve_retried(self, c: Conn, run_id: int, now: datetime) -> None:
        """A flow is not retried as a whole: `retry` retries each step run with failed items."""
        return None

    def execute(self) -> None:
        life = self.life
        flow = self.flow
        ck = life.checkpoint() or {}
        first = int(ck.get("step", 0))
        life.failed_parts = list(ck.get("failed", []))
        for i, step in enumerate(flow.steps):
            if i < first:
                continue
            life.check_cancel()
            life.phase_start(step)
            result, error = self._run_step(step)
            counts = result.counts if result is not None else dict.fromkeys(COUNTS, 0)
            for name in COUNTS:
                life.counts[name] += counts[name]
            status = result.status if result is not None else RunStatus.FAILED
            if status == RunStatus.INTERRUPTED:
                raise RunInterrupted()
            if status == RunStatus.CANCELLED:
                raise RunCancelled()
            failed = status == RunStatus.FAILED
            if failed:
                life.failed_parts.append(step)
            self._step_done(i, step, result, failed)
            if failed:
                why = error or (result.error if result is not None else None) or "failed"
                if flow.on_error == "stop":
                    raise FlowStepFailed(f"step {step} failed: {why}",
                                         result.error_type if result is not None else "source",
                                         bool(result.retryable) if result is not None else True)
                life.warnings.append(f"step {step} failed (on_error: continue): {why}")

    def _run_step(self, step: str) -> tuple[RunResult | None, str | None]:
        life = self.life
        run_id = life.run_id
        pid = life.phase_ids[step]
        last = [0.0]

        def relay(p: Progress) -> None:
            # the step's phase counts the step's rows (its unit is rows): the step run's own phases count bytes,
            # pages or rows and restart at each phase (load, then finalize; per tenant), so their position
            # would make the step's bar jump between units. Rows handled so far only grow; the total is
            # known when the step ends (_step_done)
            rows = sum(p.counts[n] for n in DONE_COUNTS)
            now = time.monotonic()
            if now - last[0] >= RELAY_EVERY:
                last[0] = now
                with life.store.write() as c:
                    c.execute("UPDATE syncdash_run_phases SET done=?, total=NULL, detail=?, inserted=?, "
                                      "updated=?, unchanged=?, deleted=?, failed=?, skipped=? WHERE id=?",
                                      (rows, _step_detail(p), *(p.counts[n] for n in COUNTS), pid))
            if life.opt.on_progress is not None:
                life.opt.on_progress(Progress(run_id=run_id, source=self.flow.name, phase=step,
                                              done=rows, total=None, unit="rows",
                                              counts={n: life.counts[n] + p.counts[n] for n in COUNTS},
                                              detail=_step_detail(p), resumed=life.resumed))

        opt = life.opt
        opts = RunOptions(trigger="flow", full=opt.full, dry_run=opt.dry_run, cancel=opt.cancel,
                          shutdown=opt.shutdown, on_progress=relay, limit_pages=opt.limit_pages,
                          flow_run_id=run_id, read_ahead=opt.read_ahead)
        try:
            return self.run_step(step, opts), None
        except AlreadyRunning as e:  # the step's source runs elsewhere right now: the flow can try later
            return None, str(e)

    def _step_done(self, i: int, step: str, result: RunResult | None, failed: bool) -> None:
        """The step's counts onto its phase, the flow's running totals and the next step, in one transaction."""
        life = self.life
        run = life.run
        assert run is not None
        before = self.checkpoint if self.checkpoint is not None else run.checkpoint
        counts = result.counts if result is not None else dict.fromkeys(COUNTS, 0)
        done = sum(counts[n] for n in DONE_COUNTS)
        ck = {"step": i + 1, "failed": life.failed_parts,
              "runs": {**json.loads(before or "{}").get("runs", {}),
                       step: result.run_id if result is not None else None}}
        self.checkpoint = dumps(ck)
        now = format_ts(utcnow())
        with life.store.write() as c:
            c.execute(
                "UPDATE syncdash_run_phases SET status=?, done=?, total=?, detail=?, finished_at=?, inserted=?, "
                "updated=?, unchanged=?, deleted=?, failed=?, skipped=? WHERE id=?",
                (PhaseStatus.FAILED.value if failed else PhaseStatus.DONE.value, done, done,
                 f"run {result.run_id}: {result.status}" if result is not None else "did not start", now,
                 *(counts[n] for n in COUNTS), life.phase_ids[step]))
            c.execute(
                "UPDATE syncdash_runs SET inserted=?, updated=?, unchanged=?, deleted=?, failed=?, skipped=?, "
                "checkpoint=?, heartbeat_at=? WHERE id=?",
                (*(life.counts[n] for n in COUNTS), None if life.opt.dry_run else self.checkpoint, now, life.run_id))
        life.report(step, done, done, f"run {result.run_id}" if result is not None else None)


def _step_detail(p: Progress) -> str:
    """Where the step's run is, in its own phase's unit (the step's bar counts rows): `load: 3/9 pages, ...`."""
    where = f"{p.done:,}/{p.total:,} {unit_of(p.total, p.unit)}" if p.total else f"{p.done:,} {unit_of(p.done, p.unit)}"
    return f"{p.phase}: {where}" + (f", {p.detail}" if p.detail else "")
