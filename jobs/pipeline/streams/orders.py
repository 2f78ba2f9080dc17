"""``orders``: orders modified in the days asked for, per filial (``order$export``)."""

from __future__ import annotations

from jobs.models import Order
from jobs.pipeline.loader import LoadTarget
from jobs.pipeline.records import ORDER_COLUMNS, identify_order, parse_order
from jobs.pipeline.smartup import ExportRequest
from jobs.pipeline.streams.base import (
    Span,
    Stream,
    declare,
    incremental_cost,
    windowed_cost,
    windowed_requests,
)
from jobs.pipeline.streams.links import ORDER_LINES
from jobs.pipeline.streams.pools import DOCUMENTS
from jobs.pipeline.streams.reach import DAY_RANGE_LIMIT, MODIFIED_WINDOWS
from jobs.settings import Settings


class OrdersStream(Stream):
    """Orders modified in the days asked for, per filial, in windows SmartUp allows,
    oldest first. Their lines point at products by SmartUp's ``product_id``."""

    name = "orders"
    path = "/b/trade/txs/tdeal/order$export"
    records_key = "order"
    pool = DOCUMENTS
    reach = MODIFIED_WINDOWS
    identifier = staticmethod(identify_order)
    parser = staticmethod(parse_order)
    target = LoadTarget(
        model=Order, columns=ORDER_COLUMNS, key=("source_external_id",), child=ORDER_LINES
    )
    # An order weighs as much as its lines: a line, as read from the body, holds as much
    # as a product.
    child_rows_field = "order_products"

    def filial_keys(self, settings: Settings) -> tuple[str, ...]:
        return settings.smartup_filial_ids or ("",)

    def requests(
        self, settings: Settings, span: Span, *, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> list[ExportRequest]:
        return windowed_requests(
            self, settings, span, self.filial_keys(settings), day_range_limit=day_range_limit
        )

    def requests_per_run(
        self, *, filials: int, settings: Settings | None, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> int:
        return incremental_cost(filials, day_range_limit)

    def requests_per_sweep(
        self, *, filials: int, days_back: int, day_range_limit: int, settings: Settings | None
    ) -> int:
        return windowed_cost(filials, days_back, day_range_limit)


ORDERS = declare(OrdersStream())
