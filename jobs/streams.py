"""The two things we sync, declared: where SmartUp serves them, how a record is parsed,
and where its rows go. The engine knows streams only through these declarations.

A stream's behaviour lives in small steps a subclass may override: :meth:`Stream.requests`
(which export calls make up one sync) and :meth:`Stream.parse` (one record into rows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta, tzinfo
from typing import Any, ClassVar

from jobs.loader import ChildTarget, LoadTarget, Reference
from jobs.models import Order, OrderItem, Product
from jobs.plan import DAY_RANGE_LIMIT, Reach
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

Span = Mapping[str, Reach]
"""What one run asks of a stream: per filial key (``""`` when none), how far back."""


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

    def filial_keys(self, settings: Settings) -> tuple[str, ...]:
        """The filials this stream keeps state for (``""``: requests without one)."""
        return ("",)

    def requests(self, settings: Settings, span: Span) -> list[ExportRequest]:
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
    """The catalogue in one export: the whole of it, or what was modified since a day
    (``begin_modified_on``/``end_modified_on``). One catalogue, whatever the filials."""

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

    def requests(self, settings: Settings, span: Span) -> list[ExportRequest]:
        filial = settings.smartup_filial_ids[0] if settings.smartup_filial_ids else None
        reach = span[""]
        if reach.first is None:
            return [self._request(settings.products_export_url, filial_id=filial, state_key="")]
        return [
            self._request(
                settings.products_export_url,
                filial_id=filial,
                filters=_modified(reach.first, reach.last),
                days=(reach.first, reach.last),
                state_key="",
            )
        ]


class OrdersStream(Stream):
    """Orders modified in the days asked for, per filial, in windows SmartUp allows,
    oldest first."""

    name = "orders"
    records_key = "order"
    identifier = staticmethod(identify_order)
    parser = staticmethod(parse_order)
    target = LoadTarget(
        model=Order, columns=ORDER_COLUMNS, key=("source_external_id",), child=ORDER_LINES
    )

    def weight(self, record: Any) -> int:
        """An order and its lines: a line, as read from the body, holds as much as a product."""
        lines = record.get("order_products") if isinstance(record, dict) else None
        return 1 + (len(lines) if isinstance(lines, list) else 0)

    def filial_keys(self, settings: Settings) -> tuple[str, ...]:
        return settings.smartup_filial_ids or ("",)

    def requests(self, settings: Settings, span: Span) -> list[ExportRequest]:
        requests = []
        for key in self.filial_keys(settings):
            reach = span[key]
            first = reach.first if reach.first is not None else reach.last
            for begin, end in date_windows(first, reach.last):
                requests.append(
                    self._request(
                        settings.orders_export_url,
                        filial_id=key or None,
                        filters=_modified(begin, end),
                        days=(begin, end),
                        state_key=key,
                    )
                )
        return requests


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


def _modified(first: date, last: date) -> dict[str, str]:
    return {"begin_modified_on": _smartup_date(first), "end_modified_on": _smartup_date(last)}


STREAMS: dict[str, Stream] = {"products": ProductsStream(), "orders": OrdersStream()}
RUN_KINDS: dict[str, tuple[str, ...]] = {
    "products": ("products",),
    "orders": ("orders",),
    "full": ("products", "orders"),
}
