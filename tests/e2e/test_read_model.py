"""One read model: `syncdash show RUN --json`, `GET /v1/runs/{id}` of a real daemon and the console's run detail
model agree field for field, for a flow run whose push step has item errors, a dry run and a run resumed after
SIGKILL. The runs are made through the real CLI against a real SQLite store and the demo's sample APIs."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Project, new_project, wait_for_api
from test_api import free_port
from test_flows import TENANTS, config
from test_resume import batches_committed, kill, write_big

from syncdash.config import load_config
from syncdash.store.db import Store
from syncdash.store.queries import run_detail_json
from syncdash.tui import data
from syncdash_demo.sampleflow import RegistrationApi, ScoringApi, demo_participants

# its module-scoped fixture is built once and its tests read what earlier ones left: one xdist worker
pytestmark = pytest.mark.xdist_group("test_read_model")

TOKEN = "tok-read-model-3b9e"
EXTRA_SOURCES = """\
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
    batch_size: 2000
    fields: {id: {type: int}, name: name, amount: {type: float}}
"""


class Runs:
    def __init__(self, project: Project, flow: int, dry: int, resumed: int, url: str) -> None:
        self.project, self.flow, self.dry, self.resumed, self.url = project, flow, dry, resumed, url


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    project = new_project(tmp_path_factory.mktemp("read_model"))
    reg = RegistrationApi({t: (r, e) for t, (r, _s, e) in TENANTS.items()},
                          {t: demo_participants(t, e, 7) for t, (_r, _s, e) in TENANTS.items()}, lifetime=120)
    score = ScoringApi({t: (s, e) for t, (_r, s, e) in TENANTS.items()}, lifetime=120)
    with reg, score:
        config(project, reg, score)
        path = project.root / "syncdash.yaml"
        # no schedule: the daemon started below must not add runs (or resolve errors) while the views are compared
        text = path.read_text().replace("    schedule: every 30m\n", "").replace("flows:\n", EXTRA_SOURCES + "flows:\n")
        path.write_text(text)
        project.write("data/small.csv", "id,plays\n1,10\n2,x\n3,30\n")

        score.reject_bibs = {103}  # acme's 4th participant: the push step records an item error
        [flow] = project.run_json("race_day", expect=3)
        [dry] = project.run_json("small", "--dry-run", expect=3)

        write_big(project, 1)
        proc = project.popen("run", "big", "--json")
        resumed_id, _ = batches_committed(project, proc, 2)
        kill(proc)
        [resumed] = project.run_json("big", expect=0)
        assert (resumed["id"], resumed["resumes"]) == (resumed_id, 1)

        port = free_port()
        daemon = project.popen("daemon", "--http", f"127.0.0.1:{port}", "--log-format", "text",
                               env={"SYNCDASH_API_TOKEN": TOKEN})
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_api(daemon, url)
            yield Runs(project, flow["id"], dry["id"], resumed_id, url)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.communicate()


def three_views(runs: Runs, run_id: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, Any]:
    p = runs.project
    proc = p.cli("show", str(run_id), "--json")
    assert proc.returncode == 0, proc.stderr
    cli = json.loads(proc.stdout)
    r = httpx.get(f"{runs.url}/v1/runs/{run_id}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 200, r.text
    for k, v in p.env.items():  # the config's ${VAR}s, as the CLI and the daemon saw them
        monkeypatch.setenv(k, v)
    cfg = load_config(str(p.root / "syncdash.yaml"))
    detail = data.run_detail(Store(cfg.database), run_id)  # what RunDetailScreen.load() reads
    assert detail is not None
    console = json.loads(json.dumps(run_detail_json(detail, cfg), ensure_ascii=False, default=str))
    return cli, r.json(), console


def assert_same(cli: dict[str, Any], api: dict[str, Any], console: dict[str, Any]) -> None:
    assert sorted(cli) == sorted(api) == sorted(console)
    for key in cli:
        assert cli[key] == api[key] == console[key], key


def test_a_flow_run_with_step_errors_is_the_same_everywhere(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    cli, api, console = three_views(runs, runs.flow, monkeypatch)
    assert_same(cli, api, console)
    assert (cli["kind"], cli["status"]) == ("flow", "partial")
    assert [s["source"] for s in cli["steps"]] == ["registrations", "participants_to_scoring", "results"]
    push_step = cli["steps"][1]["id"]
    # the flow's errors are its steps': the rejected participant is listed on the flow run
    assert cli["errors"]["total"] == cli["error_count"] == 1 and cli["errors"]["unresolved"] == 1
    [err] = cli["errors"]["first"]
    assert err["run_id"] == push_step and err["source"] == "participants_to_scoring"
    assert [p["name"] for p in cli["phases"]] == ["registrations", "participants_to_scoring", "results"]
    assert cli["phases"][1]["counts"]["failed"] == 1  # phases carry their counts
    assert cli["changes"] == cli["changes_recorded"] and cli["changes"]["insert"] > 0
    assert cli["rerun"].endswith("run race_day")


def test_a_dry_run_is_the_same_everywhere_and_never_the_last_run(runs: Runs,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cli, api, console = three_views(runs, runs.dry, monkeypatch)
    assert_same(cli, api, console)
    assert cli["dry_run"] is True and cli["rerun"].endswith("run small --dry-run")
    assert cli["errors"]["total"] == 1 and cli["errors"]["first"][0]["column"] == "plays"
    # the source's only run is a dry run: status, the API and the console all say it has not run
    p = runs.project
    [row] = [r for r in json.loads(p.cli("status", "--json").stdout) if r["source"] == "small"]
    assert (row["last_run"], row["status"], row["health"]) == (None, "never run", "never run")
    api = httpx.get(f"{runs.url}/v1/sources/small", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
    assert (api["state"]["last_run"], api["state"]["status"], api["state"]["health"]) == (None, "never run",
                                                                                          "never run")
    cfg = load_config(str(p.root / "syncdash.yaml"))
    [view] = [v for v in data.snapshot(Store(cfg.database), cfg).sources if v.config.name == "small"]
    assert (view.last_run, view.health) == (None, "never run")


def test_a_resumed_run_is_the_same_everywhere(runs: Runs, monkeypatch: pytest.MonkeyPatch) -> None:
    cli, api, console = three_views(runs, runs.resumed, monkeypatch)
    assert_same(cli, api, console)
    assert (cli["status"], cli["resumes"]) == ("succeeded", 1)
    assert isinstance(cli["checkpoint"], dict)
    assert cli["counts"]["inserted"] == 120_000 and cli["changes"]["insert"] > 0
    assert len(cli["change_rows"]["insert"]) == 20  # the first of each kind; `changes` counts them all
