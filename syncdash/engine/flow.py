"""Executing a flow: its steps' runs, one after the other, as the phases of one flow run.

Each step is the step source's own run through the same Engine.run path as any trigger (trigger `flow`,
linked by flow_run_id), so its lease, cursor, checkpoint and errors stay the source's. The flow run mirrors
each step's live progress and final counts into its phase row, and its checkpoint names the next step, so an
interrupted flow resumes at the step it was in (whose own run then resumes from its checkpoint).
"""

from __future__ import annotations

import json
import time
from typing import Any

from syncdash.engine.run import COUNT_NAMES, Engine, Progress, RunOptions, _RunExecution
from syncdash.errors import AlreadyRunning, RunCancelled, RunInterrupted, SourceError
from syncdash.store.db import dumps, format_ts
from syncdash.store.models import utcnow

RELAY_EVERY = 0.25  # seconds between copies of a step's progress into the flow's phase row


class FlowStepFailed(SourceError):
    """A step of a flow with on_error: stop failed; carries the step run's error type and retryability."""

    def __init__(self, message: str, error_type: str | None, retryable: bool) -> None:
        super().__init__(message)
        self.error_type = error_type or "source"
        self.retryable = retryable


class FlowExecution(_RunExecution):
    def _phase_specs(self) -> list[tuple[str, str]]:
        return [(st.phase, "rows") for st in self.streams]

    def _execute_phases(self) -> None:
        assert self.run is not None and self.run.id is not None
        flow = self.source_cfg
        ck = json.loads(self.run.checkpoint) if self.resumed and self.run.checkpoint else {}
        first = int(ck.get("step", 0))
        self.step_failures = list(ck.get("failed", []))
        for i, step in enumerate(flow.steps):  # type: ignore[attr-defined]
            if i < first:
                continue
            self._check_cancel()
            self._phase_start(step)
            result, error = self._run_step(step)
            counts = result.counts if result is not None else dict.fromkeys(COUNT_NAMES, 0)
            for name in COUNT_NAMES:
                self.counts[name] += counts[name]
            status = result.status if result is not None else "failed"
            if status == "interrupted":
                raise RunInterrupted()
            if status == "cancelled":
                raise RunCancelled()
            failed = status == "failed"
            if failed:
                self.step_failures.append(step)
            self._step_done(i, step, result, failed)
            if failed:
                why = error or (result.error if result is not None else None) or "failed"
                if flow.on_error == "stop":  # type: ignore[attr-defined]
                    raise FlowStepFailed(f"step {step} failed: {why}",
                                         result.error_type if result is not None else "source",
                                         bool(result.retryable) if result is not None else True)
                self.warnings.append(f"step {step} failed (on_error: continue): {why}")

    def _run_step(self, step: str) -> tuple[Any, str | None]:
        assert self.run is not None and self.run.id is not None
        pid = self._phase_ids[step]
        last = [0.0]

        def relay(p: Progress) -> None:
            now = time.monotonic()
            if now - last[0] >= RELAY_EVERY:
                last[0] = now
                with self.store.engine.begin() as c:
                    c.exec_driver_sql("UPDATE syncdash_run_phases SET done=?, total=?, detail=?, inserted=?, "
                                      "updated=?, unchanged=?, deleted=?, failed=?, skipped=? WHERE id=?",
                                      (p.done, p.total, f"{p.phase}: {p.detail}" if p.detail else p.phase,
                                       *(p.counts[n] for n in COUNT_NAMES), pid))
            if self.opt.on_progress is not None:
                self.opt.on_progress(Progress(run_id=self.run.id or 0, source=self.source_cfg.name, phase=step,
                                              done=p.done, total=p.total, unit=p.unit,
                                              counts={n: self.counts[n] + p.counts[n] for n in COUNT_NAMES},
                                              detail=p.detail, resumed=self.resumed))

        opts = RunOptions(trigger="flow", full=self.opt.full, dry_run=self.opt.dry_run, cancel=self.opt.cancel,
                          shutdown=self.opt.shutdown, on_progress=relay, limit_pages=self.opt.limit_pages,
                          flow_run_id=self.run.id, read_ahead=self.opt.read_ahead)
        try:
            return Engine(self.store, self.config).run(step, opts), None
        except AlreadyRunning as e:  # the step's source runs elsewhere right now: the flow can try later
            return None, str(e)

    def _step_done(self, i: int, step: str, result: Any, failed: bool) -> None:
        """The step's counts onto its phase, the flow's running totals and the next step, in one transaction."""
        assert self.run is not None and self.run.id is not None
        counts = result.counts if result is not None else dict.fromkeys(COUNT_NAMES, 0)
        done = sum(counts[n] for n in ("inserted", "updated", "unchanged", "deleted", "failed"))
        ck = {"step": i + 1, "failed": self.step_failures,
              "runs": {**json.loads(self.run.checkpoint or "{}").get("runs", {}),
                       step: result.run_id if result is not None else None}}
        self.run.checkpoint = dumps(ck)
        now = format_ts(utcnow())
        with self.store.engine.begin() as c:
            c.exec_driver_sql(
                "UPDATE syncdash_run_phases SET status=?, done=?, total=?, detail=?, finished_at=?, inserted=?, "
                "updated=?, unchanged=?, deleted=?, failed=?, skipped=? WHERE id=?",
                ("failed" if failed else "done", done, done,
                 f"run {result.run_id}: {result.status}" if result is not None else "did not start", now,
                 *(counts[n] for n in COUNT_NAMES), self._phase_ids[step]))
            c.exec_driver_sql(
                "UPDATE syncdash_runs SET inserted=?, updated=?, unchanged=?, deleted=?, failed=?, skipped=?, "
                "checkpoint=?, heartbeat_at=? WHERE id=?",
                (*(self.counts[n] for n in COUNT_NAMES), None if self.opt.dry_run else self.run.checkpoint, now,
                 self.run.id))
        self._report(step, done, done, f"run {result.run_id}" if result is not None else None)
