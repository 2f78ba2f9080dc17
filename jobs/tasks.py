"""The job functions: one call is one run.

:func:`run_sync` takes the run lock, closes what a dead worker left RUNNING, opens a run
row, runs the engine over the kind's streams, and closes the row. The CLI calls it
directly; RQ workers call :func:`sync_job` (by dotted path ``jobs.tasks.sync_job``).

Each attempt of a job is its own run row, numbered from the job's retries. A run that fails
because the database went away cannot close its own row; the job leaves the error in its
meta in Redis, and the next run of the kind closes the row as "interrupted" with that cause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import peewee as pw
import psycopg2

from jobs.alerts import alert_after_run
from jobs.engine import StreamResult, SyncEngine
from jobs.loader import loader_for
from jobs.logs import bind_run, get_logger
from jobs.plan import Reach, StreamPlan, next_midnight, plan_for, quota_for, reach_for, reserve_for
from jobs.progress import ProgressReporter, Sink
from jobs.reconcile import reconcile_products
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
from jobs.smartup import ExportRequest, RetryPolicy, SmartUpClient
from jobs.state import (
    Quota,
    advance_watermark,
    clear_sweep,
    limits_seen,
    mark_sweep,
    quota_today,
    record_limits,
    record_quota_spent,
    stream_state,
)
from jobs.streams import RUN_KINDS, STREAMS, Stream
from models import open_database

SKIPPED = "SKIPPED"
META_RETRIES = "retries"  # job.meta: how many retries the job was enqueued with
META_RUN_ERRORS = "run_errors"  # job.meta: {run id: error} of runs that could not close


class SyncFailed(Exception):
    """The run could not complete (database unreachable, ...). One line, no secrets.

    ``run_id`` is the row left RUNNING, if one was opened.
    """

    def __init__(self, message: str, *, run_id: int | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


@dataclass
class RunOutcome:
    status: str  # SUCCESS, PARTIAL, FAILED, or SKIPPED (kind already running, or quota)
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
    full: bool = False,
    periodic: bool = False,
    job_id: str | None = None,
    attempt: int = 1,
    orphan_cause: Callable[[Any], str | None] | None = None,
    retry: RetryPolicy | None = None,
    today: date | None = None,
    now: datetime | None = None,
    progress: Sequence[Sink] = (),
) -> RunOutcome:
    """Run one sync of ``kind`` (``products``, ``orders`` or ``full``) now, in this process.

    ``days_back`` forces an orders sweep of that many days; ``full`` (and every ``full``
    run) forces the whole catalogue and an orders sweep. A ``periodic`` run (one the
    scheduler queued) is skipped when its stream's quota left today is at or below the
    reserve; on-demand runs may spend the reserve. ``now``/``today`` (the company day)
    default to the clock; tests move them.

    Opens its own database connection (RQ forks a process per job) and closes it before
    returning. Raises :class:`SyncFailed` when the database fails under the run.
    ``progress``: sinks that get the run's progress about once a second (the job's meta,
    a terminal line), besides the run row's ``progress`` column.
    ``orphan_cause`` tells, for a row a dead run left RUNNING, what interrupted it.
    """
    kinds = check_kind(kind)
    check_days_back(days_back)
    now = now or datetime.now(UTC)
    today = today or now.astimezone(settings.tz).date()
    log = get_logger()
    db = _open(settings)
    lock = RunLock(db, kinds)
    run = None
    try:
        if not lock.try_acquire():
            log.info("sync.skipped", run_type=kind, reason="running")
            return RunOutcome(SKIPPED)
        closed = close_orphans(kinds, cause=orphan_cause)
        if closed:
            log.warning("sync.orphans.closed", run_type=kind, count=closed)
        if periodic:
            skipped = _over_quota(kinds, settings, today, now, log)
            kinds = tuple(k for k in kinds if k not in skipped)
            if not kinds:
                return RunOutcome(SKIPPED, error=next(iter(skipped.values())))
        run = start_run(
            kind,
            job_id=job_id,
            attempt=attempt,
            days_back=days_back or settings.sync_orders_days_back,
        )
        day = _Day(
            today=today,
            now=now,
            days_back=days_back,
            full=full or kind == "full",
            tz=settings.tz,
        )
        with bind_run(run.id, kind):
            return _run(run, db, kinds, settings, day, retry, log, progress)
    except (pw.DatabaseError, pw.InterfaceError, psycopg2.Error) as error:
        # psycopg2's own errors come from the COPY and look-up connections of the loader
        message = one_line(f"database error: {error}", secrets=settings.secrets)
        log.error("sync.error", run_type=kind, error=message)
        raise SyncFailed(message, run_id=run.id if run else None) from None
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


@dataclass(frozen=True)
class _Day:
    """When a run happens and what it was asked for beyond the periodic default."""

    today: date  # the company day (SMARTUP_TIMEZONE) the run started on
    now: datetime  # when it started
    days_back: int | None  # forced orders sweep of this many days
    full: bool  # the whole catalogue, and an orders sweep
    tz: tzinfo = UTC
    started: float = field(default_factory=time.monotonic)

    def moment(self) -> datetime:
        """Now, on the run's clock: an answer after midnight counts for the new day."""
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def company_day(self) -> date:
        return self.moment().astimezone(self.tz).date()


def _over_quota(
    kinds: tuple[str, ...], settings: Settings, today: date, now: datetime, log: Any
) -> dict[str, str]:
    """The streams of ``kinds`` whose quota left today is at or below the reserve (or
    spent), each with the reason; each is logged as ``sync.skipped`` (reason ``quota``)."""
    skipped = {}
    resets_at = next_midnight(now, settings.tz)
    for name in kinds:
        quota: Quota | None = quota_today(name, today=today)
        if quota is None:
            continue
        reserve = reserve_for(
            quota_for(name, limit_seen=quota.limit),
            reserve_percent=settings.smartup_quota_reserve_percent,
        )
        if quota.exhausted or (quota.left is not None and quota.left <= reserve):
            reason = (
                f"SmartUp daily quota for {name}: {quota.left} left, at or below the reserve "
                f"of {reserve}; it resets at 00:00 {settings.smartup_timezone}"
            )
            log.info(
                "sync.skipped",
                run_type=name,
                reason="quota",
                left=quota.left,
                reserve=reserve,
                resets_at=resets_at.isoformat(),
            )
            skipped[name] = reason
    return skipped


def _span(stream: Stream, settings: Settings, plan: StreamPlan, day: _Day) -> dict[str, Reach]:
    """How far back this run asks ``stream``, per filial, from the state kept (a sweep
    when the plan's sweep period passed)."""
    span = {}
    for key in stream.filial_keys(settings):
        state = stream_state(stream.name, key)
        span[key] = reach_for(
            stream.name,
            today=day.today,
            now=day.now,
            watermark=state.watermark if state else None,
            last_sweep_at=state.last_sweep_at if state else None,
            days_back=settings.sync_orders_days_back,
            sweep_seconds=plan.sweep_used,
            forced_days_back=day.days_back,
            full=day.full,
        )
    return span


def _keep_state(stream: str, day: _Day) -> Any:
    """After each committed answer: keep its ``limits``, and move the watermark to the last
    day it covered when nothing before that day is missing (a sweep shorter than an
    outage must not jump the gap)."""

    def applied(request: ExportRequest, limits: dict[str, Any] | None) -> None:
        if limits is not None:
            record_limits(stream, limits, day=day.company_day(), now=day.moment())
        if request.days is None:  # the whole catalogue
            advance_watermark(stream, request.state_key, day.today, now=day.now)
            return
        first, last = request.days
        state = stream_state(stream, request.state_key)
        watermark = state.watermark if state else None
        if watermark is None or first <= watermark + timedelta(days=1):
            advance_watermark(stream, request.state_key, last, now=day.now)

    return applied


def _run(
    run: Any,
    db: pw.Database,
    kinds: tuple[str, ...],
    settings: Settings,
    day: _Day,
    retry: RetryPolicy | None,
    log: Any,
    progress: Sequence[Sink] = (),
) -> RunOutcome:
    started = time.monotonic()
    log.info("sync.start", days_back=day.days_back, full=day.full, streams=list(kinds))
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
            plan = plan_for(settings, limits_seen=limits_seen())
            for name in kinds:
                stream = STREAMS[name]
                span = _span(stream, settings, plan[name], day)
                seen: set[tuple[str, ...]] | None = set() if name == "products" else None
                result = engine.sync(
                    stream,
                    stream.requests(settings, span),
                    on_applied=_keep_state(name, day),
                    seen=seen,
                )
                if result.quota_spent:
                    record_quota_spent(name, day=day.company_day(), now=day.moment())
                    result.error = (
                        f"SmartUp daily quota for {name} is spent; "
                        f"it resets at 00:00 {settings.smartup_timezone}"
                    )
                if result.error is None:
                    _after_complete(name, span, seen, settings, day, result, log)
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


def _after_complete(
    name: str,
    span: dict[str, Reach],
    seen: set[tuple[str, ...]] | None,
    settings: Settings,
    day: _Day,
    result: StreamResult,
    log: Any,
) -> None:
    """Every request of ``name`` succeeded: reconcile the catalogue (products), and record
    the sweeps completed."""
    swept = [key for key, reach in span.items() if reach.sweep]
    if seen is not None:
        complete = any(reach.first is None for reach in span.values())
        reconciled = reconcile_products(
            seen,
            complete_catalogue=complete,
            max_gone_percent=settings.sync_max_gone_percent,
            now=day.now,
        )
        result.gone = reconciled.gone
        if reconciled.gone or reconciled.revived:
            log.info("sync.products.reconciled", gone=reconciled.gone, revived=reconciled.revived)
        if reconciled.refused:
            result.warning = reconciled.refused
            log.warning("sync.products.reconcile_refused", reason=reconciled.refused)
            for key in span:  # the next run asks for the whole catalogue again
                clear_sweep(name, key)
            swept = []
    for key in swept:
        mark_sweep(name, key, now=day.now)


def sync_job(kind: str, days_back: int | None = None, full: bool = False) -> dict[str, Any]:
    """The RQ job: settings from the environment, one run; the outcome as the job result.
    A job the scheduler queued says so in its meta (``periodic``): the quota guard
    applies to it only."""
    from rq import get_current_job

    job = get_current_job()
    try:
        outcome = run_sync(
            kind,
            settings=load_settings(),
            days_back=days_back,
            full=full,
            periodic=bool(job and job.meta.get("periodic")),
            job_id=job.id if job else None,
            attempt=attempt_of(job) if job else 1,
            orphan_cause=_cause_left_by_jobs(job) if job else None,
            progress=[JobMeta(job)] if job else (),
        )
    except SyncFailed as failed:
        if job is not None and failed.run_id is not None:
            # The row stays RUNNING (the database is away): leave word for the next run
            job.meta.setdefault(META_RUN_ERRORS, {})[str(failed.run_id)] = str(failed)
            job.save_meta()  # type: ignore[no-untyped-call]
        raise
    return {"status": outcome.status, "run_id": outcome.run_id, "error": outcome.error}


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
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

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
        self.job.meta["progress"] = snapshot
        self.job.save_meta()
