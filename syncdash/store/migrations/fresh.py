"""A brand-new store: the head schema straight from the models, stamped `HEAD`, without loading Alembic.

This is Alembic's own recipe for a new database ("create_all, then stamp head"): replaying every revision on an
empty database gives the same schema, but costs ~0.2 s and ~20 MiB of Alembic on the first run of every new
project. tests/e2e/test_upgrade.py holds the two equal (a model changed without a revision fails it), so the
revisions stay the only way an existing store changes.
"""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from syncdash.store import models
from syncdash.store.migrations import HEAD, VERSION_TABLE

# The store's tables; target tables and any application tables in the same database are not ours.
STORE_TABLES = (models.Run, models.RunPhase, models.ItemError, models.SourceState, models.Change, models.Command,
                models.Breaker, models.Daemon, models.StoreMeta, models.Pushed, models.RateBucket)


def is_empty(connection: Connection) -> bool:
    """No table of the store and no version: nothing to adopt or upgrade."""
    names = set(inspect(connection).get_table_names())
    return VERSION_TABLE not in names and not any(n.startswith("syncdash_") for n in names)


def create_head(connection: Connection) -> None:
    """Create every store table as the models declare them and record `HEAD`, in the caller's transaction."""
    SQLModel.metadata.create_all(connection, tables=[SQLModel.metadata.tables[m.__tablename__]
                                                     for m in STORE_TABLES])
    # revision 0001 keeps the release's extra unique index beside the column's UNIQUE constraint
    connection.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS ix_syncdash_runs_fire_key "
                               "ON syncdash_runs (fire_key)")
    connection.exec_driver_sql(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
                               f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))")
    connection.exec_driver_sql(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES ('{HEAD}')")
