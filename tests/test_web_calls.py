"""The web app's two calls need only what they use: ``enqueue_sync`` Redis alone,
``sync_overview`` the database (and Redis for the queue part); neither reads a ``.env``
unless asked, and each names what is missing. The overview shows the plan the scheduler
registered, not one made from the web app's own ``SYNC_*`` variables. The README's Flask
example answers 400 for an unknown kind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

import jobs
from jobs.kinds import queue_for
from jobs.processes.scheduler import make_scheduler, register
from jobs.settings import SettingsError
from tests.helpers import REDIS_URL, ROOT, env_for, finish, settings_for, start_worker

PRODUCTS_QUEUE = queue_for("products")
ORDERS_QUEUE = queue_for("orders")

ENQUEUE = "import jobs; job = jobs.enqueue_sync('orders'{extra}); print(job.id)"
OVERVIEW = "import json, jobs; print(json.dumps(jobs.sync_overview({extra})))"


def web_app(tmp_path: Path, code: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """``code`` run as a web app would: in its own directory (which holds a ``.env`` of
    its own), with no variable of ours but those given."""
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**kept, "PYTHONPATH": str(ROOT), **environ},
        capture_output=True,
        text=True,
        timeout=120,
    )


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_enqueue_needs_redis_url_alone_and_reads_no_env_file_unasked(tmp_path, redis):
    (tmp_path / ".env").write_text(f"REDIS_URL={REDIS_URL}\n")
    alone = web_app(tmp_path, ENQUEUE.format(extra=""), REDIS_URL=REDIS_URL)
    assert alone.returncode == 0, alone.stderr
    job_id = alone.stdout.strip()
    assert Queue(ORDERS_QUEUE, connection=redis).job_ids == [job_id]
    again = web_app(tmp_path, ENQUEUE.format(extra=""), REDIS_URL=REDIS_URL)
    assert again.stdout.strip() == job_id  # still waiting: the same job

    redis.flushdb()
    unset = web_app(tmp_path, ENQUEUE.format(extra=""))  # only the .env holds REDIS_URL
    assert unset.returncode == 1
    assert last_line(unset.stderr) == (
        "jobs.settings.SettingsError: invalid setting REDIS_URL: expected redis://, "
        "rediss:// or unix:// URL, or pass connection=redis.Redis(...) (required, not set)"
    )
    assert Queue(ORDERS_QUEUE, connection=redis).job_ids == []  # no guessed Redis either

    asked = web_app(tmp_path, ENQUEUE.format(extra=", env_file='.env'"))
    assert asked.returncode == 0, asked.stderr
    assert Queue(ORDERS_QUEUE, connection=redis).job_ids == [asked.stdout.strip()]


def test_enqueue_with_a_connection_of_the_web_apps_own(redis, monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(SettingsError, match="REDIS_URL"):
        jobs.enqueue_sync("products")
    job = jobs.enqueue_sync("products", connection=redis)
    assert Queue(PRODUCTS_QUEUE, connection=redis).job_ids == [job.id]
    with pytest.raises(ValueError, match="kind must be one of"):
        jobs.enqueue_sync("prices!", connection=redis)


def test_the_overview_shows_the_plan_the_scheduler_registered(tmp_path, pg, simulator, redis):
    (tmp_path / ".env").write_text(f"DATABASE_URL={pg}\n")
    no_database = web_app(tmp_path, OVERVIEW.format(extra=""), REDIS_URL=REDIS_URL)
    assert no_database.returncode == 1
    assert "invalid setting DATABASE_URL" in last_line(no_database.stderr)

    before = web_app(tmp_path, OVERVIEW.format(extra=""), DATABASE_URL=pg)
    assert before.returncode == 0, before.stderr
    unplanned = json.loads(before.stdout)
    assert unplanned["kinds"]["orders"]["plan"] is None
    assert unplanned["kinds"]["orders"]["stale"] is None
    assert unplanned["queues"] is None and "REDIS_URL" in unplanned["redis_error"]

    # The scheduler registers from its own settings: orders every 600 s
    settings = settings_for(simulator, pg, sync_interval_seconds=600)
    register(make_scheduler(settings, redis), settings)
    seen = web_app(
        tmp_path,
        OVERVIEW.format(extra=""),
        DATABASE_URL=pg,
        REDIS_URL=REDIS_URL,
        SYNC_INTERVAL_SECONDS="3600",  # the web app's own environment: plays no part
    )
    assert seen.returncode == 0, seen.stderr
    overview = json.loads(seen.stdout)
    plan = overview["kinds"]["orders"]["plan"]
    assert plan["interval_used_s"] == 600 and plan["timezone"] == "Asia/Tashkent"
    assert overview["kinds"]["orders"]["stale"] is True  # planned, never succeeded
    assert overview["queues"][ORDERS_QUEUE] == {"waiting": 0, "running": 0, "workers": 0}


def readme_flask_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    [example] = [str(block) for block in blocks if "Flask(__name__)" in block]
    return example


def test_the_readmes_flask_example_answers_400_for_an_unknown_kind(redis, monkeypatch):
    pytest.importorskip("flask")
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(readme_flask_example(), "README.md", "exec"), namespace)
    client = namespace["app"].test_client()
    bad = client.post("/admin/sync/everything")
    assert bad.status_code == 400 and "kind must be one of" in bad.get_json()["error"]
    first = client.post("/admin/sync/orders")
    second = client.post("/admin/sync/orders")
    assert first.status_code == second.status_code == 202
    assert first.get_json() == second.get_json()  # still waiting: the same job
    assert first.get_json()["status"] == "queued"
    assert Redis.from_url(REDIS_URL).llen(Queue(ORDERS_QUEUE, connection=redis).key) == 1


@pytest.mark.slow
def test_the_worker_gives_a_job_queued_without_a_timeout_its_own(pg, simulator, redis):
    """A job from the web app carries RQ's default timeout (180 s); the worker that takes
    it runs it under its own ``SYNC_JOB_TIMEOUT_SECONDS`` (and says so on the job)."""
    job = jobs.enqueue_sync("products", connection=redis)
    assert job.timeout == Queue.DEFAULT_TIMEOUT
    output = finish(start_worker(env_for(simulator, pg, SYNC_JOB_TIMEOUT_SECONDS="4000")))
    assert job.get_status(refresh=True) == "finished", output
    assert Job.fetch(job.id, connection=redis).timeout == 4000
