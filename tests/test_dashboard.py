"""The optional ``dashboard`` process, started for real: its refusal without credentials
beyond loopback, Basic auth, our queues and a job's progress on its pages."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from jobs.queueing import ORDERS_QUEUE, PRODUCTS_QUEUE, enqueue_sync
from tests.conftest import REDIS_URL, settings_for
from tests.test_queue import ROOT, stop, wait_for

pytest.importorskip(
    "rq_dashboard",
    reason="rq-dashboard is not installed: pip install -r requirements-dashboard.txt",
)

USERNAME, PASSWORD = "ops", "dash-Pa55-word"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dashboard_env(**extra: str) -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SMARTUP_", "SYNC_", "DATABASE_", "REDIS_", "RQ_DASHBOARD_", "PORT"))
    }
    environ.update({"REDIS_URL": REDIS_URL, "PYTHONPATH": str(ROOT), **extra})
    return environ


def start(*args: str, environ: dict[str, str]) -> subprocess.Popen[str]:
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
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def serving(base: str) -> Any:
    def ready() -> bool:
        try:
            get(base + "/")
        except OSError:
            return False
        return True

    return ready


def test_the_dashboard_refuses_to_listen_beyond_loopback_without_credentials():
    done = subprocess.run(
        [sys.executable, "dashboard.py", "--bind", "0.0.0.0", "--port", str(free_port())],
        cwd=ROOT,
        env=dashboard_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "RQ_DASHBOARD_USERNAME" in line and "RQ_DASHBOARD_PASSWORD" in line

    half = subprocess.run(
        [sys.executable, "dashboard.py", "--port", str(free_port())],
        cwd=ROOT,
        env=dashboard_env(RQ_DASHBOARD_USERNAME=USERNAME),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert half.returncode == 2 and "RQ_DASHBOARD_PASSWORD" in half.stderr


def test_the_dashboard_asks_for_credentials_and_shows_queues_and_progress(pg, simulator, redis):
    job = enqueue_sync("orders", settings=settings_for(simulator, pg, redis_url=REDIS_URL))
    job.meta["progress"] = {
        "kind": "orders",
        "request": "orders export, filial 100, window 2/5",
        "received": 4000,
    }
    job.save_meta()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        environ=dashboard_env(RQ_DASHBOARD_USERNAME=USERNAME, RQ_DASHBOARD_PASSWORD=PASSWORD),
    )
    try:
        wait_for(serving(base), timeout=60, what="the dashboard to listen")
        assert get(base + "/")[0] == 401
        assert get(base + "/0/data/queues.json")[0] == 401
        assert get(base + "/static/js/jquery-3.5.1.min.js")[0] == 401
        assert get(base + "/", auth=(USERNAME, "wrong"))[0] == 401
        assert get(base + "/", auth=("someone", PASSWORD))[0] == 401

        status, page = get(base + "/", auth=(USERNAME, PASSWORD))
        assert status == 200 and "<title>RQ dashboard</title>" in page
        status, body = get(base + "/0/data/queues.json", auth=(USERNAME, PASSWORD))
        names = {queue["name"] for queue in json.loads(body)["queues"]}
        assert status == 200 and {PRODUCTS_QUEUE, ORDERS_QUEUE} <= names
        status, body = get(f"{base}/0/data/job/{job.id}.json", auth=(USERNAME, PASSWORD))
        assert status == 200
        meta = json.loads(json.loads(body)["metadata"])
        assert meta["progress"]["request"] == "orders export, filial 100, window 2/5"
        assert get(f"{base}/0/view/job/{job.id}", auth=(USERNAME, PASSWORD))[0] == 200
        status, body = get(
            f"{base}/0/data/jobs/{ORDERS_QUEUE}/queued/8/asc/1.json", auth=(USERNAME, PASSWORD)
        )
        assert status == 200 and [j["id"] for j in json.loads(body)["jobs"]] == [job.id]
        assert get(f"{base}/0/data/workers.json", auth=(USERNAME, PASSWORD))[0] == 200
    finally:
        output = stop(process)
    assert PASSWORD not in output and '"dashboard.start"' in output


def test_on_loopback_the_dashboard_may_run_without_credentials(redis):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start("--port", str(port), environ=dashboard_env())
    try:
        wait_for(serving(base), timeout=60, what="the dashboard to listen")
        assert get(base + "/")[0] == 200
    finally:
        stop(process)
