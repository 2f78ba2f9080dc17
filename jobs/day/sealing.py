"""Sealed days: which company days a stream need not ask SmartUp for again.

A company day (``SMARTUP_TIMEZONE``) is *sealed* for a stream and filial once a successful
request covering it was made after that day had ended, plus a margin
(``SYNC_SEAL_MINUTES``) for SmartUp committing late and for clocks that disagree. What
this assumes of SmartUp: a record changed on day D carries a ``modified_on`` of D, and is
visible to exports by D's end plus the margin. When that fails (a change committed later,
or dated earlier), only the sweep (the whole window, or the whole catalogue) catches it.

Sealing is contiguous: ``sealed_through`` is the newest day such that every day up to it
is sealed. An incremental run then asks from the first unsealed day to today: on most
runs that is today alone, and the first run after midnight (and the margin) reads
yesterday and today once.

Pure arithmetic, no storage: :mod:`jobs.day.state` keeps ``sealed_through`` beside the
watermark (:func:`jobs.day.state.record_sealed`, :func:`jobs.day.state.sealed_through`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo

from jobs.settings import SEAL_MINUTES_MAX, SEAL_MINUTES_MIN


def newest_ended_day(requested_at: datetime, *, tz: tzinfo, seal_minutes: int) -> date:
    """The newest company day that had ended, margin included, when a request was made
    at ``requested_at`` (an aware moment): a request made then can seal it."""
    if requested_at.tzinfo is None:
        raise ValueError("requested_at must be time zone aware")
    if not SEAL_MINUTES_MIN <= seal_minutes <= SEAL_MINUTES_MAX:
        raise ValueError(
            f"seal_minutes must be between {SEAL_MINUTES_MIN} and {SEAL_MINUTES_MAX}, "
            f"not {seal_minutes}"
        )
    moved = (requested_at - timedelta(minutes=seal_minutes)).astimezone(tz)
    return moved.date() - timedelta(days=1)


def sealed_after(
    *,
    sealed_through: date | None,
    first: date | None,
    last: date,
    requested_at: datetime,
    tz: tzinfo,
    seal_minutes: int,
) -> date | None:
    """The newest sealed day once a successful request covering the days ``first`` to
    ``last`` (both included; ``first`` None: every day, the whole catalogue) was made at
    ``requested_at``.

    The request seals the days it covered that had ended (margin included) when it was
    made. It moves ``sealed_through`` only when it leaves no unsealed day behind: it must
    start at most the day after ``sealed_through`` (any start will do when nothing was
    sealed yet: the first request of a stream is a sweep, the whole window). Never moves
    back.
    """
    if first is not None and first > last:
        raise ValueError(f"first ({first}) is after last ({last})")
    newest = min(last, newest_ended_day(requested_at, tz=tz, seal_minutes=seal_minutes))
    if first is not None and newest < first:
        return sealed_through  # nothing it covered had ended
    if sealed_through is None:
        return newest
    if first is not None and first > sealed_through + timedelta(days=1):
        return sealed_through  # a gap: the days between stay unsealed
    return max(sealed_through, newest)


def first_day_to_ask(*, sealed_through: date | None, today: date, catch_up_first: date) -> date:
    """The first day an incremental run asks for: the first unsealed day, never later
    than ``today`` and never earlier than ``catch_up_first`` (how far back a run catches
    up, e.g. ``today - (CATCH_UP_DAYS - 1)``; also where a run starts when nothing is
    sealed yet)."""
    if catch_up_first > today:
        raise ValueError(f"catch_up_first ({catch_up_first}) is after today ({today})")
    if sealed_through is None:
        return catch_up_first
    return min(today, max(catch_up_first, sealed_through + timedelta(days=1)))
