"""Names shared by the queue side and the run side, and nothing else: a leaf module.

A *kind* is what one job runs: one declared stream (its name), or :data:`FULL`, every
enabled stream. Each kind has its own queue (:func:`queue_for`); a ``full`` job goes to
the queue of the first enabled stream. The job ``meta`` keys are written by the queueing
side and by the job (:mod:`jobs.processes.job`), and read by the job and the watching side,
so they live here, in the ground every layer may import.
"""

from __future__ import annotations

FULL = "full"
QUEUE_PREFIX = "smartup-"
KEY_PREFIX = "smartup-sync"
# The functions Redis holds by dotted path: every queued job names SYNC_FUNCTION, every
# rq-scheduler registration SCHEDULED_FUNCTION. They are the old, stable addresses (shims in
# jobs/tasks.py and jobs/queueing.py), so that jobs and registrations made by an earlier
# version, and workers of either version during a deploy, keep finding them.
SYNC_FUNCTION = "jobs.tasks.sync_job"
SCHEDULED_FUNCTION = "jobs.queueing.scheduled_enqueue"

META_KIND = "kind"  # job.meta: the kind the job runs
META_PERIODIC = "periodic"  # job.meta: queued by the scheduler (the quota guard applies)
META_RETRIES = "retries"  # job.meta: how many retries the job was enqueued with
META_RUN_ERRORS = "run_errors"  # job.meta: {run id: error} of runs that could not close
META_PROGRESS = "progress"  # job.meta: the run's progress snapshot


def queue_for(stream: str) -> str:
    """The queue of a stream's jobs: ``smartup-<stream>``."""
    return f"{QUEUE_PREFIX}{stream}"
