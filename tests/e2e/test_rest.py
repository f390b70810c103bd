"""`kind: rest` against a real HTTP server on 127.0.0.1 (syncdash_demo.sampleapi), driven through the CLI.

Every pagination and auth type, incremental cursors, injected faults (500, 429 + Retry-After, slow,
dropped, malformed, 401), the circuit breaker, resume after SIGKILL, and secrets kept out of the store.
Timing is never asserted: request counts and the waits the run recorded are.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from conftest import Project

from syncdash_demo.sampleapi import AuthSpec, SampleApi

FIELDS = """
    fields:
      id: {from: id, type: int}
      name: {from: profile.display_name, required: true}
      club: club.name
      first_tag: tags.0
      elo: {type: float}
      updated_at: {type: datetime}
"""

PAGINATION = {
    "page": ("/v1/page/players", "data.items",
             "{type: page, page_param: page, size_param: limit, size: 40, total_path: meta.total}"),
    "offset": ("/v1/offset/players", "items",
               "{type: offset, offset_param: offset, limit_param: limit, limit: 40, total_path: total}"),
    "cursor": ("/v1/cursor/players", "data", "{type: cursor, cursor_path: meta.next_cursor, cursor_param: cursor}"),
    "next_url": ("/v1/next/players", "results", "{type: next_url, next_path: links.next}"),
    "link_header": ("/v1/link/players", None, "{type: link_header}"),
    "none": ("/v1/none/players", None, "{type: none}"),
}


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(n=250, lifetime=300) as server:
        yield server


def rest_source(api: SampleApi, *, name: str = "players", style: str = "page", extra: str = "",
                params: str = "", fields: str = FIELDS, table: str = "players",
                retry: str = "{attempts: 4, initial: 0.01s, max: 0.05s}") -> str:
    path, records, pagination = PAGINATION[style]
    rec = f"    records: {records}\n" if records else ""
    if style in ("cursor", "next_url") and "limit" not in params:
        params = "{limit: 40}"
    elif style == "link_header" and not params:
        params = "{per_page: 40}"
    par = f"    params: {params}\n" if params else ""
    return (f"  - name: {name}\n    kind: rest\n    url: {api.url}{path}\n{rec}{par}"
            f"    pagination: {pagination}\n    table: {table}\n    primary_key: [id]\n"
            f"    retry: {retry}\n"
            f"{extra}{fields}")


def config(project: Project, *sources: str) -> None:
    project.config("sources:\n" + "".join(sources))


def data_requests(api: SampleApi) -> list[Any]:
    return [r for r in api.requests if r.path.startswith("/v1/")]


# ---- pagination, records, mapping --------------------------------------------------------------

@pytest.mark.parametrize("style", list(PAGINATION))
def test_every_pagination_type_lands_every_record_once(project: Project, api: SampleApi, style: str) -> None:
    config(project, rest_source(api, style=style))
    [res] = project.run_json("players", expect=0)
    assert res["status"] == "succeeded"
    assert res["counts"]["inserted"] == 250 and res["counts"]["failed"] == 0
    rows = project.query("SELECT id FROM players ORDER BY id")
    assert [r[0] for r in rows] == list(range(1, 251))
    pages = len(data_requests(api))
    # 250 records in pages of 40: 7 pages, plus at most one empty page to learn the end
    assert pages <= (1 if style == "none" else 8), pages
    assert res["http"]["requests"] == pages
    # the re-run compares by hash: nothing changes
    [again] = project.run_json("players", expect=0)
    assert again["counts"]["unchanged"] == 250 and again["counts"]["inserted"] == 0


def test_nested_records_and_dotted_paths(project: Project, api: SampleApi, tdb: str) -> None:
    config(project, rest_source(api))
    project.run_json("players", expect=0)
    by_id = {r[0]: r[1:] for r in project.tquery("SELECT id, name, club, first_tag FROM players")}
    src = {r["id"]: r for r in api.records}
    for i in (1, 2, 3, 50, 250):
        rec = src[i]
        club = rec["club"]["name"] if rec.get("club") else None
        tag = rec["tags"][0] if rec.get("tags") else None
        assert by_id[i] == (rec["profile"]["display_name"], club, tag)
    assert any(r.get("club") is None for r in api.records), "the sample data should have players without a club"


def test_concurrent_fetch_gives_the_same_table(project: Project, api: SampleApi) -> None:
    config(project, rest_source(api, extra="    concurrency: 4\n"))
    [res] = project.run_json("players", expect=0)
    assert res["counts"]["inserted"] == 250
    assert [r[0] for r in project.query("SELECT id FROM players ORDER BY id")] == list(range(1, 251))
    pages = sorted(int(r.query["page"]) for r in data_requests(api))
    assert pages == list(range(1, 8)), "each page exactly once, no page past the total"


def test_bad_record_is_an_item_error_and_the_page_still_loads(project: Project) -> None:
    records = [{"id": i, "profile": {"display_name": f"P{i}"}, "elo": 1500.0, "updated_at": "2024-04-01T10:00:00Z",
                "tags": [], "club": None} for i in range(1, 51)]
    records[4]["elo"] = "strong"
    records[7]["profile"] = {}
    with SampleApi(records=records, lifetime=120) as server:
        config(project, rest_source(server))
        [res] = project.run_json("players", expect=3)
    assert res["status"] == "partial"
    assert res["counts"]["inserted"] == 48 and res["counts"]["failed"] == 2
    errors = json.loads(project.cli("errors", "--json").stdout)
    kinds = sorted((e["error_type"], e["key"]) for e in errors)
    assert kinds == [("missing", [8]), ("type", [5])]
    assert all(e["file"].startswith(server.url) for e in errors)


# ---- auth -----------------------------------------------------------------------------------------

AUTHS = {
    "bearer": (AuthSpec.bearer("tok-abc123"), "    auth: {type: bearer, token: \"${API_TOKEN}\"}\n", "tok-abc123"),
    "basic": (AuthSpec.basic("ada", "pw-xyz789"),
              "    auth: {type: basic, username: ada, password: \"${API_TOKEN}\"}\n", "pw-xyz789"),
    "api_key_header": (AuthSpec.api_key("X-Api-Key", "key-h4567"),
                       "    auth: {type: api_key, name: X-Api-Key, value: \"${API_TOKEN}\"}\n", "key-h4567"),
    "api_key_query": (AuthSpec.api_key("api_key", "key-q9876", in_="query"),
                      "    auth: {type: api_key, name: api_key, value: \"${API_TOKEN}\", in: query}\n", "key-q9876"),
    "oauth2": (AuthSpec.oauth2("client-1", "cs-secret55"),
               "    auth: {type: oauth2_client_credentials, token_url: \"{url}/oauth/token\", client_id: client-1, "
               "client_secret: \"${API_TOKEN}\"}\n", "cs-secret55"),
}


@pytest.mark.parametrize("kind", list(AUTHS))
def test_every_auth_type_and_no_secret_leaks(project: Project, kind: str) -> None:
    spec, auth_yaml, secret = AUTHS[kind]
    with SampleApi(n=120, auth=spec, lifetime=120) as server:
        auth_yaml = auth_yaml.replace("{url}", server.url)
        style = "next_url" if kind == "api_key_query" else "page"  # next links echo the key: must not be stored
        config(project, rest_source(server, style=style, extra=auth_yaml))
        ok = project.cli("run", "players", "--json", env={"API_TOKEN": secret})
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert json.loads(ok.stdout)[0]["counts"]["inserted"] == 120
        before = len(server.requests)
        bad = project.cli("run", "players", "--json", env={"API_TOKEN": secret + "-wrong"})
        assert bad.returncode == 1, bad.stdout + bad.stderr
        [res] = json.loads(bad.stdout)
        assert res["status"] == "failed" and res["error_type"] == "auth", res
        assert "401" in res["error"] and server.url in res["error"]
        # a 401 is not retried: one request (two for oauth2: the token endpoint refuses)
        assert len(server.requests) - before == 1
        tokens = {r.headers.get("authorization", "") for r in server.requests}
    outputs = ok.stdout + ok.stderr + bad.stdout + bad.stderr
    assert secret not in outputs
    db = b"".join(p.read_bytes() for p in project.root.glob("syncdash.db*"))
    assert secret.encode() not in db, "a credential is in the store's bytes"
    for t in tokens:  # OAuth2 access tokens obtained at run time, Basic and Bearer headers
        value = t.split(" ", 1)[-1]
        if len(value) >= 8:
            assert value.encode() not in db and value not in outputs


# ---- incremental ----------------------------------------------------------------------------------

def test_incremental_cursor_lag_full_and_backfill(project: Project, api: SampleApi, tdb: str) -> None:
    extra = ("    incremental: {cursor_field: updated_at, param: updated_since, initial: \"2000-01-01T00:00:00Z\", "
             "lag: 5m}\n")
    config(project, rest_source(api, extra=extra))
    [first] = project.run_json("players", expect=0)
    assert first["mode"] == "incremental" and first["counts"]["inserted"] == 250
    assert {r.query.get("updated_since") for r in data_requests(api)} == {"2000-01-01T00:00:00Z"}
    newest = max(r["updated_at"] for r in api.records)
    state = project.query("SELECT cursor FROM syncdash_source_state WHERE source='players'")
    assert json.loads(state[0][0]) == {"load": newest}

    api.requests.clear()
    api.touch([3, 77, 200], at="2030-01-01T12:00:00Z")
    [second] = project.run_json("players", expect=0)
    sent = {r.query.get("updated_since") for r in data_requests(api)}
    from datetime import datetime, timedelta
    lagged = (datetime.fromisoformat(newest.replace("Z", "+00:00")) - timedelta(minutes=5))
    assert sent == {lagged.strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert second["counts"]["updated"] == 3 and second["counts"]["inserted"] == 0
    assert second["counts"]["deleted"] == 0, "incremental never deletes"
    assert project.tquery("SELECT COUNT(*) FROM players WHERE _deleted_at IS NULL")[0][0] == 250
    state = project.query("SELECT cursor FROM syncdash_source_state WHERE source='players'")
    assert json.loads(state[0][0]) == {"load": "2030-01-01T12:00:00Z"}

    api.requests.clear()
    [full] = project.run_json("players", "--full", expect=0)
    assert all("updated_since" not in r.query for r in data_requests(api))
    assert full["counts"]["unchanged"] == 250

    api.requests.clear()
    project.run_json("players", "--backfill-from", "2024-01-01T00:00:00Z", expect=0)
    assert {r.query.get("updated_since") for r in data_requests(api)} == {"2024-01-01T00:00:00Z"}
    state = project.query("SELECT cursor FROM syncdash_source_state WHERE source='players'")
    assert json.loads(state[0][0]) == {"load": "2030-01-01T12:00:00Z"}, "a backfill never moves the cursor back"


# ---- faults, retries, breaker ---------------------------------------------------------------------

def test_server_errors_are_retried_within_budget(project: Project, api: SampleApi) -> None:
    config(project, rest_source(api))
    api.fail("page=2&", 500, times=2)
    api.fail("page=4&", 503, times=1)
    api.drop("page=5&", times=1)
    [res] = project.run_json("players", expect=0)
    assert res["counts"]["inserted"] == 250
    assert [r[0] for r in project.query("SELECT id FROM players ORDER BY id")] == list(range(1, 251))
    assert len(data_requests(api)) == 7 + 2 + 1 + 1, "each fault costs exactly one extra request"
    reasons = [w["reason"] for w in res["http"]["waits"]]
    assert len(reasons) == 4 and any("500" in r for r in reasons) and any("network" in r for r in reasons)


@pytest.mark.parametrize("reader", ["process", "inline"])
def test_reader_child_reports_breaker_waits_and_cursor_like_inline(project: Project, api: SampleApi,
                                                                   reader: str) -> None:
    """A stream read in the read-ahead child (the default) tells the run what its client saw: the breaker's
    saves reach the store, the waits and requests the run, the cursor the source state; as read inline."""
    extra = ("    concurrency: 2\n    circuit_breaker: {failures: 5, reset_after: 60s}\n"
             "    incremental: {cursor_field: updated_at, param: updated_since, initial: \"2000-01-01T00:00:00Z\"}\n")
    config(project, rest_source(api, extra=extra))
    api.fail("page=3&", 500, times=1)
    [res] = project.run_json("players", expect=0, env={"SYNCDASH_READER": reader})
    assert res["counts"]["inserted"] == 250 and res["counts"]["failed"] == 0
    assert res["http"]["requests"] == len(data_requests(api)) == 8
    assert [w["reason"] for w in res["http"]["waits"]] == ["retry after http 500"]
    # the failure was saved (failures 1), then the success closed it again: both went through the store
    assert project.query("SELECT host, state, failures FROM syncdash_breakers") == [
        (api.url.split("//")[1], "closed", 0)]
    newest = max(r["updated_at"] for r in api.records)
    state = project.query("SELECT cursor FROM syncdash_source_state WHERE source='players'")
    assert json.loads(state[0][0]) == {"load": newest}


def test_retry_after_is_honoured(project: Project, api: SampleApi) -> None:
    config(project, rest_source(api))
    api.fail("page=3&", 429, times=1, retry_after="1")
    not_before = int(time.time()) + 6  # whole seconds: an HTTP date has no fractions
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(not_before))
    api.fail("page=5&", 503, times=1, retry_after=http_date)
    wall = time.time() - time.monotonic()  # the server runs in this process: same monotonic clock
    [res] = project.run_json("players", expect=0)
    assert res["counts"]["inserted"] == 250
    waits = res["http"]["waits"]
    assert len(waits) == 2
    secs = {w["reason"].split(" (")[0]: w["seconds"] for w in waits}
    assert any(r.startswith("Retry-After") for r in secs)
    w429 = next(w for w in waits if "(429)" in w["reason"])
    w503 = next(w for w in waits if "(503)" in w["reason"])
    assert w429["seconds"] >= 1.0, "waited less than the server asked"
    # the retried requests really came after the waits
    r3 = [r for r in data_requests(api) if r.query.get("page") == "3"]
    assert len(r3) == 2 and r3[1].started - r3[0].finished >= 1.0
    r5 = [r for r in data_requests(api) if r.query.get("page") == "5"]
    assert len(r5) == 2 and r5[1].started + wall >= not_before - 0.05, "an HTTP-date Retry-After was not honoured"
    assert w503["seconds"] > 0


def test_timeout_is_retried(project: Project, api: SampleApi) -> None:
    config(project, rest_source(api, extra="    timeout: 0.5s\n"))
    api.slow("page=2&", 3.0, times=1)
    [res] = project.run_json("players", expect=0)
    assert res["counts"]["inserted"] == 250
    assert any("timeout" in w["reason"] for w in res["http"]["waits"])
    deadline = time.monotonic() + 10  # the server logs the slow request once its sleep ends
    while len([r for r in data_requests(api) if r.query.get("page") == "2"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len([r for r in data_requests(api) if r.query.get("page") == "2"]) == 2


def test_malformed_json_fails_without_retry_and_keeps_committed_pages(project: Project, api: SampleApi,
                                                                     tdb: str) -> None:
    config(project, rest_source(api))
    api.malformed("page=3&", times=-1)
    [res] = project.run_json("players", expect=1)
    assert res["status"] == "failed" and res["error_type"] == "parse"
    assert "not valid JSON" in res["error"] and "page=3" in res["error"] and "body:" in res["error"]
    assert len([r for r in data_requests(api) if r.query.get("page") == "3"]) == 1, "a parse error is not retried"
    assert project.tquery("SELECT COUNT(*) FROM players")[0][0] == 80, "pages 1 and 2 stay committed"
    ck = json.loads(project.query("SELECT checkpoint FROM syncdash_runs WHERE id=?", (res["id"],))[0][0])
    assert ck["source"]["page"]["page"] == 3, "the checkpoint says where to resume"


def test_breaker_opens_fails_fast_and_closes_after_reset(project: Project, api: SampleApi) -> None:
    config(project, rest_source(api, extra="    circuit_breaker: {failures: 3, reset_after: 4s}\n",
                                retry="{attempts: 6, initial: 0.01s, max: 0.02s}"))
    api.fail("page=2&", 500, times=-1)
    [res] = project.run_json("players", expect=1)
    assert res["status"] == "failed" and res["error_type"] == "breaker", res
    assert "circuit breaker" in res["error"] and "127.0.0.1" in res["error"] and "next try at" in res["error"]
    page2 = [r for r in data_requests(api) if r.query.get("page") == "2"]
    assert len(page2) == 3, "the breaker stops the retries after 3 failures, not 6 attempts"
    state = project.query("SELECT state, failures FROM syncdash_breakers")
    assert state == [("open", 3)]
    # a run while it is open fails fast, without a request
    before = len(data_requests(api))
    [fast] = project.run_json("players", expect=1)
    assert fast["error_type"] == "breaker" and len(data_requests(api)) == before
    # after reset_after it half-opens; success closes it
    api.clear_faults()
    opened = project.query("SELECT retry_at FROM syncdash_breakers")[0][0]
    from datetime import datetime
    while datetime.utcnow() < datetime.fromisoformat(opened):
        time.sleep(0.1)
    [ok] = project.run_json("players", expect=0)
    assert ok["counts"]["inserted"] + ok["counts"]["unchanged"] == 250
    assert project.query("SELECT state, failures FROM syncdash_breakers") == [("closed", 0)]


# ---- resume -----------------------------------------------------------------------------------------

def test_resume_after_sigkill_refetches_nothing_committed(project: Project, tdb: str) -> None:
    with SampleApi(n=400, latency=0.15, lifetime=200) as server:
        config(project, rest_source(server, extra="    batch_size: 40\n"))
        proc = project.popen("run", "players")
        deadline = time.monotonic() + 60
        committed = 0
        while time.monotonic() < deadline:
            try:
                committed = project.tquery("SELECT COUNT(*) FROM players")[0][0]
            except Exception:  # the table is not there yet (or SQLite is busy)
                committed = 0
            if committed >= 160:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        time.sleep(0.5)  # let the server log the dead run's last request before the log is cleared
        assert committed >= 160, "the run did not get going"
        rows = project.tquery("SELECT COUNT(*) FROM players")[0][0]
        ck = json.loads(project.query("SELECT checkpoint FROM syncdash_runs")[0][0])
        next_page = ck["source"]["page"]["page"]
        assert rows == (next_page - 1) * 40, "the checkpoint and the committed rows agree"
        server.requests.clear()
        [res] = project.run_json("players", expect=0)
    assert res["resumes"] == 1
    pages = [int(r.query["page"]) for r in data_requests(server)]
    assert min(pages) == next_page, f"refetched a committed page: {sorted(pages)}"
    assert len(pages) == len(set(pages))
    assert [r[0] for r in project.tquery("SELECT id FROM players ORDER BY id")] == list(range(1, 401))
    assert res["counts"]["inserted"] == 400


# ---- dry run, warnings, streams ---------------------------------------------------------------------

def test_dry_run_limit_pages_and_early_stop_warning(project: Project, api: SampleApi) -> None:
    config(project, rest_source(api))
    [plan] = project.run_json("players", "--dry-run", "--limit-pages", "2", expect=0)
    assert plan["dry_run"] and plan["counts"]["inserted"] == 80
    assert len(data_requests(api)) == 2
    assert project.query("SELECT name FROM sqlite_master WHERE name='players'") == []
    # a cursor path that does not exist stops after one page although the total says more
    wrong = rest_source(api).replace("{type: page, page_param: page, size_param: limit, size: 40, total_path: "
                                     "meta.total}", "{type: cursor, cursor_path: meta.nope, total_path: meta.total}")
    config(project, wrong.replace("    records: data.items\n", "    records: data.items\n    params: {limit: 40}\n"))
    [res] = project.run_json("players", expect=0)
    assert any("pagination stopped early" in w and "40 of 250" in w for w in res["warnings"]), res["warnings"]


def test_streams_with_for_each_fan_out(project: Project, api: SampleApi, tdb: str) -> None:
    project.config(f"""\
        sources:
          - name: league
            kind: rest
            base_url: {api.url}/v1
            concurrency: 3
            retry: {{attempts: 3, initial: 0.01s}}
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
                  bio: detail.bio
        """)
    [res] = project.run_json("league", expect=0)
    assert res["counts"]["inserted"] == 500
    phases = project.query("SELECT name, status, inserted, done, total FROM syncdash_run_phases ORDER BY seq")
    assert [p[0] for p in phases] == ["players", "players finalize", "details", "details finalize"]
    assert phases[0][2] == 250 and phases[2][2] == 250 and phases[2][3:] == (250, 250)
    assert project.tquery("SELECT COUNT(*) FROM player_details WHERE bio IS NOT NULL")[0][0] == 250
    # a detail page that 404s is an item error of its phase; the rest loads
    api.fail("/v1/players/17?", 404, times=-1)
    [again] = project.run_json("league", expect=3)
    assert again["status"] == "partial" and again["counts"]["failed"] == 1
    err = json.loads(project.cli("errors", "--json").stdout)
    assert [(e["phase"], e["error_type"]) for e in err] == [("details", "http")]


def test_rate_limit_spaces_requests(project: Project, api: SampleApi) -> None:
    config(project, rest_source(api, extra="    rate_limit: 5/s\n    concurrency: 3\n"))
    [res] = project.run_json("players", expect=0)
    assert res["counts"]["inserted"] == 250
    starts = sorted(r.started for r in data_requests(api))
    gaps = [b - a for a, b in pairwise(starts)]
    # 5/s with burst 1: however many threads fetch, requests start >= 0.2 s apart (a little slack for the clock)
    assert len(starts) == 7 and min(gaps) >= 0.18, gaps
    assert sum(1 for w in res["http"]["waits"] if w["reason"] == "rate limit") >= 5


def test_oauth2_token_is_renewed_when_the_server_drops_it(project: Project) -> None:
    spec, auth_yaml, secret = AUTHS["oauth2"]
    with SampleApi(n=250, auth=spec, latency=0.05, lifetime=120) as server:
        config(project, rest_source(server, extra=auth_yaml.replace("{url}", server.url)))
        proc = project.popen("run", "players", "--json", env={"API_TOKEN": secret})
        deadline = time.monotonic() + 30
        while server.count("/v1/page/", status=200) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.expire_tokens()  # every token issued so far is now refused with 401
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        [res] = json.loads(out)
        token_calls = server.count("/oauth/token")
    assert res["counts"]["inserted"] == 250
    assert token_calls == 2, "one token at the start, one after the 401"


def test_partial_reads_never_delete(project: Project, api: SampleApi, tdb: str) -> None:
    config(project, rest_source(api))
    project.run_json("players", expect=0)
    [plan] = project.run_json("players", "--dry-run", "--limit-pages", "1", expect=0)
    assert plan["counts"]["deleted"] == 0 and plan["counts"]["unchanged"] == 40
    assert any(w.startswith("deletes skipped: --limit-pages 1") for w in plan["warnings"])
    config(project, rest_source(api).replace("total_path: meta.total}", "total_path: meta.total, max_pages: 2}"))
    [capped] = project.run_json("players", expect=0)
    assert capped["counts"]["deleted"] == 0 and any("max_pages (2)" in w for w in capped["warnings"])
    assert project.tquery("SELECT COUNT(*) FROM players WHERE _deleted_at IS NULL")[0][0] == 250
    refused = project.cli("run", "players", "--limit-pages", "1")
    assert refused.returncode == 2 and "--limit-pages needs --dry-run" in refused.stderr


def test_json_fast_path_maps_exactly_like_the_slow_path() -> None:
    """The generated mapper for JSON records inlines paths and skips converters for values that already have
    the column's type; for every record it accepts, the result must equal the field-by-field slow path."""
    from syncdash.config.models import FieldSpec
    from syncdash.kinds.mapping import build_mapper

    spec = {"id": {"from": "id", "type": "int"}, "name": {"from": "p.name"}, "tag": {"from": "tags.0"},
            "score": {"from": "score", "type": "float"}, "ok": {"from": "ok", "type": "bool"},
            "at": {"from": "at", "type": "datetime"}, "day": {"from": "day", "type": "date"},
            "doc": {"from": "doc", "type": "json"}, "n": {"from": "p.n", "type": "int", "default": 7}}
    fields = {k: FieldSpec.model_validate(v) for k, v in spec.items()}
    paths = {k: str(f.from_) for k, f in fields.items()}
    m = build_mapper(fields, ["id"], paths=paths, source_names=paths)
    values = {
        "id": [1, 2.0, "3", True],
        "p": [{"name": "Ada", "n": 3}, {"name": 5, "n": "4"}, {}, None, [1], "x", {"name": None, "n": 2.0}],
        "tags": [["a", "b"], [], None, "tag", [None], [{"x": 1}], {"0": "dict"}],
        "score": [1.5, 2, "3.25", True],
        "ok": [True, False, 1, 0, "yes", "off"],
        "at": ["2024-04-01T10:00:00Z", "2024-04-01T10:00:00+02:00", "2024-04-01 10:00:00", "2024-04-01T10:00:00z",
               "2024-13-01T10:00:00Z", "2024-04-01T10:00:00.5Z"],
        "day": ["2024-04-01", "2024-04-01T10:00:00"],
        "doc": [{"b": 1, "a": [1, 2]}, "[1, 2]", 3],
    }
    import itertools
    checked = 0
    for combo in itertools.islice(itertools.product(*values.values()), 0, None, 7):
        rec = dict(zip(values, combo, strict=True))
        slow, problems = m.explain(rec)
        try:
            fast = m.fast(rec)
        except Exception:
            continue  # the engine then takes the slow path for this record
        assert problems == [] and fast == slow, (rec, fast, slow)
        k = m.key_hash(rec)
        assert (k[0], k[-1]) == (fast[0], fast[-1])
        checked += 1
    assert checked > 500
