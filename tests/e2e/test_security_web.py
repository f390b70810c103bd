"""Issue 15 with real Chromium: web detail links only on http(s) and the list page's origin, a {page} walk
whose pages repeat stops with a clear error, and a list URL's `user:password@` is basic auth to its own origin,
stored and shown nowhere. The servers and helpers (the secret grep in every encoded form) are
test_security_http's."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Project
from tests.e2e.test_security_http import Reply, Seen, Server, assert_nowhere, encoded_forms


@pytest.fixture
def servers() -> Iterator[Callable[[str, Callable[[Seen], Reply]], Server]]:
    made: list[Server] = []

    def make(host: str, route: Callable[[Seen], Reply]) -> Server:
        made.append(Server(host, route))
        return made[-1]

    yield make
    for s in made:
        s.close()

# ---- 5 (web). a {page} walk that repeats; 8. web detail links --------------------------------------------

def html_reply(text: str) -> Reply:
    return 200, {"Content-Type": "text/html; charset=utf-8"}, text.encode()


def list_page(rows: list[tuple[int, str]]) -> str:
    if not rows:
        return "<html><body><p class=empty>no more</p><table class=players><tbody></tbody></table></body></html>"
    trs = "".join(f"<tr><td class=id>{i}</td><td class=name><a href='{href}'>N{i}</a></td></tr>" for i, href in rows)
    return f"<html><body><table class=players><tbody>{trs}</tbody></table></body></html>"


def web_config(url: str, detail: bool, timeout: str = "10s") -> str:
    text = f"""\
sources:
  - name: players
    kind: web
    url: "{url}/list?page={{page}}"
    browser: {{timeout: {timeout}}}
    pages: {{end: .empty}}
    wait_for: "table.players"
    rows: "table.players tbody tr"
    retry: {{attempts: 1, initial: 0.05, max: 0.1}}
    table: players
    primary_key: [id]
    fields:
      id: {{selector: td.id, type: int}}
      link: {{selector: "td.name a", attr: href}}
"""
    if detail:
        text += "    detail:\n      url_field: link\n      wait_for: .profile\n      fields:\n        games: " \
                "{selector: .games, type: int}\n"
    return text


def test_detail_links_are_followed_only_on_http_and_the_list_origin(project: Project, servers: Any) -> None:
    profile = "<html><body><div class=profile><span class=games>{n}</span></div></body></html>"
    other = servers("127.0.0.2", lambda r: html_reply(profile.format(n=99)))
    secret_file = project.write("private.html", profile.format(n=4242) + "<p>PRIVATE-FILE-CONTENT</p>")

    def route(r: Seen) -> Reply:
        if r.path == "/list":
            if r.query.get("page") == ["1"]:
                return html_reply(list_page([(1, "/p/1"), (2, secret_file.as_uri()), (3, f"{other.url}/p/3"),
                                             (4, "javascript:alert(1)")]))
            return html_reply(list_page([]))
        return html_reply(profile.format(n=7))

    home = servers("127.0.0.1", route)
    project.config(web_config(home.url, detail=True))
    proc = project.cli("run", "players", "--json")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert project.query("SELECT id, games FROM players") == [(1, 7)]
    assert not other.requests, "a link to another origin is not followed"
    errors = json.loads(project.cli("errors", "--json").stdout)
    messages = sorted(e["message"] for e in errors)
    assert len(messages) == 3, messages
    assert any("file" in m and "not http(s)" in m for m in messages)
    assert any("127.0.0.2" in m and "allow_origins" in m for m in messages)
    store = b"".join(p.read_bytes() for p in project.root.glob("syncdash.db*"))
    artifacts = b"".join(p.read_bytes() for p in project.root.rglob("*") if p.is_file() and p != secret_file
                         and not p.name.startswith("syncdash.db"))
    assert b"PRIVATE-FILE-CONTENT" not in store and b"4242" not in store
    assert b"PRIVATE-FILE-CONTENT" not in artifacts


def test_a_page_walk_whose_pages_repeat_stops_with_a_clear_error(project: Project, servers: Any) -> None:
    # a site that answers every page number past the last with the last page again
    def route(r: Seen) -> Reply:
        n = min(int(r.query["page"][0]), 3)
        return html_reply(list_page([(n * 10 + k, f"/p/{k}") for k in range(2)]))

    home = servers("127.0.0.1", route)
    project.config(web_config(home.url, detail=False))
    proc = project.cli("run", "players", "--json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    [res] = json.loads(proc.stdout)
    assert "pagination loop" in res["error"] and "page 3" in res["error"], res["error"]
    pages = sorted(int(r.query["page"][0]) for r in home.requests)
    assert pages[:4] == [1, 2, 3, 4] and len(pages) < 10, pages


# ---- 2 (web). a list URL's userinfo: basic auth to that origin, in no checkpoint, breaker, error or file ----

def test_web_userinfo_is_basic_auth_and_is_stored_nowhere(project: Project, servers: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pw = "pw:s3cr3t/ö+x"
    basic = "Basic " + base64.b64encode(f"alice:{pw}".encode()).decode()
    profile = "<html><body><div class=profile><span class=games>{n}</span></div></body></html>"

    def route(r: Seen) -> Reply:
        if r.headers.get("authorization") != basic:
            return 401, {"WWW-Authenticate": 'Basic realm="league"', "Content-Type": "text/html"}, b"login first"
        if r.path == "/list":
            if r.query.get("page") == ["1"]:
                return html_reply(list_page([(1, "/p/1"), (2, "/p/2"), (3, "/p/3")]))
            return 500, {"Content-Type": "text/html"}, b"down"  # page 2 fails: the run fails after page 1
        if r.path == "/p/2":  # a server that echoes the credential back in every form, in an error body
            forms = " ".join(encoded_forms(pw, user="alice"))
            return 403, {"Content-Type": "text/html"}, f"denied {forms}".encode()
        if r.path == "/p/3":  # never renders .profile: its screenshot and HTML are kept, with the header echoed
            return html_reply(f"<html><body><p>not yet; you sent {basic}</p></body></html>")
        return html_reply(profile.format(n=7))

    home = servers("127.0.0.1", route)
    host = home.url.split("//", 1)[1]
    project.config(web_config(f"http://alice:${{PW}}@{host}", detail=True, timeout="2s"))
    env = {"PW": quote(pw, safe="")}
    proc = project.cli("run", "players", "--json", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    authed = [r for r in home.requests if r.headers.get("authorization")]  # a browser answers the challenge
    assert {r.path for r in authed} >= {"/list", "/p/1"} and all(r.headers["authorization"] == basic
                                                                 for r in authed), "userinfo goes as basic auth"
    assert project.query("SELECT id, games FROM players") == [(1, 7)]
    [res] = json.loads(proc.stdout)
    assert "HTTP 500" in res["error"] and f"{host}/list?page=2" in res["error"], res["error"]
    errors = json.loads(project.cli("errors", "--json", env=env).stdout)
    assert len(errors) == 2 and all(f"http://{host}/list?page=1" in e["item"] for e in errors), errors
    [checkpoint] = [c for (c,) in project.query("SELECT checkpoint FROM syncdash_runs")]
    assert checkpoint and f"http://{host}/list?page=2" in checkpoint and "@" not in checkpoint, checkpoint
    hosts = [h for (h,) in project.query("SELECT host FROM syncdash_breakers")]
    assert hosts and all("@" not in h and "alice" not in h for h in hosts), hosts
    artifacts = [p for p in (project.root / "artifacts").rglob("*") if p.is_file()]
    assert any(p.suffix == ".html" for p in artifacts), "the page that never rendered left its evidence"
    shown = project.cli("show", "1", env=env).stdout + project.cli("show", "--json", env=env).stdout
    assert f"http://{host}/list?page=2" in shown
    blob = b"".join(p.read_bytes() for p in artifacts)
    for form in encoded_forms(pw, user="alice") + encoded_forms(quote(pw, safe="")):
        assert form.encode() not in blob, f"{form!r} (a form of the password) is in an artifact"
    monkeypatch.setenv("PW", env["PW"])  # the console loads the config in this process
    console = asyncio.run(console_run_detail(project, res["id"]))
    assert f"http://{host}/list?page=2" in console and "alice" not in console, console
    assert_nowhere(project, proc.stdout + proc.stderr + shown + console, pw, quote(pw, safe=""), user="alice",
                   env=env)


async def console_run_detail(project: Project, run_id: int) -> str:
    """Everything the console's run detail screen shows of one run: its texts and every table cell."""
    from textual.widgets import DataTable, Static

    from tests.e2e.test_console import make_app, until

    app = make_app(project, host=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await until(lambda: app.snapshot is not None, pilot)
        app.open_run(run_id)

        def text() -> str:
            parts = [str(w.render()) for w in app.screen.query(Static)]
            for t in app.screen.query(DataTable):
                parts += [" ".join(map(str, t.get_row_at(i))) for i in range(t.row_count)]
            return "\n".join(parts)

        await until(lambda: "list?page=2" in text() and app.screen.query_one("#run-errors").row_count, pilot,
                    what="the run detail shows the checkpoint and the errors")
        shown = text()
        await pilot.press("q")
    return shown
