"""``python -m jobs``: sync, status and demo as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from models import open_database
from tests.conftest import PASSWORD, USER

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SMARTUP_", "SYNC_", "DATABASE_", "REDIS_"))
    }
    environ.update(env or {}, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sync_env(sim, url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "SMARTUP_BASE_URL": sim.base_url,
        "SMARTUP_BASIC_USER": USER,
        "SMARTUP_BASIC_PASS": PASSWORD,
        "SMARTUP_RETRY_SECONDS": "2",
        **extra,
    }


def test_sync_then_status(pg, simulator):
    done = run_cli("sync", "full", "--days-back", "3", env=sync_env(simulator, pg))
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout and '"event": "sync.finish"' in done.stdout
    assert "products  100" in done.stdout
    status = run_cli("status", env=sync_env(simulator, pg))
    assert status.returncode == 0, status.stderr
    [header, _, row] = status.stdout.strip().splitlines()
    assert header.split()[:3] == ["id", "type", "status"]
    assert row.split()[:3] == ["1", "full", "SUCCESS"]


def test_a_failed_sync_exits_1_with_the_reason_and_no_secret(pg, simulator):
    done = run_cli(
        "sync", "products", env=sync_env(simulator, pg, SMARTUP_BASIC_PASS="wrong-pass-123")
    )
    assert done.returncode == 1
    assert "401" in done.stderr
    assert "wrong-pass-123" not in done.stdout + done.stderr


def test_a_partial_sync_exits_0_with_a_warning(pg, simulator):
    products = simulator.products
    products[0]["product_id"] = ""
    simulator.set_products(products)
    done = run_cli("sync", "products", env=sync_env(simulator, pg))
    assert done.returncode == 0
    assert "PARTIAL" in done.stdout and "warning" in done.stderr


def test_the_demo_needs_no_servers(tmp_path):
    done = run_cli("demo", "--products", "120", "--orders", "30", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "demo: SUCCESS" in done.stdout
    assert "stored: 120 products, 30 orders" in done.stdout
    again = run_cli("demo", "--products", "120", "--orders", "30", cwd=tmp_path)
    assert "products  120       0         0        120" in again.stdout


def test_statement_timeout_is_set_on_postgres(pg):
    db = open_database(pg, statement_timeout_ms=1234)
    try:
        assert db.execute_sql("SHOW statement_timeout").fetchone()[0] == "1234ms"
    finally:
        db.close()
