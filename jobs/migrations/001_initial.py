"""Initial schema: products, orders, order_items and smartup_sync_runs.

Frozen: later changes get migrations of their own. Runs on PostgreSQL and SQLite alike.
"""

import peewee as pw
from peewee_migrate import Migrator

from jobs.models import AwareDateTimeField, JSONField


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    @migrator.create_model
    class Product(pw.Model):
        external_source = pw.CharField(max_length=32)
        external_id = pw.CharField(max_length=64)
        code = pw.TextField(null=True, index=True)
        name = pw.TextField(null=True)
        short_name = pw.TextField(null=True)
        measure_code = pw.TextField(null=True)
        barcodes = JSONField()
        is_active = pw.BooleanField()
        raw = JSONField()
        content_hash = pw.CharField(max_length=32)
        first_synced_at = AwareDateTimeField()
        last_synced_at = AwareDateTimeField()

        class Meta:
            table_name = "products"
            indexes = ((("external_source", "external_id"), True),)

    @migrator.create_model
    class Order(pw.Model):
        source_external_id = pw.CharField(max_length=64, unique=True)
        external_id = pw.TextField(null=True)
        filial_id = pw.TextField(null=True)
        filial_code = pw.TextField(null=True)
        status = pw.TextField(null=True)
        deal_time = AwareDateTimeField(null=True)
        delivery_date = pw.DateField(null=True)
        booked_date = pw.DateField(null=True)
        total_amount = pw.DecimalField(max_digits=20, decimal_places=2, null=True)
        currency_code = pw.TextField(null=True)
        person_id = pw.TextField(null=True)
        person_code = pw.TextField(null=True)
        person_name = pw.TextField(null=True)
        raw = JSONField()
        content_hash = pw.CharField(max_length=32)
        first_synced_at = AwareDateTimeField()
        last_synced_at = AwareDateTimeField()

        class Meta:
            table_name = "orders"

    @migrator.create_model
    class OrderItem(pw.Model):
        order = pw.ForeignKeyField(Order, on_delete="CASCADE", column_name="order_id")
        line_no = pw.IntegerField()
        product_unit_id = pw.TextField(null=True)
        product_code = pw.TextField(null=True, index=True)
        product_barcode = pw.TextField(null=True)
        product_name = pw.TextField(null=True)
        product = pw.ForeignKeyField(
            Product, null=True, on_delete="SET NULL", column_name="product_id", index=True
        )
        quantity = pw.DecimalField(max_digits=20, decimal_places=6, null=True)
        sold_quant = pw.DecimalField(max_digits=20, decimal_places=6, null=True)
        return_quant = pw.DecimalField(max_digits=20, decimal_places=6, null=True)
        price = pw.DecimalField(max_digits=20, decimal_places=2, null=True)
        amount = pw.DecimalField(max_digits=20, decimal_places=2, null=True)
        vat_percent = pw.DecimalField(max_digits=20, decimal_places=6, null=True)
        vat_amount = pw.DecimalField(max_digits=20, decimal_places=2, null=True)
        inventory_kind = pw.TextField(null=True)
        warehouse_code = pw.TextField(null=True)

        class Meta:
            table_name = "order_items"
            indexes = ((("order", "line_no"), True),)

    @migrator.create_model
    class SyncRun(pw.Model):
        run_type = pw.CharField(max_length=16)
        status = pw.CharField(max_length=16)
        synced_products_count = pw.IntegerField(default=0)
        synced_orders_count = pw.IntegerField(default=0)
        started_at = AwareDateTimeField()
        finished_at = AwareDateTimeField(null=True)
        duration_s = pw.FloatField(null=True)
        error_message = pw.TextField(null=True)
        job_id = pw.CharField(max_length=64, null=True)
        days_back = pw.IntegerField(null=True)
        products_received = pw.IntegerField(default=0)
        products_inserted = pw.IntegerField(default=0)
        products_updated = pw.IntegerField(default=0)
        products_unchanged = pw.IntegerField(default=0)
        products_rejected = pw.IntegerField(default=0)
        orders_received = pw.IntegerField(default=0)
        orders_inserted = pw.IntegerField(default=0)
        orders_updated = pw.IntegerField(default=0)
        orders_unchanged = pw.IntegerField(default=0)
        orders_rejected = pw.IntegerField(default=0)
        details = JSONField(null=True)

        class Meta:
            table_name = "smartup_sync_runs"
            indexes = ((("run_type", "status"), False), (("started_at",), False))


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    for table in ("smartup_sync_runs", "order_items", "orders", "products"):
        migrator.remove_model(table)
