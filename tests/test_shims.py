"""The old addresses still lead to the functions in their new homes.

Redis holds functions by dotted path: every queued sync job names ``jobs.tasks.sync_job``
(:data:`jobs.kinds.SYNC_FUNCTION`) and every rq-scheduler registration
``jobs.queueing.scheduled_enqueue`` (:data:`jobs.kinds.SCHEDULED_FUNCTION`); jobs queued
before an upgrade are run after it, so those paths must keep resolving. Web apps import
``jobs.enqueue_sync``, ``jobs.sync_overview`` and, written against earlier versions,
``jobs.queueing.enqueue_sync``; ``import jobs`` alone must stay cheap (no RQ, no Redis).

Jobs that a real worker runs through these paths are in tests/test_queue.py (slow):
``test_a_full_sync_through_the_queue`` (``jobs.tasks.sync_job``) and
``test_the_scheduler_moves_due_jobs_and_a_worker_syncs_them``
(``jobs.queueing.scheduled_enqueue``, which queues ``jobs.tasks.sync_job`` in turn).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from rq.job import Job
from rq.utils import import_attribute

import jobs
import jobs.processes.job
import jobs.processes.queueing
import jobs.queueing
import jobs.tasks
import jobs.watching.overview
from jobs.kinds import SCHEDULED_FUNCTION, SYNC_FUNCTION
from jobs.processes.scheduler import PERIODIC_JOBS, make_scheduler, register
from tests.helpers import REDIS_URL, ROOT, settings_for

# The paths as Redis holds them, spelt out: a changed constant would strand queued jobs.
STORED_PATHS: dict[str, Callable[..., Any]] = {
    "jobs.tasks.sync_job": jobs.processes.job.sync_job,
    "jobs.queueing.scheduled_enqueue": jobs.processes.queueing.scheduled_enqueue,
    "jobs.queueing.enqueue_sync": jobs.processes.queueing.enqueue_sync,
}


def test_the_constants_name_the_paths_redis_holds():
    assert SYNC_FUNCTION == "jobs.tasks.sync_job"
    assert SCHEDULED_FUNCTION == "jobs.queueing.scheduled_enqueue"


@pytest.mark.parametrize("path", sorted(STORED_PATHS))
def test_each_stored_path_resolves_as_rq_resolves_it_to_the_function_in_its_new_home(path):
    assert import_attribute(path) is STORED_PATHS[path]


def test_a_job_the_web_call_enqueues_names_the_sync_job_shim(redis):
    job = jobs.enqueue_sync("orders", connection=redis)
    stored = Job.fetch(job.id, connection=redis)  # as a worker reads it back
    assert stored.func_name == "jobs.tasks.sync_job"
    assert stored.func is jobs.processes.job.sync_job


def test_the_scheduler_registers_the_scheduled_enqueue_shim(pg, simulator, redis):
    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    scheduler = make_scheduler(settings, redis)
    register(scheduler, settings)
    registered = list(scheduler.get_jobs())  # read back from Redis
    assert sorted(job.id for job in registered) == sorted(PERIODIC_JOBS)
    for job in registered:
        assert job.func_name == "jobs.queueing.scheduled_enqueue"
        assert job.func is jobs.processes.queueing.scheduled_enqueue


def test_the_shim_modules_and_the_web_calls_are_the_functions_in_their_homes():
    assert jobs.enqueue_sync is jobs.processes.queueing.enqueue_sync
    assert jobs.sync_overview is jobs.watching.overview.sync_overview
    assert jobs.queueing.enqueue_sync is jobs.processes.queueing.enqueue_sync
    assert jobs.queueing.scheduled_enqueue is jobs.processes.queueing.scheduled_enqueue
    assert jobs.tasks.sync_job is jobs.processes.job.sync_job
    with pytest.raises(AttributeError, match="no attribute 'no_such_call'"):
        jobs.no_such_call  # noqa: B018  # the lazy __getattr__ invents nothing


MODULES_LOADED = """
import json, sys
def loaded():
    return sorted(name for name in sys.modules if name.split(".")[0] in ("rq", "redis"))
import {module}
before = loaded()
import jobs
jobs.enqueue_sync  # the lazy attribute: now RQ and Redis are imported
print(json.dumps([before, loaded()]))
"""


@pytest.mark.parametrize("module", ["jobs", "jobs.simulator"])
def test_importing_jobs_or_its_simulator_imports_neither_rq_nor_redis(module):
    done = subprocess.run(
        [sys.executable, "-c", MODULES_LOADED.format(module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    before, after = json.loads(done.stdout)
    assert before == []
    assert "rq" in after and "redis" in after  # the check above can see them
