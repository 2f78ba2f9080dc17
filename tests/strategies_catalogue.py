"""Hypothesis strategies for the catalogue's records: product groups (with their types),
price types, price entries (with their price rows), warehouses and stock balance rows.

Built from the pieces of :mod:`tests.strategies`: a record is clean (values SmartUp could
send, ``null`` as often as ``""``, amounts in SmartUp's spellings) or, one time in three,
hostile (any field any JSON value, amounts spelled as SmartUp should not, the id too).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.strategies import (
    Piece,
    amount_text,
    array_of,
    clean_text,
    date_text,
    field_values,
    hostile_pieces,
    id_pieces,
    object_of,
    one_in,
    plain_string,
    smartup_record,
    string_pieces,
    text_value,
    valid_amount_text,
    valid_date_text,
    valid_ids,
    value_pieces,
)

NULL = Piece(b"null", None)
EMPTY = plain_string("")
empty_pieces = st.sampled_from([NULL, EMPTY])


def or_empty(strategy: Any) -> Any:
    """Values of ``strategy``, or ``null``, or ``""`` (as often as each other)."""
    return one_in(3).flatmap(lambda empty: empty_pieces if empty else strategy)


def _clean(strategy: Any) -> tuple[Any, Any]:
    return field_values(or_empty(strategy))


STATE = _clean(text_value(st.sampled_from(["A", "P"])))
NAMES = st.sampled_from(["Категория", "Торговая_марка", "Молочные", " Напитки ", "Chorva"])
NAME = _clean(st.one_of(text_value(NAMES), clean_text))
NUMBER_AMOUNT = st.decimals(allow_nan=False, allow_infinity=False, places=None).map(
    lambda value: Piece(str(value).encode(), value)
)
# Amounts as SmartUp writes them (text), as JSON numbers, and as it should not.
PRICE_AMOUNT = (
    or_empty(st.one_of(text_value(valid_amount_text), NUMBER_AMOUNT)),
    st.one_of(text_value(amount_text), NUMBER_AMOUNT, value_pieces),
)


@st.composite
def _object(draw: Any, fields: dict[str, tuple[Any, Any]], hostile: bool) -> Piece:
    """An object of ``fields`` (each missing one time in four), clean or hostile."""
    members = [
        (plain_string(name), draw(values[1] if hostile else values[0]))
        for name, values in fields.items()
        if not draw(one_in(4))
    ]
    return object_of(draw, list(draw(st.permutations(members))))


@st.composite
def _items(draw: Any, fields: dict[str, tuple[Any, Any]], hostile: bool) -> Piece:
    """A list of nested objects; in a hostile record one in five is hostile, or not an
    object at all."""
    count = draw(st.integers(0, 4))
    items = [
        draw(
            st.one_of(
                _object(fields, False),
                _object(fields, False),
                _object(fields, False),
                _object(fields, True),
                value_pieces,
            )
        )
        if hostile
        else draw(_object(fields, False))
        for _ in range(count)
    ]
    return array_of(draw, items)


def _nested(fields: dict[str, tuple[Any, Any]]) -> tuple[Any, Any]:
    clean = or_empty(_items(fields, False))
    return clean, st.one_of(_items(fields, True), _items(fields, True), value_pieces)


TYPE_FIELDS = {
    "product_type_id": (valid_ids, st.one_of(valid_ids, id_pieces)),
    "code": _clean(text_value(st.from_regex(r"PT:[0-9]{1,3}", fullmatch=True))),
    "name": NAME,
    "state": STATE,
    "order_no": _clean(text_value(st.from_regex(r"[0-9]{1,3}", fullmatch=True))),
}
GROUP_FIELDS = {
    "code": _clean(text_value(st.from_regex(r"PRDGR:[0-9]{1,3}", fullmatch=True))),
    "name": NAME,
    "product_kind": _clean(text_value(st.sampled_from(["I", "S"]))),
    "state": STATE,
    "product_group_types": _nested(TYPE_FIELDS),
}
group_records = smartup_record("product_group_id", GROUP_FIELDS)

PRICE_TYPE_FIELDS = {
    # Optional, like the code: a type may have an id, a code, both or (rejected) neither.
    "price_type_id": _clean(valid_ids),
    "code": _clean(text_value(st.from_regex(r"PRCT:[0-9]{1,2}", fullmatch=True))),
    "short_name": NAME,
    "with_card": _clean(text_value(st.sampled_from(["Y", "N"]))),
    "state": STATE,
    "price_type_kind": _clean(text_value(st.sampled_from(["S", "P"]))),
    "currency_code": _clean(text_value(st.sampled_from(["860", "840"]))),
}
price_type_records = smartup_record("name", PRICE_TYPE_FIELDS)

PRICE_ROW_FIELDS = {
    "price_type_code": _clean(text_value(st.from_regex(r"PRCT:[0-9]{1,2}", fullmatch=True))),
    "card_code": _clean(text_value(st.sampled_from(["CARD-1", "КАРТА"]))),
    "price": PRICE_AMOUNT,
}
PRICE_ENTRY_FIELDS = {
    "inventory_barcode": _clean(text_value(st.from_regex(r"[0-9]{8,13}", fullmatch=True))),
    "price_type": _nested(PRICE_ROW_FIELDS),
}
price_entries = smartup_record("inventory_code", PRICE_ENTRY_FIELDS)

WAREHOUSE_FIELDS = {
    "code": _clean(text_value(st.from_regex(r"W[0-9]{1,2}", fullmatch=True))),
    "name": NAME,
}
warehouse_records = smartup_record("warehouse_id", WAREHOUSE_FIELDS)

BALANCE_GROUP_FIELDS = {"group_code": NAME, "type_code": NAME}
BALANCE_FIELDS = {
    "product_id": (valid_ids, st.one_of(valid_ids, id_pieces)),
    "inventory_kind": _clean(text_value(st.sampled_from(["G", "M", "P"]))),
    "date": (or_empty(text_value(valid_date_text)), text_value(date_text())),
    "warehouse_code": _clean(text_value(st.from_regex(r"W[0-9]{1,2}", fullmatch=True))),
    "product_code": _clean(text_value(st.from_regex(r"P[0-9]{4}", fullmatch=True))),
    "product_barcode": _clean(text_value(st.from_regex(r"[0-9]{8,13}", fullmatch=True))),
    "card_code": _clean(text_value(st.sampled_from(["CARD-1", "КАРТА"]))),
    "expiry_date": (or_empty(text_value(valid_date_text)), text_value(date_text())),
    "serial_number": _clean(string_pieces(hostile=False, max_size=6)),
    "batch_number": _clean(text_value(st.from_regex(r"B-[0-9]{1,3}", fullmatch=True))),
    "quantity": (
        or_empty(st.one_of(text_value(valid_amount_text), NUMBER_AMOUNT)),
        PRICE_AMOUNT[1],
    ),
    "measure_code": _clean(text_value(st.sampled_from(["dona", "kg"]))),
    "input_price": PRICE_AMOUNT,
    "groups": _nested(BALANCE_GROUP_FIELDS),
}
balance_records = smartup_record("warehouse_id", BALANCE_FIELDS)

CATALOGUE_RECORDS = {
    "groups": group_records,
    "price_types": price_type_records,
    "price_entries": price_entries,
    "warehouses": warehouse_records,
    "balances": balance_records,
}


def catalogue_records_of(kind: str) -> Any:
    """Records of ``kind`` (mostly), or any JSON value at all (sometimes)."""
    shaped = CATALOGUE_RECORDS[kind]
    return one_in(8).flatmap(lambda odd: hostile_pieces if odd else shaped)
