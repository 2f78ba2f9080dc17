"""Every attempt of a job is its own run: ``smartup_sync_runs.attempt`` (1, 2, 3, ...).

RQ retries a failed or abandoned job under the same job id; the attempt number tells the
rows of one job apart, so a killed attempt stays FAILED next to the retry that followed.
Plain SQL, so that the migration depends on no other migration's model state.
"""

import peewee as pw
from peewee_migrate import Migrator


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.sql("ALTER TABLE smartup_sync_runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1")


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.sql("ALTER TABLE smartup_sync_runs DROP COLUMN attempt")
