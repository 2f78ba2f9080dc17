"""Outages: Redis stopped, PostgreSQL restarted, workers killed, with real processes.

Workers (``python -m jobs worker``) and the scheduler (``python schedule.py``) run as real
processes. Tests that stop Redis start a ``redis-server`` of their own on a private port;
the PostgreSQL restart happens in a private cluster (initdb, ``pg_ctl``) the test starts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

import jobs.processes.queueing
from jobs.kinds import queue_for
from jobs.models import Product, open_database
from jobs.processes.queueing import OVERDUE_SECONDS, enqueue_sync
from jobs.simulator import Fault
from tests.helpers import (
    PG_BIN,
    PG_PORT,
    REDIS_URL,
    ROOT,
    CuttableProxy,
    PrivateCluster,
    Proc,
    env_for,
    port_is_free,
    runs,
    scheduler_process,
    settings_for,
    wait_for,
    worker_process,
)

PRODUCTS_QUEUE = queue_for("products")

SCHEDULER_LOCK = f"rq:scheduler-lock:{PRODUCTS_QUEUE}"
REGISTRATIONS = "rq:scheduler:scheduled_jobs"


def movable(job: Job, connection: Redis) -> bool:
    """Something will run ``job``: it sits in its queue, or is scheduled for a time that
    has not passed by more than the margin the movers allow."""
    status = job.get_status(refresh=True)
    queue = Queue(job.origin, connection=connection)
    if status == "queued":
        return connection.lpos(queue.key, job.id) is not None
    if status == "scheduled":
        due = ScheduledJobRegistry(queue=queue).get_scheduled_time(job)
        return due > datetime.now(UTC) - timedelta(seconds=OVERDUE_SECONDS + 5)
    return status in ("started", "finished")


@pytest.mark.slow
def test_a_retry_whose_scheduler_holder_was_killed_still_runs_after_its_due_time(
    pg, simulator, redis, monkeypatch
):
    monkeypatch.setattr(jobs.processes.queueing, "RETRY_INTERVALS", [15, 15])
    proxy = CuttableProxy()
    proxy.cut()  # the first attempt cannot reach the database: RQ schedules a retry
    environ = env_for(
        simulator,
        pg.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"),
        SYNC_INTERVAL_SECONDS="86400",
    )
    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    holder = worker_process(environ)
    others: list[Proc] = []
    try:
        wait_for(lambda: redis.get(SCHEDULER_LOCK), timeout=60, what="the scheduler lock")
        job = enqueue_sync("products", settings=settings)
        wait_for(lambda: job.get_status(refresh=True) == "scheduled", timeout=60, what="the retry")
        holder.kill_tree()
        assert redis.get(SCHEDULER_LOCK)  # still held, by a dead worker
        due = ScheduledJobRegistry(PRODUCTS_QUEUE, connection=redis).get_scheduled_time(job)
        proxy.restore()
        others = [worker_process(environ), scheduler_process(environ)]

        while datetime.now(UTC) < due:  # the web app keeps asking meanwhile
            again = enqueue_sync("products", settings=settings)
            assert again.id == job.id and movable(again, redis)
            time.sleep(1)
        wait_for(
            lambda: job.get_status(refresh=True) == "finished",
            timeout=120,
            what=f"the retry due at {due:%H:%M:%S} to run (RQ's scheduler lock is a dead "
            "worker's: only our scheduler's move of overdue retries can start it)",
        )
        job.refresh()
        assert job.started_at is not None and job.started_at >= due, (job.started_at, due)
        again = enqueue_sync("products", settings=settings)  # a new one, that runs
        assert again.id != job.id
        wait_for(lambda: again.get_status(refresh=True) == "finished", timeout=60, what="a new run")
    finally:
        outputs = [holder.stop(), *(process.stop() for process in others)]
        proxy.close()
    assert others[1].events("schedule.overdue.moved"), outputs
    products = [run for run in runs(pg) if run.run_type == "products"]
    # the first attempt never reached the database, so the row is the second attempt's
    assert [(run.job_id, run.attempt, run.status) for run in products][:1] == [
        (job.id, 2, "SUCCESS")
    ], outputs


@pytest.mark.slow
def test_the_scheduler_moves_overdue_retries_of_our_queues(pg, simulator, redis):
    queue = Queue(PRODUCTS_QUEUE, connection=redis)
    now = datetime.now(UTC)
    overdue = queue.enqueue_at(now - timedelta(seconds=120), "jobs.tasks.sync_job", "products")
    future = queue.enqueue_at(now + timedelta(seconds=600), "jobs.tasks.sync_job", "products")
    done = subprocess.run(
        [sys.executable, "schedule.py", "--burst"],
        cwd=ROOT,
        env=env_for(simulator, pg),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "schedule.overdue.moved" in done.stdout
    assert overdue.get_status(refresh=True) == "queued" and overdue.id in queue.job_ids
    assert future.get_status(refresh=True) == "scheduled" and future.id not in queue.job_ids


def test_enqueue_sync_returns_only_a_job_something_will_move(pg, simulator, redis):
    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    queue = Queue(PRODUCTS_QUEUE, connection=redis)
    registry = ScheduledJobRegistry(queue=queue)

    lost = enqueue_sync("products", settings=settings)
    redis.lrem(queue.key, 0, lost.id)  # QUEUED in name, in no queue
    replaced = enqueue_sync("products", settings=settings)
    assert replaced.id != lost.id and queue.job_ids == [replaced.id]

    redis.lrem(queue.key, 0, replaced.id)
    queue.schedule_job(replaced, datetime.now(UTC) + timedelta(seconds=300))
    assert enqueue_sync("products", settings=settings).id == replaced.id  # a retry to come
    assert queue.job_ids == []

    redis.zadd(registry.key, {replaced.id: time.time() - 60})  # its mover died
    moved = enqueue_sync("products", settings=settings)
    assert moved.id == replaced.id and moved.get_status(refresh=True) == "queued"
    assert queue.job_ids == [replaced.id] and registry.get_job_ids() == []

    redis.lrem(queue.key, 0, replaced.id)
    replaced.set_status(JobStatus.SCHEDULED)  # SCHEDULED in name, in no registry
    fresh = enqueue_sync("products", settings=settings)
    assert fresh.id != replaced.id and queue.job_ids == [fresh.id]


@pytest.mark.slow
def test_redis_stopped_for_20_seconds_during_a_run(pg, simulator, private_redis):
    private_redis.start()
    connection = Redis.from_url(private_redis.url)
    simulator.add_fault("products", Fault(delay=15.0))  # the run outlasts most of the outage
    environ = env_for(simulator, pg, REDIS_URL=private_redis.url, SYNC_INTERVAL_SECONDS="86400")
    processes = [scheduler_process(environ), worker_process(environ), worker_process(environ)]
    try:
        # the scheduler queues a products and an orders sync at once; orders is quick
        [busy] = wait_for(
            lambda: (
                [r for r in runs(pg) if (r.run_type, r.status) == ("products", "RUNNING")]
                if [r for r in runs(pg) if (r.run_type, r.status) == ("orders", "SUCCESS")]
                else None
            ),
            timeout=60,
            what="a products run in progress and the orders run done",
        )
        private_redis.stop()
        time.sleep(20)  # the outage itself: nothing to poll for
        private_redis.start()  # empty: a restart of a Redis that keeps nothing

        wait_for(
            lambda: [r for r in runs(pg) if (r.id, r.status) == (busy.id, "SUCCESS")],
            timeout=120,
            what="the products run to end",
        )
        wait_for(
            lambda: connection.zcard(REGISTRATIONS) == 2,
            timeout=60,
            what="the registrations to come back",
        )
        wait_for(
            lambda: len(Worker.all(connection=connection)) == 2,
            timeout=60,
            what="both workers to list themselves again",
        )
        assert all(process.alive() for process in processes)
        job = enqueue_sync(
            "orders", settings=settings_for(simulator, pg, redis_url=private_redis.url)
        )
        wait_for(lambda: job.get_status(refresh=True) == "finished", timeout=60, what="a new job")
        assert all(process.alive() for process in processes)
    finally:
        outputs = [process.stop() for process in processes]
        connection.close()
    everything = "".join(outputs)
    # the busy run ended where it stood: no second attempt of its job
    assert [(r.id, r.attempt, r.status) for r in runs(pg) if r.job_id == busy.job_id] == [
        (busy.id, 1, "SUCCESS")
    ], everything
    assert "Work-horse terminated unexpectedly" not in everything
    for process, event in zip(processes, ("schedule", "worker", "worker"), strict=True):
        downs = _pids(process.events(f"{event}.redis.down"))
        ups = _pids(process.events(f"{event}.redis.up"))
        assert downs and sorted(set(downs)) == sorted(downs), process.output  # once a process
        assert set(ups) == set(downs), process.output
    open_database(pg)
    assert Product.select().count() == 100


def _pids(lines: list[str]) -> list[int]:
    return [int(match.group(1)) for line in lines if (match := re.search(r'"pid": (\d+)', line))]


@pytest.mark.slow
def test_a_worker_started_while_redis_is_down_serves_when_it_comes_up(pg, simulator, private_redis):
    environ = env_for(simulator, pg, REDIS_URL=private_redis.url)
    process = worker_process(environ)
    try:
        wait_for(lambda: process.events("worker.redis.down"), timeout=60, what="the wait")
        time.sleep(3)  # waiting, not exiting
        assert process.alive()
        private_redis.start()
        job = enqueue_sync(
            "products", settings=settings_for(simulator, pg, redis_url=private_redis.url)
        )
        wait_for(lambda: job.get_status(refresh=True) == "finished", timeout=90, what="the job")
        assert process.alive()
        private_redis.stop()  # a worker asked to stop while Redis is away stops all the same
        wait_for(
            lambda: _pids(process.events("worker.redis.down")).count(process.pid) == 2,
            timeout=90,
            what="the worker to see Redis gone again",
        )
    finally:
        output = process.stop()
    assert process.popen.returncode == 0, output
    assert _pids(process.events("worker.redis.down")).count(process.pid) == 2, output
    assert _pids(process.events("worker.redis.up")).count(process.pid) == 1, output
    assert [(r.run_type, r.status) for r in runs(pg)] == [("products", "SUCCESS")]


@pytest.mark.slow
def test_a_killed_attempt_stays_failed_and_its_retry_is_a_new_row(
    pg, simulator, redis, monkeypatch
):
    monkeypatch.setattr(jobs.processes.queueing, "RETRY_INTERVALS", [0, 0])  # retry at once
    simulator.add_fault("products", Fault(delay=30.0))
    job = enqueue_sync("products", settings=settings_for(simulator, pg, redis_url=REDIS_URL))
    environ = env_for(simulator, pg)
    first = worker_process(environ)
    try:
        wait_for(lambda: [r for r in runs(pg) if r.status == "RUNNING"], timeout=60, what="a run")
        first.kill_tree()
    finally:
        first.stop()
    simulator.clear_faults()
    # What a live worker's maintenance does once the dead worker's heartbeat lapsed (about a
    # minute later): the abandoned job is retried. A later clock skips the wait.
    StartedJobRegistry(PRODUCTS_QUEUE, connection=redis).cleanup(time.time() + 3600)
    assert job.get_status(refresh=True) == "queued"
    done = subprocess.run(
        [sys.executable, "-m", "jobs", "worker", "--burst"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [(r.job_id, r.attempt, r.status, r.error_message) for r in runs(pg)]
    assert rows == [
        (job.id, 1, "FAILED", "interrupted: the database or the worker went away"),
        (job.id, 2, "SUCCESS", None),
    ], done.stdout


@pytest.fixture
def private_cluster() -> Iterator[PrivateCluster]:
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        pytest.skip("initdb is not installed (/usr/lib/postgresql/*/bin): no private cluster")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: initdb refuses to run as root")
    if not port_is_free(PG_PORT):
        pytest.skip(f"port {PG_PORT} is taken (set TEST_PRIVATE_PG_PORT)")
    directory = Path(tempfile.mkdtemp(prefix="smartup-test-pg-"))  # reachable by postgres
    cluster = PrivateCluster(directory, PG_PORT)
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_postgres_restarted_in_immediate_mode_mid_run(
    private_cluster, simulator, redis, monkeypatch
):
    monkeypatch.setattr(jobs.processes.queueing, "RETRY_INTERVALS", [3, 3])
    simulator.add_fault("products", Fault(delay=8.0), times=1)
    url = private_cluster.url
    process = worker_process(env_for(simulator, url))
    try:
        job = enqueue_sync("products", settings=settings_for(simulator, url, redis_url=REDIS_URL))
        wait_for(lambda: [r for r in runs(url) if r.status == "RUNNING"], timeout=60, what="a run")
        private_cluster.restart_immediately()
        wait_for(
            lambda: job.get_status(refresh=True) == "finished",
            timeout=120,
            what="the retry to succeed",
        )
        assert process.alive()
    finally:
        output = process.stop()
    rows = [(r.job_id, r.attempt, r.status) for r in runs(url)]
    assert rows == [(job.id, 1, "FAILED"), (job.id, 2, "SUCCESS")], output
    interrupted = runs(url)[0].error_message or ""
    assert interrupted.startswith(
        "interrupted: the database or the worker went away (database error:"
    ), interrupted
    open_database(url)
    assert Product.select().count() == 100
