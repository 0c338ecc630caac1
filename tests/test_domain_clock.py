"""Collection time vs. real time (compressed demo time) and local wall time vs. UTC (DST gaps, folds)."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from domain.clock import BEGIN, END, CollectionClock
from domain.localtime import describe, is_valid_zone, local_to_utc, start_of_local_day, to_local

EPOCH = datetime(2026, 3, 1, 1, 2, 3, 456_789, tzinfo=UTC)
PROFILE = settings(max_examples=200, deadline=None)
SPEEDS = st.sampled_from([0.5, 1.0, 7.0, 60.0, 86.4, 600.0, 3600.0])


# ---------------------------------------------------------------- compressed time
def test_one_collection_day_per_minute():
    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=EPOCH, seconds_per_day=60)
    assert clock.scale == 1440
    assert clock.now(EPOCH) == EPOCH
    assert clock.now(EPOCH + timedelta(seconds=60)) == EPOCH + timedelta(days=1)
    assert clock.now(EPOCH + timedelta(seconds=30)) == EPOCH + timedelta(hours=12)
    assert clock.now(EPOCH + timedelta(minutes=45)) == EPOCH + timedelta(days=45)
    assert clock.real_delay(EPOCH, EPOCH + timedelta(days=1)) == timedelta(seconds=60)
    assert clock.real_delay(EPOCH + timedelta(seconds=30), EPOCH + timedelta(days=1)) == timedelta(seconds=30)
    assert clock.real_delay(EPOCH + timedelta(seconds=90), EPOCH + timedelta(days=1)) == timedelta(0)


def test_virtual_epoch_can_differ_from_the_real_one():
    start = datetime(2026, 3, 25, tzinfo=UTC)
    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=start, seconds_per_day=10)
    assert clock.now(EPOCH) == start
    assert clock.now(EPOCH + timedelta(seconds=65)) == start + timedelta(days=6, hours=12)
    assert clock.real_delay(EPOCH, start + timedelta(days=30)) == timedelta(seconds=300)


@pytest.mark.parametrize("seconds_per_day", [None, 0])
def test_real_time_when_not_compressed(seconds_per_day):
    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=datetime(2030, 1, 1, tzinfo=UTC),
                            seconds_per_day=seconds_per_day)
    later = EPOCH + timedelta(days=3, microseconds=7)
    assert clock.scale == 1.0 and clock.now(later) == later
    assert clock.real_delay(EPOCH, later) == later - EPOCH
    assert clock.real_delay(later, EPOCH) == timedelta(0)


def test_clock_survives_serialisation():
    """The clock travels in workflow state across continue-as-new."""
    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=EPOCH, seconds_per_day=86.4)
    copy = CollectionClock.model_validate_json(clock.model_dump_json())
    probe = EPOCH + timedelta(seconds=1234, microseconds=5)
    assert copy.now(probe) == clock.now(probe)


@PROFILE
@given(spd=SPEEDS, offset=st.integers(0, 10**12), gap=st.integers(-10**10, 10**11), later=st.integers(0, 10**9))
def test_compressed_time_moves_forward_and_delays_map_back(spd, offset, gap, later):
    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=EPOCH, seconds_per_day=spd)
    real_now = EPOCH + timedelta(microseconds=offset)
    now = clock.now(real_now)
    assert clock.now(real_now + timedelta(microseconds=later)) >= now
    target = now + timedelta(microseconds=gap)
    assume(target < END)   # inside the supported calendar (collection time stops at its end)
    delay = clock.real_delay(real_now, target)
    assert delay >= timedelta(0)
    if gap <= 0:
        assert delay == timedelta(0)
    else:
        # Within rounding (one real microsecond is `scale` collection microseconds).
        assert abs(delay - timedelta(microseconds=gap) / clock.scale) <= timedelta(microseconds=1)
        assert abs(clock.now(real_now + delay) - target) <= timedelta(microseconds=clock.scale + 1)


@settings(max_examples=100, deadline=None)
@example(spd=1.0, offset=0, gap=1)
@example(spd=60.0, offset=0, gap=33_121)
@given(spd=SPEEDS, offset=st.integers(0, 10**12), gap=st.integers(1, 10**11))
def test_waiting_real_delay_always_reaches_the_target(spd, offset, gap):
    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=EPOCH, seconds_per_day=spd)
    real_now = EPOCH + timedelta(microseconds=offset)
    target = clock.now(real_now) + timedelta(microseconds=gap)
    assume(target < END)
    delay = clock.real_delay(real_now, target)
    assert delay > timedelta(0)
    assert clock.now(real_now + delay) >= target


@settings(max_examples=200, deadline=None)
@example(spd=2.0, back=timedelta(days=20))                  # seen: a payment received 20 days before a demo start
@example(spd=0.01, back=timedelta(hours=3))
@example(spd=60.0, back=timedelta(days=2000 * 365))
@given(spd=SPEEDS, back=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2000 * 365)))
def test_an_instant_before_the_start_maps_back_no_further_than_the_calendar(spd, back):
    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=EPOCH, seconds_per_day=spd)
    then = clock.now(EPOCH - back)
    assert BEGIN <= then <= EPOCH
    reach = back.total_seconds() * clock.scale            # collection seconds before the start
    if reach < (EPOCH - BEGIN).total_seconds():
        assert abs((EPOCH - then).total_seconds() - reach) <= 1e-6 * max(reach, 1.0)
    else:
        assert then == BEGIN
    assert clock.now(EPOCH - back - timedelta(days=1)) <= then      # still monotonic


def test_real_time_stays_within_the_calendar_too():
    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=EPOCH)
    assert clock.now(datetime(1900, 1, 1, tzinfo=UTC)) == BEGIN
    assert clock.now(datetime(2200, 1, 1, tzinfo=UTC)) == END


# ---------------------------------------------------------------- local wall time
def wall(instant: datetime, tz: str) -> datetime:
    return to_local(instant, tz).replace(tzinfo=None)


def test_new_york_spring_forward_gap_moves_to_the_end_of_the_gap():
    utc = local_to_utc(datetime(2026, 3, 8, 2, 30), "America/New_York")
    assert utc == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert wall(utc, "America/New_York") == datetime(2026, 3, 8, 3, 0)


def test_new_york_fall_back_fold_takes_the_first_occurrence():
    utc = local_to_utc(datetime(2026, 11, 1, 1, 30), "America/New_York")
    assert utc == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)                 # 01:30 EDT, not 01:30 EST
    assert local_to_utc(datetime(2026, 11, 1, 2, 0), "America/New_York") == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)


def test_shanghai_has_no_dst():
    for local in (datetime(2026, 1, 15, 9), datetime(2026, 3, 8, 2, 30), datetime(2026, 7, 15, 9),
                  datetime(2026, 11, 1, 1, 30)):
        assert local_to_utc(local, "Asia/Shanghai") == (local - timedelta(hours=8)).replace(tzinfo=UTC)
    assert to_local(datetime(2026, 7, 1, 16, tzinfo=UTC), "Asia/Shanghai").utcoffset() == timedelta(hours=8)


def test_start_of_local_day_and_description():
    assert start_of_local_day(date(2026, 3, 31), "Asia/Shanghai") == datetime(2026, 3, 30, 16, tzinfo=UTC)
    assert start_of_local_day(date(2026, 3, 31), "Asia/Shanghai", time(23, 59)) == \
        datetime(2026, 3, 31, 15, 59, tzinfo=UTC)
    assert describe(datetime(2026, 3, 31, 1, tzinfo=UTC), "Asia/Shanghai") == "2026-03-31 09:00 Asia/Shanghai"


@pytest.mark.parametrize(("name", "valid"), [("Asia/Shanghai", True), ("America/New_York", True),
                                             ("Mars/Olympus", False), ("", False), (None, False)])
def test_zone_names(name, valid):
    assert is_valid_zone(name) is valid


ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Shanghai"]
TRANSITION_DAYS = [date(2026, 3, 8), date(2026, 11, 1), date(2026, 3, 29), date(2026, 10, 25), date(2026, 4, 5),
                   date(2026, 10, 4)]
local_minutes = st.one_of(
    st.sampled_from(TRANSITION_DAYS).map(lambda d: datetime.combine(d, time(0, 0))),
    st.integers(0, 364).map(lambda n: datetime(2026, 1, 1) + timedelta(days=n)),
).flatmap(lambda d: st.integers(0, 24 * 60 - 1).map(lambda m: d + timedelta(minutes=m)))


@settings(max_examples=300, deadline=None)
@given(local=local_minutes, tz=st.sampled_from(ZONES))
def test_local_to_utc_is_the_first_instant_at_or_after_the_wall_time(local, tz):
    utc = local_to_utc(local, tz)
    assert utc.utcoffset() == timedelta(0)
    assert wall(utc, tz) >= local
    assert wall(utc - timedelta(microseconds=1), tz) < local        # minimal: nothing earlier qualifies
    if wall(utc, tz) != local:                                        # only inside a spring-forward gap
        assert wall(utc, tz) - local <= timedelta(hours=1)   # no gap in these zones is longer
        for fold in (0, 1):   # the wall time really does not exist in this zone
            assert wall(local.replace(tzinfo=ZoneInfo(tz), fold=fold).astimezone(UTC), tz) != local


@settings(max_examples=200, deadline=None)
@given(a=local_minutes, b=local_minutes, tz=st.sampled_from(ZONES))
def test_local_to_utc_preserves_order(a, b, tz):
    if a <= b:
        assert local_to_utc(a, tz) <= local_to_utc(b, tz)


def test_gap_with_seconds_lands_on_the_end_of_the_gap():
    assert local_to_utc(datetime(2026, 3, 8, 2, 30, 30), "America/New_York") == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


def test_compressed_time_stops_at_the_end_of_the_supported_calendar():
    from domain.clock import END

    clock = CollectionClock(real_epoch=EPOCH, virtual_epoch=EPOCH, seconds_per_day=0.01)
    ten_years_later = EPOCH + timedelta(days=3650)          # 3.15e8 collection days: far past 9999
    assert clock.now(ten_years_later) == END and clock.at_end(ten_years_later)
    assert clock.real_delay(EPOCH, END + timedelta(days=1)) == clock.real_delay(EPOCH, END)
    assert not clock.at_end(EPOCH)
