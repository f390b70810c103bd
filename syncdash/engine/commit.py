"""The batch commit: a batch's target rows and its store bookkeeping (hashes, errors, changes, counts,
checkpoint) become durable together or not at all.

One database: the store statements join the target's transaction. Two databases: the target commits with a
journal entry holding the store statements, then the store applies them; a crash in between is repaired by
the next run of the source (journal.recover), so the checkpoint and the rows it describes never disagree.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from syncdash.common.dialect import Conn
from syncdash.store import journal
from syncdash.store.db import Store
from syncdash.targets import open as target_db

# tests: die right after the target committed journal entry N and before the store did (see journal.py)
CRASH_AFTER_TARGET_COMMIT = int(os.environ.get("SYNCDASH_FAULT_CRASH_AFTER_TARGET_COMMIT", "0") or 0)


class BatchCommit:
    """The run's store and target connections and the one open batch on them."""

    def __init__(self, store: Store, target_url: str | None, source: str) -> None:
        self.store = store
        self.source = source
        self.target_url = target_url
        # the store's and the target's connections (one and the same when the target is the store's database)
        self.same_db = target_db.same_database(store, target_url)
        self.sdb: Conn | None = None
        self.tdb: Conn | None = None
        self.run_id = 0
        self.seq = 0  # journal entries written by this run (target in another database)
        self._pending: list[journal.Statement] = []  # the open batch's store statements

    # ---- connections ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the run's store and target connections; replay what a dead run left in the journal."""
        self.sdb = self.store.conn()
        self.tdb = self.sdb if self.same_db else target_db.connect(self.store, self.target_url)
        if not self.same_db:
            journal.recover(self.sdb, self.tdb, self.store.store_id, self.source)

    def close(self) -> None:
        for c in {id(c): c for c in (self.tdb, self.sdb) if c is not None}.values():
            try:
                c.close()
            except Exception:  # a connection that broke mid-run: the pool discards it
                pass
        self.sdb = self.tdb = None

    @property
    def target(self) -> Conn:
        assert self.tdb is not None, "the run's connections are not open"
        return self.tdb

    @property
    def own_store(self) -> Conn:
        assert self.sdb is not None, "the run's connections are not open"
        return self.sdb

    # ---- the batch --------------------------------------------------------------------------------

    def begin(self, dry: bool) -> None:
        """Open a batch: the target's transaction (none in a dry run, which writes only the store)."""
        self._pending = []
        if not dry:
            self.target.begin()

    def write(self, sql: str, params: Any, many: bool = False) -> None:
        """A store statement of the open batch; it commits with the batch (see commit)."""
        self._pending.append((sql, params, many))

    def commit(self) -> None:
        """Commit the batch. One database: the store statements join the target's transaction. Two: the
        target commits with a journal entry holding the store statements, then the store commits them."""
        tdb, sdb = self.target, self.own_store
        stmts, self._pending = self._pending, []
        if self.same_db:
            if not tdb.in_transaction:
                tdb.begin()
            journal.apply(tdb, stmts)
            tdb.commit()
            return
        if tdb.in_transaction:
            self.seq += 1
            stmts.append(("UPDATE syncdash_runs SET applied_seq=? WHERE id=?", (self.seq, self.run_id), False))
            journal.write(tdb, self.store.store_id, self.run_id, self.seq, self.source, stmts)
            tdb.commit()
            if self.seq == CRASH_AFTER_TARGET_COMMIT:  # fault injection: the one moment the journal exists for
                os.kill(os.getpid(), signal.SIGKILL)
        sdb.begin()
        try:
            journal.apply(sdb, stmts)
            sdb.commit()
        except BaseException:
            sdb.rollback()
            raise

    def rollback(self) -> None:
        self._pending = []
        for c in (self.tdb, self.sdb):
            if c is not None and c.in_transaction:
                c.rollback()
