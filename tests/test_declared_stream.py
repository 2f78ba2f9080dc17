"""A stream declared here alone (its own table, its own simulated export) is synced,
planned, enqueued, worked and reported by the worker's own code, no module of ``jobs/``
edited: what the worker knows of a stream is its declaration."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import tzinfo
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import peewee as pw
import pytest
from redis import Redis
from rq import Queue, SimpleWorker

from jobs.day.plan import plan_for
from jobs.models import AwareDateTimeField, BaseModel, SyncRun, open_database
from jobs.pipeline.loader import LoadTarget
from jobs.pipeline.records import Identity, ParsedRecord, RecordRejected, content_hash
from jobs.pipeline.streams import Stream, declare, undeclare
from jobs.pipeline.streams.pools import Pool
from jobs.pipeline.streams.reach import SNAPSHOT
from jobs.pipeline.streams.settle import DELETE, Settle
from jobs.processes.queueing import enqueue_sync, queues_of
from jobs.processes.scheduler import periodic_jobs
from jobs.run.sync import RunRequest, run_sync
from jobs.settings import Settings
from jobs.watching.overview import sync_overview
from tests.helpers import FAST_RETRY, PASSWORD, REDIS_URL, TODAY, USER, settings_from


class Widget(BaseModel):
    id = pw.AutoField()
    external_id = pw.TextField(unique=True)
    name = pw.TextField(null=True)
    content_hash = pw.CharField(max_length=32)
    first_synced_at = AwareDateTimeField()
    last_synced_at = AwareDateTimeField()

    class Meta:
        table_name = "test_widgets"


WIDGET_POOL = Pool("widgets", 30)


def identify_widget(record: Any) -> Identity:
    if not isinstance(record, dict) or not record.get("widget_id"):
        raise RecordRejected(None, "no widget_id")
    widget_id = str(record["widget_id"])
    return Identity(widget_id, (widget_id,), content_hash(record))


def parse_widget(record: dict[str, Any], identity: Identity, *, tz: tzinfo) -> ParsedRecord:
    row = (identity.record_id, record.get("name") or None, identity.content_hash)
    return ParsedRecord(identity.key, identity.content_hash, row)


class WidgetsStream(Stream):
    name = "widgets"
    path = "/b/test/widget$export"
    records_key = "widget"
    pool = WIDGET_POOL
    reach = SNAPSHOT
    default_interval = 1800
    identifier = staticmethod(identify_widget)
    parser = staticmethod(parse_widget)
    target = LoadTarget(
        model=Widget, columns=("external_id", "name", "content_hash"), key=("external_id",)
    )
    settle = Settle(
        mode=DELETE, table="test_widgets", key_column="external_id", noun="widget", whole="widget"
    )


class WidgetExport:
    """The throwaway export over HTTP: ``{"widget": [...], "limits": {...}}``."""

    def __init__(self) -> None:
        self.widgets: list[dict[str, Any]] = [
            {"widget_id": str(n), "name": f"Виджет {n}"} for n in range(1, 21)
        ]
        self.paths: list[str] = []
        export = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                export.paths.append(self.path)
                limits = {"limit_quant": "30", "request_quant": str(len(export.paths))}
                limits["left_limit_quant"] = str(30 - len(export.paths))
                body = json.dumps({"widget": export.widgets, "limits": limits}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def widgets(pg: str) -> Iterator[WidgetExport]:
    declare(WidgetsStream())
    db = open_database(pg)
    Widget.drop_table(safe=True)
    Widget.create_table()
    export = WidgetExport()
    try:
        yield export
    finally:
        export.close()
        undeclare("widgets")
        open_database(pg)
        Widget.drop_table(safe=True)
        db.close()


def environment(export: WidgetExport, url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "SMARTUP_BASE_URL": export.base_url,
        "SMARTUP_BASIC_USER": USER,
        "SMARTUP_BASIC_PASS": PASSWORD,
        "SYNC_STREAMS": "products,orders,widgets",
        "SYNC_WIDGETS_INTERVAL_SECONDS": "900",
        "SMARTUP_RETRY_SECONDS": "5",
    }


def test_a_stream_declared_in_a_test_syncs_from_its_declaration(pg, widgets):
    settings = settings_from(environment(widgets, pg))
    assert settings.sync_streams == ("products", "orders", "widgets")
    outcome = run_sync(RunRequest(kind="widgets", settings=settings, today=TODAY, retry=FAST_RETRY))
    assert outcome.status == "SUCCESS", outcome.error
    assert widgets.paths == ["/b/test/widget$export"]
    open_database(pg)
    assert {(w.external_id, w.name) for w in Widget.select()} == {
        (w["widget_id"], w["name"]) for w in widgets.widgets
    }
    run = SyncRun.get_by_id(outcome.run_id)
    assert run.details["widgets"]["inserted"] == 20  # its counts live in the details
    # unchanged, then a snapshot that lacks one widget: deleted
    assert (
        run_sync(RunRequest(kind="widgets", settings=settings, today=TODAY)).results[0].unchanged
        == 20
    )
    widgets.widgets = widgets.widgets[1:]
    replaced = run_sync(RunRequest(kind="widgets", settings=settings, today=TODAY))
    assert replaced.status == "SUCCESS" and replaced.results[0].gone == 1
    open_database(pg)
    assert Widget.select().count() == 19


def test_a_declared_stream_is_planned_in_its_pool(pg, widgets):
    settings = settings_from(environment(widgets, pg))
    day = plan_for(settings, limits_seen={"widgets": 30})
    plan = day["widgets"]
    assert (plan.pool, plan.interval_asked, plan.requests_per_run) == ("widgets", 900, 1)
    # 30 a day, 20% reserve: 24 runs, one an hour
    assert plan.quota == 30 and plan.reserve == 6 and plan.interval_used == 3600
    assert day.pools["widgets"].requests_per_day == 24 <= 30 - 6
    assert periodic_jobs(settings)["smartup-sync-periodic-widgets"] == (
        "widgets",
        "smartup-widgets",
    )


def test_a_declared_stream_is_enqueued_worked_and_reported(pg, widgets, redis: Redis, monkeypatch):
    environ = environment(widgets, pg)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = settings_from()
    assert queues_of(settings) == ("smartup-products", "smartup-orders", "smartup-widgets")
    job = enqueue_sync("widgets", settings=settings, connection=redis)
    assert job.origin == "smartup-widgets"
    worker = SimpleWorker(
        [Queue(name, connection=redis) for name in queues_of(settings)], connection=redis
    )
    assert worker.work(burst=True)
    job.refresh()
    assert (job.return_value() or {}).get("status") == "SUCCESS"
    overview = sync_overview(settings=settings, connection=redis)
    widgets_kind = overview["kinds"]["widgets"]
    assert widgets_kind["last_success"]["inserted"] == 20
    assert widgets_kind["quota"]["pool"] == "widgets" and widgets_kind["quota"]["left"] == 29
    assert overview["queues"]["smartup-widgets"]["waiting"] == 0
    assert {pool["name"] for pool in overview["pools"]} == {"reference", "documents", "widgets"}


def test_a_declared_stream_that_is_not_enabled_is_refused(pg, widgets):
    settings = Settings(
        **{
            **settings_from(environment(widgets, pg)).__dict__,
            "sync_streams": ("products",),
        }
    )
    with pytest.raises(ValueError, match="not enabled"):
        run_sync(RunRequest(kind="widgets", settings=settings, today=TODAY))
    assert widgets.paths == []
