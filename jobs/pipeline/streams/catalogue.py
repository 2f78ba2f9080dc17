"""``products``: the catalogue, one export (``inventory$export``)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from jobs.models import Product
from jobs.pipeline.loader import LoadTarget
from jobs.pipeline.records import (
    PRODUCT_COLUMNS,
    Identity,
    ParsedRecord,
    identify_product,
    parse_product,
    parse_product_categories,
)
from jobs.pipeline.streams.base import Stream, declare
from jobs.pipeline.streams.links import CATEGORIES, OURS, PRODUCT_BY_CODE, PRODUCT_BY_ID
from jobs.pipeline.streams.pools import REFERENCE
from jobs.pipeline.streams.reach import MODIFIED
from jobs.pipeline.streams.settle import MARK_GONE, Settle
from jobs.settings import Settings


class ProductsStream(Stream):
    """The catalogue in one export: the whole of it, or what was modified since a day
    (``begin_modified_on``/``end_modified_on``). One catalogue, whatever the filials. A
    product's ``groups`` are its categories, replaced with it. A complete catalogue marks
    the products it lacks gone (never deleted: order lines point at them)."""

    name = "products"
    path = "/b/anor/mxsx/mr/inventory$export"
    records_key = "inventory"
    pool = REFERENCE
    reach = MODIFIED
    identifier = staticmethod(identify_product)
    parser = staticmethod(parse_product)
    target = LoadTarget(
        model=Product,
        columns=PRODUCT_COLUMNS,
        key=("external_source", "external_id"),
        child=CATEGORIES,
        referenced_by=(
            ("order_items", PRODUCT_BY_ID),
            ("stock_balances", PRODUCT_BY_ID),
            ("product_prices", PRODUCT_BY_CODE),
        ),
    )
    settle = Settle(
        mode=MARK_GONE,
        table="products",
        key_column="external_id",
        noun="product",
        whole="catalogue",
        scope=OURS,
    )

    def url(self, settings: Settings) -> str:
        return settings.smartup_inventory_export_url or super().url(settings)

    def parse(self, record: Any, identity: Identity, *, tz: tzinfo) -> ParsedRecord:
        parsed = parse_product(record, identity, tz=tz)
        return parsed._replace(children=parse_product_categories(record, identity))


PRODUCTS = declare(ProductsStream())
