"""Every change announced: ``NOTIFY smartup_sync`` once per committed answer that changed
anything (and once per reconciliation that marked rows gone or revived them), never for
an unchanged re-sync or a rolled-back answer; ``last_synced_at`` moves only on the rows
that changed, so the README's cursor query finds exactly them."""

from __future__ import annotations

import json
import select
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg2
import pytest

from jobs.announce import CHANNEL
from jobs.models import open_database
from jobs.simulator import Fault
from jobs.tasks import run_sync
from tests.helpers import FAST_RETRY, TODAY, readme_queries, settings_for


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
        kind, settings=settings_for(sim, url, **settings), today=TODAY, retry=FAST_RETRY
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
        "products",
        settings=settings_for(simulator, pg),
        today=TODAY,
        retry=FAST_RETRY,
        full=True,
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
