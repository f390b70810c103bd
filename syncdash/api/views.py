"""The API's handlers: plain synchronous functions over the store, run in a worker thread by app.py.

Each takes (api, path parameters, query, body) and returns (status, JSON-able data) or raises ApiError.
Every read is the store's read model (store/queries.py), the same functions the CLI and the console call, so
GET /v1/runs/{id} is exactly `syncdash show RUN --json`. Runs, pauses, cancels and retries go through
store.commands, the one path every trigger takes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from syncdash.api import metrics as metrics_mod
from syncdash.api import schemas
from syncdash.api.schemas import ApiError, parse_id
from syncdash.config.models import Config, HttpApiConfig, SourceConfig
from syncdash.store import commands as control
from syncdash.store import queue
from syncdash.store import state as stored_state
from syncdash.store.db import Store
from syncdash.store.health import live_daemons, source_host
from syncdash.store.models import FINAL_STATUSES, Breaker, Run, RunStatus, utcnow
from syncdash.store.queries import (
    ErrorFilter,
    RunFilter,
    error_json,
    errors_page,
    flow_steps,
    iso,
    retryable_open_errors,
    run_detail,
    run_detail_json,
    run_json,
    running_run,
    runs_page,
    source_rows,
)

SECRET_KEY = re.compile(r"token|password|secret|api_?key|authorization|credential", re.IGNORECASE)
LIST_RUNS = 5  # last runs per source in GET /v1/sources
DETAIL_RUNS = 20  # and in GET /v1/sources/{name}


class Host(Protocol):
    """What the API needs of the daemon it serves in (core.daemon.Daemon)."""

    owner: str
    workers: int
    started_at: datetime
    http_url: str | None

    def command(self, action: str, source: str | None, run_id: int | None, args: dict[str, Any]) -> Any: ...

    def poke(self) -> None: ...

    def is_stopping(self) -> bool: ...


@dataclass
class Api:
    config: Config
    store: Store
    host: Host
    settings: HttpApiConfig

    def uptime(self) -> float:
        return (utcnow() - self.host.started_at).total_seconds()


# ---- health and sources -----------------------------------------------------------------------------------

def health(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    rows = source_rows(api.store, api.config)
    stopping = api.host.is_stopping()
    return (503 if stopping else 200), {
        "status": "stopping" if stopping else "ok",
        "daemon": {"owner": api.host.owner.split(":")[0], "workers": api.host.workers,
                   "started_at": iso(api.host.started_at), "uptime_s": round(api.uptime(), 3),
                   "http": api.host.http_url},
        "queue_depth": queue.depth(api.store),
        "sources": {r["source"]: r["health"] for r in rows},
        "daemons": len(live_daemons(api.store)),
    }


def _source(api: Api, name: str) -> SourceConfig:
    src = api.config.source(name)
    if src is None:
        from syncdash.common.suggest import did_you_mean

        names = [s.name for s in api.config.source_list]
        raise ApiError(404, f"unknown source {name[:100]!r}{did_you_mean(name[:100], names)}; "
                            f"sources: {', '.join(names) or 'none'}")
    return src


def _masked(value: Any, config: Config, key: str = "") -> Any:
    """A config value as JSON with every credential masked: by key name, and by value (${VAR} and literal
    secrets the loader collected), and database URLs' passwords."""
    from syncdash.common.dialect import mask_url

    if isinstance(value, dict):
        return {k: _masked(v, config, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, config, key) for v in value]
    if isinstance(value, str):
        if value and SECRET_KEY.search(key) and key not in ("token_url",):
            return "***"
        masked = config.redact(value)
        return mask_url(masked) if "://" in masked and "@" in masked else masked
    return value


def _summary(api: Api, src: SourceConfig, row: dict[str, Any], n_runs: int,
             breakers: dict[str, Breaker]) -> dict[str, Any]:
    host = source_host(src)
    b = breakers.get(host) if host else None
    runs = runs_page(api.store, RunFilter(source=src.name), limit=n_runs).items
    return {
        "name": src.name, "kind": src.kind, "description": src.description,
        "tables": [t for t, _ in src.target_tables()],
        "config": _masked(src.model_dump(mode="json", by_alias=True), api.config),
        "schedule": {"text": row["schedule"], "timezone": src.timezone, "override": row["schedule_override"],
                     "enabled": src.enabled, "next_fire": row["next_run"]},
        "state": {k: row[k] for k in ("health", "status", "paused", "running_run", "last_run", "last_run_status",
                                      "last_run_at", "last_success_at", "last_success_age_s")},
        "breaker": None if b is None else {"host": b.host, "state": b.state, "failures": b.failures,
                                           "retry_at": iso(b.retry_at), "last_error": b.last_error},
        "last_runs": [run_json(r) for r in runs],
    }


def sources(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    rows = source_rows(api.store, api.config)
    breakers = {b.host: b for b in api.store.breakers()}
    return 200, {"sources": [_summary(api, src, row, LIST_RUNS, breakers)
                             for src, row in zip(api.config.source_list, rows, strict=True)]}


def source(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    src = _source(api, path["name"])
    rows = {r["source"]: r for r in source_rows(api.store, api.config)}
    breakers = {b.host: b for b in api.store.breakers()}
    return 200, _summary(api, src, rows[src.name], DETAIL_RUNS, breakers)


def _running(store: Store, name: str) -> int | None:
    run = running_run(store, name)
    return None if run is None else run.id


def trigger(api: Api, path: dict[str, str], query: dict[str, Any], body: schemas.RunRequest) -> tuple[int, Any]:
    src = _source(api, path["name"])
    if body.if_running == "skip" and (busy := _running(api.store, src.name)) is not None:
        raise ApiError(409, f"source {src.name!r} is already running (run {busy}); not queued", run_id=busy)
    rid = control.request_run(api.store, api.config, src.name, trigger="api", full=body.mode == "full",
                              dry_run=body.dry_run)
    api.host.poke()
    return 202, {"run_id": rid, "status": RunStatus.QUEUED, "source": src.name, "url": f"/v1/runs/{rid}"}


def _pause(api: Api, name: str, paused: bool) -> tuple[int, Any]:
    src = _source(api, name)
    control.set_paused(api.store, src.name, paused)
    return 200, {"source": src.name, "paused": paused}


def pause(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    return _pause(api, path["name"], True)


def resume(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    return _pause(api, path["name"], False)


def get_state(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    src = _source(api, path["name"])
    return 200, stored_state.read_state(api.store, src.name).json()


def change_state(api: Api, path: dict[str, str], query: dict[str, Any],
                 body: schemas.StateRequest) -> tuple[int, Any]:
    src = _source(api, path["name"])
    if body.reset == (body.cursor is not None):
        raise ApiError(422, 'give {"reset": true} or {"cursor": "..."}, one of them')
    if body.stream is not None and body.cursor is None:
        raise ApiError(422, "stream goes with cursor")
    if body.reset:
        stored_state.reset_state(api.store, src.name)
    else:
        try:
            stored_state.set_cursor(api.store, src.name, body.cursor or "", body.stream)
        except ValueError as e:
            raise ApiError(422, str(e)) from None
    return 200, stored_state.read_state(api.store, src.name).json()


def set_schedule(api: Api, path: dict[str, str], query: dict[str, Any],
                 body: schemas.ScheduleRequest) -> tuple[int, Any]:
    from syncdash.common.schedule import ScheduleError, parse_schedule

    src = _source(api, path["name"])
    given = [k for k in ("every", "cron") if getattr(body, k) is not None] + (["reset"] if body.reset else [])
    if len(given) != 1:
        raise ApiError(422, 'give one of {"every": "12h"}, {"cron": "0 3 * * *"} or {"reset": true}')
    if body.reset:
        if body.timezone is not None:
            raise ApiError(422, "timezone goes with every or cron")
        stored_state.set_schedule_override(api.store, src.name, None)
        return 200, {"source": src.name, "schedule": src.schedule, "override": None}
    text = body.cron if body.cron is not None else (
        body.every if (body.every or "").startswith("every ") else f"every {body.every}")
    try:
        sched = parse_schedule(text or "", body.timezone)
    except ScheduleError as e:
        raise ApiError(422, f"{src.name}: {e}") from None
    override = {"schedule": text or ""}
    if body.timezone:
        override["timezone"] = body.timezone
    stored_state.set_schedule_override(api.store, src.name, override)
    api.host.poke()
    return 200, {"source": src.name, "schedule": sched.describe(), "override": override}


def check(api: Api, path: dict[str, str], query: dict[str, Any], body: schemas.CheckRequest) -> tuple[int, Any]:
    from syncdash.engine.check import check_sources

    for name in body.names or []:
        _source(api, name)
    results = check_sources(api.store, api.config, body.names or None)
    return 200, {"ok": all(r.ok for r in results), "sources": [r.json() for r in results]}


# ---- runs and errors ---------------------------------------------------------------------------------------

def runs(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    page = runs_page(api.store, RunFilter(source=query.get("source"), status=query.get("status")),
                     limit=query.get("limit", 50), cursor=query.get("cursor"))
    return 200, {"runs": [run_json(r) for r in page.items], "next_cursor": page.next_cursor}


def _get_run(api: Api, path: dict[str, str]) -> Run:
    run = api.store.get_run(parse_id(path["id"]))
    if run is None:
        raise ApiError(404, f"no run {path['id']}")
    return run


def run(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    detail = run_detail(api.store, parse_id(path["id"]))
    if detail is None:
        raise ApiError(404, f"no run {path['id']}")
    return 200, run_detail_json(detail, api.config)


def cancel(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    r = _get_run(api, path)
    if r.status in (*FINAL_STATUSES, RunStatus.INTERRUPTED):
        raise ApiError(409, f"run {r.id} is {r.status}: nothing to cancel")
    result = control.request_cancel(api.store, r.id or 0, hosted=api.host)
    return 202, {"run_id": r.id, "result": result}


def retry(api: Api, path: dict[str, str], query: dict[str, Any], body: schemas.RetryRequest) -> tuple[int, Any]:
    r = _get_run(api, path)
    if api.config.source(r.source) is None:
        raise ApiError(409, f"run {r.id}'s source {r.source!r} is no longer in the config")
    n = retryable_open_errors(api.store, [r.id or 0, *(st.id or 0 for st in flow_steps(api.store, r.id or 0))],
                              body.error_ids)
    if not n:
        which = "of the given error_ids " if body.error_ids else ""
        raise ApiError(409, f"run {r.id} has no unresolved retryable failed items {which}to retry")
    rid = control.retry_errors(api.store, api.config, r.id or 0, body.error_ids)
    api.host.poke()
    return 202, {"run_id": rid, "retry_of": r.id, "items": n, "status": RunStatus.QUEUED, "url": f"/v1/runs/{rid}"}


def errors(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    where = ErrorFilter(source=query.get("source"), error_type=query.get("type"), resolved=query.get("resolved"))
    page = errors_page(api.store, where, limit=query.get("limit", 50), cursor=query.get("cursor"))
    return 200, {"errors": [error_json(e) for e in page.items], "next_cursor": page.next_cursor}


# ---- documents ----------------------------------------------------------------------------------------------

def openapi(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    return 200, schemas.openapi(api.settings.metrics_public)


def metrics(api: Api, path: dict[str, str], query: dict[str, Any], body: Any) -> tuple[int, Any]:
    return 200, metrics_mod.render(api.store, uptime_s=api.uptime())


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
