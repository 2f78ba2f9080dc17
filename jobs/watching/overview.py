"""One call for the web app: :func:`sync_overview` says, per stream (kind) the scheduler
plans, when it last ran and last succeeded, what is waiting or running now (with its
progress), and what is known of its pool's SmartUp quota today, the day's plan, its data
age (``data_age_s``: seconds since the last successful request of its filial that
succeeded longest ago, which bounds how stale any of its records can be) and the sync
state (watermark, sealed days, last sweep, data age) per filial; and per quota pool, its
quota and what the day's plan spends. Plain data (str, int, float, bool, None, lists,
dicts): it goes to JSON as it is. ``python -m jobs status --json`` prints it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from jobs.day.plan import plan_for
from jobs.day.registered_plan import registered_plan
from jobs.day.state import (
    Quota,
    StreamState,
    all_states,
    data_age,
    day_range_limits,
    limits_seen,
    quota_today,
)
from jobs.kinds import FULL, META_KIND, META_PROGRESS, SYNC_FUNCTION, queue_for
from jobs.models import SyncRun, open_database
from jobs.pipeline.streams import declared, default_streams, enabled_streams
from jobs.run.rows import RUNNING, counts_of, last_run_of, last_success_of, one_line
from jobs.settings import Settings, web_database_url, web_optional_redis_url
from jobs.watching.health import PERIODIC_PREFIX, SCHEDULER_KEY, STALE_INTERVALS, is_late

DEFAULT_TIMEZONE = "Asia/Tashkent"  # SMARTUP_TIMEZONE's default, while no plan says


def sync_overview(
    *,
    database_url: str | None = None,
    connection: Redis | None = None,
    env_file: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the web app shows about syncing, in one call.

    Needs the database: ``database_url``, else that of ``settings`` (the worker's own
    commands), else ``DATABASE_URL`` from the environment (and from ``env_file`` when one
    is named; no ``.env`` is read otherwise); without one it raises
    :class:`~jobs.settings.SettingsError` naming ``DATABASE_URL``. Redis (``connection``,
    else ``REDIS_URL``) gives the queue part; without it, or when it cannot be reached,
    the database part is still returned, with ``redis_error`` saying why. The plan shown
    is the one the scheduler registered (:mod:`jobs.day.registered_plan`), not one made from
    this process's environment (before the first registration: the one ``settings`` make,
    when given, else none). Opens (and closes) its own database connection.
    """
    now = now or datetime.now(UTC)
    if database_url is None:
        database_url = (
            settings.database_url if settings is not None else web_database_url(env_file=env_file)
        )
    secrets = settings.secrets if settings is not None else _url_secrets(database_url)
    db = open_database(database_url)
    try:
        plan = registered_plan() or _plan_of(settings)
    finally:
        db.close()
    kinds_shown = _kinds_shown(plan, settings)
    jobs: dict[str, dict[str, Any]] = {}
    next_runs: dict[str, str | None] = {}
    queues: dict[str, Any] | None = None
    redis_error = None
    try:
        if connection is None:
            redis_url = (
                settings.redis_url
                if settings is not None
                else web_optional_redis_url(env_file=env_file)
            )
            if redis_url is not None:
                connection = Redis.from_url(redis_url)
                secrets = (*secrets, *_url_secrets(redis_url))
        if connection is None:
            redis_error = "REDIS_URL is not set: no queue part"
        else:
            queues, jobs = _queue_part(connection, kinds_shown)
            next_runs = _next_runs(connection, kinds_shown)
    except RedisError as error:
        redis_error = one_line(f"Redis error: {error}", secrets=secrets)
    db = open_database(database_url)
    try:
        zone = next((p["timezone"] for p in plan.values()), None)
        tz = ZoneInfo(zone or (settings.smartup_timezone if settings else DEFAULT_TIMEZONE))
        today = now.astimezone(tz).date()
        states = all_states()
        successes = {kind: last_success_of(kind) for kind in kinds_shown}
        pool_of = {kind: declared()[kind].pool.name for kind in kinds_shown}
        quotas = {pool: quota_today(pool, today=today) for pool in set(pool_of.values())}
        kinds = {
            kind: {
                "last_run": _run(last_run_of(kind), kind, now),
                "last_success": _run(successes[kind], kind, now),
                "stale": _stale(successes[kind], plan.get(kind), now),
                "job": (jobs.get(kind) or {}).get("running")
                or (jobs.get(kind) or {}).get("waiting"),
                "running": (jobs.get(kind) or {}).get("running"),
                "waiting": (jobs.get(kind) or {}).get("waiting"),
                "quota": _quota(pool_of[kind], quotas[pool_of[kind]], plan.get(kind)),
                "plan": plan.get(kind),
                "next_run_at": next_runs.get(kind),
                "data_age_s": _data_age(kind, states, now),
                "state": [
                    {
                        "filial_id": state.filial_id or None,
                        "watermark": state.watermark.isoformat() if state.watermark else None,
                        "sealed_through": (
                            state.sealed_through.isoformat() if state.sealed_through else None
                        ),
                        "last_sweep_at": _iso(state.last_sweep_at),
                        "last_success_at": _iso(state.last_success_at),
                        "data_age_s": data_age([state], now=now),
                    }
                    for state in states
                    if state.stream == kind
                ],
            }
            for kind in kinds_shown
        }
    finally:
        db.close()
    return {
        "generated_at": _iso(now),
        "kinds": kinds,
        "pools": _pools(plan),
        "queues": queues,
        "redis_error": redis_error,
    }


def _data_age(kind: str, states: list[StreamState], now: datetime) -> float | None:
    """The stream's data age (:func:`jobs.day.state.data_age`) over the state keys its
    declaration says age its data; None for ``full`` (each stream has its own)."""
    stream = declared().get(kind)
    if stream is None:
        return None
    return data_age([s for s in states if s.stream == kind], now=now, counts=stream.ages_data)


def _plan_of(settings: Settings | None) -> dict[str, dict[str, Any]]:
    """Before any scheduler registered a plan: the one ``settings`` (the worker's own,
    never the web app's environment) make from the quotas seen; else none."""
    if settings is None:
        return {}
    plan = plan_for(settings, limits_seen=limits_seen(), day_range_limits=day_range_limits())
    extra = {"timezone": settings.smartup_timezone, "registered_at": None}
    return {name: {**stream_plan.as_dict(), **extra} for name, stream_plan in plan.items()}


def _kinds_shown(plan: dict[str, dict[str, Any]], settings: Settings | None) -> tuple[str, ...]:
    """The streams the scheduler planned (in declaration order); before any plan was
    registered, the enabled streams of ``settings``, else the default ones."""
    if plan:
        return tuple(name for name in declared() if name in plan)
    streams = enabled_streams(settings) if settings is not None else default_streams()
    return tuple(stream.name for stream in streams)


def _pools(plan: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per quota pool of the registered plan: its quota, reserve and what a day of its
    streams' periodic runs spends."""
    pools: dict[str, dict[str, Any]] = {}
    for name, stream_plan in plan.items():
        pool = pools.setdefault(
            stream_plan["pool"],
            {
                "name": stream_plan["pool"],
                "quota": stream_plan["quota"],
                "reserve": stream_plan["reserve"],
                "requests_per_day": stream_plan.get("pool_requests_per_day"),
                "streams": [],
            },
        )
        pool["streams"].append(name)
    return list(pools.values())


def _url_secrets(url: str) -> tuple[str, ...]:
    password = urlsplit(url).password
    return (password,) if password else ()


def _stale(success: SyncRun | None, plan: dict[str, Any] | None, now: datetime) -> bool | None:
    """No SUCCESS (``success``: the kind's last) within :data:`STALE_INTERVALS` of the
    registered interval; None while no scheduler has registered a plan (there is no
    interval to be late against)."""
    if plan is None:
        return None
    limit = timedelta(seconds=STALE_INTERVALS * int(plan["interval_used_s"]))
    return is_late(success, limit, now=now)


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


def _quota(pool: str, quota: Quota | None, plan: dict[str, Any] | None) -> dict[str, Any] | None:
    """The quota today of a stream's ``pool`` (``quota``: read once per pool), as SmartUp
    last told it."""
    if quota is None:
        return None
    return {
        "pool": pool,
        "day": quota.day.isoformat(),
        "limit": quota.limit,
        "used": quota.used,
        "left": quota.left,
        "exhausted": quota.exhausted,
        "reserve": plan["reserve"] if plan else None,
        "seen_at": _iso(quota.seen_at),
    }


def _queue_part(
    connection: Redis, kinds: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, Any]]]]:
    """Per queue: jobs waiting, running, workers; per kind: the job running and the
    first one waiting (a ``full`` job counts for every kind shown)."""
    queues: dict[str, Any] = {}
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for name in (queue_for(kind) for kind in kinds):
        queue = Queue(name, connection=connection)
        running = StartedJobRegistry(queue=queue).get_job_ids()
        scheduled = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        waiting = queue.get_job_ids() + scheduled.get_job_ids()
        queues[name] = {
            "waiting": len(waiting),
            "running": len(running),
            "workers": len(Worker.all(connection=connection, queue=queue)),
        }
        for state, job_ids in (("running", running), ("waiting", waiting)):
            for job_id in job_ids:
                job = _fetch(job_id, connection)
                if job is None or job.func_name != SYNC_FUNCTION:
                    continue
                kind = str(job.meta.get(META_KIND) or (job.args[0] if job.args else ""))
                for stream in kinds if kind == FULL else (kind,):
                    found.setdefault(stream, {}).setdefault(state, _job(job, kind))
    return queues, found


def _next_runs(connection: Redis, kinds: tuple[str, ...]) -> dict[str, str | None]:
    """Per kind: when rq-scheduler next queues its periodic sync (None: not registered)."""
    found: dict[str, str | None] = {}
    for kind in kinds:
        due = connection.zscore(SCHEDULER_KEY, f"{PERIODIC_PREFIX}{kind}")
        found[kind] = _iso(datetime.fromtimestamp(due, UTC)) if due is not None else None
    return found


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
