"""The week's scenario driver (``bench/week.py``) against the simulator, with the stand-in
sync (one plain request per run): the events happen when the issue says, changes only
in working hours, every change stamped on the driver's clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bench.week import DAYS, Week, probe_sync
from jobs.simulator import SmartUpSimulator, generate_account
from tests.helpers import PASSWORD, TASHKENT, USER

FIRST_DAY = date(2026, 12, 1)
INTERVALS = {"products": 3600, "orders": 1800, "groups": 21600, "prices": 14400, "stock": 3600}


def runs_between(first_hour: int, end_hour: int) -> int:
    """Runs of every stream from ``first_hour`` to before ``end_hour`` (runs start at 00:00)."""
    return sum(
        1
        for seconds in INTERVALS.values()
        for start in range(0, 86400, seconds)
        if first_hour * 3600 <= start < end_hour * 3600
    )


def test_the_week_happens_as_the_issue_says():
    account = generate_account(
        products=300, orders=20, today=FIRST_DAY, warehouses=2, stock_rows=200
    )

    def make_order(number: int, now: datetime) -> dict[str, Any]:
        return {
            **account.orders[number % len(account.orders)],
            "deal_id": str(800_000 + number),
            "deal_time": now.astimezone(TASHKENT).strftime("%d.%m.%Y %H:%M:%S"),
        }

    with SmartUpSimulator(
        **account.as_kwargs(),
        user=USER,
        password=PASSWORD,
        today=FIRST_DAY,
        timezone="Asia/Tashkent",
    ) as sim:
        week = Week(
            sim,
            probe_sync(sim, user=USER, password=PASSWORD),
            first_day=FIRST_DAY,
            tz=TASHKENT,
            intervals=INTERVALS,
            orders_per_day=48,
            make_order=make_order,
        )
        days = week.run()
        assert [d.day for d in days] == [FIRST_DAY + timedelta(days=n) for n in range(DAYS)]
        assert sim.today == FIRST_DAY + timedelta(days=DAYS - 1)

        runs_a_day = sum(86400 // seconds for seconds in INTERVALS.values())
        for number, day in enumerate(days, start=1):
            assert sum(day.statuses.values()) == runs_a_day, number
        # the outage: 10:00 on day 2 to 09:00 on day 3, every run in it fails
        failed = {n: d.statuses.get("FAILURE", 0) for n, d in enumerate(days, start=1)}
        assert failed[1] == 0 and failed[4] == 0 and failed[7] == 0
        assert failed[2] == runs_between(10, 24)
        assert failed[3] == runs_between(0, 9)
        assert "outage from 10:00" in days[1].events and "SmartUp back at 09:00" in days[2].events
        # another program spent half the reference quota by noon on day 4
        assert days[3].others == {"reference": 50, "documents": 0}
        assert sim.daily_quota("reference") == 100
        # a quota refusal at 15:00 on day 5: one orders run refused
        assert failed[5] == 1 and "quota refusal queued at 15:00" in days[4].events
        # a worker killed mid-run on day 6, once
        assert days[5].statuses.get("KILLED") == 1
        assert sum(d.statuses.get("KILLED", 0) for d in days) == 1
        # changes: only between 08:00 and 20:00 company time, stamped on the driver's clock
        for kind in ("products", "orders", "prices", "stock", "groups"):
            stamps = sim.changed_at(kind)
            assert stamps, kind
            hours = {moment.astimezone(TASHKENT).hour for moment in stamps.values()}
            assert hours <= set(range(8, 20)), kind
            assert all(m.astimezone(TASHKENT).date() >= FIRST_DAY for m in stamps.values())
        # exactly each day's share: 48 orders a day, 1% of 300 products (3 a day)
        assert len(sim.changed_at("orders")) == DAYS * 48
        assert len(sim.orders) == 20 + DAYS * 48
