"""One stream's batches into its target table: map, screen, diff, write. Each batch's rows, content hashes,
change rows, item errors, counts and checkpoint go through one BatchCommit (one transaction); a dry run
writes no target rows and stores no checkpoint.

Seen keys: a full sync records every key it read (to find the absent rows to delete and duplicates across
batches). A stream that can replay its input cheaply (CSV) rebuilds them on resume; one that cannot (REST,
web) keeps them in a stored table committed with each batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from syncdash.common.dialect import integrity_errors
from syncdash.engine.changes import ChangeLog, ChangeRow, Diff
from syncdash.engine.items import ItemError, ItemErrors, OpenErrors
from syncdash.engine.lifecycle import RunLifecycle
from syncdash.engine.options import PROGRESS_INTERVAL
from syncdash.engine.readahead import Prepared
from syncdash.engine.retry import PullRetry
from syncdash.kinds.contract import Batch, Stream
from syncdash.store.db import dumps, format_ts
from syncdash.store.rows import COUNTS, utcnow
from syncdash.targets import open as target_db
from syncdash.targets.table import FAILED

Rows = list[tuple[Any, ...]]


class BatchWriter:
    """The target table of one stream and the state its batches share (fresh, rewrite, seen keys)."""

    def __init__(self, life: RunLifecycle, stream: Stream, index: int, phases: tuple[str, str],
                 replayable: bool, retry: PullRetry | None) -> None:
        self.life = life
        self.db = life.db
        self.stream = stream
        self.cfg = stream.config
        self.index = index
        self.load_phase, self.fin_phase = phases
        self.replayable = replayable
        self.retry = retry
        self.dry = life.opt.dry_run
        self.items = ItemErrors(life.config, self.cfg.primary_key)
        self.open_errors = OpenErrors(life.store, self.cfg.name, dry_run=self.dry, retry=life.mode == "retry")
        columns = list(self.cfg.fields)
        self.target: Any = target_db.open_table(self.db.target, self.cfg.table, columns,
                                                [self.cfg.fields[c].type for c in columns], self.cfg.primary_key,
                                                getattr(self.cfg, "search", None))
        self.changes = ChangeLog(life, self.cfg.max_changes, self.target.columns)
        # a target whose key columns are bounded (MySQL VARCHAR(255)) says which keys do not fit
        self.key_too_long = self.target.key_too_long if getattr(self.target, "key_limits", None) else None
        self.batch_no = 0
        self.keyless_errors = 0  # rows that failed before their key was read: they block deletes
        self.lines_read: dict[str | None, int] = {}  # file -> the last line this run read of it
        self.fresh = False
        self.rewrite = False
        self.target_exists = False
        self.seen: Any = None
        self.screening = False
        self.last_batch: Batch | None = None
        self._last_progress = 0.0
        from os import getpid
        self._pid = getpid()  # prepare() runs in a read-ahead child when getpid() says otherwise

    # ---- set-up, restart, replay ----------------------------------------------------------------------

    def open(self, ck: dict[str, Any] | None) -> None:
        """Create the table if needed and decide how this stream's rows are compared (ck: resuming)."""
        tdb = self.db.target
        if not self.dry:
            tdb.begin()
            try:
                self.target.ensure()
                tdb.commit()
            except BaseException:
                tdb.rollback()
                raise
        self.target_exists = self.target.exists()
        if not self.dry:
            self.open_errors.load(self.load_phase)  # before any batch transaction holds the database
        if ck is not None:
            self.fresh = bool(ck.get("fresh"))
            self.rewrite = bool(ck.get("rewrite"))
            self.batch_no = int(ck.get("batches", 0))
        else:
            self.fresh = not self.dry and self.life.mode != "retry" and self.target.is_empty()
            state = self.life.store.source_state(self.cfg.name)
            self.rewrite = (self.target_exists and not self.fresh and state is not None
                            and state.fingerprint not in (None, self.life.fingerprint))
            if self.rewrite:
                self.life.warnings.append("the field mapping changed since the last sync: every row is compared "
                                          "by value and rewritten with its new hash")
        # a stream that cannot be replayed cheaply (REST) keeps its seen keys in the store, committed with
        # each batch, so a resume needs no refetch; CSV re-reads its prefix into a TEMP table (faster)
        self.seen = None if self.fresh else self._seen_keys(keep=not self.replayable and ck is not None)
        # a re-sync types only the rows SQLite finds new or changed (screened); a mapping change compares
        # by value (rewrite), a retry goes record by record
        self.screening = (self.seen is not None and self.target_exists and not self.rewrite and not self.fresh
                          and self.life.mode != "retry")

    def _seen_keys(self, keep: bool = False) -> Any:
        prefix = self.life.seen_prefix
        return self.target.seen_keys(f"{prefix}_{self.index}" if not self.replayable else prefix,
                                     persistent=not self.replayable, keep=keep)

    def restart(self, why: str) -> None:
        """The input changed under an interrupted run: start over (the upsert makes that safe)."""
        life = self.life
        life.warnings.append(f"could not resume ({why}); restarted from the beginning")
        life.counts = dict.fromkeys(COUNTS, 0)
        life.phase_counts = dict.fromkeys(COUNTS, 0)
        self.batch_no = 0
        self.fresh = False
        if self.seen is not None:
            self.seen.drop()
        self.seen = self._seen_keys()

    def replay(self, batches: Iterator[Batch]) -> None:
        """Rebuild the seen-key set from the part of the input that committed before the crash."""
        assert self.seen is not None
        for batch in batches:
            keys: list[Any] = []
            failed: list[Any] = []
            for rec in batch.records:
                try:
                    keys.append(batch.mapper.key_of(batch.mapper.fast(rec)))
                except Exception:
                    row, _ = batch.mapper.explain(rec)  # the slow path may still map it ("3.0" as int)
                    k = batch.mapper.key_of(row) if row is not None else batch.mapper.try_key(rec)
                    if k is not None:
                        (keys if row is not None else failed).append(k)
            failed += [p.key for p in batch.problems if p.key is not None]
            if failed:
                self.seen.add(failed, FAILED)
            if keys:
                self.seen.add(keys, 0)

    def drop_seen(self) -> None:
        if self.seen is not None:
            self.seen.drop()

    # ---- the pure part (may run in the read-ahead child) ------------------------------------------------

    def prepare(self, batch: Batch, records: list[Any] | None = None, screen: bool = True) -> Prepared:
        """The pure part of a batch (no database): typed rows, their keys, row errors, in-batch duplicates.

        When the table already holds rows (a re-sync), only each record's key and hash are computed: the
        writer asks SQLite which rows are new or differ and types just those (see _screened).
        """
        if records is not None:
            batch.records = records
        kh = batch.mapper.key_hash
        if screen and self.screening and kh is not None and batch.records:
            try:
                pairs = list(map(kh, batch.records))
            except Exception:  # a key that does not type: the exact path says which and why
                pairs = None
            if pairs is not None:
                unique = {p[0] for p in pairs} if len(pairs[0]) == 2 else {p[:-1] for p in pairs}
                if self.key_too_long is not None and any(map(self.key_too_long, unique)):
                    unique = set()  # a key that does not fit its column: the exact path makes it an item error
                if len(unique) == len(pairs):
                    errors = [self.items.problem(batch, p) for p in batch.problems]
                    raw: Any = batch.records
                    batch.records = []
                    from os import getpid
                    if getpid() != self._pid:  # the writer reads ~2% of them: see engine/packed.py
                        from syncdash.engine.packed import pack
                        raw = pack(raw)
                    encode = getattr(self.target, "encode_key_hash", None)  # the SQLite target's own form
                    payload = encode(pairs) if encode is not None else json.dumps(pairs, default=str)
                    return raw, batch.lines, errors, None, payload
        rows, lines, errors = self._map(batch)
        batch.records = []  # the raw records are done with; queued batches should not hold them
        keys = list(map(batch.mapper.key_of, rows))
        if self.key_too_long is not None:
            rows, lines, keys = self._drop_long_keys(batch, rows, lines, keys, errors)
        if len(set(keys)) != len(keys):
            rows, lines, keys = self._drop_batch_duplicates(batch, rows, lines, keys, errors)
        return rows, lines, errors, keys, None

    def _map(self, batch: Batch) -> tuple[Rows, Sequence[int | None], list[ItemError]]:
        mapper = batch.mapper
        errors: list[ItemError] = [self.items.problem(batch, p) for p in batch.problems]
        try:
            return list(map(mapper.fast, batch.records)), batch.lines, errors
        except Exception:
            pass
        rows: Rows = []
        lines: list[int | None] = []
        fast, explain = mapper.fast, mapper.explain
        where: Sequence[int | None] = batch.lines or [None] * len(batch.records)
        for rec, ln in zip(batch.records, where, strict=True):
            try:
                rows.append(fast(rec))
                lines.append(ln)
                continue
            except Exception:
                row, problems = explain(rec)
            if row is not None:
                rows.append(row)
                lines.append(ln)
                continue
            errors.append(self._mapping_error(batch, rec, ln, problems))
        return rows, lines, errors

    def _mapping_error(self, batch: Batch, rec: Any, line: int | None, problems: list[Any]) -> ItemError:
        first = problems[0]
        msg = "; ".join(f"{p.column} (from {p.source}): {p.reason}" for p in problems)
        return self.items.error(batch, line, msg, first.error_type, column=first.source, payload=rec,
                                key=batch.mapper.try_key(rec))

    def _drop_long_keys(self, batch: Batch, rows: Rows, lines: Sequence[int | None], keys: list[Any],
                        errors: list[ItemError]) -> tuple[Rows, list[int | None], list[Any]]:
        """Rows whose key does not fit the target's key column become item errors (without the key: it cannot
        be stored in the seen set either), instead of failing the batch and the run."""
        assert self.key_too_long is not None
        out_r, out_l, out_k = [], [], []
        for r, ln, k in zip(rows, lines, keys, strict=True):
            why = self.key_too_long(k)
            if why is not None:
                errors.append(self.items.error(batch, ln, why, "too_large", payload=None, key=None))
                continue
            out_r.append(r)
            out_l.append(ln)
            out_k.append(k)
        return out_r, out_l, out_k

    def _drop_batch_duplicates(self, batch: Batch, rows: Rows, lines: Sequence[int | None], keys: list[Any],
                               errors: list[ItemError]) -> tuple[Rows, list[int | None], list[Any]]:
        first: dict[Any, int | None] = {}
        out_r, out_l, out_k = [], [], []
        for r, ln, k in zip(rows, lines, keys, strict=True):
            if k in first:
                where = f" (first on line {first[k]})" if first[k] is not None else ""
                errors.append(self.items.error(batch, ln, f"duplicate key {self.items.key_text(k)}{where}",
                                               "duplicate", payload=None, key=k, retryable=False))
                continue
            first[k] = ln
            out_r.append(r)
            out_l.append(ln)
            out_k.append(k)
        return out_r, out_l, out_k

    def _drop_seen_duplicates(self, batch: Batch, rows: Rows, lines: Sequence[int | None], keys: list[Any],
                              dups: set[Any], errors: list[ItemError]) -> tuple[Rows, list[int | None], list[Any]]:
        out_r, out_l, out_k = [], [], []
        for r, ln, k in zip(rows, lines, keys, strict=True):
            if k in dups:
                errors.append(self.items.error(batch, ln, f"duplicate key {self.items.key_text(k)} (an earlier "
                                               "row of this run has it)", "duplicate", key=k, retryable=False))
                continue
            out_r.append(r)
            out_l.append(ln)
            out_k.append(k)
        return out_r, out_l, out_k

    # ---- one batch, one transaction -------------------------------------------------------------------

    def process(self, batch: Batch, prepared: Prepared | None = None) -> None:
        """Write one batch and its bookkeeping in one transaction; report progress after it committed."""
        life = self.life
        self.batch_no += 1
        rows, lines, errors, keys, screened = prepared if prepared is not None else self.prepare(batch)
        if screened is not None and isinstance(rows, tuple):  # packed by the read-ahead child
            from syncdash.engine.packed import PackedRecords
            rows = PackedRecords(rows)
        key_of = batch.mapper.key_of
        now = format_ts(utcnow())
        run_id = life.run_id
        inserted = updated = unchanged = 0
        change_rows: list[ChangeRow] = []
        counted = life.snapshot()
        self.db.begin(self.dry)
        try:
            verdict = None
            if screened is not None:
                verdict = self._screened(batch, rows, lines, errors, screened)
                if verdict is None:  # a key an earlier batch had: type every row, the exact path sorts it out
                    batch.problems = []  # already among `errors`
                    rows, lines, mapped_errors, keys, _ = self.prepare(batch, list(rows), screen=False)
                    bad = [e["_key"] for e in mapped_errors if e.get("_key") is not None]
                    if bad and self.seen is not None:
                        self.seen.mark_failed(bad)
                    errors = errors + mapped_errors
            keys = keys or []
            key_hash: str | None = None
            if verdict is None and self.seen is not None:
                failed_keys = [e["_key"] for e in errors if e.get("_key") is not None]
                if failed_keys:
                    self.seen.add(failed_keys, FAILED)
                # [key, hash] pairs, encoded once for the seen set and the hash comparison. Encoded here and
                # not in the reader process: that one is the busier of the two (read + map + marshal)
                key_hash = self.target.key_hash_json(keys, rows) if keys else None
                added = self.seen.add(keys, self.batch_no, key_hash) if keys else 0
                if added < len(keys):
                    dups = self.seen.seen_before(keys, self.batch_no)
                    if dups:
                        rows, lines, keys = self._drop_seen_duplicates(batch, rows, lines, keys, dups, errors)
                        key_hash = self.target.key_hash_json(keys, rows) if keys else None
            if verdict is None and self.fresh and not self.dry:
                new: Rows = rows
                if new and not self._try_insert(new, now, run_id):
                    dups = set(self.target.lookup(keys))
                    rows, lines, keys = self._drop_seen_duplicates(batch, rows, lines, keys, dups, errors)
                    new = rows
                    if new:
                        self.target.insert(new, now, run_id)
                inserted = len(new)
            else:
                changed: Rows = []
                if verdict is not None:
                    new, changed, unchanged, lines = verdict
                else:
                    new = []
                    if keys and self.target_exists and not self.rewrite:
                        # SQLite compares the hashes: Python only sees the few rows that are new or differ
                        assert key_hash is not None  # a run against existing rows has a seen set: encoded above
                        for i, exists in self.target.differing(key_hash):
                            (changed if exists else new).append(rows[i])
                        unchanged = len(rows) - len(new) - len(changed)
                    elif keys and self.target_exists:
                        existing = self.target.lookup(keys)
                        for r, k in zip(rows, keys, strict=True):
                            (changed if k in existing else new).append(r)
                    else:
                        new = rows
                updates, diffs, same = self._diff(changed, key_of)
                unchanged += same
                if not self.dry:
                    if new:
                        self.target.insert(new, now, run_id)
                    if updates:
                        self.target.update(updates, now, run_id)
                inserted, updated = len(new), len(diffs)
                change_rows.extend(self.changes.updates(diffs))
            change_rows.extend(self.changes.inserts(new, key_of))
            life.count("inserted", inserted)
            life.count("updated", updated)
            life.count("unchanged", unchanged)
            life.count("failed", len(errors))
            life.count("skipped", batch.skipped)
            self.keyless_errors += sum(1 for e in errors if e.get("_key") is None)
            self._note_lines(batch, lines, errors)
            if self.retry is not None:
                for ln in lines:
                    self.retry.loaded.add((self.items.redact_path(batch.file), ln))
                for e in errors:
                    self.retry.failed[(e["file"], e["line"])] = 1
            self._write_store(batch, errors, change_rows, now)
            self.db.commit()
        except BaseException:
            self.db.rollback()
            life.restore(counted)  # the run's counts say what committed, also when it fails here
            raise
        self.last_batch = batch
        life.report(self.load_phase, batch.done, batch.total, batch.detail, self.stream.unit)

    def _note_lines(self, batch: Batch, lines: Sequence[int | None], errors: list[ItemError]) -> None:
        """The last line read of each file: an open error without a key resolves as gone when a later full
        read no longer reaches its line (finalize.resolve_untouched)."""
        top = [ln for ln in (batch.lines[-1] if batch.lines else None, lines[-1] if lines else None,
                             *(e["line"] for e in errors)) if ln is not None]
        if top:
            f = self.items.redact_path(batch.file)
            self.lines_read[f] = max(self.lines_read.get(f, 0), *top)

    def _screened(self, batch: Batch, records: Sequence[Any], lines: Sequence[int | None], errors: list[ItemError],
                  key_hash: str) -> tuple[Rows, Rows, int, Sequence[int | None]] | None:
        """A batch the reader only keyed and hashed: SQLite names the rows that are new or differ, and only
        those are typed. None when a key was already seen this run (the exact path then handles duplicates).

        On a re-sync that changes 2% of a million rows this skips typing (and shipping typed) 98% of them.
        """
        assert self.seen is not None
        failed_keys = [e["_key"] for e in errors if e.get("_key") is not None]
        if failed_keys:
            self.seen.add(failed_keys, FAILED)
        if self.seen.add((), self.batch_no, key_hash) < len(records):
            return None
        mapper = batch.mapper
        new: Rows = []
        changed: Rows = []
        bad: list[Any] = []
        loaded_lines: list[int | None] = []
        differing = self.target.differing(key_hash)
        for i, exists in differing:
            rec = records[i]
            try:
                row = mapper.fast(rec)
            except Exception:
                maybe, problems = mapper.explain(rec)
                if maybe is None:
                    err = self._mapping_error(batch, rec, lines[i], problems)
                    errors.append(err)
                    if err["_key"] is not None:
                        bad.append(err["_key"])
                    continue
                row = maybe
            (changed if exists else new).append(row)
            loaded_lines.append(lines[i])
        if bad:
            self.seen.mark_failed(bad)
        if self.retry is not None:  # (retry runs take the exact path; kept for the lines contract)
            return new, changed, len(records) - len(differing), lines
        return new, changed, len(records) - len(differing), loaded_lines

    def _try_insert(self, rows: Rows, now: str, run_id: int) -> bool:
        """Fast path for a table that was empty when the run began: duplicates surface as a PK clash."""
        tdb = self.db.target
        tdb.savepoint("batch_insert")
        try:
            self.target.insert(rows, now, run_id)
        except integrity_errors():
            tdb.rollback_to("batch_insert")
            return False
        tdb.release("batch_insert")
        return True

    def _diff(self, changed: Rows, key_of: Callable[[Any], Any]) -> tuple[Rows, list[Diff], int]:
        """Before/after of the fields that really changed; rows equal by value only get a new hash."""
        if not changed:
            return [], [], 0
        before = self.target.fetch([key_of(r) for r in changed])
        columns = self.target.columns
        updates: Rows = []
        diffs: list[Diff] = []
        same = 0
        for r in changed:
            k = key_of(r)
            old = before.get(k)
            updates.append(r)
            if old is None:
                continue
            b, a = {}, {}
            for i, c in enumerate(columns):
                if old[i] != r[i]:
                    b[c], a[c] = old[i], r[i]
            if old[-1] is not None:
                b["_deleted_at"], a["_deleted_at"] = old[-1], None
            if b:
                diffs.append((k, b, a))
            else:
                same += 1
        return updates, diffs, same

    def _write_store(self, batch: Batch, errors: list[ItemError], change_rows: list[ChangeRow], now: str) -> None:
        """The batch's bookkeeping: errors, change records, counts and the checkpoint (none in a dry run)."""
        life = self.life
        run_id, source = life.run_id, self.cfg.name
        if errors:  # an item that failed before updates its open error (engine/items.py OpenErrors)
            self.open_errors.write(self.db.write, run_id, self.load_phase, errors, now)
        if change_rows:
            self.db.write("INSERT INTO syncdash_changes (run_id, source, change, key, before, after) "
                          "VALUES (?, ?, ?, ?, ?, ?)", [(run_id, source, *c) for c in change_rows], many=True)
        ck = {"stream": self.index, "source": batch.checkpoint, "fresh": self.fresh,
              "rewrite": self.rewrite, "batches": self.batch_no}
        c = life.counts
        self.db.write(
            "UPDATE syncdash_runs SET inserted=?, updated=?, unchanged=?, deleted=?, failed=?, skipped=?, "
            "checkpoint=?, heartbeat_at=? WHERE id=?",
            (*(c[n] for n in COUNTS), None if self.dry else dumps(ck), now, run_id))
        p = life.phase_counts
        self.db.write("UPDATE syncdash_run_phases SET inserted=?, updated=?, unchanged=?, failed=?, skipped=? "
                      "WHERE id=?", (p["inserted"], p["updated"], p["unchanged"], p["failed"], p["skipped"],
                                     life.phase_ids[self.load_phase]))
        t = time.monotonic()
        if t - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = t
            self.db.write("UPDATE syncdash_run_phases SET done=?, total=?, detail=? WHERE id=?",
                          (batch.done, batch.total, life.config.redact(batch.detail or "") or None,
                           life.phase_ids[self.load_phase]))
