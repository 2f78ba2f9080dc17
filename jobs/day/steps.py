"""What one run asks of SmartUp today, and what it leaves for the next run.

Between the run (:mod:`jobs.run.sync`, which holds the lock and the run row) and the
engine: the quota guard of periodic runs (per quota pool), how far back each stream
reaches per state key (from the state kept in PostgreSQL), the state kept after each
committed answer (the pool's limits, the export's ``day_range_limit``, the watermark, the
sealed days), and what a complete stream leaves behind (each export's settle, the
stream's ``after_settled`` SQL, sweeps recorded). The arithmetic lives in
:mod:`jobs.day.plan`, the storage in :mod:`jobs.day.state`, the settling in
:mod:`jobs.day.reconcile`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from jobs.day.plan import (
    StreamPlan,
    at_or_below_reserve,
    next_midnight,
    quota_for,
    reach_for,
    reserve_for,
)
from jobs.day.reconcile import SeenIds, run_statements, settle
from jobs.day.sealing import sealed_after
from jobs.day.state import (
    NO_FILIAL,
    Quota,
    advance_watermark,
    clear_sweep,
    lower_day_range,
    mark_sweep,
    quota_today,
    record_day_range,
    record_limits,
    record_quota_spent,
    record_sealed,
    stream_state,
    stream_states,
)
from jobs.pipeline.engine import StreamResult
from jobs.pipeline.smartup import ExportRequest
from jobs.pipeline.streams import Export, Stream, declared
from jobs.pipeline.streams.reach import Reach
from jobs.settings import Settings


@dataclass(frozen=True)
class RunDay:
    """When a run happens and what it was asked for beyond the periodic default."""

    today: date  # the company day (SMARTUP_TIMEZONE) the run started on
    now: datetime  # when it started
    days_back: int | None  # forced sweep of this many days (windowed streams)
    full: bool  # the whole set of every stream, and a sweep
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
    """The streams of ``kinds`` whose pool's quota left today is at or below the reserve
    (or spent), each with the reason; each is logged as ``sync.skipped`` (reason ``quota``)."""
    skipped = {}
    resets_at = next_midnight(now, settings.tz)
    streams = declared()
    for name in kinds:
        pool = streams[name].pool
        quota: Quota | None = quota_today(pool.name, today=today)
        if quota is None:
            continue
        reserve = reserve_for(
            quota_for(pool, limit_seen=quota.limit),
            reserve_percent=settings.smartup_quota_reserve_percent,
        )
        if quota.exhausted or at_or_below_reserve(quota.left, reserve):
            reason = (
                f"SmartUp daily quota for {name} ({pool.name}): {quota.left} left, at or below "
                f"the reserve of {reserve}; it resets at 00:00 {settings.smartup_timezone}"
            )
            log.info(
                "sync.skipped",
                run_type=name,
                reason="quota",
                pool=pool.name,
                left=quota.left,
                reserve=reserve,
                resets_at=resets_at.isoformat(),
            )
            skipped[name] = reason
    return skipped


def span_for(
    stream: Stream, settings: Settings, plan: StreamPlan, day: RunDay, *, day_range_limit: int
) -> dict[str, Reach]:
    """How far back this run asks ``stream``, per state key, from the state kept (a sweep
    when the plan's sweep period passed; otherwise from the first day not sealed).
    ``day_range_limit``: the longest window the stream's export takes (kept, else 7)."""
    span = {}
    states = stream_states(stream.name)
    for key in stream.filial_keys(settings):
        state = states.get(key or NO_FILIAL)
        span[key] = reach_for(
            stream.reach_of(key),
            today=day.today,
            now=day.now,
            watermark=state.watermark if state else None,
            last_sweep_at=state.last_sweep_at if state else None,
            days_back=settings.sync_orders_days_back,
            sweep_seconds=stream.sweep_seconds_of(key, plan.sweep_used),
            forced_days_back=day.days_back,
            full=day.full,
            day_range_limit=day_range_limit,
            sealed_through=state.sealed_through if state else None,
        )
    return span


class StateKeeper:
    """The state one run of ``stream`` keeps as it goes (the engine's ``on_sent``,
    ``on_applied`` and ``on_narrowed``).

    After each committed answer: its ``limits`` (the pool's quota, and the
    ``day_range_limit`` of the stream's own export), the watermark moved to the last day
    it covered when nothing before that day is missing (a sweep shorter than an outage
    must not jump the gap), and the days it sealed: those it covered that had ended,
    margin included (``SYNC_SEAL_MINUTES``), when it was *sent* (:mod:`jobs.day.sealing`).
    A window refused as too long lowers the stream's ``day_range_limit`` kept; a quota
    refused marks the pool's spent (:meth:`quota_spent`)."""

    def __init__(self, stream: Stream, day: RunDay, *, seal_minutes: int) -> None:
        self.stream, self.day, self.seal_minutes = stream, day, seal_minutes
        self._sent: dict[int, datetime] = {}

    def sent(self, request: ExportRequest) -> None:
        self._sent[id(request)] = self.day.moment()

    def narrowed(self, request: ExportRequest, days: int) -> None:
        lower_day_range(self.stream.name, request.state_key, days)

    def quota_spent(self) -> None:
        """SmartUp refused the stream's request for its pool's quota: spent for the day."""
        day = self.day
        record_quota_spent(self.stream.pool.name, day=day.company_day(), now=day.moment())

    def __call__(self, request: ExportRequest, limits: dict[str, Any] | None) -> None:
        stream, day = self.stream, self.day
        if limits is not None:
            record_limits(stream.pool.name, limits, day=day.company_day(), now=day.moment())
            if request.name == stream.name:  # windows are cut on the stream's own export
                record_day_range(stream.name, request.state_key, limits)
        state = stream_state(stream.name, request.state_key)
        sent_at = self._sent.pop(id(request), None) or day.moment()
        first, last = request.days if request.days is not None else (None, day.today)
        record_sealed(
            stream.name,
            request.state_key,
            sealed_after(
                sealed_through=state.sealed_through if state else None,
                first=first,
                last=last,
                requested_at=sent_at,
                tz=day.tz,
                seal_minutes=self.seal_minutes,
            ),
            now=day.now,
        )
        if first is None:  # the whole set
            advance_watermark(stream.name, request.state_key, day.today, now=day.now)
            return
        watermark = state.watermark if state else None
        if watermark is None or first <= watermark + timedelta(days=1):
            advance_watermark(stream.name, request.state_key, last, now=day.now)


class SeenByExport:
    """The keys received, per export that settles something (others keep none)."""

    def __init__(self) -> None:
        self.by_export: dict[int, tuple[Export, SeenIds]] = {}

    def __call__(self, export: Export) -> SeenIds | None:
        if export.settle is None:
            return None
        found = self.by_export.setdefault(id(export), (export, SeenIds()))
        return found[1]


def after_complete(
    stream: Stream,
    span: dict[str, Reach],
    seen: SeenByExport,
    settings: Settings,
    day: RunDay,
    result: StreamResult,
    log: Any,
    *,
    run_id: int | None = None,
) -> None:
    """Every request of ``stream`` succeeded: settle what each export's answers say
    (revive, mark gone or delete, with the brake), run the stream's ``after_settled``
    statements, and record the sweeps completed (none when a settle was refused: the next
    run asks for the whole set again)."""
    swept = [key for key, reach in span.items() if reach.sweep]
    complete = stream.complete(span)
    for export, keys in seen.by_export.values():
        rule = export.settle
        if rule is None or export.name in result.skipped:
            continue
        settled = settle(
            rule,
            keys,
            complete=complete,
            max_gone_percent=settings.sync_max_gone_percent,
            now=day.now,
            stream=stream.name,
            run_id=run_id,
        )
        result.add_settled(gone=settled.gone, refused=settled.refused)
        if settled.gone or settled.revived:
            log.info(
                f"sync.{stream.name}.settled",
                table=rule.table,
                gone=settled.gone,
                revived=settled.revived,
            )
        if settled.refused:
            log.warning(f"sync.{stream.name}.settle_refused", reason=settled.refused)
            for key in span:  # the next run asks for the whole set again
                clear_sweep(stream.name, key)
            swept = []
    if stream.after_settled:
        run_statements(stream.after_settled, now=day.now)
    for key in swept:
        mark_sweep(stream.name, key, now=day.now)
