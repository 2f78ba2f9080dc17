"""End to end on real PostgreSQL, with SmartUp played by the simulator over loopback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from jobs.models import Order, OrderItem, Product, SyncRun
from jobs.run.sync import RunRequest, run_sync
from jobs.simulator import Fault
from tests.helpers import FAST_RETRY, PASSWORD, TASHKENT, TODAY, settings_for


def sync(sim, url, kind="full", **overrides):
    return run_sync(
        RunRequest(
            kind=kind, settings=settings_for(sim, url, **overrides), today=TODAY, retry=FAST_RETRY
        )
    )


def reopen(url):
    from jobs.models import open_database

    return open_database(url)


def product_state():
    return sorted((p.external_id, p.name, p.content_hash) for p in Product.select())


def counts(outcome, stream):
    result = next(r for r in outcome.results if r.stream == stream)
    return result.inserted, result.updated, result.unchanged, result.rejected


def test_full_sync_stores_exactly_what_smartup_serves(pg, simulator):
    outcome = sync(simulator, pg)
    assert outcome.status == "SUCCESS"
    reopen(pg)
    served_products = {p["product_id"]: p for p in simulator.products}
    served_orders = {o["deal_id"]: o for o in simulator.orders}
    stored = {p.external_id: p for p in Product.select()}
    assert set(stored) == set(served_products)
    assert {o.source_external_id for o in Order.select()} == set(served_orders)
    assert OrderItem.select().count() == sum(
        len(o["order_products"]) for o in served_orders.values()
    )
    for product_id, served in served_products.items():
        product = stored[product_id]
        assert product.name == (served["name"] or None)
        assert product.is_active == (served["state"] == "A")
        expected = list(dict.fromkeys(b for b in re.split(r"[|,;\s]+", served["barcodes"]) if b))
        assert product.barcodes == expected
        assert product.raw == served

    cyrillic = next(p for p in stored.values() if re.search("[А-Яа-я]", p.name or ""))
    assert cyrillic.name == served_products[cyrillic.external_id]["name"]
    several = next(p for p in stored.values() if len(p.barcodes) > 1)
    assert re.search(r"[|,;\s]", served_products[several.external_id]["barcodes"])
    assert any(not p.is_active for p in stored.values())

    spaced = next(o for o in served_orders.values() if " " in o["total_amount"])
    order = Order.get(Order.source_external_id == spaced["deal_id"])
    assert order.total_amount == Decimal(spaced["total_amount"].replace(" ", "").replace(",", "."))
    local = datetime.strptime(spaced["deal_time"], "%d.%m.%Y %H:%M:%S")
    assert order.deal_time == local.replace(tzinfo=TASHKENT)
    assert order.deal_time.utcoffset() is not None
    assert order.deal_time.astimezone(TASHKENT).utcoffset() == timedelta(hours=5)
    lines = list(order.items.order_by(OrderItem.line_no))
    assert [line.product_unit_id for line in lines] == [
        p["product_unit_id"] for p in spaced["order_products"]
    ]
    # lines whose code is a product's code now (some keep the old code of a renamed product)
    codes = {p.code for p in Product.select() if p.code}
    linked = [line for line in OrderItem.select() if line.product_code in codes]
    assert linked and all(line.product_id is not None for line in linked)

    run = SyncRun.get_by_id(outcome.run_id)
    assert (run.run_type, run.status) == ("full", "SUCCESS")
    assert run.synced_products_count == 100 and run.synced_orders_count == 40
    assert run.products_inserted == 100 and run.orders_inserted == 40
    assert run.finished_at >= run.started_at and run.error_message is None


def test_an_identical_sync_writes_nothing_and_three_changes_update_three(pg, simulator):
    sync(simulator, pg)
    again = sync(simulator, pg)
    assert counts(again, "products") == (0, 0, 100, 0)
    assert counts(again, "orders") == (0, 0, 40, 0)
    for product in simulator.products[:3]:
        simulator.update_product(product["product_id"], name=product["name"] + " (new)")
    changed = sync(simulator, pg, kind="products")
    assert changed.status == "SUCCESS"
    assert counts(changed, "products") == (0, 3, 0, 0)  # incremental: only what was modified
    reopen(pg)
    assert Product.select().where(Product.name.endswith(" (new)")).count() == 3


def test_an_order_whose_lines_changed_has_exactly_the_new_lines(pg, simulator):
    sync(simulator, pg)
    order = simulator.orders[0]
    new_lines = [
        {**order["order_products"][0], "product_unit_id": "990001", "order_quant": "7"},
        {**order["order_products"][0], "product_unit_id": "990002", "sold_amount": "1 000,25"},
    ]
    simulator.update_order(order["deal_id"], modified_on=TODAY, order_products=new_lines)
    outcome = sync(simulator, pg, kind="orders")
    inserted, updated, _, rejected = counts(outcome, "orders")
    assert (inserted, updated, rejected) == (0, 1, 0)
    reopen(pg)
    stored = Order.get(Order.source_external_id == order["deal_id"])
    lines = list(stored.items.order_by(OrderItem.line_no))
    assert [(line.product_unit_id, line.line_no) for line in lines] == [
        ("990001", 1),
        ("990002", 2),
    ]
    assert lines[0].quantity == Decimal("7") and lines[1].amount == Decimal("1000.25")


def test_two_bad_records_among_a_hundred_end_partial_with_98_stored(pg, simulator):
    products = simulator.products
    products[10]["product_id"] = ""
    products[20]["name"] = "broken\x00name"
    simulator.set_products(products)
    bad_id = products[20]["product_id"]
    with capture_logs() as logs:
        outcome = sync(simulator, pg, kind="products")
    assert outcome.status == "PARTIAL"
    assert counts(outcome, "products") == (98, 0, 0, 2)
    reopen(pg)
    assert Product.select().count() == 98
    rejected = [e for e in logs if e["event"] == "sync.record.rejected"]
    assert {
        (e["record_id"], "NUL" in e["reason"] or "no product_id" in e["reason"]) for e in rejected
    } == {
        (None, True),
        (bad_id, True),
    }
    run = SyncRun.get_by_id(outcome.run_id)
    assert run.status == "PARTIAL" and run.products_rejected == 2
    assert {r["id"] for r in run.details["products"]["rejects"]} == {None, bad_id}


def test_bad_credentials_fail_after_one_attempt_without_leaking_the_password(pg, simulator):
    with capture_logs() as logs:
        outcome = sync(simulator, pg, kind="products", smartup_password="wrong-" + PASSWORD)
    assert outcome.status == "FAILED"
    assert len([r for r in simulator.requests if r.endpoint == "products"]) == 1
    run = SyncRun.get_by_id(outcome.run_id)
    message = str(run.error_message)
    assert "401" in message and "Требуется авторизация" in message
    assert PASSWORD not in message and PASSWORD not in str(logs)


def test_503_twice_then_200_succeeds(pg, simulator):
    simulator.add_fault("products", Fault(status=503), times=2)
    outcome = sync(simulator, pg, kind="products")
    assert outcome.status == "SUCCESS"
    assert [r.status for r in simulator.requests if r.endpoint == "products"] == [503, 503, 200]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=429, headers={"Retry-After": "1"}),
        Fault(status=608),
        Fault(drop_connection=True),
    ],
)
def test_transient_failures_are_retried(pg, simulator, fault):
    simulator.add_fault("products", fault)
    assert sync(simulator, pg, kind="products").status == "SUCCESS"


def test_a_body_cut_off_halfway_changes_nothing(pg, simulator, monkeypatch):
    monkeypatch.setattr(
        "jobs.pipeline.loader.copy_text.COPY_BUFFER_BYTES", 2000
    )  # rows reach staging before the cut
    sync(simulator, pg, kind="products")
    reopen(pg)
    before = product_state()
    for product in simulator.products[:5]:
        simulator.update_product(product["product_id"], name="changed")

    simulator.add_fault("products", Fault(truncate_at=0.6), times=10)
    with capture_logs() as logs:
        broken = sync(simulator, pg, kind="products")
    assert broken.status == "FAILED"
    assert "broke off" in broken.error or "truncated" in broken.error
    assert any(e["event"] == "smartup.retry" for e in logs)
    reopen(pg)
    assert product_state() == before

    simulator.clear_faults()
    simulator.add_fault("products", Fault(truncate_at=0.5))
    healed = sync(simulator, pg, kind="products")
    assert healed.status == "SUCCESS" and counts(healed, "products") == (0, 5, 0, 0)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (
            Fault(
                status=200,
                body="<html><body>Service Unavailable</body></html>",
                content_type="text/html",
            ),
            "not JSON",
        ),
        (Fault(invalid_json=True), "not JSON"),
        (Fault(status=481), "481"),
    ],
)
def test_a_body_that_is_not_the_json_expected_fails_with_one_clear_line(
    pg, simulator, fault, words
):
    simulator.add_fault("products", fault)
    outcome = sync(simulator, pg, kind="products")
    assert outcome.status == "FAILED"
    assert words in outcome.error and "\n" not in outcome.error


def test_orders_are_asked_for_in_windows_of_at_most_seven_days_per_filial(pg, simulator):
    outcome = sync(
        simulator, pg, kind="orders", sync_orders_days_back=20, smartup_filial_ids=("100", "200")
    )
    assert outcome.status == "SUCCESS"
    asked = [r for r in simulator.requests if r.endpoint == "orders"]
    assert len(asked) == 2 * 3
    assert {r.headers["filial_id"] for r in asked} == {"100", "200"}
    spans = set()
    for request in asked:
        first = datetime.strptime(request.body["begin_modified_on"], "%d.%m.%Y").date()
        last = datetime.strptime(request.body["end_modified_on"], "%d.%m.%Y").date()
        assert (last - first).days + 1 <= 7
        spans.add((first, last))
    assert (
        min(s[0] for s in spans) == TODAY - timedelta(days=19) and max(s[1] for s in spans) == TODAY
    )


def test_a_full_run_with_one_failed_part_is_partial(pg, simulator):
    simulator.add_fault("orders", Fault(status=400, body="A02-24-048 organisation mismatch"))
    outcome = sync(simulator, pg)
    assert outcome.status == "PARTIAL"
    assert "orders" in outcome.error and "A02-24-048" in outcome.error
    assert counts(outcome, "products") == (100, 0, 0, 0)


def test_the_same_id_twice_in_one_export_keeps_the_last(pg, simulator):
    products = simulator.products
    products.append({**products[0], "name": "the later copy"})
    simulator.set_products(products)
    outcome = sync(simulator, pg, kind="products")
    assert outcome.status == "SUCCESS"
    assert counts(outcome, "products") == (100, 0, 0, 0)
    reopen(pg)
    assert Product.get(Product.external_id == products[0]["product_id"]).name == "the later copy"


def test_awkward_text_survives_the_way_to_the_database(pg, simulator):
    product_id = simulator.products[0]["product_id"]
    name = 'Tab\there, "quoted", back\\slash,\nnew line\r and ёмкость'
    simulator.update_product(product_id, name=name, barcodes='12"3|4\\56 789')
    assert sync(simulator, pg, kind="products").status == "SUCCESS"
    reopen(pg)
    stored = Product.get(Product.external_id == product_id)
    assert stored.name == name
    assert stored.barcodes == ['12"3', "4\\56", "789"]
    assert stored.raw == next(p for p in simulator.products if p["product_id"] == product_id)


def test_each_attempt_of_a_retried_job_is_its_own_run_row(pg, simulator):
    settings = settings_for(simulator, pg)
    simulator.add_fault("products", Fault(status=503), times=10)
    first = run_sync(
        RunRequest(
            kind="products",
            settings=settings,
            today=TODAY,
            retry=FAST_RETRY,
            job_id="job-42",
            attempt=1,
        )
    )
    assert first.status == "FAILED"
    simulator.clear_faults()
    again = run_sync(
        RunRequest(
            kind="products",
            settings=settings,
            today=TODAY,
            retry=FAST_RETRY,
            job_id="job-42",
            attempt=2,
        )
    )
    assert again.status == "SUCCESS" and again.run_id != first.run_id
    reopen(pg)
    assert [
        (run.job_id, run.attempt, run.status) for run in SyncRun.select().order_by(SyncRun.id)
    ] == [
        ("job-42", 1, "FAILED"),
        ("job-42", 2, "SUCCESS"),
    ]


def test_a_run_left_running_is_closed_as_interrupted_with_its_cause_when_known(pg, simulator):
    settings = settings_for(simulator, pg)
    reopen(pg)
    started = datetime.now(UTC)
    known = SyncRun.create(run_type="products", status="RUNNING", started_at=started, job_id="a")
    unknown = SyncRun.create(run_type="full", status="RUNNING", started_at=started, job_id="b")
    other = SyncRun.create(run_type="orders", status="RUNNING", started_at=started, job_id="c")
    causes = {known.id: "database error: server closed the connection unexpectedly"}

    outcome = run_sync(
        RunRequest(
            kind="products",
            settings=settings,
            today=TODAY,
            retry=FAST_RETRY,
            orphan_cause=lambda run: causes.get(run.id),
        )
    )
    assert outcome.status == "SUCCESS"
    reopen(pg)
    rows = {run.id: run for run in SyncRun.select()}
    assert rows[known.id].status == rows[unknown.id].status == "FAILED"
    assert rows[known.id].error_message == (
        "interrupted: the database or the worker went away "
        "(database error: server closed the connection unexpectedly)"
    )
    assert rows[unknown.id].error_message == "interrupted: the database or the worker went away"
    assert rows[other.id].status == "RUNNING"  # an orders run: not this kind's to close


def test_an_id_twice_in_different_batches_keeps_the_last_copy(pg, simulator, monkeypatch):
    # a few rows a batch
    monkeypatch.setattr("jobs.pipeline.loader.copy_text.COPY_BUFFER_BYTES", 3000)
    sync(simulator, pg)
    products, orders = simulator.products, simulator.orders
    stored_name = products[0]["name"]
    # Early copies differ from what is stored; the last copies equal it (product) or are new.
    simulator.set_products([{**products[0], "name": "an early copy"}, *products[1:], products[0]])
    order = orders[0]
    early = {**order, "order_products": order["order_products"][:1], "status": "D"}
    late = {**order, "order_products": order["order_products"][-1:], "status": "B#S"}
    simulator.set_orders([early, *orders[1:], late])

    outcome = sync(simulator, pg)
    assert outcome.status == "SUCCESS"
    products_result, orders_result = outcome.results
    assert products_result.stored == 100 and orders_result.stored == 40
    reopen(pg)
    assert Product.get(Product.external_id == products[0]["product_id"]).name == stored_name
    stored_order = Order.get(Order.source_external_id == order["deal_id"])
    assert stored_order.status == "B#S"
    assert [line.product_unit_id for line in stored_order.items] == [
        order["order_products"][-1]["product_unit_id"]
    ]


def stored_lines():
    """Each order's lines as stored: (line id, line_no, product_unit_id, product_id)."""
    return {
        order.source_external_id: [
            (line.id, line.line_no, line.product_unit_id, line.product_id)
            for line in order.items.order_by(OrderItem.line_no)
        ]
        for order in Order.select()
    }


def test_orders_over_many_small_lookup_and_copy_batches(pg, simulator, monkeypatch):
    # An order weighs 1 + its lines: a look-up batch holds two or three orders, and a COPY
    # batch one order with its lines (parents and children never part).
    monkeypatch.setattr("jobs.pipeline.engine.LOOKUP_BATCH", 25)
    monkeypatch.setattr("jobs.pipeline.loader.copy_text.COPY_BUFFER_BYTES", 3000)
    outcome = sync(simulator, pg)
    assert outcome.status == "SUCCESS" and counts(outcome, "orders") == (40, 0, 0, 0)
    reopen(pg)
    before = stored_lines()
    by_code = {p.code: p.id for p in Product.select() if p.code}
    by_id = {p.external_id: p.id for p in Product.select()}
    for order in simulator.orders:
        served = order["order_products"]
        assert [unit for _, _, unit, _ in before[order["deal_id"]]] == [
            line["product_unit_id"] for line in served
        ]
        # by SmartUp's product_id when the line has one, by code only when it has none
        assert [pid for *_, pid in before[order["deal_id"]]] == [
            by_id.get(line["product_id"])
            if line.get("product_id")
            else by_code.get(line["product_code"])
            for line in served
        ]
    assert any(pid is not None for lines in before.values() for *_, pid in lines)

    # Change the lines of orders that sit in different batches; the rest stays as it is.
    changed = [simulator.orders[n] for n in (3, 17, 39)]
    for order in changed:
        simulator.update_order(order["deal_id"], order_products=order["order_products"][::-1])
    outcome = sync(simulator, pg)  # a full run sweeps the whole window again
    assert outcome.status == "SUCCESS" and counts(outcome, "orders") == (0, 3, 37, 0)
    reopen(pg)
    after = stored_lines()
    changed_ids = {order["deal_id"] for order in changed}
    for deal_id, lines in after.items():
        if deal_id in changed_ids:
            assert [unit for _, _, unit, _ in lines] == [
                unit for _, _, unit, _ in before[deal_id][::-1]
            ]
        else:
            assert lines == before[deal_id]  # the same rows: not written again
