"""The day's request budget: pure arithmetic over settings and the quotas seen.

SmartUp allows each company a number of export requests a day per kind of data, shared
with every other program on the same login. Part of it (the reserve) is kept for
resyncs asked for on demand; periodic runs plan their cadence within the rest.
``schedule.py``, the tasks and the ``plan``/``check`` commands all ask this module; none
computes its own.

A periodic run of a stream makes :func:`requests_per_run` requests (one per filial and
date window of what may have changed since the last run); once a sweep period, one of
those runs is a sweep instead (the whole ``SYNC_ORDERS_DAYS_BACK`` window, or the whole
catalogue), which costs :func:`requests_per_sweep`. A day of ``ceil(86400 / interval)``
runs must fit the quota minus the reserve; when it would not, the interval used grows
until it does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from jobs.settings import Settings

DEFAULT_QUOTAS: dict[str, int] = {"products": 100, "orders": 500}
"""Requests a day per stream when SmartUp has not told us its ``limit_quant`` yet."""

DAY_SECONDS = 86400
DAY_RANGE_LIMIT = 7  # SmartUp answers date-filtered requests of at most this many days
INCREMENTAL_DAYS = 3
"""Days an incremental run asks for at most between sweeps: the watermark's day minus one
of overlap, to today; three when the last run was before midnight."""
CATCH_UP_DAYS = 90  # how far back a run catches up after an outage, at most
STREAMS = ("products", "orders")


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


def windows_for(days: int, *, day_range_limit: int = DAY_RANGE_LIMIT) -> int:
    """Date windows SmartUp needs for ``days`` calendar days (at least one)."""
    return max(1, math.ceil(days / day_range_limit))


def requests_per_run(stream: str, *, filials: int) -> int:
    """Requests of one incremental periodic run of ``stream``."""
    if stream == "products":
        return 1  # one export, without a filial or with the first one
    return max(filials, 1) * windows_for(INCREMENTAL_DAYS)


def requests_per_sweep(stream: str, *, filials: int, days_back: int) -> int:
    """Requests of one sweep: the whole catalogue, or the whole orders window."""
    if stream == "products":
        return 1
    return max(filials, 1) * windows_for(days_back)


@dataclass(frozen=True)
class StreamPlan:
    """One stream's day: the cadence asked for and the one used, the sweep period asked
    for and the one used, and what they cost."""

    stream: str
    interval_asked: int
    interval_used: int
    requests_per_run: int
    requests_per_sweep: int
    sweep_asked: int
    sweep_used: int
    quota: int
    reserve: int

    @property
    def runs_per_day(self) -> int:
        return math.ceil(DAY_SECONDS / self.interval_used)

    @property
    def sweeps_per_day(self) -> int:
        """A sweep is one of the periodic runs: at most one a sweep period, and never
        more than there are runs."""
        return min(self.runs_per_day, math.ceil(DAY_SECONDS / self.sweep_used))

    @property
    def requests_per_day(self) -> int:
        """Periodic requests in one company day: every run, one in each sweep period
        being a sweep (which replaces that run's incremental requests)."""
        extra = max(self.requests_per_sweep - self.requests_per_run, 0)
        return self.runs_per_day * self.requests_per_run + self.sweeps_per_day * extra

    @property
    def budget(self) -> int:
        """What periodic runs may spend: the quota minus the reserve."""
        return self.quota - self.reserve

    @property
    def fits(self) -> bool:
        return self.requests_per_day <= self.budget

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "interval_asked_s": self.interval_asked,
            "interval_used_s": self.interval_used,
            "sweep_asked_s": self.sweep_asked,
            "sweep_used_s": self.sweep_used,
            "requests_per_run": self.requests_per_run,
            "requests_per_sweep": self.requests_per_sweep,
            "requests_per_day": self.requests_per_day,
            "quota": self.quota,
            "reserve": self.reserve,
            "fits": self.fits,
        }


def plan_stream(
    stream: str,
    *,
    interval_asked: int,
    per_run: int,
    per_sweep: int,
    sweep_seconds: int,
    quota: int,
    reserve_percent: int,
) -> StreamPlan:
    """The cadence that keeps a day of periodic runs within the quota minus the reserve.

    Sweeps come first, as often as asked while they take at most half the budget (at
    least one a day); the runs share the rest: the interval used is the longest of the
    one asked for and the shortest whose day fits. When not even that fits (a tiny
    quota), the plan runs once a day and says it does not fit.
    """
    reserve = reserve_for(quota, reserve_percent=reserve_percent)
    budget = quota - reserve
    extra = max(per_sweep - per_run, 0)
    sweeps = math.ceil(DAY_SECONDS / sweep_seconds)
    if extra:
        sweeps = max(1, min(sweeps, budget // 2 // extra))
    sweep_used = max(sweep_seconds, math.ceil(DAY_SECONDS / sweeps))
    max_runs = (budget - sweeps * extra) // per_run
    interval = DAY_SECONDS
    if max_runs >= 1:
        interval = min(max(interval_asked, math.ceil(DAY_SECONDS / max_runs)), DAY_SECONDS)
    return StreamPlan(
        stream=stream,
        interval_asked=interval_asked,
        interval_used=interval,
        requests_per_run=per_run,
        requests_per_sweep=per_sweep,
        sweep_asked=sweep_seconds,
        sweep_used=sweep_used,
        quota=quota,
        reserve=reserve,
    )


def plan_day(
    *,
    interval_seconds: int,
    filials: int,
    days_back: int,
    sweep_seconds: int,
    reserve_percent: int,
    limits_seen: Mapping[str, int | None] | None = None,
) -> dict[str, StreamPlan]:
    """Every stream's plan for one company day. ``limits_seen`` maps a stream to the
    latest ``limit_quant`` SmartUp sent for it (missing: the default quota)."""
    seen = limits_seen or {}
    return {
        stream: plan_stream(
            stream,
            interval_asked=interval_seconds,
            per_run=requests_per_run(stream, filials=filials),
            per_sweep=requests_per_sweep(stream, filials=filials, days_back=days_back),
            sweep_seconds=sweep_seconds,
            quota=quota_for(stream, limit_seen=seen.get(stream)),
            reserve_percent=reserve_percent,
        )
        for stream in STREAMS
    }


def plan_for(
    settings: Settings, *, limits_seen: Mapping[str, int | None] | None = None
) -> dict[str, StreamPlan]:
    """:func:`plan_day` on the worker's settings."""
    return plan_day(
        interval_seconds=settings.sync_interval_seconds,
        filials=len(settings.smartup_filial_ids),
        days_back=settings.sync_orders_days_back,
        sweep_seconds=settings.sync_sweep_seconds,
        reserve_percent=settings.smartup_quota_reserve_percent,
        limits_seen=limits_seen,
    )


@dataclass(frozen=True)
class Reach:
    """What one run asks of one stream for one filial: the modification days ``first``
    to ``last`` (both included; ``first`` None: everything, the whole catalogue), and
    whether that is a sweep (its completion is recorded, and resets the sweep period)."""

    first: date | None
    last: date
    sweep: bool

    @property
    def days(self) -> int | None:
        return None if self.first is None else (self.last - self.first).days + 1


def reach_for(
    stream: str,
    *,
    today: date,
    now: datetime,
    watermark: date | None,
    last_sweep_at: datetime | None,
    days_back: int,
    sweep_seconds: int,
    forced_days_back: int | None = None,
    full: bool = False,
) -> Reach:
    """How far back one run of ``stream`` asks, for one filial.

    "Last N days" is N calendar days: ``today - (N - 1)`` to today. An incremental run
    asks from the watermark minus one day of overlap (day precision) to today; a sweep
    (due once ``sweep_seconds`` passed since the last one, forced by ``full`` or by
    ``forced_days_back``, or when nothing was read yet) asks the whole window, reaching
    further back when the watermark is older, to catch up (at most :data:`CATCH_UP_DAYS`).
    Products have no window: their sweep is the whole catalogue, and so is a catch-up
    too long for one date-filtered request.
    """
    due = full or last_sweep_at is None or (now - last_sweep_at).total_seconds() >= sweep_seconds
    overlap = None if watermark is None else min(watermark - timedelta(days=1), today)
    if stream == "products":
        if due or overlap is None:  # (days back are an orders matter)
            return Reach(None, today, True)
        if (today - overlap).days + 1 > DAY_RANGE_LIMIT:
            return Reach(None, today, True)
        return Reach(overlap, today, False)
    if forced_days_back is not None:
        return Reach(today - timedelta(days=forced_days_back - 1), today, True)
    window_first = today - timedelta(days=days_back - 1)
    if overlap is None:
        return Reach(window_first, today, True)
    first = max(overlap, today - timedelta(days=CATCH_UP_DAYS - 1))
    if due:
        return Reach(min(first, window_first), today, True)
    return Reach(first, today, False)


def next_midnight(now: datetime, tz: tzinfo) -> datetime:
    """When SmartUp's daily quota is believed to reset: the next midnight, company time."""
    local = now.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=tz)
