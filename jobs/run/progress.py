"""A run's progress while it works: the request in hand, records received, elapsed time.

The engine tells a :class:`~jobs.pipeline.engine.Progress` what it does (a stream starts,
a request is made or made again, a batch of records is read, an answer is applied); that
costs a few integer updates. A :class:`ProgressReporter` turns it into a plain snapshot and
hands it to its *sinks* (the job's ``meta``, the run row, a terminal line) from a thread of
its own, about once a second: the engine never waits on Redis or the database for it, the
figures keep moving while a slow request waits for its answer, and a sink that fails or
hangs costs the run nothing (the failure is logged once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from jobs.pipeline.smartup import ExportRequest

Snapshot = dict[str, Any]
Sink = Callable[[Snapshot], None]
EVERY_SECONDS = 1.0


def request_label(requests: Sequence[ExportRequest], number: int) -> str:
    """``orders export, filial 101, window 2/5``: the call in hand among its filial's."""
    request = requests[number]
    parts = [f"{request.name} export"]
    if request.filial_id:
        parts.append(f"filial {request.filial_id}")
    same = [n for n, r in enumerate(requests) if r.filial_id == request.filial_id]
    if len(same) > 1:
        word = "window" if request.days is not None else "request"
        parts.append(f"{word} {same.index(number) + 1}/{len(same)}")
    return ", ".join(parts)


def format_progress(snapshot: Snapshot | None) -> str:
    """One line for a terminal or ``status``: ``orders export, filial 101, window 2/5:
    4,000 orders received, 0:42``."""
    if not snapshot:
        return "starting"
    elapsed = int(snapshot.get("elapsed_s") or 0)
    minutes, seconds = divmod(elapsed, 60)
    request = snapshot.get("request") or "starting"
    received = snapshot.get("received") or 0
    stream = snapshot.get("stream") or "records"
    return f"{request}: {received:,} {stream} received, {minutes}:{seconds:02d}"


class ProgressReporter:
    """Keeps the figures the engine reports and publishes them to ``sinks`` about once
    every ``every_seconds``, and once more when closed. Use as a context manager."""

    def __init__(
        self,
        *,
        kind: str,
        sinks: Sequence[Sink],
        every_seconds: float = EVERY_SECONDS,
        log: Any = None,
    ) -> None:
        self.kind = kind
        self.sinks = list(sinks)
        self.every_seconds = every_seconds
        self.log = log
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stream: str | None = None
        self._requests: Sequence[ExportRequest] = ()
        self._number: int | None = None
        self._done = 0  # records of the stream's applied answers
        self._current = 0  # records of the answer being read
        self._failed: set[int] = set()  # sinks whose failure was logged already
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what the engine calls (Progress) --------------------------------------------
    def stream(self, name: str, requests: Sequence[ExportRequest]) -> None:
        with self._lock:
            self._stream, self._requests = name, list(requests)
            self._number, self._done, self._current = None, 0, 0

    def request(self, number: int) -> None:
        with self._lock:
            self._number, self._current = number, 0

    def received(self, count: int) -> None:
        with self._lock:
            self._current += count

    def answered(self) -> None:
        with self._lock:
            self._done, self._current = self._done + self._current, 0

    # -- publishing ---------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        with self._lock:
            number, requests = self._number, self._requests
            return {
                "kind": self.kind,
                "stream": self._stream,
                "request": request_label(requests, number) if number is not None else None,
                "request_no": number + 1 if number is not None else 0,
                "requests": len(requests),
                "received": self._done + self._current,
                "elapsed_s": round(time.monotonic() - self._started, 1),
                "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }

    def publish(self) -> None:
        snapshot = self.snapshot()
        for number, sink in enumerate(self.sinks):
            try:
                sink(snapshot)
            except Exception as error:  # progress must never fail the run
                if number not in self._failed and self.log is not None:
                    self._failed.add(number)
                    self.log.warning("sync.progress.error", error=f"{type(error).__name__}")

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            self.publish()
        self.publish()
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                with suppress(Exception):  # closing a progress sink may fail quietly
                    close()

    def __enter__(self) -> ProgressReporter:
        if self.sinks:
            self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            # a sink that hangs (Redis, the database) is left behind, never waited for
            self._thread.join(timeout=self.every_seconds + 10)


class TerminalLine:
    """A sink that redraws one line on a terminal (stderr), ended with a newline on close."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._width = 0

    def __call__(self, snapshot: Snapshot) -> None:
        line = format_progress(snapshot)
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        if self._width:
            self.stream.write("\n")
            self.stream.flush()
