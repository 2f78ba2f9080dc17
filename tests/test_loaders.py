"""The PostgreSQL fast path and the portable SQLite path store the same rows, and an
unchanged re-sync writes nothing at all."""

from __future__ import annotations

import time
from datetime import UTC
from decimal import Decimal

import psycopg2

from jobs.models import Order, OrderItem, Product, open_database
from jobs.run.sync import RunRequest, run_sync
from tests.helpers import FAST_RETRY, TODAY, settings_for

SKIP = {"id", "first_synced_at", "last_synced_at", "order", "order_id", "product", "product_id"}


def _normal(value):
    if isinstance(value, Decimal):
        return value.normalize()
    if hasattr(value, "astimezone") and getattr(value, "tzinfo", None):
        return value.astimezone(UTC)
    return value


def snapshot(url):
    open_database(url)
    products = {
        p.external_id: {k: _normal(v) for k, v in p.__data__.items() if k not in SKIP}
        for p in Product.select()
    }
    codes = {p.id: p.code for p in Product.select()}
    orders = {}
    for order in Order.select():
        lines = [
            {
                **{k: _normal(v) for k, v in line.__data__.items() if k not in SKIP},
                "linked_code": codes.get(line.product_id) if line.product_id else None,
            }
            for line in order.items.order_by(OrderItem.line_no)
        ]
        orders[order.source_external_id] = (
            {k: _normal(v) for k, v in order.__data__.items() if k not in SKIP},
            lines,
        )
    return products, orders


def test_fast_path_and_sqlite_path_store_identical_rows(pg, sqlite_url, simulator):
    products = simulator.products
    products.append({**products[3], "name": "duplicate wins"})
    products[5]["product_id"] = ""
    simulator.set_products(products)
    for url in (pg, sqlite_url):
        outcome = run_sync(
            RunRequest(
                kind="full", settings=settings_for(simulator, url), today=TODAY, retry=FAST_RETRY
            )
        )
        assert outcome.status == "PARTIAL"
    fast, portable = snapshot(pg), snapshot(sqlite_url)
    assert len(fast[0]) == 99 and len(fast[1]) == 40
    assert fast[0] == portable[0]
    assert fast[1] == portable[1]
    assert any(line["linked_code"] for _, lines in fast[1].values() for line in lines)


def _table_stats(url):
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
                "WHERE relname IN ('products', 'orders', 'order_items') ORDER BY relname"
            )
            return cursor.fetchall()
    finally:
        connection.close()


def _row_versions(url):
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            found = {}
            for table in ("products", "orders", "order_items"):
                cursor.execute(f"SELECT id, xmin::text FROM {table} ORDER BY id")
                found[table] = cursor.fetchall()
            return found
    finally:
        connection.close()


def _settled_stats(url):
    """Statistics are flushed by each backend shortly after its transactions end."""
    previous = None
    for _ in range(40):
        current = _table_stats(url)
        if current == previous:
            return current
        previous = current
        time.sleep(0.5)
    return previous


def test_an_unchanged_resync_writes_no_row(pg, simulator):
    settings = settings_for(simulator, pg)
    empty_stats = _settled_stats(pg)
    assert (
        run_sync(RunRequest(kind="full", settings=settings, today=TODAY, retry=FAST_RETRY)).status
        == "SUCCESS"
    )
    before_stats, before_rows = _settled_stats(pg), _row_versions(pg)
    inserted = [after[1] - empty[1] for after, empty in zip(before_stats, empty_stats, strict=True)]
    assert inserted == [len(before_rows["order_items"]), 40, 100]  # the statistics do move

    again = run_sync(RunRequest(kind="full", settings=settings, today=TODAY, retry=FAST_RETRY))
    assert again.status == "SUCCESS"
    assert [(r.inserted, r.updated, r.unchanged) for r in again.results] == [
        (0, 0, 100),
        (0, 0, 40),
    ]
    assert _row_versions(pg) == before_rows
    assert _settled_stats(pg) == before_stats
