"""Item errors as the engine stores them: one record that could not be loaded, where it was, why, and
whether a retry may fix it. Keys are shown and stored the same way everywhere (a JSON list)."""

from __future__ import annotations

from typing import Any

from syncdash.config.models import Config
from syncdash.kinds.contract import Batch, RecordProblem
from syncdash.store.db import dumps

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
