"""Errors in Sentry: ``SENTRY_DSN`` points at a loopback "Sentry" of the test's own (an
HTTP server that takes envelope POSTs), and the test reads what arrives. A FAILED run
sends one error event, a PARTIAL run one warning, from ``python -m jobs sync`` and from a
worker alike, tagged with the run and free of credentials; without ``SENTRY_DSN`` nothing
is imported."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jobs.models import SyncRun, open_database
from jobs.processes.queueing import enqueue_sync
from jobs.settings import SettingsError
from jobs.simulator import Fault
from tests.helpers import (
    PASSWORD,
    REDIS_URL,
    ROOT,
    env_for,
    finish,
    settings_for,
    settings_from,
    start_worker,
)

KEY = "0123456789abcdef0123456789abcdef"


class LoopbackSentry:
    """Takes what sentry-sdk sends (``POST /api/<project>/envelope/``) and keeps the
    events, and every raw body, for the test to read."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []
        sentry = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                sentry.bodies.append(body)
                sentry.events += _events_of(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def dsn(self) -> str:
        return f"http://{KEY}@127.0.0.1:{self.server.server_port}/42"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _events_of(envelope: bytes) -> list[dict[str, Any]]:
    """The ``event`` items of an envelope: a header line, then per item a header line
    and its payload."""
    lines = envelope.split(b"\n")
    events, index = [], 1
    while index < len(lines) and lines[index].strip():
        header = json.loads(lines[index])
        payload = lines[index + 1]
        if header.get("type") == "event":
            events.append(json.loads(payload))
        index += 2
    return events


@pytest.fixture
def sentry() -> Iterator[LoopbackSentry]:
    server = LoopbackSentry()
    yield server
    server.close()


def cli_sync(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs", "sync", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tags(event: dict[str, Any]) -> dict[str, str]:
    found = event.get("tags") or {}
    return dict(found) if isinstance(found, dict) else {k: v for k, v in found}


def last_run(url: str) -> SyncRun:
    open_database(url)
    run: SyncRun = SyncRun.select().order_by(SyncRun.id.desc()).get()
    return run


def no_secret_in(sentry: LoopbackSentry) -> None:
    for body in sentry.bodies:
        assert PASSWORD.encode() not in body
        assert KEY.encode() not in body.split(b"\n", 1)[1]  # only the envelope header holds it


def test_a_failed_run_from_the_command_line_sends_one_error_event(pg, simulator, sentry):
    simulator.add_fault("orders", Fault(status=401), times=10)
    done = cli_sync(env_for(simulator, pg, SENTRY_DSN=sentry.dsn), "orders")
    assert done.returncode == 1, done.stderr
    run = last_run(pg)
    assert run.status == "FAILED"
    [event] = sentry.events
    print("sentry event:", json.dumps({k: event.get(k) for k in ("level", "message", "tags")}))
    assert event["level"] == "error"
    assert (tags(event)["run_type"], tags(event)["run_id"], tags(event)["attempt"]) == (
        "orders",
        str(run.id),
        "1",
    )
    assert event["message"] == f"smartup-sync orders run FAILED: {run.error_message}"
    assert "401" in event["message"]
    no_secret_in(sentry)


def test_a_partial_run_sends_a_warning(pg, simulator, sentry):
    products = simulator.products
    products[10]["product_id"] = ""  # a record that cannot be stored: the run is PARTIAL
    simulator.set_products(products)
    done = cli_sync(env_for(simulator, pg, SENTRY_DSN=sentry.dsn), "products")
    assert done.returncode == 0, done.stderr
    run = last_run(pg)
    assert run.status == "PARTIAL"
    [event] = sentry.events
    assert event["level"] == "warning" and tags(event)["run_id"] == str(run.id)
    assert event["message"].startswith("smartup-sync products run PARTIAL")


def test_a_successful_run_sends_nothing(pg, simulator, sentry):
    done = cli_sync(env_for(simulator, pg, SENTRY_DSN=sentry.dsn), "products")
    assert done.returncode == 0, done.stderr
    time.sleep(0.5)  # anything sent would have been flushed before the process ended
    assert sentry.events == []


@pytest.mark.slow
def test_a_worker_sends_one_event_per_failed_job_attempt(pg, simulator, redis, sentry):
    settings = settings_for(simulator, pg, redis_url=REDIS_URL)
    simulator.add_fault("orders", Fault(status=401), times=10)
    job = enqueue_sync("orders", settings=settings)
    output = finish(start_worker(env_for(simulator, pg, SENTRY_DSN=sentry.dsn)))
    assert job.get_status(refresh=True) == "finished", output
    run = last_run(pg)
    [event] = sentry.events
    assert (tags(event)["run_type"], tags(event)["run_id"], tags(event)["attempt"]) == (
        "orders",
        str(run.id),
        "1",
    )
    assert event["level"] == "error" and "401" in event["message"]

    # A job that raises (its database is away): still one event, the run's own
    sentry.events.clear()
    broken = env_for(
        simulator,
        pg,
        SENTRY_DSN=sentry.dsn,
        DATABASE_URL=pg.rsplit("/", 1)[0] + "/no_such_database",
    )
    failing = enqueue_sync("products", settings=settings)
    failing.retries_left = 0  # its last attempt: RQ's integration reports such a failure too
    failing.save()
    output = finish(start_worker(broken))
    assert failing.get_status(refresh=True) == "failed", output
    [event] = sentry.events
    assert event["level"] == "error"
    assert tags(event)["run_type"] == "products" and tags(event)["run_id"] == "none"
    assert tags(event)["attempt"] == "3"
    assert "cannot connect to the database" in event["message"]
    no_secret_in(sentry)


def test_without_a_dsn_sentry_is_never_imported(pg, simulator):
    simulator.add_fault("orders", Fault(status=401), times=10)
    code = (
        "import sys; from jobs.processes.cli import main; status = main(['sync', 'orders']); "
        "print('sentry_sdk' in sys.modules, status)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env_for(simulator, pg),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.strip().splitlines()[-1] == "False 1", done.stderr


def test_the_dsn_is_a_checked_secret():
    base = {
        "DATABASE_URL": "postgresql://root@127.0.0.1/db",
        "SMARTUP_BASE_URL": "https://smartup.example",
        "SMARTUP_BASIC_USER": "user",
        "SMARTUP_BASIC_PASS": "pass-word",
    }
    for bad in ("not a url", f"http://{KEY}@sentry.example/42", "https://sentry.example/42"):
        with pytest.raises(SettingsError) as raised:
            settings_from({**base, "SENTRY_DSN": bad})
        assert raised.value.variable == "SENTRY_DSN" and bad not in str(raised.value)
    settings = settings_from({**base, "SENTRY_DSN": f"https://{KEY}@o1.ingest.example/42"})
    assert KEY in settings.secrets and KEY not in repr(settings)
    assert settings_from(base).sentry_dsn is None
