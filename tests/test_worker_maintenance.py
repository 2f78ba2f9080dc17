"""The worker's maintenance (:mod:`jobs.processes.worker`), on the ``SyncWorker``
``run_worker`` builds, taken in this process just before it would start working, on real
Redis: a job a killed worker abandoned is retried by the next maintenance, which comes
every minute (RQ's default: ten); a worker lists itself again after Redis came back empty.
No work horse is forked and nothing waits: the clock is moved by setting when maintenance
last ran."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue, Worker
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from jobs.kinds import queue_for
from jobs.processes import worker as worker_module
from jobs.processes.queueing import RETRY_INTERVALS, enqueue_sync
from jobs.processes.worker import (
    WORKER_TTL_SECONDS,
    SyncWorker,
    run_worker,
)
from tests.helpers import offline_settings

PRODUCTS_QUEUE = queue_for("products")
ORDERS_QUEUE = queue_for("orders")


@pytest.fixture
def worker(redis, monkeypatch) -> Iterator[SyncWorker]:
    """The worker ``run_worker`` makes for the default streams, on our Redis, caught where
    it would start working (not started): what it was built with is what these tests see,
    so a worker built otherwise fails them."""
    made: list[SyncWorker] = []

    def caught(self: SyncWorker, **_: object) -> bool:
        made.append(self)
        return True

    monkeypatch.setattr(worker_module, "patient_connection", lambda url, *, process: redis)
    monkeypatch.setattr(SyncWorker, "work", caught)
    run_worker(offline_settings("postgresql://root@127.0.0.1:5432/never-opened"))
    [built] = made
    yield built


def test_maintenance_comes_every_minute(worker):
    assert worker.should_run_maintenance_tasks  # at start
    worker.run_maintenance_tasks()
    assert not worker.should_run_maintenance_tasks
    worker.last_cleaned_at = datetime.now(UTC) - timedelta(seconds=50)
    assert not worker.should_run_maintenance_tasks
    worker.last_cleaned_at = datetime.now(UTC) - timedelta(seconds=70)
    assert worker.should_run_maintenance_tasks  # a stock RQ worker would wait ten minutes


def test_a_job_a_killed_worker_abandoned_is_retried_by_the_next_maintenance(pg, redis, worker):
    job = enqueue_sync("products", settings=offline_settings(pg))
    queue = Queue(PRODUCTS_QUEUE, connection=redis)
    # what a worker killed mid-run leaves: the job out of its queue, STARTED, in the
    # started registry under an execution whose heartbeat lapsed a second ago
    queue.remove(job)
    job.set_status(JobStatus.STARTED)
    started = StartedJobRegistry(queue=queue)
    redis.zadd(started.key, {f"{job.id}:execution-of-a-dead-worker": time.time() - 1})

    worker.run_maintenance_tasks()

    assert started.get_job_ids() == []
    job.refresh()
    assert job.retries_left == len(RETRY_INTERVALS) - 1  # one retry spent
    assert job.get_status() == "scheduled"  # after the first retry interval
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == [job.id]


def test_a_job_still_heartbeating_is_left_alone(pg, redis, worker):
    job = enqueue_sync("products", settings=offline_settings(pg))
    queue = Queue(PRODUCTS_QUEUE, connection=redis)
    queue.remove(job)
    job.set_status(JobStatus.STARTED)
    started = StartedJobRegistry(queue=queue)
    redis.zadd(started.key, {f"{job.id}:execution-alive": time.time() + WORKER_TTL_SECONDS})

    worker.run_maintenance_tasks()

    assert started.get_job_ids() == [job.id]
    assert job.get_status(refresh=True) == "started"


def test_a_worker_lists_itself_again_after_redis_came_back_empty(redis, worker):
    worker.register_birth()
    assert [w.name for w in Worker.all(connection=redis)] == [worker.name]
    redis.flushdb()  # a Redis restarted without persistence
    assert Worker.all(connection=redis) == []
    worker.heartbeat()
    assert [w.name for w in Worker.all(connection=redis)] == [worker.name]
    assert {q.name for q in Worker.all(connection=redis)[0].queues} == {
        PRODUCTS_QUEUE,
        ORDERS_QUEUE,
    }
