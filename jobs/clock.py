"""The one clock of the worker: the time now, time zone aware, in UTC.

Rows, run records and job markers are stamped with it; what a run calls "now" for the
company's day is taken once at the run's start, held in :class:`jobs.day.steps.RunDay`,
and passed down.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, in UTC (aware)."""
    return datetime.now(UTC)
