"""A loopback HTTP server that speaks SmartUp's export API (see ``SMARTUP_API.md``).

:class:`SmartUpSimulator` answers ``POST`` requests to the products export
(:data:`PRODUCTS_PATH`) and the orders export (:data:`ORDERS_PATH`) the way SmartUp does:
HTTP Basic auth, the ``project_code`` and ``filial_id`` headers, body filters with
``dd.mm.yyyy`` dates, the day-range limit, a ``limits`` object in every answer, and
plain-text (often Russian) error bodies. Scripted :class:`Fault` objects make it misbehave
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
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from jobs.simulator.catalogue import gc_paused
from jobs.simulator.faults import (
    _AUTH_REQUIRED,
    _DEFAULT_MESSAGES,
    _PROJECT_INVISIBLE,
    Fault,
    _Answer,
    _ExportAnswer,
    _faulted_export,
    _PlainAnswer,
    _scripted_answer,
)
from jobs.simulator.filters import _OrderFilters, _parse_body, _ProductFilters, _Rejection
from jobs.simulator.http import RecordedRequest, _HTTPServer
from jobs.simulator.tables import (
    _ENCODER,
    _EntryT,
    _order_entry,
    _OrderEntry,
    _product_entry,
    _ProductEntry,
    _Table,
)

__all__ = [
    "ORDERS_PATH",
    "PRODUCTS_PATH",
    "Fault",
    "RecordedRequest",
    "SmartUpSimulator",
]

PRODUCTS_PATH = "/b/anor/mxsx/mr/inventory$export"
"""Path of the products (``inventory``) export."""

ORDERS_PATH = "/b/trade/txs/tdeal/order$export"
"""Path of the orders (``order``) export."""

Endpoint = Literal["products", "orders"]

_ENDPOINT_BY_PATH: dict[str, Endpoint] = {PRODUCTS_PATH: "products", ORDERS_PATH: "orders"}
_ARRAY_KEY: dict[Endpoint, str] = {"products": "inventory", "orders": "order"}
_DAILY_LIMIT: dict[Endpoint, int] = {"products": 100, "orders": 500}
QuotaRefusal = Literal["429", "200"]
_QUOTA_SPENT = "Превышен дневной лимит запросов ({limit}); повторите завтра"


_GENERATED_ON = datetime.date(2026, 1, 1)
"""created_on / modified_on of every product loaded with set_products (or the constructor)."""

_BAD_BODY = "Неверный формат запроса: тело должно быть JSON-объектом"


# --- the simulator ----------------------------------------------------------------------


class SmartUpSimulator:
    """SmartUp's products and orders exports, served over HTTP on loopback.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        with SmartUpSimulator(products=generate_products(100)) as smartup:
            requests.post(smartup.base_url + PRODUCTS_PATH, json={},
                          auth=("demo@smartup", "demo-secret"),
                          headers={"project_code": "trade"})

    Each ``POST`` to an export is checked in this order, every refusal being plain text:

    1. The next scripted :class:`Fault` for that endpoint, if any, is consumed (before any
       other check; see :class:`Fault` for what each kind does).
    2. HTTP Basic auth: missing or wrong -> 401 "Требуется авторизация".
    3. ``project_code`` header not in ``project_codes`` -> 481 "Проект невидим".
    4. ``filial_id`` header not in ``filial_ids`` (when given) -> 401. A request without
       the header is accepted.
    5. Body not a JSON object (an empty body counts as ``{}``) -> 400.
    6. A date filter not ``dd.mm.yyyy`` -> 400 "A02-24-050 Неверный формат даты: ...".
    7. The endpoint's daily quota is spent (more POSTs today than ``quotas`` allows) ->
       a refusal shaped as ``quota_refusal`` says: ``"429"`` answers 429 with a plain
       Russian "лимит" message, ``"200"`` answers 200 with the same text (SmartUp does not
       document which it sends).
    8. A begin/end pair of ``deal_date``, ``created_on`` or ``modified_on`` (of orders or
       products) that spans more than ``day_range_limit`` days (inclusive) -> 400
       "A02-24-051 ...".

    Then the filtered records are sent as ``{"inventory"|"order": [...], "limits": {...}}``.
    ``limits.request_quant`` counts every POST to that endpoint today, this one included
    (and what :meth:`spend_quota` says other programs spent); ``left_limit_quant`` is what
    is left of the day's quota.

    The simulator has its own day clock (:attr:`today`, moved by :meth:`advance_day`):
    a new day resets every quota, and edits are dated by it.

    Products carry no dates, so the simulator keeps ``created_on``/``modified_on`` per
    product beside the data (01.01.2026 when loaded; :meth:`update_product` and
    :meth:`add_products` set ``modified_on`` to today). An order's ``created_on`` is its
    deal date and its ``modified_on`` is the deal date until :meth:`update_order` changes it.

    Other paths answer 404, other methods on the export paths 405.
    """

    def __init__(
        self,
        *,
        products: Sequence[Mapping[str, Any]] = (),
        orders: Sequence[Mapping[str, Any]] = (),
        user: str = "demo@smartup",
        password: str = "demo-secret",
        project_codes: Collection[str] = ("trade", "anor"),
        filial_ids: Collection[str] | None = None,
        day_range_limit: int = 7,
        limits_first: bool = False,
        today: datetime.date | None = None,
        quotas: Mapping[Endpoint, int] | None = None,
        quota_refusal: QuotaRefusal = "429",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Load the data; nothing is served until :meth:`start`.

        Args:
            products: product records (``inventory``), in export order; JSON-serialisable.
            orders: order records, in export order; JSON-serialisable.
            user: the Basic-auth login that is accepted.
            password: the Basic-auth password that is accepted.
            project_codes: accepted values of the ``project_code`` header.
            filial_ids: accepted values of the ``filial_id`` header; None accepts any.
            day_range_limit: how many days (inclusive) a date window of orders may span.
            limits_first: put ``limits`` before the records array instead of after it.
            today: the simulator's company day (default: the machine's date).
            quotas: requests a day per endpoint (default 100 products, 500 orders).
            quota_refusal: how a request over the quota is refused: ``"429"`` or ``"200"``.
            host: address to listen on.
            port: port to listen on; 0 picks a free one.
        """
        if day_range_limit < 1:
            raise ValueError("day_range_limit must be at least 1")
        self._credentials = f"{user}:{password}".encode()
        self._project_codes = frozenset(project_codes)
        self._filial_ids = None if filial_ids is None else frozenset(map(str, filial_ids))
        self._day_range_limit = day_range_limit
        self._limits_first = limits_first
        self._address = (host, port)

        self._lock = threading.Lock()
        self._products: _Table[_ProductEntry] = _Table(lambda entry: entry.product_id)
        self._orders: _Table[_OrderEntry] = _Table(lambda entry: entry.deal_id)
        self._faults: dict[Endpoint, deque[Fault]] = {"products": deque(), "orders": deque()}
        self._request_counts: dict[Endpoint, int] = {"products": 0, "orders": 0}
        self._bytes_served: dict[Endpoint, int] = {"products": 0, "orders": 0}
        self._today = today or datetime.date.today()
        self._quotas: dict[Endpoint, int] = {**_DAILY_LIMIT, **(quotas or {})}
        self.quota_refusal: QuotaRefusal = quota_refusal
        self.requests: list[RecordedRequest] = []
        """Every request received, in the order they were answered."""

        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self.set_products(products)
        self.set_orders(orders)

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
        server = _HTTPServer(self._address, self)
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
                _product_entry(product, created_on=_GENERATED_ON, modified_on=_GENERATED_ON)
                for product in products
            ]
        with self._lock:
            self._products.replace_all(entries)

    def set_orders(self, orders: Sequence[Mapping[str, Any]]) -> None:
        """Replace all orders (each is modified on its deal date)."""
        with gc_paused():
            entries = [_order_entry(order) for order in orders]
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
            new = _product_entry(record, created_on=old.created_on, modified_on=self._today)
            self._products.replace(product_id, new)

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
            new = _order_entry(record, modified_on=modified_on or self._today)
            self._orders.replace(deal_id, new)

    def add_products(self, products: Sequence[Mapping[str, Any]]) -> None:
        """Add products (or put back deleted ones), created and modified today."""
        entries = [
            _product_entry(product, created_on=self._today, modified_on=self._today)
            for product in products
        ]
        with self._lock:
            self._products.add(entries)

    def delete_product(self, product_id: str) -> None:
        """Delete one product upstream: exports no longer hold it.

        Raises:
            KeyError: no product has this ``product_id``.
        """
        with self._lock:
            self._find(self._products, product_id, "product_id")
            self._products.remove(product_id)

    def add_orders(
        self, orders: Sequence[Mapping[str, Any]], *, modified_on: datetime.date | None = None
    ) -> None:
        """Add orders (or replace those with the same ``deal_id``), modified today."""
        entries = [_order_entry(order, modified_on=modified_on or self._today) for order in orders]
        with self._lock:
            self._orders.add(entries)

    # -- the day clock and the quotas --

    @property
    def today(self) -> datetime.date:
        """The simulator's company day: quotas count for it, edits are dated by it."""
        return self._today

    def advance_day(self, days: int = 1) -> datetime.date:
        """Move the day clock forward past midnight: every quota starts again."""
        if days < 1:
            raise ValueError("the clock moves forward only")
        with self._lock:
            self._today += datetime.timedelta(days=days)
            self._request_counts = {"products": 0, "orders": 0}
        return self._today

    def set_quota(self, endpoint: Endpoint, limit: int) -> None:
        """Change ``endpoint``'s daily quota (``limits.limit_quant``) from now on."""
        if limit < 0:
            raise ValueError("a quota is not negative")
        with self._lock:
            self._quotas[endpoint] = limit

    def spend_quota(self, endpoint: Endpoint, requests: int) -> None:
        """Another program on the same login spends ``requests`` of today's quota."""
        with self._lock:
            self._request_counts[endpoint] += requests

    def bytes_served(self, endpoint: Endpoint) -> int:
        """Bytes of export bodies served by ``endpoint`` so far (all days)."""
        with self._lock:
            return self._bytes_served[endpoint]

    def requests_today(self, endpoint: Endpoint) -> int:
        """POSTs counted against ``endpoint``'s quota today."""
        with self._lock:
            return self._request_counts[endpoint]

    @staticmethod
    def _find(table: _Table[_EntryT], key: str, key_name: str) -> _EntryT:
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

    # -- faults --

    def add_fault(self, endpoint: Endpoint, fault: Fault, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` POSTs to ``endpoint`` (FIFO per endpoint)."""
        if endpoint not in self._faults:
            raise ValueError(f"endpoint must be 'products' or 'orders', not {endpoint!r}")
        if times < 0:
            raise ValueError("times must not be negative")
        with self._lock:
            self._faults[endpoint].extend([fault] * times)

    def clear_faults(self) -> None:
        """Forget all queued faults."""
        with self._lock:
            for queue in self._faults.values():
                queue.clear()

    # -- serving (called from request threads) --

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _answer(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> tuple[str, _Answer]:
        """(endpoint name for the record, answer) for one request."""
        path = unquote(urlsplit(target).path)
        endpoint = _ENDPOINT_BY_PATH.get(path)
        if endpoint is None:
            return "unknown", _PlainAnswer.text(404, f"Не найдено: {path}")
        if method != "POST":
            return endpoint, _PlainAnswer.text(405, _DEFAULT_MESSAGES[405], Allow="POST")
        with self._lock:
            self._request_counts[endpoint] += 1
            request_number = self._request_counts[endpoint]
            queue = self._faults[endpoint]
            fault = queue.popleft() if queue else None
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            scripted = _scripted_answer(fault)
            if scripted is not None:
                return endpoint, scripted
        try:
            answer = self._export(endpoint, headers, raw_body, request_number)
        except _Rejection as rejection:
            refusal = _PlainAnswer.text(rejection.status, rejection.message)
            if fault is not None:
                refusal = dataclasses.replace(refusal, headers=fault.headers)
            return endpoint, refusal
        if fault is not None:
            answer = _faulted_export(answer, fault)
        with self._lock:
            self._bytes_served[endpoint] += answer.body_length()
        return endpoint, answer

    def _check_access(self, headers: Mapping[str, str]) -> str | None:
        """Auth, project and filial checks; the ``filial_id`` header if one was sent."""
        if not _has_credentials(headers.get("authorization", ""), self._credentials):
            raise _Rejection(401, _AUTH_REQUIRED)
        if headers.get("project_code") not in self._project_codes:
            raise _Rejection(481, _PROJECT_INVISIBLE)
        filial_id = headers.get("filial_id") or None
        allowed = self._filial_ids
        if filial_id is not None and allowed is not None and filial_id not in allowed:
            raise _Rejection(401, _AUTH_REQUIRED)
        return filial_id

    def _export(
        self, endpoint: Endpoint, headers: Mapping[str, str], raw_body: bytes, request_number: int
    ) -> _ExportAnswer:
        """The normal answer to an export request (raises _Rejection when refused)."""
        filial_id = self._check_access(headers)
        limit = self._quotas[endpoint]
        if request_number > limit:
            message = _QUOTA_SPENT.format(limit=limit)
            raise _Rejection(429 if self.quota_refusal == "429" else 200, message)
        filters = {} if not raw_body.strip() else _parse_body(raw_body)
        if not isinstance(filters, dict):
            raise _Rejection(400, _BAD_BODY)
        if endpoint == "products":
            product_filters = _ProductFilters.parse(filters, day_range_limit=self._day_range_limit)
            with self._lock:
                product_entries = self._products.entries
            records = [entry.encoded for entry in product_filters.select(product_entries)]
        else:
            order_filters = _OrderFilters.parse(
                filters, filial_id=filial_id, day_range_limit=self._day_range_limit
            )
            with self._lock:
                order_entries = self._orders.entries
            records = [entry.encoded for entry in order_filters.select(order_entries)]
        limits = _ENCODER.encode(
            {
                "has_limit": "Y",
                "limit_quant": str(limit),
                "request_quant": str(request_number),
                "left_limit_quant": str(max(limit - request_number, 0)),
                "object_count": str(len(records)),
                "day_range_limit": str(self._day_range_limit),
            }
        ).encode("utf-8")
        array_key = _ARRAY_KEY[endpoint].encode("ascii")
        if self._limits_first:
            prefix = b'{"limits":%s,"%s":[' % (limits, array_key)
            suffix = b"]}"
        else:
            prefix = b'{"%s":[' % array_key
            suffix = b'],"limits":%s}' % limits
        return _ExportAnswer(
            prefix=prefix, records=records, suffix=suffix, headers={}, truncate_at=None
        )


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
