"""What a person can ask of syncdash from the console (and later the HTTP API): run, cancel, pause, retry,
resolve. Every request goes through the store, so it works the same whether this process hosts the workers
or a daemon elsewhere on the same database carries it out."""

from __future__ import annotations

import json
from typing import Any

from syncdash.config.models import Config
from syncdash.errors import UsageError
from syncdash.store import queue
from syncdash.store.db import Store, format_ts
from syncdash.store.models import Command, Run, RunStatus, SourceState, utcnow


def request_run(store: Store, config: Config, source: str, *, trigger: str = "console", full: bool = False,
                dry_run: bool = False, retry_of: int | None = None, retry_errors: list[int] | None = None) -> int:
    src = config.source(source)
    if src is None:
        raise UsageError(f"unknown source {source!r}")
    rid = queue.enqueue(store, source, trigger=trigger, kind=src.kind, parent_run_id=retry_of,
                        options={"full": full, "dry_run": dry_run, "retry_of": retry_of,
                                 "retry_errors": retry_errors})
    assert rid is not None
    return rid


def request_cancel(store: Store, run_id: int, hosted: Any = None) -> str:
    """A queued run is cancelled at once; a running one stops after its batch (its worker is told)."""
    with store.engine.begin() as c:
        n = c.exec_driver_sql("UPDATE syncdash_runs SET status = ?, finished_at = ?, "
                              "error = 'cancelled before it started' WHERE id = ? AND status = ?",
                              (RunStatus.CANCELLED.value, format_ts(utcnow()), run_id, RunStatus.QUEUED.value)).rowcount
    if n:
        return "cancelled before it started"
    if hosted is not None and hosted.command("cancel", None, run_id, {}).get("cancelled"):
        return "stopping after the current batch"
    from syncdash.store.wakeup import notify_sql

    with store.tx() as s:
        s.add(Command(action="cancel", run_id=run_id))
        if (notify := notify_sql(store)) is not None:  # the daemon serves commands when woken
            s.connection().exec_driver_sql(notify)
    return "cancel sent to the daemon"


def set_paused(store: Store, source: str, paused: bool) -> None:
    with store.tx() as s:
        st = s.get(SourceState, source) or SourceState(source=source)
        st.paused = paused
        s.add(st)


def retry_errors(store: Store, config: Config, run_id: int, error_ids: list[int] | None = None) -> int:
    """Re-process the failed items of a run (all retryable ones, or only `error_ids`), as a queued run."""
    run = store.get_run(run_id)
    if run is None:
        raise UsageError(f"no run {run_id}")
    if run.kind == "flow":  # a flow's failed items belong to its step runs: retry each step that has some
        steps = _steps_with_errors(store, run_id, error_ids)
        for step in steps:
            if (why := why_no_item_retry(config, step.source)) is not None:
                raise UsageError(why)
        ids = [request_run(store, config, step.source, trigger="retry", retry_of=step.id, retry_errors=error_ids)
               for step in steps]
        if not ids:
            raise UsageError(f"flow run {run_id} has no step with retryable failed items")
        return ids[0]
    if (why := why_no_item_retry(config, run.source)) is not None:
        raise UsageError(why)
    return request_run(store, config, run.source, trigger="retry", retry_of=run_id, retry_errors=error_ids)


def why_no_item_retry(config: Config, source: str) -> str | None:
    """Why a source's failed items cannot be retried alone (its kind re-reads only its whole input), in words a
    person can act on; None when they can (or the source is gone: the caller says so in its own words). The
    console's `r`/`R`, `syncdash retry` and the API's retry all ask this, so none starts a run that can only
    re-read everything or fail."""
    from syncdash.config.kinds import adapter_for

    src = config.source(source)
    if src is None:
        return None
    try:
        caps = adapter_for(src.kind)(src).capabilities
    except Exception:  # an adapter that cannot be built here: the retry run will say why
        return None
    if caps.retry_items or caps.execution == "flow":  # a flow retries through its steps' own kinds
        return None
    return (f"a {src.kind} source cannot re-read its failed items alone: run {source} again to retry them "
            "with everything else.")


def _steps_with_errors(store: Store, flow_run_id: int, error_ids: list[int] | None) -> list[Run]:
    """The flow's step runs holding unresolved retryable errors (only those among error_ids, when given)."""
    from sqlmodel import col, select

    from syncdash.store.models import ItemError

    errs = select(ItemError.run_id).where(col(ItemError.resolved_at).is_(None), ItemError.retryable == True)  # noqa: E712
    # an open error a later run hit again is that run's too (last_run_id): see queries.in_runs
    again = select(ItemError.last_run_id).where(col(ItemError.resolved_at).is_(None), ItemError.retryable == True)  # noqa: E712
    if error_ids:
        errs = errs.where(col(ItemError.id).in_(error_ids))
        again = again.where(col(ItemError.id).in_(error_ids))
    with store.session() as s:
        return list(s.exec(select(Run).where(Run.flow_run_id == flow_run_id,
                                             col(Run.id).in_(errs) | col(Run.id).in_(again))
                           .order_by(col(Run.id))))


def last_failed_run(store: Store, source: str) -> Run | None:
    from sqlmodel import col, select

    with store.session() as s:
        return s.exec(select(Run).where(Run.source == source, Run.failed > 0, Run.mode != "retry")
                      .order_by(col(Run.id).desc())).first()


def command_result(store: Store, command_id: int) -> dict[str, Any] | None:
    with store.session() as s:
        cmd = s.get(Command, command_id)
        return None if cmd is None or cmd.result is None else json.loads(cmd.result)
