"""Alerts (:mod:`jobs.watching.alerts`), called directly on real PostgreSQL with a webhook on
loopback: on changes of state only (ok, failed, stale), what each says, and a webhook that
fails never failing the caller nor showing its URL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from jobs.logs import configure_logging, get_logger
from jobs.models import AlertState, SyncRun
from jobs.pipeline.engine import StreamResult
from jobs.settings import Settings
from jobs.watching.alerts import (
    FAILING,
    OK,
    STALE,
    alert_after_run,
    alert_stale,
    change_state,
    send,
)
from tests.helpers import PASSWORD, Webhook, free_port, offline_settings

configure_logging()  # now: configuring later would undo capture_logs

NOW = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def settings_with(pg: str, url: str | None) -> Settings:
    return offline_settings(pg, sync_alert_webhook_url=url)


def ended_run(kind: str, status: str, *, error: str | None = None, ago: timedelta) -> SyncRun:
    finished = NOW - ago
    return SyncRun.create(
        run_type=kind,
        status=status,
        started_at=finished - timedelta(minutes=1),
        finished_at=finished,
        error_message=error,
    )


def after_run(
    run: SyncRun, kinds: tuple[str, ...], results: list[StreamResult], settings: Settings
) -> tuple[list[Any], list[Any]]:
    with capture_logs() as logs:
        alerts = alert_after_run(run, kinds, results, settings=settings, log=get_logger())
    return alerts, logs


def test_a_state_changes_once_and_says_the_state_it_left(pg):
    assert change_state("orders", OK, run_id=None, now=NOW) is None  # never seen: ok already
    assert change_state("orders", FAILING, run_id=1, now=NOW) == OK
    assert change_state("orders", FAILING, run_id=2, now=NOW) is None  # no change
    assert change_state("orders", STALE, run_id=None, now=NOW) == FAILING
    assert change_state("orders", OK, run_id=3, now=NOW) == STALE
    assert change_state("products", FAILING, run_id=4, now=NOW) == OK  # a kind of its own
    rows = {row.kind: (row.state, row.run_id) for row in AlertState.select()}
    assert rows == {"orders": (OK, 3), "products": (FAILING, 4)}


def test_a_failure_alerts_once_and_the_recovery_once(pg, webhook):
    settings = settings_with(pg, webhook.url)
    ended_run("orders", "SUCCESS", ago=timedelta(hours=2))
    first = ended_run("orders", "FAILED", error=f"orders: 401 for {PASSWORD}", ago=timedelta(0))
    failed = [StreamResult(stream="orders", error=f"SmartUp refused the login {PASSWORD}")]

    alerts, logs = after_run(first, ("orders",), failed, settings)
    [alert] = alerts
    assert (alert.kind, alert.status, alert.run_id) == ("orders", "FAILED", first.id)
    assert alert.error == "SmartUp refused the login ***"  # the password masked
    [posted] = webhook.received
    assert posted == alert.payload()
    assert posted["last_success_age_s"] is not None and posted["text"].startswith(
        "smartup-sync: orders FAILED: SmartUp refused the login *** (last success "
    )
    assert [(e["event"], e["sent"]) for e in logs if e["event"] == "alert.changed"] == [
        ("alert.changed", True)
    ]

    again = ended_run("orders", "FAILED", error="orders: still", ago=timedelta(0))
    assert after_run(again, ("orders",), failed, settings)[0] == []  # no change: no alert
    assert len(webhook.received) == 1

    healed = ended_run("orders", "SUCCESS", ago=timedelta(0))
    [recovered], _ = after_run(healed, ("orders",), [StreamResult(stream="orders")], settings)
    assert (recovered.status, recovered.error, recovered.run_id) == ("RECOVERED", None, healed.id)
    assert [p["status"] for p in webhook.received] == ["FAILED", "RECOVERED"]
    assert PASSWORD not in str(webhook.received)


def test_each_kind_of_a_run_is_judged_by_its_own_part(pg, webhook):
    settings = settings_with(pg, webhook.url)
    partly = ended_run("full", "PARTIAL", error="orders: 503", ago=timedelta(0))
    results = [StreamResult(stream="products"), StreamResult(stream="orders", error="503")]
    alerts, _ = after_run(partly, ("products", "orders"), results, settings)
    assert [(a.kind, a.status, a.error) for a in alerts] == [("orders", "FAILED", "503")]
    # a kind without a part in a failed run failed with the run, for the run's reason
    lost = ended_run("products", "FAILED", error="interrupted", ago=timedelta(0))
    alerts, _ = after_run(lost, ("products",), [], settings)
    assert [(a.kind, a.status, a.error) for a in alerts] == [("products", "FAILED", "interrupted")]


def test_without_a_webhook_a_change_is_logged_not_sent(pg):
    settings = settings_with(pg, None)
    run = ended_run("orders", "FAILED", error="boom", ago=timedelta(0))
    alerts, logs = after_run(
        run, ("orders",), [StreamResult(stream="orders", error="boom")], settings
    )
    assert [a.status for a in alerts] == ["FAILED"]
    changed = [e for e in logs if e["event"] == "alert.changed"]
    assert [(e["kind"], e["status"], e["sent"]) for e in changed] == [("orders", "FAILED", False)]


def test_a_kind_that_went_quiet_alerts_stale_once(pg, webhook):
    # orders' interval is 600 s with the defaults: stale after 3 x 600 s = 30 min
    settings = settings_with(pg, webhook.url)
    success = ended_run("orders", "SUCCESS", ago=timedelta(minutes=31))

    def stale() -> list[Any]:
        with capture_logs():
            return alert_stale(settings, log=get_logger(), now=NOW)

    [alert] = stale()  # products never succeeded: nothing to go stale yet (check says so)
    assert (alert.kind, alert.status, alert.run_id) == ("orders", "STALE", success.id)
    assert alert.payload()["last_success_age_s"] == 31 * 60
    assert alert.payload()["text"] == (
        "smartup-sync: orders STALE: no successful sync for more than three intervals "
        "(last success 31 min ago)"
    )
    assert stale() == []  # once
    assert [p["status"] for p in webhook.received] == ["STALE"]


def test_a_failed_kind_does_not_turn_stale(pg, webhook):
    settings = settings_with(pg, webhook.url)
    ended_run("orders", "SUCCESS", ago=timedelta(hours=3))
    change_state("orders", FAILING, run_id=None, now=NOW - timedelta(hours=2))
    with capture_logs():
        assert alert_stale(settings, log=get_logger(), now=NOW) == []
    assert webhook.received == []


def test_a_webhook_that_fails_is_logged_without_its_url_and_never_raises(pg):
    settings = settings_with(pg, None)
    refusing = Webhook(status=500)
    hanging = Webhook(hang=True)
    closed = f"http://127.0.0.1:{free_port()}/hooks/secret-token"
    try:
        with capture_logs() as logs:
            log = get_logger()
            assert send(refusing.url, {"kind": "orders"}, settings=settings, log=log) is False
            assert (
                send(hanging.url, {"kind": "orders"}, settings=settings, log=log, timeout=0.5)
                is False
            )
            assert send(closed, {"kind": "orders"}, settings=settings, log=log) is False
    finally:
        refusing.close()
        hanging.close()
    failures = [e["error"] for e in logs if e["event"] == "alert.failed"]
    assert failures == [
        "the webhook answered 500",
        "no answer within 0.5 s",
        "ConnectionError",
    ]
    assert "secret-token" not in str(logs)
