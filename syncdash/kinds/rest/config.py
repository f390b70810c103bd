"""The `kind: rest` contract: endpoint, auth, pagination, incremental cursor and resilience knobs.

Durations are written the way people say them ("30s", "5m", "1h", or plain seconds); rates as
"10/minute". Every value a user could get wrong is checked here so a run never starts on a bad one.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from syncdash.common.secrets import basic_pair, is_credential_header
from syncdash.config.models import (
    Duration,
    FieldSpec,
    KeyedValueError,
    SourceConfig,
    Strict,
    check_identifier,
    check_keys,
    duration_validator,
    key_list,
    source_fields,
)

_RATE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*([0-9]*)\s*(s|sec|second|m|min|minute|h|hour|d|day)s?\s*$")
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
        "d": 86400, "day": 86400}




class RateLimit(Strict):
    """A token bucket: `rate` requests per `per` seconds, at most `burst` at once."""

    rate: float = Field(gt=0)
    per: float = Field(gt=0)
    burst: int = Field(default=1, ge=1, description="Requests allowed back to back before spacing starts")
    shared: bool = Field(default=False, description="Share the budget with every source on the same host")

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = {"rate": v}
        if isinstance(v, dict) and isinstance(v.get("rate"), str):
            m = _RATE.match(v["rate"])
            if not m:
                raise ValueError(f"rate_limit {v['rate']!r} is not a rate: use e.g. 10/minute, 5/s, 1000/hour")
            v = {**v, "rate": float(m.group(1)), "per": float(m.group(2) or 1) * _PER[m.group(3)]}
        return v

    @property
    def interval(self) -> float:
        return self.per / self.rate

    def __str__(self) -> str:
        unit = {1: "s", 60: "minute", 3600: "hour", 86400: "day"}.get(int(self.per)) if self.per.is_integer() else None
        return f"{self.rate:g}/{unit}" if unit else f"{self.rate:g}/{self.per:g}s"


class RetryPolicy(Strict):
    attempts: int = Field(default=5, ge=1, le=100, description="Tries per request, the first included")
    initial: Duration = Field(default=1.0, description="First backoff; doubles each try, with jitter")
    max: Duration = Field(default=60.0, description="Longest backoff between two tries")
    retry_on: list[int] = Field(default_factory=lambda: [429, 500, 502, 503, 504])
    max_retry_after: Duration = Field(
        default=600.0, description="A Retry-After longer than this fails the request instead of waiting")

    _d = duration_validator("initial", "max", "max_retry_after")

    @field_validator("retry_on")
    @classmethod
    def _statuses(cls, v: list[int]) -> list[int]:
        bad = [s for s in v if not 100 <= s <= 599]
        if bad:
            raise ValueError(f"retry_on: {bad[0]} is not an HTTP status")
        return v


class CircuitBreaker(Strict):
    failures: int = Field(default=5, ge=1, description="Consecutive failed requests to a host that open it")
    reset_after: Duration = Field(default=60.0, description="How long it stays open before one trial request")

    _d = duration_validator("reset_after")


class BearerAuth(Strict):
    type: Literal["bearer"]
    token: str = Field(min_length=1)

    def secrets(self) -> list[str]:
        return [self.token]


class BasicAuth(Strict):
    type: Literal["basic"]
    username: str
    password: str

    def secrets(self) -> list[str]:
        # the pair is what the header's base64 encodes: masking it masks that header whole
        return [self.password, basic_pair(self.username, self.password)]


class ApiKeyAuth(Strict):
    type: Literal["api_key"]
    name: str = Field(default="X-Api-Key", min_length=1)
    value: str = Field(min_length=1)
    in_: Literal["header", "query"] = Field(default="header", alias="in")

    def secrets(self) -> list[str]:
        return [self.value]


class OAuth2ClientCredentials(Strict):
    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: str = Field(min_length=1)
    scope: str | None = None

    def secrets(self) -> list[str]:
        return [self.client_secret]


Auth = Annotated[BearerAuth | BasicAuth | ApiKeyAuth | OAuth2ClientCredentials, Field(discriminator="type")]


class _PaginationBase(Strict):
    total_path: str | None = Field(default=None, description="Dotted path to the total record count")
    max_pages: int | None = Field(default=None, ge=1)


class PagePagination(_PaginationBase):
    type: Literal["page"]
    page_param: str = "page"
    size_param: str | None = "limit"
    size: int = Field(default=100, ge=1)
    start: int = Field(default=1, ge=0)


class OffsetPagination(_PaginationBase):
    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: int = Field(default=100, ge=1)
    start: int = Field(default=0, ge=0)


class CursorPagination(_PaginationBase):
    type: Literal["cursor"]
    cursor_path: str
    cursor_param: str = "cursor"


class NextUrlPagination(_PaginationBase):
    type: Literal["next_url"]
    next_path: str


class LinkHeaderPagination(_PaginationBase):
    type: Literal["link_header"]


class NoPagination(_PaginationBase):
    type: Literal["none"]


Pagination = Annotated[PagePagination | OffsetPagination | CursorPagination | NextUrlPagination
                       | LinkHeaderPagination | NoPagination, Field(discriminator="type")]


class Incremental(Strict):
    cursor_field: str = Field(description="Dotted path in each record whose highest value is the next cursor")
    param: str = Field(description="Query parameter that receives the cursor")
    initial: str | None = Field(default=None, description="Cursor for the first run")
    lag: Duration = Field(default=0.0, description="Subtracted from a datetime cursor (late-arriving records)")

    _d = duration_validator("lag")

    @field_validator("initial", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return v.isoformat() if isinstance(v, datetime) else (None if v is None else str(v))


class _Endpoint(Strict):
    """What a source and each of its streams can say about how to fetch."""

    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = Field(default=None, description="JSON body for POST endpoints")
    records: str | None = Field(default=None, description="Dotted path to the record list; omit for a bare list")
    pagination: Pagination | None = None
    incremental: Incremental | None = None


class RestStream(_Endpoint):
    """One endpoint of a multi-stream source: its own table, phase, counts and errors."""

    name: str = Field(json_schema_extra={"pattern": "^[a-z0-9_-]+$"})
    path: str | None = Field(default=None, description="Appended to base_url; {column} placeholders with for_each")
    url: str | None = None
    for_each: str | None = Field(default=None, description="An earlier stream: fetch `path` once per row of it")
    table: str
    primary_key: list[str] = Field(min_length=1)
    fields: dict[str, FieldSpec] = Field(min_length=1)
    mode: Literal["full", "incremental"] | None = None
    deletes: Literal["soft", "hard", "keep"] | None = None
    batch_size: int | None = Field(default=None, ge=1, le=1_000_000)
    max_delete_ratio: float | None = Field(default=0.5, ge=0, le=1)

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        return check_identifier(v, "table name")

    @field_validator("primary_key", mode="before")
    @classmethod
    def _pk(cls, v: Any) -> Any:
        return key_list(v)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, v: Any) -> Any:
        return source_fields(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9_-]+$", v):
            raise ValueError(f"stream name {v!r} must match [a-z0-9_-]+")
        return v


class HttpSettings(Strict):
    """How a source or a push talks HTTP: auth, rate limit, retries, breaker, timeout (RestClient reads these)."""

    auth: Auth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    rate_limit: Annotated[RateLimit | None, WithJsonSchema({"anyOf": [
        {"type": "string", "description": "e.g. 10/minute"}, {"type": "object", "properties": {
            "rate": {"type": "string"}, "burst": {"type": "integer"}, "shared": {"type": "boolean"}}},
        {"type": "null"}]})] = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    circuit_breaker: CircuitBreaker = Field(default_factory=CircuitBreaker)
    timeout: Duration = 30.0
    concurrency: int = Field(default=1, ge=1, le=64,
                             description="Parallel page fetches (page/offset with a known total, for_each)")
    verify_tls: bool = True
    allow_origins: list[str] = Field(
        default_factory=list, description="Other origins (scheme://host[:port]) that redirects and next links may "
                                          "lead to; credentials go there too. Any other origin is refused")
    max_response: Annotated[int, WithJsonSchema({"anyOf": [{"type": "string", "description": "e.g. 100MB"},
                                                           {"type": "integer"}]})] = Field(
        default=100 * 1024 * 1024, description="Largest response body read (e.g. 100MB, 512KB); bigger fails")

    _dt = duration_validator("timeout")

    @field_validator("max_response", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return parse_size(v) if isinstance(v, str) else v

    @field_validator("allow_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        return check_origins(v)

    def secret_values(self) -> list[str]:
        """Literal credentials are masked like ${VAR} values: they must never reach the store or a log. Literal
        values of headers named like credentials (Authorization, *key*, *token*, *secret*) count too."""
        found = self.auth.secrets() if self.auth is not None else []
        return found + [v for k, v in self.headers.items() if is_credential_header(k) and v]


_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.I)
_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_size(v: str) -> int:
    """"100MB", "512KB", "1GiB" or plain bytes."""
    m = _SIZE.match(v)
    if m is None:
        raise ValueError(f"{v!r} is not a size: use e.g. 100MB, 512KB, 1GiB or a number of bytes")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])


def check_origins(v: list[str]) -> list[str]:
    """An `allow_origins:` list, each entry normalised to scheme://host:port; a URL with a path is refused."""
    out = []
    for i, o in enumerate(v):
        parts = urlsplit(o)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
            raise KeyedValueError(f"{o!r} is not an origin: give scheme://host[:port] (e.g. https://api.example.com)",
                                  i)
        out.append(origin_of(o))
    return out


def userinfo_secrets(urls: list[str | None]) -> list[str]:
    """The password of each URL's `user:password@` (and the pair, whose base64 a basic header carries)."""
    from urllib.parse import unquote

    out: list[str] = []
    for u in urls:
        parts = urlsplit(u or "")
        if parts.password:
            pw = unquote(parts.password)
            out += [pw, parts.password, basic_pair(unquote(parts.username or ""), pw)]
    return out


def origin_of(url: str) -> str:
    """scheme://host:port of a URL, without userinfo, default ports made explicit: what credentials belong to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def strip_userinfo(url: str) -> str:
    """The URL without `user:password@`: what page URLs, checkpoints and breaker keys are built from."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


class RestSourceConfig(SourceConfig, _Endpoint, HttpSettings):
    kind: Literal["rest"]
    url: str | None = Field(default=None, description="The endpoint (or give base_url and streams)")
    base_url: str | None = None
    streams: list[RestStream] | None = None
    # with streams, these live on each stream instead
    table: str | None = Field(default=None, description="Target table, created if missing")  # type: ignore[assignment]
    primary_key: list[str] | None = None  # type: ignore[assignment]
    fields: dict[str, FieldSpec] | None = None  # type: ignore[assignment]
    batch_size: int = Field(default=1000, ge=1, le=1_000_000)

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        return None if v is None else check_identifier(v, "table name")

    @field_validator("url", "base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    @model_validator(mode="before")
    @classmethod
    def _implied_mode(cls, v: Any) -> Any:
        # an incremental block means incremental unless the user says mode: full
        if isinstance(v, dict) and v.get("incremental") and "mode" not in v:
            v = {**v, "mode": "incremental"}
        return v

    @model_validator(mode="after")
    def _keys(self) -> RestSourceConfig:  # replaces SourceConfig._keys: streams carry their own
        if self.streams:
            if self.url is None and self.base_url is None:
                raise KeyedValueError("streams need base_url (or url) to resolve their paths", "base_url")
            for key in ("table", "primary_key", "fields"):
                if getattr(self, key) is not None:
                    raise KeyedValueError(f"{key} belongs on each stream when the source has streams", key)
            names: list[str] = []
            for i, st in enumerate(self.streams):
                if st.name in names:
                    raise KeyedValueError(f"stream name {st.name!r} is used twice", "streams", i, "name")
                if st.for_each is not None and st.for_each not in names:
                    raise KeyedValueError(f"for_each {st.for_each!r} is not an earlier stream of this source",
                                          "streams", i, "for_each")
                if st.path is None and st.url is None:
                    raise KeyedValueError("a stream needs path (under base_url) or url", "streams", i)
                if st.incremental is not None and st.for_each is not None:
                    raise KeyedValueError("a for_each stream cannot be incremental", "streams", i, "incremental")
                names.append(st.name)
                try:
                    self.stream_config(i)
                except KeyedValueError as e:
                    raise KeyedValueError(str(e), "streams", i, *e.loc) from None
            return self
        if self.url is None:
            raise KeyedValueError("required key is missing (or give base_url and streams)", "url")
        for key in ("table", "primary_key", "fields"):
            if not getattr(self, key):
                raise KeyedValueError("required key is missing", key)
        check_keys(self)
        return self

    def mapping_fingerprint(self) -> str:
        if not self.streams:
            return super().mapping_fingerprint()
        return "".join(self.stream_config(i).mapping_fingerprint()[:4] for i in range(len(self.streams)))

    def secret_values(self) -> list[str]:
        urls = [self.url, self.base_url, *(st.url for st in self.streams or [])]
        return HttpSettings.secret_values(self) + userinfo_secrets(urls)

    def target_tables(self) -> list[tuple[str, tuple[str | int, ...]]]:
        if self.streams:
            return [(st.table, ("streams", i, "table")) for i, st in enumerate(self.streams)]
        return super().target_tables()

    def stream_config(self, i: int) -> RestSourceConfig:
        """Stream i as a single-endpoint source config: what the engine runs as one phase."""
        assert self.streams is not None
        st = self.streams[i]
        base = (self.base_url or self.url or "").rstrip("/")
        url = st.url or (base + "/" + (st.path or "").lstrip("/"))
        data = self.model_dump(by_alias=True, exclude={"streams", "url", "table", "primary_key", "fields"},
                               exclude_unset=True)
        own = st.model_dump(by_alias=True, exclude_unset=True,
                            exclude={"name", "path", "url", "for_each", "table", "primary_key", "fields"})
        data.update({k: v for k, v in own.items() if v is not None})
        if st.incremental is not None and st.mode is None:
            data["mode"] = "incremental"
        data.update(url=url, table=st.table, primary_key=st.primary_key,
                    fields={k: f.model_dump(by_alias=True, exclude_unset=True) for k, f in st.fields.items()})
        out = RestSourceConfig.model_validate(data)
        out._secrets = self._secrets
        out._stream = st.name
        out._for_each = st.for_each
        out._for_each_path = st.path if st.for_each else None
        return out

    _stream: str | None = None
    _for_each: str | None = None
    _for_each_path: str | None = None
