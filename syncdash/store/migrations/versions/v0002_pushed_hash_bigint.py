"""syncdash_pushed.hash holds 63-bit hashes: BIGINT on PostgreSQL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05

0001 declared the column INTEGER, which is 32 bits on PostgreSQL: every push on a PostgreSQL store failed with
"integer out of range", so no row of it holds a value to convert. SQLite's INTEGER is already 64 bits: nothing to
do there (rebuilding the table to rename its declared type would change nothing it stores).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("syncdash_pushed", "hash", type_=sa.BigInteger(), existing_type=sa.Integer(),
                        existing_nullable=False)


def downgrade() -> None:
    raise NotImplementedError("the store's schema only moves forward")
