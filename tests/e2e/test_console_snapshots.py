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
