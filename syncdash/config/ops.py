"""Config sections for operations: notifications and history retention (used by the daemon and cleanup)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from syncdash.config.base import Strict

EventKind = Literal["failed", "partial", "recovered", "overdue"]
DEFAULT_EVENTS: tuple[EventKind, ...] = ("failed", "recovered", "overdue")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([dhms])\s*$")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class WebhookTarget(Strict):
    """One HTTP endpoint that receives every event the config subscribes to, as a JSON POST."""

    url: str = Field(description="http(s) URL that receives a JSON POST per event")
    secret: str | None = Field(
        default=None, description="Shared secret: requests carry X-Syncdash-Signature, an HMAC-SHA256 of the body")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (e.g. Authorization)")
    timeout: float = Field(default=10.0, gt=0, description="Seconds per attempt")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"webhook url must be an http:// or https:// URL, got {v!r}")
        return v.strip()


class NotifyConfig(Strict):
    """Which events to send, and where."""

    on: list[EventKind] = Field(
        default_factory=lambda: list(DEFAULT_EVENTS),
        description="Events that notify: failed, partial, recovered (a success after a failure), overdue")
    webhooks: list[WebhookTarget] = Field(
        default_factory=list, description="Webhooks; a plain URL string is shorthand for {url: ...}")
    command: str | None = Field(
        default=None,
        description="Shell command run per event: the event JSON on stdin, and SYNCDASH_EVENT, SYNCDASH_SOURCE, "
                    "SYNCDASH_RUN_ID, SYNCDASH_STATUS in its environment")
    retries: int = Field(default=5, ge=1, le=20, description="Tries per webhook delivery")
    backoff: float = Field(default=1.0, ge=0, description="Seconds before the second try; doubles per try")

    @field_validator("webhooks", mode="before")
    @classmethod
    def _webhooks(cls, v: Any) -> Any:
        """`webhooks: https://...` and list items that are bare URLs are the common case: accept them."""
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            return [{"url": item} if isinstance(item, str) else item for item in v]
        return v


def parse_duration(text: str) -> timedelta:
    """"90d", "12h", "30m", "45s" as a timedelta; ValueError naming the accepted forms otherwise.

    Zero is refused: "keep nothing" is almost always a typo for "keep forever" (which is null).
    """
    m = _DURATION_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"invalid duration {text!r}: use a whole number followed by d, h, m or s "
                         "(e.g. 90d, 12h, 30m, 45s), or null to keep forever")
    amount = int(m.group(1))
    if amount == 0:
        raise ValueError(f"invalid duration {text!r}: must be more than zero (null keeps forever)")
    return timedelta(seconds=amount * _UNIT_SECONDS[m.group(2)])


class RetentionConfig(Strict):
    """How long history is kept, per kind of row; null keeps that kind forever."""

    runs: str | None = Field(
        default="90d", description="Runs (with their phases, errors and changes) finished longer ago are deleted; "
                                   "the latest finished and latest successful run of each source are always kept")
    errors: str | None = Field(default="90d", description="Item errors created longer ago are deleted, resolved or not")
    changes: str | None = Field(default="30d", description="Changed keys of runs finished longer ago are deleted")

    @field_validator("runs", "errors", "changes")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v
