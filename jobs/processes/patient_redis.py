"""A Redis connection that waits out an outage instead of raising: for long-lived processes.

RQ's worker, its work horse and rq-scheduler's loop treat a ``ConnectionError`` as fatal:
the process exits and a platform restarting it falls into its crash back-off. Rather than
catching the error at every place RQ talks to Redis (the work loop, the horse monitor, the
heartbeats, the result bookkeeping in the horse, the scheduler's birth and death), the
``worker`` and ``scheduler`` processes give their connection a retry policy that never
gives up: every command waits, with capped exponential backoff, until Redis answers again,
and then carries on where it stood. The outage is logged when it starts
(``<process>.redis.down``, naming the Redis waited for: host, port and database, never a
password), again every minute while it lasts (``<process>.redis.still_down``, with how
long so far), and once when it ends (``<process>.redis.up``), by each process (a worker,
its work horse and its RQ scheduler are processes of their own).

The web app's path (:func:`jobs.processes.queueing.enqueue_sync`) keeps redis-py's ordinary policy:
a click on "resync" should fail fast, not hang.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from jobs.logs import get_logger

T = TypeVar("T")
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_CAP_SECONDS = 2.0  # Redis back → commands flow again within about this long
STILL_DOWN_EVERY_SECONDS = 60.0


class PatientRetry(Retry):
    """Retry connection errors and timeouts forever; log each outage when it starts, every
    ``still_down_every`` seconds while it lasts, and when it ends.

    redis-py deep-copies the retry policy into each connection; this one returns itself,
    so that all connections of a process share one record of whether Redis is down.
    """

    def __init__(
        self,
        *,
        process: str,
        redis: str = "Redis",
        cap_seconds: float = BACKOFF_CAP_SECONDS,
        still_down_every: float = STILL_DOWN_EVERY_SECONDS,
    ) -> None:
        super().__init__(
            ExponentialWithJitterBackoff(cap=cap_seconds, base=BACKOFF_BASE_SECONDS), retries=-1
        )
        self.process = process
        self.redis = redis
        self.still_down_every = still_down_every
        self.down_since: float | None = None
        self.said_at: float | None = None
        # a forked child (work horse, RQ's scheduler) keeps its own record of outages
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self.down_since = self.said_at = None

    def __deepcopy__(self, memo: dict[int, Any]) -> PatientRetry:
        return self

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        failures: list[Exception] = []

        def failed(error: Exception, *count: int) -> None:
            failures.append(error)
            now = time.monotonic()
            if self.down_since is None:
                self.down_since = self.said_at = now
                get_logger().warning(
                    f"{self.process}.redis.down",
                    redis=self.redis,
                    error=f"{type(error).__name__}: {error}",
                    waiting=f"until {self.redis} answers again",
                    pid=os.getpid(),
                )
            elif self.said_at is not None and now - self.said_at >= self.still_down_every:
                self.said_at = now
                get_logger().warning(
                    f"{self.process}.redis.still_down",
                    redis=self.redis,
                    down_s=round(now - self.down_since, 1),
                    error=f"{type(error).__name__}: {error}",
                    waiting=f"until {self.redis} answers again",
                    pid=os.getpid(),
                )
            fail(error, *count)

        result = super().call_with_retry(do, failed, is_retryable, with_failure_count)
        # Only a call that failed and then went through proves Redis is back (a call of
        # another thread may succeed without reaching the server, e.g. a pub/sub poll).
        if failures and self.down_since is not None:
            down_s = round(time.monotonic() - self.down_since, 1)
            self.down_since = self.said_at = None
            get_logger().info(
                f"{self.process}.redis.up", redis=self.redis, down_s=down_s, pid=os.getpid()
            )
        return result


def patient_connection(url: str, *, process: str) -> Redis:
    """A client for ``url`` whose commands wait for Redis rather than raise when it is away.

    ``process`` names the log events: ``worker`` → ``worker.redis.down``/``worker.redis.up``.
    """
    return Redis.from_url(url, retry=PatientRetry(process=process, redis=redis_address(url)))


def redis_address(url: str) -> str:
    """Where ``url`` points, for a log line: ``127.0.0.1:6379/0`` (never its password)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    database = parts.path.lstrip("/") or "0"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}/{database}"


def give_up(connection: Redis) -> None:
    """Stop waiting: from now on ``connection`` raises as redis-py does by default. For a
    process that is stopping (SIGTERM) and must not hang on a Redis that is away."""
    retry = _patient_retry(connection)
    if retry is not None:
        retry.update_retries(0)


def waiting_for_redis(connection: Redis) -> bool:
    """Whether a command on ``connection`` (or another of this process) is waiting now for
    a Redis that is away."""
    retry = _patient_retry(connection)
    return retry is not None and retry.down_since is not None


def _patient_retry(connection: Redis) -> PatientRetry | None:
    """The policy :func:`patient_connection` gave ``connection``; None for any other."""
    retry = connection.connection_pool.connection_kwargs.get("retry")
    return retry if isinstance(retry, PatientRetry) else None
