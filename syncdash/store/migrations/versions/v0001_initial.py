"""The store as syncdash created it before its schema was versioned.

Revision ID: 0001
Revises:
Create Date: 2026-12-05

Written out column by column, frozen: later model edits must never change what this revision creates. It matches
what `SQLModel.metadata.create_all` made of the models of that release (same column order, types, keys and index
names), so a store made by that release and one made by this revision are the same shape.

`adopt` brings a store of that release or an older one (no version table yet) to this shape before it is stamped
0001: tables that release would have created are created, columns added since are added (all have defaults),
and the unique index on fire_key is made.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import SchemaItem

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _int(name: str, default: int = 0) -> sa.Column[Any]:
    """A NOT NULL integer; the default is the model's, used only when `adopt` adds the column to an old store."""
    return sa.Column(name, sa.Integer(), nullable=False, default=default)


def _bool(name: str, default: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Boolean(), nullable=False, default=default)


def _str(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _ts(name: str, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def _counts() -> list[sa.Column[Any]]:
    return [_int(n) for n in ("inserted", "updated", "unchanged", "deleted", "failed", "skipped")]


def tables() -> dict[str, list[SchemaItem]]:
    """Every table's columns and constraints, in creation order (new objects on each call)."""
    return {
        "syncdash_runs": [
            sa.Column("id", sa.Integer(), nullable=False),
            _str("source", nullable=False), _str("kind", nullable=False), _str("trigger", nullable=False),
            _str("fire_key"), _int("attempt", 1), _str("options"), _str("mode", nullable=False),
            _bool("dry_run"), _str("status", nullable=False), _int("priority"), _ts("not_before"),
            _ts("queued_at", nullable=False), _ts("started_at"), _ts("finished_at"), _ts("heartbeat_at"),
            _str("owner"), _int("resumes"), sa.Column("parent_run_id", sa.Integer()),
            sa.Column("flow_run_id", sa.Integer()), *_counts(), _str("checkpoint"), _str("fingerprint"),
            _str("error"), _str("error_type"), _str("warnings"), _str("http"), _int("applied_seq"),
            sa.PrimaryKeyConstraint("id"), sa.UniqueConstraint("fire_key"),
        ],
        "syncdash_source_state": [
            _str("source", nullable=False), _str("cursor"), _str("fingerprint"),
            sa.Column("last_run_id", sa.Integer()), _str("last_status"), _ts("last_success_at"),
            sa.Column("last_success_run_id", sa.Integer()), _bool("paused"), _str("schedule_override"),
            _ts("last_fire_at"), _ts("next_fire_at"), _ts("overdue_notified_at"),
            sa.Column("lock_run_id", sa.Integer()), _str("lock_owner"), _ts("lease_until"),
            sa.PrimaryKeyConstraint("source"),
        ],
        "syncdash_commands": [
            sa.Column("id", sa.Integer(), nullable=False), _ts("created_at", nullable=False),
            _str("action", nullable=False), _str("source"), sa.Column("run_id", sa.Integer()), _str("args"),
            _str("status", nullable=False), _str("claimed_by"), _ts("finished_at"), _str("result"),
            sa.PrimaryKeyConstraint("id"),
        ],
        "syncdash_breakers": [
            _str("host", nullable=False), _str("state", nullable=False), _int("failures"), _ts("opened_at"),
            _ts("retry_at"), _str("last_error"), _str("source"), _ts("updated_at"),
            sa.PrimaryKeyConstraint("host"),
        ],
        "syncdash_daemons": [
            _str("owner", nullable=False), _str("host", nullable=False), _int("pid"),
            _str("kind", nullable=False), _int("workers", 1), _ts("started_at", nullable=False),
            _ts("heartbeat_at", nullable=False), _ts("stopped_at"), _str("http"),
            sa.PrimaryKeyConstraint("owner"),
        ],
        "syncdash_meta": [
            _str("key", nullable=False), _str("value", nullable=False), sa.PrimaryKeyConstraint("key"),
        ],
        "syncdash_pushed": [
            _str("source", nullable=False), _str("key", nullable=False), _str("scope", nullable=False),
            _int("hash"), _str("url", nullable=False), _str("ref"), sa.Column("run_id", sa.Integer()),
            _ts("pushed_at", nullable=False),
            sa.PrimaryKeyConstraint("source", "key"),
        ],
        "syncdash_run_phases": [
            sa.Column("id", sa.Integer(), nullable=False), _int("run_id"), _int("seq"),
            _str("name", nullable=False), _str("status", nullable=False), _int("done"),
            sa.Column("total", sa.Integer()), _str("unit", nullable=False), _str("detail"), *_counts(),
            _ts("started_at"), _ts("finished_at"),
            sa.PrimaryKeyConstraint("id"), sa.ForeignKeyConstraint(["run_id"], ["syncdash_runs.id"]),
        ],
        "syncdash_item_errors": [
            sa.Column("id", sa.Integer(), nullable=False), _int("run_id"), _str("source", nullable=False),
            _str("phase"), _str("item"), _str("item_key"), _str("file"), sa.Column("line", sa.Integer()),
            _str("column"), _str("error_type", nullable=False), _str("code"), _str("message", nullable=False),
            _bool("retryable", True), _int("attempts", 1), _str("payload"), _ts("created_at", nullable=False),
            _ts("resolved_at"), sa.Column("resolved_by_run", sa.Integer()), _str("resolution"),
            sa.PrimaryKeyConstraint("id"), sa.ForeignKeyConstraint(["run_id"], ["syncdash_runs.id"]),
        ],
        "syncdash_changes": [
            sa.Column("id", sa.Integer(), nullable=False), _int("run_id"), _str("source", nullable=False),
            _str("change", nullable=False), _str("key", nullable=False), _str("before"), _str("after"),
            sa.PrimaryKeyConstraint("id"), sa.ForeignKeyConstraint(["run_id"], ["syncdash_runs.id"]),
        ],
    }


# (table, column): the plain indexes, named as SQLModel names them (ix_<table>_<column>)
INDEXES = [
    ("syncdash_runs", "source"), ("syncdash_runs", "status"), ("syncdash_runs", "flow_run_id"),
    ("syncdash_pushed", "scope"), ("syncdash_run_phases", "run_id"), ("syncdash_item_errors", "run_id"),
    ("syncdash_item_errors", "source"), ("syncdash_item_errors", "resolved_at"), ("syncdash_changes", "run_id"),
]
# That release also made this unique index, beside the UNIQUE(fire_key) constraint (an older store lacked the
# column, and ALTER TABLE cannot add a UNIQUE column). Kept here so new and old stores are the same shape.
FIRE_KEY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS ix_syncdash_runs_fire_key ON syncdash_runs (fire_key)"


def upgrade() -> None:
    for name, items in tables().items():
        op.create_table(name, *items)
        for table, column in INDEXES:
            if table == name:
                op.create_index(f"ix_{table}_{column}", table, [column])
    op.execute(FIRE_KEY_INDEX)


def downgrade() -> None:
    raise NotImplementedError("the store's schema only moves forward")


def adopt(connection: Connection) -> None:
    """Bring an unversioned store (made before the schema was versioned) to this revision's shape."""
    insp = sa.inspect(connection)
    present = set(insp.get_table_names())
    meta = sa.MetaData()
    for name, items in tables().items():
        table = sa.Table(name, meta, *items)
        if name not in present:
            table.create(connection)
            for t, column in INDEXES:
                if t == name:
                    sa.Index(f"ix_{t}_{column}", table.c[column]).create(connection)
            continue
        have = {c["name"] for c in insp.get_columns(name)}
        for col in table.columns:
            if col.name not in have:
                connection.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {_column_ddl(connection, col)}")
    connection.exec_driver_sql(FIRE_KEY_INDEX)


def _column_ddl(connection: Connection, col: sa.Column[Any]) -> str:
    """The column as the release before versioning added it: NOT NULL with its default when it has a number or
    boolean default, else nullable (a string column added to rows that exist has no value to give them)."""
    ddl = f'"{col.name}" {col.type.compile(dialect=connection.dialect)}'
    default = col.default.arg if isinstance(col.default, sa.ColumnDefault) else None
    if isinstance(default, bool):
        return f"{ddl} NOT NULL DEFAULT {'TRUE' if default else 'FALSE'}"
    if isinstance(default, int):
        return f"{ddl} NOT NULL DEFAULT {default}"
    return ddl
