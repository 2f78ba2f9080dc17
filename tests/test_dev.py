"""``make dev`` (``dev.py``) stops whole on Ctrl-C: real processes, a real sync, real signals.

Each test starts ``dev.py`` in a process group of its own and sends SIGINT to the group, as
a terminal does on Ctrl-C. Every process ``dev.py`` starts inherits a marker in its
environment, so that one left behind is found wherever it went (adopted by PID 1
included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest
from redis import Redis
from rq import Worker

from jobs.models import SyncRun, open_database
from tests.helpers import REDIS_URL, ROOT, wait_for

STOP_BOUND_SECONDS = 10  # what the README promises for Ctrl-C
MARK = "SMARTUP_DEV_TEST_MARK"
T = TypeVar("T")

pytestmark = pytest.mark.slow


def marked(mark: str) -> list[psutil.Process]:
    """Every live process whose environment carries ``mark``."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get(MARK) == mark:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def describe(processes: list[psutil.Process]) -> str:
    lines = []
    for process in processes:
        try:
            lines.append(f"{process.pid} (parent {process.ppid()}): {' '.join(process.cmdline())}")
        except psutil.Error:
            lines.append(f"{process.pid}: gone")
    return "; ".join(lines)


def running_runs(database_url: str) -> list[int]:
    db = open_database(database_url)
    try:
        return [r.id for r in SyncRun.select().where(SyncRun.status == "RUNNING")]
    finally:
        db.close()


class DevProcess:
    """``dev.py`` in a process group of its own, its output in a file."""

    def __init__(self, tmp_path: Path, database_url: str, *args: str) -> None:
        self.mark = uuid.uuid4().hex
        self.output = tmp_path / f"dev-{self.mark[:8]}.log"
        environ = {
            **os.environ,
            "DEV_DATABASE_URL": database_url,
            "DEV_REDIS_URL": REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            MARK: self.mark,
        }
        with self.output.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "dev.py"), *args],
                cwd=ROOT,
                env=environ,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def assert_stops_whole(self) -> None:
        """Within the bound, no process of it is left, and ``dev.py`` itself has exited."""
        try:
            wait_for(
                lambda: not marked(self.mark),
                timeout=STOP_BOUND_SECONDS,
                what="every process make dev started to end",
            )
        except AssertionError as error:
            raise AssertionError(
                f"{error}; left: {describe(marked(self.mark))}\n{self.text()}"
            ) from None
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"dev.py did not exit\n{self.text()}") from None
        assert self.process.returncode == 0, self.text()

    def kill(self) -> None:
        for process in marked(self.mark):
            with contextlib.suppress(psutil.Error):
                process.kill()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def database(make_pg_database: Callable[[], str], redis: Redis) -> Iterator[str]:
    yield make_pg_database()


def test_ctrl_c_during_a_sync_stops_everything_and_leaves_nothing_running(
    tmp_path: Path, database: str, redis: Redis
) -> None:
    """A products run big enough to be under way when Ctrl-C comes: the worker, its work
    horse, the scheduler and the simulator are all gone, no run stays RUNNING, and no
    worker stays listed on the queues for the next ``make dev`` to share them with."""
    dev = DevProcess(tmp_path, database, "--products", "60000", "--orders", "50")
    try:
        wait_for(lambda: running_runs(database), timeout=180, what="a RUNNING run")
        dev.ctrl_c()
        dev.assert_stops_whole()
    finally:
        dev.kill()
    assert running_runs(database) == [], dev.text()
    assert Worker.all(connection=redis) == [], dev.text()
    assert "dev: stopped" in dev.text()


SLOW_TO_STOP = """
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.fork() == 0:
        os.setsid()  # as RQ's work horse does: out of reach of the terminal and of honcho
        open(sys.argv[1], "w").write(str(os.getpid()))
    time.sleep(600)
"""


def test_ctrl_c_stops_children_that_ignore_sigterm_and_their_own_sessions(
    tmp_path: Path, database: str, redis: Redis
) -> None:
    """A Procfile process that ignores SIGTERM and SIGINT, with a child in a session of its
    own that ignores them too: Ctrl-C still ends both, with the worker and scheduler."""
    script = tmp_path / "slow_to_stop.py"
    script.write_text(textwrap.dedent(SLOW_TO_STOP))
    grandchild_pid = tmp_path / "grandchild.pid"
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        (ROOT / "Procfile").read_text() + f"slow: {sys.executable} {script} {grandchild_pid}\n"
    )
    dev = DevProcess(tmp_path, database, "--procfile", str(procfile), "worker", "scheduler", "slow")
    try:
        wait_for(grandchild_pid.exists, timeout=120, what="the slow process's grandchild")
        wait_for(lambda: Worker.all(connection=redis), timeout=60, what="a worker to register")
        pid = int(wait_for(grandchild_pid.read_text, timeout=5, what="the grandchild's pid"))
        assert psutil.pid_exists(pid)
        dev.ctrl_c()
        dev.assert_stops_whole()
    finally:
        dev.kill()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert Worker.all(connection=redis) == [], dev.text()
