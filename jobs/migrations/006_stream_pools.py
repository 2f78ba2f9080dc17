"""Streams declared, quotas kept per pool: the ``day_range_limit`` SmartUp last sent, per
stream and filial (``smartup_sync_state``), and the quota rows of the pools.

``smartup_quota`` rows were kept per stream (``products``, ``orders``); they are now kept
per quota pool (``reference``, ``documents``), so the old rows are renamed to their pool's.
Runs on PostgreSQL and SQLite alike.
"""

import peewee as pw
from peewee_migrate import Migrator

POOL_OF = {"products": "reference", "orders": "documents"}


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.add_fields("smartup_sync_state", day_range_limit=pw.IntegerField(null=True))
    for stream, pool in POOL_OF.items():
        migrator.sql(
            f"UPDATE smartup_quota SET stream = '{pool}' WHERE stream = '{stream}' "
            f"AND NOT EXISTS (SELECT 1 FROM smartup_quota q WHERE q.stream = '{pool}')"
        )


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    for stream, pool in POOL_OF.items():
        migrator.sql(f"UPDATE smartup_quota SET stream = '{stream}' WHERE stream = '{pool}'")
    migrator.remove_fields("smartup_sync_state", "day_range_limit")
