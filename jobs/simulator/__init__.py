"""A SmartUp ERP simulator: its export API on loopback, with generated data and faults.

Demo, tests and benchmarks run the sync against it instead of a real SmartUp account::

    from jobs.simulator import SmartUpSimulator, generate_products

    with SmartUpSimulator(products=generate_products(1000)) as smartup:
        ...  # point the client at smartup.base_url

Besides products and orders it serves the shop's catalogue: product groups, price types
(v1 and v2), prices, warehouses and stock balances (see :data:`PATHS`), each from its own
generator; :func:`generate_account` calls them all for a whole account::

    account = generate_account(products=100, orders=40, today=today)
    with SmartUpSimulator(**account.as_kwargs(), today=today) as smartup:
        ...

``python -m jobs.simulator`` runs one as a standalone process. This package uses only
the standard library and imports nothing else from ``jobs``.
"""

from jobs.simulator.account import Account, generate_account
from jobs.simulator.catalogue import (
    RETAIL_PRICE_TYPE_ID,
    WHOLESALE_PRICE_TYPE_ID,
    format_amount,
    generate_orders,
    generate_products,
)
from jobs.simulator.reference import (
    BRAND_GROUP_ID,
    CATEGORY_GROUP_ID,
    PRODUCT_CONDITIONS,
    ProductCondition,
    generate_groups,
    generate_price_types,
    generate_prices,
    generate_stock,
    generate_warehouses,
)
from jobs.simulator.server import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    ENDPOINT_CLASS,
    ORDERS_PATH,
    PATHS,
    PRICE_TYPES_PATH,
    PRICE_TYPES_V2_PATH,
    PRICES_PATH,
    PRODUCT_GROUPS_PATH,
    PRODUCTS_PATH,
    STOCK_PATH,
    WAREHOUSES_PATH,
    Endpoint,
    Fault,
    QuotaClass,
    RecordedRequest,
    SmartUpSimulator,
)
from jobs.simulator.stamps import CHANGE_KINDS, ChangeKind

__all__ = [
    "BRAND_GROUP_ID",
    "CATEGORY_GROUP_ID",
    "CHANGE_KINDS",
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "ENDPOINT_CLASS",
    "ORDERS_PATH",
    "PATHS",
    "PRICES_PATH",
    "PRICE_TYPES_PATH",
    "PRICE_TYPES_V2_PATH",
    "PRODUCTS_PATH",
    "PRODUCT_CONDITIONS",
    "PRODUCT_GROUPS_PATH",
    "RETAIL_PRICE_TYPE_ID",
    "STOCK_PATH",
    "WAREHOUSES_PATH",
    "WHOLESALE_PRICE_TYPE_ID",
    "Account",
    "ChangeKind",
    "Endpoint",
    "Fault",
    "ProductCondition",
    "QuotaClass",
    "RecordedRequest",
    "SmartUpSimulator",
    "format_amount",
    "generate_account",
    "generate_groups",
    "generate_orders",
    "generate_price_types",
    "generate_prices",
    "generate_products",
    "generate_stock",
    "generate_warehouses",
]
