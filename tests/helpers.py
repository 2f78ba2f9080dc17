"""What several test files share, in one place: the services' addresses and the test
constants, settings and environments for our processes, processes started for real (a
worker, the scheduler, the dashboard, a private Redis or PostgreSQL cluster), a proxy whose
link to PostgreSQL can be cut, a loopback webhook, a shop with the whole catalogue and runs
with every stream enabled, and the one way to wait for something.

Fixtures live in ``conftest.py``; this module holds plain functions and classes only.
The property tests' generators and oracles have their own modules: ``strategies.py``,
``strategies_catalogue.py`` and ``oracles.py``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg2
from redis import Redis

from jobs.models import SyncRun, open_database
from jobs.pipeline.smartup import RetryPolicy
from jobs.pipeline.streams import declared_names
from jobs.processes.migrate import apply_migrations
from jobs.run.sync import RunOutcome, RunRequest, run_sync
from jobs.settings import Settings, load_settings
from jobs.simulator import (
    PRODUCT_CONDITIONS,
    SmartUpSimulator,
    generate_account,
    generate_price_types,
)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RQ = str(Path(sys.executable).parent / "rq")

PG_ADMIN_DSN = os.environ.get(
    "TEST_PG_ADMIN_DSN", "dbname=postgres user=root host=127.0.0.1 port=5432"
)
PG_URL_BASE = os.environ.get("TEST_PG_URL_BASE", "postgresql://root@127.0.0.1:5432")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
TASHKENT = ZoneInfo("Asia/Tashkent")  # the company's time zone in the tests: UTC+5, no DST
TODAY = datetime.now(TASHKENT).date()  # what a worker's run uses too
USER, PASSWORD = "sync@acme", "s3cret-Pa55"
FAST_RETRY = RetryPolicy(
    attempts=4, backoff_seconds=0.05, backoff_max_seconds=0.2, jitter_seconds=0.01, total_seconds=10
)
TABLES = (
    "order_items",
    "orders",
    "products",
    "smartup_sync_runs",
    "smartup_sync_state",
    "smartup_quota",
    "smartup_sync_alerts",
    "smartup_sync_plan",
    "product_groups",
    "product_types",
    "product_categories",
    "price_types",
    "product_prices",
    "warehouses",
    "stock_balances",
)


# -- waiting ----------------------------------------------------------------------------


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something true, and return that. The bound is
    not a claim about speed: it only keeps a test from hanging. Past it, the test fails
    saying what did not happen (``what``: "the retry to run", "a RUNNING run")."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


# -- the services and our settings ------------------------------------------------------


def admin_sql(sql: str) -> None:
    """Run ``sql`` on the PostgreSQL server's ``postgres`` database (CREATE/DROP DATABASE)."""
    connection = psycopg2.connect(PG_ADMIN_DSN)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def settings_from(environ: Mapping[str, str] | None = None) -> Settings:
    """:func:`load_settings` as an entry point calls it: knowing the declared streams."""
    return load_settings(environ, streams=declared_names())


def settings_for(sim: SmartUpSimulator, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "smartup_base_url": sim.base_url,
        "smartup_user": USER,
        "smartup_password": PASSWORD,
        "smartup_filial_ids": ("100",),
        "redis_url": REDIS_URL,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def offline_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for code that never reaches SmartUp (nothing listens at its address), in
    the company's time zone of the tests (Tashkent)."""
    values: dict[str, object] = {
        "database_url": database_url,
        "smartup_base_url": "http://127.0.0.1:9",
        "smartup_user": USER,
        "smartup_password": PASSWORD,
        "smartup_filial_ids": ("100",),
        "redis_url": REDIS_URL,
        "smartup_timezone": "Asia/Tashkent",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def without_our_settings(*also: str) -> dict[str, str]:
    """This process's environment without any setting of ours it may carry (``SMARTUP_``,
    ``SYNC_``, ``DATABASE_``, ``REDIS_``), nor any variable starting with one of ``also``."""
    ours = ("SMARTUP_", "SYNC_", "DATABASE_", "REDIS_", *also)
    return {k: v for k, v in os.environ.items() if not k.startswith(ours)}


def run_cli(
    *args: str, cwd: Path = ROOT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m jobs ARGS`` run to its end in ``cwd``, with ``env`` over an environment
    without our settings."""
    environ = without_our_settings()
    environ.update(env or {}, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def env_for(sim: SmartUpSimulator, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``python -m jobs ...`` process against ``sim``: this process's
    own, without any setting of ours it may carry, plus ours."""
    environ = without_our_settings()
    environ.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "SMARTUP_BASE_URL": sim.base_url,
            "SMARTUP_BASIC_USER": USER,
            "SMARTUP_BASIC_PASS": PASSWORD,
            "SMARTUP_FILIAL_ID": "100",
            "SMARTUP_RETRY_SECONDS": "5",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    return environ


def runs(database_url: str) -> list[SyncRun]:
    """Every run row, oldest first."""
    db = open_database(database_url)
    try:
        return list(SyncRun.select().order_by(SyncRun.id))
    finally:
        db.close()


def coded_price_types() -> list[dict[str, Any]]:
    """The generated price types, every active one given a code (prices name types by
    code; a type without one cannot be told apart in the prices export)."""
    types = generate_price_types()
    for number, price_type in enumerate(types, start=1):
        if not price_type.get("code") and price_type.get("state") == "A":
            price_type["code"] = f"PRCT:{number}"
    return types


@cache
def readme_queries() -> dict[str, str]:
    """Every ```sql block of the README's "Reading the data" section, by the name on its
    first line (``-- query: NAME``)."""
    section_title = "### Reading the data"
    text = README.read_text(encoding="utf-8")
    start = text.index(section_title) + len(section_title)
    following = re.search(r"^#{2,3} ", text[start:], flags=re.MULTILINE)
    section = text[start : start + following.start()] if following else text[start:]
    queries = {}
    for block in re.findall(r"^```sql\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL):
        first, _, _ = block.partition("\n")
        name = re.fullmatch(r"-- query: (\w+)", first.strip())
        assert name, f"a query block of the README starts without '-- query: NAME': {first!r}"
        queries[name.group(1)] = block
    return queries


# -- worker processes, read when they end (Popen) ---------------------------------------


def start_worker(environ: dict[str, str], *, burst: bool = True) -> subprocess.Popen[str]:
    """``python -m jobs worker`` (``--burst``: until the queues are empty)."""
    command = [sys.executable, "-m", "jobs", "worker"]
    if burst:
        command.append("--burst")
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> str:
    """Wait for ``process`` to exit; its output."""
    output, _ = process.communicate(timeout=timeout)
    return output


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM ``process``'s group if it still runs; its output."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    return finish(process, timeout=30)


def kill_with_work_horse(worker: subprocess.Popen[str]) -> None:
    """SIGKILL the worker and the work horse it forked (which runs in a session of its
    own), as a platform does to a container on deploy."""
    horses = subprocess.run(
        ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True
    ).stdout.split()
    assert horses, "the worker has no work horse running"
    for pid in [worker.pid, *map(int, horses)]:
        os.kill(pid, signal.SIGKILL)
    worker.communicate(timeout=30)


# -- processes whose output is read as it comes ----------------------------------------


class Proc:
    """A process whose output is read as it comes (so a test can wait for a log line)."""

    def __init__(self, command: list[str], environ: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def events(self, event: str) -> list[str]:
        return [line for line in self.lines if f'"event": "{event}"' in line]

    def stop(self) -> str:
        if self.alive():
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=30)
        self._reader.join(timeout=10)
        return self.output

    def kill_tree(self) -> None:
        """SIGKILL the process and its children (work horse, RQ scheduler), as a platform
        kills a container."""
        children = subprocess.run(
            ["pgrep", "-P", str(self.pid)], capture_output=True, text=True
        ).stdout.split()
        for pid in [self.pid, *map(int, children)]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.popen.wait(timeout=30)


def worker_process(environ: dict[str, str]) -> Proc:
    """``python -m jobs worker`` (the Procfile's), until stopped."""
    return Proc([sys.executable, "-m", "jobs", "worker"], environ)


def scheduler_process(environ: dict[str, str]) -> Proc:
    """``python schedule.py`` (the Procfile's), until stopped."""
    return Proc([sys.executable, "schedule.py"], environ)


# -- outages: a cuttable link to PostgreSQL, a private Redis, a private cluster --------


class CuttableProxy:
    """A TCP proxy to PostgreSQL on loopback whose link the test can cut and restore."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for sock in self.sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


# The private Redis servers' ports; TEST_PRIVATE_REDIS_PORTS=FIRST-LAST moves them (a soak
# running beside the suite restarts its own Redis on one of these and must not meet ours).
_FIRST, _LAST = os.environ.get("TEST_PRIVATE_REDIS_PORTS", "6391-6399").split("-")
REDIS_PORTS = range(int(_FIRST), int(_LAST) + 1)
PG_PORT = int(os.environ.get("TEST_PRIVATE_PG_PORT", "5491"))  # the private cluster's


def pings(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class PrivateRedis:
    """A redis-server of the test's own, that keeps nothing across a restart."""

    def __init__(self) -> None:
        self.port = next(port for port in REDIS_PORTS if port_is_free(port))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        wait_for(lambda: pings(client), timeout=30, what="the private Redis to start")
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


def as_postgres_user() -> list[str]:
    """initdb and postgres refuse to run as root: run them as ``postgres`` then."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (initdb, ``pg_ctl``), so that it may be
    restarted."""

    def __init__(self, directory: Path, port: int) -> None:
        assert PG_BIN is not None
        self.bin: Path = PG_BIN
        self.directory, self.port = directory, port
        self.data = directory / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/smartup"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [
                *as_postgres_user(),
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.directory / "log"),
                "-w",
                *args,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        subprocess.run(
            [*as_postgres_user(), str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._pg_ctl("-o", options, "start")
        admin = psycopg2.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE smartup")
        admin.close()
        apply_migrations(self.url)

    def restart_immediately(self) -> None:
        self._pg_ctl("-m", "immediate", "restart")

    def destroy(self) -> None:
        subprocess.run(
            [
                *as_postgres_user(),
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=120,
        )


# -- the dashboard process --------------------------------------------------------------

DASHBOARD_USERNAME, DASHBOARD_PASSWORD = "ops", "dash-Pa55-word"


def dashboard_env(**extra: str) -> dict[str, str]:
    environ = without_our_settings("RQ_DASHBOARD_", "PORT")
    environ.update({"REDIS_URL": REDIS_URL, "PYTHONPATH": str(ROOT), **extra})
    return environ


def start_dashboard(*args: str, environ: dict[str, str]) -> subprocess.Popen[str]:
    """``python dashboard.py ARGS``, until stopped."""
    return subprocess.Popen(
        [sys.executable, "dashboard.py", *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def get(url: str, *, auth: tuple[str, str] | None = None) -> tuple[int, str]:
    """GET ``url`` (with Basic ``auth``): its status and body, errors included."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def serving(base: str) -> Callable[[], bool]:
    """A condition for :func:`wait_for`: something answers HTTP at ``base``."""

    def ready() -> bool:
        try:
            get(base + "/")
        except OSError:
            return False
        return True

    return ready


# -- a webhook on loopback --------------------------------------------------------------


class Webhook:
    """A tiny HTTP server on loopback that records the JSON posted to it; with
    ``hang=True`` it accepts and never answers."""

    def __init__(self, *, hang: bool = False, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                if hang:
                    hook.release.wait(120)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# -- a shop with the whole catalogue ----------------------------------------------


EVERY_STREAM_SETTINGS: dict[str, Any] = {
    "sync_streams": declared_names(),
    "smartup_stock_conditions": PRODUCT_CONDITIONS,
}
"""Settings of a run that syncs every declared stream, and stock of every condition."""


def whole_shop() -> SmartUpSimulator:
    """A simulator (not started) with the whole catalogue: 100 products, 40 orders, the
    groups, priced price types, 3 warehouses, and 350 stock rows of the first 70 products
    (several per product, in every condition)."""
    account = generate_account(
        products=100,
        orders=40,
        today=TODAY,
        price_types=coded_price_types(),
        stocked_products=70,  # 30 without
        stock_rows=350,
    )
    return SmartUpSimulator(
        **account.as_kwargs(),
        user=USER,
        password=PASSWORD,
        today=TODAY,
    )


def run_with_every_stream(
    sim: SmartUpSimulator, url: str, kind: str, *, full: bool = False, **overrides: Any
) -> RunOutcome:
    """A run of ``kind`` against ``sim`` into ``url`` with every declared stream enabled
    (unless ``overrides`` of the settings say otherwise), its outcome; afterwards the
    models are bound to ``url`` again (the run closed their connection)."""
    values: dict[str, Any] = {"sync_streams": declared_names(), **overrides}
    outcome = run_sync(
        RunRequest(
            kind=kind,
            settings=settings_for(sim, url, **values),
            today=TODAY,
            retry=FAST_RETRY,
            full=full,
        )
    )
    open_database(url)
    return outcome


def fill(sim: SmartUpSimulator, url: str, kind: str = "full") -> None:
    """A run of ``kind`` with every declared stream enabled and stock of every condition."""
    settings = settings_for(sim, url, **EVERY_STREAM_SETTINGS)
    outcome = run_sync(RunRequest(kind=kind, settings=settings, today=TODAY, retry=FAST_RETRY))
    # A price entry of a product without a code names no product: rejected, the rest stored
    codeless = sum(len(e["price_type"]) for e in sim.prices if not e["inventory_code"])
    assert [(r.stream, r.error, r.rejected) for r in outcome.results if r.rejected or r.error] == (
        [("prices", None, codeless)] if codeless and kind in ("full", "prices") else []
    )
    assert outcome.status == ("PARTIAL" if codeless and kind in ("full", "prices") else "SUCCESS")
