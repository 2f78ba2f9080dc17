"""The two things we sync, declared: where SmartUp serves them, how a record is parsed,
and where its rows go. The engine knows streams only through these declarations.

A stream's behaviour lives in small steps a subclass may override: :meth:`Stream.requests`
(which export calls make up one sync) and :meth:`Stream.parse` (one record into rows).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta, tzinfo
from typing import Any, ClassVar

from jobs.loader import ChildTarget, LoadTarget, Reference
from jobs.records import (
    ORDER_COLUMNS,
    ORDER_ITEM_COLUMNS,
    PRODUCT_COLUMNS,
    Identity,
    ParsedRecord,
    identify_order,
    identify_product,
    parse_order,
    parse_product,
)
from jobs.settings import Settings
from jobs.smartup import ExportRequest
from models import Order, OrderItem, Product

DAY_RANGE_LIMIT = 7  # SmartUp answers date-filtered requests of at most this many days


class Stream:
    """One kind of record: products or orders."""

    name: ClassVar[str]
    records_key: ClassVar[str]  # the array in SmartUp's answer
    identifier: ClassVar[Callable[..., Identity]]
    parser: ClassVar[Callable[..., ParsedRecord]]
    target: ClassVar[LoadTarget]

    def identify(self, record: Any) -> Identity:
        """The record's id, key and content hash; rejects a record without an id."""
        return type(self).identifier(record)

    def parse(self, record: Any, identity: Identity, *, tz: tzinfo) -> ParsedRecord:
        """The record's rows; rejects a record that cannot be stored."""
        return type(self).parser(record, identity, tz=tz)

    def weight(self, record: Any) -> int:
        """How many rows the record holds, roughly: the engine holds records of a
        look-up batch up to a total weight, so memory does not grow with their size."""
        return 1

    def requests(self, settings: Settings, *, days_back: int, today: date) -> list[ExportRequest]:
        raise NotImplementedError

    def _request(self, url: str, **kwargs: Any) -> ExportRequest:
        return ExportRequest(name=self.name, url=url, records_key=self.records_key, **kwargs)


PRODUCT_BY_CODE = Reference(
    column="product_id", table="products", target_column="code", source_column="product_code"
)
ORDER_LINES = ChildTarget(
    model=OrderItem,
    columns=ORDER_ITEM_COLUMNS,
    parent_column="order_id",
    references=(PRODUCT_BY_CODE,),
)


class ProductsStream(Stream):
    """The whole catalogue in one export (SmartUp sends no modification time for products)."""

    name = "products"
    records_key = "inventory"
    identifier = staticmethod(identify_product)
    parser = staticmethod(parse_product)
    target = LoadTarget(
        model=Product,
        columns=PRODUCT_COLUMNS,
        key=("external_source", "external_id"),
        referenced_by=((ORDER_LINES, PRODUCT_BY_CODE),),
    )

    def requests(self, settings: Settings, *, days_back: int, today: date) -> list[ExportRequest]:
        filial = settings.smartup_filial_ids[0] if settings.smartup_filial_ids else None
        return [self._request(settings.products_export_url, filial_id=filial)]


class OrdersStream(Stream):
    """Orders modified in the last ``days_back`` days, per filial, in windows SmartUp allows."""

    name = "orders"
    records_key = "order"
    identifier = staticmethod(identify_order)
    parser = staticmethod(parse_order)
    target = LoadTarget(
        model=Order, columns=ORDER_COLUMNS, key=("source_external_id",), child=ORDER_LINES
    )

    def weight(self, record: Any) -> int:
        """An order and its lines: a line, as parsed by ijson, holds as much as a product."""
        lines = record.get("order_products") if isinstance(record, dict) else None
        return 1 + (len(lines) if isinstance(lines, list) else 0)

    def requests(self, settings: Settings, *, days_back: int, today: date) -> list[ExportRequest]:
        filials: tuple[str | None, ...] = settings.smartup_filial_ids or (None,)
        return [
            self._request(
                settings.orders_export_url,
                filial_id=filial,
                filters={
                    "begin_modified_on": _smartup_date(first),
                    "end_modified_on": _smartup_date(last),
                },
            )
            for filial in filials
            for first, last in date_windows(today - timedelta(days=days_back), today)
        ]


def date_windows(
    first: date, last: date, *, days: int = DAY_RANGE_LIMIT
) -> list[tuple[date, date]]:
    """``first..last`` (both included) cut into windows of at most ``days`` days, oldest first."""
    if days < 1:
        raise ValueError("a window holds at least one day")
    windows = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=days - 1))
        windows.append((start, end))
        start = end + timedelta(days=1)
    return windows


def _smartup_date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


STREAMS: dict[str, Stream] = {"products": ProductsStream(), "orders": OrdersStream()}
RUN_KINDS: dict[str, tuple[str, ...]] = {
    "products": ("products",),
    "orders": ("orders",),
    "full": ("products", "orders"),
}
