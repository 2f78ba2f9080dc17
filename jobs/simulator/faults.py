"""Scripted misbehaviour (:class:`Fault`) and the answers the simulator sends.

An answer is a small plain reply (:class:`PlainAnswer`), a streamed export
(:class:`ExportAnswer`) or a dropped connection (:class:`DropAnswer`); a fault turns a
request's normal answer into one of the others.
"""

# Error messages are Russian, as SmartUp's are; ruff's confusable-letter check is off.
# ruff: noqa: RUF001

from __future__ import annotations

import codecs
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"

AUTH_REQUIRED = "Требуется авторизация"
PROJECT_INVISIBLE = "Проект невидим"
_HTML_ERROR_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
DEFAULT_MESSAGES: dict[int, str] = {
    400: "Неверный запрос",
    401: AUTH_REQUIRED,
    403: "Доступ запрещён",
    404: "Не найдено",
    405: "Метод не поддерживается",
    429: "Слишком много запросов, повторите попытку позже",
    481: PROJECT_INVISIBLE,
    500: "Внутренняя ошибка сервера",
    502: "Ошибка шлюза",
    503: "Сервис временно недоступен",
    504: "Превышено время ожидания ответа",
    608: "Failed to get a connection",
}


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One scripted misbehaviour, consumed by one request to an endpoint.

    A fault with no field set is a normal answer. Otherwise, in this order: ``delay``
    is slept first; then ``drop_connection`` wins over ``status``, which wins over
    ``invalid_json``; ``truncate_at`` applies to what is left, a normal answer (it cuts
    200 answers only; an auth or filter error is sent whole). ``headers`` are added to
    whatever answer is sent. ``encoding``, ``bom`` and ``export_content_type`` change how
    a normal export is sent (and ``encoding`` how a text ``body`` is).

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
        encoding: send the export (or a text ``body``) encoded in this Python codec
            instead of UTF-8 (e.g. ``"cp1251"``, ``"utf-16-le"``), strictly: a record it
            cannot encode breaks the answer off. Its Content-Type then says
            ``application/json; charset=<encoding>`` unless ``export_content_type`` is set.
        bom: bytes sent before the export body, e.g. ``codecs.BOM_UTF8`` (not encoded).
        export_content_type: the Content-Type header of the export, whatever its bytes
            (e.g. ``"application/json; charset=x-unknown"`` over UTF-8 bytes).
    """

    status: int | None = None
    body: str | bytes | None = None
    content_type: str = _TEXT_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    truncate_at: float | None = None
    invalid_json: bool = False
    drop_connection: bool = False
    encoding: str | None = None
    bom: bytes = b""
    export_content_type: str | None = None

    def __post_init__(self) -> None:
        if self.encoding is not None:
            codecs.lookup(self.encoding)  # LookupError now rather than in the server thread
        if self.status is not None and not 100 <= self.status <= 999:
            raise ValueError(f"status must be a three-digit HTTP status, not {self.status}")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        if self.truncate_at is not None and not 0.0 <= self.truncate_at <= 1.0:
            raise ValueError("truncate_at must be a fraction between 0 and 1")


# --- answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlainAnswer:
    """A small answer sent whole with Content-Length."""

    status: int
    body: bytes
    content_type: str = _TEXT_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, status: int, message: str, **headers: str) -> PlainAnswer:
        return cls(status, message.encode("utf-8"), headers=headers)


@dataclass(frozen=True)
class ExportAnswer:
    """A 200 export answer: ``prefix`` + records joined by commas + ``suffix``, chunked."""

    prefix: bytes
    records: Sequence[bytes]
    suffix: bytes
    headers: Mapping[str, str]
    truncate_at: float | None
    content_type: str = _JSON_CONTENT_TYPE
    encoding: str | None = None  # re-encode the (UTF-8) body in this codec
    bom: bytes = b""  # sent before the body

    def body_length(self) -> int:
        if self.encoding is not None:
            return sum(map(len, self.chunks(64 * 1024)))
        separators = max(len(self.records) - 1, 0)
        return (
            len(self.bom)
            + len(self.prefix)
            + sum(map(len, self.records))
            + separators
            + len(self.suffix)
        )

    def chunks(self, size: int) -> Iterator[bytes]:
        """The body in pieces of about ``size`` bytes (at least one piece), in its encoding."""
        if self.encoding is None:
            yield from self._utf8_chunks(size, self.bom)
            return
        encoder = codecs.getincrementalencoder(self.encoding)("strict")
        pieces = list(self._utf8_chunks(size, b""))
        for number, piece in enumerate(pieces):  # whole records: each piece is whole UTF-8
            final = number == len(pieces) - 1
            encoded = encoder.encode(piece.decode("utf-8"), final=final)
            yield self.bom + encoded if number == 0 else encoded

    def _utf8_chunks(self, size: int, bom: bytes) -> Iterator[bytes]:
        buffer = bytearray(bom + self.prefix)
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


class DropAnswer:
    """Close the connection without answering."""


Answer = PlainAnswer | ExportAnswer | DropAnswer


def status_of(answer: Answer) -> int:
    """The status ``answer`` sends: 0 for a dropped connection."""
    if isinstance(answer, DropAnswer):
        return 0
    if isinstance(answer, ExportAnswer):
        return 200
    return answer.status


def scripted_answer(fault: Fault) -> Answer | None:
    """What a fault answers instead of the export, or None to answer normally."""
    if fault.drop_connection:
        return DropAnswer()
    if fault.status is not None:
        message = fault.body
        if message is None:
            message = DEFAULT_MESSAGES.get(fault.status, f"Ошибка {fault.status}")
        return PlainAnswer(
            fault.status, _bytes(message, fault.encoding), fault.content_type, fault.headers
        )
    if fault.invalid_json:
        page = _HTML_ERROR_PAGE if fault.body is None else fault.body
        return PlainAnswer(200, _bytes(page, fault.encoding), _JSON_CONTENT_TYPE, fault.headers)
    return None


def faulted_export(answer: ExportAnswer, fault: Fault) -> ExportAnswer:
    """A normal export answer changed as ``fault`` says (headers, truncation, charset)."""
    content_type = fault.export_content_type
    if content_type is None:
        content_type = (
            answer.content_type
            if fault.encoding is None
            else f"application/json; charset={fault.encoding}"
        )
    return dataclasses.replace(
        answer,
        headers=fault.headers,
        truncate_at=fault.truncate_at,
        content_type=content_type,
        encoding=fault.encoding,
        bom=fault.bom,
    )


def _bytes(body: str | bytes, encoding: str | None = None) -> bytes:
    return body.encode(encoding or "utf-8") if isinstance(body, str) else body
