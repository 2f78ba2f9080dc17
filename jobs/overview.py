"""One call for the web app: :func:`sync_overview` says, per enabled stream (kind), when it
last ran and last succeeded, what is waiting or running now (with its progress), and what
is known of its pool's SmartUp quota today, the day's plan and the sync state (watermark,
last sweep) per filial; and per quota pool, its quota and what the day's plan spends.
Plain data (str, int, float, bool, None, lists, dicts): it goes to JSON as it is.
``python -m jobs status --json`` prints it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from jobs.health import is_stale, periodic_kinds
from jobs.kinds import FULL, META_KIND, META_PROGRESS
from jobs.models import SyncRun, open_database
from jobs.plan import Pool, plan_for, quota_for, reserve_for
from jobs.queueing import queues_of, redis_connection
from jobs.runs import RUNNING, counts_of, last_run_of, last_success_of, one_line
from jobs.settings import Settings, load_settings
from jobs.state import all_states, day_range_limits, limits_seen, quota_today
from jobs.streams import enabled_streams

SYNC_FUNCTION = "jobs.tasks.sync_job"


def sync_overview(
    *,
    settings: Settings | None = None,
    connection: Redis | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the web app shows about syncing, in one call.

    Opens (and closes) its own database connection; when Redis cannot be reached the
    database part is still returned, with ``redis_error`` saying why.
    """
    settings = settings or load_settings()
    now = now or datetime.now(UTC)
    today = now.astimezone(settings.tz).date()
    jobs: dict[str, dict[str, Any]] = {}
    queues: dict[str, Any] | None = None
    redis_error = None
    try:
        connection = connection or redis_connection(settings)
        queues, jobs = _queue_part(connection, settings)
    except RedisError as error:
        redis_error = one_line(f"Redis error: {error}", secrets=settings.secrets)
    db = open_database(settings.database_url)
    try:
        plan = plan_for(settings, limits_seen=limits_seen(), day_range_limits=day_range_limits())
        states = all_states()
        pool_of = {stream.name: stream.pool for stream in enabled_streams(settings)}
        kinds = {
            kind: {
                "last_run": _run(last_run_of(kind), kind, now),
                "last_success": _run(last_success_of(kind), kind, now),
                "stale": is_stale(kind, settings, now=now),
                "job": jobs.get(kind),
                "quota": _quota(pool_of[kind], settings, today),
                "plan": plan[kind].as_dict(),
                "state": [
                    {
                        "filial_id": state.filial_id or None,
                        "watermark": state.watermark.isoformat() if state.watermark else None,
                        "last_sweep_at": _iso(state.last_sweep_at),
                        "last_success_at": _iso(state.last_success_at),
                    }
                    for state in states
                    if state.stream == kind
                ],
            }
            for kind in periodic_kinds(settings)
        }
    finally:
        db.close()
    return {
        "generated_at": _iso(now),
        "kinds": kinds,
        "pools": [pool.as_dict() for pool in plan.pools.values()],
        "queues": queues,
        "redis_error": redis_error,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _run(run: SyncRun | None, kind: str, now: datetime) -> dict[str, Any] | None:
    if run is None:
        return None
    moment = run.finished_at or run.started_at
    return {
        "id": run.id,
        "run_type": run.run_type,
        "status": run.status,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "age_s": round((now - moment).total_seconds()),
        "duration_s": run.duration_s,
        **{
            name: value
            for name, value in counts_of(run, kind).items()
            if name in ("received", "inserted", "updated", "unchanged", "rejected")
        },
        "error": run.error_message,
        "progress": run.progress if run.status == RUNNING else None,
    }


def _quota(pool: Pool, settings: Settings, today: date) -> dict[str, Any] | None:
    quota = quota_today(pool.name, today=today)
    if quota is None:
        return None
    daily = quota_for(pool, limit_seen=quota.limit)
    return {
        "pool": pool.name,
        "day": quota.day.isoformat(),
        "limit": quota.limit,
        "used": quota.used,
        "left": quota.left,
        "exhausted": quota.exhausted,
        "reserve": reserve_for(daily, reserve_percent=settings.smartup_quota_reserve_percent),
        "seen_at": _iso(quota.seen_at),
    }


def _queue_part(
    connection: Redis, settings: Settings
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Per queue: jobs waiting, running, workers; per kind: the job running, else the
    one waiting (a ``full`` job counts for every enabled stream)."""
    from rq import Worker

    queues: dict[str, Any] = {}
    found: dict[str, dict[str, Any]] = {}
    every = [stream.name for stream in enabled_streams(settings)]
    for name in queues_of(settings):
        queue = Queue(name, connection=connection)
        running = StartedJobRegistry(queue=queue).get_job_ids()
        scheduled = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        waiting = queue.get_job_ids() + scheduled.get_job_ids()
        queues[name] = {
            "waiting": len(waiting),
            "running": len(running),
            "workers": len(Worker.all(connection=connection, queue=queue)),
        }
        for job_id in [*running, *waiting]:  # running first: it wins
            job = _fetch(job_id, connection)
            if job is None or job.func_name != SYNC_FUNCTION:
                continue
            kind = str(job.meta.get(META_KIND) or (job.args[0] if job.args else ""))
            for stream in every if kind == FULL else (kind,):
                found.setdefault(stream, _job(job, kind))
    return queues, found


def _fetch(job_id: str, connection: Redis) -> Job | None:
    try:
        return Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None


def _aware(moment: datetime | None) -> datetime | None:
    """RQ keeps naive UTC times."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _job(job: Job, kind: str) -> dict[str, Any]:
    status = job.get_status(refresh=False)
    return {
        "id": job.id,
        "kind": kind,
        "status": status.value if status is not None else None,
        "queue": job.origin,
        "enqueued_at": _iso(_aware(job.enqueued_at)),
        "started_at": _iso(_aware(job.started_at)),
        "progress": job.meta.get(META_PROGRESS),
    }
