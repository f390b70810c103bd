"""What a push reads: the rows of its table (or query) in key order, with a tenant's scope, as the
records (URL, body, content hash) it would send; and the pushed keys those rows no longer have."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import xxhash

from syncdash.common.dialect import Conn
from syncdash.errors import SchemaMismatch
from syncdash.kinds.push.config import PLACEHOLDER, Const, PushConfig
from syncdash.store.db import dumps
from syncdash.targets.table import q, scope_sql


@dataclass
class Record:
    key: tuple[Any, ...]
    key_json: str
    body: Any
    hash: int
    url: str
    ref: dict[str, Any]
    change: str  # insert | update | delete


class BadSegment(ValueError):
    """A value that would not stay one path segment of the URL template (`.`, `..` or empty)."""


def segment(value: Any, column: str) -> str:
    """A row's value as exactly one URL path segment: `/`, `?`, `#` and every other reserved character are
    percent-encoded; `.`, `..` and an empty value (which the URL would resolve away) are refused."""
    text = str(value)
    if text in ("", ".", ".."):
        raise BadSegment(f"column {column} is {text!r}, which cannot be one segment of the URL path (it would "
                         "change which resource the request goes to); nothing was sent for this row")
    return quote(text, safe="")


def fill(template: str, values: dict[str, Any]) -> str:
    """A URL template with each {column} replaced by its value as one path segment (BadSegment if it cannot be)."""
    return PLACEHOLDER.sub(lambda m: segment(values[m.group(1)], m.group(1)), template)


def plain(v: Any) -> Any:
    """Database values as JSON has them."""
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bytes | memoryview):
        return bytes(v).decode("utf-8", "replace")
    return v


class PushRows:
    """The rows of one push stream (one tenant's, with scope) on the target connection."""

    def __init__(self, cfg: PushConfig, scope: dict[str, Any], conn: Conn, redact: Callable[[str], str]) -> None:
        self.cfg = cfg
        self.scope = scope
        self.conn = conn
        self.redact = redact
        self._cols_cache: list[str] | None = None

    def base_sql(self) -> tuple[str, tuple[Any, ...]]:
        """The rows to push, with the tenant's scope, as a subquery `q` (SQL and parameters)."""
        cfg = self.cfg
        where, params = scope_sql(self.scope, "q.")
        if cfg.from_table is not None:
            live = " WHERE _deleted_at IS NULL" if "_deleted_at" in self.table_columns() else ""
            base = f"SELECT * FROM {q(cfg.from_table)}{live}"
        else:
            base = str(cfg.query).rstrip().rstrip(";")
        return f"(SELECT * FROM ({base}) q0) q WHERE 1 = 1{where}", params

    def table_columns(self) -> list[str]:
        if self._cols_cache is None:
            cfg = self.cfg
            src = q(cfg.from_table) if cfg.from_table else f"({str(cfg.query).rstrip().rstrip(';')}) q0"
            try:
                cur = self.conn.execute(f"SELECT * FROM {src} WHERE 1 = 0")
            except Exception as e:  # no such table, a bad query
                what = f"table {cfg.from_table!r}" if cfg.from_table else "its query"
                raise SchemaMismatch(f"push {cfg.name}: cannot read {what}: {self.redact(str(e)).strip()}"
                                     ) from None
            self._cols_cache = [d[0] for d in cur.description]
        return self._cols_cache

    def check_columns(self) -> None:
        have = self.table_columns()
        need = [*self.cfg.columns_used(), *self.scope]
        missing = [c for c in need if c not in have]
        if missing:
            what = f"table {self.cfg.from_table}" if self.cfg.from_table else "the query's rows"
            raise SchemaMismatch(f"push {self.cfg.name}: column {missing[0]!r} (used by key, url or body) is "
                                 f"not in {what}; columns: {', '.join(have)}")

    def chunks(self, after: list[Any] | None) -> Iterator[list[dict[str, Any]]]:
        """Chunks of rows in key order, after `after` (keyset pagination: a resume starts right there)."""
        base, params = self.base_sql()
        keys = ", ".join(f"q.{q(k)}" for k in self.cfg.key)
        n = self.cfg.batch_size
        while True:
            cond, p = "", ()
            if after is not None:
                marks = ", ".join("?" for _ in after)
                cond, p = f" AND ({keys}) > ({marks})", tuple(after)
            cur = self.conn.execute(f"SELECT * FROM {base}{cond} ORDER BY {keys} LIMIT {int(n)}", (*params, *p))
            cols = [d[0] for d in cur.description]
            rows = [dict(zip(cols, (plain(v) for v in r), strict=True)) for r in cur.fetchall()]
            if not rows:
                return
            yield rows
            if len(rows) < n:
                return
            after = [rows[-1][k] for k in self.cfg.key]

    def count(self) -> int:
        base, params = self.base_sql()
        return int(self.conn.scalar(f"SELECT count(*) FROM {base}", params) or 0)

    def record(self, row: dict[str, Any], change: str) -> Record:
        cfg = self.cfg
        body: dict[str, Any] = {}
        for path, src in cfg.body.items():
            value = src.value if isinstance(src, Const) else row[src]
            node = body
            *parents, leaf = path.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        key = tuple(row[k] for k in cfg.key)
        url = fill(cfg.url, row)
        if cfg.deletes == "send" and not cfg.delete.url:  # the default delete URL appends the key: check it now
            for k in cfg.key:
                if k not in self.scope:
                    segment(row[k], k)
        text = json.dumps([url, cfg.method, body], sort_keys=True, separators=(",", ":"), default=str)
        ref = {c: row[c] for c in dict.fromkeys([*PLACEHOLDER.findall(cfg.url), *cfg.key])}
        return Record(key=key, key_json=dumps(list(key)), body=body, hash=xxhash.xxh3_64_intdigest(text.encode()) >> 1,
                      url=url, ref=ref, change=change)

    def delete_url(self, p: Any, ref: dict[str, Any]) -> str:
        cfg = self.cfg
        if cfg.delete.url:
            try:
                return fill(cfg.delete.url, ref)
            except KeyError as e:
                raise SchemaMismatch(f"push {cfg.name}: delete.url placeholder {{{e.args[0]}}} is neither a key column "
                                     f"nor a column the push url uses") from None
        base = fill(cfg.url, {c: ref.get(c, "") for c in PLACEHOLDER.findall(cfg.url)}).rstrip("/")
        return base + "/" + "/".join(segment(ref[k], k) for k in cfg.key if k not in self.scope)

    def absent(self, pushed: list[Any]) -> list[Any]:
        """The pushed keys that the rows no longer have (checked a few hundred keys per query)."""
        cfg = self.cfg
        base, params = self.base_sql()
        out: list[Any] = []
        for i in range(0, len(pushed), 200):
            chunk = pushed[i:i + 200]
            keys = [json.loads(p.key) for p in chunk]
            cond = " OR ".join("(" + " AND ".join(f"q.{q(k)} = ?" for k in cfg.key) + ")" for _ in keys)
            flat = [v for k in keys for v in k]
            cols = ", ".join(f"q.{q(k)}" for k in cfg.key)
            have = {dumps([plain(v) for v in r]) for r in self.conn.all(
                f"SELECT {cols} FROM {base} AND ({cond})", (*params, *flat))}
            out += [p for p in chunk if p.key not in have]
        return out
