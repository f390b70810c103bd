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


def sqlite_statements() -> list[str]:
    """What `create_head` issues on SQLite, as the DDL SQLite keeps (sqlite_master: the tables in
    creation order, then the indexes by name, since SQLAlchemy creates a table's indexes in no fixed order): the
    source of syncdash.store.migrations.sqlite_head, which a new SQLite store runs without SQLAlchemy.
    `python -m syncdash.store.migrations.fresh` prints that module; a test holds the two equal."""
    import sqlite3
    import tempfile
    from pathlib import Path

    from sqlalchemy import create_engine

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "head.db"
        engine = create_engine(f"sqlite:///{path}")
        with engine.begin() as c:
            create_head(c)
        engine.dispose()
        con = sqlite3.connect(path)
        try:
            return [str(sql) for (sql,) in con.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
                "ORDER BY type <> 'table', CASE WHEN type = 'table' THEN rowid END, name")]
        finally:
            con.close()


def render_sqlite_head() -> str:
    """The text of syncdash/store/migrations/sqlite_head.py for the current models and HEAD."""
    # one literal per line of a statement (implicitly joined), so no line of the module is long
    body = "".join("".join(f"    {line[i:i + 96]!r}\n" for line in sql.splitlines(keepends=True)
                           for i in range(0, len(line), 96)) + "    ,\n"
                   for sql in sqlite_statements())
    return (f'"""The head schema of a new SQLite store as plain DDL, generated from the models by\n'
            f"`python -m syncdash.store.migrations.fresh > syncdash/store/migrations/sqlite_head.py`: never edit "
            f"it by hand.\n\nA new SQLite store runs these in one BEGIN IMMEDIATE transaction, so its first run "
            f"loads no SQLAlchemy,\nSQLModel or models (~0.4 s). tests/e2e/test_upgrade.py holds them equal to "
            f'what `fresh.create_head` creates.\n"""\n\n'
            f"REVISION = {HEAD!r}\n\nSTATEMENTS: tuple[str, ...] = (\n{body})\n")


if __name__ == "__main__":
    print(render_sqlite_head(), end="")
