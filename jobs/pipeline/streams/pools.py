"""SmartUp's quota classes: a stream declares the pool its requests spend.

SmartUp counts its daily quota per *class* of export, shared with every other program on
the same login. Each class is a :class:`Pool`; :mod:`jobs.day.plan` shares each pool's
day among the streams that declare it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pool:
    """One quota class of SmartUp's: every export of it spends the same daily quota."""

    name: str
    default_quota: int  # requests a day until SmartUp tells its ``limit_quant``


REFERENCE = Pool("reference", 100)  # products, groups, price types, prices, warehouses
DOCUMENTS = Pool("documents", 500)  # orders, stock balances
POOLS = (REFERENCE, DOCUMENTS)
