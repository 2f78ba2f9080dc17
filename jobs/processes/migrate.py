"""Apply pending peewee-migrate migrations: ``python migrate.py`` (the ``release`` process).

Safe to run twice, and twice at once: on PostgreSQL the whole run holds an advisory lock,
so a second copy waits for the first and then finds nothing pending.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import peewee as pw
from peewee_migrate import Router

from jobs.logs import configure_logging, get_logger
from jobs.models import is_postgres, open_database
from jobs.run.rows import one_line
from jobs.settings import SettingsError, load_database_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_LOCK_KEY = 0x5A5F_4D49  # any constant shared by every copy of migrate.py


@contextmanager
def _migration_lock(db: pw.Database) -> Iterator[None]:
    if not is_postgres(db):
        yield
        return
    db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        yield
    finally:
        db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def apply_migrations(database_url: str) -> list[str]:
    """Apply every pending migration to ``database_url``; return the names applied."""
    db = open_database(database_url)
    try:
        with _migration_lock(db):
            router = Router(db, migrate_dir=MIGRATIONS_DIR, ignore=["basemodel"])
            return router.run()
    finally:
        db.close()


def main() -> int:
    configure_logging()
    try:
        database_url = load_database_url()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        applied = apply_migrations(database_url)
    except (pw.OperationalError, pw.InterfaceError) as error:
        print(cannot_migrate(database_url, error), file=sys.stderr)
        return 1
    get_logger().info("migrate.done", applied=applied)
    return 0


def cannot_migrate(database_url: str, error: Exception) -> str:
    """One line for a database that cannot be reached or does not exist: its name, where,
    and what to do (``createdb`` for a missing one). Never the URL's password."""
    parts = urlsplit(database_url)
    name = unquote(parts.path.lstrip("/"))
    where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
    if f'database "{name}" does not exist' in str(error):
        options = [f"-h {parts.hostname}"] if parts.hostname else []
        options += [f"-p {parts.port}"] if parts.port else []
        options += [f"-U {unquote(parts.username)}"] if parts.username else []
        command = " ".join(["createdb", *options, name])
        return f"migrate: database {name} does not exist on {where}; create it first: {command}"
    secrets = [unquote(parts.password)] if parts.password else []
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return one_line(f"migrate: cannot reach database {name} on {where}: {first}", secrets=secrets)


if __name__ == "__main__":
    sys.exit(main())
