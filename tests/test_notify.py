"""Every change announced: ``NOTIFY smartup_sync`` once per committed answer that changed
anything (and once per reconciliation that marked rows gone or revived them), never for
an unchanged re-sync or a rolled-back answer; ``last_synced_at`` moves only on the rows
that changed, so the README's cursor query finds exactly them. Every export of a stream
(the warehouses and balances of ``stock``, the price types and prices of ``prices``) is
announced by the stream's name; a stock snapshot that deleted rows says how many as
``gone``."""

from __future__ import annotations

import json
import select
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg2
import pytest

from jobs.models import open_database
from jobs.pipeline.loader.announce import CHANNEL
from jobs.pipeline.streams import declared_names
from jobs.run.sync import RunRequest, run_sync
from jobs.simulator import Fault
from tests.helpers import (
    EVERY_STREAM_SETTINGS,
    FAST_RETRY,
    TODAY,
    fill,
    readme_queries,
    settings_for,
    whole_shop,
)


class Listener:
    """A second connection that ``LISTEN smartup_sync``, as the web app's would."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg2.connect(url)
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute(f"LISTEN {CHANNEL}")

    def heard(self, wait: float = 0.5) -> list[dict[str, Any]]:
        """Every notification delivered so far (each run is over before this is asked:
        NOTIFY is delivered at commit, so nothing more is on its way)."""
        select.select([self.connection], [], [], wait)
        self.connection.poll()
        found = [json.loads(n.payload) for n in self.connection.notifies if n.channel == CHANNEL]
        self.connection.notifies.clear()
        return found

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def listener(pg: str) -> Iterator[Listener]:
    heard = Listener(pg)
    yield heard
    heard.close()


def sync(sim: Any, url: str, kind: str = "products", **settings: Any) -> Any:
    return run_sync(
        RunRequest(
            kind=kind, settings=settings_for(sim, url, **settings), today=TODAY, retry=FAST_RETRY
        )
    )


def changed_since(url: str, cursor: datetime) -> list[tuple[Any, ...]]:
    """The README's "changed since a cursor" query for products, as the README has it."""
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as db:
            db.execute(readme_queries()["changed_products"], {"cursor": cursor})
            return list(db.fetchall())
    finally:
        connection.close()


def newest_sync(url: str) -> datetime:
    db = open_database(url)
    moment: datetime = db.execute_sql("SELECT max(last_synced_at) FROM products").fetchone()[0]
    return moment


def test_one_notification_per_changing_answer_and_none_for_an_unchanged_one(
    pg, simulator, listener
):
    first = sync(simulator, pg)
    assert first.status == "SUCCESS"
    assert listener.heard() == [
        {
            "stream": "products",
            "run_id": first.run_id,
            "inserted": 100,
            "updated": 0,
            "gone": 0,
            "revived": 0,
        }
    ]
    cursor = newest_sync(pg)
    assert changed_since(pg, cursor) == []

    again = sync(simulator, pg)  # the next run: incremental
    assert again.status == "SUCCESS" and listener.heard() == []
    assert changed_since(pg, cursor) == []  # unchanged rows keep their last_synced_at

    changed_ids = sorted(p["product_id"] for p in simulator.products[:3])
    for product_id in changed_ids:
        simulator.update_product(product_id, name=f"renamed {product_id}")
    third = sync(simulator, pg)
    [heard] = listener.heard()
    print("heard:", json.dumps(heard))  # the closing note quotes one
    assert heard == {
        "stream": "products",
        "run_id": third.run_id,
        "inserted": 0,
        "updated": 3,
        "gone": 0,
        "revived": 0,
    }
    rows = changed_since(pg, cursor)
    assert sorted(row[1] for row in rows) == changed_ids  # external_id: exactly the changed
    assert all(row[-1] > cursor for row in rows)


def test_an_answer_that_is_rolled_back_is_never_heard(pg, simulator, listener):
    sync(simulator, pg)
    listener.heard()
    cursor = newest_sync(pg)
    for product in simulator.products[:2]:
        simulator.update_product(product["product_id"], name="never stored")
    # Every attempt of the answer breaks off midway: each is rolled back, the run fails
    simulator.add_fault("products", Fault(truncate_at=0.5), times=20)
    broken = sync(simulator, pg)
    assert broken.status == "FAILED"
    assert listener.heard() == []
    assert changed_since(pg, cursor) == []
    simulator.clear_faults()
    mended = sync(simulator, pg)
    assert mended.status == "SUCCESS"
    assert [(n["updated"], n["run_id"]) for n in listener.heard()] == [(2, mended.run_id)]
    assert len(changed_since(pg, cursor)) == 2


def test_reconciliation_announces_gone_and_revived_rows_once(pg, simulator, listener):
    sync(simulator, pg, kind="full")
    listener.heard()
    cursor = newest_sync(pg)
    removed = [p for p in simulator.products[:4]]
    for product in removed:
        simulator.delete_product(product["product_id"])
    gone_run = sync(simulator, pg)
    # An incremental run marks nothing gone: only a complete catalogue may
    assert listener.heard() == []
    full = run_sync(
        RunRequest(
            kind="products",
            settings=settings_for(simulator, pg),
            today=TODAY,
            retry=FAST_RETRY,
            full=True,
        )
    )
    assert gone_run.status == "SUCCESS" and full.status == "SUCCESS"
    assert listener.heard() == [
        {
            "stream": "products",
            "run_id": full.run_id,
            "inserted": 0,
            "updated": 0,
            "gone": 4,
            "revived": 0,
        }
    ]
    gone_rows = changed_since(pg, cursor)
    assert sorted(row[1] for row in gone_rows) == sorted(p["product_id"] for p in removed)
    assert all(row[5] is not None for row in gone_rows)  # deleted_at is set

    cursor = newest_sync(pg)
    simulator.add_products(removed[:1])  # back, unchanged: the load writes nothing
    back = sync(simulator, pg)
    assert listener.heard() == [
        {
            "stream": "products",
            "run_id": back.run_id,
            "inserted": 0,
            "updated": 0,
            "gone": 0,
            "revived": 1,
        }
    ]
    assert [row[1] for row in changed_since(pg, cursor)] == [removed[0]["product_id"]]


def test_prices_and_stock_answers_are_announced_by_stream_and_a_snapshot_announces_deletions(
    pg, listener
):
    with whole_shop() as shop:
        fill(shop, pg)
        assert {heard["stream"] for heard in listener.heard()} == set(declared_names())

        again = sync(shop, pg, "stock", **EVERY_STREAM_SETTINGS)
        assert again.status == "SUCCESS" and listener.heard() == []  # the same snapshot

        # one balance row changes: the stock answer is announced as "stock"
        changed, removed = [b for b in shop.stock["F"] if b["batch_number"]][:2]
        shop.set_stock_quantity(
            changed["warehouse_code"],
            changed["product_id"],
            "12345",
            batch_number=changed["batch_number"],
        )
        third = sync(shop, pg, "stock", **EVERY_STREAM_SETTINGS)
        assert listener.heard() == [
            {
                "stream": "stock",
                "run_id": third.run_id,
                "inserted": 0,
                "updated": 1,
                "gone": 0,
                "revived": 0,
            }
        ]

        # one row leaves the snapshot: deleted, and announced once, as gone
        stock_of = partial(stock_by_place, pg, removed["product_id"])
        before = stock_of()
        shop.remove_stock_row(
            removed["warehouse_code"], removed["product_id"], batch_number=removed["batch_number"]
        )
        fourth = sync(shop, pg, "stock", **EVERY_STREAM_SETTINGS)
        assert fourth.status == "SUCCESS"
        assert listener.heard() == [
            {
                "stream": "stock",
                "run_id": fourth.run_id,
                "inserted": 0,
                "updated": 0,
                "gone": 1,
                "revived": 0,
            }
        ]
        place = (removed["warehouse_code"], "F")
        after = stock_of()
        assert after.get(place, Decimal(0)) == before[place] - Decimal(removed["quantity"])
        assert {k: v for k, v in after.items() if k != place} == {
            k: v for k, v in before.items() if k != place
        }

        # one price changes: the prices answer is announced as "prices"
        prices = shop.prices
        entry = next(e for e in prices if e["inventory_code"] and e["price_type"])
        entry["price_type"][0]["price"] = "7777.5"
        shop.set_prices(prices)
        fifth = sync(shop, pg, "prices", **EVERY_STREAM_SETTINGS)
        assert listener.heard() == [
            {
                "stream": "prices",
                "run_id": fifth.run_id,
                "inserted": 0,
                "updated": 1,
                "gone": 0,
                "revived": 0,
            }
        ]


def stock_by_place(url: str, product_external_id: str) -> dict[tuple[str, str], Decimal]:
    """The README's "one product's stock per warehouse", by (warehouse code, condition)."""
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as db:
            db.execute("SELECT id FROM products WHERE external_id = %s", (product_external_id,))
            [(product_id,)] = db.fetchall()
            db.execute(readme_queries()["product_stock_per_warehouse"], {"product_id": product_id})
            return {(row[1], row[3]): row[4] for row in db.fetchall()}
    finally:
        connection.close()
