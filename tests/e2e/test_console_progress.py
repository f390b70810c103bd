"""The progress bars of `syncdash run` (and so of `syncdash demo`) are right for every kind (issue 17): a phase
with no known total (a cursor-paged API, a web source's pages) shows an indeterminate bar and its count, never
a percentage stuck at 0.0%; each step of a flow shows its own counts, not the flow's running total. Real runs on
a pseudo-terminal, against a real HTTP server on 127.0.0.1; the console's side in test_console_fit.py."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from conftest import Project

from syncdash_demo.sampleapi import SampleApi

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(n=90, lifetime=300) as server:
        yield server


def run_on_a_terminal(project: Project, *args: str) -> list[str]:
    """`syncdash run ARGS` with its stderr on a pseudo-terminal (live bars); the lines of the final frame."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "syncdash", "run", *args], cwd=project.root,
                            env={**project.env, "COLUMNS": "140"}, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(5)
        os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    return [line.strip() for chunk in text.split("\n") for line in chunk.split("\r") if line.strip()]


def last(lines: list[str], start: str) -> str:
    """The last drawing of a bar: live bars are redrawn in place, the final frame is what stays on screen."""
    found = [line for line in lines if line.startswith(start)]
    assert found, f"no line starting {start!r} in:\n" + "\n".join(lines[-30:])
    return found[-1]


def test_unknown_totals_show_a_count_and_flow_steps_their_own_counts(project: Project, api: SampleApi) -> None:
    project.write("a.csv", "id,name\n" + "".join(f"{i},a{i}\n" for i in range(5)))
    project.write("b.csv", "id,name\n" + "".join(f"{i},b{i}\n" for i in range(3)))
    csv = "    kind: csv\n    primary_key: [id]\n    fields: {id: {from: id, type: int}, name: name}\n"
    project.config(
        "sources:\n"
        f"  - name: first\n    path: a.csv\n    table: first\n{csv}"
        f"  - name: second\n    path: b.csv\n    table: second\n{csv}"
        # cursor pagination: the API never says how many records there are
        f"  - name: feed\n    kind: rest\n    url: {api.url}/v1/cursor/players\n    records: data\n"
        "    params: {limit: 40}\n"
        "    pagination: {type: cursor, cursor_path: meta.next_cursor, cursor_param: cursor}\n"
        "    table: feed\n    primary_key: [id]\n    fields: {id: {from: id, type: int}, name: profile.display_name}\n"
        "flows:\n  - name: both\n    steps: [first, second]\n")
    lines = run_on_a_terminal(project, "both", "feed")
    # each step its own counts: the second step inserted 3, not the flow's 5 + 3
    assert "+5 ~0 =0 -0 !0" in last(lines, "both first")
    second = last(lines, "both second")
    assert "+3 ~0 =0 -0 !0" in second and "+8" not in second
    # no total known: the count so far, not "0.0%"
    feed = last(lines, "feed load")
    assert "%" not in feed and " 3 pages " in feed, feed  # 90 records, 40 a page
    assert "+90 ~0 =0 -0 !0" in feed
