"""A week in fast-forward, small: every stream, the worker's own runs at the plan's
cadences on the simulator's day clock (no waiting), through an outage, another program
spending half the reference quota, a quota refusal and a killed worker (``bench/week.py``).

At the end the database equals SmartUp (keys and the values the week changed), no pool
went over its quota on any day, and every change made outside the disturbances landed
within its stream's planned interval (plus the driver's one-minute step)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bench.fastforward import world
from bench.week import DAYS, run_week
from jobs.models import SyncRun, open_database
from jobs.pipeline.streams import declared_names
from jobs.settings import Settings
from jobs.simulator import SmartUpSimulator
from tests.helpers import PASSWORD, REDIS_URL, USER

FIRST_DAY = date(2026, 12, 1)

pytestmark = pytest.mark.slow


def test_a_week_ends_exact_within_quota_and_as_fresh_as_planned(pg):
    data = world(scale=0.002, first_day=FIRST_DAY)
    with SmartUpSimulator(
        **data, user=USER, password=PASSWORD, today=FIRST_DAY, timezone="Asia/Tashkent"
    ) as sim:
        settings = Settings(
            database_url=pg,
            smartup_base_url=sim.base_url,
            smartup_user=USER,
            smartup_password=PASSWORD,
            smartup_filial_ids=("100",),
            redis_url=REDIS_URL,
            sync_streams=declared_names(),
            sync_interval_seconds=1800,
        )
        report = run_week(
            sim, pg, settings, first_day=FIRST_DAY, orders_per_day=40, orders=data["orders"]
        )
    print("\n".join(report.table()))
    print(report.line())
    assert [d.day for d in report.days] == [FIRST_DAY + timedelta(days=n) for n in range(DAYS)]
    assert report.differences == {}
    assert report.over_quota == []
    for figures in report.days:  # ours alone within the plan's budget, every day
        for pool, budget in report.budgets.items():
            # +1: the guard reads the quota left from the last answer, so a prices run
            # begun with the reserve + 1 left makes both its requests
            assert figures.ours[pool] <= budget + 1, (figures.day, pool)
    assert report.over_bound == []
    measured = [s for day in report.staleness.values() for s in day.values() if s.changes]
    assert {s.stream for s in measured} == set(declared_names())
    events = [event for figures in report.days for event in figures.events]
    assert any("killed" in event for event in events)
    open_database(pg)
    statuses = {run.status for run in SyncRun.select()}
    assert {"SUCCESS", "FAILED"} <= statuses  # the outage's runs failed; the rest went on
    assert report.line().startswith("week: data exact;")
