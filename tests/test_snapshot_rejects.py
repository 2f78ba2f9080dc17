"""A record rejected from a snapshot keeps its stored rows: never deleted, never marked
gone as "absent" (what the catalogue's end-to-end properties found)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobs.models import PriceType, ProductGroup, ProductPrice, StockBalance, open_database
from jobs.run.sync import RunOutcome, RunRequest, run_sync
from jobs.simulator import Fault, SmartUpSimulator
from tests.helpers import FAST_RETRY, PASSWORD, TODAY, USER, settings_for

JSON = "application/json; charset=utf-8"


@pytest.fixture
def smartup() -> Iterator[SmartUpSimulator]:
    with SmartUpSimulator(products=[], user=USER, password=PASSWORD, today=TODAY) as sim:
        yield sim


def serve(sim: SmartUpSimulator, url: str, endpoint: Any, stream: str, body: bytes) -> RunOutcome:
    """``body`` as the answer of ``endpoint``, then a run of ``stream`` with no brake (so
    that a row wrongly taken as absent would go)."""
    sim.clear_faults()
    sim.add_fault(endpoint, Fault(status=200, body=body, content_type=JSON), times=4)
    settings = settings_for(sim, url, sync_streams=(stream,), sync_max_gone_percent=100.0)
    outcome = run_sync(RunRequest(kind=stream, settings=settings, today=TODAY, retry=FAST_RETRY))
    open_database(url)
    return outcome


BALANCE = '{"warehouse_id":"1","product_id":"%s","batch_number":"B","quantity":%s}'


def test_an_unreadable_balance_row_keeps_its_stored_row(pg, smartup):
    rows = [BALANCE % (n, '"5"') for n in range(1, 4)]
    first = serve(smartup, pg, "stock", "stock", b'{"balance":[%s]}' % ",".join(rows).encode())
    assert first.status == "SUCCESS", first.error
    kept = StockBalance.get(StockBalance.product_external_id == "2")
    rows[1] = BALANCE % (2, "NaN")  # the record cannot be read at all; its id can
    second = serve(smartup, pg, "stock", "stock", b'{"balance":[%s]}' % ",".join(rows).encode())
    assert second.status == "PARTIAL"
    assert [r["id"] for r in second.results[0].rejects] == ["1/2/B"]
    assert second.results[0].gone == 0
    assert StockBalance.get_by_id(kept.id).quantity == kept.quantity


def test_an_unreadable_group_is_not_marked_gone(pg, smartup):
    groups = [f'{{"product_group_id":"{n}","state":"A","name":"g"}}' for n in range(1, 4)]
    body = b'{"product_group":[%s]}' % ",".join(groups).encode()
    assert serve(smartup, pg, "product_groups", "groups", body).status == "SUCCESS"
    groups[0] = '{"product_group_id":"1","state":"A","name":"g","x":-Infinity}'
    body = b'{"product_group":[%s]}' % ",".join(groups).encode()
    second = serve(smartup, pg, "product_groups", "groups", body)
    assert second.status == "PARTIAL" and second.results[0].gone == 0
    group = ProductGroup.get(ProductGroup.external_id == "1")
    assert group.deleted_at is None and group.is_active


def test_an_unreadable_price_type_is_not_marked_gone(pg, smartup):
    types = [f'{{"price_type_id":"{n}","code":"C{n}","state":"A"}}' for n in range(1, 4)]
    body = b'{"data":[%s]}' % ",".join(types).encode()
    assert serve(smartup, pg, "price_types_v2", "prices", body).status == "SUCCESS"
    types[2] = '{"price_type_id":"3","code":"C3","state":"A","name":NaN}'
    second = serve(
        smartup, pg, "price_types_v2", "prices", b'{"data":[%s]}' % ",".join(types).encode()
    )
    assert second.status == "PARTIAL"
    assert PriceType.get(PriceType.external_id == "3").deleted_at is None


PRICES = '{"inventory_code":"P%s","price_type":[{"price_type_code":"C","price":"%s"}]}'


@pytest.mark.parametrize(
    "hostile",
    [
        '{"inventory_code":"P2","price_type":7}',  # not a list
        '{"inventory_code":"P2","price_type":[{"price_type_code":"C","price":"9"},8]}',
        '{"inventory_code":"P2","price_type":[{"price_type_code":"C","price":NaN}]}',
    ],
)
def test_a_price_entry_rejected_whole_keeps_its_products_prices(pg, smartup, hostile):
    entries = [PRICES % (n, n) for n in range(1, 4)]
    body = b'{"inventory":[%s]}' % ",".join(entries).encode()
    assert serve(smartup, pg, "prices", "prices", body).status == "SUCCESS"
    kept = ProductPrice.get(ProductPrice.product_code == "P2")
    entries[1] = hostile
    second = serve(
        smartup, pg, "prices", "prices", b'{"inventory":[%s]}' % ",".join(entries).encode()
    )
    assert second.status == "PARTIAL"
    prices = next(r for r in second.results if r.stream == "prices")
    assert prices.gone == 0 and prices.rejected == 1
    assert ProductPrice.get_by_id(kept.id).price == kept.price
    # an entry that is gone is still gone: its prices are deleted
    third = serve(smartup, pg, "prices", "prices", b'{"inventory":[%s]}' % entries[0].encode())
    assert next(r for r in third.results if r.stream == "prices").gone == 2
    assert [p.product_code for p in ProductPrice.select()] == ["P1"]


@pytest.mark.parametrize("name", [b'"\\u0000"', b'"\xff\xfe"', b'"\\ud800x"'])
def test_a_price_type_named_by_text_no_row_can_hold_is_rejected_and_the_run_ends(pg, smartup, name):
    # no id, no code: the reject is named by the name, which the run's row must hold
    body = b'{"data":[{"price_type_id":"1","code":"C","state":"A"},{"name":%s}]}' % name
    outcome = serve(smartup, pg, "price_types_v2", "prices", body)
    assert outcome.status == "PARTIAL", outcome.error
    [reject] = outcome.results[0].rejects
    assert reject["reason"] == "no price_type_id and no code" and reject["id"]
    assert "\x00" not in reject["id"] and reject["id"].encode("utf-8")
    assert PriceType.select().count() == 1


@pytest.mark.parametrize("code", [b'"P\\u0000"', b'"P\xff"'])
def test_a_price_entry_named_by_text_no_row_can_hold_is_rejected_and_the_run_ends(
    pg, smartup, code
):
    body = b'{"inventory":[%s,{"inventory_code":%s,"price_type":7}]}' % (
        (PRICES % (1, 1)).encode(),
        code,
    )
    outcome = serve(smartup, pg, "prices", "prices", body)
    assert outcome.status == "PARTIAL", outcome.error
    prices = next(r for r in outcome.results if r.stream == "prices")
    [reject] = prices.rejects
    assert reject["id"] and "\x00" not in reject["id"] and reject["id"].encode("utf-8")
    assert [p.product_code for p in ProductPrice.select()] == ["P1"]
