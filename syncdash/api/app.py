"""The Starlette application of the daemon's HTTP API.

Layers, outermost first:
- without a token (loopback only), the browser guard: a page the user visits must not drive the daemon, so a
  request whose Origin is not the API's own or whose Host is not the listen address (DNS rebinding) is a 403
  on every endpoint, and a POST must say Content-Type: application/json (a plain HTML form cannot) or is a 415;
- the token check (a plain ASGI middleware, before routing, so an unknown path without a token is a 401 too
  and nothing about the API is told to a caller without a token; constant-time comparison);
- one async wrapper per endpoint: query and body validation (body capped at 64 KiB while it is read), then the
  synchronous view in a worker thread (a capacity limiter keeps API traffic from taking every connection of
  the store's pool away from the workers), then a JSON response with the config's secrets masked;
- every error is a JSON body `{"error": "..."}`; an unexpected exception is logged and answered with a bare
  500 (never a traceback); a store that cannot be reached is a 503.
"""

from __future__ import annotations

import hmac
import json
import logging
from functools import partial
from typing import Any

import anyio
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from syncdash.api import search as search_view
from syncdash.api import views
from syncdash.api.metrics import CONTENT_TYPE
from syncdash.api.schemas import ENDPOINTS, MAX_BODY, ApiError, Endpoint, parse_body, parse_query
from syncdash.config.models import is_loopback
from syncdash.errors import StoreError, UsageError

log = logging.getLogger("syncdash.api")
STORE_THREADS = 4  # views running at once; the rest wait their turn (the workers keep their connections)
READ_METHODS = (b"GET", b"HEAD")


class Tokens:
    """Who a request is: "write", "read", or None (no or a wrong token). No token configured: everyone writes
    (allowed on loopback only; config.models refuses anything else)."""

    def __init__(self, token: str | None, read_token: str | None) -> None:
        self.write = f"Bearer {token}".encode() if token else None
        self.read = f"Bearer {read_token}".encode() if read_token else None

    def role(self, header: bytes) -> str | None:
        if self.write is None:
            return "write"
        # both comparisons always run: the time taken says nothing about which token (if any) was close
        is_write = hmac.compare_digest(header, self.write)
        is_read = hmac.compare_digest(header, self.read) if self.read is not None else False
        return "write" if is_write else ("read" if is_read else None)


def _json(status: int, data: Any, redact: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(redact(views.dumps(data)), status_code=status, media_type="application/json",
                    headers=headers)


class AuthMiddleware:
    def __init__(self, app: ASGIApp, tokens: Tokens, public: set[str], redact: Any) -> None:
        self.app = app
        self.tokens = tokens
        self.public = public
        self.redact = redact

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
        role = self.tokens.role(header)
        if role is None:
            resp = _json(401, {"error": "unauthorized"}, self.redact, {"WWW-Authenticate": "Bearer"})
        elif role == "read" and scope["method"].encode() not in READ_METHODS:
            resp = _json(403, {"error": "this token is read-only: it may GET, not " + scope["method"][:10]},
                         self.redact)
        else:
            await self.app(scope, receive, send)
            return
        await resp(scope, receive, send)


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def _split_host(value: str) -> tuple[str, int | None]:
    """"host:port" / "[v6]:port" / "host" -> (host lowercased, port or None); a bad port is port -1."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if not port:
        return host, None
    return host, int(port) if port.isdigit() else -1


class BrowserGuard:
    """The API without a token trusts whoever can reach loopback, which includes every web page the user's
    browser opens: a page can POST to http://127.0.0.1:8787 (a "simple" request needs no CORS preflight), and
    a hostile DNS name rebound to 127.0.0.1 makes the browser treat the API as that page's own origin.

    So without a token: the Host header must name the listen address (or localhost, when it is loopback) and
    the port served; an Origin header, when a browser sends one, must be that same address; and a POST must
    carry Content-Type: application/json, which a form or a simple fetch cannot send without a preflight the
    API never answers. curl, httpx and the CLI send no Origin and the Host they were given: nothing changes
    for them. With a token none of this applies: a page cannot know the token."""

    def __init__(self, app: ASGIApp, listen_host: str, redact: Any) -> None:
        self.app = app
        self.names = {listen_host.strip("[]").lower()}
        if is_loopback(listen_host.strip("[]")):
            self.names |= set(LOOPBACK_NAMES)
        self.redact = redact

    def _ours(self, value: str, scope: Scope) -> bool:
        server = scope.get("server") or (None, None)
        names = self.names | ({str(server[0]).lower()} if server[0] else set())
        host, port = _split_host(value)
        served = server[1]
        return host in names and (port == served or (port is None and served in (None, 80)))

    def refusal(self, scope: Scope) -> Response | None:
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self._ours(host, scope):
            return _json(403, {"error": "refused: the Host header does not name this API's listen address "
                                        "(without a token the API answers only to its own address)"}, self.redact)
        origin = headers.get(b"origin")
        if origin is not None:
            text = origin.decode("latin-1").strip()
            scheme, sep, rest = text.partition("://")
            if not (sep and scheme.lower() == "http" and "/" not in rest and self._ours(rest, scope)):
                return _json(403, {"error": "refused: a request from another origin (a web page) may not drive "
                                            "the API; set daemon.http.token to use it from elsewhere"}, self.redact)
        if scope["method"] == "POST":
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                return _json(415, {"error": "a POST must be sent with Content-Type: application/json "
                                            "(curl: -H 'Content-Type: application/json')"}, self.redact)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (resp := self.refusal(scope)) is not None:
            await resp(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _read_body(request: Request) -> Any:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise ApiError(413, f"the body is over {MAX_BODY // 1024} KiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"the body is over {MAX_BODY // 1024} KiB")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    # any Content-Type: the body is read as JSON (curl -d sends form-urlencoded unless told otherwise)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        reason = e.msg if isinstance(e, json.JSONDecodeError) else "cannot be read"
        raise ApiError(400, f"the body is not valid JSON: {reason}") from None


class Handler:
    """One endpoint: validate, run its view off the event loop, answer in JSON (or text, for /metrics)."""

    def __init__(self, api: views.Api, ep: Endpoint, redact: Any) -> None:
        self.api = api
        self.ep = ep
        self.view = getattr(views, ep.handler, None) or getattr(search_view, ep.handler)
        self.redact = redact
        self.limiter: anyio.CapacityLimiter | None = None

    async def __call__(self, request: Request) -> Response:
        try:
            query = parse_query(request.query_params.multi_items(), self.ep.query)
            body = None
            if self.ep.body is not None:
                body = parse_body(self.ep.body, await _read_body(request))
            if self.limiter is None:  # made inside the event loop, on first use
                self.limiter = _limiter()
            status, data = await anyio.to_thread.run_sync(
                partial(self.view, self.api, dict(request.path_params), query, body), limiter=self.limiter)
        except ApiError as e:
            return _json(e.status, {"error": e.message, **e.extra}, self.redact)
        except UsageError as e:  # control.* refusing (unknown source or run): the caller's mistake
            return _json(409, {"error": str(e)}, self.redact)
        except (OperationalError, DBAPIError, StoreError):
            log.warning("API request failed: the store is unreachable", exc_info=True)
            return _json(503, {"error": "the store is unreachable"}, self.redact)
        except Exception:
            log.exception("API request failed", extra={"source": request.path_params.get("name")})
            return _json(500, {"error": "internal error (see the daemon's log)"}, self.redact)
        if self.ep.text:
            return Response(self.redact(data), status_code=status, media_type=CONTENT_TYPE)
        return _json(status, data, self.redact)


def _limiter() -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(STORE_THREADS)


def _endpoint(handler: Handler) -> Any:
    """Starlette takes a function as a request handler (an object with __call__ would be taken for an ASGI app)."""

    async def endpoint(request: Request) -> Response:
        return await handler(request)

    return endpoint


def build_app(api: views.Api) -> Starlette:
    """The ASGI app for one daemon: its config, store and the daemon itself (for cancel and wake-ups)."""
    redact = api.config.redact
    routes = [Route(ep.path, _endpoint(Handler(api, ep, redact)), methods=[ep.method]) for ep in ENDPOINTS]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        reason = {404: "no such endpoint (see /v1/openapi.json)", 405: "method not allowed"}
        return JSONResponse({"error": reason.get(exc.status_code, exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("API request failed", exc_info=exc)
        return JSONResponse({"error": "internal error (see the daemon's log)"}, status_code=500)

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    app.router.redirect_slashes = False  # /v1/runs/ is a 404 like any unknown path, not a redirect
    public = {ep.path for ep in ENDPOINTS if ep.public}
    if api.settings.metrics_public:
        public.add("/metrics")
    app.add_middleware(AuthMiddleware, tokens=Tokens(api.settings.token, api.settings.read_token),
                       public=public, redact=redact)
    if not api.settings.token:  # loopback without a token (config.models refuses anything else): see BrowserGuard
        app.add_middleware(BrowserGuard, listen_host=api.settings.host, redact=redact)
    return app
