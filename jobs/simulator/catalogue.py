"""Deterministic SmartUp-shaped data: products (``inventory``) and orders (``order``).

Everything is generated from ``random.Random(seed)``, so the same arguments always give
the same records. Values are strings, as SmartUp sends them: names mix Cyrillic and
Latin Uzbek/Russian, numbers use either decimal mark, money looks like ``"1 200 000,50"``,
and a product's ``barcodes`` is one string that may hold several barcodes (sometimes a
duplicate) separated by ``|``, ``,``, ``;`` or spaces.

Money is computed in whole tiyin (hundredths) with integers, so a line's ``sold_amount``
is exactly ``product_price`` x quantity rounded half up to two places, and an order's
``total_amount`` is exactly the sum of its lines' ``sold_amount``.
"""

# Cyrillic text is the point of this data, so ruff's confusable-letter check is off here.
# ruff: noqa: RUF001

from __future__ import annotations

import contextlib
import datetime
import gc
import random
import zlib
from collections.abc import Iterator, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["format_amount", "generate_orders", "generate_products"]

CATEGORY_COUNT = 40
"""Categories products fall into: ``product_type_id`` ``2001``..``2040`` of group ``1001``."""
RETAIL_PRICE_TYPE_ID = "3001"
"""``price_type_id`` of "Розничная цена" (its ``code`` is ``null``), on most order lines."""
WHOLESALE_PRICE_TYPE_ID = "3003"
"""``price_type_id`` of "Оптовая цена" (code ``PRCT:3``), on the other order lines."""

_CENT = Decimal("0.01")

# (base name, measure_code, sizes that fit the measure)
_PRODUCT_BASES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Молоко 3,2%", "l", ("1л", "0,9 л", "0,5л")),
    ("Кефир 2,5%", "l", ("1л", "0,5 л")),
    ("Сметана 20%", "dona", ("400 г", "200г")),
    ("Масло сливочное 72,5%", "dona", ("180 г", "500g")),
    ("Сахар-песок", "kg", ("1кг", "5 кг", "50 kg")),
    ("Мука высший сорт", "kg", ("2 кг", "10kg")),
    ("Рис девзира", "kg", ("1 кг", "на развес")),
    ("Чай зелёный №95", "pachka", ("100 г", "25 пак.")),
    ("Сок яблочный", "l", ("1л", "0,2 л")),
    ("Вода негазированная", "l", ("1,5л", "0,5 л", "5 l")),
    ("Печенье овсяное", "pachka", ("300 г", "1 кг")),
    ("Шоколад молочный", "dona", ("90 г", "100g")),
    ("Макароны спагетти", "pachka", ("400г", "1kg")),
    ("Масло подсолнечное", "l", ("1л", "5л")),
    ("Choy ko'k", "pachka", ("100g", "250 g")),
    ("Non patir", "dona", ("1 dona", "400g")),
    ("Shakar", "kg", ("1kg", "5 kg")),
    ("Guruch lazer", "kg", ("1 kg", "25kg")),
    ("Un oliy nav", "kg", ("2kg", "50 kg")),
    ("Suv gazsiz", "l", ("1,5 l", "0,5l")),
    ("Paxta yog'i", "l", ("1 l", "5l")),
    ("Qatiq 2,5%", "l", ("0,5 l", "1l")),
    ("Pishloq Gollandskiy", "kg", ("1 kg", "на развес")),
    ("Sovun xo'jalik", "dona", ("200g", "1 dona")),
    ("Tuz yodlangan", "kg", ("1kg",)),
    ("Kolbasa doktorskaya", "kg", ("1 kg", "500g")),
    ("Konfet assorti", "kg", ("1kg", "на развес")),
    ("Mineral suv Chortoq", "l", ("0,5 l", "1 l")),
)
# (brand as written in names, brand group code)
_BRANDS = (
    ("Musaffo", "BR-MUSAFFO"),
    ("Lazzat", "BR-LAZZAT"),
    ("Zilol", "BR-ZILOL"),
    ("Nestlé", "BR-NESTLE"),
    ("Ёқимли", "BR-YOQIMLI"),
    ("Oq Oltin", "BR-OQOLTIN"),
    ("Тошкент Сут", "BR-TOSHSUT"),
    ("Bonaqua", "BR-BONAQUA"),
    ("Sof", "BR-SOF"),
    ("Bahor", "BR-BAHOR"),
    ("Шифо", "BR-SHIFO"),
    ("Nur", "BR-NUR"),
)
# (weight_netto, weight_brutto): both decimal marks occur, and so do empty values.
_WEIGHTS = (
    ("0,5", "0,52"),
    ("1", "1,05"),
    ("1.25", "1.3"),
    ("0,9", "0,95"),
    ("0,25", "0,27"),
    ("2", "2,1"),
    ("5", "5.2"),
    ("", ""),
    ("0.1", "0.12"),
    ("0,18", "0,2"),
    ("", ""),
)
BRAND_NAMES: tuple[str, ...] = tuple(name for name, _ in _BRANDS)
"""Brands, in order: brand ``i`` is ``product_type_id`` ``2101 + i`` of group ``1002``."""
_LITRES = ("1", "0,5", "1,5", "0.9", "5", "0,2")
_BOX_QUANTS = ("12", "6", "24", "20", "10", "", "")
_MARKING_GROUPS = ("MILK", "WATER", "BEER", "TOBACCO")
_SECTORS = ("S01", "S02", "S03", "S04")
_BARCODE_SEPARATORS = ("|", ", ", ";", " ", ",", "; ")

# Order statuses with relative weights (most orders are past the draft stage).
_STATUSES = ("D", "B#N", "B#E", "B#W", "B#S", "B#V", "A", "C")
_STATUS_WEIGHTS = (2, 12, 8, 4, 10, 40, 14, 10)

_PERSON_NAMES = (
    'ООО "Барака Савдо"',
    "Anvar Do'kon",
    "ЧП Каримов А.",
    "Oila market",
    "Магазин «Юлдуз»",
    "Xonobod Savdo MChJ",
    "ИП Рахимова Н.",
    "Chorsu minimarket",
    'YaTT "Sardor"',
    "Супермаркет Korzinka",
)
_STAFF_NAMES = (
    "Алишер Усмонов",
    "Dilnoza Karimova",
    "Бахтиёр Юсупов",
    "Jasur Toshmatov",
    "Гульнора Ахмедова",
    "Sherzod O'ktamov",
)
_STREETS = (
    "г. Ташкент, Юнусабадский р-н, ул. Амира Темура, ",
    "Toshkent sh., Chilonzor tumani, Bunyodkor ko'chasi, ",
    "Самарканд, ул. Регистан, ",
    "Andijon sh., Navoiy shoh ko'chasi, ",
    "г. Ташкент, Мирзо-Улугбекский р-н, ул. Буюк Ипак Йули, ",
)
_NOTES = ("", "", "", "Доставить до обеда", "Tezkor yetkazib berish", "Позвонить заранее")


def format_amount(value: Decimal) -> str:
    """Format money the way SmartUp often sends it: ``Decimal("1200000.5")`` -> ``"1 200 000,50"``.

    Spaces group the thousands, a comma is the decimal mark, and there are always two
    decimals (rounded half up). Negative values keep a leading ``-``.

    Raises:
        ValueError: for NaN or infinite values.
    """
    if not value.is_finite():
        raise ValueError(f"cannot format a non-finite amount: {value}")
    cents = int(value.quantize(_CENT, rounding=ROUND_HALF_UP).scaleb(2))
    return _format_cents(cents)


def _format_cents(cents: int) -> str:
    """Format an integer number of hundredths in SmartUp style (fast path of format_amount)."""
    whole, fraction = divmod(abs(cents), 100)
    text = f"{whole:,}".replace(",", " ")
    return f"-{text},{fraction:02d}" if cents < 0 else f"{text},{fraction:02d}"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many containers.

    Generating hundreds of thousands of dicts and lists otherwise triggers repeated full
    collections that double the run time; none of the objects built here form cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _weighted_digit_sums(weights: tuple[int, int, int]) -> tuple[int, ...]:
    """For every n in 0..999: the sum of n's three digits times ``weights``."""
    return tuple(
        weights[0] * (n // 100) + weights[1] * (n // 10 % 10) + weights[2] * (n % 10)
        for n in range(1000)
    )


# EAN-13 weighs digits 1, 3, 1, 3, ... from the left. Our barcodes are "478" (4*1 + 7*3
# + 8*1 = 33), then the product index as two 3-digit blocks, then a 3-digit variant.
_EAN_PREFIX = "478"
_EAN_PREFIX_SUM = 33
_SUMS_313 = _weighted_digit_sums((3, 1, 3))
_SUMS_131 = _weighted_digit_sums((1, 3, 1))


def _product_barcode(index: int, variant: int) -> str:
    """A valid EAN-13 barcode unique to (product index mod 10**6, variant mod 1000)."""
    high, low = divmod(index % 1_000_000, 1000)
    variant %= 1000
    total = _EAN_PREFIX_SUM + _SUMS_313[high] + _SUMS_131[low] + _SUMS_313[variant]
    check = (10 - total % 10) % 10
    return f"{_EAN_PREFIX}{high:03d}{low:03d}{variant:03d}{check}"


def _barcodes_field(rng: random.Random, index: int) -> str:
    """The ``barcodes`` string: empty, one barcode, or several with mixed separators."""
    roll = rng.random()
    if roll < 0.12:
        return ""
    first = _product_barcode(index, 1)
    if roll < 0.70:
        return first
    count = 2 + int(rng.random() * 3)
    codes = [_product_barcode(index, variant) for variant in range(1, count + 1)]
    if roll > 0.93:  # a duplicate inside the string, as exports sometimes have
        codes.append(codes[0])
    separators = _BARCODE_SEPARATORS
    text = codes[0]
    for code in codes[1:]:
        text += separators[int(rng.random() * len(separators))] + code
    return text


def generate_products(count: int, *, seed: int = 1) -> list[dict[str, Any]]:
    """Generate ``count`` SmartUp products (``inventory`` records), deterministically.

    ``product_id`` is ``str(100001 + i)`` and ``code`` is ``"P00001"``-style (about 1 in
    50 is ``""``). Roughly 1 in 13 products is passive (``state == "P"``). An empty
    optional value is ``null`` on odd-numbered products and ``""`` on the others, as real
    answers mix them. ``groups`` name a category (group ``1001``, types ``2001``..``2040``)
    and often a brand (group ``1002``) by ``group_id``/``type_id``, ``type_code`` ``null``,
    matching :func:`~jobs.simulator.reference.generate_groups`.

    Args:
        count: how many products to generate (0 or more).
        seed: seed of the random generator; the same seed gives the same products.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    with gc_paused():
        return _build_products(count, random.Random(seed))


def _build_products(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """The body of generate_products (arguments already checked)."""
    rand = rng.random
    bases = _PRODUCT_BASES
    brands = _BRANDS
    weights = _WEIGHTS
    products: list[dict[str, Any]] = []
    for index in range(count):
        base, measure, sizes = bases[int(rand() * len(bases))]
        brand_index = int(rand() * len(brands))
        brand = brands[brand_index][0]
        size = sizes[int(rand() * len(sizes))]
        barcodes = _barcodes_field(rng, index)
        first_barcode = barcodes[:13]
        group_number = 1 + int(rand() * CATEGORY_COUNT)
        groups = [
            {
                "group_id": "1001",
                "group_code": "PRDGR:1",
                "type_id": str(2000 + group_number),
                "type_code": None,
            }
        ]
        if rand() < 0.5:
            groups.append(
                {
                    "group_id": "1002",
                    "group_code": "PRDGR:2",
                    "type_id": str(2101 + brand_index),
                    "type_code": None,
                }
            )
        blank = None if index % 2 else ""  # real answers send null as often as ""
        kind_roll = rand()
        inventory_kind = "G" if kind_roll < 0.96 else ("M" if kind_roll < 0.98 else "P")
        sector_roll = rand()
        sector_codes = (
            []
            if sector_roll < 0.1
            else [{"sector_code": None}]
            if sector_roll > 0.97
            else [{"sector_code": _SECTORS[int(sector_roll * 40) % 4]}]
        )
        netto, brutto = weights[int(rand() * len(weights))]
        products.append(
            {
                "product_id": str(100001 + index),
                "code": "" if rand() < 0.02 else f"P{index + 1:05d}",
                "name": f"{base} {brand} {size}",
                "short_name": f"{base} {size}",
                "measure_code": measure,
                "state": "P" if rand() < 1 / 13 else "A",
                "barcodes": barcodes,
                "weight_netto": netto or blank,
                "weight_brutto": blank if rand() < 0.3 else brutto or blank,
                "litr": _LITRES[int(rand() * len(_LITRES))] if measure == "l" else blank,
                "box_quant": _BOX_QUANTS[int(rand() * len(_BOX_QUANTS))] or blank,
                "article_code": f"ART-{index + 1:05d}" if rand() < 0.5 else blank,
                "gtin": "0" + first_barcode if first_barcode and rand() < 0.5 else blank,
                "ikpu": f"0{int(rand() * 10**16):016d}" if rand() < 0.6 else blank,
                "tnved": f"{int(rand() * 10**10):010d}" if rand() < 0.4 else blank,
                "producer_code": f"PRD{1 + int(rand() * 20):02d}" if rand() < 0.5 else blank,
                "marking_group_code": _MARKING_GROUPS[int(rand() * 4)] if rand() < 0.15 else blank,
                "order_no": str(1 + int(rand() * 999)) if rand() < 0.1 else blank,
                "groups": groups,
                "inventory_kinds": [{"inventory_kind": inventory_kind}],
                "sector_codes": sector_codes,
            }
        )
    return products


def _format_tenths(tenths: int) -> str:
    """Format a quantity given in tenths: 20 -> ``"2"``, 15 -> ``"1,5"``."""
    whole, fraction = divmod(tenths, 10)
    return str(whole) if fraction == 0 else f"{whole},{fraction}"


def retail_price_cents(product_id: str) -> int:
    """A stable unit price (in tiyin) for a product, 1 000 to 500 000 sums.

    Derived from the product id with CRC-32 (not ``hash``, which is salted per process),
    so one product keeps its price across orders and runs.
    """
    crc = zlib.crc32(product_id.encode())
    cents = (crc % 4990 + 10) * 10_000
    return cents + 50 if crc & 0x10000 else cents


def _people(
    names: Sequence[str], *, first_id: int, code_prefix: str, size: int
) -> list[tuple[str, str, str]]:
    """(id, code, name) triples for the people orders refer to (customers, staff).

    Names repeat through ``names``; from the second round on they get a number.
    """
    people = []
    for n in range(size):
        round_number, position = divmod(n, len(names))
        name = names[position] if round_number == 0 else f"{names[position]} {round_number + 1}"
        people.append((str(first_id + n), f"{code_prefix}{n + 1:04d}", name))
    return people


def generate_orders(
    count: int,
    *,
    products: Sequence[Mapping[str, Any]],
    today: datetime.date,
    days: int = 7,
    filial_ids: Sequence[str] = ("100",),
    lines: tuple[int, int] = (1, 20),
    seed: int = 1,
) -> list[dict[str, Any]]:
    """Generate ``count`` SmartUp orders, deterministically.

    ``deal_id`` is ``str(500001 + i)``, rising with ``deal_time``; deal times fall within
    the ``days`` days that end at ``today`` (inclusive). Orders go round-robin to
    ``filial_ids`` (``filial_code`` is ``"F" + filial_id``). Each order has between
    ``lines[0]`` and ``lines[1]`` lines; every line has a ``product_unit_id`` unique across
    all generated orders and refers to one of ``products`` by ``product_id``, and by
    ``product_code`` too, except that about 1 in 30 lines (and all lines of products
    without a code) give ``product_barcode`` with ``product_code`` ``null`` or ``""``, and
    about 1 in 37 lines keep an old code (``"OLD-" + code``) that no longer matches the
    product's. Lines name their price type by ``price_type_id`` (retail ``3001``, whose
    ``price_type_code`` is ``null``, or wholesale ``3003``, ``PRCT:3``).

    Args:
        count: how many orders to generate (0 or more).
        products: the products lines refer to; must not be empty when ``count > 0``.
        today: the last day deal times may fall on.
        days: how many days (ending at ``today``) deal times spread over; at least 1.
        filial_ids: organisations the orders belong to, used round-robin.
        lines: inclusive (min, max) number of lines per order; ``1 <= min <= max``.
        seed: seed of the random generator; the same arguments give the same orders.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    if days < 1:
        raise ValueError("days must be at least 1")
    min_lines, max_lines = lines
    if not 1 <= min_lines <= max_lines:
        raise ValueError("lines must be (min, max) with 1 <= min <= max")
    if not filial_ids:
        raise ValueError("filial_ids must not be empty")
    if count and not products:
        raise ValueError("orders need at least one product to refer to")
    with gc_paused():
        return _build_orders(
            count,
            products=products,
            today=today,
            days=days,
            filial_ids=filial_ids,
            lines=lines,
            rng=random.Random(seed),
        )


def _build_orders(
    count: int,
    *,
    products: Sequence[Mapping[str, Any]],
    today: datetime.date,
    days: int,
    filial_ids: Sequence[str],
    lines: tuple[int, int],
    rng: random.Random,
) -> list[dict[str, Any]]:
    """The body of generate_orders (arguments already checked)."""
    min_lines, max_lines = lines
    rand = rng.random
    customers = _people(
        _PERSON_NAMES, first_id=300001, code_prefix="C", size=max(10, min(count // 5, 5000))
    )
    managers = _people(_STAFF_NAMES, first_id=200001, code_prefix="SM", size=6)
    expeditors = _people(_STAFF_NAMES[::-1], first_id=210001, code_prefix="EX", size=4)
    rooms = [("400001", "R01", "Основной зал"), ("400002", "R02", "Ulgurji savdo")]
    catalogue: dict[int, _OrderedProduct] = {}  # filled lazily: orders may use few products

    first_moment = datetime.datetime.combine(
        today - datetime.timedelta(days=days - 1), datetime.time()
    )
    span_seconds = days * 86_400
    deal_offsets = sorted(int(rand() * span_seconds) for _ in range(count))

    orders: list[dict[str, Any]] = []
    next_unit_id = 900_000_001
    for index, offset in enumerate(deal_offsets):
        deal_time = first_moment + datetime.timedelta(seconds=offset)
        deal_day = deal_time.date()
        filial_id = str(filial_ids[index % len(filial_ids)])
        line_count = rng.randint(min_lines, max_lines)
        if line_count <= len(products):
            chosen = rng.sample(range(len(products)), line_count)
        else:
            chosen = [int(rand() * len(products)) for _ in range(line_count)]
        order_lines: list[dict[str, Any]] = []
        total_cents = 0
        for position in chosen:
            ordered = catalogue.get(position)
            if ordered is None:
                ordered = catalogue[position] = _OrderedProduct.of(products[position])
            line, sold_cents = ordered.line(rng, str(next_unit_id))
            next_unit_id += 1
            total_cents += sold_cents
            order_lines.append(line)
        person_id, person_code, person_name = customers[int(rand() * len(customers))]
        manager = managers[int(rand() * len(managers))]
        expeditor = expeditors[int(rand() * len(expeditors))]
        room = rooms[int(rand() * len(rooms))]
        status = rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0]
        delivery_day = deal_day + datetime.timedelta(days=int(rand() * 4))
        blank = None if index % 2 else ""  # real answers send null as often as ""
        orders.append(
            {
                "deal_id": str(500001 + index),
                "filial_id": filial_id,
                "filial_code": f"F{filial_id}",
                "external_id": f"EXT-{index + 1:06d}" if rand() < 0.1 else blank,
                "deal_time": deal_time.strftime("%d.%m.%Y %H:%M:%S"),
                "delivery_date": delivery_day.strftime("%d.%m.%Y"),
                "booked_date": deal_day.strftime("%d.%m.%Y"),
                "status": status,
                "total_amount": _format_cents(total_cents),
                "currency_code": "860",
                "person_id": person_id,
                "person_code": person_code,
                "person_name": person_name,
                "person_tin": str(300_000_000 + int(person_id) * 7 % 99_999_999),
                "person_latitude": f"{41.2 + (int(person_id) % 997) / 4985:.6f}",
                "person_longitude": f"{69.15 + (int(person_id) % 991) / 4955:.6f}",
                "sales_manager_id": manager[0],
                "sales_manager_code": manager[1],
                "sales_manager_name": manager[2],
                "expeditor_id": expeditor[0],
                "expeditor_code": expeditor[1],
                "expeditor_name": expeditor[2],
                "room_id": room[0],
                "room_code": room[1],
                "room_name": room[2],
                "payment_type_code": "PYMT:1" if rand() < 0.7 else "PYMT:2",
                "note": _NOTES[int(rand() * len(_NOTES))] or blank,
                "deal_note": blank if rand() < 0.8 else "Скидка согласована",
                "delivery_address_full": _STREETS[int(person_id) % len(_STREETS)]
                + str(1 + int(person_id) % 120),
                "order_products": order_lines,
                "order_gifts": [],
                "order_actions": [],
                "order_consignments": [],
            }
        )
    return orders


class _OrderedProduct:
    """What an order line needs to know about one product, precomputed once."""

    __slots__ = (
        "barcode",
        "code",
        "fractional",
        "name",
        "price_cents",
        "price_text",
        "product_id",
    )

    def __init__(
        self,
        *,
        product_id: str,
        code: str,
        barcode: str,
        name: str,
        fractional: bool,
        price_cents: int,
    ) -> None:
        self.product_id = product_id
        self.code = code
        self.barcode = barcode
        self.name = name
        self.fractional = fractional
        self.price_cents = price_cents
        self.price_text = _format_cents(price_cents)

    @classmethod
    def of(cls, product: Mapping[str, Any]) -> _OrderedProduct:
        """Take the fields an order line uses from a product record."""
        product_id = str(product.get("product_id", ""))
        barcodes = str(product.get("barcodes", "") or "")
        barcode = (
            barcodes[:13]
            if len(barcodes) >= 13
            else _product_barcode(int(product_id) if product_id.isdigit() else 0, 999)
        )
        return cls(
            product_id=product_id,
            code=str(product.get("code", "") or ""),
            barcode=barcode,
            name=str(product.get("name", "") or ""),
            fractional=product.get("measure_code") in ("kg", "l"),
            price_cents=retail_price_cents(product_id),
        )

    def line(self, rng: random.Random, product_unit_id: str) -> tuple[dict[str, Any], int]:
        """One order line for this product and its ``sold_amount`` in tiyin."""
        rand = rng.random
        tenths = 5 + int(rand() * 50) if self.fractional else 10 * (1 + int(rand() * 24))
        sold_cents = (self.price_cents * tenths + 5) // 10
        quantity = _format_tenths(tenths)
        by_barcode = not self.code or rand() < 1 / 30
        margin_percent = 5 + int(rand() * 21)
        unit_number = int(product_unit_id)
        blank = None if unit_number % 2 else ""  # null as often as ""
        if by_barcode:
            code: str | None = blank
        elif unit_number % 37 == 0:
            code = f"OLD-{self.code}"  # renamed since: the line keeps the code it had
        else:
            code = self.code
        retail = rand() < 0.6
        return (
            {
                "product_unit_id": product_unit_id,
                "product_id": self.product_id,
                "product_code": code,
                "product_barcode": self.barcode if by_barcode else blank,
                "product_name": self.name,
                "order_quant": quantity,
                "sold_quant": quantity,
                "return_quant": "0",
                "product_price": self.price_text,
                "sold_amount": _format_cents(sold_cents),
                "margin_amount": _format_cents((sold_cents * margin_percent + 50) // 100),
                "vat_percent": "12",
                "vat_amount": _format_cents((sold_cents * 12 * 2 + 112) // 224),
                "warehouse_code": "WH1" if rand() < 0.8 else "WH2",
                "price_type_id": RETAIL_PRICE_TYPE_ID if retail else WHOLESALE_PRICE_TYPE_ID,
                "price_type_code": None if retail else "PRCT:3",
                "inventory_kind": "G",
                "card_code": blank,
                "expiry_date": blank,
                "batch_number": None,
                "serial_number": None,
                "on_balance": "Y",
                "details": [],
            },
            sold_cents,
        )
