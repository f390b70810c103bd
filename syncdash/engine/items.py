"""Item errors as the engine stores them: one record that could not be loaded, where it was, why, and
whether a retry may fix it. Keys are shown and stored the same way everywhere (a JSON list)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from syncdash.config.models import Config
from syncdash.kinds.contract import Batch, RecordProblem
from syncdash.store import runlog
from syncdash.store.db import Store, dumps

NOT_RETRYABLE = {"duplicate"}  # a duplicate key stays one however often it is read again

ItemError = dict[str, Any]  # the columns of syncdash_item_errors, plus "_key" (the raw key, for seen sets)


def key_list(k: Any) -> list[Any]:
    return list(k) if isinstance(k, tuple) else [k]


def key_json(k: Any) -> str:
    return dumps(key_list(k))


class ItemErrors:
    """Builds the item errors of one stream: redacted, located, keyed by its primary key."""

    def __init__(self, config: Config, primary_key: list[str]) -> None:
        self.config = config
        self.primary_key = primary_key
        self._redacted: dict[str, str] = {}

    def problem(self, batch: Batch, p: RecordProblem) -> ItemError:
        return self.error(batch, p.line, p.message, p.error_type, column=p.column, payload=p.payload,
                          key=p.key, file=p.file, retryable=p.retryable)

    def error(self, batch: Batch, line: int | None, message: str, error_type: str, *,
              column: str | None = None, payload: Any = None, key: Any = None, file: str | None = None,
              retryable: bool | None = None) -> ItemError:
        file = self.redact_path(file or batch.file)
        item = f"{file}:{line}" if file and line is not None else (f"key {self.key_text(key)}" if key is not None
                                                                      else None)
        return {"item": item, "item_key": None if key is None else key_json(key), "_key": key,
                "file": file, "line": line, "column": column, "error_type": error_type,
                "message": self.config.redact(message),
                "retryable": (error_type not in NOT_RETRYABLE) if retryable is None else retryable,
                "payload": None if payload is None else dumps(payload)}

    def redact_path(self, path: str | None) -> str | None:
        """File paths can hold ${VAR} values (path: ${DATA_DIR}/x.csv): mask them before they are stored."""
        if path is None:
            return None
        red = self._redacted.get(path)
        if red is None:
            red = self._redacted[path] = self.config.redact(path)
        return red

    def key_text(self, k: Any) -> str:
        return ", ".join(f"{c}={v!r}" for c, v in zip(self.primary_key, key_list(k), strict=False))


# ---- one open error per failing item ----------------------------------------------------------------------

PAYLOAD_LIMIT = 64 * 1024  # bytes of a stored payload; a longer one is cut and flagged payload_truncated
DRY_RUN_LISTED = 5  # items a dry run's warning names (the rest: `syncdash errors RUN --all`)
DRY_RUN = "dry run"  # the resolution of a dry run's errors: reported in its own result, never open

Identity = tuple[Any, ...]


def identity(phase: str | None, error_type: str, item_key: str | None, file: str | None,
             line: int | None) -> Identity:
    """What makes two errors the same failing item: its phase (stream), its key (or, when no key could be read,
    its file and line) and the error type. The source is implied: one OpenErrors serves one source."""
    if item_key is not None:
        return (phase, error_type, "key", item_key)
    return (phase, error_type, "at", file, line)


def cap_payload(payload: str | None) -> tuple[str | None, bool]:
    """A payload of at most PAYLOAD_LIMIT bytes, and whether it was cut. A cut payload is stored as a JSON string
    (its first bytes) so every reader can still json.loads it; a huge record must not bloat the store."""
    if payload is None or len(payload) <= PAYLOAD_LIMIT // 4:  # <= 4 bytes per character: surely small enough
        return payload, False
    raw = payload.encode("utf-8")
    if len(raw) <= PAYLOAD_LIMIT:
        return payload, False
    head = raw[:PAYLOAD_LIMIT - 1024].decode("utf-8", errors="ignore")  # room for the JSON string's escapes
    text = dumps(head)
    while len(text.encode("utf-8")) > PAYLOAD_LIMIT:  # escapes (\" \\ \n) can grow it: cut further
        head = head[: len(head) * 3 // 4]
        text = dumps(head)
    return text, True


class OpenErrors:
    """The open item errors of one source, so that a run hitting a known failing item again updates its error
    (occurrences, last seen, last run, latest message and payload) instead of adding another row.

    A source runs once at a time (its lease), so the open errors read when a phase first writes errors stay
    true for the run; the errors this run adds join them (a later batch of the same run hitting the same item
    again, as a duplicate key on several lines does, adds a row per line: each is its own failing item).
    """

    INSERT = ("INSERT INTO syncdash_item_errors (run_id, source, phase, item, item_key, file, line, \"column\", "
              "error_type, code, message, retryable, attempts, payload, created_at, occurrences, last_seen_at, "
              "last_run_id, payload_truncated, resolved_at, resolved_by_run, resolution) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    UPDATE = ("UPDATE syncdash_item_errors SET occurrences = occurrences + 1, last_seen_at = ?, last_run_id = ?, "
              "item = ?, \"column\" = ?, code = ?, message = ?, retryable = ?, attempts = attempts + ?, "
              "payload = ?, payload_truncated = ? WHERE id = ? AND resolved_at IS NULL")

    def __init__(self, store: Store, source: str, *, dry_run: bool, retry: bool) -> None:
        self.store = store
        self.source = source
        self.dry_run = dry_run
        self.retry = retry  # a retry run counts an attempt on each error it hits again
        self._open: dict[str | None, dict[Identity, list[int]]] = {}
        self.would_fail: list[str] = []  # a dry run: the first items that would fail, for its own result

    def load(self, phase: str | None) -> dict[Identity, list[int]]:
        """The open errors of a phase, read once. Call it before a batch's transaction opens: the store may be
        the target's database, and a second connection waiting on its write lock would wait forever."""
        found = self._open.get(phase)
        if found is None:
            found = {}
            c = self.store.conn()
            try:
                rows = runlog.open_error_keys(c, self.source, phase)
            finally:
                c.close()
            for eid, error_type, item_key, file, line in rows:
                found.setdefault(identity(phase, error_type, item_key, file, line), []).append(eid)
            self._open[phase] = found
        return found

    def write(self, write: Callable[..., None], run_id: int, phase: str | None, errors: list[ItemError],
              now: str) -> None:
        """The statements storing `errors` (through the batch's `write`, so they commit with the batch): an
        update of the open error of the same item, else a new row. A dry run's errors are stored closed
        (resolution "dry run"): its own result lists them, and no open error is added or touched."""
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        known = {} if self.dry_run else self.load(phase)
        for e in errors:
            if self.dry_run and len(self.would_fail) < DRY_RUN_LISTED:
                self.would_fail.append(f"{e['item'] or 'an item'}: {e['message']}")
            payload, cut = cap_payload(e["payload"])
            ids = known.get(identity(phase, e["error_type"], e["item_key"], e["file"], e["line"]))
            if ids:
                updates.append((now, run_id, e["item"], e["column"], e.get("code"), e["message"],
                                bool(e["retryable"]), 1 if self.retry else 0, payload, cut, ids.pop(0)))
                continue
            closed = self.dry_run
            inserts.append((run_id, self.source, phase, e["item"], e["item_key"], e["file"], e["line"],
                            e["column"], e["error_type"], e.get("code"), e["message"],
                            bool(e["retryable"]) and not closed, e.get("attempts", 1), payload, now, 1, now,
                            run_id, cut, now if closed else None, run_id if closed else None,
                            DRY_RUN if closed else None))
        if updates:
            write(self.UPDATE, updates, many=True)
        if inserts:
            write(self.INSERT, inserts, many=True)


def dry_run_summary(failed: int, would_fail: list[str]) -> str | None:
    """The warning a dry run carries about the items that would fail: its own result says it, while no open
    error is added or touched."""
    if not failed:
        return None
    more = f" (and {failed - len(would_fail)} more)" if failed > len(would_fail) else ""
    return f"dry run: {failed} item(s) would fail: " + "; ".join(would_fail) + more


def resolve_accepted(open_errors: OpenErrors, write: Callable[..., None], run_id: int, phase: str | None,
                     error_type: str, item_keys: list[str], now: str) -> None:
    """Items a later run got through (a push the server accepted now): their open errors of that type are
    `fixed`, in the same batch as the outcome that fixed them."""
    if open_errors.dry_run or not item_keys:
        return
    known = open_errors.load(phase)
    ids = [i for k in item_keys for i in known.pop(identity(phase, error_type, k, None, None), [])]
    if ids:
        write("UPDATE syncdash_item_errors SET resolved_at = ?, resolution = 'fixed', resolved_by_run = ? "
              "WHERE id = ? AND resolved_at IS NULL", [(now, run_id, i) for i in ids], many=True)
