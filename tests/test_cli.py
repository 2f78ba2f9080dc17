"""``python -m jobs``: sync, status and demo as an operator runs them."""

from __future__ import annotations

import re

from jobs.models import open_database
from tests.helpers import PASSWORD, USER, run_cli


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
    assert "products  1         100" in done.stdout  # requests, received
    status = run_cli("status", env=sync_env(simulator, pg))
    assert status.returncode == 0, status.stderr
    runs, day, ages = status.stdout.strip().split("\n\n")
    [header, _, row] = runs.splitlines()
    assert header.split()[:3] == ["id", "type", "status"]
    assert row.split()[:3] == ["1", "full", "SUCCESS"]
    [header, _, products, orders] = day.splitlines()
    assert header.split()[:3] == ["stream", "filial", "last"]
    assert products.split()[:2] == ["products", "-"] and orders.split()[:2] == ["orders", "-"]
    assert "1/99" in products and "1/499" in orders  # quota used/left today
    assert "(every 1080s)" in products and "(every 600s)" in orders
    assert header.split()[3:5] == ["success", "data"]  # "last success", "data age"
    assert re.fullmatch(r"data age \(.*\): products \d+s, orders \d+s", ages)


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
    for output in (done.stdout + done.stderr, again.stdout + again.stderr):
        assert '"level": "error"' not in output  # e.g. alerts on SQLite


def test_statement_timeout_is_set_on_postgres(pg):
    db = open_database(pg, statement_timeout_ms=1234)
    try:
        assert db.execute_sql("SHOW statement_timeout").fetchone()[0] == "1234ms"
    finally:
        db.close()


def test_plan_prints_each_streams_budget():
    env = {
        "DATABASE_URL": "sqlite:////nonexistent/dir/x.sqlite3",
        "SMARTUP_BASE_URL": "https://smartup.example",
        "SMARTUP_BASIC_USER": "u",
        "SMARTUP_BASIC_PASS": "secret-pass",
        "SMARTUP_FILIAL_ID": "1,2,3",
        "SYNC_ORDERS_DAYS_BACK": "30",
        "SYNC_INTERVAL_SECONDS": "60",
    }
    done = run_cli("plan", env=env)
    assert done.returncode == 0, done.stderr
    assert "default quotas" in done.stderr  # no database to read the quotas seen from
    [header, _, products, orders] = done.stdout.strip().splitlines()[:4]
    assert header.split()[:2] == ["stream", "interval"]
    assert products.split() == [
        "products",
        "60",
        "1080",
        "1",
        "1",
        "80",
        "80",
        "100",
        "20",
        "80",
        "yes",
    ]
    assert orders.split() == [
        "orders",
        "60",
        "670",
        "3",
        "15",
        "129",
        "399",
        "500",
        "100",
        "400",
        "yes",
    ]


def test_sync_products_full_reconciles(pg, simulator):
    env = sync_env(simulator, pg)
    assert run_cli("sync", "products", env=env).returncode == 0
    simulator.delete_product(simulator.products[0]["product_id"])
    done = run_cli("sync", "products", "--full", env=env)
    assert done.returncode == 0, done.stderr
    assert '"gone": 1' in done.stdout
    open_database(pg)
    from jobs.models import Product

    assert Product.select().where(Product.deleted_at.is_null(False)).count() == 1


def test_help_is_plain_text_without_markup():
    for args in (["--help"], *[[name, "--help"] for name in ("sync", "enqueue", "check")]):
        shown = run_cli(*args)
        assert shown.returncode == 0, shown.stderr
        assert "``" not in shown.stdout, (args, shown.stdout)
    checked = " ".join(run_cli("--help").stdout.split())
    assert "one line per problem" in checked and "one line a problem" not in checked


def test_a_bad_days_back_names_the_argument_not_a_function():
    for value in ("abc", "0", "91"):
        bad = run_cli("sync", "orders", "--days-back", value)
        assert bad.returncode == 2
        [line] = [x for x in bad.stderr.splitlines() if x.startswith("python -m jobs")][-1:]
        assert "argument --days-back: expected a whole number of days from 1 to 90" in line
        assert repr(value) in line and "_days_back" not in bad.stderr
