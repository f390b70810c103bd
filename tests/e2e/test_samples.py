"""The demo, the sample config and the typed fast paths that make big loads cheap."""

from __future__ import annotations

import json
import sqlite3

from conftest import Project


def test_demo_syncs_sample_sources_twice(project: Project) -> None:
    """`make demo` runs this: CSV and REST sources synced twice, bad rows reported, retries and a breaker shown."""
    demo = project.root / "demo"
    proc = project.cli("demo", "--dir", str(demo))
    assert proc.returncode == 0, proc.stderr
    assert "music_catalog: run 1 partial" in proc.stdout
    assert "partner_stores: run 7 succeeded" in proc.stdout
    assert "Retry-After: 1 s (429)" in proc.stdout and "retry after http 500" in proc.stdout
    assert "circuit breaker for 127.0.0.1:" in proc.stdout
    con = sqlite3.connect(demo / "syncdash.db")
    runs = con.execute("SELECT id, source, status, inserted, updated, deleted, failed FROM syncdash_runs "
                       "ORDER BY id").fetchall()
    day = [("music_catalog", "partial"), ("crm_contacts", "succeeded"), ("partner_stores", "succeeded"),
           ("league_players", "succeeded")]
    flow = [("race_day", "partial"), ("registrations", "succeeded"), ("participants_to_scoring", "partial"),
            ("race_results", "succeeded")]
    assert [r[1:3] for r in runs] == [*day, *day, ("partner_feed", "failed"), ("partner_feed", "failed"), *flow,
                                      ("league_ratings", "partial")]
    # the web page: 60 players read by Chromium, one without a name, two 503s retried
    assert runs[14][3:] == (59, 0, 0, 1)
    assert con.execute("SELECT games, club FROM ratings WHERE id = 12").fetchone() == (156, "Old Town")
    # the flow: 2 tenants x 24 participants pulled and pushed (one bib refused), 47 results back
    assert [r[3] for r in runs[10:14]] == [48 + 47 + 47, 48, 47, 47] and runs[12][6] == 1
    assert runs[3][3] == 30 and runs[7][3:5] == (0, 3)  # the API's second answer: only the 3 touched players
    errors = con.execute("SELECT error_type FROM syncdash_runs WHERE source = 'partner_feed'").fetchall()
    assert errors == [("breaker",), ("breaker",)]
    assert runs[0][3:] == (1196, 0, 0, 4)      # four deliberately broken rows
    assert runs[4][3:] == (18, 25, 3, 1)       # 15 new + 3 fixed, 25 plays changed, 3 withdrawn, 1 still bad
    live = con.execute("SELECT count(*) FROM content_index WHERE _deleted_at IS NULL").fetchone()[0]
    assert live == 1196 + 18 - 3
    # latin-1 CRM delta: accents survive, booleans typed
    assert con.execute("SELECT name, vip FROM contacts WHERE contact_id = 105").fetchone() == ("Zoë Martin-Keane", 1)
    con.close()
    again = project.cli("demo", "--dir", str(demo))  # starts afresh, same result
    assert again.returncode == 0 and "music_catalog: run 1 partial" in again.stdout


def test_sample_config_validates(project: Project) -> None:
    sample = project.root.parent / "config.sample.yaml"
    sample.write_text((__import__("pathlib").Path(__file__).parents[2] / "config.sample.yaml").read_text())
    proc = project.cli("--config", str(sample), "validate", env={"CRM_EXPORT_DIR": "/srv/crm-secret-dir",
                                                                   "PLAYERS_TOKEN": "tok", "PAYMENTS_KEY": "key",
                                                                   "WEBHOOK_SECRET": "whs", "ACME_SCORE_TOKEN": "a1",
                                                                   "GLOBEX_SCORE_TOKEN": "g1"})
    assert proc.returncode == 0, proc.stderr
    assert "music_catalog" in proc.stdout and "crm_contacts" in proc.stdout
    assert "race_day (flow)" in proc.stdout and "participants_to_scoring (push)" in proc.stdout
    assert "crm-secret-dir" not in proc.stdout + proc.stderr


def test_datetime_and_date_fast_paths_agree_with_the_full_converters(project: Project) -> None:
    """Canonical timestamps skip re-formatting and formatted dates are memoised: results must not change."""
    project.write("data/t.csv", """\
        id,ts,day
        1,2024-01-02T03:04:05,02/01/2024
        2,2024-01-02 03:04:05,02/01/2024
        3,2024-01-02T03:04:05Z,03/01/2024
        4,2024-W01-1T10:00:00,02/01/2024
        5,2024-01-02T10:00+01,03/01/2024
        6,2024-01-02T03:04:05.250000,03/01/2024
        7,2024-13-02T03:04:05,03/01/2024
        8,2024-01-02T03:04:05,31/02/2024
        """)
    project.config("""\
        sources:
          - name: t
            kind: csv
            path: data/t.csv
            table: t
            primary_key: [id]
            fields:
              id: {from: id, type: int}
              ts: {from: ts, type: datetime}
              day: {from: day, type: date, format: "%d/%m/%Y"}
        """)
    runs = project.run_json("t", expect=3)
    assert runs[0]["counts"]["inserted"] == 6 and runs[0]["counts"]["failed"] == 2
    got = dict(project.query("SELECT id, ts || ' ' || day FROM t"))
    assert got == {
        1: "2024-01-02T03:04:05 2024-01-02",
        2: "2024-01-02T03:04:05 2024-01-02",
        3: "2024-01-02T03:04:05+00:00 2024-01-03",
        4: "2024-01-01T10:00:00 2024-01-02",
        5: "2024-01-02T10:00:00+01:00 2024-01-03",
        6: "2024-01-02T03:04:05.250000 2024-01-03",
    }
    errors = json.loads(project.cli("errors", "--json").stdout)
    assert sorted((e["line"], e["column"]) for e in errors) == [(8, "ts"), (9, "day")]
