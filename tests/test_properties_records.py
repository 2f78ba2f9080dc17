"""Properties of the pure parts, on generated input: the body reader (bytes in memory)
and records.py. Each is checked against an oracle written independently of the code
under test (tests/oracles.py)."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.pipeline.records import (
    FieldError,
    RecordRejected,
    identify_order,
    identify_product,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_order,
    parse_product,
    raw_json,
)
from jobs.pipeline.smartup.body import BodyProblem, RecordsReader
from tests.helpers import TASHKENT
from tests.oracles import as_read, oracle_amount, oracle_date, same, storable
from tests.strategies import (
    RECORDS_KEYS,
    UNREADABLE,
    amount_spellings,
    amount_text,
    bad_shapes,
    bodies,
    date_text,
    examples,
    hostile_pieces,
    records_of,
)


def read_all(body: bytes, key: str, sizes: list[int]) -> tuple[list[Any], Any]:
    """Everything the reader yields, with the body arriving in pieces of ``sizes``."""
    stream = io.BytesIO(body)
    turn = iter(sizes * (len(body) + 1))

    def read(size: int) -> bytes:
        return stream.read(min(size, next(turn)))

    reader = RecordsReader(read, records_key=key)
    return list(reader.records()), reader.limits


piece_sizes = st.lists(st.integers(1, 300), min_size=1, max_size=5)


# -- the body reader ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["products", "orders"])
@examples(30, 600)
@given(data=st.data(), sizes=piece_sizes)
def test_the_reader_yields_every_record_exactly_as_sent(kind, data, sizes):
    body, expected, limits = data.draw(bodies(kind))
    records, read_limits = read_all(body, RECORDS_KEYS[kind], sizes)
    assert len(records) == len(expected)
    for sent, read in zip(expected, records, strict=True):
        assert same(sent, read), (sent, read)
    assert same(limits, read_limits)


@pytest.mark.parametrize("kind", ["products", "orders"])
@examples(40, 300)
@given(data=st.data(), sizes=piece_sizes)
def test_the_reader_refuses_every_other_shape(kind, data, sizes):
    body = data.draw(bad_shapes(kind))
    with pytest.raises(BodyProblem):
        read_all(body, RECORDS_KEYS[kind], sizes)


@examples(40, 400)
@given(data=st.data(), cut=st.floats(0, 1, exclude_max=True))
def test_a_body_cut_short_is_never_taken_whole(data, cut):
    body, _, _ = data.draw(bodies("products"))
    with pytest.raises(BodyProblem) as problem:
        read_all(body[: int(len(body) * cut)], "inventory", [4096])
    assert problem.value.truncated or not problem.value.not_json


# -- amounts ------------------------------------------------------------------------------


@examples(120, 2000)
@given(spelled=amount_spellings(max_decimals=6))
def test_every_spelling_of_an_amount_reads_as_its_value(spelled):
    text, value = spelled
    assert parse_decimal(text, scale=6) == value


@examples(120, 2000)
@given(text=st.one_of(amount_text, st.text(max_size=12)))
def test_any_text_reads_as_the_grammar_says_or_is_refused(text):
    expected = oracle_amount(text)
    try:
        read = parse_decimal(text, limit=Decimal(10) ** 400, scale=10**6)
    except FieldError:
        assert expected is None or text == ""
    else:
        assert read is None if text == "" else read == expected


@examples(100, 1000)
@given(
    value=st.decimals(allow_nan=False, allow_infinity=False, places=None),
    scale=st.sampled_from([2, 6]),
)
def test_an_amount_the_column_would_change_is_refused(value, scale):
    limit = Decimal(10) ** (18 if scale == 2 else 14)
    fits = abs(value) < limit and value == round(value, scale)
    for sent in (value, str(value)):
        if isinstance(sent, str) and not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", sent):
            continue  # exponent forms are not SmartUp's spelling
        try:
            read = parse_decimal(sent, limit=limit, scale=scale)
        except FieldError:
            assert not fits
        else:
            assert fits and read == value


# -- dates --------------------------------------------------------------------------------


@examples(120, 2000)
@given(text=date_text(with_time=True))
def test_dates_are_read_exactly_or_refused(text):
    expected = oracle_date(text)
    try:
        read = parse_date(text)
    except FieldError:
        assert expected is None or text == ""
    else:
        assert read == (None if text == "" else expected)


@examples(120, 2000)
@given(text=date_text(with_time=True))
def test_times_are_read_exactly_or_refused(text):
    try:
        read = parse_datetime(text, tz=TASHKENT)
    except FieldError:
        day = oracle_date(text)
        try:
            parts = [int(part) for part in text[11:].split(":")] if len(text) > 10 else [0, 0]
            hour, minute, second = (*parts, 0)[:3]
            assert day is not None
            moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=TASHKENT)
            moment.astimezone(UTC)
        except (AssertionError, ValueError, OverflowError, TypeError):
            return
        assert text == "", f"{text!r} refused, but it is {moment}"
    else:
        if text == "":
            assert read is None
            return
        assert read is not None and read.tzinfo is TASHKENT
        spelled = f"{read.day:02d}.{read.month:02d}.{read.year:04d}"
        clock = f"{read.hour:02d}:{read.minute:02d}:{read.second:02d}"
        assert text in (spelled, f"{spelled} {clock}", f"{spelled} {clock[:5]}")
        assert read.astimezone(UTC).astimezone(TASHKENT) == read


# -- raw and whole records ------------------------------------------------------------------


@examples(120, 1000)
@given(piece=hostile_pieces)
def test_raw_is_the_record_exactly_or_the_record_is_refused(piece):
    if piece.value is UNREADABLE:
        return
    record = {"v": as_read(piece.value)}
    try:
        raw = raw_json(record)
    except FieldError:
        assert not storable(record)
    else:
        assert storable(record)
        assert same(record, json.loads(raw, parse_float=Decimal, parse_int=Decimal))


@pytest.mark.parametrize("kind", ["products", "orders"])
@examples(120, 600)
@given(data=st.data())
def test_a_record_is_rows_or_a_reject_never_anything_else(kind, data):
    record = as_read(data.draw(records_of(kind)).value)
    if record is UNREADABLE:
        return
    identify, parse = {
        "products": (identify_product, parse_product),
        "orders": (identify_order, parse_order),
    }[kind]
    try:
        identity = identify(record)
        parsed = parse(record, identity, tz=TASHKENT)
    except RecordRejected as reject:
        assert reject.reason
        return
    assert storable(record)  # raw: what was sent, storable as it is
    assert parsed.row is not None
    for value in (*parsed.row, *(v for child in parsed.children for v in child)):
        if isinstance(value, str):
            assert storable(value)
        if isinstance(value, Decimal):
            assert value.is_finite() and abs(value) < Decimal(10) ** 18
    raw = json.loads(parsed.row[-2], parse_float=Decimal, parse_int=Decimal)
    assert same(record, raw)
