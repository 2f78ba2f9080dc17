"""Pure parsing: SmartUp strings into typed values, and records into rows or rejects."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from jobs.pipeline.records import (
    ORDER_COLUMNS,
    ORDER_ITEM_COLUMNS,
    PRODUCT_COLUMNS,
    FieldError,
    RecordRejected,
    content_hash,
    identify_order,
    identify_product,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_order,
    parse_product,
    raw_json,
    split_barcodes,
    text,
)
from tests.helpers import TASHKENT


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1 200 000,50", Decimal("1200000.50")),
        ("1\u00a0200,5", Decimal("1200.5")),
        ("1200000.50", Decimal("1200000.50")),
        ("1.200.000,50", Decimal("1200000.50")),
        ("1,200,000.50", Decimal("1200000.50")),
        ("1.200.000", Decimal("1200000")),
        ("-3,5", Decimal("-3.5")),
        ("0", Decimal("0")),
        (" 12 ", Decimal("12")),
        ("", None),
        (None, None),
    ],
)
def test_amounts(raw, expected):
    assert parse_decimal(raw) == expected


@pytest.mark.parametrize(
    "raw", ["abc", "1,2,3x", "NaN", "Infinity", "1e400", "--1", "12 руб", "1" * 19]
)
def test_amounts_that_are_not_numbers(raw):
    with pytest.raises(FieldError, match="total_amount"):
        parse_decimal(raw, field="total_amount")


def test_dates():
    assert parse_date("28.11.2026") == date(2026, 11, 28)
    assert parse_date("28.11.2026 10:15:00") == date(2026, 11, 28)
    assert parse_date("") is None
    for bad in ("31.02.2026", "2026-11-28", "28.11.26", "28.11.2026x"):
        with pytest.raises(FieldError):
            parse_date(bad)


def test_datetimes_are_aware_in_the_company_zone():
    moment = parse_datetime("05.03.2026 14:30:15", tz=TASHKENT)
    assert moment == datetime(2026, 3, 5, 14, 30, 15, tzinfo=TASHKENT)
    assert moment is not None and moment.utcoffset() == timedelta(hours=5)
    assert parse_datetime("05.03.2026 14:30", tz=TASHKENT) == datetime(
        2026, 3, 5, 14, 30, tzinfo=TASHKENT
    )
    assert parse_datetime("05.03.2026", tz=TASHKENT) == datetime(2026, 3, 5, tzinfo=TASHKENT)
    assert parse_datetime("", tz=TASHKENT) is None
    for bad in ("05.03.2026 25:00:00", "05.13.2026 10:00:00", "yesterday"):
        with pytest.raises(FieldError):
            parse_datetime(bad, tz=TASHKENT)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4780000000011|4780000000028, 4780000000011", ["4780000000011", "4780000000028"]),
        ("a;b c,d|e", ["a", "b", "c", "d", "e"]),
        ("  x  ", ["x"]),
        ("", []),
        (None, []),
        ("b|a|b", ["b", "a"]),
    ],
)
def test_barcodes(raw, expected):
    assert split_barcodes(raw) == expected


def test_empty_text_is_null_and_numbers_keep_their_digits():
    assert text("") is None
    assert text("Молоко") == "Молоко"
    assert text(Decimal("12")) == "12"
    with pytest.raises(FieldError):
        text(["a"])


def test_content_hash_tells_changed_records_apart():
    first = content_hash({"a": "1", "b": "Чай"})
    assert first == content_hash({"a": "1", "b": "Чай"})
    assert first != content_hash({"a": "2", "b": "Чай"})
    assert first != content_hash({"a": "1", "b": "Чай", "c": ""})


def test_raw_json_keeps_the_record_and_refuses_what_postgres_refuses():
    assert raw_json({"name": "Чай", "n": "1"}) == '{"name":"Чай","n":"1"}'
    for bad in ("nul\x00", "surrogate\ud800"):
        with pytest.raises(FieldError):
            raw_json({"name": bad})


PRODUCT = {
    "product_id": "100001",
    "code": "P001",
    "name": "Молоко 3,2% 1л",
    "short_name": "",
    "measure_code": "dona",
    "state": "P",
    "barcodes": "111|222; 111",
    "groups": [],
}


def test_product_row():
    parsed = parse_product(PRODUCT, identify_product(PRODUCT), tz=TASHKENT)
    assert parsed.key == ("smartup", "100001") and parsed.row is not None
    row = dict(zip(PRODUCT_COLUMNS, parsed.row, strict=True))
    assert row["external_source"] == "smartup"
    assert row["short_name"] is None
    assert row["barcodes"] == ["111", "222"]
    assert row["is_active"] is False
    assert '"name":"Молоко 3,2% 1л"' in row["raw"]


@pytest.mark.parametrize(
    ("record", "record_id", "reason"),
    [
        ({**PRODUCT, "product_id": ""}, None, "no product_id"),
        ({"code": "x"}, None, "no product_id"),
        ({**PRODUCT, "name": "bad\x00name"}, "100001", "NUL"),
        ({**PRODUCT, "barcodes": ["1"]}, "100001", "barcodes"),
        ("not an object", None, "not an object"),
    ],
)
def test_product_rejects(record, record_id, reason):
    with pytest.raises(RecordRejected) as caught:
        parse_product(record, identify_product(record), tz=TASHKENT)
    assert caught.value.record_id == record_id
    assert reason in caught.value.reason


ORDER = {
    "deal_id": "500001",
    "external_id": "",
    "filial_id": "100",
    "filial_code": "F100",
    "deal_time": "27.11.2026 18:05:00",
    "delivery_date": "28.11.2026",
    "booked_date": "",
    "status": "B#N",
    "total_amount": "1 200 000,50",
    "currency_code": "860",
    "person_id": "7",
    "person_name": "Abdulla Qodiriy",
    "order_products": [
        {
            "product_unit_id": "9001",
            "product_code": "P001",
            "product_name": "Молоко",
            "order_quant": "1,5",
            "sold_quant": "1,5",
            "return_quant": "0",
            "product_price": "800 000,00",
            "sold_amount": "1 200 000,00",
            "vat_percent": "12",
        },
        {
            "product_unit_id": "9002",
            "product_code": "",
            "product_barcode": "478",
            "order_quant": "1",
            "product_price": "0,50",
            "sold_amount": "0,50",
        },
    ],
}


def test_order_row_and_lines():
    parsed = parse_order(ORDER, identify_order(ORDER), tz=TASHKENT)
    assert parsed.row is not None
    row = dict(zip(ORDER_COLUMNS, parsed.row, strict=True))
    assert row["total_amount"] == Decimal("1200000.50")
    assert row["deal_time"] == datetime(2026, 11, 27, 18, 5, tzinfo=TASHKENT)
    assert row["booked_date"] is None and row["external_id"] is None
    lines = [dict(zip(ORDER_ITEM_COLUMNS, line, strict=True)) for line in parsed.children]
    assert [line["line_no"] for line in lines] == [1, 2]
    assert lines[0]["quantity"] == Decimal("1.5") and lines[0]["amount"] == Decimal("1200000.00")
    assert lines[1]["product_code"] is None and lines[1]["product_barcode"] == "478"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"deal_time": "31.02.2026 10:00:00"}, "deal_time"),
        ({"total_amount": "много"}, "total_amount"),
        (
            {"order_products": [{"product_unit_id": "1", "sold_amount": "x"}]},
            "order line 1 sold_amount",
        ),
        ({"order_products": "nope"}, "order_products"),
    ],
)
def test_order_rejects_name_the_field(change, reason):
    with pytest.raises(RecordRejected) as caught:
        record = {**ORDER, **change}
        parse_order(record, identify_order(record), tz=TASHKENT)
    assert caught.value.record_id == "500001"
    assert reason in caught.value.reason
