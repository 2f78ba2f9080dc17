"""The page of the day at the dashboard's ``/sync`` (and ``/sync.json``), behind the same
Basic auth, served by the real ``dashboard.py`` process, and loaded in headless Chromium
(skipped, saying so, where Chromium is not installed: ``apt-get install chromium``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest

from jobs.day.state import record_limits
from jobs.processes.scheduler import make_scheduler, register
from jobs.run.sync import RunRequest, run_sync
from jobs.simulator import Fault
from tests.helpers import (
    DASHBOARD_PASSWORD,
    DASHBOARD_USERNAME,
    FAST_RETRY,
    PASSWORD,
    TODAY,
    dashboard_env,
    free_port,
    get,
    serving,
    settings_for,
    start_dashboard,
    stop,
    wait_for,
)

AUTH = (DASHBOARD_USERNAME, DASHBOARD_PASSWORD)
CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)


@pytest.fixture
def a_day(pg, simulator, redis):
    """A day to show: the plan registered, one full run that succeeded, one orders run
    that failed (SmartUp refused the login), SmartUp's quotas as seen."""
    settings = settings_for(simulator, pg)
    register(make_scheduler(settings, redis), settings)
    assert (
        run_sync(RunRequest(kind="full", settings=settings, today=TODAY, retry=FAST_RETRY)).status
        == "SUCCESS"
    )
    simulator.add_fault("orders", Fault(status=401), times=10)
    failed = run_sync(RunRequest(kind="orders", settings=settings, today=TODAY, retry=FAST_RETRY))
    assert failed.status == "FAILED"
    record_limits(
        "documents",  # the pool orders count in
        {"limit_quant": "500", "request_quant": "370", "left_limit_quant": "130"},
        day=TODAY,
    )
    return pg


@pytest.fixture
def dashboard(a_day):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_dashboard(
        "--port",
        str(port),
        environ=dashboard_env(
            RQ_DASHBOARD_USERNAME=DASHBOARD_USERNAME,
            RQ_DASHBOARD_PASSWORD=DASHBOARD_PASSWORD,
            DATABASE_URL=a_day,
        ),
    )
    try:
        wait_for(serving(base), timeout=60, what="the dashboard to listen")
        yield base
    finally:
        stop(process)


@pytest.mark.slow
def test_the_page_of_the_day_behind_the_dashboards_auth(dashboard):
    assert get(dashboard + "/sync")[0] == 401
    assert get(dashboard + "/sync.json")[0] == 401
    assert get(dashboard + "/sync", auth=(DASHBOARD_USERNAME, "wrong"))[0] == 401

    status, page = get(dashboard + "/sync", auth=AUTH)
    assert status == 200
    for shown in ("Streams", "Quota today", "Last runs", "products", "orders", "FAILED"):
        assert shown in page, shown
    assert page.count("<svg") == 2  # a bar per pool, drawn by the server
    assert "orders: SmartUp" in page  # the failed run's error line
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing fetched
    assert "<script" not in page and PASSWORD not in page

    status, body = get(dashboard + "/sync.json", auth=AUTH)
    overview = json.loads(body)
    assert status == 200 and sorted(overview["kinds"]) == ["orders", "products"]
    orders = overview["kinds"]["orders"]
    assert orders["last_run"]["status"] == "FAILED" and orders["plan"]["interval_used_s"] == 600
    assert orders["quota"]["used"] == 370 and orders["next_run_at"] is not None
    assert overview["kinds"]["products"]["last_success"]["inserted"] == 100


@pytest.mark.slow
def test_without_a_database_the_page_says_what_is_missing(redis):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_dashboard("--port", str(port), environ=dashboard_env())
    try:
        wait_for(serving(base), timeout=60, what="the dashboard to listen")
        status, body = get(base + "/sync")
        assert status == 503 and "DATABASE_URL" in body
    finally:
        stop(process)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_page_in_headless_chromium(dashboard, tmp_path):
    assert CHROMIUM is not None
    credentials = f"{quote(DASHBOARD_USERNAME)}:{quote(DASHBOARD_PASSWORD)}"
    url = f"http://{credentials}@{dashboard[len('http://') :]}/sync"
    browser = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # we run as root
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Quota today" in dom.stdout and dom.stdout.count("<svg") == 2
    assert "FAILED" in dom.stdout

    screenshot = tmp_path / "sync-page.png"
    shot = subprocess.run(
        [
            *browser,
            "--hide-scrollbars",
            "--window-size=1280,720",
            f"--screenshot={screenshot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000  # a page, not a blank
    if keep := os.environ.get("SYNC_PAGE_SCREENSHOT"):  # e.g. docs/sync-page.png
        Path(keep).write_bytes(png)
