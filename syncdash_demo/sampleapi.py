"""A real local REST API to sync from: the demo's data source, the REST tests' server and the benchmark's server.

Mocking httpx would test the client against our own idea of HTTP; this is a real socket server speaking
HTTP/1.1 with keep-alive, so the `kind: rest` source meets real connection reuse, real timeouts, real
dropped sockets and real headers. It is stdlib only so it can run anywhere the package runs, in-process
(tests) or as `python -m syncdash_demo.sampleapi` (benchmark, `syncdash demo`).

One endpoint per pagination style (page, offset, cursor, next link, Link header, none) lets a client be
tested against each; faults (fail, slow, drop, malformed) are injected per path, in-process through the
Python API or from another process through `/_control/*`.

A page body is one `json.dumps` of a slice of the id-ordered records (bisect finds cursor/after positions)
and is cached per (path, query) until the records change, so a repeated walk of 100,000 records in pages of
1,000 costs the server little more than the socket writes: the benchmark then measures the client.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bisect
import hmac
import json
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

__all__ = ["AuthSpec", "RequestLog", "SampleApi", "main", "make_players"]

Headers = list[tuple[str, str]]
Response = tuple[int, Headers, bytes]  # status, extra headers, body
QueryKey = tuple[str, tuple[tuple[str, str], ...]]

MAX_LIMIT = 10_000  # a real API caps page sizes; large enough for any benchmark page
CACHE_BYTES = 128 * 1024 * 1024  # response cache bound: a full 100k-record walk is ~25 MB per style
MAX_BODY = 1024 * 1024  # request bodies (token form, control JSON) are tiny; refuse anything bigger
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # one instance: dumps() builds one per call
_COUNTRIES = ("ie", "gb", "us", "de", "fr", "no", "in", "cn", "ru", "es", "nl", "br")
_TAGS = ("gm", "im", "fm", "cm", "wgm", "streamer", "junior", "senior")
_CLUBS = 12
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_STYLE = re.compile(r"/v1/(page|offset|cursor|next|link|none)/players")
_PLAYER = re.compile(r"/v1/players/([^/]+)")
_MEMBERS = re.compile(r"/v1/clubs/([^/]+)/members")


# --------------------------------------------------------------------------------------------- data


def make_players(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """`n` ratings-site players, ids 1..n: deterministic from `seed` so tests and benchmarks can assert on them.

    The shape is chosen to exercise a REST source's mapping: nested objects (`profile`), a nullable object
    (`club`), a list that is sometimes empty (`tags`), floats, ints, booleans and ISO-8601 Z timestamps.
    Written for speed (the benchmark generates 100,000): no datetime arithmetic or `sample` per record.
    """
    rng = random.Random(seed)
    rand = rng.random
    days = [(_EPOCH + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(180)]
    players: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        country = _COUNTRIES[int(rand() * len(_COUNTRIES))]
        club = None if rand() < 0.15 else {"name": f"Club {1 + int(rand() * _CLUBS)}"}
        first, count = int(rand() * len(_TAGS)), (0, 0, 1, 1, 2, 3)[int(rand() * 6)]
        tags = [_TAGS[(first + 3 * j) % len(_TAGS)] for j in range(count)]  # 3 is coprime to 8: distinct
        secs = int(rand() * 86400)
        updated = f"{days[int(rand() * 180)]}T{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}Z"
        players.append({
            "id": i,
            "profile": {"display_name": f"Player {i}", "country": country},
            "club": club,
            "tags": tags,
            "elo": round((1200 + rand() * 1650) * 2) / 2,
            "games": int(rand() * 3001),
            "updated_at": updated,
            "active": rand() < 0.9,
        })
    return players


def dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()


def _parse_ts(value: Any) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp (naive means UTC), None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _country(record: dict[str, Any]) -> Any:
    profile = record.get("profile")
    return profile.get("country") if isinstance(profile, dict) else None


def _club(record: dict[str, Any]) -> Any:
    club = record.get("club")
    return club.get("name") if isinstance(club, dict) else None


def _natural(name: str) -> tuple[Any, ...]:
    """Sort key putting "Club 2" before "Club 10": club ids follow it."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


@dataclass
class _View:
    """The records one filter (updated_since, country, club) selects, in id order."""

    ids: list[int]
    records: list[dict[str, Any]]


class _Data:
    """An immutable snapshot of the records plus everything derived from it (filtered views, response bodies).

    A change builds a new snapshot and swaps it in, which is both the cache invalidation and the thread
    safety: a request works on the snapshot it started with.
    """

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.ids = [r["id"] for r in records]
        self.by_id = dict(zip(self.ids, records, strict=True))
        self._ts: list[float | None] | None = None
        self._views: dict[tuple[float | None, str | None, str | None], _View] = {}
        self._clubs: list[str] | None = None
        self._cache: OrderedDict[QueryKey, Response] = OrderedDict()
        self._cache_bytes = 0
        self._lock = threading.Lock()

    def view(self, since: float | None, country: str | None, club: str | None) -> _View:
        """Linear filter, done once per distinct filter and kept (a few dozen at most, then start over)."""
        if since is None and country is None and club is None:
            return _View(self.ids, self.records)
        key = (since, country, club)
        with self._lock:
            found = self._views.get(key)
        if found is not None:
            return found
        if self._ts is None:
            self._ts = [_parse_ts(r.get("updated_at")) for r in self.records]
        ts = self._ts
        picked = [
            i for i, r in enumerate(self.records)
            if (since is None or ((t := ts[i]) is not None and t >= since))
            and (country is None or _country(r) == country)
            and (club is None or _club(r) == club)
        ]
        view = _View([self.ids[i] for i in picked], [self.records[i] for i in picked])
        with self._lock:
            if len(self._views) >= 64:
                self._views.clear()
            self._views[key] = view
        return view

    def club_names(self) -> list[str]:
        """Every club any record belongs to, in natural order: a club's id is its position + 1."""
        if self._clubs is None:
            self._clubs = sorted({c for r in self.records if isinstance(c := _club(r), str)}, key=_natural)
        return self._clubs

    def cached(self, key: QueryKey) -> Response | None:
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def store(self, key: QueryKey, response: Response) -> None:
        size = len(response[2])
        if size > CACHE_BYTES // 4:
            return
        with self._lock:
            if key in self._cache:
                return
            self._cache[key] = response
            self._cache_bytes += size
            while self._cache_bytes > CACHE_BYTES:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= len(old[2])


# --------------------------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class AuthSpec:
    """What a data endpoint demands; build one with the class methods, e.g. `AuthSpec.bearer("s3cret")`.

    kind "none": anything goes. "bearer": `Authorization: Bearer <token>`. "basic": HTTP basic with
    username/password. "api_key": `name: value` header (in_="header") or `?name=value` (in_="query").
    "oauth2": client-credentials; `POST /oauth/token` hands out random tokens valid for `expires_in`
    seconds, and data endpoints want `Authorization: Bearer <one of them>`.
    """

    kind: Literal["none", "bearer", "basic", "api_key", "oauth2"] = "none"
    token: str | None = None
    username: str | None = None
    password: str | None = None
    name: str | None = None
    value: str | None = None
    in_: Literal["header", "query"] = "header"
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    expires_in: int = 3600

    @classmethod
    def none(cls) -> AuthSpec:
        return cls("none")

    @classmethod
    def bearer(cls, token: str) -> AuthSpec:
        return cls("bearer", token=token)

    @classmethod
    def basic(cls, username: str, password: str) -> AuthSpec:
        return cls("basic", username=username, password=password)

    @classmethod
    def api_key(cls, name: str, value: str, in_: Literal["header", "query"] = "header") -> AuthSpec:
        if in_ not in ("header", "query"):
            raise ValueError("in_ must be 'header' or 'query'")
        return cls("api_key", name=name, value=value, in_=in_)

    @classmethod
    def oauth2(cls, client_id: str, client_secret: str, scope: str | None = None,
               expires_in: int = 3600) -> AuthSpec:
        return cls("oauth2", client_id=client_id, client_secret=client_secret, scope=scope, expires_in=expires_in)


@dataclass
class RequestLog:
    """One request as the server saw it. status 0 means the connection was dropped without a response.

    `finished` is taken just before the response is written, so a client that has its response always
    finds the entry already in `SampleApi.requests`.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    started: float = 0.0
    finished: float = 0.0


@dataclass
class _Fault:
    kind: Literal["fail", "slow", "drop", "malformed"]
    needle: str
    times: int
    status: int = 500
    retry_after: str | None = None
    body: bytes | None = None
    seconds: float = 0.0


class HttpError(Exception):
    """Raised anywhere in request handling to answer with a JSON error instead."""

    def __init__(self, status: int, error: str, headers: Headers | None = None, **extra: Any) -> None:
        super().__init__(error)
        self.response: Response = (status, headers or [], dumps({"error": error, **extra}))


def int_param(query: dict[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        raise HttpError(400, f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise HttpError(400, f"{name} must be {bound}")
    return value


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, last = text.partition(":")
        if prefix != "after":
            raise ValueError(cursor)
        return int(last)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HttpError(400, "invalid cursor") from None


def _parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def bearer_token(header: str | None) -> str | None:
    if not header or header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


# --------------------------------------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client connection must never keep the process alive
    request_queue_size = 128  # concurrent benchmark clients should not see refused connects
    api: SampleApi

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-response is normal here (drop faults, timeouts): keep stderr quiet."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client's connection pool is part of what is tested
    server_version = "syncdash-sampleapi/1"
    timeout = 60  # idle keep-alive connections are closed, like a real server does
    server: _Server

    def setup(self) -> None:
        super().setup()
        try:  # headers and body go out in one write anyway; no Nagle delay on small responses
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.api._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log is `SampleApi.requests`, and stderr belongs to whoever runs us."""

    def do_GET(self) -> None:
        self.server.api._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.api._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.api._handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.api._handle(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.api._handle(self, "DELETE")


class SampleApi:
    """The sample REST API: construct, `start()` (or use as a context manager), point a client at `url`.

    `records` defaults to `make_players(n, seed)`. `latency` seconds are slept before every data response
    (`/v1/*`, `/oauth/token`) to behave like a remote API. `auth` protects the `/v1/*` endpoints. The
    server stops by itself after `lifetime` seconds so a forgotten one cannot outlive its test or demo.
    `url` is "" until `start()` has bound the socket (port 0 picks a free port).
    """

    def __init__(self, records: list[dict[str, Any]] | None = None, *, n: int = 250, latency: float = 0.0,
                 auth: AuthSpec | None = None, lifetime: float = 600.0, seed: int = 7,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        if lifetime <= 0:
            raise ValueError("lifetime must be positive: the server has to stop by itself")
        self.latency = latency
        self.auth = auth or AuthSpec.none()
        self.lifetime = lifetime
        self.seed = seed
        self.host = host
        self.port = port
        self.url = ""
        self.requests: list[RequestLog] = []
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._tokens: dict[str, float] = {}
        self._conns: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._stopped = threading.Event()  # stop() has begun: no new connection is served
        self._done = threading.Event()  # stop() has finished: port released, connections closed
        self._state = _Data([])
        if records is None:
            self._install(make_players(n, seed))  # ours already: skip set_records' defensive copy
        else:
            self.set_records(records)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SampleApi:
        """Bind and serve in a daemon thread; returns self so `api = SampleApi().start()` reads well."""
        with self._lock:
            if self._server is not None or self._stopped.is_set():
                raise RuntimeError("SampleApi can be started once")
            server = _Server((self.host, self.port), _Handler)
            server.api = self
            self._server = server
            self.url = f"http://{self.host}:{server.server_address[1]}"
            # stop() waits up to one poll interval; tests stop dozens of servers, an idle select is cheap
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                            name=f"sampleapi:{server.server_address[1]}", daemon=True)
            self._thread.start()
            self._timer = threading.Timer(self.lifetime, self.stop)
            self._timer.daemon = True
            self._timer.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every open keep-alive connection, release the port. Idempotent; whoever
        calls it returns only once the server is fully stopped (also when the lifetime timer got there first)."""
        with self._lock:
            first = not self._stopped.is_set()
            self._stopped.set()
            server, timer = self._server, self._timer
        if not first:
            if server is not None and threading.current_thread() is not timer:
                self._done.wait()
            return
        try:
            if timer is not None and timer is not threading.current_thread():
                timer.cancel()
            if server is not None:
                server.shutdown()
                with self._lock:
                    conns = list(self._conns)
                for conn in conns:  # idle pooled connections would otherwise keep being served after stop
                    _close(conn)
                server.server_close()
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopped (by `stop()`, the lifetime timer or a signal); True when it has stopped."""
        return self._done.wait(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _track(self, conn: socket.socket, opened: bool) -> None:
        with self._lock:
            if not opened:
                self._conns.discard(conn)
                return
            self._conns.add(conn)
            late = self._stopped.is_set()  # accepted just before shutdown: stop() may have missed it
        if late:
            _close(conn)

    # ------------------------------------------------------------------ request log

    def count(self, path_prefix: str = "", status: int | None = None) -> int:
        """Requests seen whose path starts with `path_prefix` (and that got `status`, when given)."""
        with self._lock:
            log = list(self.requests)
        return sum(1 for r in log if r.path.startswith(path_prefix) and (status is None or r.status == status))

    # ------------------------------------------------------------------ faults

    def fail(self, path_contains: str, status: int = 500, *, times: int = 1, retry_after: str | None = None,
             body: bytes | None = None) -> None:
        """Answer the next `times` matching requests with `status` (and `Retry-After: retry_after` if given)."""
        if not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        self._add(_Fault("fail", path_contains, times, status=status, retry_after=retry_after, body=body))

    def slow(self, path_contains: str, seconds: float, *, times: int = 1) -> None:
        """Sleep `seconds` before answering the next `times` matching requests normally (client timeouts)."""
        self._add(_Fault("slow", path_contains, times, seconds=seconds))

    def drop(self, path_contains: str, *, times: int = 1) -> None:
        """Close the socket without any response for the next `times` matching requests."""
        self._add(_Fault("drop", path_contains, times))

    def malformed(self, path_contains: str, *, times: int = 1) -> None:
        """Answer 200 with a truncated JSON body for the next `times` matching requests."""
        self._add(_Fault("malformed", path_contains, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def expire_tokens(self) -> None:
        """Make every issued OAuth2 token stale now, so a client's refresh-on-401 path can be tested."""
        with self._lock:
            self._tokens.clear()

    def _add(self, fault: _Fault) -> None:
        """Rules are tried in the order added; `times=-1` never runs out; the first live match fires."""
        if fault.times == 0 or fault.times < -1:
            raise ValueError("times must be positive, or -1 for forever")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, target: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.needle in target:
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            del self._faults[i]
                    return fault
        return None

    # ------------------------------------------------------------------ records

    def set_records(self, records: list[dict[str, Any]]) -> None:
        """Replace all records (copied through JSON, so they must be JSON; sorted by id; unique int ids)."""
        self._install(json.loads(dumps(records)))

    def _install(self, copied: list[dict[str, Any]]) -> None:
        seen: set[int] = set()
        for r in copied:
            if not isinstance(r, dict) or type(r.get("id")) is not int:
                raise ValueError("every record must be an object with an integer 'id'")
            if r["id"] in seen:
                raise ValueError(f"duplicate id {r['id']}")
            seen.add(r["id"])
        copied.sort(key=lambda r: r["id"])
        with self._lock:
            self._state = _Data(copied)

    def touch(self, ids: list[int], at: str) -> None:
        """Set `updated_at = at` on those records and really change them (elo += 1), as an upstream edit would.

        Records without a numeric `elo` get a `revision` counter bumped instead. Unknown ids raise KeyError.
        """
        if _parse_ts(at) is None:
            raise ValueError(f"not an ISO-8601 timestamp: {at!r}")
        with self._lock:
            state = self._state
            records = list(state.records)
            for rid in ids:
                i = bisect.bisect_left(state.ids, rid)
                if i == len(state.ids) or state.ids[i] != rid:
                    raise KeyError(rid)
                record = dict(records[i], updated_at=at)
                elo = record.get("elo")
                if isinstance(elo, int | float) and not isinstance(elo, bool):
                    record["elo"] = elo + 1
                else:
                    record["revision"] = int(record.get("revision") or 0) + 1
                records[i] = record
            self._state = _Data(records)

    def remove(self, ids: list[int]) -> None:
        """Delete those records (a full sync should then delete their rows). Unknown ids raise KeyError."""
        with self._lock:
            state = self._state
            gone = set(ids)
            missing = gone.difference(state.by_id)
            if missing:
                raise KeyError(min(missing))
            self._state = _Data([r for r in state.records if r["id"] not in gone])

    @property
    def records(self) -> list[dict[str, Any]]:
        """The current records in id order (a snapshot; do not mutate, use set_records/touch/remove)."""
        return self._state.records

    # ------------------------------------------------------------------ request handling

    def _handle(self, h: _Handler, method: str) -> None:
        started = time.monotonic()
        split = urlsplit(h.path)
        path, raw_query = split.path, split.query
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in h.headers.items()}
        entry = RequestLog(method, path, query, headers, 0, started, 0.0)
        response: Response | None = None
        try:
            body = self._read_body(h, headers)
            if path.startswith("/_control/"):
                response = self._control(method, path, query, body)
            else:
                fault = self._take_fault(f"{path}?{raw_query}")
                if fault is not None and fault.kind == "slow":
                    time.sleep(fault.seconds)
                elif fault is not None and fault.kind == "drop":
                    self._drop(h, entry)
                    return
                elif fault is not None and fault.kind == "malformed":
                    response = (200, [], b'{"data":[{"id":1,"profile":{"display_name":"Play')
                elif fault is not None:
                    extra = [("Retry-After", fault.retry_after)] if fault.retry_after is not None else []
                    fail_body = fault.body if fault.body is not None else dumps(
                        {"error": "injected failure", "status": fault.status})
                    response = (fault.status, extra, fail_body)
                if response is None:
                    response = self._route(method, path, query, headers, body)
        except HttpError as e:
            response = e.response
        except Exception as e:  # a bug here must reach the client as a 500, not a hung connection
            response = (500, [], dumps({"error": "internal error", "detail": repr(e)}))
        self._send(h, entry, response)

    def _read_body(self, h: _Handler, headers: dict[str, str]) -> bytes:
        if "transfer-encoding" in headers:
            h.close_connection = True
            raise HttpError(411, "send a Content-Length, chunked bodies are not supported")
        raw = headers.get("content-length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            h.close_connection = True
            raise HttpError(400, "bad Content-Length") from None
        if length < 0 or length > MAX_BODY:
            h.close_connection = True
            raise HttpError(413, "request body too large")
        return h.rfile.read(length) if length else b""

    def _log(self, entry: RequestLog, status: int) -> None:
        entry.status = status
        entry.finished = time.monotonic()
        with self._lock:
            self.requests.append(entry)

    def _drop(self, h: _Handler, entry: RequestLog) -> None:
        self._log(entry, 0)
        h.close_connection = True
        _close(h.connection)

    def _send(self, h: _Handler, entry: RequestLog, response: Response) -> None:
        """Status line, headers and body in one write: Content-Length always, JSON unless told otherwise."""
        status, extra, body = response
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        names = {k.lower() for k, _ in extra}
        lines = [f"HTTP/1.1 {status} {phrase}", f"Server: {h.server_version}", f"Date: {h.date_time_string()}"]
        if "content-type" not in names:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        lines.extend(f"{k}: {v}" for k, v in extra)
        if h.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._log(entry, status)
        try:
            h.wfile.write(head + body)
        except OSError:
            h.close_connection = True

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Response:
        if path == "/_health":
            self._method(method, "GET")
            return (200, [], b'{"ok":true}')
        if path == "/oauth/token":
            self._method(method, "POST")
            if self.latency:
                time.sleep(self.latency)
            return self._token(headers, body)
        if path.startswith("/v1/"):
            self._method(method, "GET")
            if self.latency:
                time.sleep(self.latency)
            self._check_auth(headers, query)
            state = self._state
            key: QueryKey = (path, tuple(sorted(query.items())))
            cached = state.cached(key)
            if cached is not None:
                return cached
            response = self._data(state, path, query)
            if response[0] == 200:
                state.store(key, response)
            return response
        raise HttpError(404, "not found")

    @staticmethod
    def _method(method: str, allowed: str) -> None:
        if method != allowed:
            raise HttpError(405, "method not allowed", [("Allow", allowed)])

    # ------------------------------------------------------------------ auth

    def _token(self, headers: dict[str, str], body: bytes) -> Response:
        spec = self.auth
        if spec.kind != "oauth2":
            raise HttpError(404, "not found")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            raise HttpError(400, "unsupported_grant_type")
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = _parse_basic(headers.get("authorization"))
        if basic is not None and client_id is None and secret is None:
            client_id, secret = basic
        if not (_same(client_id, spec.client_id) and _same(secret, spec.client_secret)):
            raise HttpError(401, "invalid_client", [("WWW-Authenticate", 'Basic realm="sampleapi"')])
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for old in [t for t, until in self._tokens.items() if until <= now]:
                del self._tokens[old]
            self._tokens[token] = now + spec.expires_in
        answer: dict[str, Any] = {"access_token": token, "token_type": "bearer", "expires_in": spec.expires_in}
        if spec.scope is not None:
            answer["scope"] = spec.scope
        return (200, [("Cache-Control", "no-store")], dumps(answer))

    def _check_auth(self, headers: dict[str, str], query: dict[str, str]) -> None:
        spec = self.auth
        if spec.kind == "none":
            return
        challenge = 'Basic realm="sampleapi"' if spec.kind == "basic" else 'Bearer realm="sampleapi"'
        if spec.kind == "bearer":
            ok = _same(bearer_token(headers.get("authorization")), spec.token)
        elif spec.kind == "basic":
            got = _parse_basic(headers.get("authorization"))
            ok = got is not None and _same(got[0], spec.username) and _same(got[1], spec.password)
        elif spec.kind == "api_key":
            name = spec.name or ""
            got_key = query.get(name) if spec.in_ == "query" else headers.get(name.lower())
            ok = _same(got_key, spec.value)
            challenge = f'ApiKey realm="sampleapi", name="{name}", in="{spec.in_}"'
        else:
            token = bearer_token(headers.get("authorization"))
            with self._lock:
                until = self._tokens.get(token or "")
            ok = until is not None and until > time.monotonic()
        if not ok:
            raise HttpError(401, "unauthorized", [("WWW-Authenticate", challenge)])

    # ------------------------------------------------------------------ data endpoints

    def _data(self, state: _Data, path: str, query: dict[str, str]) -> Response:
        since: float | None = None
        if "updated_since" in query:
            since = _parse_ts(query["updated_since"])
            if since is None:
                raise HttpError(400, "updated_since must be an ISO 8601 timestamp")
        country = query.get("country") or None

        if m := _STYLE.fullmatch(path):
            return self._players(m.group(1), state.view(since, country, None), path, query)
        if path == "/v1/clubs":
            return self._clubs(state, since, country)
        if m := _MEMBERS.fullmatch(path):
            name = unquote(m.group(1))
            if name not in state.club_names():
                raise HttpError(404, "not found")
            return self._paged("page", state.view(since, country, name), path, query)
        if m := _PLAYER.fullmatch(path):
            return self._detail(state, m.group(1))
        raise HttpError(404, "not found")

    def _players(self, style: str, view: _View, path: str, query: dict[str, str]) -> Response:
        if style == "none":
            return (200, [], dumps(view.records))
        return self._paged(style, view, path, query)

    def _paged(self, style: str, view: _View, path: str, query: dict[str, str]) -> Response:
        """One body per style; slices are by position (page/offset) or by id via bisect (cursor/after)."""
        total = len(view.ids)
        if style == "page":
            page = int_param(query, "page", 1, 1)
            limit = int_param(query, "limit", 100, 1, MAX_LIMIT)
            start = (page - 1) * limit
            items = dumps(view.records[start:start + limit])
            return (200, [], b'{"data":{"items":%b},"meta":{"total":%d,"page":%d}}' % (items, total, page))
        if style == "offset":
            offset = int_param(query, "offset", 0, 0)
            limit = int_param(query, "limit", 100, 1, MAX_LIMIT)
            items = dumps(view.records[offset:offset + limit])
            return (200, [], b'{"items":%b,"total":%d}' % (items, total))
        if style == "cursor":
            limit = int_param(query, "limit", 100, 1, MAX_LIMIT)
            cursor = query.get("cursor")
            start = bisect.bisect_right(view.ids, _decode_cursor(cursor)) if cursor else 0
            end = min(start + limit, total)
            nxt = _encode_cursor(view.ids[end - 1]) if end < total else None
            items = dumps(view.records[start:end])
            return (200, [], b'{"data":%b,"meta":{"next_cursor":%b}}' % (items, dumps(nxt)))
        if style == "next":
            limit = int_param(query, "limit", 100, 1, MAX_LIMIT)
            after = int_param(query, "after", 0, -(2**63))
            start = bisect.bisect_right(view.ids, after)
            end = min(start + limit, total)
            link = None
            if end < total:
                params = {"after": str(view.ids[end - 1])}
                params.update((k, v) for k, v in query.items() if k != "after")
                params["limit"] = str(limit)
                link = f"{self.url}{path}?{urlencode(params)}"
            items = dumps(view.records[start:end])
            return (200, [], b'{"results":%b,"links":{"next":%b}}' % (items, dumps(link)))
        # style == "link": bare list, RFC 8288 Link header
        page = int_param(query, "page", 1, 1)
        per_page = int_param(query, "per_page", 100, 1, MAX_LIMIT)
        start = (page - 1) * per_page
        last = max(1, -(-total // per_page))
        links: list[str] = []
        if page < last:
            links.append(f'<{self._page_url(path, query, page + 1, per_page)}>; rel="next"')
            links.append(f'<{self._page_url(path, query, last, per_page)}>; rel="last"')
        if page > 1:
            links.append(f'<{self._page_url(path, query, 1, per_page)}>; rel="first"')
            links.append(f'<{self._page_url(path, query, min(page - 1, last), per_page)}>; rel="prev"')
        extra = [("Link", ", ".join(links))] if links else []
        return (200, extra, dumps(view.records[start:start + per_page]))

    def _page_url(self, path: str, query: dict[str, str], page: int, per_page: int) -> str:
        """Every other parameter kept (filters, api key): following the link must give the same listing."""
        params = dict(query)
        params["page"] = str(page)
        params["per_page"] = str(per_page)
        return f"{self.url}{path}?{urlencode(params)}"

    def _clubs(self, state: _Data, since: float | None, country: str | None) -> Response:
        """Clubs with member counts (of `country`'s players, if given); updated_at = latest member change."""
        names = state.club_names()
        stats: dict[str, list[Any]] = {name: [0, None, None] for name in names}  # members, newest ts, its text
        for r in state.view(None, country, None).records:
            name = _club(r)
            if not isinstance(name, str):
                continue
            s = stats[name]
            s[0] += 1
            ts = _parse_ts(r.get("updated_at"))
            if ts is not None and (s[1] is None or ts > s[1]):
                s[1], s[2] = ts, r.get("updated_at")
        out = []
        for i, name in enumerate(names, 1):
            members, ts, text = stats[name]
            if members == 0 or (since is not None and (ts is None or ts < since)):
                continue
            out.append({"id": i, "name": name, "members": members, "updated_at": text})
        return (200, [], dumps(out))

    def _detail(self, state: _Data, raw_id: str) -> Response:
        """A per-record detail call (N+1 fetching); deterministic from seed and id, live from the record."""
        try:
            rid = int(raw_id)
        except ValueError:
            raise HttpError(404, "not found") from None
        record = state.by_id.get(rid)
        if record is None:
            raise HttpError(404, "not found")
        rng = random.Random(self.seed * 1_000_003 + rid)
        profile = record.get("profile") if isinstance(record.get("profile"), dict) else {}
        name = profile.get("display_name") or f"Player {rid}"
        elo = record.get("elo")
        base = int(elo) if isinstance(elo, int | float) else 1500
        history = [{"month": f"2023-{m:02d}", "elo": base - rng.randint(-80, 80)} for m in range(1, 7)]
        bio = f"{name} plays from {str(profile.get('country') or '??').upper()} since {rng.randint(1995, 2020)}."
        answer = {"id": rid, "detail": {"bio": bio, "rating_history": history}, "games_played": record.get("games")}
        return (200, [], dumps(answer))

    # ------------------------------------------------------------------ control endpoints

    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> Response:
        """The fault and record API over HTTP, for a server in another process. Never faulted, never authed."""
        action = path[len("/_control/"):]
        if action == "count":
            self._method(method, "GET")
            status = int_param(query, "status", 0, 0) if "status" in query else None
            return (200, [], dumps({"count": self.count(query.get("path_prefix", ""), status)}))
        self._method(method, "POST")
        try:
            spec = json.loads(body) if body.strip() else {}
        except ValueError:
            raise HttpError(400, "body must be JSON") from None
        if not isinstance(spec, dict):
            raise HttpError(400, "body must be a JSON object")
        try:
            self._apply_control(action, spec)
        except (TypeError, ValueError, KeyError) as e:
            raise HttpError(400, f"bad {action} request: {e}") from None
        return (200, [], b'{"ok":true}')

    def _apply_control(self, action: str, spec: dict[str, Any]) -> None:
        needle = _typed(spec, "path", str, "")
        times = _typed(spec, "times", int, 1)
        if action == "fail":
            retry_after = spec.get("retry_after")
            body = _typed(spec, "body", str, None)
            self.fail(needle, _typed(spec, "status", int, 500), times=times,
                      retry_after=None if retry_after is None else str(retry_after),
                      body=None if body is None else body.encode())
        elif action == "slow":
            seconds = spec.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise ValueError("seconds must be a number")
            self.slow(needle, float(seconds), times=times)
        elif action == "drop":
            self.drop(needle, times=times)
        elif action == "malformed":
            self.malformed(needle, times=times)
        elif action == "clear":
            self.clear_faults()
        elif action == "touch":
            self.touch(_ids(spec), _typed(spec, "at", str, None) or "")
        elif action == "remove":
            self.remove(_ids(spec))
        elif action == "expire_tokens":
            self.expire_tokens()
        else:
            raise HttpError(404, "not found")


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _typed(spec: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = spec.get(key, default)
    if value is default or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    raise ValueError(f"{key} must be {kind.__name__}")


def _ids(spec: dict[str, Any]) -> list[int]:
    ids = spec.get("ids")
    if not isinstance(ids, list) or not all(type(i) is int for i in ids):
        raise ValueError("ids must be a list of integers")
    return ids


# --------------------------------------------------------------------------------------------- command line


def _pair(text: str, sep: str, what: str) -> tuple[str, str]:
    left, found, right = text.partition(sep)
    if not found or not left:
        raise argparse.ArgumentTypeError(f"expected {what}")
    return left, right


def main(argv: Sequence[str] | None = None) -> int:
    """Serve in this process: print the URL (one line, flushed) once listening, run until SIGTERM/lifetime."""
    p = argparse.ArgumentParser(prog="python -m syncdash_demo.sampleapi", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    p.add_argument("--records", type=int, default=250, help="how many generated players (default 250)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--latency", type=float, default=0.0, help="seconds slept before each data response")
    p.add_argument("--lifetime", type=float, default=600.0, help="stop by itself after this many seconds")
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--bearer", metavar="TOKEN")
    auth.add_argument("--basic", metavar="USER:PASSWORD", type=lambda s: _pair(s, ":", "USER:PASSWORD"))
    auth.add_argument("--api-key", metavar="NAME=VALUE", type=lambda s: _pair(s, "=", "NAME=VALUE"))
    auth.add_argument("--api-key-query", metavar="NAME=VALUE", type=lambda s: _pair(s, "=", "NAME=VALUE"))
    auth.add_argument("--oauth2", metavar="CLIENT_ID:SECRET", type=lambda s: _pair(s, ":", "CLIENT_ID:SECRET"))
    args = p.parse_args(argv)

    spec: AuthSpec | None = None
    if args.bearer:
        spec = AuthSpec.bearer(args.bearer)
    elif args.basic:
        spec = AuthSpec.basic(*args.basic)
    elif args.api_key:
        spec = AuthSpec.api_key(*args.api_key)
    elif args.api_key_query:
        name, value = args.api_key_query
        spec = AuthSpec.api_key(name, value, in_="query")
    elif args.oauth2:
        spec = AuthSpec.oauth2(*args.oauth2)

    api = SampleApi(n=args.records, latency=args.latency, auth=spec, lifetime=args.lifetime, seed=args.seed,
                    host=args.host, port=args.port)
    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    api.start()
    print(api.url, flush=True)
    try:
        while not api.wait(0.2) and not stop_requested.is_set():
            pass
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
