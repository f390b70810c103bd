"""Alembic's entry point for the store's revisions.

syncdash runs it programmatically (`syncdash.store.migrate`): the caller passes its open connection, already in
the transaction (and, on PostgreSQL, holding the advisory lock) that the whole upgrade runs in. Run by hand
(`alembic -x url=sqlite:///store.db upgrade head` with a config whose script_location is this folder) it opens
its own connection.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from syncdash.store.migrations import VERSION_TABLE


def run(connection: Connection) -> None:
    # transaction_per_migration off: every revision of one open lands in one transaction (the caller's, when it
    # passed one: Alembic then begins none of its own)
    context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE,
                      transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: pass -x url=... or set sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as c:
        run(c)


main()
