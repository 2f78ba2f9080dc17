"""A day inside SmartUp's quota, end to end: real PostgreSQL (and SQLite where said), the
simulator over loopback with its day clock moved by the test, no real waiting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from jobs.day.plan import plan_for
from jobs.day.state import advance_watermark, mark_sweep, quota_today, stream_state
from jobs.models import Order, Product, SyncRun, open_database
from jobs.run.rows import SKIPPED
from jobs.run.sync import RunOutcome, RunRequest, run_sync
from jobs.simulator import Fault, SmartUpSimulator, generate_orders, generate_products
from tests.helpers import FAST_RETRY, PASSWORD, TASHKENT, TODAY, USER, settings_for

ROOT = Path(__file__).resolve().parent.parent
MORNING = datetime.combine(TODAY, clock(9, 0), tzinfo=TASHKENT)


def run(
    sim: SmartUpSimulator,
    url: str,
    kind: str,
    *,
    now: datetime = MORNING,
    periodic: bool = True,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> RunOutcome:
    """One run at ``now`` (the company day follows it), as the scheduler's job or on demand."""
    return run_sync(
        RunRequest(
            kind=kind,
            settings=settings_for(sim, url, **(settings or {})),
            periodic=periodic,
            now=now,
            today=now.astimezone(TASHKENT).date(),
            retry=FAST_RETRY,
            **options,
        )
    )


def posts(sim: SmartUpSimulator, endpoint: str) -> list[Any]:
    return [r for r in sim.requests if r.endpoint == endpoint]


def day_of(text: str) -> date:
    return datetime.strptime(text, "%d.%m.%Y").date()


@pytest.fixture
def two_filials() -> Iterator[SmartUpSimulator]:
    products = generate_products(50)
    orders = generate_orders(60, products=products, today=TODAY, days=30, filial_ids=("100", "200"))
    with SmartUpSimulator(
        products=products, orders=orders, user=USER, password=PASSWORD, today=TODAY
    ) as sim:
        yield sim


def test_a_periodic_orders_run_makes_one_request_per_filial(pg, two_filials):
    filials = {"smartup_filial_ids": ("100", "200")}
    first = run(two_filials, pg, "orders", settings=filials)
    assert first.status == "SUCCESS"
    swept = posts(two_filials, "orders")
    assert len(swept) == 2  # 7 days back: one window per filial
    assert {day_of(r.body["begin_modified_on"]) for r in swept} == {TODAY - timedelta(days=6)}

    later = run(two_filials, pg, "orders", now=MORNING + timedelta(minutes=10), settings=filials)
    assert later.status == "SUCCESS"
    incremental = posts(two_filials, "orders")[2:]
    assert sorted(r.headers["filial_id"] for r in incremental) == ["100", "200"]
    for request in incremental:  # the sweep at 09:00 sealed yesterday: today alone
        assert day_of(request.body["begin_modified_on"]) == TODAY
        assert day_of(request.body["end_modified_on"]) == TODAY
    open_database(pg)
    for filial in ("100", "200"):
        state = stream_state("orders", filial)
        assert state is not None and state.watermark == TODAY
        assert state.sealed_through == TODAY - timedelta(days=1)
    recent = {
        o["deal_id"]
        for o in two_filials.orders
        if day_of(o["deal_time"][:10]) >= TODAY - timedelta(days=6)
    }
    assert {o.source_external_id for o in Order.select()} == recent


def modified_between(sim: SmartUpSimulator, first: date, last: date) -> set[str]:
    return {o["deal_id"] for o in sim.orders if first <= day_of(o["deal_time"][:10]) <= last}


def after_an_outage(url: str, days: int) -> None:
    """The state a 20-day outage leaves: the watermark that many days back."""
    open_database(url)
    advance_watermark("orders", "100", TODAY - timedelta(days=days))
    mark_sweep("orders", "100", now=MORNING - timedelta(hours=1))


def test_a_20_day_outage_is_caught_up_window_by_window(pg, two_filials):
    after_an_outage(pg, 20)
    outcome = run(two_filials, pg, "orders")
    assert outcome.status == "SUCCESS"
    windows = [
        (day_of(r.body["begin_modified_on"]), day_of(r.body["end_modified_on"]))
        for r in posts(two_filials, "orders")
    ]
    assert windows[0][0] == TODAY - timedelta(days=21) and windows[-1][1] == TODAY
    assert windows == sorted(windows) and all((b - a).days < 7 for a, b in windows)
    assert len(windows) == 4
    stored = {o.source_external_id for o in Order.select()}
    assert stored == modified_between(two_filials, TODAY - timedelta(days=21), TODAY) & {
        o["deal_id"] for o in two_filials.orders if o["filial_id"] == "100"
    }
    assert stream_state("orders", "100").watermark == TODAY  # type: ignore[union-attr]


def test_a_killed_catch_up_keeps_the_windows_it_committed(pg, two_filials):
    after_an_outage(pg, 20)
    # the third window hangs: the worker is killed while it waits
    two_filials.add_fault("orders", Fault(), times=2)
    two_filials.add_fault("orders", Fault(delay=60))
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("SMARTUP_", "SYNC_", "DATABASE_"))
    }
    environ.update(
        DATABASE_URL=pg,
        SMARTUP_BASE_URL=two_filials.base_url,
        SMARTUP_BASIC_USER=USER,
        SMARTUP_BASIC_PASS=PASSWORD,
        SMARTUP_FILIAL_ID="100",
        PYTHONPATH=str(ROOT),
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "jobs", "sync", "orders"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    second_end = TODAY - timedelta(days=21) + timedelta(days=13)
    try:
        deadline = time.monotonic() + 60
        while two_filials.requests_today("orders") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert two_filials.requests_today("orders") == 3, "the third window was never asked for"
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=30)
    open_database(pg)
    state = stream_state("orders", "100")
    assert state is not None and state.watermark == second_end
    kept = {o.source_external_id for o in Order.select()}
    filial = {o["deal_id"] for o in two_filials.orders if o["filial_id"] == "100"}
    assert kept == modified_between(two_filials, TODAY - timedelta(days=21), second_end) & filial
    assert state.sealed_through == second_end  # the windows committed had all ended
    # the next run goes on from the first day not sealed
    resumed = run(two_filials, pg, "orders", periodic=False)
    assert resumed.status == "SUCCESS"
    resume_first = second_end + timedelta(days=1)  # also the killed window's first day
    begins = {day_of(r.body["begin_modified_on"]) for r in posts(two_filials, "orders")[2:]}
    assert resume_first in begins
    assert begins <= {resume_first, resume_first + timedelta(days=7)}
    stored = {o.source_external_id for o in Order.select()}
    assert stored == modified_between(two_filials, TODAY - timedelta(days=21), TODAY) & filial
    [failed, done] = list(SyncRun.select().order_by(SyncRun.id))
    assert (failed.status, done.status) == ("FAILED", "SUCCESS")  # closed as "worker lost"


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request, sqlite_url):
    return sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg")


def product(external_id: str) -> Product:
    return Product.get(Product.external_id == external_id)


def test_a_product_deleted_upstream_is_marked_gone_then_revived(db_url, simulator):
    assert run(simulator, db_url, "products", periodic=False, full=True).status == "SUCCESS"
    gone = simulator.products[5]
    simulator.delete_product(gone["product_id"])
    incremental = run(simulator, db_url, "products", now=MORNING + timedelta(minutes=20))
    assert incremental.results[0].gone == 0  # only a complete catalogue can tell

    full = run(simulator, db_url, "products", periodic=False, full=True)
    assert full.status == "SUCCESS" and full.results[0].gone == 1
    open_database(db_url)
    row = product(gone["product_id"])
    assert not row.is_active and row.deleted_at is not None
    assert Product.select().where(Product.deleted_at.is_null()).count() == 99
    assert SyncRun.get(SyncRun.id == full.run_id).products_gone == 1

    simulator.add_products([gone])  # back, unchanged, modified today
    back = run(simulator, db_url, "products", now=MORNING + timedelta(minutes=40))
    assert back.status == "SUCCESS"
    open_database(db_url)
    row = product(gone["product_id"])
    assert row.deleted_at is None and row.is_active == (gone["state"] == "A")

    # gone again, and back in a full export with the very same content: revived too
    simulator.delete_product(gone["product_id"])
    run(simulator, db_url, "products", periodic=False, full=True)
    simulator.add_products([gone])
    again = run(simulator, db_url, "products", periodic=False, full=True)
    assert again.results[0].unchanged == 100 and again.results[0].gone == 0
    open_database(db_url)
    assert product(gone["product_id"]).deleted_at is None
    assert Product.select().count() == 100  # never a DELETE


@pytest.mark.parametrize("kept", [0, 40])
def test_an_empty_or_60_percent_short_catalogue_marks_nothing(pg, simulator, kept):
    products = simulator.products
    assert run(simulator, pg, "products", periodic=False, full=True).status == "SUCCESS"
    simulator.set_products(products[:kept])
    outcome = run(simulator, pg, "products", periodic=False, full=True)
    assert outcome.status == "PARTIAL" and outcome.results[0].gone == 0
    reason = "was empty" if kept == 0 else "lacks 60 of 100 active products"
    assert outcome.error is not None and reason in outcome.error
    open_database(pg)
    assert Product.select().where(Product.deleted_at.is_null(False)).count() == 0
    assert Product.select().where(Product.is_active == False).count() == sum(  # noqa: E712
        1 for p in products if p["state"] != "A"
    )
    # the catalogue is asked for whole again at the next periodic run
    run(simulator, pg, "products", now=MORNING + timedelta(minutes=20))
    assert posts(simulator, "products")[-1].body == {}


@pytest.mark.parametrize("shape", ["429", "200"])
def test_a_spent_quota_fails_once_skips_periodic_runs_until_midnight(pg, shape):
    products = generate_products(30)
    with SmartUpSimulator(
        products=products,
        user=USER,
        password=PASSWORD,
        today=TODAY,
        quotas={"products": 10},
        quota_refusal=shape,
    ) as sim:
        tick = iter(MORNING + timedelta(minutes=20 * n) for n in range(100))
        assert run(sim, pg, "products", now=next(tick)).status == "SUCCESS"  # 9 left
        sim.spend_quota("products", 6)  # another program on the same login: 3 left
        assert run(sim, pg, "products", now=next(tick)).status == "SUCCESS"  # 2 left
        # 2 left is the reserve (20% of 10): periodic runs stop, on-demand ones go on
        asked = len(posts(sim, "products"))
        with capture_logs() as logs:
            skipped = run(sim, pg, "products", now=next(tick))
        assert skipped.status == SKIPPED and len(posts(sim, "products")) == asked
        [event] = [e for e in logs if e["event"] == "sync.skipped"]
        assert event["reason"] == "quota" and event["left"] == 2 and event["reserve"] == 2
        midnight = datetime.combine(TODAY + timedelta(days=1), clock(0), tzinfo=TASHKENT)
        assert datetime.fromisoformat(event["resets_at"]) == midnight
        assert run(sim, pg, "products", now=next(tick), periodic=False).status == "SUCCESS"
        assert run(sim, pg, "products", now=next(tick), periodic=False).status == "SUCCESS"
        asked = len(posts(sim, "products"))
        refused = run(sim, pg, "products", now=next(tick), periodic=False)
        assert refused.status == "FAILED"
        assert len(posts(sim, "products")) == asked + 1  # never retried
        assert refused.error == (
            "products: SmartUp daily quota for products is spent; it resets at 00:00 Asia/Tashkent"
        )
        open_database(pg)
        quota = quota_today("reference", today=TODAY)
        assert quota is not None and quota.exhausted
        assert run(sim, pg, "products", now=next(tick)).status == SKIPPED
        assert len(posts(sim, "products")) == asked + 1

        sim.advance_day()
        after = run(sim, pg, "products", now=midnight + timedelta(minutes=5))
        assert after.status == "SUCCESS"
        assert sim.requests_today("products") == 1


def test_smartups_own_error_in_a_200_is_the_runs_one_line(pg, simulator):
    body = json.dumps({"error_code": "A02-24-048", "message": "Организация не совпадает"})
    simulator.add_fault(
        "orders", Fault(status=200, body=body, content_type="application/json; charset=utf-8")
    )
    outcome = run(simulator, pg, "orders", periodic=False)
    assert outcome.status == "FAILED"
    assert outcome.error == "orders: SmartUp A02-24-048: Организация не совпадает"


def test_a_simulated_day_stays_within_the_quota_and_as_fresh_as_planned(pg):
    """Periodic runs at the planned cadence through one company day and past midnight,
    with products and orders changing all day, against the simulator's day clock."""
    products = generate_products(200)
    orders = generate_orders(80, products=products, today=TODAY, days=7)
    with SmartUpSimulator(
        products=products, orders=orders, user=USER, password=PASSWORD, today=TODAY
    ) as sim:
        settings = settings_for(sim, pg)
        plan = plan_for(settings)
        interval = {name: plan[name].interval_used for name in plan}
        assert interval == {"products": 1080, "orders": 600}
        start = datetime.combine(TODAY, clock(0), tzinfo=TASHKENT)
        due = {"products": start, "orders": start}
        pending: dict[str, dict[str, Any]] = {"products": {}, "orders": {}}
        spent_per_day: list[dict[str, int]] = []
        change = 0
        now = start
        while now < start + timedelta(days=1, hours=3):
            if now.date() != sim.today:  # midnight, company time
                spent_per_day.append(
                    {name: sim.requests_today(name) for name in ("products", "orders")}
                )
                sim.advance_day()
            if now.minute % 15 == 0:  # something changes every quarter of an hour
                change += 1
                edited = products[change % len(products)]
                name = f"{edited['name']} #{change}"
                sim.update_product(edited["product_id"], name=name)
                pending["products"][edited["product_id"]] = name
                fresh = {**orders[change % len(orders)], "deal_id": str(900000 + change)}
                fresh["deal_time"] = now.strftime("%d.%m.%Y %H:%M:%S")
                sim.add_orders([fresh])
                pending["orders"][fresh["deal_id"]] = fresh["deal_time"]
            for name in ("products", "orders"):
                if now >= due[name]:
                    outcome = run(sim, pg, name, now=now)
                    assert outcome.status == "SUCCESS", outcome.error
                    due[name] += timedelta(seconds=interval[name])
                    open_database(pg)
                    # as fresh as planned: what changed before a run is stored after it
                    if name == "products":
                        stored = {
                            p.external_id: p.name
                            for p in Product.select().where(
                                Product.external_id.in_(list(pending[name]))
                            )
                        }
                        assert stored == pending[name]
                    else:
                        stored_ids = {
                            o.source_external_id
                            for o in Order.select().where(
                                Order.source_external_id.in_(list(pending[name]))
                            )
                        }
                        assert stored_ids == set(pending[name])
                    pending[name] = {}
            now += timedelta(minutes=1)
        [first_day] = spent_per_day
        for name in ("products", "orders"):
            assert first_day[name] <= plan[name].quota - plan[name].reserve
            assert first_day[name] == plan[name].requests_per_day
        # the catalogue and the order book end as SmartUp has them, once each runs again
        for name in ("products", "orders"):
            assert run(sim, pg, name, now=now).status == "SUCCESS"
        open_database(pg)
        assert {p.external_id: p.raw for p in Product.select()} == {
            p["product_id"]: p for p in sim.products
        }
        served = {
            o["deal_id"]
            for o in sim.orders
            if day_of(o["deal_time"][:10]) >= TODAY - timedelta(days=6)
        }
        assert served <= {o.source_external_id for o in Order.select()}


def test_the_overview_shows_the_plan_and_the_state_per_filial(pg, simulator):
    from jobs.processes.scheduler import current_plan, keep_plan
    from jobs.watching.overview import sync_overview

    assert run(simulator, pg, "full", periodic=False).status == "SUCCESS"
    settings = settings_for(simulator, pg)
    plan = current_plan(settings)
    assert plan is not None and keep_plan(settings, plan)  # as the scheduler registers it
    overview = sync_overview(settings=settings, now=MORNING + timedelta(minutes=1))
    orders = overview["kinds"]["orders"]
    assert orders["plan"]["interval_used_s"] == 600 and orders["plan"]["fits"] is True
    assert orders["state"] == [
        {
            "filial_id": "100",
            "watermark": TODAY.isoformat(),
            "sealed_through": (TODAY - timedelta(days=1)).isoformat(),
            "last_sweep_at": MORNING.astimezone(UTC).isoformat(timespec="seconds"),
            "last_success_at": MORNING.astimezone(UTC).isoformat(timespec="seconds"),
            "data_age_s": 60,
        }
    ]
    assert orders["data_age_s"] == 60  # a minute since its last successful request
    products = overview["kinds"]["products"]
    assert products["plan"]["interval_used_s"] == 1080
    assert [s["filial_id"] for s in products["state"]] == [None]


def test_seen_ids_are_kept_exactly_whatever_their_spelling():
    from jobs.day.reconcile import SeenIds

    seen = SeenIds()
    assert not seen
    spelled = ["100001", "0", "007", "12345678901234567890", "A-17", "١٢", "100001"]
    for product_id in spelled:
        seen.add(("smartup", product_id))
    assert seen and sorted(seen.ids()) == sorted(spelled)
