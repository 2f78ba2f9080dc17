"""The simulator stamps every change with its clock's moment, beside the data, never in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from jobs.simulator import (
    PRICES_PATH,
    PRODUCTS_PATH,
    SmartUpSimulator,
    generate_account,
)
from tests.helpers import PASSWORD, TODAY, USER

NINE = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # 09:00 in Tashkent


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world() -> tuple[SmartUpSimulator, Clock]:
    account = generate_account(products=20, orders=10, today=TODAY, days=3, warehouses=2)
    clock = Clock(NINE)
    sim = SmartUpSimulator(
        **account.as_kwargs(),
        user=USER,
        password=PASSWORD,
        today=TODAY,
        clock=clock,
    )
    return sim, clock


def test_records_loaded_whole_carry_no_stamp(world):
    sim, _ = world
    for kind in ("products", "orders", "groups", "product_types", "price_types", "prices", "stock"):
        assert sim.changed_at(kind) == {} and sim.removed_at(kind) == {}


def test_every_change_is_stamped_with_the_clock_when_it_was_made(world):
    sim, clock = world
    product = sim.products[3]
    order = sim.orders[2]
    sim.update_product(product["product_id"], name="first")
    clock.now = NINE + timedelta(minutes=30)
    sim.update_order(order["deal_id"], status="B#S")
    sim.update_product(product["product_id"], name="second")  # the latest change counts
    clock.now = NINE + timedelta(hours=2)
    group = sim.groups[0]
    sim.update_group(group["product_group_id"], name="renamed")
    kind = group["product_group_types"][0]
    sim.update_group_type(kind["product_type_id"], name="type renamed")
    price_type = sim.price_types[0]
    sim.update_price_type(price_type["price_type_id"], name="retail, renamed")
    entry = sim.prices[0]
    first_price = entry["price_type"][0]
    sim.set_price(
        entry["inventory_code"],
        first_price["price_type_code"],
        "99999",
        card_code=first_price.get("card_code"),
    )
    row = sim.stock["F"][0]
    sim.set_stock_quantity(
        row["warehouse_code"], row["product_id"], "7", batch_number=row.get("batch_number")
    )

    half_past = NINE + timedelta(minutes=30)
    eleven = NINE + timedelta(hours=2)
    assert sim.changed_at("products") == {product["product_id"]: half_past}
    assert sim.changed_at("orders") == {order["deal_id"]: half_past}
    assert sim.changed_at("groups") == {group["product_group_id"]: eleven}
    assert sim.changed_at("product_types") == {kind["product_type_id"]: eleven}
    assert sim.changed_at("price_types") == {price_type["price_type_id"]: eleven}
    assert sim.changed_at("prices") == {
        (
            entry["inventory_code"],
            first_price["price_type_code"],
            first_price.get("card_code"),
        ): eleven
    }
    assert sim.changed_at("stock") == {
        ("F", row["warehouse_code"], row["product_id"], row.get("batch_number")): eleven
    }


def test_additions_and_removals_are_stamped_apart(world):
    sim, clock = world
    gone = sim.products[0]["product_id"]
    sim.delete_product(gone)
    clock.now = NINE + timedelta(minutes=5)
    sim.add_products([{**sim.products[0], "product_id": "new-1", "code": "NEW-1"}])
    assert sim.removed_at("products") == {gone: NINE}
    assert sim.changed_at("products") == {"new-1": NINE + timedelta(minutes=5)}
    sim.add_products([{**sim.products[0], "product_id": gone, "code": "BACK"}])  # put back
    assert sim.removed_at("products") == {}
    assert gone in sim.changed_at("products")


def test_the_stamps_are_never_served_and_a_naive_clock_is_refused(world):
    sim, clock = world
    product = sim.products[1]
    sim.update_product(product["product_id"], name="stamped")
    entry = sim.prices[0]
    sim.set_price(entry["inventory_code"], entry["price_type"][0]["price_type_code"], "1")
    with sim:
        for path in (PRODUCTS_PATH, PRICES_PATH):
            answer = requests.post(
                sim.base_url + path,
                json={},
                auth=(USER, PASSWORD),
                headers={"project_code": "trade"},
                timeout=10,
            )
            assert answer.status_code == 200
            assert "changed_at" not in answer.text and "2026-12-07T04" not in answer.text
    clock.now = datetime(2026, 12, 7, 9, 0)  # naive
    with pytest.raises(ValueError, match="aware"):
        sim.update_product(product["product_id"], name="again")
    sim.set_clock(None)  # back to the wall clock
    before = datetime.now(UTC)
    sim.update_product(product["product_id"], name="wall")
    assert before <= sim.changed_at("products")[product["product_id"]] <= datetime.now(UTC)
