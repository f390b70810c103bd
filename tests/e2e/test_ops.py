"""Operating a project from the command line (issue 16 part B): one store per project, `state`, `check`,
`validate`'s file checks, messages that suggest the closest name, push dry runs and readable rendering.

Real `syncdash` processes, real files, real SQLite, real local HTTP servers."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

from conftest import Project

PEOPLE = """\
    sources:
      - name: people
        kind: csv
        path: people.csv
        table: people
        primary_key: [id]
        fields:
          id: {from: id, type: int}
          name: name
    """


def _bare_config(project: Project, folder: str) -> Path:
    """A project folder whose config has no `database:` (conftest's Project.config would add one)."""
    root = project.root / folder
    root.mkdir()
    (root / "people.csv").write_text("id,name\n1,Ada\n2,Grace\n3,Alan\n")
    cfg = root / "syncdash.yaml"
    cfg.write_text(PEOPLE.replace("\n    ", "\n").removeprefix("    "))
    return cfg


# ---- one project, one store ---------------------------------------------------------------------------

def test_two_configs_without_database_never_share_history(project: Project) -> None:
    """Each config without `database:` gets its own store under the user data dir: the second project's first
    run inserts its rows instead of reporting them unchanged against the first project's table."""
    a, b = _bare_config(project, "a"), _bare_config(project, "b")
    first = json.loads(project.cli("run", "people", "--json", "--config", str(a)).stdout)
    second = json.loads(project.cli("run", "people", "--json", "--config", str(b)).stdout)
    assert first[0]["counts"]["inserted"] == 3
    assert second[0]["counts"]["inserted"] == 3 and second[0]["counts"]["unchanged"] == 0
    assert first[0]["id"] == second[0]["id"] == 1  # two histories, each starting at run 1

    stores = Path(project.env["XDG_DATA_HOME"]) / "syncdash" / "stores"
    files = sorted(p.name for p in stores.glob("*.db"))
    assert len(files) == 2 and all(f.startswith(("a-syncdash-", "b-syncdash-")) for f in files), files
    assert not (Path(project.env["XDG_DATA_HOME"]) / "syncdash" / "syncdash.db").exists()

    status = project.cli("status", "--config", str(a))
    assert status.returncode == 0, status.stderr
    [line] = [ln for ln in status.stdout.splitlines() if ln.startswith("store:")]
    assert str(stores) in line and "a-syncdash-" in line and "this config's own" in line
    again = json.loads(project.cli("run", "people", "--json", "--config", str(a)).stdout)
    assert again[0]["counts"]["unchanged"] == 3 and again[0]["id"] == 2


def test_status_names_an_explicit_store(project: Project) -> None:
    project.config(PEOPLE)
    project.write("people.csv", "id,name\n1,Ada\n")
    proc = project.cli("status")
    assert proc.returncode == 0, proc.stderr
    assert f"store: sqlite:///{project.db}" in proc.stdout.replace("\n", "")
    assert "this config's own" not in proc.stdout


# ---- state -------------------------------------------------------------------------------------------------

def test_state_shows_resets_and_sets_the_cursor(project: Project) -> None:
    """`state NAME` prints the stored cursor; `--set-cursor` makes the next run ask from that value; `--reset`
    makes it start from `initial` again. Checked on the requests a real local API receives."""
    from syncdash_demo.sampleapi import SampleApi

    with SampleApi(n=30, lifetime=300) as api:
        project.config(f"""\
            sources:
              - name: players
                kind: rest
                url: {api.url}/v1/page/players
                records: data.items
                pagination: {{type: page, page_param: page, size_param: limit, size: 40, total_path: meta.total}}
                incremental: {{cursor_field: updated_at, param: updated_since, initial: "2000-01-01T00:00:00Z"}}
                table: players
                primary_key: [id]
                fields: {{id: {{from: id, type: int}}, updated_at: {{type: datetime}}}}
            """)
        before = project.cli("state", "players")
        assert before.returncode == 0, before.stderr
        assert "cursor: none" in before.stdout and "checkpoint: none" in before.stdout

        def sent() -> set[str | None]:
            got = {r.query.get("updated_since") for r in api.requests if r.path.startswith("/v1/")}
            api.requests.clear()
            return got

        project.run_json("players", expect=0)
        assert sent() == {"2000-01-01T00:00:00Z"}
        newest = max(r["updated_at"] for r in api.records)
        shown = project.cli("state", "players")
        assert f"cursor (load): {newest}" in shown.stdout, shown.stdout
        assert json.loads(project.cli("state", "players", "--json").stdout)["cursor"] == {"load": newest}

        moved = project.cli("state", "players", "--set-cursor", "2020-06-01T00:00:00Z")
        assert moved.returncode == 0, moved.stderr
        assert "cursor (load): 2020-06-01T00:00:00Z" in moved.stdout
        project.run_json("players", expect=0)
        assert sent() == {"2020-06-01T00:00:00Z"}

        reset = project.cli("state", "players", "--reset")
        assert reset.returncode == 0 and "cursor: none" in reset.stdout, reset.stdout + reset.stderr
        assert "2000-01-01T00:00:00Z" in reset.stderr  # says where the next run starts
        project.run_json("players", expect=0)
        assert sent() == {"2000-01-01T00:00:00Z"}

        bad = project.cli("state", "players", "--stream", "x")
        assert bad.returncode == 2 and "--stream goes with --set-cursor" in bad.stderr
        unknown = project.cli("state", "player")
        assert unknown.returncode == 2 and "unknown source 'player'" in unknown.stderr


def _browser_available(project: Project) -> bool:
    """Whether syncdash finds a Chromium in the tests' environment (`syncdash doctor`'s browser line)."""
    doctor = project.cli("doctor")
    return any(ln.startswith("ok") and "browser" in ln for ln in doctor.stdout.splitlines())


# ---- check and validate ---------------------------------------------------------------------------------

def test_check_opens_every_source_and_says_what_fails(project: Project) -> None:
    """`check` reads the first REST page, the first web page in the real Chromium, the CSV header and the
    target database; one failing source makes the exit 1, and each line says what works and what does not.
    Nothing is recorded: no run, no target table."""
    from syncdash_demo.sampleapi import SampleApi
    from syncdash_demo.samplesite import SampleSite

    project.write("people.csv", "id,name\n1,Ada\n")
    project.write("short.csv", "id\n1\n")
    with SampleApi(n=30, lifetime=300) as api, SampleSite(25, delay=0.05, lifetime=300) as site:
        project.config(f"""\
            sources:
              - name: people
                kind: csv
                path: people.csv
                table: people
                primary_key: [id]
                fields: {{id: {{type: int}}, name: name}}
              - name: short
                kind: csv
                path: short.csv
                table: short
                primary_key: [id]
                fields: {{id: {{type: int}}, name: name}}
              - name: api
                kind: rest
                url: {api.url}/v1/page/players
                records: data.items
                pagination: {{type: page, page_param: page, size_param: limit, size: 10, total_path: meta.total}}
                table: api_players
                primary_key: [id]
                fields: {{id: {{type: int}}}}
              - name: down
                kind: rest
                url: http://127.0.0.1:9/v1/x
                retry: {{attempts: 1}}
                table: down
                primary_key: [id]
                fields: {{id: {{type: int}}}}
              - name: site
                kind: web
                url: {site.url}/players?page={{page}}
                pages: {{end: .empty}}
                wait_for: "table.players tbody tr"
                rows: "table.players tbody tr"
                browser: {{timeout: 10s}}
                table: site_players
                primary_key: [id]
                fields: {{id: {{selector: td.id, type: int}}}}
            """)
        proc = project.cli("check", "--json")
        assert proc.returncode == 1, proc.stderr
        got = {r["source"]: r for r in json.loads(proc.stdout)}
        has_browser = _browser_available(project)
        assert {n: r["ok"] for n, r in got.items()} == {
            "people": True, "short": False, "api": True, "down": False, "site": has_browser}, got["site"]
        assert all(any(c["what"] == "target database" and c["ok"] for c in r["checks"]) for r in got.values())
        [short] = [c for c in got["short"]["checks"] if not c["ok"]]
        assert "short.csv" in short["detail"] and "'name'" in short["detail"]
        [api_read] = [c for c in got["api"]["checks"] if c["what"] == "read"]
        assert api_read["detail"].startswith("10 record(s)")
        assert len([r for r in api.requests if r.path.startswith("/v1/")]) == 1  # the first page only
        [site_read] = [c for c in got["site"]["checks"] if c["what"] == "read"]
        if has_browser:  # the first page, rendered by the real Chromium
            assert site_read["detail"].startswith("20 record(s)"), site_read
        else:  # a machine without one: the check says so, as a run would
            assert "no Chromium or Chrome found" in site_read["detail"], site_read
        [down] = [c for c in got["down"]["checks"] if not c["ok"]]
        assert "127.0.0.1:9" in down["detail"]

        ok = project.cli("check", "people", "api")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "ok people (csv)" in ok.stdout and "ok api (rest)" in ok.stdout
    assert project.query("SELECT COUNT(*) FROM syncdash_runs") == [(0,)]
    assert project.query("SELECT name FROM sqlite_master WHERE name IN ('people', 'api_players')") == []
    typo = project.cli("check", "peple")
    assert typo.returncode == 2 and "unknown source 'peple'" in typo.stderr


def test_validate_checks_csv_files_headers_and_the_browser(project: Project) -> None:
    project.write("people.csv", "id,full_name\n1,Ada\n")
    project.config("""\
        sources:
          - name: people
            kind: csv
            path: people.csv
            table: people
            primary_key: [id]
            fields: {id: {type: int}, name: name}
          - name: gone
            kind: csv
            path: gone.csv
            table: gone
            primary_key: [id]
            fields: {id: {type: int}}
          - name: site
            kind: web
            url: http://127.0.0.1:9/players
            rows: "tr"
            browser: {executable: /nonexistent/chromium}
            table: site
            primary_key: [id]
            fields: {id: {selector: td.id}}
        """)
    proc = project.cli("validate")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "FAIL file:" in out and "lacks column(s) 'name'" in out and "full_name" in out
    assert "warning" in out and "gone.csv" in out  # a file may appear later: a warning, not a failure
    assert "warning browser:" in out and "/nonexistent/chromium" in out  # this machine's, like doctor says
    assert "1 problem(s)" in proc.stderr
    project.write("people.csv", "id,name\n1,Ada\n")
    project.write("gone.csv", "id\n1\n")
    project.config(PEOPLE)
    fine = project.cli("validate")
    assert fine.returncode == 0 and "ok file: found; the header has every mapped column" in fine.stdout, fine.stdout
    assert not project.db.exists() or project.query("SELECT COUNT(*) FROM syncdash_runs") == [(0,)]


# ---- messages -----------------------------------------------------------------------------------------------

def test_typos_suggest_the_closest_command_source_and_key(project: Project) -> None:
    project.config(PEOPLE)
    project.write("people.csv", "id,name\n1,Ada\n")
    cmd = project.cli("stauts")
    assert cmd.returncode == 2 and "unknown command 'stauts'; did you mean `status`?" in cmd.stderr, cmd.stderr
    src = project.cli("run", "peeple")
    assert src.returncode == 2 and "unknown source 'peeple'; did you mean `people`?" in src.stderr, src.stderr
    far = project.cli("pause", "zzz")
    assert far.returncode == 2 and "did you mean" not in far.stderr and "people" in far.stderr

    project.config(PEOPLE.replace("primary_key: [id]", "primry_key: [id]\n        csv: {delimter: ';'}"))
    bad = project.cli("validate")
    assert bad.returncode == 2
    assert "syncdash.yaml:7: sources.0.primry_key: unknown key; did you mean `primary_key`?" in bad.stderr, bad.stderr
    assert "sources.0.csv.delimter: unknown key; did you mean `delimiter`?" in bad.stderr
    project.config("soruces: []\n" + textwrap.dedent(PEOPLE))
    top = project.cli("validate")
    assert "soruces: unknown key; did you mean `sources`?" in top.stderr, top.stderr


def test_a_yaml_syntax_error_is_one_sentence_with_line_and_column(project: Project) -> None:
    project.config(PEOPLE.replace("        table: people", "       table: people"))
    proc = project.cli("validate")
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.endswith("invalid YAML at line 6, column 4: this line is indented differently from the lines "
                         "around it"), line
    assert "syncdash.yaml:6" in line
    project.config(PEOPLE.replace("primary_key: [id]", "primary_key: [id"))
    [line] = project.cli("validate").stderr.strip().splitlines()
    assert "syncdash.yaml:7: primary_key: invalid YAML at line 7, column 18: the `[` opened on line 7 is never " \
           "closed" in line, line


# ---- rendering ------------------------------------------------------------------------------------------

def test_show_renders_durations_checkpoints_and_counts_in_words(project: Project) -> None:
    """A fast run took milliseconds (not `0.0s`); a killed run's checkpoint reads as fields (file, line,
    batches), and the counts are words."""
    import time

    project.config(PEOPLE)
    project.write("people.csv", "id,name\n1,Ada\n2,Grace\n")
    project.run_json("people", expect=0)
    shown = project.cli("show", "1")
    assert shown.returncode == 0, shown.stderr
    took = shown.stdout.split("took ", 1)[1].split(",")[0].split()[0]
    assert took.endswith("ms") and took[:-2].isdigit(), shown.stdout
    assert "0.0s" not in shown.stdout and "0.00s" not in shown.stdout
    assert "counts: 2 inserted, 0 updated, 0 unchanged, 0 deleted, 0 failed" in shown.stdout

    project.write("big.csv", "id,name\n" + "".join(f"{i},n{i}\n" for i in range(200_000)))
    project.config(PEOPLE.replace("people.csv", "big.csv").replace("table: people", "table: big")
                   .replace("name: people", "name: big").replace("fields:", "batch_size: 20\n        fields:"))
    proc = project.popen("run", "big")
    deadline = time.monotonic() + 60
    ck = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            con = sqlite3.connect(project.db, timeout=1)
            rows = con.execute("SELECT checkpoint FROM syncdash_runs WHERE id = 2").fetchall()
            con.close()
        except sqlite3.Error:
            rows = []
        if rows and rows[0][0] and json.loads(rows[0][0])["batches"] >= 3:
            ck = json.loads(rows[0][0])
            break
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=30)
    assert ck is not None, "the run committed no batch before the deadline"
    shown = project.cli("show", "2")
    [line] = [ln for ln in shown.stdout.splitlines() if ln.startswith("checkpoint:")]
    assert line.startswith("checkpoint: stream 1, file ") and "big.csv line " in line, line
    assert "batch(es) committed" in line and "{" not in line, line
