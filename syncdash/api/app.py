"""The Starlette application of the daemon's HTTP API.

Layers, outermost first:
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
    return app
