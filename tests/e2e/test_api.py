"""The daemon's HTTP API, against a real `syncdash daemon --http 127.0.0.1:PORT` process and a real SQLite store,
over real HTTP with httpx: runs triggered, watched, cancelled and retried; pause and resume; tokens; metrics
parsed by prometheus-client's parser; a hypothesis fuzz of every endpoint from the OpenAPI document; and no
secret in any response. One daemon serves the whole module (a daemon start is the slowest part); the tests
run in file order and the fuzz, which may pause or queue anything, comes last."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Project, new_project, wait_for_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from rich.text import Text
from test_resume import write_big

# its module-scoped fixture is built once and its tests read what earlier ones left: one xdist worker
pytestmark = pytest.mark.xdist_group("test_api")

API_TOKEN = "tok-7f3a9c2e51d84b6a"
READ_TOKEN = "read-5d1e8b7c3a"
REST_SECRET = "rest-secret-91c4e2f7"
FINAL = ("succeeded", "partial", "failed", "cancelled")

CONFIG = """\
daemon:
  http:
    token: "${SYNCDASH_API_TOKEN}"
    read_token: "{read_token}"
sources:
  - name: small
    kind: csv
    path: data/small.csv
    table: small
    primary_key: [id]
    fields: {id: {type: int}, plays: {type: int}}
  - name: big
    kind: csv
    path: data/big.csv
    table: big
    primary_key: [id]
    batch_size: 50
    search: [name]
    fields: {id: {type: int}, name: name, amount: {type: float}}
  - name: scores
    kind: rest
    url: http://127.0.0.1:9/v1/scores
    auth: {type: bearer, token: "${REST_SECRET}"}
    headers: {X-Client: syncdash}
    retry: {attempts: 1}
    run_retry: {attempts: 1}
    table: scores
    primary_key: [id]
    fields: {id: {type: int}}
""".replace("{read_token}", READ_TOKEN)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    project: Project
    proc: subprocess.Popen[str]
    url: str
    bodies: list[str] = field(default_factory=list)  # every response body the tests saw, for the secrets check

    def client(self, token: str | None = API_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}

        def keep(response: httpx.Response) -> None:
            response.read()
            self.bodies.append(response.text)

        return httpx.Client(base_url=self.url, headers=headers, timeout=30, event_hooks={"response": [keep]})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    project = new_project(tmp_path_factory.mktemp("api"))
    project.config(CONFIG)
    project.write("data/small.csv", "id,plays\n1,10\n2,x\n3,30\n")
    write_big(project, 1, n=400_000)  # 8000 batches: it is still running when cancelled
    port = free_port()
    proc = project.popen("daemon", "--http", f"127.0.0.1:{port}", "--log-format", "text",
                         env={"SYNCDASH_API_TOKEN": API_TOKEN, "REST_SECRET": REST_SECRET})
    s = Served(project, proc, f"http://127.0.0.1:{port}")
    try:
        wait_for_api(proc, s.url)
        yield s
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "API request failed" not in err and "Traceback" not in err, err


def wait_run(c: httpx.Client, run_id: int, done: Callable[[dict[str, Any]], bool] = lambda r: r["status"] in FINAL,
             timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = c.get(f"/v1/runs/{run_id}")
        assert r.status_code == 200, r.text
        if done(r.json()):
            return r.json()
        assert time.monotonic() < deadline, f"run {run_id}: {r.json()['status']}"
        time.sleep(0.05)


def metrics(c: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


# ---- runs: trigger, watch, retry, cancel ---------------------------------------------------------------

def test_trigger_a_run_watch_it_finish_and_retry_its_failed_item(served: Served) -> None:
    slow = socket.create_connection(("127.0.0.1", int(served.url.rsplit(":", 1)[1])))
    slow.sendall(b"POST /v1/sources/small/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")  # never ends
    try:
        with served.client() as c:
            before = metrics(c)
            r = c.post("/v1/sources/small/runs", json={"mode": "full", "dry_run": False})
            assert r.status_code == 202, r.text
            rid = r.json()["run_id"]
            run = wait_run(c, rid)
            assert (run["status"], run["trigger"], run["mode"]) == ("partial", "api", "full")
            assert run["counts"]["inserted"] == 2 and run["counts"]["failed"] == 1
            assert [p["name"] for p in run["phases"]] == ["load", "finalize"]
            assert run["errors"]["total"] == 1 and run["errors"]["by_type"] == {"type": 1}
            assert run["errors"]["first"][0]["column"] == "plays" and run["changes"]["insert"] == 2
            after = metrics(c)
            key = ("syncdash_runs_total", (("source", "small"), ("status", "partial")))
            assert after[key] == before.get(key, 0) + 1, "the runs counter moved"
            assert after[("syncdash_rows_total", (("change", "inserted"), ("source", "small")))] >= 2
            assert after[("syncdash_run_duration_seconds_count", (("source", "small"),))] >= 1
            assert after[("syncdash_item_errors_unresolved", (("source", "small"), ("type", "type")))] == 1
            assert ("syncdash_last_success_timestamp_seconds", (("source", "small"),)) in after

            served.project.write("data/small.csv", "id,plays\n1,10\n2,20\n3,30\n")
            r = c.post(f"/v1/runs/{rid}/retry")
            assert r.status_code == 202, r.text
            retry = wait_run(c, r.json()["run_id"])
            assert (retry["status"], retry["mode"], retry["parent_run_id"]) == ("succeeded", "retry", rid)
            assert wait_run(c, rid)["errors"]["unresolved"] == 0
            again = c.post(f"/v1/runs/{rid}/retry")
            assert again.status_code == 409 and "no unresolved retryable" in again.json()["error"]
            fixed = c.get("/v1/errors", params={"source": "small", "resolved": "true"}).json()["errors"]
            assert [e["resolution"] for e in fixed] == ["fixed"]
            assert metrics(c)[("syncdash_item_errors_unresolved", (("source", "small"), ("type", "type")))] == 0
            page = c.get("/v1/runs", params={"source": "small", "limit": 1}).json()
            assert [x["id"] for x in page["runs"]] == [retry["id"]] and page["next_cursor"] == str(retry["id"])
            rest = c.get("/v1/runs", params={"source": "small", "cursor": page["next_cursor"]}).json()
            assert [x["id"] for x in rest["runs"]] == [rid] and rest["next_cursor"] is None
    finally:
        slow.close()


def test_cancel_a_running_and_a_queued_run_and_skip_when_running(served: Served) -> None:
    with served.client() as c:
        rid = c.post("/v1/sources/big/runs", json={}).json()["run_id"]
        wait_run(c, rid, lambda r: r["status"] == "running" and r["counts"]["inserted"] > 0)
        skipped = c.post("/v1/sources/big/runs", json={"if_running": "skip"})
        assert skipped.status_code == 409 and skipped.json()["run_id"] == rid
        queued = c.post("/v1/sources/big/runs", json={"mode": "incremental"})
        assert queued.status_code == 202
        qid = queued.json()["run_id"]
        r = c.post(f"/v1/runs/{qid}/cancel")
        assert (r.status_code, r.json()["result"]) == (202, "cancelled before it started")
        r = c.post(f"/v1/runs/{rid}/cancel")
        assert r.status_code == 202 and r.json()["result"] == "stopping after the current batch"
        ended = wait_run(c, rid)
        assert ended["status"] == "cancelled", ended
        assert c.get(f"/v1/runs/{qid}").json()["status"] == "cancelled"
        done = c.post(f"/v1/runs/{rid}/cancel")
        assert done.status_code == 409 and "nothing to cancel" in done.json()["error"]
        assert c.get("/v1/health").json()["sources"]["big"] != "running"


def test_pause_and_resume(served: Served) -> None:
    with served.client() as c:
        assert c.post("/v1/sources/small/pause").json() == {"source": "small", "paused": True}
        src = c.get("/v1/sources/small").json()
        assert src["state"]["paused"] is True and src["state"]["health"] == "paused"
        assert c.get("/v1/health").json()["sources"]["small"] == "paused"
        assert c.post("/v1/sources/small/resume", json={}).json()["paused"] is False
        assert c.get("/v1/sources/small").json()["state"]["paused"] is False


def test_sources_health_daemon_row_and_the_console_status_line(served: Served) -> None:
    with served.client() as c:
        listing = c.get("/v1/sources").json()["sources"]
        assert [s["name"] for s in listing] == ["small", "big", "scores"]
        scores = next(s for s in listing if s["name"] == "scores")
        assert scores["config"]["auth"]["token"] == "***" and scores["config"]["headers"] == {"X-Client": "syncdash"}
        assert scores["last_runs"] == [] and scores["schedule"]["next_fire"] is None
        small = c.get("/v1/sources/small").json()
        assert small["last_runs"][0]["source"] == "small" and small["tables"] == ["small"]
        health = httpx.get(f"{served.url}/v1/health").json()  # no token needed
        assert health["status"] == "ok" and health["daemon"]["http"] == served.url
        assert health["daemon"]["uptime_s"] > 0 and health["queue_depth"] >= 0
    assert served.project.query("SELECT http FROM syncdash_daemons WHERE stopped_at IS NULL") == [(served.url,)]

    from syncdash.config import load_config
    from syncdash.store.db import Store
    from syncdash.tui import data
    from syncdash.tui.app import SyncdashApp

    cfg = load_config(served.project.root / "syncdash.yaml", env={"SYNCDASH_API_TOKEN": API_TOKEN,
                                                                   "REST_SECRET": REST_SECRET})
    store = Store(cfg.database)
    app = SyncdashApp(cfg, store, host=False)
    app.mode = "attached"
    line = Text.from_markup(app.status_text(data.snapshot(store, cfg))).plain
    assert "attached to daemon" in line and f"API {served.url}" in line


# ---- tokens and bad input ------------------------------------------------------------------------------

def test_state_and_schedule_endpoints_match_the_cli(served: Served) -> None:
    """GET/POST /v1/sources/{name}/state and PUT /v1/sources/{name}/schedule store what `syncdash state` and
    `syncdash schedule` store: the CLI reads back what the API wrote."""
    p = served.project
    env = {"SYNCDASH_API_TOKEN": API_TOKEN, "REST_SECRET": REST_SECRET}
    with served.client() as c:
        r = c.post("/v1/sources/small/state", json={"cursor": "2024-05-01"})
        assert r.status_code == 200, r.text
        assert r.json()["cursor"] == {"load": "2024-05-01"}
        assert c.get("/v1/sources/small/state").json()["cursor"] == {"load": "2024-05-01"}
        cli = p.cli("state", "small", "--json", env=env)
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["cursor"] == {"load": "2024-05-01"}
        r = c.post("/v1/sources/small/state", json={"reset": True})
        assert r.status_code == 200 and r.json()["cursor"] == {} and r.json()["checkpoint"] is None
        for bad in ({}, {"reset": True, "cursor": "x"}, {"stream": "load"}):
            r = c.post("/v1/sources/small/state", json=bad)
            assert r.status_code == 422 and r.json()["error"], (bad, r.text)

        r = c.put("/v1/sources/small/schedule", json={"every": "12h"})
        assert r.status_code == 200, r.text
        assert r.json()["override"] == {"schedule": "every 12h"}
        status = p.cli("status", env=env)
        assert "(override)" in status.stdout and "12h" in status.stdout, status.stdout
        assert c.get("/v1/sources/small").json()["schedule"]["override"] is True
        r = c.put("/v1/sources/small/schedule", json={"cron": "0 3 * * *", "timezone": "Europe/Paris"})
        assert r.status_code == 200 and r.json()["override"]["timezone"] == "Europe/Paris"
        for bad in ({"every": "soon"}, {"every": "1h", "cron": "0 3 * * *"}, {}, {"cron": "0 3 * *"},
                    {"cron": "0 3 * * *", "timezone": "Mars/Base"}, {"reset": True, "timezone": "UTC"}):
            r = c.put("/v1/sources/small/schedule", json=bad)
            assert r.status_code == 422 and r.json()["error"], (bad, r.text)
        assert c.put("/v1/sources/nope/schedule", json={"every": "1h"}).status_code == 404
        r = c.put("/v1/sources/small/schedule", json={"reset": True})
        assert r.status_code == 200 and r.json()["override"] is None
        assert c.get("/v1/sources/small").json()["schedule"]["override"] is False
    with served.client(READ_TOKEN) as ro:
        assert ro.get("/v1/sources/small/state").status_code == 200
        assert ro.post("/v1/sources/small/state", json={"reset": True}).status_code == 403
        assert ro.put("/v1/sources/small/schedule", json={"every": "1h"}).status_code == 403


def test_check_endpoint_says_what_works(served: Served) -> None:
    """POST /v1/check opens the sources like `syncdash check`: the CSV reads, the unreachable REST API fails."""
    with served.client() as c:
        r = c.post("/v1/check", json={"names": ["small", "scores"]})
        assert r.status_code == 200, r.text
        got = {s["source"]: s for s in r.json()["sources"]}
        assert r.json()["ok"] is False
        assert got["small"]["ok"] is True and got["scores"]["ok"] is False
        assert any(ch["what"] == "target database" and ch["ok"] for ch in got["scores"]["checks"])
        assert c.post("/v1/check", json={"names": ["nope"]}).status_code == 404
    with served.client(READ_TOKEN) as ro:
        assert ro.post("/v1/check", json={}).status_code == 403


def test_tokens_401_403_and_the_read_only_token(served: Served) -> None:
    with served.client(token=None) as anon, served.client("wrong") as wrong, served.client(READ_TOKEN) as ro:
        for cl in (anon, wrong):
            for method, path in (("GET", "/v1/sources"), ("GET", "/metrics"), ("POST", "/v1/sources/small/runs"),
                                 ("GET", "/v1/nowhere"), ("GET", "/v1/openapi.json")):
                r = cl.request(method, path)
                assert (r.status_code, r.json()) == (401, {"error": "unauthorized"}), (method, path)
        assert anon.get("/v1/health").status_code == 200
        assert ro.get("/v1/runs").status_code == 200 and ro.get("/metrics").status_code == 200
        r = ro.post("/v1/sources/small/runs", json={})
        assert r.status_code == 403 and "read-only" in r.json()["error"]
        assert ro.post("/v1/runs/1/cancel").status_code == 403
    basic = httpx.get(f"{served.url}/v1/runs", headers={"Authorization": f"Basic {API_TOKEN}"})
    assert basic.status_code == 401


@pytest.mark.parametrize(("method", "path", "kw", "status", "says"), [
    ("POST", "/v1/sources/nope/runs", {"json": {}}, 404, "unknown source 'nope'"),
    ("GET", "/v1/sources/nope", {}, 404, "sources: small, big, scores"),
    ("POST", "/v1/sources/small/runs", {"content": b"{bad json"}, 400, "not valid JSON"),
    ("POST", "/v1/sources/small/runs", {"json": [1, 2]}, 400, "must be a JSON object"),
    ("POST", "/v1/sources/small/runs", {"json": {"dry_run": "yes"}}, 422, "dry_run"),
    ("POST", "/v1/sources/small/runs", {"json": {"mode": "fast"}}, 422, "mode"),
    ("POST", "/v1/sources/small/runs", {"json": {"colour": "red"}}, 422, "colour: unknown field"),
    ("POST", "/v1/sources/small/runs", {"json": {"pad": "x" * 70_000}}, 413, "64 KiB"),
    ("POST", "/v1/sources/small/pause", {"json": {"why": 1}}, 422, "why: unknown field"),
    ("POST", "/v1/runs/1/retry", {"json": {"error_ids": ["a"]}}, 422, "error_ids"),
    ("POST", "/v1/runs/1/retry", {"json": {"error_ids": [2**70]}}, 422, "error_ids"),
    ("GET", "/v1/runs/abc", {}, 400, "run id must be a positive integer"),
    ("GET", "/v1/runs/99999999999999999999", {}, 400, "run id"),
    ("GET", "/v1/runs/123456", {}, 404, "no run 123456"),
    ("POST", "/v1/runs/123456/cancel", {}, 404, "no run"),
    ("GET", "/v1/runs", {"params": {"limit": "0"}}, 400, "limit must be an integer from 1 to 500"),
    ("GET", "/v1/runs", {"params": {"status": "great"}}, 400, "status must be one of"),
    ("GET", "/v1/runs", {"params": {"colour": "red"}}, 400, "unknown query parameter 'colour'"),
    ("GET", "/v1/runs", {"params": [("limit", "1"), ("limit", "2")]}, 400, "given twice"),
    ("GET", "/v1/errors", {"params": {"resolved": "maybe"}}, 400, "resolved must be true or false"),
    ("GET", "/v1/errors", {"params": {"source": "Bad Name"}}, 400, "source must be a source name"),
    ("DELETE", "/v1/runs/1", {}, 405, "method not allowed"),
    ("GET", "/v2/anything", {}, 404, "no such endpoint"),
])
def test_bad_input_is_a_4xx_that_says_what_is_wrong(served: Served, method: str, path: str, kw: dict[str, Any],
                                                    status: int, says: str) -> None:
    with served.client() as c:
        r = c.request(method, path, **kw)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


def test_search_with_the_read_token(served: Served) -> None:
    """GET /v1/search answers from the `big` table's index (the rows the cancelled runs above committed)."""
    with served.client(READ_TOKEN) as ro:
        top = served.project.query("SELECT max(id) FROM big WHERE _deleted_at IS NULL")[0][0]
        assert top is not None
        r = ro.get("/v1/search", params={"q": f'"NAME{top}', "source": "big"})
        assert r.status_code == 200, r.text
        hits = r.json()["hits"]
        assert [h["key"] for h in hits] == [{"id": top}]
        assert hits[0]["source"] == "big" and hits[0]["fields"] == {"name": f"name{top}"}
        assert hits[0]["highlights"] == {"name": [[0, len(f"name{top}")]]}
        assert ro.get("/v1/search", params={"q": "zzzz"}).json() == {"hits": []}
        for params, status, says in (({}, 400, "q is required"), ({"q": " "}, 400, "q must be"),
                                     ({"q": "x", "source": "nope"}, 404, "no source 'nope'"),
                                     ({"q": "x", "source": "small"}, 400, "has no `search:` fields"),
                                     ({"q": "x", "limit": "101"}, 400, "limit must be")):
            r = ro.get("/v1/search", params=params)
            assert r.status_code == status and says in r.json()["error"], (params, r.text)


def test_openapi_documents_every_endpoint(served: Served) -> None:
    with served.client() as c:
        doc = c.get("/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops} == {
        ("GET", "/v1/health"), ("GET", "/v1/openapi.json"), ("GET", "/v1/sources"), ("GET", "/v1/sources/{name}"),
        ("POST", "/v1/sources/{name}/runs"), ("POST", "/v1/sources/{name}/pause"),
        ("POST", "/v1/sources/{name}/resume"), ("GET", "/v1/runs"), ("GET", "/v1/runs/{id}"),
        ("POST", "/v1/runs/{id}/cancel"), ("POST", "/v1/runs/{id}/retry"), ("GET", "/v1/errors"),
        ("GET", "/v1/search"), ("GET", "/metrics"), ("GET", "/v1/sources/{name}/state"),
        ("POST", "/v1/sources/{name}/state"),
        ("PUT", "/v1/sources/{name}/schedule"), ("POST", "/v1/check")}
    assert "403" in doc["paths"]["/v1/sources/{name}/schedule"]["put"]["responses"]
    body = doc["components"]["schemas"]["RunRequest"]
    assert body["additionalProperties"] is False and set(body["properties"]) == {"mode", "dry_run", "if_running"}
    assert doc["paths"]["/v1/health"]["get"]["security"] == []


def test_non_loopback_without_a_token_is_refused(project: Project) -> None:
    project.config("sources: []\n")
    proc = project.cli("daemon", "--http", f"0.0.0.0:{free_port()}", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "refusing to serve the HTTP API on 0.0.0.0" in proc.stderr and "token" in proc.stderr
    once = project.cli("daemon", "--once", "--http", "127.0.0.1:1", timeout=30)
    assert once.returncode == 2 and "--once" in once.stderr
    project.config('daemon: {http: {listen: "10.1.2.3:8787"}}\nsources: []\n')
    bad = project.cli("validate", timeout=30)
    assert bad.returncode == 2 and "daemon.http.token: refusing to serve" in bad.stderr


def test_an_unreachable_store_is_a_503(tmp_path: Path) -> None:
    from sqlmodel import create_engine

    from syncdash.api.app import build_app
    from syncdash.api.views import Api
    from syncdash.config.load import parse_config
    from syncdash.config.models import HttpApiConfig
    from syncdash.store.db import Store
    from syncdash.store.models import utcnow

    cfg = parse_config("sources: []\n", "x.yaml")
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.engine = create_engine(f"sqlite:///{tmp_path / 'gone' / 'nowhere.db'}")

    class Host:
        owner, workers, started_at, http_url = "1@h:1", 1, utcnow(), None

        def command(self, *a: Any) -> Any:
            return {}

        def poke(self) -> None:
            pass

        def is_stopping(self) -> bool:
            return False

    app = build_app(Api(cfg, store, Host(), HttpApiConfig()))

    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            return [await c.get("/v1/health"), await c.get("/v1/runs")]

    health, runs = asyncio.run(ask())
    assert (health.status_code, health.json()) == (503, {"error": "the store is unreachable"})
    assert runs.status_code == 503


def test_metrics_public_and_the_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from syncdash.api.app import build_app
    from syncdash.api.views import Api
    from syncdash.cli.commands import http_settings
    from syncdash.config.load import parse_config
    from syncdash.config.models import HttpApiConfig
    from syncdash.store.db import Store
    from syncdash.store.models import utcnow

    cfg = parse_config("sources: []\n", "x.yaml")
    monkeypatch.setenv("SYNCDASH_API_TOKEN", API_TOKEN)
    settings = http_settings(cfg, argparse.Namespace(http="0.0.0.0:8787", once=False))
    assert settings is not None and settings.token == API_TOKEN and API_TOKEN in cfg.secrets
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    host = type("Host", (), {"owner": "1@h:1", "workers": 1, "started_at": utcnow(), "http_url": None})()
    app = build_app(Api(cfg, store, host, HttpApiConfig(token=API_TOKEN, metrics_public=True)))  # type: ignore[arg-type]

    async def ask() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c:
            return [await c.get("/metrics"), await c.get("/v1/runs")]

    public, private = asyncio.run(ask())
    assert public.status_code == 200 and "syncdash_queue_depth 0" in public.text
    assert private.status_code == 401


# ---- fuzz: no request, however odd, is a 5xx -------------------------------------------------------------

NAMES = st.sampled_from(["small", "scores", "nope", "", "Small", "a/b", "%00", "..", "x" * 200]) | st.text(max_size=20)
IDS = st.integers(min_value=-5, max_value=2**64).map(str) | st.text(max_size=12)
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                       lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids,
                                                                                 max_size=4), max_leaves=10)


def _body(props: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Mostly objects with the body's own keys (right and wrong types), sometimes any JSON or bytes."""
    value = JSONISH | st.sampled_from(["full", "incremental", "skip", "queue", True, False, [1, 2], [0], None])
    known = st.fixed_dictionaries({}, optional={k: value for k in props})
    return known | JSONISH | st.binary(max_size=50)


def _query(params: list[dict[str, Any]]) -> st.SearchStrategy[list[tuple[str, str]]]:
    names = [p["name"] for p in params if p["in"] == "query"]
    if not names:
        return st.just([])
    values = st.sampled_from(["1", "0", "-1", "500", "501", "true", "false", "small", "succeeded", "", "x" * 300,
                              "99999999999999999999999"]) | st.text(max_size=15)
    key = st.sampled_from(names) | st.text(max_size=8)
    return st.lists(st.tuples(key, values), max_size=4)


def _probe(c: httpx.Client, path: str, method: str, op: dict[str, Any], props: dict[str, Any]) -> Callable[[], None]:
    """A hypothesis test of one endpoint: odd names, ids, query strings and bodies; never a 5xx."""

    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(name=NAMES, rid=IDS, query=_query(op["parameters"]), body=_body(props))
    def probe(name: str, rid: str, query: list[tuple[str, str]], body: Any) -> None:
        url = path.replace("{name}", name).replace("{id}", rid)
        kw: dict[str, Any] = {"params": query}
        if method in ("post", "put"):
            kw["content"] = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            r = c.request(method.upper(), url, **kw)
        except httpx.InvalidURL:
            return
        assert r.status_code < 500, (method, url, query, body, r.status_code, r.text)
        if r.status_code >= 400:
            assert r.json()["error"], r.text

    return probe


def test_fuzz_every_endpoint_finds_no_5xx(served: Served) -> None:
    with served.client() as c:
        doc = c.get("/v1/openapi.json").json()
        checked = 0
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                props: dict[str, Any] = {}
                if "requestBody" in op:
                    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                    props = doc["components"]["schemas"][ref].get("properties", {})
                _probe(c, path, method, op, props)()
                checked += 1
    assert checked == 18


def test_no_secret_in_any_response(served: Served) -> None:
    """Runs after everything above: every body any test got back, plus one more look at each endpoint."""
    with served.client() as c:
        for path in ("/v1/sources", "/v1/sources/scores", "/v1/runs", "/v1/errors", "/metrics", "/v1/health",
                     "/v1/openapi.json"):
            assert c.get(path).status_code == 200
        r = c.post("/v1/sources/scores/runs", json={})
        wait_run(c, r.json()["run_id"])
        c.get(f"/v1/runs/{r.json()['run_id']}")
    assert len(served.bodies) > 400
    for text in served.bodies:
        for secret in (API_TOKEN, READ_TOKEN, REST_SECRET):
            assert secret not in text
