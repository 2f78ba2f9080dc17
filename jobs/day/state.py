"""What the worker knows between runs, kept in PostgreSQL (Redis may restart empty).

Per stream and filial: the *watermark* (the newest SmartUp day fully covered by a
successful request), when the last complete sweep ended, the last success, and the
``day_range_limit`` SmartUp last sent. Per quota pool (SmartUp counts its quota per class
of export, :mod:`jobs.pipeline.streams.pools`): SmartUp's ``limits`` as last seen on any
export of the pool, with the company day they count for, so a new day starts with no
quota seen. The web app may read both tables directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jobs.clock import utc_now
from jobs.models import QuotaSeen, SyncState

NO_FILIAL = ""  # the filial key of a request made without a filial_id header


@dataclass(frozen=True)
class Quota:
    """SmartUp's daily quota for one pool (``stream`` holds the pool's name) as last
    seen. Numbers are None when SmartUp did not send them (or sent something that is not
    a number)."""

    stream: str
    day: date  # the company day these figures count for
    limit: int | None  # limits.limit_quant: requests allowed a day
    used: int | None  # limits.request_quant: requests made today, by every program
    left: int | None  # limits.left_limit_quant
    spent: bool  # SmartUp refused a request because the quota was spent
    seen_at: datetime

    @property
    def exhausted(self) -> bool:
        return self.spent or self.left == 0


@dataclass(frozen=True)
class StreamState:
    stream: str
    filial_id: str
    watermark: date | None
    last_sweep_at: datetime | None
    last_success_at: datetime | None
    sealed_through: date | None = None  # the newest sealed day (jobs.day.sealing)
    day_range_limit: int | None = None  # the last day_range_limit kept for its export


def _count(value: Any) -> int | None:
    """A ``limits`` figure: SmartUp sends numbers as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def record_limits(
    stream: str, limits: Mapping[str, Any], *, day: date, now: datetime | None = None
) -> Quota:
    """Keep the ``limits`` object of an answer to ``stream``, seen on company ``day``."""
    quota = Quota(
        stream=stream,
        day=day,
        limit=_count(limits.get("limit_quant")),
        used=_count(limits.get("request_quant")),
        left=_count(limits.get("left_limit_quant")),
        spent=False,
        seen_at=now or utc_now(),
    )
    _save_quota(quota)
    return quota


def record_quota_spent(stream: str, *, day: date, now: datetime | None = None) -> Quota:
    """SmartUp refused a request to ``stream`` because today's quota is spent."""
    seen = latest_quota(stream)
    same_day = seen is not None and seen.day == day
    quota = Quota(
        stream=stream,
        day=day,
        limit=seen.limit if seen else None,
        used=seen.used if seen and same_day else None,
        left=0,
        spent=True,
        seen_at=now or utc_now(),
    )
    _save_quota(quota)
    return quota


def _save_quota(quota: Quota) -> None:
    values = {
        "day": quota.day,
        "limit_quant": quota.limit,
        "request_quant": quota.used,
        "left_limit_quant": quota.left,
        "spent": quota.spent,
        "seen_at": quota.seen_at,
    }
    QuotaSeen.insert(stream=quota.stream, **values).on_conflict(
        conflict_target=[QuotaSeen.stream], update=values
    ).execute()


def latest_quota(stream: str) -> Quota | None:
    """The last ``limits`` seen for ``stream``, whatever day they counted for."""
    row = QuotaSeen.get_or_none(QuotaSeen.stream == stream)
    if row is None:
        return None
    return Quota(
        stream=row.stream,
        day=row.day,
        limit=row.limit_quant,
        used=row.request_quant,
        left=row.left_limit_quant,
        spent=row.spent,
        seen_at=row.seen_at,
    )


def limits_seen() -> dict[str, int | None]:
    """The latest ``limit_quant`` seen per pool (None: not sent), for the plan: every
    pool seen, whatever day (a pool never seen is missing)."""
    return {row.stream: row.limit_quant for row in QuotaSeen.select()}


def record_day_range(stream: str, filial_id: str | None, limits: Mapping[str, Any]) -> None:
    """Keep the ``day_range_limit`` of an answer to ``stream``'s own export (when it sends
    one): the last value seen is the one kept, up or down."""
    days = _count(limits.get("day_range_limit"))
    if days is None or days < 1:
        return
    row = _state_row(stream, filial_id)
    if row.day_range_limit != days:
        row.day_range_limit = days
        row.save()


def lower_day_range(stream: str, filial_id: str | None, days: int) -> None:
    """SmartUp refused a window of ``stream``'s export (asked for ``filial_id``) as too
    long: keep ``days`` as its ``day_range_limit`` on that filial's state and on every
    other of the stream that holds a larger one (or none), so the rest of the run and the
    plan count windows of at most ``days``."""
    if days < 1:
        raise ValueError(f"a window holds at least one day, not {days}")
    _state_row(stream, filial_id)
    SyncState.update(day_range_limit=days, updated_at=utc_now()).where(
        (SyncState.stream == stream)
        & (SyncState.day_range_limit.is_null() | (SyncState.day_range_limit > days))
    ).execute()


def day_range_limits() -> dict[str, int]:
    """The smallest ``day_range_limit`` last seen per stream (over its filials)."""
    found: dict[str, int] = {}
    for row in SyncState.select().where(SyncState.day_range_limit.is_null(False)):
        days = int(row.day_range_limit or 0)
        found[row.stream] = min(found.get(row.stream, days), days)
    return found


def quota_today(stream: str, *, today: date) -> Quota | None:
    """What is known of ``stream``'s quota on company day ``today``; None when nothing
    was seen today (the quota resets at midnight, company time)."""
    quota = latest_quota(stream)
    return quota if quota is not None and quota.day == today else None


def stream_state(stream: str, filial_id: str | None = None) -> StreamState | None:
    row = SyncState.get_or_none(
        (SyncState.stream == stream) & (SyncState.filial_id == (filial_id or NO_FILIAL))
    )
    return _state(row) if row is not None else None


def stream_states(stream: str) -> dict[str, StreamState]:
    """Every state kept for ``stream``, by filial key (:data:`NO_FILIAL` for none), read in
    one query."""
    rows = SyncState.select().where(SyncState.stream == stream)
    return {row.filial_id: _state(row) for row in rows}


def all_states() -> list[StreamState]:
    rows = SyncState.select().order_by(SyncState.stream, SyncState.filial_id)
    return [_state(row) for row in rows]


def data_age(states: Iterable[StreamState], *, now: datetime, counts: Any = None) -> float | None:
    """How old a stream's data is, in seconds: the time since the last successful request
    of its state key that succeeded longest ago (``states``: the stream's, filtered by
    ``counts(key)`` when given). SmartUp does not say when a record changed, so this is
    what can be known in production: it bounds the staleness of every record. None when a
    key never succeeded (or there is no state)."""
    ages = []
    for state in states:
        if counts is not None and not counts(state.filial_id):
            continue
        if state.last_success_at is None:
            return None
        ages.append((now - state.last_success_at).total_seconds())
    return round(max(ages)) if ages else None


def advance_watermark(
    stream: str, filial_id: str | None, day: date, *, now: datetime | None = None
) -> None:
    """Record that SmartUp's ``stream`` is fully read up to ``day`` (never moves back)."""
    row = _state_row(stream, filial_id)
    if row.watermark is None or day > row.watermark:
        row.watermark = day
    row.last_success_at = row.updated_at = now or utc_now()
    row.save()


def mark_sweep(stream: str, filial_id: str | None, *, now: datetime | None = None) -> None:
    """Record that a complete sweep (the whole window, or the whole catalogue) just ended."""
    row = _state_row(stream, filial_id)
    row.last_sweep_at = row.last_success_at = row.updated_at = now or utc_now()
    row.save()


def clear_sweep(stream: str, filial_id: str | None) -> None:
    """Forget the last sweep: the next run of ``stream`` sweeps (asks for everything) again."""
    SyncState.update(last_sweep_at=None, updated_at=utc_now()).where(
        (SyncState.stream == stream) & (SyncState.filial_id == (filial_id or NO_FILIAL))
    ).execute()


def _state_row(stream: str, filial_id: str | None) -> SyncState:
    key = filial_id or NO_FILIAL
    SyncState.insert(
        stream=stream, filial_id=key, updated_at=utc_now()
    ).on_conflict_ignore().execute()
    row: SyncState = SyncState.get((SyncState.stream == stream) & (SyncState.filial_id == key))
    return row


def _state(row: SyncState) -> StreamState:
    return StreamState(
        stream=row.stream,
        filial_id=row.filial_id,
        watermark=row.watermark,
        last_sweep_at=row.last_sweep_at,
        last_success_at=row.last_success_at,
        sealed_through=row.sealed_through,
        day_range_limit=row.day_range_limit,
    )


# --- sealed days (jobs.day.sealing): the newest sealed company day per stream and filial ---


def sealed_through(stream: str, filial_id: str | None = None) -> date | None:
    """The newest company day sealed for ``stream`` and filial (None: none yet)."""
    row = SyncState.get_or_none(
        (SyncState.stream == stream) & (SyncState.filial_id == (filial_id or NO_FILIAL))
    )
    return row.sealed_through if row is not None else None


def record_sealed(
    stream: str, filial_id: str | None, day: date | None, *, now: datetime | None = None
) -> date | None:
    """Keep ``day`` (from :func:`jobs.day.sealing.sealed_after`) as the newest sealed day of
    ``stream`` and filial; it never moves back, and None changes nothing. Returns the
    value kept."""
    if day is None:
        return sealed_through(stream, filial_id)
    row = _state_row(stream, filial_id)
    if row.sealed_through is None or day > row.sealed_through:
        row.sealed_through = day
        row.updated_at = now or utc_now()
        row.save()
    kept: date = row.sealed_through
    return kept
