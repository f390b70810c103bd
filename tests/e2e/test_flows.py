"""Push targets, flows and tenants end to end: a registration API and a scoring API on 127.0.0.1 (started by the
tests), a flow that pulls participants for two tenants, pushes them in batches to the scoring system and pulls
the results back, driven through the real CLI against a real SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Project

from syncdash_demo.sampleflow import RegistrationApi, ScoringApi, demo_participants

TENANTS = {"acme": ("reg-acme-token", "score-acme-token", "101"), "globex": ("reg-globex-token", "score-globex-token",
                                                                          "202")}
N = 7  # participants per tenant


@pytest.fixture
def apis() -> Iterator[tuple[RegistrationApi, ScoringApi]]:
    reg = RegistrationApi({t: (r, e) for t, (r, _s, e) in TENANTS.items()},
                          {t: demo_participants(t, e, N) for t, (_r, _s, e) in TENANTS.items()}, lifetime=120)
    score = ScoringApi({t: (s, e) for t, (_r, s, e) in TENANTS.items()}, lifetime=120)
    with reg, score:
        yield reg, score


def config(project: Project, reg: RegistrationApi, score: ScoringApi, on_error: str = "stop") -> None:
    env = {f"{t.upper()}_REG": r for t, (r, _s, _e) in TENANTS.items()}
    env.update({f"{t.upper()}_SCORE": s for t, (_r, s, _e) in TENANTS.items()})
    project.env.update(env)
    tenants = "".join(f"  {t}: {{reg_token: \"${{{t.upper()}_REG}}\", score_token: \"${{{t.upper()}_SCORE}}\", "
                      f"event: \"{e}\"}}\n" for t, (_r, _s, e) in TENANTS.items())
    project.config(f"""\
tenants:
{tenants}sources:
  - name: registrations
    kind: rest
    for_each_tenant: true
    url: {reg.url}/v1/events/{{tenant.event}}/participants
    auth: {{type: bearer, token: "{{tenant.reg_token}}"}}
    records: participants
    pagination: {{type: page, size: 3, size_param: per_page, total_path: meta.total}}
    table: participants
    primary_key: [id]
    fields:
      id: {{type: int}}
      event_id: event_id
      first_name: first_name
      last_name: last_name
      bib: {{type: int}}
  - name: participants_to_scoring
    kind: push
    for_each_tenant: true
    from_table: participants
    key: [id]
    url: {score.url}/v1/events/{{event_id}}/participants
    batch: 3
    body: {{externalId: id, bib: bib, firstName: first_name, lastName: last_name}}
    auth: {{type: bearer, token: "{{tenant.score_token}}"}}
    retry: {{attempts: 3, initial: 0.01s, max: 0.05s}}
  - name: results
    kind: rest
    for_each_tenant: true
    url: {score.url}/v1/events/{{tenant.event}}/results
    auth: {{type: bearer, token: "{{tenant.score_token}}"}}
    records: results
    table: results
    primary_key: [external_id]
    fields: {{external_id: {{from: externalId, type: int}}, bib: {{type: int}}, time_s: {{type: int}}, name: name}}
flows:
  - name: race_day
    schedule: every 30m
    steps: [registrations, participants_to_scoring, results]
    on_error: {on_error}
""")


def runs_of(project: Project, flow_run: int) -> dict[str, dict[str, Any]]:
    rows = project.query("SELECT id, source, status, inserted, updated, unchanged, failed FROM syncdash_runs "
                         "WHERE flow_run_id=? ORDER BY id", (flow_run,))
    return {r[1]: {"id": r[0], "status": r[2], "counts": r[3:]} for r in rows}


def posts(score: ScoringApi) -> list[Any]:
    return [r for r in score.requests if r.method == "POST" and r.path.endswith("/participants")]


def test_a_flow_pulls_for_two_tenants_pushes_in_batches_and_pulls_results(
        project: Project, apis: tuple[RegistrationApi, ScoringApi]) -> None:
    reg, score = apis
    config(project, reg, score)
    score.reject_bibs = {103}  # acme's 4th participant: the scoring system refuses it
    score.fail("/v1/events/202/participants", 503, times=1)  # globex's first push request fails once

    [flow] = project.run_json("race_day", expect=3)
    assert (flow["source"], flow["kind"], flow["status"]) == ("race_day", "flow", "partial")
    steps = runs_of(project, flow["id"])
    assert list(steps) == ["registrations", "participants_to_scoring", "results"]
    assert steps["registrations"]["counts"] == (2 * N, 0, 0, 0)
    assert steps["participants_to_scoring"]["status"] == "partial"
    assert steps["participants_to_scoring"]["counts"] == (2 * N - 1, 0, 0, 1)
    assert steps["results"]["counts"] == (2 * N - 1, 0, 0, 0)
    assert flow["counts"]["inserted"] == 3 * (2 * N) - 2 and flow["counts"]["failed"] == 1

    # the flow's phases are its steps, with their counts
    phases = project.query("SELECT name, status, inserted, failed FROM syncdash_run_phases WHERE run_id=? "
                           "ORDER BY seq", (flow["id"],))
    assert phases == [("registrations", "done", 2 * N, 0), ("participants_to_scoring", "done", 2 * N - 1, 1),
                      ("results", "done", 2 * N - 1, 0)]
    # each tenant is its own phase of the step runs, and its rows carry its name in the key
    push_phases = project.query("SELECT name, inserted, failed FROM syncdash_run_phases WHERE run_id=? ORDER BY seq",
                                (steps["participants_to_scoring"]["id"],))
    assert push_phases == [("acme", N - 1, 1), ("acme deletes", 0, 0), ("globex", N, 0), ("globex deletes", 0, 0)]
    assert project.query("SELECT tenant, count(*) FROM participants GROUP BY tenant ORDER BY 1") == [
        ("acme", N), ("globex", N)]
    assert project.query("SELECT tenant, count(*) FROM results GROUP BY tenant ORDER BY 1") == [
        ("acme", N - 1), ("globex", N)]
    assert {k: len(v) for k, v in score.received.items()} == {("acme", "101"): N - 1, ("globex", "202"): N}

    # the rejected record: an item error with the server's message and the body sent
    [(err_id, item, etype, message, payload, retryable)] = project.query(
        "SELECT id, item, error_type, message, payload, retryable FROM syncdash_item_errors")
    assert etype == "rejected" and retryable == 1 and item == "key tenant='acme', id=1003"
    assert "HTTP 422" in message and "bib 103 is not a valid bib number" in message
    assert json.loads(payload) == {"externalId": 1003, "bib": 103, "firstName": "Dara", "lastName": "Ryan"}

    # batches of 3; the rejected batch was split and resent one by one; the 503 was retried with the same key
    acme = [r for r in posts(score) if "/101/" in r.path]
    assert [r.status for r in acme] == [200, 422, 422, 200, 200, 200]  # [1000-1002], [1003-1005] split, [1006]
    globex = [r for r in posts(score) if "/202/" in r.path]
    assert [r.status for r in globex] == [503, 200, 200, 200]
    assert globex[0].headers["idempotency-key"] == globex[1].headers["idempotency-key"]
    assert len({r.headers["idempotency-key"] for r in globex}) == 3
    # credentials: each tenant's token went to its own event only, and none reached the store
    assert all(r.headers["authorization"] == "Bearer score-acme-token" for r in acme)
    raw = project.db.read_bytes() + b"".join(p.read_bytes() for p in project.root.glob("syncdash.db-*"))
    assert not any(tok.encode() in raw for _r, s, _e in TENANTS.values() for tok in (s,)), "a token in the store"

    # the fixture is fixed: retrying the item error sends that record, and resolves the error
    score.reject_bibs.clear()
    retried = project.cli("retry", str(flow["id"]), "--json")  # the flow run: its step with errors is retried
    assert retried.returncode == 0, retried.stderr
    [again] = json.loads(retried.stdout)
    assert again["counts"]["inserted"] == 1 and again["counts"]["failed"] == 0
    assert project.query("SELECT resolution FROM syncdash_item_errors WHERE id=?", (err_id,)) == [("fixed",)]
    assert len(score.received[("acme", "101")]) == N

    # nothing changed: the next flow run pushes nothing
    before = len(posts(score))
    [second] = project.run_json("race_day", expect=0)
    steps2 = runs_of(project, second["id"])
    assert steps2["participants_to_scoring"]["counts"] == (0, 0, 2 * N, 0)
    assert len(posts(score)) == before
    assert steps2["results"]["counts"] == (1, 0, 2 * N - 1, 0)  # the retried participant's result arrived

    # one participant changes upstream: only that one is pushed, as an update
    reg.set_participant("globex", 2004, last_name="Quinlan")
    [third] = project.run_json("race_day", expect=0)
    steps3 = runs_of(project, third["id"])
    assert steps3["registrations"]["counts"] == (0, 1, 2 * N - 1, 0)
    assert steps3["participants_to_scoring"]["counts"] == (0, 1, 2 * N - 1, 0)
    [last] = posts(score)[before:]
    assert json.loads(json.dumps(score.received[("globex", "202")]["2004"]))["lastName"] == "Quinlan"
    assert last.path == "/v1/events/202/participants"


def test_a_failed_step_stops_the_flow_or_lets_it_continue(project: Project,
                                                          apis: tuple[RegistrationApi, ScoringApi]) -> None:
    reg, score = apis
    config(project, reg, score)
    score.fail("/v1/events/", 500, times=-1)  # the scoring system is down
    [flow] = project.run_json("race_day", expect=1)
    assert flow["status"] == "failed" and "step participants_to_scoring failed" in flow["error"]
    assert list(runs_of(project, flow["id"])) == ["registrations", "participants_to_scoring"]
    assert project.query("SELECT name, status FROM syncdash_run_phases WHERE run_id=? ORDER BY seq",
                         (flow["id"],)) == [("registrations", "done"), ("participants_to_scoring", "failed"),
                                            ("results", "skipped")]
    config(project, reg, score, on_error="continue")
    [cont] = project.run_json("race_day", expect=3)
    assert cont["status"] == "partial"
    assert [s["status"] for s in runs_of(project, cont["id"]).values()] == ["succeeded", "failed", "failed"]
    assert any("step results failed" in w for w in cont["warnings"])


def test_push_dry_run_shows_the_requests_and_sends_nothing(project: Project,
                                                            apis: tuple[RegistrationApi, ScoringApi]) -> None:
    reg, score = apis
    config(project, reg, score)
    project.run_json("registrations", expect=0)
    [dry] = project.run_json("participants_to_scoring", "--dry-run", expect=0)
    assert dry["counts"]["inserted"] == 2 * N and posts(score) == []
    first = dry["sample"][0]
    assert first["request"]["method"] == "POST" and first["request"]["url"].endswith("/v1/events/101/participants")
    assert first["after"][0] == {"externalId": 1000, "bib": 100, "firstName": "Aoife", "lastName": "Byrne"}
    assert "score-acme-token" not in json.dumps(dry)
    assert project.query("SELECT count(*) FROM syncdash_pushed") == [(0,)]


def test_pushed_rows_that_disappear_are_sent_as_deletes(project: Project,
                                                         apis: tuple[RegistrationApi, ScoringApi]) -> None:
    reg, score = apis
    config(project, reg, score)
    text = (project.root / "syncdash.yaml").read_text().replace(
        "    retry: {attempts: 3", "    deletes: send\n    delete: {url: \"" + score.url +
        "/v1/events/{event_id}/participants/{id}\"}\n    retry: {attempts: 3")
    (project.root / "syncdash.yaml").write_text(text)
    project.run_json("race_day", expect=0)
    with reg.state_lock:
        reg.participants["acme"] = [p for p in reg.participants["acme"] if p["id"] != 1002]
    [flow] = project.run_json("race_day", expect=0)
    push = runs_of(project, flow["id"])["participants_to_scoring"]
    assert push["counts"] == (0, 0, 2 * N - 1, 0)
    assert project.query("SELECT deleted FROM syncdash_runs WHERE id=?", (push["id"],)) == [(1,)]
    deletes = [r for r in score.requests if r.method == "DELETE"]
    assert [(r.path, r.status) for r in deletes] == [("/v1/events/101/participants/1002", 204)]
    assert "1002" not in score.received[("acme", "101")]
    assert project.query("SELECT count(*) FROM syncdash_pushed WHERE key = '[\"acme\",1002]'") == [(0,)]


@pytest.mark.parametrize(("snippet", "line", "message"), [
    ("flows:\n  - name: f\n    steps: [nope]\n", 11, "flows.0.steps.0: step 'nope' is not a source of this file"),
    ("flows:\n  - name: items\n    steps: [items]\n", 10, "flows.0.name: duplicate name 'items'"),
    ("flows:\n  - name: f\n    steps: [items, items]\n", 11, "flows.0.steps.1: step 'items' is listed twice"),
    ("tenants: {a: {token: x}}\nsources:\n  - name: p\n    kind: push\n    for_each_tenant: true\n    key: id\n"
     "    url: http://h/{tenant.event}\n    body: {id: id}\n    from_table: t\n", 8,
     "sources.0.url: {tenant.event}: tenant 'a' has no 'event'"),
    ("sources:\n  - name: p\n    kind: push\n    key: id\n    url: http://h/x\n    body: {id: id}\n", 3,
     "sources.0.from_table: give from_table or query (one of them)"),
    ("sources:\n  - name: p\n    kind: push\n    for_each_tenant: true\n    key: id\n    url: http://h/x\n"
     "    body: {id: id}\n    from_table: t\n", 5,
     "sources.0.for_each_tenant: for_each_tenant needs a top-level `tenants:` mapping"),
])
def test_flow_push_and_tenant_config_errors_name_the_line(project: Project, snippet: str, line: int,
                                                          message: str) -> None:
    base = ("sources:\n  - name: items\n    kind: csv\n    path: items.csv\n    table: items\n    primary_key: [id]\n"
            "    fields: {id: {type: int}}\n")
    body = snippet if snippet.startswith(("sources:", "tenants:")) else base + snippet
    path = project.config(body)
    proc = project.cli("validate")
    assert proc.returncode == 2, proc.stdout
    assert f"{path}:{line}: {message}" in proc.stderr, proc.stderr


def test_a_queued_flow_runs_in_the_daemon_like_a_source(project: Project,
                                                        apis: tuple[RegistrationApi, ScoringApi]) -> None:
    reg, score = apis
    config(project, reg, score)
    assert project.cli("pause", "race_day").returncode == 0
    queued = project.cli("run", "race_day", "--queue", "--json")
    [item] = json.loads(queued.stdout)
    done = project.cli("daemon", "--once")
    assert done.returncode == 0, done.stderr
    # a manual run is not held back by the pause (only schedule fires are); its steps run as flow-triggered runs
    assert project.query("SELECT status, kind FROM syncdash_runs WHERE id=?", (item["run_id"],)) == [
        ("succeeded", "flow")]
    assert [s["status"] for s in runs_of(project, item["run_id"]).values()] == ["succeeded"] * 3
    status = {s["source"]: s for s in json.loads(project.cli("status", "--json").stdout)}
    assert status["race_day"]["health"] == "paused" and status["race_day"]["kind"] == "flow"


def test_push_dry_run_lists_the_requests_per_tenant_with_secrets_masked(
        project: Project, apis: tuple[RegistrationApi, ScoringApi]) -> None:
    """`run PUSH --dry-run` (human output): per tenant, the total and the first requests with method, URL,
    headers (the bearer token masked) and bodies; counts say what would be sent, not "inserted"."""
    reg, score = apis
    config(project, reg, score)
    project.run_json("registrations", expect=0)
    proc = project.cli("run", "participants_to_scoring", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"would send {2 * N} new, would update 0, would delete 0" in out and "inserted" not in out
    per_tenant = -(-N // 3)  # batches of 3
    for tenant, (_, token, event) in TENANTS.items():
        assert f"requests that would be sent for tenant {tenant}: {per_tenant} (first {per_tenant} shown)" in out
        assert f"POST {score.url}/v1/events/{event}/participants" in out
        assert token not in out + proc.stderr
    assert "Authorization: ***" in out and "Content-Type: application/json" in out
    assert '"firstName": "Aoife"' in out
    assert posts(score) == []


def test_each_step_bar_counts_its_rows_through_tenants_and_phases(
        project: Project, apis: tuple[RegistrationApi, ScoringApi], monkeypatch: pytest.MonkeyPatch) -> None:
    """A step's run has a phase per tenant (and its deletes), each restarting its count in records or rows; the
    flow's bar for the step counts the step's rows steadily across them all (issue 17)."""
    from test_console_progress import assert_steady_rows, flow_step_progress

    reg, score = apis
    config(project, reg, score)
    for k, v in project.env.items():
        if k.endswith(("_REG", "_SCORE")):
            monkeypatch.setenv(k, v)  # the flow runs in this process: ${VAR} is read from its environment
    seen = flow_step_progress(project, "race_day")
    for step in ("registrations", "participants_to_scoring", "results"):
        assert_steady_rows(seen, step, 2 * N)
    assert {p.detail.split(":")[0] for p, _ in seen if p.phase == "participants_to_scoring" and p.detail} >= {
        "acme", "globex"}, "the detail names the tenant the step is on"
