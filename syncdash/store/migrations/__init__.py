"""The store's schema, versioned with Alembic: `versions/` holds one revision per schema change.

Opening a store reads its revision with one cheap SELECT (no Alembic import: it costs ~90 ms, and every CLI
start opens the store); only a store behind `HEAD` loads Alembic and upgrades (`syncdash.store.migrate`).
`HEAD` is written here by hand so the cheap check needs no script directory; a test holds it equal to the
newest revision in `versions/`.
"""

from __future__ import annotations

from pathlib import Path

HEAD = "0002"
# Not Alembic's default `alembic_version`: the store may share a database with an application that uses Alembic
# for its own tables.
VERSION_TABLE = "syncdash_alembic_version"
SCRIPT_LOCATION = Path(__file__).resolve().parent
