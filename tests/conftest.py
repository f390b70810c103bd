"""Shared fixtures: every test gets its own directory, config, SQLite file and isolated user dirs, and drives
the real `syncdash` command in a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SYNCDASH = [sys.executable, "-m", "syncdash"]


class Project:
    """A scratch project directory with a `syncdash.yaml`, its data files and its database."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.db = root / "syncdash.db"
        # set by the `tdb` fixture: target tables in another database than the store
        self.target: ServerDb | SqliteFileDb | None = None

    def write(self, name: str, text: str, encoding: str = "utf-8") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding=encoding, newline="")
        return path

    def write_bytes(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def config(self, text: str, name: str = "syncdash.yaml") -> Path:
        """Write a config; `database:` defaults to this project's SQLite file when the text has none."""
        body = textwrap.dedent(text)
        if self.target is not None and "\ntarget:" not in "\n" + body:
            body = f"target: {self.target.url}\n" + body
        if "database:" not in body:
            body = f"database: sqlite:///{self.db}\n" + body
        return self.write(name, body)

    def popen(self, *args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*SYNCDASH, *args], cwd=self.root, env={**self.env, **(env or {})}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw,
        )

    def cli(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SYNCDASH, *args], cwd=self.root, env={**self.env, **(env or {})}, text=True,
            capture_output=True, timeout=timeout,
        )

    def run_json(self, *args: str, expect: int | None = None, **kw: Any) -> Any:
        """`syncdash run ... --json`, parsed; asserts the exit code when `expect` is given."""
        proc = self.cli("run", *args, "--json", **kw)
        if expect is not None:
            assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.db)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def tquery(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A query on the target tables, wherever they are (`?` placeholders, "quoted" names everywhere)."""
        if self.target is None:
            return self.query(sql, params)
        return self.target.query(sql, params)

    @property
    def dialect(self) -> str:
        return self.target.dialect if self.target is not None else "sqlite"


SERVERS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/{db}",
    "mysql": "mysql://root@127.0.0.1:3306/{db}",
}


def _plain(v: Any) -> Any:
    """Server values as SQLite gives them back, so one assertion serves every target."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime):
        return v.isoformat(" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return v


class ServerDb:
    """A scratch database on the local PostgreSQL or MariaDB server, created and dropped by one test."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.name = f"sd_test_{uuid.uuid4().hex[:10]}"
        self.url = SERVERS[dialect].format(db=self.name)
        self._admin(f"CREATE DATABASE {self.name}")

    def _connect(self, db: str) -> Any:
        if self.dialect == "postgresql":
            import psycopg

            return psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}", autocommit=True, connect_timeout=10)
        import pymysql

        con = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db, autocommit=True,
                              connect_timeout=10)
        with con.cursor() as cur:
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
        return con

    def _admin(self, sql: str) -> None:
        con = self._connect("postgres" if self.dialect == "postgresql" else "test")
        try:
            with con.cursor() as cur:
                cur.execute(sql)
        finally:
            con.close()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        con = self._connect(self.name)
        try:
            with con.cursor() as cur:
                cur.execute(sql.replace("%", "%%").replace("?", "%s") if params else sql, params or None)
                rows = cur.fetchall() if cur.description else []
            return [tuple(_plain(v) for v in r) for r in rows]
        finally:
            con.close()

    def drop(self) -> None:
        if self.dialect == "postgresql":
            self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        else:
            self._admin(f"DROP DATABASE IF EXISTS {self.name}")


class SqliteFileDb:
    """Target tables in an SQLite file of their own (not the store's): two databases without a server."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.path)
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def drop(self) -> None:
        pass


def server_db(dialect: str) -> ServerDb:
    """A scratch database, or a skip (a failure in CI) naming the server that is not there."""
    try:
        return ServerDb(dialect)
    except Exception as e:
        pytest.skip(f"{dialect} at 127.0.0.1 is not available: {e}")


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def tdb(request: pytest.FixtureRequest, project: Project) -> Iterator[str]:
    """Run the test with its target tables in SQLite (the store's own file), PostgreSQL and MariaDB."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    db = server_db(request.param)
    project.target = db
    try:
        yield request.param
    finally:
        db.drop()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    yield new_project(tmp_path)


def new_project(tmp_path: Path) -> Project:
    """A Project in tmp_path with isolated user dirs (also for module-scoped fixtures)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCDASH_")}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        COLUMNS="200",
        NO_COLOR="1",
    )
    root = tmp_path / "proj"
    root.mkdir()
    return Project(root, env)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In CI a skip means something the tests need is missing: that is a failure, not a pass."""
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (missing dependency?): {report.longrepr}"


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every JSON body it gets."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.events.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _console_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console remembers its theme in the user's config dir: every test gets a fresh, private one."""
    monkeypatch.setenv("SYNCDASH_CONSOLE_DIR", str(tmp_path_factory.mktemp("console-settings")))


def wait_for_api(proc: subprocess.Popen[str], url: str, timeout: float = 30) -> None:
    """Wait until a daemon started with `--http` answers /v1/health; fail with its stderr if it exits first."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the API did not come up"
        time.sleep(0.1)


@pytest.fixture
def whole_kind() -> Iterator[None]:
    """The test-only `jsonl_whole` kind (tests/support/jsonl_kind.py: it can only re-read its whole input),
    registered for one test and removed after it, so it never leaks into the tests after it in a worker."""
    from support.jsonl_kind import JSONL_WHOLE_KIND

    from syncdash.config.kinds import register_kind, unregister_kind

    register_kind(JSONL_WHOLE_KIND)
    try:
        yield
    finally:
        unregister_kind("jsonl_whole")
