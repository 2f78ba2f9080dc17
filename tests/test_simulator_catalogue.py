"""The simulator's catalogue exports (groups, price types, prices, warehouses, stock), the
quota classes they share, and the company's time zone (one sync end to end)."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from jobs.models import Order, open_database
from jobs.run.sync import RunRequest, run_sync
from jobs.simulator import (
    BRAND_GROUP_ID,
    CATEGORY_GROUP_ID,
    ORDERS_PATH,
    PATHS,
    PRICE_TYPES_PATH,
    PRICE_TYPES_V2_PATH,
    PRICES_PATH,
    PRODUCT_CONDITIONS,
    PRODUCT_GROUPS_PATH,
    PRODUCTS_PATH,
    RETAIL_PRICE_TYPE_ID,
    STOCK_PATH,
    WAREHOUSES_PATH,
    Account,
    Endpoint,
    Fault,
    SmartUpSimulator,
    generate_account,
    generate_groups,
    generate_orders,
    generate_price_types,
    generate_prices,
    generate_products,
    generate_stock,
    generate_warehouses,
)
from tests.helpers import FAST_RETRY, PASSWORD, USER, settings_for

TODAY = datetime.date(2026, 3, 10)
AUTH = ("demo@smartup", "demo-secret")
REPO_ROOT = Path(__file__).resolve().parents[1]
STOCK_DAY = {"begin_date": "10.03.2026", "end_date": "10.03.2026"}


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Any]:
    products = generate_products(200, seed=7)
    price_types = generate_price_types()
    warehouses = generate_warehouses(3)
    return {
        "products": products,
        "orders": generate_orders(20, products=products, today=TODAY, lines=(1, 5), seed=7),
        "groups": generate_groups(),
        "price_types": price_types,
        "prices": generate_prices(products, price_types),
        "warehouses": warehouses,
        "stock": generate_stock(products, warehouses, rows=600),
    }


@pytest.fixture
def smartup(catalogue: dict[str, Any]) -> Iterator[SmartUpSimulator]:
    with SmartUpSimulator(**catalogue, today=TODAY) as simulator:
        yield simulator


def post(
    sim: SmartUpSimulator, path: str, body: Any = None, *, project_code: str = "anor"
) -> requests.Response:
    return requests.post(
        sim.base_url + path,
        json={} if body is None else body,
        auth=AUTH,
        headers={"project_code": project_code},
        timeout=30,
    )


# --- generators ---------------------------------------------------------------------------


def test_generators_are_deterministic_and_consistent_with_each_other(catalogue):
    products, groups = catalogue["products"], catalogue["groups"]
    assert generate_groups() == groups
    assert generate_prices(products, catalogue["price_types"]) == catalogue["prices"]
    stock = generate_stock(products, catalogue["warehouses"], rows=600)
    assert stock == catalogue["stock"]
    assert stock != generate_stock(products, catalogue["warehouses"], rows=600, seed=2)

    type_ids = {
        (g["product_group_id"], t["product_type_id"])
        for g in groups
        for t in g["product_group_types"]
    }
    product_groups = [g for p in products for g in p["groups"]]
    assert {g["group_id"] for g in product_groups} == {CATEGORY_GROUP_ID, BRAND_GROUP_ID}
    assert all((g["group_id"], g["type_id"]) in type_ids for g in product_groups)
    assert {g["type_code"] for g in product_groups} == {None}

    retail = next(t for t in catalogue["price_types"] if t["price_type_id"] == RETAIL_PRICE_TYPE_ID)
    assert retail["code"] is None  # real accounts leave the important types without a code
    lines = [line for o in catalogue["orders"] for line in o["order_products"]]
    codes = {p["product_id"]: p["code"] for p in products}
    assert all(line["product_id"] in codes for line in lines)
    assert {line["price_type_id"] for line in lines} <= {
        t["price_type_id"] for t in catalogue["price_types"]
    }
    assert any(line["product_code"] is None for line in lines)
    renamed = [
        line
        for line in lines
        if line["product_code"] and line["product_code"] != codes[line["product_id"]]
    ]
    assert renamed  # a line keeps the old code of a product renamed since

    rows = [row for condition in PRODUCT_CONDITIONS for row in stock[condition]]
    assert len(rows) == 600 and all(stock[c] for c in PRODUCT_CONDITIONS)
    assert all(isinstance(row["quantity"], str) for row in rows)
    assert {row["warehouse_code"] for row in rows} == {"WH1", "WH2", "WH3"}
    assert any(row["card_code"] is None for row in rows)
    assert any(row["card_code"] == "" for row in rows)
    named = {g["group_code"] for row in rows for g in row["groups"]}
    assert named == {"Категория", "Торговая_марка"}  # names, not codes


def test_one_call_generates_a_whole_account_as_its_generators_would():
    account = generate_account(
        products=30,
        orders=8,
        today=TODAY,
        days=3,
        filial_ids=("5", "6"),
        lines=(1, 4),
        warehouses=2,
        stocked_products=20,
        stock_rows=50,
        seed=3,
    )
    products = generate_products(30, seed=3)
    price_types = generate_price_types(seed=3)
    warehouses = generate_warehouses(2, seed=3)
    assert account == Account(
        products=products,
        orders=generate_orders(
            8, products=products, today=TODAY, days=3, filial_ids=("5", "6"), lines=(1, 4), seed=3
        ),
        groups=generate_groups(seed=3),
        price_types=price_types,
        prices=generate_prices(products, price_types, seed=3),
        warehouses=warehouses,
        stock=generate_stock(products[:20], warehouses, rows=50, seed=3),
    )
    stocked = {row["product_id"] for rows in account.stock.values() for row in rows}
    assert stocked == {p["product_id"] for p in products[:20]}

    # the simulator takes the account as keyword arguments and serves those records
    sim = SmartUpSimulator(**account.as_kwargs(), today=TODAY)
    assert (sim.products, sim.orders, sim.prices, sim.stock) == (
        account.products,
        account.orders,
        account.prices,
        account.stock,
    )

    # given price types are the account's; prices of products without a code can be left out
    given = [{**t, "code": t["code"] or f"PRCT:{n}"} for n, t in enumerate(price_types, start=1)]
    coded = generate_account(
        products=30, orders=0, today=TODAY, price_types=given, price_codeless_products=False, seed=3
    )
    assert coded.price_types == given
    everyone = generate_prices(products, given, seed=3)
    assert coded.prices == [entry for entry in everyone if entry["inventory_code"]]
    assert len(coded.prices) == len(everyone) - 1  # seed 3 makes one product without a code

    # no warehouse, no stock (rather than an error)
    bare = generate_account(products=5, orders=0, today=TODAY, warehouses=0)
    assert bare.warehouses == [] and bare.stock == {"F": [], "B": [], "T": []}


# --- the exports --------------------------------------------------------------------------


def test_product_groups_export(smartup, catalogue):
    answer = post(smartup, PRODUCT_GROUPS_PATH).json()
    assert answer["product_group"] == catalogue["groups"]
    assert answer["limits"]["object_count"] == "3"
    assert answer["limits"]["limit_quant"] == "100"


def test_price_types_v1_has_no_id_and_v2_pages_with_ids():
    price_types = generate_price_types(2500)
    with SmartUpSimulator(price_types=price_types, today=TODAY) as sim:
        v1 = post(sim, PRICE_TYPES_PATH).json()
        assert len(v1["price_type"]) == 2500 and "limits" in v1
        assert all("price_type_id" not in t for t in v1["price_type"])
        assert v1["price_type"][0]["code"] is None

        seen: list[dict[str, Any]] = []
        for offset in ("0", "1000", "2000"):
            body = {
                "column_list": ["price_type_id", "code", "name"],
                "limit": "1000",
                "offset": offset,
            }
            page = post(sim, PRICE_TYPES_V2_PATH, body).json()
            assert set(page) == {"count", "data"}  # no limits
            assert page["count"] == "2500"
            seen += page["data"]
        assert [t["price_type_id"] for t in seen] == [t["price_type_id"] for t in price_types]
        assert set(seen[0]) == {"price_type_id", "code", "name"}
        assert (
            post(sim, PRICE_TYPES_V2_PATH, {"limit": "1000", "offset": "2500"}).json()["data"] == []
        )
        too_big = post(sim, PRICE_TYPES_V2_PATH, {"limit": "1001", "offset": "0"})
        assert too_big.status_code == 400
        unknown = post(sim, PRICE_TYPES_V2_PATH, {"column_list": ["nope"]})
        assert unknown.status_code == 400
        assert sim.requests_today("reference") == 7  # v2 spends the reference quota too


def test_prices_export_filters_by_price_type_code_and_limits_are_optional(smartup, catalogue):
    everything = post(smartup, PRICES_PATH).json()
    assert everything["inventory"] == catalogue["prices"]
    assert "limits" in everything
    wholesale = post(smartup, PRICES_PATH, {"price_type_codes": ["PRCT:3"]}).json()["inventory"]
    assert wholesale
    assert {p["price_type_code"] for e in wholesale for p in e["price_type"]} == {"PRCT:3"}
    assert len(wholesale) == sum(
        any(p["price_type_code"] == "PRCT:3" for p in e["price_type"]) for e in catalogue["prices"]
    )
    with SmartUpSimulator(prices=catalogue["prices"], prices_limits=False) as bare:
        assert set(post(bare, PRICES_PATH).json()) == {"inventory"}


def test_stock_needs_both_dates_and_dates_its_rows(smartup, catalogue):
    for body in (
        {},
        {"begin_date": "10.03.2026"},
        {"begin_date": "2026-03-10", "end_date": "10.03.2026"},
        {"begin_date": "11.03.2026", "end_date": "10.03.2026"},
    ):
        refused = post(smartup, STOCK_PATH, body)
        assert refused.status_code == 400, body
        assert refused.json() == {
            "error_code": "A02-24-122",
            "message": "Неверный формат даты в фильтре",
        }
    answer = post(smartup, STOCK_PATH, STOCK_DAY).json()
    rows = answer["balance"]
    assert len(rows) == 600 and answer["limits"]["object_count"] == "600"
    assert {row["date"] for row in rows} == {"10.03.2026"}
    expected = {
        "inventory_kind", "date", "warehouse_id", "warehouse_code", "product_id", "product_code",
        "product_barcode", "card_code", "expiry_date", "serial_number", "batch_number",
        "quantity", "measure_code", "input_price", "groups",
    }  # fmt: skip
    assert all(set(row) == expected for row in rows)


def test_stock_filters_each_row_belongs_to_one_condition(smartup, catalogue):
    by_condition = {}
    for condition in "FBT":
        body = {**STOCK_DAY, "product_conditions": [condition]}
        by_condition[condition] = post(smartup, STOCK_PATH, body).json()["balance"]
        assert len(by_condition[condition]) == len(catalogue["stock"][condition])
    keys = [
        (r["warehouse_code"], r["product_id"], r["batch_number"], r["serial_number"])
        for c in "FBT"
        for r in by_condition[c]
    ]
    assert len(keys) == 600
    two = post(smartup, STOCK_PATH, {**STOCK_DAY, "product_conditions": ["F", "T"]}).json()
    assert len(two["balance"]) == len(by_condition["F"]) + len(by_condition["T"])
    assert post(smartup, STOCK_PATH, {**STOCK_DAY, "product_conditions": ["X"]}).status_code == 400

    in_wh2 = post(
        smartup, STOCK_PATH, {**STOCK_DAY, "warehouse_codes": [{"warehouse_code": "WH2"}]}
    ).json()["balance"]
    assert in_wh2 and {r["warehouse_code"] for r in in_wh2} == {"WH2"}
    producer = next(p["producer_code"] for p in catalogue["products"] if p["producer_code"])
    made = {p["product_id"] for p in catalogue["products"] if p["producer_code"] == producer}
    rows = post(smartup, STOCK_PATH, {**STOCK_DAY, "producer_codes": [producer]}).json()["balance"]
    assert rows and {r["product_id"] for r in rows} <= made


def test_stock_day_range_limit_is_per_export(catalogue):
    with SmartUpSimulator(
        stock=catalogue["stock"], today=TODAY, day_range_limits={"stock": 3}
    ) as sim:
        three = post(sim, STOCK_PATH, {"begin_date": "08.03.2026", "end_date": "10.03.2026"})
        assert three.status_code == 200
        assert three.json()["limits"]["day_range_limit"] == "3"
        four = post(sim, STOCK_PATH, {"begin_date": "07.03.2026", "end_date": "10.03.2026"})
        assert (four.status_code, four.text) == (400, "A02-24-051 Период не может превышать 3 дня")
        # the orders export keeps the default of 7
        assert (
            post(sim, ORDERS_PATH, project_code="trade").json()["limits"]["day_range_limit"] == "7"
        )


def test_warehouses_answer_with_project_anor_or_not_at_all(smartup, catalogue):
    answer = post(smartup, WAREHOUSES_PATH).json()
    assert answer["warehouse"] == catalogue["warehouses"]
    wrong = post(smartup, WAREHOUSES_PATH, project_code="trade")
    assert (wrong.status_code, wrong.text) == (481, "Проект невидим")
    for status, message in ((481, "Проект невидим"), (404, "Не найдено")):
        with SmartUpSimulator(warehouses=catalogue["warehouses"], warehouses_status=status) as sim:
            refused = post(sim, WAREHOUSES_PATH)
            assert (refused.status_code, refused.text) == (status, message)
            assert sim.requests_today("reference") == 0


def test_faults_apply_to_every_new_export(smartup):
    for name in (
        "product_groups",
        "price_types",
        "price_types_v2",
        "prices",
        "stock",
        "warehouses",
    ):
        smartup.add_fault(name, Fault(status=503))
        body = STOCK_DAY if name == "stock" else {}
        assert post(smartup, PATHS[name], body).status_code == 503
        assert post(smartup, PATHS[name], body).status_code == 200
        assert smartup.requests[-1].endpoint == name


# --- quota classes ------------------------------------------------------------------------


def test_exports_of_one_class_share_its_quota(smartup):
    smartup.set_quota("reference", 4)
    smartup.spend_quota("products", 1)  # another program on the login: a reference request
    assert post(smartup, PRODUCTS_PATH).json()["limits"]["request_quant"] == "2"
    groups = post(smartup, PRODUCT_GROUPS_PATH).json()["limits"]
    assert (groups["limit_quant"], groups["request_quant"], groups["left_limit_quant"]) == (
        "4",
        "3",
        "1",
    )
    assert post(smartup, WAREHOUSES_PATH).json()["limits"]["left_limit_quant"] == "0"
    refused = post(smartup, PRICES_PATH)
    assert refused.status_code == 429 and "лимит" in refused.text
    assert post(smartup, PRICE_TYPES_V2_PATH).status_code == 429
    assert smartup.requests_today("reference") == smartup.requests_today("prices") == 6

    documents = post(smartup, STOCK_PATH, STOCK_DAY).json()["limits"]  # its own class
    assert (documents["limit_quant"], documents["request_quant"]) == ("500", "1")
    orders = post(smartup, ORDERS_PATH, project_code="trade").json()["limits"]
    assert orders["request_quant"] == "2"
    assert smartup.requests_today("documents") == 2

    smartup.advance_day()
    assert smartup.requests_today("reference") == 0
    assert post(smartup, PRICES_PATH).status_code == 200
    with pytest.raises(ValueError):
        smartup.set_quota("nonsense", 1)


# --- mutators -----------------------------------------------------------------------------


def test_mutators_change_what_is_served(smartup, catalogue):
    smartup.update_group(BRAND_GROUP_ID, name="Бренд", state="P")
    smartup.update_group_type("2001", name="Сут маҳсулотлари")
    smartup.remove_group_type("2002")
    smartup.remove_group("1003")
    groups = post(smartup, PRODUCT_GROUPS_PATH).json()["product_group"]
    assert [(g["product_group_id"], g["name"], g["state"]) for g in groups] == [
        (CATEGORY_GROUP_ID, "Категория", "A"),
        (BRAND_GROUP_ID, "Бренд", "P"),
    ]
    types = {t["product_type_id"]: t["name"] for t in groups[0]["product_group_types"]}
    assert types["2001"] == "Сут маҳсулотлари" and "2002" not in types
    with pytest.raises(KeyError):
        smartup.remove_group_type("2002")

    smartup.update_price_type(RETAIL_PRICE_TYPE_ID, code="PRCT:1")
    v1 = post(smartup, PRICE_TYPES_PATH).json()["price_type"]
    assert v1[0]["code"] == "PRCT:1" and v1[0]["name"] == "Розничная цена"

    code = catalogue["prices"][0]["inventory_code"]
    smartup.set_price(code, "PRCT:3", "777")
    prices = post(smartup, PRICES_PATH, {"price_type_codes": ["PRCT:3"]}).json()["inventory"]
    assert prices[0]["inventory_code"] == code and prices[0]["price_type"][0]["price"] == "777"

    row = catalogue["stock"]["F"][0]
    key = (row["warehouse_code"], row["product_id"])
    smartup.set_stock_quantity(*key, "0", batch_number=row["batch_number"])
    smartup.add_stock_rows([{**row, "batch_number": "NEW-1", "quantity": "5"}], condition="B")
    free = post(smartup, STOCK_PATH, {**STOCK_DAY, "product_conditions": ["F"]}).json()["balance"]
    assert free[0]["quantity"] == "0" and free[0]["batch_number"] == row["batch_number"]
    booked = post(smartup, STOCK_PATH, {**STOCK_DAY, "product_conditions": ["B"]}).json()["balance"]
    assert booked[-1]["batch_number"] == "NEW-1"
    smartup.remove_stock_row(*key, batch_number="NEW-1", condition="B")
    smartup.remove_stock_row(*key, batch_number=row["batch_number"])
    rows = post(smartup, STOCK_PATH, STOCK_DAY).json()["balance"]
    assert len(rows) == 599
    assert (row["batch_number"], "NEW-1") not in {
        (r["batch_number"], r["batch_number"]) for r in rows
    }
    with pytest.raises(KeyError):
        smartup.remove_stock_row(*key, batch_number="NEW-1", condition="B")


def test_an_account_without_the_catalogue_answers_empty_arrays():
    with SmartUpSimulator(today=TODAY) as sim:
        arrays: tuple[tuple[Endpoint, str], ...] = (
            ("product_groups", "product_group"),
            ("price_types", "price_type"),
            ("prices", "inventory"),
            ("warehouses", "warehouse"),
            ("stock", "balance"),
        )
        for name, key in arrays:
            body = STOCK_DAY if name == "stock" else {}
            assert post(sim, PATHS[name], body).json()[key] == []
        assert post(sim, PRICE_TYPES_V2_PATH).json() == {"count": "0", "data": []}


# --- the company's time zone --------------------------------------------------------------


def _zone_whose_date_differs_from_utc() -> str:
    now = datetime.datetime.now(datetime.UTC)
    for name in ("Pacific/Kiritimati", "Etc/GMT+12"):
        if now.astimezone(ZoneInfo(name)).date() != now.date():
            return name
    raise AssertionError("one of UTC+14 and UTC-12 always has another date than UTC")


def test_the_day_clock_follows_the_company_zone(monkeypatch):
    zone = _zone_whose_date_differs_from_utc()
    zone_today = datetime.datetime.now(ZoneInfo(zone)).date()
    with SmartUpSimulator(timezone=zone) as sim:
        assert sim.today == zone_today != datetime.datetime.now(datetime.UTC).date()
        products = generate_products(3)
        sim.set_products(products)
        sim.update_product(products[0]["product_id"], name="edited")
        day = zone_today.strftime("%d.%m.%Y")
        changed = post(sim, PRODUCTS_PATH, {"begin_modified_on": day, "end_modified_on": day})
        assert [p["name"] for p in changed.json()["inventory"]] == ["edited"]
    monkeypatch.setenv("SMARTUP_TIMEZONE", zone)
    assert SmartUpSimulator().today == zone_today
    monkeypatch.setenv("SMARTUP_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="Mars/Olympus"):
        SmartUpSimulator()


def test_the_module_shows_its_login_and_refuses_an_unknown_zone():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    shown = subprocess.run(
        [sys.executable, "-m", "jobs.simulator", "--help"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "demo@smartup" in shown.stdout and "demo-secret" in shown.stdout
    assert "--timezone" in shown.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "jobs.simulator", "--timezone", "Mars/Olympus"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and "Mars/Olympus" in refused.stderr


def test_a_sync_in_a_zone_ahead_or_behind_utc_stores_every_order_of_its_days(pg):
    zone = _zone_whose_date_differs_from_utc()
    days_back = 7
    with SmartUpSimulator(user=USER, password=PASSWORD, timezone=zone) as sim:
        products = generate_products(30)
        orders = generate_orders(
            60, products=products, today=sim.today, days=days_back, filial_ids=("100",)
        )
        sim.set_products(products)
        sim.set_orders(orders)
        outcome = run_sync(
            RunRequest(
                kind="orders",
                settings=settings_for(
                    sim, pg, smartup_timezone=zone, sync_orders_days_back=days_back
                ),
                retry=FAST_RETRY,
            )
        )
        assert outcome.status == "SUCCESS", outcome
        open_database(pg)
        stored = {o.source_external_id for o in Order.select()}
        assert stored == {o["deal_id"] for o in orders}
        last = sim.today.strftime("%d.%m.%Y")
        asked = [r.body for r in sim.requests if r.endpoint == "orders"]
        assert any(body.get("end_modified_on") == last for body in asked)
        # and the newest orders were really on the zone's own day, which UTC has not
        assert any(json.dumps(o["deal_time"]).startswith(f'"{last}') for o in orders)
