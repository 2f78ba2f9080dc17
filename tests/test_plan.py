"""The day's budget (pure arithmetic) and how far back a run asks, without any server."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from jobs.day.plan import CATCH_UP_DAYS, next_midnight, plan_day, reach_for
from jobs.pipeline.smartup.errors import SmartUpQuotaSpent, SmartUpRefused
from jobs.pipeline.smartup.refusals import limits_spent, refusal_in
from jobs.pipeline.streams import STREAMS
from jobs.pipeline.streams.reach import DAY_SECONDS, Reach, date_windows, windows_for
from tests.helpers import TASHKENT, settings_from

TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)

EVERY_STREAM = ("products", "orders", "groups", "prices", "stock")


def reach(
    stream: str,
    *,
    watermark: date | None,
    last_sweep_at: datetime | None,
    days_back: int = 7,
    **options: Any,
) -> Reach:
    """``stream``'s reach on TODAY at NOW, a sweep due once a day (``options``: those of
    :func:`reach_for`, e.g. ``forced_days_back``, ``full``)."""
    return reach_for(
        STREAMS[stream].reach,
        today=TODAY,
        now=NOW,
        watermark=watermark,
        last_sweep_at=last_sweep_at,
        days_back=days_back,
        sweep_seconds=DAY_SECONDS,
        **options,
    )


CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "defaults, one filial": {"interval_seconds": 600, "filials": 1, "days_back": 7},
    "3 filials x 30 days x 60 s": {"interval_seconds": 60, "filials": 3, "days_back": 30},
    "20 product requests a day": {
        "interval_seconds": 600,
        "filials": 1,
        "days_back": 7,
        "limits_seen": {"reference": 20},
    },
}


# -- the planner against numbers worked out by hand ----------------------------------------
#
# Common to every case: a day is 86400 s; a pool's reserve is ceil(quota x 20 %); a run of a
# stream every I seconds is ceil(86400 / I) runs a day; a sweep (once a day, SYNC_SWEEP_SECONDS
# 86400) costs only what it asks beyond an incremental run. The planner looks for the
# shortest interval ("floor") at which the pool's day fits; a stream asked slower keeps its
# own cadence.
#
# A. defaults, one filial (interval 600 s, 7 days back):
#    reference pool (products): quota 100, reserve 20, budget 80. Products: 1 request a run,
#    a sweep is 1 too (the whole catalogue). 86400 / 600 = 144 runs > 80, so the floor:
#    ceil(86400 / I) <= 80 => I >= 86400 / 80 = 1080 (1079 s would be ceil(80.07) = 81 runs).
#    products: 1080 s, 80 requests a day.
#    documents pool (orders): quota 500, reserve 100, budget 400. Orders: 1 filial x 1 window
#    of 3 days = 1 a run; a sweep of 7 days is ceil(7 / 7) = 1 window, nothing extra.
#    144 runs x 1 = 144 <= 400: orders keep 600 s, 144 a day.
# B. 3 filials, 30 days back, interval 60 s:
#    orders: a run is 3 filials x 1 window = 3; a sweep 3 x ceil(30 / 7) = 3 x 5 = 15, that is
#    12 beyond a run. One sweep a day (12) is set aside first: 400 - 12 = 388 for the runs.
#    3 x ceil(86400 / I) <= 388 => ceil(86400 / I) <= 129 => I >= 86400 / 129 = 669.8: 670 s
#    (669 s: ceil(129.1) = 130 runs, 390 > 388). A day: 129 runs x 3 + 1 sweep x 12 = 399.
#    products: as in A (1 request a run, whatever the filials): 1080 s, 80 a day.
# C. SmartUp says the reference quota is 20 (defaults otherwise):
#    reserve ceil(20 x 0.2) = 4, budget 16: ceil(86400 / I) <= 16 => I >= 5400 s (5399 s
#    would be 17 runs). products: 5400 s, 16 a day. Orders as in A: 600 s, 144.
# D. every stream enabled, defaults otherwise:
#    reference pool, budget 80, of which 1 a day is stock's warehouses: 79 for the runs of
#    products (asked 600 s, 1 a run), prices (asked 3600 s, 2 a run) and groups (asked
#    21600 s, 1 a run). Below a floor of 3600 s, prices and groups keep their cadence:
#    prices 24 x 2 = 48, groups 4 x 1 = 4, leaving 79 - 52 = 27 for products:
#    ceil(86400 / I) <= 27 => I >= 3200 s (3199 s: 28 runs). The pool: 27 + 48 + 4 + 1 = 80.
#    documents pool, budget 400: orders 144 (as in A) and stock (1 filial x 1 condition = 1 a
#    run) every 600 s, 144: 288 <= 400, both at 600 s.
BY_HAND: dict[str, tuple[dict[str, Any], dict[str, tuple[int, int]], dict[str, int]]] = {
    # case: (plan_day's arguments beyond the defaults, {stream: (interval used, requests a
    # day)}, {pool: requests a day})
    "A. defaults, one filial": (
        {},
        {"products": (1080, 80), "orders": (600, 144)},
        {"reference": 80, "documents": 144},
    ),
    "B. 3 filials x 30 days x 60 s": (
        {"interval_seconds": 60, "filials": 3, "days_back": 30},
        {"products": (1080, 80), "orders": (670, 399)},
        {"reference": 80, "documents": 399},
    ),
    "C. a reference quota of 20": (
        {"limits_seen": {"reference": 20}},
        {"products": (5400, 16), "orders": (600, 144)},
        {"reference": 16, "documents": 144},
    ),
    "D. every stream enabled": (
        {
            "streams": [
                STREAMS[name] for name in ("products", "orders", "groups", "prices", "stock")
            ]
        },
        {
            "products": (3200, 27),
            "orders": (600, 144),
            "groups": (21600, 4),
            "prices": (3600, 48),
            "stock": (600, 144),
        },
        {"reference": 80, "documents": 288},
    ),
}


@pytest.mark.parametrize("case", list(BY_HAND))
def test_the_plan_matches_the_numbers_worked_out_by_hand(case):
    arguments, streams, pools = BY_HAND[case]
    defaults: dict[str, Any] = {
        "interval_seconds": 600,
        "filials": 1,
        "days_back": 7,
        "sweep_seconds": DAY_SECONDS,
        "reserve_percent": 20,
    }
    day = plan_day(**{**defaults, **arguments})
    assert {
        name: (plan.interval_used, plan.requests_per_day) for name, plan in day.items()
    } == streams
    assert {name: pool.requests_per_day for name, pool in day.pools.items()} == pools
    assert all(pool.fits for pool in day.pools.values())


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
@pytest.mark.parametrize("reserve_percent", [0, 20, 50, 90])
@pytest.mark.parametrize("sweep_seconds", [3600, 6 * 3600, DAY_SECONDS, 7 * DAY_SECONDS])
def test_the_plan_never_exceeds_quota_minus_reserve(name, reserve_percent, sweep_seconds):
    plans = plan_day(
        **CONFIGURATIONS[name], sweep_seconds=sweep_seconds, reserve_percent=reserve_percent
    )
    for plan in plans.values():
        assert plan.sweep_used >= sweep_seconds
        assert plan.fits, plan
        assert plan.requests_per_day <= plan.quota - plan.reserve
        assert plan.interval_used >= plan.interval_asked
        # as fresh as the quota allows: one second less would not fit (unless asked for)
        if plan.interval_used > plan.interval_asked:
            faster = math.ceil(DAY_SECONDS / (plan.interval_used - 1))
            sweeps_faster = min(faster, math.ceil(DAY_SECONDS / plan.sweep_used))
            assert faster * plan.requests_per_run + sweeps_faster * max(
                plan.requests_per_sweep - plan.requests_per_run, 0
            ) > (plan.quota - plan.reserve)


@pytest.mark.parametrize("interval", [60, 61, 300, 599, 600, 601, 900, 3600, 86400])
@pytest.mark.parametrize("filials", [1, 2, 5, 10])
@pytest.mark.parametrize("days_back", [1, 7, 8, 30, 90])
@pytest.mark.parametrize("quota", [5, 20, 100, 500, 1000])
def test_any_configuration_stays_within_budget_when_it_can(interval, filials, days_back, quota):
    plans = plan_day(
        interval_seconds=interval,
        filials=filials,
        days_back=days_back,
        sweep_seconds=DAY_SECONDS,
        reserve_percent=20,
        limits_seen={"reference": quota, "documents": quota},
    )
    for plan in plans.values():
        one_day = plan.requests_per_sweep  # one run a day, that run a sweep
        if one_day <= plan.quota - plan.reserve:
            assert plan.fits and plan.requests_per_day <= plan.quota - plan.reserve
        else:
            assert not plan.fits and plan.interval_used == DAY_SECONDS


def test_the_defaults_keep_orders_at_600_s_and_stretch_products():
    plans = plan_day(
        interval_seconds=600, filials=1, days_back=7, sweep_seconds=DAY_SECONDS, reserve_percent=20
    )
    assert plans["orders"].interval_used == 600 and plans["orders"].requests_per_run == 1
    assert plans["orders"].requests_per_day == 144
    assert plans["products"].interval_used == 1080 and plans["products"].requests_per_day == 80
    tiny = plan_day(
        interval_seconds=600,
        filials=1,
        days_back=7,
        sweep_seconds=DAY_SECONDS,
        reserve_percent=20,
        limits_seen={"reference": 20},
    )
    assert tiny["products"].interval_used == 5400 and tiny["products"].requests_per_day == 16


def test_the_plan_follows_the_settings():
    settings = settings_from(
        {
            "DATABASE_URL": "sqlite:///x.sqlite3",
            "SMARTUP_BASE_URL": "https://smartup.example",
            "SMARTUP_BASIC_USER": "u",
            "SMARTUP_BASIC_PASS": "secret",
            "SMARTUP_FILIAL_ID": "1,2,3",
            "SYNC_ORDERS_DAYS_BACK": "30",
            "SYNC_INTERVAL_SECONDS": "60",
        }
    )
    from jobs.day.plan import plan_for

    orders = plan_for(settings)["orders"]
    assert (orders.requests_per_run, orders.requests_per_sweep) == (3, 15)
    assert orders.interval_used == 670 and orders.requests_per_day == 399


def test_last_n_days_is_n_calendar_days_and_seven_is_one_window():
    first = reach("orders", watermark=None, last_sweep_at=None)
    assert first == Reach(TODAY - timedelta(days=6), TODAY, True)
    assert first.first is not None
    assert len(date_windows(first.first, first.last)) == 1 == windows_for(7)
    settings = settings_from(
        {
            "DATABASE_URL": "sqlite:///x.sqlite3",
            "SMARTUP_BASE_URL": "https://smartup.example",
            "SMARTUP_BASIC_USER": "u",
            "SMARTUP_BASIC_PASS": "secret",
            "SMARTUP_FILIAL_ID": "1,2",
        }
    )
    requests = STREAMS["orders"].requests(settings, {"1": first, "2": first})
    assert [r.filial_id for r in requests] == ["1", "2"]
    assert {r.days for r in requests} == {(TODAY - timedelta(days=6), TODAY)}


def test_an_incremental_run_asks_from_the_watermark_minus_one_day():
    swept = NOW - timedelta(hours=2)
    assert reach("orders", watermark=TODAY, last_sweep_at=swept) == Reach(
        TODAY - timedelta(days=1), TODAY, False
    )
    assert reach("products", watermark=TODAY, last_sweep_at=swept) == Reach(
        TODAY - timedelta(days=1), TODAY, False
    )
    # a sweep is due a day after the last one: the whole window (or the catalogue)
    old = NOW - timedelta(days=1)
    assert reach("orders", watermark=TODAY, last_sweep_at=old).sweep
    assert reach("products", watermark=TODAY, last_sweep_at=old).first is None
    # forced
    forced = reach("orders", watermark=TODAY, last_sweep_at=swept, forced_days_back=30)
    assert forced == Reach(TODAY - timedelta(days=29), TODAY, True)
    products = reach("products", watermark=TODAY, last_sweep_at=swept, forced_days_back=30)
    assert products.first == TODAY - timedelta(days=1)  # days back are an orders matter
    full = reach("products", watermark=TODAY, last_sweep_at=swept, full=True)
    assert full == Reach(None, TODAY, True)


def test_after_an_outage_a_run_catches_up_at_most_90_days():
    swept = NOW - timedelta(hours=1)
    twenty = reach("orders", watermark=TODAY - timedelta(days=20), last_sweep_at=swept)
    assert twenty == Reach(TODAY - timedelta(days=21), TODAY, False)
    assert twenty.first is not None
    assert len(date_windows(twenty.first, twenty.last)) == 4
    # a sweep due after the outage still reaches back to the watermark
    due = reach("orders", watermark=TODAY - timedelta(days=20), last_sweep_at=None)
    assert due.first == TODAY - timedelta(days=21) and due.sweep
    ancient = reach("orders", watermark=TODAY - timedelta(days=400), last_sweep_at=swept)
    assert ancient.first == TODAY - timedelta(days=CATCH_UP_DAYS - 1)
    # products too long for one date-filtered request: the whole catalogue, one request
    products = reach("products", watermark=TODAY - timedelta(days=20), last_sweep_at=swept)
    assert products == Reach(None, TODAY, True)


def test_the_quota_resets_at_the_next_midnight_company_time():
    reset = next_midnight(datetime(2026, 11, 29, 20, 0, tzinfo=UTC), TASHKENT)
    assert reset == datetime(2026, 12, 1, 0, 0, tzinfo=TASHKENT)  # 20:00 UTC is 01:00 there


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, "Превышен дневной лимит запросов (100)", SmartUpQuotaSpent),
        (200, "Дневной лимит запросов исчерпан", SmartUpQuotaSpent),
        (200, '{"error": "Daily request limit exceeded"}', SmartUpQuotaSpent),
        (200, '{"inventory": [], "limits": {"left_limit_quant": "0"}}', SmartUpQuotaSpent),
        (429, "Слишком много запросов, повторите попытку позже", None),
        (503, "Сервис временно недоступен", None),
        (200, "<html><body>502 Bad Gateway</body></html>", None),
        (200, '{"inventory": [], "limits": {"left_limit_quant": "5"}}', None),
    ],
)
def test_quota_spent_is_recognised_by_the_documented_rule(status, body, expected):
    found = refusal_in(body.encode(), stream="products", status=status)
    if expected is None:
        assert found is None
    else:
        assert isinstance(found, expected)
        assert str(found) == "SmartUp daily quota for products is spent"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"error_code": "A02-24-048", "message": "Организация не совпадает"}',
            "SmartUp A02-24-048: Организация не совпадает",
        ),
        (
            '{"errors": [{"code": "A02-01-001", "message": "Нет доступа"}, '
            '{"code": "A02-01-002", "message": "Неверный фильтр"}]}',
            "SmartUp A02-01-001: Нет доступа; A02-01-002: Неверный фильтр",
        ),
        ("Организация не совпадает", "SmartUp: Организация не совпадает"),
    ],
)
def test_smartups_own_errors_in_a_200_carry_its_code_and_message(body, message):
    found = refusal_in(body.encode(), stream="orders", status=200)
    assert isinstance(found, SmartUpRefused) and str(found) == message


def test_limits_spent_only_at_zero():
    assert limits_spent({"left_limit_quant": "0"})
    assert not limits_spent({"left_limit_quant": "1"})
    assert not limits_spent(None) and not limits_spent({})


def test_a_body_nested_past_what_json_reads_states_no_refusal():
    body = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert refusal_in(body.encode(), stream="orders", status=200) is None


# -- every stream enabled: the plan shares each quota pool -------------------------------


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
@pytest.mark.parametrize("reserve_percent", [0, 20, 50])
@pytest.mark.parametrize("sweep_seconds", [3600, DAY_SECONDS, 7 * DAY_SECONDS])
def test_with_every_stream_enabled_no_pool_is_exceeded(name, reserve_percent, sweep_seconds):
    streams = [STREAMS[s] for s in EVERY_STREAM]
    day = plan_day(
        **CONFIGURATIONS[name],
        sweep_seconds=sweep_seconds,
        reserve_percent=reserve_percent,
        streams=streams,
    )
    assert set(day) == set(EVERY_STREAM)
    assert {p.pool for p in day.values()} == {"reference", "documents"}
    for pool in day.pools.values():
        members = [plan for plan in day.values() if plan.pool == pool.name]
        for plan in members:
            assert plan.interval_asked <= plan.interval_used <= DAY_SECONDS
        warehouses = 1 if pool.name == "reference" else 0  # stock's, once a day
        spent = sum(plan.requests_per_day for plan in members) + warehouses
        assert spent == pool.requests_per_day <= pool.quota - pool.reserve, pool
        assert pool.fits


def test_a_pool_slows_its_fastest_streams_first():
    streams = [STREAMS[s] for s in EVERY_STREAM]
    day = plan_day(
        interval_seconds=600,
        filials=1,
        days_back=7,
        sweep_seconds=DAY_SECONDS,
        reserve_percent=20,
        streams=streams,
    )
    reference = day.pools["reference"]
    assert (reference.quota, reference.reserve) == (100, 20)
    # asked: products every 600 s, prices (2 requests) hourly, groups every 6 hours, and
    # stock's warehouses once a day: 197 a day, too many for 80. Groups and prices keep
    # their cadence; products, the fastest, run at the shortest interval that fits
    products, prices, groups = day["products"], day["prices"], day["groups"]
    assert (prices.interval_used, groups.interval_used) == (3600, 6 * 3600)
    assert prices.requests_per_day + groups.requests_per_day == 48 + 4
    assert products.requests_per_day == 80 - 52 - 1
    assert math.ceil(DAY_SECONDS / (products.interval_used - 1)) > 80 - 52 - 1
    assert reference.requests_per_day == 80
    # documents: orders and stock both every 600 s, 288 a day, within 400
    assert day["orders"].interval_used == day["stock"].interval_used == 600
    assert day.pools["documents"].requests_per_day == 288


def test_the_default_streams_plan_as_the_seed_did():
    default = plan_day(
        interval_seconds=600, filials=1, days_back=7, sweep_seconds=DAY_SECONDS, reserve_percent=20
    )
    assert set(default) == {"products", "orders"}
    assert set(default.pools) == {"reference", "documents"}
    assert default.pools["reference"].requests_per_day == default["products"].requests_per_day


def test_windows_follow_the_day_range_limit_last_seen():
    streams = [STREAMS["orders"]]
    seven = plan_day(
        interval_seconds=600,
        filials=1,
        days_back=30,
        sweep_seconds=DAY_SECONDS,
        reserve_percent=20,
        streams=streams,
    )
    thirty = plan_day(
        interval_seconds=600,
        filials=1,
        days_back=30,
        sweep_seconds=DAY_SECONDS,
        reserve_percent=20,
        streams=streams,
        day_range_limits={"orders": 30},
    )
    assert (seven["orders"].requests_per_sweep, thirty["orders"].requests_per_sweep) == (5, 1)
    first = reach("orders", watermark=None, last_sweep_at=None, days_back=30)
    settings = settings_from(
        {
            "DATABASE_URL": "sqlite:///x.sqlite3",
            "SMARTUP_BASE_URL": "https://smartup.example",
            "SMARTUP_BASIC_USER": "u",
            "SMARTUP_BASIC_PASS": "secret",
        }
    )
    assert len(STREAMS["orders"].requests(settings, {"": first}, day_range_limit=30)) == 1
    assert len(STREAMS["orders"].requests(settings, {"": first})) == 5


def test_at_or_below_the_reserve_is_one_rule():
    from jobs.day.plan import at_or_below_reserve

    assert at_or_below_reserve(20, 20) and at_or_below_reserve(19, 20)
    assert not at_or_below_reserve(21, 20) and not at_or_below_reserve(None, 20)
