"""Sealed days and windows as wide as SmartUp allows, end to end: real PostgreSQL, the
simulator over loopback, each run's ``now`` moved by the test (no waiting).

- An incremental run asks from the first day not sealed: today alone once yesterday is
  sealed; the first run after midnight (and the margin) asks yesterday and today once.
- A change SmartUp dates on a day already sealed is missed by incremental runs and
  caught by the next sweep.
- Date windows follow the ``day_range_limit`` last seen on the export; a window refused as
  too long is asked again in the windows SmartUp allows, and the run succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any

import pytest

from jobs.day.plan import plan_for
from jobs.day.state import day_range_limits, stream_state
from jobs.models import Order, open_database
from jobs.run.sync import RunOutcome, RunRequest, run_sync
from jobs.simulator import SmartUpSimulator, generate_orders, generate_products
from tests.helpers import FAST_RETRY, PASSWORD, TASHKENT, TODAY, USER, settings_for

FILIALS = ("100", "200")
YESTERDAY = TODAY - timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock(hour, minute), tzinfo=TASHKENT)


def run(
    sim: SmartUpSimulator, url: str, now: datetime, *, periodic: bool = True, **options: Any
) -> RunOutcome:
    settings = options.pop("settings", {})
    outcome = run_sync(
        RunRequest(
            kind="orders",
            settings=settings_for(sim, url, smartup_filial_ids=FILIALS, **settings),
            periodic=periodic,
            now=now,
            today=now.astimezone(TASHKENT).date(),
            retry=FAST_RETRY,
            **options,
        )
    )
    assert outcome.status == "SUCCESS", outcome.error
    return outcome


def day_of(text: str) -> date:
    return datetime.strptime(text, "%d.%m.%Y").date()


def asked(sim: SmartUpSimulator, since: int = 0) -> list[tuple[str, date, date]]:
    """(filial, first day, last day) of every orders request from the ``since``-th on."""
    return [
        (
            r.headers["filial_id"],
            day_of(r.body["begin_modified_on"]),
            day_of(r.body["end_modified_on"]),
        )
        for r in sim.requests[since:]
        if r.endpoint == "orders"
    ]


def stored_ids() -> set[str]:
    return {order.source_external_id for order in Order.select()}


@pytest.fixture
def smartup(request: pytest.FixtureRequest) -> Iterator[SmartUpSimulator]:
    """Orders of the last 30 days up to yesterday, two filials; the day clock on
    yesterday (the tests' first runs happen then)."""
    limits = getattr(request, "param", None) or {}
    products = generate_products(20)
    orders = generate_orders(90, products=products, today=YESTERDAY, days=30, filial_ids=FILIALS)
    with SmartUpSimulator(
        products=products,
        orders=orders,
        user=USER,
        password=PASSWORD,
        today=YESTERDAY,
        day_range_limits=limits,
    ) as sim:
        yield sim


def test_runs_after_a_sealed_yesterday_ask_today_and_midnight_asks_yesterday_once(pg, smartup):
    run(smartup, pg, at(YESTERDAY, 9))  # the first run: a sweep of 7 days
    open_database(pg)
    assert stream_state("orders", "100").sealed_through == YESTERDAY - timedelta(days=1)  # type: ignore[union-attr]
    mark = len(smartup.requests)
    run(smartup, pg, at(YESTERDAY, 15))
    assert asked(smartup, mark) == [(f, YESTERDAY, YESTERDAY) for f in FILIALS]

    smartup.advance_day()  # midnight: today
    late = smartup.orders[0]["deal_id"]
    smartup.update_order(late, modified_on=YESTERDAY, note="late change")  # 23:58 yesterday
    mark = len(smartup.requests)
    run(smartup, pg, at(TODAY, 0, 10))  # inside the 15 minutes' margin: seals nothing
    run(smartup, pg, at(TODAY, 0, 20))  # past it: yesterday is sealed
    run(smartup, pg, at(TODAY, 0, 30))
    both = [(f, YESTERDAY, TODAY) for f in FILIALS]
    assert asked(smartup, mark) == [*both, *both, *((f, TODAY, TODAY) for f in FILIALS)]
    for filial in FILIALS:
        assert stream_state("orders", filial).sealed_through == YESTERDAY  # type: ignore[union-attr]
    assert Order.get(Order.source_external_id == late).raw["note"] == "late change"


def test_a_change_dated_on_a_sealed_day_is_caught_by_the_next_sweep(pg, smartup):
    run(smartup, pg, at(YESTERDAY, 9))  # a sweep: the day's sweep period starts
    smartup.advance_day()
    run(smartup, pg, at(TODAY, 0, 20))  # seals yesterday
    # SmartUp commits a change dated yesterday only now, later than the margin allowed
    late = next(o for o in smartup.orders if day_of(o["deal_time"][:10]) == YESTERDAY)
    smartup.update_order(late["deal_id"], modified_on=YESTERDAY, note="late change")
    mark = len(smartup.requests)
    run(smartup, pg, at(TODAY, 0, 40))
    assert asked(smartup, mark) == [(f, TODAY, TODAY) for f in FILIALS]
    open_database(pg)
    assert Order.get(Order.source_external_id == late["deal_id"]).raw["note"] != "late change"

    mark = len(smartup.requests)
    run(smartup, pg, at(TODAY, 9, 0))  # a day after the last sweep: the next sweep
    assert asked(smartup, mark) == [(f, TODAY - timedelta(days=6), TODAY) for f in FILIALS]
    assert Order.get(Order.source_external_id == late["deal_id"]).raw["note"] == "late change"


@pytest.mark.parametrize("smartup", [{"orders": 30}], indirect=True)
def test_a_day_range_limit_of_30_makes_a_30_day_sweep_one_request_per_filial(pg, smartup):
    thirty = {"sync_orders_days_back": 30}
    run(smartup, pg, at(YESTERDAY, 9), settings=thirty)  # 7 days a window until told
    first = YESTERDAY - timedelta(days=29)
    assert [(f, a) for f, a, _ in asked(smartup)] == [
        (f, first + timedelta(days=7 * n)) for f in FILIALS for n in range(5)
    ]
    open_database(pg)
    assert day_range_limits() == {"orders": 30}
    settings = settings_for(smartup, pg, smartup_filial_ids=FILIALS, **thirty)
    plan = plan_for(settings, day_range_limits=day_range_limits())["orders"]
    assert (plan.requests_per_run, plan.requests_per_sweep) == (2, 2)

    mark = len(smartup.requests)
    run(smartup, pg, at(YESTERDAY, 10), periodic=False, days_back=30, settings=thirty)
    assert asked(smartup, mark) == [(f, first, YESTERDAY) for f in FILIALS]
    assert stored_ids() == {o["deal_id"] for o in smartup.orders}


@pytest.mark.parametrize("smartup", [{"orders": 3}], indirect=True)
def test_a_period_too_long_refusal_narrows_the_windows_and_the_run_succeeds(pg, smartup):
    outcome = run(smartup, pg, at(YESTERDAY, 9))  # 7 days: refused, SmartUp allows 3
    assert outcome.results[0].requests == 6
    week = YESTERDAY - timedelta(days=6)
    windows = [
        (week, week + timedelta(days=2)),
        (week + timedelta(days=3), week + timedelta(days=5)),
    ]
    windows.append((YESTERDAY, YESTERDAY))
    refused = [r for r in smartup.requests if r.endpoint == "orders" and r.status == 400]
    assert len(refused) == 1 and refused[0].headers["filial_id"] == "100"
    answered = [
        (
            r.headers["filial_id"],
            day_of(r.body["begin_modified_on"]),
            day_of(r.body["end_modified_on"]),
        )
        for r in smartup.requests
        if r.endpoint == "orders" and r.status == 200
    ]
    assert answered == [(f, a, b) for f in FILIALS for a, b in windows]
    open_database(pg)
    assert day_range_limits() == {"orders": 3}
    in_week = {o["deal_id"] for o in smartup.orders if day_of(o["deal_time"][:10]) >= week}
    assert stored_ids() == in_week
    settings = settings_for(smartup, pg, smartup_filial_ids=FILIALS)
    plan = plan_for(settings, day_range_limits=day_range_limits())["orders"]
    assert plan.requests_per_sweep == 2 * 3  # the plan counts the windows the same way
    for filial in FILIALS:
        state = stream_state("orders", filial)
        assert state is not None and state.watermark == YESTERDAY


def test_a_streams_data_age_is_that_of_its_filial_read_longest_ago():
    from jobs.day.state import StreamState, data_age
    from jobs.pipeline.streams import STREAMS

    now = at(TODAY, 12)

    def state(key: str, minutes_ago: int | None) -> StreamState:
        last = None if minutes_ago is None else now - timedelta(minutes=minutes_ago)
        return StreamState("stock", key, None, None, last)

    filials = [state("100", 5), state("200", 25)]
    assert data_age(filials, now=now) == 25 * 60
    assert data_age([*filials, state("300", None)], now=now) is None  # never read: unknown
    assert data_age([], now=now) is None
    # stock's warehouses are asked once a day: their age is not the balances'
    stock = STREAMS["stock"]
    daily = state("warehouses", 600)
    assert data_age([*filials, daily], now=now, counts=stock.ages_data) == 25 * 60
    assert data_age([*filials, daily], now=now) == 600 * 60
