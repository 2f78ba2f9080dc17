"""``python -m jobs demo``: a complete sync with no servers to set up.

Starts the bundled SmartUp simulator on loopback, migrates a local SQLite file, runs a
``full`` sync of every declared stream (the catalogue, orders, groups, prices, stock)
through the same code a worker runs, and shows what was stored: for a few products, their
category, prices and stock. Running it
again shows the second sync finding nothing to write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from jobs.models import Order, OrderItem, Product, open_database
from jobs.pipeline.smartup import RetryPolicy
from jobs.pipeline.streams import declared_names
from jobs.processes.migrate import apply_migrations
from jobs.run.rows import PARTIAL, SUCCESS
from jobs.run.sync import RunRequest, run_sync
from jobs.settings import Settings
from jobs.simulator import SmartUpSimulator, generate_account

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
        sync_streams=declared_names(),  # every stream
    )
    today = datetime.now(settings.tz).date()
    # a price of a product without a code cannot be stored (prices name products by code
    # only): the demo's account prices only the products that have one
    account = generate_account(
        products=products,
        orders=orders,
        today=today,
        filial_ids=(DEMO_FILIAL,),
        price_codeless_products=False,
    )
    # The prices export names a price type by its code: ask for the types that have one
    # (SMARTUP_PRICE_TYPE_CODES), as an account whose main types have no code must.
    coded = tuple(t["code"] for t in account.price_types if t.get("code") and t.get("state") == "A")
    settings = Settings(**{**settings.__dict__, "smartup_price_type_codes": coded})
    database.parent.mkdir(parents=True, exist_ok=True)
    apply_migrations(settings.database_url)
    simulator = SmartUpSimulator(
        **account.as_kwargs(),
        user=DEMO_USER,
        password=DEMO_PASSWORD,
        timezone=settings.smartup_timezone,
    )
    with simulator:
        settings = Settings(**{**settings.__dict__, "smartup_base_url": simulator.base_url})
        outcome = run_sync(
            RunRequest(
                kind="full", settings=settings, today=today, retry=RetryPolicy(total_seconds=30)
            )
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
    return 0 if outcome.status in (SUCCESS, PARTIAL) else 1


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
        print()
        show(
            ["product", "category", "prices", "stock (free)"],
            [_shelf(db, product) for product in Product.select().order_by(Product.id).limit(4)],
        )
    finally:
        db.close()


def _shelf(db: Any, product: Product) -> list[Any]:
    """What a shop shows of one product: its category, its prices, its stock."""
    category = db.execute_sql(
        "SELECT g.name, t.name FROM product_categories c JOIN product_types t "
        "ON t.id = c.product_type_id JOIN product_groups g ON g.id = t.group_id "
        "WHERE c.product_id = ? ORDER BY c.line_no LIMIT 1",
        (product.id,),
    ).fetchone()
    prices = db.execute_sql(
        "SELECT coalesce(t.short_name, p.price_type_code), p.price, p.currency_code "
        "FROM product_prices p LEFT JOIN price_types t ON t.id = p.price_type_id "
        "WHERE p.product_id = ? AND p.card_code IS NULL ORDER BY p.price_type_code",
        (product.id,),
    ).fetchall()
    stock = db.execute_sql(
        "SELECT sum(quantity) FROM product_stock WHERE product_id = ? AND condition = 'F'",
        (product.id,),
    ).fetchone()
    return [
        f"{product.code or '-'} {product.name or ''}"[:40],
        f"{category[0]}: {category[1]}" if category else "-",
        ", ".join(f"{name} {price} {currency or ''}".strip() for name, price, currency in prices)
        or "-",
        stock[0] if stock and stock[0] is not None else "-",
    ]
