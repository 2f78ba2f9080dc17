"""Structured logs: one JSON object per line on stdout, with ``event``, ``level`` and ``ts``.

Inside a run, :func:`bind_run` adds ``run_id`` and ``run_type`` to every line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

_configured = False


def configure_logging(*, level: int = logging.INFO, stream: Any = None) -> None:
    """Configure structlog once per process (idempotent). ``stream``: stdout unless
    given (``check`` keeps stdout for its problem lines)."""
    global _configured
    if _configured:
        return
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger() -> Any:
    configure_logging()
    return structlog.get_logger("smartup_sync")


@contextmanager
def bind_run(run_id: int, run_type: str) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(run_id=run_id, run_type=run_type):
        yield
