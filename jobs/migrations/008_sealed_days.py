"""Sealed days: ``smartup_sync_state.sealed_through``, the newest company day sealed for
a stream and filial (see ``jobs/day/sealing.py``); NULL until a request seals one.

Runs on PostgreSQL and SQLite alike.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.add_fields("smartup_sync_state", sealed_through=pw.DateField(null=True))


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.remove_fields("smartup_sync_state", "sealed_through")
