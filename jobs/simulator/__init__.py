"""A SmartUp ERP simulator: its export API on loopback, with generated data and faults.

Demo, tests and benchmarks run the sync against it instead of a real SmartUp account::

    from jobs.simulator import SmartUpSimulator, generate_products

    with SmartUpSimulator(products=generate_products(1000)) as smartup:
        ...  # point the client at smartup.base_url

``python -m jobs.simulator`` runs one as a standalone process. This package uses only the
standard library and imports nothing else from ``jobs``.
"""

from jobs.simulator.catalogue import format_amount, generate_orders, generate_products
from jobs.simulator.server import (
    ORDERS_PATH,
    PRODUCTS_PATH,
    Fault,
    RecordedRequest,
    SmartUpSimulator,
)

__all__ = [
    "ORDERS_PATH",
    "PRODUCTS_PATH",
    "Fault",
    "RecordedRequest",
    "SmartUpSimulator",
    "format_amount",
    "generate_orders",
    "generate_products",
]
