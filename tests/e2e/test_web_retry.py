"""Retry for web sources, with the real Chromium against the JavaScript-rendered sample site: `retry RUN`
re-opens exactly the detail page that failed (not the other 44), loads its row and resolves the error as
fixed. Today's alternative was a run failing with "retrying single rows of a web source is not supported"."""

from __future__ import annotations

import json

from conftest import Project
from test_web import N, no_orphaned_chromium, site, web_source  # noqa: F401  (fixtures)

from syncdash_demo.samplesite import SampleSite


def test_retry_reopens_only_the_failed_detail_page_and_resolves_it(project: Project, site: SampleSite) -> None:  # noqa: F811
    site.never("/players/7")
    project.config(web_source(site, timeout="3s", attempts=1))
    [run] = project.run_json("players", expect=3)
    assert run["counts"]["inserted"] == N - 1 and run["counts"]["failed"] == 1
    [err] = json.loads(project.cli("errors", "--json").stdout)
    assert err["retryable"] is True

    site.clear_faults()
    proc = project.cli("retry", str(run["id"]), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [retry] = json.loads(proc.stdout)
    assert (retry["mode"], retry["status"]) == ("retry", "succeeded")
    assert retry["counts"]["inserted"] == 1 and retry["counts"]["failed"] == 0
    assert project.query("SELECT COUNT(*), COUNT(games) FROM players") == [(N, N)]
    assert json.loads(project.cli("errors", "--json").stdout) == []
    [done] = json.loads(project.cli("errors", "--all", "--json").stdout)
    assert (done["id"], done["resolution"]) == (err["id"], "fixed")
