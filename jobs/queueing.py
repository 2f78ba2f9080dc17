"""Putting syncs onto the Redis queues: the web app's path (:func:`enqueue_sync`).

``products`` and ``full`` go to ``smartup-products``, ``orders`` to ``smartup-orders``.
At most one job per kind waits at a time: enqueueing a kind that is already waiting
returns the waiting job. The check and the enqueue happen under a short Redis lock, so
two web processes pressing "resync" at once still add one job.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from jobs.settings import Settings, check_days_back, load_settings
from jobs.tasks import check_kind

PRODUCTS_QUEUE = "smartup-products"
ORDERS_QUEUE = "smartup-orders"
QUEUE_FOR_KIND = {"products": PRODUCTS_QUEUE, "orders": ORDERS_QUEUE, "full": PRODUCTS_QUEUE}
WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
RESULT_TTL_SECONDS = 24 * 3600  # how long `rq info` and the job API keep a result
FAILURE_TTL_SECONDS = 7 * 24 * 3600
RETRY_INTERVALS = [30, 120]  # waits before the 2 retries of a job that failed (database down)
KEY_PREFIX = "smartup-sync"


def redis_connection(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url)


def register_queues(connection: Redis) -> None:
    """Make both queues known to ``rq info`` even while one has never held a job."""
    keys = [Queue(name, connection=connection).key for name in (PRODUCTS_QUEUE, ORDERS_QUEUE)]
    connection.sadd(Queue.redis_queues_keys, *keys)


def enqueue_sync(
    kind: str,
    *,
    days_back: int | None = None,
    full: bool = False,
    periodic: bool = False,
    settings: Settings | None = None,
    connection: Redis | None = None,
) -> Job:
    """Queue a sync of ``kind`` (``products``, ``orders`` or ``full``); return its job.

    When a job of the same kind is still waiting, that job is returned and nothing is
    added; a ``full`` request (the whole catalogue) is never merged into a waiting
    incremental one. ``days_back`` (1-90) forces an orders sweep of that many days.
    ``periodic`` marks a job the scheduler queued: only those are skipped when the day's
    quota is down to the reserve; a waiting periodic job that the web app asks for again
    becomes an on-demand one.
    """
    check_kind(kind)
    check_days_back(days_back)
    settings = settings or load_settings()
    connection = connection or redis_connection(settings)
    marker = f"{KEY_PREFIX}:waiting:{kind}" + (":full" if full else "")
    register_queues(connection)
    with connection.lock(f"{KEY_PREFIX}:enqueue-lock:{kind}", timeout=10, blocking_timeout=10):
        waiting = _waiting_job(connection, connection.get(marker))
        if waiting is not None:
            if not periodic and waiting.meta.get("periodic"):
                waiting.meta["periodic"] = False
                waiting.save_meta()  # type: ignore[no-untyped-call]
            return waiting
        queue = Queue(QUEUE_FOR_KIND[kind], connection=connection)
        job = queue.enqueue(
            "jobs.tasks.sync_job",
            kind,
            days_back,
            *((True,) if full else ()),  # sync_job(kind, days_back, full=False)
            job_timeout=settings.sync_job_timeout_seconds,
            result_ttl=RESULT_TTL_SECONDS,
            failure_ttl=FAILURE_TTL_SECONDS,
            retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS),
            description=f"smartup {kind} sync"
            + (" (whole catalogue)" if full else "")
            + (f" ({days_back} days back)" if days_back else ""),
            meta={"kind": kind, "periodic": periodic},
        )
        connection.set(marker, job.id, ex=settings.sync_job_timeout_seconds + FAILURE_TTL_SECONDS)
        return job


def _waiting_job(connection: Redis, job_id: Any) -> Job | None:
    if not job_id:
        return None
    try:
        job = Job.fetch(
            job_id.decode() if isinstance(job_id, bytes) else job_id, connection=connection
        )
    except NoSuchJobError:
        return None
    return job if job.get_status(refresh=False) in WAITING else None


def scheduled_enqueue(kind: str) -> str:
    """What rq-scheduler runs every interval: queue the kind's sync unless one waits.

    rq-scheduler pushes a periodic job again even while its last copy still waits; by
    going through :func:`enqueue_sync`, those extra copies add no extra sync.
    """
    return enqueue_sync(kind, periodic=True).id
