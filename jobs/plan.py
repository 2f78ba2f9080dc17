"""The day's request budget: pure arithmetic over settings and the quotas seen.

SmartUp allows each company a number of export requests a day per kind of data, shared
with every other program on the same login. Part of it (the reserve) is kept for
resyncs asked for on demand; periodic runs plan their cadence within the rest.
``schedule.py``, the tasks and the ``plan``/``check`` commands all ask this module; none
computes its own.
"""

from __future__ import annotations

import math

DEFAULT_QUOTAS: dict[str, int] = {"products": 100, "orders": 500}
"""Requests a day per stream when SmartUp has not told us its ``limit_quant`` yet."""


def quota_for(stream: str, *, limit_seen: int | None) -> int:
    """The daily quota of ``stream``: the latest ``limit_quant`` seen, else the default."""
    if limit_seen is not None and limit_seen > 0:
        return limit_seen
    return DEFAULT_QUOTAS[stream]


def reserve_for(quota: int, *, reserve_percent: int) -> int:
    """Requests of ``quota`` kept for on-demand resyncs (rounded up)."""
    if not 0 <= reserve_percent <= 100:
        raise ValueError(f"reserve_percent must be between 0 and 100, not {reserve_percent}")
    return math.ceil(quota * reserve_percent / 100)
