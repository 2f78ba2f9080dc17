"""``make dev``: the real queue flow on this machine, in one command.

Starts the SmartUp simulator as a process, creates the local database if it is missing,
applies the migrations, then runs the Procfile's ``worker`` and ``scheduler`` under honcho
(with ``.venv/bin`` first on ``PATH``, so the Procfile's ``rq`` is found) until Ctrl-C.
Every sync is a real job on the local Redis, made by the real worker against the
simulator. Nothing is read from ``.env``: a developer's ``.env`` may point elsewhere.

``DEV_DATABASE_URL`` (default ``postgresql://root@127.0.0.1:5432/smartup_dev``) and
``DEV_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) choose where it runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DEV_DIR = ROOT / ".dev"
USER, PASSWORD = "dev@smartup", "dev-secret"


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of ``url`` when it does not exist yet."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        return
    import psycopg2

    name = unquote(parts.path.lstrip("/"))
    connection = psycopg2.connect(
        dbname="postgres",
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=parts.hostname,
        port=parts.port,
    )
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
                print(f"dev: created database {name}", file=sys.stderr)
    finally:
        connection.close()


def main() -> int:
    database_url = os.environ.get(
        "DEV_DATABASE_URL", "postgresql://root@127.0.0.1:5432/smartup_dev"
    )
    redis_url = os.environ.get("DEV_REDIS_URL", "redis://127.0.0.1:6379/0")
    ensure_database(database_url)
    simulator = subprocess.Popen(
        [
            str(BIN / "python"),
            "-m",
            "jobs.simulator",
            "--products",
            "2000",
            "--orders",
            "500",
            "--user",
            USER,
            "--password",
            PASSWORD,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert simulator.stdout is not None
        base_url = simulator.stdout.readline().strip().partition("=")[2]
        if not base_url:
            print("dev: the simulator did not start", file=sys.stderr)
            return 1
        values = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SMARTUP_BASE_URL": base_url,
            "SMARTUP_BASIC_USER": USER,
            "SMARTUP_BASIC_PASS": PASSWORD,
            "SMARTUP_FILIAL_ID": "100",
            "SYNC_INTERVAL_SECONDS": "60",
        }
        DEV_DIR.mkdir(exist_ok=True)
        env_file = DEV_DIR / "dev.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        environ = {**os.environ, **values, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        print(f"dev: simulator at {base_url}; database {database_url}; Redis {redis_url}")
        migrated = subprocess.run([str(BIN / "python"), "migrate.py"], cwd=ROOT, env=environ)
        if migrated.returncode:
            return migrated.returncode
        print(
            "dev: worker and scheduler under honcho (Ctrl-C stops everything); in another "
            "shell: env $(cat .dev/dev.env) .venv/bin/python -m jobs status"
        )
        try:
            return subprocess.run(
                [str(BIN / "honcho"), "start", "-e", str(env_file), "worker", "scheduler"],
                cwd=ROOT,
                env=environ,
            ).returncode
        except KeyboardInterrupt:
            return 0
    finally:
        simulator.terminate()
        simulator.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
