"""A worker stopped (SIGTERM on deploy, SIGINT on Ctrl-C) at the moment it lists itself
ends cleanly and unlisted: ``rq info`` shows no worker that is not there.

RQ lists a worker before it installs its signal handlers; :class:`SyncWorker` holds a stop
signal that comes in between and hears it when its loop starts. Real processes on real
Redis: each worker here sends the signal to itself right after RQ listed it, so that the
window a deploy hits by chance is hit every time.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from redis import Redis
from rq import Worker

from tests.helpers import REDIS_URL, ROOT, finish, without_our_settings

SIGNALLED_ONCE_LISTED = """
    import os, signal, sys
    from jobs.processes.cli import main
    from jobs.processes.worker import SyncWorker

    listed_by_rq = SyncWorker.register_birth

    def register_birth(self, *args, **kwargs):
        listed_by_rq(self, *args, **kwargs)
        print("listed", flush=True)
        os.kill(os.getpid(), signal.{signal_name})

    SyncWorker.register_birth = register_birth
    sys.exit(main(["worker"]))
"""


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_signalled_as_it_lists_itself_stops_cleanly_and_unlisted(
    tmp_path: Path, pg: str, redis: Redis, stop_signal: signal.Signals
) -> None:
    script = tmp_path / "signalled_once_listed.py"
    script.write_text(textwrap.dedent(SIGNALLED_ONCE_LISTED.format(signal_name=stop_signal.name)))
    environ = without_our_settings()
    environ.update(
        DATABASE_URL=pg,
        REDIS_URL=REDIS_URL,
        SMARTUP_BASE_URL="http://127.0.0.1:9",  # never called: no job is queued
        SMARTUP_BASIC_USER="user",
        SMARTUP_BASIC_PASS="pass",
        SMARTUP_FILIAL_ID="100",
        PYTHONPATH=str(ROOT),
    )
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = finish(process, timeout=60)  # a worker that heard nothing would run on
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "listed" in output
    assert process.returncode == 0, output  # not killed by the signal
    assert "warm shut down requested" in output, output
    assert Worker.all(connection=redis) == [], output
