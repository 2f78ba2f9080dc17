"""The soak's check of exact data (tests/soak_outages.py) can fail: after a full sync of
every stream it finds nothing wrong; after SmartUp changes a row of any table, it names
that table (and only that one) until the next sync."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.simulator import SmartUpSimulator, generate_account
from tests.helpers import PASSWORD, TODAY, USER, coded_price_types, run_with_every_stream
from tests.soak_outages import wrong_rows


@pytest.fixture
def soak_shop() -> Iterator[SmartUpSimulator]:
    account = generate_account(
        products=40,
        orders=10,
        today=TODAY,
        price_types=coded_price_types(),
        price_codeless_products=False,
    )
    with SmartUpSimulator(
        **account.as_kwargs(),
        user=USER,
        password=PASSWORD,
        today=TODAY,
    ) as sim:
        yield sim


def wrong_tables(sim: SmartUpSimulator) -> set[str]:
    return {table for table, wrong in wrong_rows(sim).items() if wrong}


def test_the_soak_check_names_each_table_that_differs(pg, soak_shop):
    shop = soak_shop
    assert run_with_every_stream(shop, pg, "full", full=True).status == "SUCCESS"
    assert wrong_tables(shop) == set()

    product = shop.products[0]
    shop.update_product(product["product_id"], name="changed")
    assert wrong_tables(shop) == {"products"}
    shop.update_order(shop.orders[0]["deal_id"], status="D")
    assert wrong_tables(shop) == {"products", "orders"}
    grouped = next(p for p in shop.products[1:] if p.get("groups"))
    shop.update_product(grouped["product_id"], groups=grouped["groups"][1:])
    assert wrong_tables(shop) == {"products", "orders", "product_categories"}
    group = shop.groups[0]
    shop.update_group(group["product_group_id"], name="changed")
    assert "product_groups" in wrong_tables(shop)
    shop.update_group_type(group["product_group_types"][0]["product_type_id"], name="changed")
    assert "product_types" in wrong_tables(shop)
    shop.update_price_type(shop.price_types[0]["price_type_id"], name="changed")
    assert "price_types" in wrong_tables(shop)
    entry = next(e for e in shop.prices if e["price_type"])
    first = entry["price_type"][0]
    shop.set_price(
        entry["inventory_code"], first["price_type_code"], "1.5", card_code=first["card_code"]
    )
    assert "product_prices" in wrong_tables(shop)
    row = shop.stock["F"][0]
    shop.set_stock_quantity(
        row["warehouse_code"], row["product_id"], "0.125", batch_number=row["batch_number"]
    )
    assert "stock_balances" in wrong_tables(shop)
    shop.set_warehouses([{**w, "name": "changed"} for w in shop.warehouses])
    assert "warehouses" in wrong_tables(shop)

    assert run_with_every_stream(shop, pg, "full", full=True).status == "SUCCESS"
    assert wrong_tables(shop) == set()
