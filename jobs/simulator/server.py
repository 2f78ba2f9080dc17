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
import contextlib
import dataclasses
import datetime
import hmac
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Generic, Literal, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from jobs.simulator.catalogue import gc_paused

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

_CHUNK_SIZE = 64 * 1024
_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

_GENERATED_ON = datetime.date(2026, 1, 1)
"""created_on / modified_on of every product loaded with set_products (or the constructor)."""

_AUTH_REQUIRED = "Требуется авторизация"
_PROJECT_INVISIBLE = "Проект невидим"
_BAD_BODY = "Неверный формат запроса: тело должно быть JSON-объектом"
_HTML_ERROR_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_DEFAULT_MESSAGES: dict[int, str] = {
    400: "Неверный запрос",
    401: _AUTH_REQUIRED,
    403: "Доступ запрещён",
    404: "Не найдено",
    405: "Метод не поддерживается",
    429: "Слишком много запросов, повторите попытку позже",
    481: _PROJECT_INVISIBLE,
    500: "Внутренняя ошибка сервера",
    502: "Ошибка шлюза",
    503: "Сервис временно недоступен",
    504: "Превышено время ожидания ответа",
    608: "Failed to get a connection",
}
_REASON_PHRASES: dict[int, str] = {481: "Project Invisible", 608: "Failed To Get A Connection"}


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One scripted misbehaviour, consumed by one request to an endpoint.

    A fault with no field set is a normal answer. Otherwise, in this order: ``delay``
    is slept first; then ``drop_connection`` wins over ``status``, which wins over
    ``invalid_json``; ``truncate_at`` applies to what is left, a normal answer (it cuts
    200 answers only; an auth or filter error is sent whole). ``headers`` are added to
    whatever answer is sent.

    Attributes:
        status: reply with this status (e.g. 401, 429, 503, 608) instead of data.
        body: body of that reply; default: SmartUp's plain-text message for the status
            (e.g. 401 "Требуется авторизация"), or an HTML error page for ``invalid_json``.
            Text is sent as UTF-8; bytes are sent as they are (any bytes at all).
        content_type: Content-Type of a ``status`` reply (``invalid_json`` always says
            ``application/json``).
        headers: extra response headers, e.g. ``{"Retry-After": "1"}``.
        delay: seconds to sleep before answering.
        truncate_at: send only this fraction (0..1) of a normal 200 body, then close the
            connection without the terminating chunk.
        invalid_json: answer 200 with ``Content-Type: application/json`` and a body that
            is not JSON.
        drop_connection: close the connection without sending any response.
    """

    status: int | None = None
    body: str | bytes | None = None
    content_type: str = _TEXT_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_at: float | None = None
    invalid_json: bool = False
    drop_connection: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and not 100 <= self.status <= 999:
            raise ValueError(f"status must be a three-digit HTTP status, not {self.status}")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.truncate_at is not None and not 0.0 <= self.truncate_at <= 1.0:
            raise ValueError("truncate_at must be a fraction between 0 and 1")


@dataclass(frozen=True)
class RecordedRequest:
    """One request the simulator received.

    Attributes:
        endpoint: ``"products"``, ``"orders"`` or ``"unknown"`` (any other path).
        path: the request target as sent (with any query string).
        headers: request headers, names lower-cased.
        body: the parsed JSON body, or None when the body was empty or not JSON.
        status: the status sent, or 0 when the connection was dropped without an answer.
    """

    endpoint: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int


# --- records and their metadata ---------------------------------------------------------


class _ProductEntry(NamedTuple):
    """A product as served: its encoded JSON plus what the filters look at."""

    product_id: str
    code: str
    created_on: datetime.date
    modified_on: datetime.date
    encoded: bytes


class _OrderEntry(NamedTuple):
    """An order as served: its encoded JSON plus what the filters look at."""

    deal_id: str
    external_id: str
    filial_id: str
    filial_code: str
    status: str
    deal_date: datetime.date | None
    delivery_date: datetime.date | None
    modified_on: datetime.date | None
    encoded: bytes


def _encode(record: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of one record (non-ASCII text kept as is)."""
    return _ENCODER.encode(record if isinstance(record, dict) else dict(record)).encode()


def _text(value: Any) -> str:
    """A record field as a string ("" for missing or null)."""
    return "" if value is None else str(value)


def _record_date(value: Any) -> datetime.date | None:
    """The date of a record's ``dd.mm.yyyy`` or ``dd.mm.yyyy hh24:mi:ss`` field, if valid."""
    text = _text(value)
    try:
        return datetime.date(int(text[6:10]), int(text[3:5]), int(text[0:2]))
    except ValueError:
        return None


def _product_entry(
    record: Mapping[str, Any], *, created_on: datetime.date, modified_on: datetime.date
) -> _ProductEntry:
    return _ProductEntry(
        product_id=_text(record.get("product_id")),
        code=_text(record.get("code")),
        created_on=created_on,
        modified_on=modified_on,
        encoded=_encode(record),
    )


def _order_entry(
    record: Mapping[str, Any], *, modified_on: datetime.date | None = None
) -> _OrderEntry:
    """Index one order; ``modified_on`` defaults to the date of its ``deal_time``."""
    deal_date = _record_date(record.get("deal_time"))
    return _OrderEntry(
        deal_id=_text(record.get("deal_id")),
        external_id=_text(record.get("external_id")),
        filial_id=_text(record.get("filial_id")),
        filial_code=_text(record.get("filial_code")),
        status=_text(record.get("status")),
        deal_date=deal_date,
        delivery_date=_record_date(record.get("delivery_date")),
        modified_on=modified_on or deal_date,
        encoded=_encode(record),
    )


_EntryT = TypeVar("_EntryT", _ProductEntry, _OrderEntry)


class _Table(Generic[_EntryT]):
    """Entries in export order, findable by natural key.

    ``entries`` is never changed in place: every change installs a new list, so a reader
    holding the old list keeps a consistent snapshot. Callers serialise writes.
    """

    def __init__(self, key: Callable[[_EntryT], str]) -> None:
        self._key: Callable[[_EntryT], str] = key
        self.entries: list[_EntryT] = []
        self._position: dict[str, int] = {}

    def replace_all(self, entries: list[_EntryT]) -> None:
        self.entries = entries
        self._position = {self._key(entry): index for index, entry in enumerate(entries)}

    def find(self, key: str) -> _EntryT:
        """The entry with this natural key; KeyError if there is none."""
        return self.entries[self._position[key]]

    def replace(self, key: str, entry: _EntryT) -> None:
        """Put ``entry`` where the entry with natural key ``key`` is."""
        index = self._position[key]
        entries = list(self.entries)
        entries[index] = entry
        self.entries = entries
        new_key = self._key(entry)
        if new_key != key:
            del self._position[key]
            self._position[new_key] = index


# --- request filters --------------------------------------------------------------------


class _Rejection(Exception):
    """A request SmartUp would refuse: answered with ``status`` and plain ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_DATE_PATTERN = re.compile(r"\d{2}\.\d{2}\.\d{4}")


def _filter_value(filters: Mapping[str, Any], name: str) -> str | None:
    """A scalar filter; None when absent, null or ``""``."""
    value = filters.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Rejection(400, f"Неверный формат запроса: поле {name}")
    return str(value)


def _filter_date(filters: Mapping[str, Any], name: str) -> datetime.date | None:
    """A ``dd.mm.yyyy`` filter; None when absent; 400 A02-24-050 when malformed."""
    value = filters.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and _DATE_PATTERN.fullmatch(value):
        try:
            return datetime.datetime.strptime(value, "%d.%m.%Y").date()
        except ValueError:
            pass
    raise _Rejection(400, f"A02-24-050 Неверный формат даты: {value}")


def _days_word(count: int) -> str:
    """Russian plural of "day" for ``count``: 1 день, 2 дня, 7 дней."""
    if count % 10 == 1 and count % 100 != 11:
        return "день"
    if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
        return "дня"
    return "дней"


@dataclass(frozen=True)
class _Window:
    """An inclusive date window; an absent end is open."""

    begin: datetime.date | None = None
    end: datetime.date | None = None

    @classmethod
    def from_filters(cls, filters: Mapping[str, Any], begin: str, end: str) -> _Window:
        return cls(_filter_date(filters, begin), _filter_date(filters, end))

    @property
    def is_open(self) -> bool:
        return self.begin is None and self.end is None

    def contains(self, day: datetime.date | None) -> bool:
        if self.is_open:
            return True
        if day is None:
            return False
        return (self.begin is None or self.begin <= day) and (self.end is None or day <= self.end)

    def check_span(self, day_range_limit: int) -> None:
        """400 A02-24-051 if both ends are given and span more than the limit (inclusive)."""
        if self.begin is None or self.end is None:
            return
        if (self.end - self.begin).days + 1 > day_range_limit:
            raise _Rejection(
                400,
                f"A02-24-051 Период не может превышать {day_range_limit} "
                f"{_days_word(day_range_limit)}",
            )


@dataclass(frozen=True)
class _ProductFilters:
    code: str | None
    created: _Window
    modified: _Window

    @classmethod
    def parse(cls, filters: Mapping[str, Any]) -> _ProductFilters:
        return cls(
            code=_filter_value(filters, "code"),
            created=_Window.from_filters(filters, "begin_created_on", "end_created_on"),
            modified=_Window.from_filters(filters, "begin_modified_on", "end_modified_on"),
        )

    def select(self, entries: list[_ProductEntry]) -> list[_ProductEntry]:
        if self.code is None and self.created.is_open and self.modified.is_open:
            return entries
        return [
            entry
            for entry in entries
            if (self.code is None or entry.code == self.code)
            and self.created.contains(entry.created_on)
            and self.modified.contains(entry.modified_on)
        ]


def _string_set(filters: Mapping[str, Any], name: str, item_key: str | None) -> frozenset[str]:
    """A list filter (``statuses: [..]`` or ``filial_codes: [{filial_code}]``) as a set.

    Empty or absent means "no filter" (an empty set). Items of object lists may also be
    given as plain strings.
    """
    value = filters.get(name)
    if value is None or value == "":
        return frozenset()
    items = value if isinstance(value, list) else [value]
    result: set[str] = set()
    for item in items:
        if item_key is not None and isinstance(item, Mapping):
            item = item.get(item_key)
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise _Rejection(400, f"Неверный формат запроса: поле {name}")
        result.add(str(item))
    return frozenset(result)


@dataclass(frozen=True)
class _OrderFilters:
    deal_id: str | None
    external_id: str | None
    filial_code: str | None
    filial_codes: frozenset[str]
    statuses: frozenset[str]
    deal: _Window
    delivery_date: datetime.date | None
    created: _Window
    modified: _Window
    filial_id: str | None  # from the header, not the body

    @classmethod
    def parse(
        cls, filters: Mapping[str, Any], *, filial_id: str | None, day_range_limit: int
    ) -> _OrderFilters:
        parsed = cls(
            deal_id=_filter_value(filters, "deal_id"),
            external_id=_filter_value(filters, "external_id"),
            filial_code=_filter_value(filters, "filial_code"),
            filial_codes=_string_set(filters, "filial_codes", "filial_code"),
            statuses=_string_set(filters, "statuses", None),
            deal=_Window.from_filters(filters, "begin_deal_date", "end_deal_date"),
            delivery_date=_filter_date(filters, "delivery_date"),
            created=_Window.from_filters(filters, "begin_created_on", "end_created_on"),
            modified=_Window.from_filters(filters, "begin_modified_on", "end_modified_on"),
            filial_id=filial_id,
        )
        for window in (parsed.deal, parsed.created, parsed.modified):
            window.check_span(day_range_limit)
        return parsed

    def accepts(self, entry: _OrderEntry) -> bool:
        return (
            (self.deal_id is None or entry.deal_id == self.deal_id)
            and (self.external_id is None or entry.external_id == self.external_id)
            and (self.filial_code is None or entry.filial_code == self.filial_code)
            and (not self.filial_codes or entry.filial_code in self.filial_codes)
            and (not self.statuses or entry.status in self.statuses)
            and (self.filial_id is None or entry.filial_id == self.filial_id)
            and (self.delivery_date is None or entry.delivery_date == self.delivery_date)
            and self.deal.contains(entry.deal_date)
            and self.created.contains(entry.deal_date)
            and self.modified.contains(entry.modified_on)
        )

    def select(self, entries: list[_OrderEntry]) -> list[_OrderEntry]:
        return [entry for entry in entries if self.accepts(entry)]


def _parse_body(raw: bytes) -> Any:
    """The request body as JSON, or None when it is empty or not JSON."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlainAnswer:
    """A small answer sent whole with Content-Length."""

    status: int
    body: bytes
    content_type: str = _TEXT_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, message: str, **headers: str) -> _PlainAnswer:
        return cls(status, message.encode("utf-8"), headers=headers)


@dataclass(frozen=True)
class _ExportAnswer:
    """A 200 export answer: ``prefix`` + records joined by commas + ``suffix``, chunked."""

    prefix: bytes
    records: Sequence[bytes]
    suffix: bytes
    headers: Mapping[str, str]
    truncate_at: float | None

    def body_length(self) -> int:
        separators = max(len(self.records) - 1, 0)
        return len(self.prefix) + sum(map(len, self.records)) + separators + len(self.suffix)

    def chunks(self, size: int) -> Iterator[bytes]:
        """The body in pieces of about ``size`` bytes (at least one piece)."""
        buffer = bytearray(self.prefix)
        separator = b""
        for record in self.records:
            buffer += separator
            buffer += record
            separator = b","
            if len(buffer) >= size:
                yield bytes(buffer)
                buffer.clear()
        buffer += self.suffix
        yield bytes(buffer)


class _DropAnswer:
    """Close the connection without answering."""


_Answer = _PlainAnswer | _ExportAnswer | _DropAnswer


def _status_of(answer: _Answer) -> int:
    """The status ``answer`` sends: 0 for a dropped connection."""
    if isinstance(answer, _DropAnswer):
        return 0
    if isinstance(answer, _ExportAnswer):
        return 200
    return answer.status


# --- HTTP plumbing ----------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its simulator and can close open keep-alive sockets."""

    daemon_threads = True
    block_on_close = False  # stop() must not wait for idle keep-alive connections

    def __init__(self, address: tuple[str, int], simulator: SmartUpSimulator) -> None:
        self.simulator = simulator
        self._open_sockets: set[socket.socket] = set()
        self._open_sockets_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall without DNS.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        with self._open_sockets_lock:
            self._open_sockets.add(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_sockets_lock:
            self._open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._open_sockets_lock:
            sockets = list(self._open_sockets)
        for connection in sockets:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away; nothing to report
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    """Reads one request, asks the simulator for the answer, and sends it."""

    protocol_version = "HTTP/1.1"
    server_version = "SmartUpSimulator/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request logging to stderr."""

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _serve(self) -> None:
        raw_body = self._read_body()
        if raw_body is None:
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        simulator = self.server.simulator
        endpoint, answer = simulator._answer(self.command, self.path, headers, raw_body)
        # Recorded before answering, so that a client which has its answer always finds
        # its request in ``simulator.requests``.
        simulator._record(
            RecordedRequest(
                endpoint=endpoint,
                path=self.path,
                headers=headers,
                body=_parse_body(raw_body),
                status=_status_of(answer),
            )
        )
        try:
            self._send(answer)
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None after answering 400."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked_body()
        length_header = self.headers.get("Content-Length", "0")
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError(length_header)
        except ValueError:
            self.close_connection = True
            self._send(_PlainAnswer.text(400, "Неверный заголовок Content-Length"))
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked_body(self) -> bytes | None:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self.close_connection = True
                self._send(_PlainAnswer.text(400, "Неверное кодирование тела запроса"))
                return None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, then the blank line
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(1024)

    def _send(self, answer: _Answer) -> int:
        """Send ``answer``; the status sent (0 when the connection was dropped)."""
        if isinstance(answer, _DropAnswer):
            self._break_connection()
            return 0
        if isinstance(answer, _ExportAnswer):
            self._send_export(answer)
            return 200
        self.send_response(answer.status, _REASON_PHRASES.get(answer.status))
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        return answer.status

    def _send_export(self, answer: _ExportAnswer) -> None:
        """Stream an export with chunked encoding, or break it off at ``truncate_at``."""
        self.send_response(200)
        self.send_header("Content-Type", _JSON_CONTENT_TYPE)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        cutoff = None
        if answer.truncate_at is not None:
            cutoff = int(answer.body_length() * answer.truncate_at)
        write = self.wfile.write
        sent = 0
        for chunk in answer.chunks(_CHUNK_SIZE):
            if cutoff is not None and sent + len(chunk) >= cutoff:
                # Announce the whole chunk but send only part of it, then hang up.
                write(b"%X\r\n%s" % (len(chunk), chunk[: cutoff - sent]))
                self._break_connection()
                return
            write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        write(b"0\r\n\r\n")

    def _break_connection(self) -> None:
        """Close the connection abruptly: no more bytes, no keep-alive."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


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
    7. Orders: a begin/end pair of ``deal_date``, ``created_on`` or ``modified_on`` that
       spans more than ``day_range_limit`` days (inclusive) -> 400 "A02-24-051 ...".

    Then the filtered records are sent as ``{"inventory"|"order": [...], "limits": {...}}``.
    ``limits.request_quant`` counts every POST to that endpoint so far, this one included.

    Products carry no dates, so the simulator keeps ``created_on``/``modified_on`` per
    product beside the data (01.01.2026 when loaded; :meth:`update_product` sets
    ``modified_on`` to today). An order's ``created_on`` is its deal date and its
    ``modified_on`` is the deal date until :meth:`update_order` changes it.

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
            new = _product_entry(
                record, created_on=old.created_on, modified_on=datetime.date.today()
            )
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
            new = _order_entry(record, modified_on=modified_on or datetime.date.today())
            self._orders.replace(deal_id, new)

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
            answer = dataclasses.replace(
                answer, headers=fault.headers, truncate_at=fault.truncate_at
            )
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
        filters = {} if not raw_body.strip() else _parse_body(raw_body)
        if not isinstance(filters, dict):
            raise _Rejection(400, _BAD_BODY)
        if endpoint == "products":
            product_filters = _ProductFilters.parse(filters)
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
        limit = _DAILY_LIMIT[endpoint]
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


def _scripted_answer(fault: Fault) -> _Answer | None:
    """What a fault answers instead of the export, or None to answer normally."""
    if fault.drop_connection:
        return _DropAnswer()
    if fault.status is not None:
        message = fault.body
        if message is None:
            message = _DEFAULT_MESSAGES.get(fault.status, f"Ошибка {fault.status}")
        return _PlainAnswer(fault.status, _bytes(message), fault.content_type, fault.headers)
    if fault.invalid_json:
        page = _HTML_ERROR_PAGE if fault.body is None else fault.body
        return _PlainAnswer(200, _bytes(page), _JSON_CONTENT_TYPE, fault.headers)
    return None


def _bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body
