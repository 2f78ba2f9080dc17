"""How far one run of a stream reaches back, and the date windows SmartUp allows.

A stream declares one of the reaches below; :func:`jobs.day.plan.reach_for` turns it, with
the state kept between runs, into a :class:`Reach` per filial, which the stream's calls cut
into windows of at most ``day_range_limit`` days (:func:`date_windows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

DAY_SECONDS = 86400
DAY_RANGE_LIMIT = 7  # SmartUp answers date-filtered requests of at most this many days
INCREMENTAL_DAYS = 2
"""Days an incremental run asks for at most between sweeps, once days are sealed
(:mod:`jobs.day.sealing`): the first unsealed day to today, which is today alone on most
runs and yesterday and today on the first run after midnight."""

# How far one run of a stream reaches (a stream declares one of these):
MODIFIED = "modified"  # modified since a day; the whole set when due or too far back
MODIFIED_WINDOWS = "modified-windows"  # modified since a day, in windows; sweeps of days back
SNAPSHOT = "snapshot"  # the whole set, every run
SNAPSHOT_TODAY = "snapshot-today"  # the whole set as of the company's today, every run
REACHES = (MODIFIED, MODIFIED_WINDOWS, SNAPSHOT, SNAPSHOT_TODAY)


@dataclass(frozen=True)
class Reach:
    """What one run asks of one stream for one filial: the modification days ``first``
    to ``last`` (both included; ``first`` None: everything, the whole set), and whether
    that is a sweep (its completion is recorded, and resets the sweep period)."""

    first: date | None
    last: date
    sweep: bool


def windows_for(days: int, *, day_range_limit: int = DAY_RANGE_LIMIT) -> int:
    """Date windows SmartUp needs for ``days`` calendar days (at least one)."""
    return max(1, math.ceil(days / max(day_range_limit, 1)))


def date_windows(
    first: date, last: date, *, days: int = DAY_RANGE_LIMIT
) -> list[tuple[date, date]]:
    """``first..last`` (both included) cut into windows of at most ``days`` days, oldest first."""
    if days < 1:
        raise ValueError("a window holds at least one day")
    windows = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=days - 1))
        windows.append((start, end))
        start = end + timedelta(days=1)
    return windows
