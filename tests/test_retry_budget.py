"""``SMARTUP_RETRY_SECONDS`` bounds what an export spends on retries, waits included: a wait
that would end past it is never started, and the run fails instead. Asserted on the waits
the run logs (what it decided), not on a clock."""

from __future__ import annotations

from structlog.testing import capture_logs

from jobs.logs import configure_logging
from jobs.pipeline.smartup import RetryPolicy
from jobs.run.sync import RunRequest, run_sync
from jobs.simulator import Fault
from tests.helpers import free_port, settings_for

BUDGET_SECONDS = 5


def test_an_unreachable_host_fails_once_the_budget_allows_no_further_wait(pg, simulator):
    configure_logging()
    settings = settings_for(
        simulator,
        pg,
        smartup_base_url=f"http://127.0.0.1:{free_port()}",
        smartup_retry_seconds=BUDGET_SECONDS,
    )
    with capture_logs() as logs:
        outcome = run_sync(RunRequest(kind="products", settings=settings))
    assert outcome.status == "FAILED", outcome
    retries = [e for e in logs if e["event"] == "smartup.retry"]
    waits = [e["wait_s"] for e in retries]
    assert len(waits) >= 2, logs  # it did retry, at both levels or one
    assert sum(waits) <= BUDGET_SECONDS, waits  # no wait started crossed the budget
    # the budget ended it, not the attempts: the policy allows this many redos of the export
    redos = [e for e in retries if "request" in e]  # the export's level (the request's has none)
    assert len(redos) < RetryPolicy(total_seconds=BUDGET_SECONDS).attempts - 1, logs
    # the failure comes after the last retry, and names what could not be reached
    events = [e["event"] for e in logs]
    last_retry = max(n for n, event in enumerate(events) if event == "smartup.retry")
    assert "sync.error" in events[last_retry:], events
    assert "cannot reach SmartUp" in (outcome.error or ""), outcome


def test_a_retry_after_beyond_the_budget_fails_at_once_without_waiting(pg, simulator):
    configure_logging()
    simulator.add_fault("products", Fault(status=503, headers={"Retry-After": "60"}), times=50)
    settings = settings_for(simulator, pg, smartup_retry_seconds=BUDGET_SECONDS)
    with capture_logs() as logs:
        outcome = run_sync(RunRequest(kind="products", settings=settings))
    assert outcome.status == "FAILED", outcome
    assert "503" in (outcome.error or ""), outcome
    assert [e for e in logs if e["event"] == "smartup.retry"] == []
    assert [r.status for r in simulator.requests if r.endpoint == "products"] == [503]
