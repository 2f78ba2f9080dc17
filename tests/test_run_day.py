"""The day's steps of one run (:mod:`jobs.day.steps`), each called directly on real PostgreSQL:
the quota guard of periodic runs, how far back a run asks per filial, and the state kept
after each answer. The dates are fixed; nothing here reads the clock."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from jobs.day.plan import StreamPlan
from jobs.day.state import (
    advance_watermark,
    day_range_limits,
    mark_sweep,
    quota_today,
    record_limits,
    record_quota_spent,
    stream_state,
)
from jobs.day.steps import (
    RunDay,
    SeenByExport,
    StateKeeper,
    after_complete,
    span_for,
    streams_over_quota,
)
from jobs.logs import configure_logging, get_logger
from jobs.pipeline.engine import StreamResult
from jobs.pipeline.smartup import ExportRequest
from jobs.pipeline.streams import declared
from jobs.pipeline.streams.reach import DAY_RANGE_LIMIT, Reach
from jobs.settings import Settings
from tests.helpers import TASHKENT, offline_settings

configure_logging()  # now: configuring later would undo capture_logs

TODAY = date(2026, 11, 29)
NOW = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)  # 12:00 in Tashkent
# orders' day as the plan gives it with the defaults (interval 600 s, one sweep a day)
ORDERS_PLAN = StreamPlan(
    stream="orders",
    interval_asked=600,
    interval_used=600,
    requests_per_run=1,
    requests_per_sweep=2,
    sweep_asked=86400,
    sweep_used=86400,
    quota=500,
    reserve=100,
    pool="documents",
)


def run_day(**changes: object) -> RunDay:
    values: dict[str, object] = {
        "today": TODAY,
        "now": NOW,
        "days_back": None,
        "full": False,
        "tz": TASHKENT,
    }
    values.update(changes)
    return RunDay(**values)  # type: ignore[arg-type]


# -- the quota guard: one rule, "at or below the reserve" -------------------------------


def guard(settings: Settings, *kinds: str) -> tuple[dict[str, str], list[MutableMapping[str, Any]]]:
    with capture_logs() as logs:
        skipped = streams_over_quota(kinds, settings, TODAY, NOW, get_logger())
    return skipped, [e for e in logs if e["event"] == "sync.skipped"]


@pytest.mark.parametrize(
    ("left", "skipped"),
    [(21, False), (20, True), (19, True), (0, True)],
    ids=["one above the reserve", "at the reserve", "below it", "none left"],
)
def test_a_periodic_run_skips_from_the_reserve_down(pg, left, skipped):
    # products' pool (reference) told a quota of 100 a day; 20 % of it is a reserve of 20
    settings = offline_settings(pg)
    record_limits("reference", {"limit_quant": "100", "left_limit_quant": str(left)}, day=TODAY)
    found, logged = guard(settings, "products", "orders")
    assert set(found) == ({"products"} if skipped else set())  # orders: another pool
    if skipped:
        assert found["products"] == (
            f"SmartUp daily quota for products (reference): {left} left, at or below the "
            "reserve of 20; it resets at 00:00 Asia/Tashkent"
        )
        [event] = logged
        assert {k: event[k] for k in ("run_type", "reason", "pool", "left", "reserve")} == {
            "run_type": "products",
            "reason": "quota",
            "pool": "reference",
            "left": left,
            "reserve": 20,
        }
        # 12:00 in Tashkent on the 29th: the quota resets at the next midnight there
        assert event["resets_at"] == "2026-11-30T00:00:00+05:00"
    else:
        assert logged == []


def test_the_reserve_follows_the_quota_smartup_tells_and_the_reserve_percent(pg):
    # a quota of 20 a day: 20 % is 4 (left 4 skips, left 5 runs); 50 % is 10
    record_limits("reference", {"limit_quant": "20", "left_limit_quant": "5"}, day=TODAY)
    assert guard(offline_settings(pg), "products")[0] == {}
    record_limits("reference", {"limit_quant": "20", "left_limit_quant": "4"}, day=TODAY)
    assert set(guard(offline_settings(pg), "products")[0]) == {"products"}
    record_limits("reference", {"limit_quant": "20", "left_limit_quant": "10"}, day=TODAY)
    assert set(guard(offline_settings(pg, smartup_quota_reserve_percent=50), "products")[0]) == {
        "products"
    }
    assert guard(offline_settings(pg, smartup_quota_reserve_percent=0), "products")[0] == {}


def test_nothing_seen_today_a_quota_spent_and_yesterdays_figures(pg):
    settings = offline_settings(pg)
    assert guard(settings, "products", "orders")[0] == {}  # nothing seen: run

    yesterday = TODAY - timedelta(days=1)
    record_limits("documents", {"limit_quant": "500", "left_limit_quant": "0"}, day=yesterday)
    assert guard(settings, "orders")[0] == {}  # yesterday's none left: reset at midnight

    record_limits("documents", {"limit_quant": "500", "left_limit_quant": "300"}, day=TODAY)
    assert guard(settings, "orders")[0] == {}
    record_quota_spent("documents", day=TODAY)  # SmartUp refused: spent, whatever was left
    found, [event] = guard(settings, "orders", "products")
    assert set(found) == {"orders"} and (event["pool"], event["left"]) == ("documents", 0)


# -- how far back a run asks, per filial --------------------------------------------------


def test_the_span_is_worked_out_per_filial_from_each_ones_state(pg):
    settings = offline_settings(pg, smartup_filial_ids=("100", "200", "300"))
    orders = declared()["orders"]
    # 100: read to the 27th, swept an hour ago: from the 26th (one day of overlap), no sweep
    advance_watermark("orders", "100", date(2026, 11, 27), now=NOW)
    mark_sweep("orders", "100", now=NOW - timedelta(hours=1))
    # 200: nothing read yet: a sweep of the 7 days back, the 23rd to the 29th
    # 300: read to the 20th, last swept two days ago (due): a sweep that reaches back to
    # the 19th, further than the 7 days, to catch up
    advance_watermark("orders", "300", date(2026, 11, 20), now=NOW)
    mark_sweep("orders", "300", now=NOW - timedelta(days=2))

    span = span_for(orders, settings, ORDERS_PLAN, run_day(), day_range_limit=DAY_RANGE_LIMIT)
    assert span == {
        "100": Reach(date(2026, 11, 26), TODAY, False),
        "200": Reach(date(2026, 11, 23), TODAY, True),
        "300": Reach(date(2026, 11, 19), TODAY, True),
    }


def test_a_forced_span_and_a_full_run_sweep_every_filial(pg):
    settings = offline_settings(pg, smartup_filial_ids=("100", "200"))
    orders = declared()["orders"]
    advance_watermark("orders", "100", date(2026, 11, 27), now=NOW)
    mark_sweep("orders", "100", now=NOW - timedelta(hours=1))

    # --days-back 30: the 30 days to today (31 October to 29 November), each filial
    forced = span_for(
        orders, settings, ORDERS_PLAN, run_day(days_back=30), day_range_limit=DAY_RANGE_LIMIT
    )
    assert forced == {key: Reach(date(2026, 10, 31), TODAY, True) for key in ("100", "200")}
    # full: a sweep now, over the 7 days back (the watermark is more recent)
    full = span_for(
        orders, settings, ORDERS_PLAN, run_day(full=True), day_range_limit=DAY_RANGE_LIMIT
    )
    assert full == {key: Reach(date(2026, 11, 23), TODAY, True) for key in ("100", "200")}
    # products keep no filial: one key, the whole set until something was read
    products = declared()["products"]
    assert span_for(
        products, settings, ORDERS_PLAN, run_day(), day_range_limit=DAY_RANGE_LIMIT
    ) == {"": Reach(None, TODAY, True)}


# -- the state after each committed answer ------------------------------------------------


def answer_to(first: date | None, last: date | None, key: str = "100") -> ExportRequest:
    days = (first, last) if first is not None and last is not None else None
    return ExportRequest(
        name="orders",
        url="http://127.0.0.1:9/orders",
        records_key="order",
        days=days,
        state_key=key,
    )


def test_each_answer_keeps_its_limits_and_day_range_for_its_pool_and_stream(pg):
    applied = StateKeeper(declared()["orders"], run_day(), seal_minutes=15)
    limits = {
        "limit_quant": "500",
        "request_quant": "12",
        "left_limit_quant": "488",
        "day_range_limit": "5",
    }
    applied(answer_to(date(2026, 11, 23), date(2026, 11, 27)), limits)
    quota = quota_today("documents", today=TODAY)  # orders spend the documents pool
    assert quota is not None and (quota.limit, quota.used, quota.left) == (500, 12, 488)
    assert quota_today("reference", today=TODAY) is None
    assert day_range_limits() == {"orders": 5}


def test_the_watermark_moves_only_over_days_with_nothing_missing_before_them(pg):
    orders = declared()["orders"]
    applied = StateKeeper(orders, run_day(), seal_minutes=15)

    def watermark() -> date | None:
        state = stream_state("orders", "100")
        return state.watermark if state else None

    applied(answer_to(date(2026, 11, 1), date(2026, 11, 7)), None)  # nothing read before
    assert watermark() == date(2026, 11, 7)
    applied(answer_to(date(2026, 11, 8), date(2026, 11, 14)), None)  # the next day on
    assert watermark() == date(2026, 11, 14)
    applied(answer_to(date(2026, 11, 10), date(2026, 11, 12)), None)  # behind: never back
    assert watermark() == date(2026, 11, 14)
    applied(answer_to(date(2026, 11, 20), date(2026, 11, 26)), None)  # a gap (15th to 19th)
    assert watermark() == date(2026, 11, 14)
    applied(answer_to(date(2026, 11, 15), date(2026, 11, 19)), None)  # the gap itself
    assert watermark() == date(2026, 11, 19)
    applied(answer_to(None, None), None)  # the whole set: read to the run's today
    assert watermark() == TODAY
    assert stream_state("orders", "200") is None  # another filial's state is its own


def test_an_answer_after_midnight_counts_for_the_new_days_quota(pg):
    # the run began 30 s before midnight in Tashkent; the answer comes a minute later
    before_midnight = datetime(2026, 11, 29, 23, 59, 30, tzinfo=TASHKENT)
    day = run_day(now=before_midnight, started=time.monotonic() - 60)
    applied = StateKeeper(declared()["orders"], day, seal_minutes=15)
    applied(answer_to(date(2026, 11, 23), date(2026, 11, 29)), {"left_limit_quant": "499"})
    assert quota_today("documents", today=TODAY) is None
    quota = quota_today("documents", today=date(2026, 11, 30))
    assert quota is not None and quota.left == 499


# -- what a complete stream leaves -----------------------------------------------------


def test_a_completed_run_records_the_sweeps_it_made_and_only_those(pg):
    settings = offline_settings(pg, smartup_filial_ids=("100", "200"))
    orders = declared()["orders"]
    span = {
        "100": Reach(date(2026, 11, 26), TODAY, False),
        "200": Reach(date(2026, 11, 23), TODAY, True),
    }
    result = StreamResult(stream="orders")
    with capture_logs():
        after_complete(orders, span, SeenByExport(), settings, run_day(), result, get_logger())
    assert stream_state("orders", "100") is None  # an incremental run: no sweep recorded
    swept = stream_state("orders", "200")
    assert swept is not None and swept.last_sweep_at == NOW
