"""notify.verify() is what a webhook receiver runs on headers anyone can send: malformed ones are False."""

from __future__ import annotations

import time
from typing import Any

import pytest

from syncdash.service.notify import sign, verify

SECRET = "hook-secret"
BODY = b'{"event":"failed"}'


def test_a_good_signature_verifies() -> None:
    ts = int(time.time())
    sig = sign(BODY, SECRET, ts)
    assert verify(BODY, SECRET, str(ts), f"sha256={sig}") and verify(BODY, SECRET, ts, sig)
    assert not verify(BODY, SECRET, ts, "sha256=" + "0" * 64)


@pytest.mark.parametrize(("timestamp", "signature"), [
    ("now", "sha256=abc"),
    (float("inf"), "sha256=abc"),  # OverflowError before
    (float("nan"), "sha256=abc"),
    ("9" * 5000, "sha256=abc"),  # over int()'s digit limit
    (None, "sha256=abc"),
    ("NOW", None),
    ("NOW", b"sha256=abc"),  # bytes, as a raw header
    ("NOW", "sha256=ünïcödé"),  # compare_digest raised TypeError on non-ASCII text
    ("NOW", "sha256=\u00e9" * 40),
    ("NOW", ""),
    ("NOW", "sha256="),
    ("NOW", 12345),
])
def test_a_malformed_header_is_false_not_an_exception(timestamp: Any, signature: Any) -> None:
    if timestamp == "NOW":
        timestamp = str(int(time.time()))
    assert verify(BODY, SECRET, timestamp, signature) is False
