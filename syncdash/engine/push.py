"""Executing a push: rows of a table (or query), in key order, sent to an HTTP API when new or changed.

What was last sent for each key is in the store (syncdash_pushed: the hash of URL and body), so a run sends
only rows whose request would differ, and `--full` sends all. Requests go out one at a time, in key order;
after each one its outcome, the pushed hashes, the item errors, the counts and the checkpoint (the last key
read) commit in one store transaction. A resumed run starts after that key. A crash between a request and its
commit re-sends that one request: its Idempotency-Key (derived from the records' keys and content) lets the
server recognise it.

A request the server rejects (4xx) with several records in it is split and each record sent alone, so every
record gets its own verdict; a rejected record becomes an item error with the server's message and the body
sent, retryable from the console or `syncdash retry`. 5xx, timeouts and 429 are retried by the HTTP client
with backoff; when retries run out the run fails (what committed stays).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime
from typing import Any

from syncdash.common.dialect import Conn
from syncdash.common.secrets import mask_then_cut
from syncdash.engine.items import OpenErrors, resolve_accepted
from syncdash.engine.lifecycle import RunLifecycle, phase_specs
from syncdash.engine.options import PROGRESS_INTERVAL
from syncdash.engine.pushrows import BadSegment, PushRows, Record
from syncdash.errors import DeleteGuardTripped, FetchError
from syncdash.kinds.contract import Source, Stream
from syncdash.kinds.push.config import PushConfig
from syncdash.store import runlog
from syncdash.store.db import dumps, format_ts
from syncdash.store.rows import COUNTS, utcnow

REJECTED = frozenset({400, 404, 409, 410, 412, 415, 422})  # the record is wrong, not the request or the server
GONE = frozenset({404, 410})  # a delete of something the server no longer has: done
PREVIEW = 20  # requests shown by a dry run, per tenant
CREDENTIAL_HEADER = re.compile(r"authorization|token|secret|password|api[-_]?key|cookie|credential", re.IGNORECASE)


class PushExecutor:
    """The push phases of one run: `push` (and `deletes`), or one pair per tenant. Composes the run's
    lifecycle (phases, counts, cancel) and its BatchCommit (each request's outcome with the checkpoint)."""

    def __init__(self, life: RunLifecycle, source: Source) -> None:
        self.life = life
        self.db = life.db
        self.store = life.store
        self.source = source
        self.streams: list[Stream] = list(source.streams())
        self.previews: list[dict[str, Any]] = []
        self.would_send: dict[str, int] = {}  # dry run: requests that would be sent, per tenant ("" when none)
        self._done_keys: set[str] = set()  # retry: keys whose errors were sent again and accepted
        self._retry_failed_keys: set[str] = set()
        self._retry_errors: list[Any] = []  # every stream's (tenant's) retried errors
        self._last_progress = 0.0
        self.stream_idx = 0
        self.batch_no = 0
        self.load_phase, self.fin_phase = "push", "deletes"
        self.open_errors = OpenErrors(self.store, life.cfg.name, dry_run=life.opt.dry_run,
                                      retry=life.mode == "retry")

    def phase_names(self, stream: Stream) -> tuple[str, str]:
        if len(self.streams) == 1:
            return "push", "deletes"
        return stream.phase, f"{stream.phase} deletes"

    def phase_specs(self) -> list[tuple[str, str]]:
        """A push and a deletes phase per stream (tenant)."""
        return phase_specs(self.streams, self.phase_names)

    # ---- the run ---------------------------------------------------------------------------------

    def execute(self) -> None:
        from syncdash.kinds.rest.client import RestClient

        ck = self.life.checkpoint()
        first = int(ck.get("stream", 0)) if ck else 0
        clients: list[RestClient] = []
        try:
            for i, stream in enumerate(self.streams):
                if i < first:
                    continue
                self._enter_stream(i, stream)
                assert isinstance(stream.config, PushConfig)
                client = RestClient(stream.config, store=self.store, redact=self.life.config.redact,
                                    add_secret=self.life.config.add_secret, cancel=self.life.opt.cancel)
                clients.append(client)
                self.client = client
                self.push_cfg: PushConfig = stream.config
                self.scope: dict[str, Any] = stream.scope
                self.rows = PushRows(self.push_cfg, self.scope, self.db.target, self.life.config.redact)
                self.rows.check_columns()
                own = ck if (ck is not None and i == first) else None
                if own is None or own.get("phase") != "deletes":
                    self._push_rows(own)
                    own = None
                if self.push_cfg.deletes == "send" and self.life.mode != "retry":
                    self._send_deletes(own)
                else:
                    self.life.phase_start(self.fin_phase)
                    self.life.phase_done(self.fin_phase, 0, 0)
        finally:
            self.db.rollback()
            self.life.collect(self.streams, self.source, clients)
            for c in clients:
                c.close()
        for p in self.previews:  # each preview knows its tenant's total, so "first 20 of N" can be shown
            p["request"]["total"] = self.would_send.get(p["request"]["tenant"] or "", 0)
        self.life.sample.extend(self.previews)

    def _enter_stream(self, i: int, stream: Stream) -> None:
        """Point the per-stream state (phases, counts) at stream i; a resumed stream's counts as committed."""
        life = self.life
        self.stream_idx = i
        self.load_phase, self.fin_phase = self.phase_names(stream)
        self.batch_no = 0
        life.phase_counts = dict.fromkeys(COUNTS, 0)
        if not life.opt.dry_run:  # read before a batch holds the database (engine/items.py OpenErrors.load)
            self.open_errors.load(self.load_phase)
            self.open_errors.load(self.fin_phase)
        if life.resumed:
            c = self.store.conn()
            try:
                counts = runlog.phase_counts(c, life.phase_ids[self.load_phase])
            finally:
                c.close()
            if counts is not None:
                life.phase_counts = counts

    # ---- push phase -------------------------------------------------------------------------------------

    def _push_rows(self, ck: dict[str, Any] | None) -> None:
        cfg = self.push_cfg
        self.life.phase_start(self.load_phase)
        total = self.rows.count()
        self.life.set_total(self.load_phase, total)
        after = ck.get("after") if ck else None
        done = int(ck.get("done", 0)) if ck else 0
        retry_keys = self._retry_keys() if self.life.mode == "retry" else None
        pending: list[Record] = []
        unchanged = 0
        last_key: list[Any] | None = after
        for rows in self.rows.chunks(after):
            pushed = self._pushed_hashes([dumps([r[k] for k in cfg.key]) for r in rows])
            for row in rows:
                self.life.check_cancel()
                rec_key = dumps([row[k] for k in cfg.key])
                if retry_keys is not None and rec_key not in retry_keys:
                    last_key, done = [row[k] for k in cfg.key], done + 1
                    continue
                old = pushed.get(rec_key)
                try:
                    rec = self.rows.record(row, "insert" if old is None else "update")
                except BadSegment as e:  # an item error naming the row; never a request
                    if pending:
                        self._flush(pending, unchanged, last_key, done, total)
                        pending, unchanged = [], 0
                    bad = self._bad_record(row, rec_key)
                    last_key, done = list(bad.key), done + 1
                    self._commit([], [(bad, f"bad URL: {e}")], unchanged, {"phase": "push", "after": last_key,
                                                                         "done": done}, done, total)
                    unchanged = 0
                    continue
                if old == rec.hash and not self.life.opt.full and retry_keys is None:
                    unchanged += 1
                    last_key, done = list(rec.key), done + 1
                    continue
                if pending and (pending[-1].url != rec.url or len(pending) >= cfg.batch):
                    self._flush(pending, unchanged, last_key, done, total)
                    pending, unchanged = [], 0
                pending.append(rec)
                last_key, done = list(rec.key), done + 1
            if not pending and unchanged:  # a chunk with nothing to send still moves the checkpoint
                self._flush([], unchanged, last_key, done, total)
                unchanged = 0
        if pending or unchanged:
            self._flush(pending, unchanged, last_key, done, total)
        if retry_keys is not None:
            self._retry_gone = retry_keys - self._done_keys - self._retry_failed_keys
        self.life.phase_done(self.load_phase, total, total)

    def _flush(self, records: list[Record], unchanged: int, last_key: list[Any] | None, done: int,
               total: int) -> None:
        """Send one request's records; commit their outcome with the checkpoint."""
        accepted, rejected = self._send(records) if records else ([], [])
        self._commit(accepted, rejected, unchanged, {"phase": "push", "after": last_key, "done": done}, done, total)

    def _send(self, records: list[Record], method: str | None = None) -> tuple[list[Record], list[tuple[Record, str]]]:
        """(accepted, [(rejected, why)]) for one request of records; a rejected batch is retried one by one."""
        cfg = self.push_cfg
        method = method or cfg.method
        body: Any
        if records[0].change == "delete":  # a DELETE has no body; a POST-style delete sends the row's key
            body = None if method == "DELETE" and not cfg.delete_body else records[0].ref
        elif cfg.batch == 1:
            body = records[0].body
        else:
            items = [r.body for r in records]
            body = {cfg.envelope: items} if cfg.envelope else items
        headers = {}
        if cfg.idempotency_key:
            seed = "|".join(f"{r.key_json}:{r.hash}:{r.change == 'delete'}" for r in records)
            headers["Idempotency-Key"] = hashlib.sha256(f"{cfg.name}|{seed}".encode()).hexdigest()[:40]
        url = records[0].url
        if self.life.opt.dry_run:  # what would be sent, per tenant: the first PREVIEW requests and the total
            tenant = self.load_phase if len(self.streams) > 1 else None
            n = self.would_send.get(tenant or "", 0) + 1
            self.would_send[tenant or ""] = n
            if n <= PREVIEW:
                self.previews.append({"change": records[0].change, "key": list(records[0].key), "before": None,
                                      "after": body, "request": {
                                          "method": method, "url": self.client.show_url(url), "tenant": tenant,
                                          "headers": self._shown_headers(headers, body is not None),
                                          "records": len(records)}})
            return records, []
        accept = REJECTED | (GONE if method == "DELETE" else frozenset())
        resp = self.client.fetch(url, method=method, body=body, headers=headers, accept=accept)
        if resp.status < 400 or (method == "DELETE" and resp.status in GONE):
            return records, []
        if len(records) > 1:
            accepted: list[Record] = []
            rejected: list[tuple[Record, str]] = []
            for r in records:
                a, b = self._send([r], method)
                accepted += a
                rejected += b
            return accepted, rejected
        return [], [(records[0], f"HTTP {resp.status}: {self._server_message(resp)}")]

    def _bad_record(self, row: dict[str, Any], key_json: str) -> Record:
        """A row whose URL cannot be built, as a rejected record (its error shows the URL template)."""
        cfg = self.push_cfg
        return Record(key=tuple(row[k] for k in cfg.key), key_json=key_json, body=None, hash=0, url=cfg.url,
                      ref={}, change="insert")

    def _shown_headers(self, extra: dict[str, str], has_body: bool) -> dict[str, str]:
        """The headers a request would carry, as a dry run may show them: credentials masked (the auth
        header, any header named like a credential, and every ${VAR} value)."""
        cfg = self.push_cfg
        shown = {"User-Agent": "syncdash", **{k: self.life.config.redact(str(v)) for k, v in cfg.headers.items()}}
        auth = cfg.auth
        if auth is not None and getattr(auth, "in_", "header") != "query":  # a query key is masked in the URL
            shown[str(getattr(auth, "name", "")) if hasattr(auth, "in_") else "Authorization"] = "***"
        for k in list(shown):
            if CREDENTIAL_HEADER.search(k):
                shown[k] = "***"
        if has_body:
            shown["Content-Type"] = "application/json"
        return {**shown, **extra}

    def _server_message(self, resp: Any) -> str:
        try:
            body = resp.body
        except FetchError:
            body = None
        if isinstance(body, dict):
            for k in ("message", "error", "detail", "errors"):
                if body.get(k):
                    v = body[k]
                    text = v if isinstance(v, str) else json.dumps(v, default=str)
                    # masked before the cut: a secret the server echoes across it would leave half of itself
                    return mask_then_cut(text, 300, self.life.config.secrets, more="")
        return resp.preview(resp.content)

    def _commit(self, accepted: list[Record], rejected: list[tuple[Record, str]], unchanged: int,
                ck: dict[str, Any], done: int, total: int, deletes: bool = False) -> None:
        cfg = self.push_cfg
        now = format_ts(utcnow())
        scope = next(iter(self.scope.values()), "") if self.scope else ""
        if deletes:
            self.life.count("deleted", len(accepted))
        else:
            self.life.count("inserted", sum(1 for r in accepted if r.change == "insert"))
            self.life.count("updated", sum(1 for r in accepted if r.change == "update"))
            self.life.count("unchanged", unchanged)
        self.life.count("failed", len(rejected))
        self.db.begin(dry=True)
        if not self.life.opt.dry_run and accepted:
            if deletes:
                self.db.write("DELETE FROM syncdash_pushed WHERE source = ? AND key = ?",
                                  [(cfg.name, r.key_json) for r in accepted], many=True)
            else:
                self.db.write(
                    "INSERT INTO syncdash_pushed (source, key, scope, hash, url, ref, run_id, pushed_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, key) DO UPDATE SET hash = excluded.hash, "
                    "url = excluded.url, ref = excluded.ref, run_id = excluded.run_id, pushed_at = excluded.pushed_at",
                    [(cfg.name, r.key_json, scope, r.hash, self.life.config.redact(self.client.show_url(r.url)),
                      dumps(r.ref), self.life.run_id, now) for r in accepted], many=True)
        if self.life.mode == "retry":
            self._done_keys.update(r.key_json for r in accepted)
            self._retry_failed_keys.update(r.key_json for r, _ in rejected)
        self.db.write(*self._change_rows(accepted, deletes))
        # a record rejected before and accepted now: its open error is fixed
        resolve_accepted(self.open_errors, self.db.write, self.life.run_id,
                         self.fin_phase if deletes else self.load_phase, "rejected",
                         [r.key_json for r in accepted], now)
        if rejected:  # a record rejected before updates its open error (engine/items.py OpenErrors)
            self.open_errors.write(self.db.write, self.life.run_id, self.fin_phase if deletes else self.load_phase, [
                {"item": self._item(r), "item_key": r.key_json, "file": None, "line": None, "column": None,
                 "error_type": "rejected", "code": why.split(":", 1)[0], "retryable": True,
                 "message": self.life.config.redact(f"{'DELETE' if deletes else cfg.method} "
                                                    f"{self.client.show_url(r.url)}: {why}"),
                 "payload": self.life.config.redact(dumps(r.body))} for r, why in rejected], now)
        c, p = self.life.counts, self.life.phase_counts
        self.batch_no += 1
        full_ck = {"stream": self.stream_idx, **ck, "batches": self.batch_no}
        self.db.write("UPDATE syncdash_runs SET inserted=?, updated=?, unchanged=?, deleted=?, failed=?, "
                          "skipped=?, checkpoint=?, heartbeat_at=? WHERE id=?",
                          (c["inserted"], c["updated"], c["unchanged"], c["deleted"], c["failed"], c["skipped"],
                           None if self.life.opt.dry_run else dumps(full_ck), now, self.life.run_id))
        self.db.write("UPDATE syncdash_run_phases SET inserted=?, updated=?, unchanged=?, deleted=?, failed=? "
                          "WHERE id=?", (p["inserted"], p["updated"], p["unchanged"], p["deleted"], p["failed"],
                                         self.life.phase_ids[self.load_phase]))
        t = time.monotonic()
        if t - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = t
            self.db.write("UPDATE syncdash_run_phases SET done=?, total=?, detail=? WHERE id=?",
                              (done, total, f"key {', '.join(map(str, ck.get('after') or []))}"[:200],
                               self.life.phase_ids[self.fin_phase if deletes else self.load_phase]))
        self.db.commit()
        self.life.report(self.fin_phase if deletes else self.load_phase, done, total, None)

    def _change_rows(self, accepted: list[Record], deletes: bool) -> tuple[str, Any, bool]:
        kind_room = {k: max(0, self.push_cfg.max_changes - self.life.changes_kept[k]) for k in self.life.changes_kept}
        rows = []
        for r in accepted:
            kind = "delete" if deletes else r.change
            if kind_room[kind] > 0:
                kind_room[kind] -= 1
                self.life.changes_kept[kind] += 1
                after = None if deletes else self.life.config.redact(dumps(r.body))
                rows.append((self.life.run_id, self.push_cfg.name, kind, r.key_json, None, after))
        return ("INSERT INTO syncdash_changes (run_id, source, change, key, before, after) VALUES (?, ?, ?, ?, ?, ?)",
                rows, True)

    def _item(self, r: Record) -> str:
        return "key " + ", ".join(f"{k}={v!r}" for k, v in zip(self.push_cfg.key, r.key, strict=True))

    def _pushed_hashes(self, keys: list[str]) -> dict[str, int]:
        c = self.store.conn()
        try:
            return runlog.pushed_hashes(c, self.push_cfg.name, keys)
        finally:
            c.close()

    # ---- deletes phase ------------------------------------------------------------------------------------

    def _send_deletes(self, ck: dict[str, Any] | None) -> None:
        """Keys pushed before and absent from the rows now (or soft-deleted) are sent as deletes."""
        cfg = self.push_cfg
        self.life.phase_start(self.fin_phase)
        scope = next(iter(self.scope.values()), "") if self.scope else ""
        c = self.store.conn()
        try:
            pushed = runlog.pushed_rows(c, cfg.name, scope)
        finally:
            c.close()
        after = ck.get("after_pushed") if ck else None
        if after is not None:
            pushed = [p for p in pushed if p.key > after]
        absent = self.rows.absent([p for p in pushed])
        live = len(pushed)
        ratio = cfg.max_delete_ratio
        if absent and ratio is not None and live and len(absent) / live > ratio and ck is None:
            raise DeleteGuardTripped(
                f"push {cfg.name}: {len(absent)} of {live} pushed records are gone from the rows "
                f"({len(absent) / live:.0%}), more than max_delete_ratio {ratio:.0%}; no delete was sent. If they "
                "really are gone, raise "
                "max_delete_ratio (or set it to null) and run again")
        total = len(absent)
        self.life.set_total(self.fin_phase, total)
        done = 0
        for p in absent:
            self.life.check_cancel()
            ref = json.loads(p.ref or "{}")
            rec = Record(key=tuple(json.loads(p.key)), key_json=p.key, body=None, hash=0,
                         url=cfg.delete.url or cfg.url, ref=ref, change="delete")
            accepted: list[Record]
            rejected: list[tuple[Record, str]]
            try:
                rec.url = self.rows.delete_url(p, ref)
            except BadSegment as e:
                accepted, rejected = [], [(rec, f"bad URL: {e}")]
            else:
                accepted, rejected = self._send([rec], cfg.delete.method)
            done += 1
            self._commit(accepted, rejected, 0, {"phase": "deletes", "after_pushed": p.key}, done, total,
                         deletes=True)
        self.life.phase_done(self.fin_phase, done, total)

    # ---- retry ---------------------------------------------------------------------------------------------

    def _retry_keys(self) -> set[str]:
        c = self.store.conn()
        try:
            errs = runlog.retry_targets(c, [self.life.opt.retry_of or 0], self.life.opt.retry_errors,
                                        phase=self.load_phase)
        finally:
            c.close()
        self._retry_errors += errs
        return {e.item_key for e in errs if e.item_key}

    def resolve_retried(self, c: Conn, run_id: int, now: datetime) -> None:
        """A retry run's errors: fixed (accepted now), retried (rejected again) or gone (no such row now)."""
        for err in self._retry_errors:
            runlog.resolve_retried(c, err.id, loaded=err.item_key in self._done_keys,
                                   failed=err.item_key in self._retry_failed_keys, run_id=run_id, now=now)
        failed = {e.item_key: e.attempts for e in self._retry_errors}
        for new in runlog.new_errors(c, run_id):
            if new.item_key in failed:
                runlog.set_attempts(c, new.id, failed[new.item_key] + 1)
