"""The HTTP side of the simulator: a threading server and its request handler, which
reads a request, asks the simulator for the answer, records the request and sends it."""

# Error messages are Russian, as SmartUp's are; ruff's confusable-letter check is off.

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any

from jobs.simulator.faults import (
    Answer,
    DropAnswer,
    ExportAnswer,
    PlainAnswer,
    status_of,
)
from jobs.simulator.filters import parse_body

if TYPE_CHECKING:
    from jobs.simulator.server import SmartUpSimulator

_CHUNK_SIZE = 64 * 1024

_REASON_PHRASES: dict[int, str] = {481: "Project Invisible", 608: "Failed To Get A Connection"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the simulator received.

    Attributes:
        endpoint: the export's name (``"products"``, ``"orders"``, ``"stock"``...; see
            ``PATHS``) or ``"unknown"`` (any other path).
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


class SimulatorHTTPServer(ThreadingHTTPServer):
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
    server: SimulatorHTTPServer

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
        endpoint, answer = simulator.answer(self.command, self.path, headers, raw_body)
        # Recorded before answering, so that a client which has its answer always finds
        # its request in ``simulator.requests``.
        simulator.record_request(
            RecordedRequest(
                endpoint=endpoint,
                path=self.path,
                headers=headers,
                body=parse_body(raw_body),
                status=status_of(answer),
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
            self._send(PlainAnswer.text(400, "Неверный заголовок Content-Length"))
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
                self._send(PlainAnswer.text(400, "Неверное кодирование тела запроса"))
                return None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, then the blank line
                    pass
                return bytes(body)
            body += self.rfile.read(size)
            self.rfile.readline(1024)

    def _send(self, answer: Answer) -> int:
        """Send ``answer``; the status sent (0 when the connection was dropped)."""
        if isinstance(answer, DropAnswer):
            self._break_connection()
            return 0
        if isinstance(answer, ExportAnswer):
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

    def _send_export(self, answer: ExportAnswer) -> None:
        """Stream an export with chunked encoding, or break it off at ``truncate_at``."""
        self.send_response(200)
        self.send_header("Content-Type", answer.content_type)
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
