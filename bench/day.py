"""Case ``day``: a day of operation of every stream, before and after the day's plan.

The world (``bench/fastforward.py``, at ``--scale``): 100,000 products of which 1% change
in the day, 5,000 new orders in the day (six days of them stored before it), 20,000 stock
rows of which 5% change an hour, three price types (1% of prices change in the day), a
group renamed at noon; changes only from 08:00 to 20:00 company time (``bench/week.py``'s
driver, without the week's events). One filial, every stream enabled, default settings.
The simulator runs in this process and its day clock is the driver's: no waiting.

- **before**: every stream whole every 600 s (the orders window 8 days: two requests; the
  quotas lifted). Such a run costs the same whatever changed, so one run in
  ``BEFORE_SAMPLE`` is made and requests and megabytes are multiplied back.
- **after**: the worker's periodic runs at the plan's cadences (``run_sync``,
  ``periodic=True``): sealed days, windows, sweeps once a day.

Per mode and stream: requests (and per quota pool), megabytes of export bodies (counted
by the simulator), rows written (``pg_stat_user_tables`` of the stream's tables); after,
p50/p95/max staleness per stream (each change's simulator stamp against the run that
wrote its row). The last line printed is ``day: ...``.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any

from bench.common import SMARTUP_PASSWORD, SMARTUP_USER, TZ, progress
from bench.fastforward import ENDPOINTS, ONE_TRY, EngineSync, order_maker, world
from bench.pg import tuples_written
from bench.report import Row
from bench.staleness import Staleness
from bench.week import STEP, Week
from jobs.day.plan import plan_for
from jobs.pipeline.streams import declared_names
from jobs.run.sync import RunRequest, run_sync
from jobs.settings import Settings
from jobs.simulator import ENDPOINT_CLASS, SmartUpSimulator

DAY = "day"
ORDERS_PER_DAY = 5000
BEFORE_INTERVAL = 600
BEFORE_SAMPLE = 12  # "before" makes one run in 12 and multiplies back
BEFORE_DAYS_BACK = 8  # the whole orders window, as the seed asked it: two requests
UNLIMITED = 10**9
RATIO_GOAL = 20.0  # products and orders together, MB before / after
POOLS = ("reference", "documents")
TABLES = {
    "products": ("products", "product_categories"),
    "orders": ("orders", "order_items"),
    "groups": ("product_groups", "product_types"),
    "prices": ("price_types", "product_prices"),
    "stock": ("stock_balances", "warehouses"),
}


@dataclass
class ModeFigures:
    """One mode's day: per stream requests, bytes and rows; per pool requests."""

    requests: dict[str, int] = field(default_factory=dict)
    megabytes: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    pools: dict[str, int] = field(default_factory=dict)
    staleness: dict[str, Staleness] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)
    intervals: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _settings(url: str, sim: SmartUpSimulator) -> Settings:
    return Settings(
        database_url=url, smartup_base_url=sim.base_url, smartup_user=SMARTUP_USER,
        smartup_password=SMARTUP_PASSWORD, smartup_filial_ids=("100",),
        sync_streams=declared_names(),
    )  # fmt: skip


def _measure(bench: Any, url: str, *, before: bool, today: date) -> ModeFigures:
    data = world(scale=bench.scale, first_day=today)
    sim = SmartUpSimulator(
        **data, user=SMARTUP_USER, password=SMARTUP_PASSWORD, today=today - timedelta(days=1),
        timezone=str(TZ), quotas=dict.fromkeys(POOLS, UNLIMITED) if before else None,
    )  # fmt: skip
    label = "before" if before else "after"
    with sim:
        settings = _settings(url, sim)
        preload = datetime.combine(today - timedelta(days=1), clock(12), tzinfo=TZ)
        progress(f"day ({label}): the stored state")
        for name in settings.sync_streams:  # the day before: everything stored, a sweep made
            outcome = run_sync(
                RunRequest(
                    kind=name, settings=settings, full=True, now=preload, today=preload.date()
                )
            )
            if outcome.status not in ("SUCCESS", "PARTIAL"):
                raise RuntimeError(f"the {name} preload ended {outcome.status}: {outcome.error}")
        sim.advance_day()
        plan = plan_for(settings)
        figures = ModeFigures(
            budgets={name: pool.budget for name, pool in plan.pools.items()},
            intervals={name: plan[name].interval_used for name in settings.sync_streams},
        )
        engine = EngineSync(sim, url, settings, retry=ONE_TRY)
        if before:
            every = dict.fromkeys(settings.sync_streams, BEFORE_INTERVAL * BEFORE_SAMPLE)

            def whole(stream: str, now: datetime, *, kill: bool = False) -> str:
                return run_sync(RunRequest(
                    kind=stream, settings=settings, full=True, days_back=BEFORE_DAYS_BACK,
                    now=now, today=now.astimezone(TZ).date(), retry=ONE_TRY,
                )).status  # fmt: skip

            sync: Any = whole
        else:
            every, sync = figures.intervals, engine
        asked = len(sim.requests)
        served = {endpoint: sim.bytes_served(endpoint) for endpoint in ENDPOINT_CLASS}
        written = {name: tuples_written(url, TABLES[name]) for name in settings.sync_streams}
        progress(f"day ({label}): runs every {every} s")
        started = time.perf_counter()
        Week(
            sim, sync, first_day=today, tz=TZ, intervals=every,
            orders_per_day=bench.size(ORDERS_PER_DAY, minimum=20),
            make_order=order_maker(data["orders"], TZ), days=1, events=False,
        ).run()  # fmt: skip
        figures.seconds = time.perf_counter() - started
        factor = BEFORE_SAMPLE if before else 1
        by_endpoint: dict[str, int] = {}
        for request in sim.requests[asked:]:
            by_endpoint[request.endpoint] = by_endpoint.get(request.endpoint, 0) + 1
        for name in settings.sync_streams:
            endpoints = ENDPOINTS[name]
            figures.requests[name] = factor * sum(by_endpoint.get(e, 0) for e in endpoints)
            figures.megabytes[name] = (
                factor * sum(sim.bytes_served(e) - served[e] for e in endpoints) / 1e6
            )
            figures.rows[name] = tuples_written(url, TABLES[name]) - written[name]
            if not before:
                start = datetime.combine(today, clock(0), tzinfo=TZ)
                figures.staleness[name] = engine.staleness(
                    name, changed_between=(start, start + timedelta(days=1))
                )
        for endpoint, count in by_endpoint.items():
            pool = ENDPOINT_CLASS.get(endpoint)  # type: ignore[call-overload]
            if pool is not None:
                figures.pools[pool] = figures.pools.get(pool, 0) + factor * count
    return figures


def _minutes(value: timedelta | None) -> str:
    if value is None:
        return "-"
    return f"{value.total_seconds() / 60:.0f} min"


def day_of_operation(bench: Any) -> None:
    today = datetime.now(TZ).date()
    modes = {}
    for before in (True, False):
        url = bench.dbs.create("day_before" if before else "day_after")
        gc.collect()
        modes[before] = _measure(bench, url, before=before, today=today)
        bench.dbs.drop(url)
    old, new = modes[True], modes[False]
    for name in old.requests:
        ratio = old.megabytes[name] / new.megabytes[name] if new.megabytes[name] else None
        fresh = new.staleness.get(name)
        bench.rows.append(Row(
            f"day: {name}: MB before -> after", rows=new.rows[name], ratio=ratio,
            goal=(f"{old.megabytes[name]:,.1f} -> {new.megabytes[name]:,.1f} MB; requests "
                  f"{old.requests[name]} -> {new.requests[name]}; rows {old.rows[name]:,} -> "
                  f"{new.rows[name]:,}; p50/p95 {_minutes(fresh.p50 if fresh else None)}/"
                  f"{_minutes(fresh.p95 if fresh else None)}"),
            met=None,
        ))  # fmt: skip
    pair = ("products", "orders")
    old_pair = sum(old.megabytes[n] for n in pair)
    new_pair = sum(new.megabytes[n] for n in pair)
    ratio = old_pair / new_pair if new_pair else float("inf")
    bench.rows.append(Row(
        "day: products+orders MB before -> after", ratio=ratio,
        goal=f">= {RATIO_GOAL:.0f}x ({old_pair:,.1f} -> {new_pair:,.1f} MB)",
        met=ratio >= RATIO_GOAL,
    ))  # fmt: skip
    for pool in POOLS:
        spent, budget = new.pools.get(pool, 0), new.budgets.get(pool, 0)
        bench.rows.append(Row(
            f"day: {pool} requests after (before {old.pools.get(pool, 0)})", rows=spent,
            goal=f"<= quota - reserve = {budget}", met=spent <= budget,
        ))  # fmt: skip
    orders = new.staleness.get("orders")
    bound = timedelta(seconds=new.intervals["orders"]) + STEP
    orders_met = orders is not None and orders.p95 is not None and orders.p95 <= bound
    bench.rows.append(Row(
        "day: orders p95 staleness", goal=f"<= interval + one run ({_minutes(bound)}): "
        f"{_minutes(orders.p95 if orders else None)}", met=orders_met,
    ))  # fmt: skip
    for fresh in new.staleness.values():
        bench.note(f"day, after: {fresh.describe()}")
    bench.note(
        f"day: simulated in {old.seconds:.0f} s (before, 1 run in {BEFORE_SAMPLE}, "
        f"x{BEFORE_SAMPLE}) and {new.seconds:.0f} s (after, every run); after, the plan's "
        f"intervals {new.intervals}"
    )
    pools = ", ".join(
        f"{pool} {new.pools.get(pool, 0)}/{new.budgets.get(pool, 0)}" for pool in POOLS
    )
    p95 = ", ".join(f"{n} {_minutes(s.p95)}" for n, s in new.staleness.items())
    bench.closing.append(
        f"day: products+orders MB before/after = {ratio:.1f}x, all streams MB after = "
        f"{sum(new.megabytes.values()):,.1f}, requests per pool {pools}, p95 staleness {p95}"
    )
