"""``prices``: the price types, then every price (``product_price$export``), a snapshot."""

from __future__ import annotations

from typing import Any

from jobs.models import PriceType, ProductPrice
from jobs.pipeline.loader import LoadTarget
from jobs.pipeline.records import (
    PRICE_COLUMNS,
    PRICE_TYPE_COLUMNS,
    expand_price_entry,
    identify_price,
    identify_price_type,
    parse_price,
    parse_price_type,
)
from jobs.pipeline.streams.base import Call, Export, Span, Stream, declare
from jobs.pipeline.streams.links import PRICE_TYPE_BY_CODE, PRODUCT_BY_CODE
from jobs.pipeline.streams.pools import REFERENCE
from jobs.pipeline.streams.reach import DAY_RANGE_LIMIT, SNAPSHOT
from jobs.pipeline.streams.settle import DELETE, MARK_GONE, Settle
from jobs.settings import Settings

PRICE_TYPE_FIELDS = (
    "price_type_id",
    "code",
    "name",
    "short_name",
    "with_card",
    "state",
    "price_type_kind",
    "currency_code",
)
PRICE_TYPES_PAGE = 1000  # the v2 export answers at most this many a page

PRICE_TYPES = Export(
    name="price types",
    # v2: it can send price_type_id, which real accounts need (they leave code null on
    # their dealer and retail prices); it answers without `limits`
    path="/b/anor/api/v2/mkr/price_type$export",
    records_key="data",
    body={"column_list": list(PRICE_TYPE_FIELDS), "limit": str(PRICE_TYPES_PAGE), "offset": "0"},
    identifier=identify_price_type,
    parser=parse_price_type,
    target=LoadTarget(
        model=PriceType,
        columns=PRICE_TYPE_COLUMNS,
        key=("price_type_key",),
        referenced_by=(("product_prices", PRICE_TYPE_BY_CODE),),
    ),
    settle=Settle(
        mode=MARK_GONE,
        table="price_types",
        key_column="price_type_key",
        noun="price type",
        whole="price type",
    ),
)


class PricesStream(Stream):
    """Price types, then every price of every product (named by its code) per price type
    and card, hourly. A complete export replaces the set of prices: a price it lacks is
    deleted (nothing points at prices), with the catalogue's brake; a rejected price
    keeps its stored row, and an entry rejected whole (its ``price_type`` not a list of
    objects, or unreadable) keeps every stored price of its product.
    ``SMARTUP_PRICE_TYPE_CODES`` narrows the export."""

    name = "prices"
    path = "/b/anor/api/v2/mkf/product_price$export"
    records_key = "inventory"
    pool = REFERENCE
    reach = SNAPSHOT
    default_interval = 3600
    identifier = staticmethod(identify_price)
    parser = staticmethod(parse_price)
    target = LoadTarget(
        model=ProductPrice,
        columns=PRICE_COLUMNS,
        key=("price_key",),
        references=(PRODUCT_BY_CODE, PRICE_TYPE_BY_CODE),
    )
    settle = Settle(
        mode=DELETE,
        table="product_prices",
        key_column="price_key",
        noun="price",
        whole="price",
        holder_column="product_code",
    )
    holder_field = "inventory_code"  # an entry rejected whole keeps its product's prices

    def expand(self, record: Any) -> list[dict[str, Any]]:
        return expand_price_entry(record)

    def calls(
        self, settings: Settings, span: Span, *, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> list[Call]:
        filial = settings.smartup_filial_ids[0] if settings.smartup_filial_ids else None
        codes = list(settings.smartup_price_type_codes)
        return [
            Call(PRICE_TYPES, PRICE_TYPES.request(settings, filial_id=filial, state_key="")),
            Call(
                self,
                self.request(
                    settings,
                    filial_id=filial,
                    filters={"price_type_codes": codes} if codes else {},
                    state_key="",
                ),
            ),
        ]

    def requests_per_run(
        self, *, filials: int, settings: Settings | None, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> int:
        return 2


PRICES = declare(PricesStream())
