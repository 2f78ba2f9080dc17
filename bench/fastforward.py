"""Every stream against the simulator on a simulated clock: the world, the worker's own
runs, what each change took to land, and whether the database ends equal to SmartUp.

Shared by the day (``bench/day.py``) and the week (``bench/week.py``, ``tests/test_week.py``):

- :func:`world`: products, orders, groups, price types, prices, warehouses and stock for
  :class:`~jobs.simulator.SmartUpSimulator`, at a scale.
- :class:`EngineSync`: a :data:`bench.week.SyncCall` that is the worker's ``run_sync``
  (periodic, in this process, at the simulated ``now``), or, asked to die, a run in a
  process of its own killed once its first request reached SmartUp. After each run it
  notes the rows the run wrote and, for each change the simulator stamped, the first
  run that wrote its row after it: :meth:`EngineSync.staleness` gives p50/p95/max per
  stream (:mod:`bench.staleness`).
- :func:`differences`: what the database holds that SmartUp does not, or the other way
  round, per stream: the keys, and the values the scenarios change (product and group
  names, prices, stock quantities).

A change's key in the simulator's stamps and its row's key in PostgreSQL differ for
prices and stock; :class:`Keys` maps one to the other (the parsers' own identify
functions), read once from the world (the scenarios change values, never keys).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from psycopg2 import sql

from bench.common import PROJECT_ROOT
from bench.pg import connect, pairs
from bench.staleness import Staleness, staleness
from jobs.pipeline.records import (
    RecordRejected,
    expand_price_entry,
    identify_balance,
    identify_price,
)
from jobs.pipeline.smartup import RetryPolicy
from jobs.run.sync import RunRequest, run_sync
from jobs.settings import Settings
from jobs.simulator import (
    Endpoint,
    Fault,
    SmartUpSimulator,
    generate_account,
    generate_price_types,
)

PRODUCTS = 100_000
ORDERS_PER_DAY = 5000
STOCK_ROWS = 20_000
PRICE_TYPES = 3
WAREHOUSES = 5
ORDER_DAYS = 6  # orders stored before the first day: a 7-day sweep on day 1 holds them all

# What each stream writes, and what its stamps are called (the simulator's ChangeKind).
TABLES: dict[str, tuple[str, str]] = {
    "products": ("products", "external_id"),
    "orders": ("orders", "source_external_id"),
    "groups": ("product_groups", "external_id"),
    "prices": ("product_prices", "price_key"),
    "stock": ("stock_balances", "balance_key"),
}
STAMPS = {"products": "products", "orders": "orders", "groups": "groups", "prices": "prices",
          "stock": "stock"}  # fmt: skip
ONE_TRY = RetryPolicy(attempts=1)  # an outage's answers are not asked again (quota)


def world(
    *, scale: float, first_day: date, seed: int = 16, filial_id: str = "100"
) -> dict[str, Any]:
    """The simulator's data at ``scale`` (1: the issue's sizes): products, six days of
    orders before ``first_day``, three groups, price types and their prices, warehouses
    and stock rows."""
    return generate_account(
        products=max(50, round(PRODUCTS * scale)),
        orders=max(10, round(ORDERS_PER_DAY * scale)) * ORDER_DAYS,
        today=first_day - timedelta(days=1),
        days=ORDER_DAYS,
        filial_ids=[filial_id],
        lines=(1, 4),
        price_types=generate_price_types(PRICE_TYPES, seed=seed),
        warehouses=WAREHOUSES,
        stock_rows=max(100, round(STOCK_ROWS * scale)),
        seed=seed,
    ).as_kwargs()


def order_maker(
    orders: list[dict[str, Any]], tz: tzinfo, *, first_id: int = 900_000_000
) -> Callable[[int, datetime], dict[str, Any]]:
    """New orders for the week's driver: copies of stored ones, each with a new id and
    its deal time ``now``."""

    def make(number: int, now: datetime) -> dict[str, Any]:
        return {
            **orders[number % len(orders)],
            "deal_id": str(first_id + number),
            "deal_time": now.astimezone(tz).strftime("%d.%m.%Y %H:%M:%S"),
        }

    return make


class Keys:
    """The database key of each record the simulator stamps, per stream."""

    def __init__(self, sim: SmartUpSimulator, conditions: Iterable[str] = ("F",)) -> None:
        conditions = tuple(conditions)
        self.prices: dict[Hashable, str] = {}
        self.price_values: dict[str, Any] = {}  # what SmartUp holds, by database key
        for entry in sim.prices:
            for price in _expanded(entry):
                stamp = (price.get("inventory_code"), price.get("price_type_code"),
                         price.get("card_code"))  # fmt: skip
                with suppress(RecordRejected):  # one the sync rejects too (no code)
                    key = identify_price(price).key[0]
                    self.prices[stamp] = key
                    self.price_values[key] = _number(price.get("price"))
        self.stock: dict[Hashable, str] = {}
        self.stock_values: dict[str, Any] = {}
        for condition, rows in sim.stock.items():
            for row in rows:
                row_stamp = (condition, row.get("warehouse_code"), row.get("product_id"),
                             row.get("batch_number"))  # fmt: skip
                if condition not in conditions:  # not synced: neither measured nor compared
                    continue
                with suppress(RecordRejected):
                    key = identify_balance(row, condition=condition).key[0]
                    self.stock[row_stamp] = key
                    self.stock_values[key] = _number(row.get("quantity"))

    def of(self, stream: str, stamp: Hashable) -> str | None:
        if stream == "prices":
            return self.prices.get(stamp)
        if stream == "stock":
            return self.stock.get(stamp)
        return str(stamp)


def written_since(url: str, table: str, key_column: str, since: datetime) -> set[str]:
    """The keys of ``table``'s rows written at or after ``since`` (PostgreSQL's clock)."""
    query = sql.SQL("SELECT {key}::text FROM {table} WHERE last_synced_at >= %s").format(
        key=sql.Identifier(key_column), table=sql.Identifier(table)
    )
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, (since,))
            return {key for (key,) in cursor.fetchall()}
    finally:
        connection.close()


@dataclass
class Landings:
    """Per stream, every change seen (database key and stamp) and when it landed."""

    changed: dict[tuple[str, datetime], datetime] = field(default_factory=dict)
    landed: dict[tuple[str, datetime], datetime] = field(default_factory=dict)
    pending: dict[str, datetime] = field(default_factory=dict)  # key -> newest stamp


class EngineSync:
    """The worker's own runs, at the simulated moment the driver asks (see the module)."""

    def __init__(
        self,
        sim: SmartUpSimulator,
        url: str,
        settings: Settings,
        *,
        retry: RetryPolicy = ONE_TRY,
        on_run: Callable[[str, datetime, str, float], None] | None = None,
    ) -> None:
        self.sim, self.url, self.settings, self.retry = sim, url, settings, retry
        self.keys = Keys(sim, settings.smartup_stock_conditions)
        self.tz = settings.tz
        self.landings: dict[str, Landings] = {name: Landings() for name in TABLES}
        self.on_run = on_run
        self.seconds = 0.0

    def __call__(self, stream: str, now: datetime, *, kill: bool = False) -> str:
        self._note_changes(stream)
        wall = datetime.now(UTC)
        started = time.perf_counter()
        if kill:
            status = self._killed(stream, now)
        else:
            outcome = run_sync(RunRequest(
                kind=stream, settings=self.settings, periodic=True, now=now,
                today=now.astimezone(self.tz).date(), retry=self.retry,
            ))  # fmt: skip
            status = outcome.status
        seconds = time.perf_counter() - started
        self.seconds += seconds
        self._note_landings(stream, now, wall)
        if self.on_run is not None:
            self.on_run(stream, now, status, seconds)
        return status

    def _note_changes(self, stream: str) -> None:
        """The stamps of changes made since this stream's last run, pending."""
        landings = self.landings.get(stream)
        if landings is None:
            return
        for stamp_key, moment in self.sim.changed_at(STAMPS[stream]).items():  # type: ignore[arg-type]
            key = self.keys.of(stream, stamp_key)
            if key is None or (key, moment) in landings.changed:
                continue
            landings.changed[(key, moment)] = moment
            landings.pending[key] = moment

    def _note_landings(self, stream: str, now: datetime, wall: datetime) -> None:
        landings = self.landings.get(stream)
        if landings is None or not landings.pending:
            return
        table, key_column = TABLES[stream]
        for key in written_since(self.url, table, key_column, wall) & landings.pending.keys():
            moment = landings.pending[key]
            if moment <= now:
                landings.landed[(key, moment)] = now
                del landings.pending[key]

    def _killed(self, stream: str, now: datetime) -> str:
        """A run in a process of its own, killed (SIGKILL) once its first request is
        with SmartUp (which holds its answer back a minute)."""
        for endpoint in ENDPOINTS[stream]:
            self.sim.add_fault(endpoint, Fault(delay=60))

        def asked() -> int:  # counted as soon as a request arrives, before its answer
            return sum(self.sim.requests_today(pool) for pool in ("reference", "documents"))

        before = asked()
        settings = self.settings
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("SMARTUP_", "SYNC_"))}
        environ.update(
            DATABASE_URL=settings.database_url, SMARTUP_BASE_URL=settings.smartup_base_url,
            SMARTUP_BASIC_USER=settings.smartup_user,
            SMARTUP_BASIC_PASS=settings.smartup_password,
            SMARTUP_FILIAL_ID=",".join(settings.smartup_filial_ids),
            SYNC_STREAMS=",".join(settings.sync_streams),
            SYNC_INTERVAL_SECONDS=str(settings.sync_interval_seconds),
            PYTHONPATH=str(PROJECT_ROOT),
        )  # fmt: skip
        worker = subprocess.Popen(
            [sys.executable, "-c", KILLED_RUN, stream, now.isoformat()],
            cwd=PROJECT_ROOT, env=environ, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while asked() == before and time.monotonic() < deadline:
                if worker.poll() is not None:
                    break
                time.sleep(0.05)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
            self.sim.clear_faults()
        return "KILLED" if asked() > before else f"EXITED {worker.returncode}"

    def staleness(
        self, stream: str, *, changed_between: tuple[datetime, datetime] | None = None,
        exempt: Iterable[tuple[datetime, datetime]] = (),
    ) -> Staleness:  # fmt: skip
        """p50/p95/max of ``stream``'s changes (made in ``changed_between`` when given,
        not made in any ``exempt`` span)."""
        landings = self.landings[stream]
        spans = list(exempt)

        def kept(moment: datetime) -> bool:
            if changed_between is not None and not (
                changed_between[0] <= moment < changed_between[1]
            ):
                return False
            return not any(start <= moment < end for start, end in spans)

        changed = {k: m for k, m in landings.changed.items() if kept(m)}
        landed = {k: landings.landed[k] for k in changed if k in landings.landed}
        return staleness(stream, changed, landed)


ENDPOINTS: dict[str, tuple[Endpoint, ...]] = {
    "products": ("products",),
    "orders": ("orders",),
    "groups": ("product_groups",),
    "prices": ("price_types_v2", "prices"),
    "stock": ("warehouses", "stock"),
}

KILLED_RUN = """
import sys
from datetime import datetime
from jobs.settings import load_settings
from jobs.pipeline.smartup import RetryPolicy
from jobs.pipeline.streams import declared_names
from jobs.run.sync import RunRequest, run_sync
now = datetime.fromisoformat(sys.argv[2])
settings = load_settings(streams=declared_names())
run_sync(RunRequest(kind=sys.argv[1], settings=settings, periodic=True, now=now,
                    today=now.astimezone(settings.tz).date(), retry=RetryPolicy(attempts=1)))
"""


def _number(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def differences(
    sim: SmartUpSimulator, url: str, *, conditions: Iterable[str] = ("F",)
) -> dict[str, str]:
    """Per stream, what differs between SmartUp (the simulator) and the database, in
    words; a stream absent is exact (keys, and the values the scenarios change)."""
    found: dict[str, str] = {}

    def compare(stream: str, ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> None:
        missing = theirs.keys() - ours.keys()
        extra = ours.keys() - theirs.keys()
        changed = [k for k in theirs.keys() & ours.keys() if theirs[k] != ours[k]]
        if missing or extra or changed:
            found[stream] = (
                f"{len(missing)} missing, {len(extra)} not in SmartUp, {len(changed)} differ"
                f" (e.g. {sorted(missing)[:1] or sorted(extra)[:1] or sorted(changed)[:1]})"
            )

    compare(
        "products",
        pairs(url, "SELECT external_id, name FROM products WHERE deleted_at IS NULL"),
        {p["product_id"]: p["name"] for p in sim.products},
    )
    compare(
        "orders",
        pairs(url, "SELECT source_external_id, status FROM orders"),
        {o["deal_id"]: o.get("status") for o in sim.orders},
    )
    compare(
        "groups",
        pairs(url, "SELECT external_id, name FROM product_groups WHERE deleted_at IS NULL"),
        {g["product_group_id"]: g["name"] for g in sim.groups},
    )
    keys = Keys(sim, conditions)
    prices = pairs(url, "SELECT price_key, price FROM product_prices")
    compare("prices", {k: _number(v) for k, v in prices.items()}, keys.price_values)
    stock = pairs(url, "SELECT balance_key, quantity FROM stock_balances")
    compare("stock", {k: _number(v) for k, v in stock.items()}, keys.stock_values)
    return found


def _expanded(entry: Any) -> list[dict[str, Any]]:
    try:
        return expand_price_entry(entry)
    except RecordRejected:
        return []
