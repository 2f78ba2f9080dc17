"""``SMARTUP_RETRY_SECONDS`` bounds what an export spends on retries, waits included: a wait
that would end past it is never started, and the run fails instead."""

from __future__ import annotations

import socket
import time

from structlog.testing import capture_logs

from jobs.logs import configure_logging
from jobs.simulator import Fault
from jobs.tasks import run_sync
from tests.conftest import settings_for

BUDGET_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 10  # SmartUpClient's; one request may be under way at the bound


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_host_fails_within_the_budget_and_no_wait_crosses_it(pg, simulator):
    configure_logging()
    settings = settings_for(
        simulator,
        pg,
        smartup_base_url=f"http://127.0.0.1:{_closed_port()}",
        smartup_retry_seconds=BUDGET_SECONDS,
    )
    started = time.monotonic()
    with capture_logs() as logs:
        outcome = run_sync("products", settings=settings)
    took = time.monotonic() - started
    assert outcome.status == "FAILED", outcome
    waits = [e["wait_s"] for e in logs if e["event"] == "smartup.retry"]
    assert len(waits) >= 2, logs  # it did retry, at both levels or one
    assert sum(waits) <= BUDGET_SECONDS, waits
    assert took < BUDGET_SECONDS + CONNECT_TIMEOUT_SECONDS, (
        f"the run failed only after {took:.1f} s, waits {waits}"
    )


def test_a_retry_after_beyond_the_budget_fails_at_once_without_waiting(pg, simulator):
    configure_logging()
    simulator.add_fault("products", Fault(status=503, headers={"Retry-After": "60"}), times=50)
    settings = settings_for(simulator, pg, smartup_retry_seconds=BUDGET_SECONDS)
    with capture_logs() as logs:
        outcome = run_sync("products", settings=settings)
    assert outcome.status == "FAILED", outcome
    assert "503" in (outcome.error or ""), outcome
    assert [e for e in logs if e["event"] == "smartup.retry"] == []
    assert [r.status for r in simulator.requests if r.endpoint == "products"] == [503]
