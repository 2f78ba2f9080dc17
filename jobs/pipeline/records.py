"""SmartUp records into typed rows: pure functions, no I/O.

SmartUp sends every value as a string: amounts as ``"1 200 000,50"``, dates as
``dd.mm.yyyy``, times as ``dd.mm.yyyy hh24:mi:ss`` in the company's local time, empty
values as ``""``. A value is stored exactly as sent or the record is rejected, never
turned into a third value: an amount is read only in the spellings :func:`parse_decimal`
names, and one that the column would round is refused. A record is handled in two
steps: ``identify_*`` takes its id and a content hash (cheap: enough to tell that a stored
record did not change), and ``parse_*`` builds its rows. A record that cannot be stored
raises :class:`RecordRejected` with the record's id and the reason; the caller counts it
and goes on with the next one.
"""

from __future__ import annotations

import hashlib
import marshal
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

# Part of every content hash: bump it when parsing changes, so the next sync rewrites
# rows that were stored under the old rules even though SmartUp sent the same record.
PARSER_VERSION = "3"

MONEY_LIMIT = Decimal(10) ** 18  # numeric(20, 2)
MONEY_SCALE = 2
QUANTITY_LIMIT = Decimal(10) ** 14  # numeric(20, 6)
QUANTITY_SCALE = 6
# What PostgreSQL's numeric (and so jsonb) holds: digits before and after the point.
JSON_NUMBER_INTEGER_DIGITS = 131072
JSON_NUMBER_SCALE = 16383

_DATE = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")
_DATETIME = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4}) ([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
_PLAIN_AMOUNT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")  # "12", "-3.5": Decimal reads it as is
_SMARTUP_AMOUNT = re.compile(r"([+-]?[0-9]{1,3}(?: [0-9]{3})*)(?:,([0-9]+))?")
# Digits, grouped by threes with one separator used throughout, and one decimal mark. A
# single "," or "." is always the decimal mark ("1,5"), as the first alternative tries.
_AMOUNT = re.compile(
    r"(?P<sign>[+-]?)"
    r"(?P<int>[0-9]+|[0-9]{1,3}(?P<sep>[ \u00a0\u2009\u202f',.])[0-9]{3}(?:(?P=sep)[0-9]{3})*)"
    r"(?:(?P<mark>[.,])(?P<frac>[0-9]+))?"
)
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL, not an escaped backslash
_BARCODE_SEPARATORS = re.compile(r"[|,;\s]+")


class JSONText(str):
    """A string that already holds encoded JSON (a record as received): stored as is."""

    __slots__ = ()


class RecordRejected(ValueError):
    """A record that cannot be stored: ``record_id`` (None when it has none) and ``reason``."""

    def __init__(self, record_id: str | None, reason: str) -> None:
        self.record_id = record_id
        self.reason = reason
        super().__init__(f"record {record_id or '(no id)'} rejected: {reason}")


class FieldError(ValueError):
    """A value that cannot be parsed; the message names the field and the value."""


class Identity(NamedTuple):
    """What is known of a record before parsing it: its id, its natural key (the values
    of the table's key columns) and its content hash. A key made of several of the
    record's fields (:func:`natural_key`) keeps them in ``parts``, as read and checked
    (text as sent, ``""`` for none), so that its parser uses them rather than reading and
    checking them again; a key of one id has none (the parser has ``record_id``)."""

    record_id: str
    key: tuple[str, ...]
    content_hash: str
    parts: tuple[str, ...] = ()


class ParsedRecord(NamedTuple):
    """One record as rows: its key, its content hash, its row and its child rows (order
    lines). ``row`` is None for a record known to be stored already, unchanged."""

    key: tuple[str, ...]
    content_hash: str
    row: tuple[Any, ...] | None
    children: tuple[tuple[Any, ...], ...] = ()


# -- values ---------------------------------------------------------------------------


def text(value: Any, *, field: str = "value") -> str | None:
    """A text value: ``""`` and missing become None; numbers are kept as their digits."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        return str(value)
    raise FieldError(f"{field} is not text: {_show(value)}")


def parse_decimal(
    value: Any, *, field: str = "amount", limit: Decimal = MONEY_LIMIT, scale: int = MONEY_SCALE
) -> Decimal | None:
    """An amount as SmartUp writes it to a Decimal; ``""`` is None.

    Accepted: ASCII digits with an optional sign; thousands grouped by threes with one
    separator used throughout (space, no-break space, thin space, narrow no-break space,
    ``'``, ``,`` or ``.``); one decimal mark (``,`` or ``.``, not the separator) followed by
    digits: ``"1 200 000,50"``, ``"1.200.000,50"``, ``"1,200,000.50"``, ``"-3,5"``, ``"12"``.
    A single ``,`` or ``.`` is the decimal mark; white space around the number is
    ignored. JSON numbers are taken as they are.
    Anything else (``"1.2.3"``, ``"1e5"``, ``"NaN"``, ``"١٢"``), a value of ``limit`` or
    more, or one with more decimals than ``scale`` (which the column would round) is a
    :class:`FieldError`.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str):
            return _text_amount(value, scale, limit)
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            return _number_amount(value, scale, limit)
    except _NotAmount as problem:
        raise FieldError(f"{field} {problem}: {_show(value)}") from None
    raise FieldError(f"{field} is not a number: {_show(value)}")


class _NotAmount(ValueError):
    """Why a value is no amount, without the field's name (added by the caller)."""


@lru_cache(maxsize=4096)
def _text_amount(value: str, scale: int, limit: Decimal) -> Decimal:
    """An amount spelled as text. Cached: prices and quantities repeat from line to line,
    and a Decimal is immutable (a refusal raises, and is not cached)."""
    if _PLAIN_AMOUNT.fullmatch(value):
        number = Decimal(value)
        decimals = value[value.index(".") + 1 :] if "." in value else ""
    elif smartup := _SMARTUP_AMOUNT.fullmatch(value):  # "1 200 000,50", the usual
        number = Decimal(f"{smartup[1].replace(' ', '')}.{smartup[2] or '0'}")
        decimals = smartup[2] or ""
    elif amount := (_AMOUNT.fullmatch(value) or _AMOUNT.fullmatch(value.strip(" \t\r\n"))):
        sign, digits, separator, mark, decimals = amount.groups("")
        if separator:
            if separator == mark:
                raise _NotAmount("is not a number")
            digits = digits.replace(separator, "")
        number = Decimal(f"{sign}{digits}.{decimals}" if decimals else sign + digits)
    else:
        raise _NotAmount("is not a number")
    # Digits past the column's scale would be rounded away: only zeros may go.
    too_precise = len(decimals) > scale and decimals[scale:].strip("0") != ""
    return _bounded(number, scale, limit, too_precise=too_precise)


def _number_amount(value: int | Decimal, scale: int, limit: Decimal) -> Decimal:
    number = Decimal(value)
    if not number.is_finite():
        raise _NotAmount("is out of range")
    _, digits_tuple, exponent = number.as_tuple()
    extra = -int(exponent) - scale
    return _bounded(number, scale, limit, too_precise=extra > 0 and any(digits_tuple[-extra:]))


def _bounded(number: Decimal, scale: int, limit: Decimal, *, too_precise: bool) -> Decimal:
    if abs(number) >= limit:
        raise _NotAmount("is out of range")
    if too_precise:
        raise _NotAmount(f"has more than {scale} decimals")
    return number


def parse_date(value: Any, *, field: str = "date") -> date | None:
    """``dd.mm.yyyy`` to a date; ``""`` is None. A time part, if sent, is ignored."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not (_DATE.fullmatch(value) or _DATETIME.fullmatch(value)):
        raise FieldError(f"{field} is not dd.mm.yyyy: {_show(value)}")
    day, month, year = int(value[0:2]), int(value[3:5]), int(value[6:10])
    try:
        return date(year, month, day)
    except ValueError:
        raise FieldError(f"{field} is not a real date: {_show(value)}") from None


def parse_datetime(value: Any, *, tz: tzinfo, field: str = "time") -> datetime | None:
    """``dd.mm.yyyy hh24:mi:ss`` (seconds optional, or a bare date) in ``tz``, made aware."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) == 10:
        only_date = parse_date(value, field=field)
        assert only_date is not None
        value = f"{value} 00:00:00"
    match = _DATETIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise FieldError(f"{field} is not dd.mm.yyyy hh24:mi:ss: {_show(value)}")
    day, month, year, hour, minute = (int(part) for part in match.groups()[:5])
    second = int(match.group(6) or 0)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=tz)
        if year in (1, 9999):  # the moment may fall outside what datetime holds, in UTC
            moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise FieldError(f"{field} is not a real time: {_show(value)}") from None
    return moment


def split_barcodes(value: Any) -> list[str]:
    """One SmartUp barcode string into a list: split on ``|``, ``,``, ``;`` and spaces,
    duplicates dropped, order kept."""
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise FieldError(f"barcodes is not text: {_show(value)}")
    return list(dict.fromkeys(part for part in _BARCODE_SEPARATORS.split(value) if part))


def content_hash(record: Any) -> str:
    """A fingerprint of the record as received. Equal records (same keys in the same
    order, same values) have equal hashes, so an unchanged record can be recognised
    without parsing it. marshal's format 2 has no back-references, so the bytes depend on
    the values only, not on which string objects happen to be shared.

    Raises :class:`FieldError` for a record nested too deeply to be hashed."""
    try:
        data = marshal.dumps(record, 2)
    except ValueError:  # a value marshal does not know (a Decimal from a JSON number)
        try:
            data = repr(record).encode("utf-8", "backslashreplace")
        except RecursionError:
            raise FieldError("the record is nested too deeply") from None
    digest = hashlib.md5(data, usedforsecurity=False)
    digest.update(PARSER_VERSION.encode())
    return digest.hexdigest()


def raw_json(record: Mapping[str, Any]) -> JSONText:
    """The record as JSON text, for the ``raw`` column: every string and every number
    exactly as received (a Decimal keeps all its digits).

    Raises :class:`FieldError` for what PostgreSQL refuses or would change: a NUL
    character (in the decoded text: an escaped backslash followed by ``u0000`` is
    ordinary text), lone surrogates (text that is not Unicode), numbers beyond numeric's
    range, and nesting deeper than 254 levels.
    """
    try:
        encoded = orjson.dumps(record, default=_json_number).decode()
    except orjson.JSONEncodeError as error:
        cause = error.__cause__ or error
        raise FieldError(f"the record cannot be stored as JSON: {cause}") from None
    if "\\u0000" in encoded and _NUL_ESCAPE.search(encoded):
        raise FieldError("text holds a NUL character (\\u0000), which PostgreSQL refuses")
    return JSONText(encoded)


def _json_number(value: Any) -> Any:
    """orjson's hook for what it does not know: a Decimal, written out as it is."""
    if isinstance(value, Decimal) and value.is_finite():
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        too_long = any(digits) and len(digits) + exponent > JSON_NUMBER_INTEGER_DIGITS
        if too_long or -exponent > JSON_NUMBER_SCALE:
            raise TypeError(f"the number {_show(value)} is beyond what PostgreSQL can store")
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def storable_text(value: str) -> bool:
    """Whether PostgreSQL stores ``value`` as it is (in text and in JSON): no NUL, no
    lone surrogate."""
    return "\x00" not in value and _is_unicode(value)


def _naming(value: Any) -> str | None:
    """A value that names a rejected record, fit for the run's row: its text when that
    is storable, else shown escaped (the id then names it, and the run row can hold it);
    None for null, ``""`` and missing."""
    try:
        named = text(value, field="id")
    except FieldError:
        return _show(value)
    if named is None:
        return None
    return named if storable_text(named) else _show(named)


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# -- records --------------------------------------------------------------------------

PRODUCT_COLUMNS = (
    "external_source",
    "external_id",
    "code",
    "name",
    "short_name",
    "measure_code",
    "barcodes",
    "is_active",
    "raw",
    "content_hash",
)


def identify_product(record: Any) -> Identity:
    product_id = _record_id(record, "product_id")
    return Identity(product_id, ("smartup", product_id), _hash(record, product_id))


def parse_product(record: Mapping[str, Any], identity: Identity, *, tz: tzinfo) -> ParsedRecord:
    """One ``inventory`` record into a ``products`` row (in :data:`PRODUCT_COLUMNS` order)."""
    product_id = identity.record_id
    try:
        row = (
            "smartup",
            product_id,
            text(record.get("code"), field="code"),
            text(record.get("name"), field="name"),
            text(record.get("short_name"), field="short_name"),
            text(record.get("measure_code"), field="measure_code"),
            split_barcodes(record.get("barcodes")),
            record.get("state") == "A",
            raw_json(record),
            identity.content_hash,
        )
    except FieldError as error:
        raise RecordRejected(product_id, str(error)) from None
    return ParsedRecord(identity.key, identity.content_hash, row)


ORDER_COLUMNS = (
    "source_external_id",
    "external_id",
    "filial_id",
    "filial_code",
    "status",
    "deal_time",
    "delivery_date",
    "booked_date",
    "total_amount",
    "currency_code",
    "person_id",
    "person_code",
    "person_name",
    "raw",
    "content_hash",
)

ORDER_ITEM_COLUMNS = (
    "line_no",
    "product_unit_id",
    "product_code",
    "product_barcode",
    "product_name",
    "quantity",
    "sold_quant",
    "return_quant",
    "price",
    "amount",
    "vat_percent",
    "vat_amount",
    "inventory_kind",
    "warehouse_code",
    "product_external_id",
)


def identify_order(record: Any) -> Identity:
    deal_id = _record_id(record, "deal_id")
    return Identity(deal_id, (deal_id,), _hash(record, deal_id))


def parse_order(record: Mapping[str, Any], identity: Identity, *, tz: tzinfo) -> ParsedRecord:
    """One ``order`` record into an ``orders`` row and its ``order_items`` rows."""
    deal_id = identity.record_id
    try:
        row = (
            deal_id,
            text(record.get("external_id"), field="external_id"),
            text(record.get("filial_id"), field="filial_id"),
            text(record.get("filial_code"), field="filial_code"),
            text(record.get("status"), field="status"),
            parse_datetime(record.get("deal_time"), tz=tz, field="deal_time"),
            parse_date(record.get("delivery_date"), field="delivery_date"),
            parse_date(record.get("booked_date"), field="booked_date"),
            parse_decimal(record.get("total_amount"), field="total_amount"),
            text(record.get("currency_code"), field="currency_code"),
            text(record.get("person_id"), field="person_id"),
            text(record.get("person_code"), field="person_code"),
            text(record.get("person_name"), field="person_name"),
            raw_json(record),
            identity.content_hash,
        )
        lines = record.get("order_products")
        if lines is None or lines == "":
            lines = []
        if not isinstance(lines, Sequence) or isinstance(lines, str):
            raise FieldError(f"order_products is not a list: {_show(lines)}")
        items = tuple(_order_item(number, line) for number, line in enumerate(lines, start=1))
    except FieldError as error:
        raise RecordRejected(deal_id, str(error)) from None
    return ParsedRecord(identity.key, identity.content_hash, row, items)


def _order_item(line_no: int, line: Any) -> tuple[Any, ...]:
    if not isinstance(line, Mapping):
        raise FieldError(f"order line {line_no} is not an object: {_show(line)}")
    try:
        return (
            line_no,
            text(line.get("product_unit_id"), field="product_unit_id"),
            text(line.get("product_code"), field="product_code"),
            text(line.get("product_barcode"), field="product_barcode"),
            text(line.get("product_name"), field="product_name"),
            _quantity(line.get("order_quant"), field="order_quant"),
            _quantity(line.get("sold_quant"), field="sold_quant"),
            _quantity(line.get("return_quant"), field="return_quant"),
            parse_decimal(line.get("product_price"), field="product_price"),
            parse_decimal(line.get("sold_amount"), field="sold_amount"),
            _quantity(line.get("vat_percent"), field="vat_percent"),
            parse_decimal(line.get("vat_amount"), field="vat_amount"),
            text(line.get("inventory_kind"), field="inventory_kind"),
            text(line.get("warehouse_code"), field="warehouse_code"),
            text(line.get("product_id"), field="product_id"),
        )
    except FieldError as error:  # the field's name, said where it stands
        raise FieldError(f"order line {line_no} {error}") from None


def _quantity(value: Any, *, field: str) -> Decimal | None:
    return parse_decimal(value, field=field, limit=QUANTITY_LIMIT, scale=QUANTITY_SCALE)


def _hash(record: Any, record_id: str) -> str:
    try:
        return content_hash(record)
    except FieldError as error:
        raise RecordRejected(record_id, str(error)) from None


def _record_id(record: Any, id_field: str) -> str:
    if not isinstance(record, Mapping):
        raise RecordRejected(None, f"record is not an object: {_show(record)}")
    try:
        record_id = text(record.get(id_field), field=id_field)
    except FieldError as error:
        raise RecordRejected(None, str(error)) from None
    return _valid_id(record_id, id_field)


def _valid_id(record_id: str | None, id_field: str) -> str:
    """``record_id`` (the text read from ``id_field``) if it may be an id: not blank, at
    most 64 characters, storable; else :class:`RecordRejected`."""
    if record_id is None or not record_id.strip():
        raise RecordRejected(None, f"no {id_field}")
    if "\x00" in record_id or len(record_id) > 64 or not _is_unicode(record_id):
        raise RecordRejected(_show(record_id), f"{id_field} is not a valid id")
    return record_id


def _is_unicode(value: str) -> bool:
    """Whether ``value`` is valid Unicode text (no lone surrogates), as PostgreSQL needs."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- the shop's whole catalogue ---------------------------------------------------------------
#
# The same rules as above: text exactly as sent (``null``, ``""`` and a missing key alike
# are NULL), amounts through parse_decimal (prices at the money scale, quantities at the
# quantity scale), dates through parse_date, ``state == "A"`` is active. Tables without a
# ``raw`` column (product_types, product_categories, product_prices, stock_balances) cannot
# lean on raw_json to refuse a NUL or a lone surrogate, so their text goes through
# :func:`_stored_text`, which refuses both.
#
# A natural key made of several parts is ONE text column: :func:`natural_key`, the JSON
# array of the parts (``orjson``), each part the text as sent, ``""`` for null/""/missing.
# JSON escapes quotes and backslashes, so two different lists of parts never give the same
# key.
#
# Where this differs from the helpers' schema.md (so the loader can rely on it):
# - A product's ``groups`` are parsed by :func:`parse_product_categories`, apart from
#   :func:`parse_product` (whose rows and children other code relies on); the caller adds
#   them as the product's children.
# - Rows hold what the record says; foreign keys (``*_id`` → ``.id``) and
#   ``product_prices.currency_code`` (the price type's) are filled at load.
# - A price without ``inventory_code`` or without ``price_type_code`` is rejected (two such
#   prices could not be told apart), so both columns are NOT NULL.
# - A balance row without ``warehouse_id`` or ``product_id`` is rejected, for the same
#   reason; the condition is passed as a keyword (``condition=``), not carried in the record.
# - A price type keyed by its code: the code follows the id rules (not blank, at most 64
#   characters).
# - The ``groups`` of a balance row (names, not ids) are not stored.

PRODUCT_GROUP_COLUMNS = (
    "external_id",
    "code",
    "name",
    "product_kind",
    "is_active",
    "raw",
    "content_hash",
)
PRODUCT_TYPE_COLUMNS = (
    "external_id",
    "group_external_id",
    "code",
    "name",
    "is_active",
    "order_no",
    "content_hash",
)
PRODUCT_CATEGORY_COLUMNS = (
    "line_no",
    "group_external_id",
    "group_code",
    "type_external_id",
    "type_code",
)
PRICE_TYPE_COLUMNS = (
    "price_type_key",
    "external_id",
    "code",
    "name",
    "short_name",
    "with_card",
    "price_type_kind",
    "currency_code",
    "is_active",
    "raw",
    "content_hash",
)
PRICE_COLUMNS = (
    "price_key",
    "product_code",
    "product_barcode",
    "price_type_code",
    "card_code",
    "price",
    "content_hash",
)
WAREHOUSE_COLUMNS = ("external_id", "code", "name", "raw", "content_hash")
BALANCE_COLUMNS = (
    "balance_key",
    "warehouse_external_id",
    "warehouse_code",
    "product_external_id",
    "product_code",
    "product_barcode",
    "batch_number",
    "card_code",
    "expiry_date",
    "serial_number",
    "condition",
    "quantity",
    "input_price",
    "measure_code",
    "inventory_kind",
    "balance_date",
    "content_hash",
)
BALANCE_CONDITIONS = ("F", "B", "T")  # free, booked, in transit
BALANCE_KEY_PARTS = (
    "warehouse_id",
    "product_id",
    "batch_number",
    "card_code",
    "expiry_date",
    "serial_number",
)


def natural_key(parts: Sequence[str | None]) -> str:
    """One text key from several parts: the JSON array of the parts, None as ``""``
    (``["1","","PRCT:1"]``). Injective: different lists of parts, different keys."""
    return orjson.dumps([part or "" for part in parts]).decode()


def _stored_text(value: Any, *, field: str) -> str | None:
    """:func:`text`, refusing what a PostgreSQL text column refuses or would change: a NUL
    character and text that is not Unicode (lone surrogates)."""
    stored = text(value, field=field)
    if stored is not None and ("\x00" in stored or not _is_unicode(stored)):
        raise FieldError(f"{field} is not storable text (NUL or not Unicode): {_show(stored)}")
    return stored


def _list_of(value: Any, *, field: str) -> Sequence[Any]:
    """A JSON array; ``null``, ``""`` and missing are the empty list."""
    if value is None or value == "":
        return []
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise FieldError(f"{field} is not a list: {_show(value)}")
    return value


# -- product groups and their types ----------------------------------------------------------


def identify_group(record: Any) -> Identity:
    group_id = _record_id(record, "product_group_id")
    return Identity(group_id, (group_id,), _hash(record, group_id))


def parse_group(record: Mapping[str, Any], identity: Identity, *, tz: tzinfo) -> ParsedRecord:
    """One ``product_group`` record into a ``product_groups`` row (in
    :data:`PRODUCT_GROUP_COLUMNS` order) and, as ``children``, its
    ``product_group_types`` as ``product_types`` rows (:data:`PRODUCT_TYPE_COLUMNS`).

    A type's ``content_hash`` is its own (of the group's id and the type as sent), so that
    types can be upserted by ``external_id`` as well as replaced with their group. A type
    that is not an object, has no valid ``product_type_id``, repeats one, or holds a value
    that cannot be stored rejects the group, with a reason naming the type by position.
    """
    group_id = identity.record_id
    try:
        # The types first: a bad one is named, not just seen in the group's raw.
        types = _list_of(record.get("product_group_types"), field="product_group_types")
        children = []
        seen: set[str] = set()
        for number, item in enumerate(types, start=1):
            child = _product_type(group_id, number, item)
            if child[0] in seen:
                raise FieldError(f"product type {number} repeats product_type_id {child[0]!r}")
            seen.add(child[0])
            children.append(child)
        row = (
            group_id,
            text(record.get("code"), field="code"),
            text(record.get("name"), field="name"),
            text(record.get("product_kind"), field="product_kind"),
            record.get("state") == "A",
            raw_json(record),
            identity.content_hash,
        )
    except FieldError as error:
        raise RecordRejected(group_id, str(error)) from None
    return ParsedRecord(identity.key, identity.content_hash, row, tuple(children))


def _product_type(group_id: str, number: int, item: Any) -> tuple[Any, ...]:
    if not isinstance(item, Mapping):
        raise FieldError(f"product type {number} is not an object: {_show(item)}")
    try:
        type_id = _record_id(item, "product_type_id")
    except RecordRejected as reject:
        raise FieldError(f"product type {number}: {reject.reason}") from None
    try:
        return (
            type_id,
            group_id,
            _stored_text(item.get("code"), field="code"),
            _stored_text(item.get("name"), field="name"),
            item.get("state") == "A",
            _stored_text(item.get("order_no"), field="order_no"),
            content_hash([group_id, item]),
        )
    except FieldError as error:
        raise FieldError(f"product type {number} ({type_id}) {error}") from None


def parse_product_categories(record: Mapping[str, Any], identity: Identity) -> tuple[Any, ...]:
    """A product's ``groups`` as ``product_categories`` rows (:data:`PRODUCT_CATEGORY_COLUMNS`
    order, ``line_no`` from 1), to be replaced with the product as order lines are with
    their order. Kept apart from :func:`parse_product` (whose rows other code relies on):
    the caller adds them as the product's children. An entry that is not an object, or a
    value that cannot be stored, rejects the product with the entry's position."""
    try:
        entries = _list_of(record.get("groups"), field="groups")
        rows = []
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, Mapping):
                raise FieldError(f"groups entry {number} is not an object: {_show(entry)}")
            try:
                rows.append(
                    (
                        number,
                        _stored_text(entry.get("group_id"), field="group_id"),
                        _stored_text(entry.get("group_code"), field="group_code"),
                        _stored_text(entry.get("type_id"), field="type_id"),
                        _stored_text(entry.get("type_code"), field="type_code"),
                    )
                )
            except FieldError as error:
                raise FieldError(f"groups entry {number} {error}") from None
    except FieldError as error:
        raise RecordRejected(identity.record_id, str(error)) from None
    return tuple(rows)


# -- price types -------------------------------------------------------------------------------


def identify_price_type(record: Any) -> Identity:
    """Keyed ``id:<price_type_id>`` when the record has an id, else ``code:<code>``; a
    type with neither is rejected, named by its ``name``. The record id is the key."""
    if not isinstance(record, Mapping):
        raise RecordRejected(None, f"record is not an object: {_show(record)}")
    if record.get("price_type_id") not in (None, ""):
        key = "id:" + _record_id(record, "price_type_id")
    elif record.get("code") not in (None, ""):
        key = "code:" + _record_id(record, "code")
    else:
        raise RecordRejected(_naming(record.get("name")), "no price_type_id and no code")
    return Identity(key, (key,), _hash(record, key))


def parse_price_type(record: Mapping[str, Any], identity: Identity, *, tz: tzinfo) -> ParsedRecord:
    """One ``price_type`` record into a ``price_types`` row (:data:`PRICE_TYPE_COLUMNS`)."""
    key = identity.record_id
    try:
        row = (
            key,
            text(record.get("price_type_id"), field="price_type_id"),
            text(record.get("code"), field="code"),
            text(record.get("name"), field="name"),
            text(record.get("short_name"), field="short_name"),
            record.get("with_card") == "Y",
            text(record.get("price_type_kind"), field="price_type_kind"),
            text(record.get("currency_code"), field="currency_code"),
            record.get("state") == "A",
            raw_json(record),
            identity.content_hash,
        )
    except FieldError as error:
        raise RecordRejected(key, str(error)) from None
    return ParsedRecord(identity.key, identity.content_hash, row)


# -- prices ------------------------------------------------------------------------------------


def expand_price_entry(entry: Any) -> list[dict[str, Any]]:
    """One ``inventory`` entry of the price export (a product and its ``price_type`` list)
    into one flat record per price: ``{"inventory_code", "inventory_barcode",
    "price_type_code", "card_code", "price"}``, values as sent. ``price_type`` null, ``""``
    or missing is no price. An entry that is not an object, whose ``price_type`` is not a
    list, or one of whose prices is not an object is rejected (named by its
    ``inventory_code`` as sent)."""
    if not isinstance(entry, Mapping):
        raise RecordRejected(None, f"price entry is not an object: {_show(entry)}")
    code = entry.get("inventory_code")
    entry_id = _naming(code) if isinstance(code, str) and code else None
    try:
        prices = _list_of(entry.get("price_type"), field="price_type")
    except FieldError as error:
        raise RecordRejected(entry_id, str(error)) from None
    flat = []
    for number, price in enumerate(prices, start=1):
        if not isinstance(price, Mapping):
            raise RecordRejected(entry_id, f"price {number} is not an object: {_show(price)}")
        flat.append(
            {
                "inventory_code": code,
                "inventory_barcode": entry.get("inventory_barcode"),
                "price_type_code": price.get("price_type_code"),
                "card_code": price.get("card_code"),
                "price": price.get("price"),
            }
        )
    return flat


def identify_price(record: Any) -> Identity:
    """A flat price record (from :func:`expand_price_entry`): id
    ``<inventory_code>/<price_type_code>/<card_code>``, key ``price_key`` =
    :func:`natural_key` of the three. A price without ``inventory_code`` or without
    ``price_type_code`` is rejected: it could not be told apart from another one."""
    if not isinstance(record, Mapping):
        raise RecordRejected(None, f"record is not an object: {_show(record)}")
    parts = []
    for field in ("inventory_code", "price_type_code", "card_code"):
        try:
            parts.append(_stored_text(record.get(field), field=field) or "")
        except FieldError as error:
            shown = "/".join(parts) or None
            raise RecordRejected(shown, str(error)) from None
    record_id = "/".join(parts)
    for field, part in zip(("inventory_code", "price_type_code"), parts, strict=False):
        if not part.strip():
            raise RecordRejected(record_id, f"no {field}")
    key = natural_key(parts)
    return Identity(record_id, (key,), _hash(record, record_id), tuple(parts))


def parse_price(record: Mapping[str, Any], identity: Identity, *, tz: tzinfo) -> ParsedRecord:
    """One flat price record into a ``product_prices`` row (:data:`PRICE_COLUMNS`); the
    price at the money scale, rejected if the column would round it. The key's codes are
    those :func:`identify_price` read (``identity.parts``)."""
    inventory_code, price_type_code, card_code = identity.parts
    try:
        row = (
            identity.key[0],
            inventory_code or None,
            _stored_text(record.get("inventory_barcode"), field="inventory_barcode"),
            price_type_code or None,
            card_code or None,
            parse_decimal(record.get("price"), field="price"),
            identity.content_hash,
        )
    except FieldError as error:
        raise RecordRejected(identity.record_id, str(error)) from None
    return ParsedRecord(identity.key, identity.content_hash, row)


# -- warehouses --------------------------------------------------------------------------------


def identify_warehouse(record: Any) -> Identity:
    warehouse_id = _record_id(record, "warehouse_id")
    return Identity(warehouse_id, (warehouse_id,), _hash(record, warehouse_id))


def parse_warehouse(record: Mapping[str, Any], identity: Identity, *, tz: tzinfo) -> ParsedRecord:
    """One ``warehouse`` record into a ``warehouses`` row (:data:`WAREHOUSE_COLUMNS`)."""
    warehouse_id = identity.record_id
    try:
        row = (
            warehouse_id,
            text(record.get("code"), field="code"),
            text(record.get("name"), field="name"),
            raw_json(record),
            identity.content_hash,
        )
    except FieldError as error:
        raise RecordRejected(warehouse_id, str(error)) from None
    return ParsedRecord(identity.key, identity.content_hash, row)


# -- stock balances ------------------------------------------------------------------------------


def identify_balance(record: Any, *, condition: str) -> Identity:
    """One ``balance`` row, asked for in ``condition`` (``F``, ``B`` or ``T``: SmartUp's
    row does not say; the request does, so the caller passes it, e.g. with
    ``functools.partial``). Key ``balance_key`` = :func:`natural_key` of warehouse_id,
    product_id, batch_number, card_code, expiry_date, serial_number (as sent) and the
    condition; id ``<warehouse_id>/<product_id>`` plus the parts that are set. The content
    hash covers the condition too. A row without ``warehouse_id`` or ``product_id`` is
    rejected."""
    if condition not in BALANCE_CONDITIONS:
        raise ValueError(f"condition must be one of {BALANCE_CONDITIONS}, not {condition!r}")
    if not isinstance(record, Mapping):
        raise RecordRejected(None, f"record is not an object: {_show(record)}")
    parts: list[str] = []
    for field in BALANCE_KEY_PARTS:
        try:
            parts.append(_stored_text(record.get(field), field=field) or "")
        except FieldError as error:
            raise RecordRejected("/".join(p for p in parts if p) or None, str(error)) from None
    record_id = "/".join(part for part in parts if part)
    # warehouse_id and product_id (the first two parts): each set, and short enough for
    # its column
    for field, part in zip(("warehouse_id", "product_id"), parts, strict=False):
        try:
            _valid_id(part, field)
        except RecordRejected as reject:
            raise RecordRejected(record_id or None, reject.reason) from None
    key = natural_key([*parts, condition])
    return Identity(record_id, (key,), _hash([condition, record], record_id), tuple(parts))


def parse_balance(
    record: Mapping[str, Any], identity: Identity, *, tz: tzinfo, condition: str
) -> ParsedRecord:
    """One ``balance`` row into a ``stock_balances`` row (:data:`BALANCE_COLUMNS`):
    quantity at the quantity scale, input_price at the money scale (rejected if the
    column would round either), ``expiry_date`` and ``date`` (``balance_date``) as dates.
    The row's ``groups`` (which here hold names, not ids) are not stored. The key's
    fields are those :func:`identify_balance` read (``identity.parts``); the expiry date,
    a text part of the key, is read here as a date."""
    if condition not in BALANCE_CONDITIONS:
        raise ValueError(f"condition must be one of {BALANCE_CONDITIONS}, not {condition!r}")
    warehouse_id, product_id, batch_number, card_code, _, serial_number = identity.parts
    try:
        row = (
            identity.key[0],
            warehouse_id,
            _stored_text(record.get("warehouse_code"), field="warehouse_code"),
            product_id,
            _stored_text(record.get("product_code"), field="product_code"),
            _stored_text(record.get("product_barcode"), field="product_barcode"),
            batch_number or None,
            card_code or None,
            parse_date(record.get("expiry_date"), field="expiry_date"),
            serial_number or None,
            condition,
            _quantity(record.get("quantity"), field="quantity"),
            parse_decimal(record.get("input_price"), field="input_price"),
            _stored_text(record.get("measure_code"), field="measure_code"),
            _stored_text(record.get("inventory_kind"), field="inventory_kind"),
            parse_date(record.get("date"), field="date"),
            identity.content_hash,
        )
    except FieldError as error:
        raise RecordRejected(identity.record_id, str(error)) from None
    return ParsedRecord(identity.key, identity.content_hash, row)
