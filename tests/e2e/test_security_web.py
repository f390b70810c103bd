"""Issue 15 with real Chromium: web detail links only on http(s) and the list page's origin, and a {page} walk
whose pages repeat stops with a clear error. The servers and helpers are test_security_http's."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Project
from tests.e2e.test_security_http import Reply, Seen, Server


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


def web_config(url: str, detail: bool) -> str:
    text = f"""\
sources:
  - name: players
    kind: web
    url: "{url}/list?page={{page}}"
    pages: {{end: .empty}}
    wait_for: "table.players"
    rows: "table.players tbody tr"
    browser: {{timeout: 10s}}
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
