"""Sealed days (``jobs/day/sealing.py``), worked by hand, and where the state keeps them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

import pytest

from jobs.day.sealing import first_day_to_ask, newest_ended_day, sealed_after
from jobs.day.state import advance_watermark, record_sealed, sealed_through, stream_state
from jobs.models import open_database
from jobs.settings import SettingsError
from tests.helpers import TASHKENT, settings_from

TODAY = date(2026, 12, 7)
YESTERDAY = TODAY - timedelta(days=1)
BEFORE_YESTERDAY = TODAY - timedelta(days=2)
CATCH_UP_FIRST = TODAY - timedelta(days=89)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock(hour, minute), tzinfo=TASHKENT)


def sealed(
    sealed_through: date | None, first: date | None, last: date, when: datetime
) -> date | None:
    return sealed_after(
        sealed_through=sealed_through,
        first=first,
        last=last,
        requested_at=when,
        tz=TASHKENT,
        seal_minutes=15,
    )


def test_a_run_at_15_00_after_a_sealed_yesterday_asks_for_today_only():
    first = first_day_to_ask(sealed_through=YESTERDAY, today=TODAY, catch_up_first=CATCH_UP_FIRST)
    assert first == TODAY
    # and what it asked (today, at 15:00) seals nothing new: today has not ended
    assert sealed(YESTERDAY, TODAY, TODAY, at(TODAY, 15)) == YESTERDAY


def test_the_first_run_after_midnight_and_the_margin_asks_yesterday_and_today_once():
    # the last run of yesterday, at 23:50, asked yesterday alone: it sealed the day before
    assert sealed(BEFORE_YESTERDAY, YESTERDAY, YESTERDAY, at(YESTERDAY, 23, 50)) == BEFORE_YESTERDAY
    first = first_day_to_ask(
        sealed_through=BEFORE_YESTERDAY, today=TODAY, catch_up_first=CATCH_UP_FIRST
    )
    assert (first, TODAY) == (YESTERDAY, TODAY)  # yesterday and today
    # asked at 00:20 (past the 15 minutes), it seals yesterday ...
    after = sealed(BEFORE_YESTERDAY, YESTERDAY, TODAY, at(TODAY, 0, 20))
    assert after == YESTERDAY
    # ... so the next run asks for today alone
    assert (
        first_day_to_ask(sealed_through=after, today=TODAY, catch_up_first=CATCH_UP_FIRST) == TODAY
    )


def test_a_request_at_00_10_with_a_15_minute_margin_does_not_seal_yesterday():
    assert sealed(BEFORE_YESTERDAY, YESTERDAY, TODAY, at(TODAY, 0, 10)) == BEFORE_YESTERDAY
    assert (
        sealed(
            BEFORE_YESTERDAY,
            YESTERDAY,
            TODAY,
            at(
                TODAY,
                0,
                14,
            ),
        )
        == BEFORE_YESTERDAY
    )
    assert sealed(BEFORE_YESTERDAY, YESTERDAY, TODAY, at(TODAY, 0, 15)) == YESTERDAY  # exactly
    # so the next run asks yesterday again
    assert (
        first_day_to_ask(
            sealed_through=BEFORE_YESTERDAY, today=TODAY, catch_up_first=CATCH_UP_FIRST
        )
        == YESTERDAY
    )


def test_the_margin_is_the_setting_and_zero_seals_at_midnight():
    request = at(TODAY, 0, 30)
    assert newest_ended_day(request, tz=TASHKENT, seal_minutes=0) == YESTERDAY
    assert newest_ended_day(request, tz=TASHKENT, seal_minutes=30) == YESTERDAY
    assert newest_ended_day(request, tz=TASHKENT, seal_minutes=31) == BEFORE_YESTERDAY
    assert newest_ended_day(at(TODAY, 0, 0), tz=TASHKENT, seal_minutes=0) == YESTERDAY
    with pytest.raises(ValueError, match="seal_minutes"):
        newest_ended_day(request, tz=TASHKENT, seal_minutes=1441)
    with pytest.raises(ValueError, match="aware"):
        newest_ended_day(request.replace(tzinfo=None), tz=TASHKENT, seal_minutes=15)


def test_the_company_day_counts_not_the_utc_day():
    # 19:20 UTC on the 6th is 00:20 on the 7th in Tashkent: the 6th has ended there
    request = datetime(2026, 12, 6, 19, 20, tzinfo=UTC)
    assert newest_ended_day(request, tz=TASHKENT, seal_minutes=15) == date(2026, 12, 6)
    assert newest_ended_day(request, tz=UTC, seal_minutes=15) == date(2026, 12, 5)
    assert sealed(date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 7), request) == date(
        2026, 12, 6
    )
    # 19:05 UTC is 00:05 in Tashkent: inside the margin, the 6th is not sealed
    early = datetime(2026, 12, 6, 19, 5, tzinfo=UTC)
    assert sealed(date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 7), early) == date(
        2026, 12, 5
    )


def test_a_request_that_leaves_a_gap_does_not_seal_past_it():
    # sealed through the 1st; a request for the 4th..7th made on the 7th leaves the
    # 2nd and 3rd unsealed
    assert sealed(date(2026, 12, 1), date(2026, 12, 4), TODAY, at(TODAY, 12)) == date(2026, 12, 1)
    # starting the day after what is sealed, it seals through yesterday
    assert sealed(date(2026, 12, 1), date(2026, 12, 2), TODAY, at(TODAY, 12)) == YESTERDAY
    # nothing sealed yet: the first request (a sweep) seals what it covered that ended
    assert sealed(None, TODAY - timedelta(days=6), TODAY, at(TODAY, 12)) == YESTERDAY
    # the whole catalogue (no first day) seals every ended day
    assert sealed(date(2026, 11, 1), None, TODAY, at(TODAY, 12)) == YESTERDAY


def test_sealed_through_never_moves_back_and_an_unended_request_keeps_it():
    assert sealed(YESTERDAY, BEFORE_YESTERDAY, BEFORE_YESTERDAY, at(TODAY, 12)) == YESTERDAY
    assert sealed(None, TODAY, TODAY, at(TODAY, 12)) is None
    with pytest.raises(ValueError, match="after last"):
        sealed(None, TODAY, YESTERDAY, at(TODAY, 12))


def test_the_first_day_to_ask_stays_between_the_catch_up_bound_and_today():
    long_ago = TODAY - timedelta(days=200)
    assert (
        first_day_to_ask(sealed_through=long_ago, today=TODAY, catch_up_first=CATCH_UP_FIRST)
        == CATCH_UP_FIRST
    )
    assert (
        first_day_to_ask(sealed_through=None, today=TODAY, catch_up_first=CATCH_UP_FIRST)
        == CATCH_UP_FIRST
    )
    # sealed through today (a clock ahead): still asks today, never tomorrow
    assert (
        first_day_to_ask(sealed_through=TODAY, today=TODAY, catch_up_first=CATCH_UP_FIRST) == TODAY
    )
    with pytest.raises(ValueError, match="after today"):
        first_day_to_ask(sealed_through=None, today=TODAY, catch_up_first=TODAY + timedelta(days=1))


def test_sync_seal_minutes_defaults_to_15_and_is_bounded():
    base = {
        "DATABASE_URL": "postgresql://localhost/x",
        "SMARTUP_BASE_URL": "https://smartup.example",
        "SMARTUP_BASIC_USER": "u",
        "SMARTUP_BASIC_PASS": "p",
    }
    assert settings_from(base).sync_seal_minutes == 15
    assert settings_from({**base, "SYNC_SEAL_MINUTES": "0"}).sync_seal_minutes == 0
    assert settings_from({**base, "SYNC_SEAL_MINUTES": "1440"}).sync_seal_minutes == 1440
    for bad in ("-1", "1441", "quarter"):
        with pytest.raises(SettingsError, match="SYNC_SEAL_MINUTES") as refused:
            settings_from({**base, "SYNC_SEAL_MINUTES": bad})
        assert bad not in str(refused.value) and "\n" not in str(refused.value)


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request, sqlite_url):
    if request.param == "sqlite":
        return sqlite_url
    return request.getfixturevalue("pg")


def test_the_state_keeps_the_newest_sealed_day_beside_the_watermark(db_url):
    db = open_database(db_url)
    try:
        assert sealed_through("orders", "100") is None
        advance_watermark("orders", "100", TODAY)
        assert record_sealed("orders", "100", YESTERDAY) == YESTERDAY
        assert record_sealed("orders", "100", BEFORE_YESTERDAY) == YESTERDAY  # never back
        assert record_sealed("orders", "100", None) == YESTERDAY
        assert sealed_through("orders", "100") == YESTERDAY
        assert sealed_through("orders", "200") is None  # per filial
        assert record_sealed("products", None, BEFORE_YESTERDAY) == BEFORE_YESTERDAY
        assert sealed_through("products") == BEFORE_YESTERDAY
        state = stream_state("orders", "100")
        assert state is not None and state.watermark == TODAY  # the watermark is untouched
    finally:
        db.close()
