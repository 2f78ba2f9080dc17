"""The job functions: one call is one run.

:func:`run_sync` takes the run lock, closes what a dead worker left RUNNING, opens a run
row, runs the engine over the kind's streams, and closes the row. The CLI calls it
directly; RQ workers call :func:`sync_job` (by dotted path ``jobs.tasks.sync_job``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import peewee as pw
import psycopg2

from jobs.alerts import alert_after_run
from jobs.engine import StreamResult, SyncEngine
from jobs.loader import loader_for
from jobs.logs import bind_run, get_logger
from jobs.progress import ProgressReporter, Sink
from jobs.runs import (
    FAILED,
    RunLock,
    RunProgressWriter,
    close_orphans,
    finish_run,
    one_line,
    start_run,
)
from jobs.settings import Settings, check_days_back, load_settings
from jobs.smartup import RetryPolicy, SmartUpClient
from jobs.streams import RUN_KINDS, STREAMS
from models import open_database

SKIPPED = "SKIPPED"


class SyncFailed(Exception):
    """The run could not complete (database unreachable, ...). One line, no secrets."""


@dataclass
class RunOutcome:
    status: str  # SUCCESS, PARTIAL, FAILED, or SKIPPED when the kind was already running
    run_id: int | None = None
    results: list[StreamResult] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0


def check_kind(kind: str) -> tuple[str, ...]:
    if kind not in RUN_KINDS:
        raise ValueError(f"kind must be one of {', '.join(RUN_KINDS)}, not {kind!r}")
    return RUN_KINDS[kind]


def run_sync(
    kind: str,
    *,
    settings: Settings,
    days_back: int | None = None,
    job_id: str | None = None,
    retry: RetryPolicy | None = None,
    today: date | None = None,
    progress: Sequence[Sink] = (),
) -> RunOutcome:
    """Run one sync of ``kind`` (``products``, ``orders`` or ``full``) now, in this process.

    Opens its own database connection (RQ forks a process per job) and closes it before
    returning. Raises :class:`SyncFailed` when the database fails under the run.
    ``progress``: sinks that get the run's progress about once a second (the job's meta,
    a terminal line), besides the run row's ``progress`` column.
    """
    kinds = check_kind(kind)
    check_days_back(days_back)
    days_back = days_back or settings.sync_orders_days_back
    log = get_logger()
    db = _open(settings)
    lock = RunLock(db, kinds)
    try:
        if not lock.try_acquire():
            log.info("sync.skipped", run_type=kind, reason="a run of this kind is in progress")
            return RunOutcome(SKIPPED)
        closed = close_orphans(kinds)
        if closed:
            log.warning("sync.orphans.closed", run_type=kind, count=closed)
        run = start_run(kind, job_id=job_id, days_back=days_back)
        with bind_run(run.id, kind):
            return _run(run, db, kinds, settings, days_back, retry, today, log, progress)
    except (pw.DatabaseError, pw.InterfaceError, psycopg2.Error) as error:
        # psycopg2's own errors come from the COPY and look-up connections of the loader
        message = one_line(f"database error: {error}", secrets=settings.secrets)
        log.error("sync.error", run_type=kind, error=message)
        raise SyncFailed(message) from None
    finally:
        with suppress(pw.PeeweeException):  # the connection is gone, and with it the lock
            lock.release()
        db.close()


def _open(settings: Settings) -> pw.Database:
    try:
        return open_database(
            settings.database_url, statement_timeout_ms=settings.sync_job_timeout_seconds * 1000
        )
    except pw.PeeweeException as error:
        raise SyncFailed(
            one_line(f"cannot connect to the database: {error}", secrets=settings.secrets)
        ) from None


def _run(
    run: Any,
    db: pw.Database,
    kinds: tuple[str, ...],
    settings: Settings,
    days_back: int,
    retry: RetryPolicy | None,
    today: date | None,
    log: Any,
    progress: Sequence[Sink] = (),
) -> RunOutcome:
    started = time.monotonic()
    today = today or datetime.now(settings.tz).date()
    log.info("sync.start", days_back=days_back, streams=list(kinds))
    results: list[StreamResult] = []
    retry = retry or RetryPolicy(total_seconds=settings.smartup_retry_seconds)
    client = SmartUpClient(
        user=settings.smartup_user,
        password=settings.smartup_password,
        project_code=settings.smartup_project_code,
        read_timeout=settings.smartup_timeout_seconds,
        retry=retry,
    )
    reporter = ProgressReporter(
        kind=run.run_type, sinks=[RunProgressWriter(db, run.id), *progress], log=log
    )
    try:
        with reporter:
            engine = SyncEngine(
                client=client, loader=loader_for(db), tz=settings.tz, log=log, progress=reporter
            )
            for name in kinds:
                stream = STREAMS[name]
                result = engine.sync(
                    stream, stream.requests(settings, days_back=days_back, today=today)
                )
                result.error = (
                    one_line(result.error, secrets=settings.secrets) if result.error else None
                )
                results.append(result)
                log.info(f"sync.{name}.synced", **result.summary(), error=result.error)
    except Exception as error:
        message = one_line(f"{type(error).__name__}: {error}", secrets=settings.secrets)
        with suppress(pw.PeeweeException):  # the database failed: the next run closes the row
            finish_run(run, results, error=message, secrets=settings.secrets)
        log.error("sync.error", error=message)
        log.info("sync.finish", status=FAILED, duration_s=round(time.monotonic() - started, 3))
        with suppress(pw.PeeweeException):
            alert_after_run(run, kinds, results, settings=settings, log=log)
        raise
    finally:
        client.close()
    finish_run(run, results, secrets=settings.secrets)
    duration = round(time.monotonic() - started, 3)
    log.info(
        "sync.finish",
        status=run.status,
        duration_s=duration,
        error=run.error_message,
        synced_products_count=run.synced_products_count,
        synced_orders_count=run.synced_orders_count,
    )
    alert_after_run(run, kinds, results, settings=settings, log=log)
    return RunOutcome(run.status, run.id, results, run.error_message, duration)


def sync_job(kind: str, days_back: int | None = None) -> dict[str, Any]:
    """The RQ job: settings from the environment, one run; the outcome as the job result."""
    from rq import get_current_job

    job = get_current_job()
    outcome = run_sync(
        kind,
        settings=load_settings(),
        days_back=days_back,
        job_id=job.id if job else None,
        progress=[JobMeta(job)] if job else (),
    )
    return {"status": outcome.status, "run_id": outcome.run_id, "error": outcome.error}


class JobMeta:
    """A progress sink: the snapshot as ``job.meta["progress"]`` (rq-dashboard and
    ``Job.get_meta()`` show it), saved with ``job.save_meta()``."""

    def __init__(self, job: Any) -> None:
        self.job = job

    def __call__(self, snapshot: dict[str, Any]) -> None:
        self.job.meta["progress"] = snapshot
        self.job.save_meta()
