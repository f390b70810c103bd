"""Tell people when a sync goes wrong (or right again): webhooks and a shell command per event.

A notification is a side channel: it must never turn a good sync into a failed one. `Notifier.send`
therefore never raises; every failure comes back as a `Delivery` with `ok=False` and a message that has been
scrubbed of the webhook secret, header values and anything the config's `redact` masks.

Events
------
`failed`, `partial` and `recovered` come from a finished run (`event_for_run` decides which, if any);
`overdue` comes from whoever watches schedules (no run: `run_id` is null). The JSON body is the dict
`build_event` returns::

    {"id": "<uuid4 hex, unique per event>", "event": "failed", "source": "players", "run_id": 12,
     "status": "failed", "counts": {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0,
     "skipped": 0}, "error": "GET https://...: HTTP 503", "error_type": "http",
     "started_at": "2026-11-23T12:00:00Z", "finished_at": "2026-11-23T12:00:04Z", "sent_at": "..."}

Verifying a webhook
-------------------
With `secret` set, each request carries::

    X-Syncdash-Timestamp: <unix seconds when this attempt was sent>
    X-Syncdash-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + raw request body)>

A receiver recomputes the HMAC over the timestamp header, a literal ".", and the raw body bytes exactly as
received (before any JSON parsing), compares it with the header in constant time (`hmac.compare_digest`) and
rejects timestamps more than a few minutes from its clock, so a captured request cannot be replayed later.
`verify()` below does exactly that. Retries re-sign with a fresh timestamp but keep the same body and the
same `X-Syncdash-Delivery` id (the event's `id`), so a receiver can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from syncdash.common.http import parse_retry_after
from syncdash.common.resilience import backoff
from syncdash.config.ops import NotifyConfig, WebhookTarget

if TYPE_CHECKING:  # httpx and tenacity load when a webhook is delivered: a run without one never waits on them
    import httpx
    from tenacity import RetryCallState

EVENT_KINDS: tuple[str, ...] = ("failed", "partial", "recovered", "overdue")
COUNT_NAMES = ("inserted", "updated", "unchanged", "deleted", "failed", "skipped")

MAX_RETRY_AFTER = 60.0  # a receiver asking for longer than this is not worth holding a sync's thread for
COMMAND_TIMEOUT = 60.0
ERROR_PREVIEW = 200  # characters of a response body or command stderr kept in Delivery.error
SIGNATURE_TOLERANCE = 300  # seconds: verify() rejects older/newer timestamps (replays)


@dataclass
class Delivery:
    """The outcome of one target (webhook or command) for one event."""

    target: str  # the webhook URL (credentials masked) or "command"
    ok: bool
    attempts: int
    status: int | None = None  # last HTTP status, or the command's exit code
    error: str | None = None  # why it failed, secrets masked


# ---- events -----------------------------------------------------------------------------------------------


def event_for_run(run: Any, previous_status: str | None) -> str | None:
    """The event a finished run raises, or None when nobody needs to hear about it.

    `previous_status` is the status of the source's previous finished non-dry run. A success only matters
    after a failure ("recovered"): succeeding again and again is not news. Dry runs never notify: they
    change nothing. Cancelled runs were stopped on purpose by someone who already knows.
    """
    if getattr(run, "dry_run", False):
        return None
    status = getattr(run, "status", None)
    if status == "failed":
        return "failed"
    if status == "partial":
        return "partial"
    if status == "succeeded" and previous_status == "failed":
        return "recovered"
    return None


def _iso(ts: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, seconds precision: the same shape as the CLI's --json output."""
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.isoformat(timespec="seconds") + "Z"


def build_event(kind: str, source: str, run: Any | None, now: datetime | None = None) -> dict[str, Any]:
    """The event payload: everything a receiver needs to act without querying the store.

    `run` is None for `overdue` (no run happened, which is the point). `now` makes `sent_at` testable;
    naive datetimes are taken as UTC like everywhere in the store.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown event {kind!r}; expected one of {', '.join(EVENT_KINDS)}")
    return {
        "id": uuid.uuid4().hex,
        "event": kind,
        "source": source,
        "run_id": getattr(run, "id", None) if run is not None else None,
        "status": getattr(run, "status", None) if run is not None else None,
        "counts": {name: int(getattr(run, name, 0) or 0) if run is not None else 0 for name in COUNT_NAMES},
        "error": getattr(run, "error", None) if run is not None else None,
        "error_type": getattr(run, "error_type", None) if run is not None else None,
        "started_at": _iso(getattr(run, "started_at", None)) if run is not None else None,
        "finished_at": _iso(getattr(run, "finished_at", None)) if run is not None else None,
        "sent_at": _iso(now or datetime.now(UTC)),
    }


# ---- signatures -------------------------------------------------------------------------------------------


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """Hex HMAC-SHA256 of f"{timestamp}." + body. The timestamp is signed too, so it cannot be swapped
    to replay an old request as new."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, timestamp: str | int, signature: str, *,
           tolerance: float = SIGNATURE_TOLERANCE, now: float | None = None) -> bool:
    """A receiver's check: the X-Syncdash-Signature header matches and the timestamp is recent.

    `signature` is the header value (`sha256=<hex>`, the bare hex is accepted too). Whatever a sender put in
    the headers (non-ASCII, bytes, None, an infinite timestamp), the answer is False, never an exception: a
    receiver calls this on untrusted input.
    """
    try:
        ts = int(timestamp)
    except (TypeError, ValueError, OverflowError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    if not isinstance(signature, str):
        return False
    given = signature.strip().removeprefix("sha256=")
    if not given.isascii():  # compare_digest raises TypeError on non-ASCII str
        return False
    return hmac.compare_digest(given, sign(body, secret, ts))


# ---- delivery ---------------------------------------------------------------------------------------------


class _Attempt(Exception):
    """A failed attempt: whether trying again may help, and how long the receiver asked us to wait."""

    def __init__(self, message: str, *, retry: bool, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.retry_after = retry_after


def _preview(data: bytes | str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    return text[:ERROR_PREVIEW] + ("..." if len(text) > ERROR_PREVIEW else "")


class Notifier:
    """Sends events to the configured webhooks and command, synchronously, with retries.

    `redact` is the config's secret masker (`Config.redact`): it is applied to the payload's text and to
    every error message. `sleep` is injectable so tests can check backoff without waiting.
    """

    command_timeout: float = COMMAND_TIMEOUT

    def __init__(self, config: NotifyConfig, redact: Callable[[str], str] = lambda s: s,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.redact = redact
        self.sleep = sleep

    # ---- public -----------------------------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> list[Delivery]:
        """Deliver `event` to every target if the config subscribes to its kind; never raises."""
        if event.get("event") not in self.config.on:
            return []
        try:
            payload = self._scrub(event)
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        except Exception as e:  # a payload we cannot serialise must not fail the sync either
            return [Delivery("payload", False, 0, None, self._clean(f"cannot encode the event: {e}"))]
        out: list[Delivery] = []
        for target in self.config.webhooks:
            try:
                out.append(self._deliver(target, body, payload))
            except Exception as e:  # defensive: a bug here must not fail the sync
                out.append(Delivery(self._show_url(target.url), False, 0, None,
                                    self._clean(f"internal error: {type(e).__name__}: {e}", target)))
        if self.config.command:
            try:
                out.append(self._run_command(self.config.command, body, payload))
            except Exception as e:
                out.append(Delivery("command", False, 1, None,
                                    self._clean(f"internal error: {type(e).__name__}: {e}")))
        return out

    # ---- webhooks -----------------------------------------------------------------------------------------

    def _deliver(self, target: WebhookTarget, body: bytes, payload: dict[str, Any]) -> Delivery:
        """POST with retries (tenacity, like every other retry loop): a server error, a 429 or a network error is
        tried again after `backoff` doubling per try, never sooner than the receiver's Retry-After (capped)."""
        import httpx
        from tenacity import Retrying, retry_if_exception, stop_after_attempt

        shown = self._show_url(target.url)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            retry_after = exc.retry_after if isinstance(exc, _Attempt) else None
            seconds = backoff(state.attempt_number, self.config.backoff, MAX_RETRY_AFTER, jitter=False,
                              retry_after=retry_after)
            return min(seconds, MAX_RETRY_AFTER)

        retrying = Retrying(stop=stop_after_attempt(self.config.retries), wait=wait, sleep=self.sleep,
                            retry=retry_if_exception(lambda e: isinstance(e, _Attempt) and e.retry), reraise=True)
        tries = 0
        with httpx.Client(timeout=target.timeout, follow_redirects=False) as client:
            try:
                for attempt in retrying:
                    tries = attempt.retry_state.attempt_number
                    with attempt:
                        status = self._post(client, target, body, payload)
                        return Delivery(shown, True, tries, status, None)
            except _Attempt as last:
                gave_up = f" (gave up after {tries} {'try' if tries == 1 else 'tries'})" if last.retry else ""
                return Delivery(shown, False, tries, last.status,
                                self._clean(f"POST {shown}: {last}{gave_up}", target))
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, client: httpx.Client, target: WebhookTarget, body: bytes, payload: dict[str, Any]) -> int:
        headers = {"User-Agent": "syncdash", **target.headers, "Content-Type": "application/json",
                   "X-Syncdash-Event": str(payload.get("event")), "X-Syncdash-Delivery": str(payload.get("id"))}
        if target.secret:
            ts = int(time.time())
            headers["X-Syncdash-Timestamp"] = str(ts)
            headers["X-Syncdash-Signature"] = "sha256=" + sign(body, target.secret, ts)
        import httpx

        try:
            resp = client.post(target.url, content=body, headers=headers)
        except httpx.TimeoutException as e:
            raise _Attempt(f"timed out after {target.timeout:g} s ({type(e).__name__})", retry=True) from None
        except httpx.TransportError as e:
            raise _Attempt(f"network error: {e or type(e).__name__}", retry=True) from None
        status = resp.status_code
        if 200 <= status < 300:
            return status
        preview = _preview(resp.content)
        detail = f"HTTP {status}" + (f"; body: {preview}" if preview else "")
        if status == 429 or status >= 500:
            raise _Attempt(detail, retry=True, status=status,
                           retry_after=parse_retry_after(resp.headers.get("Retry-After")))
        if 300 <= status < 400:
            detail += " (redirects are not followed: configure the final URL)"
        raise _Attempt(detail, retry=False, status=status)

    # ---- command ------------------------------------------------------------------------------------------

    def _run_command(self, command: str, body: bytes, payload: dict[str, Any]) -> Delivery:
        """Run the command in its own process group so a timeout kills it and anything it started."""
        env = {**os.environ,
               "SYNCDASH_EVENT": str(payload.get("event") or ""),
               "SYNCDASH_SOURCE": str(payload.get("source") or ""),
               "SYNCDASH_RUN_ID": "" if payload.get("run_id") is None else str(payload["run_id"]),
               "SYNCDASH_STATUS": str(payload.get("status") or "")}
        try:
            proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as e:
            return Delivery("command", False, 1, None, self._clean(f"command cannot start: {e}"))
        try:
            _, err = proc.communicate(body, timeout=self.command_timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(proc)
            proc.communicate()
            return Delivery("command", False, 1, None,
                            self._clean(f"command timed out after {self.command_timeout:g} s and was killed"))
        if proc.returncode != 0:
            tail = _preview(err[-4 * ERROR_PREVIEW:])
            return Delivery("command", False, 1, proc.returncode,
                            self._clean(f"command exited with {proc.returncode}" + (f": {tail}" if tail else "")))
        return Delivery("command", True, 1, 0, None)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()

    # ---- secrets ------------------------------------------------------------------------------------------

    def _scrub(self, value: Any) -> Any:
        """Mask secrets in every string of the payload (serialising first could split a secret across escapes)."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value

    def _show_url(self, url: str) -> str:
        """The URL as reported: a password in it is masked, then everything `redact` knows."""
        parts = urlsplit(url)
        if parts.password:
            host = parts.hostname or ""
            netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
            url = urlunsplit(parts._replace(netloc=netloc))
        return self.redact(url)

    def _clean(self, text: str, target: WebhookTarget | None = None) -> str:
        """Remove every secret we know of from an error message, longest first."""
        secrets: set[str] = set()
        for t in [target] if target is not None else self.config.webhooks:
            if t.secret:
                secrets.add(t.secret)
            for v in t.headers.values():  # "Bearer <token>": the token alone may show up too
                secrets.add(v)
                secrets.update(w for w in v.split() if len(w) >= 8)
            pw = urlsplit(t.url).password
            if pw:
                secrets.add(pw)
        for s in sorted(secrets, key=len, reverse=True):
            if len(s) >= 3:
                text = text.replace(s, "***")
        return self.redact(text)
