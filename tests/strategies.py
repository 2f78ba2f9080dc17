"""Hypothesis strategies: JSON text as a hostile SmartUp could write it, with what it means.

Every strategy of JSON values draws a :class:`Piece`: the bytes as sent and the value a
correct reader must make of them, worked out here independently of the code under test
(escapes, surrogate pairs, bytes that are not UTF-8, numbers of any size). A value that
cannot be built at all (``NaN``, an exponent beyond any Decimal, nesting thousands deep)
is :data:`UNREADABLE`. Strings draw from every kind of Unicode: lone and reversed
surrogate escapes, NUL (raw and escaped), right-to-left marks, zero-width characters,
astral characters, raw control characters and backslashes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def examples(normal: int, fuzz: int) -> settings:
    """Settings for one property: ``normal`` examples in ``make test``, ``fuzz`` in
    ``make fuzz``. No deadline: the machine is shared, and speed lives in bench/."""
    return settings(
        max_examples=fuzz if FUZZ else normal,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class _Unreadable:
    def __repr__(self) -> str:
        return "UNREADABLE"


UNREADABLE: Any = _Unreadable()


@dataclass(frozen=True)
class Piece:
    """A JSON value as sent (``text``) and as it must be read (``value``)."""

    text: bytes
    value: Any


WHITESPACE = st.sampled_from([b"", b"", b"", b"", b" ", b"\n", b"\t", b"\r\n  "])


def one_in(n: int) -> Any:
    """True about one time in ``n``. (Hypothesis favours the ends of a range, so the
    rare case is a value in the middle.)"""
    return st.integers(0, n - 1).map(lambda drawn: drawn == n // 2)


# -- strings -----------------------------------------------------------------------------

SPECIAL_CHARACTERS = [
    "\x00",  # NUL: PostgreSQL refuses it
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u0627",  # Arabic alef
    "\ufeff",  # BOM as text
    "\ufffd",
    "\ufffe",
    "\uffff",
    "\U0001f600",
    "\U0010ffff",
    "\u0301",  # combining accent
    "ё",
    "қ",
    "\\",
    '"',
    "/",
    "\n",
    "\t",
    "\r",
    "\x1f",
    "\x7f",
    "\u2028",
    "\u00a0",
    "u",
    "0",
]
# Byte runs that are not UTF-8 and never merge with their neighbours: each byte is
# invalid on its own, so the reader's ``surrogateescape`` gives one lone surrogate each.
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]
LOOKS_ESCAPED = ["\\u0000", "\\ud800", "\\\\u0000", "\\u", "\\"]
SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f"}
SHORT_ESCAPES.update({"\n": "\\n", "\r": "\\r", "\t": "\\t"})

# Text PostgreSQL keeps as it is, and text it refuses (NUL, lone surrogates).
clean_characters = st.one_of(
    st.sampled_from([c for c in SPECIAL_CHARACTERS if c != "\x00"]),
    st.characters(exclude_characters="\x00"),
    st.characters(exclude_characters="\x00"),
)
characters = st.one_of(
    clean_characters,
    clean_characters,
    st.just("\x00"),
    st.integers(0xD800, 0xDFFF).map(chr),  # surrogates: written as escapes
)


def _escape(code: int, upper: bool) -> str:
    return f"\\u{code:04X}" if upper else f"\\u{code:04x}"


@st.composite
def string_pieces(draw: Any, *, hostile: bool = True, max_size: int = 12) -> Piece:
    """A JSON string: each character written raw, as a short escape or as ``\\uXXXX``
    (astral ones as a surrogate pair). ``hostile``: NUL, surrogates and bytes that are
    not UTF-8 too; otherwise text PostgreSQL keeps."""
    alphabet = characters if hostile else clean_characters
    parts: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(0, max_size))):
        choice = draw(st.integers(0, 30))
        if choice == 0 and hostile:
            parts.append(("bytes", draw(st.sampled_from(INVALID_UTF8))))
        elif choice == 1 and max_size:  # text that looks like an escape: ordinary text
            parts += [("char", char) for char in draw(st.sampled_from(LOOKS_ESCAPED))]
        else:
            parts.append(("char", draw(alphabet)))
    text, value = [], []
    index = 0
    while index < len(parts):
        kind, item = parts[index]
        index += 1
        if kind == "bytes":
            text.append(item)
            value.append(item.decode("utf-8", "surrogateescape"))
            continue
        code = ord(item)
        upper = draw(st.booleans())
        if 0xD800 <= code <= 0xDFFF:
            text.append(_escape(code, upper).encode())
            following = parts[index][1] if index < len(parts) and parts[index][0] == "char" else ""
            if code <= 0xDBFF and following and 0xDC00 <= ord(following) <= 0xDFFF:
                # A high and a low surrogate escape side by side are one character.
                text.append(_escape(ord(following), upper).encode())
                value.append(chr(0x10000 + ((code - 0xD800) << 10) + (ord(following) - 0xDC00)))
                index += 1
            else:
                value.append(item)
            continue
        how = draw(st.integers(0, 3))
        if item in SHORT_ESCAPES and how == 0:
            text.append(SHORT_ESCAPES[item].encode())
        elif item in '"\\' or how == 1:
            if code > 0xFFFF:
                high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
                text.append((_escape(high, upper) + _escape(low, upper)).encode())
            else:
                text.append(_escape(code, upper).encode())
        else:
            text.append(item.encode("utf-8"))  # raw, control characters too
        value.append(item)
    return Piece(b'"' + b"".join(text) + b'"', "".join(value))


def plain_string(value: str) -> Piece:
    """A string written the plain way (every character raw but quote and backslash)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return Piece(f'"{escaped}"'.encode(), value)


# -- numbers and literals ------------------------------------------------------------------


@st.composite
def number_pieces(draw: Any) -> Piece:
    """A JSON number of any size and precision; its value as a Decimal (compared by value)."""
    sign = draw(st.sampled_from(["", "", "-"]))
    integer = draw(
        st.one_of(
            st.just("0"),
            st.from_regex(r"[1-9][0-9]{0,20}", fullmatch=True),
            st.integers(19, 400).map(lambda n: "9" * n),
            st.just("1" + "0" * 5000),  # past Python's int digit limit
        )
    )
    fraction = draw(st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,40}", fullmatch=True)))
    exponent = draw(
        st.one_of(
            st.just(""),
            st.tuples(
                st.sampled_from("eE"),
                st.sampled_from(["", "+", "-"]),
                st.one_of(
                    st.integers(0, 400),
                    st.sampled_from([16383, 16384, 131071, 131072, 200000, 10**20]),
                ),
            ).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
        )
    )
    text = sign + integer + fraction + exponent
    try:
        value: Any = Decimal(text)
    except InvalidOperation:
        value = UNREADABLE  # an exponent no Decimal holds
    return Piece(text.encode(), value)


literal_pieces = st.sampled_from(
    [Piece(b"true", True), Piece(b"false", False), Piece(b"null", None)]
)
not_json_pieces = st.sampled_from(
    [Piece(b"NaN", UNREADABLE), Piece(b"Infinity", UNREADABLE), Piece(b"-Infinity", UNREADABLE)]
)


def nested(depth: int) -> Piece:
    """Arrays ``depth`` levels deep: ``[[[...]]]``."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return Piece(b"[" * depth + b"]" * depth, value if depth < 800 else UNREADABLE)


deep_pieces = st.sampled_from([250, 253, 254, 300, 2000, 5000]).map(nested)

# -- containers ----------------------------------------------------------------------------


def _join(draw: Any, parts: list[bytes], opening: bytes, closing: bytes) -> bytes:
    out = [opening]
    for index, part in enumerate(parts):
        if index:
            out.append(draw(WHITESPACE) + b"," + draw(WHITESPACE))
        else:
            out.append(draw(WHITESPACE))
        out.append(part)
    out.append(draw(WHITESPACE) + closing)
    return b"".join(out)


def array_of(draw: Any, items: list[Piece]) -> Piece:
    value: Any = [item.value for item in items]
    if any(v is UNREADABLE for v in value):
        value = UNREADABLE
    return Piece(_join(draw, [item.text for item in items], b"[", b"]"), value)


def object_of(draw: Any, members: list[tuple[Piece, Piece]]) -> Piece:
    value: Any = {}
    texts = []
    for key, member in members:
        texts.append(key.text + draw(WHITESPACE) + b":" + draw(WHITESPACE) + member.text)
        if value is UNREADABLE:
            continue
        if member.value is UNREADABLE:
            value = UNREADABLE
        else:  # a repeated key: the last value, as a dict keeps it
            value[key.value] = member.value
    return Piece(_join(draw, texts, b"{", b"}"), value)


@st.composite
def _arrays(draw: Any, children: Any) -> Piece:
    return array_of(draw, draw(st.lists(children, max_size=4)))


@st.composite
def _objects(draw: Any, children: Any) -> Piece:
    return object_of(
        draw, draw(st.lists(st.tuples(string_pieces(max_size=4), children), max_size=4))
    )


json_pieces = st.recursive(
    st.one_of(string_pieces(), number_pieces(), literal_pieces),
    lambda children: st.one_of(_arrays(children), _objects(children)),
    max_leaves=8,
)
clean_json_pieces = st.recursive(
    st.one_of(string_pieces(hostile=False), literal_pieces),
    lambda children: st.one_of(_arrays(children), _objects(children)),
    max_leaves=6,
)
hostile_pieces = st.one_of(json_pieces, not_json_pieces, deep_pieces)

# -- SmartUp values: amounts, dates, ids ----------------------------------------------------

GROUP_SEPARATORS = [" ", "\u00a0", "\u2009", "\u202f", "'", ",", "."]


@st.composite
def amount_spellings(draw: Any, *, max_decimals: int = 2) -> tuple[str, Decimal]:
    """An amount in one of the spellings SmartUp's grammar allows, and its value."""
    integer = draw(st.one_of(st.integers(0, 10**7), st.integers(0, 10**17)))
    decimals = draw(st.integers(0, max_decimals))
    fraction = draw(st.integers(0, 10**decimals - 1)) if decimals else 0
    sign = draw(st.sampled_from(["", "-", "+"]))
    digits = str(integer)
    frac_text = f"{fraction:0{decimals}d}" if decimals else ""
    value = Decimal(f"{'-' if sign == '-' else ''}{digits}.{frac_text or '0'}")
    separator = draw(st.sampled_from(["", *GROUP_SEPARATORS]))
    marks = [m for m in ".," if m != separator]
    mark = draw(st.sampled_from(marks))
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    if separator in ",." and len(groups) == 2 and not frac_text:
        separator = ""  # one "," or "." group alone would read as a decimal mark
    spelled = sign + separator.join(groups) + (mark + frac_text if frac_text else "")
    return spelled, value


valid_amount_text = amount_spellings().map(lambda pair: pair[0])
amount_text = st.one_of(
    valid_amount_text,
    st.text(st.sampled_from("0123456789 .,'+-e\u00a0\u2009\u202f\u0660x"), max_size=14),
    st.sampled_from(["1.2.3", "1,2,3", "12a", "1e400", "NaN", "", "-", "1_000", "١٢", " 12 "]),
)
valid_date_text = st.dates().map(lambda d: f"{d.day:02d}.{d.month:02d}.{d.year:04d}")
valid_time_text = st.datetimes().map(
    lambda t: t.strftime("%d.%m.") + f"{t.year:04d}" + t.strftime(" %H:%M:%S")
)


@st.composite
def date_text(draw: Any, *, with_time: bool = False) -> str:
    """``dd.mm.yyyy`` (with ``hh24:mi[:ss]``), real or not, or any text."""
    day, month, year = (
        draw(st.integers(0, 32)),
        draw(st.integers(0, 13)),
        draw(st.integers(0, 9999)),
    )
    spelled = f"{day:02d}.{month:02d}.{year:04d}"
    if with_time and draw(st.booleans()):
        hour, minute, second = (
            draw(st.integers(0, 25)),
            draw(st.integers(0, 61)),
            draw(st.integers(0, 61)),
        )
        spelled += f" {hour:02d}:{minute:02d}" + (f":{second:02d}" if draw(st.booleans()) else "")
    drawn: str = draw(st.one_of(st.just(spelled), st.just(spelled), st.text(max_size=20)))
    return drawn


def text_value(strategy: Any) -> Any:
    """A string value drawn from ``strategy`` (of str), written as a JSON string piece."""
    return strategy.flatmap(
        lambda value: st.one_of(st.just(plain_string(value)), _spelled_as_escapes(value))
    )


def _spelled_as_escapes(value: str) -> Any:
    """``value`` with some characters written as ``\\uXXXX``: the same string."""

    @st.composite
    def spelled(draw: Any) -> Piece:
        out = []
        for char in value:
            code = ord(char)
            if code <= 0xFFFF and draw(st.booleans()):
                out.append(_escape(code, draw(st.booleans())))
            elif char in '"\\':
                out.append("\\" + char)
            else:
                out.append(char)
        return Piece(('"' + "".join(out) + '"').encode("utf-8", "surrogatepass"), value)

    return spelled()


IDS = [str(n) for n in range(1, 25)]
valid_ids = text_value(st.sampled_from(IDS))
id_pieces = st.one_of(
    string_pieces(max_size=6),
    number_pieces(),
    literal_pieces,
    st.just(plain_string("x" * 65)),
    st.just(plain_string("")),
)
value_pieces = one_in(5).flatmap(
    lambda odd: hostile_pieces if odd else st.one_of(string_pieces(), json_pieces)
)


def field_values(valid: Any, hostile: Any = None) -> tuple[Any, Any]:
    """A field's values: (in a clean record, in a hostile one)."""
    rough = value_pieces if hostile is None else st.one_of(hostile, value_pieces)
    return valid, one_in(3).flatmap(lambda odd: rough if odd else valid)


@st.composite
def smartup_record(draw: Any, id_field: str, fields: dict[str, tuple[Any, Any]]) -> Piece:
    """A SmartUp record: clean (every value one SmartUp could send) or, one time in
    three, hostile (any value may be anything, the id too)."""
    hostile = draw(one_in(3))
    members: list[tuple[Piece, Piece]] = []
    if not (hostile and draw(one_in(12))):
        members.append(
            (
                draw(text_value(st.just(id_field))),
                draw(st.one_of(valid_ids, id_pieces) if hostile else valid_ids),
            )
        )
    for name, (clean, rough) in fields.items():
        if not draw(one_in(4)):
            members.append((plain_string(name), draw(rough if hostile else clean)))
    for _ in range(draw(st.integers(0, 2))):
        extra = value_pieces if hostile else clean_json_pieces
        members.append((draw(string_pieces(hostile=hostile, max_size=5)), draw(extra)))
    members = draw(st.permutations(members))
    return object_of(draw, list(members))


clean_text = string_pieces(hostile=False)
PRODUCT_FIELDS = {
    "code": field_values(text_value(st.from_regex(r"P[0-9]{4}", fullmatch=True))),
    "name": field_values(st.one_of(clean_text, string_pieces(hostile=False, max_size=40))),
    "short_name": field_values(clean_text),
    "measure_code": field_values(text_value(st.sampled_from(["dona", "kg", "l"]))),
    "state": field_values(text_value(st.sampled_from(["A", "P", ""]))),
    "barcodes": field_values(
        text_value(st.from_regex(r"[0-9]{3,8}([|,; ]+[0-9]{3,8}){0,3}", fullmatch=True))
    ),
}
product_records = smartup_record("product_id", PRODUCT_FIELDS)

AMOUNT = field_values(text_value(valid_amount_text), text_value(amount_text))


@st.composite
def _line(draw: Any, hostile: bool) -> Piece:
    fields = {
        "product_unit_id": field_values(text_value(st.sampled_from(IDS))),
        "product_code": field_values(text_value(st.from_regex(r"P[0-9]{4}", fullmatch=True))),
        "product_name": field_values(clean_text),
        "order_quant": AMOUNT,
        "sold_quant": AMOUNT,
        "return_quant": AMOUNT,
        "product_price": AMOUNT,
        "sold_amount": AMOUNT,
        "vat_percent": AMOUNT,
        "vat_amount": AMOUNT,
        "inventory_kind": field_values(text_value(st.sampled_from(["G", "M", "P"]))),
    }
    members = [
        (plain_string(name), draw(values[1] if hostile else values[0]))
        for name, values in fields.items()
        if not draw(one_in(4))
    ]
    return object_of(draw, members)


@st.composite
def _lines(draw: Any, hostile: bool) -> Piece:
    """Order lines; in a hostile record one line in five is hostile, or not an object."""
    count = draw(st.integers(0, 4))
    lines = [
        draw(st.one_of(_line(False), _line(False), _line(False), _line(True), value_pieces))
        if hostile
        else draw(_line(False))
        for _ in range(count)
    ]
    return array_of(draw, lines)


ORDER_FIELDS = {
    "external_id": field_values(clean_text),
    "filial_id": field_values(text_value(st.just("100"))),
    "status": field_values(text_value(st.sampled_from(["B#S", "A", "C"]))),
    "deal_time": field_values(
        st.one_of(text_value(valid_time_text), text_value(valid_date_text)),
        text_value(date_text(with_time=True)),
    ),
    "delivery_date": field_values(text_value(valid_date_text), text_value(date_text())),
    "booked_date": field_values(text_value(valid_date_text), text_value(date_text())),
    "total_amount": AMOUNT,
    "currency_code": field_values(text_value(st.just("860"))),
    "person_name": field_values(clean_text),
    "order_products": (_lines(False), st.one_of(_lines(True), _lines(True), value_pieces)),
}
order_records = smartup_record("deal_id", ORDER_FIELDS)


RECORDS_KEYS = {"products": "inventory", "orders": "order"}
"""The member of an answer of ``kind`` that holds its records (products, orders)."""


def records_of(kind: str) -> Any:
    """SmartUp-like records of ``kind`` (mostly), or any JSON value at all (sometimes)."""
    shaped = product_records if kind == "products" else order_records
    return one_in(8).flatmap(lambda odd: hostile_pieces if odd else shaped)


@st.composite
def bodies(draw: Any, kind: str) -> tuple[bytes, list[Any], Any]:
    """A whole answer of the right shape: (body, the records as they must be read,
    the limits as they must be read). Other top-level members (limits first or last,
    decoy arrays under the same key deeper down, other arrays) come in any order."""
    key = RECORDS_KEYS[kind]
    records = draw(st.lists(records_of(kind), max_size=8))
    limits = draw(
        st.one_of(
            json_pieces, st.just(Piece(b'{"left_limit_quant":"99"}', {"left_limit_quant": "99"}))
        )
    )
    decoy = array_of(draw, draw(st.lists(records_of(kind), max_size=2)))
    other_key = "order" if key == "inventory" else "inventory"
    extras = st.one_of(
        st.just((plain_string("x"), object_of(draw, [(plain_string(key), decoy)]))),
        st.just((plain_string(other_key), decoy)),
        st.tuples(string_pieces(max_size=3), json_pieces).filter(
            lambda member: member[0].value not in (key, "limits")
        ),
    )
    members = [
        (draw(text_value(st.just(key))), array_of(draw, records)),
        (plain_string("limits"), limits),
        *draw(st.lists(extras, max_size=2)),
    ]
    body = object_of(draw, list(draw(st.permutations(members))))
    # An array at the top level is walked, not kept: a reader reads no limits from it
    read_limits = None if limits.text.lstrip().startswith(b"[") else limits.value
    return body.text, [r.value for r in records], read_limits


@st.composite
def bad_shapes(draw: Any, kind: str) -> bytes:
    """An answer whose records are not an array at the top level under their key."""
    key = RECORDS_KEYS[kind]
    records = array_of(draw, draw(st.lists(records_of(kind), max_size=3)))
    record = draw(records_of(kind))
    wrong = draw(
        st.sampled_from(
            [
                b'{"%s":{"item":%s}}' % (key.encode(), record.text),
                b'{"%s.item":%s}' % (key.encode(), record.text),
                b'{"x":{"%s":%s}}' % (key.encode(), records.text),
                b'{"data":[{"%s":%s}]}' % (key.encode(), records.text),
                b'[{"%s":%s}]' % (key.encode(), records.text),
                b'{"%s":null}' % key.encode(),
                b'{"%s":"%s"}' % (key.encode(), key.encode()),
                b'{"%s":%s,"%s":%s}' % (key.encode(), records.text, key.encode(), records.text),
                b'{"limits":{}}',
                b'{"error_code":"A02-24-048","message":"\\u041e\\u0448\\u0438\\u0431\\u043a\\u0430"}',
                b"null",
                b'"%s"' % key.encode(),
                b'{"%s":%s}trailing' % (key.encode(), records.text),
                b'{"%s":%s' % (key.encode(), records.text),
            ]
        )
    )
    return bytes(wrong)
