"""The read-only commands import only what they need: no HTTP client, console, browser or web server.

(A kind package's `__init__` is its registry entry and is loaded to read the config; its client, source and
browser modules are what must stay out.)

Not a timing test (timings belong in bench/cli_start.py): each command runs in a fresh interpreter through
the real `main()`, and the modules it left in `sys.modules` are compared with the heavy stacks that only
other commands use. One stray top-level import (say `import httpx` in a module `status` pulls in) fails it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import Project

# stacks the read-only commands never need; each costs tens of milliseconds to a second to import
HEAVY = ("httpx", "httpcore", "textual", "playwright", "starlette", "uvicorn", "prometheus_client", "alembic",
         "syncdash.engine", "syncdash.targets", "syncdash.kinds.rest.client", "syncdash.kinds.rest.source",
         "syncdash.kinds.web.browser", "syncdash.kinds.web.source", "syncdash.service", "syncdash.tui",
         "syncdash.api")

PROBE = """\
import contextlib, io, json, sys
from syncdash.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
               and any(m == h or m.startswith(h + ".") for h in HEAVY))
print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue()}))
"""


@pytest.fixture
def history(project: Project) -> Project:
    project.write("people.csv", "id,name\n1,Ada\nx,Bad\n")
    project.config("""\
        sources:
          - name: people
            kind: csv
            path: people.csv
            table: people
            primary_key: [id]
            fields:
              id: {from: id, type: int}
              name: name
        """)
    proc = project.cli("run", "people")
    assert proc.returncode == 3, proc.stderr  # partial: line 3 fails, so `errors` has a row to show
    return project


@pytest.mark.parametrize("argv", [["status"], ["runs"], ["errors"], ["show", "1"], ["status", "--json"]])
def test_read_commands_import_no_heavy_stack(history: Project, argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n" + PROBE, *argv], cwd=history.root,
                          env=history.env, text=True, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["code"] == 0
    assert "people" in got["out"]  # it answered from the store, not from an early exit
    assert got["heavy"] == [], f"`syncdash {' '.join(argv)}` imported {got['heavy']}"
