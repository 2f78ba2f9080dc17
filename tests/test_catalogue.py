"""The shop's whole catalogue end to end: groups and types, price types and prices,
warehouses and stock, over HTTP (the simulator) into PostgreSQL, and order lines and
stock rows linked to products by SmartUp's ``product_id``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg2
import pytest

from jobs.models import (
    OrderItem,
    PriceType,
    Product,
    ProductCategory,
    ProductGroup,
    ProductPrice,
    ProductType,
    StockBalance,
    SyncRun,
    Warehouse,
    open_database,
)
from jobs.run.sync import RunOutcome, RunRequest, run_sync
from jobs.simulator import (
    SmartUpSimulator,
    generate_account,
    generate_orders,
    generate_products,
    generate_stock,
    generate_warehouses,
)
from tests.helpers import (
    FAST_RETRY,
    PASSWORD,
    TODAY,
    USER,
    coded_price_types,
    run_with_every_stream,
    settings_for,
)

EVERY_STREAM = ("products", "orders", "groups", "prices", "stock")
CATALOGUE_TABLES = (
    "product_groups",
    "product_types",
    "product_categories",
    "price_types",
    "product_prices",
    "warehouses",
    "stock_balances",
)


@pytest.fixture
def shop() -> Iterator[SmartUpSimulator]:
    account = generate_account(products=60, orders=20, today=TODAY, price_types=coded_price_types())
    with SmartUpSimulator(
        **account.as_kwargs(),
        user=USER,
        password=PASSWORD,
        today=TODAY,
    ) as sim:
        yield sim


@pytest.fixture
def db(pg: str) -> Iterator[str]:
    connection = open_database(pg)
    connection.execute_sql(f"TRUNCATE {', '.join(CATALOGUE_TABLES)} RESTART IDENTITY CASCADE")
    yield pg


def result(outcome: RunOutcome, stream: str) -> Any:
    return next(r for r in outcome.results if r.stream == stream)


def row_versions(url: str, tables: tuple[str, ...] = CATALOGUE_TABLES) -> dict[str, Any]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            found = {}
            for table in tables:
                cursor.execute(f"SELECT id, xmin::text FROM {table} ORDER BY id")
                found[table] = cursor.fetchall()
            return found
    finally:
        connection.close()


def table_stats(url: str) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables "
                "WHERE relname IN %s ORDER BY relname",
                (CATALOGUE_TABLES,),
            )
            return list(cursor.fetchall())
    finally:
        connection.close()


def settled_stats(url: str) -> list[tuple[Any, ...]]:
    """Statistics are flushed by each backend shortly after its transactions end."""
    previous = None
    for _ in range(40):
        current = table_stats(url)
        if current == previous:
            return current
        previous = current
        time.sleep(0.5)
    return previous or []


def test_groups_types_and_categories_are_stored_exactly_and_linked_either_way(db, shop):
    # the products first: their categories wait for the types
    assert run_with_every_stream(shop, db, "products").status == "SUCCESS"
    assert ProductCategory.select().where(ProductCategory.product_type.is_null(False)).count() == 0
    outcome = run_with_every_stream(shop, db, "groups")
    assert outcome.status == "SUCCESS", outcome.error
    served = {g["product_group_id"]: g for g in shop.groups}
    stored = {g.external_id: g for g in ProductGroup.select()}
    assert set(stored) == set(served)
    for group_id, group in served.items():
        row = stored[group_id]
        assert (row.code, row.name, row.product_kind) == (
            group.get("code") or None,
            group.get("name") or None,
            group.get("product_kind") or None,
        )
        assert row.is_active == (group["state"] == "A") and row.raw == group
        types = {t.external_id: t for t in ProductType.select().where(ProductType.group == row)}
        assert set(types) == {t["product_type_id"] for t in group["product_group_types"]}
        for served_type in group["product_group_types"]:
            stored_type = types[served_type["product_type_id"]]
            assert stored_type.name == served_type["name"]
            assert stored_type.is_active == (served_type["state"] == "A")
            assert stored_type.order_no == (served_type["order_no"] or None)
    # every category of every product points at its type
    type_ids = {t.external_id: t.id for t in ProductType.select()}
    categories = list(ProductCategory.select())
    expected = sum(len(p["groups"] or []) for p in shop.products)
    assert len(categories) == expected > 0
    for category in categories:
        assert category.product_type_id == type_ids.get(str(category.type_external_id))
    assert all(c.product_type_id is not None for c in categories)

    # the other way round: groups first, then the products find their types at once
    ProductCategory.delete().execute()
    Product.delete().execute()
    assert run_with_every_stream(shop, db, "products", full=True).status == "SUCCESS"
    linked = ProductCategory.select().where(ProductCategory.product_type.is_null(False)).count()
    assert linked == expected


def test_an_unchanged_resync_of_every_stream_writes_no_row(db, shop):
    first = run_with_every_stream(shop, db, "full")
    assert first.status in ("SUCCESS", "PARTIAL"), first.error
    before_rows, before_stats = row_versions(db), settled_stats(db)
    assert all(before_rows[t] for t in CATALOGUE_TABLES if t != "product_categories")
    again = run_with_every_stream(shop, db, "full")
    assert again.status == first.status
    for stream in ("groups", "prices", "stock"):
        counted = result(again, stream)
        assert (counted.inserted, counted.updated, counted.gone) == (0, 0, 0), stream
    assert row_versions(db) == before_rows
    assert settled_stats(db) == before_stats


def test_price_types_and_prices_are_exact_and_linked(db, shop):
    assert run_with_every_stream(shop, db, "products").status == "SUCCESS"
    outcome = run_with_every_stream(shop, db, "prices")
    assert outcome.status == "SUCCESS", outcome.error
    [types_call, prices_call] = [r for r in shop.requests if r.endpoint.startswith("price")]
    assert types_call.endpoint == "price_types_v2"  # the export that gives ids
    assert prices_call.body == {}  # no SMARTUP_PRICE_TYPE_CODES: every price type
    served_types = {t["price_type_id"]: t for t in shop.price_types}
    stored_types = {t.external_id: t for t in PriceType.select()}
    assert set(stored_types) == set(served_types)
    for type_id, served in served_types.items():
        row = stored_types[type_id]
        assert row.price_type_key == f"id:{type_id}"
        assert (row.code, row.name, row.currency_code) == (
            served["code"] or None,
            served["name"],
            served["currency_code"],
        )
        assert row.is_active == (served["state"] == "A")
        assert row.with_card == (served["with_card"] == "Y")
    products = {p.code: p.id for p in Product.select() if p.code}
    types_by_code = {t.code: t for t in PriceType.select() if t.code}
    expected = {
        (entry["inventory_code"], price["price_type_code"], price["card_code"]): price["price"]
        for entry in shop.prices
        for price in entry["price_type"]
    }
    stored = list(ProductPrice.select())
    assert len(stored) == len(expected)
    for price in stored:
        assert price.price == Decimal(
            expected[(price.product_code, price.price_type_code, price.card_code)]
        )
        assert price.product_id == products[price.product_code]
        price_type = types_by_code[price.price_type_code]
        assert price.price_type_id == price_type.id
        assert price.currency_code == price_type.currency_code


def test_price_type_codes_are_sent_when_set_and_a_rejected_price_keeps_its_row(db, shop):
    assert (
        run_with_every_stream(shop, db, "prices", smartup_price_type_codes=("PRCT:3",)).status
        == "SUCCESS"
    )
    [prices_call] = [r for r in shop.requests if r.endpoint == "prices"]
    assert prices_call.body == {"price_type_codes": ["PRCT:3"]}
    shop.requests.clear()
    assert run_with_every_stream(shop, db, "prices").status == "SUCCESS"
    code = shop.prices[0]["inventory_code"]
    kept = ProductPrice.get(
        (ProductPrice.product_code == code) & (ProductPrice.price_type_code == "PRCT:3")
    )
    shop.set_price(code, "PRCT:3", "12,345")  # three decimals: the column would round it
    outcome = run_with_every_stream(shop, db, "prices")
    assert outcome.status == "PARTIAL"
    [reject] = outcome.results[0].rejects
    assert reject["id"] == f"{code}/PRCT:3/" and "price" in str(reject["reason"])
    details = SyncRun.get_by_id(outcome.run_id).details
    assert details["prices"]["rejects"] == [reject]  # the run row names it
    assert ProductPrice.get_by_id(kept.id).price == kept.price  # its stored row is kept
    assert result(outcome, "prices").gone == 0


def test_a_prices_snapshot_replaces_the_set_and_the_brake_holds(db, shop):
    assert run_with_every_stream(shop, db, "prices").status == "SUCCESS"
    stored = ProductPrice.select().count()
    entries = shop.prices
    # one product's prices vanish: they are deleted
    shop.set_prices(entries[1:])
    outcome = run_with_every_stream(shop, db, "prices")
    assert outcome.status == "SUCCESS"
    gone = len(entries[0]["price_type"])
    assert result(outcome, "prices").gone == gone
    assert ProductPrice.select().count() == stored - gone
    # half of them vanish: more than SYNC_MAX_GONE_PERCENT, nothing is deleted
    shop.set_prices(entries[1 : len(entries) // 2])
    braked = run_with_every_stream(shop, db, "prices")
    assert braked.status == "PARTIAL" and result(braked, "prices").gone == 0
    assert "SYNC_MAX_GONE_PERCENT=10" in (braked.error or "")
    assert "no price deleted" in (braked.error or "")
    assert ProductPrice.select().count() == stored - gone
    # an empty export deletes nothing either
    shop.set_prices([])
    empty = run_with_every_stream(shop, db, "prices")
    assert empty.status == "PARTIAL" and "was empty" in (empty.error or "")
    assert ProductPrice.select().count() == stored - gone


def test_stock_is_exact_linked_by_product_id_and_a_snapshot_replaces(db, shop):
    assert run_with_every_stream(shop, db, "products").status == "SUCCESS"
    outcome = run_with_every_stream(shop, db, "stock")
    assert outcome.status == "SUCCESS", outcome.error
    calls = [r for r in shop.requests if r.endpoint in ("stock", "warehouses")]
    assert [c.endpoint for c in calls] == ["stock", "warehouses"]  # the side call last
    today = TODAY.strftime("%d.%m.%Y")
    assert calls[0].body == {"begin_date": today, "end_date": today, "product_conditions": ["F"]}
    assert calls[1].headers["project_code"] == "anor"
    warehouses = {w.external_id: w for w in Warehouse.select()}
    assert {(w.external_id, w.code, w.name) for w in warehouses.values()} == {
        (w["warehouse_id"], w["code"], w["name"]) for w in shop.warehouses
    }
    products = {p.external_id: p.id for p in Product.select()}
    served = shop.stock["F"]
    rows = list(StockBalance.select())
    assert len(rows) == len(served)
    by_key = {(r.warehouse_external_id, r.product_external_id, r.batch_number): r for r in rows}
    for row in served:
        stored = by_key[(row["warehouse_id"], row["product_id"], row["batch_number"])]
        assert stored.quantity == Decimal(row["quantity"])
        assert stored.condition == "F" and stored.balance_date == TODAY
        assert stored.product_id == products[row["product_id"]]
        assert stored.warehouse_id == warehouses[row["warehouse_id"]].id
    view = open_database(db).execute_sql(
        "SELECT product_id, warehouse_id, condition, quantity FROM product_stock"
    )
    totals: dict[tuple[Any, ...], Decimal] = {}
    for row in rows:
        key = (row.product_id, row.warehouse_id, row.condition)
        totals[key] = totals.get(key, Decimal(0)) + row.quantity
    assert {tuple(r[:3]): r[3] for r in view.fetchall()} == totals

    # a row that vanishes from the snapshot is deleted; a changed one is updated
    first, second = served[0], served[1]
    shop.remove_stock_row(
        first["warehouse_code"], first["product_id"], batch_number=first["batch_number"]
    )
    shop.set_stock_quantity(
        second["warehouse_code"], second["product_id"], "7,5", batch_number=second["batch_number"]
    )
    again = run_with_every_stream(shop, db, "stock")
    assert again.status == "SUCCESS"
    assert (result(again, "stock").updated, result(again, "stock").gone) == (1, 1)
    assert StockBalance.select().count() == len(served) - 1
    changed = StockBalance.get(
        (StockBalance.product_external_id == second["product_id"])
        & (StockBalance.batch_number == second["batch_number"])
    )
    assert changed.quantity == Decimal("7.5")


def test_stock_keeps_working_where_the_warehouses_export_is_not_answered(db, shop):
    shop.warehouses_status = 481
    outcome = run_with_every_stream(shop, db, "stock")
    assert outcome.status == "SUCCESS", outcome.error
    # known by id and code from the balance rows
    assert {(w.external_id, w.code) for w in Warehouse.select()} == {
        (r["warehouse_id"], r["warehouse_code"]) for r in shop.stock["F"]
    }
    assert StockBalance.select().where(StockBalance.warehouse.is_null()).count() == 0


def test_the_stock_brake_holds(db, shop):
    assert run_with_every_stream(shop, db, "stock").status == "SUCCESS"
    stored = StockBalance.select().count()
    shop.set_stock({"F": shop.stock["F"][: stored // 2]})
    braked = run_with_every_stream(shop, db, "stock")
    assert braked.status == "PARTIAL" and "no stock row deleted" in (braked.error or "")
    assert StockBalance.select().count() == stored


def test_lines_and_stock_rows_link_by_product_id_whatever_their_code(db):
    products = generate_products(10)
    renamed, nameless = products[1], products[2]
    orders = generate_orders(6, products=products, today=TODAY, days=3, filial_ids=("100",))
    lines = [line for order in orders for line in order["order_products"]]
    lines[0].update(product_id=renamed["product_id"], product_code="OLD-CODE")
    lines[1].update(product_id=nameless["product_id"], product_code=None)
    lines[2].update(product_id=None, product_code=products[3]["code"])  # no id: by code
    warehouses = generate_warehouses(1)
    stock = generate_stock(products, warehouses)
    stock["F"][0].update(product_id=renamed["product_id"], product_code=None)
    with SmartUpSimulator(
        products=products,
        orders=orders,
        warehouses=warehouses,
        stock=stock,
        user=USER,
        password=PASSWORD,
        today=TODAY,
    ) as sim:
        # the lines come first, their products later: the link is filled in then
        assert run_with_every_stream(sim, db, "orders").status == "SUCCESS"
        assert run_with_every_stream(sim, db, "stock").status == "SUCCESS"
        assert run_with_every_stream(sim, db, "products").status == "SUCCESS"
    ids = {p.external_id: p.id for p in Product.select()}
    line = {(i.product_unit_id): i for i in OrderItem.select()}
    assert line[lines[0]["product_unit_id"]].product_id == ids[renamed["product_id"]]
    assert line[lines[1]["product_unit_id"]].product_id == ids[nameless["product_id"]]
    assert line[lines[2]["product_unit_id"]].product_id == ids[products[3]["product_id"]]
    assert line[lines[0]["product_unit_id"]].product_external_id == renamed["product_id"]
    row = StockBalance.get(
        (StockBalance.product_external_id == renamed["product_id"])
        & (StockBalance.batch_number == stock["F"][0]["batch_number"])
    )
    assert row.product_id == ids[renamed["product_id"]]


def test_a_group_gone_is_marked_inactive_with_its_types_and_never_deleted(db, shop):
    assert run_with_every_stream(shop, db, "groups").status == "SUCCESS"
    groups = shop.groups
    last = groups[-1]
    shop.remove_group_type(groups[0]["product_group_types"][0]["product_type_id"])
    shop.remove_group(last["product_group_id"])
    outcome = run_with_every_stream(shop, db, "groups", sync_max_gone_percent=50.0)
    assert outcome.status == "SUCCESS", outcome.error
    gone = ProductGroup.get(ProductGroup.external_id == last["product_group_id"])
    assert not gone.is_active and gone.deleted_at is not None
    types = ProductType.select().where(ProductType.group_external_id == last["product_group_id"])
    assert types.count() == len(last["product_group_types"])
    assert all(not t.is_active and t.deleted_at is not None for t in types)
    dropped = ProductType.get(
        ProductType.external_id == groups[0]["product_group_types"][0]["product_type_id"]
    )
    assert not dropped.is_active and dropped.deleted_at is not None
    # back again: revived, with its types
    shop.set_groups(groups)
    assert run_with_every_stream(shop, db, "groups").status == "SUCCESS"
    back = ProductGroup.get(ProductGroup.external_id == last["product_group_id"])
    assert back.deleted_at is None and back.is_active == (last["state"] == "A")
    assert all(
        t.deleted_at is None and t.is_active == (served["state"] == "A")
        for served in last["product_group_types"]
        for t in [ProductType.get(ProductType.external_id == served["product_type_id"])]
    )


def test_a_stream_not_enabled_is_never_requested(db, shop):
    outcome = run_with_every_stream(shop, db, "full", sync_streams=("products", "orders"))
    assert [r.stream for r in outcome.results] == ["products", "orders"]
    assert {r.endpoint for r in shop.requests} == {"products", "orders"}
    with pytest.raises(ValueError, match="not enabled"):
        run_with_every_stream(shop, db, "prices", sync_streams=("products", "orders"))
    assert {r.endpoint for r in shop.requests} == {"products", "orders"}


def test_a_simulated_day_of_every_stream_stays_within_every_pool(db):
    """Periodic runs of every enabled stream at the planned cadence through one company
    day, against the simulator's day clock and its quotas per class."""
    from datetime import datetime, time, timedelta

    from jobs.day.plan import plan_for

    account = generate_account(
        products=40, orders=20, today=TODAY, price_types=coded_price_types(), warehouses=2
    )
    with SmartUpSimulator(
        **account.as_kwargs(),
        user=USER,
        password=PASSWORD,
        today=TODAY,
    ) as sim:
        settings = settings_for(sim, db, sync_streams=EVERY_STREAM)
        day = plan_for(settings)
        budget = {name: pool.quota - pool.reserve for name, pool in day.pools.items()}
        interval = {name: plan.interval_used for name, plan in day.items()}
        zone = settings.tz
        start = datetime.combine(TODAY, time(0, 0), tzinfo=zone)
        due = dict.fromkeys(interval, start)
        now = start
        while now < start + timedelta(days=1):
            for name in EVERY_STREAM:
                if now >= due[name]:
                    outcome = run_sync(
                        RunRequest(
                            kind=name,
                            settings=settings,
                            periodic=True,
                            now=now,
                            today=TODAY,
                            retry=FAST_RETRY,
                        )
                    )
                    assert outcome.status in ("SUCCESS", "PARTIAL"), (name, outcome.error)
                    assert outcome.status != "SKIPPED", name
                    due[name] += timedelta(seconds=interval[name])
            now += timedelta(minutes=1)
        spent = {name: sim.requests_today(name) for name in budget}
    assert spent["reference"] <= budget["reference"] and spent["documents"] <= budget["documents"]
    assert spent["reference"] == day.pools["reference"].requests_per_day


def test_the_portable_loader_stores_what_the_postgres_one_does(db, shop, sqlite_url):
    """The demo's path (SQLite, peewee upserts) and the fast path hold the same rows and
    links, named by SmartUp's keys (ids differ between the two databases)."""

    def snapshot(url: str) -> dict[str, Any]:
        connection = open_database(url)
        try:
            query = connection.execute_sql
            return {
                "types": sorted(
                    query(
                        "SELECT t.external_id, g.external_id, t.is_active FROM product_types t "
                        "JOIN product_groups g ON g.id = t.group_id"
                    ).fetchall()
                ),
                "categories": sorted(
                    query(
                        "SELECT p.external_id, c.line_no, t.external_id FROM product_categories c "
                        "JOIN products p ON p.id = c.product_id "
                        "LEFT JOIN product_types t ON t.id = c.product_type_id"
                    ).fetchall()
                ),
                "prices": sorted(
                    (key, Decimal(str(price)), product, kind, currency)
                    for key, price, product, kind, currency in query(
                        "SELECT x.price_key, x.price, p.external_id, t.price_type_key, "
                        "x.currency_code FROM product_prices x "
                        "LEFT JOIN products p ON p.id = x.product_id "
                        "LEFT JOIN price_types t ON t.id = x.price_type_id"
                    ).fetchall()
                ),
                "stock": sorted(
                    (key, Decimal(str(quantity)), product, warehouse)
                    for key, quantity, product, warehouse in query(
                        "SELECT b.balance_key, b.quantity, p.external_id, w.external_id "
                        "FROM stock_balances b LEFT JOIN products p ON p.id = b.product_id "
                        "LEFT JOIN warehouses w ON w.id = b.warehouse_id"
                    ).fetchall()
                ),
                "lines": sorted(
                    query(
                        "SELECT i.product_unit_id, p.external_id FROM order_items i "
                        "LEFT JOIN products p ON p.id = i.product_id"
                    ).fetchall()
                ),
            }
        finally:
            connection.close()

    # groups after the products here: the links are filled in by the later load
    for url in (db, sqlite_url):
        for kind in ("orders", "products", "prices", "stock", "groups"):
            outcome = run_with_every_stream(shop, url, kind)
            assert outcome.status == "SUCCESS", (url, kind, outcome.error)
    fast, portable = snapshot(db), snapshot(sqlite_url)
    for part in fast:
        assert fast[part] and fast[part] == portable[part], part
    assert all(type_id is not None for *_, type_id in fast["categories"])
    assert all(product is not None for _, product in fast["lines"])
