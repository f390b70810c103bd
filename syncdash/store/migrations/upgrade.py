"""Bring a store's schema to `HEAD` with Alembic, on the caller's connection and inside its transaction.

Imported only when the cheap version check in `syncdash.store.db` finds the store behind: Alembic costs ~90 ms
to import, which a CLI start should not pay when there is nothing to do.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from syncdash.errors import StoreError
from syncdash.store.migrations import SCRIPT_LOCATION, VERSION_TABLE

FIRST = "0001"


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code (no alembic.ini at run time)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str | None:
    """The newest revision in versions/ (what `HEAD` must say)."""
    return ScriptDirectory.from_config(config()).get_current_head()


def upgrade_store(connection: Connection, to: str = "heads") -> None:
    """Upgrade in the caller's transaction. A store made before versioning (syncdash_runs but no version table)
    is first brought to 0001's shape and stamped 0001; an empty database runs every revision from 0001."""
    cfg = config(connection)
    names = set(inspect(connection).get_table_names())
    if VERSION_TABLE not in names and "syncdash_runs" in names:
        first = ScriptDirectory.from_config(cfg).get_revision(FIRST)
        assert first is not None, "revision 0001 is missing from the store's migrations"
        first.module.adopt(connection)
        command.stamp(cfg, FIRST)
    try:
        command.upgrade(cfg, to)
    except CommandError as e:  # a revision this syncdash does not know: a newer syncdash upgraded the store
        raise StoreError(f"cannot upgrade the store: {e} (was it opened by a newer syncdash?)") from None
