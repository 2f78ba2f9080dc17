"""The catalogue's records (groups and types, product categories, price types, prices,
warehouses, stock balances) into rows or rejects, and migration 005 on both databases."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import peewee as pw
import pytest

from jobs.models import open_database
from jobs.pipeline.records import (
    BALANCE_COLUMNS,
    ORDER_ITEM_COLUMNS,
    PRICE_COLUMNS,
    PRICE_TYPE_COLUMNS,
    PRODUCT_CATEGORY_COLUMNS,
    PRODUCT_GROUP_COLUMNS,
    PRODUCT_TYPE_COLUMNS,
    WAREHOUSE_COLUMNS,
    RecordRejected,
    expand_price_entry,
    identify_balance,
    identify_group,
    identify_order,
    identify_price,
    identify_price_type,
    identify_product,
    identify_warehouse,
    natural_key,
    parse_balance,
    parse_group,
    parse_order,
    parse_price,
    parse_price_type,
    parse_product_categories,
    parse_warehouse,
)
from jobs.processes.migrate import apply_migrations
from tests.helpers import TASHKENT


def as_dict(columns: tuple[str, ...], row: tuple[Any, ...] | None) -> dict[str, Any]:
    assert row is not None
    return dict(zip(columns, row, strict=True))


def rejected(call: Any) -> RecordRejected:
    with pytest.raises(RecordRejected) as caught:
        call()
    return caught.value


# -- keys -------------------------------------------------------------------------------------


def test_keys_of_different_parts_never_collide():
    assert natural_key(["a", None, "b"]) == natural_key(["a", "", "b"]) == '["a","","b"]'
    assert natural_key(["a/b", "c"]) != natural_key(["a", "b/c"])
    assert natural_key(['a","b']) != natural_key(["a", "b"])
    assert natural_key(["a\\", "b"]) != natural_key(["a", "\\b"])


# -- groups and types -------------------------------------------------------------------------

GROUP = {
    "product_group_id": "3",
    "code": "PRDGR:3",
    "name": "Категория",
    "product_kind": None,
    "state": "A",
    "product_group_types": [
        {"product_type_id": "31", "code": None, "name": "Молочные", "state": "A", "order_no": "1"},
        {"product_type_id": "32", "code": "", "name": " Напитки ", "state": "P", "order_no": None},
    ],
}


def test_a_group_and_its_types():
    parsed = parse_group(GROUP, identify_group(GROUP), tz=TASHKENT)
    assert parsed.key == ("3",)
    row = as_dict(PRODUCT_GROUP_COLUMNS, parsed.row)
    assert row["external_id"] == "3" and row["code"] == "PRDGR:3" and row["name"] == "Категория"
    assert row["product_kind"] is None and row["is_active"] is True
    assert json.loads(row["raw"]) == GROUP
    types = [as_dict(PRODUCT_TYPE_COLUMNS, child) for child in parsed.children]
    assert [t["external_id"] for t in types] == ["31", "32"]
    assert [t["group_external_id"] for t in types] == ["3", "3"]
    assert [t["code"] for t in types] == [None, None]  # null and "" alike
    assert [t["name"] for t in types] == ["Молочные", " Напитки "]  # exactly as sent
    assert [t["is_active"] for t in types] == [True, False]
    assert [t["order_no"] for t in types] == ["1", None]
    assert types[0]["content_hash"] != types[1]["content_hash"]


def test_a_group_without_types_is_a_group():
    types: Any
    for types in (None, "", []):
        record = {**GROUP, "product_group_types": types}
        assert parse_group(record, identify_group(record), tz=TASHKENT).children == ()
    record = {key: value for key, value in GROUP.items() if key != "product_group_types"}
    assert parse_group(record, identify_group(record), tz=TASHKENT).children == ()


@pytest.mark.parametrize(
    ("types", "reason"),
    [
        ("Молочные", "product_group_types is not a list"),
        ([{"product_type_id": "31"}, "x"], "product type 2 is not an object"),
        ([{"name": "без id"}], "product type 1: no product_type_id"),
        ([{"product_type_id": "31", "name": "a\x00b"}], "product type 1 (31) name"),
        ([{"product_type_id": "31"}, {"product_type_id": "31"}], "product type 2 repeats"),
        ([{"product_type_id": "31", "order_no": ["1"]}], "product type 1 (31) order_no"),
    ],
)
def test_a_bad_type_rejects_its_group_naming_the_type(types, reason):
    record = {**GROUP, "product_group_types": types}
    reject = rejected(lambda: parse_group(record, identify_group(record), tz=TASHKENT))
    assert reject.record_id == "3"
    assert reason in reject.reason


def test_a_group_without_an_id_is_rejected():
    record = {**GROUP, "product_group_id": None}
    reject = rejected(lambda: identify_group(record))
    assert reject.reason == "no product_group_id"


# -- a product's categories -----------------------------------------------------------------------


def test_a_products_groups_are_its_categories():
    product = {
        "product_id": "100001",
        "groups": [
            {"group_id": "3", "group_code": "PRDGR:3", "type_id": "31", "type_code": None},
            {"group_code": "BRAND", "type_code": ""},
        ],
    }
    rows = parse_product_categories(product, identify_product(product))
    assert [as_dict(PRODUCT_CATEGORY_COLUMNS, row) for row in rows] == [
        {
            "line_no": 1,
            "group_external_id": "3",
            "group_code": "PRDGR:3",
            "type_external_id": "31",
            "type_code": None,
        },
        {
            "line_no": 2,
            "group_external_id": None,
            "group_code": "BRAND",
            "type_external_id": None,
            "type_code": None,
        },
    ]
    empty: Any
    for empty in (None, "", []):
        record = {"product_id": "1", "groups": empty}
        assert parse_product_categories(record, identify_product(record)) == ()


@pytest.mark.parametrize(
    ("groups", "reason"),
    [
        ("PRDGR:3", "groups is not a list"),
        ([{"group_id": "3"}, None], "groups entry 2 is not an object"),
        ([{"group_id": {"id": 3}}], "groups entry 1 group_id"),
        ([{"type_code": "\ud800"}], "groups entry 1 type_code"),
    ],
)
def test_a_bad_category_rejects_its_product(groups, reason):
    product = {"product_id": "100001", "groups": groups}
    reject = rejected(lambda: parse_product_categories(product, identify_product(product)))
    assert reject.record_id == "100001"
    assert reason in reject.reason


# -- price types --------------------------------------------------------------------------------


def test_price_types_are_keyed_by_id_else_by_code():
    with_id = {
        "price_type_id": 7,
        "code": None,
        "name": "Цена дилеров",
        "short_name": "",
        "with_card": "N",
        "state": "A",
        "price_type_kind": "S",
        "currency_code": "860",
    }
    identity = identify_price_type(with_id)
    assert identity.key == ("id:7",) and identity.record_id == "id:7"
    row = as_dict(PRICE_TYPE_COLUMNS, parse_price_type(with_id, identity, tz=TASHKENT).row)
    assert row["external_id"] == "7" and row["code"] is None and row["short_name"] is None
    assert row["with_card"] is False and row["is_active"] is True
    assert row["currency_code"] == "860" and row["name"] == "Цена дилеров"
    assert json.loads(row["raw"])["price_type_id"] == 7

    by_code = {"code": "PRCT:1", "name": "Розничная цена", "with_card": "Y", "state": "P"}
    identity = identify_price_type(by_code)
    assert identity.key == ("code:PRCT:1",)
    row = as_dict(PRICE_TYPE_COLUMNS, parse_price_type(by_code, identity, tz=TASHKENT).row)
    assert row["external_id"] is None and row["with_card"] is True and row["is_active"] is False
    assert row["currency_code"] is None


def test_a_price_type_without_id_or_code_is_rejected_with_its_name():
    for empty in (None, ""):
        record = {"price_type_id": empty, "code": empty, "name": "Розничная цена"}
        reject = rejected(lambda record=record: identify_price_type(record))
        assert reject.record_id == "Розничная цена"
        assert reject.reason == "no price_type_id and no code"


def test_a_price_type_with_a_value_that_cannot_be_stored_is_rejected():
    record = {"code": "PRCT:1", "name": ["Розница"]}
    reject = rejected(lambda: parse_price_type(record, identify_price_type(record), tz=TASHKENT))
    assert reject.record_id == "code:PRCT:1" and "name is not text" in reject.reason


# -- prices -------------------------------------------------------------------------------------

PRICE_ENTRY = {
    "inventory_code": "P001",
    "inventory_barcode": "4780000000011",
    "price_type": [
        {"price_type_code": "PRCT:1", "card_code": None, "price": "12 500,50"},
        {"price_type_code": "PRCT:2", "card_code": "", "price": "11000"},
        {"price_type_code": "PRCT:2", "card_code": "CARD-1", "price": None},
    ],
}


def test_a_price_entry_is_one_record_per_price():
    flat = expand_price_entry(PRICE_ENTRY)
    assert flat[0] == {
        "inventory_code": "P001",
        "inventory_barcode": "4780000000011",
        "price_type_code": "PRCT:1",
        "card_code": None,
        "price": "12 500,50",
    }
    rows = []
    for record in flat:
        identity = identify_price(record)
        rows.append(as_dict(PRICE_COLUMNS, parse_price(record, identity, tz=TASHKENT).row))
    assert [row["price"] for row in rows] == [Decimal("12500.50"), Decimal("11000"), None]
    assert [row["card_code"] for row in rows] == [None, None, "CARD-1"]
    assert [row["price_key"] for row in rows] == [
        '["P001","PRCT:1",""]',
        '["P001","PRCT:2",""]',
        '["P001","PRCT:2","CARD-1"]',
    ]
    assert identify_price(flat[2]).record_id == "P001/PRCT:2/CARD-1"
    assert rows[0]["product_barcode"] == "4780000000011"
    empty: Any
    for empty in (None, "", []):
        assert expand_price_entry({"inventory_code": "P001", "price_type": empty}) == []


@pytest.mark.parametrize(
    ("entry", "record_id", "reason"),
    [
        ("P001", None, "price entry is not an object"),
        ({"inventory_code": "P001", "price_type": {"a": 1}}, "P001", "price_type is not a list"),
        ({"inventory_code": "P001", "price_type": [{}, 5]}, "P001", "price 2 is not an object"),
    ],
)
def test_a_bad_price_entry_is_rejected(entry, record_id, reason):
    reject = rejected(lambda: expand_price_entry(entry))
    assert reject.record_id == record_id and reason in reject.reason


@pytest.mark.parametrize(
    ("change", "record_id", "reason"),
    [
        ({"price": "12,505"}, "P001/PRCT:1/", "price has more than 2 decimals"),
        ({"price": "дорого"}, "P001/PRCT:1/", "price is not a number"),
        ({"price_type_code": None}, "P001//", "no price_type_code"),
        ({"inventory_code": ""}, "/PRCT:1/", "no inventory_code"),
        ({"card_code": "a\x00"}, "P001/PRCT:1", "card_code"),
    ],
)
def test_a_bad_price_is_rejected_with_its_id(change, record_id, reason):
    record = {**expand_price_entry(PRICE_ENTRY)[0], **change}
    reject = rejected(lambda: parse_price(record, identify_price(record), tz=TASHKENT))
    assert reject.record_id == record_id and reason in reject.reason


# -- warehouses ---------------------------------------------------------------------------------


def test_a_warehouse():
    record = {"warehouse_id": "55", "code": None, "name": "Основной склад"}
    identity = identify_warehouse(record)
    row = as_dict(WAREHOUSE_COLUMNS, parse_warehouse(record, identity, tz=TASHKENT).row)
    assert row["external_id"] == "55" and row["code"] is None and row["name"] == "Основной склад"
    assert json.loads(row["raw"]) == record
    assert rejected(lambda: identify_warehouse({"code": "W1"})).reason == "no warehouse_id"


# -- stock balances -----------------------------------------------------------------------------

BALANCE = {
    "inventory_kind": "G",
    "date": "06.12.2026",
    "warehouse_id": "55",
    "warehouse_code": "W1",
    "product_id": "100001",
    "product_code": "P001",
    "product_barcode": None,
    "card_code": None,
    "expiry_date": "01.03.2027",
    "serial_number": "",
    "batch_number": "B-1",
    "quantity": "1 250,5",
    "measure_code": "dona",
    "input_price": "9 000,00",
    "groups": [{"group_code": "Категория", "type_code": "Молочные"}],
}


def test_balance_rows_per_batch_and_condition():
    second_batch = {**BALANCE, "batch_number": "B-2", "quantity": "3", "expiry_date": None}
    rows = []
    for record, condition in ((BALANCE, "F"), (second_batch, "F"), (BALANCE, "B")):
        identity = identify_balance(record, condition=condition)
        parsed = parse_balance(record, identity, tz=TASHKENT, condition=condition)
        rows.append(as_dict(BALANCE_COLUMNS, parsed.row))
    first = rows[0]
    assert first["balance_key"] == '["55","100001","B-1","","01.03.2027","","F"]'
    assert first["quantity"] == Decimal("1250.5") and first["input_price"] == Decimal("9000.00")
    assert first["expiry_date"] == date(2027, 3, 1) and first["balance_date"] == date(2026, 12, 6)
    assert first["serial_number"] is None and first["card_code"] is None
    assert first["condition"] == "F" and first["warehouse_code"] == "W1"
    assert rows[1]["expiry_date"] is None and rows[1]["quantity"] == Decimal("3")
    assert len({row["balance_key"] for row in rows}) == 3
    assert len({row["content_hash"] for row in rows}) == 3  # the condition counts too
    assert identify_balance(BALANCE, condition="F").record_id == "55/100001/B-1/01.03.2027"


@pytest.mark.parametrize(
    ("change", "record_id", "reason"),
    [
        ({"quantity": "1,0000001"}, "55/100001/B-1/01.03.2027", "quantity has more than 6"),
        ({"input_price": "1.5.5"}, "55/100001/B-1/01.03.2027", "input_price is not a number"),
        ({"expiry_date": "31.02.2027"}, "55/100001/B-1/31.02.2027", "expiry_date is not a real"),
        ({"date": "2026-12-06"}, "55/100001/B-1/01.03.2027", "date is not dd.mm.yyyy"),
        ({"product_id": None}, "55/B-1/01.03.2027", "no product_id"),
        ({"warehouse_id": ""}, "100001/B-1/01.03.2027", "no warehouse_id"),
        ({"batch_number": {"n": 1}}, "55/100001", "batch_number is not text"),
    ],
)
def test_a_bad_balance_row_is_rejected_with_its_id(change, record_id, reason):
    record = {**BALANCE, **change}

    def parse() -> None:
        identity = identify_balance(record, condition="F")
        parse_balance(record, identity, tz=TASHKENT, condition="F")

    reject = rejected(parse)
    assert reject.record_id == record_id and reason in reject.reason


def test_a_condition_is_f_b_or_t():
    with pytest.raises(ValueError, match="condition"):
        identify_balance(BALANCE, condition="X")


# -- order lines keep SmartUp's product_id -------------------------------------------------------


def test_an_order_line_keeps_its_product_id():
    order = {
        "deal_id": "500001",
        "order_products": [
            {"product_unit_id": "1", "product_id": "100001", "product_code": None},
            {"product_unit_id": "2", "product_id": None, "product_code": "P002"},
        ],
    }
    parsed = parse_order(order, identify_order(order), tz=TASHKENT)
    lines = [dict(zip(ORDER_ITEM_COLUMNS, line, strict=True)) for line in parsed.children]
    assert [line["product_external_id"] for line in lines] == ["100001", None]


# -- migration 005 on both databases -------------------------------------------------------------

NOW = "2026-12-06T10:00:00+05:00"


def _stock_after_two_batches(db: pw.Database) -> list[Decimal]:
    def insert(sql: str, params: tuple[Any, ...]) -> int:
        returning = " RETURNING id" if isinstance(db, pw.PostgresqlDatabase) else ""
        cursor = db.execute_sql(sql + returning, params)
        return int(cursor.fetchone()[0]) if returning else int(cursor.lastrowid)

    p = "%s" if isinstance(db, pw.PostgresqlDatabase) else "?"
    product = insert(
        "INSERT INTO products (external_source, external_id, barcodes, is_active, raw,"
        f" content_hash, first_synced_at, last_synced_at) VALUES ('smartup', '1', '[]',"
        f" {p}, '{{}}', 'h', {p}, {p})",
        (True, NOW, NOW),
    )
    warehouse = insert(
        "INSERT INTO warehouses (external_id, raw, content_hash, first_synced_at,"
        f" last_synced_at) VALUES ('55', '{{}}', 'h', {p}, {p})",
        (NOW, NOW),
    )
    rows = [
        ("B-1", "F", "1.500000"),
        ("B-2", "F", "2.250000"),
        ("B-3", "B", "4.000000"),
        ("B-4", "F", "7.000000"),  # of no known product: not in the view
    ]
    for batch, condition, quantity in rows:
        insert(
            "INSERT INTO stock_balances (balance_key, warehouse_external_id,"
            " product_external_id, batch_number, condition, quantity, product_id,"
            " warehouse_id, content_hash, first_synced_at, last_synced_at)"
            f" VALUES ({p}, '55', '1', {p}, {p}, {p}, {p}, {p}, 'h', {p}, {p})",
            (
                batch + condition,
                batch,
                condition,
                Decimal(quantity),
                None if batch == "B-4" else product,
                warehouse,
                NOW,
                NOW,
            ),
        )
    stock = db.execute_sql(
        "SELECT product_id, warehouse_id, warehouse_external_id, condition, quantity"
        " FROM product_stock ORDER BY condition DESC"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[3]) for r in stock] == [
        (product, warehouse, "55", "F"),
        (product, warehouse, "55", "B"),
    ]
    return [Decimal(str(r[4])) for r in stock]


def test_migration_005_applies_on_postgres_and_the_view_sums_batches(make_pg_database):
    url = make_pg_database()
    db = open_database(url)
    try:
        assert _stock_after_two_batches(db) == [Decimal("3.75"), Decimal("4")]
        (exact,) = db.execute_sql("SELECT pg_typeof(quantity)::text FROM product_stock").fetchone()
        assert exact == "numeric"
        db.execute_sql("DELETE FROM products")  # SET NULL, not a cascade
        assert db.execute_sql("SELECT count(*) FROM stock_balances").fetchone()[0] == 4
        assert db.execute_sql("SELECT count(*) FROM product_stock").fetchone()[0] == 0
    finally:
        db.close()


def test_migration_005_applies_on_sqlite_and_the_view_sums_batches(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalogue.sqlite3'}"
    assert "005_catalogue" in apply_migrations(url)
    db = open_database(url)
    try:
        assert _stock_after_two_batches(db) == [Decimal("3.75"), Decimal("4")]
    finally:
        db.close()
