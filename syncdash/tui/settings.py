"""The console's own preferences (today: the theme), kept across starts in the user's config directory.

Why a file of its own and not syncdash.yaml: the theme belongs to the person at the terminal, not to the
project; several projects share it. SYNCDASH_CONSOLE_DIR points it elsewhere (the tests use a temporary
directory so they never touch the real one).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "SYNCDASH_CONSOLE_DIR"
FILE = "console.json"


def settings_path() -> Path:
    override = os.environ.get(ENV)
    if override:
        return Path(override) / FILE
    import platformdirs

    return Path(platformdirs.user_config_dir("syncdash")) / FILE


def load() -> dict[str, str]:
    """The saved preferences; {} when there are none or the file is unreadable (never fatal: a console that
    will not start over a theme would be worse than the default theme)."""
    try:
        raw = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def save(**values: str) -> None:
    """Merge values into the saved preferences (best effort: a read-only home only loses the preference)."""
    path = settings_path()
    current = load()
    current.update(values)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
