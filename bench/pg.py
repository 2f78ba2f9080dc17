"""PostgreSQL helpers: throw-away databases, write counters, server facts.

Every database made here is named ``smartup_bench_<pid>_<label>`` and dropped by
:meth:`Databases.drop_all`; no other database is touched.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import psycopg2

from jobs.processes.migrate import apply_migrations

ADMIN_DSN = os.environ.get(
    "BENCH_PG_ADMIN_DSN", "dbname=postgres user=root host=127.0.0.1 port=5432"
)
URL_BASE = os.environ.get("BENCH_PG_URL_BASE", "postgresql://root@127.0.0.1:5432")
DATA_TABLES = ("products", "orders", "order_items", "product_categories")


def connect(url: str) -> Any:
    return psycopg2.connect(url, application_name="smartup-bench")


def _admin(sql: str) -> None:
    connection = psycopg2.connect(ADMIN_DSN, application_name="smartup-bench")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


class Databases:
    """Creates migrated, empty databases of our own; drops every one at the end."""

    def __init__(self) -> None:
        self.prefix = f"smartup_bench_{os.getpid()}"
        self._made: list[str] = []

    def create(self, label: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]+", label):
            raise ValueError(f"bad database label {label!r}")
        name = f"{self.prefix}_{label}"
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _admin(f"CREATE DATABASE {name}")
        self._made.append(name)
        url = f"{URL_BASE}/{name}"
        apply_migrations(url)
        return url

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        if name in self._made:
            _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self._made.remove(name)

    def drop_all(self) -> None:
        while self._made:
            _admin(f"DROP DATABASE IF EXISTS {self._made.pop()} WITH (FORCE)")


def checkpoint() -> None:
    """Write dirty buffers out now, so no checkpoint lands inside a timed step."""
    with contextlib.suppress(psycopg2.Error):  # not allowed for this role: just noisier
        _admin("CHECKPOINT")


def tuples_written(
    url: str,
    tables: Sequence[str] = DATA_TABLES,
    *,
    settle_seconds: float = 1.0,
    timeout_seconds: float = 30.0,
) -> int:
    """n_tup_ins + n_tup_upd + n_tup_del of ``tables``, once the number holds still.

    Backends report their counters when they end (or when idle, at most once a second),
    so the value is read from a new connection, each read in its own transaction, until
    it has not changed for ``settle_seconds``.
    """
    connection = connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
            last: int | None = None
            stable_since = deadline = time.monotonic()
            deadline += timeout_seconds
            while True:
                cursor.execute(
                    "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)"
                    " FROM pg_stat_user_tables"
                    " WHERE schemaname = 'public' AND relname = ANY(%s)",
                    (list(tables),),
                )
                value = int(cursor.fetchone()[0])
                now = time.monotonic()
                if value != last:
                    last, stable_since = value, now
                elif now - stable_since >= settle_seconds or now > deadline:
                    return value
                time.sleep(0.1)
    finally:
        connection.close()


def fingerprint(url: str, sql: str) -> tuple[Any, ...]:
    """One row of ``sql`` run against ``url``: to compare what two loads stored."""
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return tuple(cursor.fetchone())
    finally:
        connection.close()


def pairs(url: str, query: Any) -> dict[Any, Any]:
    """``{first column: second column}`` of every row of ``query`` (a string, or psycopg2's
    ``sql.Composable``) run against ``url``."""
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query)
            return dict(cursor.fetchall())
    finally:
        connection.close()


def server_version() -> str:
    connection = psycopg2.connect(ADMIN_DSN, application_name="smartup-bench")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return str(cursor.fetchone()[0])
    finally:
        connection.close()
