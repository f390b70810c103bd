"""Exact batches when the target tables live in another database than the store.

Two databases cannot commit together, so each batch commits its target rows together with a journal
entry, in the target database, that holds the batch's store statements (item errors, change records, counts,
checkpoint). The store statements then commit in the store. A crash between the two commits leaves the entry
behind; the next run of that source replays it into the store before anything else, so the counts, errors and
checkpoint match the rows exactly, as they do when one database holds both.

Entries are keyed by the store's id: several stores may share one target database without replaying each
other's batches.
"""

from __future__ import annotations

import json
from typing import Any

from syncdash.common.dialect import MYSQL, Conn

Statement = tuple[str, Any, bool]  # sql with ? placeholders, params (a row, or rows when many), many

TABLE = "syncdash_journal"


def ensure(tdb: Conn) -> None:
    text = "LONGTEXT" if tdb.dialect == MYSQL else "TEXT"
    tdb.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (store_id VARCHAR(64) NOT NULL, run_id BIGINT NOT NULL, "
                f"seq BIGINT NOT NULL, source VARCHAR(255) NOT NULL, statements {text} NOT NULL, "
                "PRIMARY KEY (store_id, run_id, seq))")


def write(tdb: Conn, store_id: str, run_id: int, seq: int, source: str, statements: list[Statement]) -> None:
    """Inside the target's batch transaction: this entry, and the end of the ones before it (their store
    transactions committed before this batch began)."""
    tdb.execute(f"DELETE FROM {TABLE} WHERE store_id = ? AND run_id = ? AND seq < ?", (store_id, run_id, seq))
    tdb.execute(f"INSERT INTO {TABLE} (store_id, run_id, seq, source, statements) VALUES (?, ?, ?, ?, ?)",
                (store_id, run_id, seq, source, json.dumps(statements, default=str)))


def apply(sdb: Conn, statements: list[Statement]) -> None:
    for sql, params, many in statements:
        if many:
            sdb.executemany(sql, [tuple(p) for p in params])
        else:
            sdb.execute(sql, tuple(params))


def recover(sdb: Conn, tdb: Conn, store_id: str, source: str) -> list[int]:
    """Replay entries of `source` the store never got (the caller holds the source's lease, so no live run
    of it is writing entries). Returns the run ids repaired."""
    ensure(tdb)
    repaired: list[int] = []
    for run_id, seq, text in tdb.all(f"SELECT run_id, seq, statements FROM {TABLE} WHERE store_id = ? AND "
                                     "source = ? ORDER BY run_id, seq", (store_id, source)):
        sdb.begin()
        try:
            applied = sdb.scalar("SELECT applied_seq FROM syncdash_runs WHERE id = ?", (run_id,))
            if applied is not None and int(applied) < int(seq):
                apply(sdb, json.loads(text))
                repaired.append(int(run_id))
            sdb.commit()
        except BaseException:
            sdb.rollback()
            raise
    tdb.execute(f"DELETE FROM {TABLE} WHERE store_id = ? AND source = ?", (store_id, source))
    return sorted(set(repaired))


def forget(tdb: Conn, store_id: str, run_id: int) -> None:
    tdb.execute(f"DELETE FROM {TABLE} WHERE store_id = ? AND run_id = ?", (store_id, run_id))
