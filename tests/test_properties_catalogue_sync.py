"""Properties of whole runs of the catalogue's streams: generated answers of product
groups (with their types), price types, prices, warehouses and stock rows, served by the
simulator over HTTP and synced into real PostgreSQL.

For every generated answer of the right shape: the run ends SUCCESS, or PARTIAL with each
bad record rejected (logged with its id and a reason), never FAILED for what a record
holds; every stored row is what the record parses into, and holds each value exactly as
sent (the independent oracle of :mod:`tests.oracles`); a second identical run writes no
row.

The snapshot streams' rule: after a clean snapshot, a second one in which some records
turn hostile (their keys kept) rejects them, and each keeps its stored row unchanged:
never deleted, never marked gone as "absent".
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from jobs.pipeline.records import (
    BALANCE_COLUMNS,
    PRICE_COLUMNS,
    PRICE_TYPE_COLUMNS,
    PRODUCT_GROUP_COLUMNS,
    PRODUCT_TYPE_COLUMNS,
    WAREHOUSE_COLUMNS,
    RecordRejected,
)
from jobs.pipeline.smartup.body import RecordsReader, UnreadableRecord
from jobs.pipeline.streams.base import Export
from jobs.pipeline.streams.groups import GROUPS
from jobs.pipeline.streams.prices import PRICE_TYPES, PRICES
from jobs.pipeline.streams.stock import WAREHOUSES, Balance
from jobs.run.sync import RunRequest, run_sync
from jobs.simulator import Fault, SmartUpSimulator
from tests.helpers import FAST_RETRY, PASSWORD, TABLES, TASHKENT, TODAY, USER, settings_for
from tests.oracles import (
    BALANCE_SPEC,
    GROUP_SPEC,
    PRICE_SPEC,
    PRICE_TYPE_SPEC,
    WAREHOUSE_SPEC,
    as_read,
    check_row,
    same,
)
from tests.strategies import (
    Piece,
    array_of,
    examples,
    object_of,
    one_in,
    plain_string,
    text_value,
    valid_ids,
    value_pieces,
)
from tests.strategies_catalogue import (
    BALANCE_FIELDS,
    GROUP_FIELDS,
    NAME,
    PRICE_AMOUNT,
    PRICE_ENTRY_FIELDS,
    PRICE_TYPE_FIELDS,
    WAREHOUSE_FIELDS,
    catalogue_records_of,
)

JSON = "application/json; charset=utf-8"
CATALOGUE_TABLES = (
    "product_groups",
    "product_types",
    "price_types",
    "product_prices",
    "warehouses",
    "stock_balances",
)


@dataclass(frozen=True)
class Kind:
    """One export fuzzed: which run reads it, where the simulator serves it, how its
    rows are keyed and checked."""

    strategy: str  # the kind of tests.strategies_catalogue
    stream: str  # the run's kind
    endpoint: str  # the simulator's endpoint whose answer is generated
    records_key: str
    export: Export
    table: str
    columns: tuple[str, ...]
    spec: dict[str, tuple[str, str]]
    fields: dict[str, tuple[Any, Any]]  # every field a record may hold, its id too
    key_fields: tuple[str, ...]  # kept by a record that turns hostile
    snapshot: bool = True  # settled: what a complete answer lacks is gone
    children: tuple[str, ...] = field(default=())


ID = (valid_ids, valid_ids)
KINDS = {
    kind.strategy: kind
    for kind in (
        Kind(
            "groups",
            "groups",
            "product_groups",
            "product_group",
            GROUPS,
            "product_groups",
            PRODUCT_GROUP_COLUMNS,
            GROUP_SPEC,
            {"product_group_id": ID, **GROUP_FIELDS},
            ("product_group_id",),
            children=PRODUCT_TYPE_COLUMNS,
        ),
        Kind(
            "price_types",
            "prices",
            "price_types_v2",
            "data",
            PRICE_TYPES,
            "price_types",
            PRICE_TYPE_COLUMNS,
            PRICE_TYPE_SPEC,
            {"name": NAME, **PRICE_TYPE_FIELDS},
            ("price_type_id", "code"),
        ),
        Kind(
            "price_entries",
            "prices",
            "prices",
            "inventory",
            PRICES,
            "product_prices",
            PRICE_COLUMNS,
            PRICE_SPEC,
            {"inventory_code": ID, **PRICE_ENTRY_FIELDS},
            ("inventory_code",),
        ),
        Kind(
            "warehouses",
            "stock",
            "warehouses",
            "warehouse",
            WAREHOUSES,
            "warehouses",
            WAREHOUSE_COLUMNS,
            WAREHOUSE_SPEC,
            {"warehouse_id": ID, **WAREHOUSE_FIELDS},
            ("warehouse_id",),
            snapshot=False,
        ),
        Kind(
            "balances",
            "stock",
            "stock",
            "balance",
            Balance("F"),
            "stock_balances",
            BALANCE_COLUMNS,
            BALANCE_SPEC,
            {"warehouse_id": ID, **BALANCE_FIELDS},
            (
                "warehouse_id",
                "product_id",
                "batch_number",
                "card_code",
                "expiry_date",
                "serial_number",
            ),
        ),
    )
}
NO_BRAKE = 100.0  # a row wrongly taken as absent must go, not be saved by the brake
SNAPSHOT_KINDS = [name for name, kind in KINDS.items() if kind.snapshot]


@pytest.fixture(scope="module")
def smartup() -> Iterator[SmartUpSimulator]:
    with SmartUpSimulator(products=[], user=USER, password=PASSWORD, today=TODAY) as sim:
        for quota in ("reference", "documents"):  # hundreds of runs in one simulated day
            sim.set_quota(quota, 10**9)
        yield sim


def sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def row_versions(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Where every row is and which transaction wrote it: any write changes this."""
    return {
        table: sql(url, f"SELECT ctid::text, xmin::text FROM {table} ORDER BY ctid")
        for table in CATALOGUE_TABLES
    }


def body_of(kind: Kind, records: list[Piece]) -> bytes:
    """An answer: the records under their key, and (mostly) SmartUp's limits."""
    key = plain_string(kind.records_key).text
    items = b",".join(record.text for record in records)
    return b'{"limits":{"left_limit_quant":"99"},' + key + b":[" + items + b"]}"


def serve_and_sync(
    sim: SmartUpSimulator, url: str, kind: Kind, body: bytes, *, brake: float = 10.0
) -> tuple[Any, Any]:
    sim.clear_faults()
    sim.add_fault(kind.endpoint, Fault(status=200, body=body, content_type=JSON), times=10)  # type: ignore[arg-type]
    with capture_logs() as logs:
        outcome = run_sync(
            RunRequest(
                kind=kind.stream,
                settings=settings_for(
                    sim, url, sync_streams=(kind.stream,), sync_max_gone_percent=brake
                ),
                today=TODAY,
                retry=FAST_RETRY,
            )
        )
    rejected = [
        e["record_id"]
        for e in logs
        if e["event"] == "sync.record.rejected" and e.get("stream") == kind.stream
    ]
    assert all(
        isinstance(e["reason"], str) and e["reason"].strip()
        for e in logs
        if e["event"] == "sync.record.rejected"
    )
    return outcome, rejected


@dataclass
class Expected:
    """What a run must make of an answer, record by record."""

    records: list[Any]
    accepted: dict[str, tuple[Any, Any]]  # key → (the record as flattened, its parse)
    rejects: list[str | None]  # the ids named (None: none could be read)
    kept: set[str]  # keys of records rejected whose stored row must stay as it was
    kept_codes: set[str]  # price entries rejected whole: their product's prices stay


def expected_outcome(kind: Kind, body: bytes) -> Expected:
    export = kind.export
    records = list(RecordsReader(io.BytesIO(body).read, records_key=kind.records_key).records())
    outcome = Expected(records, {}, [], set(), set())

    def identified(record: Any) -> Any:
        try:
            return export.identify(record)
        except Exception:
            return None

    for record in records:
        if isinstance(record, UnreadableRecord):
            identity = identified(record.fields)
            outcome.rejects.append(identity.record_id if identity else None)
            if kind.strategy == "price_entries":
                code = record.fields.get("inventory_code")
                if code:
                    outcome.kept_codes.add(code)
            elif identity is not None:
                outcome.kept.add(identity.key[0])
            continue
        try:
            flat = list(export.expand(record))
        except RecordRejected as reject:
            outcome.rejects.append(reject.record_id)
            if reject.record_id is not None:
                outcome.kept_codes.add(reject.record_id)
            continue
        for item in flat:
            try:
                identity = export.identify(item)
            except RecordRejected as reject:
                outcome.rejects.append(reject.record_id)
                continue
            try:
                parsed = export.parse(item, identity, tz=TASHKENT)
            except RecordRejected as reject:
                outcome.rejects.append(reject.record_id)
                outcome.kept.add(identity.key[0])
                continue
            outcome.accepted[identity.key[0]] = (item, parsed)
            outcome.kept.discard(identity.key[0])
    return outcome


def stored_rows(url: str, kind: Kind) -> dict[str, dict[str, Any]]:
    """The kind's table, keyed: each row as a dict of its parsed columns (raw read back
    as JSON), and ``deleted_at`` where the table has it."""
    columns = [c if c != "raw" else "raw::text" for c in kind.columns]
    gone = ", deleted_at" if kind.table in ("product_groups", "price_types") else ""
    rows = sql(url, f"SELECT {', '.join(columns)}{gone} FROM {kind.table}")
    stored = {}
    for row in rows:
        values = dict(zip([*kind.columns, "deleted_at"], row, strict=False))
        if "raw" in values:
            values["raw"] = json.loads(values["raw"], parse_float=Decimal, parse_int=Decimal)
        stored[row[0]] = values
    return stored


def check_stored(url: str, kind: Kind, accepted: Mapping[str, tuple[Any, Any]]) -> None:
    """Every accepted record's row holds what it parses into, each value as sent."""
    stored = stored_rows(url, kind)
    for key, (record, parsed) in accepted.items():
        row = stored[key]
        assert row.get("deleted_at") is None, key
        for column, want in zip(kind.columns, parsed.row, strict=True):
            got = row[column]
            if column == "raw":
                assert same(json.loads(want, parse_float=Decimal, parse_int=Decimal), got)
            else:
                assert got == want, (key, column, want, got)
        check_row(kind.columns, parsed.row, record, kind.spec)  # the oracle, as sent
    if kind.children:
        types = sql(
            url,
            f"SELECT {', '.join(PRODUCT_TYPE_COLUMNS)}, deleted_at FROM product_types "
            "ORDER BY group_external_id, external_id",
        )
        listed: dict[str, list[tuple[Any, ...]]] = {}
        for _, (_, parsed) in accepted.items():
            for child in parsed.children:
                listed.setdefault(child[0], []).append(child)
        by_id = {row[0]: row for row in types}
        for type_id, children in listed.items():
            # A type id two groups list (SmartUp's are unique; a hostile answer's need
            # not be) is stored as one of them lists it: see the report of issue 17.
            assert by_id[type_id][:-1] in children, type_id
            assert by_id[type_id][-1] is None, type_id


@pytest.mark.parametrize("strategy", list(KINDS))
@examples(6, 60)
@given(data=st.data())
def test_any_catalogue_answer_is_applied_record_by_record(strategy, data, smartup, pg_url):
    kind = KINDS[strategy]
    pieces = data.draw(st.lists(catalogue_records_of(strategy), max_size=8))
    body = body_of(kind, pieces)
    sql(pg_url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    expected = expected_outcome(kind, body)
    assert len(expected.records) == len(pieces)
    assert all(same(as_read(p.value), r) for p, r in zip(pieces, expected.records, strict=True))

    outcome, rejected = serve_and_sync(smartup, pg_url, kind, body)
    assert outcome.status == ("PARTIAL" if expected.rejects else "SUCCESS"), outcome.error
    assert sorted(map(repr, rejected)) == sorted(map(repr, expected.rejects))
    stored = stored_rows(pg_url, kind)
    assert set(stored) == set(expected.accepted)
    check_stored(pg_url, kind, expected.accepted)

    before = row_versions(pg_url)
    sql(pg_url, "TRUNCATE smartup_sync_state")  # the warehouses are asked for again
    again, rejected_again = serve_and_sync(smartup, pg_url, kind, body)
    assert again.status == outcome.status, again.error
    assert sorted(map(repr, rejected_again)) == sorted(map(repr, expected.rejects))
    assert row_versions(pg_url) == before


# -- the snapshot streams: a hostile record keeps its row ----------------------------------


@st.composite
def members(draw: Any, kind: Kind, *, hostile: bool) -> dict[str, Piece]:
    """A record's fields (each missing one time in four), clean or hostile."""
    return {
        name: draw(values[1] if hostile else values[0])
        for name, values in kind.fields.items()
        if not draw(one_in(4))
    }


def record_of(draw: Any, fields: Mapping[str, Piece]) -> Piece:
    return object_of(draw, [(plain_string(name), piece) for name, piece in fields.items()])


def key_of(kind: Kind, fields: Mapping[str, Piece]) -> tuple[Any, ...]:
    return tuple(repr(as_read(fields[f].value)) if f in fields else None for f in kind.key_fields)


@st.composite
def hostile_price_entry(draw: Any, fields: Mapping[str, Piece]) -> dict[str, Piece]:
    """A price entry turned hostile: its prices' keys kept, their amounts and the entry's
    barcode anything; or its list of prices not a list, or with an item not an object."""
    hostile = dict(fields)
    if draw(st.booleans()):
        hostile["inventory_barcode"] = draw(value_pieces)
    prices = fields.get("price_type")
    rows = prices.value if prices is not None and isinstance(prices.value, list) else []
    how = draw(st.integers(0, 3))
    if how == 3:
        hostile["price_type"] = draw(value_pieces)
        return hostile
    items = []
    for row in rows:
        members_ = [
            (plain_string(name), draw(text_value(st.just(value))) if value else _null(value))
            for name, value in row.items()
            if name in ("price_type_code", "card_code")
        ]
        price = draw(PRICE_AMOUNT[1]) if draw(st.booleans()) else draw(PRICE_AMOUNT[0])
        members_.append((plain_string("price"), price))
        items.append(object_of(draw, members_))
    if how == 2:
        items.insert(draw(st.integers(0, len(items))), draw(value_pieces))
    hostile["price_type"] = array_of(draw, items)
    return hostile


def _null(value: Any) -> Piece:
    return plain_string("") if value == "" else Piece(b"null", None)


@st.composite
def two_snapshots(draw: Any, kind: Kind) -> tuple[list[Piece], list[Piece], list[bool]]:
    """A clean snapshot (records of distinct keys), and the same records again, some
    turned hostile with their keys kept (and which)."""
    first = draw(
        st.lists(
            members(kind, hostile=False),
            min_size=1,
            max_size=8,
            unique_by=lambda f: key_of(kind, f),
        )
    )
    turned = [draw(one_in(2)) for _ in first]
    second = []
    for fields, hostile in zip(first, turned, strict=True):
        if not hostile:
            second.append(fields)
        elif kind.strategy == "price_entries":
            second.append(draw(hostile_price_entry(fields)))
        else:
            rough = draw(members(kind, hostile=True))
            for name in kind.key_fields:
                rough.pop(name, None)
                if name in fields:
                    rough[name] = fields[name]
            second.append(rough)
    return (
        [record_of(draw, f) for f in first],
        [record_of(draw, f) for f in second],
        turned,
    )


@pytest.mark.parametrize("strategy", SNAPSHOT_KINDS)
@examples(6, 60)
@given(data=st.data())
def test_a_hostile_record_in_a_snapshot_keeps_its_stored_row(strategy, data, smartup, pg_url):
    kind = KINDS[strategy]
    first, second, _ = data.draw(two_snapshots(kind))
    sql(pg_url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    first_body = body_of(kind, first)
    serve_and_sync(smartup, pg_url, kind, first_body, brake=NO_BRAKE)
    before = stored_rows(pg_url, kind)
    types_before = sql(pg_url, "SELECT * FROM product_types ORDER BY id")

    second_body = body_of(kind, second)
    expected = expected_outcome(kind, second_body)
    outcome, rejected = serve_and_sync(smartup, pg_url, kind, second_body, brake=NO_BRAKE)
    assert outcome.status == ("PARTIAL" if expected.rejects else "SUCCESS"), outcome.error
    assert sorted(map(repr, rejected)) == sorted(map(repr, expected.rejects))
    assert all(result.gone == 0 for result in outcome.results)
    after = stored_rows(pg_url, kind)
    # every row stored before is still there: nothing of the first snapshot is absent
    assert set(after) == set(before) | set(expected.accepted)
    for key, row in before.items():
        if key in expected.accepted:
            continue
        assert after[key] == row, key  # a rejected record's row, exactly as it was
    check_stored(pg_url, kind, expected.accepted)
    if kind.children:  # the types of a rejected group stay as they were
        accepted_groups = set(expected.accepted)
        claimed = {
            child[0] for _, parsed in expected.accepted.values() for child in parsed.children
        }
        kept = [t for t in types_before if t[2] not in accepted_groups and t[1] not in claimed]
        now = {t[0]: t for t in sql(pg_url, "SELECT * FROM product_types ORDER BY id")}
        for stored_type in kept:
            assert now[stored_type[0]] == stored_type
