"""Is syncing healthy? ``python -m jobs check`` and the stale alerts ask this module.

Each check returns one line per problem, naming what to look at; none of them raises
for what it finds. What counts as *stale*: an enabled stream whose last SUCCESS is older
than :data:`STALE_INTERVALS` of its interval (the one the day's plan uses, which is also
the interval ``schedule.py`` registers).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from redis import Redis
from rq import Queue, Worker

from jobs.day.plan import at_or_below_reserve, plan_for, quota_for, reserve_for
from jobs.day.state import limits_seen, quota_today
from jobs.kinds import KEY_PREFIX
from jobs.models import SyncRun
from jobs.pipeline.streams import enabled_streams
from jobs.run.rows import RUNNING, last_success_of
from jobs.settings import Settings

STALE_INTERVALS = 3
SCHEDULER_KEY = "rq:scheduler:scheduled_jobs"  # rq-scheduler's registrations (a sorted set)
PERIODIC_PREFIX = f"{KEY_PREFIX}-periodic-"  # + a kind: the id of its registration
OVERDUE_SECONDS = 120  # a registration this late means no scheduler loop moves it


def periodic_kinds(settings: Settings) -> tuple[str, ...]:
    """The kinds that run on a schedule, and go stale: every enabled stream."""
    return tuple(stream.name for stream in enabled_streams(settings))


def interval_seconds(kind: str, settings: Settings) -> int:
    """How often ``kind`` is meant to run: the interval the day's plan uses for it (what
    ``schedule.py`` registers: the cadence asked, stretched when a day of its pool's runs
    would not fit the quota seen). Named in the README; reads the quotas seen: the database
    must be open."""
    return plan_for(settings, limits_seen=limits_seen())[kind].interval_used


def stale_limits(settings: Settings) -> dict[str, timedelta]:
    """Per periodic kind, how long without a SUCCESS makes it stale: :data:`STALE_INTERVALS`
    of the interval the day's plan uses for it (what ``schedule.py`` registers: the cadence
    asked, stretched when a day of its pool's runs would not fit the quota seen). One plan
    for every kind; reads the quotas seen: the database must be open."""
    plan = plan_for(settings, limits_seen=limits_seen())
    return {
        kind: timedelta(seconds=STALE_INTERVALS * plan[kind].interval_used)
        for kind in periodic_kinds(settings)
    }


def is_late(success: SyncRun | None, limit: timedelta, *, now: datetime) -> bool:
    """No SUCCESS (``success`` is the last one, or None), or it ended more than ``limit``
    before ``now``."""
    return success is None or _ended(success) < now - limit


def is_stale(kind: str, settings: Settings, *, now: datetime) -> bool:
    return is_late(last_success_of(kind), stale_limits(settings)[kind], now=now)


def _ended(run: SyncRun) -> datetime:
    moment: datetime = run.finished_at or run.started_at
    return moment


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def database_problems(settings: Settings, *, now: datetime, today: date) -> list[str]:
    """Stale kinds, runs RUNNING past the job timeout, a pool's quota at or below the
    reserve (the same rule the guard of periodic runs skips by)."""
    found = []
    for kind, limit in stale_limits(settings).items():
        success = last_success_of(kind)
        if success is None:
            found.append(f"{kind}: no successful sync yet")
        elif is_late(success, limit, now=now):
            found.append(
                f"{kind}: last successful sync {_minutes(now - _ended(success))} ago "
                f"(run {success.id}), more than {STALE_INTERVALS} intervals "
                f"({_minutes(limit)})"
            )
    timeout = timedelta(seconds=settings.sync_job_timeout_seconds)
    stuck = SyncRun.select().where(
        (SyncRun.status == RUNNING) & (SyncRun.started_at < now - timeout)
    )
    for run in stuck.order_by(SyncRun.id):
        found.append(
            f"run {run.id} ({run.run_type}) has been RUNNING for "
            f"{_minutes(now - run.started_at)}, longer than the job timeout ({_minutes(timeout)})"
        )
    streams = enabled_streams(settings)
    for pool in dict.fromkeys(stream.pool for stream in streams):
        quota = quota_today(pool.name, today=today)
        if quota is None:
            continue
        names = ", ".join(stream.name for stream in streams if stream.pool == pool)
        daily = quota_for(pool, limit_seen=quota.limit)
        reserve = reserve_for(daily, reserve_percent=settings.smartup_quota_reserve_percent)
        if quota.exhausted:
            found.append(f"{names}: SmartUp's quota for today is spent ({daily} a day)")
        elif at_or_below_reserve(quota.left, reserve):
            found.append(
                f"{names}: SmartUp quota left today {quota.left} is "
                f"{'below' if (quota.left or 0) < reserve else 'at'} the reserve of "
                f"{reserve} ({settings.smartup_quota_reserve_percent}% of {daily} a day)"
            )
    return found


def queue_problems(
    connection: Redis,
    *,
    periodic_ids: Sequence[str],
    queues: Sequence[str],
    now: datetime | None = None,
) -> list[str]:
    """Queues without a worker, scheduler registrations missing or never moved."""
    now = now or datetime.now(UTC)
    found = []
    for name in queues:
        if not Worker.all(connection=connection, queue=Queue(name, connection=connection)):
            found.append(f"no worker is registered on queue {name}")
    for job_id in periodic_ids:
        due = connection.zscore(SCHEDULER_KEY, job_id)
        if due is None:
            found.append(f"scheduler registration {job_id} is missing (is `scheduler` running?)")
        elif due < now.timestamp() - OVERDUE_SECONDS:
            late = timedelta(seconds=now.timestamp() - due)
            found.append(
                f"scheduler registration {job_id} is {_minutes(late)} overdue "
                "(no scheduler loop is moving it)"
            )
    return found
