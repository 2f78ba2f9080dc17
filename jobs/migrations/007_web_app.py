"""What the web app reads: the plan the scheduler registered, and an index on
``last_synced_at`` of each table it reads with a "changed since" cursor.

``smartup_sync_plan`` holds, per stream, the plan ``schedule.py`` registered last (the
web app's ``sync_overview`` shows it rather than re-planning from its own environment).
The indexes are created only where missing (another migration may have made them under
the same names). Runs on PostgreSQL and SQLite alike.
"""

import peewee as pw
from peewee_migrate import Migrator

from jobs.models import AwareDateTimeField, JSONField

CURSOR_INDEXES = {"products": "products_last_synced_at", "orders": "orders_last_synced_at"}


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    @migrator.create_model
    class RegisteredPlan(pw.Model):
        stream = pw.CharField(max_length=32, unique=True)
        plan = JSONField()
        timezone = pw.TextField()
        registered_at = AwareDateTimeField()

        class Meta:
            table_name = "smartup_sync_plan"

    for table, index in CURSOR_INDEXES.items():
        migrator.sql(f"CREATE INDEX IF NOT EXISTS {index} ON {table} (last_synced_at)")


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    for index in CURSOR_INDEXES.values():
        migrator.sql(f"DROP INDEX IF EXISTS {index}")
    migrator.remove_model("smartup_sync_plan")
