"""A worker stopped (SIGTERM on deploy, SIGINT on Ctrl-C) at the moment it lists itself
ends cleanly and unlisted: ``rq info`` shows no worker that is not there.

RQ lists a worker before it installs its signal handlers; :class:`SyncWorker` holds a stop
signal that comes in between and hears it when its loop starts, unless Redis is away then:
it stops at once rather than wait for Redis. Real processes on real Redis: each worker here
is caught in that window by a hook on the method RQ lists it with, so that the window a
deploy hits by chance is hit every time.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker

from tests.helpers import REDIS_URL, ROOT, PrivateRedis, Proc, wait_for, without_our_settings

# A worker (``python -m jobs worker``) that runs HOOK just after RQ listed it.
WORKER_WITH_A_HOOK = """
    import os, signal, sys, time
    from jobs.processes.cli import main
    from jobs.processes.worker import SyncWorker

    listed_by_rq = SyncWorker.register_birth

    def register_birth(self, *args, **kwargs):
        listed_by_rq(self, *args, **kwargs)
        print("listed", flush=True)
        {hook}

    SyncWorker.register_birth = register_birth
    sys.exit(main(["worker"]))
"""
SIGNAL_ITSELF = "os.kill(os.getpid(), signal.{signal_name})"
WAIT_FOR_REDIS = "while True: self.connection.ping(); time.sleep(0.05)"


def worker_with_a_hook(tmp_path: Path, hook: str, *, database_url: str, redis_url: str) -> Proc:
    script = tmp_path / "worker_with_a_hook.py"
    script.write_text(textwrap.dedent(WORKER_WITH_A_HOOK).format(hook=hook))
    environ = without_our_settings()
    environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SMARTUP_BASE_URL="http://127.0.0.1:9",  # never called: no job is queued
        SMARTUP_BASIC_USER="user",
        SMARTUP_BASIC_PASS="pass",
        SMARTUP_FILIAL_ID="100",
        PYTHONPATH=str(ROOT),
    )
    return Proc([sys.executable, str(script)], environ)


def listed(process: Proc) -> bool:
    return "listed\n" in process.lines


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_signalled_as_it_lists_itself_stops_cleanly_and_unlisted(
    tmp_path: Path, pg: str, redis: Redis, stop_signal: signal.Signals
) -> None:
    hook = SIGNAL_ITSELF.format(signal_name=stop_signal.name)
    process = worker_with_a_hook(tmp_path, hook, database_url=pg, redis_url=REDIS_URL)
    try:
        # a worker that did not hear the signal would run on
        wait_for(lambda: not process.alive(), timeout=60, what="the worker to stop")
    finally:
        output = process.stop()
    assert listed(process), output
    assert process.popen.returncode == 0, output  # not killed by the signal
    assert "warm shut down requested" in output, output
    assert Worker.all(connection=redis) == [], output
    assert not process.events("worker.scheduler.killed"), output  # it heard SIGTERM


@pytest.mark.slow
def test_a_worker_signalled_as_it_lists_itself_while_redis_is_away_stops_at_once(
    tmp_path: Path, pg: str, private_redis: PrivateRedis
) -> None:
    private_redis.start()
    process = worker_with_a_hook(
        tmp_path, WAIT_FOR_REDIS, database_url=pg, redis_url=private_redis.url
    )
    try:
        wait_for(lambda: listed(process), timeout=60, what="the worker to list itself")
        private_redis.stop()
        wait_for(
            lambda: process.events("worker.redis.down"),
            timeout=60,
            what="the worker to wait for Redis",
        )
        os.kill(process.pid, signal.SIGTERM)
        # a worker that held the signal would wait for Redis as long as Redis is away
        wait_for(lambda: not process.alive(), timeout=30, what="the worker to stop")
    finally:
        output = process.stop()
    assert process.popen.returncode == 0, output
