"""Schedules: cron and interval fire times, DST, the daemon's `due` decision, jitter and overdue.

Every time is injected; nothing sleeps or reads the clock. Times are UTC unless a test says otherwise.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from syncdash.common.schedule import Schedule, ScheduleError, due, jitter_delay, overdue, parse_schedule

DUBLIN = ZoneInfo("Europe/Dublin")


def at(*args: int) -> datetime:
    """A UTC datetime, shortly."""
    return datetime(*args, tzinfo=UTC)


def local(fire: datetime, zone: ZoneInfo = DUBLIN) -> str:
    return fire.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


# ---------------------------------------------------------------------------------------------------- cron


def test_cron_next_is_strictly_after_and_last_is_inclusive() -> None:
    s = parse_schedule("0 3 * * *")
    assert s.kind == "cron" and s.interval is None and s.timezone == "UTC"
    assert s.next_fire(at(2024, 5, 1, 2, 59)) == at(2024, 5, 1, 3)
    assert s.next_fire(at(2024, 5, 1, 3)) == at(2024, 5, 2, 3)  # strictly after
    assert s.next_fire(at(2024, 5, 1, 2, 59, 59, 999_999)) == at(2024, 5, 1, 3)
    assert s.last_fire(at(2024, 5, 1, 3)) == at(2024, 5, 1, 3)  # inclusive
    assert s.last_fire(at(2024, 5, 1, 2, 59, 59, 999_999)) == at(2024, 4, 30, 3)
    assert s.previous_fires(at(2024, 5, 1, 12), 3) == [at(2024, 5, 1, 3), at(2024, 4, 30, 3), at(2024, 4, 29, 3)]
    assert s.next_fires(at(2024, 5, 1, 12), 2) == [at(2024, 5, 2, 3), at(2024, 5, 3, 3)]
    assert s.fires_between(at(2024, 5, 1, 3), at(2024, 5, 3, 3)) == [at(2024, 5, 2, 3), at(2024, 5, 3, 3)]
    assert s.fires_between(at(2024, 5, 1), at(2024, 5, 10), limit=2) == [at(2024, 5, 1, 3), at(2024, 5, 2, 3)]
    assert all(f.tzinfo is UTC for f in s.next_fires(at(2024, 5, 1), 3))


def test_cron_weekdays_use_crontab_numbering() -> None:
    # APScheduler 3's own from_crontab would make 1 a Tuesday; crontab says Monday, and 0 and 7 are Sunday.
    assert parse_schedule("0 9 * * 1").next_fire(at(2024, 1, 1, 10)) == at(2024, 1, 8, 9)
    assert at(2024, 1, 8).strftime("%a") == "Mon"
    for sunday in ("0 9 * * 0", "0 9 * * 7", "0 9 * * sun", "0 9 * * SUN"):
        assert parse_schedule(sunday).next_fire(at(2024, 1, 1)) == at(2024, 1, 7, 9), sunday
    weekdays = parse_schedule("0 9 * * 1-5").fires_between(at(2024, 1, 1), at(2024, 1, 8))
    assert [f.strftime("%a") for f in weekdays] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    weekend = parse_schedule("0 9 * * fri-sun").fires_between(at(2024, 1, 1), at(2024, 1, 8))
    assert [f.strftime("%a") for f in weekend] == ["Fri", "Sat", "Sun"]
    every_other = parse_schedule("0 9 * * */2").fires_between(at(2024, 1, 1), at(2024, 1, 8))
    assert [f.strftime("%a") for f in every_other] == ["Tue", "Thu", "Sat", "Sun"]  # 0,2,4,6


def test_cron_day_and_weekday_both_restricted_means_either() -> None:
    # crontab: "the 1st of the month, and every Friday"; a Friday that is the 1st fires once.
    fires = parse_schedule("0 0 1 * 5").fires_between(at(2024, 1, 1), at(2024, 3, 2))
    assert at(2024, 2, 1) in fires and at(2024, 3, 1) in fires
    assert [f.day for f in fires if f.month == 1] == [5, 12, 19, 26]
    assert fires.count(at(2024, 3, 1)) == 1  # 2024-03-01 is a Friday and the 1st
    # A '*' weekday (even stepped) means AND, as in crontab.
    thirteenth = parse_schedule("0 0 13 * */2").fires_between(at(2024, 1, 1), at(2024, 12, 31))
    assert [f.month for f in thirteenth] == [1, 2, 4, 6, 7, 8, 10]  # the 13ths that are a Sun/Tue/Thu/Sat


def test_cron_month_ends_and_leap_day() -> None:
    day31 = parse_schedule("0 0 31 * *").fires_between(at(2024, 1, 1), at(2025, 1, 1))
    assert [f.month for f in day31] == [1, 3, 5, 7, 8, 10, 12]
    leap = parse_schedule("0 12 29 2 *")
    assert leap.next_fire(at(2024, 3, 1)) == at(2028, 2, 29, 12)
    assert leap.last_fire(at(2027, 1, 1)) == at(2024, 2, 29, 12)
    assert leap.last_fire(at(2103, 1, 1)) == at(2096, 2, 29, 12)  # 2100 is not a leap year
    month_end = parse_schedule("59 23 28-31 * *").next_fire(at(2023, 2, 27))
    assert month_end == at(2023, 2, 28, 23, 59)


def test_cron_lists_ranges_steps_and_names() -> None:
    s = parse_schedule("*/15 8-9 * jan,JUL mon")
    fires = s.fires_between(at(2024, 1, 1), at(2024, 1, 2))
    assert [f.strftime("%H:%M") for f in fires] == [f"{h:02}:{m:02}" for h in (8, 9) for m in (0, 15, 30, 45)]
    assert s.next_fire(at(2024, 2, 1)).month == 7
    assert [f.minute for f in parse_schedule("5/20 0 * * *").fires_between(at(2024, 1, 1), at(2024, 1, 1, 1))] == [
        5, 25, 45]


def test_cron_in_a_time_zone() -> None:
    s = parse_schedule("0 3 * * *", "Europe/Dublin")
    assert s.next_fire(at(2024, 1, 10)) == at(2024, 1, 10, 3)  # winter: Dublin is UTC+0
    assert s.next_fire(at(2024, 7, 10)) == at(2024, 7, 10, 2)  # summer: UTC+1
    assert s.describe() == "cron 0 3 * * * (Europe/Dublin)"


def test_cron_dst_spring_forward_fires_once_and_late() -> None:
    # 2024-03-31 01:00 GMT -> 02:00 IST in Dublin: 01:30 local does not exist that day.
    s = parse_schedule("30 1 * * *", "Europe/Dublin")
    fires = s.fires_between(at(2024, 3, 29), at(2024, 4, 2))
    assert [local(f) for f in fires] == [
        "2024-03-29 01:30 GMT", "2024-03-30 01:30 GMT", "2024-03-31 02:30 IST", "2024-04-01 01:30 IST"]
    assert s.previous_fires(at(2024, 4, 1, 12), 3) == fires[1:][::-1]
    half_hourly = parse_schedule("*/30 * * * *", "Europe/Dublin")
    # 00:30 GMT, then 02:00 IST (= 01:00 UTC): no gap, no duplicate.
    assert half_hourly.fires_between(at(2024, 3, 31), at(2024, 3, 31, 3)) == [
        at(2024, 3, 31, 0, 30) + timedelta(minutes=30 * i) for i in range(6)]


def test_cron_month_steps_across_dst_do_not_skip() -> None:
    # APScheduler's CronTrigger evaluated in Europe/Dublin answers May 1st here; the wall-clock evaluation does not.
    monthly = parse_schedule("0 0 1 * *", "Europe/Dublin")
    assert local(monthly.next_fire(at(2015, 3, 27))) == "2015-04-01 00:00 IST"
    assert local(monthly.last_fire(at(2015, 4, 15))) == "2015-04-01 00:00 IST"


def test_fire_shifted_by_a_spring_forward_is_found_from_just_after_the_switch() -> None:
    s = parse_schedule("30 1 * * *", "Europe/Dublin")
    assert s.next_fire(at(2024, 3, 31, 1, 10)) == at(2024, 3, 31, 1, 30)  # 01:30 GMT never existed: 02:30 IST
    assert s.last_fire(at(2024, 3, 31, 1, 29)) == at(2024, 3, 30, 1, 30)


def test_cron_dst_fall_back_pinned_hour_fires_once_wildcard_hour_fires_in_both_passes() -> None:
    # 2024-10-27 02:00 IST -> 01:00 GMT in Dublin: 01:00-01:59 local happens twice.
    daily = parse_schedule("30 1 * * *", "Europe/Dublin").fires_between(at(2024, 10, 25), at(2024, 10, 29))
    assert [local(f) for f in daily] == [
        "2024-10-25 01:30 IST", "2024-10-26 01:30 IST", "2024-10-27 01:30 IST", "2024-10-28 01:30 GMT"]
    hourly = parse_schedule("0 * * * *", "Europe/Dublin").fires_between(at(2024, 10, 26, 23), at(2024, 10, 27, 3))
    assert hourly == [at(2024, 10, 27, h) for h in range(4)]  # 01:00 IST and 01:00 GMT are an hour apart: both


# ---------------------------------------------------------------------------------------------------- intervals


def test_interval_parsing_and_describe() -> None:
    cases = {
        "every 90s": (90, "every 90 seconds"),
        "every 5m": (300, "every 5 minutes"),
        "every 12h": (43200, "every 12 hours"),
        "every 1d": (86400, "every day"),
        "every 1h30m": (5400, "every 1 hour 30 minutes"),
        "EVERY 2D 6H": (2 * 86400 + 6 * 3600, "every 2 days 6 hours"),
    }
    for text, (seconds, described) in cases.items():
        s = parse_schedule(text)
        assert (s.kind, s.interval, s.describe()) == ("interval", float(seconds), described), text
    assert parse_schedule("  every 12h  ").text == "every 12h"
    assert parse_schedule("every 12h", "Europe/Dublin").describe() == "every 12 hours (Europe/Dublin)"


def test_interval_fire_times_are_deterministic_across_parses() -> None:
    now = at(2024, 5, 17, 13, 37, 21, 123_456)
    cases = [("every 12h", None), ("every 90s", None), ("every 7h", "Europe/Dublin"), ("every 1d", "Asia/Kolkata")]
    for text, zone in cases:
        first, second = parse_schedule(text, zone), parse_schedule(text, zone)
        assert first == second and hash(first) == hash(second)
        assert first.next_fires(now, 5) == second.next_fires(now, 5)
        assert first.previous_fires(now, 5) == second.previous_fires(now, 5)
        # Asking from a different instant lands on the same grid.
        assert first.next_fires(now - timedelta(hours=5), 50)[-5:] == second.next_fires(
            first.next_fires(now - timedelta(hours=5), 45)[-1], 5)


def test_every_12h_fires_at_midnight_and_noon_utc() -> None:
    s = parse_schedule("every 12h")
    assert s.next_fires(at(2024, 5, 17, 13, 37), 3) == [at(2024, 5, 18), at(2024, 5, 18, 12), at(2024, 5, 19)]
    assert s.last_fire(at(2024, 5, 17, 11, 59, 59)) == at(2024, 5, 17)
    assert s.last_fire(at(2024, 5, 17, 12)) == at(2024, 5, 17, 12)


def test_every_90s_and_every_1h30m_are_aligned_to_the_epoch() -> None:
    s = parse_schedule("every 90s")
    fire = s.next_fire(at(2024, 5, 17, 13, 37, 21))
    assert fire.timestamp() % 90 == 0 and fire == at(2024, 5, 17, 13, 37, 30)
    assert s.fires_between(at(2024, 5, 17), at(2024, 5, 17, 0, 6)) == [at(2024, 5, 17, 0, 1, 30), at(2024, 5, 17, 0, 3),
                                                                      at(2024, 5, 17, 0, 4, 30), at(2024, 5, 17, 0, 6)]
    assert len(s.fires_between(at(2024, 5, 17), at(2024, 5, 18))) == 960
    s = parse_schedule("every 1h30m")
    assert s.next_fires(at(2024, 5, 17, 1), 3) == [at(2024, 5, 17, 1, 30), at(2024, 5, 17, 3), at(2024, 5, 17, 4, 30)]
    assert all(f.timestamp() % 5400 == 0 for f in s.next_fires(at(2031, 1, 1), 20))


def test_interval_in_a_zone_keeps_local_wall_times_across_dst() -> None:
    days = parse_schedule("every 1d", "Europe/Dublin")
    spring = days.fires_between(at(2024, 3, 29), at(2024, 4, 2))
    autumn = days.fires_between(at(2024, 10, 25), at(2024, 10, 29))
    assert {local(f)[11:16] for f in spring + autumn} == {"00:00"}
    assert [local(f)[:10] for f in spring] == ["2024-03-30", "2024-03-31", "2024-04-01", "2024-04-02"]
    assert [local(f)[:10] for f in autumn] == ["2024-10-26", "2024-10-27", "2024-10-28", "2024-10-29"]  # none twice
    assert spring[1] == at(2024, 3, 31) and spring[2] == at(2024, 3, 31, 23)  # the 23-hour day
    halves = parse_schedule("every 12h", "Europe/Dublin").fires_between(at(2024, 3, 30, 6), at(2024, 4, 1, 6))
    assert [local(f)[11:16] for f in halves] == ["12:00", "00:00", "12:00", "00:00"]
    assert halves[2] - halves[1] == timedelta(hours=11)  # the 23-hour day


def test_sub_day_interval_in_a_zone_keeps_a_steady_rate_through_dst() -> None:
    s = parse_schedule("every 30m", "Europe/Dublin")
    autumn = s.fires_between(at(2024, 10, 26, 23), at(2024, 10, 27, 3))
    assert autumn == [at(2024, 10, 26, 23, 30) + timedelta(minutes=30 * i) for i in range(8)]  # both 01:xx passes
    spring = s.fires_between(at(2024, 3, 30, 23), at(2024, 3, 31, 3))
    assert spring == [at(2024, 3, 30, 23, 30) + timedelta(minutes=30 * i) for i in range(8)]
    # Intervals not dividing the day still sit on a wall-clock grid from 1970-01-01 00:00 local.
    fire = parse_schedule("every 7h", "Asia/Kolkata").next_fire(at(2024, 5, 17))
    wall = fire.astimezone(ZoneInfo("Asia/Kolkata")).replace(tzinfo=None)
    assert (wall - datetime(1970, 1, 1)).total_seconds() % (7 * 3600) == 0


@pytest.mark.parametrize("zone", ["Europe/Dublin", "Australia/Lord_Howe", "America/Santiago", "Pacific/Apia"])
@pytest.mark.parametrize("text", ["every 45m", "every 7h", "every 1d", "30 1 * * *", "*/20 * * * *", "0 0 1 * 5"])
def test_fire_times_are_consistent_across_dst_transitions(zone: str, text: str) -> None:
    """Next, last and previous agree with each other, from any starting point, through each zone's transitions."""
    s = parse_schedule(text, zone)
    for start in (at(2011, 12, 28), at(2024, 3, 30), at(2024, 4, 6), at(2024, 9, 5), at(2024, 10, 5)):
        fires = s.next_fires(start, 12)
        assert all(a < b for a, b in itertools.pairwise(fires))
        assert s.next_fires(fires[5] - timedelta(microseconds=1), 7) == fires[5:]
        assert s.previous_fires(fires[-1], 12) == fires[::-1]
        assert all(s.last_fire(f - timedelta(seconds=1)) == p for p, f in itertools.pairwise(fires))


# ---------------------------------------------------------------------------------------------------- trigger


def test_trigger_is_an_apscheduler_trigger_that_agrees_with_the_schedule() -> None:
    for text, zone in [("0 9 * * 1", "Europe/Dublin"), ("0 0 1 * 5", None), ("every 12h", None),
                       ("every 1d", "Europe/Dublin")]:
        s = parse_schedule(text, zone)
        trigger = s.trigger()
        assert isinstance(trigger, BaseTrigger)
        now = at(2024, 3, 30, 7, 5)
        assert trigger.get_next_fire_time(None, now) == s.next_fire(now)
        first = s.next_fire(now)
        assert trigger.get_next_fire_time(first, first) == s.next_fire(first)
    assert isinstance(parse_schedule("0 9 * * 1").trigger().wall, CronTrigger)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------- due


HOURLY = parse_schedule("every 1h")


def test_due_first_start_enqueues_nothing_from_the_past() -> None:
    assert due(HOURLY, None, at(2024, 5, 17, 10, 30), catch_up=True) == (None, at(2024, 5, 17, 11))
    assert due(HOURLY, None, at(2024, 5, 17, 10, 30), catch_up=False) == (None, at(2024, 5, 17, 11))
    # ...unless a fire is exactly now.
    assert due(HOURLY, None, at(2024, 5, 17, 11), catch_up=False) == (at(2024, 5, 17, 11), at(2024, 5, 17, 12))


def test_due_with_nothing_missed() -> None:
    assert due(HOURLY, at(2024, 5, 17, 10), at(2024, 5, 17, 10, 59, 59), catch_up=True) == (None, at(2024, 5, 17, 11))
    # The normal case: the daemon wakes on (or just after) the fire time.
    assert due(HOURLY, at(2024, 5, 17, 10), at(2024, 5, 17, 11), catch_up=False) == (
        at(2024, 5, 17, 11), at(2024, 5, 17, 12))
    assert due(HOURLY, at(2024, 5, 17, 10), at(2024, 5, 17, 11, 0, 2), catch_up=False)[0] == at(2024, 5, 17, 11)


def test_due_after_downtime_of_five_intervals() -> None:
    last = at(2024, 5, 17, 10)
    now = at(2024, 5, 17, 15, 20)  # fires 11:00 .. 15:00 were missed
    assert HOURLY.fires_between(last, now) == [at(2024, 5, 17, h) for h in range(11, 16)]
    # catch-up: one run, keyed by the latest missed fire.
    assert due(HOURLY, last, now, catch_up=True) == (at(2024, 5, 17, 15), at(2024, 5, 17, 16))
    # no catch-up: the misses are dropped...
    assert due(HOURLY, last, now, catch_up=False) == (None, at(2024, 5, 17, 16))
    # ...unless the latest one is within the 60 s grace.
    assert due(HOURLY, last, at(2024, 5, 17, 15, 1), catch_up=False) == (at(2024, 5, 17, 15), at(2024, 5, 17, 16))
    assert due(HOURLY, last, at(2024, 5, 17, 15, 1, 1), catch_up=False) == (None, at(2024, 5, 17, 16))
    # Calling again after enqueueing finds nothing new.
    assert due(HOURLY, at(2024, 5, 17, 15), now, catch_up=True) == (None, at(2024, 5, 17, 16))


def test_due_grace_is_half_a_short_interval() -> None:
    fast = parse_schedule("every 90s")
    assert fast.grace() == timedelta(seconds=45) and HOURLY.grace() == timedelta(seconds=60)
    assert parse_schedule("0 * * * *").grace() == timedelta(seconds=60)
    last = at(2024, 5, 17, 10)
    assert due(fast, last, at(2024, 5, 17, 10, 10, 45), catch_up=False)[0] == at(2024, 5, 17, 10, 10, 30)
    assert due(fast, last, at(2024, 5, 17, 10, 11, 16), catch_up=False)[0] is None


def test_due_created_is_a_baseline_and_a_later_last_fire_is_never_proposed_again() -> None:
    # Created at 10:30, daemon first looks at 12:10 with catch-up: the missed 11:00 and 12:00 coalesce.
    assert due(HOURLY, None, at(2024, 5, 17, 12, 10), True, created=at(2024, 5, 17, 10, 30)) == (
        at(2024, 5, 17, 12), at(2024, 5, 17, 13))
    # A last fire from before the source was re-created does not make old fires due.
    assert due(HOURLY, at(2024, 5, 1), at(2024, 5, 17, 12, 10), True, created=at(2024, 5, 17, 12, 5)) == (
        None, at(2024, 5, 17, 13))
    # Another daemon (clock ahead) already enqueued 13:00: this one must not offer 13:00 as next.
    assert due(HOURLY, at(2024, 5, 17, 13), at(2024, 5, 17, 12, 59, 58), True) == (None, at(2024, 5, 17, 14))


def test_due_cron_downtime() -> None:
    nightly = parse_schedule("0 3 * * *", "Europe/Dublin")
    last = at(2024, 5, 10, 2)  # 03:00 IST
    now = at(2024, 5, 15, 9)
    assert due(nightly, last, now, catch_up=True) == (at(2024, 5, 15, 2), at(2024, 5, 16, 2))
    assert due(nightly, last, now, catch_up=False) == (None, at(2024, 5, 16, 2))


# ---------------------------------------------------------------------------------------------------- jitter


def test_jitter_delay_is_deterministic_in_range_and_spread() -> None:
    fire = at(2024, 5, 17, 12)
    assert jitter_delay(fire, "players", 300) == jitter_delay(fire, "players", 300)
    assert jitter_delay(fire.astimezone(DUBLIN), "players", 300) == jitter_delay(fire, "players", 300)
    delays = [jitter_delay(fire + timedelta(hours=i), f"source{i % 7}", 300) for i in range(500)]
    assert all(0 <= d < 300 for d in delays)
    assert len(set(delays)) == 500 and min(delays) < 30 and max(delays) > 270  # spread over the range
    assert jitter_delay(fire, "a", 300) != jitter_delay(fire, "b", 300)
    assert jitter_delay(fire, "a", 0) == 0.0
    assert 0 <= jitter_delay(fire, "a", 1e-9) < 1e-9
    with pytest.raises(ValueError):
        jitter_delay(fire, "a", -1)


# ---------------------------------------------------------------------------------------------------- overdue


def test_overdue_interval() -> None:
    s = parse_schedule("every 1h")
    now = at(2024, 5, 17, 12)
    assert not overdue(s, at(2024, 5, 17, 10), now)  # exactly 2 intervals
    assert overdue(s, at(2024, 5, 17, 9, 59, 59), now)
    assert not overdue(s, at(2024, 5, 17, 11, 30), now)


def test_overdue_cron() -> None:
    nightly = parse_schedule("0 3 * * *")
    now = at(2024, 5, 17, 12)  # fires at or before now: 17th 03:00, 16th 03:00, ...
    assert not overdue(nightly, at(2024, 5, 16, 3), now)
    assert not overdue(nightly, at(2024, 5, 16, 4), now)  # missed only today's
    assert overdue(nightly, at(2024, 5, 16, 2, 59), now)
    assert overdue(nightly, at(2024, 5, 1), now)


def test_overdue_never_succeeded() -> None:
    s = parse_schedule("every 1h")
    assert not overdue(s, None, at(2024, 5, 17, 12))  # no first_seen: cannot tell
    seen = at(2024, 5, 17, 10, 30)
    assert not overdue(s, None, at(2024, 5, 17, 11, 59, 59), first_seen=seen)  # only 11:00 has passed
    assert overdue(s, None, at(2024, 5, 17, 12), first_seen=seen)  # 11:00 and 12:00
    nightly = parse_schedule("0 3 * * *")
    assert not overdue(nightly, None, at(2024, 5, 18, 2), first_seen=at(2024, 5, 16, 12))
    assert overdue(nightly, None, at(2024, 5, 18, 3), first_seen=at(2024, 5, 16, 12))


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "message"), [
    ("0 3 * *", "'0 3 * *' is not a valid cron expression: expected 5 fields (minute hour day month weekday), got 4"),
    ("0 0 3 * * *", "'0 0 3 * * *' is not a valid cron expression: expected 5 fields (minute hour day month weekday), "
                    "got 6; seconds and years are not supported"),
    ("61 * * * *", "'61 * * * *' is not a valid cron expression: minute value 61 is out of range 0-59"),
    ("0 24 * * *", "hour value 24 is out of range 0-23"),
    ("0 0 0 * *", "day value 0 is out of range 1-31"),
    ("0 0 * 13 *", "month value 13 is out of range 1-12"),
    ("0 0 * * 8", "weekday value 8 is out of range 0-7"),
    ("0 0 * * funday", "weekday field value 'funday' is not understood"),
    ("*/0 * * * *", "minute step '0' in '*/0' must be a positive whole number"),
    ("30-10 * * * *", "minute range '30-10' goes backwards"),
    ("1,,2 * * * *", "has an empty item"),
    ("0 0 30 2 *", "it never fires"),
    ("every 0m", "'every 0m' is not a valid interval: the interval must be positive"),
    ("every 12 hours", "'every 12 hours' is not a valid interval: use every <number><s|m|h|d>, e.g. every 12h"),
    ("every", "'every' is not a valid interval: the length is missing; use every <number><s|m|h|d>"),
    ("every 30m1h", "give each unit once, largest first"),
    ("every 400d", "the interval must be at most 366d"),
    ("every1h", "use every <number><s|m|h|d>"),
    ("", "the schedule is empty: use a 5-field cron expression"),
    ("   ", "the schedule is empty"),
])
def test_bad_schedules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_unknown_time_zone() -> None:
    with pytest.raises(ScheduleError, match=r"^unknown time zone 'Europe/Dublln'"):
        parse_schedule("every 12h", "Europe/Dublln")
    with pytest.raises(ScheduleError, match="unknown time zone"):
        parse_schedule("0 3 * * *", "")
    with pytest.raises(ScheduleError, match="unknown time zone"):
        parse_schedule("0 3 * * *", "../etc/passwd")


def test_naive_datetimes_are_refused() -> None:
    s = parse_schedule("every 1h")
    naive = datetime(2024, 5, 17, 12)
    for call in (lambda: s.next_fire(naive), lambda: s.last_fire(naive), lambda: s.fires_between(naive, naive),
                 lambda: due(s, None, naive, True), lambda: jitter_delay(naive, "a", 10),
                 lambda: overdue(s, naive, at(2024, 5, 17))):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_schedule_built_directly_is_validated() -> None:
    assert Schedule("every 12h", "interval", "UTC", 43200.0) == parse_schedule("every 12h")
    with pytest.raises(ScheduleError):
        Schedule("every 12h", "interval", "UTC", 60.0)
    with pytest.raises(ScheduleError):
        Schedule("0 3 * *", "cron", "UTC", None)
