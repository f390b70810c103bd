"""HTTP for REST sources: auth, a shared token bucket, a per-host circuit breaker and retries (the last three
from common.resilience, shared with web sources and the webhook notifier).

Every request of a source goes through RestClient.fetch, so the rate limit, the breaker and the
retry budget hold whatever the pagination or concurrency. Waits are recorded (url, reason,
seconds) so a run can say where its time went and tests can check Retry-After without a clock.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from syncdash.common.http import parse_retry_after
from syncdash.common.resilience import BreakerStore, HostBreaker, backoff, bucket_for, sleep_or_cancel
from syncdash.config.models import SourceConfig
from syncdash.errors import FetchError
from syncdash.kinds.rest.config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    CircuitBreaker,
    HttpSettings,
    OAuth2ClientCredentials,
    RateLimit,
    RetryPolicy,
)

BODY_PREVIEW = 200


@dataclass
class Wait:
    url: str
    reason: str  # "retry after HTTP 503", "Retry-After: 2", "rate limit"
    seconds: float


_UNPARSED: Any = object()


@dataclass
class Response:
    """A successful answer. The body is parsed on first access, in the thread that consumes the page:
    fetch threads then only wait on sockets (GIL released) and never contend with the writer for the GIL."""

    url: str  # as requested, secrets masked
    status: int
    headers: httpx.Headers
    content: bytes
    elapsed: float
    preview: Callable[[bytes], str]
    method: str = "GET"
    _body: Any = _UNPARSED

    @property
    def body(self) -> Any:
        if self._body is _UNPARSED:
            try:
                self._body = _loads(self.content) if self.content else None
            except ValueError as e:
                raise FetchError(f"{self.method} {self.url}: the body is not valid JSON ({e}); body: "
                                 f"{self.preview(self.content)}", error_type="parse", status=self.status,
                                 url=self.url, retryable=False) from None
        return self._body


class _Retry(Exception):
    """One failed attempt that may be tried again; carries the final error and any Retry-After."""

    def __init__(self, error: FetchError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


# ---- the client ----------------------------------------------------------------------------------

class RestClient:
    """One per source run, shared by its streams and fetch threads."""

    def __init__(self, cfg: HttpSettings, *, store: Any | None = None,
                 redact: Callable[[str], str] = lambda s: s, add_secret: Callable[[str], None] | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.cfg = cfg
        # the owner of rate-limit buckets and breakers: the source or push these settings belong to
        self.name = cfg.name if isinstance(cfg, SourceConfig) else "http"
        self.policy: RetryPolicy = cfg.retry
        self.redact_text = redact
        self.add_secret = add_secret or (lambda s: None)
        self.cancel = cancel
        self.store = store
        self.http = httpx.Client(
            timeout=cfg.timeout, verify=cfg.verify_tls, follow_redirects=True,
            headers={"User-Agent": "syncdash", **cfg.headers},
            limits=httpx.Limits(max_connections=cfg.concurrency + 2, max_keepalive_connections=cfg.concurrency + 2))
        self.waits: list[Wait] = []
        self.attempts = 0
        self._lock = threading.Lock()
        self._breakers: dict[str, HostBreaker] = {}
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()
        self._query_secret = cfg.auth.name if isinstance(cfg.auth, ApiKeyAuth) and cfg.auth.in_ == "query" else None

    def close(self) -> None:
        self.http.close()

    # ---- public ------------------------------------------------------------------------------

    def fetch(self, url: str, params: dict[str, Any] | None = None, method: str | None = None,
              body: Any = None, headers: dict[str, str] | None = None, accept: frozenset[int] = frozenset()
              ) -> Response:
        """The JSON body of url, after auth, rate limit, breaker and retries; FetchError when it fails for good.

        accept: error statuses answered as a Response instead of raised (a push's rejected records).
        """
        method = method or str(getattr(self.cfg, "method", "GET"))
        body = body if body is not None else getattr(self.cfg, "body", None)
        shown = self.show_url(url, params)
        retrying = Retrying(stop=stop_after_attempt(self.policy.attempts), wait=self._wait,
                            retry=retry_if_exception(lambda e: isinstance(e, _Retry)),
                            sleep=lambda s: sleep_or_cancel(s, self.cancel), reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(method, url, params, body, shown, headers, accept)
        except _Retry as e:
            tries = self.policy.attempts
            e.error.args = (f"{e.error} (gave up after {tries} {'try' if tries == 1 else 'tries'})",)
            raise e.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def show_url(self, url: str, params: dict[str, Any] | None = None) -> str:
        """The URL as it may be shown or stored: auth query parameters and secret values masked."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True) + [(k, str(v)) for k, v in (params or {}).items()]
        if self._query_secret is not None:
            query = [(k, "***" if k == self._query_secret else v) for k, v in query]
        return self.redact_text(urlunsplit(parts._replace(query=urlencode(query, safe="*:,/"))))

    # ---- internals ---------------------------------------------------------------------------

    def _breaker(self, host: str) -> HostBreaker:
        with self._lock:
            b = self._breakers.get(host)
            if b is None:
                b = self._breakers[host] = host_breaker(host, self.cfg.circuit_breaker, self.name, self.store)
            return b

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with full jitter, never less than the server's Retry-After."""
        exc = state.outcome.exception() if state.outcome else None
        url, reason, retry_after = "", "retry", None
        if isinstance(exc, _Retry):
            url = exc.error.url or ""
            reason = f"retry after {exc.error.error_type}" + (f" {exc.error.status}" if exc.error.status else "")
            if exc.retry_after is not None:
                reason = f"Retry-After: {exc.retry_after:g} s ({exc.error.status})"
                retry_after = exc.retry_after
        wait = backoff(state.attempt_number, self.policy.initial, self.policy.max, retry_after=retry_after)
        with self._lock:
            self.waits.append(Wait(url, reason, wait))
        return wait

    def _attempt(self, method: str, url: str, params: dict[str, Any] | None, body: Any, shown: str,
                 extra: dict[str, str] | None = None, accept: frozenset[int] = frozenset()) -> Response:
        host = urlsplit(url).netloc
        breaker = self._breaker(host)
        breaker.before()
        if self.cfg.rate_limit is not None:
            waited = throttle(self.name, host, self.cfg.rate_limit, self.cancel)
            if waited:
                with self._lock:
                    self.waits.append(Wait(shown, "rate limit", waited))
        with self._lock:
            self.attempts += 1
        headers, params = self._auth(dict(params or {}))
        if extra:
            headers = {**extra, **headers}
        started = time.monotonic()
        try:
            # httpx's params= replaces a URL's own query (next links carry theirs): merge instead
            full = httpx.URL(url).copy_merge_params(params) if params else url
            resp = self.http.request(method, full, headers=headers, json=body if method != "GET" else None)
            content = resp.content
        except httpx.TimeoutException as e:
            breaker.failure(f"timeout ({type(e).__name__})")
            raise _Retry(FetchError(f"{method} {shown}: timed out after {self.cfg.timeout:g} s",
                                    error_type="timeout", url=shown)) from None
        except httpx.TransportError as e:
            why = self.redact_text(str(e) or type(e).__name__)
            breaker.failure(f"network error: {why}")
            raise _Retry(FetchError(f"{method} {shown}: network error: {why}", error_type="network",
                                    url=shown)) from None
        elapsed = time.monotonic() - started
        status = resp.status_code
        if status == 401 and isinstance(self.cfg.auth, OAuth2ClientCredentials) and self._token is not None:
            self._token = None  # expired early or revoked: fetch a new one and try again at once
            raise _Retry(FetchError(f"{method} {shown}: HTTP 401, token refreshed", error_type="auth",
                                    status=401, url=shown, retryable=True), retry_after=0.0)
        if status >= 400:
            preview = self._preview(content)
            if status in self.policy.retry_on:
                if status >= 500:
                    breaker.failure(f"HTTP {status}")
                retry_after = self._retry_after(resp.headers.get("Retry-After"), shown, status)
                raise _Retry(FetchError(f"{method} {shown}: HTTP {status}; body: {preview}", error_type="http",
                                        status=status, url=shown), retry_after)
            breaker.success()  # the host answered: it is up, the request was wrong
            if status in accept:
                return Response(url=shown, status=status, headers=resp.headers, content=content, elapsed=elapsed,
                                preview=self._preview, method=method)
            kind = "auth" if status in (401, 403) else "http"
            hint = " (check the source's auth)" if kind == "auth" else ""
            raise FetchError(f"{method} {shown}: HTTP {status}{hint}; body: {preview}", error_type=kind,
                             status=status, url=shown, retryable=status in (408, 409, 425))
        breaker.success()
        return Response(url=shown, status=status, headers=resp.headers, content=content, elapsed=elapsed,
                        preview=self._preview, method=method)

    def _retry_after(self, value: str | None, shown: str, status: int) -> float | None:
        seconds = parse_retry_after(value)
        if seconds is None:
            return None
        if seconds > self.policy.max_retry_after:
            raise FetchError(f"GET {shown}: HTTP {status} with Retry-After {value!r} ({seconds:.0f} s), longer "
                             f"than retry.max_retry_after ({self.policy.max_retry_after:g} s); not waiting",
                             error_type="http", status=status, url=shown)
        return seconds

    def _preview(self, content: bytes) -> str:
        text = content[:BODY_PREVIEW].decode("utf-8", "replace")
        more = "..." if len(content) > BODY_PREVIEW else ""
        return self.redact_text(repr(text + more) if text else "(empty)")

    def _auth(self, params: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        auth = self.cfg.auth
        if auth is None:
            return {}, params
        if isinstance(auth, BearerAuth):
            return {"Authorization": f"Bearer {auth.token}"}, params
        if isinstance(auth, BasicAuth):
            token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
            return {"Authorization": f"Basic {token}"}, params
        if isinstance(auth, ApiKeyAuth):
            if auth.in_ == "query":
                return {}, {**params, auth.name: auth.value}
            return {auth.name: auth.value}, params
        return {"Authorization": f"Bearer {self._oauth_token(auth)}"}, params

    def _oauth_token(self, auth: OAuth2ClientCredentials) -> str:
        with self._token_lock:
            if self._token is not None and time.monotonic() < self._token_expires:
                return self._token
            form = {"grant_type": "client_credentials", "client_id": auth.client_id,
                    "client_secret": auth.client_secret}
            if auth.scope:
                form["scope"] = auth.scope
            shown = self.show_url(auth.token_url)
            try:
                resp = self.http.post(auth.token_url, data=form)
            except httpx.HTTPError as e:
                raise _Retry(FetchError(f"POST {shown} (OAuth2 token): {type(e).__name__}", error_type="network",
                                        url=shown)) from None
            if resp.status_code != 200:
                raise FetchError(f"POST {shown} (OAuth2 token): HTTP {resp.status_code}; check client_id and "
                                 f"client_secret; body: {self._preview(resp.content)}", error_type="auth",
                                 status=resp.status_code, url=shown, retryable=False)
            try:
                data = resp.json()
                token = str(data["access_token"])
            except (ValueError, KeyError, TypeError):
                raise FetchError(f"POST {shown} (OAuth2 token): no access_token in the answer; body: "
                                 f"{self._preview(resp.content)}", error_type="auth", url=shown,
                                 retryable=False) from None
            self.add_secret(token)
            expires = float(data.get("expires_in") or 3600)
            self._token = token
            self._token_expires = time.monotonic() + max(0.0, expires - 30)
            return token


def _loads(content: bytes) -> Any:
    """orjson is strict JSON; the rare body it refuses (NaN, a BOM) gets a second chance with json."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return json.loads(content.decode("utf-8-sig"))


def host_breaker(host: str, policy: CircuitBreaker, source: str, store: BreakerStore | None) -> HostBreaker:
    """The breaker of `host` as a source's `circuit_breaker:` configures it."""
    return HostBreaker(host, failures=policy.failures, reset_after=policy.reset_after, source=source, store=store)


def throttle(source: str, host: str, limit: RateLimit, cancel: threading.Event | None) -> float:
    """Take a token of the source's `rate_limit:` bucket for `host`; the seconds waited."""
    return bucket_for(source, host, limit.interval, limit.burst, shared=limit.shared).acquire(cancel)
