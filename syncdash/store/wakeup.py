"""Wake-ups instead of polling: something was queued (a run, a command), so an idle worker looks now.

- In the same process (the console hosting a daemon, the API in the daemon): `notify_local()` sets every
  registered event at once.
- PostgreSQL: `NOTIFY syncdash_queue` inside the queueing transaction (delivered on commit, so a worker never
  looks before the row is visible); a daemon LISTENs on a dedicated psycopg connection in a thread that
  blocks in the socket (no CPU while idle).
- SQLite has no NOTIFY: a dedicated connection reads `PRAGMA data_version` (which changes when any other
  connection commits) every WATCH_SECONDS. That statement touches no page and takes no lock; a change wakes
  the workers, who claim with one query.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from syncdash.store.db import Store

log = logging.getLogger("syncdash.daemon")

CHANNEL = "syncdash_queue"
WATCH_SECONDS = 0.05  # SQLite: how often the dedicated connection reads data_version (20 a second)

_local: set[threading.Event] = set()
_local_lock = threading.Lock()


def register_local(event: threading.Event) -> None:
    with _local_lock:
        _local.add(event)


def unregister_local(event: threading.Event) -> None:
    with _local_lock:
        _local.discard(event)


def notify_local() -> None:
    """Wake every worker of this process (call after the queueing transaction committed)."""
    with _local_lock:
        events = list(_local)
    for e in events:
        e.set()


def notify_sql(store: Store) -> str | None:
    """The statement to run inside a queueing transaction so other processes wake (None on SQLite)."""
    return None if store.is_sqlite else f"NOTIFY {CHANNEL}"


class Watcher:
    """Calls `on_change` when another process may have queued something; stop() ends its thread."""

    def __init__(self, store: Store, on_change: Callable[[], None]) -> None:
        self.store = store
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None

    def start(self) -> None:
        target = self._watch_sqlite if self.store.is_sqlite else self._listen_postgres
        self._thread = threading.Thread(target=self._guard, args=(target,), name="wakeup", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _guard(self, target: Callable[[], None]) -> None:
        """A lost connection falls back to the workers' poll until it is back."""
        while not self._stop.is_set():
            try:
                target()
            except Exception as e:
                log.warning("wake-up watch lost (%s); workers poll until it is back", e)
                self._stop.wait(5)

    def _watch_sqlite(self) -> None:
        assert self.store.path is not None
        con = sqlite3.connect(str(self.store.path), isolation_level=None, check_same_thread=False)
        try:
            last = con.execute("PRAGMA data_version").fetchone()[0]
            while not self._stop.wait(WATCH_SECONDS):
                now = con.execute("PRAGMA data_version").fetchone()[0]
                if now != last:
                    last = now
                    self.on_change()
        finally:
            con.close()

    def _listen_postgres(self) -> None:
        import psycopg
        from sqlalchemy import make_url

        url = make_url(self.store.url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as con:
            con.execute(f"LISTEN {CHANNEL}")
            while not self._stop.is_set():
                for _ in con.notifies(timeout=1.0, stop_after=1):
                    self.on_change()
