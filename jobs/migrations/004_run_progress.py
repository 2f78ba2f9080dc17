"""What operators watch: a running run's progress, and the alert state of each kind.

``smartup_sync_runs.progress`` holds the progress of a RUNNING run (the request in hand,
records received, elapsed time), written while the run works. ``smartup_sync_alerts``
keeps, per kind, the state the last alert told (``ok``, ``failed``, ``stale``), so that an
alert is sent on a change of state only, even when Redis restarts empty.

Runs on PostgreSQL and SQLite alike.
"""

import peewee as pw
from peewee_migrate import Migrator

from jobs.models import AwareDateTimeField, JSONField


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.add_fields("smartup_sync_runs", progress=JSONField(null=True))

    @migrator.create_model
    class AlertState(pw.Model):
        kind = pw.CharField(max_length=16, unique=True)
        state = pw.CharField(max_length=16)
        run_id = pw.IntegerField(null=True)
        changed_at = AwareDateTimeField()

        class Meta:
            table_name = "smartup_sync_alerts"


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.remove_model("smartup_sync_alerts")
    migrator.remove_fields("smartup_sync_runs", "progress")
