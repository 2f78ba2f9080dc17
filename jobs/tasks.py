"""The job function at the dotted path Redis holds: ``jobs.tasks.sync_job``.

Every queued sync job names this path (:data:`jobs.kinds.SYNC_FUNCTION`); the function
lives in :mod:`jobs.processes.job`. Keep this module while any Redis may hold such a job.
"""

from jobs.processes.job import sync_job

__all__ = ["sync_job"]
