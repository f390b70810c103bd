"""SVG snapshots of the console's screens on a deterministic store (tests/console_fixtures.py).

The app is read-only (`host=False`: no scheduler, no worker), its clock is fixed and it polls the store once,
so a screenshot changes only when the UI does. Each case waits until its screen's data is displayed before the
screenshot is taken (console_fixtures.SCREENS: the same steps `make screenshots` uses). A difference fails the
test (`snapshot_report.html` shows both images); after a deliberate UI change:

    .venv/bin/pytest tests/e2e/test_console_snapshots.py --snapshot-update

then review the SVGs under tests/e2e/__snapshots__/ before committing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_fixtures import SCREENS, make_app


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)  # would render the baselines without colour


@pytest.mark.parametrize("screen", list(SCREENS))
def test_console_snapshot(snap_compare: Any, tmp_path: Path, screen: str) -> None:
    size, get_there, *scenario = SCREENS[screen]
    assert snap_compare(make_app(tmp_path, *scenario), terminal_size=size, run_before=get_there)


# ---- a push's dry run: the requests it would send, per tenant, credentials masked ----------------------------

PUSH_SECRETS = {"ACME_SCORE": "acme-score-Zr8Qw2", "GLOBEX_SCORE": "globex-score-Hn5Tk7",
                "CLIENT_REF": "client-ref-Bq4Xv9"}
PUSH_CONFIG = """\
tenants:
  acme: {score_token: "${ACME_SCORE}", event: "101"}
  globex: {score_token: "${GLOBEX_SCORE}", event: "202"}
sources:
  - name: to_scoring
    kind: push
    for_each_tenant: true
    from_table: participants
    key: [id]
    url: https://scoring.example.com/v1/events/{event_id}/participants
    batch: 1
    body: {externalId: id, bib: bib, firstName: first_name}
    auth: {type: bearer, token: "{tenant.score_token}"}
    headers: {X-Client: "${CLIENT_REF}"}
"""


def push_app(root: Path) -> Any:
    """A read-only console on a store holding a participants table (22 of acme: more than the 20 a dry run lists,
    2 of globex); the dry run sends nothing, so the scoring host is never contacted."""
    import sqlite3

    from console_fixtures import fixed_clock

    from syncdash.config.load import parse_config
    from syncdash.store.db import Store
    from syncdash.tui.app import SyncdashApp

    config = parse_config(PUSH_CONFIG, "syncdash.yaml")
    store = Store(f"sqlite:///{root / 'console.db'}")
    con = sqlite3.connect(root / "console.db")
    con.execute("CREATE TABLE participants (tenant TEXT, id INTEGER, event_id TEXT, first_name TEXT, bib INTEGER, "
                "PRIMARY KEY (tenant, id))")
    con.executemany("INSERT INTO participants VALUES (?, ?, ?, ?, ?)",
                    [(t, i, e, f"Runner{i}", 100 + i) for t, e, n in (("acme", "101", 22), ("globex", "202", 2))
                     for i in range(1, n + 1)])
    con.commit()
    con.close()
    return SyncdashApp(config, store, host=False, poll_interval=3600.0, clock=fixed_clock)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_push_dry_run_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               request: pytest.FixtureRequest, size: tuple[int, int]) -> None:
    from console_fixtures import on_screen, press, repaint, rows, steps, until

    for k, v in PUSH_SECRETS.items():
        monkeypatch.setenv(k, v)

    def listed(p: Any) -> bool:
        return on_screen(p, "DryRunScreen") and "tenant acme: 22 (first 20 shown)" in str(
            p.app.screen.query_one("#push-requests").content)

    async def nothing_secret(pilot: Any) -> None:
        shown = pilot.app.export_screenshot()
        assert "Authorization" in shown
        for secret in PUSH_SECRETS.values():
            assert secret not in shown and secret not in str(pilot.app.screen.query_one("#push-requests").content)

    get_there = steps(until(lambda p: rows(p, "#sources") == 1, "the dashboard"), press("d"),
                      until(listed, "the push's requests"), repaint, nothing_secret)
    assert snap_compare(push_app(tmp_path), terminal_size=size, run_before=get_there)
    svg = Path(__file__).parent / "__snapshots__" / "test_console_snapshots" / f"{request.node.name}.svg"
    drawn = svg.read_text(encoding="utf-8")
    assert "Authorization" in drawn and "would&#160;send" in drawn
    for secret in PUSH_SECRETS.values():
        assert secret not in drawn
