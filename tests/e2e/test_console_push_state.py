"""The console's push dry run, state actions and `R` on a kind that cannot retry, through Pilot on the real app:

- `d` on a push source lists the requests it would send per tenant (method, URL, masked headers, body, the
  first 20 of each and the total), sends nothing to the real scoring API on 127.0.0.1, and no ${VAR} value is
  drawn anywhere on the screen; `a` then sends them, with the real tokens.
- `x` (confirmed) and `C` on a source's screen change the stored state, read back as `syncdash state` reads it
  (store.state.read_state);
  a bad cursor is said in the modal and changes nothing.
- `R` on a kind that can only re-read its whole input says why and queues nothing (and on a kind that can, it
  queues the retry: the check can fail).
"""

from __future__ import annotations

import html
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Project
from test_console import make_app, run, until
from test_console_retry import NOT_RETRIED, sync_both_partially, toasts
from test_rest import api, config, rest_source  # noqa: F401  (fixture)

from syncdash.config import load_config
from syncdash.engine import Engine, RunOptions
from syncdash.store import state
from syncdash.store.db import Store
from syncdash_demo.sampleapi import SampleApi
from syncdash_demo.sampleflow import ScoringApi

# tenant -> (scoring token, event); the tokens and the client reference come from ${VAR}s: secrets
TENANTS = {"acme": ("acme-score-7Qx2Lp", "101"), "globex": ("globex-score-9Vt4Mn", "202")}
CLIENT_REF = "client-ref-K3s8Wd"
SECRETS = (*(t for t, _e in TENANTS.values()), CLIENT_REF)
PEOPLE = {"acme": 23, "globex": 2}  # acme has more than the 20 requests a dry run lists


@pytest.fixture
def scoring() -> Iterator[ScoringApi]:
    with ScoringApi(dict(TENANTS), lifetime=120) as s:
        yield s


def push_project(project: Project, score: ScoringApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """A push, per tenant, of a participants table in the store's database: one request per row."""
    env = {f"{t.upper()}_SCORE": tok for t, (tok, _e) in TENANTS.items()} | {"CLIENT_REF": CLIENT_REF}
    for k, v in env.items():  # for the console, which loads the config in this process
        monkeypatch.setenv(k, v)
    project.env.update(env)
    tenants = "".join(f"  {t}: {{score_token: \"${{{t.upper()}_SCORE}}\", event: \"{e}\"}}\n"
                      for t, (_tok, e) in TENANTS.items())
    project.config(f"""\
tenants:
{tenants}sources:
  - name: to_scoring
    kind: push
    for_each_tenant: true
    from_table: participants
    key: [id]
    url: {score.url}/v1/events/{{event_id}}/participants
    batch: 1
    body: {{externalId: id, bib: bib, firstName: first_name}}
    auth: {{type: bearer, token: "{{tenant.score_token}}"}}
    headers: {{X-Client: "${{CLIENT_REF}}"}}
""")
    con = sqlite3.connect(project.db)
    con.execute("CREATE TABLE participants (tenant TEXT, id INTEGER, event_id TEXT, first_name TEXT, bib INTEGER, "
                "PRIMARY KEY (tenant, id))")
    con.executemany("INSERT INTO participants VALUES (?, ?, ?, ?, ?)",
                    [(t, i, TENANTS[t][1], f"Runner{i}", 100 + i) for t, n in PEOPLE.items()
                     for i in range(1, n + 1)])
    con.commit()
    con.close()


def screen_text(app: Any) -> str:
    """Everything drawn on the terminal now: the text of the screen's SVG export (its segments, in order)."""
    return html.unescape(re.sub(r"<[^>]+>", "", app.export_screenshot())).replace("\xa0", " ")


def test_d_on_a_push_lists_the_requests_masked_and_a_sends_them(project: Project, scoring: ScoringApi,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    push_project(project, scoring, monkeypatch)

    async def scenario() -> None:
        app = make_app(project, host=True)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None, pilot)
            await pilot.press("d")
            plan = await until(lambda: app.screen.query("#push-requests")
                               and "Requests" in (t := str(app.screen.query_one("#push-requests").content)) and t,
                               pilot, timeout=30, what="the push's requests are listed")
            summary = str(app.screen.query_one("#plan-summary").content)
            assert "would send 25 new, would update 0, would delete 0" in summary and "inserted" not in summary
            assert "Requests that would be sent for tenant acme: 23 (first 20 shown)" in plan
            assert "Requests that would be sent for tenant globex: 2 (first 2 shown)" in plan
            assert plan.count(" POST ") == 22
            assert f"POST {scoring.url}/v1/events/101/participants" in plan
            assert f"POST {scoring.url}/v1/events/202/participants" in plan
            assert plan.count("Authorization: ***") == 22 and plan.count("X-Client: ***") == 22
            assert plan.count("Idempotency-Key: ") == 22 and "Content-Type: application/json" in plan
            assert '{"externalId": 1, "bib": 101, "firstName": "Runner1"}' in plan
            assert "key=['acme', 20]" in plan and "key=['acme', 21]" not in plan, "only the first 20 of acme"
            drawn = screen_text(app)
            assert "tenant acme: 23" in drawn and "Authorization: ***" in drawn
            for secret in SECRETS:
                assert secret not in plan and secret not in summary and secret not in drawn, secret
            assert not [r for r in scoring.requests if r.path.startswith("/v1/events")], "a dry run sends nothing"

            await pilot.press("a")  # the hosted worker sends them, with the real tokens
            await until(lambda: sum(len(v) for v in scoring.received.values()) == 25, pilot, timeout=60,
                        what="the 25 records are received")
            await pilot.press("q")

    run(scenario)
    assert {k: len(v) for k, v in scoring.received.items()} == {("acme", "101"): 23, ("globex", "202"): 2}


# ---- x and C on the source screen --------------------------------------------------------------------------

def stored_cursor(project: Project, name: str) -> dict[str, Any]:
    """The cursor as `syncdash state NAME` reads it (store.state.read_state), from a store opened afresh."""
    store = Store(load_config(project.root / "syncdash.yaml").database)
    try:
        return state.read_state(store, name).cursor
    finally:
        store.engine.dispose()


def test_x_resets_and_C_sets_the_cursor_in_the_store(project: Project, api: SampleApi) -> None:  # noqa: F811
    # an incremental REST source whose cursor is the newest id: a number, so a word is a bad value
    config(project, rest_source(api, extra="    incremental: {cursor_field: id, param: since, initial: 0}\n"))
    cfg = load_config(project.root / "syncdash.yaml")
    store = Store(cfg.database)
    try:
        assert Engine(store, cfg).run("players", RunOptions(trigger="test")).status == "succeeded"
    finally:
        store.engine.dispose()
    assert stored_cursor(project, "players") == {"load": 250}

    async def scenario() -> None:
        app = make_app(project, host=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None, pilot)
            await pilot.press("enter")

            def shown() -> str:
                return str(app.screen.query_one("#source-state").content) if app.screen.query("#source-state") \
                    else ""

            await until(lambda: "cursor (load): 250" in shown(), pilot, what="the stored cursor is shown")
            assert "checkpoint: none" in shown() and "breakers: none" in shown()

            await pilot.press("C")
            await until(lambda: app.screen.query("#cursor-value"), pilot, what="the cursor modal")
            value = app.screen.query_one("#cursor-value")
            assert value.value == "250"
            value.value = "abc"
            await pilot.press("enter")
            err = await until(lambda: str(app.screen.query_one("#state-modal-error").render()).strip(), pilot,
                              what="the bad value is said")
            assert "not a number like the stored one (250)" in err
            assert stored_cursor(project, "players") == {"load": 250}, "a bad value changes nothing"
            value.value = ""
            await pilot.press("enter")
            await until(lambda: "Type a value" in str(app.screen.query_one("#state-modal-error").render()), pilot,
                        what="an empty value is said")
            value.value = "120"
            await pilot.press("enter")
            await until(lambda: "cursor (load): 120" in shown(), pilot, what="the screen shows the new cursor")
            assert stored_cursor(project, "players") == {"load": 120}, "kept a number, like the stored one"

            await pilot.press("x")
            await until(lambda: app.screen.query("#state-modal-text"), pilot, what="the confirmation")
            assert "starts from initial '0'" in str(app.screen.query_one("#state-modal-text").render())
            await pilot.press("n")  # no: nothing changes
            await pilot.pause(0.3)
            assert stored_cursor(project, "players") == {"load": 120}
            await pilot.press("x")
            await until(lambda: app.screen.query("#state-modal-text"), pilot, what="the confirmation")
            await pilot.press("y")
            await until(lambda: "cursor: none (the next incremental run starts from initial '0')" in shown(), pilot,
                        what="the screen shows the reset")
            await pilot.press("q")

    run(scenario)
    assert stored_cursor(project, "players") == {}


# ---- R on a kind that cannot retry one item ---------------------------------------------------------------

def test_R_on_a_kind_that_cannot_retry_items_says_why_and_queues_nothing(project: Project,
                                                                          whole_kind: None) -> None:
    sync_both_partially(project, "id,plays\n1,10\n2,x\n3,30\n")  # a bad number: a csv retries that row
    runs = project.query("SELECT COUNT(*) FROM syncdash_runs")[0][0]

    async def scenario() -> None:
        app = make_app(project, host=False)  # nothing runs: a retry would stay queued, to be counted
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await until(lambda: app.snapshot is not None and app.screen.query_one("#sources").row_count == 2, pilot)
            await pilot.press("down", "enter")  # the second source: events (jsonl_whole)
            await until(lambda: getattr(app.screen, "source", None) == "events", pilot, what="the events screen")
            await pilot.press("R")
            said = await until(lambda: toasts(app) if "Not retried" in toasts(app) else None, pilot,
                               what="a notification says why")
            assert "jsonl_whole source cannot re-read its failed items alone" in said and "run events again" in said
            await pilot.pause(0.5)  # a retry would be queued by now
            assert project.query("SELECT COUNT(*) FROM syncdash_runs")[0][0] == runs, "nothing queued"
            app.clear_notifications()
            await pilot.press("escape", "up", "R")  # the dashboard's R on small (csv): its retry is queued
            await until(lambda: project.query("SELECT COUNT(*) FROM syncdash_runs WHERE trigger='retry' "
                                              "AND source='small'")[0][0] == 1, pilot, what="small's retry queued")
            assert "Not retried" not in toasts(app)
            # the errors screen's R (every retryable error): small's row is retried again, events is named
            app.clear_notifications()
            await pilot.press("e")
            await until(lambda: type(app.screen).__name__ == "ErrorsScreen" and app.screen.errors, pilot,
                        what="the errors screen")
            await pilot.press("R")
            said = await until(lambda: toasts(app) if "Not retried" in toasts(app) else None, pilot,
                               what="R names the source it cannot retry")
            assert "jsonl_whole source cannot re-read one item alone" in said, said
            await until(lambda: project.query("SELECT COUNT(*) FROM syncdash_runs WHERE trigger='retry' "
                                              "AND source='small'")[0][0] == 2, pilot, what="small retried again")
            assert project.query("SELECT COUNT(*) FROM syncdash_runs WHERE source='events'")[0][0] == 1
            await pilot.press("q")

    run(scenario)



def test_a_retry_of_a_kind_that_cannot_retry_items_is_refused_for_the_cli_and_the_api_too(
        project: Project, whole_kind: None) -> None:
    """`syncdash retry RUN` and POST /v1/runs/{id}/retry go through store.commands.retry_errors, which asks
    the kind's capability the console's keys ask: it refuses with the reason and queues nothing."""
    from syncdash.errors import UsageError
    from syncdash.store import commands as control

    path = project.config(NOT_RETRIED)
    project.write("data/events.jsonl", '{"id": 1, "title": "a"}\n{not json\n')
    project.write("data/small.csv", "id,plays\n1,10\n")
    cfg = load_config(path)
    store = Store(cfg.database)
    try:
        res = Engine(store, cfg).run("events", RunOptions(trigger="test"))
        assert res.status == "partial"
        with pytest.raises(UsageError, match="jsonl_whole source cannot re-read its failed items alone"):
            control.retry_errors(store, cfg, res.run_id)
    finally:
        store.engine.dispose()
    assert project.query("SELECT COUNT(*) FROM syncdash_runs")[0][0] == 1, "nothing queued"
