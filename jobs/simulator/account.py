"""A whole SmartUp account in one call: products, orders and the catalogue around them.

Demo, tests and benchmarks all want the same thing, a simulator holding a shop whose
records agree with each other (order lines name its products and price types, prices and
stock name its products and warehouses)::

    account = generate_account(products=100, orders=40, today=today)
    with SmartUpSimulator(**account.as_kwargs(), user=..., password=..., today=today) as sim:
        ...

Every generator is called with the same ``seed``; each seeds a ``random.Random`` of its
own, so one record set never depends on which others were generated, or in what order.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from jobs.simulator.catalogue import generate_orders, generate_products
from jobs.simulator.reference import (
    ProductCondition,
    generate_groups,
    generate_price_types,
    generate_prices,
    generate_stock,
    generate_warehouses,
)

__all__ = ["Account", "generate_account"]


@dataclass(frozen=True)
class Account:
    """The records of one SmartUp account, named as
    :class:`~jobs.simulator.server.SmartUpSimulator` takes them.

    Frozen so that an account is not rebound field by field; the records themselves are
    plain lists and dicts, which a test may still change before handing them over.
    """

    products: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    price_types: list[dict[str, Any]]
    prices: list[dict[str, Any]]
    warehouses: list[dict[str, Any]]
    stock: dict[ProductCondition, list[dict[str, Any]]]

    def as_kwargs(self) -> dict[str, Any]:
        """The records as keyword arguments of
        :class:`~jobs.simulator.server.SmartUpSimulator` (the same lists, not copies: the
        simulator takes its own)."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


def generate_account(
    *,
    products: int = 100,
    orders: int = 40,
    today: datetime.date,
    days: int = 7,
    filial_ids: Sequence[str] = ("100",),
    lines: tuple[int, int] = (1, 20),
    price_types: Sequence[dict[str, Any]] | None = None,
    warehouses: int = 3,
    stocked_products: int | None = None,
    stock_rows: int | None = None,
    price_codeless_products: bool = True,
    seed: int = 1,
) -> Account:
    """Generate a whole account, deterministically: the same arguments give the same records.

    Args:
        products: how many products (see ``generate_products``).
        orders: how many orders, over the products (see ``generate_orders``).
        today: the last day order deal times may fall on (no default: the company's day
            depends on its time zone, which only the caller knows).
        days: how many days, ending at ``today``, the orders spread over.
        filial_ids: the filials orders belong to, round-robin.
        lines: inclusive (min, max) number of lines per order.
        price_types: the account's price types; None generates the six fixed ones.
        warehouses: how many warehouses.
        stocked_products: only the first this many products have stock; None: all.
        stock_rows: balance rows in all, over the stocked products; None: one per stocked
            product, or none when there is no warehouse to hold them.
        price_codeless_products: whether a product without a code gets its price entry
            (``inventory_code: null``, as SmartUp sends it; the sync rejects it, since
            prices name products by code only). False leaves those entries out.
        seed: the seed of every generator.
    """
    product_records = generate_products(products, seed=seed)
    order_records = generate_orders(
        orders,
        products=product_records,
        today=today,
        days=days,
        filial_ids=filial_ids,
        lines=lines,
        seed=seed,
    )
    type_records = generate_price_types(seed=seed) if price_types is None else list(price_types)
    prices = generate_prices(product_records, type_records, seed=seed)
    if not price_codeless_products:
        prices = [entry for entry in prices if entry["inventory_code"]]
    warehouse_records = generate_warehouses(warehouses, seed=seed)
    stocked = product_records if stocked_products is None else product_records[:stocked_products]
    if stock_rows is None:
        stock_rows = len(stocked) if warehouse_records else 0
    return Account(
        products=product_records,
        orders=order_records,
        groups=generate_groups(seed=seed),
        price_types=type_records,
        prices=prices,
        warehouses=warehouse_records,
        stock=generate_stock(stocked, warehouse_records, rows=stock_rows, seed=seed),
    )
