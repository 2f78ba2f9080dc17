"""Is syncing healthy (:mod:`jobs.watching.health`), asked directly on real PostgreSQL and Redis:
stale kinds, runs stuck RUNNING, a quota down to the reserve, queues without a worker and
scheduler registrations missing or overdue. The moments are fixed; nothing here waits.

The intervals, worked out by hand from the defaults (one filial, ``SYNC_INTERVAL_SECONDS``
600, a reserve of 20 %): orders spend the documents pool (500 a day, 400 after the reserve)
and one run a 600 s fits (144 runs); products spend the reference pool (100 a day, 80
after the reserve), where 144 runs do not fit: 86400 / 80 = 1080 s. Stale is three
intervals: products after 3 x 1080 = 3240 s (54 min), orders after 3 x 600 = 1800 s (30 min).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from rq import Queue, Worker

from jobs.day.state import record_limits, record_quota_spent
from jobs.kinds import queue_for
from jobs.models import SyncRun
from jobs.watching.health import (
    SCHEDULER_KEY,
    database_problems,
    interval_seconds,
    is_stale,
    queue_problems,
)
from tests.helpers import offline_settings

PRODUCTS_QUEUE = queue_for("products")
ORDERS_QUEUE = queue_for("orders")

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
TODAY = date(2026, 11, 29)
PERIODIC = ("smartup-sync-periodic-products", "smartup-sync-periodic-orders")
QUEUES = (PRODUCTS_QUEUE, ORDERS_QUEUE)


def run(kind: str, status: str, *, ended_ago: timedelta) -> SyncRun:
    """A run row of ``kind`` that ended ``ended_ago`` before NOW (a minute after it began)."""
    finished = NOW - ended_ago
    return SyncRun.create(
        run_type=kind,
        status=status,
        started_at=finished - timedelta(minutes=1),
        finished_at=finished,
    )


def test_before_any_success_each_kind_says_so(pg):
    settings = offline_settings(pg)
    run("orders", "FAILED", ended_ago=timedelta(minutes=1))
    run("products", "PARTIAL", ended_ago=timedelta(minutes=1))  # a PARTIAL is no success
    assert database_problems(settings, now=NOW, today=TODAY) == [
        "products: no successful sync yet",
        "orders: no successful sync yet",
    ]
    assert is_stale("products", settings, now=NOW) and is_stale("orders", settings, now=NOW)


def test_a_kind_goes_stale_past_three_of_its_own_intervals(pg):
    settings = offline_settings(pg)
    products = run("products", "SUCCESS", ended_ago=timedelta(seconds=3240))  # at 54 min
    orders = run("orders", "SUCCESS", ended_ago=timedelta(seconds=1800))  # at 30 min
    assert database_problems(settings, now=NOW, today=TODAY) == []
    assert not is_stale("products", settings, now=NOW)
    assert not is_stale("orders", settings, now=NOW)

    later = NOW + timedelta(seconds=1)  # one second past both bounds
    assert database_problems(settings, now=later, today=TODAY) == [
        f"products: last successful sync 54 min ago (run {products.id}), "
        "more than 3 intervals (54 min)",
        f"orders: last successful sync 30 min ago (run {orders.id}), "
        "more than 3 intervals (30 min)",
    ]
    assert is_stale("products", settings, now=later) and is_stale("orders", settings, now=later)


def test_interval_seconds_is_the_planned_interval_that_staleness_counts_three_of(pg):
    settings = offline_settings(pg)  # the README names jobs.watching.health.interval_seconds
    # the same 54 and 30 minutes as above, a third of each
    assert interval_seconds("products", settings) == 1080
    assert interval_seconds("orders", settings) == 600


def test_a_full_run_counts_for_every_kind_and_the_latest_success_is_the_one(pg):
    settings = offline_settings(pg)
    run("products", "SUCCESS", ended_ago=timedelta(hours=5))
    run("full", "SUCCESS", ended_ago=timedelta(minutes=10))
    run("orders", "FAILED", ended_ago=timedelta(minutes=1))  # a later failure: not stale
    assert database_problems(settings, now=NOW, today=TODAY) == []


def test_a_run_running_past_the_job_timeout_is_named(pg):
    settings = offline_settings(pg, sync_job_timeout_seconds=1800)
    run("products", "SUCCESS", ended_ago=timedelta(minutes=1))
    run("orders", "SUCCESS", ended_ago=timedelta(minutes=1))
    for minutes in (30, 31):  # at the timeout, and past it
        SyncRun.create(
            run_type="orders", status="RUNNING", started_at=NOW - timedelta(minutes=minutes)
        )
    stuck = SyncRun.get(SyncRun.started_at == NOW - timedelta(minutes=31))
    assert database_problems(settings, now=NOW, today=TODAY) == [
        f"run {stuck.id} (orders) has been RUNNING for 31 min, longer than the job timeout (30 min)"
    ]


def test_a_quota_down_to_the_reserve_is_named_with_the_same_rule_the_guard_skips_by(pg):
    settings = offline_settings(pg)
    run("products", "SUCCESS", ended_ago=timedelta(minutes=1))
    run("orders", "SUCCESS", ended_ago=timedelta(minutes=1))

    def problems() -> list[str]:
        return database_problems(settings, now=NOW, today=TODAY)

    # reference: 100 a day, a reserve of 20 % = 20
    record_limits("reference", {"limit_quant": "100", "left_limit_quant": "21"}, day=TODAY)
    assert problems() == []
    record_limits("reference", {"limit_quant": "100", "left_limit_quant": "20"}, day=TODAY)
    assert problems() == [
        "products: SmartUp quota left today 20 is at the reserve of 20 (20% of 100 a day)"
    ]
    record_limits("reference", {"limit_quant": "100", "left_limit_quant": "3"}, day=TODAY)
    assert problems() == [
        "products: SmartUp quota left today 3 is below the reserve of 20 (20% of 100 a day)"
    ]
    record_quota_spent("reference", day=TODAY)
    assert problems() == ["products: SmartUp's quota for today is spent (100 a day)"]
    # a day later, yesterday's figures say nothing
    assert database_problems(settings, now=NOW, today=TODAY + timedelta(days=1)) == []


def test_queues_without_a_worker_and_registrations_missing_or_overdue(redis):
    def problems() -> list[str]:
        return queue_problems(redis, periodic_ids=PERIODIC, queues=QUEUES, now=NOW)

    assert problems() == [
        f"no worker is registered on queue {PRODUCTS_QUEUE}",
        f"no worker is registered on queue {ORDERS_QUEUE}",
        "scheduler registration smartup-sync-periodic-products is missing "
        "(is `scheduler` running?)",
        "scheduler registration smartup-sync-periodic-orders is missing (is `scheduler` running?)",
    ]

    Worker([Queue(PRODUCTS_QUEUE, connection=redis)], connection=redis).register_birth()
    due = NOW.timestamp()
    redis.zadd(SCHEDULER_KEY, {PERIODIC[0]: due + 60, PERIODIC[1]: due - 120})  # at the bound
    assert problems() == [f"no worker is registered on queue {ORDERS_QUEUE}"]

    redis.zadd(SCHEDULER_KEY, {PERIODIC[1]: due - 121})  # past it: no scheduler loop moves it
    assert problems() == [
        f"no worker is registered on queue {ORDERS_QUEUE}",
        "scheduler registration smartup-sync-periodic-orders is 2 min overdue "
        "(no scheduler loop is moving it)",
    ]
