"""Alerts to a webhook (``SYNC_ALERT_WEBHOOK_URL``) when a kind turns FAILED or stale,
and when it recovers: on changes of state only, never once per failed run.

The state each kind was last reported in (``ok``, ``failed``, ``stale``) lives in
``smartup_sync_alerts`` (PostgreSQL, so a Redis restart does not repeat an alert); a kind
never seen is ``ok``. A change is claimed in one transaction (the row locked) before the
alert goes out, so two processes never send the same one. The POST runs on a thread of
its own and is waited for at most :data:`TIMEOUT_SECONDS`: a webhook that fails or hangs
is logged (``alert.failed``, without its URL) and never fails or holds up the sync.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from jobs.clock import utc_now
from jobs.models import AlertState, database, is_postgres
from jobs.run.rows import FAILED, last_success_of, one_line
from jobs.settings import Settings
from jobs.watching.health import is_late, stale_limits

OK, FAILING, STALE = "ok", "failed", "stale"
TIMEOUT_SECONDS = 5.0
STATUS_FOR = {FAILING: "FAILED", STALE: "STALE", OK: "RECOVERED"}


@dataclass(frozen=True)
class Alert:
    kind: str
    status: str  # FAILED, STALE or RECOVERED
    error: str | None
    run_id: int | None
    last_success_at: datetime | None
    now: datetime

    def payload(self) -> dict[str, Any]:
        """JSON body: the fields, plus ``text`` for chat webhooks (Slack's incoming
        webhooks post ``text`` as the message)."""
        age = (
            round((self.now - self.last_success_at).total_seconds())
            if self.last_success_at
            else None
        )
        text = f"smartup-sync: {self.kind} {self.status}"
        if self.error:
            text += f": {self.error}"
        text += (
            f" (last success {_age(age)} ago)" if age is not None else " (no successful sync yet)"
        )
        return {
            "kind": self.kind,
            "status": self.status,
            "error": self.error,
            "run_id": self.run_id,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "last_success_age_s": age,
            "text": text,
        }


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"


def change_state(kind: str, state: str, *, run_id: int | None, now: datetime) -> str | None:
    """Set ``kind``'s state; return the state it leaves, or None when it did not change."""
    with database.atomic():
        query = AlertState.select().where(AlertState.kind == kind)
        # SQLite has no FOR UPDATE (peewee refuses it): its one writer at a time locks anyway
        locked = query.for_update() if is_postgres(_bound(database)) else query
        row = locked.first()
        if row is None:
            AlertState.create(kind=kind, state=state, run_id=run_id, changed_at=now)
            return OK if state != OK else None
        if row.state == state:
            return None
        old: str = row.state
        row.state, row.run_id, row.changed_at = state, run_id, now
        row.save()
        return old


def _bound(db: Any) -> Any:
    return db.obj if hasattr(db, "obj") else db


def alert_after_run(
    run: Any, kinds: Sequence[str], results: Sequence[Any], *, settings: Settings, log: Any
) -> list[Alert]:
    """After a run of ``kinds`` ended: a kind whose part failed turns ``failed``, one
    that succeeded turns ``ok``. Never raises."""
    try:
        now = utc_now()
        alerts = []
        for kind in kinds:
            part = next((r for r in results if r.stream == kind), None)
            failed = run.status == FAILED or part is None or bool(part.error)
            state = FAILING if failed else OK
            left = change_state(kind, state, run_id=run.id, now=now)
            if left is None or (state == OK and left == OK):
                continue
            success = last_success_of(kind)
            error = (part.error if part and part.error else run.error_message) if failed else None
            alerts.append(
                Alert(
                    kind=kind,
                    status=STATUS_FOR[state],
                    error=one_line(error, secrets=settings.secrets) if error else None,
                    run_id=run.id,
                    last_success_at=success.finished_at if success else None,
                    now=now,
                )
            )
        send_all(alerts, settings=settings, log=log)
        return alerts
    except Exception as error:
        log.error(
            "alert.failed",
            error=one_line(f"{type(error).__name__}: {error}", secrets=settings.secrets),
        )
        return []


def alert_stale(settings: Settings, *, log: Any, now: datetime | None = None) -> list[Alert]:
    """A kind that is ``ok`` but has no success for too long turns ``stale`` (a kind
    already ``failed`` stays so: its alert said it is down; one that never succeeded has
    nothing to go stale yet: ``check`` says so)."""
    now = now or utc_now()
    alerts = []
    for kind, limit in stale_limits(settings).items():
        success = last_success_of(kind)
        if success is None or not is_late(success, limit, now=now):
            continue
        row = AlertState.get_or_none(AlertState.kind == kind)
        if row is not None and row.state != OK:
            continue
        if change_state(kind, STALE, run_id=None, now=now) is None:
            continue
        alerts.append(
            Alert(
                kind=kind,
                status="STALE",
                error="no successful sync for more than three intervals",
                run_id=success.id,
                last_success_at=success.finished_at,
                now=now,
            )
        )
    send_all(alerts, settings=settings, log=log)
    return alerts


def send_all(alerts: Sequence[Alert], *, settings: Settings, log: Any) -> None:
    url = settings.sync_alert_webhook_url
    for alert in alerts:
        sent = send(url, alert.payload(), settings=settings, log=log) if url else False
        log.info("alert.changed", kind=alert.kind, status=alert.status, sent=sent)


def send(
    url: str,
    payload: dict[str, Any],
    *,
    settings: Settings,
    log: Any,
    timeout: float = TIMEOUT_SECONDS,
) -> bool:
    """POST ``payload`` as JSON to ``url``; True when it answered 2xx within ``timeout``.
    The URL (a credential) never reaches the log."""
    outcome: dict[str, str] = {}

    def post() -> None:
        try:
            response = requests.post(url, json=payload, timeout=timeout)
            if response.status_code >= 300:
                outcome["error"] = f"the webhook answered {response.status_code}"
            else:
                outcome["ok"] = "yes"
        except requests.Timeout:  # the same as the join below running out first
            outcome["error"] = f"no answer within {timeout:g} s"
        except requests.RequestException as error:
            outcome["error"] = type(error).__name__

    thread = threading.Thread(target=post, name="alert", daemon=True)
    thread.start()
    thread.join(timeout)
    if "ok" in outcome:
        return True
    error = outcome.get("error", f"no answer within {timeout:g} s")
    log.warning(
        "alert.failed", kind=payload.get("kind"), error=one_line(error, secrets=settings.secrets)
    )
    return False
