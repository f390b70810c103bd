"""`r` on the console's errors screen retries exactly the selected item, for a push error (a record the
scoring system rejected), a REST detail error (a for_each detail that kept answering 500) and a web detail
page (real Chromium); on an error that cannot be retried alone it says why and starts nothing. Real Textual
app through Pilot, real store, real local HTTP servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Project
from test_console import make_app, run, until
from test_detail_errors import api, league  # noqa: F401  (fixture)
from test_flows import apis  # noqa: F401  (fixture)
from test_flows import config as flow_config
from test_web import no_orphaned_chromium, web_source  # noqa: F401  (fixture)

from syncdash.config import load_config
from syncdash.engine import Engine, RunOptions
from syncdash.store.db import Store
from syncdash_demo.sampleapi import SampleApi
from syncdash_demo.sampleflow import RegistrationApi, ScoringApi
from syncdash_demo.samplesite import SampleSite


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


@pytest.fixture
def small_site() -> Iterator[SampleSite]:
    """The JavaScript-rendered sample site with one list page of 6 players: Chromium's start dominates."""
    with SampleSite(6, delay=0.01, lifetime=120) as s:
        yield s


def test_r_on_a_web_detail_error_reopens_that_page(project: Project, small_site: SampleSite) -> None:
    site = small_site
    site.fail("/players/4", 500, times=-1)  # the detail page of player 4 answers 500 until it is fixed
    project.config(web_source(site, attempts=1))
    [res] = project.run_json("players", expect=3)
    assert (res["counts"]["inserted"], res["counts"]["failed"]) == (5, 1)
    site.clear_faults()
    before = site.hits.get("/players/4", 0)
    run(lambda: retry_the_one_error(project, "HTTP 500"))
    assert site.hits.get("/players/4", 0) - before == 1, "only the failed detail page is opened again"
    assert project.query("SELECT COUNT(*), COUNT(games) FROM players") == [(6, 6)]


# ---- an error `r` cannot retry: a notification says why, and no run starts ------------------------------


NOT_RETRIED = """sources:
  - name: small
    kind: csv
    path: data/small.csv
    table: small
    primary_key: [id]
    fields: {id: {type: int}, plays: {type: int}}
  - name: events
    kind: jsonl_whole
    path: data/events.jsonl
    table: events
    primary_key: id
    fields: {id: {type: int}, title: title}
"""


def toasts(app: Any) -> str:
    return " ".join(str(t.render()) for t in app.screen.query("Toast"))


def sync_both_partially(project: Project, small_csv: str) -> None:
    """NOT_RETRIED's project, `small` fed `small_csv` and `events` a bad line (retryable, but not alone), both
    run once in this process (the CLI in a subprocess would not know the test-only kind): each ends partial."""
    path = project.config(NOT_RETRIED)
    project.write("data/small.csv", small_csv)
    project.write("data/events.jsonl", '{"id": 1, "title": "a"}\n{not json\n')
    cfg = load_config(path)
    store = Store(cfg.database)
    try:
        for name in ("small", "events"):
            assert Engine(store, cfg).run(name, RunOptions(trigger="test")).status == "partial"
    finally:
        store.engine.dispose()


def test_r_on_an_error_that_cannot_be_retried_says_why_and_starts_nothing(project: Project, whole_kind: None) -> None:
    sync_both_partially(project, "id,plays\n1,10\n1,11\n3,30\n")  # a duplicate key: never retryable
    assert project.query("SELECT source, retryable FROM syncdash_item_errors ORDER BY source") == [
        ("events", 1), ("small", 0)]
    runs = project.query("SELECT COUNT(*) FROM syncdash_runs")

    async def scenario() -> None:
        app = make_app(project, host=True)
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await until(lambda: app.snapshot is not None, pilot)
            await pilot.press("e")
            await until(lambda: app.screen.query("#errors") and app.screen.query_one("#errors").row_count == 2,
                        pilot, what="both errors are listed")
            said = []
            for _ in range(2):  # the list is ordered by source: events, then small
                await pilot.press("r")
                said.append(await until(lambda: toasts(app) if "Not retried" in toasts(app) else None, pilot,
                                        what="a notification says why"))
                app.clear_notifications()
                await pilot.pause(0.5)  # a retry would be queued (and, hosted, started) by now
                assert project.query("SELECT COUNT(*) FROM syncdash_runs") == runs, "nothing started"
                await pilot.press("down")
            assert "jsonl_whole source cannot re-read one item alone" in said[0] and "run events again" in said[0]
            assert "small" in said[1] and "not retryable" in said[1] and "share this key" in said[1]
            await pilot.press("q")

    run(scenario)
