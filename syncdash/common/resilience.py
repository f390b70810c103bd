"""HTTP resilience shared by every kind that talks to a server (REST, web, push) and the webhook notifier:
backoff with jitter, a token-bucket rate limiter, and a per-host circuit breaker.

Everything here takes plain numbers: the config models that name them (RateLimit, RetryPolicy, CircuitBreaker)
stay with the kinds. The breaker's state is persisted through a small protocol (`BreakerStore`, which the
store implements) so this module imports nothing above common.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from syncdash.errors import CircuitOpen, RunCancelled


def sleep_or_cancel(seconds: float, cancel: threading.Event | None) -> None:
    """Sleep, or raise RunCancelled as soon as `cancel` is set (a cancelled run must not sit out a backoff)."""
    if cancel is None:
        time.sleep(seconds)
    elif cancel.wait(seconds):
        raise RunCancelled()


def backoff(attempt: int, initial: float, maximum: float, *, jitter: bool = True,
            retry_after: float | None = None) -> float:
    """Seconds to wait after failed try number `attempt` (1-based): `initial` doubling each try, capped at
    `maximum`; with jitter a random point in its upper half (so clients that failed together spread out);
    never less than the server's Retry-After."""
    wait = min(maximum, initial * 2 ** (attempt - 1))
    if jitter:
        wait = wait / 2 + random.uniform(0, wait / 2)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return wait


# ---- rate limit ----------------------------------------------------------------------------------

class TokenBucket:
    """At most `burst` requests back to back, then one per `interval` seconds; thread-safe."""

    def __init__(self, interval: float, burst: int) -> None:
        self.interval = interval
        self.burst = burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def acquire(self, cancel: threading.Event | None = None) -> float:
        """Take a token, sleeping until one is free; returns the seconds waited."""
        waited = 0.0
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.last) / self.interval)
                self.last = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return waited
                need = (1 - self.tokens) * self.interval
            sleep_or_cancel(need, cancel)
            waited += need


class Limiter(Protocol):
    """What a rate limit needs of a bucket: take a token (sleeping until one is free), the seconds waited.
    TokenBucket is this process's; store/ratelimit.py's SharedBucket is every process's sharing a store."""

    def acquire(self, cancel: threading.Event | None = None) -> float: ...


# (key, interval, burst) -> a Limiter: installed by a process whose limits every process of its store shares
LimiterFactory = Callable[[str, float, int], Limiter]

_buckets: dict[tuple[str, str, float, int], Limiter] = {}
_buckets_lock = threading.Lock()
_factory: LimiterFactory | None = None


def set_limiter_factory(factory: LimiterFactory | None) -> None:
    """Make every bucket from now on come from `factory` (the store's shared buckets); None: local again."""
    global _factory
    with _buckets_lock:
        _factory = factory
        _buckets.clear()


def bucket_for(owner: str, host: str, interval: float, burst: int, *, shared: bool = False) -> Limiter:
    """The process-wide bucket of (owner, host) for this rate, or of the host alone when `shared` (every
    source that says `shared: true` draws on the same budget)."""
    key = ("*" if shared else owner, host, interval, burst)
    with _buckets_lock:
        bucket = _buckets.get(key)
        if bucket is None:
            name = f"{key[0]}|{host}"
            bucket = _buckets[key] = (_factory(name, interval, burst) if _factory is not None
                                      else TokenBucket(interval, burst))
        return bucket


# ---- circuit breaker -----------------------------------------------------------------------------

class BreakerState(Protocol):
    """A breaker as persisted (the store's syncdash_breakers row)."""

    state: str
    failures: int
    opened_at: datetime | None
    retry_at: datetime | None
    last_error: str | None


class BreakerStore(Protocol):
    """Where breakers live between runs and processes (the Store implements it)."""

    def breaker(self, host: str) -> BreakerState | None: ...

    def save_breaker(self, host: str, state: str, failures: int, opened_at: datetime | None,
                     retry_at: datetime | None, last_error: str | None, source: str | None) -> None: ...


class HostBreaker:
    """Closed -> open after `failures` consecutive failed requests -> half-open after `reset_after` seconds.

    With a store the state is shared: the console shows it and the next run, in any process, still fails
    fast while the host is known to be down.
    """

    def __init__(self, host: str, *, failures: int, reset_after: float, source: str,
                 store: BreakerStore | None = None) -> None:
        self.host = host
        self.threshold = failures
        self.reset_after = reset_after
        self.source = source
        self.store = store
        self.lock = threading.Lock()
        self.state = "closed"
        self.failures = 0
        self.opened_at: datetime | None = None
        self.retry_at: datetime | None = None
        self.last_error: str | None = None
        if store is not None:
            row = store.breaker(host)
            if row is not None:
                self.state, self.failures = row.state, row.failures
                self.opened_at, self.retry_at, self.last_error = row.opened_at, row.retry_at, row.last_error

    def before(self) -> None:
        """Raise CircuitOpen while the host is known to be down; let a trial through once reset_after passed."""
        with self.lock:
            if self.state != "open":
                return
            now = utcnow()
            if self.retry_at is not None and now >= self.retry_at:
                self.state = "half_open"  # let trial requests through; the first outcome decides
                self._save()
                return
            wait = (self.retry_at - now).total_seconds() if self.retry_at else 0
            raise CircuitOpen(
                f"circuit breaker for {self.host} is open after {self.failures} consecutive failures "
                f"(last: {self.last_error or 'unknown'}); next try at {self.retry_at:%Y-%m-%d %H:%M:%S} UTC "
                f"(in {wait:.0f} s)")

    def success(self) -> None:
        with self.lock:
            if self.state == "closed" and self.failures == 0:
                return
            self.state, self.failures, self.opened_at, self.retry_at = "closed", 0, None, None
            self._save()

    def failure(self, why: str) -> None:
        with self.lock:
            self.failures += 1
            self.last_error = why
            if self.state == "half_open" or self.failures >= self.threshold:
                self.state = "open"
                self.opened_at = utcnow()
                self.retry_at = self.opened_at + timedelta(seconds=self.reset_after)
            self._save()

    def _save(self) -> None:
        if self.store is not None:
            self.store.save_breaker(self.host, self.state, self.failures, self.opened_at, self.retry_at,
                                    self.last_error, self.source)


def utcnow() -> datetime:
    """Naive UTC, as the store keeps timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)
