"""The config contract as pydantic models; `syncdash schema` prints their JSON Schema.

Every source kind subclasses SourceConfig with its own `kind` literal and options, so adding a kind
never touches this file.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from syncdash.common.convert import FieldType, converter_for
from syncdash.common.secrets import mask
from syncdash.config.base import (  # noqa: F401  (re-exported: the config contract's public names)
    Duration,
    KeyedValueError,
    Strict,
    duration_validator,
    parse_duration,
)
from syncdash.config.ops import NotifyConfig, RetentionConfig

IDENT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
SOURCE_NAME_RE = re.compile(r"^[a-z0-9_-]+$")
RESERVED_PREFIXES = ("_", "syncdash_", "sqlite_")


def redact(text: str, secrets: set[str] | frozenset[str]) -> str:
    """Mask ${VAR} values in every form they travel in (raw, percent-encoded, base64, JSON-escaped: see
    common.secrets), longest first; values under 3 characters are left (masking them garbles text)."""
    return mask(text, secrets)


def check_database_url(value: str | None, store: bool = False) -> str | None:
    """A database URL syncdash can use; the store is SQLite or PostgreSQL, targets may also be MySQL/MariaDB."""
    if value is None:
        return value
    from syncdash.common.dialect import MYSQL, dialect_of, mask_url

    if "://" not in value:
        raise ValueError(f"{mask_url(value)!r} is not a database URL (sqlite:///file.db, postgresql://user@host/db, "
                         "mysql://user@host/db)")
    d = dialect_of(value)
    if store and d == MYSQL:
        raise ValueError("the store runs on SQLite or PostgreSQL; MySQL and MariaDB can hold target tables "
                         "(target: mysql://...)")
    return value


def check_identifier(value: str, what: str) -> str:
    if not isinstance(value, str) or not IDENT_RE.fullmatch(value):  # fullmatch: `$` would let "name\n" in
        raise ValueError(
            f"{what} {value!r} is not a valid identifier: use letters, digits and _, starting with a "
            "letter, at most 63 characters"
        )
    if value.lower().startswith(RESERVED_PREFIXES):
        raise ValueError(f"{what} {value!r} uses a reserved prefix (_, syncdash_, sqlite_)")
    return value


class FieldSpec(Strict):
    """How one target column is filled from the source record."""

    from_: str | int | None = Field(
        default=None, alias="from",
        description="Source column (CSV header name, or 1-based position when header is false) or "
                    "dotted path into a JSON record. Defaults to the target column's name.",
    )
    type: FieldType = "str"
    required: bool = Field(default=False, description="An empty or missing value is an item error.")
    default: Any = Field(default=None, description="Used when the source value is empty or missing.")
    format: str | None = Field(default=None, description="strptime format for date/datetime.")

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if self.format and self.type not in ("date", "datetime"):
            raise KeyedValueError(f"format applies to date and datetime fields, not {self.type}", "format")
        if self.default is not None:
            try:
                converter_for(self.type, self.format)(self.default)
            except ValueError as e:
                raise KeyedValueError(f"default {self.default!r} is not a valid {self.type}: {e}",
                                      "default") from None
        return self


def named_fields(v: Any, expand: Any) -> Any:
    """A `fields:` mapping with every column name checked (the name is the error's key); `expand(name, spec)`
    turns a kind's shorthand (a plain value) into a mapping, or refuses the spec."""
    if not isinstance(v, dict):
        return v
    out: dict[Any, Any] = {}
    folded: dict[str, str] = {}
    for name, spec in v.items():
        try:
            check_identifier(name, "column name")
        except ValueError as e:
            raise KeyedValueError(str(e), name) from None
        # PostgreSQL folds unquoted names, MariaDB compares column names without case: Name and name are one
        other = folded.setdefault(name.lower(), name)
        if other != name:
            raise KeyedValueError(f"column names {other!r} and {name!r} differ only in case; databases treat them "
                                  "as one column: rename one", name)
        out[name] = expand(name, spec)
    return out


def _from_shorthand(name: str, spec: Any) -> Any:
    """`name: Column` is short for `{from: Column}` (a CSV header, a position or a JSON path)."""
    if isinstance(spec, str | int) and not isinstance(spec, bool):
        return {"from": spec}
    if not isinstance(spec, dict | FieldSpec):
        raise KeyedValueError(f"field {name}: give the source column's name, or a mapping with from/type/required/"
                              f"default/format (got {type(spec).__name__})", name)
    return spec


def key_list(v: Any) -> Any:
    """`primary_key: id`, the one-column shorthand, as the list `primary_key` is (a before-validator)."""
    return [v] if isinstance(v, str) else v


def source_fields(v: Any) -> Any:
    """A `fields:` mapping with its `column: source_column` shorthands expanded (a before-validator)."""
    return named_fields(v, _from_shorthand)


def check_keys(cfg: SourceConfig) -> None:
    """The primary key names fields, each once; `deletes` is only given with mode: full."""
    missing = [i for i, k in enumerate(cfg.primary_key) if k not in cfg.fields]
    if missing:
        names = ", ".join(cfg.primary_key[i] for i in missing)
        raise KeyedValueError(f"primary_key {names} is not a field; fields are: {', '.join(cfg.fields)}",
                              "primary_key", missing[0])
    twice = [i for i, k in enumerate(cfg.primary_key) if k in cfg.primary_key[:i]]
    if twice:
        raise KeyedValueError(f"primary_key lists {cfg.primary_key[twice[0]]} twice", "primary_key", twice[0])
    if cfg.mode == "incremental" and "deletes" in cfg.model_fields_set and cfg.deletes != "keep":
        raise KeyedValueError("deletes applies to mode: full only; incremental never deletes", "deletes")


class RunRetry(Strict):
    """A failed run whose cause may pass (network, timeout, 5xx, breaker) is queued again, later each time."""

    attempts: int = Field(default=3, ge=1, le=100, description="Runs in all, the first included")
    backoff: Duration = Field(default=120.0, description="Wait before the first retry; doubles each time")
    max: Duration = Field(default=3600.0, description="Longest wait between two retries")

    _d = duration_validator("backoff", "max")


class SourceConfig(Strict):
    """What every source kind shares: where rows go and how they are matched."""

    name: str = Field(description="Unique name, [a-z0-9_-]+",
                      json_schema_extra={"pattern": SOURCE_NAME_RE.pattern})
    kind: str
    description: str | None = None
    table: str = Field(description="Target table, created if missing")
    target: str | None = Field(
        default=None, description="SQLAlchemy URL of the database holding this source's tables (sqlite:///..., "
                                  "postgresql://..., mysql://...); default: the global target, else the store's")
    primary_key: list[str] = Field(min_length=1, description="One or more target columns")
    mode: Literal["full", "incremental"] = "full"
    deletes: Literal["soft", "hard", "keep"] = Field(
        default="soft", description="Full mode only: what happens to rows absent from the source")
    fields: dict[str, FieldSpec] = Field(min_length=1)
    batch_size: int = Field(default=5000, ge=1, le=1_000_000)
    max_delete_ratio: float | None = Field(
        default=0.5, ge=0, le=1,
        description="A full sync refuses to delete more than this share of the table's live rows "
                    "(protects against a truncated export). null disables the guard.")
    max_changes: int = Field(
        default=10000, ge=0,
        description="Changed keys (with before/after) kept per run and change kind; counts stay exact.")
    schedule: str | None = Field(default=None, description='Cron ("0 3 * * *") or interval ("every 12h")')
    timezone: str | None = Field(default=None, description="IANA time zone of the schedule (default UTC)")
    jitter: Duration = Field(default=0.0, description="Random delay up to this long after each fire time")
    enabled: bool = Field(default=True, description="false: the schedule never fires (manual runs still work)")
    catch_up: bool = Field(default=False, description="Fire times missed while nothing ran: one run (true) or none")
    run_retry: RunRetry = Field(default_factory=RunRetry)
    notify: NotifyConfig | None = Field(default=None, description="Events of this source (adds to the global notify)")
    for_each_tenant: bool = Field(default=False, description="Run once per tenant (see `tenants:`), each its own "
                                                             "phase, with {tenant.KEY} filled from its set")
    tenant_column: str = Field(default="tenant", description="for_each_tenant: the column holding the tenant's "
                                                             "name; it joins the primary key")

    search: list[str] | None = Field(
        default=None, min_length=1,
        description="Target columns (str fields) kept in a full-text index, for `syncdash search`, "
                    "GET /v1/search and the console's browser")

    _jd = duration_validator("jitter")
    _tenants: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)
    _tenant: str | None = PrivateAttr(default=None)

    @field_validator("tenant_column")
    @classmethod
    def _tenant_column(cls, v: str) -> str:
        return check_identifier(v, "tenant_column")

    @model_validator(mode="after")
    def _schedule(self) -> SourceConfig:
        if self.schedule is None:
            if self.timezone is not None:
                raise KeyedValueError("timezone applies to a schedule; this source has none", "timezone")
            return self
        from syncdash.common.schedule import ScheduleError, parse_schedule

        try:
            parse_schedule(self.schedule, self.timezone)
        except ScheduleError as e:
            key = "timezone" if "time zone" in str(e) else "schedule"
            raise KeyedValueError(str(e), key) from None
        return self

    _secrets: set[str] = PrivateAttr(default_factory=set)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SOURCE_NAME_RE.fullmatch(v):
            raise ValueError(f"source name {v!r} must match [a-z0-9_-]+")
        return v

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:  # None: kinds without a table of their own (flows, pushes)
        return None if v is None else check_identifier(v, "table name")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        return check_database_url(v)

    @field_validator("primary_key", mode="before")
    @classmethod
    def _pk(cls, v: Any) -> Any:
        return key_list(v)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, v: Any) -> Any:
        return source_fields(v)

    # subclasses with other rules (flows, pushes, multi-stream REST) replace this validator by defining `_keys`
    @model_validator(mode="after")
    def _keys(self) -> SourceConfig:
        check_keys(self)
        return self

    @model_validator(mode="after")
    def _search_columns(self) -> SourceConfig:
        """`search:` names str fields of this source, each once."""
        fields = self.fields or {}
        for i, col in enumerate(self.search or []):
            if col not in fields:
                raise KeyedValueError(f"search: {col!r} is not a field of this source; fields are: "
                                      f"{', '.join(fields)}", "search", i)
            if self.fields[col].type != "str":
                raise KeyedValueError(f"search: {col!r} is a {self.fields[col].type} field; only str fields "
                                      "can be searched", "search", i)
            if col in (self.search or [])[:i]:
                raise KeyedValueError(f"search lists {col!r} twice", "search", i)
        return self

    def target_tables(self) -> list[tuple[str, tuple[str | int, ...]]]:
        """Every table this source writes, with the config key that names it (for clash errors)."""
        return [(self.table, ("table",))]

    def secret_values(self) -> list[str]:
        """Literal credentials in the config, masked like ${VAR} values."""
        return []

    def step_names(self) -> list[str]:
        """The sources this entry runs in order: a flow's steps (config checks they exist); none for a source."""
        return []

    def source_name_of(self, column: str) -> str | int:
        spec = self.fields[column]
        return spec.from_ if spec.from_ is not None else column

    def mapping_fingerprint(self) -> str:
        """Changes when stored row hashes stop being comparable (fields, types, keys)."""
        payload = {
            "fields": {k: v.model_dump(by_alias=True, mode="json") for k, v in self.fields.items()},
            "primary_key": self.primary_key,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


LISTEN_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>[0-9]{1,5})$")


def parse_listen(value: str) -> tuple[str, int]:
    """host:port (or [v6]:port) of the HTTP API; ValueError says what is accepted."""
    m = LISTEN_RE.match(value.strip()) if isinstance(value, str) else None
    if m is None or int(m.group("port")) > 65535:
        raise ValueError(f"listen {value!r} is not host:port (e.g. 127.0.0.1:8787, [::1]:8787, 0.0.0.0:8787)")
    return m.group("v6") or m.group("host"), int(m.group("port"))


def is_loopback(host: str) -> bool:
    """Only these addresses are safe without a token; a host name other than localhost may resolve anywhere."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpApiConfig(Strict):
    """The daemon's HTTP API (off unless this block or `syncdash daemon --http` is given)."""

    listen: str = Field(default="127.0.0.1:8787", description="host:port to bind; anything but loopback needs "
                                                               "a token")
    token: str | None = Field(default=None, min_length=1,
                              description='Bearer token for every endpoint but /v1/health: use "${VAR}"')
    read_token: str | None = Field(default=None, min_length=1,
                                   description="Bearer token that may GET but not POST (dashboards, scrapers)")
    metrics_public: bool = Field(default=False, description="/metrics without a token (Prometheus scrapers)")

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v.strip()

    @model_validator(mode="after")
    def _bind(self) -> HttpApiConfig:
        host, _ = parse_listen(self.listen)
        if not is_loopback(host) and not self.token:
            raise KeyedValueError(
                f"refusing to serve the HTTP API on {self.listen} without a token: anyone who can reach it could "
                'run and cancel syncs; set daemon.http.token (e.g. "${SYNCDASH_API_TOKEN}") or listen on '
                "127.0.0.1", "token")
        if self.read_token and not self.token:
            raise KeyedValueError("read_token needs a token too (the read-write one)", "read_token")
        if self.read_token and self.read_token == self.token:
            raise KeyedValueError("read_token must differ from token", "read_token")
        return self

    @property
    def host(self) -> str:
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return parse_listen(self.listen)[1]

    def secret_values(self) -> list[str]:
        """Literal tokens are masked like ${VAR} values: never in a response, a log or the store."""
        return [t for t in (self.token, self.read_token) if t]


class DaemonConfig(Strict):
    workers: int = Field(default=1, ge=1, le=64, description="Runs executed at once by `syncdash daemon`")
    http: HttpApiConfig | None = Field(default=None, description="The HTTP API: trigger runs, status, runs, errors, "
                                                                 "health and Prometheus metrics (off by default)")


class Config(Strict):
    """The whole file. Sources are validated per kind by the loader (see load.py)."""

    database: str | None = Field(
        default=None, description="SQLAlchemy URL of the store (sqlite:///... or postgresql://...); default: "
                                  "SQLite in the platformdirs data dir")
    target: str | None = Field(
        default=None, description="SQLAlchemy URL of the database holding the target tables (sqlite, postgresql "
                                  "or mysql); default: the store's database")
    sources: list[dict[str, Any]] = Field(default_factory=list)
    flows: list[dict[str, Any]] = Field(default_factory=list, description="Sources and pushes run in order as one run")
    tenants: dict[str, dict[str, str | int | float | bool]] = Field(
        default_factory=dict, description="Named credential sets; a source with for_each_tenant runs once per "
                                          "tenant, with {tenant.KEY} filled from that tenant's set")
    notify: NotifyConfig | None = Field(default=None, description="Webhooks and/or a command for run events")
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    daemon: DaemonConfig = Field(default_factory=lambda: DaemonConfig())

    _sources: list[SourceConfig] = PrivateAttr(default_factory=list)
    _file: str | None = PrivateAttr(default=None)

    @field_validator("database")
    @classmethod
    def _database(cls, v: str | None) -> str | None:
        return check_database_url(v, store=True)

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        return check_database_url(v)
    _secrets: set[str] = PrivateAttr(default_factory=set)

    @property
    def source_list(self) -> list[SourceConfig]:
        return self._sources

    @property
    def file(self) -> str | None:
        return self._file

    @property
    def secrets(self) -> frozenset[str]:
        """Every value that came from a ${VAR}: the CLI masks them in everything it prints."""
        return frozenset(self._secrets)

    def source(self, name: str) -> SourceConfig | None:
        return next((s for s in self._sources if s.name == name), None)

    def redact(self, text: str) -> str:
        """Replace every ${VAR}-provided value in text; used on anything written to store or logs."""
        return redact(text, self._secrets)

    def add_secret(self, value: str) -> None:
        """A credential obtained at run time (an OAuth2 token): masked from here on like the others."""
        if value:
            self._secrets.add(value)
