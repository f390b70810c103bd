"""What the HTTP API accepts, and its OpenAPI document, from one table of endpoints.

Request bodies are strict pydantic models (unknown fields and wrong types are refused, never coerced); query
parameters are checked against a small spec per endpoint. Every problem becomes an ApiError whose message says
what is wrong; the OpenAPI document is generated from the same declarations, so it cannot drift from the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from syncdash import __version__
from syncdash.errors import ApiError
from syncdash.store.models import RUN_STATUSES

MAX_BODY = 64 * 1024
MAX_ID = 2**63 - 1  # a database integer; bigger ones would overflow the driver
NAME_RE = re.compile(r"^[a-z0-9_-]{1,100}$")
TYPE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RunRequest(_Body):
    """POST /v1/sources/{name}/runs."""

    mode: Literal["full", "incremental"] | None = Field(
        default=None, description="full: ignore checkpoints and apply deletes; default: the source's own mode")
    dry_run: bool = Field(default=False, description="run everything, write nothing to the target tables")
    if_running: Literal["queue", "skip"] = Field(
        default="queue", description="the source is running now: queue behind it, or refuse with 409")


class RetryRequest(_Body):
    """POST /v1/runs/{id}/retry."""

    error_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(default=None, max_length=10_000,
                                        description="only these item errors (default: every retryable one)")


class StateRequest(_Body):
    """POST /v1/sources/{name}/state: what `syncdash state NAME --reset | --set-cursor VALUE` does."""

    reset: bool = Field(default=False, description="clear the cursor, the checkpoint and the breakers")
    cursor: str | None = Field(default=None, max_length=1000, description="set the incremental cursor")
    stream: str | None = Field(default=None, max_length=200,
                               description="with cursor: the stream (phase) of a source with several")


class ScheduleRequest(_Body):
    """PUT /v1/sources/{name}/schedule: what `syncdash schedule NAME --every | --cron | --reset` does."""

    every: str | None = Field(default=None, max_length=100, description="an interval, e.g. 12h, 30m, 1d")
    cron: str | None = Field(default=None, max_length=200, description='5-field cron, e.g. "0 3 * * *"')
    timezone: str | None = Field(default=None, max_length=100, description="IANA time zone for every/cron")
    reset: bool = Field(default=False, description="back to the config's schedule")


class CheckRequest(_Body):
    """POST /v1/check: what `syncdash check [NAME...]` does."""

    names: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=1000, description="the sources to check (default: every source)")


class EmptyBody(_Body):
    """Endpoints that take no options: an empty body or {}."""


def parse_body(model: type[_Body], data: Any) -> Any:
    if not isinstance(data, dict):
        raise ApiError(400, f"the body must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = [{"field": ".".join(str(p) for p in err["loc"]) or "(body)",
                     "problem": "unknown field" if err["type"] == "extra_forbidden" else err["msg"]}
                    for err in e.errors()]
        raise ApiError(422, "invalid body: " + "; ".join(f"{p['field']}: {p['problem']}" for p in problems),
                       problems=problems) from None


# ---- query parameters -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One query parameter: name, JSON-schema type, and how its text becomes a value."""

    name: str
    schema: dict[str, Any]
    description: str
    parse: Callable[[str], Any]


def _int(name: str, lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]{1,19}", text) or not lo <= int(text) <= hi:
            raise ApiError(400, f"{name} must be an integer from {lo} to {hi}")
        return int(text)
    return parse


def _choice(name: str, values: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in values:
            raise ApiError(400, f"{name} must be one of {', '.join(values)}")
        return text
    return parse


def _match(name: str, rx: re.Pattern[str], what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not rx.match(text):
            raise ApiError(400, f"{name} must be {what}")
        return text
    return parse


def _bool(name: str) -> Callable[[str], bool]:
    def parse(text: str) -> bool:
        if text not in ("true", "false"):
            raise ApiError(400, f"{name} must be true or false")
        return text == "true"
    return parse


SOURCE = Param("source", {"type": "string", "pattern": NAME_RE.pattern}, "only this source's",
               _match("source", NAME_RE, "a source name ([a-z0-9_-]+)"))
STATUS = Param("status", {"type": "string", "enum": list(RUN_STATUSES)}, "only runs with this status",
               _choice("status", RUN_STATUSES))
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (default 50)",
              _int("limit", 1, 500))
CURSOR = Param("cursor", {"type": "string", "pattern": "^[0-9]+$"}, "next_cursor of the previous page",
               _int("cursor", 1, MAX_ID))
ERROR_TYPE = Param("type", {"type": "string", "pattern": TYPE_RE.pattern}, "only this error type",
                   _match("type", TYPE_RE, "an error type (letters, digits, _ . -)"))
MAX_SEARCH_QUERY = 500


def _search_text(text: str) -> str:
    if not text.strip() or len(text) > MAX_SEARCH_QUERY:
        raise ApiError(400, f"q must be 1 to {MAX_SEARCH_QUERY} characters of search words")
    return text


SEARCH_Q = Param("q", {"type": "string", "minLength": 1, "maxLength": MAX_SEARCH_QUERY},
                 "words to find (all must match; each may be the start of a word); required", _search_text)
SEARCH_LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "at most this many hits (default 20)",
                     _int("limit", 1, 100))
RESOLVED = Param("resolved", {"type": "boolean"}, "true: resolved only; false: unresolved only; absent: both",
                 _bool("resolved"))


def parse_query(items: list[tuple[str, str]], params: tuple[Param, ...]) -> dict[str, Any]:
    known = {p.name: p for p in params}
    out: dict[str, Any] = {}
    for key, value in items:
        p = known.get(key)
        if p is None:
            allowed = ", ".join(known) or "none"
            raise ApiError(400, f"unknown query parameter {key[:50]!r} (allowed: {allowed})")
        if key in out:
            raise ApiError(400, f"query parameter {key!r} given twice")
        out[key] = p.parse(value)
    return out


def parse_id(text: str, what: str = "run id") -> int:
    if not re.fullmatch(r"[0-9]{1,19}", text) or not 1 <= int(text) <= MAX_ID:
        raise ApiError(400, f"{what} must be a positive integer")
    return int(text)


# ---- the endpoint table and the OpenAPI document ---------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    handler: str  # the name of the view function in api/views.py
    query: tuple[Param, ...] = ()
    body: type[_Body] | None = None
    ok: int = 200
    errors: tuple[int, ...] = ()
    public: bool = False
    text: bool = False  # the response is text (metrics), not JSON
    extra: dict[str, Any] = field(default_factory=dict)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/v1/health", "Liveness, each source's health verdict, uptime, queue depth", "health",
             errors=(503,), public=True),
    Endpoint("GET", "/v1/openapi.json", "This document", "openapi"),
    Endpoint("GET", "/v1/sources", "Every source: config (secrets masked), schedule, state, breaker, last runs",
             "sources"),
    Endpoint("GET", "/v1/sources/{name}", "One source, with more of its runs", "source", errors=(404,)),
    Endpoint("POST", "/v1/sources/{name}/runs", "Queue a run (the same queue as every trigger)", "trigger",
             body=RunRequest, ok=202, errors=(404, 409)),
    Endpoint("POST", "/v1/sources/{name}/pause", "Stop the source's schedule from firing", "pause",
             body=EmptyBody, errors=(404,)),
    Endpoint("POST", "/v1/sources/{name}/resume", "Let the schedule fire again", "resume", body=EmptyBody,
             errors=(404,)),
    Endpoint("GET", "/v1/sources/{name}/state", "The stored cursor, resume checkpoint and breakers (`syncdash "
             "state`)", "get_state", errors=(404,)),
    Endpoint("POST", "/v1/sources/{name}/state", "Reset the stored state or set the cursor", "change_state",
             body=StateRequest, errors=(404, 422)),
    Endpoint("PUT", "/v1/sources/{name}/schedule", "Override the schedule until reset (`syncdash schedule`)",
             "set_schedule", body=ScheduleRequest, errors=(404, 422)),
    Endpoint("POST", "/v1/check", "Open each source (first page, file header, target database) and say what "
             "works (`syncdash check`)", "check", body=CheckRequest, errors=(404,)),
    Endpoint("GET", "/v1/runs", "Run history, newest first, paginated by cursor", "runs",
             query=(SOURCE, STATUS, LIMIT, CURSOR)),
    Endpoint("GET", "/v1/runs/{id}", "One run: phases, counts, errors summary, what changed", "run",
             errors=(404,)),
    Endpoint("POST", "/v1/runs/{id}/cancel", "Cancel a queued run, or stop a running one after its batch",
             "cancel", body=EmptyBody, ok=202, errors=(404, 409)),
    Endpoint("POST", "/v1/runs/{id}/retry", "Re-process the run's failed items as a new queued run", "retry",
             body=RetryRequest, ok=202, errors=(404, 409)),
    Endpoint("GET", "/v1/errors", "Item errors, newest first", "errors",
             query=(SOURCE, ERROR_TYPE, RESOLVED, LIMIT, CURSOR)),
    Endpoint("GET", "/v1/search", "Full-text search of the synced data (sources with `search:`), best first, "
             "matched words as character spans", "search", query=(SEARCH_Q, SOURCE, SEARCH_LIMIT),
             errors=(404,)),
    Endpoint("GET", "/metrics", "Prometheus metrics (text format 0.0.4)", "metrics", text=True),
)

_ERROR_SCHEMA = {"type": "object", "required": ["error"],
                 "properties": {"error": {"type": "string"}, "problems": {"type": "array"}}}
_REASONS = {200: "OK", 202: "Accepted", 400: "Bad request", 401: "Missing or wrong token",
            403: "Read-only token", 404: "Not found", 409: "Conflict", 413: "Body over 64 KiB",
            422: "Invalid body", 503: "Store unreachable"}


def openapi(public_metrics: bool = False) -> dict[str, Any]:
    """OpenAPI 3.1 of every endpoint above (parameters, bodies, responses, security)."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    for ep in ENDPOINTS:
        op: dict[str, Any] = {"summary": ep.summary, "operationId": ep.handler, "parameters": []}
        for name in re.findall(r"{(\w+)}", ep.path):
            schema = {"type": "integer", "minimum": 1} if name == "id" else {"type": "string",
                                                                             "pattern": NAME_RE.pattern}
            op["parameters"].append({"name": name, "in": "path", "required": True, "schema": schema})
        for p in ep.query:
            op["parameters"].append({"name": p.name, "in": "query", "required": False, "schema": p.schema,
                                     "description": p.description})
        if ep.body is not None:
            schemas[ep.body.__name__] = ep.body.model_json_schema()
            op["requestBody"] = {"required": False, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{ep.body.__name__}"}}}}
        content = {"text/plain": {"schema": {"type": "string"}}} if ep.text else {
            "application/json": {"schema": {"type": "object"}}}
        responses: dict[str, Any] = {str(ep.ok): {"description": _REASONS[ep.ok], "content": content}}
        public = ep.public or (ep.text and public_metrics)
        codes = [*ep.errors, *(() if public else (401,)), *((403,) if ep.method != "GET" else ()),
                 *((400,) if ep.query or "{id}" in ep.path else ()),
                 *((400, 413, 422) if ep.body is not None else ())]
        for code in sorted(set(codes)):
            responses[str(code)] = {"description": _REASONS[code], "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}
        op["responses"] = responses
        if public:
            op["security"] = []
        paths.setdefault(ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "syncdash daemon API", "version": __version__,
                 "description": "Trigger runs and read status, runs, errors, health and metrics of a syncdash "
                                "daemon. Bearer token on every endpoint but /v1/health (and /metrics when "
                                "metrics_public); a read_token may GET but not POST."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
