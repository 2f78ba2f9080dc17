"""Rows into PostgreSQL's COPY text format, and a sender that applies batches (their
COPY statements, then their merge) on a thread of its own."""

from __future__ import annotations

import ctypes
import io
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from jobs.pipeline.records import JSONText

COPY_BUFFER_BYTES = 4 * 1024 * 1024
COPY_READ_BYTES = 1024 * 1024  # what psycopg2 reads (copies) from a batch at a time
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def keep_batches_out_of_the_heap() -> None:
    """Have glibc give every block of 128 KiB or more (a batch, psycopg2's reads) its own
    mapping, returned to the system when freed.

    By default glibc raises that threshold to the size of each big block freed, up to
    32 MiB, so after the first few batches every batch lands on the heap, whose freed
    holes do not go back: peak RSS then grows with the number of batches (measured: an
    orders first sync peaks 9 MB higher at 50,000 orders than at 2,000; with the
    threshold fixed, 1 MB). Setting it also turns that adjustment off. Elsewhere (musl,
    macOS) this does nothing."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def _copy_text(text: str) -> str:
    """Escape text for COPY's text format. Most values hold nothing to escape, and
    ``in`` tests are far cheaper than building a new string."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t")
        text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_value(value: Any) -> str:
    # One dict look-up for the common types; the isinstance chain only for the rest.
    format_value = _FORMATS.get(type(value))
    if format_value is not None:
        return format_value(value)
    if isinstance(value, str):
        return _copy_text(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (list, dict)):
        return _copy_text(orjson.dumps(value).decode())
    return str(value)


_FORMATS: dict[type, Callable[[Any], str]] = {
    str: _copy_text,
    JSONText: _copy_text,
    type(None): lambda _: "\\N",
    bool: lambda value: "t" if value else "f",
    int: str,
    Decimal: str,
    date: str,
    datetime: str,
}


class BatchSender:
    """Applies batches on a thread of its own, one at a time and in order, on the load's
    connection: each batch's COPY statements, then, if asked, ``after_each`` (its merge).
    So PostgreSQL takes in and merges one batch while this process parses the next
    (psycopg2 lets go of the GIL while it waits). At most one batch waits while another
    is applied.

    psycopg2 does not keep a COPY and another statement on the same connection apart:
    nothing else may use the connection until :meth:`close` returns."""

    def __init__(self, connection: Any, *, after_each: Callable[[Any], None]) -> None:
        self._cursor = connection.cursor()
        self._after_each = after_each
        self._batches: queue.Queue[tuple[list[tuple[str, bytes]], bool] | None] = queue.Queue(
            maxsize=1
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="batch-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            if self._error is None:
                copies, then_after_each = batch
                try:
                    for sql, data in copies:
                        self._cursor.copy_expert(sql, io.BytesIO(data), size=COPY_READ_BYTES)
                    if then_after_each:
                        self._after_each(self._cursor)
                except BaseException as error:  # handed to the caller's thread
                    self._error = error

    def send(self, copies: list[tuple[str, bytes]], *, then_after_each: bool) -> None:
        """Queue COPY statements with their data, and whether ``after_each`` follows."""
        self._raise_error()
        self._batches.put((copies, then_after_each))

    def close(self) -> None:
        """Wait until every batch is applied; raise the first error, if any."""
        self._batches.put(None)
        self._thread.join()
        self._cursor.close()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


class CopyBuffer:
    """Rows as COPY text for one table, taken out as a batch when the loader says.

    Lines are encoded to UTF-8 :data:`LINES_A_CHUNK` at a time: text holding one Cyrillic
    letter takes two or four bytes a character as ``str``, so a batch is kept as bytes, and
    is joined once, into the bytes COPY sends, with no ``str`` copy of the whole batch."""

    LINES_A_CHUNK = 64

    def __init__(self, table: str, columns: Sequence[str]) -> None:
        self.sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        self._lines: list[str] = []  # not encoded yet
        self._chunks: list[bytes] = []
        self.size = 0  # characters held (as many bytes, or more)

    def add(self, values: Iterable[Any]) -> None:
        self.add_line("\t".join(map(_copy_value, values)) + "\n")

    def add_line(self, line: str) -> None:
        self._lines.append(line)
        self.size += len(line)
        if len(self._lines) >= self.LINES_A_CHUNK:
            self._chunks.append("".join(self._lines).encode())
            self._lines = []

    def take(self) -> list[tuple[str, bytes]]:
        """The COPY statement and its data (BytesIO takes the bytes uncopied), or nothing
        when the buffer is empty."""
        if self._lines:
            self._chunks.append("".join(self._lines).encode())
        if not self._chunks:
            return []
        data = b"".join(self._chunks)
        self._lines, self._chunks, self.size = [], [], 0
        return [(self.sql, data)]
