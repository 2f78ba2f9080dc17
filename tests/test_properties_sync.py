"""Properties of whole runs: generated SmartUp answers, served by the simulator over HTTP,
synced into real PostgreSQL.

For every generated answer: the run ends SUCCESS or PARTIAL (FAILED only for a body of the
wrong shape, which then changes nothing), never with a traceback; for every stream
received = inserted + updated + unchanged + rejected (+ earlier copies of an id that a
later copy replaced); every stored row reads back as parsed, its ``raw`` exactly as sent;
every rejected record is logged with a reason; a second identical run writes no row.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from jobs.pipeline.records import ORDER_ITEM_COLUMNS, RecordRejected
from jobs.pipeline.smartup.body import RecordsReader, UnreadableRecord
from jobs.pipeline.streams import STREAMS
from jobs.run.sync import RunRequest, run_sync
from jobs.simulator import Fault, SmartUpSimulator, generate_products
from tests.helpers import FAST_RETRY, PASSWORD, TABLES, TASHKENT, TODAY, USER, settings_for
from tests.oracles import same
from tests.strategies import RECORDS_KEYS, bad_shapes, bodies, examples

JSON = "application/json; charset=utf-8"
DAYS_BACK = 6  # one window of seven days: one request per run


@pytest.fixture(scope="module")
def smartup() -> Iterator[SmartUpSimulator]:
    with SmartUpSimulator(products=generate_products(3), user=USER, password=PASSWORD) as sim:
        yield sim


def sql(url: str, query: str) -> list[tuple[Any, ...]]:
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Where every row is and which transaction wrote it: any write changes this."""
    return {
        table: sql(url, f"SELECT ctid::text, xmin::text FROM {table} ORDER BY ctid")
        for table in ("products", "orders", "order_items")
    }


def serve_and_sync(sim: Any, url: str, kind: str, body: bytes) -> tuple[Any, list[Any]]:
    sim.clear_faults()  # every attempt gets the body (a truncated one is asked for again)
    sim.add_fault(kind, Fault(status=200, body=body, content_type=JSON), times=10)
    with capture_logs() as logs:
        outcome = run_sync(
            RunRequest(
                kind=kind,
                settings=settings_for(sim, url),
                days_back=DAYS_BACK,
                today=TODAY,
                retry=FAST_RETRY,
            )
        )
    return outcome, logs


def expected_outcome(kind: str, body: bytes) -> tuple[list[Any], dict[str, Any], list[Any]]:
    """What the run must do, record by record: (records as read, the last accepted copy
    of each id as (record, parsed), the rejects)."""
    stream = STREAMS[kind]
    records = list(RecordsReader(io.BytesIO(body).read, records_key=RECORDS_KEYS[kind]).records())
    accepted: dict[str, Any] = {}
    rejects: list[Any] = []
    for record in records:
        if isinstance(record, UnreadableRecord):
            try:
                record_id = stream.identify(record.fields).record_id
            except Exception:
                record_id = None
            rejects.append(record_id)
            continue
        try:
            identity = stream.identify(record)
            accepted[identity.record_id] = (record, stream.parse(record, identity, tz=TASHKENT))
        except RecordRejected as reject:
            rejects.append(reject.record_id)
        except Exception:
            rejects.append(None)
    return records, accepted, rejects


def check_stored(url: str, kind: str, accepted: dict[str, Any]) -> None:
    """Every stored row: typed columns as parsed, raw exactly as read (which is, record
    by record, what the generator sent: the caller checks that)."""
    stream = STREAMS[kind]
    columns = [c for c in stream.target.columns if c != "raw"]
    key_column = "external_id" if kind == "products" else "source_external_id"
    rows = sql(url, f"SELECT {', '.join(columns)}, raw::text FROM {stream.target.table}")
    stored = {row[columns.index(key_column)]: row for row in rows}
    assert set(stored) == set(accepted)
    for record_id, (record, parsed) in accepted.items():
        row = stored[record_id]
        expected = dict(zip(stream.target.columns, parsed.row, strict=True))
        for index, column in enumerate(columns):
            want, got = expected[column], row[index]
            if column == "barcodes":
                want = json.loads(want) if isinstance(want, str) else want
            assert got == want, (column, want, got)
        raw = json.loads(row[-1], parse_float=Decimal, parse_int=Decimal)
        assert same(record, raw)
    if kind == "orders":
        items = sql(
            url,
            f"SELECT o.source_external_id, {', '.join('i.' + c for c in ORDER_ITEM_COLUMNS)}"
            " FROM order_items i JOIN orders o ON o.id = i.order_id"
            " ORDER BY o.source_external_id, i.line_no",
        )
        got_lines: dict[str, list[tuple[Any, ...]]] = {}
        for item in items:
            got_lines.setdefault(item[0], []).append(tuple(item[1:]))
        for record_id, (_, parsed) in accepted.items():
            assert got_lines.get(record_id, []) == list(parsed.children)


def counts(outcome: Any) -> Any:
    return outcome.results[0]


@pytest.mark.parametrize("kind", ["products", "orders"])
@examples(12, 150)
@given(data=st.data())
def test_any_answer_of_the_right_shape_is_applied_record_by_record(kind, data, smartup, pg_url):
    body, sent, _ = data.draw(bodies(kind))
    sql(pg_url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    records, accepted, rejects = expected_outcome(kind, body)
    assert len(records) == len(sent) and all(map(same, sent, records))

    outcome, logs = serve_and_sync(smartup, pg_url, kind, body)
    assert outcome.status == ("PARTIAL" if rejects else "SUCCESS"), outcome.error
    result = counts(outcome)
    superseded = len(records) - len(rejects) - len(accepted)
    assert result.received == len(records)
    assert result.received == (
        result.inserted + result.updated + result.unchanged + result.rejected + superseded
    )
    assert (result.inserted, result.updated, result.unchanged) == (len(accepted), 0, 0)
    assert result.rejected == len(rejects)
    logged = [e for e in logs if e["event"] == "sync.record.rejected"]
    assert sorted(map(repr, (e["record_id"] for e in logged))) == sorted(map(repr, rejects))
    assert all(isinstance(e["reason"], str) and e["reason"].strip() for e in logged)
    check_stored(pg_url, kind, accepted)

    before = snapshot(pg_url)
    again, _ = serve_and_sync(smartup, pg_url, kind, body)
    assert again.status == outcome.status
    result = counts(again)
    assert (result.inserted, result.updated) == (0, 0)
    assert (result.unchanged, result.rejected) == (len(accepted), len(rejects))
    assert snapshot(pg_url) == before


@pytest.mark.parametrize("kind", ["products", "orders"])
@examples(6, 100)
@given(data=st.data())
def test_an_answer_of_the_wrong_shape_fails_the_run_and_changes_nothing(
    kind, data, smartup, pg_url
):
    good, _, _ = data.draw(bodies(kind))
    bad = data.draw(bad_shapes(kind))
    sql(pg_url, f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    first, _ = serve_and_sync(smartup, pg_url, kind, good)
    assert first.status in ("SUCCESS", "PARTIAL")
    before = snapshot(pg_url)

    outcome, _ = serve_and_sync(smartup, pg_url, kind, bad)
    assert outcome.status == "FAILED"
    assert outcome.error and "\n" not in outcome.error and "Traceback" not in outcome.error
    assert snapshot(pg_url) == before
