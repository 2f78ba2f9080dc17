"""A loopback HTTP server that speaks SmartUp's export API (see ``SMARTUP_API.md``).

:class:`SmartUpSimulator` answers ``POST`` requests to the products export
(:data:`PRODUCTS_PATH`), the orders export (:data:`ORDERS_PATH`) and the catalogue's
exports (groups, price types v1 and v2, prices, warehouses, stock; :data:`PATHS` names
them all) the way SmartUp does: HTTP Basic auth, the ``project_code`` and ``filial_id``
headers, body filters with ``dd.mm.yyyy`` dates, the day-range limit, a ``limits`` object
in answers, daily quotas shared by a class of exports, and plain-text (often Russian)
error bodies. Scripted :class:`Fault` objects make it misbehave
on purpose (error statuses, delays, bodies that break off, HTML instead of JSON, dropped
connections) so clients can be tested against what a real account does under load.

Every record is kept as its encoded JSON bytes, re-encoded only when it changes, and
answers are streamed with ``Transfer-Encoding: chunked``, so even 200,000 products are
served quickly. Each request sees one consistent snapshot of the data.
"""

# Error messages are Russian, as SmartUp's are; ruff's confusable-letter check is off.
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import hmac
import json
import os
import threading
import time
import zoneinfo
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from jobs.simulator.catalogue import gc_paused
from jobs.simulator.faults import (
    AUTH_REQUIRED,
    DEFAULT_MESSAGES,
    PROJECT_INVISIBLE,
    Answer,
    ExportAnswer,
    Fault,
    PlainAnswer,
    faulted_export,
    scripted_answer,
)
from jobs.simulator.filters import (
    BalanceFilters,
    JSONRejection,
    OrderFilters,
    Page,
    ProductFilters,
    Rejection,
    parse_body,
    price_type_codes,
)
from jobs.simulator.http import RecordedRequest, SimulatorHTTPServer
from jobs.simulator.reference import PRODUCT_CONDITIONS, ProductCondition
from jobs.simulator.stamps import ChangeKind, ChangeStamps, Clock
from jobs.simulator.tables import (
    ENCODER,
    EntryT,
    OrderEntry,
    PriceEntry,
    ProductEntry,
    StockEntry,
    Table,
    encode_record,
    order_entry,
    price_entry,
    product_entry,
    stock_entry,
)

__all__ = [
    "ENDPOINT_CLASS",
    "ORDERS_PATH",
    "PATHS",
    "PRICES_PATH",
    "PRICE_TYPES_PATH",
    "PRICE_TYPES_V2_PATH",
    "PRODUCTS_PATH",
    "PRODUCT_GROUPS_PATH",
    "STOCK_PATH",
    "WAREHOUSES_PATH",
    "Endpoint",
    "Fault",
    "QuotaClass",
    "RecordedRequest",
    "SmartUpSimulator",
]

PRODUCTS_PATH = "/b/anor/mxsx/mr/inventory$export"
"""Path of the products (``inventory``) export."""

ORDERS_PATH = "/b/trade/txs/tdeal/order$export"
"""Path of the orders (``order``) export."""

PRODUCT_GROUPS_PATH = "/b/anor/mxsx/mr/product_group$export"
"""Path of the product groups (``product_group``) export."""

PRICE_TYPES_PATH = "/b/anor/mxs/mkr/price_type$export"
"""Path of the v1 price types (``price_type``) export: no ids, codes often null."""

PRICE_TYPES_V2_PATH = "/b/anor/api/v2/mkr/price_type$export"
"""Path of the v2 price types export: ``{"count", "data"}`` pages with ``price_type_id``."""

PRICES_PATH = "/b/anor/api/v2/mkf/product_price$export"
"""Path of the prices (``product_price``) export, answered as ``{"inventory": [...]}``."""

STOCK_PATH = "/b/anor/mxsx/mkw/balance$export"
"""Path of the stock balances (``balance``) export."""

WAREHOUSES_PATH = "/b/anor/mxsx/mkw/warehouse$export"
"""Path of the warehouses (``warehouse``) export (header ``project_code: anor``)."""

Endpoint = Literal[
    "products",
    "orders",
    "product_groups",
    "price_types",
    "price_types_v2",
    "prices",
    "stock",
    "warehouses",
]
"""Name of one export, as :class:`RecordedRequest` and the fault and quota calls use it."""

QuotaClass = Literal["reference", "documents"]
"""A class of exports that share one daily quota (see ``SMARTUP_API.md``)."""

PATHS: dict[Endpoint, str] = {
    "products": PRODUCTS_PATH,
    "orders": ORDERS_PATH,
    "product_groups": PRODUCT_GROUPS_PATH,
    "price_types": PRICE_TYPES_PATH,
    "price_types_v2": PRICE_TYPES_V2_PATH,
    "prices": PRICES_PATH,
    "stock": STOCK_PATH,
    "warehouses": WAREHOUSES_PATH,
}
"""The path of every export the simulator serves, by endpoint name."""

ENDPOINT_CLASS: dict[Endpoint, QuotaClass] = {
    "products": "reference",
    "product_groups": "reference",
    "price_types": "reference",
    "price_types_v2": "reference",
    "prices": "reference",
    "warehouses": "reference",
    "orders": "documents",
    "stock": "documents",
}
"""The quota class each export spends."""

_ENDPOINT_BY_PATH: dict[str, Endpoint] = {path: name for name, path in PATHS.items()}
_ARRAY_KEY: dict[Endpoint, str] = {
    "products": "inventory",
    "orders": "order",
    "product_groups": "product_group",
    "price_types": "price_type",
    "prices": "inventory",
    "stock": "balance",
    "warehouses": "warehouse",
}
_DAILY_LIMIT: dict[QuotaClass, int] = {"reference": 100, "documents": 500}
_PRICE_TYPE_COLUMNS = (
    "price_type_id",
    "code",
    "name",
    "short_name",
    "with_card",
    "state",
    "price_type_kind",
    "currency_code",
)
QuotaRefusal = Literal["429", "200"]
_QUOTA_SPENT = "Превышен дневной лимит запросов ({limit}); повторите завтра"
_DEFAULT_TIMEZONE = "Asia/Tashkent"
DEFAULT_USER = "demo@smartup"
"""The Basic-auth login a simulator accepts unless told otherwise."""
DEFAULT_PASSWORD = "demo-secret"
"""The password a simulator accepts unless told otherwise."""


_GENERATED_ON = datetime.date(2026, 1, 1)
"""created_on / modified_on of every product loaded with set_products (or the constructor)."""

_BAD_BODY = "Неверный формат запроса: тело должно быть JSON-объектом"


def _quota_class(name: str) -> QuotaClass:
    """The quota class named by ``name``: a class itself or an endpoint of it."""
    if name in _DAILY_LIMIT:
        return name
    if name in ENDPOINT_CLASS:
        return ENDPOINT_CLASS[name]
    raise ValueError(f"no export or quota class is called {name!r}")


# --- the simulator ----------------------------------------------------------------------


class SmartUpSimulator:
    """SmartUp's exports (products, orders and the shop's catalogue), served over HTTP on
    loopback.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        with SmartUpSimulator(products=generate_products(100)) as smartup:
            requests.post(smartup.base_url + PRODUCTS_PATH, json={},
                          auth=("demo@smartup", "demo-secret"),
                          headers={"project_code": "trade"})

    Every export (see :data:`PATHS`) is a ``POST``, checked in this order, every refusal
    being plain text unless said otherwise:

    1. The next scripted :class:`Fault` for that endpoint, if any, is consumed (before any
       other check; see :class:`Fault` for what each kind does).
    2. The warehouse export, when ``warehouses_status`` is set, answers that status
       (e.g. 404 or 481 "Проект невидим"), as accounts that do not serve it do.
    3. HTTP Basic auth: missing or wrong -> 401 "Требуется авторизация".
    4. ``project_code`` header not in ``project_codes`` (for the warehouse export: not
       ``anor``) -> 481 "Проект невидим".
    5. ``filial_id`` header not in ``filial_ids`` (when given) -> 401. A request without
       the header is accepted.
    6. The quota class of the export is spent (more POSTs today to exports of that class
       than ``quotas`` allows) -> a refusal shaped as ``quota_refusal`` says: ``"429"``
       answers 429 with a plain Russian "лимит" message, ``"200"`` answers 200 with the
       same text (SmartUp does not document which it sends).
    7. Body not a JSON object (an empty body counts as ``{}``) -> 400.
    8. A date filter not ``dd.mm.yyyy`` -> 400 "A02-24-050 Неверный формат даты: ...";
       for the balance export, ``begin_date``/``end_date`` missing, malformed or reversed
       -> 400 JSON ``{"error_code": "A02-24-122", ...}``.
    9. A begin/end pair of dates that spans more than that export's day-range limit
       (inclusive) -> 400 "A02-24-051 ...".

    Then the records are sent as ``{"<array>": [...], "limits": {...}}`` (the v2 price
    types export: ``{"count": "N", "data": [...]}`` without ``limits``; the prices export
    without ``limits`` when ``prices_limits`` is false). ``limits.request_quant`` counts
    every POST today to the exports of that quota class (``reference``: products, groups,
    price types, prices, warehouses; ``documents``: orders, stock), this one included, and
    what :meth:`spend_quota` says other programs spent; ``left_limit_quant`` is what is
    left of the class's quota.

    The simulator has its own day clock (:attr:`today`) in the company's time zone
    (``timezone``): it follows that zone's date unless ``today`` fixes it, and
    :meth:`advance_day` moves it forward. A new day resets every quota; edits are dated by
    it; the balance export dates its rows by the day asked for.

    Products carry no dates, so the simulator keeps ``created_on``/``modified_on`` per
    product beside the data (01.01.2026 when loaded; :meth:`update_product` and
    :meth:`add_products` set ``modified_on`` to today). An order's ``created_on`` is its
    deal date and its ``modified_on`` is the deal date until :meth:`update_order` changes it.

    Every change made through its methods (update, add, remove, set a price or a
    quantity) is stamped with the moment it was made, by ``clock`` (default: the wall
    clock): :meth:`changed_at` and :meth:`removed_at` give the stamps, kept beside the
    data and never served (see :mod:`jobs.simulator.stamps`).

    Other paths answer 404, other methods on the export paths 405.
    """

    def __init__(
        self,
        *,
        products: Sequence[Mapping[str, Any]] = (),
        orders: Sequence[Mapping[str, Any]] = (),
        groups: Sequence[Mapping[str, Any]] = (),
        price_types: Sequence[Mapping[str, Any]] = (),
        prices: Sequence[Mapping[str, Any]] = (),
        warehouses: Sequence[Mapping[str, Any]] = (),
        stock: Mapping[ProductCondition, Sequence[Mapping[str, Any]]] | None = None,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        project_codes: Collection[str] = ("trade", "anor"),
        filial_ids: Collection[str] | None = None,
        day_range_limit: int = 7,
        day_range_limits: Mapping[Endpoint, int] | None = None,
        limits_first: bool = False,
        prices_limits: bool = True,
        warehouses_status: int | None = None,
        today: datetime.date | None = None,
        timezone: str | None = None,
        quotas: Mapping[str, int] | None = None,
        quota_refusal: QuotaRefusal = "429",
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Load the data; nothing is served until :meth:`start`.

        Args:
            products: product records (``inventory``), in export order; JSON-serialisable.
            orders: order records, in export order; JSON-serialisable.
            groups: product groups (see ``generate_groups``); none: an empty array.
            price_types: price types with ``price_type_id`` (see ``generate_price_types``);
                the v1 export leaves the id out.
            prices: prices export entries (see ``generate_prices``).
            warehouses: warehouse records (see ``generate_warehouses``).
            stock: balance rows by condition ``F``/``B``/``T`` (see ``generate_stock``).
            user: the Basic-auth login that is accepted.
            password: the Basic-auth password that is accepted.
            project_codes: accepted values of the ``project_code`` header.
            filial_ids: accepted values of the ``filial_id`` header; None accepts any.
            day_range_limit: how many days (inclusive) a date window may span, for every
                export not in ``day_range_limits``; answered as ``limits.day_range_limit``.
            day_range_limits: that limit for some exports, by endpoint name.
            limits_first: put ``limits`` before the records array instead of after it.
            prices_limits: whether the prices export carries ``limits`` (not known of
                SmartUp; on by default).
            warehouses_status: when set, the warehouse export answers this status (404,
                481 ...) with SmartUp's message instead of the warehouses.
            today: fix the company day to this date (default: the date in ``timezone``).
            timezone: the company's IANA time zone (default: ``SMARTUP_TIMEZONE``, else
                Asia/Tashkent).
            quotas: requests a day by quota class (``reference`` 100, ``documents`` 500 by
                default); an endpoint name sets its class's quota.
            quota_refusal: how a request over the quota is refused: ``"429"`` or ``"200"``.
            clock: what time it is when a record changes (aware datetimes), for the change
                stamps (see :meth:`changed_at`); default: the wall clock, in UTC.
            host: address to listen on.
            port: port to listen on; 0 picks a free one.

        Raises:
            ValueError: a day-range limit below 1, or an unknown time zone or quota name.
        """
        limits = {**dict.fromkeys(PATHS, day_range_limit), **(day_range_limits or {})}
        if min(limits.values()) < 1:
            raise ValueError("day_range_limit must be at least 1")
        zone_name = timezone or os.environ.get("SMARTUP_TIMEZONE") or _DEFAULT_TIMEZONE
        try:
            self.timezone = zoneinfo.ZoneInfo(zone_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone_name!r}") from None
        self._credentials = f"{user}:{password}".encode()
        self._project_codes = frozenset(project_codes)
        self._filial_ids = None if filial_ids is None else frozenset(map(str, filial_ids))
        self._day_range_limits: dict[Endpoint, int] = limits
        self._limits_first = limits_first
        self._prices_limits = prices_limits
        self.warehouses_status = warehouses_status
        self._address = (host, port)

        self._lock = threading.Lock()
        self._stamps = ChangeStamps(clock)
        self._products: Table[ProductEntry] = Table(lambda entry: entry.product_id)
        self._orders: Table[OrderEntry] = Table(lambda entry: entry.deal_id)
        self._groups: list[dict[str, Any]] = []
        self._price_types: list[dict[str, Any]] = []
        self._warehouses: list[dict[str, Any]] = []
        self._prices: list[PriceEntry] = []
        self._stock: list[StockEntry] = []
        self._faults: dict[Endpoint, deque[Fault]] = {name: deque() for name in PATHS}
        self._bytes_served: dict[Endpoint, int] = dict.fromkeys(PATHS, 0)
        self._fixed_today = today
        self._day_offset = 0
        self._counted_day = self._current_day()
        self._request_counts: dict[QuotaClass, int] = dict.fromkeys(_DAILY_LIMIT, 0)
        self._quotas: dict[QuotaClass, int] = dict(_DAILY_LIMIT)
        for name, limit in (quotas or {}).items():
            self._quotas[_quota_class(name)] = limit
        self.quota_refusal: QuotaRefusal = quota_refusal
        self.requests: list[RecordedRequest] = []
        """Every request received, in the order they were answered."""

        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self.set_products(products)
        self.set_orders(orders)
        self.set_groups(groups)
        self.set_price_types(price_types)
        self.set_prices(prices)
        self.set_warehouses(warehouses)
        self.set_stock(stock or {})

    # -- lifecycle --

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` of the running server (export paths go right after)."""
        if self._base_url is None:
            raise RuntimeError("the simulator has not been started")
        return self._base_url

    def start(self) -> SmartUpSimulator:
        """Start serving in a background thread; returns self."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        server = SimulatorHTTPServer(self._address, self)
        port = server.server_port
        self._base_url = f"http://{server.server_name}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"smartup-simulator:{port}",
            daemon=True,
        )
        self._server = server
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open connections (does nothing if not running)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> SmartUpSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- data --

    def set_products(self, products: Sequence[Mapping[str, Any]]) -> None:
        """Replace all products (each gets created_on = modified_on = 01.01.2026)."""
        with gc_paused():
            entries = [
                product_entry(product, created_on=_GENERATED_ON, modified_on=_GENERATED_ON)
                for product in products
            ]
        with self._lock:
            self._products.replace_all(entries)

    def set_orders(self, orders: Sequence[Mapping[str, Any]]) -> None:
        """Replace all orders (each is modified on its deal date)."""
        with gc_paused():
            entries = [order_entry(order) for order in orders]
        with self._lock:
            self._orders.replace_all(entries)

    def update_product(self, product_id: str, **changes: Any) -> None:
        """Replace fields of one product and mark it modified today.

        Raises:
            KeyError: no product has this ``product_id``.
        """
        with self._lock:
            old = self._find(self._products, product_id, "product_id")
            record = json.loads(old.encoded)
            record.update(changes)
            new = product_entry(record, created_on=old.created_on, modified_on=self._roll_day())
            self._products.replace(product_id, new)
            self._stamps.stamp("products", new.product_id)

    def update_order(
        self, deal_id: str, *, modified_on: datetime.date | None = None, **changes: Any
    ) -> None:
        """Replace fields of one order (e.g. ``order_products=[...]``) and mark it modified.

        Args:
            deal_id: the order to change.
            modified_on: the day it counts as modified on (default: today).
            changes: fields to replace.

        Raises:
            KeyError: no order has this ``deal_id``.
        """
        with self._lock:
            old = self._find(self._orders, deal_id, "deal_id")
            record = json.loads(old.encoded)
            record.update(changes)
            new = order_entry(record, modified_on=modified_on or self._roll_day())
            self._orders.replace(deal_id, new)
            self._stamps.stamp("orders", new.deal_id)

    def add_products(self, products: Sequence[Mapping[str, Any]]) -> None:
        """Add products (or put back deleted ones), created and modified today."""
        today = self.today
        entries = [
            product_entry(product, created_on=today, modified_on=today) for product in products
        ]
        with self._lock:
            self._products.add(entries)
            for entry in entries:
                self._stamps.stamp("products", entry.product_id)

    def delete_product(self, product_id: str) -> None:
        """Delete one product upstream: exports no longer hold it.

        Raises:
            KeyError: no product has this ``product_id``.
        """
        with self._lock:
            self._find(self._products, product_id, "product_id")
            self._products.remove(product_id)
            self._stamps.stamp_removed("products", product_id)

    def add_orders(
        self, orders: Sequence[Mapping[str, Any]], *, modified_on: datetime.date | None = None
    ) -> None:
        """Add orders (or replace those with the same ``deal_id``), modified today."""
        day = modified_on or self.today
        entries = [order_entry(order, modified_on=day) for order in orders]
        with self._lock:
            self._orders.add(entries)
            for entry in entries:
                self._stamps.stamp("orders", entry.deal_id)

    # -- the catalogue: groups, price types, prices, warehouses, stock --

    def set_groups(self, groups: Sequence[Mapping[str, Any]]) -> None:
        """Replace all product groups (each with its ``product_group_types``)."""
        copies = [json.loads(encode_record(group)) for group in groups]
        with self._lock:
            self._groups = copies

    def set_price_types(self, price_types: Sequence[Mapping[str, Any]]) -> None:
        """Replace all price types (records with ``price_type_id``, as the v2 export has)."""
        copies = [json.loads(encode_record(price_type)) for price_type in price_types]
        with self._lock:
            self._price_types = copies

    def set_prices(self, prices: Sequence[Mapping[str, Any]]) -> None:
        """Replace all prices (entries ``{inventory_code, inventory_barcode, price_type}``)."""
        with gc_paused():
            entries = [price_entry(entry) for entry in prices]
        with self._lock:
            self._prices = entries

    def set_warehouses(self, warehouses: Sequence[Mapping[str, Any]]) -> None:
        """Replace all warehouses (``{warehouse_id, code, name}``)."""
        copies = [json.loads(encode_record(warehouse)) for warehouse in warehouses]
        with self._lock:
            self._warehouses = copies

    def set_stock(self, stock: Mapping[ProductCondition, Sequence[Mapping[str, Any]]]) -> None:
        """Replace all balance rows, given by condition (``F``, ``B``, ``T``).

        A ``date`` in a row is ignored: answers date rows by the day asked for. The
        ``producer_codes`` filter looks at the ``producer_code`` of the row's product.
        """
        _check_conditions(stock)
        with gc_paused():
            entries = [
                stock_entry(condition, row) for condition, rows in stock.items() for row in rows
            ]
        with self._lock:
            self._stock = entries

    def update_group(self, product_group_id: str, **changes: Any) -> None:
        """Replace fields of one group (rename: ``name=...``; deactivate: ``state="P"``).

        Raises:
            KeyError: no group has this ``product_group_id``.
        """
        with self._lock:
            group = _find_record(self._groups, "product_group_id", product_group_id)
            group.update(changes)
            self._stamps.stamp("groups", product_group_id)

    def remove_group(self, product_group_id: str) -> None:
        """Remove one group (and its types) from the export.

        Raises:
            KeyError: no group has this ``product_group_id``.
        """
        with self._lock:
            group = _find_record(self._groups, "product_group_id", product_group_id)
            self._groups = [g for g in self._groups if g is not group]
            self._stamps.stamp_removed("groups", product_group_id)
            for kind in group.get("product_group_types") or ():
                self._stamps.stamp_removed("product_types", str(kind.get("product_type_id")))

    def update_group_type(self, product_type_id: str, **changes: Any) -> None:
        """Replace fields of one group type (rename, ``state="P"``, ...).

        Raises:
            KeyError: no group has a type with this ``product_type_id``.
        """
        with self._lock:
            group, kind = self._find_group_type(product_type_id)
            kind.update(changes)
            self._stamps.stamp("product_types", product_type_id)
            self._stamps.stamp("groups", str(group.get("product_group_id")))

    def remove_group_type(self, product_type_id: str) -> None:
        """Remove one type from its group.

        Raises:
            KeyError: no group has a type with this ``product_type_id``.
        """
        with self._lock:
            group, kind = self._find_group_type(product_type_id)
            group["product_group_types"] = [
                t for t in group["product_group_types"] if t is not kind
            ]
            self._stamps.stamp_removed("product_types", product_type_id)
            self._stamps.stamp("groups", str(group.get("product_group_id")))

    def _find_group_type(self, product_type_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        for group in self._groups:
            for kind in group.get("product_group_types") or ():
                if str(kind.get("product_type_id")) == product_type_id:
                    return group, kind
        raise KeyError(f"no group type with product_type_id {product_type_id!r}")

    def update_price_type(self, price_type_id: str, **changes: Any) -> None:
        """Replace fields of one price type (``code=...``, ``name=...``, ``state="P"``).

        Raises:
            KeyError: no price type has this ``price_type_id``.
        """
        with self._lock:
            _find_record(self._price_types, "price_type_id", price_type_id).update(changes)
            self._stamps.stamp("price_types", price_type_id)

    def set_price(
        self,
        inventory_code: str,
        price_type_code: str | None,
        price: str,
        *,
        card_code: str | None = None,
    ) -> None:
        """Set one product's price of one price type (and card), adding it if absent.

        Args:
            inventory_code: the product's code (the prices export names products by it).
            price_type_code: the price type's code (None for a type without one).
            price: the price as the export sends it, e.g. ``"12500"``.
            card_code: the card of a ``with_card`` price type.

        Raises:
            KeyError: no prices entry has this ``inventory_code``.
        """
        with self._lock:
            index = next(
                (i for i, e in enumerate(self._prices) if e.inventory_code == inventory_code),
                None,
            )
            if index is None:
                raise KeyError(f"no prices for inventory_code {inventory_code!r}")
            record = json.loads(self._prices[index].encoded)
            prices = record.setdefault("price_type", [])
            for item in prices:
                if (
                    item.get("price_type_code") == price_type_code
                    and item.get("card_code") == card_code
                ):
                    item["price"] = price
                    break
            else:
                prices.append(
                    {"price_type_code": price_type_code, "card_code": card_code, "price": price}
                )
            entries = list(self._prices)
            entries[index] = price_entry(record)
            self._prices = entries
            self._stamps.stamp("prices", (inventory_code, price_type_code, card_code))

    def set_stock_quantity(
        self,
        warehouse_code: str,
        product_id: str,
        quantity: str,
        *,
        batch_number: str | None = None,
        condition: ProductCondition = "F",
    ) -> None:
        """Set the ``quantity`` of one balance row.

        The row is found by warehouse, product and condition, and by ``batch_number``
        when given (without it, there must be exactly one such row).

        Raises:
            KeyError: no such row, or several when ``batch_number`` is not given.
        """
        with self._lock:
            index = self._stock_row(warehouse_code, product_id, batch_number, condition)
            entry = self._stock[index]
            entries = list(self._stock)
            entries[index] = stock_entry(condition, {**entry.record, "quantity": quantity})
            self._stock = entries
            self._stamps.stamp("stock", _stock_key(entries[index]))

    def add_stock_rows(
        self, rows: Sequence[Mapping[str, Any]], *, condition: ProductCondition = "F"
    ) -> None:
        """Append balance rows of one condition."""
        _check_conditions({condition: rows})
        added = [stock_entry(condition, row) for row in rows]
        with self._lock:
            self._stock = self._stock + added
            for entry in added:
                self._stamps.stamp("stock", _stock_key(entry))

    def remove_stock_row(
        self,
        warehouse_code: str,
        product_id: str,
        *,
        batch_number: str | None = None,
        condition: ProductCondition = "F",
    ) -> None:
        """Remove one balance row (found as :meth:`set_stock_quantity` finds it).

        Raises:
            KeyError: no such row, or several when ``batch_number`` is not given.
        """
        with self._lock:
            index = self._stock_row(warehouse_code, product_id, batch_number, condition)
            self._stamps.stamp_removed("stock", _stock_key(self._stock[index]))
            self._stock = self._stock[:index] + self._stock[index + 1 :]

    def _stock_row(
        self, warehouse_code: str, product_id: str, batch_number: str | None, condition: str
    ) -> int:
        found = [
            index
            for index, entry in enumerate(self._stock)
            if entry.warehouse_code == warehouse_code
            and entry.product_id == product_id
            and entry.condition == condition
            and (batch_number is None or entry.batch_number == batch_number)
        ]
        if len(found) != 1:
            raise KeyError(
                f"{len(found)} balance rows of product {product_id!r} in {warehouse_code!r} "
                f"({condition}, batch {batch_number!r}); need exactly one"
            )
        return found[0]

    @property
    def groups(self) -> list[dict[str, Any]]:
        """Copies of the current product groups."""
        with self._lock:
            return json.loads(_encode_list(self._groups))  # type: ignore[no-any-return]

    @property
    def price_types(self) -> list[dict[str, Any]]:
        """Copies of the current price types (with ``price_type_id``)."""
        with self._lock:
            return json.loads(_encode_list(self._price_types))  # type: ignore[no-any-return]

    @property
    def warehouses(self) -> list[dict[str, Any]]:
        """Copies of the current warehouses."""
        with self._lock:
            return json.loads(_encode_list(self._warehouses))  # type: ignore[no-any-return]

    @property
    def prices(self) -> list[dict[str, Any]]:
        """Copies of the current prices entries, in export order."""
        with self._lock:
            entries = self._prices
        return [json.loads(entry.encoded) for entry in entries]

    @property
    def stock(self) -> dict[ProductCondition, list[dict[str, Any]]]:
        """Copies of the current balance rows by condition (without ``date``)."""
        with self._lock:
            entries = self._stock
        result: dict[ProductCondition, list[dict[str, Any]]] = {"F": [], "B": [], "T": []}
        for entry in entries:
            result[entry.condition].append(json.loads(b"{" + entry.tail.removeprefix(b",")))  # type: ignore[index]
        return result

    # -- the day clock and the quotas --

    def _current_day(self) -> datetime.date:
        base = self._fixed_today or datetime.datetime.now(self.timezone).date()
        return base + datetime.timedelta(days=self._day_offset)

    def _roll_day(self) -> datetime.date:
        """Today; past midnight every quota starts again (call with the lock held)."""
        day = self._current_day()
        if day != self._counted_day:
            self._counted_day = day
            self._request_counts = dict.fromkeys(_DAILY_LIMIT, 0)
        return day

    @property
    def today(self) -> datetime.date:
        """The simulator's company day: quotas count for it, edits are dated by it."""
        with self._lock:
            return self._roll_day()

    def advance_day(self, days: int = 1) -> datetime.date:
        """Move the day clock forward past midnight: every quota starts again."""
        if days < 1:
            raise ValueError("the clock moves forward only")
        with self._lock:
            self._day_offset += days
            return self._roll_day()

    def set_quota(self, name: str, limit: int) -> None:
        """Change a quota class's daily quota (``limits.limit_quant``) from now on.

        ``name`` is a :data:`QuotaClass` or an endpoint of that class (``"products"``
        changes the ``reference`` quota of every reference export).
        """
        if limit < 0:
            raise ValueError("a quota is not negative")
        quota_class = _quota_class(name)
        with self._lock:
            self._quotas[quota_class] = limit

    def daily_quota(self, name: str) -> int:
        """The daily quota (``limit_quant``) of the class ``name`` (a class, or an
        endpoint of it)."""
        quota_class = _quota_class(name)
        with self._lock:
            return self._quotas[quota_class]

    def spend_quota(self, name: str, requests: int) -> None:
        """Another program on the same login spends ``requests`` of today's quota of the
        class ``name`` (a class, or an endpoint of it)."""
        quota_class = _quota_class(name)
        with self._lock:
            self._roll_day()
            self._request_counts[quota_class] += requests

    def bytes_served(self, endpoint: Endpoint) -> int:
        """Bytes of export bodies served by ``endpoint`` so far (all days)."""
        with self._lock:
            return self._bytes_served[endpoint]

    def requests_today(self, name: str) -> int:
        """POSTs counted today against the quota of the class ``name`` (a class, or an
        endpoint of it: every export of the class counts)."""
        quota_class = _quota_class(name)
        with self._lock:
            self._roll_day()
            return self._request_counts[quota_class]

    @staticmethod
    def _find(table: Table[EntryT], key: str, key_name: str) -> EntryT:
        try:
            return table.find(key)
        except KeyError:
            raise KeyError(f"no record with {key_name} {key!r}") from None

    @property
    def products(self) -> list[dict[str, Any]]:
        """Copies of the current products, in export order."""
        with self._lock:
            entries = self._products.entries
        return [json.loads(entry.encoded) for entry in entries]

    @property
    def orders(self) -> list[dict[str, Any]]:
        """Copies of the current orders, in export order."""
        with self._lock:
            entries = self._orders.entries
        return [json.loads(entry.encoded) for entry in entries]

    # -- change stamps (when each record changed; see jobs.simulator.stamps) --

    def set_clock(self, clock: Clock | None) -> None:
        """From now on, stamp changes with ``clock()`` (None: the wall clock, in UTC)."""
        with self._lock:
            self._stamps.clock = clock or ChangeStamps().clock

    def changed_at(self, kind: ChangeKind) -> dict[Any, datetime.datetime]:
        """When each record of ``kind`` still served last changed (or was added), by the
        simulator's clock; records loaded whole and never changed are not in it. Keys:
        see :mod:`jobs.simulator.stamps`."""
        with self._lock:
            return self._stamps.changed_at(kind)

    def removed_at(self, kind: ChangeKind) -> dict[Any, datetime.datetime]:
        """When each removed record of ``kind`` was removed, by the simulator's clock."""
        with self._lock:
            return self._stamps.removed_at(kind)

    # -- faults --

    def add_fault(self, endpoint: Endpoint, fault: Fault, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` POSTs to ``endpoint`` (FIFO per endpoint)."""
        if endpoint not in self._faults:
            raise ValueError(f"endpoint must be one of {sorted(PATHS)}, not {endpoint!r}")
        if times < 0:
            raise ValueError("times must not be negative")
        with self._lock:
            self._faults[endpoint].extend([fault] * times)

    def clear_faults(self) -> None:
        """Forget all queued faults."""
        with self._lock:
            for queue in self._faults.values():
                queue.clear()

    # -- serving: the interface of the HTTP side (jobs.simulator.http), called from its
    # request threads --

    def record_request(self, request: RecordedRequest) -> None:
        """Append ``request`` to :attr:`requests` (the HTTP side does, before answering)."""
        with self._lock:
            self.requests.append(request)

    def answer(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> tuple[str, Answer]:
        """What to send for one request: (the endpoint name to record it under, or
        ``"unknown"``; the answer). A POST to an export consumes that endpoint's next
        fault (sleeping its ``delay`` here) and counts against its quota class (unless
        ``warehouses_status`` answers it), then is checked as the class docstring says.

        Args:
            method: the HTTP method (``"POST"``...).
            target: the request target as sent (path and any query string).
            headers: request headers, names lower-cased.
            raw_body: the request body as received.
        """
        path = unquote(urlsplit(target).path)
        endpoint = _ENDPOINT_BY_PATH.get(path)
        if endpoint is None:
            return "unknown", PlainAnswer.text(404, f"Не найдено: {path}")
        if method != "POST":
            return endpoint, PlainAnswer.text(405, DEFAULT_MESSAGES[405], Allow="POST")
        quota_class = ENDPOINT_CLASS[endpoint]
        with self._lock:
            queue = self._faults[endpoint]
            fault = queue.popleft() if queue else None
            unanswered = endpoint == "warehouses" and self.warehouses_status is not None
            if not unanswered:
                today = self._roll_day()
                self._request_counts[quota_class] += 1
                request_number = self._request_counts[quota_class]
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            scripted = scripted_answer(fault)
            if scripted is not None:
                return endpoint, scripted
        try:
            if unanswered:
                status = self.warehouses_status or 404
                message = DEFAULT_MESSAGES.get(status, f"Ошибка {status}")
                raise Rejection(status, message)
            answer = self._export(endpoint, headers, raw_body, request_number, today)
        except Rejection as rejection:
            if isinstance(rejection, JSONRejection):
                refusal = PlainAnswer(
                    rejection.status, rejection.body, "application/json; charset=utf-8"
                )
            else:
                refusal = PlainAnswer.text(rejection.status, rejection.message)
            if fault is not None:
                refusal = dataclasses.replace(refusal, headers=fault.headers)
            return endpoint, refusal
        if fault is not None:
            answer = faulted_export(answer, fault)
        with self._lock:
            self._bytes_served[endpoint] += answer.body_length()
        return endpoint, answer

    def _check_access(self, endpoint: Endpoint, headers: Mapping[str, str]) -> str | None:
        """Auth, project and filial checks; the ``filial_id`` header if one was sent."""
        if not _has_credentials(headers.get("authorization", ""), self._credentials):
            raise Rejection(401, AUTH_REQUIRED)
        project_code = headers.get("project_code")
        if project_code not in self._project_codes or (
            endpoint == "warehouses" and project_code != "anor"
        ):
            raise Rejection(481, PROJECT_INVISIBLE)
        filial_id = headers.get("filial_id") or None
        allowed = self._filial_ids
        if filial_id is not None and allowed is not None and filial_id not in allowed:
            raise Rejection(401, AUTH_REQUIRED)
        return filial_id

    def _export(
        self,
        endpoint: Endpoint,
        headers: Mapping[str, str],
        raw_body: bytes,
        request_number: int,
        today: datetime.date,
    ) -> ExportAnswer:
        """The normal answer to an export request (raises Rejection when refused)."""
        filial_id = self._check_access(endpoint, headers)
        quota_class = ENDPOINT_CLASS[endpoint]
        with self._lock:
            limit = self._quotas[quota_class]
        if request_number > limit:
            message = _QUOTA_SPENT.format(limit=limit)
            raise Rejection(429 if self.quota_refusal == "429" else 200, message)
        filters = {} if not raw_body.strip() else parse_body(raw_body)
        if not isinstance(filters, dict):
            raise Rejection(400, _BAD_BODY)
        day_range_limit = self._day_range_limits[endpoint]
        if endpoint == "price_types_v2":
            return self._price_types_page(filters)
        records = self._records(endpoint, filters, filial_id, day_range_limit, today)
        if endpoint == "prices" and not self._prices_limits:
            return ExportAnswer(
                prefix=b'{"inventory":[',
                records=records,
                suffix=b"]}",
                headers={},
                truncate_at=None,
            )
        limits = ENCODER.encode(
            {
                "has_limit": "Y",
                "limit_quant": str(limit),
                "request_quant": str(request_number),
                "left_limit_quant": str(max(limit - request_number, 0)),
                "object_count": str(len(records)),
                "day_range_limit": str(day_range_limit),
            }
        ).encode("utf-8")
        array_key = _ARRAY_KEY[endpoint].encode("ascii")
        if self._limits_first:
            prefix = b'{"limits":%s,"%s":[' % (limits, array_key)
            suffix = b"]}"
        else:
            prefix = b'{"%s":[' % array_key
            suffix = b'],"limits":%s}' % limits
        return ExportAnswer(
            prefix=prefix, records=records, suffix=suffix, headers={}, truncate_at=None
        )

    def _records(
        self,
        endpoint: Endpoint,
        filters: dict[str, Any],
        filial_id: str | None,
        day_range_limit: int,
        today: datetime.date,
    ) -> Sequence[bytes]:
        """The encoded records an export answers with (raises Rejection when refused)."""
        if endpoint == "products":
            product_filters = ProductFilters.parse(filters, day_range_limit=day_range_limit)
            with self._lock:
                product_entries = self._products.entries
            return [entry.encoded for entry in product_filters.select(product_entries)]
        if endpoint == "orders":
            order_filters = OrderFilters.parse(
                filters, filial_id=filial_id, day_range_limit=day_range_limit
            )
            with self._lock:
                order_entries = self._orders.entries
            return [entry.encoded for entry in order_filters.select(order_entries)]
        if endpoint == "stock":
            return self._stock_rows(BalanceFilters.parse(filters, day_range_limit=day_range_limit))
        if endpoint == "prices":
            return self._price_records(price_type_codes(filters))
        with self._lock:
            if endpoint == "product_groups":
                return [encode_record(group) for group in self._groups]
            if endpoint == "warehouses":
                return [encode_record(warehouse) for warehouse in self._warehouses]
            return [  # price_types (v1): no id
                encode_record({k: v for k, v in price_type.items() if k != "price_type_id"})
                for price_type in self._price_types
            ]

    def _stock_rows(self, filters: BalanceFilters) -> list[bytes]:
        """Balance rows the filters select, dated by the end of the window asked for."""
        with self._lock:
            entries = self._stock
            products = self._products.entries
        assert filters.window.end is not None  # required by BalanceFilters
        head = b'{"date":"%s"' % filters.window.end.strftime("%d.%m.%Y").encode()
        warehouses, conditions = filters.warehouse_codes, filters.conditions
        producers = filters.producer_codes
        produced = (
            {p.product_id for p in products if p.producer_code in producers} if producers else None
        )
        return [
            head + entry.tail
            for entry in entries
            if (not conditions or entry.condition in conditions)
            and (not warehouses or entry.warehouse_code in warehouses)
            and (produced is None or entry.product_id in produced)
        ]

    def _price_records(self, codes: frozenset[str]) -> list[bytes]:
        """Prices entries, each holding only the price types in ``codes`` (all when empty);
        an entry left without prices is not sent."""
        with self._lock:
            entries = self._prices
        if not codes:
            return [entry.encoded for entry in entries]
        records = []
        for entry in entries:
            prices = [
                price
                for price in entry.record.get("price_type") or ()
                if price.get("price_type_code") in codes
            ]
            if prices:
                records.append(encode_record({**entry.record, "price_type": prices}))
        return records

    def _price_types_page(self, filters: dict[str, Any]) -> ExportAnswer:
        """One page of the v2 price types export: ``{"count": "N", "data": [...]}``."""
        page = Page.parse(filters, known_columns=_PRICE_TYPE_COLUMNS)
        with self._lock:
            price_types = self._price_types
        selected = price_types[page.offset : page.offset + page.limit]
        columns = page.columns
        records = [
            encode_record(record if columns is None else {c: record.get(c) for c in columns})
            for record in selected
        ]
        prefix = b'{"count":"%d","data":[' % len(price_types)
        return ExportAnswer(
            prefix=prefix, records=records, suffix=b"]}", headers={}, truncate_at=None
        )


def _stock_key(entry: StockEntry) -> tuple[str, str, str, str | None]:
    """A balance row's key in the change stamps."""
    return (entry.condition, entry.warehouse_code, entry.product_id, entry.batch_number)


def _find_record(records: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
    for record in records:
        if str(record.get(key)) == value:
            return record
    raise KeyError(f"no record with {key} {value!r}")


def _encode_list(records: list[dict[str, Any]]) -> str:
    return ENCODER.encode(records)


def _check_conditions(stock: Mapping[Any, Any]) -> None:
    unknown = set(stock) - set(PRODUCT_CONDITIONS)
    if unknown:
        raise ValueError(f"stock conditions are F, B and T, not {sorted(unknown)}")


def _has_credentials(authorization: str, credentials: bytes) -> bool:
    """Whether an Authorization header is Basic auth with ``credentials`` (b"user:password")."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, credentials)
