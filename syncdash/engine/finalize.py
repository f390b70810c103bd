"""The finalize phase of a full sync: rows the source no longer has are deleted (soft or hard, per config),
guarded by max_delete_ratio, in one transaction with their change rows and the counts."""

from __future__ import annotations

from syncdash.engine.batch import BatchWriter
from syncdash.errors import DeleteGuardTripped
from syncdash.store.db import format_ts
from syncdash.store.models import PhaseStatus, utcnow


def finalize(w: BatchWriter) -> None:
    """Delete what a full read did not see, unless something makes "not seen" mean less than "gone"."""
    life = w.life
    life.phase_start(w.fin_phase)
    try:
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
