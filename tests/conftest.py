"""Shared fixtures: every test gets its own directory, config, SQLite file and isolated user dirs, and drives
the real `syncdash` command in a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
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


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
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
    yield Project(root, env)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In CI a skip means something the tests need is missing: that is a failure, not a pass."""
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (missing dependency?): {report.longrepr}"
