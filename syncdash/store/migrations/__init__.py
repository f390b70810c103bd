"""The store's schema, versioned with Alembic: `versions/` holds one revision per schema change.

Opening a store reads its revision with one cheap SELECT (no Alembic import: it costs ~90 ms, and every CLI
start opens the store); only a store behind `HEAD` loads Alembic and upgrades (`syncdash.store.migrate`).
`HEAD` is written here by hand so the cheap check needs no script directory; a test holds it equal to the
newest revision in `versions/`.

A later schema change is a new revision: `versions/vNNNN_what_it_does.py` with `revision = "NNNN"` and
`down_revision` the previous one (script.py.mako is its template), written with `op.*` calls (never from the
models: a revision must do the same thing forever), and `HEAD` set to it. tests/e2e/test_upgrade.py then proves
that stores of earlier releases still open.
"""

from __future__ import annotations

from pathlib import Path

HEAD = "0004"
# Not Alembic's default `alembic_version`: the store may share a database with an application that uses Alembic
# for its own tables.
VERSION_TABLE = "syncdash_alembic_version"
SCRIPT_LOCATION = Path(__file__).resolve().parent
