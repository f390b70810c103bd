"""The change log of a pull: up to max_changes rows of each kind per run in syncdash_changes, and the sample
of changes a dry run shows as its plan."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from syncdash.engine.items import key_list
from syncdash.engine.lifecycle import RunLifecycle

# store.db.dumps's encoding with one encoder for every change row: json.dumps with options builds a new
# JSONEncoder per call, ~0.15 s over the ~45,000 values of a re-sync that changes 2% of a million rows
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _key_json(k: Any) -> str:
    return _dumps(key_list(k))


ChangeRow = tuple[str, str, str | None, str | None]  # change, key, before, after
Diff = tuple[Any, dict[str, Any], dict[str, Any]]  # key, changed fields' before, after


class ChangeLog:
    """What one stream records of its changes (the kept counts are the run's, in the lifecycle)."""

    def __init__(self, life: RunLifecycle, max_changes: int, columns: Sequence[str]) -> None:
        self.life = life
        self.max_changes = max_changes
        self.columns = list(columns)
        self.sample_size = life.opt.sample_changes

    def inserts(self, new: list[tuple[Any, ...]], key_of: Callable[[Any], Any]) -> list[ChangeRow]:
        room = self.max_changes - self.life.changes_kept["insert"]
        if room <= 0 or not new:
            return []
        take = new[:room]
        self.life.changes_kept["insert"] += len(take)
        self.sample("insert", [(key_of(r), None, dict(zip(self.columns, r, strict=False)))
                               for r in take[:self.sample_size]])
        return [("insert", _key_json(key_of(r)), None, None) for r in take]

    def updates(self, diffs: list[Diff]) -> list[ChangeRow]:
        room = self.max_changes - self.life.changes_kept["update"]
        if room <= 0 or not diffs:
            return []
        take = diffs[:room]
        self.life.changes_kept["update"] += len(take)
        self.sample("update", take)
        return [("update", _key_json(k), _dumps(b), _dumps(a)) for k, b, a in take]

    def deletes(self, absent: list[tuple[Any, ...]], key_of: Callable[[Any], Any]) -> list[ChangeRow]:
        """The rows a full sync deletes (the caller fetched at most the room left)."""
        rows = [dict(zip(self.columns, r, strict=False)) for r in absent]
        self.sample("delete", [(key_of(r), row, None) for r, row in zip(absent[:self.sample_size], rows,
                                                                        strict=False)])
        self.life.changes_kept["delete"] += len(absent)
        return [("delete", _key_json(key_of(r)), _dumps(row), None) for r, row in zip(absent, rows, strict=True)]

    def room(self, kind: str) -> int:
        return max(0, self.max_changes - self.life.changes_kept[kind])

    def sample(self, kind: str, items: list[tuple[Any, Any, Any]]) -> None:
        sample = self.life.sample
        for k, b, a in items:
            if len(sample) >= self.sample_size * 3:
                return
            if sum(1 for s in sample if s["change"] == kind) >= self.sample_size:
                return
            sample.append({"change": kind, "key": key_list(k), "before": b, "after": a})
