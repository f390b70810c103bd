"""The `kind: push` contract: where rows come from, where and how they are sent, what a body looks like."""

from __future__ import annotations

import itertools
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from syncdash.config.models import KeyedValueError, SourceConfig, Strict, check_identifier
from syncdash.kinds.rest.config import HttpSettings, userinfo_secrets

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PATH = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*(\.[A-Za-z_$][A-Za-z0-9_$-]*)*$")


class Const(Strict):
    """A fixed value in every body: `{value: "ie"}`."""

    value: str | int | float | bool | None


class DeleteRequest(Strict):
    url: str | None = Field(default=None, description="URL template for a deleted row ({column} from its last "
                                                      "push); default: the push url + /{key}")
    method: Literal["DELETE", "POST", "PUT", "PATCH"] = "DELETE"


class PushConfig(SourceConfig, HttpSettings):
    kind: Literal["push"]
    from_table: str | None = Field(default=None, description="The table whose rows are sent")
    query: str | None = Field(default=None, description="Or a SELECT giving the rows (in the target database)")
    key: list[str] = Field(min_length=1, description="Columns that identify a row (and its remote record)")
    url: str = Field(description="Where rows go; {column} placeholders are filled from each row")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    batch: int = Field(default=50, ge=1, le=10_000, description="Records per request (1: one request each)")
    body: dict[str, str | Const] = Field(
        min_length=1, description="Body key (dotted path for nesting) -> column of the row, or {value: ...}")
    envelope: str | None = Field(default=None, description="batch > 1: send {envelope: [records]} instead of "
                                                           "a bare JSON array")
    idempotency_key: bool = Field(default=True, description="Send an Idempotency-Key header derived from the "
                                                            "records' keys and content")
    deletes: Literal["keep", "send"] = Field(  # type: ignore[assignment]
        default="keep", description="send: rows gone from the table (or soft-deleted) are sent as deletes")
    delete: DeleteRequest = Field(default_factory=DeleteRequest)
    delete_body: bool = Field(default=False, description="Send the row's key columns as the body of a DELETE "
                                                         "(other delete methods always send them)")
    # a push writes no table: these SourceConfig keys do not apply
    table: str | None = None  # type: ignore[assignment]
    primary_key: list[str] | None = None  # type: ignore[assignment]
    fields: dict[str, Any] | None = None  # type: ignore[assignment]
    batch_size: int = Field(default=500, ge=1, le=100_000, description="Rows read per query")

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        if v is not None:
            raise ValueError("a push reads from_table (or query) and writes no table")
        return v

    @field_validator("from_table")
    @classmethod
    def _from(cls, v: str | None) -> str | None:
        return None if v is None else check_identifier(v, "table name")

    @field_validator("key", mode="before")
    @classmethod
    def _key(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("key")
    @classmethod
    def _key_names(cls, v: list[str]) -> list[str]:
        for i, k in enumerate(v):
            try:
                check_identifier(k, "key column")
            except ValueError as e:
                raise KeyedValueError(str(e), i) from None
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(PLACEHOLDER.sub("x", v))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v

    @field_validator("body")
    @classmethod
    def _body(cls, v: dict[str, Any]) -> dict[str, Any]:
        for path, col in v.items():
            if not _PATH.match(path):
                raise KeyedValueError(f"body key {path!r}: use names separated by dots (athlete.firstName)", path)
            if isinstance(col, str):
                try:
                    check_identifier(col, "column")
                except ValueError as e:
                    raise KeyedValueError(f"body key {path!r}: {e}", path) from None
        paths = sorted(v)
        for a, b in itertools.pairwise(paths):
            if b.startswith(a + "."):
                raise KeyedValueError(f"body key {b!r} nests under {a!r}, which is a value", b)
        return v

    @model_validator(mode="after")
    def _keys(self) -> PushConfig:  # replaces SourceConfig._keys
        if (self.from_table is None) == (self.query is None):
            raise KeyedValueError("give from_table or query (one of them)", "from_table")
        if self.query is not None and not re.match(r"^\s*(select|with)\b", self.query, re.I):
            raise KeyedValueError("query must be a SELECT (or WITH ... SELECT)", "query")
        if self.envelope is not None and self.batch == 1:
            raise KeyedValueError("envelope applies to batch > 1 (a batch of 1 sends the record itself)", "envelope")
        if "mode" in self.model_fields_set:
            raise KeyedValueError("a push has no mode: it sends what is new or changed (--full sends all)", "mode")
        return self

    def target_tables(self) -> list[tuple[str, tuple[str | int, ...]]]:
        return []

    def secret_values(self) -> list[str]:
        """SourceConfig's (none) would shadow HttpSettings': a push's auth and credential headers are secrets."""
        return HttpSettings.secret_values(self) + userinfo_secrets([self.url])

    def mapping_fingerprint(self) -> str:
        """Changes when stored pushed hashes stop meaning the same body (url, body mapping, key)."""
        import hashlib
        import json

        payload = {"url": self.url, "method": self.method, "key": self.key,
                   "body": {k: v if isinstance(v, str) else v.model_dump() for k, v in self.body.items()}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def columns_used(self) -> list[str]:
        """Row columns the url and body read (checked against the rows' real columns when a run starts)."""
        cols = [*self.key, *PLACEHOLDER.findall(self.url)]
        cols += [c for c in self.body.values() if isinstance(c, str)]
        return list(dict.fromkeys(cols))
