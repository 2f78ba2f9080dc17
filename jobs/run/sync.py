"""One run: one call of :func:`run_sync` is one row in ``smartup_sync_runs``.

:func:`run_sync` takes the kind's run lock, closes what a dead worker left RUNNING, opens a
run row, runs the engine over the kind's streams (each as far back as the day's state says,
then what a complete stream settles), and closes the row. It knows nothing of RQ, alerts
or Sentry: :func:`jobs.processes.job.run_and_report` calls it for the worker's jobs and
the CLI's ``sync`` and adds those; the demo calls it bare.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Protocol

import peewee as pw
import psycopg2

from jobs.day.plan import StreamPlan, plan_for
from jobs.day.state import day_range_limits, limits_seen
from jobs.day.steps import (
    RunDay,
    SeenByExport,
    StateKeeper,
    after_complete,
    span_for,
    streams_over_quota,
)
from jobs.kinds import FULL
from jobs.logs import bind_run, get_logger
from jobs.models import open_database
from jobs.pipeline.engine import StreamResult, SyncEngine
from jobs.pipeline.loader import loader_for
from jobs.pipeline.smartup import RetryPolicy, SmartUpClient
from jobs.pipeline.streams import STREAMS, Stream, streams_of
from jobs.pipeline.streams.reach import DAY_RANGE_LIMIT
from jobs.run.progress import ProgressReporter, Sink
from jobs.run.rows import (
    FAILED,
    SKIPPED,
    RunLock,
    RunProgressWriter,
    close_orphans,
    finish_run,
    one_line,
    start_run,
)
from jobs.settings import Settings, check_days_back

__all__ = ["RunOutcome", "RunRequest", "SyncFailed", "run_sync"]


class SyncFailed(Exception):
    """The run could not complete (database unreachable, ...). One line, no secrets.

    ``run_id`` is the row left RUNNING, if one was opened.
    """

    def __init__(self, message: str, *, run_id: int | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class AfterRun(Protocol):
    """What is called with a run's closed row and its results (the job's alerts)."""

    def __call__(
        self,
        run: Any,
        kinds: Sequence[str],
        results: Sequence[StreamResult],
        *,
        settings: Settings,
        log: Any,
    ) -> object: ...


@dataclass
class RunOutcome:
    status: str  # SUCCESS, PARTIAL, FAILED, or SKIPPED (kind already running, or quota)
    run_id: int | None = None
    results: list[StreamResult] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """What one run is asked to do, and what it is given to do it with: the argument of
    :func:`run_sync`. Only ``kind`` and ``settings`` are required; every other field has
    the default of an on-demand run now, in this process, with nobody watching.

    What it is asked:

    - ``kind``: an enabled stream's name, or ``full`` (every enabled stream).
    - ``days_back`` forces a sweep of that many days of the windowed streams (orders).
    - ``full`` (and every ``full`` run) forces the whole set of every stream, and a sweep.
    - ``periodic``: a run the scheduler queued. It is skipped when its stream's pool's
      quota left today is at or below the reserve; on-demand runs may spend the reserve.
    - ``job_id`` and ``attempt`` (1 for the first) are written on its run row.

    What it is given:

    - ``settings``: the whole configuration; the run opens its own connections from it.
    - ``retry``: how SmartUp's calls are retried (default: ``SMARTUP_RETRY_SECONDS``).
    - ``now`` and ``today`` (the company day) default to the clock; tests move them.
    - ``orphan_cause`` tells, for a row a dead run left RUNNING, what interrupted it.
    - ``progress``: sinks that get the run's progress about once a second (the job's
      meta, a terminal line), besides the run row's ``progress`` column.
    - ``after_run`` is called with the closed row (the job's alerts), while the run still
      holds its connection.

    It is checked when it runs (:func:`run_sync`), not when it is made.
    """

    kind: str
    settings: Settings
    days_back: int | None = None
    full: bool = False
    periodic: bool = False
    job_id: str | None = None
    attempt: int = 1
    orphan_cause: Callable[[Any], str | None] | None = None
    retry: RetryPolicy | None = None
    today: date | None = None
    now: datetime | None = None
    progress: Sequence[Sink] = ()
    after_run: AfterRun | None = None


def run_sync(request: RunRequest) -> RunOutcome:
    """Run one sync as ``request`` asks (see :class:`RunRequest`), now, in this process.

    Opens its own database connection (RQ forks a process per job) and closes it before
    returning. Raises :class:`SyncFailed` when the database fails under the run.
    """
    kind, settings = request.kind, request.settings
    kinds = streams_of(kind, settings)  # ValueError for a kind not enabled
    check_days_back(request.days_back)
    now = request.now or datetime.now(UTC)
    today = request.today or now.astimezone(settings.tz).date()
    log = get_logger()
    db = _open(settings)
    lock = RunLock(db, kinds)
    run = None
    try:
        if not lock.try_acquire():
            log.info("sync.skipped", run_type=kind, reason="running")
            return RunOutcome(SKIPPED)
        closed = close_orphans(kinds, cause=request.orphan_cause)
        if closed:
            log.warning("sync.orphans.closed", run_type=kind, count=closed)
        if request.periodic:
            skipped = streams_over_quota(kinds, settings, today, now, log)
            kinds = tuple(k for k in kinds if k not in skipped)
            if not kinds:
                return RunOutcome(SKIPPED, error=next(iter(skipped.values())))
        run = start_run(
            kind,
            job_id=request.job_id,
            attempt=request.attempt,
            days_back=request.days_back or settings.sync_orders_days_back,
        )
        day = RunDay(
            today=today,
            now=now,
            days_back=request.days_back,
            full=request.full or kind == FULL,
            tz=settings.tz,
        )
        with bind_run(run.id, kind):
            return _Run(request, run, db, kinds, day, log).execute()
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
class _Run:
    """One run whose lock is held and whose row is open: :meth:`execute` runs the engine
    over its streams, keeps the day's state after each answer, and closes the row."""

    request: RunRequest
    row: Any  # its SyncRun row
    db: pw.Database
    kinds: tuple[str, ...]  # the request's, less those a periodic run skips for quota
    day: RunDay
    log: Any

    @property
    def settings(self) -> Settings:
        return self.request.settings

    def execute(self) -> RunOutcome:
        started = time.monotonic()
        day = self.day
        self.log.info(
            "sync.start", days_back=day.days_back, full=day.full, streams=list(self.kinds)
        )
        results: list[StreamResult] = []
        client = self._client()
        reporter = ProgressReporter(
            kind=self.row.run_type,
            sinks=[RunProgressWriter(self.db, self.row.id), *self.request.progress],
            log=self.log,
        )
        try:
            with reporter:
                engine = SyncEngine(
                    client=client,
                    loader=loader_for(self.db, run_id=self.row.id),
                    tz=self.settings.tz,
                    log=self.log,
                    progress=reporter,
                )
                # the day's state kept, read once: a stream's day_range_limit changes
                # only while that stream runs, and the run passes it on from here
                ranges = day_range_limits()
                plan = plan_for(self.settings, limits_seen=limits_seen(), day_range_limits=ranges)
                for name in self.kinds:
                    day_range_limit = ranges.get(name) or DAY_RANGE_LIMIT
                    stream = STREAMS[name]
                    results.append(self._sync_stream(engine, stream, plan[name], day_range_limit))
        except Exception as error:
            self._fail(error, results, started)
            raise
        finally:
            client.close()
        return self._finish(results, started)

    def _client(self) -> SmartUpClient:
        settings = self.settings
        return SmartUpClient(
            user=settings.smartup_user,
            password=settings.smartup_password,
            project_code=settings.smartup_project_code,
            read_timeout=settings.smartup_timeout_seconds,
            retry=self.request.retry or RetryPolicy(total_seconds=settings.smartup_retry_seconds),
        )

    def _sync_stream(
        self, engine: SyncEngine, stream: Stream, plan: StreamPlan, day_range_limit: int
    ) -> StreamResult:
        """One stream: its calls as far back as the day's state says, then what a
        complete stream settles."""
        name, settings, day = stream.name, self.settings, self.day
        span = span_for(stream, settings, plan, day, day_range_limit=day_range_limit)
        seen = SeenByExport()
        keeper = StateKeeper(stream, day, seal_minutes=settings.sync_seal_minutes)
        result = engine.sync(
            stream,
            stream.calls(settings, span, day_range_limit=day_range_limit),
            on_applied=keeper,
            on_sent=keeper.sent,
            on_narrowed=keeper.narrowed,
            seen=seen,
        )
        if result.quota_spent:
            keeper.quota_spent()
            result.fail(
                f"SmartUp daily quota for {name} is spent; "
                f"it resets at 00:00 {settings.smartup_timezone}",
                quota_spent=True,
            )
        if result.error is None:
            after_complete(stream, span, seen, settings, day, result, self.log, run_id=self.row.id)
        result.scrub_error(partial(one_line, secrets=settings.secrets))
        self.log.info(f"sync.{name}.synced", **result.summary(), error=result.error)
        return result

    def _fail(self, error: Exception, results: list[StreamResult], started: float) -> None:
        """Close the row as FAILED when the database still answers (else the next run
        closes it), and say so."""
        settings, run = self.settings, self.row
        message = one_line(f"{type(error).__name__}: {error}", secrets=settings.secrets)
        with suppress(pw.PeeweeException):
            finish_run(run, results, error=message, secrets=settings.secrets)
        self.log.error("sync.error", error=message)
        self.log.info("sync.finish", status=FAILED, duration_s=round(time.monotonic() - started, 3))
        with suppress(pw.PeeweeException):
            self._after(run, results)

    def _after(self, run: Any, results: list[StreamResult]) -> None:
        after_run = self.request.after_run
        if after_run is not None:
            after_run(run, self.kinds, results, settings=self.settings, log=self.log)

    def _finish(self, results: list[StreamResult], started: float) -> RunOutcome:
        run = self.row
        finish_run(run, results, secrets=self.settings.secrets)
        duration = round(time.monotonic() - started, 3)
        self.log.info(
            "sync.finish",
            status=run.status,
            duration_s=duration,
            error=run.error_message,
            **{f"synced_{r.stream}_count": r.stored for r in results},
        )
        self._after(run, results)
        return RunOutcome(run.status, run.id, results, run.error_message, duration)


SUMMARY_COLUMNS = (
    "stream",
    "requests",
    "received",
    "inserted",
    "updated",
    "unchanged",
    "rejected",
    "gone",
)


def summary_row(result: StreamResult) -> dict[str, Any]:
    """One stream's line of a run summary (what ``sync`` and ``enqueue --wait`` print)."""
    return {column: getattr(result, column) for column in SUMMARY_COLUMNS}
