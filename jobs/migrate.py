"""Apply pending peewee-migrate migrations: ``python migrate.py`` (the ``release`` process).

Safe to run twice, and twice at once: on PostgreSQL the whole run holds an advisory lock,
so a second copy waits for the first and then finds nothing pending.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee as pw
from peewee_migrate import Router

from jobs.models import is_postgres, open_database

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
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
    from jobs.logs import configure_logging, get_logger
    from jobs.settings import SettingsError, load_database_url

    configure_logging()
    try:
        database_url = load_database_url()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    applied = apply_migrations(database_url)
    get_logger().info("migrate.done", applied=applied)
    return 0


if __name__ == "__main__":
    sys.exit(main())
