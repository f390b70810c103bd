"""The daemon's log lines: one JSON object per line (`--log-format json`) or a short text line, each with the
run id, source and other context the record carries."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the run id and source when the record has them."""

    FIELDS = ("source", "run_id", "trigger", "status", "counts", "error", "owner", "workers", "once", "runs",
              "fire", "after_s", "attempt", "http", "retry_of", "file", "added", "removed", "changed")

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                               "level": record.levelname.lower(), "msg": record.getMessage(),
                               "thread": record.threadName}
        for k in self.FIELDS:
            if hasattr(record, k):
                out[k] = getattr(record, k)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={getattr(record, k)}" for k in JsonLogFormatter.FIELDS if hasattr(record, k))
        base = f"{datetime.now().strftime('%H:%M:%S')} {record.levelname.lower():7} {record.getMessage()}"
        text = f"{base} {extra}".rstrip()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text
