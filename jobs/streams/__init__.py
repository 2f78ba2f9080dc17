"""The streams we sync, declared: one module each (``catalogue``, ``orders``, ``groups``,
``prices``, ``stock``), on the shape in :mod:`jobs.streams.base`. Importing this package
registers them; everything else iterates the registry (:data:`STREAMS`,
:func:`enabled_streams`), and nothing outside the declarations names a stream."""

from __future__ import annotations

from jobs.streams import catalogue, groups, orders, prices, stock  # noqa: F401  (registers)
from jobs.streams.base import _DECLARED as STREAMS
from jobs.streams.base import (
    DOCUMENTS,
    POOLS,
    REFERENCE,
    Call,
    Export,
    Span,
    Stream,
    date_windows,
    declare,
    declared,
    declared_names,
    default_streams,
    enabled_streams,
    kinds_of,
    streams_of,
    undeclare,
)

__all__ = [
    "DOCUMENTS",
    "POOLS",
    "REFERENCE",
    "STREAMS",
    "Call",
    "Export",
    "Span",
    "Stream",
    "date_windows",
    "declare",
    "declared",
    "declared_names",
    "default_streams",
    "enabled_streams",
    "kinds_of",
    "streams_of",
    "undeclare",
]
