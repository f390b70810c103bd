"""`kind: web` with the real Debian Chromium against a JavaScript-rendered site served on 127.0.0.1 (samplesite).

Every page renders its rows from a script after a delay, so nothing here passes without a real browser waiting
for the DOM. After every test no Chromium started by syncdash may be left running.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Project

from syncdash.kinds.web.browser import owned_processes
from syncdash_demo.samplesite import SampleSite, make_players

N = 45  # three pages of 20, the last one short
PAGES = -(-N // 20)


@pytest.fixture(autouse=True)
def no_orphaned_chromium() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 10
    while owned_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert owned_processes() == [], "a Chromium started by syncdash outlived its run"


@pytest.fixture
def site() -> Iterator[SampleSite]:
    with SampleSite(N, delay=0.05, lifetime=300) as s:
        yield s


def web_source(site: SampleSite, *, url: str | None = None, extra: str = "", detail: bool = True,
               concurrency: int = 2, timeout: str = "10s", attempts: int = 3) -> str:
    text = f"""
sources:
  - name: players
    kind: web
    url: {url or site.url + '/players?page={page}'}
    pages: {{end: .empty}}
    wait_for: "table.players tbody tr"
    rows: "table.players tbody tr"
    concurrency: {concurrency}
    browser: {{timeout: {timeout}}}
    retry: {{attempts: {attempts}, initial: 0.05, max: 0.2}}
    table: players
    primary_key: [id]
    fields:
      id: {{selector: td.id, type: int}}
      name: {{selector: "td.name a", required: true}}
      profile_url: {{selector: "td.name a", attr: href}}
      elo: {{selector: td.elo, type: float, regex: "([0-9.]+)"}}
{extra}"""
    if detail:
        text += """    detail:
      url_field: profile_url
      wait_for: .profile
      fields:
        games: {selector: .games, type: int}
        club: .club
"""
    return text


def expected(site: SampleSite, detail: bool = True) -> list[tuple[object, ...]]:
    out = []
    for p in make_players(N):
        if p["id"] in site.missing_name:
            continue
        row: tuple[object, ...] = (p["id"], p["name"], f"{site.url}/players/{p['id']}", p["elo"])
        if detail:
            row += (p["games"], p["club"])
        out.append(row)
    return out


def table(project: Project, detail: bool = True) -> list[tuple[object, ...]]:
    cols = "id, name, profile_url, elo" + (", games, club" if detail else "")
    return project.query(f"SELECT {cols} FROM players WHERE _deleted_at IS NULL ORDER BY id")


def list_hits(site: SampleSite) -> dict[int, int]:
    return {int(k.split("page=")[1]): v for k, v in site.hits.items() if k.startswith("/players?page=")}


def test_page_template_with_detail_pages_and_a_row_missing_a_field(project: Project, site: SampleSite) -> None:
    site.missing_name = {27}
    project.config(web_source(site))
    [res] = project.run_json("players", expect=3)  # partial (exit 3): one bad row
    assert res["status"] == "partial"
    assert res["counts"]["inserted"] == N - 1 and res["counts"]["failed"] == 1
    assert table(project) == expected(site)
    [(item, message, etype)] = project.query("SELECT item, message, error_type FROM syncdash_item_errors")
    assert item == f"{site.url}/players?page=2:7", "the page URL and the row's index on it"
    assert "name" in message and "required" in message and etype == "missing"
    hits = list_hits(site)  # each list page once; the one after ends the walk (concurrency 2 may fetch one more)
    assert set(hits.values()) == {1} and set(range(1, PAGES + 2)) <= set(hits) <= set(range(1, PAGES + 3))
    assert sum(v for k, v in site.hits.items() if k.startswith("/players/")) == N - 1
    # honest change counts: nothing changed upstream, nothing is rewritten
    [again] = project.run_json("players", expect=3)
    assert again["counts"]["unchanged"] == N - 1 and again["counts"]["inserted"] == 0
    site.players[4]["elo"] = 2999.5
    site.players[-1:] = []  # player 95 left the site
    [third] = project.run_json("players", expect=3)
    assert third["counts"]["updated"] == 1 and third["counts"]["deleted"] == 1


def test_next_button_pagination_in_place(project: Project, site: SampleSite) -> None:
    project.config(web_source(site, url=site.url + "/app", detail=False,
                              extra='    next: "button.next:not(.disabled)"\n'))
    [res] = project.run_json("players", expect=0)
    assert res["counts"]["inserted"] == N
    assert table(project, detail=False) == expected(site, detail=False)
    assert site.hits.get("/app") == 1, "one page load; the rest were clicks"
    phases = project.query("SELECT name, done FROM syncdash_run_phases WHERE name = 'load'")
    assert phases == [("load", PAGES)]


def test_selector_that_never_appears_saves_a_screenshot_and_the_html(project: Project, site: SampleSite) -> None:
    site.never("page=3")  # the last page
    project.config(web_source(site, detail=False, concurrency=1, timeout="1s", attempts=2))
    proc = project.cli("run", "players", "--json")
    assert proc.returncode != 0
    [res] = json.loads(proc.stdout)
    assert res["status"] == "failed"
    err = res["error"]
    assert f"{site.url}/players?page=3" in err and "table.players tbody tr" in err and "did not appear" in err
    shot = Path(err.split("screenshot ")[1].split(",")[0])
    html = Path(err.split("html ")[1].split()[0])
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "still loading" in html.read_text(encoding="utf-8")
    assert shot.parent == project.root / "artifacts" / "players"
    assert list_hits(site)[3] == 2, "retried once (attempts: 2)"
    # the pages before it stay committed, and the checkpoint points at page 3
    assert [r[0] for r in project.query("SELECT id FROM players ORDER BY id")] == list(range(1, 41))
    ck = json.loads(project.query("SELECT checkpoint FROM syncdash_runs")[0][0])
    assert ck["source"]["page"] == 3
    site.clear_faults()
    [res2] = project.run_json("players", expect=0)  # the next run reads it all; the first 40 rows stay as they are
    assert res2["counts"]["inserted"] == N - 40 and res2["counts"]["unchanged"] == 40


def test_a_site_that_answers_503_twice_then_works(project: Project, site: SampleSite) -> None:
    site.fail("/players?page=2", 503, times=2)
    project.config(web_source(site, detail=False, concurrency=1))
    [res] = project.run_json("players", expect=0)
    assert res["counts"]["inserted"] == N
    assert list_hits(site)[2] == 3
    http = json.loads(project.query("SELECT http FROM syncdash_runs")[0][0])
    assert [w["reason"] for w in http["waits"]] == ["retry after HTTP 503"] * 2
    assert http["requests"] == PAGES + 1 + 2, "the list pages, the one that ends the walk, and 2 retries"


def test_sigkill_mid_scrape_then_resume_gives_the_same_table(project: Project) -> None:
    with SampleSite(N, delay=0.4, lifetime=300) as slow:
        project.config(web_source(slow, detail=False, concurrency=1))
        proc = project.popen("run", "players")
        deadline = time.monotonic() + 60
        committed = 0
        while time.monotonic() < deadline:
            try:
                committed = project.query("SELECT COUNT(*) FROM players")[0][0]
            except Exception:  # the table is not there yet
                committed = 0
            if committed >= 20:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert committed >= 20, "the run did not get going"
        deadline = time.monotonic() + 10
        while owned_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert owned_processes() == [], "the killed run's Chromium exited with it"
        ck = json.loads(project.query("SELECT checkpoint FROM syncdash_runs")[0][0])
        next_page = ck["source"]["page"]
        assert project.query("SELECT COUNT(*) FROM players")[0][0] == (next_page - 1) * 20
        slow.hits.clear()
        [res] = project.run_json("players", expect=0)
        assert res["resumes"] == 1
        assert min(list_hits(slow)) == next_page, f"refetched a committed page: {list_hits(slow)}"
        assert table(project, detail=False) == expected(slow, detail=False)


def test_dry_run_prints_the_first_pages_rows(project: Project, site: SampleSite) -> None:
    project.config(web_source(site))
    proc = project.cli("run", "players", "--dry-run", "--limit-pages", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "rows that would be inserted (first 20)" in out
    for col in ("id", "name", "profile_url", "elo", "games", "club"):
        assert col in out
    assert "Player 0001" in out and "Player 0020" in out and "Player 0021" not in out
    assert list_hits(site) == {1: 1}
    assert project.query("SELECT COUNT(*) FROM sqlite_master WHERE name = 'players'") == [(0,)]


def test_missing_browser_says_how_to_install_one(project: Project, site: SampleSite) -> None:
    project.config(web_source(site, detail=False).replace("browser: {timeout: 10s}",
                                                          "browser: {executable: /nonexistent/chromium}"))
    proc = project.cli("run", "players", "--json")
    assert proc.returncode != 0
    [res] = json.loads(proc.stdout)
    assert "/nonexistent/chromium" in res["error"] and "apt install chromium" in res["error"]
    assert "playwright install chromium" in res["error"]
    doctor = project.cli("doctor")
    assert "/nonexistent/chromium" in doctor.stdout and doctor.returncode != 0


def test_doctor_reports_the_browser_and_its_version(project: Project, site: SampleSite) -> None:
    project.config(web_source(site, detail=False))
    proc = project.cli("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "/usr/bin/chromium" in proc.stdout and "Chromium" in proc.stdout
    assert "playwright" in proc.stdout.lower()


@pytest.mark.parametrize(("old", "new", "expect"), [
    ('regex: "([0-9.]+)"', 'regex: "([0-9.+"', "regex '([0-9.+' does not compile"),
    ("pages: {end: .empty}", 'pages: {end: .empty}\n    next: "a.next"', "give either {page} in url or next:"),
    ("url_field: profile_url", "url_field: nope", "url_field 'nope' is not a list field"),
    ("club: .club", "club: {from: x}", "web fields are read with selector:"),
], ids=["regex", "page-and-next", "url-field", "from"])
def test_config_errors_name_the_key_and_line(project: Project, site: SampleSite, old: str, new: str,
                                             expect: str) -> None:
    text = web_source(site)
    assert old in text
    project.config(text.replace(old, new))
    proc = project.cli("validate")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expect in proc.stderr and "syncdash.yaml:" in proc.stderr, proc.stderr


def test_a_detail_page_that_never_renders_is_an_item_error_the_console_opens(project: Project,
                                                                            site: SampleSite) -> None:
    import asyncio

    from test_console import until

    from syncdash.config import load_config
    from syncdash.store.db import Store
    from syncdash.tui.app import SyncdashApp

    site.never("/players/7")
    project.config(web_source(site, timeout="3s", attempts=1))
    [res] = project.run_json("players", expect=3)
    assert res["counts"]["inserted"] == N - 1 and res["counts"]["failed"] == 1
    [(item, message)] = project.query("SELECT item, message FROM syncdash_item_errors")
    assert item == f"{site.url}/players?page=1:7" and f"{site.url}/players/7" in message and ".profile" in message
    shot, html = message.split("screenshot ")[1].split(", html ")
    html = html.split()[0]
    assert Path(shot).exists() and Path(html).exists()

    async def scenario() -> None:
        cfg = load_config(project.root / "syncdash.yaml")
        app = SyncdashApp(cfg, Store(cfg.database), host=False, poll_interval=0.2)
        os.environ.pop("DISPLAY", None)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(lambda: app.snapshot is not None, pilot, what="first snapshot")
            await pilot.press("e")
            await until(lambda: app.screen.query("#errors") and app.screen.query_one("#errors").row_count == 1,
                        pilot, what="the error is listed")
            await pilot.press("o")
            await until(lambda: app.clipboard, pilot, what="the paths copied")
            assert app.clipboard == f"{shot}\n{html}"
            await pilot.press("q")

    asyncio.run(scenario())


def test_a_web_step_of_a_flow_counts_rows_while_its_own_run_counts_pages(project: Project, site: SampleSite) -> None:
    """The web source's load phase counts list pages (3); the flow's bar for the step counts the rows (45),
    steadily, never the page count under the unit rows (issue 17)."""
    from test_console_progress import assert_steady_rows, flow_step_progress

    project.config(web_source(site, detail=False, concurrency=1) + "flows:\n  - name: scrape\n    steps: [players]\n")
    seen = flow_step_progress(project, "scrape")
    assert_steady_rows(seen, "players", N)
    assert any(p.detail and p.detail.startswith("load: 2 pages") for p, _ in seen), [p.detail for p, _ in seen]
    assert project.query("SELECT p.name, p.done, p.total, p.unit FROM syncdash_run_phases p JOIN syncdash_runs r "
                         "ON r.id = p.run_id WHERE r.source = 'players' ORDER BY p.seq") == [
        ("load", PAGES, PAGES, "pages"), ("finalize", 0, 0, "rows")]
