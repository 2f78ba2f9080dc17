"""The fixtures: real services (a fresh PostgreSQL database per test session, the SmartUp
simulator over loopback, a Redis database number of our own) and the property tests'
profiles. What tests share besides fixtures is in ``tests/helpers.py`` (and, for the
property tests, ``tests/strategies*.py`` and ``tests/oracles.py``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from redis import Redis

from jobs.models import open_database
from jobs.processes.migrate import apply_migrations
from jobs.simulator import SmartUpSimulator, generate_orders, generate_products
from tests.helpers import (
    PASSWORD,
    PG_URL_BASE,
    REDIS_URL,
    TABLES,
    TODAY,
    USER,
    PrivateRedis,
    admin_sql,
)

# Property tests: few examples, always the same ones, in `make test`; many, new ones each
# time, in `make fuzz` (HYPOTHESIS_PROFILE=fuzz; counts per property in tests/strategies.py).
hypothesis_settings.register_profile("default", derandomize=True, database=None, deadline=None)
hypothesis_settings.register_profile(
    "fuzz", derandomize=False, database=None, deadline=None, print_blob=True
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def make_pg_database() -> Iterator[object]:
    """Creates throw-away databases; drops every one it made at the end of the session."""
    made: list[str] = []

    def make() -> str:
        name = f"smartup_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin_sql(f"CREATE DATABASE {name}")
        made.append(name)
        url = f"{PG_URL_BASE}/{name}"
        apply_migrations(url)
        return url

    yield make
    for name in made:
        admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, not started: the test starts and stops it."""
    server = PrivateRedis()
    yield server
    server.stop()


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
