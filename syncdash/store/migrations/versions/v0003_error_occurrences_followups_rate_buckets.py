"""Open item errors count their occurrences; runs record their follow-up; rate-limit buckets are shared.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

- syncdash_item_errors gains `occurrences`, `last_seen_at` and `last_run_id`: while an item's error stays open, a
  later run that hits it again updates that row instead of adding one ("seen 5 times, first ... last ...").
  `payload_truncated` marks a payload cut to the store's limit (a 100 MB bad row must not grow the store by
  100 MB). Existing errors were each seen once, by the run that made them.
- syncdash_runs gains `notified_at` (its events were delivered, by whichever process got there first) and
  `followed_up_at` (a daemon decided whether it is retried): a run started by the CLI, the console or the API is
  notified and retried like one the daemon started.
- syncdash_rate_buckets: one token bucket per rate-limited host, updated atomically, so `rate_limit:` holds
  across every worker and daemon sharing the store.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("syncdash_item_errors",
                  sa.Column("occurrences", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("syncdash_item_errors", sa.Column("last_seen_at", sa.DateTime(), nullable=True))
    op.add_column("syncdash_item_errors", sa.Column("last_run_id", sa.Integer(), nullable=True))
    op.add_column("syncdash_item_errors",
                  sa.Column("payload_truncated", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE syncdash_item_errors SET last_seen_at = created_at, last_run_id = run_id")
    op.add_column("syncdash_runs", sa.Column("notified_at", sa.DateTime(), nullable=True))
    op.add_column("syncdash_runs", sa.Column("followed_up_at", sa.DateTime(), nullable=True))
    # runs of the previous release were notified and followed up by the daemon that ran them (or never will be):
    # an upgrade must not replay old notifications or retry old failures
    op.execute("UPDATE syncdash_runs SET notified_at = finished_at, followed_up_at = finished_at "
               "WHERE finished_at IS NOT NULL")
    op.create_table(
        "syncdash_rate_buckets",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.Float(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("burst", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    raise NotImplementedError("the store's schema only moves forward")
