"""Properties of the catalogue's parsers on generated records: every value is stored
exactly as sent (checked against the row by the independent oracle of tests/oracles.py),
or the record is rejected with its id and a reason (read independently here); nothing
raises but RecordRejected."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.pipeline.records import (
    BALANCE_COLUMNS,
    PRICE_COLUMNS,
    PRICE_TYPE_COLUMNS,
    PRODUCT_GROUP_COLUMNS,
    PRODUCT_TYPE_COLUMNS,
    WAREHOUSE_COLUMNS,
    RecordRejected,
    expand_price_entry,
    identify_balance,
    identify_group,
    identify_price,
    identify_price_type,
    identify_warehouse,
    natural_key,
    parse_balance,
    parse_group,
    parse_price,
    parse_price_type,
    parse_warehouse,
)
from tests.helpers import TASHKENT
from tests.oracles import (
    BALANCE_SPEC,
    GROUP_SPEC,
    PRICE_SPEC,
    PRICE_TYPE_SPEC,
    WAREHOUSE_SPEC,
    as_read,
    check_row,
    empty,
    same,
    storable,
)
from tests.strategies import UNREADABLE, examples
from tests.strategies_catalogue import catalogue_records_of

# -- the ids and keys a record must be named by --------------------------------------------------


def valid_id(value: Any) -> str | None:
    """The id a record must be named by, read independently: text (or a number's digits),
    not blank, at most 64 characters, storable."""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    return value if storable(value) else None


def part(value: Any) -> str:
    """A key part as sent: "" for null/""/missing, a number's digits; a value that is
    no text gives a part that is not storable (so no id is expected)."""
    if empty(value):
        return ""
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else "\x00"


def draw_record(data: Any, kind: str) -> Any:
    return as_read(data.draw(catalogue_records_of(kind)).value)


# -- groups and their types --------------------------------------------------------------------

TYPE_SPEC = {
    "external_id": ("product_type_id", "text"),
    "code": ("code", "text"),
    "name": ("name", "text"),
    "is_active": ("state", "state"),
    "order_no": ("order_no", "text"),
}


@examples(50, 1500)
@given(data=st.data())
def test_a_group_is_rows_exactly_as_sent_or_a_reject(data):
    check_group(draw_record(data, "groups"))


# The examples make test draws (derandomized, 50) hold no parsed group with a type whose
# state is missing, null or "": a type's is_active could be read from anything but "A"
# there and no generated example would tell. These records hold each spelling.
STATE_SPELLINGS: dict[str, dict[str, Any]] = {
    "missing": {},
    "null": {"state": None},
    "empty": {"state": ""},
    "A": {"state": "A"},
    "P": {"state": "P"},
}


@pytest.mark.parametrize("spelling", sorted(STATE_SPELLINGS))
def test_a_group_and_its_types_in_every_state_spelling_are_rows_exactly_as_sent(spelling):
    state = STATE_SPELLINGS[spelling]
    record = {
        "product_group_id": "1",
        **state,
        "product_group_types": [{"product_type_id": "2", **state}],
    }
    check_group(record)


def check_group(record: Any) -> None:
    """A group record is rows exactly as sent (itself, and its types linked to it, each
    id once), or a reject naming its id."""
    if record is UNREADABLE:
        return
    try:
        identity = identify_group(record)
        parsed = parse_group(record, identity, tz=TASHKENT)
    except RecordRejected as reject:
        assert reject.reason
        if isinstance(record, dict) and valid_id(record.get("product_group_id")):
            assert reject.record_id == valid_id(record["product_group_id"])
        return
    check_row(PRODUCT_GROUP_COLUMNS, parsed.row, record, GROUP_SPEC)
    types = record.get("product_group_types")
    types = [] if empty(types) else types
    assert len(parsed.children) == len(types)
    ids = []
    for child, sent in zip(parsed.children, types, strict=True):
        check_row(PRODUCT_TYPE_COLUMNS, child, sent, TYPE_SPEC)
        assert child[PRODUCT_TYPE_COLUMNS.index("group_external_id")] == identity.record_id
        ids.append(child[0])
    assert len(set(ids)) == len(ids)


# -- price types -------------------------------------------------------------------------------


@examples(50, 1500)
@given(data=st.data())
def test_a_price_type_is_a_row_exactly_as_sent_or_a_reject(data):
    record = draw_record(data, "price_types")
    if record is UNREADABLE:
        return
    try:
        identity = identify_price_type(record)
        parsed = parse_price_type(record, identity, tz=TASHKENT)
    except RecordRejected as reject:
        assert reject.reason
        if isinstance(record, dict) and empty(record.get("price_type_id")):
            if empty(record.get("code")):
                assert reject.reason == "no price_type_id and no code"
            elif valid_id(record.get("code")):
                assert reject.record_id == "code:" + part(record["code"])
        elif isinstance(record, dict) and valid_id(record.get("price_type_id")):
            assert reject.record_id == "id:" + part(record["price_type_id"])
        return
    check_row(PRICE_TYPE_COLUMNS, parsed.row, record, PRICE_TYPE_SPEC)
    if not empty(record.get("price_type_id")):
        expected_key = "id:" + part(record["price_type_id"])
    else:
        expected_key = "code:" + part(record["code"])
    assert parsed.key == (expected_key,) and parsed.row is not None
    assert parsed.row[0] == expected_key


# -- prices ------------------------------------------------------------------------------------


@examples(50, 1500)
@given(data=st.data())
def test_a_price_entry_is_rows_exactly_as_sent_or_rejects(data):
    entry = draw_record(data, "price_entries")
    if entry is UNREADABLE:
        return
    try:
        flat = expand_price_entry(entry)
    except RecordRejected as reject:
        assert reject.reason
        prices = entry.get("price_type") if isinstance(entry, dict) else None
        assert not isinstance(entry, dict) or not (
            empty(prices) or (isinstance(prices, list) and all(isinstance(p, dict) for p in prices))
        )
        return
    prices = [] if empty(entry.get("price_type")) else entry["price_type"]
    assert len(flat) == len(prices)
    for record, sent in zip(flat, prices, strict=True):
        for field in ("price_type_code", "card_code", "price"):
            assert same(sent.get(field), record[field])
        for field in ("inventory_code", "inventory_barcode"):
            assert same(entry.get(field), record[field])
        parts = [part(record[f]) for f in ("inventory_code", "price_type_code", "card_code")]
        try:
            identity = identify_price(record)
            parsed = parse_price(record, identity, tz=TASHKENT)
        except RecordRejected as reject:
            assert reject.reason
            if all(storable(p) for p in parts):
                assert reject.record_id == "/".join(parts)
            continue
        assert parts[0].strip() and parts[1].strip()
        assert parsed.key == (natural_key(parts),) and parsed.row is not None
        assert parsed.row[0] == natural_key(parts)
        check_row(PRICE_COLUMNS, parsed.row, record, PRICE_SPEC)


# -- warehouses --------------------------------------------------------------------------------


@examples(40, 1000)
@given(data=st.data())
def test_a_warehouse_is_a_row_exactly_as_sent_or_a_reject(data):
    record = draw_record(data, "warehouses")
    if record is UNREADABLE:
        return
    try:
        parsed = parse_warehouse(record, identify_warehouse(record), tz=TASHKENT)
    except RecordRejected as reject:
        assert reject.reason
        if isinstance(record, dict) and valid_id(record.get("warehouse_id")):
            assert reject.record_id == valid_id(record["warehouse_id"])
        return
    check_row(WAREHOUSE_COLUMNS, parsed.row, record, WAREHOUSE_SPEC)


# -- stock balances ----------------------------------------------------------------------------

KEY_FIELDS = ("warehouse_id", "product_id", "batch_number", "card_code", "expiry_date")


@pytest.mark.parametrize("condition", ["F", "B", "T"])
@examples(25, 800)
@given(data=st.data())
def test_a_balance_row_is_a_row_exactly_as_sent_or_a_reject(condition, data):
    record = draw_record(data, "balances")
    if record is UNREADABLE:
        return

    def parse() -> Any:
        identity = identify_balance(record, condition=condition)
        return parse_balance(record, identity, tz=TASHKENT, condition=condition)

    try:
        parsed = parse()
    except RecordRejected as reject:
        assert reject.reason
        if isinstance(record, dict):
            parts = [part(record.get(f)) for f in (*KEY_FIELDS, "serial_number")]
            if all(storable(p) for p in parts):
                assert reject.record_id == ("/".join(p for p in parts if p) or None)
        return
    assert valid_id(record.get("warehouse_id")) and valid_id(record.get("product_id"))
    check_row(BALANCE_COLUMNS, parsed.row, record, BALANCE_SPEC)
    parts = [part(record.get(f)) for f in (*KEY_FIELDS, "serial_number")]
    assert parsed.row is not None and parsed.row[0] == natural_key([*parts, condition])
    assert parsed.row[BALANCE_COLUMNS.index("condition")] == condition
