"""Putting syncs onto the Redis queues: the web app's path (:func:`enqueue_sync`).

Each stream's jobs go to its own queue (``smartup-<stream>``); ``full`` goes to the queue
of the first enabled stream. At most one job per kind waits at a time: enqueueing a kind
that is already waiting returns the waiting job. The check and the enqueue happen under a
short Redis lock, so two web processes pressing "resync" at once still add one job.

A job counts as waiting only while something will really move it: it sits in its queue, or
it is scheduled (a retry) for a time that has not passed by more than :data:`OVERDUE_SECONDS`.
RQ moves due retries from the process holding its scheduler lock; when that process died,
nothing moves them until another worker takes the lock over, minutes later.
:func:`move_overdue_jobs` moves them instead: the ``scheduler`` process calls it on every
loop, and :func:`enqueue_sync` does the same for the job it finds overdue.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue, Retry, get_current_job
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from jobs.clock import utc_now
from jobs.kinds import (
    FULL,
    KEY_PREFIX,
    META_KIND,
    META_PERIODIC,
    META_RETRIES,
    SYNC_FUNCTION,
    queue_for,
)
from jobs.pipeline.streams import (
    declared,
    declared_names,
    default_streams,
    enabled_streams,
    streams_of,
)
from jobs.settings import Settings, check_days_back, web_redis_url

SCHEDULED = {JobStatus.SCHEDULED, JobStatus.DEFERRED}
OVERDUE_SECONDS = 10  # RQ's own scheduler moves a due job within a second or two
RESULT_TTL_SECONDS = 24 * 3600  # how long `rq info` and the job API keep a result
FAILURE_TTL_SECONDS = 7 * 24 * 3600
RETRY_INTERVALS = [30, 120]  # waits before the 2 retries of a job that failed (database down)
MARKER_TTL_SECONDS = 86400 + FAILURE_TTL_SECONDS  # outlives the longest job timeout allowed


def redis_connection(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url)


def queues_of(settings: Settings) -> tuple[str, ...]:
    """The queue of every enabled stream, in declaration order."""
    return tuple(stream.queue for stream in enabled_streams(settings))


def queue_of_kind(kind: str, settings: Settings | None, connection: Redis | None = None) -> str:
    """The queue a job of ``kind`` goes to: its stream's; ``full``: the first enabled
    stream's. Without settings (the web app's call), ``full`` goes to the first declared
    stream whose queue a worker made known, else to the first default stream's."""
    if kind != FULL:
        return queue_for(kind)
    if settings is not None:
        return queue_for(streams_of(kind, settings)[0])
    known = connection.smembers(Queue.redis_queues_keys) if connection is not None else set()
    for stream in declared().values():
        if Queue(stream.queue, connection=connection).key.encode() in known:
            return stream.queue
    return default_streams()[0].queue


def register_queues(connection: Redis, settings: Settings | None = None) -> None:
    """Make every enabled stream's queue known to ``rq info`` even while it has never
    held a job."""
    if settings is not None:
        names = queues_of(settings)
    else:  # the default SYNC_STREAMS
        names = tuple(stream.queue for stream in default_streams())
    keys = [Queue(name, connection=connection).key for name in names]
    connection.sadd(Queue.redis_queues_keys, *keys)


def enqueue_sync(
    kind: str,
    *,
    days_back: int | None = None,
    full: bool = False,
    periodic: bool = False,
    settings: Settings | None = None,
    connection: Redis | None = None,
    env_file: str | None = None,
) -> Job:
    """Queue a sync of ``kind`` (an enabled stream's name, or ``full``); return its job.

    Needs Redis only: ``connection``, else the Redis of ``settings`` (the worker's own
    commands), else ``REDIS_URL`` from the environment (and from ``env_file`` when one is
    named; no ``.env`` is read otherwise). Without any of them it raises
    :class:`~jobs.settings.SettingsError` naming ``REDIS_URL``: it never guesses a Redis.
    The job carries no timeout: the worker that runs it applies ``SYNC_JOB_TIMEOUT_SECONDS``.

    When a job of the same kind is still waiting, that job is returned and nothing is
    added; a ``full`` request (the whole set of each stream, and a sweep) is never merged
    into a waiting incremental one. ``days_back`` (1-90) forces a sweep of that many days
    of the windowed streams (orders).
    ``periodic`` marks a job the scheduler queued: only those are skipped when the day's
    quota is down to the reserve; a waiting periodic job that the web app asks for again
    becomes an on-demand one.
    """
    if settings is not None:
        streams_of(kind, settings)  # ValueError for a kind these settings do not enable
    elif kind not in (*declared_names(), FULL):
        raise ValueError(
            f"kind must be one of {', '.join([*declared_names(), FULL])}, not {kind!r}"
        )
    check_days_back(days_back)
    if connection is None:
        url = settings.redis_url if settings is not None else web_redis_url(env_file=env_file)
        connection = Redis.from_url(url)
    marker = f"{KEY_PREFIX}:waiting:{kind}" + (":full" if full else "")
    if settings is not None:  # the web app's call does not know which streams are enabled
        register_queues(connection, settings)
    with connection.lock(f"{KEY_PREFIX}:enqueue-lock:{kind}", timeout=10, blocking_timeout=10):
        waiting = _waiting_job(connection, connection.get(marker))
        if waiting is not None:
            if not periodic and waiting.meta.get(META_PERIODIC):
                waiting.meta[META_PERIODIC] = False
                waiting.save_meta()  # type: ignore[no-untyped-call]
            return waiting
        queue = Queue(queue_of_kind(kind, settings, connection), connection=connection)
        job = queue.enqueue(
            SYNC_FUNCTION,
            kind,
            days_back,
            *((True,) if full else ()),  # sync_job(kind, days_back, full=False)
            result_ttl=RESULT_TTL_SECONDS,
            failure_ttl=FAILURE_TTL_SECONDS,
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
            description=f"smartup {kind} sync"
            + (" (whole set)" if full else "")
            + (f" ({days_back} days back)" if days_back else ""),
            meta={META_KIND: kind, META_PERIODIC: periodic, META_RETRIES: len(RETRY_INTERVALS)},
        )
        connection.set(marker, job.id, ex=MARKER_TTL_SECONDS)
        return job


def _waiting_job(connection: Redis, job_id: Any) -> Job | None:
    """The job ``job_id`` if something will run it; an overdue retry is moved to its queue."""
    if not job_id:
        return None
    try:
        job = Job.fetch(
            job_id.decode() if isinstance(job_id, bytes) else job_id, connection=connection
        )
    except NoSuchJobError:
        return None
    status = job.get_status(refresh=False)
    queue = Queue(job.origin, connection=connection)
    if status == JobStatus.QUEUED:
        return job if connection.lpos(queue.key, job.id) is not None else None
    if status not in SCHEDULED:
        return None
    registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
    try:
        due = registry.get_scheduled_time(job)
    except NoSuchJobError:
        return None  # scheduled in name only: nothing will ever move it
    if due > utc_now() - timedelta(seconds=OVERDUE_SECONDS):
        return job
    _move(registry, job.id)  # by us, or a moment ago by another mover: now in its queue
    return job if connection.lpos(queue.key, job.id) is not None else None


def move_overdue_jobs(
    connection: Redis,
    *,
    overdue_seconds: float = OVERDUE_SECONDS,
    queues: tuple[str, ...] | None = None,
) -> list[str]:
    """Move to their queues the jobs of our queues (``queues``, else every declared
    stream's) scheduled more than ``overdue_seconds`` ago (retries whose mover died);
    return their ids.

    Each job is claimed by removing it from RQ's ScheduledJobRegistry first, so a job that
    RQ's own scheduler or another caller moves at the same moment is queued once.
    """
    moved: list[str] = []
    cutoff = int((utc_now() - timedelta(seconds=overdue_seconds)).timestamp())
    for name in queues or tuple(stream.queue for stream in declared().values()):
        registry = ScheduledJobRegistry(name, connection=connection)  # type: ignore[no-untyped-call]
        for job_id in registry.get_jobs_to_schedule(cutoff):
            if _move(registry, job_id) is not None:
                moved.append(job_id)
    return moved


def _move(registry: ScheduledJobRegistry, job_id: str) -> Job | None:
    try:
        return registry.requeue(job_id)
    except InvalidJobOperation:
        return None  # someone else moved it first
    except NoSuchJobError:
        registry.remove(job_id)  # the job expired or Redis lost it: drop the stale entry
        return None


def scheduled_enqueue(kind: str) -> str:
    """What rq-scheduler runs every interval: queue the kind's sync unless one waits.

    rq-scheduler pushes a periodic job again even while its last copy still waits; by
    going through :func:`enqueue_sync`, those extra copies add no extra sync.
    """
    job = get_current_job()  # run by a worker: its own Redis
    return enqueue_sync(kind, periodic=True, connection=job.connection if job else None).id
