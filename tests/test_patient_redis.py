"""A worker or scheduler waiting for a Redis that does not answer says which one, and says
it again while the wait lasts."""

from __future__ import annotations

import threading

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from jobs.logs import configure_logging
from jobs.processes.patient_redis import PatientRetry, give_up, redis_address
from tests.helpers import free_port, wait_for


def test_the_wait_names_the_redis_and_is_said_again_while_it_lasts():
    configure_logging()  # before capture_logs, which it would undo
    url = f"redis://:hunter22secret@127.0.0.1:{free_port()}/7"
    where = redis_address(url)
    assert "hunter22secret" not in where and where.endswith("/7")
    retry = PatientRetry(process="worker", redis=where, cap_seconds=0.05, still_down_every=0.3)
    connection = Redis.from_url(url, retry=retry)
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            connection.ping()
        except BaseException as error:  # give_up() ends the wait with the error
            outcome.append(error)

    with capture_logs() as logs:
        waiting = threading.Thread(target=wait)
        waiting.start()
        try:
            wait_for(
                lambda: sum(e["event"] == "worker.redis.still_down" for e in logs) >= 2,
                timeout=30,
                what="the wait for Redis to be said again twice",
            )
        finally:
            give_up(connection)
            waiting.join(timeout=30)
    assert not waiting.is_alive()
    assert isinstance(outcome[0], RedisConnectionError)
    events = [e for e in logs if e["event"].startswith("worker.redis.")]
    names = [e["event"] for e in events]
    assert names[0] == "worker.redis.down", names
    assert names[1:3] == ["worker.redis.still_down"] * 2, names
    assert all(e["redis"] == where for e in events)
    assert events[1]["down_s"] < events[2]["down_s"]
    assert not any("hunter22secret" in str(e) for e in logs)
