"""The optional ``dashboard`` process, started for real: its refusal without credentials
beyond loopback, Basic auth, our queues and a job's progress on its pages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jobs.kinds import queue_for
from jobs.processes.queueing import enqueue_sync
from tests.helpers import (
    DASHBOARD_PASSWORD,
    DASHBOARD_USERNAME,
    REDIS_URL,
    ROOT,
    dashboard_env,
    free_port,
    get,
    serving,
    settings_for,
    start_dashboard,
    stop,
    wait_for,
)

PRODUCTS_QUEUE = queue_for("products")
ORDERS_QUEUE = queue_for("orders")

pytest.importorskip(
    "rq_dashboard",
    reason="rq-dashboard is not installed: pip install -r requirements-dashboard.txt",
)

AUTH = (DASHBOARD_USERNAME, DASHBOARD_PASSWORD)


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
        env=dashboard_env(RQ_DASHBOARD_USERNAME=DASHBOARD_USERNAME),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert half.returncode == 2 and "RQ_DASHBOARD_PASSWORD" in half.stderr


@pytest.mark.slow
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
    process = start_dashboard(
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        environ=dashboard_env(
            RQ_DASHBOARD_USERNAME=DASHBOARD_USERNAME, RQ_DASHBOARD_PASSWORD=DASHBOARD_PASSWORD
        ),
    )
    try:
        wait_for(serving(base), timeout=60, what="the dashboard to listen")
        assert get(base + "/")[0] == 401
        assert get(base + "/0/data/queues.json")[0] == 401
        assert get(base + "/static/js/jquery-3.5.1.min.js")[0] == 401
        assert get(base + "/", auth=(DASHBOARD_USERNAME, "wrong"))[0] == 401
        assert get(base + "/", auth=("someone", DASHBOARD_PASSWORD))[0] == 401

        status, page = get(base + "/", auth=AUTH)
        assert status == 200 and "<title>RQ dashboard</title>" in page
        status, body = get(base + "/0/data/queues.json", auth=AUTH)
        names = {queue["name"] for queue in json.loads(body)["queues"]}
        assert status == 200 and {PRODUCTS_QUEUE, ORDERS_QUEUE} <= names
        status, body = get(f"{base}/0/data/job/{job.id}.json", auth=AUTH)
        assert status == 200
        meta = json.loads(json.loads(body)["metadata"])
        assert meta["progress"]["request"] == "orders export, filial 100, window 2/5"
        assert get(f"{base}/0/view/job/{job.id}", auth=AUTH)[0] == 200
        status, body = get(
            f"{base}/0/data/jobs/{ORDERS_QUEUE}/queued/8/asc/1.json",
            auth=AUTH,
        )
        assert status == 200 and [j["id"] for j in json.loads(body)["jobs"]] == [job.id]
        assert get(f"{base}/0/data/workers.json", auth=AUTH)[0] == 200
    finally:
        output = stop(process)
    assert DASHBOARD_PASSWORD not in output and '"dashboard.start"' in output


@pytest.mark.slow
def test_on_loopback_the_dashboard_may_run_without_credentials(redis):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_dashboard("--port", str(port), environ=dashboard_env())
    try:
        wait_for(serving(base), timeout=60, what="the dashboard to listen")
        assert get(base + "/")[0] == 200
    finally:
        stop(process)
