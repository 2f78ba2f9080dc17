"""The ``worker`` process (``python -m jobs worker``): RQ's worker on the queue of every
enabled stream (``SYNC_STREAMS``), made to ride out Redis outages.

It is ``rq worker --with-scheduler --worker-ttl 60 smartup-products smartup-orders ...`` with
four differences, each for an outage or a deploy:

- its Redis connection waits for Redis instead of raising (:mod:`jobs.processes.patient_redis`): a
  worker started while Redis is down waits for it, and a busy worker whose Redis blinks
  keeps its work horse, whose run goes on and records its result in PostgreSQL; the horse's
  own bookkeeping in Redis waits too, so the job ends as it would have;
- when Redis comes back empty, the worker lists itself again, so ``rq info`` shows it;
- maintenance runs every minute instead of every ten: jobs abandoned by a killed worker are
  retried sooner, and a worker takes over RQ's scheduler lock of a dead one sooner;
- a SIGTERM or SIGINT that comes while it starts is held until it can stop cleanly, so a
  worker stopped just after it listed itself does not stay listed.

A worker class of our own rather than a supervisor around ``rq worker``: a supervisor can
only restart a worker that exited, which loses the work horse and its run; the connection
policy keeps both, with no process of its own to watch.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from typing import Any

from redis.exceptions import RedisError
from rq import Queue, Worker, worker_registration

from jobs.kinds import SYNC_FUNCTION
from jobs.logs import get_logger
from jobs.processes.patient_redis import give_up, patient_connection, waiting_for_redis
from jobs.processes.queueing import queues_of, register_queues
from jobs.settings import Settings
from jobs.watching import error_tracking

WORKER_TTL_SECONDS = 60
JOB_MONITORING_SECONDS = 10  # how often a busy worker heartbeats while its horse works
MAINTENANCE_SECONDS = 60
SCHEDULER_STOP_SECONDS = 10
SCHEDULER_SIGTERM_EVERY_SECONDS = 0.5


class SyncWorker(Worker):
    """An RQ worker that lists itself again after Redis restarted empty, that stops
    when asked to even while Redis is away, and that gives each sync job its own timeout
    (``SYNC_JOB_TIMEOUT_SECONDS``): whoever queued the job (a web app) need not know it."""

    sync_job_timeout: int | None = None
    _held_stop_signal: int | None = None

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """List the worker, with SIGTERM and SIGINT held until the work loop starts.

        RQ lists a worker (``bootstrap``) and starts its scheduler before it installs its
        own handlers: a stop signal in that window (a deploy, a Ctrl-C just after start)
        would kill the worker while listed, and ``rq info`` would show a worker that is not
        there until its TTL lapsed. Held, the signal is heard at the top of the loop, where
        RQ stops cleanly and unlists the worker. Two exceptions: a process forked meanwhile
        (RQ's scheduler, before it installs its own handlers) hears the signal as it would
        have without us; and while Redis is away, the worker stops at once, since it could
        neither unlist itself nor reach its loop before Redis came back."""
        worker_pid = os.getpid()
        before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

        def hold(signum: int, _frame: Any) -> None:
            if os.getpid() != worker_pid:
                signal.signal(signum, before[signal.Signals(signum)])
                os.kill(os.getpid(), signum)
                return
            if waiting_for_redis(self.connection):
                self.stop_scheduler()
                raise SystemExit(0)
            self._held_stop_signal = signum

        for number in before:
            signal.signal(number, hold)
        super().bootstrap(*args, **kwargs)

    def check_for_suspension(self, burst: bool) -> None:
        # The first step of every turn of RQ's loop, inside the try whose end unlists the
        # worker: a stop signal held during bootstrap is heard here, as if it came now.
        held, self._held_stop_signal = self._held_stop_signal, None
        if held is not None:
            self.request_stop(held, None)  # type: ignore[no-untyped-call]
        super().check_for_suspension(burst)

    def execute_job(self, job: Any, queue: Any) -> Any:
        if self.sync_job_timeout is not None and job.func_name == SYNC_FUNCTION:
            job.timeout = self.sync_job_timeout  # before the fork: horse and monitor agree
            self.connection.hset(job.key, "timeout", job.timeout)  # as `rq info` shows it
        return super().execute_job(job, queue)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        super().heartbeat(timeout, pipeline)
        if pipeline is not None or self.connection.sismember(self.redis_workers_keys, self.key):
            return
        with self.connection.pipeline() as again:
            again.hset(self.key, mapping=self.serialize())
            worker_registration.register(self, again)
            again.expire(self.key, timeout or self.worker_ttl + 60)
            again.execute()

    def stop_scheduler(self) -> None:
        """Stop RQ's scheduler process, which cannot hear SIGTERM while it waits for Redis:
        after a grace period it is killed (its lock lapses within a minute).

        SIGTERM is sent again every half second: one that reaches a scheduler forked an
        instant ago can be lost (Python clears the signals pending in a new fork), and the
        worker would wait the whole grace period for nothing."""
        process = self.scheduler._process if self.scheduler else None
        if process is None or not process.pid:
            return
        deadline = time.monotonic() + SCHEDULER_STOP_SECONDS
        while process.is_alive() and time.monotonic() < deadline:
            with suppress(OSError):
                os.kill(process.pid, signal.SIGTERM)
            process.join(SCHEDULER_SIGTERM_EVERY_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
            get_logger().warning(
                "worker.scheduler.killed", pid=process.pid, waited_s=SCHEDULER_STOP_SECONDS
            )

    def teardown(self) -> None:
        """Stopping (SIGTERM, or the burst is done): do not wait for a Redis that is away
        just to say goodbye; RQ forgets a worker whose heartbeat lapsed anyway."""
        give_up(self.connection)
        with suppress(RedisError):
            super().teardown()  # type: ignore[no-untyped-call]


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    """Work the enabled streams' queues until stopped (or, with ``burst``, until they are
    empty). A stream that is not enabled has its queue left alone."""
    error_tracking.start(settings.sentry_dsn, secrets=settings.secrets, process="worker")
    connection = patient_connection(settings.redis_url, process="worker")
    register_queues(connection, settings)  # the first command: waits here while Redis is down
    worker = SyncWorker(
        [Queue(name, connection=connection) for name in queues_of(settings)],
        connection=connection,
        worker_ttl=WORKER_TTL_SECONDS,
        job_monitoring_interval=JOB_MONITORING_SECONDS,
        maintenance_interval=MAINTENANCE_SECONDS,
    )
    worker.sync_job_timeout = settings.sync_job_timeout_seconds
    worker.work(burst=burst, with_scheduler=True)
    return 0
