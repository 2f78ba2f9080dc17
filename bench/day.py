"""Case ``day``: a day of operation, before and after the day's plan.

100,000 products of which 1% change in the day, 5,000 new orders in the day (7 days of
them, 35,000, stored before it starts), 7 days back, one filial, default settings. The
simulator runs in this process so the test can drive its day clock; the runs are the
worker's own ``run_sync`` with a ``now`` that moves through the company day, no waiting.

- **before** (as the seed did): every 600 s, the whole catalogue and the whole orders
  window (8 calendar days then: two requests). Each of those runs costs about the same
  whatever changed, so one run in ``BEFORE_SAMPLE`` is made and requests and megabytes
  are multiplied back to 144 runs; every change is still written once, as it would be.
- **after**: periodic runs at the plan's cadence (products every 1,080 s, orders every
  600 s), incremental, with one full catalogue export and one orders sweep in the day.

Per mode and day: requests, megabytes of export bodies (counted by the simulator) and
rows written (``pg_stat_user_tables`` of products, orders and order lines).
"""

from __future__ import annotations

import gc
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any

from bench.common import (
    FILIAL_ID,
    SEED,
    SMARTUP_PASSWORD,
    SMARTUP_USER,
    TZ,
    make_settings,
    progress,
)
from bench.pg import tuples_written
from bench.report import Row
from jobs.plan import plan_for
from jobs.simulator import SmartUpSimulator, generate_orders, generate_products
from jobs.tasks import run_sync

DAY = "day"
PRODUCTS_CHANGING = 0.01  # of the catalogue, in the day
ORDERS_PER_DAY = 5000
DAYS_BACK = 7
LINES = (4, 4)
BEFORE_INTERVAL = 600
BEFORE_SAMPLE = 12  # "before" makes one run in 12 and multiplies back
DAY_SECONDS = 86400
UNLIMITED = 10**9


def _world(
    bench: Any, today: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    products = generate_products(bench.size(100_000, minimum=100), seed=SEED)
    per_day = bench.size(ORDERS_PER_DAY, minimum=20)
    stored = generate_orders(
        per_day * DAYS_BACK, products=products, today=today - timedelta(days=1),
        days=DAYS_BACK, filial_ids=[FILIAL_ID], lines=LINES, seed=SEED,
    )  # fmt: skip
    new = generate_orders(
        per_day, products=products, today=today, days=1, filial_ids=[FILIAL_ID],
        lines=LINES, seed=SEED + 1,
    )  # fmt: skip
    for number, order in enumerate(new):
        order["deal_id"] = str(900_000_001 + number)
    return products, stored, new


class _Day:
    """One simulated company day against one database: the changes as they happen, and
    the runs of one mode."""

    def __init__(self, bench: Any, url: str, *, before: bool, today: date) -> None:
        self.bench, self.url, self.before, self.today = bench, url, before, today
        self.products, stored, self.new_orders = _world(bench, today)
        self.changing = self.products[:: max(1, round(1 / PRODUCTS_CHANGING))]
        self.sim = SmartUpSimulator(
            products=self.products, orders=stored, user=SMARTUP_USER,
            password=SMARTUP_PASSWORD, today=today - timedelta(days=1),
            quotas={"products": UNLIMITED, "orders": UNLIMITED} if before else None,
        )  # fmt: skip
        self.start = datetime.combine(today, clock(0), tzinfo=TZ)
        self.changed = 0
        self.added = 0

    def catch_up_changes(self, now: datetime) -> None:
        """Apply the changes the day has made by ``now`` (spread evenly over it)."""
        elapsed = (now - self.start).total_seconds() / DAY_SECONDS
        for product in self.changing[self.changed : round(len(self.changing) * elapsed)]:
            self.sim.update_product(product["product_id"], name=f"{product['name']} *")
            self.changed += 1
        due = round(len(self.new_orders) * elapsed)
        if due > self.added:
            self.sim.add_orders(self.new_orders[self.added : due])
            self.added = due

    def sync(self, kind: str, now: datetime) -> None:
        settings = make_settings(self.url, self.sim.base_url)
        options: dict[str, Any] = (
            {"full": True, "days_back": DAYS_BACK + 1, "periodic": False}
            if self.before
            else {"periodic": True}
        )
        outcome = run_sync(
            kind, settings=settings, now=now, today=now.astimezone(TZ).date(), **options
        )
        if outcome.status not in ("SUCCESS", "SKIPPED"):
            raise RuntimeError(f"{kind} run at {now:%H:%M} ended {outcome.status}: {outcome.error}")

    def run(self) -> dict[str, float]:
        with self.sim:
            progress(f"day ({'before' if self.before else 'after'}): the stored state")
            preload = self.start - timedelta(hours=12)
            for kind in ("products", "orders"):
                self.sync(kind, preload)  # the day before: everything stored, a sweep made
            self.sim.advance_day()
            settings = make_settings(self.url, self.sim.base_url)
            plan = plan_for(settings)
            if self.before:
                every = {k: BEFORE_INTERVAL * BEFORE_SAMPLE for k in ("products", "orders")}
            else:
                every = {k: plan[k].interval_used for k in ("products", "orders")}
            requests_before = len(self.sim.requests)
            bytes_before = sum(self.sim.bytes_served(e) for e in ("products", "orders"))
            written_before = tuples_written(self.url)
            progress(f"day ({'before' if self.before else 'after'}): runs every {every}")
            started = time.perf_counter()
            due = {kind: self.start for kind in every}
            end = self.start + timedelta(seconds=DAY_SECONDS)
            while min(due.values()) < end:
                kind = min(due, key=lambda k: due[k])
                now = due[kind]
                self.catch_up_changes(now)
                self.sync(kind, now)
                due[kind] = now + timedelta(seconds=every[kind])
            seconds = time.perf_counter() - started
            requests = len(self.sim.requests) - requests_before
            served = sum(self.sim.bytes_served(e) for e in ("products", "orders")) - bytes_before
            per_kind = {e: self.sim.requests_today(e) for e in ("products", "orders")}
            # rows: every change of the day, once stored (a run at midnight, not counted
            # in requests or bytes, stores what the last hours changed in both modes)
            self.catch_up_changes(end)
            for kind in ("products", "orders"):
                self.sync(kind, end)
        written = tuples_written(self.url) - written_before
        factor = BEFORE_SAMPLE if self.before else 1
        return {
            "requests": requests * factor,
            "products_requests": per_kind["products"] * factor,
            "orders_requests": per_kind["orders"] * factor,
            "megabytes": served * factor / 1e6,
            "rows": written,
            "seconds": seconds,
        }


def day_of_operation(bench: Any) -> None:
    today = datetime.now(TZ).date()
    figures = {}
    for before in (True, False):
        url = bench.dbs.create("day_before" if before else "day_after")
        gc.collect()
        figures[before] = _Day(bench, url, before=before, today=today).run()
        bench.dbs.drop(url)
    old, new = figures[True], figures[False]
    for label, key in (
        ("requests", "requests"),
        ("MB downloaded", "megabytes"),
        ("rows written", "rows"),
    ):
        ratio = old[key] / new[key] if new[key] else None
        bench.rows.append(Row(
            f"day of operation: {label} per day (before -> after)", None, None,
            ratio=ratio, goal=f"{old[key]:,.1f} -> {new[key]:,.1f}", met=None,
        ))  # fmt: skip
    bench.note(
        f"day of operation: before = products {old['products_requests']:.0f} + orders "
        f"{old['orders_requests']:.0f} requests (quota 100/500), after = products "
        f"{new['products_requests']:.0f} + orders {new['orders_requests']:.0f}; "
        f"simulated in {old['seconds']:.0f} s (before, 1 run in {BEFORE_SAMPLE}, "
        f"x{BEFORE_SAMPLE}) and {new['seconds']:.0f} s (after, every run)"
    )
