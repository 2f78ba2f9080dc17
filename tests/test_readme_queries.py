"""The queries of the README's "Reading the data", read from the README itself and run
against a database the simulator filled with every stream (products, orders, groups,
prices, stock in all three conditions); each result is checked against what the simulator
served, worked out here in Python from the served records, not with SQL."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg2
import psycopg2.extras
import pytest

from jobs.simulator import (
    SmartUpSimulator,
)
from jobs.simulator.reference import CATEGORY_GROUP_ID
from tests.helpers import (
    TODAY,
    fill,
    readme_queries,
    whole_shop,
)

QUERY_NAMES = {
    "category_products",
    "product_stock_per_warehouse",
    "customer_orders",
    "changed_products",
    "changed_orders",
}


@pytest.fixture
def shop() -> Iterator[SmartUpSimulator]:
    with whole_shop() as sim:
        yield sim


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


def _pairs(url: str, sql: str) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


def our_ids(url: str, table: str) -> dict[str, int]:
    """SmartUp id -> our id, of every row of ``table`` (to name what a query returns)."""
    return {
        external_id: id_ for id_, external_id in _pairs(url, f"SELECT id, external_id FROM {table}")
    }


def test_a_customers_orders_with_their_lines_and_products(pg, shop):
    products = shop.products
    by_id = {p["product_id"]: p for p in products}
    by_code = {p["code"]: p for p in products if p["code"]}
    coded = [p for p in products if p["code"]]
    # One order of a customer gets the lines the linking rule is about: an old code, no
    # code, no id (found by code), no id and an unknown code, an unknown id with a known code
    orders_of = Counter(o["person_id"] for o in shop.orders)
    order = next(
        o for o in shop.orders if len(o["order_products"]) >= 5 and orders_of[o["person_id"]] > 1
    )
    lines = order["order_products"]
    lines[0]["product_code"] = "OLD-" + (lines[0]["product_code"] or "X")
    lines[1]["product_code"] = None
    lines[2].update(product_id=None, product_code=coded[1]["code"])
    lines[3].update(product_id="", product_code="NO-SUCH-CODE")
    lines[4].update(product_id="999999", product_code=coded[2]["code"])
    shop.update_order(order["deal_id"], order_products=lines)
    fill(shop, pg)

    person = order["person_id"]
    theirs = [o for o in shop.orders if o["person_id"] == person]
    assert len({o["deal_time"] for o in theirs}) > 1  # an order to tell newest first by
    rows = run_query(pg, "customer_orders", person_id=person)

    def product_of(line: dict[str, Any]) -> dict[str, Any] | None:
        """The rule, in Python: by SmartUp's product_id; by code only when there is no id."""
        if line["product_id"]:
            return by_id.get(line["product_id"])
        return by_code.get(line["product_code"] or "")

    expected = {}
    for served in theirs:
        for line_no, line in enumerate(served["order_products"], start=1):
            product = product_of(line)
            expected[(served["deal_id"], line_no)] = (
                line["product_id"] or None,  # "" is stored as NULL
                line["product_code"] or None,
                product and product["product_id"],
                product and product["name"],
            )
    smartup_id = {ours: theirs_ for theirs_, ours in our_ids(pg, "products").items()}
    found = {
        (row["deal_id"], row["line_no"]): (
            row["product_external_id"],
            row["product_code"],
            smartup_id.get(row["product_id"]),
            row["product_name"],
        )
        for row in rows
    }
    assert len(rows) == len(found)
    assert found == expected
    assert [expected[(order["deal_id"], n)][2] for n in range(1, 6)] == [
        lines[0]["product_id"],
        lines[1]["product_id"],
        coded[1]["product_id"],
        None,
        None,
    ]
    # newest order first, its lines in order
    keys = [(r["deal_time"], -r["order_id"], -r["line_no"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert [r["deal_time"] for r in rows] == sorted((r["deal_time"] for r in rows), reverse=True)
    assert run_query(pg, "customer_orders", person_id="no such person") == []


def test_what_changed_since_a_cursor(pg, shop):
    fill(shop, pg)
    products_cursor, orders_cursor = newest(pg, "products"), newest(pg, "orders")
    assert run_query(pg, "changed_products", cursor=products_cursor) == []
    assert run_query(pg, "changed_orders", cursor=orders_cursor) == []

    renamed = sorted(p["product_id"] for p in shop.products[5:7])
    for product_id in renamed:
        shop.update_product(product_id, name=f"new name {product_id}")
    order = shop.orders[3]
    shop.update_order(order["deal_id"], modified_on=TODAY, status="C")
    fill(shop, pg)

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


def test_a_categorys_products_with_a_price_and_the_free_stock(pg, shop):
    fill(shop, pg)
    free: dict[str, Decimal] = defaultdict(Decimal)
    for balance in shop.stock["F"]:
        free[balance["product_id"]] += Decimal(balance["quantity"])

    def members_of(type_id: str) -> list[dict[str, Any]]:
        """The category's active products, as the simulator serves them now."""
        return [
            p
            for p in shop.products
            if p["state"] == "A" and any(g["type_id"] == type_id for g in p["groups"])
        ]

    not_free = {b["product_id"] for c in ("B", "T") for b in shop.stock[c]}
    # a category (a type of the group "Категория") with products with and without free
    # stock, and some booked or in transit, the one with the most products of those
    category_group = next(g for g in shop.groups if g["product_group_id"] == CATEGORY_GROUP_ID)
    category = max(
        (t["product_type_id"] for t in category_group["product_group_types"]),
        key=lambda type_id: (
            len({bool(free[p["product_id"]]) for p in members_of(type_id)[2:]}),
            any(p["product_id"] in not_free for p in members_of(type_id)[2:]),
            len(members_of(type_id)),
        ),
    )
    # two of its products leave the shop: one made passive, one deleted (marked gone)
    passive, deleted = (p["product_id"] for p in members_of(category)[:2])
    shop.update_product(passive, state="P")
    shop.delete_product(deleted)
    fill(shop, pg)
    assert (
        scalar(
            pg,
            f"SELECT count(*) FROM products WHERE external_id IN ('{passive}', "
            f"'{deleted}') AND (NOT is_active OR deleted_at IS NOT NULL)",
        )
        == 2
    )
    members = members_of(category)
    # wholesale (sums), in dollars, and one priced per card only (no price for everyone)
    for price_type in (
        t for t in shop.price_types if t["price_type_id"] in ("3003", "3005", "3004")
    ):
        price_of = {
            entry["inventory_code"]: Decimal(price["price"])
            for entry in shop.prices
            for price in entry["price_type"]
            if entry["inventory_code"]  # a price without a code names no product
            and price["price_type_code"] == price_type["code"]
            and price["card_code"] is None
        }
        expected = {
            p["product_id"]: (p["name"], price_of.get(p["code"]), free[p["product_id"]])
            for p in members
        }
        rows = run_query(
            pg,
            "category_products",
            product_type_id=our_ids(pg, "product_types")[category],
            price_type_id=our_ids(pg, "price_types")[price_type["price_type_id"]],
        )
        found = {row["external_id"]: (row["name"], row["price"], row["free_stock"]) for row in rows}
        assert found == expected, price_type["name"]
        assert len(rows) == len(expected)  # a product is listed once
        assert [(r["name"], r["id"]) for r in rows] == sorted((r["name"], r["id"]) for r in rows)
        assert {(r["price"] is None, r["currency_code"]) for r in rows} <= {
            (True, None),
            (False, price_type["currency_code"]),
        }
        if price_type["with_card"] == "Y":
            assert all(price is None for _, price, _ in expected.values())
        else:  # the check has something to tell apart: priced products, stocked or not
            assert any(price is not None for _, price, _ in expected.values())
    assert any(free[p["product_id"]] for p in members)
    assert not all(free[p["product_id"]] for p in members)
    assert any(p["product_id"] in not_free for p in members)  # whose B and T are not counted


def test_one_products_stock_per_warehouse(pg, shop):
    fill(shop, pg)
    warehouses = {w["warehouse_id"]: w for w in shop.warehouses}
    served: dict[str, dict[tuple[str, str], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for condition, balances in shop.stock.items():
        for balance in balances:
            place = (balance["warehouse_id"], condition)
            served[balance["product_id"]][place] += Decimal(balance["quantity"])
    # a product whose stock lies in several warehouses and conditions
    product_id = max(served, key=lambda p: (len(served[p]), p))
    assert (
        len({w for w, _ in served[product_id]}) > 1 and len({c for _, c in served[product_id]}) > 1
    )

    rows = run_query(
        pg, "product_stock_per_warehouse", product_id=our_ids(pg, "products")[product_id]
    )
    assert {
        (r["warehouse_external_id"], r["condition"]): (
            r["warehouse_code"],
            r["warehouse_name"],
            r["quantity"],
        )
        for r in rows
    } == {
        (warehouse, condition): (
            warehouses[warehouse]["code"],
            warehouses[warehouse]["name"],
            quantity,
        )
        for (warehouse, condition), quantity in served[product_id].items()
    }
    assert len(rows) == len(served[product_id])
    assert [(r["warehouse_code"], r["condition"]) for r in rows] == sorted(
        (r["warehouse_code"], r["condition"]) for r in rows
    )
    assert run_query(pg, "product_stock_per_warehouse", product_id=-1) == []


def scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of an ``EXPLAIN (FORMAT JSON)`` plan that reads a table."""
    if "Relation Name" in plan:
        yield plan
    for child in plan.get("Plans", ()):
        yield from scans(child)


def index_conditions(plan: dict[str, Any]) -> list[str]:
    found = [plan["Index Cond"]] if "Index Cond" in plan else []
    for child in plan.get("Plans", ()):
        found += index_conditions(child)
    return found


@pytest.mark.parametrize("name", sorted(QUERY_NAMES))
def test_every_query_finds_its_rows_by_an_index(pg, name):
    """With sequential scans priced out, every table a query reads is reached through an
    index condition: none is read whole (an index scan without a condition reads it all)."""
    params = {
        "product_type_id": 1,
        "price_type_id": 1,
        "product_id": 1,
        "person_id": "300001",
        "cursor": datetime(2026, 1, 1, tzinfo=UTC),
    }
    connection = psycopg2.connect(pg)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("EXPLAIN (FORMAT JSON) " + readme_queries()[name], params)
            [[explained]] = cursor.fetchall()
            plan = explained[0]["Plan"]
    finally:
        connection.close()
    read = list(scans(plan))
    assert read
    for node in read:
        assert node["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Heap Scan"), node
        assert index_conditions(node), (node["Relation Name"], node.get("Index Name"))
