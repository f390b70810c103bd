"""When sources are due: cron and interval schedules, with fire times every daemon agrees on.

Several daemons on different machines may watch the same config. Each one enqueues a run under the key
(source, fire time), so the fire times themselves must be *deterministic*: computed only from the schedule text,
its time zone and the instant asked about -- never from when a daemon started or from a random number.

* ``"0 3 * * *"`` -- a 5-field crontab expression (minute hour day month weekday), evaluated on the wall clock of
  the schedule's time zone. The expression is parsed here first so errors name the bad field, so crontab's
  weekday numbering holds (0 and 7 = Sunday; APScheduler 3's own ``from_crontab`` treats 0 as *Monday*), and so
  crontab's rule "when both day and weekday are restricted, either may match" holds (APScheduler alone requires
  both). APScheduler's ``CronTrigger`` then does the calendar math.
* ``"every 12h"`` -- a fixed interval (``s``/``m``/``h``/``d``, combinable as ``every 1h30m``), on a grid anchored at
  the Unix epoch *on the schedule zone's wall clock*: ``every 12h`` fires at 00:00 and 12:00 local time,
  ``every 1d`` at local midnight, ``every 90s`` at 00:00:00, 00:01:30, ... APScheduler's ``IntervalTrigger`` computes
  the grid.

Both APScheduler triggers run in UTC over the naive wall-clock timeline (where their math is exact; in a DST zone
APScheduler 3.11's CronTrigger skips fires, e.g. ``0 0 1 * *`` in Europe/Dublin jumps from March 27 to May 1), and
:class:`WallClockTrigger` maps wall times to instants.

Daylight saving time (both kinds follow the same rules, so ``every 1h`` and ``0 * * * *`` fire at the same times):

* Wall times skipped by a spring-forward happen "late" instead: 01:30 on a day that jumps from 01:00 to 02:00
  fires at 02:30 new time -- once (Python's ``fold=0`` reading of a missing time, as APScheduler also does).
* Wall times repeated by a fall-back: schedules that fire throughout the day (cron with ``*`` hours, intervals
  shorter than a day) fire in both passes, so they keep firing at a steady real-time rate. Schedules pinned to
  an hour (cron with a restricted hour such as ``30 1 * * *``, intervals of a day or more) fire in the first pass
  only, so a daily job runs once a day (APScheduler alone runs ``30 1 * * *`` twice on that day).

Jitter never moves a fire time (that would break the shared key); :func:`jitter_delay` gives the delay to apply
before starting the run, derived from a hash of (source, fire time) so every daemon picks the same delay.

Every datetime in and out of this module's public API is timezone-aware; results are always in UTC.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syncdash.errors import ScheduleError

__all__ = [
    "GRACE_SECONDS",
    "Schedule",
    "ScheduleError",
    "due",
    "jitter_delay",
    "overdue",
    "parse_schedule",
]

UTC = UTC
GRACE_SECONDS = 60.0
"""Without catch-up, a fire missed by at most this much (or half the interval, if smaller) still runs: a daemon
that wakes a little late must not drop the run it woke up for."""

_SECOND = timedelta(seconds=1)
_DAY_SECONDS = 86400
_MAX_INTERVAL_SECONDS = 366 * _DAY_SECONDS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The interval grid is anchored at the epoch; APScheduler's IntervalTrigger only counts forward from its start, so
# it is given a start a whole number of intervals before 1900 (same grid, also valid for older dates).
_SECONDS_1900_TO_EPOCH = 2_208_988_800
# How far last_fire() looks back before giving up: more than the 8-year gap of "29 Feb" around 2100.
_MAX_LOOKBACK = timedelta(days=366 * 20)
_GAP_LOOKBACK = timedelta(hours=25)

_INTERVAL_HINT = "use every <number><s|m|h|d>, e.g. every 12h or every 1h30m"
_CRON_HINT = "expected 5 fields (minute hour day month weekday)"
_UNITS: dict[str, tuple[int, str]] = {
    "d": (_DAY_SECONDS, "day"),
    "h": (3600, "hour"),
    "m": (60, "minute"),
    "s": (1, "second"),
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 = Sunday
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February counted with its leap day


# ---------------------------------------------------------------------------------------------------- helpers


def _utc(value: datetime, name: str) -> datetime:
    """Return `value` in UTC; naive datetimes are refused because guessing their zone would shift fire times."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _floor_second(value: datetime) -> datetime:
    return value.replace(microsecond=0)


def _ceil_second(value: datetime) -> datetime:
    """Fire times fall on whole seconds, so asking from the next whole second loses nothing."""
    return value if value.microsecond == 0 else value.replace(microsecond=0) + _SECOND


def _zone(name: str) -> tzinfo:
    """The tzinfo for an IANA name; plain UTC uses `timezone.utc`, which is cheaper and what APScheduler uses."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Dublin' or 'UTC'"
        ) from None


def _offset(instant: datetime, zone: tzinfo) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _wall(instant: datetime, zone: tzinfo) -> datetime:
    """Naive local wall-clock time of a UTC instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _is_second_pass(instant: datetime, zone: tzinfo) -> bool:
    """True when `instant` is the repeat of a wall time a fall-back already showed once (the later of the two)."""
    first = _wall(instant, zone).replace(tzinfo=zone, fold=0).astimezone(UTC)
    return first != instant


def _first_offset_change(start: datetime, end: datetime, offset: timedelta, zone: tzinfo) -> datetime | None:
    """The first instant in (start, end] whose UTC offset differs from `offset`, or None.

    Scans a day at a time (transitions are never closer than that), then bisects to the second; zoneinfo does not
    expose transition times, and this keeps long intervals from stepping over a DST period unnoticed.
    """
    if end <= start:
        return None
    low = start
    while low < end:
        high = min(low + timedelta(days=1), end)
        if _offset(high, zone) != offset:
            while high - low > _SECOND:
                middle = _floor_second(low + (high - low) / 2)
                if middle <= low:
                    middle = low + _SECOND
                if _offset(middle, zone) != offset:
                    high = middle
                else:
                    low = middle
            return high
        low = high
    return None


# ---------------------------------------------------------------------------------------------------- triggers


class WallClockTrigger(BaseTrigger):
    """An APScheduler trigger: an APScheduler trigger run on a zone's wall clock, mapped to real instants.

    `wall` is a `CronTrigger`, `OrTrigger` or `IntervalTrigger` evaluated in UTC over the *naive* local wall-clock
    timeline, where there is no DST and APScheduler's calendar math is exact. (Evaluated in the zone itself,
    APScheduler 3.11 skips fires: ``0 0 1 * *`` in Europe/Dublin asked on 2015-03-27 answers May 1st, not April
    1st.) This class then maps wall times to instants with the DST rules in the module docstring.
    `get_next_fire_time` follows APScheduler's contract (first fire >= now, or first fire after
    `previous_fire_time`) and returns UTC.
    """

    __slots__ = ("description", "first_pass_only", "timezone", "wall")

    def __init__(self, wall: BaseTrigger, zone: tzinfo, first_pass_only: bool, description: str) -> None:
        self.wall = wall
        self.timezone = zone
        self.first_pass_only = first_pass_only
        self.description = description

    def _wall_ceil(self, wall_time: datetime) -> datetime | None:
        """First wall time >= the naive `wall_time` that the wall trigger fires on."""
        fire = self.wall.get_next_fire_time(None, wall_time.replace(tzinfo=UTC))
        return None if fire is None else fire.astimezone(UTC).replace(tzinfo=None)

    def first_at_or_after(self, target: datetime) -> datetime | None:
        """First fire time >= `target` (UTC, whole seconds).

        Walks the zone's constant-offset stretches from `target`: within one, wall times map to instants by a fixed
        offset; at a spring-forward, a wall time inside the gap fires shifted forward by the gap; at a fall-back the
        walk either goes through the repeated wall times again or jumps past them (first-pass-only schedules).
        """
        zone = self.timezone
        if zone is UTC:
            wall = self._wall_ceil(target.replace(tzinfo=None))
            return None if wall is None else wall.replace(tzinfo=UTC)
        best = self._shifted_from_recent_gap(target)
        now = target
        for _ in range(10_000):
            if best is not None and now >= best:
                return best
            offset = _offset(now, zone)
            wall = self._wall_ceil(now.replace(tzinfo=None) + offset)
            if wall is None:
                return best
            candidate = (wall - offset).replace(tzinfo=UTC)
            change = _first_offset_change(now, candidate, offset, zone)
            if change is None:
                if self.first_pass_only and _is_second_pass(candidate, zone):
                    now = candidate + _SECOND
                    continue
                return candidate if best is None else min(best, candidate)
            new_offset = _offset(change, zone)
            if new_offset > offset:
                # Spring forward: wall times in [change + offset, change + new_offset) do not exist. One of them
                # fires shifted forward by the gap -- at `candidate` -- as Python's fold=0 and CronTrigger do.
                if wall < change.replace(tzinfo=None) + new_offset:
                    best = candidate if best is None else min(best, candidate)
                now = change
            elif self.first_pass_only:
                now = change + (offset - new_offset)  # skip the repeated wall times: they already fired
            else:
                now = change
        raise RuntimeError(f"{self.description}: no fire time found after {target.isoformat()}")

    def _shifted_from_recent_gap(self, target: datetime) -> datetime | None:
        """A fire >= `target` shifted there by a spring-forward shortly before `target`, if any.

        Such fires land up to a gap's length after the transition, so a walk starting after the transition would
        not see them. Gaps are at most a day (Samoa skipped 2011-12-30), hence the 25-hour look-back.
        """
        zone = self.timezone
        back = target - _GAP_LOOKBACK
        before = _offset(back, zone)
        if before >= _offset(target, zone):
            return None
        change = _first_offset_change(back, target, before, zone)
        if change is None:  # pragma: no cover - the offsets differ, so there is a change
            return None
        after = _offset(change, zone)
        if after <= before:
            return None
        wall = self._wall_ceil(target.replace(tzinfo=None) + before)
        if wall is None or wall >= change.replace(tzinfo=None) + after:
            return None
        return (wall - before).replace(tzinfo=UTC)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is not None:
            return self.first_at_or_after(_floor_second(previous_fire_time.astimezone(UTC)) + _SECOND)
        return self.first_at_or_after(_ceil_second(now.astimezone(UTC)))

    def __str__(self) -> str:
        return f"wallclock[{self.description}, {self.timezone}]"

    def __repr__(self) -> str:
        return f"<WallClockTrigger {self.description!r} timezone={self.timezone!s} wall={self.wall!s}>"


def _interval_trigger(seconds: int, zone: tzinfo, description: str) -> WallClockTrigger:
    """The epoch-anchored wall-clock grid; intervals of a day or more fire once per repeated wall time."""
    anchor = _EPOCH - timedelta(seconds=seconds * math.ceil(_SECONDS_1900_TO_EPOCH / seconds))
    grid = IntervalTrigger(seconds=seconds, start_date=anchor, timezone=UTC)
    return WallClockTrigger(grid, zone, first_pass_only=seconds >= _DAY_SECONDS, description=description)



# ---------------------------------------------------------------------------------------------------- parsing


def _parse_interval(text: str) -> tuple[int, list[tuple[int, str]]]:
    """Seconds and (count, unit) parts of ``every ...``; raises ScheduleError naming the problem."""
    body = text[len("every"):]
    if not body.strip():
        raise ScheduleError(f"{text!r} is not a valid interval: the length is missing; {_INTERVAL_HINT}")
    if not body[0].isspace():
        raise ScheduleError(f"{text!r} is not a valid interval: {_INTERVAL_HINT}")
    body = body.strip()
    parts: list[tuple[int, str]] = []
    position = 0
    for match in re.finditer(r"\s*(\d+)\s*([a-zA-Z]+)", body):
        if match.start() != position:
            break
        unit = match.group(2).lower()
        if unit not in _UNITS:
            raise ScheduleError(f"{text!r} is not a valid interval: {_INTERVAL_HINT}")
        parts.append((int(match.group(1)), unit))
        position = match.end()
    if not parts or position != len(body):
        raise ScheduleError(f"{text!r} is not a valid interval: {_INTERVAL_HINT}")
    units = [unit for _, unit in parts]
    order = list(_UNITS)
    if len(set(units)) != len(units) or units != sorted(units, key=order.index):
        raise ScheduleError(
            f"{text!r} is not a valid interval: give each unit once, largest first (d, h, m, s), e.g. every 1h30m"
        )
    seconds = sum(count * _UNITS[unit][0] for count, unit in parts)
    if seconds <= 0:
        raise ScheduleError(f"{text!r} is not a valid interval: the interval must be positive")
    if seconds > _MAX_INTERVAL_SECONDS:
        raise ScheduleError(
            f"{text!r} is not a valid interval: the interval must be at most 366d; use cron for rarer runs"
        )
    return seconds, parts


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0  # the number of names[0]


_CRON_FIELDS = (
    _CronField("minute", 0, 59),
    _CronField("hour", 0, 23),
    _CronField("day", 1, 31),
    _CronField("month", 1, 12, _MONTHS, 1),
    _CronField("weekday", 0, 7, _CRON_WEEKDAYS, 0),
)


def _cron_value(spec: _CronField, token: str, expression: str, range_end: bool = False) -> int:
    """One number or name of a cron field, range-checked."""
    lowered = token.lower()
    if token.isdigit():
        value = int(token)
    elif lowered in spec.names:
        value = spec.names.index(lowered) + spec.name_base
        if range_end and spec.name == "weekday" and value == 0:
            value = 7  # "fri-sun": Sunday closes a weekday range
    else:
        names = f", or a name such as {spec.names[0]}" if spec.names else ""
        raise ScheduleError(
            f"{expression!r} is not a valid cron expression: {spec.name} field value {token!r} is not understood; "
            f"use *, a number, a range a-b, a list a,b or a step */n{names}"
        )
    if not spec.low <= value <= spec.high:
        raise ScheduleError(
            f"{expression!r} is not a valid cron expression: {spec.name} value {value} is out of range "
            f"{spec.low}-{spec.high}"
        )
    return value


def _parse_cron_field(spec: _CronField, text: str, expression: str) -> frozenset[int]:
    """Expand one crontab field (lists, ranges, steps, names) into the set of values it matches."""
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(
                    f"{expression!r} is not a valid cron expression: {spec.name} step {step_text!r} in {item!r} "
                    "must be a positive whole number"
                )
            step = int(step_text)
        if not base:
            raise ScheduleError(
                f"{expression!r} is not a valid cron expression: {spec.name} field {text!r} has an empty item; "
                "use *, a number, a range a-b, a list a,b or a step */n"
            )
        if base == "*":
            first, last = spec.low, spec.high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first = _cron_value(spec, first_text, expression)
            last = _cron_value(spec, last_text, expression, range_end=True)
            if first > last:
                raise ScheduleError(
                    f"{expression!r} is not a valid cron expression: {spec.name} range {base!r} goes backwards; "
                    "write it smallest first"
                )
        else:
            first = _cron_value(spec, base, expression)
            last = spec.high if slash else first
        values.update(range(first, last + 1, step))
    if spec.name == "weekday" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _cron_list(values: frozenset[int], spec: _CronField) -> str:
    full = set(range(spec.low, spec.high + 1)) if spec.name != "weekday" else set(range(7))
    return "*" if values == full else ",".join(str(value) for value in sorted(values))


def _build_cron(expression: str, zone: tzinfo) -> WallClockTrigger:
    """Validate a 5-field crontab expression and build its trigger."""
    texts = expression.split()
    if len(texts) != 5:
        extra = "; seconds and years are not supported" if len(texts) in (6, 7) else ""
        raise ScheduleError(
            f"{expression!r} is not a valid cron expression: {_CRON_HINT}, got {len(texts)}{extra}"
        )
    minute, hour, day, month, weekday = (
        _parse_cron_field(spec, text, expression) for spec, text in zip(_CRON_FIELDS, texts, strict=True)
    )
    if not any(d <= _DAYS_IN_MONTH[m - 1] for m in month for d in day) and texts[4].startswith("*"):
        raise ScheduleError(
            f"{expression!r} is not a valid cron expression: it never fires, no month given has that day"
        )
    common = {
        "minute": _cron_list(minute, _CRON_FIELDS[0]),
        "hour": _cron_list(hour, _CRON_FIELDS[1]),
        "month": _cron_list(month, _CRON_FIELDS[3]),
        "timezone": UTC,  # the wall-clock timeline: see WallClockTrigger
    }
    day_list = _cron_list(day, _CRON_FIELDS[2])
    # APScheduler numbers weekdays from Monday; names avoid any confusion.
    weekday_list = "*" if len(weekday) == 7 else ",".join(_CRON_WEEKDAYS[value] for value in sorted(weekday))
    inner: BaseTrigger
    if texts[2].startswith("*") or texts[4].startswith("*"):
        inner = CronTrigger(day=day_list, day_of_week=weekday_list, **common)
    else:  # crontab: with both restricted, a date matching either one fires
        inner = OrTrigger([CronTrigger(day=day_list, **common), CronTrigger(day_of_week=weekday_list, **common)])
    return WallClockTrigger(inner, zone, first_pass_only=len(hour) < 24, description=" ".join(texts))


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


# ---------------------------------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; build it with :func:`parse_schedule`.

    Fire times depend only on (text, timezone), so every daemon computing them gets the same answer.
    """

    text: str
    kind: Literal["cron", "interval"]
    timezone: str
    interval: float | None
    _trigger: WallClockTrigger = field(init=False, repr=False, compare=False)
    _parts: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        """Build (and thereby validate) the trigger once, so a Schedule that exists is always usable."""
        zone = _zone(self.timezone)
        stripped = self.text.strip()
        if self.kind == "interval":
            seconds, parts = _parse_interval(stripped)
            if self.interval is not None and self.interval != seconds:
                raise ScheduleError(f"{self.text!r} is {seconds} seconds, not {self.interval}")
            object.__setattr__(self, "interval", float(seconds))
            object.__setattr__(self, "_parts", tuple(parts))
            object.__setattr__(self, "_trigger", _interval_trigger(seconds, zone, stripped))
        elif self.kind == "cron":
            if self.interval is not None:
                raise ScheduleError(f"cron schedule {self.text!r} has no interval")
            object.__setattr__(self, "_trigger", _build_cron(stripped, zone))
        else:
            raise ScheduleError(f"unknown schedule kind {self.kind!r}: use 'cron' or 'interval'")

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger that computes this schedule's fire times (usable with an APScheduler scheduler).

        It wraps APScheduler's CronTrigger/OrTrigger/IntervalTrigger (``.wall``, run on the wall-clock timeline) and
        adds the DST rules, so it agrees with every method here.
        """
        return self._trigger

    def grace(self) -> timedelta:
        """How late a fire may be noticed and still run when catch-up is off: 60 s, or half a shorter interval."""
        seconds = GRACE_SECONDS if self.interval is None else min(GRACE_SECONDS, self.interval / 2)
        return timedelta(seconds=seconds)

    def _first_at_or_after(self, instant: datetime) -> datetime | None:
        return self._trigger.first_at_or_after(_ceil_second(instant))

    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after `after`."""
        fire = self._first_at_or_after(_floor_second(_utc(after, "after")) + _SECOND)
        if fire is None:  # pragma: no cover - parsing rejects expressions that never fire
            raise ScheduleError(f"{self.text!r} has no fire time after {after.isoformat()}")
        return fire

    def next_fires(self, after: datetime, n: int) -> list[datetime]:
        """The next `n` fire times strictly after `after`, oldest first (e.g. for a console preview)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        fires: list[datetime] = []
        current = _utc(after, "after")
        for _ in range(n):
            current = self.next_fire(current)
            fires.append(current)
        return fires

    def fires_between(self, start: datetime, end: datetime, limit: int = 10000) -> list[datetime]:
        """Fire times t with start < t <= end, oldest first; at most `limit` of them (the earliest)."""
        current, end = _utc(start, "start"), _utc(end, "end")
        fires: list[datetime] = []
        while len(fires) < limit:
            current = self.next_fire(current)
            if current > end:
                break
            fires.append(current)
        return fires

    def last_fire(self, at_or_before: datetime) -> datetime | None:
        """The latest fire time <= `at_or_before`, or None if there is none in the 20 years before it.

        APScheduler only searches forward, so this searches forward from ever earlier starts (doubling the
        look-back) until a fire lands at or before the target, then steps forward to the last one.
        """
        target = _utc(at_or_before, "at_or_before")
        span = timedelta(seconds=self.interval) if self.interval is not None else timedelta(minutes=1)
        while span <= _MAX_LOOKBACK:
            fire = self.next_fire(target - span)
            if fire <= target:
                while (following := self.next_fire(fire)) <= target:
                    fire = following
                return fire
            span *= 2
        return None

    def previous_fires(self, at_or_before: datetime, n: int) -> list[datetime]:
        """The last `n` fire times <= `at_or_before`, newest first (fewer if the search runs out)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        fires: list[datetime] = []
        current: datetime | None = _utc(at_or_before, "at_or_before")
        while len(fires) < n and current is not None:
            current = self.last_fire(current)
            if current is not None:
                fires.append(current)
                current -= timedelta(microseconds=1)
        return fires

    def describe(self) -> str:
        """Human text for status screens: "every 12 hours", "cron 0 3 * * * (Europe/Dublin)".

        Cron always names its zone because its times are wall-clock times; intervals only when it is not UTC.
        """
        if self.kind == "cron":
            return f"cron {self._trigger.description} ({self.timezone})"
        if len(self._parts) == 1 and self._parts[0][0] == 1:
            text = f"every {_UNITS[self._parts[0][1]][1]}"
        else:
            text = "every " + " ".join(_plural(count, _UNITS[unit][1]) for count, unit in self._parts)
        return text if self.timezone == "UTC" else f"{text} ({self.timezone})"


def parse_schedule(text: str, timezone: str | None = None) -> Schedule:
    """Parse ``"0 3 * * *"`` (5-field cron) or ``"every 12h"`` (interval) in an IANA time zone (default UTC).

    Raises ScheduleError with a message fit to show the user as-is.
    """
    if not isinstance(text, str):
        raise ScheduleError(f"a schedule must be text such as '0 3 * * *' or 'every 12h', got {type(text).__name__}")
    zone_name = "UTC" if timezone is None else timezone
    if not isinstance(zone_name, str) or not zone_name.strip():
        raise ScheduleError(f"unknown time zone {zone_name!r}: use an IANA name such as 'Europe/Dublin' or 'UTC'")
    stripped = text.strip()
    if not stripped:
        raise ScheduleError(
            "the schedule is empty: use a 5-field cron expression (minute hour day month weekday) such as "
            "'0 3 * * *', or an interval such as 'every 12h'"
        )
    _zone(zone_name)  # the zone error first: it is the same for either kind
    kind: Literal["cron", "interval"] = "interval" if stripped.lower().startswith("every") else "cron"
    return Schedule(text=stripped, kind=kind, timezone=zone_name, interval=None)


# ---------------------------------------------------------------------------------------------------- daemon helpers


def due(schedule: Schedule, last_fire: datetime | None, now: datetime, catch_up: bool,
        created: datetime | None = None) -> tuple[datetime | None, datetime]:
    """What to enqueue now and when to look next: ``(fire_to_enqueue_or_None, next_fire_after_now)``.

    - `last_fire` is the last fire time already enqueued (persisted by the daemon); `created` is when the source
      first appeared, if known. Fires at or before the later of the two are never due again, so a re-created
      source does not inherit old misses. With neither, it is a first start: nothing from the past is enqueued,
      except a fire at exactly `now`.
    - Missed fires are those in (baseline, now]. With `catch_up`, all of them coalesce into ONE run keyed by the
      latest missed fire time (one run brings the data up to date; more would only repeat it). Without it, only
      the latest missed fire runs, and only if it is at most :meth:`Schedule.grace` old: a daemon waking a bit
      late still runs, downtime misses are dropped.
    - The next fire time is computed after the baseline too, so a daemon whose clock lags one that already
      enqueued a later fire never proposes that fire again.
    """
    now = _utc(now, "now")
    baselines = [_utc(value, name) for value, name in ((last_fire, "last_fire"), (created, "created"))
                 if value is not None]
    baseline = max(baselines) if baselines else None
    upcoming = schedule.next_fire(now if baseline is None else max(now, baseline))
    latest = schedule.last_fire(now)
    if latest is None:
        return None, upcoming
    if baseline is None:
        return (latest if latest == now else None), upcoming
    if latest <= baseline:
        return None, upcoming
    if catch_up or now - latest <= schedule.grace():
        return latest, upcoming
    return None, upcoming


def jitter_delay(fire: datetime, source: str, jitter: float) -> float:
    """A delay in [0, jitter) seconds to wait before starting the run for (source, fire).

    Spreads sources sharing a schedule without a random number: it is a hash of (source, fire time), so every
    daemon picks the same delay and the same source gets a different one each fire.
    """
    fire = _utc(fire, "fire")
    if not math.isfinite(jitter) or jitter < 0:
        raise ValueError(f"jitter must be a finite number of seconds >= 0, got {jitter!r}")
    if jitter == 0:
        return 0.0
    digest = hashlib.sha256(f"{source}\x00{fire.isoformat()}".encode()).digest()
    fraction = (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)  # 53 bits: exactly representable, < 1
    return min(fraction * jitter, math.nextafter(jitter, 0.0))


def overdue(schedule: Schedule, last_success: datetime | None, now: datetime,
            first_seen: datetime | None = None) -> bool:
    """Whether a source has gone too long without a successful run (for alerts and the console).

    Interval kind: no success within 2 intervals of `now`. Cron: the last success is before the 2nd newest fire
    time <= now, i.e. two scheduled runs came and went. Two, not one, so a single slow or retried run does not
    alert. A source that never succeeded is overdue once 2 fire times have passed since `first_seen` (never, if
    `first_seen` is None -- without it there is no fair start to count from).
    """
    now = _utc(now, "now")
    if last_success is None:
        if first_seen is None:
            return False
        return len(schedule.fires_between(_utc(first_seen, "first_seen"), now, limit=2)) >= 2
    last_success = _utc(last_success, "last_success")
    if schedule.interval is not None:
        return now - last_success > timedelta(seconds=2 * schedule.interval)
    fires = schedule.previous_fires(now, 2)
    return len(fires) == 2 and last_success < fires[1]
