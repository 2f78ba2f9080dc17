"""Queues, workers and the schedule, on real Redis (a database number of our own) and real
PostgreSQL, with workers as real worker processes (``python -m jobs worker``, the Procfile's)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rq import Queue

from jobs.kinds import queue_for
from jobs.models import Product, open_database
from jobs.processes.queueing import enqueue_sync
from jobs.processes.scheduler import PERIODIC_JOBS, make_scheduler, register, registered_intervals
from jobs.simulator import Fault
from tests.helpers import (
    REDIS_URL,
    ROOT,
    RQ,
    TODAY,
    CuttableProxy,
    env_for,
    finish,
    kill_with_work_horse,
    runs,
    settings_for,
    start_worker,
    stop,
    wait_for,
)

PRODUCTS_QUEUE = queue_for("products")
ORDERS_QUEUE = queue_for("orders")


@pytest.mark.slow
def test_a_full_sync_through_the_queue(pg, simulator, redis):
    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    job = enqueue_sync("full", settings=settings)
    assert job.origin == PRODUCTS_QUEUE
    info = subprocess.run(
        [RQ, "info", "--url", REDIS_URL], capture_output=True, text=True, timeout=60
    )
    assert PRODUCTS_QUEUE in info.stdout and ORDERS_QUEUE in info.stdout
    output = finish(start_worker(env_for(simulator, pg)))
    [run] = runs(pg)
    assert (run.run_type, run.status, run.job_id) == ("full", "SUCCESS", job.id), output
    assert (run.synced_products_count, run.synced_orders_count) == (100, 40)
    assert job.get_status(refresh=True) == "finished"
    value = job.return_value() or {}
    assert {k: value[k] for k in ("status", "run_id", "error")} == {
        "status": "SUCCESS",
        "run_id": run.id,
        "error": None,
    }
    assert isinstance(value["duration_s"], float)  # reported; how long it took is not a test
    assert [
        (s["stream"], s["requests"], s["received"], s["inserted"]) for s in value["streams"]
    ] == [
        ("products", 1, 100, 100),
        ("orders", 1, 40, 40),
    ]


@pytest.mark.slow
def test_a_kind_that_is_already_waiting_is_not_queued_twice(pg, simulator, redis):
    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    jobs = [enqueue_sync("products", settings=settings) for _ in range(3)]
    assert len({job.id for job in jobs}) == 1
    assert Queue(PRODUCTS_QUEUE, connection=redis).count == 1
    other = enqueue_sync("orders", settings=settings)
    assert other.id != jobs[0].id and Queue(ORDERS_QUEUE, connection=redis).count == 1

    finish(start_worker(env_for(simulator, pg)))
    assert jobs[0].get_status(refresh=True) == "finished"
    again = enqueue_sync("products", settings=settings)
    assert again.id != jobs[0].id
    assert Queue(PRODUCTS_QUEUE, connection=redis).count == 1


def test_enqueue_from_the_command_line(pg, simulator, redis):
    done = subprocess.run(
        [sys.executable, "-m", "jobs", "enqueue", "orders", "--days-back", "3"],
        cwd=ROOT,
        env=env_for(simulator, pg),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    [job] = Queue(ORDERS_QUEUE, connection=redis).jobs
    assert job.args == ("orders", 3) and job.id in done.stdout


def test_registration_is_idempotent_and_follows_the_interval(pg, simulator, redis):
    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    scheduler = make_scheduler(settings, redis)
    scheduler.schedule(  # a periodic job of ours that the code no longer defines
        scheduled_time=time_now(),
        func="jobs.queueing.scheduled_enqueue",
        args=["full"],
        interval=600,
        id="smartup-sync-periodic-legacy",
    )
    register(scheduler, settings)
    register(scheduler, settings)
    jobs = list(scheduler.get_jobs())
    assert sorted(job.id for job in jobs) == sorted(PERIODIC_JOBS)
    # orders keep the 600 s asked for; 144 product exports a day would not fit 100 - 20
    assert registered_intervals(scheduler) == {"products": 1080, "orders": 600}

    slower = settings_for(simulator, pg, redis_url=REDIS_URL, sync_interval_seconds=900)
    register(scheduler, slower)
    jobs = list(scheduler.get_jobs())
    assert len(jobs) == 2
    assert registered_intervals(scheduler) == {"products": 1080, "orders": 900}


def time_now():
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)


@pytest.mark.slow
def test_the_scheduler_moves_due_jobs_and_a_worker_syncs_them(pg, simulator, redis):
    environ = env_for(simulator, pg)
    done = subprocess.run(
        [sys.executable, "schedule.py", "--burst"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert Queue(PRODUCTS_QUEUE, connection=redis).count == 1
    assert Queue(ORDERS_QUEUE, connection=redis).count == 1
    output = finish(start_worker(environ))
    assert sorted((run.run_type, run.status) for run in runs(pg)) == [
        ("orders", "SUCCESS"),
        ("products", "SUCCESS"),
    ], output
    assert (
        len(
            list(make_scheduler(settings_for(simulator, pg, redis_url=REDIS_URL), redis).get_jobs())
        )
        == 2
    )


@pytest.mark.slow
def test_the_running_scheduler_restores_registrations_that_vanished(pg, simulator, redis):
    scheduler = subprocess.Popen(
        [sys.executable, "schedule.py"],
        cwd=ROOT,
        env=env_for(simulator, pg),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        key = "rq:scheduler:scheduled_jobs"
        wait_for(lambda: redis.zcard(key) == 2, timeout=30, what="the first registration")
        redis.flushdb()  # what a Redis restart without persistence leaves
        assert redis.zcard(key) == 0
        wait_for(lambda: redis.zcard(key) == 2, timeout=60, what="the registrations to come back")
    finally:
        output = stop(scheduler)
    assert "schedule.restored" in output


@pytest.mark.slow
def test_two_workers_at_once_sync_once(pg, simulator, redis):
    simulator.add_fault("products", Fault(delay=5.0))  # the first run holds the lock a while
    queue = Queue(PRODUCTS_QUEUE, connection=redis)
    first = queue.enqueue("jobs.tasks.sync_job", "products")
    second = queue.enqueue("jobs.tasks.sync_job", "products")
    environ = env_for(simulator, pg)
    workers = [start_worker(environ), start_worker(environ)]
    outputs = [finish(worker) for worker in workers]
    assert sum(output.count('"sync.skipped"') for output in outputs) == 1, outputs
    [run] = runs(pg)
    assert run.status == "SUCCESS" and run.job_id in {first.id, second.id}
    statuses = sorted((job.return_value() or {})["status"] for job in (first, second))
    assert statuses == ["SKIPPED", "SUCCESS"]
    assert len([r for r in simulator.requests if r.endpoint == "products"]) == 1
    open_database(pg)
    assert Product.select().count() == 100


@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_a_run_the_next_one_closes(pg, simulator, redis):
    simulator.add_fault("products", Fault(delay=30.0))
    job = enqueue_sync("products", settings=settings_for(simulator, pg, redis_url=REDIS_URL))
    worker = start_worker(env_for(simulator, pg), burst=False)
    wait_for(
        lambda: [r for r in runs(pg) if r.status == "RUNNING"], timeout=60, what="a RUNNING run"
    )
    kill_with_work_horse(worker)
    simulator.clear_faults()

    again = enqueue_sync("products", settings=settings_for(simulator, pg, redis_url=REDIS_URL))
    assert again.id != job.id
    output = finish(start_worker(env_for(simulator, pg)))
    lost, healed = runs(pg)
    assert (lost.status, lost.job_id, lost.attempt) == ("FAILED", job.id, 1), output
    assert lost.error_message == "interrupted: the database or the worker went away"
    assert (healed.status, healed.job_id) == ("SUCCESS", again.id)
    open_database(pg)
    assert Product.select().count() == 100
    assert Product.select(Product.external_id).distinct().count() == 100


@pytest.mark.slow
def test_a_database_outage_fails_the_job_not_the_worker(pg, simulator, redis):
    proxy = CuttableProxy()
    proxied = pg.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    simulator.add_fault("products", Fault(delay=8.0))
    environ = env_for(simulator, proxied)
    worker = start_worker(environ, burst=False)
    try:
        queue = Queue(PRODUCTS_QUEUE, connection=redis)
        first = queue.enqueue("jobs.tasks.sync_job", "products")
        wait_for(
            lambda: [r for r in runs(pg) if r.status == "RUNNING"], timeout=60, what="a RUNNING run"
        )
        proxy.cut()
        wait_for(
            lambda: first.get_status(refresh=True) in ("failed", "scheduled"),
            timeout=60,
            what="the job to fail",
        )
        assert worker.poll() is None
        failure = first.latest_result()
        assert failure is not None and "database" in (failure.exc_string or "")

        proxy.restore()
        second = queue.enqueue("jobs.tasks.sync_job", "products")
        wait_for(
            lambda: second.get_status(refresh=True) == "finished", timeout=60, what="the next job"
        )
        assert (second.return_value() or {})["status"] == "SUCCESS"
        assert worker.poll() is None
    finally:
        output = stop(worker)
        proxy.close()
    statuses = [run.status for run in runs(pg)]
    assert statuses == ["FAILED", "SUCCESS"], output
    open_database(pg)
    assert Product.select().count() == 100


def test_the_scheduler_replans_when_smartup_sends_a_new_quota(pg, simulator, redis):
    from structlog.testing import capture_logs

    from jobs.day.state import record_limits

    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    scheduler = make_scheduler(settings, redis)
    register(scheduler, settings)
    assert registered_intervals(scheduler) == {"products": 1080, "orders": 600}
    open_database(pg)
    record_limits("reference", {"limit_quant": "20", "left_limit_quant": "19"}, day=TODAY)
    with capture_logs() as logs:
        scheduler.enqueue_jobs()  # one turn of the scheduler's loop
    assert registered_intervals(scheduler) == {"products": 5400, "orders": 600}
    [plan] = [e for e in logs if e["event"] == "schedule.plan"]
    products = plan["streams"]["products"]
    assert (products["interval_asked_s"], products["interval_used_s"]) == (600, 5400)
    assert (products["quota"], products["reserve"], products["requests_per_day"]) == (20, 4, 16)
    with capture_logs() as logs:
        scheduler.enqueue_jobs()  # nothing changed: nothing registered again
    assert not [e for e in logs if e["event"] == "schedule.plan"]


@pytest.mark.slow
def test_a_full_request_is_not_merged_into_a_waiting_incremental_one(pg, simulator, redis):
    from rq.job import Job

    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    periodic = enqueue_sync("products", periodic=True, settings=settings)
    assert periodic.meta["periodic"] is True
    asked = enqueue_sync("products", settings=settings)  # the web app asks while it waits
    assert asked.id == periodic.id
    assert Job.fetch(periodic.id, connection=redis).meta["periodic"] is False
    full = enqueue_sync("products", full=True, settings=settings)
    assert full.id != periodic.id and full.args == ("products", None, True)
    assert enqueue_sync("products", full=True, settings=settings).id == full.id
    assert Queue(PRODUCTS_QUEUE, connection=redis).count == 2

    output = finish(start_worker(env_for(simulator, pg)))
    assert [(r.run_type, r.status) for r in runs(pg)] == [
        ("products", "SUCCESS"),
        ("products", "SUCCESS"),
    ], output
    product_posts = [r for r in simulator.requests if r.endpoint == "products"]
    assert [r.body for r in product_posts] == [{}, {}]  # nothing stored yet; then the full one


@pytest.mark.slow
def test_a_periodic_job_skips_when_the_quota_is_down_to_the_reserve_an_asked_one_runs(
    pg, simulator, redis
):
    from jobs.day.state import record_limits

    open_database(pg)
    record_limits("reference", {"limit_quant": "100", "left_limit_quant": "20"}, day=TODAY)
    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    periodic = enqueue_sync("products", periodic=True, settings=settings)  # scheduled_enqueue
    output = finish(start_worker(env_for(simulator, pg)))
    assert (periodic.return_value() or {}).get("status") == "SKIPPED", output
    assert '"reason": "quota"' in output
    assert runs(pg) == [] and not [r for r in simulator.requests if r.endpoint == "products"]

    asked = enqueue_sync("products", settings=settings)
    finish(start_worker(env_for(simulator, pg)))
    assert (asked.return_value() or {}).get("status") == "SUCCESS"  # on demand: may spend it
    [run] = runs(pg)
    assert run.status == "SUCCESS"
