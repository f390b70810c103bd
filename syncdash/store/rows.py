"""The store's vocabulary without SQLAlchemy: statuses, the count names, and light rows of the tables the
read-only commands show.

`syncdash status`, `runs`, `errors` and `show` answer from an SQLite store through the DB-API
(syncdash.store.reader): importing SQLAlchemy and SQLModel and building the ORM models costs more than the
whole rest of such a command. The rows they read are plain objects carrying exactly the columns of the
models in syncdash.store.models (tests/e2e/test_read_model.py holds the two lists equal), so the read model's
functions and the front ends format them as they format the models' instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any


class RunStatus(StrEnum):
    """Where a run is. Stored as its plain string value; compare with these, never with bare strings."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its process died or stopped mid-run: a resume continues from the checkpoint

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


class PhaseStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class Resolution(StrEnum):
    """Why an item error stopped being open."""

    FIXED = "fixed"  # a later run loaded the item
    GONE = "gone"  # the item is no longer in the source
    RETRIED = "retried"  # a retry run failed on it again: the retry's new error carries it on
    MANUAL = "manual"


class CommandStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


RUN_STATUSES: tuple[RunStatus, ...] = tuple(RunStatus)
FINAL_STATUSES: tuple[RunStatus, ...] = (RunStatus.SUCCEEDED, RunStatus.PARTIAL, RunStatus.FAILED,
                                          RunStatus.CANCELLED)
# The per-run (and per-phase) change counts, in display order: the one definition every layer uses.
COUNTS = ("inserted", "updated", "unchanged", "deleted", "failed", "skipped")
# who goes first when several runs are due: a person waiting beats a timer beats a retry
PRIORITY = {"cli": 30, "console": 30, "api": 30, "demo": 30, "flow": 30, "resume": 25, "schedule": 20,
            "retry": 10}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def format_ts(dt: datetime) -> str:
    """The text form SQLAlchemy uses for DATETIME on SQLite; raw SQL must write (and compare with) the same."""
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


def default_database_url() -> str:
    """The store of a config without `database:`: SQLite in the user data dir."""
    import platformdirs

    data = Path(platformdirs.user_data_dir("syncdash"))
    return f"sqlite:///{data / 'syncdash.db'}"


# ---- light rows ------------------------------------------------------------------------------------------------

class Table:
    """A store table as the DB-API reads it: its columns in the model's order, and which of them need
    converting from what SQLite hands back (DATETIME is text, BOOLEAN 0/1; server drivers already convert)."""

    def __init__(self, name: str, columns: str, datetimes: str = "", bools: str = "") -> None:
        self.name = name
        self.columns: tuple[str, ...] = tuple(columns.split())
        self.datetimes = frozenset(datetimes.split())
        self.bools = frozenset(bools.split())
        # the SELECT list: every column quoted ("column" is a column name of item errors)
        self.select = ", ".join(f'"{c}"' for c in self.columns)
        self.row_class: type[Row] = type(f"{name}_row", (Row,), {"__slots__": self.columns, "table": self})
        self._convert: list[tuple[int, Callable[[Any], Any]]] = [
            (i, _to_datetime if c in self.datetimes else bool) for i, c in enumerate(self.columns)
            if c in self.datetimes or c in self.bools]

    def fetch(self, db: Any, where: str = "", params: Any = ()) -> list[Any]:
        """`SELECT <every column> FROM table <where>` as row objects, on anything with `all(sql, params)`: a
        store's DB-API connection (syncdash.common.dialect.Conn, any dialect) or a StoreReader."""
        return [self.row(r) for r in db.all(f"SELECT {self.select} FROM {self.name} {where}", params)]

    def first(self, db: Any, where: str = "", params: Any = ()) -> Any:
        """The first row `fetch` finds, or None."""
        found = self.fetch(db, where, params)
        return found[0] if found else None

    def row(self, values: Sequence[Any]) -> Any:
        """One row object from a DB-API tuple in `columns` order (typed Any: it stands in for the model)."""
        vals = list(values)
        for i, f in self._convert:
            if vals[i] is not None:
                vals[i] = f(vals[i])
        obj = self.row_class.__new__(self.row_class)
        for name, v in zip(self.columns, vals, strict=True):
            object.__setattr__(obj, name, v)
        return obj


class Row:
    """A read-only row of one store table: attributes named as the model's fields."""

    __slots__ = ()
    table: Table

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: write through syncdash.store.db.Store")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{c}={getattr(self, c)!r}" for c in self.table.columns) + ")"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, c) == getattr(other, c) for c in self.table.columns)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, c) for c in self.table.columns))


def _to_datetime(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


RUNS = Table(
    "syncdash_runs",
    "id source kind trigger fire_key attempt options mode dry_run status priority not_before queued_at started_at "
    "finished_at heartbeat_at owner resumes parent_run_id flow_run_id inserted updated unchanged deleted failed "
    "skipped checkpoint fingerprint error error_type warnings http applied_seq notified_at followed_up_at",
    datetimes="not_before queued_at started_at finished_at heartbeat_at notified_at followed_up_at",
    bools="dry_run")
RUN_PHASES = Table(
    "syncdash_run_phases",
    "id run_id seq name status done total unit detail inserted updated unchanged deleted failed skipped "
    "started_at finished_at",
    datetimes="started_at finished_at")
ITEM_ERRORS = Table(
    "syncdash_item_errors",
    "id run_id source phase item item_key file line column error_type code message retryable attempts payload "
    "created_at resolved_at resolved_by_run resolution occurrences last_seen_at last_run_id payload_truncated",
    datetimes="created_at resolved_at last_seen_at", bools="retryable payload_truncated")
SOURCE_STATE = Table(
    "syncdash_source_state",
    "source cursor fingerprint last_run_id last_status last_success_at last_success_run_id paused "
    "schedule_override last_fire_at next_fire_at overdue_notified_at lock_run_id lock_owner lease_until",
    datetimes="last_success_at last_fire_at next_fire_at overdue_notified_at lease_until", bools="paused")
DAEMONS = Table(
    "syncdash_daemons", "owner host pid kind workers started_at heartbeat_at stopped_at http",
    datetimes="started_at heartbeat_at stopped_at")
CHANGES = Table("syncdash_changes", "id run_id source change key before after")
PUSHED = Table("syncdash_pushed", "source key scope hash url ref run_id pushed_at", datetimes="pushed_at")
BREAKERS = Table("syncdash_breakers", "host state failures opened_at retry_at last_error source updated_at",
                 datetimes="opened_at retry_at updated_at")

# what the read path reads, by model name (the test comparing them with the models walks this)
LIGHT_TABLES = {"Run": RUNS, "RunPhase": RUN_PHASES, "ItemError": ITEM_ERRORS, "SourceState": SOURCE_STATE,
                "Daemon": DAEMONS, "Change": CHANGES, "Pushed": PUSHED, "Breaker": BREAKERS}
