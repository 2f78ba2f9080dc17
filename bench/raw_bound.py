"""The raw bound: how fast PostgreSQL itself takes the same rows into the same tables.

The rows are built before any timing, by the project's own parsers over the same
generated records the simulator serves, and encoded as COPY text. What is timed is only
what PostgreSQL has to do: ``COPY`` into a temporary staging table, then one
``INSERT ... SELECT ... ON CONFLICT DO UPDATE ... WHERE content_hash IS DISTINCT FROM``
merge (and for orders: the ids it returns, a second ``COPY`` of the lines, and one insert
of the lines joined to those ids), and the commit. No HTTP, no JSON, no Python per row.
"""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bench.common import TZ
from bench.pg import connect
from jobs.pipeline.records import (
    ORDER_COLUMNS,
    ORDER_ITEM_COLUMNS,
    PRODUCT_CATEGORY_COLUMNS,
    PRODUCT_COLUMNS,
    ParsedRecord,
    identify_order,
    identify_product,
    parse_order,
    parse_product,
    parse_product_categories,
)

SYNCED = ("first_synced_at", "last_synced_at")
PRODUCT_ROW = (*PRODUCT_COLUMNS, *SYNCED)
ORDER_ROW = (*ORDER_COLUMNS, *SYNCED)
ITEM_STAGE_ROW = ("source_external_id", *ORDER_ITEM_COLUMNS)
CATEGORY_STAGE_ROW = ("external_id", *PRODUCT_CATEGORY_COLUMNS)
COPY_READ_BYTES = 1 << 20

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False).translate(_ESCAPES)
    if isinstance(value, (int, Decimal, date, datetime)):
        return str(value)
    raise TypeError(f"no COPY text for {type(value).__name__}")


def copy_payload(rows: Iterable[Sequence[Any]]) -> bytes:
    return "".join("\t".join(map(copy_field, row)) + "\n" for row in rows).encode("utf-8")


@dataclass(frozen=True)
class ProductRows:
    """Products and their categories (a product's ``groups``, written with it)."""

    payload: bytes
    categories_payload: bytes
    products: int
    categories: int

    @property
    def rows(self) -> int:
        return self.products + self.categories


@dataclass(frozen=True)
class OrderRows:
    orders_payload: bytes
    items_payload: bytes
    orders: int
    lines: int

    @property
    def rows(self) -> int:
        return self.orders + self.lines


def full_row(parsed: ParsedRecord) -> tuple[Any, ...]:
    if parsed.row is None:
        raise ValueError(f"record {parsed.key} has no row")
    return parsed.row


def prepare_products(records: Iterable[Mapping[str, Any]], synced_at: datetime) -> ProductRows:
    rows: list[tuple[Any, ...]] = []
    categories: list[tuple[Any, ...]] = []
    for record in records:
        identity = identify_product(record)
        rows.append((*full_row(parse_product(record, identity, tz=TZ)), synced_at, synced_at))
        categories.extend(
            (identity.record_id, *row) for row in parse_product_categories(record, identity)
        )
    return ProductRows(copy_payload(rows), copy_payload(categories), len(rows), len(categories))


def prepare_orders(records: Iterable[Mapping[str, Any]], synced_at: datetime) -> OrderRows:
    orders: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    for record in records:
        parsed = parse_order(record, identify_order(record), tz=TZ)
        orders.append((*full_row(parsed), synced_at, synced_at))
        items.extend((parsed.key[0], *line) for line in parsed.children)
    return OrderRows(copy_payload(orders), copy_payload(items), len(orders), len(items))


def _merge_sql(table: str, stage: str, columns: Sequence[str], key: Sequence[str]) -> str:
    names = ", ".join(columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in (*key, SYNCED[0]))
    return (
        f"INSERT INTO {table} AS t ({names}) SELECT {names} FROM {stage}"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
        f" WHERE t.content_hash IS DISTINCT FROM EXCLUDED.content_hash"
    )


@dataclass(frozen=True)
class Timing:
    seconds: float
    written: int  # rows the merge inserted or updated (its row count)


class RawBound:
    """One psycopg2 connection to a database of its own; each load is one transaction."""

    def __init__(self, url: str) -> None:
        self.connection = connect(url)

    def close(self) -> None:
        self.connection.close()

    def flush_stats(self) -> None:
        """Have this session report its table counters now (PostgreSQL 15+)."""
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        self.connection.commit()

    def truncate(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("TRUNCATE order_items, orders, products RESTART IDENTITY CASCADE")
        self.connection.commit()

    def _stage(self, cursor: Any, stage: str, source: str, columns: Sequence[str]) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {stage}")
        cursor.execute(
            f"CREATE TEMP TABLE {stage} AS SELECT {', '.join(columns)} FROM {source} WITH NO DATA"
        )

    def _copy(self, cursor: Any, stage: str, columns: Sequence[str], payload: bytes) -> None:
        cursor.copy_expert(
            f"COPY {stage} ({', '.join(columns)}) FROM STDIN",
            io.BytesIO(payload),
            size=COPY_READ_BYTES,
        )

    def load_products(self, rows: ProductRows) -> Timing:
        connection = self.connection
        with connection.cursor() as cursor:
            self._stage(cursor, "raw_stage_products", "products", PRODUCT_ROW)
            cursor.execute(
                "CREATE TEMP TABLE raw_stage_categories AS SELECT p.external_id, "
                + ", ".join(f"c.{c}" for c in PRODUCT_CATEGORY_COLUMNS)
                + " FROM product_categories c JOIN products p ON p.id = c.product_id WITH NO DATA"
            )
            cursor.execute(
                "CREATE TEMP TABLE raw_product_ids AS SELECT id, external_id FROM products"
                " WITH NO DATA"
            )
            connection.commit()
            merge = _merge_sql(
                "products", "raw_stage_products", PRODUCT_ROW, ("external_source", "external_id")
            )
            categories = ", ".join(PRODUCT_CATEGORY_COLUMNS)
            started = time.perf_counter()
            self._copy(cursor, "raw_stage_products", PRODUCT_ROW, rows.payload)
            cursor.execute(
                f"WITH merged AS ({merge} RETURNING t.id, t.external_id)"
                " INSERT INTO raw_product_ids SELECT id, external_id FROM merged"
            )
            written = cursor.rowcount
            self._copy(cursor, "raw_stage_categories", CATEGORY_STAGE_ROW, rows.categories_payload)
            cursor.execute(
                f"INSERT INTO product_categories (product_id, {categories})"
                f" SELECT ids.id, {', '.join('s.' + c for c in PRODUCT_CATEGORY_COLUMNS)}"
                " FROM raw_stage_categories s JOIN raw_product_ids ids USING (external_id)"
            )
            written += cursor.rowcount
            connection.commit()
            seconds = time.perf_counter() - started
            cursor.execute("DROP TABLE raw_stage_products, raw_stage_categories, raw_product_ids")
            connection.commit()
        return Timing(seconds, written)

    def load_orders(self, rows: OrderRows) -> Timing:
        connection = self.connection
        with connection.cursor() as cursor:
            self._stage(cursor, "raw_stage_orders", "orders", ORDER_ROW)
            cursor.execute(
                "CREATE TEMP TABLE raw_stage_items AS SELECT o.source_external_id, "
                + ", ".join(f"i.{c}" for c in ORDER_ITEM_COLUMNS)
                + " FROM order_items i JOIN orders o ON o.id = i.order_id WITH NO DATA"
            )
            cursor.execute(
                "CREATE TEMP TABLE raw_order_ids AS SELECT id, source_external_id FROM orders"
                " WITH NO DATA"
            )
            connection.commit()
            merge = _merge_sql("orders", "raw_stage_orders", ORDER_ROW, ("source_external_id",))
            items = ", ".join(ORDER_ITEM_COLUMNS)
            started = time.perf_counter()
            self._copy(cursor, "raw_stage_orders", ORDER_ROW, rows.orders_payload)
            cursor.execute(
                f"WITH merged AS ({merge} RETURNING t.id, t.source_external_id)"
                " INSERT INTO raw_order_ids SELECT id, source_external_id FROM merged"
            )
            written = cursor.rowcount
            self._copy(cursor, "raw_stage_items", ITEM_STAGE_ROW, rows.items_payload)
            cursor.execute(
                f"INSERT INTO order_items (order_id, {items})"
                f" SELECT ids.id, {', '.join('s.' + c for c in ORDER_ITEM_COLUMNS)}"
                " FROM raw_stage_items s JOIN raw_order_ids ids USING (source_external_id)"
            )
            written += cursor.rowcount
            connection.commit()
            seconds = time.perf_counter() - started
            cursor.execute("DROP TABLE raw_stage_orders, raw_stage_items, raw_order_ids")
            connection.commit()
        return Timing(seconds, written)


def median_timing(
    runs: int, load: Callable[[], Timing], before: Callable[[], None] | None = None
) -> Timing:
    """The median of ``runs`` loads (``before`` runs untimed ahead of each)."""
    timings = []
    for _ in range(runs):
        if before is not None:
            before()
        timings.append(load())
    seconds = statistics.median(t.seconds for t in timings)
    return Timing(seconds, max(t.written for t in timings))
