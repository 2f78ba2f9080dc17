"""Look-up batches bounded by weight: pure functions, no servers."""

from __future__ import annotations

from jobs.pipeline.batches import batches
from jobs.pipeline.streams import STREAMS


def test_batches_end_when_their_weight_is_reached():
    items = iter([1, 1, 5, 1, 1, 1, 9, 2])
    assert list(batches(items, 4, weight=lambda n: n)) == [[1, 1, 5], [1, 1, 1, 9], [2]]


def test_batches_count_items_by_default():
    assert list(batches(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert list(batches(iter([]), 2)) == []


def test_an_order_weighs_one_plus_its_lines_and_a_product_one():
    orders, products = STREAMS["orders"], STREAMS["products"]
    assert orders.weight({"deal_id": "1", "order_products": [{}, {}, {}]}) == 4
    assert orders.weight({"deal_id": "1", "order_products": ""}) == 1
    assert orders.weight({"deal_id": "1"}) == 1
    assert orders.weight("not an object") == 1
    assert products.weight({"product_id": "1"}) == 1
