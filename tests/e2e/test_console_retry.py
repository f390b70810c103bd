"""`r` on the console's errors screen retries exactly the selected item, for a push error (a record the
scoring system rejected) and for a REST detail error (a for_each detail that kept answering 500). Real
Textual app through Pilot, real store, real local HTTP servers."""

from __future__ import annotations

import os

import pytest
from conftest import Project
from test_console import make_app, run, until
from test_detail_errors import api, league  # noqa: F401  (fixture)
from test_flows import apis  # noqa: F401  (fixture)
from test_flows import config as flow_config

from syncdash_demo.sampleapi import SampleApi
from syncdash_demo.sampleflow import RegistrationApi, ScoringApi


async def retry_the_one_error(project: Project, expect_in_detail: str) -> None:
    app = make_app(project, host=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: app.snapshot is not None, pilot)
        await pilot.press("e")
        await until(lambda: app.screen.query("#errors") and app.screen.query_one("#errors").row_count == 1,
                    pilot, what="the error is listed")
        assert expect_in_detail in str(app.screen.query_one("#error-detail").render())
        await pilot.press("r")
        await until(lambda: project.query("SELECT resolution FROM syncdash_item_errors") == [("fixed",)], pilot,
                    timeout=60, what="the retry fixed the error")
        await until(lambda: app.screen.query_one("#errors").row_count == 0, pilot, what="the list empties")
        await pilot.press("q")


def test_r_on_a_push_error_resends_that_record(project: Project, apis: tuple[RegistrationApi, ScoringApi],  # noqa: F811
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    reg, score = apis
    flow_config(project, reg, score)
    for k, v in project.env.items():  # the tenants' ${TOKEN}s, for the console loading the config in-process
        if k not in os.environ:
            monkeypatch.setenv(k, v)
    score.reject_bibs = {103}
    project.run_json("race_day", expect=3)
    score.reject_bibs.clear()
    sent = len(score.received[("acme", "101")])
    run(lambda: retry_the_one_error(project, "rejected"))
    assert len(score.received[("acme", "101")]) == sent + 1


def test_r_on_a_rest_detail_error_refetches_that_detail(project: Project, api: SampleApi) -> None:  # noqa: F811
    league(project, api)
    api.fail("/v1/players/17?", 500, times=-1)
    project.run_json("league", expect=3)
    api.clear_faults()
    before = api.count("/v1/players/")
    run(lambda: retry_the_one_error(project, "HTTP 500"))
    assert api.count("/v1/players/") - before == 1
    assert project.query("SELECT COUNT(*) FROM player_details") == [(40,)]
