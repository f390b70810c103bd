"""A deterministic store for the console's snapshot tests and `make screenshots`.

Fixed timestamps around NOW and a fixed clock, so every age ("5m ago"), rate and ETA renders the same on every
machine: five sources (CSV, REST, one paused, one never run), a history of finished runs with counts, two ACTIVE
runs owned by another host with determinate phase progress, unresolved item errors and an update with
before/after values. Nothing here runs a sync: build the app with `host=False`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from syncdash.config.load import parse_config
from syncdash.config.models import Config
from syncdash.store.db import Store
from syncdash.store.models import Change, ItemError, Run, RunPhase, SourceState

NOW = datetime(2025, 3, 14, 12, 0, 0)
OTHER_OWNER = "1@otherhost:0"  # a worker on another host: never swept as dead from here

# ids the tests and the screenshot script open directly
DIFF_RUN = 8  # customers, partial: updates with before/after, an insert, a delete and item errors
ACTIVE_RUNS = (11, 12)

CONFIG = """\
daemon: {workers: 2}
sources:
  - name: customers
    kind: csv
    description: the CRM's nightly export
    path: data/customers.csv
    table: customers
    primary_key: [id]
    schedule: every 1h
    fields:
      id: {from: id, type: int}
      name: {from: name, required: true}
      email: email
      tier: tier
      credit: {from: credit, type: float}
  - name: players
    kind: rest
    url: https://api.example.com/v1/players
    records: data.items
    pagination: {type: page, size: 100, total_path: meta.total}
    schedule: every 12h
    table: players
    primary_key: [id]
    fields:
      id: {from: id, type: int}
      name: {from: profile.display_name, required: true}
      club: club.name
  - name: orders
    kind: csv
    path: data/orders_*.csv
    table: orders
    primary_key: [order_id]
    mode: incremental
    schedule: "0 3 * * *"
    fields:
      order_id: {from: id, type: int}
      customer_id: {from: customer, type: int}
      total: {from: total, type: float}
      placed_at: {from: placed, type: datetime}
  - name: inventory
    kind: csv
    path: data/inventory.csv
    table: inventory
    primary_key: [sku]
    schedule: every 6h
    fields:
      sku: sku
      stock: {from: stock, type: int}
  - name: prices
    kind: csv
    path: data/prices.csv
    table: prices
    primary_key: [sku]
    fields:
      sku: sku
      price: {from: price, type: float}
"""


def ago(**kw: float) -> datetime:
    return NOW - timedelta(**kw)


def fixed_clock() -> datetime:
    return NOW


def _run(id: int, source: str, kind: str, status: str, started: datetime, secs: float | None, *,
         trigger: str = "schedule", mode: str = "full", owner: str | None = None, **counts: Any) -> Run:
    finished = started + timedelta(seconds=secs) if secs is not None else None
    return Run(id=id, source=source, kind=kind, trigger=trigger, status=status, mode=mode, queued_at=started,
               started_at=started if status != "queued" else None, finished_at=finished,
               heartbeat_at=finished or NOW - timedelta(seconds=2), owner=owner, **counts)


def _finished_phases(run: Run, load_unit: str, load_total: int) -> list[RunPhase]:
    assert run.id is not None and run.started_at is not None and run.finished_at is not None
    mid = run.started_at + (run.finished_at - run.started_at) * 0.9
    return [
        RunPhase(run_id=run.id, seq=0, name="load", status="done", done=load_total, total=load_total, unit=load_unit,
                 started_at=run.started_at, finished_at=mid, inserted=run.inserted, updated=run.updated,
                 unchanged=run.unchanged, failed=run.failed),
        RunPhase(run_id=run.id, seq=1, name="finalize", status="done", done=run.deleted, total=run.deleted,
                 started_at=mid, finished_at=run.finished_at, deleted=run.deleted),
    ]


def populate(store: Store) -> None:
    """Write the deterministic history into an empty store."""
    runs = [
        _run(1, "customers", "csv", "succeeded", ago(hours=5, minutes=2), 41.3, trigger="cli", inserted=12480),
        _run(2, "players", "rest", "succeeded", ago(hours=23, minutes=58), 96.0, inserted=3110),
        _run(3, "orders", "csv", "succeeded", ago(hours=33), 12.5, mode="incremental", inserted=1820, unchanged=0),
        _run(4, "customers", "csv", "succeeded", ago(hours=4, minutes=1), 18.2, updated=214, unchanged=12266,
             inserted=35),
        _run(5, "inventory", "csv", "failed", ago(hours=3, minutes=30), 0.4),
        _run(6, "customers", "csv", "succeeded", ago(hours=3, minutes=1), 16.9, updated=88, unchanged=12447),
        _run(7, "inventory", "csv", "failed", ago(hours=2, minutes=12), 0.3, trigger="retry"),
        _run(DIFF_RUN, "customers", "csv", "partial", ago(hours=2, minutes=1), 19.4, updated=3, inserted=1,
             deleted=1, unchanged=12528, failed=3),
        _run(9, "players", "rest", "succeeded", ago(hours=11, minutes=59), 88.7, updated=412, unchanged=2698,
             inserted=17),
        _run(10, "orders", "csv", "succeeded", ago(hours=9), 9.8, mode="incremental", inserted=640),
        _run(ACTIVE_RUNS[0], "customers", "csv", "running", ago(minutes=1, seconds=2), None, owner=OTHER_OWNER,
             updated=41, unchanged=5959, inserted=2),
        _run(ACTIVE_RUNS[1], "players", "rest", "running", ago(minutes=4, seconds=30), None, owner=OTHER_OWNER,
             trigger="console", updated=96, unchanged=1104, inserted=4, failed=1),
        _run(13, "orders", "csv", "queued", ago(minutes=3), None, trigger="cli"),
    ]
    runs[4].error = runs[6].error = "data/inventory.csv: file not found"
    runs[4].error_type = runs[6].error_type = "source"
    runs[7].warnings = json.dumps(["3 row(s) failed validation: see `syncdash errors 8`"])
    runs[7].checkpoint = json.dumps({"stream": 0, "source": {"file": "data/customers.csv", "offset": 1048213},
                                     "batches": 3})
    runs[10].checkpoint = json.dumps({"stream": 0, "source": {"file": "data/customers.csv", "offset": 412000},
                                      "batches": 2})
    for r in runs:
        if r.status == "running":
            r.resumes = 1 if r.id == ACTIVE_RUNS[1] else 0

    phases: list[RunPhase] = []
    for r in runs:
        if r.status in ("succeeded", "partial"):
            unit, total = ("pages", 32) if r.kind == "rest" else ("bytes", 1_048_576)
            phases += _finished_phases(r, unit, total)
        elif r.status == "failed":
            phases.append(RunPhase(run_id=r.id or 0, seq=0, name="load", status="failed", unit="bytes",
                                   started_at=r.started_at, finished_at=r.finished_at))
            phases.append(RunPhase(run_id=r.id or 0, seq=1, name="finalize", status="skipped"))
    c_run, p_run = runs[10], runs[11]
    phases += [
        RunPhase(run_id=ACTIVE_RUNS[0], seq=0, name="load", status="running", done=412_000, total=1_048_576,
                 unit="bytes", detail="data/customers.csv line 6003", started_at=c_run.started_at, inserted=2,
                 updated=41, unchanged=5959),
        RunPhase(run_id=ACTIVE_RUNS[0], seq=1, name="finalize", status="pending"),
        RunPhase(run_id=ACTIVE_RUNS[1], seq=0, name="load", status="running", done=12, total=32, unit="pages",
                 detail="page 13 of 32", started_at=p_run.started_at, inserted=4, updated=96, unchanged=1104,
                 failed=1),
        RunPhase(run_id=ACTIVE_RUNS[1], seq=1, name="finalize", status="pending"),
    ]

    def err(run: Run, item: str, key: Any, column: str | None, etype: str, msg: str, payload: dict[str, Any],
            line: int | None = None, retryable: bool = True, created: datetime | None = None) -> ItemError:
        return ItemError(run_id=run.id or 0, source=run.source, phase="load", item=item,
                         item_key=None if key is None else json.dumps([key]), file=None if line is None else
                         "data/customers.csv", line=line, column=column, error_type=etype, message=msg,
                         retryable=retryable, payload=json.dumps(payload),
                         created_at=created or (run.started_at or NOW) + timedelta(seconds=5))

    d = runs[7]
    errors = [
        err(d, "data/customers.csv:2211", 2210, "credit", "validation",
            "credit: could not convert 'n/a' to float",
            {"id": "2210", "name": "Nora Quinn", "email": "nora@example.com", "tier": "gold", "credit": "n/a"},
            line=2211),
        err(d, "data/customers.csv:5870", None, "id", "validation", "id: could not convert 'A-5870' to int",
            {"id": "A-5870", "name": "Tom Byrne", "email": "tom@example.com", "tier": "", "credit": "10"}, line=5870),
        err(d, "data/customers.csv:9120", 4410, "id", "duplicate",
            "duplicate primary key [4410]: first seen at line 4411", {"id": "4410", "name": "Ann Lee",
                                                                        "email": "ann@example.com"},
            line=9120, retryable=False),
        err(p_run, "page 7 item 41", 90231, "name", "validation", "name: required value is missing",
            {"id": 90231, "profile": {"display_name": None}, "club": {"name": "Shamrock Rovers"}}),
    ]
    changes = [
        Change(run_id=DIFF_RUN, source="customers", change="update", key=json.dumps([1042]),
               before=json.dumps({"email": "a.murphy@example.com", "tier": "silver"}),
               after=json.dumps({"email": "aoife.murphy@example.com", "tier": "gold"})),
        Change(run_id=DIFF_RUN, source="customers", change="update", key=json.dumps([2077]),
               before=json.dumps({"credit": 120.5}), after=json.dumps({"credit": 98.25})),
        Change(run_id=DIFF_RUN, source="customers", change="update", key=json.dumps([3151]),
               before=json.dumps({"name": "Sean Kelly"}), after=json.dumps({"name": "Seán Kelly"})),
        Change(run_id=DIFF_RUN, source="customers", change="insert", key=json.dumps([12534]),
               after=json.dumps({"id": 12534, "name": "Maeve Doyle", "email": "maeve@example.com", "tier": "bronze",
                                 "credit": 0.0})),
        Change(run_id=DIFF_RUN, source="customers", change="delete", key=json.dumps([77]),
               before=json.dumps({"id": 77, "name": "Old Account", "email": None, "tier": None, "credit": None})),
    ]
    states = [
        SourceState(source="customers", last_run_id=DIFF_RUN, last_status="partial",
                    last_success_at=runs[7].finished_at, last_success_run_id=DIFF_RUN, last_fire_at=ago(hours=0),
                    lock_run_id=ACTIVE_RUNS[0], lock_owner=OTHER_OWNER, lease_until=NOW + timedelta(seconds=45)),
        SourceState(source="players", last_run_id=9, last_status="succeeded", last_success_at=runs[8].finished_at,
                    last_success_run_id=9, cursor=json.dumps("2025-03-14T00:01:12Z"), lock_run_id=ACTIVE_RUNS[1],
                    lock_owner=OTHER_OWNER, lease_until=NOW + timedelta(seconds=50)),
        SourceState(source="orders", last_run_id=10, last_status="succeeded", last_success_at=runs[9].finished_at,
                    last_success_run_id=10),
        SourceState(source="inventory", last_run_id=7, last_status="failed", paused=True),
    ]
    with store.tx() as s:
        for r in runs:
            s.add(r)
        s.flush()
        for row in (*phases, *errors, *changes, *states):
            s.add(row)


# target tables with live rows, so the dashboard's `rows` column has counts (inventory and prices have none)
TARGETS = {
    "customers": ("id INTEGER PRIMARY KEY, name TEXT, email TEXT, tier TEXT, credit REAL", 12_532, 1),
    "players": ("id INTEGER PRIMARY KEY, name TEXT, club TEXT", 3_127, 0),
    "orders": ("order_id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL, placed_at TEXT", 2_460, 0),
}


def create_targets(store: Store) -> None:
    with store.engine.begin() as c:
        for table, (cols, live, deleted) in TARGETS.items():
            c.exec_driver_sql(f"CREATE TABLE {table} ({cols}, _synced_at TEXT, _run_id INTEGER, _hash INTEGER, "
                              "_deleted_at TEXT)")
            key = cols.split()[0]
            c.exec_driver_sql(f"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {live}) "
                              f"INSERT INTO {table} ({key}, _run_id) SELECT x, 1 FROM n")
            for i in range(deleted):
                c.exec_driver_sql(f"INSERT INTO {table} ({key}, _run_id, _deleted_at) VALUES (?, ?, ?)",
                                  (live + 1 + i, DIFF_RUN, "2025-03-14 09:59:19.400000"))


# ---- a race-day flow half way through: its push step is sending the second tenant's participants ----

FLOW_CONFIG = """\
tenants:
  acme: {reg_token: reg-acme, score_token: score-acme, event: "101"}
  globex: {reg_token: reg-globex, score_token: score-globex, event: "202"}
flows:
  - name: race_day
    description: registrations -> scoring -> results
    schedule: every 30m
    steps: [registrations, participants_to_scoring, results]
sources:
  - name: registrations
    kind: rest
    for_each_tenant: true
    url: https://reg.example.com/v1/events/{tenant.event}/participants
    auth: {type: bearer, token: "{tenant.reg_token}"}
    records: participants
    table: participants
    primary_key: [id]
    fields: {id: {type: int}, event_id: event_id, first_name: first_name, bib: {type: int}}
  - name: participants_to_scoring
    kind: push
    for_each_tenant: true
    from_table: participants
    key: [id]
    url: https://scoring.example.com/v1/events/{event_id}/participants
    batch: 50
    body: {externalId: id, bib: bib, firstName: first_name}
    auth: {type: bearer, token: "{tenant.score_token}"}
  - name: results
    kind: rest
    for_each_tenant: true
    url: https://scoring.example.com/v1/events/{tenant.event}/results
    auth: {type: bearer, token: "{tenant.score_token}"}
    records: results
    table: results
    primary_key: [external_id]
    fields: {external_id: {from: externalId, type: int}, time_s: {type: int}}
"""
FLOW_RUN = 5  # the running flow


def populate_flow(store: Store) -> None:
    started = ago(minutes=2)
    runs = [
        _run(1, "race_day", "flow", "succeeded", ago(minutes=32), 41.0, inserted=700, unchanged=0, failed=1),
        _run(2, "registrations", "rest", "succeeded", ago(minutes=32), 12.0, trigger="flow", inserted=240),
        _run(3, "participants_to_scoring", "push", "partial", ago(minutes=31, seconds=48), 22.0, trigger="flow",
             inserted=239, failed=1),
        _run(4, "results", "rest", "succeeded", ago(minutes=31, seconds=26), 7.0, trigger="flow", inserted=239),
        _run(FLOW_RUN, "race_day", "flow", "running", started, None, owner=OTHER_OWNER, inserted=3, updated=9,
             unchanged=228 + 96),
        _run(6, "registrations", "rest", "succeeded", started, 14.0, trigger="flow", inserted=3, updated=9,
             unchanged=228),
        _run(7, "participants_to_scoring", "push", "running", started + timedelta(seconds=14), None,
             trigger="flow", owner=OTHER_OWNER, inserted=3, updated=9, unchanged=96),
    ]
    for r in runs[1:4]:
        r.flow_run_id = 1
    for r in runs[5:]:
        r.flow_run_id = FLOW_RUN
    runs[4].checkpoint = json.dumps({"step": 1, "failed": [], "runs": {"registrations": 6}})
    flow_phases = [
        RunPhase(run_id=FLOW_RUN, seq=0, name="registrations", status="done", done=240, total=240, unit="rows",
                 detail="run 6: succeeded", started_at=started, finished_at=started + timedelta(seconds=14),
                 inserted=3, updated=9, unchanged=228),
        RunPhase(run_id=FLOW_RUN, seq=1, name="participants_to_scoring", status="running", done=168,
                 unit="rows", detail="globex: 48/120 rows, key globex, 2047",
                 started_at=started + timedelta(seconds=14),
                 unchanged=96 + 60, updated=9, inserted=3),
        RunPhase(run_id=FLOW_RUN, seq=2, name="results", status="pending", unit="rows"),
    ]
    t = started + timedelta(seconds=14)
    push_phases = [
        RunPhase(run_id=7, seq=0, name="acme", status="done", done=120, total=120, unit="rows", started_at=t,
                 finished_at=t + timedelta(seconds=40), updated=9, unchanged=111),
        RunPhase(run_id=7, seq=1, name="acme deletes", status="done", done=0, total=0, unit="rows",
                 started_at=t + timedelta(seconds=40), finished_at=t + timedelta(seconds=40)),
        RunPhase(run_id=7, seq=2, name="globex", status="running", done=48, total=120, unit="rows",
                 detail="key globex, 2047", started_at=t + timedelta(seconds=40), inserted=3, unchanged=45),
        RunPhase(run_id=7, seq=3, name="globex deletes", status="pending", unit="rows"),
    ]
    done_phases = [p for r in runs[:4] for p in _finished_phases(r, "rows", r.inserted)]
    done_phases += _finished_phases(runs[5], "rows", 240)
    error = ItemError(run_id=3, source="participants_to_scoring", phase="acme", item="key tenant='acme', id=1003",
                      item_key=json.dumps(["acme", 1003]), error_type="rejected", code="HTTP 422",
                      message="POST https://scoring.example.com/v1/events/101/participants: HTTP 422: record 0: "
                              "bib 103 is not a valid bib number",
                      payload=json.dumps({"externalId": 1003, "bib": 103, "firstName": "Dara"}),
                      created_at=ago(minutes=31, seconds=40))
    states = [SourceState(source="race_day", last_run_id=1, last_status="succeeded",
                          last_success_at=runs[0].finished_at, last_success_run_id=1, last_fire_at=started,
                          lock_run_id=FLOW_RUN, lock_owner=OTHER_OWNER, lease_until=NOW + timedelta(seconds=45)),
              SourceState(source="participants_to_scoring", last_run_id=3, last_status="partial",
                          last_success_at=runs[2].finished_at, lock_run_id=7, lock_owner=OTHER_OWNER,
                          lease_until=NOW + timedelta(seconds=45))]
    with store.tx() as s:
        for r in runs:
            s.add(r)
        s.flush()
        for row in (*flow_phases, *push_phases, *done_phases, error, *states):
            s.add(row)


# ---- a searchable table (`search: [title, artist]`) for the browser's full-text search ----

SEARCH_CONFIG = """\
sources:
  - name: songs
    kind: csv
    path: data/songs.csv
    table: songs
    primary_key: [id]
    search: [title, artist]
    fields:
      id: {type: int}
      title: title
      artist: artist
      genre: genre
      year: {type: int}
"""
SEARCH_WORDS = ["kalvor", "mendix", "trobel", "quasno", "velmar"]
SEARCH_QUERY = "kalvor"


def search_songs() -> list[tuple[int, str, str, str, int]]:
    """60 songs; the ones with `kalvor` in the title or the artist differ in length (so relevance orders
    them, not the key) and two carry markup-like text, which must show as typed."""
    out = []
    for i in range(1, 61):
        w = SEARCH_WORDS[i % 5]
        title = {5: "Kalvor", 10: "[b]Kalvor[/b] nights", 15: "The long road back to kalvor county fair"}.get(
            i, f"{w.capitalize()} song {i}")
        artist = "[red]The Kalvor band[/red]" if i == 20 else f"{SEARCH_WORDS[(i // 5) % 5]} trio"
        out.append((i, title, artist, ["pop", "jazz", "folk"][i % 3], 1960 + i))
    return out


def create_search_target(store: Store) -> None:
    import sqlite3

    from syncdash.targets.search import ensure_index

    path = store.engine.url.database
    assert path is not None
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE songs (id INTEGER PRIMARY KEY, title TEXT, artist TEXT, genre TEXT, year INTEGER, "
                "_synced_at TEXT, _run_id INTEGER, _hash INTEGER, _deleted_at TEXT)")
    con.executemany("INSERT INTO songs (id, title, artist, genre, year, _run_id) VALUES (?, ?, ?, ?, ?, 1)",
                    search_songs())
    ensure_index(con, "sqlite", "songs", ["title", "artist"])  # builds the FTS5 index from the rows
    con.commit()
    con.close()


SCENARIOS: dict[str, tuple[str, Callable[[Store], None]]] = {
    "main": (CONFIG, lambda store: (populate(store), create_targets(store))),
    "flow": (FLOW_CONFIG, populate_flow),
    "search": (SEARCH_CONFIG, create_search_target),
}


def build(root: Path, scenario: str = "main") -> tuple[Config, Store]:
    """The config (written to root/syncdash.yaml, paths relative to it) and a populated store in root."""
    text, fill = SCENARIOS[scenario]
    root.mkdir(parents=True, exist_ok=True)
    (root / "syncdash.yaml").write_text(text, encoding="utf-8")
    config = parse_config(text, "syncdash.yaml")
    store = Store(f"sqlite:///{root / 'console.db'}")
    fill(store)
    return config, store


def make_app(root: Path, scenario: str = "main", **kw: Any) -> Any:
    """A read-only console (nothing scheduled or run) on the deterministic store, with the fixed clock."""
    from syncdash.tui.app import SyncdashApp

    config, store = build(root, scenario)
    kw.setdefault("host", False)
    kw.setdefault("poll_interval", 3600.0)  # the first poll only: nothing changes under the screenshot
    kw.setdefault("clock", fixed_clock)
    app = SyncdashApp(config, store, **kw)
    app.animation_level = "none"  # an indeterminate bar drawn still, not wherever its pulse is at that instant
    return app


async def wait_for(pilot: Any, check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Pause the pilot until `check()` holds (workers post their results asynchronously)."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            if check():
                break
        except Exception:  # a widget queried before it is mounted
            pass
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.02)
    await pilot.pause()


# ---- getting each screen on display: (pilot) -> awaitable steps, shared by the snapshots and the screenshots --

Step = Callable[[Any], Awaitable[None]]


def rows(pilot: Any, table: str) -> int:
    from textual.widgets import DataTable

    return pilot.app.screen.query_one(table, DataTable).row_count


def text(pilot: Any, widget: str) -> str:
    from textual.widgets import Static

    return str(pilot.app.screen.query_one(widget, Static).content)


def on_screen(pilot: Any, name: str) -> bool:
    return type(pilot.app.screen).__name__ == name


async def dashboard_ready(pilot: Any) -> None:
    """The first snapshot is applied: every source row, both run cards with determinate bars, the status line."""
    from textual.widgets import ProgressBar

    from syncdash.tui.widgets import PhaseRow, RunCard

    def ready() -> bool:
        screen = pilot.app.screen
        bars = list(screen.query(ProgressBar))
        return (rows(pilot, "#sources") == 5 and len(screen.query(RunCard)) == 2
                and len(screen.query(PhaseRow)) == 4 and len(bars) == 4 and all(b.total is not None for b in bars)
                and rows(pilot, "#recent-errors") == 4 and "unresolved" in text(pilot, "#statusline"))

    await wait_for(pilot, ready, what="the dashboard's first snapshot")


def press(*keys: str) -> Step:
    async def step(pilot: Any) -> None:
        await pilot.press(*keys)

    return step


def until(check: Callable[[Any], bool], what: str) -> Step:
    async def step(pilot: Any) -> None:
        await wait_for(pilot, lambda: check(pilot), what=what)

    return step


def steps(*parts: Step) -> Step:
    async def step(pilot: Any) -> None:
        for part in parts:
            await part(pilot)

    return step


async def repaint(pilot: Any) -> None:
    """Repaint every widget of the screen, as a terminal resize would.

    Works around a transient glitch: the first rows added to the dashboard's `#recent-errors` table (height: auto)
    sometimes leave its header line rendered with the column widths it had while empty, until the next repaint
    (the console's next poll). A screenshot taken in that window would differ from run to run.
    """
    from syncdash.tui.widgets import PhaseRow

    for screen in pilot.app.screen_stack:  # the help is a modal: the dashboard shows through
        for widget in screen.query("*"):
            widget.refresh(layout=True)  # a label set late (a phase's text) changes its bar's width
    await pilot.pause()
    # a progress bar rounds its fill to the width it had when last updated: update each at its final width
    for screen in pilot.app.screen_stack:
        for row in screen.query(PhaseRow):
            row.refill()
    await pilot.pause()


def _history(p: Any) -> bool:
    return on_screen(p, "HistoryScreen") and rows(p, "#runs") == 13


def _run_detail(p: Any) -> bool:
    return (on_screen(p, "RunDetailScreen") and getattr(p.app.screen, "run_id", None) == DIFF_RUN
            and rows(p, "#changes") == 6 and rows(p, "#phases") == 2 and rows(p, "#run-errors") == 3
            and "checkpoint" in text(p, "#run-checkpoint"))


def _errors(p: Any) -> bool:
    return on_screen(p, "ErrorsScreen") and rows(p, "#errors") == 4 and "payload" in text(p, "#error-detail")


def _source(p: Any) -> bool:
    return (on_screen(p, "SourceScreen") and rows(p, "#source-runs") == 5 and "next fires" in text(p, "#source-state")
            and "customers" in text(p, "#source-config"))


WIDE = (120, 40)
SMALL = (80, 24)

def _flow_dashboard(p: Any) -> bool:
    """Both cards, and every phase of the snapshot drawn: rows mounted, bars and texts set (a later refresh)."""
    from textual.widgets import ProgressBar

    snap = p.app.snapshot
    screen = p.app.screen
    phases = sum(len(v.phases) for v in snap.active) if snap is not None else -1
    # a running phase with no known total has an indeterminate bar (total None); every other bar has one
    moving = sum(1 for v in snap.active for ph in v.phases if ph.status == "running" and not ph.total) \
        if snap is not None else -1
    texts = [str(t.render()) for t in screen.query(".phase-text")]
    bars = list(screen.query(ProgressBar))
    return (on_screen(p, "DashboardScreen") and len(screen.query(".run-card")) == 2 and rows(p, "#sources") == 4
            and len(texts) == phases and all(texts) and sum(b.total is None for b in bars) == moving)


def _flow_detail(p: Any) -> bool:
    return (on_screen(p, "RunDetailScreen") and rows(p, "#phases") == 3 and "steps:" in text(p, "#run-summary"))


def _browse(p: Any) -> bool:
    return on_screen(p, "BrowseScreen") and rows(p, "#browse-rows") == 50 and "page 1" in str(
        p.app.screen.query_one("#browse-title").render())


def _row(p: Any) -> bool:
    return on_screen(p, "RowScreen") and rows(p, "#row-history") >= 2


def _to_row(size: Any) -> tuple[Any, ...]:
    """Browse customers, filter to id 1042 (updated by run 8 in the fixture), open it."""
    return (size, steps(dashboard_ready, press("b"), until(lambda p: on_screen(p, "BrowseScreen"), "browse"),
                        press("enter"), until(_browse, "the first page of customers"),
                        press("slash", *"id=1042", "enter"),
                        until(lambda p: rows(p, "#browse-rows") == 1, "the filtered row"), press("enter"),
                        until(_row, "the row's history"), repaint))


def _search_results(p: Any) -> bool:
    return on_screen(p, "BrowseScreen") and "search" in str(p.app.screen.query_one("#browse-title").render()) \
        and rows(p, "#browse-rows") > 0


def _to_search(size: Any) -> tuple[Any, ...]:
    """Browse songs (the search scenario), `/kalvor`: its matches, best first, the word highlighted."""
    return (size, steps(until(lambda p: on_screen(p, "DashboardScreen") and rows(p, "#sources") == 1, "the dashboard"),
                        press("b"), until(lambda p: on_screen(p, "BrowseScreen"), "browse"), press("enter"),
                        until(lambda p: rows(p, "#browse-rows") == 50, "the first page of songs"),
                        press("slash", *SEARCH_QUERY, "enter"), until(_search_results, "the search results"),
                        repaint), "search")


# name: (terminal size, how to get there from a fresh app[, store scenario])
SCREENS: dict[str, tuple[Any, ...]] = {
    "dashboard": (WIDE, steps(dashboard_ready, repaint)),
    "dashboard_80x24": (SMALL, steps(dashboard_ready, repaint)),
    "history": (WIDE, steps(dashboard_ready, press("h"), until(_history, "the run history"), repaint)),
    # newest first (13, 12, ... 8): five rows down is the partial run with updates, an insert and a delete
    "run_detail": (WIDE, steps(dashboard_ready, press("h"), until(_history, "the run history"),
                               press("down", "down", "down", "down", "down", "enter"),
                               until(_run_detail, f"the detail of run {DIFF_RUN}"), repaint)),
    "errors": (WIDE, steps(dashboard_ready, press("e"), until(_errors, "the errors screen"), repaint)),
    "errors_80x24": (SMALL, steps(dashboard_ready, press("e"), until(_errors, "the errors screen"), repaint)),
    "source_detail": (WIDE, steps(dashboard_ready, press("enter"), until(_source, "the source screen of customers"),
                                  repaint)),
    # `b`, then the first table (customers): its first keyset page
    "browse": (WIDE, steps(dashboard_ready, press("b"), until(lambda p: on_screen(p, "BrowseScreen"), "browse"),
                           press("enter"), until(_browse, "the first page of customers"), repaint)),
    "browse_80x24": (SMALL, steps(dashboard_ready, press("b"), until(lambda p: on_screen(p, "BrowseScreen"),
                                                                     "browse"),
                                  press("enter"), until(_browse, "the first page of customers"), repaint)),
    "row_history": _to_row(WIDE),
    "row_history_80x24": _to_row(SMALL),
    "browse_search": _to_search(WIDE),
    "browse_search_80x24": _to_search(SMALL),
    "help": (WIDE, steps(dashboard_ready, press("question_mark"),
                         until(lambda p: on_screen(p, "HelpScreen"), "the help screen"), repaint)),
    "help_80x24": (SMALL, steps(dashboard_ready, press("question_mark"),
                                until(lambda p: on_screen(p, "HelpScreen"), "the help screen"), repaint)),
    # a flow half way: its card shows a bar per step, the push step's card a bar per tenant
    "flow_dashboard": (WIDE, steps(until(_flow_dashboard, "the flow's run cards"), repaint), "flow"),
    "flow_run_detail": (WIDE, steps(until(_flow_dashboard, "the flow's run cards"), press("h"),
                                    until(lambda p: on_screen(p, "HistoryScreen") and rows(p, "#runs") == 7,
                                          "the run history"), press("down", "down", "enter"),
                                    until(_flow_detail, f"the detail of flow run {FLOW_RUN}"), repaint), "flow"),
}
