"""Deterministic SmartUp-shaped reference data and stock: product groups, price types,
prices, warehouses and stock balances, consistent with
:func:`~jobs.simulator.catalogue.generate_products`.

The group and price-type structure is fixed (the same ids every time), so the products
that :func:`~jobs.simulator.catalogue.generate_products` makes always name existing
``product_group_id``/``product_type_id`` values, and the order lines of
:func:`~jobs.simulator.catalogue.generate_orders` name existing ``price_type_id`` and
warehouse codes. The seed varies what real answers vary: which optional values are
``null`` and which are ``""``, which prices a product has, where stock lies.
"""

# Cyrillic text is the point of this data, so ruff's confusable-letter check is off here.

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from jobs.simulator.catalogue import (
    BRAND_NAMES,
    CATEGORY_COUNT,
    RETAIL_PRICE_TYPE_ID,
    gc_paused,
    retail_price_cents,
)

__all__ = [
    "BRAND_GROUP_ID",
    "CATEGORY_GROUP_ID",
    "PRODUCT_CONDITIONS",
    "ProductCondition",
    "generate_groups",
    "generate_price_types",
    "generate_prices",
    "generate_stock",
    "generate_warehouses",
]

ProductCondition = Literal["F", "B", "T"]
PRODUCT_CONDITIONS: tuple[ProductCondition, ...] = ("F", "B", "T")
"""Stock conditions of the balance export: free, booked, in transit."""

CATEGORY_GROUP_ID = "1001"
"""``product_group_id`` of the "Категория" group; its types are ``2001``..``2040``."""
BRAND_GROUP_ID = "1002"
"""``product_group_id`` of the "Торговая_марка" group; its types are ``2101``.."""
_SECTION_GROUP_ID = "1003"

_CATEGORY_NAMES = (
    "Молочные продукты",
    "Бакалея",
    "Напитки",
    "Кондитерские изделия",
    "Ichimliklar",
    "Masalliqlar",
    "Бытовая химия",
    "Колбасные изделия",
)


def category_type_id(number: int) -> str:
    """``product_type_id`` of category ``number`` (1..40) in the "Категория" group."""
    return str(2000 + number)


def brand_type_id(index: int) -> str:
    """``product_type_id`` of brand ``index`` (0-based) in the "Торговая_марка" group."""
    return str(2101 + index)


def _category_name(number: int) -> str:
    base = _CATEGORY_NAMES[(number - 1) % len(_CATEGORY_NAMES)]
    round_number = (number - 1) // len(_CATEGORY_NAMES)
    return base if round_number == 0 else f"{base} {round_number + 1}"


# product_type_id -> (group name, type name), as balance rows name them.
_TYPE_NAMES: dict[str, tuple[str, str]] = {
    **{category_type_id(n): ("Категория", _category_name(n)) for n in range(1, CATEGORY_COUNT + 1)},
    **{brand_type_id(i): ("Торговая_марка", name) for i, name in enumerate(BRAND_NAMES)},
}


def generate_groups(*, seed: int = 1) -> list[dict[str, Any]]:
    """Product groups (``product_group$export`` records) with their types, deterministically.

    Three groups: "Категория" (:data:`CATEGORY_GROUP_ID`, 40 types), "Торговая_марка"
    (:data:`BRAND_GROUP_ID`, one type per brand) and "Группа" (4 types no product uses,
    one of them passive). A type's ``code`` is usually ``null``; ``order_no`` is ``null``
    or ``""`` where unset. ``seed`` picks which.
    """
    rng = random.Random(seed)
    rand = rng.random

    def blank() -> str | None:
        return None if rand() < 0.5 else ""

    def kind_type(type_id: str, name: str, position: int, state: str = "A") -> dict[str, Any]:
        return {
            "product_type_id": type_id,
            "code": f"T{type_id}" if rand() < 0.1 else None,
            "name": name,
            "state": state,
            "order_no": str(position) if rand() < 0.5 else blank(),
        }

    categories = [
        kind_type(category_type_id(n), _category_name(n), n) for n in range(1, CATEGORY_COUNT + 1)
    ]
    brands = [kind_type(brand_type_id(i), name, i + 1) for i, name in enumerate(BRAND_NAMES)]
    sections = [
        kind_type(str(2201 + i), name, i + 1, state="P" if i == 3 else "A")
        for i, name in enumerate(("Ulgurji", "Розница", "HoReCa", "Архив"))
    ]
    return [
        {
            "product_group_id": CATEGORY_GROUP_ID,
            "code": "PRDGR:1",
            "name": "Категория",
            "product_kind": "P",
            "state": "A",
            "product_group_types": categories,
        },
        {
            "product_group_id": BRAND_GROUP_ID,
            "code": "PRDGR:2",
            "name": "Торговая_марка",
            "product_kind": "P",
            "state": "A",
            "product_group_types": brands,
        },
        {
            "product_group_id": _SECTION_GROUP_ID,
            "code": "PRDGR:3",
            "name": "Группа",
            "product_kind": None,
            "state": "A",
            "product_group_types": sections,
        },
    ]


# (price_type_id, code, name, short_name, with_card, state, kind, currency, price factor)
_PRICE_TYPES: tuple[tuple[str, str | None, str, str, str, str, str, str | None, float], ...] = (
    ("3001", None, "Розничная цена", "Розн.", "N", "A", "S", "860", 1.0),
    ("3002", None, "Цена дилеров", "Дилер", "N", "A", "S", "860", 0.85),
    ("3003", "PRCT:3", "Оптовая цена", "Опт", "N", "A", "S", "860", 0.9),
    ("3004", "PRCT:4", "Закупочная цена", "Закуп", "Y", "A", "P", None, 0.7),
    ("3005", "PRCT:5", "Narx USD", "USD", "N", "A", "S", "840", 1 / 12_800),
    ("3006", "", "Акция (старая)", "Акция", "N", "P", "S", "860", 0.8),
)
_FACTORS = {row[0]: row[8] for row in _PRICE_TYPES}


def generate_price_types(count: int = len(_PRICE_TYPES), *, seed: int = 1) -> list[dict[str, Any]]:
    """Price types (v2 ``price_type$export`` records, with ``price_type_id``).

    The first six are fixed: "Розничная цена" (``3001``) and "Цена дилеров" (``3002``)
    have ``code`` ``null``, as on real accounts; ``3004`` is priced per card
    (``with_card: "Y"``), ``3005`` is in dollars, ``3006`` is passive with code ``""``.
    More (``count`` above six) are ``"Цена N"`` with ids from ``3007``, about half without
    a code, so paging has something to page through.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    rng = random.Random(seed)
    types: list[dict[str, Any]] = []
    for index in range(count):
        if index < len(_PRICE_TYPES):
            type_id, code, name, short, card, state, kind, currency, _ = _PRICE_TYPES[index]
        else:
            type_id = str(3001 + index)
            code = f"PRCT:{index + 1}" if rng.random() < 0.5 else None
            name, short, card, kind, currency = f"Цена {index + 1}", None, "N", "S", "860"
            state = "A" if rng.random() < 0.9 else "P"
        types.append(
            {
                "price_type_id": type_id,
                "code": code,
                "name": name,
                "short_name": short,
                "with_card": card,
                "state": state,
                "price_type_kind": kind,
                "currency_code": currency,
            }
        )
    return types


def _price_text(cents: int) -> str:
    """A price as the prices export sends it: ``"12500"`` or ``"12500.5"``."""
    whole, fraction = divmod(cents, 100)
    if fraction == 0:
        return str(whole)
    return f"{whole}.{fraction:02d}".rstrip("0")


def generate_prices(
    products: Sequence[Mapping[str, Any]],
    price_types: Sequence[Mapping[str, Any]],
    *,
    seed: int = 1,
) -> list[dict[str, Any]]:
    """Prices (``product_price$export`` entries): one entry per product, named by code.

    Each entry is ``{"inventory_code", "inventory_barcode", "price_type": [...]}`` with
    one price per active price type (about 1 in 10 missing), named by the type's ``code``
    (``null`` for types without one); a ``with_card`` type has one price per card
    (``card_code``), the others ``card_code: null``. A product without a code has
    ``inventory_code: null``. The retail price (``3001``) is the price order lines carry.
    """
    rng = random.Random(seed)
    rand = rng.random
    active = [t for t in price_types if t.get("state") == "A"]
    with gc_paused():
        entries: list[dict[str, Any]] = []
        for product in products:
            product_id = str(product.get("product_id") or "")
            base = retail_price_cents(product_id)
            barcodes = str(product.get("barcodes") or "")
            prices: list[dict[str, Any]] = []
            for price_type in active:
                if rand() < 0.1 and price_type.get("price_type_id") != RETAIL_PRICE_TYPE_ID:
                    continue
                factor = _FACTORS.get(str(price_type.get("price_type_id")), 1.0 + rand())
                cents = max(1, round(base * factor))
                cards = ("K-001", "K-002") if price_type.get("with_card") == "Y" else (None,)
                for card in cards:
                    prices.append(
                        {
                            "price_type_code": price_type.get("code"),
                            "card_code": card,
                            "price": _price_text(cents),
                        }
                    )
            entries.append(
                {
                    "inventory_code": product.get("code") or None,
                    "inventory_barcode": barcodes[:13] or None,
                    "price_type": prices,
                }
            )
    return entries


_WAREHOUSE_NAMES = ("Основной склад", "Ombor 2", "Склад возвратов", "Tranzit ombori")


def generate_warehouses(count: int = 3, *, seed: int = 1) -> list[dict[str, Any]]:
    """Warehouses (``warehouse$export`` records): ``warehouse_id`` ``"600001"``...,
    ``code`` ``"WH1"``... (the codes order lines use), and a name."""
    if count < 0:
        raise ValueError("count must not be negative")
    del seed  # nothing random yet; kept so every generator is called alike
    return [
        {
            "warehouse_id": str(600001 + index),
            "code": f"WH{index + 1}",
            "name": _WAREHOUSE_NAMES[index % len(_WAREHOUSE_NAMES)]
            + ("" if index < len(_WAREHOUSE_NAMES) else f" {index + 1}"),
        }
        for index in range(count)
    ]


_FIRST_EXPIRY = datetime.date(2026, 1, 1)


def generate_stock(
    products: Sequence[Mapping[str, Any]],
    warehouses: Sequence[Mapping[str, Any]],
    *,
    rows: int | None = None,
    seed: int = 1,
) -> dict[ProductCondition, list[dict[str, Any]]]:
    """Stock balance rows by condition (``F`` free, ``B`` booked, ``T`` in transit).

    ``rows`` rows in all (default: one per product), about 85 % free, 10 % booked, 5 % in
    transit; the row ``i`` is of product ``i mod len(products)`` in a random warehouse,
    with its own ``batch_number`` (``null`` on about 1 in 10). Rows carry every field of
    the balance export except ``date`` (the simulator adds the date asked for):
    ``quantity`` and ``input_price`` are strings, ``card_code``/``expiry_date``/
    ``serial_number`` are often ``null``, and ``groups`` hold the group's and type's
    *names*.
    """
    if rows is None:
        rows = len(products)
    if rows < 0:
        raise ValueError("rows must not be negative")
    if rows and (not products or not warehouses):
        raise ValueError("stock needs at least one product and one warehouse")
    rng = random.Random(seed)
    rand = rng.random
    stock: dict[ProductCondition, list[dict[str, Any]]] = {"F": [], "B": [], "T": []}
    product_groups: dict[int, list[dict[str, Any]]] = {}
    with gc_paused():
        for index in range(rows):
            position = index % len(products)
            product = products[position]
            warehouse = warehouses[int(rand() * len(warehouses))]
            roll = rand()
            condition: ProductCondition = "F" if roll < 0.85 else ("B" if roll < 0.95 else "T")
            groups = product_groups.get(position)
            if groups is None:
                groups = product_groups[position] = _group_names(product)
            kinds = product.get("inventory_kinds") or [{}]
            barcodes = str(product.get("barcodes") or "")
            fractional = product.get("measure_code") in ("kg", "l")
            tenths = 1 + int(rand() * 5000)
            quantity = f"{tenths // 10}.{tenths % 10}" if fractional else str(tenths)
            expiry = (
                (_FIRST_EXPIRY + datetime.timedelta(days=int(rand() * 700))).strftime("%d.%m.%Y")
                if rand() < 0.4
                else None
            )
            card_roll = rand()
            stock[condition].append(
                {
                    "inventory_kind": kinds[0].get("inventory_kind") or "G",
                    "warehouse_id": warehouse.get("warehouse_id"),
                    "warehouse_code": warehouse.get("code"),
                    "product_id": product.get("product_id"),
                    "product_code": product.get("code") or None,
                    "product_barcode": barcodes[:13] or None,
                    "card_code": "K-001" if card_roll < 0.05 else (None if card_roll < 0.6 else ""),
                    "expiry_date": expiry,
                    "serial_number": f"SN{index + 1:07d}" if rand() < 0.02 else None,
                    "batch_number": None if rand() < 0.1 else f"B{index + 1:07d}",
                    "quantity": quantity,
                    "measure_code": product.get("measure_code") or None,
                    "input_price": _price_text(
                        round(retail_price_cents(str(product.get("product_id"))) * 0.7)
                    ),
                    "groups": groups,
                }
            )
    return stock


def _group_names(product: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A product's groups as balance rows name them: group and type *names*."""
    names = []
    for group in product.get("groups") or ():
        known = _TYPE_NAMES.get(str(group.get("type_id")))
        if known is not None:
            names.append({"group_code": known[0], "type_code": known[1]})
    return names
