"""What one run asks of SmartUp today, and what it leaves for the next run.

Between the task (which holds the lock and the run row) and the engine: the quota guard
of periodic runs, how far back each stream reaches per filial (from the state kept in
PostgreSQL), the state kept after each committed answer (limits, watermark), and what a
complete stream leaves behind (the catalogue reconciled, sweeps recorded). The arithmetic
lives in :mod:`jobs.plan`, the storage in :mod:`jobs.state`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from jobs.engine import StreamResult
from jobs.plan import Reach, StreamPlan, next_midnight, quota_for, reach_for, reserve_for
from jobs.reconcile import SeenIds, reconcile_products
from jobs.settings import Settings
from jobs.smartup import ExportRequest
from jobs.state import (
    Quota,
    advance_watermark,
    clear_sweep,
    mark_sweep,
    quota_today,
    record_limits,
    stream_state,
)
from jobs.streams import Stream


@dataclass(frozen=True)
class RunDay:
    """When a run happens and what it was asked for beyond the periodic default."""

    today: date  # the company day (SMARTUP_TIMEZONE) the run started on
    now: datetime  # when it started
    days_back: int | None  # forced orders sweep of this many days
    full: bool  # the whole catalogue, and an orders sweep
    tz: tzinfo = UTC
    started: float = field(default_factory=time.monotonic)

    def moment(self) -> datetime:
        """Now, on the run's clock: an answer after midnight counts for the new day."""
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def company_day(self) -> date:
        return self.moment().astimezone(self.tz).date()


def streams_over_quota(
    kinds: tuple[str, ...], settings: Settings, today: date, now: datetime, log: Any
) -> dict[str, str]:
    """The streams of ``kinds`` whose quota left today is at or below the reserve (or
    spent), each with the reason; each is logged as ``sync.skipped`` (reason ``quota``)."""
    skipped = {}
    resets_at = next_midnight(now, settings.tz)
    for name in kinds:
        quota: Quota | None = quota_today(name, today=today)
        if quota is None:
            continue
        reserve = reserve_for(
            quota_for(name, limit_seen=quota.limit),
            reserve_percent=settings.smartup_quota_reserve_percent,
        )
        if quota.exhausted or (quota.left is not None and quota.left <= reserve):
            reason = (
                f"SmartUp daily quota for {name}: {quota.left} left, at or below the reserve "
                f"of {reserve}; it resets at 00:00 {settings.smartup_timezone}"
            )
            log.info(
                "sync.skipped",
                run_type=name,
                reason="quota",
                left=quota.left,
                reserve=reserve,
                resets_at=resets_at.isoformat(),
            )
            skipped[name] = reason
    return skipped


def span_for(stream: Stream, settings: Settings, plan: StreamPlan, day: RunDay) -> dict[str, Reach]:
    """How far back this run asks ``stream``, per filial, from the state kept (a sweep
    when the plan's sweep period passed)."""
    span = {}
    for key in stream.filial_keys(settings):
        state = stream_state(stream.name, key)
        span[key] = reach_for(
            stream.name,
            today=day.today,
            now=day.now,
            watermark=state.watermark if state else None,
            last_sweep_at=state.last_sweep_at if state else None,
            days_back=settings.sync_orders_days_back,
            sweep_seconds=plan.sweep_used,
            forced_days_back=day.days_back,
            full=day.full,
        )
    return span


def state_keeper(stream: str, day: RunDay) -> Any:
    """After each committed answer: keep its ``limits``, and move the watermark to the last
    day it covered when nothing before that day is missing (a sweep shorter than an
    outage must not jump the gap)."""

    def applied(request: ExportRequest, limits: dict[str, Any] | None) -> None:
        if limits is not None:
            record_limits(stream, limits, day=day.company_day(), now=day.moment())
        if request.days is None:  # the whole catalogue
            advance_watermark(stream, request.state_key, day.today, now=day.now)
            return
        first, last = request.days
        state = stream_state(stream, request.state_key)
        watermark = state.watermark if state else None
        if watermark is None or first <= watermark + timedelta(days=1):
            advance_watermark(stream, request.state_key, last, now=day.now)

    return applied


def after_complete(
    name: str,
    span: dict[str, Reach],
    seen: SeenIds | None,
    settings: Settings,
    day: RunDay,
    result: StreamResult,
    log: Any,
    *,
    run_id: int | None = None,
) -> None:
    """Every request of ``name`` succeeded: reconcile the catalogue (products), and record
    the sweeps completed."""
    swept = [key for key, reach in span.items() if reach.sweep]
    if seen is not None:
        complete = any(reach.first is None for reach in span.values())
        reconciled = reconcile_products(
            seen,
            complete_catalogue=complete,
            max_gone_percent=settings.sync_max_gone_percent,
            now=day.now,
            run_id=run_id,
        )
        result.gone = reconciled.gone
        if reconciled.gone or reconciled.revived:
            log.info("sync.products.reconciled", gone=reconciled.gone, revived=reconciled.revived)
        if reconciled.refused:
            result.warning = reconciled.refused
            log.warning("sync.products.reconcile_refused", reason=reconciled.refused)
            for key in span:  # the next run asks for the whole catalogue again
                clear_sweep(name, key)
            swept = []
    for key in swept:
        mark_sweep(name, key, now=day.now)
