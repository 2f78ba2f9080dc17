"""The queries of the README's "Reading the data", read from the README itself and run
against a database the simulator filled; each result is checked against what SmartUp
served (or, for the catalogue, against the stored rows added up another way)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import psycopg2
import psycopg2.extras
import pytest

from jobs.tasks import run_sync
from tests.helpers import FAST_RETRY, TODAY, readme_queries, settings_for

QUERY_NAMES = {
    "category_products",
    "product_stock_per_warehouse",
    "customer_orders",
    "changed_products",
    "changed_orders",
}


def test_the_readme_holds_every_query_the_shop_runs():
    assert set(readme_queries()) == QUERY_NAMES


def run_query(url: str, name: str, **params: Any) -> list[dict[str, Any]]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(readme_queries()[name], params)
            return [dict(row) for row in cursor.fetchall()]
    finally:
        connection.close()


def fill(sim: Any, url: str, kind: str = "full") -> None:
    outcome = run_sync(kind, settings=settings_for(sim, url), today=TODAY, retry=FAST_RETRY)
    assert outcome.status == "SUCCESS", outcome.error


def newest(url: str, table: str) -> Any:
    return scalar(url, f"SELECT max(last_synced_at) FROM {table}")


def scalar(url: str, sql: str) -> Any:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchone()[0]
    finally:
        connection.close()


def test_a_customers_orders_with_their_lines_and_products(pg, simulator):
    fill(simulator, pg)
    served = simulator.orders
    person = served[0]["person_id"]
    theirs = [order for order in served if order["person_id"] == person]
    rows = run_query(pg, "customer_orders", person_id=person)

    expected_lines = sorted(
        (order["deal_id"], line["product_code"] or "")  # "" is stored as NULL
        for order in theirs
        for line in order["order_products"]
    )
    by_order_id = {
        order_id: deal_id
        for order_id, deal_id in _pairs(pg, "SELECT id, source_external_id FROM orders")
    }
    assert (
        sorted((by_order_id[r["order_id"]], r["product_code"] or "") for r in rows)
        == expected_lines
    )
    codes = {p["code"]: p["name"] for p in simulator.products}
    for row in rows:  # every line whose product is known points at it
        assert row["product_name"] == codes.get(row["product_code"])
        assert (row["product_id"] is None) == (row["product_code"] not in codes)
    # newest order first, its lines in order
    keys = [(r["deal_time"], -r["order_id"], -r["line_no"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert run_query(pg, "customer_orders", person_id="no such person") == []


def _pairs(url: str, sql: str) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


def test_what_changed_since_a_cursor(pg, simulator):
    fill(simulator, pg)
    products_cursor, orders_cursor = newest(pg, "products"), newest(pg, "orders")
    assert run_query(pg, "changed_products", cursor=products_cursor) == []
    assert run_query(pg, "changed_orders", cursor=orders_cursor) == []

    renamed = sorted(p["product_id"] for p in simulator.products[5:7])
    for product_id in renamed:
        simulator.update_product(product_id, name=f"new name {product_id}")
    order = simulator.orders[3]
    simulator.update_order(order["deal_id"], modified_on=TODAY, status="C")
    fill(simulator, pg)

    products = run_query(pg, "changed_products", cursor=products_cursor)
    assert [row["external_id"] for row in sorted(products, key=lambda r: r["external_id"])] == (
        renamed
    )
    assert all(row["name"].startswith("new name ") for row in products)
    orders = run_query(pg, "changed_orders", cursor=orders_cursor)
    assert [(row["source_external_id"], row["status"]) for row in orders] == [
        (order["deal_id"], "C")
    ]
    # the next cursor: the largest last_synced_at read; from there nothing is new
    assert run_query(pg, "changed_products", cursor=products[-1]["last_synced_at"]) == []


def catalogue_tables_missing(url: str) -> bool:
    return scalar(url, "SELECT to_regclass('product_stock') IS NULL") is True


def test_a_categorys_products_with_a_price_and_the_free_stock(pg, simulator):
    if catalogue_tables_missing(pg):
        pytest.skip("the catalogue's tables (product_stock, product_prices, ...) are not here")
    fill(simulator, pg)
    type_id, price_type = _pairs(
        pg,
        "SELECT pc.product_type_id, pp.price_type_code FROM product_categories pc "
        "JOIN product_prices pp ON pp.product_id = pc.product_id "
        "WHERE pc.product_type_id IS NOT NULL ORDER BY pc.product_type_id LIMIT 1",
    )[0]
    rows = run_query(pg, "category_products", product_type_id=type_id, price_type_code=price_type)
    members = {
        product_id
        for product_id, active in _pairs(
            pg,
            "SELECT p.id, p.is_active AND p.deleted_at IS NULL FROM products p "
            f"JOIN product_categories pc ON pc.product_id = p.id "
            f"WHERE pc.product_type_id = {int(type_id)}",
        )
        if active
    }
    assert rows and {row["id"] for row in rows} == members
    prices: dict[int, Decimal] = {}
    for product_id, price, type_code, card in _pairs(
        pg, "SELECT product_id, price, price_type_code, card_code FROM product_prices"
    ):
        if type_code == price_type and not card:
            prices[product_id] = price
    free: dict[int, Decimal] = defaultdict(Decimal)
    for product_id, quantity in _pairs(
        pg, "SELECT product_id, quantity FROM stock_balances WHERE condition = 'F'"
    ):
        free[product_id] += quantity
    for row in rows:
        assert row["price"] == prices.get(row["id"])
        assert row["free_stock"] == free.get(row["id"], Decimal(0))


def test_one_products_stock_per_warehouse(pg, simulator):
    if catalogue_tables_missing(pg):
        pytest.skip("the catalogue's tables (product_stock, warehouses, ...) are not here")
    fill(simulator, pg)
    [(product_id,)] = _pairs(
        pg, "SELECT product_id FROM stock_balances WHERE product_id IS NOT NULL LIMIT 1"
    )
    rows = run_query(pg, "product_stock_per_warehouse", product_id=product_id)
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for code, condition, quantity in _pairs(
        pg,
        "SELECT w.code, b.condition, b.quantity FROM stock_balances b "
        f"JOIN warehouses w ON w.id = b.warehouse_id WHERE b.product_id = {int(product_id)}",
    ):
        expected[(code, condition)] += quantity
    assert {(r["warehouse_code"], r["condition"]): r["quantity"] for r in rows} == expected
