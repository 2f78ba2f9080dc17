"""The RQ job: what a worker process runs for one queued sync.

:func:`sync_job` is the job function RQ calls; Redis holds it by the dotted path
``jobs.tasks.sync_job`` (:data:`jobs.kinds.SYNC_FUNCTION`, a shim kept so that jobs queued
before and after an upgrade name the same function). It reads the settings from the
environment (the edge), runs one sync with :func:`run_and_report`, and leaves in the job's
meta what the next run needs when this one cannot close its own row.

Each attempt of a job is its own run row, numbered from the job's retries
(:func:`attempt_of`). A run that fails because the database went away cannot close its own
row; the job leaves the error in its meta in Redis, and the next run of the kind closes the
row as "interrupted" with that cause (:func:`_cause_left_by_jobs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job

from jobs.kinds import META_PERIODIC, META_PROGRESS, META_RETRIES, META_RUN_ERRORS
from jobs.pipeline.streams import declared_names
from jobs.run.rows import FAILED, one_line
from jobs.run.sync import RunOutcome, RunRequest, SyncFailed, run_sync, summary_row
from jobs.settings import load_settings
from jobs.watching.alerts import alert_after_run
from jobs.watching.error_tracking import report_run


def run_and_report(request: RunRequest) -> RunOutcome:
    """:func:`run_sync` with the alerts after it (:mod:`jobs.watching.alerts`, in place of
    the request's ``after_run``), then one Sentry event for a FAILED or PARTIAL run,
    whether it ended with a status or by raising (:mod:`jobs.watching.error_tracking`;
    nothing without ``SENTRY_DSN``). The worker's jobs and ``python -m jobs sync`` both
    run this way."""
    kind, settings, attempt = request.kind, request.settings, request.attempt
    try:
        outcome = run_sync(replace(request, after_run=alert_after_run))
    except SyncFailed as failed:
        report_run(
            run_type=kind,
            run_id=failed.run_id,
            attempt=attempt,
            status=FAILED,
            error=str(failed),
            error_object=failed,
        )
        raise
    except Exception as error:
        report_run(
            run_type=kind,
            run_id=None,
            attempt=attempt,
            status=FAILED,
            error=one_line(f"{type(error).__name__}: {error}", secrets=settings.secrets),
            error_object=error,
        )
        raise
    report_run(
        run_type=kind,
        run_id=outcome.run_id,
        attempt=attempt,
        status=outcome.status,
        error=outcome.error,
    )
    return outcome


def sync_job(kind: str, days_back: int | None = None, full: bool = False) -> dict[str, Any]:
    """The RQ job: settings from the environment, one run; the outcome as the job result.
    A job the scheduler queued says so in its meta (``periodic``): the quota guard
    applies to it only."""
    job = get_current_job()
    try:
        outcome = run_and_report(
            RunRequest(
                kind=kind,
                settings=load_settings(streams=declared_names()),
                days_back=days_back,
                full=full,
                periodic=bool(job and job.meta.get(META_PERIODIC)),
                job_id=job.id if job else None,
                attempt=attempt_of(job) if job else 1,
                orphan_cause=_cause_left_by_jobs(job) if job else None,
                progress=[JobMeta(job)] if job else (),
            )
        )
    except SyncFailed as failed:
        if job is not None and failed.run_id is not None:
            # The row stays RUNNING (the database is away): leave word for the next run
            job.meta.setdefault(META_RUN_ERRORS, {})[str(failed.run_id)] = str(failed)
            job.save_meta()  # type: ignore[no-untyped-call]
        raise
    return {
        "status": outcome.status,
        "run_id": outcome.run_id,
        "error": outcome.error,
        "duration_s": outcome.duration_s,
        "streams": [summary_row(result) for result in outcome.results],
    }


def attempt_of(job: Any) -> int:
    """1 for a job's first run, 2 for its first retry, ...: from the retries it was enqueued
    with (``meta``) and those RQ has left (RQ lowers ``retries_left`` on each retry, whether
    the attempt failed or its worker was killed)."""
    retries = job.meta.get(META_RETRIES)
    if isinstance(retries, int) and job.retries_left is not None:
        return max(1, retries - int(job.retries_left) + 1)
    return 1


def _cause_left_by_jobs(current: Any) -> Callable[[Any], str | None]:
    """What interrupted an orphan run, as its job left word in Redis (None when unknown)."""

    def cause(run: Any) -> str | None:
        if not run.job_id:
            return None
        try:
            job = current if run.job_id == current.id else Job.fetch(run.job_id, current.connection)
        except NoSuchJobError:
            return None
        error = (job.meta.get(META_RUN_ERRORS) or {}).get(str(run.id))
        return str(error) if error else None

    return cause


class JobMeta:
    """A progress sink: the snapshot as ``job.meta["progress"]`` (rq-dashboard and
    ``Job.get_meta()`` show it), saved with ``job.save_meta()``."""

    def __init__(self, job: Any) -> None:
        self.job = job

    def __call__(self, snapshot: dict[str, Any]) -> None:
        self.job.meta[META_PROGRESS] = snapshot
        self.job.save_meta()
