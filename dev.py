"""``make dev``: the real queue flow on this machine, in one command, until Ctrl-C.

Starts the SmartUp simulator as a process, creates the local database if it is missing,
applies the migrations, then runs the Procfile's ``worker`` and ``scheduler`` under honcho
(with ``.venv/bin`` first on ``PATH``). Every sync is a real job on the local Redis, made by
the real worker against the simulator. Nothing is read from ``.env``: a developer's ``.env``
may point elsewhere; the settings used are written to ``.dev/dev.env``.

Ctrl-C (SIGINT to the terminal's process group) or SIGTERM stops everything it started
within :data:`STOP_SECONDS`, however slowly a process stops. honcho starts each Procfile
process in a session of its own and RQ's work horse makes one of its own too, so the
terminal's signal reaches none of them; this process therefore makes itself their
*subreaper* (Linux), so that a process orphaned by the shutdown is adopted by it rather
than by PID 1, and it ends every process left below it once honcho is done or overdue
(SIGTERM, then SIGKILL). The simulator is stopped last, so that a run that is finishing
can still read its answer. A run the shutdown cut short is then closed as ``FAILED``
("interrupted") rather than left ``RUNNING``, and the registrations in Redis of the workers
it killed are removed, so that the next ``make dev`` finds no stranger on its queues.

``DEV_DATABASE_URL`` (default ``postgresql://root@127.0.0.1:5432/smartup_dev``) and
``DEV_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) choose where it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import unquote, urlsplit

import psutil
import psycopg2
from redis import Redis
from rq import Worker

from jobs.day.plan import plan_for
from jobs.models import open_database
from jobs.pipeline.streams import declared_names
from jobs.run.rows import RunLock, close_orphans
from jobs.settings import load_settings

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DEV_DIR = ROOT / ".dev"
USER, PASSWORD = "dev@smartup", "dev-secret"
SYNC_INTERVAL_SECONDS = 60
STOP_SECONDS = 9.0  # Ctrl-C → every process started here is gone, at the latest
HONCHO_STOP_SECONDS = 6.0  # honcho itself SIGKILLs what is left of its processes after 5 s
TERM_GRACE_SECONDS = 1.5  # SIGTERM → SIGKILL, for what is left after honcho
PR_SET_CHILD_SUBREAPER = 36


class Stop(Exception):
    """SIGINT or SIGTERM arrived: stop everything."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop(signum)


def become_subreaper() -> bool:
    """Adopt the orphans among this process's descendants (Linux); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` when it does not exist yet."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return
    name = unquote(parts.path.lstrip("/"))
    connection = psycopg2.connect(
        dbname="postgres",
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=parts.hostname,
        port=parts.port,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
                print(f"dev: created database {name}", file=sys.stderr)
    finally:
        connection.close()


def end_processes(processes: Iterable[psutil.Process], *, grace_seconds: float) -> None:
    """SIGTERM each process, then SIGKILL those still there after ``grace_seconds``."""
    alive = []
    for process in processes:
        try:
            process.terminate()
            alive.append(process)
        except psutil.NoSuchProcess:
            pass
    _, left = psutil.wait_procs(alive, timeout=grace_seconds)
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(left, timeout=grace_seconds)


def descendants() -> list[psutil.Process]:
    """Every live process below this one (orphans included, once adopted)."""
    return [p for p in psutil.Process().children(recursive=True) if _alive(p)]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def close_cut_runs(database_url: str) -> int:
    """Close as FAILED the runs the shutdown cut short (their processes are gone, so their
    run locks are free again); the number closed."""
    db = open_database(database_url)
    try:
        lock = RunLock(db, ("products", "orders"))
        deadline = time.monotonic() + 2  # PostgreSQL lets go of a dead client's locks
        while not lock.try_acquire():
            if time.monotonic() > deadline:
                return 0
            time.sleep(0.1)
        try:
            return close_orphans(("products", "orders"), cause=lambda run: "make dev stopped")
        finally:
            lock.release()
    finally:
        db.close()


def forget_workers(redis_url: str, pids: set[int]) -> int:
    """Remove from Redis the registrations of this host's workers among ``pids`` (all gone
    by now), so that ``rq info`` lists no worker that does not exist."""
    connection = Redis.from_url(redis_url, socket_timeout=2)
    try:
        gone = [
            worker
            for worker in Worker.all(connection=connection)
            if worker.hostname == socket.gethostname() and worker.pid in pids
        ]
        for worker in gone:
            worker.register_death()  # type: ignore[no-untyped-call]
        return len(gone)
    finally:
        connection.close()


def _plan_line(values: dict[str, str]) -> str:
    """What the scheduler will really run: the day's plan on these settings."""
    plan = plan_for(load_settings(values, streams=declared_names()))
    intervals = ", ".join(f"{name} every {p.interval_used} s" for name, p in plan.items())
    return (
        f"dev: SYNC_INTERVAL_SECONDS={values['SYNC_INTERVAL_SECONDS']}; the quota plan "
        f"runs {intervals} (python -m jobs plan says why)"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python dev.py",
        description="Run the simulator, the worker and the scheduler locally until Ctrl-C.",
    )
    parser.add_argument(
        "processes",
        nargs="*",
        default=["worker", "scheduler"],
        metavar="PROCESS",
        help="Procfile processes to run (default: worker scheduler)",
    )
    parser.add_argument(
        "--procfile", type=Path, default=ROOT / "Procfile", help="default: the repository's"
    )
    parser.add_argument("--products", type=int, default=2000, help="simulator's catalogue size")
    parser.add_argument("--orders", type=int, default=500, help="simulator's orders")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    database_url = os.environ.get(
        "DEV_DATABASE_URL", "postgresql://root@127.0.0.1:5432/smartup_dev"
    )
    redis_url = os.environ.get("DEV_REDIS_URL", "redis://127.0.0.1:6379/0")
    become_subreaper()
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    simulator: subprocess.Popen[str] | None = None
    honcho: subprocess.Popen[bytes] | None = None
    stopped_by: int | None = None
    try:
        ensure_database(database_url)
        # a session of its own: Ctrl-C must not stop it before the runs it serves
        simulator = subprocess.Popen(
            [
                str(BIN / "python"),
                "-m",
                "jobs.simulator",
                f"--products={args.products}",
                f"--orders={args.orders}",
                f"--user={USER}",
                f"--password={PASSWORD}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert simulator.stdout is not None
        base_url = simulator.stdout.readline().strip().partition("=")[2]
        if not base_url:
            print("dev: the simulator did not start", file=sys.stderr)
            return 1
        values = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SMARTUP_BASE_URL": base_url,
            "SMARTUP_BASIC_USER": USER,
            "SMARTUP_BASIC_PASS": PASSWORD,
            "SMARTUP_FILIAL_ID": "100",
            "SYNC_INTERVAL_SECONDS": str(SYNC_INTERVAL_SECONDS),
        }
        DEV_DIR.mkdir(exist_ok=True)
        env_file = DEV_DIR / "dev.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        environ = {**os.environ, **values, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        print(f"dev: simulator at {base_url}; database {database_url}; Redis {redis_url}")
        print(_plan_line(values))
        migrated = subprocess.run([str(BIN / "python"), "migrate.py"], cwd=ROOT, env=environ)
        if migrated.returncode:
            return migrated.returncode
        print(
            "dev: worker and scheduler under honcho (Ctrl-C stops everything); to watch, in "
            "another shell: set -a; . .dev/dev.env; set +a; .venv/bin/python -m jobs status",
            flush=True,
        )
        honcho = subprocess.Popen(
            [
                str(BIN / "honcho"),
                "start",
                "-f",
                str(args.procfile),
                "-d",
                str(ROOT),
                "-e",
                str(env_file),
                *args.processes,
            ],
            cwd=ROOT,
            env=environ,
        )
        return honcho.wait()
    except Stop as stop:
        stopped_by = stop.signum
        return 0
    finally:
        # a second Ctrl-C must not cut the shutdown short: it is bounded anyway
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_everything(honcho, simulator, stopped_by, database_url, redis_url)


def stop_everything(
    honcho: subprocess.Popen[bytes] | None,
    simulator: subprocess.Popen[str] | None,
    stopped_by: int | None,
    database_url: str,
    redis_url: str,
) -> None:
    """honcho stops its processes (its own way: SIGTERM, SIGKILL after 5 s); whatever is
    left below this process then (a work horse, a grandchild in a session of its own) is
    ended, then the simulator; then the runs cut short are closed and the dead workers
    forgotten."""
    started = {p.pid for p in descendants()}
    if honcho is not None and honcho.poll() is None:
        if stopped_by != signal.SIGINT:  # Ctrl-C reached honcho already, SIGTERM did not
            honcho.send_signal(signal.SIGTERM)
        try:
            honcho.wait(timeout=HONCHO_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            honcho.kill()
            honcho.wait()
    simulator_pid = simulator.pid if simulator is not None else None
    left = [p for p in descendants() if p.pid != simulator_pid]
    if left:
        print(
            f"dev: ending {len(left)} process(es) left after honcho: "
            + ", ".join(f"{p.pid}" for p in left),
            file=sys.stderr,
        )
        end_processes(left, grace_seconds=TERM_GRACE_SECONDS)
    if simulator is not None and simulator.poll() is None:
        simulator.terminate()
        try:
            simulator.wait(timeout=TERM_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.wait()
    started |= {p.pid for p in left}
    if honcho is None:
        return
    try:
        closed = close_cut_runs(database_url)
        if closed:
            print(f"dev: closed {closed} run(s) cut short as FAILED", file=sys.stderr)
        forget_workers(redis_url, started)
    except Exception as error:  # the shutdown must end, whatever the services do
        print(f"dev: cleanup after stopping: {type(error).__name__}: {error}", file=sys.stderr)
    print("dev: stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
