"""How the declared tables point at each other: the references and child rows more than
one stream names (a product is pointed at by order lines, stock rows and prices; the
rows are filled in by whichever of the two sides arrives last)."""

from __future__ import annotations

from jobs.models import OrderItem, ProductCategory, ProductType
from jobs.pipeline.loader import ChildTarget, Reference
from jobs.pipeline.records import ORDER_ITEM_COLUMNS, PRODUCT_CATEGORY_COLUMNS, PRODUCT_TYPE_COLUMNS

OURS = "external_source = 'smartup'"

PRODUCT_BY_ID = Reference(
    column="product_id",
    table="products",
    target_column="external_id",
    source_column="product_external_id",
    fallback=("code", "product_code"),
    scope=OURS,
)
"""By SmartUp's ``product_id`` when the row has one, by the product's code only when not."""

PRODUCT_BY_CODE = Reference(
    column="product_id",
    table="products",
    target_column="code",
    source_column="product_code",
    scope=OURS,
)
"""By code: all a price carries."""

PRICE_TYPE_BY_CODE = Reference(
    column="price_type_id",
    table="price_types",
    target_column="code",
    source_column="price_type_code",
    copy=(("currency_code", "currency_code"),),
)
"""A price names its type by code; its currency is the type's."""

TYPE_BY_ID = Reference(
    column="product_type_id",
    table="product_types",
    target_column="external_id",
    source_column="type_external_id",
)

WAREHOUSE_BY_ID = Reference(
    column="warehouse_id",
    table="warehouses",
    target_column="external_id",
    source_column="warehouse_external_id",
)

ORDER_LINES = ChildTarget(
    model=OrderItem,
    columns=ORDER_ITEM_COLUMNS,
    parent_column="order_id",
    references=(PRODUCT_BY_ID,),
)

CATEGORIES = ChildTarget(
    model=ProductCategory,
    columns=PRODUCT_CATEGORY_COLUMNS,
    parent_column="product_id",
    references=(TYPE_BY_ID,),
)
"""A product's ``groups``: replaced with the product."""

GROUP_TYPES = ChildTarget(
    model=ProductType,
    columns=PRODUCT_TYPE_COLUMNS,
    parent_column="group_id",
    key="external_id",
    retire=True,
)
"""A group's types: upserted by their own id; those a changed group no longer lists are
marked gone, never deleted (categories point at them)."""
