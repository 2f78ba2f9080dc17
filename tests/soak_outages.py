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
from itertools import pairwise
from pathlib import Path
from typing import Any

from rq import Queue
from rq.registry import ScheduledJobRegistry

from jobs.models import (
    Order,
    OrderItem,
    Product,
    ProductGroup,
    ProductPrice,
    StockBalance,
    SyncRun,
    open_database,
)
from jobs.queueing import OVERDUE_SECONDS, enqueue_sync
from jobs.simulator import (
    ENDPOINT_CLASS,
    Fault,
    SmartUpSimulator,
    generate_groups,
    generate_orders,
    generate_prices,
    generate_products,
    generate_stock,
    generate_warehouses,
)
from jobs.streams import declared_names
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
    products = generate_products(args.products)
    orders = generate_orders(
        args.orders, products=products, today=TODAY, days=7, filial_ids=("100",)
    )
    price_types = coded_price_types()
    warehouses = generate_warehouses()
    streams = declared_names()
    kinds = [*streams, "full"]
    processes: list[Proc] = []
    started = time.monotonic()
    try:
        with SmartUpSimulator(
            products=products,
            orders=orders,
            groups=generate_groups(),
            price_types=price_types,
            # a price of a product without a code is rejected: the final run must succeed
            prices=[e for e in generate_prices(products, price_types) if e["inventory_code"]],
            warehouses=warehouses,
            stock=generate_stock(products, warehouses),
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
    db = open_database(url)
    try:
        served_products = {p["product_id"]: p for p in sim.products}
        served_orders = {o["deal_id"]: o for o in sim.orders}
        stored_products = {p.external_id: p.raw for p in Product.select()}
        stored_orders = {o.source_external_id: o for o in Order.select()}
        differences = []
        if stored_products != served_products:
            wrong = [k for k in served_products if stored_products.get(k) != served_products[k]]
            differences.append(f"products differ: {len(wrong)} wrong, e.g. {wrong[:3]}")
        if {k: o.raw for k, o in stored_orders.items()} != served_orders:
            differences.append("orders differ")
        lines = {
            (item.order.source_external_id, item.product_unit_id)
            for item in OrderItem.select(OrderItem, Order).join(Order)
        }
        served_lines = {
            (deal_id, str(line["product_unit_id"]))
            for deal_id, order in served_orders.items()
            for line in order["order_products"]
        }
        if lines != served_lines or OrderItem.select().count() != len(served_lines):
            differences.append("order lines differ")
        if ProductGroup.select().count() != len(sim.groups):
            differences.append("product groups differ")
        prices = sum(len(entry["price_type"]) for entry in sim.prices)
        if ProductPrice.select().count() != prices:
            differences.append("prices differ")
        if StockBalance.select().count() != len(sim.stock["F"]):
            differences.append("stock differs")
        return not differences, differences
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
