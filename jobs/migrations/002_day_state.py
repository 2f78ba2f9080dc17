"""What lasts between runs: per-stream sync state, SmartUp's quota as last seen, and
products that vanished from the catalogue (``products.deleted_at``, ``products_gone``).

Runs on PostgreSQL and SQLite alike.
"""

import peewee as pw
from peewee_migrate import Migrator

from jobs.models import AwareDateTimeField


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    @migrator.create_model
    class SyncState(pw.Model):
        stream = pw.CharField(max_length=16)
        filial_id = pw.CharField(max_length=32, default="")
        watermark = pw.DateField(null=True)
        last_sweep_at = AwareDateTimeField(null=True)
        last_success_at = AwareDateTimeField(null=True)
        updated_at = AwareDateTimeField()

        class Meta:
            table_name = "smartup_sync_state"
            indexes = ((("stream", "filial_id"), True),)

    @migrator.create_model
    class QuotaSeen(pw.Model):
        stream = pw.CharField(max_length=16, unique=True)
        day = pw.DateField()
        limit_quant = pw.IntegerField(null=True)
        request_quant = pw.IntegerField(null=True)
        left_limit_quant = pw.IntegerField(null=True)
        spent = pw.BooleanField(default=False)
        seen_at = AwareDateTimeField()

        class Meta:
            table_name = "smartup_quota"

    migrator.add_fields("products", deleted_at=AwareDateTimeField(null=True))
    migrator.add_fields("smartup_sync_runs", products_gone=pw.IntegerField(default=0))


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.remove_fields("smartup_sync_runs", "products_gone")
    migrator.remove_fields("products", "deleted_at")
    migrator.remove_model("smartup_quota")
    migrator.remove_model("smartup_sync_state")
