"""Schedule fires become queued runs: `fire_due` queues each due fire once (a unique key per source and fire
time, so several daemons on one store queue it once), and an APScheduler BackgroundScheduler wakes the daemon
at each source's next fire time instead of polling. Catch-up and jitter rules live in common/schedule.py."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from syncdash.config.models import Config
from syncdash.store import queue
from syncdash.store.db import Store, format_ts
from syncdash.store.health import schedule_of

log = logging.getLogger("syncdash.daemon")


def aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.replace(tzinfo=UTC)


def naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


class Scheduler:
    """The daemon's schedules: `fire_due` on every maintenance tick, and a timer for the next fire."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], datetime],
                 on_fired: Callable[[], None]) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.on_fired = on_fired  # runs were queued: wake a worker
        self._scheduler: Any = None  # apscheduler's BackgroundScheduler (untyped)
        self._job_texts: dict[str, str | None] = {}

    def reconfigure(self, config: Config) -> None:
        """A reloaded config: its sources' timers replace the old ones (removed sources lose theirs)."""
        self.config = config
        names = {s.name for s in config.source_list}
        for name in [n for n in self._job_texts if n not in names]:
            del self._job_texts[name]
            if self._scheduler is not None and self._scheduler.get_job(name) is not None:
                self._scheduler.remove_job(name)
        self.refresh_jobs()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)

    def fire_due(self, now: datetime) -> list[int]:
        """Queue every schedule fire that is due (catch-up rules in schedule.due); idempotent across daemons."""
        from syncdash.common.schedule import due, jitter_delay

        out: list[int] = []
        states = self.store.source_states()
        for src in self.config.source_list:
            st = states.get(src.name)
            sched = schedule_of(src, st.schedule_override if st else None)
            if sched is None or not src.enabled:
                continue
            last = aware(st.last_fire_at) if st else None
            fire, nxt = due(sched, last, now.replace(tzinfo=UTC), src.catch_up)
            paused = bool(st and st.paused)
            if fire is not None and not paused:
                not_before = naive(fire) + timedelta(seconds=jitter_delay(fire, src.name, src.jitter))
                rid = queue.enqueue(self.store, src.name, trigger="schedule", kind=src.kind, not_before=not_before,
                                    fire_key=f"{src.name}@{naive(fire).isoformat()}")
                if rid is not None:
                    out.append(rid)
                    log.info("schedule fired", extra={"source": src.name, "run_id": rid,
                                                      "fire": naive(fire).isoformat()})
            newest = naive(fire) if fire is not None else (st.last_fire_at if st else None)
            if newest is None:  # never fired: start counting from here
                newest = naive(sched.last_fire(now.replace(tzinfo=UTC)) or now)
            if (st is not None and fire is None and st.last_fire_at == newest
                    and st.next_fire_at == naive(nxt)):
                continue  # nothing to write: an idle daemon's tick stays a read
            with self.store.engine.begin() as c:
                c.exec_driver_sql("INSERT INTO syncdash_source_state (source, paused) VALUES (?, FALSE) "
                                  "ON CONFLICT (source) DO NOTHING", (src.name,))
                c.exec_driver_sql(
                    "UPDATE syncdash_source_state SET last_fire_at = CASE WHEN last_fire_at IS NULL OR "
                    "last_fire_at < ? THEN ? ELSE last_fire_at END, next_fire_at = ? WHERE source = ?",
                    (format_ts(newest), format_ts(newest), format_ts(naive(nxt)), src.name))
        return out

    def start(self) -> None:
        """APScheduler wakes the daemon at each source's next fire time (the fire itself is queued by fire_due)."""
        from apscheduler.schedulers.background import BackgroundScheduler

        self._scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True,
                                                                            "max_instances": 1,
                                                                            "misfire_grace_time": None})
        self._scheduler.start()
        self.refresh_jobs()

    def refresh_jobs(self) -> None:
        if self._scheduler is None:
            return
        states = self.store.source_states()
        for src in self.config.source_list:
            st = states.get(src.name)
            override = st.schedule_override if st else None
            sched = schedule_of(src, override) if src.enabled else None
            key = None if sched is None else f"{sched.text}|{sched.timezone}"
            if self._job_texts.get(src.name, "-") == key:
                continue
            self._job_texts[src.name] = key
            if self._scheduler.get_job(src.name) is not None:
                self._scheduler.remove_job(src.name)
            if sched is not None:
                self._scheduler.add_job(self._on_fire, trigger=sched.trigger(), id=src.name, name=src.name)

    def _on_fire(self) -> None:
        try:
            if self.fire_due(self.clock()):
                self.on_fired()
        except Exception:
            log.exception("could not queue a schedule fire")
