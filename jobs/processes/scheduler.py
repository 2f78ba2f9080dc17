"""The ``scheduler`` process: register the periodic syncs in rq-scheduler, then run its loop.

``python schedule.py`` (re)registers one periodic job per enabled stream (``SYNC_STREAMS``)
under fixed ids, each at the interval the day's plan uses (:mod:`jobs.day.plan`: the cadence
asked for the stream, stretched when a day of its pool's runs would not fit the pool's
SmartUp quota minus the reserve): running it again replaces them (a changed interval takes effect)
and cancels periodic jobs of ours it no longer defines. The loop reads ``REDIS_URL``
(rq-scheduler's own ``rqscheduler`` command would need ``--url``), puts the registrations
back within one loop interval if Redis lost them (a restart of a Redis that keeps
nothing), and re-plans from the quotas last seen in PostgreSQL, registering again when
the plan changed (a new ``limit_quant`` takes effect without a restart).

Redis going away never ends the process: its connection waits for Redis to answer again
(:mod:`jobs.processes.patient_redis`, logged as ``schedule.redis.down``, then
``schedule.redis.still_down`` every minute while it lasts, and ``schedule.redis.up``).
Every loop also moves retries of our queues that are overdue because the worker that held
RQ's scheduler lock died (``schedule.overdue.moved``).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import peewee as pw
import psycopg2
from redis import Redis
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from jobs.day.plan import StreamPlan, plan_for
from jobs.day.registered_plan import save_plan
from jobs.day.state import limits_seen as limits_seen_in_db
from jobs.kinds import SCHEDULED_FUNCTION
from jobs.logs import configure_logging, get_logger
from jobs.models import open_database
from jobs.pipeline.streams import declared_names, default_streams, enabled_streams
from jobs.processes.patient_redis import give_up, patient_connection
from jobs.processes.queueing import move_overdue_jobs, queues_of, register_queues
from jobs.settings import Settings, SettingsError, load_settings
from jobs.watching import error_tracking
from jobs.watching.health import PERIODIC_PREFIX

LOOP_SECONDS = 10


def periodic_jobs(settings: Settings) -> dict[str, tuple[str, str]]:
    """Our periodic jobs: per enabled stream, its id, with the kind and its queue."""
    return {
        f"{PERIODIC_PREFIX}{stream.name}": (stream.name, stream.queue)
        for stream in enabled_streams(settings)
    }


PERIODIC_JOBS = {
    f"{PERIODIC_PREFIX}{stream.name}": (stream.name, stream.queue) for stream in default_streams()
}
"""The periodic jobs of the default ``SYNC_STREAMS`` (:func:`periodic_jobs`: of any)."""


def limits_seen(settings: Settings) -> dict[str, int | None] | None:
    """The latest ``limit_quant`` SmartUp sent per pool, as kept in PostgreSQL; None when
    the database cannot say."""
    try:
        db = open_database(settings.database_url)
    except (pw.PeeweeException, psycopg2.Error):
        return None
    try:
        return limits_seen_in_db()
    except (pw.PeeweeException, psycopg2.Error):
        return None
    finally:
        db.close()


def current_plan(settings: Settings) -> dict[str, StreamPlan] | None:
    """The day's plan from the settings and the quotas last seen; None when the database
    cannot say what was seen."""
    seen = limits_seen(settings)
    return None if seen is None else plan_for(settings, limits_seen=seen)


def register(
    scheduler: Scheduler, settings: Settings, *, plan: dict[str, StreamPlan] | None = None
) -> list[str]:
    """Make the scheduler hold exactly our periodic jobs, at the intervals of the plan
    (``plan``, else the current one), and log the plan (``schedule.plan``)."""
    # Without the database, the default quotas: a first registration must not wait for it
    plan = plan or current_plan(settings) or plan_for(settings, limits_seen={})
    get_logger().info("schedule.plan", streams={name: p.as_dict() for name, p in plan.items()})
    keep_plan(settings, plan)
    register_queues(scheduler.connection, settings)
    jobs = periodic_jobs(settings)
    for job in scheduler.get_jobs():
        if job.id.startswith(PERIODIC_PREFIX) and job.id not in jobs:
            scheduler.cancel(job)
    for job_id, (kind, queue) in jobs.items():
        if job_id in scheduler:
            scheduler.cancel(job_id)
        interval = plan[kind].interval_used
        scheduler.schedule(
            scheduled_time=datetime.now(UTC).replace(tzinfo=None),  # rq-scheduler wants naive UTC
            func=SCHEDULED_FUNCTION,
            args=[kind],
            interval=interval,
            repeat=None,
            id=job_id,
            queue_name=queue,
            timeout=60,
            description=f"every {interval}s: queue a smartup {kind} sync",
        )
    return list(jobs)


def keep_plan(settings: Settings, plan: dict[str, StreamPlan]) -> bool:
    """Write the plan being registered to PostgreSQL, where the web app's overview reads
    it (:mod:`jobs.day.registered_plan`); a database that is away costs a warning
    (``schedule.plan.unsaved``), not the registration."""
    try:
        db = open_database(settings.database_url)
    except (pw.PeeweeException, psycopg2.Error) as error:
        get_logger().warning("schedule.plan.unsaved", error=type(error).__name__)
        return False
    try:
        save_plan(plan, timezone=settings.smartup_timezone)
        return True
    except (pw.PeeweeException, psycopg2.Error) as error:
        get_logger().warning("schedule.plan.unsaved", error=type(error).__name__)
        return False
    finally:
        db.close()


def registered_intervals(
    scheduler: Scheduler, settings: Settings | None = None
) -> dict[str, int | None]:
    """The interval each of our periodic jobs is registered with, by kind."""
    settings = settings or getattr(scheduler, "settings", None)
    jobs = periodic_jobs(settings) if settings is not None else PERIODIC_JOBS
    found: dict[str, int | None] = {kind: None for kind, _ in jobs.values()}
    for job in scheduler.get_jobs():
        if job.id in jobs:
            found[jobs[job.id][0]] = job.meta.get("interval")
    return found


class SelfHealingScheduler(Scheduler):  # type: ignore[misc]
    """rq-scheduler's loop, which first puts back registrations that vanished from Redis,
    and registers again when the plan (re-made from the quotas last seen) changed."""

    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = settings

    def enqueue_jobs(self) -> Any:
        # read once: Redis may empty meanwhile
        registered = registered_intervals(self, self.settings)
        if None in registered.values():
            get_logger().warning("schedule.restored", jobs=register(self, self.settings))
        elif (plan := current_plan(self.settings)) is not None:
            wanted = {kind: plan[kind].interval_used for kind in registered}
            if registered != wanted:
                get_logger().info(
                    "schedule.replanned", jobs=register(self, self.settings, plan=plan)
                )
        moved = move_overdue_jobs(self.connection, queues=queues_of(self.settings))
        if moved:
            get_logger().warning("schedule.overdue.moved", jobs=moved)
        return super().enqueue_jobs()

    def register_death(self) -> None:
        """On SIGTERM: stop waiting for a Redis that is away, so that the process ends."""
        give_up(self.connection)
        with suppress(RedisError):
            super().register_death()

    def remove_lock(self) -> None:
        with suppress(RedisError):
            super().remove_lock()


def make_scheduler(
    settings: Settings, connection: Redis | None = None, *, loop_seconds: float = LOOP_SECONDS
) -> SelfHealingScheduler:
    return SelfHealingScheduler(
        connection=connection or patient_connection(settings.redis_url, process="schedule"),
        interval=loop_seconds,
        settings=settings,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--register-only", action="store_true", help="register, then exit")
    parser.add_argument("--burst", action="store_true", help="move due jobs once, then exit")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        settings = load_settings(streams=declared_names())
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    error_tracking.start(settings.sentry_dsn, secrets=settings.secrets, process="scheduler")
    scheduler = make_scheduler(settings)
    jobs = register(scheduler, settings)
    get_logger().info(
        "schedule.registered", jobs=jobs, intervals_s=registered_intervals(scheduler, settings)
    )
    if not args.register_only:
        scheduler.run(burst=args.burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
