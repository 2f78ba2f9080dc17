"""A week in fast-forward (issue 16, item 5): the scenario, driven against the simulator.

Seven company days of every stream on the simulator's day clock, no waiting. Changes
happen between 08:00 and 20:00 company time: products (1% of the catalogue a day), orders
(``ORDERS_PER_DAY``), stock rows (5% an hour), prices (1% a day); a group is renamed once
a day. The events:

- a SmartUp outage from 10:00 on day 2 to 09:00 on day 3 (every export answers 503);
- another program on the same login spending half the reference quota by noon on day 4
  (spread over the morning, through :meth:`SmartUpSimulator.spend_quota`);
- a quota refusal at 15:00 on day 5 (the next orders request is refused 429 with
  SmartUp's "лимит" text);
- a worker killed mid-run on day 6 (the first run at or after 13:00 is asked to die
  midway; how is the sync's business).

The sync itself is one function, :data:`SyncCall`: ``sync(stream, now, kill=...)``
returns the run's status. :func:`run_week` drives the week with the worker's own runs
(:class:`bench.fastforward.EngineSync`: ``run_sync`` in this process, a killed run in a
process of its own) at the plan's cadences, and reports each day, the staleness per
stream and whether the database ends equal to SmartUp; :func:`probe_sync` is a stand-in
that makes one plain request per run (tests of the driver alone). The driver's clock is
the simulator's change clock too, so every change is stamped with its simulated moment
(see ``bench/staleness.py``).
"""

# Messages are Russian, as SmartUp's are; ruff's confusable-letter check is off.

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as clock
from fractions import Fraction
from typing import Any, Protocol

import requests

from jobs.simulator import PATHS, Endpoint, Fault, SmartUpSimulator

DAYS = 7
STEP = timedelta(minutes=1)
WORKING_HOURS = (8, 20)  # changes happen from 08:00 to 20:00 company time
PRODUCTS_CHANGING_A_DAY = Fraction(1, 100)
PRICES_CHANGING_A_DAY = Fraction(1, 100)
STOCK_CHANGING_AN_HOUR = Fraction(5, 100)
ORDERS_PER_DAY = 5000
OUTAGE = ((2, clock(10)), (3, clock(9)))  # (day, time) from, to; days count from 1
SPENDER_DAY, SPENDER_BY = 4, clock(12)
REFUSAL_DAY, REFUSAL_AT = 5, clock(15)
KILL_DAY, KILL_AT = 6, clock(13)
QUOTA_SPENT_TEXT = "Превышен дневной лимит запросов ({limit}); повторите завтра"
OUTAGE_FAULTS = 100_000  # queued per export while SmartUp is down; cleared after

STREAM_ENDPOINTS: dict[str, tuple[Endpoint, ...]] = {
    "products": ("products",),
    "orders": ("orders",),
    "groups": ("product_groups",),
    "prices": ("price_types_v2", "prices"),
    "stock": ("stock",),
}
"""The exports each stream asks (its quota class is the simulator's ``ENDPOINT_CLASS``)."""


class SyncCall(Protocol):
    """One run of ``stream`` at simulated ``now``; ``kill``: die midway (the worker is
    killed). Returns the run's status (``SUCCESS``, ``FAILURE``, ``SKIPPED``...)."""

    def __call__(self, stream: str, now: datetime, *, kill: bool = False) -> str: ...


@dataclass
class DayFigures:
    """One company day of the week: requests per quota class (ours and the other
    program's), runs per status, and the events that happened."""

    day: date
    ours: dict[str, int] = field(default_factory=lambda: {"reference": 0, "documents": 0})
    others: dict[str, int] = field(default_factory=lambda: {"reference": 0, "documents": 0})
    quota: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    def row(self) -> str:
        spent = ", ".join(
            f"{c} {self.ours[c] + self.others[c]}/{self.quota.get(c, '?')}"
            f" (others {self.others[c]})"
            for c in ("reference", "documents")
        )
        runs = ", ".join(f"{status} {n}" for status, n in sorted(self.statuses.items()))
        return f"{self.day}: {spent}; runs {runs}; {'; '.join(self.events) or '-'}"


def at(first_day: date, day: int, moment: clock, tz: tzinfo) -> datetime:
    """``moment`` on day ``day`` (1-based) of the week starting ``first_day``."""
    return datetime.combine(first_day + timedelta(days=day - 1), moment, tzinfo=tz)


class Week:
    """The week's driver: the changes, the events, and the runs at each stream's cadence.

    ``sim`` must hold the world (products, orders, groups, price types, prices, stock)
    and have its day clock on ``first_day``; ``intervals`` are the seconds between runs
    of each stream (phase 2: the plan's ``interval_used``).
    """

    def __init__(
        self,
        sim: SmartUpSimulator,
        sync: SyncCall,
        *,
        first_day: date,
        tz: tzinfo,
        intervals: Mapping[str, int],
        orders_per_day: int = ORDERS_PER_DAY,
        seed: int = 16,
        make_order: Callable[[int, datetime], dict[str, Any]] | None = None,
        days: int = DAYS,
        events: bool = True,
    ) -> None:
        if sim.today != first_day:
            raise ValueError(f"the simulator's day is {sim.today}, not {first_day}")
        self.sim, self.sync, self.first_day, self.tz = sim, sync, first_day, tz
        self.intervals = dict(intervals)
        self.orders_per_day = orders_per_day
        self.make_order = make_order
        self.day_count = days
        self.with_events = events  # False: the changes alone (the day bench)
        self.rng = random.Random(seed)
        self.now = datetime.combine(first_day, clock(0), tzinfo=tz)
        sim.set_clock(lambda: self.now)
        self.days: list[DayFigures] = [DayFigures(first_day)]
        self._own_before = dict.fromkeys(("reference", "documents"), 0)
        self._orders_made = 0
        self._spender_spent = 0
        self._killed = False
        self._refusal_queued = False
        self._down = False
        self._owed: dict[str, Fraction] = {}
        # what changes, read once (the catalogue's keys do not change in the week)
        self._products = [(p["product_id"], p["name"]) for p in sim.products]
        self._prices = [
            (entry["inventory_code"], item.get("price_type_code"), item.get("card_code"))
            for entry in sim.prices
            if entry.get("inventory_code")  # a product without a code cannot be named
            for item in entry.get("price_type") or ()
        ]
        self._stock = [
            (condition, row["warehouse_code"], row["product_id"], row.get("batch_number"))
            for condition, rows in sim.stock.items()
            for row in rows
        ]
        self._groups = [(g["product_group_id"], g["name"]) for g in sim.groups]
        # the values set last, so that every change changes something (a change to the
        # value a record already has is no change: nothing would land)
        self._values: dict[tuple[Any, ...], str] = {
            ("stock", condition, row["warehouse_code"], row["product_id"],
             row.get("batch_number")): str(row.get("quantity"))
            for condition, rows in sim.stock.items()
            for row in rows
        }  # fmt: skip
        for entry in sim.prices:
            for item in entry.get("price_type") or ():
                key = ("prices", entry.get("inventory_code"), item.get("price_type_code"),
                       item.get("card_code"))  # fmt: skip
                self._values[key] = str(item.get("price"))

    # -- the changes of a minute --

    def _working_fraction(self) -> Fraction:
        """Of the working day, the share one step is (0 outside working hours)."""
        start, end = WORKING_HOURS
        if not start <= self.now.astimezone(self.tz).hour < end:
            return Fraction(0)
        return Fraction(STEP // timedelta(seconds=1), (end - start) * 3600)

    def _how_many(self, kind: str, expected: Fraction) -> int:
        """The whole changes of ``kind`` due in this step: ``expected`` plus what earlier
        steps left over, so a day makes exactly its share (no chance involved)."""
        owed = self._owed.get(kind, Fraction(0)) + expected
        whole = int(owed)
        self._owed[kind] = owed - whole
        return whole

    def _new_value(self, key: tuple[Any, ...], low: int, high: int) -> str:
        """A number from ``low`` to ``high`` (excluded) other than the one ``key`` holds."""
        while True:
            value = str(self.rng.randrange(low, high))
            if value != self._values.get(key):
                self._values[key] = value
                return value

    def change(self) -> None:
        """What SmartUp's users change in this step."""
        share = self._working_fraction()
        if not share:
            return
        for _ in range(
            self._how_many("products", len(self._products) * PRODUCTS_CHANGING_A_DAY * share)
        ):
            product_id, name = self.rng.choice(self._products)
            self.sim.update_product(product_id, name=f"{name} {self.now:%d %H:%M}")
        for _ in range(self._how_many("prices", len(self._prices) * PRICES_CHANGING_A_DAY * share)):
            inventory_code, price_type_code, card_code = self.rng.choice(self._prices)
            price = self._new_value(
                ("prices", inventory_code, price_type_code, card_code), 1000, 1_000_000
            )
            self.sim.set_price(inventory_code, price_type_code, price, card_code=card_code)
        hours = WORKING_HOURS[1] - WORKING_HOURS[0]
        stock_changes = len(self._stock) * STOCK_CHANGING_AN_HOUR * hours * share
        for _ in range(self._how_many("stock", stock_changes)):
            condition, warehouse_code, product_id, batch_number = self.rng.choice(self._stock)
            quantity = self._new_value(
                ("stock", condition, warehouse_code, product_id, batch_number), 0, 500
            )
            with contextlib.suppress(KeyError):  # several rows without a batch: left be
                self.sim.set_stock_quantity(
                    warehouse_code,
                    product_id,
                    quantity,
                    batch_number=batch_number,
                    condition=condition,
                )
        if self.make_order is not None:
            for _ in range(self._how_many("orders", self.orders_per_day * share)):
                self._orders_made += 1
                self.sim.add_orders([self.make_order(self._orders_made, self.now)])
        local = self.now.astimezone(self.tz)
        if local.hour == 12 and local.minute == 0 and self._groups:
            group_id, name = self.rng.choice(self._groups)
            self.sim.update_group(group_id, name=f"{name} {local:%d}")

    # -- the events --

    def events(self) -> None:
        """The outage, the other program, the quota refusal, as the clock reaches them."""
        (down_day, down_at), (up_day, up_at) = OUTAGE
        down = at(self.first_day, down_day, down_at, self.tz)
        up = at(self.first_day, up_day, up_at, self.tz)
        today = self.days[-1]
        if down <= self.now < up and not self._down:
            for endpoint in PATHS:
                self.sim.add_fault(endpoint, Fault(status=503), times=OUTAGE_FAULTS)
            self._down = True
            today.events.append(f"outage from {self.now:%H:%M}")
        elif self.now >= up and self._down:
            self.sim.clear_faults()
            self._down = False
            today.events.append(f"SmartUp back at {self.now:%H:%M}")
        spender_start = at(self.first_day, SPENDER_DAY, clock(0), self.tz)
        spender_end = at(self.first_day, SPENDER_DAY, SPENDER_BY, self.tz)
        if spender_start <= self.now <= spender_end:
            half = self.quota("reference") // 2
            due = round(half * ((self.now - spender_start) / (spender_end - spender_start)))
            if due > self._spender_spent:
                self.sim.spend_quota("reference", due - self._spender_spent)
                today.others["reference"] += due - self._spender_spent
                self._spender_spent = due
                if due == half:
                    today.events.append(f"another program spent {half} reference requests")
        refusal = at(self.first_day, REFUSAL_DAY, REFUSAL_AT, self.tz)
        if self.now >= refusal and not self._refusal_queued:
            body = QUOTA_SPENT_TEXT.format(limit=self.quota("documents"))
            self.sim.add_fault("orders", Fault(status=429, body=body))
            self._refusal_queued = True
            today.events.append(f"quota refusal queued at {self.now:%H:%M}")

    def quota(self, quota_class: str) -> int:
        """The class's quota today (what SmartUp answers as ``limit_quant``)."""
        return self.sim.daily_quota(quota_class)

    # -- the days --

    def _end_of_day(self) -> None:
        today = self.days[-1]
        for quota_class in ("reference", "documents"):
            counted = self.sim.requests_today(quota_class)
            today.ours[quota_class] = counted - today.others[quota_class]
            today.quota[quota_class] = self.quota(quota_class)

    def run(self) -> list[DayFigures]:
        """Drive the week to its end (midnight after its last day); the figures of each day."""
        end = at(self.first_day, self.day_count + 1, clock(0), self.tz)
        due = dict.fromkeys(self.intervals, self.now)
        kill_at = at(self.first_day, KILL_DAY, KILL_AT, self.tz)
        while self.now < end:
            if self.now.astimezone(self.tz).date() != self.sim.today:  # midnight
                self._end_of_day()
                self.days.append(DayFigures(self.sim.advance_day()))
            if self.with_events:
                self.events()
            self.change()
            for stream in sorted(due, key=lambda s: due[s]):
                if self.now < due[stream]:
                    continue
                kill = self.with_events and not self._killed and self.now >= kill_at
                status = self.sync(stream, self.now, kill=kill)
                if kill:
                    self._killed = True
                    self.days[-1].events.append(f"worker killed mid-run ({stream})")
                counts = self.days[-1].statuses
                counts[status] = counts.get(status, 0) + 1
                due[stream] = self.now + timedelta(seconds=self.intervals[stream])
            self.now += STEP
        self._end_of_day()
        return self.days


def probe_sync(sim: SmartUpSimulator, *, user: str, password: str) -> SyncCall:
    """A stand-in for the engine: each run POSTs each of its stream's exports once
    (orders and stock for today alone) and succeeds when every answer is a 200 without
    a refusal. ``kill`` ends the run after its first request. Phase 2 replaces it."""

    def sync(stream: str, now: datetime, *, kill: bool = False) -> str:
        today = sim.today.strftime("%d.%m.%Y")
        for endpoint in STREAM_ENDPOINTS[stream]:
            body: dict[str, Any] = {}
            if endpoint == "orders":
                body = {"begin_modified_on": today, "end_modified_on": today}
            elif endpoint == "stock":
                body = {"begin_date": today, "end_date": today}
            answer = requests.post(
                sim.base_url + PATHS[endpoint],
                json=body,
                auth=(user, password),
                headers={"project_code": "anor" if endpoint == "warehouses" else "trade"},
                timeout=30,
            )
            if answer.status_code != 200 or "лимит" in answer.text[:200]:
                return "FAILURE"
            if kill:
                return "KILLED"
        return "SUCCESS"

    return sync


# -- the week with the worker's own runs (bench/fastforward.py) ---------------------------


@dataclass
class WeekReport:
    """The week's figures: each day's requests and runs (:class:`DayFigures`), each
    day's staleness per stream outside the disturbed spans, the bound each stream is held
    to, what differs at the end (empty: data exact), and the one-line verdict."""

    days: list[DayFigures]
    staleness: dict[date, dict[str, Any]]  # day -> stream -> bench.staleness.Staleness
    bounds: dict[str, timedelta]
    over_bound: list[str]  # "day stream: p95/max beyond the bound" for each breach
    over_quota: list[str]  # "day pool: spent/quota" where ours and others' went over
    budgets: dict[str, int]  # per pool: quota minus reserve, as planned
    differences: dict[str, str]
    exempt: dict[str, list[tuple[datetime, datetime]]]

    def table(self) -> list[str]:
        lines = []
        for figures in self.days:
            lines.append(figures.row())
            fresh = self.staleness.get(figures.day, {})
            lines.append(
                "    staleness: " + "; ".join(s.describe() for s in fresh.values() if s.changes)
            )
        return lines

    def line(self) -> str:
        most = {
            pool: max(
                ((figures.ours[pool] + figures.others[pool], figures.quota.get(pool, 0))
                 for figures in self.days),
                default=(0, 0),
            )
            for pool in ("reference", "documents")
        }  # fmt: skip
        verdict = (
            "data exact"
            if not self.differences
            else "data differs: " + "; ".join(f"{k} {v}" for k, v in self.differences.items())
        )
        spent = ", ".join(f"{pool} {n}/{q}" for pool, (n, q) in most.items())
        fresh = (
            "staleness within the plan's bound outside the disturbances"
            if not (self.over_bound)
            else f"staleness over the bound: {'; '.join(self.over_bound[:3])}"
        )
        quota = "no pool over its quota" if not self.over_quota else (
            f"over quota: {'; '.join(self.over_quota)}"
        )  # fmt: skip
        return (
            f"week: {verdict}; most requests a pool spent in a day (ours + others) "
            f"{spent}; {quota}; {fresh}"
        )


def disturbed_spans(
    first_day: date, tz: tzinfo, *, bound: timedelta, pool: str
) -> list[tuple[datetime, datetime]]:
    """When a change may wait longer than its stream's bound, for a stream of ``pool``:
    from one bound before each event to its end. The outage (every stream); the other
    program's morning on day 4, after which the reference pool is at its reserve until
    midnight; the quota refusal on day 5, after which the documents pool waits for
    midnight; the run killed on day 6 (its stream waits one more interval)."""
    (down_day, down_at), (up_day, up_at) = OUTAGE
    spans = [(at(first_day, down_day, down_at, tz), at(first_day, up_day, up_at, tz))]
    if pool == "reference":
        spans.append((at(first_day, SPENDER_DAY, clock(0), tz),
                      at(first_day, SPENDER_DAY + 1, clock(0), tz)))  # fmt: skip
    if pool == "documents":
        spans.append((at(first_day, REFUSAL_DAY, REFUSAL_AT, tz),
                      at(first_day, REFUSAL_DAY + 1, clock(0), tz)))  # fmt: skip
    kill = at(first_day, KILL_DAY, KILL_AT, tz)
    spans.append((kill, kill + bound))
    return [(start - bound, end) for start, end in spans]


def run_week(
    sim: SmartUpSimulator,
    url: str,
    settings: Any,
    *,
    first_day: date,
    orders_per_day: int,
    orders: list[dict[str, Any]],
    progress: Callable[[str], None] = lambda _: None,
) -> WeekReport:
    """The week against the worker's own runs at the plan's cadences; then one more run
    of every stream (on demand, whole), and the database compared with SmartUp."""
    from bench.fastforward import EngineSync, differences, order_maker
    from bench.staleness import staleness as no_changes
    from jobs.day.plan import plan_for
    from jobs.pipeline.streams import declared
    from jobs.run.sync import RunRequest, run_sync

    tz = settings.tz
    plan = plan_for(settings)
    intervals = {name: plan[name].interval_used for name in settings.sync_streams}
    budgets = {name: pool.budget for name, pool in plan.pools.items()}
    bounds = {name: timedelta(seconds=seconds) + STEP for name, seconds in intervals.items()}
    engine = EngineSync(sim, url, settings)
    week = Week(
        sim, engine, first_day=first_day, tz=tz, intervals=intervals,
        orders_per_day=orders_per_day, make_order=order_maker(orders, tz),
    )  # fmt: skip
    progress(f"week: runs every {intervals} s")
    days = week.run()
    end = at(first_day, DAYS + 1, clock(0), tz)
    for name in settings.sync_streams:  # the last changes, and the whole of each stream
        engine(name, end)
        run_sync(
            RunRequest(
                kind=name, settings=settings, full=True, now=end, today=end.astimezone(tz).date()
            )
        )
    streams = declared()
    exempt = {
        name: disturbed_spans(first_day, tz, bound=bounds[name], pool=streams[name].pool.name)
        for name in intervals
    }
    fresh: dict[date, dict[str, Any]] = {}
    over_bound = []
    for figures in days:
        start = datetime.combine(figures.day, clock(0), tzinfo=tz)
        today: dict[str, Any] = {}
        for name in intervals:
            if name not in engine.landings:
                today[name] = no_changes(name, {}, {})
                continue
            found = engine.staleness(
                name, changed_between=(start, start + timedelta(days=1)), exempt=exempt[name]
            )
            today[name] = found
            if found.not_landed or (found.max is not None and found.max > bounds[name]):
                over_bound.append(
                    f"{figures.day} {name}: max {found.max}, {len(found.not_landed)} not landed"
                )
        fresh[figures.day] = today
    over_quota = [
        f"{figures.day} {pool}: {figures.ours[pool] + figures.others[pool]}/{figures.quota[pool]}"
        for figures in days
        for pool in ("reference", "documents")
        if figures.ours[pool] + figures.others[pool] > figures.quota[pool]
    ]
    return WeekReport(
        days=days, staleness=fresh, bounds=bounds, over_bound=over_bound,
        over_quota=over_quota, budgets=budgets, differences=differences(sim, url),
        exempt=exempt,
    )  # fmt: skip


WEEK_SCALE = 0.02  # of the day's sizes (2,000 products, 100 orders a day): a week of runs


def week_case(bench: Any) -> None:
    """``python -m bench --only week``: the week at ``WEEK_SCALE`` x ``--scale``, default
    settings, every stream; the day-by-day table and the ``week:`` line close the output."""
    from bench.common import SMARTUP_PASSWORD, SMARTUP_USER, TZ, progress
    from bench.fastforward import ORDERS_PER_DAY, world
    from bench.report import Row
    from jobs.pipeline.streams import declared_names
    from jobs.settings import Settings

    scale = WEEK_SCALE * bench.scale
    first_day = datetime.now(TZ).date()
    data = world(scale=scale, first_day=first_day)
    url = bench.dbs.create("week")
    try:
        with SmartUpSimulator(
            **data, user=SMARTUP_USER, password=SMARTUP_PASSWORD, today=first_day,
            timezone=str(TZ),
        ) as sim:  # fmt: skip
            settings = Settings(
                database_url=url, smartup_base_url=sim.base_url, smartup_user=SMARTUP_USER,
                smartup_password=SMARTUP_PASSWORD, smartup_filial_ids=("100",),
                sync_streams=declared_names(),
            )  # fmt: skip
            report = run_week(
                sim, url, settings, first_day=first_day,
                orders_per_day=max(10, round(ORDERS_PER_DAY * scale)), orders=data["orders"],
                progress=progress,
            )  # fmt: skip
    finally:
        bench.dbs.drop(url)
    bench.rows.append(Row(
        f"week ({len(data['products']):,} products, every stream): data exact",
        goal="; ".join(f"{k}: {v}" for k, v in report.differences.items()) or "exact",
        met=not report.differences,
    ))  # fmt: skip
    bench.rows.append(Row(
        "week: no pool over its quota any day", goal="; ".join(report.over_quota) or "none over",
        met=not report.over_quota,
    ))  # fmt: skip
    bench.rows.append(Row(
        "week: staleness within the plan's bound", goal="; ".join(report.over_bound)[:80]
        or "outside the disturbances", met=not report.over_bound,
    ))  # fmt: skip
    bench.closing.extend(report.table())
    bench.closing.append(report.line())
