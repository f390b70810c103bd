"""common.resilience: backoff, the token bucket and the host breaker that REST, web, push and webhooks share.

The breaker persists through the real Store (SQLite file), the way runs in different processes see it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from syncdash.common.resilience import HostBreaker, TokenBucket, backoff, bucket_for, sleep_or_cancel
from syncdash.errors import CircuitOpen, RunCancelled
from syncdash.store.db import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'store.db'}")


# ---- backoff -------------------------------------------------------------------------------------------------

def test_backoff_doubles_up_to_its_cap_without_jitter() -> None:
    assert [backoff(n, 0.5, 3.0, jitter=False) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_with_jitter_stays_in_the_upper_half() -> None:
    for n in range(1, 8):
        full = min(10.0, 1.0 * 2 ** (n - 1))
        for _ in range(50):
            assert full / 2 <= backoff(n, 1.0, 10.0) <= full


def test_retry_after_is_a_floor_not_a_cap() -> None:
    assert backoff(1, 1.0, 60.0, jitter=False, retry_after=7.5) == 7.5
    assert backoff(4, 1.0, 60.0, jitter=False, retry_after=0.0) == 8.0


def test_sleep_or_cancel_raises_at_once_when_cancelled() -> None:
    cancel = threading.Event()
    cancel.set()
    started = time.monotonic()
    with pytest.raises(RunCancelled):
        sleep_or_cancel(5.0, cancel)
    assert time.monotonic() - started < 1.0


# ---- rate limit ----------------------------------------------------------------------------------------------

def test_bucket_allows_its_burst_then_spaces_requests() -> None:
    bucket = TokenBucket(interval=0.1, burst=2)
    assert bucket.acquire() == 0 and bucket.acquire() == 0
    started = time.monotonic()
    waited = bucket.acquire()
    elapsed = time.monotonic() - started
    assert 0.05 <= waited <= 0.11 and elapsed >= 0.05


def test_a_cancelled_run_stops_waiting_for_a_token() -> None:
    bucket = TokenBucket(interval=10.0, burst=1)
    bucket.acquire()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(RunCancelled):
        bucket.acquire(cancel)


def test_buckets_are_per_owner_and_host_unless_shared() -> None:
    a = bucket_for("test-res-a", "h1.example", 1.0, 1)
    assert bucket_for("test-res-a", "h1.example", 1.0, 1) is a
    assert bucket_for("test-res-b", "h1.example", 1.0, 1) is not a
    assert bucket_for("test-res-a", "h2.example", 1.0, 1) is not a
    assert bucket_for("test-res-a", "h1.example", 2.0, 1) is not a, "another rate is another bucket"
    shared = bucket_for("test-res-a", "h3.example", 1.0, 1, shared=True)
    assert bucket_for("test-res-b", "h3.example", 1.0, 1, shared=True) is shared


# ---- circuit breaker -----------------------------------------------------------------------------------------

def test_breaker_opens_after_consecutive_failures_and_a_success_resets_the_count() -> None:
    b = HostBreaker("api.example", failures=3, reset_after=60, source="s")
    b.failure("HTTP 503")
    b.failure("HTTP 503")
    b.success()
    b.failure("HTTP 503")
    b.failure("HTTP 503")
    b.before()  # two in a row: still closed
    b.failure("timeout")
    assert b.state == "open"
    with pytest.raises(CircuitOpen, match=r"api\.example is open after 3 consecutive failures \(last: timeout\)"):
        b.before()


def test_half_open_after_reset_a_failed_trial_reopens_and_a_good_one_closes() -> None:
    b = HostBreaker("api.example", failures=1, reset_after=0.05, source="s")
    b.failure("HTTP 500")
    with pytest.raises(CircuitOpen):
        b.before()
    time.sleep(0.06)
    b.before()
    assert b.state == "half_open"
    b.failure("HTTP 500")  # one failed trial is enough to open again
    assert b.state == "open"
    time.sleep(0.06)
    b.before()
    b.success()
    assert (b.state, b.failures, b.retry_at) == ("closed", 0, None)


def test_breaker_state_is_shared_through_the_store(store: Store) -> None:
    first = HostBreaker("down.example", failures=2, reset_after=600, source="players", store=store)
    first.failure("HTTP 502")
    first.failure("network error: refused")
    row = store.breaker("down.example")
    assert row is not None and (row.state, row.failures, row.source) == ("open", 2, "players")
    later = HostBreaker("down.example", failures=2, reset_after=600, source="teams", store=store)  # another run
    assert later.state == "open" and later.last_error == "network error: refused"
    with pytest.raises(CircuitOpen):
        later.before()
    later.success()
    closed = store.breaker("down.example")
    assert closed is not None and (closed.state, closed.failures) == ("closed", 0)
