"""Errors in Sentry, when ``SENTRY_DSN`` is set (and nothing at all when it is not).

:func:`start` turns on sentry-sdk with its RQ integration in the ``worker``, the
``scheduler`` and ``python -m jobs sync``; without a DSN it imports nothing. The job
(:mod:`jobs.processes.job`) reports each run once it ends (:func:`report_run`): a FAILED
run sends one error event, a PARTIAL run one warning, each tagged ``run_type``,
``run_id`` and ``attempt`` with the run's error line as its message. An exception
reported this way is marked, and the RQ integration's own event for it is dropped, so a
failed job is one event, not two.

Nothing secret leaves: the message is the run's error line (already masked), events
carry no local variables and no request data, and every string of every event is
masked for the settings' secrets before it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from jobs.run.rows import FAILED, PARTIAL

REPORTED = "_smartup_sync_reported"  # set on an exception a run already reported
_secrets: tuple[str, ...] = ()
_started = False


def start(dsn: str | None, *, secrets: Sequence[str] = (), process: str) -> bool:
    """Turn on Sentry for this process when ``dsn`` is set; return whether it is on."""
    global _secrets, _started
    if not dsn:
        return False
    # optional: the sentry extra, imported only once a DSN asks for it
    import sentry_sdk  # noqa: PLC0415
    from sentry_sdk.integrations.rq import RqIntegration  # noqa: PLC0415

    _secrets = tuple(s for s in secrets if len(s) >= 4)
    sentry_sdk.init(
        dsn=dsn,
        integrations=[RqIntegration()],
        release=_release(),
        send_default_pii=False,
        include_local_variables=False,
        before_send=_before_send,
        server_name=process,
    )
    _started = True
    return True


def _release() -> str | None:
    try:
        return f"smartup-sync@{version('smartup-sync')}"
    except PackageNotFoundError:
        return None  # run from a checkout that was never installed


def report_run(
    *,
    run_type: str,
    run_id: int | None,
    attempt: int,
    status: str,
    error: str | None,
    error_object: BaseException | None = None,
) -> None:
    """One event for a FAILED (error) or PARTIAL (warning) run; nothing otherwise, and
    nothing when Sentry is off. ``error_object``, when the run ends by raising it, is
    marked so that the RQ integration does not send it a second time."""
    if not _started or status not in (FAILED, PARTIAL):
        return
    import sentry_sdk  # optional: the sentry extra (start() imported it already)  # noqa: PLC0415

    if error_object is not None:
        setattr(error_object, REPORTED, True)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("run_type", run_type)
        scope.set_tag("run_id", str(run_id) if run_id is not None else "none")
        scope.set_tag("attempt", str(attempt))
        scope.set_tag("status", status)
        scope.set_context(
            "run", {"run_type": run_type, "run_id": run_id, "attempt": attempt, "error": error}
        )
        scope.fingerprint = ["smartup-sync", run_type, status]
        sentry_sdk.capture_message(
            f"smartup-sync {run_type} run {status}: {error or 'no error line'}",
            level="error" if status == FAILED else "warning",
        )
    sentry_sdk.flush(timeout=5)


def _before_send(event: Any, hint: dict[str, Any]) -> Any:
    """Drop what a run already reported; mask every secret in what is left."""
    exc_info = hint.get("exc_info")
    if exc_info and getattr(exc_info[1], REPORTED, False):
        return None  # the run sent its own event for this
    if not _secrets:
        return event
    text = json.dumps(event, default=str)
    for secret in _secrets:
        text = text.replace(json.dumps(secret)[1:-1], "***")
    return json.loads(text)
