"""The streams we sync, declared: one module each (``catalogue``, ``orders``, ``groups``,
``prices``, ``stock``), on the shape in :mod:`jobs.pipeline.streams.base`, in the streams'
own terms: quota pools (:mod:`~jobs.pipeline.streams.pools`), how far a run reaches
(:mod:`~jobs.pipeline.streams.reach`) and what a complete answer settles
(:mod:`~jobs.pipeline.streams.settle`). Importing this package registers them; everything
else iterates the registry (:data:`STREAMS`, :func:`enabled_streams`), and nothing outside
the declarations names a stream."""

from __future__ import annotations

from jobs.pipeline.streams import catalogue, groups, orders, prices, stock  # noqa: F401  (registers)
from jobs.pipeline.streams.base import _DECLARED as STREAMS
from jobs.pipeline.streams.base import (
    Call,
    Export,
    Span,
    Stream,
    declare,
    declared,
    declared_names,
    default_streams,
    enabled_streams,
    kinds_of,
    streams_of,
    undeclare,
)
from jobs.pipeline.streams.pools import DOCUMENTS, POOLS, REFERENCE
from jobs.pipeline.streams.reach import date_windows

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
