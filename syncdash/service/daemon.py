"""The headless scheduler and workers (`syncdash daemon`), also hosted by the console when no daemon runs.

Everything goes through the store: schedule fires become queued runs (a unique key per fire, so several
daemons queue each fire once), workers claim queued runs, a sweep turns runs of dead workers into
interrupted ones and queues their resume, and commands from other processes (console, CLI, API) arrive in
syncdash_commands. Schedule fires are scheduler.py's (APScheduler wakes the daemon at the next one); the log
line formats are logs.py's. Nothing here polls faster than once a second: an idle daemon sleeps.
"""

from __future__ import annotations

import json
import logging
import os
import queue as queue_mod
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from syncdash.config.models import Config, SourceConfig
from syncdash.engine import Engine, RunResult, options_from_queue
from syncdash.service.logs import JsonLogFormatter, TextLogFormatter
from syncdash.service.scheduler import Scheduler
from syncdash.store import queue
from syncdash.store.db import Store, format_ts, owner_id
from syncdash.store.health import schedule_of
from syncdash.store.models import CommandStatus, Run, RunStatus, utcnow

__all__ = ["Daemon", "HttpService", "JsonLogFormatter", "TextLogFormatter"]  # the log formatters live in logs.py

log = logging.getLogger("syncdash.daemon")

# sweep, follow-ups, schedule refresh, overdue checks; schedule fires have their own timer (APScheduler) and
# commands and queued runs their wake-ups, so this tick only catches what nobody announced (a dead process)
MAINTENANCE_SECONDS = 10.0
HEARTBEAT_SECONDS = 1.5  # well inside store.health.DAEMON_STALE_SECONDS: a dead daemon is seen gone within 5 s
CLEANUP_EVERY = timedelta(days=1)  # retention (config `retention:`)
# an idle worker's fallback look at the queue; wake-ups (store/wakeup.py) and the next not-before time cut it
# short. SYNCDASH_DAEMON_POLL_SECONDS overrides it (tests prove wake-ups do not depend on it).
POLL_SECONDS = float(os.environ.get("SYNCDASH_DAEMON_POLL_SECONDS") or 30.0)


class HttpService(Protocol):
    """A server the daemon runs beside its workers (the HTTP API): built by a front end, handed in, so the
    service layer never imports a web framework."""

    def start(self, daemon: Daemon) -> str:
        """Serve in the background; return the base URL (recorded in the daemon's row)."""
        ...

    def stop(self) -> None: ...


@dataclass
class Active:
    run_id: int
    source: str
    cancel: threading.Event


class Daemon:
    def __init__(self, config: Config, store: Store, *, workers: int = 1, once: bool = False,
                 clock: Callable[[], datetime] = utcnow, kind: str = "daemon",
                 on_result: Callable[[Run, RunResult, bool], None] | None = None,
                 http: HttpService | None = None) -> None:
        self.config = config
        self.store = store
        self.workers = max(1, workers)
        self.once = once
        self.clock = clock
        self.kind = kind
        self.owner = owner_id()
        self.engine = Engine(store, config)
        self.stopping = threading.Event()  # stop claiming; running runs end as interrupted
        self.wake = threading.Event()
        self.active: dict[int, Active] = {}
        self.lock = threading.Lock()
        self.on_result = on_result
        self._threads: list[threading.Thread] = []
        self.scheduler = Scheduler(config, store, clock, on_fired=self.wake.set)
        self._events: queue_mod.Queue[tuple[list[Any], dict[str, Any]] | None] = queue_mod.Queue()
        self._last_cleanup: datetime | None = None
        self.http = http  # the HTTP API, handed in by the CLI; served while run() runs (not with once)
        self.http_url: str | None = None
        self.started_at = clock()
        self._kick = threading.Event()  # the main loop's tick: stop() and SIGHUP cut its wait short
        self._reload_requested = False
        self._commands_due = False
        self._watcher: Any = None  # store/wakeup.py's Watcher while run() serves

    # ---- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stop() (or, with once, until nothing due is left). Returns the exit code."""
        self.started_at = self.clock()
        if self.http is not None and not self.once:
            self._start_api()  # before registering: the daemon's row says where the API is
        from syncdash.store.ratelimit import install

        install(self.store)  # `rate_limit:` holds across every worker and daemon of this store
        try:
            self._register()
            log.info("daemon started", extra={"owner": self.owner, "workers": self.workers, "once": self.once,
                                              "http": self.http_url})
            self.maintain()
            if self.once:
                self._work_until_empty()
                self._events.put(None)
                self._send_events()  # deliver before exiting: a cron-driven daemon has no later
                return 0
            self.scheduler.start()
            from syncdash.store.wakeup import Watcher, register_local

            register_local(self.wake)
            self._watcher = Watcher(self.store, self._on_store_change)
            self._watcher.start()
            t = threading.Thread(target=self._send_events, name="notify", daemon=True)
            t.start()
            self._threads.append(t)
            for i in range(self.workers):
                t = threading.Thread(target=self._worker, name=f"worker-{i + 1}", daemon=True)
                t.start()
                self._threads.append(t)
            last = beat = time.monotonic()
            while not self.stopping.is_set():
                self._kick.wait(HEARTBEAT_SECONDS)
                self._kick.clear()
                if self.stopping.is_set():
                    break
                try:
                    if self._reload_requested:
                        self._reload_requested = False
                        self.reload()
                    if self._commands_due:
                        self._commands_due = False
                        self._serve_commands()
                    # a wake-up for a store change must not beat: the beat is a change that wakes us again
                    if time.monotonic() - last >= MAINTENANCE_SECONDS:
                        last = beat = time.monotonic()
                        self.maintain()
                    elif time.monotonic() - beat >= HEARTBEAT_SECONDS * 0.9:
                        beat = time.monotonic()
                        self.heartbeat()
                except Exception:  # a bad tick (database briefly locked) must not end the daemon
                    log.exception("maintenance failed; trying again")
            return 0
        finally:
            self._shutdown()

    def stop(self) -> None:
        """SIGTERM/SIGINT: stop taking runs; each running run stops after its batch as interrupted."""
        self.stopping.set()
        self.wake.set()
        self._kick.set()

    def request_reload(self) -> None:
        """SIGHUP (systemd ExecReload): reload the config on the main loop's next tick, not in the handler."""
        self._reload_requested = True
        self._kick.set()

    def reload(self) -> bool:
        """Read the config file again and use it for the runs claimed from now on (running runs keep theirs).

        Logs the sources added, removed and changed. A config that does not load is logged with its error
        (file, line, field) and the old one is kept. The store stays the one opened at start."""
        from syncdash.config.load import load_config

        try:
            new = load_config(self.config.file)
        except Exception as e:
            log.error("config reload failed; keeping the running config: %s", self.config.redact(str(e)),
                      extra={"file": self.config.file})
            return False
        if new.database != self.config.database:
            log.warning("config reload: the database changed; it takes effect on restart",
                        extra={"file": self.config.file})
        before = {s.name: s.model_dump_json() for s in self.config.source_list}
        after = {s.name: s.model_dump_json() for s in new.source_list}
        added = sorted(after.keys() - before.keys())
        removed = sorted(before.keys() - after.keys())
        changed = sorted(n for n in before.keys() & after.keys() if before[n] != after[n])
        self.config = new
        self.engine = Engine(self.store, new)
        self.scheduler.reconfigure(new)
        log.info("config reloaded", extra={"file": new.file, "added": added, "removed": removed,
                                          "changed": changed})
        self._kick.set()
        self.wake.set()
        return True

    def _on_store_change(self) -> None:
        """Another process committed (a queued run, a command): workers look now, commands are served soon."""
        self.wake.set()
        self._commands_due = True
        self._kick.set()

    def poke(self) -> None:
        """Something was queued (by the API): wake an idle worker now instead of at its next poll."""
        self.wake.set()

    def is_stopping(self) -> bool:
        return self.stopping.is_set()

    def _start_api(self) -> None:
        assert self.http is not None
        self.http_url = self.http.start(self)

    def _shutdown(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.http is not None and self.http_url is not None:  # first: no new request may queue work
            self.http.stop()
            self.http_url = None
        self.scheduler.stop()
        if self._watcher is not None:
            from syncdash.store.wakeup import unregister_local

            unregister_local(self.wake)
            self._watcher.stop()
        if not self.once:
            self._events.put(None)
        for t in self._threads:
            t.join()
        with self.store.engine.begin() as c:
            c.exec_driver_sql("UPDATE syncdash_daemons SET stopped_at = ?, heartbeat_at = ? WHERE owner = ?",
                              (format_ts(self.clock()), format_ts(self.clock()), self.owner))
        from syncdash.common.resilience import set_limiter_factory

        set_limiter_factory(None)  # a console that hosted this daemon may open another store next
        log.info("daemon stopped", extra={"owner": self.owner})

    def _register(self) -> None:
        now = format_ts(self.clock())
        with self.store.engine.begin() as c:
            c.exec_driver_sql("DELETE FROM syncdash_daemons WHERE owner = ?", (self.owner,))
            c.exec_driver_sql(
                "INSERT INTO syncdash_daemons (owner, host, pid, kind, workers, started_at, heartbeat_at, http) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self.owner, socket.gethostname(), os.getpid(), self.kind, self.workers, now, now, self.http_url))

    # ---- maintenance: heartbeat, sweep, schedules, commands ---------------------------------------------

    def heartbeat(self) -> None:
        """One UPDATE: the read model (store.health.live_daemons) sees this daemon alive."""
        with self.store.engine.begin() as c:
            c.exec_driver_sql("UPDATE syncdash_daemons SET heartbeat_at = ? WHERE owner = ?",
                              (format_ts(self.clock()), self.owner))

    def maintain(self) -> None:
        now = self.clock()
        self.heartbeat()
        dead = queue.sweep(self.store, now)
        if dead:
            log.warning("runs of a dead worker found", extra={"runs": dead})
        resumes = queue.resume_interrupted(self.store)
        if resumes:
            log.info("resumes queued", extra={"runs": resumes})
        fired = self.fire_due(now)
        retries = self.follow_up_others()
        self._serve_commands()
        self._check_overdue(now)
        if self._last_cleanup is None or now - self._last_cleanup >= CLEANUP_EVERY:
            self._last_cleanup = now
            self._cleanup(now)
        if dead or resumes or fired or retries:
            self.wake.set()
        self.scheduler.refresh_jobs()

    def fire_due(self, now: datetime) -> list[int]:
        """Queue every schedule fire that is due; see Scheduler.fire_due."""
        return self.scheduler.fire_due(now)

    def _serve_commands(self) -> None:
        """Requests from the console, CLI or API (syncdash_commands), claimed atomically by one daemon."""
        with self.store.engine.begin() as c:
            rows = c.exec_driver_sql("SELECT id, action, source, run_id, args FROM syncdash_commands "
                                     "WHERE status = ? ORDER BY id LIMIT 50", (CommandStatus.PENDING,)).fetchall()
            mine = []
            for cid, action, source, run_id, args in rows:
                if c.exec_driver_sql("UPDATE syncdash_commands SET status = ?, claimed_by = ? "
                                     "WHERE id = ? AND status = ?",
                                     (CommandStatus.CLAIMED, self.owner, cid, CommandStatus.PENDING)).rowcount:
                    mine.append((cid, action, source, run_id, json.loads(args) if args else {}))
        for cid, action, source, run_id, args in mine:
            status, result = CommandStatus.DONE, None
            try:
                result = self.command(action, source, run_id, args)
            except Exception as e:
                status, result = CommandStatus.FAILED, str(e)
            with self.store.engine.begin() as c:
                c.exec_driver_sql("UPDATE syncdash_commands SET status = ?, result = ?, finished_at = ? "
                                  "WHERE id = ?", (status, json.dumps(result), format_ts(self.clock()), cid))

    def command(self, action: str, source: str | None, run_id: int | None, args: dict[str, Any]) -> Any:
        if action == "run":
            src = self.config.source(source or "")
            if src is None:
                raise ValueError(f"unknown source {source!r}")
            rid = queue.enqueue(self.store, src.name, trigger=args.get("trigger", "console"), kind=src.kind,
                                options={k: args.get(k) for k in ("full", "dry_run")})
            self.wake.set()
            return {"run_id": rid}
        if action == "cancel":
            with self.lock:
                act = self.active.get(int(run_id or 0))
            if act is None:
                with self.store.engine.begin() as c:  # still queued: it simply never runs
                    n = c.exec_driver_sql("UPDATE syncdash_runs SET status = ?, finished_at = ?, "
                                          "error = 'cancelled before it started' WHERE id = ? AND status = ?",
                                          (RunStatus.CANCELLED, format_ts(self.clock()), run_id,
                                           RunStatus.QUEUED)).rowcount
                return {"cancelled": bool(n)}
            act.cancel.set()
            return {"cancelled": True}
        raise ValueError(f"unknown command {action!r}")

    # ---- workers ------------------------------------------------------------------------------------

    def _worker(self) -> None:
        while not self.stopping.is_set():
            try:
                worked = self.work_one()
            except Exception:
                log.exception("worker error")
                worked = False
            if not worked:
                try:
                    nxt = queue.seconds_to_next_due(self.store, self.clock())
                except Exception:
                    nxt = None
                self.wake.wait(POLL_SECONDS if nxt is None else min(POLL_SECONDS, nxt + 0.01))
                self.wake.clear()

    def _work_until_empty(self) -> None:
        while not self.stopping.is_set() and self.work_one():
            pass

    def work_one(self) -> bool:
        """Claim and execute one due run; False when nothing was claimable."""
        run = queue.claim(self.store, self.owner, now=self.clock())
        if run is None or run.id is None:
            return False
        src = self.config.source(run.source)
        if src is None:
            with self.store.engine.begin() as c:
                c.exec_driver_sql("UPDATE syncdash_runs SET status = 'failed', error = ?, error_type = 'config', "
                                  "finished_at = ? WHERE id = ?",
                                  (f"source {run.source!r} is not in {self.config.file}", format_ts(self.clock()),
                                   run.id))
            return True
        cancel = threading.Event()
        with self.lock:
            self.active[run.id] = Active(run.id, run.source, cancel)
        opts = options_from_queue(run, cancel=cancel, shutdown=self.stopping)
        log.info("run started", extra={"source": run.source, "run_id": run.id, "trigger": run.trigger})
        try:
            result = self.engine.run(run.source, opts)
        except Exception as e:  # AlreadyRunning (a process outside the queue holds the lease) and the like
            log.warning("run could not start: %s", e, extra={"source": run.source, "run_id": run.id})
            queue.unclaim(self.store, run.id)
            return True
        finally:
            with self.lock:
                self.active.pop(run.id, None)
        log.info("run finished", extra={"source": run.source, "run_id": result.run_id, "status": result.status,
                                        "counts": result.counts, "error": result.error})
        self._after(run, src, result)
        return True

    def _after(self, run: Run, src: SourceConfig, result: RunResult) -> None:
        """Follow the run up at once (followup.py: retry policy, then its event), claimed like anyone else's."""
        from syncdash.service.followup import follow_up

        done = self.store.get_run(result.run_id)
        if done is None:
            return
        follow = follow_up(self.store, self.config, done, retryable=result.retryable, now=self.clock())
        retrying = follow is not None and follow.retry_id is not None
        if follow is not None and follow.event is not None:
            self._events.put((follow.targets, follow.event))
        if retrying:
            self.wake.set()
        if self.on_result is not None:
            self.on_result(done, result, retrying)

    # ---- notifications and retention ---------------------------------------------------------------------

    def _targets(self, src: SourceConfig | None) -> list[Any]:
        from syncdash.service.followup import targets_of

        return targets_of(self.config, src)

    def follow_up_others(self) -> list[int]:
        """Runs finished by other processes (CLI, cron, a daemon that died): retried and notified here, once."""
        from syncdash.service.followup import follow_up, pending_runs

        retries = []
        for run in pending_runs(self.store, self.clock()):
            follow = follow_up(self.store, self.config, run, now=self.clock())
            if follow is None:
                continue
            if follow.retry_id is not None:
                retries.append(follow.retry_id)
            if follow.event is not None:
                self._events.put((follow.targets, follow.event))
        return retries

    def _check_overdue(self, now: datetime) -> None:
        from syncdash.store.health import recent_runs, verdict

        states = self.store.source_states()
        for src in self.config.source_list:
            targets = self._targets(src)
            if not targets:
                continue
            st = states.get(src.name)
            sched = schedule_of(src, st.schedule_override if st else None)
            if sched is None:
                continue
            late = verdict(src, st, recent_runs(self.store, src.name, 3), sched, now) == "overdue"
            # the flag lives in the store: of several daemons on one database, the one that sets it notifies
            with self.store.engine.begin() as c:
                if late:
                    c.exec_driver_sql("INSERT INTO syncdash_source_state (source, paused) VALUES (?, FALSE) "
                                      "ON CONFLICT (source) DO NOTHING", (src.name,))
                    mine = c.exec_driver_sql(
                        "UPDATE syncdash_source_state SET overdue_notified_at = ? WHERE source = ? AND "
                        "overdue_notified_at IS NULL", (format_ts(now), src.name)).rowcount == 1
                else:
                    mine = False
                    c.exec_driver_sql("UPDATE syncdash_source_state SET overdue_notified_at = NULL WHERE source = ? "
                                      "AND overdue_notified_at IS NOT NULL", (src.name,))
            if mine:
                from syncdash.service.notify import build_event

                self._events.put((targets, build_event("overdue", src.name, None)))

    def _send_events(self) -> None:
        """Deliveries retry with backoff: they run here, never on a worker (a dead webhook must not slow syncs)."""
        from syncdash.service.notify import Notifier

        while (item := self._events.get()) is not None:
            targets, event = item
            for cfg in targets:
                for d in Notifier(cfg, redact=self.config.redact).send(event):
                    if not d.ok:
                        log.warning("notification not delivered: %s", d.error,
                                    extra={"source": event.get("source"), "run_id": event.get("run_id")})

    def _cleanup(self, now: datetime) -> None:
        from syncdash.store.retention import cleanup

        try:
            counts = cleanup(self.store.engine, self.config.retention, now=now)
        except Exception:
            log.exception("retention cleanup failed")
            return
        if any(counts.values()):
            log.info("old history deleted", extra={"counts": counts})
