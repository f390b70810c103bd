"""HTTP for REST sources: auth, a shared token bucket, a per-host circuit breaker and retries (the last three
from common.resilience, shared with web sources and the webhook notifier).

Every request of a source goes through RestClient.fetch, so the rate limit, the breaker and the
retry budget hold whatever the pagination or concurrency. Waits are recorded (url, reason,
seconds) so a run can say where its time went and tests can check Retry-After without a clock.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

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
    origin_of,
    strip_userinfo,
)

BODY_PREVIEW = 200
_PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
MAX_REDIRECTS = 10
_CHUNK = 1 << 16


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
                self._body = loads_json(self.content) if self.content else None
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
            # redirects are followed by _attempt itself: only to an allowed origin, never with credentials elsewhere
            timeout=cfg.timeout, verify=cfg.verify_tls, follow_redirects=False,
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
        self.origins, self._userinfo = configured_origins(cfg)
        self.origins |= set(cfg.allow_origins)

    def close(self) -> None:
        self.http.close()

    # ---- public ------------------------------------------------------------------------------

    def fetch(self, url: str, params: dict[str, Any] | None = None, method: str | None = None,
              body: Any = _UNPARSED, headers: dict[str, str] | None = None, accept: frozenset[int] = frozenset()
              ) -> Response:
        """The JSON body of url, after auth, rate limit, breaker and retries; FetchError when it fails for good.

        accept: error statuses answered as a Response instead of raised (a push's rejected records).
        """
        method = method or str(getattr(self.cfg, "method", "GET"))
        # a source's own `body:` unless the caller gives one; a push passes its body (None: none at all)
        body = getattr(self.cfg, "body", None) if body is _UNPARSED else body
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
        parts = urlsplit(strip_userinfo(url))
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

    def check_origin(self, url: str, how: str, came_from: str | None = None) -> None:
        """Credentials and configured headers go only to the configured origin(s) and `allow_origins`:
        a redirect or a next link elsewhere is refused (FetchError naming both origins)."""
        if not self.origins:
            return
        there = origin_of(url)
        if there in self.origins:
            return
        own = origin_of(came_from) if came_from else sorted(self.origins)[0]
        raise FetchError(f"{how} leads from {own} to another origin, {there}: refused, so the source's credentials "
                         f"and headers are not sent there; if that origin is trusted, add {there!r} to the "
                         "source's allow_origins", error_type="http", url=self.show_url(url), retryable=False)

    def _attempt(self, method: str, url: str, params: dict[str, Any] | None, body: Any, shown: str,
                 extra: dict[str, str] | None = None, accept: frozenset[int] = frozenset()) -> Response:
        url = strip_userinfo(url)  # userinfo travels as basic auth to its own origin, never in a URL we keep
        self.check_origin(url, f"{method} {shown}")
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
            full = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
            resp, content = self._send(method, full, headers, body if method != "GET" else None, shown)
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

    def _send(self, method: str, url: httpx.URL, headers: dict[str, str], body: Any, shown: str
              ) -> tuple[httpx.Response, bytes]:
        """One request with its redirects (each checked against the allowed origins) and the body read as a
        stream up to max_response: a huge answer fails early instead of filling memory."""
        for _ in range(MAX_REDIRECTS + 1):
            req = self.http.build_request(method, url, headers=headers, json=body)
            resp = self.http.send(req, stream=True)
            try:
                if resp.is_redirect and resp.headers.get("Location"):
                    target = urljoin(str(url), resp.headers["Location"])
                    self.check_origin(target, f"{method} {shown}: the redirect (HTTP {resp.status_code}) to "
                                      f"{self.show_url(target)}", came_from=str(url))
                    if resp.status_code == 303 or (resp.status_code in (301, 302) and method not in ("GET", "HEAD")):
                        method, body = "GET", None
                    url = httpx.URL(strip_userinfo(target))
                    continue
                return resp, self._read_capped(resp, method, shown)
            finally:
                resp.close()
        raise FetchError(f"{method} {shown}: more than {MAX_REDIRECTS} redirects", error_type="http",
                         url=shown, retryable=False)

    def _read_capped(self, resp: httpx.Response, method: str, shown: str) -> bytes:
        cap = self.cfg.max_response
        too_big = FetchError(f"{method} {shown}: the response is larger than max_response ({cap:,} bytes); raise "
                             "max_response if this endpoint really answers that much", error_type="http",
                             status=resp.status_code, url=shown, retryable=False)
        declared = resp.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise too_big
        buf = bytearray()
        for chunk in resp.iter_bytes(_CHUNK):
            buf += chunk
            if len(buf) > cap:
                del buf
                raise too_big
        return bytes(buf)

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
        # masked BEFORE the cut: a secret the server echoes across the cut would otherwise leave half of it
        head = self.redact_text(content[:BODY_PREVIEW * 8].decode("utf-8", "replace"))
        text = head[:BODY_PREVIEW]
        more = "..." if len(content) > BODY_PREVIEW else ""
        return self.redact_text(repr(text + more) if text else "(empty)")

    def _auth(self, params: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        auth = self.cfg.auth
        if auth is None:
            if self._userinfo is not None:  # https://user:pw@host/...: basic auth, to that origin only
                token = base64.b64encode(self._userinfo.encode()).decode()
                return {"Authorization": f"Basic {token}"}, params
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


def loads_json(content: bytes) -> Any:
    """orjson is strict JSON; the rare body it refuses (NaN, a BOM) gets a second chance with json. A body
    nested deeper than either parser recurses (`[` x 100,000) is a parse error (ValueError), not a crash."""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(content.decode("utf-8-sig"))
    except RecursionError:
        raise ValueError("nested too deeply") from None


def configured_origins(cfg: HttpSettings) -> tuple[set[str], str | None]:
    """The origins the config names (url, base_url, stream urls, a push url) and the `user:password` of a
    URL's userinfo, if any: credentials belong to these origins only."""
    urls = [getattr(cfg, "url", None), getattr(cfg, "base_url", None)]
    urls += [st.url for st in getattr(cfg, "streams", None) or []]
    urls.append(getattr(getattr(cfg, "delete", None), "url", None))  # a push's delete.url may name its own
    origins: set[str] = set()
    userinfo: str | None = None
    for u in urls:
        if not isinstance(u, str):
            continue
        u = _PLACEHOLDER.sub("x", u)  # a push url's {column}s
        parts = urlsplit(u)
        if not parts.hostname:
            continue
        origins.add(origin_of(u))
        if userinfo is None and parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return origins, userinfo


def host_breaker(host: str, policy: CircuitBreaker, source: str, store: BreakerStore | None) -> HostBreaker:
    """The breaker of `host` as a source's `circuit_breaker:` configures it."""
    return HostBreaker(host, failures=policy.failures, reset_after=policy.reset_after, source=source, store=store)


def throttle(source: str, host: str, limit: RateLimit, cancel: threading.Event | None) -> float:
    """Take a token of the source's `rate_limit:` bucket for `host`; the seconds waited."""
    return bucket_for(source, host, limit.interval, limit.burst, shared=limit.shared).acquire(cancel)
