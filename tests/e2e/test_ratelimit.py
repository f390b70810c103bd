"""`rate_limit:` holds across processes sharing a store: two `syncdash run` processes syncing two sources of one
local host at once stay within the host's limit (the server records each request's time), on SQLite and
PostgreSQL stores. Plus the block-taking bucket itself: a lone process makes far fewer store round trips
than requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import Project, server_db

from syncdash.store.db import Store
from syncdash.store.ratelimit import SharedBucket

PAGES = 25
RATE, BURST = 20.0, 2

SOURCE = """\
  - name: {name}
    kind: rest
    url: {url}/{name}
    records: items
    pagination: {{type: page, size: 1, total_path: total}}
    rate_limit: {{rate: 20/s, burst: 2, shared: true}}
    table: {name}
    primary_key: [id]
    fields: {{id: {{type: int}}}}
"""


class Recorder:
    """A paged JSON API on 127.0.0.1 that records when each request arrived."""

    def __init__(self) -> None:
        self.times: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.times.append(time.monotonic())
                page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
                body = json.dumps({"items": [{"id": page}] if page <= PAGES else [], "total": PAGES}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.server.shutdown()
    r.server.server_close()


def worst_excess(times: list[float]) -> float:
    """The most requests any window had beyond what the bucket allows (burst + rate x window)."""
    ts = sorted(times)
    return max(j - i + 1 - (BURST + RATE * (ts[j] - ts[i])) for i in range(len(ts)) for j in range(i, len(ts)))


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_two_processes_on_one_host_stay_within_its_limit(project: Project, recorder: Recorder, db: str) -> None:
    pg = server_db("postgresql") if db == "postgresql" else None
    try:
        database = f"database: {pg.url}\n" if pg is not None else ""
        project.config(database + "sources:\n" + SOURCE.format(name="a", url=recorder.url)
                       + SOURCE.format(name="b", url=recorder.url))
        procs = [project.popen("run", name) for name in ("a", "b")]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, out + err
    finally:
        if pg is not None:
            pg.drop()
    assert len(recorder.times) >= 2 * PAGES
    # each process alone would send 20/s: together, unshared, they would send about 40/s
    assert worst_excess(recorder.times) <= 1.0, "the two processes together exceeded the host's limit"
    span = max(recorder.times) - min(recorder.times)
    assert span >= (len(recorder.times) - BURST) / RATE * 0.9


def test_a_lone_process_takes_tokens_in_blocks(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    bucket = SharedBucket(store, "*|host", interval=1 / 200, burst=50)
    started = time.monotonic()
    for _ in range(200):
        bucket.acquire()
    elapsed = time.monotonic() - started
    assert bucket.round_trips <= 2 * 200 / bucket.block + 10 and bucket.block >= 10, bucket.round_trips
    assert elapsed >= (200 - 50) / 200 * 0.9  # the limit still holds: 200/s after a burst of 50
