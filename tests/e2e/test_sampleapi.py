"""The sample REST API (syncdash/sampleapi.py) is what the REST source is tested and benchmarked against, so it
must itself be right: every pagination style yields every record exactly once, filters filter, auth rejects,
and injected faults fire exactly as often as asked. All against the real server over real sockets."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from syncdash_demo.sampleapi import AuthSpec, SampleApi, make_players

N = 250
SINCE = "2024-04-01T00:00:00Z"


@pytest.fixture
def api() -> Iterator[SampleApi]:
    with SampleApi(n=N, lifetime=60) as server:
        yield server


@pytest.fixture
def client(api: SampleApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=5) as c:
        yield c


def _since_ids(api: SampleApi, since: str) -> list[int]:
    return [r["id"] for r in api.records if r["updated_at"] >= since]


# ----------------------------------------------------------------------------------------------- walkers


def walk_page(c: httpx.Client, params: dict[str, str]) -> list[dict[str, Any]]:
    out, page = [], 1
    while True:
        body = c.get("/v1/page/players", params={**params, "page": page, "limit": 37}).raise_for_status().json()
        assert body["meta"]["page"] == page
        if not body["data"]["items"]:
            assert body["meta"]["total"] == len(out)
            return out
        out += body["data"]["items"]
        page += 1


def walk_offset(c: httpx.Client, params: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        body = c.get("/v1/offset/players", params={**params, "offset": len(out), "limit": 37}).raise_for_status()
        data = body.json()
        out += data["items"]
        if len(out) >= data["total"]:
            assert len(out) == data["total"]
            return out


def walk_cursor(c: httpx.Client, params: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = {**params, "limit": 37, **({"cursor": cursor} if cursor else {})}
        body = c.get("/v1/cursor/players", params=q).raise_for_status().json()
        out += body["data"]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return out


def walk_next(c: httpx.Client, params: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    r = c.get("/v1/next/players", params={**params, "limit": 37})
    while True:
        body = r.raise_for_status().json()
        out += body["results"]
        if body["links"]["next"] is None:
            return out
        r = c.get(body["links"]["next"])  # absolute URL carrying every parameter


def walk_link(c: httpx.Client, params: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    r = c.get("/v1/link/players", params={**params, "per_page": 37})
    while True:
        out += r.raise_for_status().json()
        if "next" not in r.links:
            assert "last" not in r.links
            return out
        assert "last" in r.links
        r = c.get(r.links["next"]["url"])


def walk_none(c: httpx.Client, params: dict[str, str]) -> list[dict[str, Any]]:
    return c.get("/v1/none/players", params=params).raise_for_status().json()


WALKERS: dict[str, Callable[[httpx.Client, dict[str, str]], list[dict[str, Any]]]] = {
    "page": walk_page, "offset": walk_offset, "cursor": walk_cursor,
    "next": walk_next, "link": walk_link, "none": walk_none,
}


# ----------------------------------------------------------------------------------------------- data


def test_make_players_is_deterministic_and_shaped() -> None:
    players = make_players(300, seed=7)
    assert players == make_players(300, seed=7)
    assert players != make_players(300, seed=8)
    assert [p["id"] for p in players] == list(range(1, 301))
    p = players[0]
    assert set(p) == {"id", "profile", "club", "tags", "elo", "games", "updated_at", "active"}
    assert set(p["profile"]) == {"display_name", "country"} and p["profile"]["display_name"] == "Player 1"
    assert any(q["club"] is None for q in players) and any(q["club"] for q in players)
    assert any(q["tags"] == [] for q in players) and any(len(q["tags"]) > 1 for q in players)
    assert all(len(set(q["tags"])) == len(q["tags"]) for q in players)
    assert all(q["updated_at"].endswith("Z") and len(q["updated_at"]) == 20 for q in players)
    assert all(isinstance(q["elo"], float) and isinstance(q["games"], int) for q in players)


@pytest.mark.parametrize("style", list(WALKERS))
def test_every_style_walks_all_records_once(api: SampleApi, client: httpx.Client, style: str) -> None:
    records = WALKERS[style](client, {})
    assert records == api.records  # same content, id order, each exactly once


@pytest.mark.parametrize("style", list(WALKERS))
def test_every_style_honours_updated_since_and_country(api: SampleApi, client: httpx.Client, style: str) -> None:
    expected = _since_ids(api, SINCE)
    assert 0 < len(expected) < N
    assert [r["id"] for r in WALKERS[style](client, {"updated_since": SINCE})] == expected
    # the same instant written another way selects the same records
    assert [r["id"] for r in WALKERS[style](client, {"updated_since": "2024-04-01T01:00:00+01:00"})] == expected
    irish = [r["id"] for r in api.records if r["profile"]["country"] == "ie" and r["updated_at"] >= SINCE]
    assert [r["id"] for r in WALKERS[style](client, {"country": "ie", "updated_since": SINCE})] == irish


def test_pages_past_the_end_and_link_headers(client: httpx.Client) -> None:
    assert client.get("/v1/page/players", params={"page": 99, "limit": 100}).json() == {
        "data": {"items": []}, "meta": {"total": N, "page": 99}}
    assert client.get("/v1/offset/players", params={"offset": 1000}).json() == {"items": [], "total": N}
    r = client.get("/v1/link/players", params={"page": 1, "per_page": 100})
    assert r.links["next"]["url"].endswith("/v1/link/players?page=2&per_page=100")
    assert r.links["last"]["url"].endswith("page=3&per_page=100")
    assert "next" not in client.get("/v1/link/players", params={"page": 3, "per_page": 100}).links
    r = client.get("/v1/next/players", params={"limit": 100})
    assert r.json()["links"]["next"] == f"{client.base_url}".rstrip("/") + "/v1/next/players?after=100&limit=100"


@pytest.mark.parametrize(("path", "params", "error"), [
    ("/v1/page/players", {"page": "abc"}, "page must be an integer"),
    ("/v1/page/players", {"page": "0"}, "page must be >= 1"),
    ("/v1/offset/players", {"limit": "0"}, "limit must be between 1 and 10000"),
    ("/v1/offset/players", {"offset": "-1"}, "offset must be >= 0"),
    ("/v1/cursor/players", {"cursor": "!!nope"}, "invalid cursor"),
    ("/v1/link/players", {"per_page": "x"}, "per_page must be an integer"),
    ("/v1/none/players", {"updated_since": "yesterday"}, "updated_since must be an ISO 8601 timestamp"),
])
def test_bad_query_values_are_400(client: httpx.Client, path: str, params: dict[str, str], error: str) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400 and r.json() == {"error": error}
    assert r.headers["content-type"] == "application/json"


def test_detail_unknown_paths_and_methods(api: SampleApi, client: httpx.Client) -> None:
    r = client.get("/v1/players/5")
    body = r.json()
    assert body["id"] == 5 and body["games_played"] == api.records[4]["games"]
    assert body["detail"]["bio"] and len(body["detail"]["rating_history"]) == 6
    assert client.get("/v1/players/5").json() == body  # deterministic
    for path in ("/v1/players/9999", "/v1/players/abc", "/v2/players", "/nope", "/v1/page/players/x"):
        r = client.get(path)
        assert r.status_code == 404 and r.json() == {"error": "not found"}, path
    r = client.post("/v1/none/players")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert client.get("/_health").json() == {"ok": True}


def test_clubs_and_members(api: SampleApi, client: httpx.Client) -> None:
    clubs = client.get("/v1/clubs").json()
    assert [c["id"] for c in clubs] == list(range(1, len(clubs) + 1))
    assert sum(c["members"] for c in clubs) == sum(1 for r in api.records if r["club"])
    name = clubs[0]["name"]
    expected = [r["id"] for r in api.records if r["club"] and r["club"]["name"] == name]
    got, page = [], 1
    while items := client.get(f"/v1/clubs/{name}/members", params={"page": page, "limit": 5}).json()["data"]["items"]:
        got += [r["id"] for r in items]
        page += 1
    assert got == expected
    assert client.get("/v1/clubs/Nowhere/members").status_code == 404
    late = client.get("/v1/clubs", params={"updated_since": "2024-06-01T00:00:00Z"}).json()
    assert all(c["updated_at"] >= "2024-06-01T00:00:00Z" for c in late)


def test_touch_remove_set_records_invalidate_caches(api: SampleApi, client: httpx.Client) -> None:
    since = {"updated_since": "2030-01-01T00:00:00Z"}
    before = client.get("/v1/none/players").json()
    assert client.get("/v1/none/players", params=since).json() == []
    api.touch([7, 3], at="2030-01-01T00:00:00Z")
    changed = client.get("/v1/none/players", params=since).json()
    assert [r["id"] for r in changed] == [3, 7]
    assert changed[0]["elo"] == before[2]["elo"] + 1 and changed[0]["updated_at"] == "2030-01-01T00:00:00Z"
    api.remove([1, 2])
    ids = [r["id"] for r in client.get("/v1/none/players").json()]
    assert ids[0] == 3 and len(ids) == N - 2
    with pytest.raises(KeyError):
        api.remove([1])
    api.set_records([{"id": 9, "x": "b"}, {"id": 2, "x": "a"}])
    assert client.get("/v1/none/players").json() == [{"id": 2, "x": "a"}, {"id": 9, "x": "b"}]
    with pytest.raises(ValueError):
        api.set_records([{"id": 1}, {"id": 1}])


# ----------------------------------------------------------------------------------------------- auth

AUTH_CASES = [
    pytest.param(AuthSpec.bearer("s3cret"), {"headers": {"Authorization": "Bearer s3cret"}},
                 {"headers": {"Authorization": "Bearer nope"}}, id="bearer"),
    pytest.param(AuthSpec.basic("ann", "pw"), {"auth": ("ann", "pw")}, {"auth": ("ann", "bad")}, id="basic"),
    pytest.param(AuthSpec.api_key("X-Api-Key", "k1"), {"headers": {"x-api-key": "k1"}},
                 {"headers": {"X-Api-Key": "k2"}}, id="api_key-header"),
    pytest.param(AuthSpec.api_key("api_key", "k1", in_="query"), {"params": {"api_key": "k1"}},
                 {"headers": {"api_key": "k1"}}, id="api_key-query"),
]


@pytest.mark.parametrize(("spec", "good", "bad"), AUTH_CASES)
def test_auth_accepts_right_and_rejects_wrong(spec: AuthSpec, good: dict[str, Any], bad: dict[str, Any]) -> None:
    with SampleApi(n=20, auth=spec, lifetime=30) as api, httpx.Client(base_url=api.url, timeout=5) as c:
        for kwargs in ({}, bad):
            r = c.get("/v1/none/players", **kwargs)
            assert r.status_code == 401 and r.json() == {"error": "unauthorized"}
            assert "www-authenticate" in r.headers
        r = c.get("/v1/none/players", **good)
        assert r.status_code == 200 and len(r.json()) == 20
        assert c.get("/_health").status_code == 200
        assert c.post("/oauth/token", data={"grant_type": "client_credentials"}).status_code == 404


def test_api_key_in_query_is_kept_in_next_links() -> None:
    with SampleApi(n=N, auth=AuthSpec.api_key("api_key", "k1", in_="query"), lifetime=30) as api, \
            httpx.Client(base_url=api.url, timeout=5) as c:
        records = walk_next(c, {"api_key": "k1", "updated_since": SINCE})
        assert [r["id"] for r in records] == _since_ids(api, SINCE)
        assert api.count("/v1/next/", status=200) > 1 and api.count(status=401) == 0


def test_oauth2_client_credentials_flow() -> None:
    spec = AuthSpec.oauth2("cid", "csecret", scope="read", expires_in=120)
    with SampleApi(n=10, auth=spec, lifetime=30) as api, httpx.Client(base_url=api.url, timeout=5) as c:
        grant = {"grant_type": "client_credentials"}
        r1 = c.post("/oauth/token", data={**grant, "client_id": "cid", "client_secret": "csecret"})
        r2 = c.post("/oauth/token", data=grant, auth=("cid", "csecret"))  # credentials by HTTP basic
        t1, t2 = r1.json(), r2.json()
        assert t1["token_type"] == "bearer" and t1["expires_in"] == 120 and t1["scope"] == "read"
        assert t1["access_token"] != t2["access_token"]
        for token in (t1["access_token"], t2["access_token"]):
            assert c.get("/v1/none/players", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        bad = c.post("/oauth/token", data={**grant, "client_id": "cid", "client_secret": "wrong"})
        assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}
        assert c.post("/oauth/token", data=grant, auth=("cid", "nope")).status_code == 401
        assert c.post("/oauth/token", data={"grant_type": "password"}).json() == {"error": "unsupported_grant_type"}
        assert c.get("/v1/none/players").status_code == 401
        assert c.get("/v1/none/players", headers={"Authorization": "Bearer made-up"}).status_code == 401
        api.expire_tokens()
        r = c.get("/v1/none/players", headers={"Authorization": f"Bearer {t1['access_token']}"})
        assert r.status_code == 401 and r.json() == {"error": "unauthorized"}


# ----------------------------------------------------------------------------------------------- faults


def test_fail_fires_times_then_stops_with_retry_after(api: SampleApi, client: httpx.Client) -> None:
    api.fail("/v1/none", 503, times=2, retry_after="2")
    for _ in range(2):
        r = client.get("/v1/none/players")
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
        assert r.json()["error"] == "injected failure"
    assert client.get("/v1/none/players").status_code == 200
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    api.fail("", 429, retry_after=date, body=b'{"error":"slow down"}')
    r = client.get("/v1/offset/players")
    assert r.status_code == 429 and r.headers["retry-after"] == date and r.json() == {"error": "slow down"}
    assert api.count("/v1/none/", status=503) == 2 and api.count("/v1/offset/", status=429) == 1


def test_fail_matches_query_in_order_and_forever(api: SampleApi, client: httpx.Client) -> None:
    api.fail("page=2&", 500, times=-1)
    api.fail("/v1/page", 502, times=1)
    assert client.get("/v1/page/players", params={"page": 2, "limit": 10}).status_code == 500
    assert client.get("/v1/page/players", params={"page": 1, "limit": 10}).status_code == 502
    assert client.get("/v1/page/players", params={"page": 1, "limit": 10}).status_code == 200
    for _ in range(3):
        assert client.get("/v1/page/players", params={"page": 2, "limit": 10}).status_code == 500
    api.clear_faults()
    assert client.get("/v1/page/players", params={"page": 2, "limit": 10}).status_code == 200


def test_slow_fires_times_then_stops(api: SampleApi, client: httpx.Client) -> None:
    api.slow("/v1/none", 0.3, times=2)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/v1/none/players", timeout=0.1)
    t = time.monotonic()
    assert client.get("/v1/none/players").status_code == 200
    assert time.monotonic() - t >= 0.3
    t = time.monotonic()
    assert client.get("/v1/none/players").status_code == 200
    assert time.monotonic() - t < 0.25


def test_drop_closes_without_response(api: SampleApi, client: httpx.Client) -> None:
    api.drop("/v1/cursor", times=2)
    for _ in range(2):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.get("/v1/cursor/players")
    assert client.get("/v1/cursor/players").status_code == 200
    assert api.count("/v1/cursor/", status=0) == 2


def test_malformed_gives_truncated_json(api: SampleApi, client: httpx.Client) -> None:
    api.malformed("/v1/none", times=1)
    r = client.get("/v1/none/players")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    with pytest.raises(json.JSONDecodeError):
        r.json()
    assert len(client.get("/v1/none/players").json()) == N


def test_request_log(api: SampleApi, client: httpx.Client) -> None:
    client.get("/v1/page/players", params={"page": 2, "limit": 5}, headers={"X-Trace": "abc"})
    client.get("/v1/players/1")
    client.get("/nope")
    assert api.count() == 3 and api.count("/v1/") == 2 and api.count(status=404) == 1
    first = api.requests[0]
    assert (first.method, first.path, first.query, first.status) == ("GET", "/v1/page/players",
                                                                     {"page": "2", "limit": "5"}, 200)
    assert first.headers["x-trace"] == "abc" and first.finished >= first.started


def test_control_endpoints_over_http(api: SampleApi, client: httpx.Client) -> None:
    assert client.post("/_control/fail", json={"path": "", "status": 503, "times": -1,
                                               "retry_after": 1}).json() == {"ok": True}
    r = client.get("/v1/none/players")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert client.post("/_control/clear").json() == {"ok": True}  # control is never faulted
    assert client.post("/_control/slow", json={"path": "/v1/none", "seconds": 0.2}).status_code == 200
    assert client.post("/_control/drop", json={"path": "/v1/offset"}).status_code == 200
    assert client.post("/_control/malformed", json={"path": "/v1/cursor", "times": 1}).status_code == 200
    t = time.monotonic()
    assert client.get("/v1/none/players").status_code == 200 and time.monotonic() - t >= 0.2
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get("/v1/offset/players")
    with pytest.raises(json.JSONDecodeError):
        client.get("/v1/cursor/players").json()
    assert client.post("/_control/touch", json={"ids": [4], "at": "2031-01-01T00:00:00Z"}).status_code == 200
    assert client.post("/_control/remove", json={"ids": [5]}).status_code == 200
    assert [r["id"] for r in client.get("/v1/none/players", params={"updated_since": "2031-01-01"}).json()] == [4]
    assert client.get("/_control/count", params={"path_prefix": "/v1/offset", "status": 0}).json() == {"count": 1}
    for path, body in (("/_control/fail", {"status": "x"}), ("/_control/slow", {"path": "a"}),
                       ("/_control/touch", {"ids": "1"}), ("/_control/remove", {"ids": [9999]})):
        r = client.post(path, json=body)
        assert r.status_code == 400 and "error" in r.json(), path
    assert client.post("/_control/fail", content=b"{nope").status_code == 400
    assert client.post("/_control/bogus", json={}).status_code == 404


# ----------------------------------------------------------------------------------------------- server behaviour


def test_keep_alive_latency_and_concurrency() -> None:
    with SampleApi(n=50, latency=0.05, lifetime=30) as api:
        host, port = api.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("GET", "/v1/none/players")
        conn.getresponse().read()
        sock = conn.sock
        t = time.monotonic()
        for _ in range(3):
            conn.request("GET", "/v1/page/players?limit=5")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.version == 11 and not resp.will_close
            assert int(resp.getheader("Content-Length") or -1) == len(resp.read())
        assert conn.sock is sock  # one connection throughout
        assert time.monotonic() - t >= 0.15  # latency before each data response
        conn.close()

        errors: list[BaseException] = []

        def worker() -> None:
            try:
                with httpx.Client(base_url=api.url, timeout=5) as c:
                    for page in range(1, 6):
                        assert c.get("/v1/page/players", params={"page": page, "limit": 10}).status_code == 200
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        t = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors and time.monotonic() - t < 2  # served in parallel, not 40 x 0.05 s in a row


def test_stop_is_idempotent_and_lifetime_stops_it() -> None:
    api = SampleApi(n=5, lifetime=0.3).start()
    with httpx.Client(base_url=api.url, timeout=2) as c:
        assert c.get("/_health").status_code == 200  # leaves a pooled keep-alive connection
        assert api.wait(3)
        with pytest.raises(httpx.TransportError):
            c.get("/_health")
    api.stop()
    api.stop()
    with pytest.raises(RuntimeError):
        api.start()


def test_serves_100k_records_in_pages_of_1000_quickly() -> None:
    with SampleApi(n=100_000, lifetime=60) as api, httpx.Client(base_url=api.url, timeout=10) as c:
        for _ in range(2):  # second walk comes from the response cache
            t = time.monotonic()
            size = 0
            for page in range(1, 101):
                r = c.get("/v1/page/players", params={"page": page, "limit": 1000})
                assert r.status_code == 200
                size += len(r.content)
            elapsed = time.monotonic() - t
        assert size > 10_000_000
        assert elapsed < 2.0, elapsed


def test_command_line_prints_url_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncdash_demo.sampleapi", "--port", "0", "--records", "300", "--latency", "0.01",
         "--bearer", "tok", "--lifetime", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0
        with httpx.Client(base_url=url, timeout=5) as c:
            assert c.get("/_health").json() == {"ok": True}
            assert c.get("/v1/none/players").status_code == 401
            r = c.get("/v1/offset/players", headers={"Authorization": "Bearer tok"})
            assert r.json()["total"] == 300
            assert c.post("/_control/fail", json={"path": "/v1/", "status": 500}).status_code == 200
            assert c.get("/v1/none/players", headers={"Authorization": "Bearer tok"}).status_code == 500
        proc.terminate()
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""  # exactly one line on stdout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
