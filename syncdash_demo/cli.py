"""`syncdash demo`: real sample sources, synced twice, so a new user sees inserts, updates, deletes, bad rows
and the run history without writing a config first.

The demo keeps its own config, data and SQLite store in one directory (default `<user data dir>/demo`),
so it never touches a real store; running it again starts it afresh.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from syncdash.cli import render
from syncdash.cli.render import esc

CONFIG = """\
# The syncdash demo: three CSV sources, two REST sources, a JavaScript-rendered web page and a race-day flow (pull
# for two tenants, push to a scoring system, pull results back) showing the main options. Edit the data and run
#   syncdash --config {config} run --all
# (the REST and web sources read sample servers that `syncdash demo` runs on {api} and others while it runs)
database: sqlite:///{db}
tenants:                           # one credential set per timing customer; literal tokens are masked like ${{VAR}}
  harbour_runners: {{reg_token: demo-reg-harbour, score_token: demo-score-harbour, event: "101"}}
  west_coast_tri: {{reg_token: demo-reg-west, score_token: demo-score-west, event: "202"}}
flows:
  - name: race_day
    description: registrations -> scoring system -> results, every minute
    steps: [registrations, participants_to_scoring, race_results]
    schedule: every 1m
sources:
  - name: music_catalog
    kind: csv
    description: a label's catalogue export, re-sent in full every night
    path: data/music_catalog.csv
    table: content_index
    primary_key: [external_id]
    schedule: every 1m
    mode: full
    deletes: soft
    fields:
      external_id: {{from: id, type: str}}
      title: {{from: song_name, required: true}}
      artist: artist_name
      plays: {{from: play_count, type: int, default: 0}}
      released: {{from: release_date, type: date, format: "%d/%m/%Y"}}
    batch_size: 200

  - name: crm_contacts
    kind: csv
    description: a CRM's daily delta, Excel-flavoured (semicolons, latin-1)
    path: data/crm_contacts.csv
    table: contacts
    primary_key: [contact_id]
    schedule: every 1m
    mode: incremental
    csv: {{delimiter: ";", encoding: latin-1}}
    fields:
      contact_id: {{from: Id, type: int}}
      name: {{from: Name, required: true}}
      email: Email
      vip: {{from: VIP, type: bool, default: false}}
      updated_at: {{from: Updated, type: datetime}}

  - name: partner_stores
    kind: csv
    description: one file per region from a partner, loaded as one source
    path: data/stores/*.csv
    table: stores
    primary_key: [region, store_id]
    mode: full
    deletes: hard
    fields:
      region: region
      store_id: {{from: store, type: int}}
      city: city
      opening_hours: {{from: hours, type: json}}

  - name: league_players
    kind: rest
    description: a ratings site's API, paged, fetched 2 pages at a time, only what changed since last time
    url: {api}/v1/page/players
    params: {{country: ie}}
    records: data.items
    pagination: {{type: page, page_param: page, size_param: limit, size: 5, total_path: meta.total}}
    incremental: {{cursor_field: updated_at, param: updated_since, initial: "2024-01-01T00:00:00Z", lag: 5m}}
    concurrency: 2
    retry: {{attempts: 4, initial: 0.2s, max: 2s}}
    rate_limit: {{rate: 50/s, burst: 10}}
    table: league_players
    primary_key: [id]
    schedule: every 1m
    fields:
      id: {{from: id, type: int}}
      name: {{from: profile.display_name, required: true}}
      club: club.name
      first_tag: tags.0
      elo: {{type: float}}
      games: {{type: int}}
      updated_at: {{type: datetime}}

  - name: partner_feed
    kind: rest
    description: a partner API that is down today; its circuit breaker opens instead of hammering it
    url: {partner}/v1/cursor/players
    records: data
    pagination: {{type: cursor, cursor_path: meta.next_cursor}}
    retry: {{attempts: 5, initial: 0.1s, max: 0.5s}}
    circuit_breaker: {{failures: 3, reset_after: 10m}}
    table: partner_feed
    primary_key: [id]
    schedule: every 1m
    run_retry: {{attempts: 3, backoff: 20s}}
    fields:
      id: {{from: id, type: int}}
      name: profile.display_name

  - name: league_ratings
    kind: web
    description: a ratings page rendered by JavaScript, plus each player's profile page, read by headless Chromium
    url: {site}/players?page={{page}}
    pages: {{end: .empty, max: 20}}
    wait_for: "table.players tbody tr"
    rows: "table.players tbody tr"
    concurrency: 2
    retry: {{attempts: 3, initial: 0.2s, max: 1s}}
    table: ratings
    primary_key: [id]
    schedule: every 5m
    fields:
      id: {{selector: td.id, type: int}}
      name: {{selector: "td.name a", required: true}}
      profile_url: {{selector: "td.name a", attr: href}}
      elo: {{selector: td.elo, type: float, regex: "([0-9.]+)"}}
    detail:
      url_field: profile_url
      wait_for: .profile
      fields:
        games: {{selector: .games, type: int}}
        club: .club

  - name: registrations
    kind: rest
    description: each tenant's participants from the registration platform (its own token, its own event)
    for_each_tenant: true
    url: {registration}/v1/events/{{tenant.event}}/participants
    auth: {{type: bearer, token: "{{tenant.reg_token}}"}}
    records: participants
    pagination: {{type: page, size: 20, size_param: per_page, total_path: meta.total}}
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
    description: new or changed participants to the scoring system, in batches of 10
    for_each_tenant: true
    from_table: participants
    key: [id]
    url: {scoring}/v1/events/{{event_id}}/participants
    batch: 10
    body: {{externalId: id, bib: bib, firstName: first_name, lastName: last_name}}
    auth: {{type: bearer, token: "{{tenant.score_token}}"}}
    retry: {{attempts: 4, initial: 0.2s, max: 2s}}

  - name: race_results
    kind: rest
    description: results back from the scoring system
    for_each_tenant: true
    url: {scoring}/v1/events/{{tenant.event}}/results
    auth: {{type: bearer, token: "{{tenant.score_token}}"}}
    records: results
    table: race_results
    primary_key: [external_id]
    fields: {{external_id: {{from: externalId, type: int}}, bib: {{type: int}}, time_s: {{type: int}}, name: name}}
"""

ARTISTS = ["The Harbour Lights", "Niamh Keane", "Lisbon Tram Co.", "Static Orchard", "Dúlra", "Mo Ferreira",
           "Quiet Engines", "Aoife & the Tides", "Paper Satellites", "Joana Prado"]
WORDS = ["river", "night", "glass", "summer", "echo", "west", "paper", "signal", "harbour", "gold", "quiet",
         "lantern", "ocean", "city", "fire", "north", "dream", "static", "orchard", "tide"]
NAMES = ["Seán Ó Briain", "Zoë Martin", "João Silva", "Ana Müller", "Chloé Dubois", "Pádraig Walsh",
         "Inês Costa", "Björn Larsen", "Mairéad Ní Bhriain", "René Faure"]


def _songs(rng: random.Random, n: int) -> list[list[str]]:
    start = date(1998, 1, 1)
    rows = []
    for i in range(1, n + 1):
        title = " ".join(rng.sample(WORDS, rng.randint(1, 3))).title()
        released = start + timedelta(days=rng.randrange(0, 9500))
        rows.append([f"TRK-{i:05d}", title, rng.choice(ARTISTS), str(rng.randrange(0, 250_000)),
                     released.strftime("%d/%m/%Y")])
    return rows


def _write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",",
               encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)


def _day_one(data: Path, rng: random.Random) -> list[list[str]]:
    songs = _songs(rng, 1200)
    broken = [*songs]
    broken[41] = [*songs[41]]
    broken[41][4] = "31/02/2019"           # no such date
    broken[97] = [*songs[97]]
    broken[97][1] = ""                     # required title missing
    broken[310] = songs[310][:3]           # ragged: two fields short
    broken[555] = [*songs[555]]
    broken[555][3] = "lots"                # not an int
    _write_csv(data / "music_catalog.csv", ["id", "song_name", "artist_name", "play_count", "release_date"],
               broken)
    contacts = [[str(100 + i), NAMES[i % len(NAMES)], f"contact{i}@example.ie", "yes" if i % 7 == 0 else "no",
                 f"2026-11-{1 + i % 20:02d}T09:{i % 60:02d}:00"] for i in range(60)]
    _write_csv(data / "crm_contacts.csv", ["Id", "Name", "Email", "VIP", "Updated"], contacts, ";", "latin-1")
    hours = '{"mon-fri": "09:00-18:00", "sat": "10:00-16:00"}'
    for region, cities in (("ie", ["Dublin", "Cork", "Galway"]), ("pt", ["Lisbon", "Porto", "Braga", "Faro"])):
        _write_csv(data / "stores" / f"{region}.csv", ["region", "store", "city", "hours"],
                   [[region, str(n + 1), c, hours] for n, c in enumerate(cities)])
    return songs


def _day_two(data: Path, songs: list[list[str]], rng: random.Random) -> None:
    """The next export: plays went up, a few tracks were withdrawn, new ones arrived, three bad rows fixed."""
    rows = [[*r] for r in songs if r[0] not in {"TRK-00005", "TRK-00777", "TRK-01001"}]
    for r in rng.sample(rows, 25):
        r[3] = str(int(r[3]) + rng.randrange(100, 5000))
    for i, r in enumerate(_songs(rng, 15), start=1201):
        rows.append([f"TRK-{i:05d}", *r[1:]])
    still_bad = next(r for r in rows if r[0] == "TRK-00042")
    still_bad[4] = "31/02/2019"            # still broken upstream: stays an open error
    _write_csv(data / "music_catalog.csv", ["id", "song_name", "artist_name", "play_count", "release_date"], rows)
    contacts = [["105", "Zoë Martin-Keane", "zoe@example.ie", "yes", "2026-11-22T08:00:00"],
                ["999", "Nuno Gonçalves", "nuno@example.pt", "no", "2026-11-22T08:05:00"]]
    _write_csv(data / "crm_contacts.csv", ["Id", "Name", "Email", "VIP", "Updated"], contacts, ";", "latin-1")
    (data / "stores" / "pt.csv").write_text(
        (data / "stores" / "pt.csv").read_text(encoding="utf-8").replace("Faro", "Faro Marina"), encoding="utf-8")


def default_demo_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("syncdash")) / "demo"


def write_demo(root: Path, api: str = "http://127.0.0.1:8787", partner: str = "http://127.0.0.1:8788",
               registration: str = "http://127.0.0.1:8789",
               scoring: str = "http://127.0.0.1:8790",
               site: str = "http://127.0.0.1:8791") -> tuple[Path, list[list[str]]]:
    """A fresh demo directory: config, day-one data, empty store. `api`, `partner`: the sample APIs' URLs
    (two servers, so the partner's open circuit breaker, kept per host, does not stop the other source)."""
    if root.exists():
        for name in ("data", "syncdash.db", "syncdash.db-wal", "syncdash.db-shm", "syncdash.yaml"):
            p = root / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "syncdash.yaml"
    config.write_text(CONFIG.format(config=config, db=root / "syncdash.db", api=api, partner=partner,
                                    registration=registration, scoring=scoring, site=site), encoding="utf-8")
    songs = _day_one(root / "data", random.Random(2026))
    return config, songs


def _command() -> str:
    """How to call syncdash again: `make demo` runs it from .venv, which is often not on PATH."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "__main__.py":
        return f"{sys.executable} -m syncdash"
    if shutil.which("syncdash") == str(argv0.resolve()) or argv0.name != "syncdash":
        return "syncdash"
    return str(argv0)


HEALTHY = ["music_catalog", "crm_contacts", "partner_stores", "league_players"]


DEMO_TENANTS = {"harbour_runners": ("demo-reg-harbour", "demo-score-harbour", "101"),
                "west_coast_tri": ("demo-reg-west", "demo-score-west", "202")}


def register(sub: Any) -> None:
    """`syncdash demo`, added to the CLI through the `syncdash.commands` entry point."""
    s = sub.add_parser("demo", help="write a demo config and sample data, run every source, show the runs")
    s.add_argument("--dir", help="where to put the demo (default: <user data dir>/demo)")
    s.add_argument("--no-console", action="store_true", help="do not open the console afterwards")
    s.set_defaults(handler=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from syncdash.cli.main import main
    from syncdash.cli.process import EXIT_FAILED, EXIT_PARTIAL
    from syncdash_demo.sampleapi import SampleApi
    from syncdash_demo.sampleflow import RegistrationApi, ScoringApi, demo_participants
    from syncdash_demo.samplesite import SampleSite

    root = Path(args.dir).expanduser().resolve() if args.dir else default_demo_dir()
    life = 4 * 3600
    people = {t: demo_participants(t, e, 24, base=int(e) * 10) for t, (_r, _s, e) in DEMO_TENANTS.items()}
    with SampleApi(n=300, latency=0.01, lifetime=life) as api, SampleApi(n=50, lifetime=life) as partner, \
            RegistrationApi({t: (r, e) for t, (r, _s, e) in DEMO_TENANTS.items()},
                            people,
                            latency=0.01, lifetime=life) as registration, \
            ScoringApi({t: (s, e) for t, (_r, s, e) in DEMO_TENANTS.items()}, latency=0.01,
                       lifetime=life) as scoring, SampleSite(60, delay=0.1, lifetime=life) as site:
        config, songs = write_demo(root, api.url, partner.url, registration.url, scoring.url, site.url)
        render.out.rule("[bold]syncdash demo[/]")
        render.out.print(f"config and sample data in {esc(root)}; sample API on {esc(api.url)}\n")
        render.out.print("[bold]1. first sync[/]: CSV files and a paged API into an empty SQLite store "
                         "(the API fails twice on the way: watch the retries)")
        api.fail("page=2&", 500, times=1)
        api.fail("page=4&", 429, times=1, retry_after="1")
        first = main(["--config", str(config), "run", *HEALTHY])
        _day_two(root / "data", songs, random.Random(11))
        irish = [r["id"] for r in api.records if (r.get("profile") or {}).get("country") == "ie"]
        api.touch(irish[3:6], at="2030-01-01T08:00:00Z")
        render.out.print("\n[bold]2. the next day[/]: plays changed, tracks withdrawn and added, a CRM delta, "
                         "three players updated (the API sends only those)")
        second = main(["--config", str(config), "run", *HEALTHY])
        render.out.print("\n[bold]3. a partner API that is down[/]: 503 on every request; after 3 failures the "
                         "circuit breaker opens, and the next run fails fast without a request")
        partner.fail("/v1/cursor/", 503, times=-1)
        down = main(["--config", str(config), "run", "partner_feed"])
        again = main(["--config", str(config), "run", "partner_feed"])
        render.out.print("\n[bold]4. a race-day flow[/]: participants of two timing customers pulled with each one's "
                         "token, pushed to the scoring system in batches, results pulled back; the scoring system "
                         "refuses one bib number and is briefly down (503, retried)")
        scoring.reject_bibs = {107}
        scoring.fail("/v1/events/202/participants", 503, times=1)
        flow = main(["--config", str(config), "run", "race_day"])
        scoring.reject_bibs = set()  # fixed upstream: `r` on its error in the console sends it again
        render.out.print("\n[bold]5. a web page rendered by JavaScript[/]: headless Chromium reads a ratings table "
                         "page by page and each player's profile page; one row has no name (an item error), and "
                         "the site answers 503 twice on the way (retried)")
        site.missing_name = {13}
        site.fail("/players?page=2", 503, times=2)
        main(["--config", str(config), "run", "league_ratings"])
        render.out.print("\n[bold]6. history[/]")
        main(["--config", str(config), "runs"])
        if sys.stdout.isatty() and not getattr(args, "no_console", False):
            render.out.print("\n[bold]7. the console[/]: every source runs each minute; q quits")
            api.clear_faults()  # the partner stays down: its breaker and retries show
            from syncdash.cli.commands import open_store
            from syncdash.config import load_config
            from syncdash.tui.app import SyncdashApp

            cfg = load_config(config)
            SyncdashApp(cfg, open_store(cfg.database)).run()
    cmd = esc(f"{_command()} --config {config}")
    render.out.print(
        "\n[bold]explore[/]\n"
        f"  {cmd} show 5    what changed in the catalogue, and its bad rows\n"
        f"  {cmd} errors    rows that failed, with file and line\n"
        f"  {cmd} status    every source at a glance\n"
        f"  {cmd} export content_index --format jsonl\n"
        "  (the sample API stopped with the demo: running the REST sources again fails to connect)\n")
    # the sample data holds deliberately bad rows (`partial`) and a partner that is down (`failed`)
    ok = first in (0, EXIT_PARTIAL) and second in (0, EXIT_PARTIAL) and flow == EXIT_PARTIAL
    return 0 if ok and down == EXIT_FAILED and again == EXIT_FAILED else 1
