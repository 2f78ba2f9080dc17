"""``python -m jobs demo``: a complete sync with no servers to set up.

Starts the bundled SmartUp simulator on loopback, migrates a local SQLite file, runs a
``full`` sync through the same code a worker runs, and shows what was stored. Running it
again shows the second sync finding nothing to write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jobs.migrate import apply_migrations
from jobs.models import Order, OrderItem, Product, open_database
from jobs.settings import Settings
from jobs.simulator import SmartUpSimulator, generate_orders, generate_products
from jobs.smartup import RetryPolicy
from jobs.tasks import run_sync

DEMO_USER, DEMO_PASSWORD, DEMO_FILIAL = "demo@smartup", "demo-secret", "100"


def run_demo(
    *,
    products: int,
    orders: int,
    database: Path,
    show: Callable[[Sequence[str], Sequence[Sequence[Any]]], None],
) -> int:
    started = time.monotonic()
    settings = Settings(
        database_url=f"sqlite:///{database}",
        smartup_base_url="http://127.0.0.1",  # replaced below, once the simulator listens
        smartup_user=DEMO_USER,
        smartup_password=DEMO_PASSWORD,
        smartup_filial_ids=(DEMO_FILIAL,),
    )
    today = datetime.now(settings.tz).date()
    catalogue = generate_products(products)
    order_book = generate_orders(orders, products=catalogue, today=today, filial_ids=(DEMO_FILIAL,))
    database.parent.mkdir(parents=True, exist_ok=True)
    apply_migrations(settings.database_url)
    simulator = SmartUpSimulator(
        products=catalogue, orders=order_book, user=DEMO_USER, password=DEMO_PASSWORD
    )
    with simulator:
        settings = Settings(**{**settings.__dict__, "smartup_base_url": simulator.base_url})
        outcome = run_sync(
            "full", settings=settings, today=today, retry=RetryPolicy(total_seconds=30)
        )
    print()
    print(
        f"demo: {outcome.status} in {time.monotonic() - started:.2f}s "
        f"(run {outcome.run_id}, simulator at {simulator.base_url}, database {database})"
    )
    show(
        ["stream", "received", "inserted", "updated", "unchanged", "rejected", "requests"],
        [
            [r.stream, r.received, r.inserted, r.updated, r.unchanged, r.rejected, r.requests]
            for r in outcome.results
        ],
    )
    _show_stored(settings, show)
    return 0 if outcome.status in ("SUCCESS", "PARTIAL") else 1


def _show_stored(
    settings: Settings, show: Callable[[Sequence[str], Sequence[Sequence[Any]]], None]
) -> None:
    db = open_database(settings.database_url)
    try:
        print()
        print(
            f"stored: {Product.select().count()} products, {Order.select().count()} orders, "
            f"{OrderItem.select().count()} order lines"
        )
        samples = (
            Product.select().where(Product.is_active == False).limit(1),  # noqa: E712
            Product.select().where(Product.barcodes.cast("text").contains(",")).limit(2),
        )
        show(
            ["external_id", "code", "name", "active", "barcodes"],
            [
                [p.external_id, p.code, p.name, p.is_active, ", ".join(p.barcodes)]
                for query in samples
                for p in query
            ],
        )
        print()
        show(
            ["deal_id", "status", "deal_time", "total_amount", "lines", "customer"],
            [
                [
                    o.source_external_id,
                    o.status,
                    o.deal_time,
                    o.total_amount,
                    OrderItem.select().where(OrderItem.order == o).count(),
                    o.person_name,
                ]
                for o in Order.select().order_by(Order.id).limit(3)
            ],
        )
    finally:
        db.close()
