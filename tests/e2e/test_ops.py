"""Operating a project from the command line (issue 16 part B): one store per project, `state`, `check`,
`validate`'s file checks, messages that suggest the closest name, push dry runs and readable rendering.

Real `syncdash` processes, real files, real SQLite, real local HTTP servers."""

from __future__ import annotations

import json
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
