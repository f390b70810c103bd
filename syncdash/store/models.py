"""The store's tables. The database is the single source of truth for runs, progress and errors.

The CLI, the console and the daemon only ever talk through these rows.
"""

from __future__ import annotations

from pydantic import NaiveDatetime
from sqlalchemy import BigInteger, false
from sqlmodel import Field, SQLModel

# the statuses and count names live without SQLAlchemy (the read-only commands use them); imported from here too
from syncdash.store.rows import (
    COUNTS,
    FINAL_STATUSES,
    PRIORITY,
    RUN_STATUSES,
    CommandStatus,
    PhaseStatus,
    Resolution,
    RunStatus,
    utcnow,
)

__all__ = ["COUNTS", "FINAL_STATUSES", "PRIORITY", "RUN_STATUSES", "Breaker", "Change", "Command", "CommandStatus",
           "Daemon", "ItemError", "PhaseStatus", "Pushed", "RateBucket", "Resolution", "Run", "RunPhase",
           "RunStatus", "SourceState", "StoreMeta", "utcnow"]


class Run(SQLModel, table=True):
    __tablename__ = "syncdash_runs"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True)
    kind: str = ""
    trigger: str = "cli"  # cli | schedule | console | retry | resume | api | demo
    fire_key: str | None = Field(default=None, unique=True)  # source@fire-time: a schedule fire is queued once
    attempt: int = 1  # retries of a failed run count up from here
    options: str | None = None  # JSON: full, dry_run, limit_pages, backfill_from (what the worker runs)
    mode: str = "full"  # full | incremental | retry
    dry_run: bool = False
    status: str = Field(default="queued", index=True)
    priority: int = 0
    not_before: NaiveDatetime | None = None
    queued_at: NaiveDatetime = Field(default_factory=utcnow)
    started_at: NaiveDatetime | None = None
    finished_at: NaiveDatetime | None = None
    heartbeat_at: NaiveDatetime | None = None
    owner: str | None = None  # pid@host of the process executing it
    resumes: int = 0
    parent_run_id: int | None = None  # the run a retry re-processes
    flow_run_id: int | None = Field(default=None, index=True)  # the flow run this run is a step of
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    checkpoint: str | None = None  # JSON, written in the same transaction as each batch
    fingerprint: str | None = None
    error: str | None = None  # summary of why the run failed, secrets redacted
    error_type: str | None = None
    warnings: str | None = None  # JSON list
    http: str | None = None  # JSON {"requests": n, "waits": [{url, reason, seconds}]}: REST sources only
    applied_seq: int = 0  # the last batch journal entry (target in another database) applied here
    notified_at: NaiveDatetime | None = None  # its events were delivered (by whichever process got there first)
    followed_up_at: NaiveDatetime | None = None  # a daemon decided whether a failed run is retried


class RunPhase(SQLModel, table=True):
    __tablename__ = "syncdash_run_phases"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True, foreign_key="syncdash_runs.id")
    seq: int = 0
    name: str
    status: str = "pending"  # pending | running | done | failed | skipped
    done: int = 0
    total: int | None = None
    unit: str = "rows"  # rows | bytes | pages
    detail: str | None = None  # current file/page position
    # the phase's own share of the run's counts (a multi-stream source has one load phase per stream)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    skipped: int = 0
    started_at: NaiveDatetime | None = None
    finished_at: NaiveDatetime | None = None


class ItemError(SQLModel, table=True):
    __tablename__ = "syncdash_item_errors"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True, foreign_key="syncdash_runs.id")
    source: str = Field(index=True)
    phase: str | None = None
    item: str | None = None  # human description: file:line or key
    item_key: str | None = None  # JSON primary key, when it could be read
    file: str | None = None
    line: int | None = None
    column: str | None = None
    error_type: str = "validation"  # validation | parse | decode | duplicate | schema | network | ...
    code: str | None = None
    message: str = ""
    retryable: bool = True
    attempts: int = 1
    payload: str | None = None  # JSON of the raw record, for retry
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    resolved_at: NaiveDatetime | None = Field(default=None, index=True)
    resolved_by_run: int | None = None
    resolution: str | None = None  # fixed | gone | manual
    # while open, a later run hitting the same item and error type updates this row (migration 0003)
    occurrences: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    last_seen_at: NaiveDatetime | None = None
    last_run_id: int | None = None
    payload_truncated: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class SourceState(SQLModel, table=True):
    __tablename__ = "syncdash_source_state"

    source: str = Field(primary_key=True)
    cursor: str | None = None  # JSON incremental cursor
    fingerprint: str | None = None  # mapping fingerprint of the rows in the table
    last_run_id: int | None = None
    last_status: str | None = None
    last_success_at: NaiveDatetime | None = None
    last_success_run_id: int | None = None
    paused: bool = False
    schedule_override: str | None = None  # `syncdash schedule NAME --every/--cron`: beats the config until --reset
    last_fire_at: NaiveDatetime | None = None  # the last schedule fire queued (catch-up starts after it)
    next_fire_at: NaiveDatetime | None = None
    overdue_notified_at: NaiveDatetime | None = None  # set by the daemon that sent `overdue`; cleared on recovery
    lock_run_id: int | None = None
    lock_owner: str | None = None
    lease_until: NaiveDatetime | None = None


class Breaker(SQLModel, table=True):
    """A host's circuit breaker, shared by every run and process that talks to it."""

    __tablename__ = "syncdash_breakers"

    host: str = Field(primary_key=True)
    state: str = "closed"  # closed | open | half_open
    failures: int = 0  # consecutive failed requests
    opened_at: NaiveDatetime | None = None
    retry_at: NaiveDatetime | None = None
    last_error: str | None = None
    source: str | None = None  # the source whose request last changed it
    updated_at: NaiveDatetime | None = None


class Daemon(SQLModel, table=True):
    """A live `syncdash daemon` (or a console hosting the scheduler); the console attaches when one beats."""

    __tablename__ = "syncdash_daemons"

    owner: str = Field(primary_key=True)  # pid@host:start
    host: str = ""
    pid: int = 0
    kind: str = "daemon"  # daemon | console
    workers: int = 1
    started_at: NaiveDatetime = Field(default_factory=utcnow)
    heartbeat_at: NaiveDatetime = Field(default_factory=utcnow)
    stopped_at: NaiveDatetime | None = None
    http: str | None = None  # the HTTP API's base URL (http://127.0.0.1:8787) when it serves one


class Change(SQLModel, table=True):
    __tablename__ = "syncdash_changes"

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(index=True, foreign_key="syncdash_runs.id")
    source: str
    change: str  # insert | update | delete
    key: str  # JSON list of primary key values
    before: str | None = None  # JSON: changed fields' old values (update) or the row (delete)
    after: str | None = None  # JSON: changed fields' new values (update) or the row (insert)


class Command(SQLModel, table=True):
    """Requests between processes (console -> daemon): run, cancel, pause... claimed by whoever serves."""

    __tablename__ = "syncdash_commands"

    id: int | None = Field(default=None, primary_key=True)
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    action: str
    source: str | None = None
    run_id: int | None = None
    args: str | None = None  # JSON
    status: str = "pending"  # pending | claimed | done | failed
    claimed_by: str | None = None
    finished_at: NaiveDatetime | None = None
    result: str | None = None


class StoreMeta(SQLModel, table=True):
    """Facts about the store itself (its id)."""

    __tablename__ = "syncdash_meta"

    key: str = Field(primary_key=True)
    value: str = ""


class Pushed(SQLModel, table=True):
    """What a push last sent for a key: only rows whose content differs from this are sent again."""

    __tablename__ = "syncdash_pushed"

    source: str = Field(primary_key=True)
    key: str = Field(primary_key=True)  # JSON list of the key columns' values
    scope: str = Field(default="", index=True)  # the tenant, for a push run once per tenant
    hash: int = Field(default=0, sa_type=BigInteger)  # of the request URL and body: 63 bits (migration 0002)
    url: str = ""  # where it went (secrets masked)
    ref: str | None = None  # JSON of the row values the URL templates read (to address a delete)
    run_id: int | None = None
    pushed_at: NaiveDatetime = Field(default_factory=utcnow)


class RateBucket(SQLModel, table=True):
    """A rate-limited host's token bucket, shared by every worker and daemon of the store (updated atomically)."""

    __tablename__ = "syncdash_rate_buckets"

    key: str = Field(primary_key=True)  # the host (scheme://host:port, no userinfo)
    tokens: float
    refilled_at: float  # epoch seconds of the last refill: processes on one machine share the wall clock
    rate: float  # tokens per second
    burst: float
