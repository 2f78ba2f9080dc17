"""The day's request budget: pure arithmetic over stream declarations, settings, the
quota pools and the limits seen.

SmartUp counts its daily quota per *class* of export, shared with every other program on
the same login: each class is a :class:`~jobs.pipeline.streams.pools.Pool`, which a stream
declares (``reference``: products, groups, price types, prices, and stock's daily
warehouses call; ``documents``: orders, stock balances). Part of a pool's quota (the
reserve) is kept for resyncs asked for on demand; the periodic runs of every enabled
stream of the pool share the rest. The scheduler, every run, the ``plan``/``check``/
``status`` commands and the web app's overview all ask this module; none computes its own.

A periodic run of a stream makes ``requests_per_run`` requests (declared by the stream:
one per filial and date window of what may have changed since the last run, or one per
call of a snapshot); once a sweep period, one of those runs is a sweep instead (the whole
``SYNC_ORDERS_DAYS_BACK`` window, or the whole catalogue), which costs
``requests_per_sweep``. A day of ``ceil(86400 / interval)`` runs of every stream of a pool
must fit the pool's quota minus its reserve.

How a pool is shared (:func:`share_pool`): sweeps first, as often as asked while they take
at most half the budget (at least one a day each); then, when the cadences asked for do
not fit the rest, the *fastest* are slowed first: every stream runs at the cadence asked
for or at a common floor, whichever is slower, the floor being the shortest interval at
which the pool's day fits. A stream asked to run less often than the floor keeps its
cadence; no interval goes beyond a day. When not even one run a day of each fits, every
stream runs once a day and the pool says it does not fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from jobs.day.sealing import first_day_to_ask
from jobs.pipeline.streams import Stream, default_streams, enabled_streams
from jobs.pipeline.streams.pools import Pool
from jobs.pipeline.streams.reach import (
    DAY_RANGE_LIMIT,
    DAY_SECONDS,
    MODIFIED,
    MODIFIED_WINDOWS,
    REACHES,
    SNAPSHOT,
    SNAPSHOT_TODAY,
    Reach,
)
from jobs.settings import Settings

CATCH_UP_DAYS = 90  # how far back a run catches up after an outage, at most


def quota_for(pool: Pool, *, limit_seen: int | None) -> int:
    """The daily quota of ``pool``: the latest ``limit_quant`` seen, else the default."""
    if limit_seen is not None and limit_seen > 0:
        return limit_seen
    return pool.default_quota


def reserve_for(quota: int, *, reserve_percent: int) -> int:
    """Requests of ``quota`` kept for on-demand resyncs (rounded up)."""
    if not 0 <= reserve_percent <= 100:
        raise ValueError(f"reserve_percent must be between 0 and 100, not {reserve_percent}")
    return math.ceil(quota * reserve_percent / 100)


def at_or_below_reserve(left: int | None, reserve: int) -> bool:
    """The one rule for "the quota left is down to the reserve": the guard of periodic
    runs skips, and ``check`` warns, from the same figure on."""
    return left is not None and left <= reserve


@dataclass(frozen=True)
class StreamPlan:
    """One stream's day: the cadence asked for and the one used, the sweep period asked
    for and the one used, what they cost, and its pool's quota, reserve and day."""

    stream: str
    interval_asked: int
    interval_used: int
    requests_per_run: int
    requests_per_sweep: int
    sweep_asked: int
    sweep_used: int
    quota: int
    reserve: int
    pool: str = ""
    pool_requests_per_day: int | None = None  # every stream of the pool; None: this one only

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
        """What the periodic runs of the pool may spend: the quota minus the reserve."""
        return self.quota - self.reserve

    @property
    def fits(self) -> bool:
        """Whether a day of the pool's periodic runs (this stream's among them) fits."""
        spent = self.pool_requests_per_day
        return (self.requests_per_day if spent is None else spent) <= self.budget

    def as_dict(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "interval_asked_s": self.interval_asked,
            "interval_used_s": self.interval_used,
            "sweep_asked_s": self.sweep_asked,
            "sweep_used_s": self.sweep_used,
            "requests_per_run": self.requests_per_run,
            "requests_per_sweep": self.requests_per_sweep,
            "requests_per_day": self.requests_per_day,
            "quota": self.quota,
            "reserve": self.reserve,
            "pool_requests_per_day": self.pool_requests_per_day,
            "fits": self.fits,
        }


@dataclass(frozen=True)
class PoolPlan:
    """One pool's day: its quota and reserve, and what its streams spend."""

    name: str
    quota: int
    reserve: int
    requests_per_day: int
    streams: tuple[str, ...]

    @property
    def budget(self) -> int:
        return self.quota - self.reserve

    @property
    def fits(self) -> bool:
        return self.requests_per_day <= self.budget

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quota": self.quota,
            "reserve": self.reserve,
            "requests_per_day": self.requests_per_day,
            "streams": list(self.streams),
            "fits": self.fits,
        }


class DayPlan(dict[str, StreamPlan]):
    """Every enabled stream's plan by name, and every pool's (:attr:`pools`)."""

    def __init__(self, streams: Mapping[str, StreamPlan], pools: Mapping[str, PoolPlan]) -> None:
        super().__init__(streams)
        self.pools: dict[str, PoolPlan] = dict(pools)


@dataclass(frozen=True)
class Demand:
    """What one stream asks of its pool."""

    name: str
    interval_asked: int
    per_run: int
    per_sweep: int
    sweep_asked: int


def share_pool(demands: Sequence[Demand], budget: int) -> dict[str, tuple[int, int]]:
    """Each stream's (interval used, sweep period used) so that one day of every stream's
    periodic runs and sweeps fits ``budget`` when it can (see the module's docstring)."""
    with_extra = [d for d in demands if d.per_sweep > d.per_run]
    sweep_used = {}
    spent_on_sweeps = 0
    for d in demands:
        sweeps = math.ceil(DAY_SECONDS / d.sweep_asked)
        extra = d.per_sweep - d.per_run
        if extra > 0:
            sweeps = max(1, min(sweeps, budget // 2 // len(with_extra) // extra))
            spent_on_sweeps += sweeps * extra
        sweep_used[d.name] = max(d.sweep_asked, math.ceil(DAY_SECONDS / sweeps))
    rest = budget - spent_on_sweeps

    def interval(d: Demand, floor: int) -> int:
        return min(DAY_SECONDS, max(d.interval_asked, floor))

    def cost(floor: int) -> int:
        return sum(math.ceil(DAY_SECONDS / interval(d, floor)) * d.per_run for d in demands)

    if cost(1) <= rest:
        floor = 1
    elif cost(DAY_SECONDS) > rest:
        floor = DAY_SECONDS  # once a day each: the pool does not fit
    else:
        low, high = 1, DAY_SECONDS  # cost(low) > rest >= cost(high): the smallest floor
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if cost(middle) <= rest else (middle, high)
        floor = high
    return {d.name: (interval(d, floor), sweep_used[d.name]) for d in demands}


def plan_day(
    *,
    interval_seconds: int,
    filials: int,
    days_back: int,
    sweep_seconds: int,
    reserve_percent: int,
    limits_seen: Mapping[str, int | None] | None = None,
    streams: Sequence[Stream] | None = None,
    intervals: Mapping[str, int] | None = None,
    day_range_limits: Mapping[str, int | None] | None = None,
    settings: Settings | None = None,
) -> DayPlan:
    """Every stream's plan for one company day, pool by pool.

    ``streams``: the declarations planned (default: the default ``SYNC_STREAMS``);
    ``limits_seen`` maps a pool to the latest ``limit_quant`` SmartUp sent on any of its
    exports (missing: the pool's default quota); ``intervals`` a stream to the cadence
    asked for it (missing: its declared default, else ``interval_seconds``);
    ``day_range_limits`` a stream to the ``day_range_limit`` last seen (missing: 7).
    """
    if streams is None:
        streams = default_streams()
    seen = limits_seen or {}
    asked = intervals or {}
    ranges = day_range_limits or {}
    plans: dict[str, StreamPlan] = {}
    pools: dict[str, PoolPlan] = {}
    sides = [(pool, count) for stream in streams for pool, count in stream.side_requests]
    for pool in dict.fromkeys([*(stream.pool for stream in streams), *(p for p, _ in sides)]):
        members = [stream for stream in streams if stream.pool == pool]
        quota = quota_for(pool, limit_seen=seen.get(pool.name))
        reserve = reserve_for(quota, reserve_percent=reserve_percent)
        # requests other pools' streams make here once a day: set aside first
        fixed = sum(n for p, n in sides if p == pool)
        demands = [
            Demand(
                name=stream.name,
                interval_asked=asked.get(stream.name)
                or stream.default_interval
                or interval_seconds,
                per_run=stream.requests_per_run(
                    filials=filials,
                    settings=settings,
                    day_range_limit=ranges.get(stream.name) or DAY_RANGE_LIMIT,
                ),
                per_sweep=stream.requests_per_sweep(
                    filials=filials,
                    days_back=days_back,
                    day_range_limit=ranges.get(stream.name) or DAY_RANGE_LIMIT,
                    settings=settings,
                ),
                sweep_asked=sweep_seconds,
            )
            for stream in members
        ]
        shared = share_pool(demands, quota - reserve - fixed)
        pool_plans = [
            StreamPlan(
                stream=d.name,
                interval_asked=d.interval_asked,
                interval_used=shared[d.name][0],
                requests_per_run=d.per_run,
                requests_per_sweep=d.per_sweep,
                sweep_asked=d.sweep_asked,
                sweep_used=shared[d.name][1],
                quota=quota,
                reserve=reserve,
                pool=pool.name,
            )
            for d in demands
        ]
        # what the pool's day costs is known once every stream's cadence is; each plan says it
        spent = fixed + sum(p.requests_per_day for p in pool_plans)
        for p in pool_plans:
            plans[p.stream] = replace(p, pool_requests_per_day=spent)
        pools[pool.name] = PoolPlan(
            name=pool.name,
            quota=quota,
            reserve=reserve,
            requests_per_day=spent,
            streams=tuple(d.name for d in demands),
        )
    return DayPlan({stream.name: plans[stream.name] for stream in streams}, pools)


def plan_for(
    settings: Settings,
    *,
    limits_seen: Mapping[str, int | None] | None = None,
    day_range_limits: Mapping[str, int | None] | None = None,
) -> DayPlan:
    """:func:`plan_day` for the streams ``SYNC_STREAMS`` enables, on the worker's settings."""
    return plan_day(
        interval_seconds=settings.sync_interval_seconds,
        filials=len(settings.smartup_filial_ids),
        days_back=settings.sync_orders_days_back,
        sweep_seconds=settings.sync_sweep_seconds,
        reserve_percent=settings.smartup_quota_reserve_percent,
        limits_seen=limits_seen,
        streams=enabled_streams(settings),
        intervals=settings.stream_intervals,
        day_range_limits=day_range_limits,
        settings=settings,
    )


def reach_for(
    reach: str,
    *,
    today: date,
    now: datetime,
    watermark: date | None,
    last_sweep_at: datetime | None,
    days_back: int,
    sweep_seconds: int,
    forced_days_back: int | None = None,
    full: bool = False,
    day_range_limit: int = DAY_RANGE_LIMIT,
    sealed_through: date | None = None,
) -> Reach:
    """How far back one run asks, for one filial, by the stream's kind of ``reach``.

    "Last N days" is N calendar days: ``today - (N - 1)`` to today. An incremental run
    asks from the first day not sealed (``sealed_through`` plus one, :mod:`jobs.day.sealing`)
    to today (never past the day after the watermark); while no day is sealed yet, from
    the watermark minus one day of overlap (day precision). A sweep (due once
    ``sweep_seconds`` passed since the last one, forced by ``full`` or by
    ``forced_days_back``, or when nothing was read yet) asks the whole window, reaching
    further back when the watermark is older, to catch up (at most :data:`CATCH_UP_DAYS`).
    :data:`MODIFIED` has no window: its sweep is the whole set, and so is a catch-up too
    long for one date-filtered request. A snapshot is the whole set every run (dated
    today for :data:`SNAPSHOT_TODAY`), each run a sweep.
    """
    if reach == SNAPSHOT:
        return Reach(None, today, True)
    if reach == SNAPSHOT_TODAY:
        return Reach(today, today, True)
    due = full or last_sweep_at is None or (now - last_sweep_at).total_seconds() >= sweep_seconds
    overlap = None if watermark is None else min(watermark - timedelta(days=1), today)
    catch_up_first = today - timedelta(days=CATCH_UP_DAYS - 1)
    unsealed = (
        overlap
        if sealed_through is None or overlap is None or watermark is None
        else min(
            first_day_to_ask(
                sealed_through=sealed_through, today=today, catch_up_first=catch_up_first
            ),
            watermark + timedelta(days=1),
        )
    )
    if reach == MODIFIED:
        if due or unsealed is None:  # (days back are a windowed matter)
            return Reach(None, today, True)
        if (today - unsealed).days + 1 > day_range_limit:
            return Reach(None, today, True)
        return Reach(unsealed, today, False)
    if reach != MODIFIED_WINDOWS:
        raise ValueError(f"reach must be one of {', '.join(REACHES)}, not {reach!r}")
    if forced_days_back is not None:
        return Reach(today - timedelta(days=forced_days_back - 1), today, True)
    window_first = today - timedelta(days=days_back - 1)
    if overlap is None or unsealed is None:
        return Reach(window_first, today, True)
    if due:  # sweeps reach as they always did: the safety net for what sealing misses
        return Reach(min(max(overlap, catch_up_first), window_first), today, True)
    return Reach(max(unsealed, catch_up_first), today, False)


def next_midnight(now: datetime, tz: tzinfo) -> datetime:
    """When SmartUp's daily quota is believed to reset: the next midnight, company time."""
    local = now.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=tz)
