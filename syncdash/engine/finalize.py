"""The finalize phase of a full sync: rows the source no longer has are deleted (soft or hard, per config),
guarded by max_delete_ratio, in one transaction with their change rows and the counts."""

from __future__ import annotations

import json
from typing import Any

from syncdash.engine.batch import BatchWriter
from syncdash.errors import DeleteGuardTripped
from syncdash.store import runlog
from syncdash.store.db import format_ts
from syncdash.store.rows import PhaseStatus, Resolution, utcnow


def finalize(w: BatchWriter) -> None:
    """Delete what a full read did not see, unless something makes "not seen" mean less than "gone"."""
    life = w.life
    life.phase_start(w.fin_phase)
    try:
        resolve_untouched(w)
        skip = _why_not(w)
        if skip is not None:
            if skip:
                life.warnings.append(skip)
            life.phase_done(w.fin_phase, 0, 0)
            return
        _delete_absent(w)
    finally:
        w.drop_seen()


def _why_not(w: BatchWriter) -> str | None:
    """None: delete. "": nothing to do (not a full sync, deletes kept, ...). Else the warning saying why not."""
    life, cfg = w.life, w.cfg
    if life.mode != "full" or cfg.deletes == "keep" or w.fresh or w.seen is None or not w.target_exists:
        return ""
    partial_read = w.stream.truncated or (
        f"--limit-pages {life.opt.limit_pages}" if life.opt.limit_pages else None)
    if partial_read:
        return (f"deletes skipped: {partial_read}, so rows missing from what was read may still exist at the "
                "source")
    if w.keyless_errors:
        return (f"deletes skipped: {w.keyless_errors} row(s) failed before their key could be read, so absent "
                "rows cannot be told apart from them")
    return None


def _delete_absent(w: BatchWriter) -> None:
    life, cfg, target, db = w.life, w.cfg, w.target, w.db
    dry = w.dry
    run_id = life.run_id
    db.begin(dry)
    try:
        scope = w.stream.scope or None
        live = target.live_count(scope)
        seen_live = life.counts["inserted"] + life.counts["updated"] + life.counts["unchanged"]
        # every row this run inserted, updated or found unchanged is live now, so at most
        # live - seen_live rows are absent: an unchanged re-run skips the scan (not in a dry run,
        # which inserted nothing)
        n = 0 if (not dry and live <= seen_live) else target.collect_absent(w.seen, scope)
        ratio = cfg.max_delete_ratio
        if n and ratio is not None and live and n / live > ratio:
            raise DeleteGuardTripped(
                f"source {cfg.name}: the sync would delete {n} of {live} rows ({n / live:.0%}), more than "
                f"max_delete_ratio {ratio:.0%}; nothing was deleted. If the source really shrank, raise "
                "max_delete_ratio (or set it to null) for this source and run again")
        room = w.changes.room("delete")
        absent = target.absent_rows(limit=room) if room and n else []
        changes = w.changes.deletes(absent, target.key_of)
        now = format_ts(utcnow())
        deleted = target.delete_absent(cfg.deletes, now, run_id) if not dry and n else n
        life.count("deleted", deleted)
        if changes:
            db.write("INSERT INTO syncdash_changes (run_id, source, change, key, before, after) "
                     "VALUES (?, ?, ?, ?, ?, ?)", [(run_id, cfg.name, *c) for c in changes], many=True)
        db.write("UPDATE syncdash_runs SET deleted=? WHERE id=?", (life.counts["deleted"], run_id))
        db.write("UPDATE syncdash_run_phases SET deleted=? WHERE id=?",
                 (life.phase_counts["deleted"], life.phase_ids[w.load_phase]))
        db.write("UPDATE syncdash_run_phases SET done=?, total=?, status=?, finished_at=? WHERE id=?",
                 (deleted, n, PhaseStatus.DONE.value, now, life.phase_ids[w.fin_phase]))
        db.commit()
    except BaseException:
        db.rollback()
        raise
    life.report(w.fin_phase, n, n, None)


def _loose(key: Any) -> tuple[str, ...]:
    """A key compared by its text: a stored error's key may be the raw "42" its record had, the table's 42."""
    return tuple(str(v) for v in (key if isinstance(key, (list, tuple)) else [key]))


def resolve_untouched(w: BatchWriter) -> int:
    """After a complete read (a full, real run that read everything): the open errors of this stream that the
    run did not hit again are resolved, `fixed` when the item loaded this time and `gone` when the source no
    longer has it. An incremental or partial read cannot tell "not read" from "gone": its open errors stay
    open until a run hits them again or loads them (a retry resolves exactly its items)."""
    life = w.life
    if (life.mode != "full" or w.dry or w.stream.truncated or life.opt.limit_pages
            or life.opt.backfill_from is not None):
        return 0
    run_id = life.run_id
    c = life.store.conn()
    try:
        stale = runlog.errors_not_hit(c, w.cfg.name, w.load_phase, run_id)
    finally:
        c.close()
    if not stale:
        return 0
    keys = {_loose(json.loads(e.item_key)): json.loads(e.item_key) for e in stale if e.item_key}
    loaded: set[tuple[str, ...]] = set()
    if keys:
        typed = [tuple(k) if len(k) > 1 else k[0] for k in keys.values()]
        if w.seen is not None:  # the run's seen keys: those it loaded (failed ones are marked apart)
            found = w.seen.seen_before(typed, 1 << 62)
        else:  # a first load into an empty table: what the table holds now is what loaded
            found = {k for k, (_, deleted) in w.target.lookup(typed).items() if deleted is None}
        loaded = {_loose(k) for k in found}
    now = utcnow()
    with life.store.write() as c:
        for e in stale:
            if e.item_key:
                fixed = _loose(json.loads(e.item_key)) in loaded
            else:  # no key: its file and line were read again without failing, unless the file is now shorter
                top = w.lines_read.get(e.file)
                fixed = top is not None and e.line is not None and e.line <= top
            runlog.resolve(c, e.id, Resolution.FIXED if fixed else Resolution.GONE, run_id, now)
    return len(stale)
