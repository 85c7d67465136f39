"""The one clock: a frozen moment, "today" where the organisation is, naive moments taken as UTC."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from core import clock

UTC = dt.UTC


@pytest.fixture
def zone():
    """Set the organisation's zone for one test, and put UTC back afterwards."""
    previous = clock.zone().key
    yield clock.set_zone
    clock.set_zone(previous)


def test_a_test_can_freeze_the_time_and_it_comes_back_afterwards():
    moment = dt.datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with clock.frozen_at(moment) as frozen:
        assert frozen == moment
        assert clock.now() == moment
        assert clock.now().tzinfo is not None
    assert clock.now() != moment and clock.now().tzinfo == UTC


def test_now_is_aware_utc():
    now = clock.now()
    assert now.utcoffset() == dt.timedelta(0)


def test_east_of_utc_it_is_already_tomorrow_just_before_utc_midnight(zone):
    zone("Asia/Tokyo")  # UTC+9
    with clock.frozen_at(dt.datetime(2026, 6, 30, 23, 30, tzinfo=UTC)):
        assert clock.today() == dt.date(2026, 7, 1)
        assert clock.local(clock.now()).tzinfo == ZoneInfo("Asia/Tokyo")


def test_west_of_utc_it_is_still_yesterday_just_after_utc_midnight(zone):
    zone("America/St_Lucia")  # UTC-4
    with clock.frozen_at(dt.datetime(2026, 7, 1, 2, 0, tzinfo=UTC)):
        assert clock.today() == dt.date(2026, 6, 30)
    with clock.frozen_at(dt.datetime(2026, 7, 1, 4, 0, tzinfo=UTC)):
        assert clock.today() == dt.date(2026, 7, 1)


def test_in_utc_today_is_the_utc_date(zone):
    zone("UTC")
    with clock.frozen_at(dt.datetime(2026, 7, 1, 0, 0, tzinfo=UTC)):
        assert clock.today() == dt.date(2026, 7, 1)


def test_a_naive_moment_from_sqlite_is_taken_as_utc():
    naive = dt.datetime(2026, 1, 15, 12, 0)
    assert clock.as_utc(naive) == dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    aware = dt.datetime(2026, 1, 15, 8, 0, tzinfo=ZoneInfo("America/St_Lucia"))
    assert clock.as_utc(aware) == dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert clock.as_utc(aware).tzinfo == UTC


def test_freezing_a_naive_moment_freezes_that_moment_in_utc():
    with clock.frozen_at(dt.datetime(2026, 1, 15, 12, 0)):
        assert clock.now() == dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
