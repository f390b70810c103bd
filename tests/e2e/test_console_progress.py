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
from typing import Any

import pytest
from conftest import Project

from syncdash.config import load_config
from syncdash.engine import Engine, RunOptions
from syncdash.engine.options import Progress
from syncdash.store.db import Store
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


ROWS = ("inserted", "updated", "unchanged", "deleted", "failed")


def flow_step_progress(project: Project, flow: str) -> list[tuple[Progress, tuple[Any, ...]]]:
    """Run `flow` in this process: each progress report of its steps, with the step's phase row in the store at
    that moment (done, total, unit) as the console reads it."""
    cfg = load_config(project.root / "syncdash.yaml")
    store = Store(cfg.database)
    seen: list[tuple[Progress, tuple[Any, ...]]] = []

    def on_progress(p: Progress) -> None:
        if p.source == flow:
            [row] = project.query("SELECT done, total, unit FROM syncdash_run_phases WHERE run_id=? AND name=?",
                                  (p.run_id, p.phase))
            seen.append((p, row))

    try:
        result = Engine(store, cfg).run(flow, RunOptions(trigger="test", on_progress=on_progress, read_ahead=False))
    finally:
        store.engine.dispose()
    assert result.status == "succeeded", result.error
    return seen


def assert_steady_rows(seen: list[tuple[Progress, tuple[Any, ...]]], step: str, rows: int) -> None:
    """The step's bar counts its rows from the first report to the last: never its run's bytes or pages, never
    back down when the run's phase changes (load -> finalize), and rows of rows at the end."""
    mine = [(p, row) for p, row in seen if p.phase == step]
    assert len(mine) >= 3, f"too few reports for {step}: {[p for p, _ in mine]}"
    assert {p.unit for p, _ in mine} == {"rows"}, [(p.unit, p.done, p.detail) for p, _ in mine]
    done = [p.done for p, _ in mine]
    assert done == sorted(done) and max(done) == rows, done
    for p, _ in mine[:-1]:
        assert p.done <= rows and p.total in (None, rows), (p.done, p.total, p.detail)
    assert (mine[-1][0].done, mine[-1][0].total) == (rows, rows)
    stored = [row for _, row in mine]
    assert {u for _, _, u in stored} == {"rows"}
    assert [d for d, _, _ in stored] == sorted(d for d, _, _ in stored), stored
    assert all(t is None or t == rows for _, t, _ in stored) and stored[-1][:2] == (rows, rows), stored


def test_a_flow_step_counts_its_rows_steadily_through_load_and_finalize(project: Project) -> None:
    """A CSV step's run reports bytes while it loads, then the rows it deletes: the flow's bar for the step
    counts the step's rows all along (issue 17: it jumped from the load's bytes to the finalize's count)."""
    n = 400
    project.write("a.csv", "id,name\n" + "".join(f"{i},name {i:04}\n" for i in range(n)))
    project.config("sources:\n  - name: first\n    kind: csv\n    path: a.csv\n    table: first\n"
                   "    primary_key: [id]\n    batch_size: 25\n"
                   "    fields: {id: {from: id, type: int}, name: name}\n"
                   "flows:\n  - name: both\n    steps: [first]\n")
    assert_steady_rows(flow_step_progress(project, "both"), "first", n)
    # the second run deletes 40 rows in its finalize phase: still one steady count, 360 unchanged + 40 deleted
    project.write("a.csv", "id,name\n" + "".join(f"{i},name {i:04}\n" for i in range(n - 40)))
    seen = flow_step_progress(project, "both")
    assert_steady_rows(seen, "first", n)
    assert any(p.detail and p.detail.startswith("load: ") and "bytes" in p.detail for p, _ in seen), \
        "the detail still says where the step's own run is"
    assert seen[-1][0].counts["deleted"] == 40
