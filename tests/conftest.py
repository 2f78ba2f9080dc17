"""Real services: a fresh PostgreSQL database per test session, the SmartUp simulator over
loopback, and (for queue tests) a Redis database number of our own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2
import pytest
from hypothesis import settings as hypothesis_settings
from redis import Redis

from jobs.migrate import apply_migrations
from jobs.models import open_database
from jobs.settings import Settings
from jobs.simulator import SmartUpSimulator, generate_orders, generate_products
from jobs.smartup import RetryPolicy

PG_ADMIN_DSN = os.environ.get(
    "TEST_PG_ADMIN_DSN", "dbname=postgres user=root host=127.0.0.1 port=5432"
)
PG_URL_BASE = os.environ.get("TEST_PG_URL_BASE", "postgresql://root@127.0.0.1:5432")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
TODAY = datetime.now(ZoneInfo("Asia/Tashkent")).date()  # what a worker's run uses too
USER, PASSWORD = "sync@acme", "s3cret-Pa55"
FAST_RETRY = RetryPolicy(
    attempts=4, backoff_seconds=0.05, backoff_max_seconds=0.2, jitter_seconds=0.01, total_seconds=10
)
# Property tests: few examples, always the same ones, in `make test`; many, new ones each
# time, in `make fuzz` (HYPOTHESIS_PROFILE=fuzz; counts per property in tests/strategies.py).
hypothesis_settings.register_profile("default", derandomize=True, database=None, deadline=None)
hypothesis_settings.register_profile(
    "fuzz", derandomize=False, database=None, deadline=None, print_blob=True
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
TABLES = (
    "order_items",
    "orders",
    "products",
    "smartup_sync_runs",
    "smartup_sync_state",
    "smartup_quota",
    "smartup_sync_alerts",
    "smartup_sync_plan",
    "product_groups",
    "product_types",
    "product_categories",
    "price_types",
    "product_prices",
    "warehouses",
    "stock_balances",
)


def _admin(sql: str) -> None:
    connection = psycopg2.connect(PG_ADMIN_DSN)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture(scope="session")
def make_pg_database() -> Iterator[object]:
    """Creates throw-away databases; drops every one it made at the end of the session."""
    made: list[str] = []

    def make() -> str:
        name = f"smartup_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        _admin(f"CREATE DATABASE {name}")
        made.append(name)
        url = f"{PG_URL_BASE}/{name}"
        apply_migrations(url)
        return url

    yield make
    for name in made:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_url(make_pg_database) -> str:
    return str(make_pg_database())


@pytest.fixture
def pg(pg_url: str) -> Iterator[str]:
    """The session's database, emptied before the test; the models are bound to it."""
    db = open_database(pg_url)
    db.execute_sql(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    yield pg_url
    db.close()


@pytest.fixture
def redis() -> Iterator[Redis]:
    """Our own Redis database number (``TEST_REDIS_URL``), emptied before and after."""
    connection = Redis.from_url(REDIS_URL)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'sync.sqlite3'}"
    apply_migrations(url)
    return url


@pytest.fixture
def simulator() -> Iterator[SmartUpSimulator]:
    products = generate_products(100)
    orders = generate_orders(40, products=products, today=TODAY, days=7, filial_ids=("100",))
    with SmartUpSimulator(
        products=products, orders=orders, user=USER, password=PASSWORD, today=TODAY
    ) as sim:
        yield sim


def settings_for(sim: SmartUpSimulator, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "smartup_base_url": sim.base_url,
        "smartup_user": USER,
        "smartup_password": PASSWORD,
        "smartup_filial_ids": ("100",),
        "redis_url": REDIS_URL,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
