"""Credentials stay with their origin, and hostile HTTP input is bounded (issue 15, the HTTP side).

Two real servers stand for two hosts: 127.0.0.1 (the configured API) and 127.0.0.2 ("another host"); each
records every request it gets, headers and body, so a test can say the secret never arrived there. Every
test greps the store (with its WAL), stdout/stderr and `show`/`errors` output for each secret in each of
its encoded forms (raw, percent-encoded, form-encoded, base64, JSON-escaped).
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import httpx
import pytest

from tests.conftest import SYNCDASH, Project, wait_for_api

Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """A recording HTTP server on one loopback address; `route(seen) -> (status, headers, body)`."""

    host: str
    route: Callable[[Seen], Reply]
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(self.command, parts.path, parse_qs(parts.query),
                            {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n) if n else b"")
                outer.requests.append(seen)
                status, headers, body = outer.route(seen)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.url = f"http://{self.host}:{self.server.server_address[1]}"
        self.origin = self.url
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_reply(obj: Any, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


@pytest.fixture
def servers() -> Iterator[Callable[[str, Callable[[Seen], Reply]], Server]]:
    made: list[Server] = []

    def make(host: str, route: Callable[[Seen], Reply]) -> Server:
        s = Server(host, route)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def encoded_forms(secret: str, user: str | None = None) -> list[str]:
    forms = [secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
             base64.b64encode(secret.encode()).decode().rstrip("=")]
    if user is not None:
        forms.append(base64.b64encode(f"{user}:{secret}".encode()).decode().rstrip("="))
    return forms


def api_answers(project: Project, env: dict[str, str]) -> str:
    """Every GET of the daemon's HTTP API about the project's sources and runs, and the daemon's own log."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = project.popen("daemon", "--http", f"127.0.0.1:{port}", "--log-format", "text", env=env)
    url = f"http://127.0.0.1:{port}"
    answers: list[str] = []
    try:
        wait_for_api(proc, url)
        run_ids = [r[0] for r in project.query("SELECT id FROM syncdash_runs")]
        names = [r[0] for r in project.query("SELECT DISTINCT source FROM syncdash_runs")]
        paths = ["/v1/health", "/v1/sources", "/v1/runs", "/v1/errors", "/metrics"]
        paths += [f"/v1/runs/{i}" for i in run_ids] + [f"/v1/sources/{n}" for n in names]
        for path in paths:
            r = httpx.get(url + path, timeout=10)
            assert r.status_code == 200, (path, r.text)
            answers.append(r.text)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    return "".join(answers) + out + err


def assert_nowhere(project: Project, outputs: str, *secrets: str, user: str | None = None,
                   env: dict[str, str] | None = None) -> None:
    """No form of any secret in the store's files (WAL too), `show`/`errors`, the HTTP API's answers and the
    daemon's log, or in any output given."""
    store = b"".join(p.read_bytes() for p in project.root.glob("syncdash.db*"))
    logs = b"".join(p.read_bytes() for p in project.root.rglob("*.log"))
    shown = project.cli("show", "--json").stdout + project.cli("errors", "--json").stdout
    shown += api_answers(project, env or {"API_KEY": SECRET})
    for secret in secrets:
        for form in encoded_forms(secret, user):
            assert form.encode() not in store, f"{form!r} (a form of a secret) is in the store"
            assert form.encode() not in logs, f"{form!r} is in a log"
            assert form not in outputs, f"{form!r} is in the output"
            assert form not in shown, f"{form!r} is in show/errors"


def received(server: Server, *secrets: str) -> bool:
    """Did any request to `server` carry a secret, in a header, the query or the body, in any form?"""
    for r in server.requests:
        blob = json.dumps(r.headers) + json.dumps(r.query) + r.body.decode("utf-8", "replace")
        for secret in secrets:
            if any(f in blob for f in encoded_forms(secret)):
                return True
    return False


RECORDS = [{"id": i, "name": f"P{i}"} for i in range(1, 4)]
FIELDS = "    table: players\n    primary_key: [id]\n    fields: {id: {type: int}, name: name}\n"
RETRY = "    retry: {attempts: 2, initial: 0.01s, max: 0.02s}\n"
SECRET = "k3y/S3cr+t&=%\"x~"  # characters that every encoding changes
HEADER_LITERAL = "literal-partner-tok-77"


def run(project: Project, *names: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`syncdash run NAMES --json` with API_KEY set; the output must be the JSON result (no crash)."""
    proc = project.cli("run", *names, "--json", env={"API_KEY": SECRET, **(env or {})})
    assert proc.stdout.startswith("["), proc.stderr
    return proc


# ---- 1. never sent to another origin ------------------------------------------------------------

@pytest.mark.parametrize("allowed", [False, True])
def test_a_redirect_to_another_origin_is_refused_unless_allowed(project: Project, servers: Any,
                                                                allowed: bool) -> None:
    other = servers("127.0.0.2", lambda r: json_reply(RECORDS))
    home = servers("127.0.0.1", lambda r: (302, {"Location": f"{other.url}/v1/players"}, b""))
    allow = f"    allow_origins: [\"{other.origin}\"]\n" if allowed else ""
    project.config(f"""\
sources:
  - name: players
    kind: rest
    url: {home.url}/v1/players
    auth: {{type: api_key, name: X-Api-Key, value: "${{API_KEY}}"}}
    headers: {{X-Partner-Token: {HEADER_LITERAL}, Accept: application/json}}
{allow}{RETRY}{FIELDS}""")
    proc = run(project, "players")
    if allowed:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert project.query("SELECT count(*) FROM players") == [(3,)]
        assert received(other, SECRET), "allow_origins: the user chose to send credentials there"
    else:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        [res] = json.loads(proc.stdout)
        assert "127.0.0.1" in res["error"]
        assert "127.0.0.2" in res["error"] and "allow_origins" in res["error"], res["error"]
        assert not other.requests, "nothing at all went to the other origin"
    assert allowed or not received(other, HEADER_LITERAL)
    assert_nowhere(project, proc.stdout + proc.stderr, SECRET, HEADER_LITERAL)


def test_a_next_link_to_another_origin_is_refused(project: Project, servers: Any) -> None:
    other = servers("127.0.0.2", lambda r: json_reply({"data": RECORDS[2:], "next": None}))
    home = servers("127.0.0.1", lambda r: json_reply({"data": RECORDS[:2], "next": f"{other.url}/v1/players?p=2"}))
    project.config(f"""\
sources:
  - name: players
    kind: rest
    url: {home.url}/v1/players
    auth: {{type: bearer, token: "${{API_KEY}}"}}
    records: data
    pagination: {{type: next_url, next_path: next}}
{RETRY}{FIELDS}""")
    proc = run(project, "players")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [res] = json.loads(proc.stdout)
    assert "next link" in res["error"] and "127.0.0.2" in res["error"] and "127.0.0.1" in res["error"]
    assert not other.requests
    assert received(home, SECRET)  # the configured origin does get it
    assert_nowhere(project, proc.stdout + proc.stderr, SECRET)


def make_people(project: Project, rows: list[tuple[str, str]]) -> str:
    project.write("people.csv", "id,name\n" + "".join(f"{i},{n}\n" for i, n in rows))
    return ("  - name: people\n    kind: csv\n    path: people.csv\n    table: people\n    primary_key: [id]\n"
            "    fields: {id: id, name: name}\n    max_delete_ratio: null\n")


def test_a_push_redirected_to_another_origin_sends_nothing_there(project: Project, servers: Any) -> None:
    other = servers("127.0.0.2", lambda r: json_reply({}, 201))
    home = servers("127.0.0.1", lambda r: (307, {"Location": f"{other.url}{r.path}"}, b""))
    csv = make_people(project, [("a1", "Ann")])
    project.config(f"""\
sources:
{csv}  - name: out
    kind: push
    from_table: people
    key: [id]
    url: {home.url}/v1/people/{{id}}
    method: PUT
    batch: 1
    body: {{name: name}}
    auth: {{type: bearer, token: "${{API_KEY}}"}}
{RETRY}""")
    assert run(project, "people").returncode == 0
    proc = run(project, "out")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "127.0.0.2" in proc.stdout and "allow_origins" in proc.stdout
    assert not other.requests
    assert_nowhere(project, proc.stdout + proc.stderr, SECRET)


# ---- 2. userinfo stripped; 3. masked in every form ---------------------------------------------------

def test_userinfo_becomes_basic_auth_and_is_stored_nowhere(project: Project, servers: Any) -> None:
    pw = "pw:s3cr3t/ö+x"

    def route(r: Seen) -> Reply:
        if r.query.get("p") == ["2"]:  # a server that echoes the credential back in every form
            echo = {"error": f"bad {pw} {quote_plus(pw)} {quote(pw, safe='')} "
                             f"{base64.b64encode(f'alice:{pw}'.encode()).decode()}"}
            return json_reply(echo, 400)
        return json_reply({"data": RECORDS, "next": "/v1/players?p=2"})

    home = servers("127.0.0.1", route)
    host = home.url.split("//", 1)[1]
    project.config(f"""\
sources:
  - name: players
    kind: rest
    url: "http://alice:${{PW}}@{host}/v1/players"
    records: data
    pagination: {{type: next_url, next_path: next}}
{RETRY}{FIELDS}""")
    proc = project.cli("run", "players", "--json", env={"PW": quote(pw, safe="")})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    expected = "Basic " + base64.b64encode(f"alice:{pw}".encode()).decode()
    assert home.requests[0].headers.get("authorization") == expected, "userinfo goes as basic auth"
    assert project.query("SELECT count(*) FROM players") == [(3,)]
    [res] = json.loads(proc.stdout)
    assert "HTTP 400" in res["error"]
    checkpoint = project.query("SELECT checkpoint FROM syncdash_runs")[0][0] or ""
    assert "@" not in checkpoint
    hosts = [h for (h,) in project.query("SELECT host FROM syncdash_breakers")]
    assert all("@" not in h and "alice" not in h for h in hosts), hosts
    assert_nowhere(project, proc.stdout + proc.stderr, pw, quote(pw, safe=""), user="alice",
                   env={"PW": quote(pw, safe="")})


def test_literal_credential_headers_are_masked_in_validate_and_show(project: Project) -> None:
    project.config(f"""\
sources:
  - name: players
    kind: rest
    url: http://127.0.0.1:9/v1/players
    headers: {{X-Partner-Token: {HEADER_LITERAL}, Api_Key: another-literal-key}}
{FIELDS}""")
    outputs = "".join(project.cli(*a).stdout for a in (("validate",), ("show", "players"), ("show", "--json")))
    assert "players" in outputs
    assert HEADER_LITERAL not in outputs and "another-literal-key" not in outputs


# ---- 4. templated paths -------------------------------------------------------------------------------

def test_push_values_stay_one_path_segment_and_deletes_send_no_body(project: Project, servers: Any) -> None:
    home = servers("127.0.0.1", lambda r: json_reply({}, 200))
    rows = [("..", "Dots"), ("a/b", "Slash"), ("q?x#y", "Query"), ("ok", "Fine")]
    csv = make_people(project, rows)
    cfg = f"""\
sources:
{csv}  - name: out
    kind: push
    from_table: people
    key: [id]
    url: {home.url}/v1/events/101/participants/{{id}}
    method: PUT
    batch: 1
    body: {{name: name, team: {{value: ie}}}}
    deletes: send
    delete: {{url: "{home.url}/v1/events/101/participants/{{id}}"}}
    max_delete_ratio: null
{RETRY}"""
    project.config(cfg)
    assert run(project, "people").returncode == 0
    proc = run(project, "out")
    assert proc.returncode == 3, proc.stdout + proc.stderr  # partial: the `..` row is an item error
    paths = sorted(r.path for r in home.requests)
    assert paths == ["/v1/events/101/participants/a%2Fb", "/v1/events/101/participants/ok",
                     "/v1/events/101/participants/q%3Fx%23y"], paths
    assert all(json.loads(r.body)["team"] == "ie" for r in home.requests)
    errors = json.loads(project.cli("errors", "--json").stdout)
    assert len(errors) == 1 and errors[0]["key"] == [".."], errors
    assert "'..'" in errors[0]["message"] and "id" in errors[0]["message"]
    # remove those rows: deletes go to each row's own URL, with no body
    make_people(project, [("..", "Dots")])
    assert run(project, "people").returncode == 0
    home.requests.clear()
    proc = run(project, "out")
    assert proc.returncode == 3, proc.stdout + proc.stderr  # the `..` row is still refused, never sent
    assert json.loads(proc.stdout)[0]["counts"]["deleted"] == 3
    deletes = sorted((r.method, r.path, r.body) for r in home.requests)
    assert deletes == [("DELETE", "/v1/events/101/participants/a%2Fb", b""),
                       ("DELETE", "/v1/events/101/participants/ok", b""),
                       ("DELETE", "/v1/events/101/participants/q%3Fx%23y", b"")], deletes


def test_for_each_path_values_stay_one_segment(project: Project, servers: Any) -> None:
    parents = [{"id": "..", "n": 1}, {"id": "a/b", "n": 2}]

    def route(r: Seen) -> Reply:
        if r.path == "/v1/events":
            return json_reply(parents)
        return json_reply({"id": r.path.rsplit("/", 1)[1], "v": 1})

    home = servers("127.0.0.1", route)
    project.config(f"""\
sources:
  - name: ev
    kind: rest
    base_url: {home.url}/v1
{RETRY}    streams:
      - name: events
        path: /events
        table: events
        primary_key: [id]
        fields: {{id: id, n: {{type: int}}}}
      - name: detail
        for_each: events
        path: /events/{{id}}/detail
        table: details
        primary_key: [id]
        fields: {{id: id, v: {{type: int}}}}
""")
    proc = project.cli("run", "ev", "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert sorted(r.path for r in home.requests) == ["/v1/events", "/v1/events/a%2Fb/detail"]
    errors = json.loads(project.cli("errors", "--json").stdout)
    assert len(errors) == 1 and "'..'" in errors[0]["message"], errors


# ---- 5. pagination loops; 6. response size; 7. JSON depth -----------------------------------------------

def test_a_cursor_that_comes_back_to_an_earlier_page_stops_the_stream(project: Project, servers: Any) -> None:
    nxt = {None: "b", "b": "c", "c": "b"}  # page 3 points back at page 2

    def route(r: Seen) -> Reply:
        cur = (r.query.get("cursor") or [None])[0]
        n = {None: 1, "b": 2, "c": 3}[cur]
        return json_reply({"data": [{"id": n * 10 + k, "name": "x"} for k in range(2)], "cursor": nxt[cur]})

    home = servers("127.0.0.1", route)
    project.config(f"""\
sources:
  - name: players
    kind: rest
    url: {home.url}/v1/players
    records: data
    pagination: {{type: cursor, cursor_path: cursor}}
{RETRY}{FIELDS}""")
    proc = run(project, "players")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [res] = json.loads(proc.stdout)
    assert "pagination loop" in res["error"] and "already fetched at page 2" in res["error"], res["error"]
    assert len(home.requests) == 4  # pages 1, 2, 3 and the repeat of 2 that is detected


def test_a_response_over_max_response_is_a_clear_error(project: Project, servers: Any) -> None:
    big = json.dumps([{"id": i, "name": "x" * 100} for i in range(30_000)]).encode()  # ~3.5 MB
    home = servers("127.0.0.1", lambda r: (200, {"Content-Type": "application/json"}, big))
    project.config(f"""\
sources:
  - name: players
    kind: rest
    url: {home.url}/v1/players
    max_response: 1MB
{RETRY}{FIELDS}""")
    proc = run(project, "players")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [res] = json.loads(proc.stdout)
    assert "max_response" in res["error"] and "1,000,000 bytes" in res["error"], res["error"]
    assert len(home.requests) == 1, "too large is not retried"


def test_a_deeply_nested_body_is_a_parse_error(project: Project, servers: Any) -> None:
    home = servers("127.0.0.1", lambda r: (200, {"Content-Type": "application/json"}, b"[" * 100_000))
    project.config(f"""\
sources:
  - name: players
    kind: rest
    url: {home.url}/v1/players
{RETRY}{FIELDS}""")
    proc = run(project, "players")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [res] = json.loads(proc.stdout)
    assert res["error_type"] == "parse" and "not valid JSON" in res["error"], res
    assert "RecursionError" not in proc.stderr and "Traceback" not in proc.stderr


STREAMER = r'''
import socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(4)
print(srv.getsockname()[1], flush=True)
def serve(c):
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b'{"id": 1, "name": "' + b"x" * (1 << 20) + b'"},'
    try:
        c.sendall(b"%x\r\n[\r\n" % 1)
        for _ in range(400):  # 400 MB, never held: one chunk at a time, no Content-Length
            c.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        c.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
'''

MEASURE = r'''
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(proc.stdout)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
'''


def test_a_400_mb_body_keeps_memory_bounded(project: Project) -> None:
    streamer = subprocess.Popen([sys.executable, "-c", STREAMER], stdout=subprocess.PIPE, text=True)
    try:
        assert streamer.stdout is not None
        port = int(streamer.stdout.readline())
        project.config(f"""\
sources:
  - name: players
    kind: rest
    url: http://127.0.0.1:{port}/v1/players
{RETRY}{FIELDS}""")
        proc = subprocess.run([sys.executable, "-c", MEASURE, *SYNCDASH, "run", "players", "--json"],
                              cwd=project.root, env=project.env, capture_output=True, text=True, timeout=300)
    finally:
        streamer.kill()
        streamer.wait()
    out, _, rss = proc.stdout.rpartition("MAXRSS_KB ")
    [res] = json.loads(out)
    assert res["status"] == "failed" and "max_response" in res["error"], res
    assert int(rss) < 300 * 1024, f"peak RSS {int(rss) // 1024} MiB"

