"""Bench cases of the shop's catalogue: a stock snapshot and the prices.

- ``stock``: a stock sync of 100,000 balance rows (one condition, one filial) from the
  simulator (a process of its own), first into empty tables and then unchanged, against
  the raw bound's first load and no-op merge of the same rows (goals: first >= 0.5x the
  raw bound; the unchanged re-sync writes 0 rows).
- ``stock-memory``: peak RSS of a stock first sync of 100,000 and of 10,000 rows, each in a
  fresh process (goal: <= 1.25x the 10,000 peak).
- ``prices``: a prices sync of 100,000 products x 3 price types (``PRCT:3``, ``PRCT:4``
  with two cards, ``PRCT:5``: ``SMARTUP_PRICE_TYPE_CODES``), first and unchanged, against
  the raw bound (same goals). Prices of products without a code are rejected by the
  parser (they cannot be told apart), as in a real account; they are not counted.
"""

from __future__ import annotations

import gc
import io
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bench.common import SEED, TZ, make_settings, progress, sync_today
from bench.pg import checkpoint, fingerprint, tuples_written
from bench.raw_bound import COPY_READ_BYTES, RawBound, Timing, copy_payload, median_timing
from bench.report import Row
from bench.rss import first_sync_peak
from bench.simproc import simulator
from jobs.pipeline.records import (
    BALANCE_COLUMNS,
    PRICE_COLUMNS,
    RecordRejected,
    expand_price_entry,
    identify_balance,
    identify_price,
    parse_balance,
    parse_price,
)
from jobs.run.sync import RunOutcome, RunRequest, run_sync
from jobs.settings import Settings
from jobs.simulator import (
    generate_price_types,
    generate_prices,
    generate_products,
    generate_stock,
    generate_warehouses,
)

STOCK = "stock"
STOCK_MEMORY = "stock-memory"
PRICES = "prices"
CASES = (STOCK, STOCK_MEMORY, PRICES)

FIRST_RATIO = 0.5
MEMORY_GROWTH = 1.25
WAREHOUSES = 3
PRICE_TYPE_CODES = ("PRCT:3", "PRCT:4", "PRCT:5")
CATALOGUE_TABLES = ("stock_balances", "warehouses", "product_prices", "price_types")
SYNCED = ("first_synced_at", "last_synced_at")


class CatalogueBenchError(Exception):
    """A case could not be measured."""


def settings_for(url: str, base_url: str, stream: str) -> Settings:
    base = make_settings(url, base_url)
    return Settings(
        **{
            **base.__dict__,
            "sync_streams": (*base.sync_streams, stream),
            "smartup_price_type_codes": PRICE_TYPE_CODES,
        }
    )


def _timed(kind: str, url: str, base_url: str) -> tuple[RunOutcome, float]:
    gc.collect()
    checkpoint()
    started = time.perf_counter()
    outcome = run_sync(
        RunRequest(kind=kind, settings=settings_for(url, base_url, kind), today=sync_today())
    )
    return outcome, time.perf_counter() - started


def _result(outcome: RunOutcome) -> Any:
    if outcome.status not in ("SUCCESS", "PARTIAL") or outcome.results[0].error:
        raise CatalogueBenchError(f"the run ended {outcome.status}: {outcome.error}")
    return outcome.results[0]


def _raw_load(
    raw: RawBound, table: str, columns: Sequence[str], key: str, payload: bytes
) -> Timing:
    """The raw bound of one table: COPY into a staging table, one merge, the commit."""
    connection = raw.connection
    row = (*columns, *SYNCED)
    names = ", ".join(row)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in row if c not in (key, SYNCED[0]))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS raw_stage")
        cursor.execute(f"CREATE TEMP TABLE raw_stage AS SELECT {names} FROM {table} WITH NO DATA")
        connection.commit()
        started = time.perf_counter()
        cursor.copy_expert(
            f"COPY raw_stage ({names}) FROM STDIN", io.BytesIO(payload), size=COPY_READ_BYTES
        )
        cursor.execute(
            f"INSERT INTO {table} AS t ({names}) SELECT {names} FROM raw_stage"
            f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
            f" WHERE t.content_hash IS DISTINCT FROM EXCLUDED.content_hash"
        )
        written = cursor.rowcount
        connection.commit()
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE raw_stage")
        connection.commit()
    return Timing(seconds, written)


def _rows(parsed: Iterable[tuple[Any, ...]], synced_at: datetime) -> tuple[bytes, int]:
    rows = [(*row, synced_at, synced_at) for row in parsed]
    return copy_payload(rows), len(rows)


def _balance_rows(stock: Sequence[Mapping[str, Any]]) -> Iterable[tuple[Any, ...]]:
    latest: dict[Any, tuple[Any, ...]] = {}  # the same key twice: the last one wins
    for record in stock:
        identity = identify_balance(record, condition="F")
        row = parse_balance(record, identity, tz=TZ, condition="F").row
        assert row is not None
        latest[identity.key] = row
    return latest.values()


def _price_rows(entries: Sequence[Mapping[str, Any]]) -> Iterable[tuple[Any, ...]]:
    latest: dict[Any, tuple[Any, ...]] = {}
    for entry in entries:
        for record in expand_price_entry(entry):
            if record["price_type_code"] not in PRICE_TYPE_CODES:
                continue
            try:
                identity = identify_price(record)
                row = parse_price(record, identity, tz=TZ).row
            except RecordRejected:
                continue  # a product without a code: rejected by the sync too
            assert row is not None
            latest[identity.key] = row
    return latest.values()


def _first_and_unchanged(
    bench: Any,
    *,
    label: str,
    kind: str,
    table: str,
    columns: Sequence[str],
    key: str,
    payload: bytes,
    rows: int,
    served: Any,
) -> None:
    """The raw bound's first load and no-op merge, then ours, first and unchanged."""
    raw_url = bench.dbs.create(f"raw_{kind}")
    raw = RawBound(raw_url)
    try:
        progress(f"{kind}: raw bound, first load x{bench.raw_runs}")

        def fresh() -> None:
            with raw.connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {table} RESTART IDENTITY CASCADE")
            raw.connection.commit()
            checkpoint()

        load = partial(_raw_load, raw, table, columns, key, payload)
        raw_first = median_timing(bench.raw_runs, load, fresh)
        if raw_first.written != rows:
            raise CatalogueBenchError(f"the raw bound wrote {raw_first.written} rows of {rows}")
        raw_noop = median_timing(bench.raw_runs, load, checkpoint)
    finally:
        raw.close()
    bench.dbs.drop(raw_url)
    gc.collect()

    ours_url = bench.dbs.create(kind)
    with served as base_url:
        progress(f"{kind}: first sync")
        outcome, seconds = _timed(kind, ours_url, base_url)
        _result(outcome)
        stored = fingerprint(ours_url, f"SELECT count(*) FROM {table}")[0]
        if stored != rows:  # (the stream's count includes its price types or warehouses)
            raise CatalogueBenchError(f"the sync stored {stored} rows of {rows}")
        ratio = (rows / seconds) / (rows / raw_first.seconds)
        bench.rows.append(Row(
            f"{label} first sync ({rows:,})", rows, seconds, rows / raw_first.seconds, ratio,
            goal=f">= {FIRST_RATIO}x raw bound", met=ratio >= FIRST_RATIO,
        ))  # fmt: skip
        progress(f"{kind}: unchanged re-sync")
        before = tuples_written(ours_url, CATALOGUE_TABLES)
        outcome, seconds = _timed(kind, ours_url, base_url)
        result = _result(outcome)
        rewritten = tuples_written(ours_url, CATALOGUE_TABLES) - before
        changed = result.inserted + result.updated + result.gone
        ratio = (rows / seconds) / (rows / raw_noop.seconds)
        bench.rows.append(Row(
            f"{label} unchanged re-sync ({rows:,})", rows, seconds, rows / raw_noop.seconds,
            ratio, goal="0 rows written", met=rewritten == 0 and changed == 0,
        ))  # fmt: skip
        bench.note(
            f"{label} unchanged re-sync: {rewritten:,} rows written "
            f"({', '.join(CATALOGUE_TABLES)}, pg_stat_user_tables)"
        )
    bench.dbs.drop(ours_url)


def stock(bench: Any) -> None:
    count = bench.size(100_000)
    products = bench.size(20_000)
    progress(f"stock: building {count:,} balance rows for the raw bound")
    generated = generate_products(products, seed=SEED)
    balance = generate_stock(
        generated, generate_warehouses(WAREHOUSES, seed=SEED), rows=count, seed=SEED
    )["F"]
    del generated
    payload, rows = _rows(_balance_rows(balance), datetime.now(UTC))
    del balance
    _first_and_unchanged(
        bench,
        label="stock snapshot",
        kind="stock",
        table="stock_balances",
        columns=BALANCE_COLUMNS,
        key="balance_key",
        payload=payload,
        rows=rows,
        served=simulator(products, 0, stock_rows=count, warehouses=WAREHOUSES),
    )


def prices(bench: Any) -> None:
    products = bench.size(100_000)
    progress(f"prices: building the prices of {products:,} products for the raw bound")
    generated = generate_products(products, seed=SEED)
    entries = generate_prices(generated, generate_price_types(seed=SEED), seed=SEED)
    del generated
    payload, rows = _rows(_price_rows(entries), datetime.now(UTC))
    del entries
    _first_and_unchanged(
        bench,
        label=f"prices ({len(PRICE_TYPE_CODES)} price types)",
        kind="prices",
        table="product_prices",
        columns=PRICE_COLUMNS,
        key="price_key",
        payload=payload,
        rows=rows,
        served=simulator(products, 0),
    )


def _peak(bench: Any, rows: int, products: int) -> tuple[float, int]:
    url = bench.dbs.create(f"rss_stock_{rows}")
    try:
        with simulator(products, 0, stock_rows=rows, warehouses=WAREHOUSES) as base_url:
            progress(f"stock memory: first sync of {rows:,} rows in a fresh process")
            checkpoint()
            answer = first_sync_peak("stock", rows, base_url=base_url, database_url=url)
    finally:
        bench.dbs.drop(url)
    return float(answer["seconds"]), int(answer["max_rss_kb"])


def stock_memory(bench: Any) -> None:
    small, large = bench.size(10_000), bench.size(100_000)
    products = bench.size(20_000)
    small_seconds, small_kb = _peak(bench, small, products)
    large_seconds, large_kb = _peak(bench, large, products)
    growth = large_kb / small_kb
    bench.rows.append(Row(
        f"memory: stock first sync ({large:,})", large, large_seconds, ratio=growth,
        peak_rss_kb=large_kb, goal=f"<= {MEMORY_GROWTH}x the {small:,} peak",
        met=growth <= MEMORY_GROWTH,
    ))  # fmt: skip
    bench.rows.append(Row(
        f"memory: stock first sync ({small:,})", small, small_seconds, peak_rss_kb=small_kb,
        goal="(baseline of the row above)",
    ))  # fmt: skip
