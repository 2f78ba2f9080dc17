"""Soak (not part of ``make test``): minutes of random worker kills, PostgreSQL restarts in
immediate mode and Redis restarts (empty), while two workers, the scheduler, the web app's
``enqueue_sync`` and changes in SmartUp keep going, every stream enabled; then the data
must be exact.

    .venv/bin/python -m tests.soak_outages --minutes 5

Uses a private PostgreSQL cluster (initdb, port 5492) and a private redis-server (a port in
6391-6399), never the shared servers. Prints a JSON report; exit 0 when the data ends
exact, no process ended on its own and no stuck job was ever returned by ``enqueue_sync``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from rq import Queue
from rq.registry import ScheduledJobRegistry

from jobs.models import (
    Order,
    OrderItem,
    PriceType,
    Product,
    ProductCategory,
    ProductGroup,
    ProductPrice,
    ProductType,
    StockBalance,
    SyncRun,
    Warehouse,
    open_database,
)
from jobs.pipeline.records import BALANCE_KEY_PARTS
from jobs.pipeline.streams import declared_names
from jobs.processes.queueing import OVERDUE_SECONDS, enqueue_sync
from jobs.simulator import (
    ENDPOINT_CLASS,
    Fault,
    SmartUpSimulator,
    generate_account,
)
from tests.helpers import (
    PASSWORD,
    TODAY,
    USER,
    PrivateCluster,
    PrivateRedis,
    Proc,
    coded_price_types,
    env_for,
    settings_for,
)
from tests.helpers import scheduler_process as scheduler
from tests.helpers import worker_process as worker

ACTIONS = {  # action: weight; before each, most often a slow answer and a click, so that
    "kill_worker": 3,  # the action hits a run in progress
    "restart_postgres": 3,
    "restart_redis": 2,
    "change_smartup": 2,
    "enqueue": 2,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    stats: Counter[str] = Counter()
    problems: list[str] = []
    redis = PrivateRedis()
    redis.start()
    directory = Path(tempfile.mkdtemp(prefix="smartup-soak-pg-"))
    cluster = PrivateCluster(directory, 5492)
    cluster.create()
    account = generate_account(
        products=args.products,
        orders=args.orders,
        today=TODAY,
        price_types=coded_price_types(),
        # a price of a product without a code is rejected: the final run must succeed
        price_codeless_products=False,
    )
    streams = declared_names()
    kinds = [*streams, "full"]
    processes: list[Proc] = []
    started = time.monotonic()
    try:
        with SmartUpSimulator(
            **account.as_kwargs(),
            user=USER,
            password=PASSWORD,
        ) as sim:
            environ = env_for(
                sim,
                cluster.url,
                REDIS_URL=redis.url,
                SYNC_INTERVAL_SECONDS="60",
                SYNC_STREAMS=",".join(streams),
            )
            settings = settings_for(
                sim, cluster.url, redis_url=redis.url, sync_streams=tuple(streams)
            )
            workers = [worker(environ), worker(environ)]
            schedule = scheduler(environ)
            processes += [*workers, schedule]
            end = started + args.minutes * 60
            while time.monotonic() < end:
                action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
                if rng.random() < 0.7:
                    kind = rng.choice(kinds)
                    for endpoint in ENDPOINT_CLASS:
                        sim.add_fault(endpoint, Fault(delay=rng.uniform(2, 8)))
                    _enqueue(kind, settings, stats, problems)
                    time.sleep(rng.uniform(0.5, 2))  # the run starts, then waits on SmartUp
                if action == "kill_worker":
                    victim = rng.randrange(len(workers))
                    workers[victim].kill_tree()
                    workers[victim] = worker(environ)
                    processes.append(workers[victim])
                elif action == "restart_postgres":
                    cluster.restart_immediately()
                elif action == "restart_redis":
                    redis.stop()
                    down = rng.uniform(1, 20)
                    stats["redis_down_seconds"] += round(down)
                    time.sleep(down)
                    redis.start()
                elif action == "change_smartup":
                    for product in rng.sample(sim.products, 5):
                        sim.update_product(product["product_id"], name=f"soak {rng.random()}")
                    for order in rng.sample(sim.orders, 3):
                        sim.update_order(order["deal_id"], status=rng.choice(["B#N", "B#S", "D"]))
                    _change_catalogue(sim, rng)
                elif action == "enqueue":
                    _enqueue(rng.choice(kinds), settings, stats, problems)
                stats[action] += 1
                for index, process in enumerate(workers):
                    if not process.alive():
                        problems.append(f"a worker ended on its own: {process.output[-2000:]}")
                        workers[index] = worker(environ)
                        processes.append(workers[index])
                if not schedule.alive():
                    problems.append(f"the scheduler ended on its own: {schedule.output[-2000:]}")
                    schedule = scheduler(environ)
                    processes.append(schedule)
                time.sleep(rng.uniform(2, 6))
            chaos_s = round(time.monotonic() - started)

            # Quiet: everything up, no faults; a full sync must end SUCCESS, then compare.
            sim.clear_faults()
            quiet_from = datetime.now(UTC)
            deadline = time.monotonic() + 300
            final: SyncRun | None = None
            while final is None and time.monotonic() < deadline:
                _enqueue("full", settings, stats, problems)
                time.sleep(10)
                final = _latest_success(cluster.url, quiet_from)
            report: dict[str, Any] = {
                "chaos_seconds": chaos_s,
                "actions": dict(stats),
                "final_full_sync": final.id if final else None,
                "runs": _run_summary(cluster.url),
                "processes_started": len(processes),
                "alive_at_end": all(p.alive() for p in [*workers, schedule]),
            }
            report["data_exact"], report["data_differences"] = _compare(cluster.url, sim)
    finally:
        outputs = [process.stop() for process in processes]
        redis.stop()
        cluster.destroy()
        shutil.rmtree(directory, ignore_errors=True)
    report["log_counts"] = {
        event: sum(out.count(f'"event": "{event}"') for out in outputs)
        for event in (
            "worker.redis.down",
            "worker.redis.up",
            "schedule.redis.down",
            "schedule.redis.up",
            "schedule.overdue.moved",
            "schedule.restored",
            "sync.orphans.closed",
        )
    }
    report["problems"] = problems
    print(json.dumps(report, indent=2, default=str))
    return 0 if report["data_exact"] and not problems and report["alive_at_end"] else 1


def _change_catalogue(sim: SmartUpSimulator, rng: random.Random) -> None:
    """A type renamed, a price and a free stock quantity changed (plain decimals)."""
    group = rng.choice(sim.groups)
    kinds = group["product_group_types"]
    if kinds:
        sim.update_group_type(rng.choice(kinds)["product_type_id"], name=f"soak {rng.random()}")
    entry = rng.choice([e for e in sim.prices if e["price_type"]])
    price = rng.choice(entry["price_type"])
    sim.set_price(
        entry["inventory_code"],
        price["price_type_code"],
        f"{rng.randrange(1, 10**6)}.{rng.randrange(100):02d}",
        card_code=price["card_code"],
    )
    row = rng.choice(sim.stock["F"])
    sim.set_stock_quantity(
        row["warehouse_code"],
        row["product_id"],
        f"{rng.randrange(10**5)}.{rng.randrange(1000):03d}",
        batch_number=row["batch_number"],
    )


def _enqueue(kind: str, settings: Any, stats: Counter[str], problems: list[str]) -> None:
    """The web app's click: a job must come back that something will run."""
    try:
        job = enqueue_sync(kind, settings=settings)
    except Exception as error:  # Redis is down: the web app sees an error, not a stuck job
        stats[f"enqueue_error_{type(error).__name__}"] += 1
        return
    if job.get_status(refresh=False) == "scheduled":
        queue = Queue(job.origin, connection=job.connection)
        due = ScheduledJobRegistry(queue=queue).get_scheduled_time(job)
        if due < datetime.now(UTC) - timedelta(seconds=OVERDUE_SECONDS + 5):
            problems.append(f"enqueue_sync returned {job.id}, scheduled for {due}: overdue")


def _latest_success(url: str, since: datetime) -> SyncRun | None:
    db = open_database(url)
    try:
        run: SyncRun | None = (
            SyncRun.select()
            .where(
                (SyncRun.run_type == "full")
                & (SyncRun.status == "SUCCESS")
                & (SyncRun.started_at > since)
            )
            .first()
        )
        return run
    except Exception:
        return None
    finally:
        db.close()


def _run_summary(url: str) -> dict[str, Any]:
    db = open_database(url)
    try:
        rows = list(SyncRun.select().order_by(SyncRun.id))
    finally:
        db.close()
    errors = Counter((r.error_message or "")[:60] for r in rows if r.status == "FAILED")
    gaps: dict[str, float] = {}
    for kind in declared_names():  # longest time a kind went without a success
        ends = sorted(
            r.finished_at
            for r in rows
            if r.status == "SUCCESS" and r.run_type in (kind, "full") and r.finished_at
        )
        gaps[kind] = max(((b - a).total_seconds() for a, b in pairwise(ends)), default=0)
    return {
        "longest_seconds_without_success": {k: round(v) for k, v in gaps.items()},
        "total": len(rows),
        "by_status": dict(Counter(r.status for r in rows)),
        "by_attempt": dict(Counter(r.attempt for r in rows)),
        "failed_messages": dict(errors.most_common(8)),
        "still_running": sum(r.status == "RUNNING" for r in rows),
    }


def _compare(url: str, sim: SmartUpSimulator) -> tuple[bool, list[str]]:
    """Every table against what SmartUp serves now: products, orders and their lines,
    groups, types and products' categories, price types and prices, warehouses and free
    stock (the soak's one condition), each value and each link."""
    db = open_database(url)
    try:
        differences = [
            f"{table} differ: {len(wrong)} wrong, e.g. {wrong[:3]}"
            for table, wrong in wrong_rows(sim).items()
            if wrong
        ]
        return not differences, differences
    finally:
        db.close()


def _text(value: Any) -> str | None:
    """Text as stored: ``null``, ``""`` and missing alike are NULL."""
    return None if value in (None, "") else str(value)


def _differing(served: dict[Any, Any], stored: dict[Any, Any]) -> list[Any]:
    return sorted(
        (k for k in served.keys() | stored.keys() if served.get(k) != stored.get(k)), key=str
    )


def wrong_rows(sim: SmartUpSimulator) -> dict[str, list[Any]]:
    """Per table, the keys whose stored row is not what SmartUp serves (or is extra)."""
    wrong: dict[str, list[Any]] = {}
    served_products = {p["product_id"]: p for p in sim.products}
    products = list(Product.select())
    wrong["products"] = _differing(
        {k: (p, None) for k, p in served_products.items()},
        {p.external_id: (p.raw, p.deleted_at) for p in products},
    )
    product_ids = {p.external_id: p.id for p in products}
    product_by_code = {p.code: p.id for p in products if p.code}

    served_orders = {o["deal_id"]: o for o in sim.orders}
    wrong["orders"] = _differing(
        served_orders, {o.source_external_id: o.raw for o in Order.select()}
    )
    wrong["order_items"] = _differing(
        {
            (deal_id, str(line["product_unit_id"])): product_ids.get(str(line["product_id"]))
            for deal_id, order in served_orders.items()
            for line in order["order_products"]
        },
        {
            (item.order.source_external_id, item.product_unit_id): item.product_id
            for item in OrderItem.select(OrderItem, Order).join(Order)
        },
    )
    if OrderItem.select().count() != sum(len(o["order_products"]) for o in sim.orders):
        wrong["order_items"].append("count")

    groups = sim.groups
    wrong["product_groups"] = _differing(
        {
            g["product_group_id"]: (
                _text(g.get("code")),
                _text(g.get("name")),
                _text(g.get("product_kind")),
                g.get("state") == "A",
                g,
                None,
            )
            for g in groups
        },
        {
            g.external_id: (g.code, g.name, g.product_kind, g.is_active, g.raw, g.deleted_at)
            for g in ProductGroup.select()
        },
    )
    group_ids = {g.external_id: g.id for g in ProductGroup.select()}
    types = list(ProductType.select())
    wrong["product_types"] = _differing(
        {
            t["product_type_id"]: (
                g["product_group_id"],
                group_ids.get(g["product_group_id"]),
                _text(t.get("code")),
                _text(t.get("name")),
                t.get("state") == "A",
                _text(t.get("order_no")),
                None,
            )
            for g in groups
            for t in g.get("product_group_types") or ()
        },
        {
            t.external_id: (
                t.group_external_id,
                t.group_id,
                t.code,
                t.name,
                t.is_active,
                t.order_no,
                t.deleted_at,
            )
            for t in types
        },
    )
    type_ids = {t.external_id: t.id for t in types}
    wrong["product_categories"] = _differing(
        {
            (p["product_id"], line_no): (
                _text(c.get("group_id")),
                _text(c.get("group_code")),
                _text(c.get("type_id")),
                _text(c.get("type_code")),
                type_ids.get(str(c.get("type_id"))),
            )
            for p in sim.products
            for line_no, c in enumerate(p.get("groups") or (), start=1)
        },
        {
            (c.product.external_id, c.line_no): (
                c.group_external_id,
                c.group_code,
                c.type_external_id,
                c.type_code,
                c.product_type_id,
            )
            for c in ProductCategory.select(ProductCategory, Product).join(Product)
        },
    )

    price_types = list(PriceType.select())
    wrong["price_types"] = _differing(
        {
            f"id:{t['price_type_id']}": (
                t["price_type_id"],
                _text(t.get("code")),
                _text(t.get("name")),
                _text(t.get("short_name")),
                t.get("with_card") == "Y",
                _text(t.get("price_type_kind")),
                _text(t.get("currency_code")),
                t.get("state") == "A",
                t,
                None,
            )
            for t in sim.price_types
        },
        {
            t.price_type_key: (
                t.external_id,
                t.code,
                t.name,
                t.short_name,
                t.with_card,
                t.price_type_kind,
                t.currency_code,
                t.is_active,
                t.raw,
                t.deleted_at,
            )
            for t in price_types
        },
    )
    type_by_code = {t.code: t for t in price_types if t.code}
    wrong["product_prices"] = _differing(
        {
            (e["inventory_code"], price["price_type_code"], _text(price.get("card_code"))): (
                _text(e.get("inventory_barcode")),
                Decimal(price["price"]),
                product_by_code.get(e["inventory_code"]),
                type_by_code[price["price_type_code"]].id,
                type_by_code[price["price_type_code"]].currency_code,
            )
            for e in sim.prices
            for price in e["price_type"]
        },
        {
            (p.product_code, p.price_type_code, p.card_code): (
                p.product_barcode,
                p.price,
                p.product_id,
                p.price_type_id,
                p.currency_code,
            )
            for p in ProductPrice.select()
        },
    )

    warehouses = list(Warehouse.select())
    wrong["warehouses"] = _differing(
        {
            w["warehouse_id"]: (_text(w.get("code")), _text(w.get("name")), w)
            for w in sim.warehouses
        },
        {w.external_id: (w.code, w.name, w.raw) for w in warehouses},
    )
    warehouse_ids = {w.external_id: w.id for w in warehouses}
    today = sim.today
    wrong["stock_balances"] = _differing(
        {
            tuple(_text(row.get(part)) for part in BALANCE_KEY_PARTS): (
                _text(row.get("warehouse_code")),
                _text(row.get("product_code")),
                _text(row.get("product_barcode")),
                Decimal(row["quantity"]),
                Decimal(row["input_price"]),
                _text(row.get("measure_code")),
                _text(row.get("inventory_kind")),
                today,
                product_ids.get(row["product_id"]),
                warehouse_ids.get(row["warehouse_id"]),
            )
            for row in sim.stock["F"]
        },
        {
            (
                b.warehouse_external_id,
                b.product_external_id,
                b.batch_number,
                b.card_code,
                b.expiry_date.strftime("%d.%m.%Y") if b.expiry_date else None,
                b.serial_number,
            ): (
                b.warehouse_code,
                b.product_code,
                b.product_barcode,
                b.quantity,
                b.input_price,
                b.measure_code,
                b.inventory_kind,
                b.balance_date,
                b.product_id,
                b.warehouse_id,
            )
            for b in StockBalance.select().where(StockBalance.condition == "F")
        },
    )
    if StockBalance.select().where(StockBalance.condition != "F").exists():
        wrong["stock_balances"].append("a row of another condition")
    return wrong


if __name__ == "__main__":
    sys.exit(main())
