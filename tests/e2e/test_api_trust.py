"""Issue 15: the HTTP API without a token, against the real daemon. A web page in the user's browser must not
drive it: a foreign Origin or a Host that is not the listen address (DNS rebinding) is a 403 on every endpoint,
and a POST without Content-Type: application/json is refused. curl-like clients keep working."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from conftest import Project, new_project, wait_for_api
from test_api import free_port

# its module-scoped fixture is built once and its tests read what earlier ones left: one xdist worker
pytestmark = pytest.mark.xdist_group("test_api_trust")

CONFIG = """\
sources:
  - name: small
    kind: csv
    path: data/small.csv
    table: small
    primary_key: [id]
    fields: {id: {type: int}, plays: {type: int}}
"""


@dataclass
class Daemon:
    project: Project
    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    project = new_project(tmp_path_factory.mktemp("trust"))
    project.config(CONFIG)
    project.write("data/small.csv", "id,plays\n1,10\n2,20\n")
    port = free_port()
    proc = project.popen("daemon", "--http", f"127.0.0.1:{port}", "--log-format", "text")
    d = Daemon(project, proc, port)
    try:
        wait_for_api(proc, d.url)
        yield d
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
    assert "Traceback" not in err, err


ENDPOINTS = [("GET", "/v1/health"), ("GET", "/v1/sources"), ("GET", "/v1/runs"), ("GET", "/metrics"),
             ("GET", "/v1/openapi.json"), ("POST", "/v1/sources/small/pause"), ("POST", "/v1/sources/small/runs"),
             ("GET", "/no/such/endpoint")]


def paused(d: Daemon) -> bool:
    rows = d.project.query("SELECT paused FROM syncdash_source_state WHERE source = 'small'")
    return bool(rows and rows[0][0])


@pytest.mark.parametrize(("header", "value"), [
    ("Origin", "http://evil.example"),
    ("Origin", "null"),
    ("Origin", "http://127.0.0.1:1"),  # the same host on another port is another origin
    ("Host", "evil.example:{port}"),  # DNS rebinding: evil.example now resolves to 127.0.0.1
    ("Host", "127.0.0.1:1"),
])
def test_a_foreign_origin_or_host_is_a_403_on_every_endpoint(daemon: Daemon, header: str, value: str) -> None:
    value = value.format(port=daemon.port)
    runs_before = daemon.project.query("SELECT count(*) FROM syncdash_runs")
    with httpx.Client(base_url=daemon.url, timeout=30) as c:
        for method, path in ENDPOINTS:
            r = c.request(method, path, headers={header: value, "Content-Type": "application/json"}, json={})
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert "refused" in r.json()["error"]
    assert not paused(daemon) and daemon.project.query("SELECT count(*) FROM syncdash_runs") == runs_before


def test_a_post_without_a_json_content_type_is_refused(daemon: Daemon) -> None:
    """What an HTML form (or a no-preflight fetch) can send: form-encoded, text/plain, or nothing."""
    with httpx.Client(base_url=daemon.url, timeout=30) as c:
        for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", None):
            headers = {"Content-Type": ctype} if ctype else {}
            r = c.post("/v1/sources/small/pause", content=b"{}" if ctype else b"", headers=headers)
            assert r.status_code == 415, (ctype, r.text)
            assert "Content-Type: application/json" in r.json()["error"]
        assert not paused(daemon)


def test_its_own_origin_localhost_and_curl_like_clients_still_work(daemon: Daemon) -> None:
    with httpx.Client(base_url=daemon.url, timeout=30) as c:
        assert c.get("/v1/health").status_code == 200  # no Origin: curl, the CLI, scripts
        assert c.get("/v1/health", headers={"Host": f"localhost:{daemon.port}"}).status_code == 200
        own = {"Origin": f"http://127.0.0.1:{daemon.port}", "Content-Type": "application/json; charset=utf-8"}
        r = c.post("/v1/sources/small/pause", headers=own, content=b"{}")
        assert r.status_code == 200 and r.json()["paused"] is True
        r = c.post("/v1/sources/small/resume", json={})
        assert r.status_code == 200 and r.json()["paused"] is False
    assert not paused(daemon)
