"""``pip install`` of the checkout into a fresh venv, beside a throwaway web app that has
its own ``models.py``: the web app enqueues a sync with ``REDIS_URL`` alone and reads the
overview with ``DATABASE_URL``, and each side keeps its own ``models``.

A real install (dependencies resolved from the package index, not ``--no-deps``), so it
is slow: about a minute on this machine (``-m "not slow"`` leaves it out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job

from jobs.kinds import queue_for
from tests.helpers import REDIS_URL, ROOT

ORDERS_QUEUE = queue_for("orders")

pytestmark = pytest.mark.slow
LEFT_OUT = (".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".demo", ".dev")

WEB_APP_MODELS = '''\
"""The web app's own models: a name smartup-sync must not take."""

OWNER = "the web app"
'''

WEB_APP = """\
import json
import sys

import models  # the web app's own
import jobs

job = jobs.enqueue_sync("orders")
overview = jobs.sync_overview()
import models as models_again

print(json.dumps({
    "models_owner": models_again.OWNER,
    "models_file": models.__file__,
    "jobs_file": jobs.__file__,
    "job": [job.id, job.origin, job.get_status().value],
    "overview_kinds": sorted(overview["kinds"]),
    "orders_waiting": overview["kinds"]["orders"]["waiting"]["id"],
    "jobs_models": sys.modules["jobs.models"].__file__,
}))
"""


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


def test_pip_install_beside_a_web_app_with_its_own_models(tmp_path, pg, redis):
    # A copy of the checkout as a clone holds it: pip builds in the tree it is given, and
    # must neither leave build/ in ours nor pick up what an earlier build left there
    checkout = tmp_path / "smartup-sync"
    shutil.copytree(ROOT, checkout, ignore=shutil.ignore_patterns(*LEFT_OUT), symlinks=True)
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    started = time.monotonic()
    run([sys.executable, "-m", "venv", str(venv)])
    install = run([str(python), "-m", "pip", "install", str(checkout)], cwd=tmp_path)
    print(f"pip install <checkout>: {time.monotonic() - started:.0f} s")  # the closing note
    print(install.stdout.strip().splitlines()[-1])
    assert "Successfully installed" in install.stdout and "smartup-sync-" in install.stdout

    # What the distribution installs: one top-level module, `jobs`, and the console script
    [record] = venv.glob("lib/python*/site-packages/smartup_sync-*.dist-info/RECORD")
    tops = {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
    tops = {top for top in tops if not top.startswith(("smartup_sync-", ".."))}
    assert tops == {"jobs"}, tops
    for taken in ("models", "schedule", "migrate", "dashboard", "dev"):
        assert not list(venv.glob(f"lib/python*/site-packages/{taken}*")), taken
    via_script = run([str(venv / "bin" / "smartup-sync"), "--help"], cwd=tmp_path)
    via_module = run([str(python), "-m", "jobs", "--help"], cwd=tmp_path)
    # the same help, each naming what the user typed in its usage lines
    assert via_script.stdout.startswith("usage: smartup-sync ")
    assert via_module.stdout.startswith("usage: python -m jobs ")
    assert via_script.stdout.split("\n\n", 1)[1] == via_module.stdout.split("\n\n", 1)[1]

    # The migrations travel with the package: the installed copy migrates a new database
    migrated = run(
        [str(python), "-m", "jobs.processes.migrate"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"},
    )
    applied = json.loads(migrated.stdout.strip().splitlines()[-1])["applied"]
    assert applied == sorted(p.stem for p in (ROOT / "jobs" / "migrations").glob("0*.py"))

    web_app = tmp_path / "web_app"
    web_app.mkdir()
    (web_app / "models.py").write_text(WEB_APP_MODELS)
    (web_app / "app.py").write_text(WEB_APP)
    # A .env of the web app's own, full of things the calls must not read
    (web_app / ".env").write_text("REDIS_URL=redis://127.0.0.1:1/0\nDATABASE_URL=nonsense\n")
    environ = {
        "PATH": os.environ["PATH"],
        "REDIS_URL": REDIS_URL,
        "DATABASE_URL": pg,
        "SYNC_INTERVAL_SECONDS": "3600",  # the web app's own: plays no part
    }
    done = run([str(python), "app.py"], cwd=web_app, env=environ)
    print("web app:", done.stdout.strip())  # the closing note quotes it
    seen = json.loads(done.stdout)
    assert seen["models_owner"] == "the web app"
    assert Path(seen["models_file"]).parent == web_app
    assert Path(seen["jobs_file"]).is_relative_to(venv)  # the installed copy, not the checkout
    assert Path(seen["jobs_models"]).is_relative_to(venv)
    job_id, queue, status = seen["job"]
    assert (queue, status) == (ORDERS_QUEUE, "queued")
    assert seen["overview_kinds"] == ["orders", "products"]
    assert seen["orders_waiting"] == job_id
    job = Job.fetch(job_id, connection=Redis.from_url(REDIS_URL))
    assert job.func_name == "jobs.tasks.sync_job" and job.args == ("orders", None)
