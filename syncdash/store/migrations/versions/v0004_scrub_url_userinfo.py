"""Remove `user:password@` from URLs the store kept before userinfo was stripped at the source.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Earlier releases built page URLs, checkpoints and breaker keys from the configured URL as written, so a source
configured as `https://alice:${PW}@host/...` left the password in `syncdash_runs.checkpoint`, in
`syncdash_breakers.host` and in messages quoting a page URL. Today's code never writes it; this revision removes
what is already there, so an upgraded store holds no password either. Only the userinfo goes: the rest of each
value (where a resumed run continues, a breaker's state) is kept.

The pattern is this revision's own copy (a revision must do the same thing forever, whatever later code does).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s\"'<>?#]+@")

# (table, key columns, text columns that can quote a URL)
COLUMNS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("syncdash_runs", ("id",), ("checkpoint", "error", "warnings", "http")),
    ("syncdash_run_phases", ("id",), ("detail",)),
    ("syncdash_item_errors", ("id",), ("item", "file", "message", "payload")),
    ("syncdash_breakers", ("host",), ("last_error",)),
    ("syncdash_pushed", ("source", "key"), ("url",)),
    ("syncdash_commands", ("id",), ("result",)),
]


def scrub(text: str) -> str:
    return _USERINFO.sub(r"\1", text)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # zero the old bytes of each rewritten cell: no stale copy in free space
        bind.exec_driver_sql("PRAGMA secure_delete = ON")
    for table, keys, cols in COLUMNS:
        for col in cols:
            where = " AND ".join(f"{k} = :k{i}" for i, k in enumerate(keys))
            rows = bind.execute(sa.text(f"SELECT {', '.join(keys)}, {col} FROM {table} "
                                        f"WHERE {col} LIKE '%://%@%'")).all()
            for row in rows:
                clean = scrub(row[-1])
                if clean != row[-1]:
                    params = {f"k{i}": v for i, v in enumerate(row[:-1])}
                    bind.execute(sa.text(f"UPDATE {table} SET {col} = :v WHERE {where}"), {"v": clean, **params})
    # A breaker is keyed by its URL's netloc (`host:port`, once `user:password@host:port`): a key with userinfo
    # is renamed to the bare host, or dropped when that host already has a breaker of its own (the newer state,
    # written by today's code, wins).
    hosts = {h for (h,) in bind.execute(sa.text("SELECT host FROM syncdash_breakers")).all()}
    for host in sorted(h for h in hosts if "@" in h):
        clean = scrub(host) if "://" in host else host.rsplit("@", 1)[1]
        if clean in hosts:
            bind.execute(sa.text("DELETE FROM syncdash_breakers WHERE host = :h"), {"h": host})
        else:
            bind.execute(sa.text("UPDATE syncdash_breakers SET host = :c WHERE host = :h"), {"c": clean, "h": host})
            hosts.add(clean)


def downgrade() -> None:
    raise NotImplementedError("the store's schema only moves forward")
