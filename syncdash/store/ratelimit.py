"""`rate_limit:` shared by every worker and daemon on one store: the bucket lives in syncdash_rate_buckets.

A process takes tokens from the shared row in blocks (one short atomic transaction: BEGIN IMMEDIATE on SQLite,
the row locked FOR UPDATE on PostgreSQL) and spends them locally, so a lone process makes one store round
trip per block, not per request. Tokens taken are gone from the shared row, so however the blocks are spread
over processes, all of them together never exceed the bucket's rate and burst. A block is at most a quarter
second's worth of the rate (and at most the burst): tokens held by a process that stops are lost, never
doubled. `install(store)` makes common/resilience.py's bucket_for hand these out instead of local buckets.
"""

from __future__ import annotations

import math
import threading
import time

from syncdash.common.resilience import set_limiter_factory, sleep_or_cancel
from syncdash.store.db import Store

BLOCK_SECONDS = 0.25  # a block holds at most this much of the rate


class SharedBucket:
    """A token bucket kept in the store (row `key` of syncdash_rate_buckets); thread-safe in a process."""

    def __init__(self, store: Store, key: str, interval: float, burst: int) -> None:
        self.store = store
        self.key = key
        self.rate = 1.0 / interval
        self.burst = float(burst)
        self.block = max(1, min(int(burst), math.ceil(self.rate * BLOCK_SECONDS)))
        self.local = 0  # tokens taken from the store, not spent yet
        self.lock = threading.Lock()
        self.round_trips = 0

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Take a token, sleeping until the shared bucket has one; returns the seconds waited."""
        waited, waits = 0.0, 0
        while True:
            with self.lock:
                if self.local > 0:
                    self.local -= 1
                    return waited
                got, need = self._take(whole_block=waits == 1)  # then any token: others may take singles
                if got:
                    self.local += got - 1
                    return waited
            sleep_or_cancel(need, cancel)
            waited += need
            waits += 1

    def _take(self, whole_block: bool = False) -> tuple[int, float]:
        """Refill the shared row to now and take up to a block: (tokens taken, seconds to wait).

        Out of tokens, it waits for a whole block (not one token), so a busy lone process makes one round trip
        per block; a request arriving when some tokens are there takes them at once (`whole_block` False)."""
        self.round_trips += 1
        with self.store.write() as c:  # BEGIN IMMEDIATE on SQLite
            c.execute("INSERT INTO syncdash_rate_buckets (key, tokens, refilled_at, rate, burst) "
                      "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                      (self.key, self.burst, time.time(), self.rate, self.burst))
            row = c.one("SELECT tokens, refilled_at FROM syncdash_rate_buckets WHERE key = ?"
                        + ("" if self.store.is_sqlite else " FOR UPDATE"), (self.key,))
            assert row is not None
            now = time.time()
            tokens = min(self.burst, float(row[0]) + max(0.0, now - float(row[1])) * self.rate)
            got = min(self.block, int(tokens))
            if whole_block and got < self.block:
                got = 0
            tokens -= got
            c.execute("UPDATE syncdash_rate_buckets SET tokens = ?, refilled_at = ?, rate = ?, burst = ? "
                      "WHERE key = ?", (tokens, now, self.rate, self.burst, self.key))
        return got, 0.0 if got else (self.block - tokens) / self.rate


def install(store: Store) -> None:
    """From now on, every rate-limited request of this process draws on `store`'s shared buckets."""
    set_limiter_factory(lambda key, interval, burst: SharedBucket(store, key, interval, burst))
