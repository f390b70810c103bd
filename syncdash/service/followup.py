"""What happens after a run finishes, whoever started it (CLI/cron, console, API, schedule, retry):
whether it is retried under `run_retry:` and which event (`failed`, `partial`, `recovered`) it raises.

Two store columns make this exactly-once across every process sharing a store:

- `syncdash_runs.followed_up_at`: the process that sets it (an atomic `UPDATE ... WHERE followed_up_at IS
  NULL`) decides the retry. A daemon follows up its own runs at once and, on each pass, the runs other
  processes finished (a cron-driven `syncdash run`, say) once their process has gone.
- `syncdash_runs.notified_at`: the process that sets it delivers the run's event. A `syncdash run` with no
  daemon alive delivers its own events before exiting (`deliver_own_events`); otherwise a daemon does.

The run row does not say whether a failure may pass; the finishing process knows (RunResult.retryable) and
records it in the run's options JSON (`failure_retryable`), read back here. Without that record (its
process died first), the error type decides.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from syncdash.config.models import Config, SourceConfig
from syncdash.store import queue
from syncdash.store.db import Store, format_ts
from syncdash.store.health import VERDICT_STATUSES
from syncdash.store.owners import owner_alive
from syncdash.store.rows import FINAL_STATUSES, RunStatus, utcnow

if TYPE_CHECKING:  # a run here is the model's instance or its light row (syncdash.store.rows): same attributes
    from syncdash.store.models import Run

log = logging.getLogger("syncdash.daemon")

RETRYABLE_KEY = "failure_retryable"
# without a recorded RunResult.retryable: the error types that name a cause that may pass by itself
RETRYABLE_TYPES = frozenset({"unavailable", "network", "timeout", "breaker"})
FOLLOW_UP_WINDOW = timedelta(days=1)  # older unhandled runs (a store upgraded from before 0003) are history
FOREIGN_GRACE = timedelta(seconds=30)  # a run finished on another host: its process may still be following up
DELIVERY_WAIT = 10.0  # seconds a `syncdash run` waits for its own notifications before exiting


@dataclass
class FollowUp:
    """The decision for one finished run: the retry queued (if any) and the event to deliver (if any)."""

    run: Run
    retry_id: int | None
    event: dict[str, Any] | None
    targets: list[Any]


def targets_of(config: Config, src: SourceConfig | None) -> list[Any]:
    """The notify configs an event of `src` goes to: the global one and the source's own."""
    return [n for n in (config.notify, getattr(src, "notify", None)) if n is not None]


def record_retryable(store: Store, run_id: int, retryable: bool) -> None:
    """Remember whether a failure may pass, for whichever daemon follows the run up."""
    with store.write() as c:
        row = c.one("SELECT options FROM syncdash_runs WHERE id = ?", (run_id,))
        if row is None:
            return
        opts = json.loads(row[0]) if row[0] else {}
        opts[RETRYABLE_KEY] = retryable
        c.execute("UPDATE syncdash_runs SET options = ? WHERE id = ?", (json.dumps(opts), run_id))


def is_retryable(run: Run) -> bool:
    opts = queue.run_options(run)
    if RETRYABLE_KEY in opts:
        return bool(opts[RETRYABLE_KEY])
    return run.error_type in RETRYABLE_TYPES


def _claim(store: Store, run_id: int, column: str, now: datetime) -> bool:
    """Atomically mark the run handled for `column`; True for the one process that did."""
    assert column in ("followed_up_at", "notified_at")
    with store.write() as c:
        return c.rowcount(f"UPDATE syncdash_runs SET {column} = ? WHERE id = ? AND {column} IS NULL",
                          (format_ts(now), run_id)) == 1


def _previous_verdict(store: Store, run: Run) -> str | None:
    prev = store.scalar(
        "SELECT status FROM syncdash_runs WHERE source = ? AND id < ? AND NOT dry_run AND status IN (?, ?, ?) "
        "ORDER BY id DESC LIMIT 1", (run.source, run.id, *(s.value for s in VERDICT_STATUSES)))
    return None if prev is None else str(prev)


def _superseded(store: Store, run: Run) -> bool:
    """A newer run of the source exists (queued, running or finished): retrying this one would be stale."""
    return store.scalar("SELECT 1 FROM syncdash_runs WHERE source = ? AND id > ? AND NOT dry_run LIMIT 1",
                        (run.source, run.id)) is not None


def event_of(store: Store, config: Config, run: Run, *, retrying: bool, now: datetime) -> FollowUp:
    """The run's event (claiming notified_at); `failed` only once no retry is left."""
    from syncdash.service.notify import build_event, event_for_run

    src = config.source(run.source)
    targets = targets_of(config, src)
    out = FollowUp(run, None, None, targets)
    if run.dry_run or run.id is None:
        return out
    kind = event_for_run(run, _previous_verdict(store, run))
    if kind is None or (kind == "failed" and retrying):
        _claim(store, run.id, "notified_at", now)  # decided: nothing to say
        return out
    if _claim(store, run.id, "notified_at", now) and targets:
        out.event = build_event(kind, run.source, run)
    return out


def follow_up(store: Store, config: Config, run: Run, *, retryable: bool | None = None,
              now: datetime | None = None) -> FollowUp | None:
    """Claim the run's follow-up; queue its retry when the policy says so; return its event.

    None when another process followed it up first."""
    now = now or utcnow()
    if run.id is None or not _claim(store, run.id, "followed_up_at", now):
        return None
    src = config.source(run.source)
    retry_id = None
    can_retry = retryable if retryable is not None else is_retryable(run)
    if (src is not None and run.status == RunStatus.FAILED and not run.dry_run and can_retry
            and run.attempt < src.run_retry.attempts and not _superseded(store, run)):
        policy = src.run_retry
        wait = min(policy.max, policy.backoff * 2 ** (run.attempt - 1))
        finished = run.finished_at or now
        opts = {k: v for k, v in queue.run_options(run).items() if k != RETRYABLE_KEY}
        retry_id = queue.enqueue(store, run.source, trigger="retry", kind=src.kind, options=opts,
                                 not_before=max(now, finished + timedelta(seconds=wait)),
                                 parent_run_id=run.id, attempt=run.attempt + 1)
        log.info("retry queued", extra={"source": run.source, "run_id": retry_id, "after_s": wait,
                                        "attempt": run.attempt + 1, "retry_of": run.id, "trigger": run.trigger})
    elif run.status == RunStatus.FAILED and not run.dry_run:
        log.error("run failed for good", extra={"source": run.source, "run_id": run.id, "error": run.error})
    done = event_of(store, config, run, retrying=retry_id is not None, now=now)
    done.retry_id = retry_id
    return done


def pending_runs(store: Store, now: datetime | None = None) -> list[Run]:
    """Finished runs nobody followed up yet whose process is gone (or, on another host, finished a while ago)."""
    from sqlmodel import col, select

    from syncdash.store.models import Run

    now = now or utcnow()
    with store.session() as s:
        rows = list(s.exec(select(Run).where(col(Run.followed_up_at).is_(None), col(Run.status).in_(FINAL_STATUSES),
                                             col(Run.finished_at) > now - FOLLOW_UP_WINDOW)
                           .order_by(col(Run.id))))
    out = []
    for run in rows:
        alive = owner_alive(run.owner)
        if alive or (alive is None and run.finished_at is not None and run.finished_at > now - FOREIGN_GRACE):
            continue  # its own process is still at it
        out.append(run)
    return out


def send(config: Config, follow: FollowUp, on_warning: Callable[[str], None] | None = None) -> bool:
    """Deliver one event to its targets; warnings for failed deliveries. True when all were delivered."""
    from syncdash.service.notify import Notifier

    if follow.event is None:
        return True
    ok = True
    for cfg in follow.targets:
        for d in Notifier(cfg, redact=config.redact).send(follow.event):
            if not d.ok:
                ok = False
                msg = f"notification for run {follow.run.id} not delivered: {d.error}"
                if on_warning is not None:
                    on_warning(msg)
                log.warning("notification not delivered: %s", d.error,
                            extra={"source": follow.run.source, "run_id": follow.run.id})
    return ok


def deliver_own_events(store: Store, config: Config, results: list[Any],
                       timeout: float = DELIVERY_WAIT) -> list[str]:
    """`syncdash run` with no daemon alive: deliver the finished runs' events before exiting, waiting at most
    `timeout` seconds. Returns warnings (undelivered events); they never change the exit code.

    Each run's retryability is recorded first, so a later daemon (`daemon --once` from cron) retries it.
    With a daemon alive, it follows the runs up and notifies (it sees them once this process has exited)."""
    from syncdash.store.health import live_daemons
    from syncdash.store.reader import read_view

    for r in results:
        if r.status == RunStatus.FAILED:
            record_retryable(store, r.run_id, bool(r.retryable))
    view = read_view(store)  # no ORM for a CLI run's own events on an SQLite store
    try:
        if live_daemons(view):
            return []
    finally:
        if view is not store:
            view.close()
    now = utcnow()
    follows: list[FollowUp] = []
    for r in results:
        run = store.run_row(r.run_id)
        if run is None or run.notified_at is not None:
            continue
        follows.append(event_of(store, config, run, retrying=False, now=now))
    todo = [f for f in follows if f.event is not None]
    if not todo:
        return []
    warnings: list[str] = []
    done = threading.Event()

    def deliver() -> None:
        for f in todo:
            send(config, f, warnings.append)
        done.set()

    threading.Thread(target=deliver, name="notify", daemon=True).start()
    if not done.wait(timeout):
        warnings.append(f"notifications still not delivered after {timeout:g} s; giving up on them")
    return warnings
