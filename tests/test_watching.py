"""What operators and the web app see: progress while a run works, ``sync_overview()``,
``check``, alerts to a webhook, and the CLI's ``enqueue --wait``. Real PostgreSQL, Redis
(our own database number), ``rq worker`` processes and the simulator over loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import psycopg2
import pytest
from redis import Redis
from structlog.testing import capture_logs

import jobs
from jobs.day.state import record_limits
from jobs.kinds import queue_for
from jobs.logs import configure_logging
from jobs.models import SyncRun, open_database
from jobs.pipeline.smartup import ExportRequest
from jobs.processes.cli import check
from jobs.processes.job import run_and_report
from jobs.processes.queueing import enqueue_sync
from jobs.processes.scheduler import PERIODIC_JOBS, make_scheduler, register
from jobs.run.progress import ProgressReporter, format_progress, request_label
from jobs.run.rows import RunProgressWriter, start_run
from jobs.run.sync import RunOutcome, RunRequest, run_sync
from jobs.settings import Settings
from jobs.simulator import Fault, SmartUpSimulator, generate_orders, generate_products
from tests.helpers import (
    FAST_RETRY,
    PASSWORD,
    REDIS_URL,
    ROOT,
    TODAY,
    USER,
    Webhook,
    env_for,
    finish,
    run_cli,
    settings_for,
    settings_from,
    start_worker,
    stop,
    wait_for,
    without_our_settings,
)

PRODUCTS_QUEUE = queue_for("products")
ORDERS_QUEUE = queue_for("orders")

configure_logging()  # now, not under capsys: its stream is closed after each test

# -- pure parts ----------------------------------------------------------------------


def _request(filial: str | None, window: bool) -> ExportRequest:
    filters = {"begin_modified_on": "01.11.2026", "end_modified_on": "07.11.2026"}
    return ExportRequest(
        name="orders" if window else "products",
        url="http://127.0.0.1/x",
        records_key="order",
        filters=filters if window else {},
        filial_id=filial,
        days=(date(2026, 11, 1), date(2026, 11, 7)) if window else None,
    )


def test_request_labels_count_windows_per_filial():
    requests = [_request(f, True) for f in ("101", "101", "102", "102", "102")]
    assert request_label(requests, 1) == "orders export, filial 101, window 2/2"
    assert request_label(requests, 2) == "orders export, filial 102, window 1/3"
    assert request_label([_request(None, False)], 0) == "products export"
    snapshot = {"request": "orders export, window 2/5", "received": 12345, "stream": "orders"}
    assert format_progress({**snapshot, "elapsed_s": 75.2}) == (
        "orders export, window 2/5: 12,345 orders received, 1:15"
    )
    assert format_progress(None) == "starting"


def test_the_reporter_publishes_and_a_failing_sink_costs_nothing():
    seen: list[dict[str, Any]] = []

    def broken(snapshot: dict[str, Any]) -> None:
        raise RuntimeError("Redis went away")

    requests = [_request("100", True), _request("100", True)]
    with (
        capture_logs() as logs,
        ProgressReporter(
            kind="orders", sinks=[broken, seen.append], every_seconds=0.05, log=_Log()
        ) as reporter,
    ):
        reporter.stream("orders", requests)
        reporter.request(0)
        reporter.received(2000)
        reporter.answered()
        reporter.request(1)
        reporter.received(500)
        reporter.request(1)  # the answer broke off: read again from the start
        reporter.received(700)
        wait_for(lambda: seen and seen[-1]["received"] == 2700, timeout=30, what="a publish")
    last = seen[-1]
    assert last["request"] == "orders export, filial 100, window 2/2"
    assert (last["request_no"], last["requests"], last["kind"]) == (2, 2, "orders")
    assert logs == []  # _Log collects instead
    assert _Log.events.count("sync.progress.error") == 1


class _Log:
    events: ClassVar[list[str]] = []

    def warning(self, event: str, **_: Any) -> None:
        _Log.events.append(event)


def test_the_run_row_shows_progress_written_inside_an_open_load_transaction(pg):
    """The loader holds a transaction per answer on the run's connection: the progress
    must be visible to others at once, and must survive that transaction's rollback."""
    db = open_database(pg)
    run = start_run("products")
    writer = RunProgressWriter(db, run.id)
    other = psycopg2.connect(pg.replace("postgresql://", "postgres://"))
    other.autocommit = True
    try:
        with pytest.raises(RuntimeError), db.atomic():
            db.execute_sql(
                "INSERT INTO smartup_sync_state (stream, filial_id, updated_at) "
                "VALUES ('products', '', now())"
            )
            writer({"request": "products export", "received": 4000})
            with other.cursor() as cursor:
                cursor.execute("SELECT progress FROM smartup_sync_runs WHERE id = %s", (run.id,))
                assert cursor.fetchone()[0]["received"] == 4000
            raise RuntimeError("the answer broke off")
        assert SyncRun.get_by_id(run.id).progress["received"] == 4000
    finally:
        writer.close()
        other.close()


# -- a slowed run, watched from outside -----------------------------------------------


@pytest.fixture
def month_simulator() -> Iterator[SmartUpSimulator]:
    """Orders over 30 days: every 7-day window of a 30-days-back run holds some."""
    products = generate_products(50)
    orders = generate_orders(300, products=products, today=TODAY, days=30, filial_ids=("100",))
    with SmartUpSimulator(products=products, orders=orders, user=USER, password=PASSWORD) as sim:
        yield sim


@pytest.mark.slow
def test_progress_in_meta_run_row_status_and_overview_during_a_slowed_run(
    pg, month_simulator, redis
):
    settings = settings_for(month_simulator, pg, redis_url=REDIS_URL)
    register(make_scheduler(settings, redis), settings)  # the plan the overview shows
    before = jobs.sync_overview(settings=settings, connection=redis)
    orders_before = before["kinds"]["orders"]
    assert orders_before.pop("plan")["interval_used_s"] == 600
    assert orders_before.pop("next_run_at") is not None  # registered just now
    assert orders_before == {
        "last_run": None,
        "last_success": None,
        "stale": True,
        "job": None,
        "running": None,
        "waiting": None,
        "quota": None,
        "data_age_s": None,  # never read: unknown
        "state": [],
    }
    assert before["queues"][ORDERS_QUEUE]["waiting"] == 0 and before["redis_error"] is None
    json.dumps(before)

    month_simulator.add_fault("orders", Fault(delay=2.0), times=5)  # each window waits 2 s
    job = enqueue_sync("orders", days_back=30, settings=settings)
    waiting = jobs.sync_overview(settings=settings, connection=redis)["kinds"]["orders"]["job"]
    assert (waiting["id"], waiting["status"], waiting["kind"]) == (job.id, "queued", "orders")

    worker = start_worker(env_for(month_simulator, pg))
    try:
        meta = wait_for(
            lambda: _progress_past_window_one(job.get_meta(refresh=True).get("progress")),
            timeout=90,
            what="the job's meta to show window 2/5 or later",
        )
        assert meta["request"].startswith("orders export, filial 100, window ")
        assert meta["request"].endswith("/5") and meta["received"] > 0

        row = wait_for(
            lambda: _progress_past_window_one(_running_progress(pg)),
            timeout=90,
            what="the RUNNING row to show window 2/5 or later",
        )
        assert row["kind"] == "orders" and row["received"] > 0

        status = run_cli("status", env=env_for(month_simulator, pg))
        assert status.returncode == 0, status.stderr
        assert "RUNNING: orders export, filial 100, window " in status.stdout, status.stdout
        print(status.stdout)  # the closing note quotes this

        second = enqueue_sync("orders", settings=settings)  # added: the first has started
        overview = jobs.sync_overview(settings=settings, connection=redis)
        during = overview["kinds"]["orders"]
        assert during["job"]["id"] == job.id and during["job"]["status"] == "started"
        assert during["running"] == during["job"]
        assert (during["waiting"]["id"], during["waiting"]["status"]) == (second.id, "queued")
        assert overview["queues"][ORDERS_QUEUE]["running"] == 1
        assert overview["queues"][ORDERS_QUEUE]["waiting"] == 1
        assert during["job"]["progress"]["request"].startswith("orders export")
        assert during["last_run"]["status"] == "RUNNING"
        assert during["last_run"]["progress"]["kind"] == "orders"
        json.dumps(during)
        second.cancel()  # the figures below are the first job's
    finally:
        output = finish(worker)
    assert job.get_status(refresh=True) == "finished", output
    after = jobs.sync_overview(settings=settings, connection=redis)["kinds"]["orders"]
    assert after["job"] is None and after["stale"] is False
    assert after["last_run"] == after["last_success"]
    assert after["last_success"]["status"] == "SUCCESS"
    assert after["last_success"]["received"] == 300 and after["last_success"]["age_s"] >= 0
    assert after["last_success"]["progress"] is None
    assert job.get_meta(refresh=True)["progress"]["received"] == 300  # the final figures


def _progress_past_window_one(progress: dict[str, Any] | None) -> dict[str, Any] | None:
    if progress and progress.get("request_no", 0) >= 2 and progress.get("received", 0) > 0:
        return progress
    return None


def _running_progress(url: str) -> dict[str, Any] | None:
    connection = psycopg2.connect(url.replace("postgresql://", "postgres://"))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT progress FROM smartup_sync_runs WHERE status = 'RUNNING'")
            row = cursor.fetchone()
            return row[0] if row else None
    finally:
        connection.close()


@pytest.mark.slow
def test_enqueue_prints_a_word_and_wait_follows_the_job_to_its_end(pg, simulator, redis):
    environ = env_for(simulator, pg)
    worker = start_worker(environ, burst=False)
    try:
        done = run_cli("enqueue", "products", "--wait", env=environ)
        assert done.returncode == 0, done.stderr
        assert "(queued)" in done.stdout and "JobStatus" not in done.stdout
        assert "run 1 SUCCESS" in done.stdout and "products  1         100" in done.stdout

        simulator.add_fault("products", Fault(status=401), times=5)
        failed = run_cli("enqueue", "products", "--wait", env=environ)
        assert failed.returncode == 1, failed.stdout
        assert "run 2 FAILED" in failed.stdout and "401" in failed.stderr
    finally:
        stop(worker)


def test_sync_draws_a_progress_line_only_on_a_terminal(pg, simulator):
    import pty

    simulator.add_fault("products", Fault(delay=2.5))
    environ = env_for(simulator, pg)
    main_fd, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "jobs", "sync", "products"],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=120,
        )
        os.close(terminal)
        drawn = _read_all(main_fd)
    finally:
        os.close(main_fd)
    assert done.returncode == 0
    assert "\rproducts export, filial 100: " in drawn and "products received" in drawn
    assert "\r" not in done.stdout

    simulator.add_fault("products", Fault(delay=2.5))
    piped = subprocess.run(
        [sys.executable, "-m", "jobs", "sync", "products"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0 and "received" not in piped.stderr and "\r" not in piped.stderr


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


# -- check ------------------------------------------------------------------------------


def check_env(sim, url: str, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for name in list(os.environ):
        if name.startswith(("SMARTUP_", "SYNC_", "DATABASE_", "REDIS_")):
            monkeypatch.delenv(name)
    for name, value in env_for(sim, url, **extra).items():
        if name.startswith(("SMARTUP_", "SYNC_", "DATABASE_", "REDIS_")):
            monkeypatch.setenv(name, value)


def run_check(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = check(settings_from())  # as `python -m jobs check` runs it, in this process
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("{")]
    return code, lines


def registered(settings: Any, redis: Redis) -> None:
    """The scheduler's registrations, next due in 10 minutes, as a running scheduler
    keeps them (none runs here to move them)."""
    register(make_scheduler(settings, redis), settings)
    due = datetime.now(UTC).timestamp() + 600
    redis.zadd("rq:scheduler:scheduled_jobs", dict.fromkeys(PERIODIC_JOBS, due))


@pytest.mark.slow
def test_check_is_0_when_healthy_and_1_with_a_line_per_problem(
    pg, simulator, redis, monkeypatch, capsys
):
    check_env(simulator, pg, monkeypatch)
    settings = settings_for(simulator, pg, redis_url=REDIS_URL, smartup_retry_seconds=2)
    assert (
        run_sync(RunRequest(kind="full", settings=settings, retry=FAST_RETRY)).status == "SUCCESS"
    )
    registered(settings, redis)
    worker = start_worker(env_for(simulator, pg), burst=False)
    try:
        open_database(pg)
        record_limits("reference", {"limit_quant": "100", "left_limit_quant": "70"}, day=TODAY)
        wait_for(lambda: redis.smembers("rq:workers"), timeout=60, what="the worker to register")
        code, lines = run_check(capsys)
        assert (code, len(lines)) == (0, 1) and lines[0].startswith("ok"), lines

        # the quota left today under the reserve (20% of 100)
        open_database(pg)
        record_limits("reference", {"limit_quant": "100", "left_limit_quant": "12"}, day=TODAY)
        code, lines = run_check(capsys)
        assert code == 1 and lines == [
            "products: SmartUp quota left today 12 is below the reserve of 20 (20% of 100 a day)"
        ]
        record_limits("reference", {"limit_quant": "100", "left_limit_quant": "70"}, day=TODAY)

        # a kind whose last success is older than three of its planned intervals (orders
        # 600 s; products 1,080 s: 144 exports a day would not fit 100 - 20)
        open_database(pg)
        SyncRun.update(finished_at=datetime.now(UTC) - timedelta(minutes=31)).execute()
        code, lines = run_check(capsys)
        assert code == 1 and lines == [
            "orders: last successful sync 31 min ago (run 1), more than 3 intervals (30 min)"
        ]
        SyncRun.update(finished_at=datetime.now(UTC) - timedelta(minutes=55)).execute()
        code, lines = run_check(capsys)
        assert code == 1 and len(lines) == 2, lines
        assert lines[0] == (
            "products: last successful sync 55 min ago (run 1), more than 3 intervals (54 min)"
        )
        assert lines[1].startswith("orders: last successful sync 55 min ago")
        SyncRun.update(finished_at=datetime.now(UTC)).execute()

        # a run RUNNING longer than the job timeout (1800 s)
        open_database(pg)
        stuck = SyncRun.create(
            run_type="orders", status="RUNNING", started_at=datetime.now(UTC) - timedelta(hours=1)
        )
        code, lines = run_check(capsys)
        assert code == 1 and lines == [
            f"run {stuck.id} (orders) has been RUNNING for 60 min, longer than the job "
            "timeout (30 min)"
        ]
        open_database(pg)
        SyncRun.delete().where(SyncRun.id == stuck.id).execute()

        # the scheduler's registrations gone
        redis.zrem("rq:scheduler:scheduled_jobs", "smartup-sync-periodic-orders")
        code, lines = run_check(capsys)
        assert code == 1 and lines == [
            "scheduler registration smartup-sync-periodic-orders is missing "
            "(is `scheduler` running?)"
        ]
        registered(settings, redis)
        assert run_check(capsys)[0] == 0
    finally:
        stop(worker)

    # no worker on the queues
    wait_for(lambda: not redis.smembers("rq:workers"), timeout=60, what="the worker to leave")
    code, lines = run_check(capsys)
    assert code == 1 and lines == [
        f"no worker is registered on queue {PRODUCTS_QUEUE}",
        f"no worker is registered on queue {ORDERS_QUEUE}",
    ]
    assert sorted(PERIODIC_JOBS) == sorted(
        m.decode() for m in redis.zrange("rq:scheduler:scheduled_jobs", 0, -1)
    )


def test_check_from_the_command_line_before_any_run(pg, simulator, redis):
    done = run_cli("check", env=env_for(simulator, pg))
    print(done.stdout)  # the closing note quotes this
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "products: no successful sync yet",
        "orders: no successful sync yet",
        f"no worker is registered on queue {PRODUCTS_QUEUE}",
        f"no worker is registered on queue {ORDERS_QUEUE}",
        "scheduler registration smartup-sync-periodic-products is missing (is `scheduler` "
        "running?)",
        "scheduler registration smartup-sync-periodic-orders is missing (is `scheduler` running?)",
    ]


# -- alerts -----------------------------------------------------------------------------


def reported(kind: str, settings: Settings) -> RunOutcome:
    """A run of ``kind`` as the worker's jobs and ``sync`` run it: alerts, Sentry."""
    return run_and_report(RunRequest(kind=kind, settings=settings, retry=FAST_RETRY))


def test_alerts_on_failure_once_then_on_recovery(pg, simulator):
    webhook = Webhook()
    settings = settings_for(
        simulator, pg, sync_alert_webhook_url=webhook.url, smartup_retry_seconds=1
    )
    try:
        assert reported("products", settings).status == "SUCCESS"
        assert webhook.received == []  # a first success is no news

        simulator.add_fault("products", Fault(status=401), times=2)
        with capture_logs() as logs:
            first = reported("products", settings)
            second = reported("products", settings)
        assert (first.status, second.status) == ("FAILED", "FAILED")
        [alert] = webhook.received
        assert (alert["kind"], alert["status"], alert["run_id"]) == (
            "products",
            "FAILED",
            first.run_id,
        )
        assert "401" in alert["error"] and alert["last_success_age_s"] >= 0
        assert alert["text"].startswith("smartup-sync: products FAILED: ")
        assert webhook.url not in str(logs) and "secret-token" not in str(logs)

        assert reported("products", settings).status == "SUCCESS"
        assert [a["status"] for a in webhook.received] == ["FAILED", "RECOVERED"]
        recovered = webhook.received[1]
        assert recovered["error"] is None and recovered["last_success_age_s"] >= 0
    finally:
        webhook.close()


def test_a_stale_kind_alerts_once_from_check(pg, simulator, monkeypatch, capsys):
    webhook = Webhook()
    check_env(simulator, pg, monkeypatch, SYNC_ALERT_WEBHOOK_URL=webhook.url)
    settings = settings_for(simulator, pg, sync_alert_webhook_url=webhook.url)
    try:
        assert reported("full", settings).status == "SUCCESS"
        open_database(pg)
        SyncRun.update(finished_at=datetime.now(UTC) - timedelta(hours=1)).execute()
        assert run_check(capsys)[0] == 1
        assert run_check(capsys)[0] == 1
        assert sorted((a["kind"], a["status"]) for a in webhook.received) == [
            ("orders", "STALE"),
            ("products", "STALE"),
        ]
        assert reported("orders", settings).status == "SUCCESS"
        assert [(a["kind"], a["status"]) for a in webhook.received[2:]] == [("orders", "RECOVERED")]
    finally:
        webhook.close()


def test_a_webhook_that_hangs_does_not_hold_the_run(pg, simulator):
    webhook = Webhook(hang=True)
    settings = settings_for(simulator, pg, sync_alert_webhook_url=webhook.url)
    simulator.add_fault("products", Fault(status=401))
    outcome: list[Any] = []
    try:
        with capture_logs() as logs:
            runner = threading.Thread(target=lambda: outcome.append(reported("products", settings)))
            runner.start()
            runner.join(timeout=90)  # the webhook would hold it for 120 s
            assert not runner.is_alive(), "the run waited for the webhook"
        assert outcome[0].status == "FAILED"
        assert len(webhook.received) == 1  # it was sent, never answered
        [failed] = [e for e in logs if e["event"] == "alert.failed"]
        assert failed["error"].startswith("no answer within")
        assert "secret-token" not in str(logs)
    finally:
        webhook.close()
    open_database(pg)
    assert SyncRun.get().status == "FAILED"


def test_a_webhook_that_answers_an_error_is_logged_and_the_run_goes_on(pg, simulator):
    webhook = Webhook(status=500)
    settings = settings_for(simulator, pg, sync_alert_webhook_url=webhook.url)
    simulator.add_fault("products", Fault(status=401))
    try:
        with capture_logs() as logs:
            outcome = reported("products", settings)
        assert outcome.status == "FAILED" and len(webhook.received) == 1
        [failed] = [e for e in logs if e["event"] == "alert.failed"]
        assert failed["error"] == "the webhook answered 500"
        [changed] = [e for e in logs if e["event"] == "alert.changed"]
        assert (changed["kind"], changed["status"], changed["sent"]) == (
            "products",
            "FAILED",
            False,
        )
    finally:
        webhook.close()


def test_the_webhook_url_is_a_secret_and_must_be_https_beyond_loopback():
    from jobs.settings import SettingsError

    base = {
        "DATABASE_URL": "postgresql://root@127.0.0.1/x",
        "SMARTUP_BASE_URL": "https://smartup.example",
        "SMARTUP_BASIC_USER": "u",
        "SMARTUP_BASIC_PASS": "password-1",
    }
    url = "https://hooks.slack.com/services/T000/B000/xoxb-secret-token"
    settings = settings_from({**base, "SYNC_ALERT_WEBHOOK_URL": url})
    assert settings.sync_alert_webhook_url == url and url not in repr(settings)
    assert url in settings.secrets
    with pytest.raises(SettingsError) as error:
        settings_from({**base, "SYNC_ALERT_WEBHOOK_URL": "http://hooks.example/secret-token"})
    assert "SYNC_ALERT_WEBHOOK_URL" in str(error.value)
    assert "secret-token" not in str(error.value)
    assert settings_from(base).sync_alert_webhook_url is None


@pytest.mark.slow
def test_make_dev_runs_the_real_queue_flow(make_pg_database, redis):
    """What ``make dev`` runs: simulator, migrate, then the Procfile's worker and
    scheduler under honcho; the scheduler's first round gets both kinds synced."""
    import signal

    url = str(make_pg_database())
    environ = without_our_settings("DEV_")
    environ.update(DEV_DATABASE_URL=url, DEV_REDIS_URL=REDIS_URL)
    environ["PATH"] = "/usr/bin:/bin"  # a fresh shell: no venv on PATH
    process = subprocess.Popen(
        [sys.executable, "dev.py"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: (
                sorted((run.run_type, run.status) for run in _runs(url) if run.status != "RUNNING")
                == [("orders", "SUCCESS"), ("products", "SUCCESS")]
            ),
            timeout=120,
            what="a products and an orders run made by the worker",
        )
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert "rq: not found" not in output and "schedule.registered" in output, output
    assert process.returncode == 0, output


def _runs(url: str) -> list[SyncRun]:
    db = open_database(url)
    try:
        return list(SyncRun.select())
    finally:
        db.close()


def _summary(output: str) -> list[str]:
    """The summary lines of a ``sync``/``enqueue --wait`` stdout (no log, no job line)."""
    return [
        line for line in output.splitlines() if line.strip() and not line.startswith(("{", "job "))
    ]


@pytest.mark.slow
def test_enqueue_wait_prints_the_summary_sync_prints(pg, simulator, redis):
    environ = env_for(simulator, pg)
    synced = run_cli("sync", "full", env=environ)
    assert synced.returncode == 0, synced.stderr
    worker = start_worker(environ, burst=False)
    try:
        waited = run_cli("enqueue", "full", "--wait", env=environ)
    finally:
        stop(worker)
    assert waited.returncode == 0, waited.stderr
    by_sync, by_wait = _summary(synced.stdout), _summary(waited.stdout)
    assert re.fullmatch(r"run 1 SUCCESS in \d+\.\d\ds", by_sync[0]), by_sync
    assert re.fullmatch(r"run 2 SUCCESS in \d+\.\d\ds", by_wait[0]), by_wait
    assert by_sync[1].split() == by_wait[1].split()  # the same columns
    assert by_wait[1].split() == [
        "stream",
        "requests",
        "received",
        "inserted",
        "updated",
        "unchanged",
        "rejected",
        "gone",
    ]
    same_either_run = (0, 1, 2, 6, 7)  # not inserted/updated/unchanged: the second is a re-sync
    assert [[row.split()[i] for i in same_either_run] for row in by_sync[3:]] == [
        [row.split()[i] for i in same_either_run] for row in by_wait[3:]
    ]
    assert [row.split()[0] for row in by_wait[3:]] == ["products", "orders"]


def test_sync_on_a_terminal_prints_its_table_there_and_its_logs_on_stderr(pg, simulator):
    import pty

    main_fd, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "jobs", "sync", "products"],
            cwd=ROOT,
            env=env_for(simulator, pg),
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
        os.close(terminal)
        shown = _read_all(main_fd)
    finally:
        os.close(main_fd)
    assert done.returncode == 0, done.stderr
    assert "run 1 SUCCESS" in shown and "received" in shown
    assert '"event"' not in shown, shown
    assert '"event": "sync.finish"' in done.stderr
