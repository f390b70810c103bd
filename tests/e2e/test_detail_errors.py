"""A detail fetch (REST for_each) that still fails after its retries is an item error: the other details load,
the run ends partial (exit 3), and `retry RUN` after the server heals fetches only that detail and resolves the
error as fixed. A list page that fails after its retries still fails the run (exit 1). Real CLI, real local
HTTP server (the demo's sample API), real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import Project

from syncdash_demo.sampleapi import SampleApi


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(n=40, lifetime=300) as server:
        yield server


def league(project: Project, api: SampleApi) -> None:
    project.config(f"""\
        sources:
          - name: league
            kind: rest
            base_url: {api.url}/v1
            concurrency: 3
            retry: {{attempts: 2, initial: 0.01s}}
            streams:
              - name: players
                path: /page/players
                records: data.items
                params: {{limit: 100}}
                pagination: {{type: page, size_param: null, total_path: meta.total}}
                table: players
                primary_key: id
                fields: {{id: {{type: int}}, name: profile.display_name}}
              - name: details
                path: /players/{{id}}
                for_each: players
                table: player_details
                primary_key: id
                fields:
                  id: {{from: _parent.id, type: int}}
                  games_played: {{type: int}}
        """)


def test_one_persistent_500_among_40_details_is_one_item_error_and_a_retry_fixes_it(project: Project,
                                                                                  api: SampleApi) -> None:
    league(project, api)
    api.fail("/v1/players/17?", 500, times=-1)
    [run] = project.run_json("league", expect=3)
    assert run["status"] == "partial" and run["counts"]["failed"] == 1
    assert project.query("SELECT COUNT(*) FROM player_details") == [(39,)]
    [err] = json.loads(project.cli("errors", "--json").stdout)
    assert (err["phase"], err["retryable"], err["key"]) == ("details", True, [17])
    assert "HTTP 500" in err["message"] and "/players/17" in err["message"]
    assert api.count("/v1/players/17") >= 2  # the client retried it before giving up

    api.clear_faults()
    before = api.count("/v1/players/")
    proc = project.cli("retry", str(run["id"]), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [retry] = json.loads(proc.stdout)
    assert retry["counts"]["inserted"] == 1 and retry["counts"]["failed"] == 0
    assert api.count("/v1/players/") - before == 1  # exactly the failed detail, not the other 39
    assert project.query("SELECT COUNT(*) FROM player_details") == [(40,)]
    assert json.loads(project.cli("errors", "--json").stdout) == []
    [done] = json.loads(project.cli("errors", "--all", "--json").stdout)
    assert (done["resolution"], done["id"]) == ("fixed", err["id"])


def test_a_list_page_that_keeps_failing_still_fails_the_run(project: Project, api: SampleApi) -> None:
    league(project, api)
    api.fail("/v1/page/players", 500, times=-1)
    proc = project.cli("run", "league", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)[0]["status"] == "failed"
