"""What the property tests check against, worked out here independently of the code under
test (tests/test_properties_*.py share it):

- JSON values: :func:`same` (equal as JSON values), :func:`as_read` (a generated value as
  the body reader hands it over), :func:`storable` (what PostgreSQL's jsonb keeps exactly);
- SmartUp's spellings: :func:`oracle_amount` and :func:`oracle_date`, the grammars of
  amounts and dates read another way than records.py reads them;
- the catalogue's rows: :func:`check_row` checks a parsed row against the record it came
  from, column by column, as a table's spec (``GROUP_SPEC``, ``PRICE_TYPE_SPEC``,
  ``PRICE_SPEC``, ``WAREHOUSE_SPEC``, ``BALANCE_SPEC``) says.

The Hypothesis strategies that generate the input are in tests/strategies.py and
tests/strategies_catalogue.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from jobs.pipeline.smartup.body import UnreadableRecord
from tests.strategies import GROUP_SEPARATORS, UNREADABLE

# -- JSON values ---------------------------------------------------------------------------


def same(expected: Any, actual: Any) -> bool:
    """Equal as JSON values: types kept apart (``true`` is not ``1``), numbers by value."""
    if expected is UNREADABLE:
        return isinstance(actual, UnreadableRecord)
    if expected is None or isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, (int, Decimal)):
        return (
            isinstance(actual, (int, Decimal))
            and not isinstance(actual, bool)
            and Decimal(actual) == Decimal(expected)
        )
    if isinstance(expected, str):
        return type(actual) is str and actual == expected
    if isinstance(expected, list):
        return (
            type(actual) is list
            and len(actual) == len(expected)
            and all(same(e, a) for e, a in zip(expected, actual, strict=True))
        )
    assert isinstance(expected, dict)
    return (
        type(actual) is dict
        and actual.keys() == expected.keys()
        and all(same(expected[k], actual[k]) for k in expected)
    )


def as_read(value: Any) -> Any:
    """A generated value as the reader hands it over: short integers as int."""
    if isinstance(value, Decimal) and value == value.to_integral_value() and value.adjusted() < 17:
        _, _, exponent = value.as_tuple()
        return int(value) if exponent == 0 else value
    if isinstance(value, list):
        return [as_read(v) for v in value]
    if isinstance(value, dict):
        return {k: as_read(v) for k, v in value.items()}
    return value


def storable(value: Any, depth: int = 1) -> bool:
    """What PostgreSQL's jsonb keeps exactly: no NUL, no lone surrogate, numbers within
    numeric's range, nesting within orjson's 254 levels."""
    if isinstance(value, str):
        return "\x00" not in value and not re.search("[\ud800-\udfff]", value)
    if isinstance(value, Decimal):
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        integer_ok = not any(digits) or value.adjusted() + 1 <= 131072
        return integer_ok and -exponent <= 16383
    if isinstance(value, list):
        return depth <= 254 and all(storable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return depth <= 254 and all(
            storable(k) and storable(v, depth + 1) for k, v in value.items()
        )
    return True


# -- amounts and dates --------------------------------------------------------------------


def oracle_amount(text: str) -> Decimal | None:
    """The amount grammar of the issue, read another way: split on non-digits."""
    rest = text.strip(" \t\r\n")
    sign = ""
    if rest[:1] in ("+", "-"):
        sign, rest = rest[0], rest[1:]
    tokens = re.split(r"([^0-9])", rest)
    groups, separators = tokens[0::2], tokens[1::2]
    if any(not (group.isascii() and group.isdigit()) for group in groups):
        return None

    def number(integer: list[str], fraction: str = "") -> Decimal:
        return Decimal(sign + "".join(integer) + ("." + fraction if fraction else ""))

    def grouped(parts: list[str], between: list[str]) -> bool:
        return (
            len(set(between)) == 1
            and between[0] in GROUP_SEPARATORS
            and 1 <= len(parts[0]) <= 3
            and all(len(part) == 3 for part in parts[1:])
        )

    if not separators:
        return number(groups)
    if separators[-1] in ".,":
        mark = separators[-1]
        if len(separators) == 1:
            return number(groups[:-1], groups[-1])
        if grouped(groups[:-1], separators[:-1]) and separators[0] != mark:
            return number(groups[:-1], groups[-1])
    if grouped(groups, separators) and not (separators[0] in ".," and len(separators) == 1):
        return number(groups)
    return None


def oracle_date(text: str) -> date | None:
    """The day of ``DD.MM.YYYY`` text (with `` HH:MM`` or `` HH:MM:SS`` after it, or
    nothing), read by splitting; None for any other text or a day that does not exist."""
    head, tail = text[:10], text[10:]
    parts = head.split(".")
    widths_ok = [len(p) for p in parts] == [2, 2, 4] and all(
        p.isascii() and p.isdigit() for p in parts
    )
    time_ok = tail == "" or re.fullmatch(r" [0-9]{2}:[0-9]{2}(:[0-9]{2})?", tail, re.ASCII)
    if not (widths_ok and time_ok):
        return None
    try:
        return date(int(parts[2]), int(parts[1]), int(parts[0]))
    except ValueError:
        return None


# -- the catalogue's rows: what a column must hold for the value sent --------------------------

Spec = dict[str, tuple[str, str]]
"""A table's columns checked: column → (field of the record, kind of value: "text",
"money", "quantity", "date", "state" or "card")."""

MONEY = (Decimal(10) ** 18, 2)
QUANTITY = (Decimal(10) ** 14, 6)


def empty(sent: Any) -> bool:
    """No value: null, "" or a field not sent (``record.get`` gives None)."""
    return sent is None or sent == ""


def check_text(sent: Any, stored: Any) -> None:
    """Text exactly as sent; a number as its digits; null, "" and missing as NULL."""
    if empty(sent):
        assert stored is None
    elif isinstance(sent, str):
        assert type(stored) is str and stored == sent
    else:
        assert isinstance(sent, (int, Decimal)) and not isinstance(sent, bool)
        assert stored == str(sent)


def check_amount(sent: Any, stored: Any, limit: Decimal, scale: int) -> None:
    """The amount's value, read by the independent grammar; never rounded, never too big."""
    if empty(sent):
        assert stored is None
        return
    value = oracle_amount(sent) if isinstance(sent, str) else Decimal(sent)
    assert value is not None and isinstance(stored, Decimal)
    assert stored == value and abs(value) < limit and value == round(value, scale)


def check_date(sent: Any, stored: Any) -> None:
    """The day, read by the independent grammar; null, "" and missing as NULL."""
    if empty(sent):
        assert stored is None
    else:
        assert isinstance(sent, str) and stored == oracle_date(sent) is not None


def check_row(columns: tuple[str, ...], row: Any, record: Mapping[str, Any], spec: Spec) -> None:
    """The row parsed from ``record`` (its ``columns``) holds each value of the record as
    ``spec`` says, every text in it is storable, and its ``raw`` (if it has one) is the
    record exactly."""
    assert row is not None
    stored = dict(zip(columns, row, strict=True))
    for column, (field, kind) in spec.items():
        sent, value = record.get(field), stored[column]
        if kind == "text":
            check_text(sent, value)
        elif kind == "money":
            check_amount(sent, value, *MONEY)
        elif kind == "quantity":
            check_amount(sent, value, *QUANTITY)
        elif kind == "date":
            check_date(sent, value)
        elif kind == "state":
            assert value is (sent == "A")
        elif kind == "card":
            assert value is (sent == "Y")
    for value in row:
        if isinstance(value, str):
            assert storable(value)
    if "raw" in stored:
        assert same(record, json.loads(stored["raw"], parse_float=Decimal, parse_int=Decimal))


GROUP_SPEC: Spec = {
    "external_id": ("product_group_id", "text"),
    "code": ("code", "text"),
    "name": ("name", "text"),
    "product_kind": ("product_kind", "text"),
    "is_active": ("state", "state"),
}
PRICE_TYPE_SPEC: Spec = {
    "external_id": ("price_type_id", "text"),
    "code": ("code", "text"),
    "name": ("name", "text"),
    "short_name": ("short_name", "text"),
    "with_card": ("with_card", "card"),
    "price_type_kind": ("price_type_kind", "text"),
    "currency_code": ("currency_code", "text"),
    "is_active": ("state", "state"),
}
PRICE_SPEC: Spec = {
    "product_code": ("inventory_code", "text"),
    "product_barcode": ("inventory_barcode", "text"),
    "price_type_code": ("price_type_code", "text"),
    "card_code": ("card_code", "text"),
    "price": ("price", "money"),
}
WAREHOUSE_SPEC: Spec = {
    "external_id": ("warehouse_id", "text"),
    "code": ("code", "text"),
    "name": ("name", "text"),
}
BALANCE_SPEC: Spec = {
    "warehouse_external_id": ("warehouse_id", "text"),
    "warehouse_code": ("warehouse_code", "text"),
    "product_external_id": ("product_id", "text"),
    "product_code": ("product_code", "text"),
    "product_barcode": ("product_barcode", "text"),
    "batch_number": ("batch_number", "text"),
    "card_code": ("card_code", "text"),
    "expiry_date": ("expiry_date", "date"),
    "serial_number": ("serial_number", "text"),
    "quantity": ("quantity", "quantity"),
    "input_price": ("input_price", "money"),
    "measure_code": ("measure_code", "text"),
    "inventory_kind": ("inventory_kind", "text"),
    "balance_date": ("date", "date"),
}
