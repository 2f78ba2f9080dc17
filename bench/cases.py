"""The cases of the benchmark, each adding its rows (and notes) to a :class:`Bench`."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial

from bench.common import (
    FILIAL_ID,
    ORDER_DAYS,
    SEED,
    TZ,
    make_settings,
    progress,
    sync_today,
)
from bench.pg import Databases, checkpoint, fingerprint, tuples_written
from bench.raw_bound import (
    RawBound,
    Timing,
    full_row,
    median_timing,
    prepare_orders,
    prepare_products,
)
from bench.report import Row, megabytes
from bench.rss import first_sync_peak
from bench.simproc import simulator
from jobs.pipeline.records import (
    ORDER_COLUMNS,
    ORDER_ITEM_COLUMNS,
    PRODUCT_COLUMNS,
    identify_product,
    parse_product,
)
from jobs.run.sync import RunOutcome, RunRequest, run_sync
from jobs.simulator.catalogue import generate_orders, generate_products

PRODUCTS_FIRST = "products-first"
PRODUCTS_RESYNC = "products-resync"
ORDERS_FIRST = "orders-first"
ORDERS_RESYNC = "orders-resync"
MEMORY = "memory"
ORDERS_MEMORY = "orders-memory"
NAIVE = "naive"
DAY = "day"  # bench/day.py
WEEK = "week"  # bench/week.py
CASES = (
    PRODUCTS_FIRST,
    PRODUCTS_RESYNC,
    ORDERS_FIRST,
    ORDERS_RESYNC,
    MEMORY,
    ORDERS_MEMORY,
    NAIVE,
    DAY,
    WEEK,
)

# Goals of the issue.
PRODUCTS_FIRST_RATIO = 0.5
PRODUCTS_RESYNC_RATIO = 1.0
ORDERS_FIRST_RATIO = 0.85
MEMORY_LIMIT_MB = 150.0
MEMORY_GROWTH = 1.25
ORDERS_MEMORY_LIMIT_MB = 120.0
ORDERS_MEMORY_GROWTH = 1.15
NAIVE_FACTOR = 30.0

LINES_PER_ORDER = 8
MEMORY_LINES = (1, 20)  # lines per order in the orders memory case

# What two loads stored, compared row by row (ids and sync times left out).
PRODUCTS_FINGERPRINT = (
    f"SELECT count(*), md5(string_agg(row({', '.join(PRODUCT_COLUMNS)})::text, E'\\n'"
    " ORDER BY external_source, external_id)) FROM products"
)
ORDERS_FINGERPRINT = (
    f"SELECT count(*), md5(string_agg(row({', '.join(ORDER_COLUMNS)})::text, E'\\n'"
    " ORDER BY source_external_id)) FROM orders"
)
ITEMS_FINGERPRINT = (
    "SELECT count(*), md5(string_agg(row(o.source_external_id, "
    + ", ".join(f"i.{c}" for c in ORDER_ITEM_COLUMNS)
    + ")::text, E'\\n' ORDER BY o.source_external_id, i.line_no))"
    " FROM order_items i JOIN orders o ON o.id = i.order_id"
)


class BenchError(Exception):
    """A case could not be measured (a run failed, or stored something unexpected)."""


@dataclass
class Bench:
    scale: float
    cases: frozenset[str]
    dbs: Databases
    raw_runs: int = 3
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)  # printed last (the day:, week: lines)
    ours_products_rate: float | None = None

    def size(self, full: int, *, minimum: int = 1) -> int:
        return max(minimum, round(full * self.scale))

    def note(self, message: str) -> None:
        self.notes.append(message)


def _checked(outcome: RunOutcome, *, received: int, **expected: int) -> None:
    if outcome.status != "SUCCESS":
        raise BenchError(f"the run ended {outcome.status}: {outcome.error}")
    result = outcome.results[0]
    found = {"received": result.received, **{k: getattr(result, k) for k in expected}}
    wanted = {"received": received, **expected}
    if found != wanted:
        raise BenchError(f"the run counted {found}, expected {wanted}")


def _timed_sync(kind: str, url: str, base_url: str) -> tuple[RunOutcome, float]:
    gc.collect()
    checkpoint()
    started = time.perf_counter()
    settings = make_settings(url, base_url)
    # Every case asks for everything: the whole catalogue, a sweep of the orders window
    outcome = run_sync(
        RunRequest(
            kind=kind,
            settings=settings,
            days_back=ORDER_DAYS,
            full=kind == "products",
            today=sync_today(),
        )
    )
    return outcome, time.perf_counter() - started


def _same(bench: Bench, what: str, sql: str, ours: str, raw: str) -> None:
    mine, theirs = fingerprint(ours, sql), fingerprint(raw, sql)
    verdict = "identical" if mine == theirs else f"DIFFERENT ({mine} vs {theirs})"
    bench.note(f"{what} stored by the sync and by the raw bound: {mine[0]:,} rows, {verdict}")


# -- 1 and 2: products --------------------------------------------------------------


def products(bench: Bench) -> None:
    count = bench.size(100_000)
    first, resync = PRODUCTS_FIRST in bench.cases, PRODUCTS_RESYNC in bench.cases
    progress(f"products: building {count:,} rows for the raw bound")
    prepared = prepare_products(generate_products(count, seed=SEED), datetime.now(UTC))
    rows = prepared.rows  # the products and their categories (written with them)
    gc.collect()
    raw_url = bench.dbs.create("raw_products")
    raw = RawBound(raw_url)
    raw_first: Timing | None = None
    raw_noop: Timing | None = None
    raw_noop_written = 0
    try:
        progress(f"products: raw bound, first load x{bench.raw_runs}")

        def fresh() -> None:
            raw.truncate()
            checkpoint()

        runs = bench.raw_runs if first else 1
        raw_first = median_timing(runs, partial(raw.load_products, prepared), fresh)
        if raw_first.written != rows:
            raise BenchError(f"the raw bound wrote {raw_first.written} rows of {rows}")
        if resync:
            progress(f"products: raw bound, no-op merge x{bench.raw_runs}")
            raw.flush_stats()
            before = tuples_written(raw_url)
            raw_noop = median_timing(
                bench.raw_runs, partial(raw.load_products, prepared), checkpoint
            )
            raw.flush_stats()
            raw_noop_written = tuples_written(raw_url) - before
    finally:
        raw.close()
    del prepared
    gc.collect()

    ours_url = bench.dbs.create("products")
    progress(f"products: starting the simulator with {count:,} products")
    with simulator(count) as base_url:
        progress("products: first sync")
        before = tuples_written(ours_url)
        outcome, seconds = _timed_sync("products", ours_url, base_url)
        _checked(outcome, received=count, inserted=count)
        written = tuples_written(ours_url) - before
        bench.ours_products_rate = count / seconds
        if first:
            ratio = (rows / seconds) / (rows / raw_first.seconds)
            bench.rows.append(Row(
                f"products first sync ({count:,} + their categories)", rows, seconds,
                rows / raw_first.seconds, ratio, goal=f">= {PRODUCTS_FIRST_RATIO}x raw bound",
                met=ratio >= PRODUCTS_FIRST_RATIO,
            ))  # fmt: skip
            bench.note(f"products first sync: {written:,} rows written (inserted) by the sync")
        if resync:
            assert raw_noop is not None
            progress("products: unchanged re-sync")
            before = tuples_written(ours_url)
            outcome, seconds = _timed_sync("products", ours_url, base_url)
            _checked(outcome, received=count, unchanged=count, inserted=0, updated=0)
            rewritten = tuples_written(ours_url) - before
            ratio = (count / seconds) / (count / raw_noop.seconds)
            bench.rows.append(Row(
                f"products unchanged re-sync ({count:,})", count, seconds,
                count / raw_noop.seconds, ratio,
                goal=f"0 rows written; >= {PRODUCTS_RESYNC_RATIO}x raw no-op merge",
                met=rewritten == 0 and ratio >= PRODUCTS_RESYNC_RATIO,
            ))  # fmt: skip
            bench.note(
                f"products unchanged re-sync: {rewritten:,} rows written by the sync "
                f"(products+orders+order_items, pg_stat_user_tables); "
                f"{raw_noop_written:,} by the raw bound's no-op merge"
            )
    _same(bench, "products", PRODUCTS_FINGERPRINT, ours_url, raw_url)
    bench.dbs.drop(raw_url)


# -- 3: orders ----------------------------------------------------------------------


def orders(bench: Bench) -> None:
    count = bench.size(20_000)
    catalogue = bench.size(10_000, minimum=LINES_PER_ORDER)
    lines = (LINES_PER_ORDER, LINES_PER_ORDER)
    first, resync = ORDERS_FIRST in bench.cases, ORDERS_RESYNC in bench.cases
    raw_url: str | None = None
    raw_first: Timing | None = None
    rows = count * (1 + LINES_PER_ORDER)
    if first:
        progress(f"orders: building {count:,} orders x {LINES_PER_ORDER} lines for the raw bound")
        generated = generate_products(catalogue, seed=SEED)
        prepared = prepare_orders(
            generate_orders(
                count, products=generated, today=date.today(), days=ORDER_DAYS,
                filial_ids=[FILIAL_ID], lines=lines, seed=SEED,
            ),
            datetime.now(UTC),
        )  # fmt: skip
        del generated
        gc.collect()
        rows = prepared.rows
        raw_url = bench.dbs.create("raw_orders")
        raw = RawBound(raw_url)
        try:
            progress(f"orders: raw bound, first load x{bench.raw_runs}")

            def fresh() -> None:
                raw.truncate()
                checkpoint()

            raw_first = median_timing(bench.raw_runs, partial(raw.load_orders, prepared), fresh)
            if raw_first.written != rows:
                raise BenchError(f"the raw bound wrote {raw_first.written} rows of {rows}")
        finally:
            raw.close()
        del prepared
        gc.collect()

    ours_url = bench.dbs.create("orders")
    progress(f"orders: starting the simulator with {count:,} orders")
    with simulator(catalogue, count, lines=lines) as base_url:
        progress("orders: first sync")
        outcome, seconds = _timed_sync("orders", ours_url, base_url)
        _checked(outcome, received=count, inserted=count)
        if first:
            assert raw_first is not None
            ratio = (rows / seconds) / (rows / raw_first.seconds)
            bench.rows.append(Row(
                f"orders first sync ({count:,} x {LINES_PER_ORDER} lines)", rows, seconds,
                rows / raw_first.seconds, ratio, goal=f">= {ORDERS_FIRST_RATIO}x raw bound",
                met=ratio >= ORDERS_FIRST_RATIO,
            ))  # fmt: skip
            bench.note(f"orders first sync: {outcome.results[0].requests} export requests")
        if resync:
            progress("orders: unchanged re-sync")
            before = tuples_written(ours_url)
            outcome, seconds = _timed_sync("orders", ours_url, base_url)
            _checked(outcome, received=count, unchanged=count, inserted=0, updated=0)
            rewritten = tuples_written(ours_url) - before
            bench.rows.append(Row(
                f"orders unchanged re-sync ({count:,} x {LINES_PER_ORDER} lines)", rows, seconds,
                goal="0 rows written", met=rewritten == 0,
            ))  # fmt: skip
            bench.note(
                f"orders unchanged re-sync: {rewritten:,} rows written by the sync "
                f"(products+orders+order_items, pg_stat_user_tables)"
            )
    if raw_url is not None:
        _same(bench, "orders", ORDERS_FINGERPRINT, ours_url, raw_url)
        _same(bench, "order lines", ITEMS_FINGERPRINT, ours_url, raw_url)
        bench.dbs.drop(raw_url)
    bench.dbs.drop(ours_url)


# -- 4: memory ----------------------------------------------------------------------


def _peak(
    bench: Bench, count: int, *, orders: bool = False, catalogue: int = 0
) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one first sync in a fresh process: of ``count``
    products, or with ``orders``, of ``count`` orders of 1 to 20 lines (over a catalogue
    of ``catalogue`` products, which this sync does not load).

    Started through ``python -m bench.rss``, a launcher that starts the measured process
    itself, so the peak does not include what this process holds (see :mod:`bench.rss`),
    nor the simulator's (a process of its own).
    """
    what = "orders" if orders else "products"
    url = bench.dbs.create(f"rss_{what}_{count}")
    progress(f"memory: starting the simulator with {count:,} {what}")
    served = simulator(catalogue, count, lines=MEMORY_LINES) if orders else simulator(count)
    try:
        with served as base_url:
            progress(f"memory: {what} first sync of {count:,} in a fresh process")
            checkpoint()
            answer = first_sync_peak(what, count, base_url=base_url, database_url=url)
    finally:
        bench.dbs.drop(url)
    bench.note(
        f"memory {what} {count:,}: ru_maxrss {answer['max_rss_kb']:,} KiB, "
        f"VmHWM {answer['vm_hwm_kb']:,} KiB (MB in the table = 10**6 bytes)"
    )
    return float(answer["seconds"]), int(answer["max_rss_kb"])


def memory(bench: Bench) -> None:
    small, large = bench.size(20_000), bench.size(200_000)
    small_seconds, small_kb = _peak(bench, small)
    large_seconds, large_kb = _peak(bench, large)
    growth = large_kb / small_kb
    bench.rows.append(Row(
        f"memory: products first sync ({large:,})", large, large_seconds, ratio=growth,
        peak_rss_kb=large_kb,
        goal=f"<= {MEMORY_LIMIT_MB:.0f} MB; <= {MEMORY_GROWTH}x the {small:,} peak",
        met=megabytes(large_kb) <= MEMORY_LIMIT_MB and growth <= MEMORY_GROWTH,
    ))  # fmt: skip
    bench.rows.append(Row(
        f"memory: products first sync ({small:,})", small, small_seconds, peak_rss_kb=small_kb,
        goal="(baseline of the row above)",
    ))  # fmt: skip


def orders_memory(bench: Bench) -> None:
    small, large = bench.size(2_000), bench.size(50_000)
    catalogue = bench.size(10_000, minimum=MEMORY_LINES[1])
    small_seconds, small_kb = _peak(bench, small, orders=True, catalogue=catalogue)
    large_seconds, large_kb = _peak(bench, large, orders=True, catalogue=catalogue)
    growth = large_kb / small_kb
    span = f"{MEMORY_LINES[0]}-{MEMORY_LINES[1]} lines"
    bench.rows.append(Row(
        f"memory: orders first sync ({large:,}, {span})", large, large_seconds, ratio=growth,
        peak_rss_kb=large_kb,
        goal=(
            f"<= {ORDERS_MEMORY_LIMIT_MB:.0f} MB; <= {ORDERS_MEMORY_GROWTH}x the {small:,} peak"
        ),
        met=megabytes(large_kb) <= ORDERS_MEMORY_LIMIT_MB and growth <= ORDERS_MEMORY_GROWTH,
    ))  # fmt: skip
    bench.rows.append(Row(
        f"memory: orders first sync ({small:,}, {span})", small, small_seconds,
        peak_rss_kb=small_kb, goal="(baseline of the row above)",
    ))  # fmt: skip


# -- 5: naive -----------------------------------------------------------------------


def naive(bench: Bench) -> None:
    """One peewee get-then-save per record, each in autocommit, as simple workers do."""
    from jobs.models import Product, open_database

    count = bench.size(5_000)
    records = generate_products(count, seed=SEED)
    url = bench.dbs.create("naive")
    db = open_database(url)
    progress(f"naive: get-then-save of {count:,} products")
    try:
        gc.collect()
        checkpoint()
        started = time.perf_counter()
        for record in records:
            values = dict(
                zip(
                    PRODUCT_COLUMNS,
                    full_row(parse_product(record, identify_product(record), tz=TZ)),
                    strict=True,
                )
            )
            product = Product.get_or_none(
                external_source=values["external_source"], external_id=values["external_id"]
            )
            now = datetime.now(UTC)
            if product is None:
                product = Product(first_synced_at=now)
            for name, value in values.items():
                setattr(product, name, value)
            product.last_synced_at = now
            product.save()
        seconds = time.perf_counter() - started
        stored = Product.select().count()
    finally:
        db.close()
    bench.dbs.drop(url)
    if stored != count:
        raise BenchError(f"the naive loop stored {stored} products of {count}")
    rate = count / seconds
    ours = bench.ours_products_rate
    ratio = None if ours is None else ours / rate
    bench.rows.append(Row(
        f"naive get-then-save ({count:,})", count, seconds, ratio=ratio,
        goal=f"ours (products first sync) >= {NAIVE_FACTOR:.0f}x naive",
        met=None if ratio is None else ratio >= NAIVE_FACTOR,
    ))  # fmt: skip
    bench.note(
        "naive: records generated in memory (no HTTP), parse + get_or_none + save timed; "
        "ratio = products first sync rows/s (HTTP included) / naive rows/s"
    )
