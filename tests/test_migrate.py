"""migrate.py: applies what is pending, is a no-op the second time, and is safe twice at once."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import psycopg2

from jobs.processes.migrate import MIGRATIONS_DIR
from tests.helpers import PG_URL_BASE, ROOT, admin_sql

ALL_MIGRATIONS = sorted(p.stem for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.py"))


def test_two_migrations_started_at_once_both_succeed_and_the_schema_exists_once():
    name = f"smartup_test_migrate_{os.getpid()}"
    admin_sql(f"DROP DATABASE IF EXISTS {name}")
    admin_sql(f"CREATE DATABASE {name}")
    try:
        env = {**os.environ, "DATABASE_URL": f"{PG_URL_BASE}/{name}"}
        runs = [
            subprocess.Popen(
                [sys.executable, "migrate.py"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=120) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        again = subprocess.run(
            [sys.executable, "migrate.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0
        assert '"applied": []' in again.stdout

        connection = psycopg2.connect(f"{PG_URL_BASE}/{name}")
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT name FROM migratehistory")
            assert [row[0] for row in cursor.fetchall()] == ALL_MIGRATIONS
            cursor.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_name IN ('products', 'orders', 'order_items', 'smartup_sync_runs')"
            )
            assert cursor.fetchone()[0] == 4
        connection.close()
    finally:
        admin_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_same_migrations_work_on_sqlite(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    for expected in (ALL_MIGRATIONS, []):
        done = subprocess.run(
            [sys.executable, "migrate.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout.splitlines()[-1])["applied"] == expected


def test_a_missing_database_gets_one_line_naming_it_with_createdb_and_exit_1():
    name = f"smartup_test_missing_{os.getpid()}"
    admin_sql(f"DROP DATABASE IF EXISTS {name}")
    result = subprocess.run(
        [sys.executable, "migrate.py"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": f"{PG_URL_BASE}/{name}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1, lines
    assert f"database {name} does not exist" in lines[0]
    assert "createdb " in lines[0] and lines[0].endswith(f" {name}"), lines
