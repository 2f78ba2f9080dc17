"""The shop's whole catalogue: product groups and types, each product's categories, price
types, prices, warehouses, stock balances, and the view ``product_stock``.

Also ``order_items.product_external_id`` (the line's SmartUp ``product_id`` as sent), and
indexes on ``last_synced_at`` of ``products`` and ``orders``, which the web app reads by.

Every natural key is one text column, NOT NULL and UNIQUE, built by ``jobs.pipeline.records``.
Foreign keys: ``product_categories.product_id`` cascades (the rows are replaced with their
product); every other one is nullable and set to NULL when its target goes.

``product_stock`` sums ``stock_balances.quantity`` over batches (and cards, expiry dates,
serial numbers) per product, warehouse and condition, for the rows matched to a product.
It carries ``warehouse_external_id`` too, so that stock is told per warehouse even before
the warehouse itself is stored (``warehouse_id`` NULL). On PostgreSQL the sum is exact
(``numeric``); on SQLite, where decimals are kept as text, it is SQLite's floating-point
sum (the demo only).

Runs on PostgreSQL and SQLite alike.
"""

import peewee as pw
from peewee_migrate import Migrator

from jobs.models import AwareDateTimeField, JSONField

PRODUCT_STOCK_VIEW = """
CREATE VIEW product_stock AS
SELECT product_id, warehouse_id, warehouse_external_id, condition, sum(quantity) AS quantity
FROM stock_balances
WHERE product_id IS NOT NULL
GROUP BY product_id, warehouse_id, warehouse_external_id, condition
"""


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    Product = migrator.orm["products"]

    @migrator.create_model
    class ProductGroup(pw.Model):
        external_id = pw.CharField(max_length=64, unique=True)
        code = pw.TextField(null=True)
        name = pw.TextField(null=True)
        product_kind = pw.TextField(null=True)
        is_active = pw.BooleanField()
        raw = JSONField()
        content_hash = pw.CharField(max_length=32)
        first_synced_at = AwareDateTimeField()
        last_synced_at = AwareDateTimeField(index=True)
        deleted_at = AwareDateTimeField(null=True)

        class Meta:
            table_name = "product_groups"

    @migrator.create_model
    class ProductType(pw.Model):
        external_id = pw.CharField(max_length=64, unique=True)
        group_external_id = pw.CharField(max_length=64)
        group = pw.ForeignKeyField(
            ProductGroup, null=True, on_delete="SET NULL", column_name="group_id", index=True
        )
        code = pw.TextField(null=True)
        name = pw.TextField(null=True)
        is_active = pw.BooleanField()
        order_no = pw.TextField(null=True)
        content_hash = pw.CharField(max_length=32, null=True)
        first_synced_at = AwareDateTimeField(null=True)
        last_synced_at = AwareDateTimeField(null=True, index=True)
        deleted_at = AwareDateTimeField(null=True)

        class Meta:
            table_name = "product_types"

    @migrator.create_model
    class ProductCategory(pw.Model):
        product = pw.ForeignKeyField(
            Product, on_delete="CASCADE", column_name="product_id", index=True
        )
        line_no = pw.IntegerField()
        group_external_id = pw.TextField(null=True)
        group_code = pw.TextField(null=True)
        type_external_id = pw.TextField(null=True, index=True)
        type_code = pw.TextField(null=True)
        product_type = pw.ForeignKeyField(
            ProductType, null=True, on_delete="SET NULL", column_name="product_type_id", index=True
        )
        content_hash = pw.CharField(max_length=32, null=True)
        first_synced_at = AwareDateTimeField(null=True)
        last_synced_at = AwareDateTimeField(null=True)

        class Meta:
            table_name = "product_categories"
            indexes = ((("product", "line_no"), True),)

    @migrator.create_model
    class PriceType(pw.Model):
        price_type_key = pw.TextField(unique=True)
        external_id = pw.CharField(max_length=64, null=True)
        code = pw.TextField(null=True, index=True)
        name = pw.TextField(null=True)
        short_name = pw.TextField(null=True)
        with_card = pw.BooleanField()
        price_type_kind = pw.TextField(null=True)
        currency_code = pw.TextField(null=True)
        is_active = pw.BooleanField()
        raw = JSONField()
        content_hash = pw.CharField(max_length=32)
        first_synced_at = AwareDateTimeField()
        last_synced_at = AwareDateTimeField(index=True)
        deleted_at = AwareDateTimeField(null=True)

        class Meta:
            table_name = "price_types"

    @migrator.create_model
    class ProductPrice(pw.Model):
        price_key = pw.TextField(unique=True)
        product_code = pw.TextField(index=True)
        product_barcode = pw.TextField(null=True)
        price_type_code = pw.TextField(index=True)
        card_code = pw.TextField(null=True)
        price = pw.DecimalField(max_digits=20, decimal_places=2, null=True)
        currency_code = pw.TextField(null=True)
        product = pw.ForeignKeyField(
            Product, null=True, on_delete="SET NULL", column_name="product_id", index=True
        )
        price_type = pw.ForeignKeyField(
            PriceType, null=True, on_delete="SET NULL", column_name="price_type_id", index=True
        )
        content_hash = pw.CharField(max_length=32)
        first_synced_at = AwareDateTimeField()
        last_synced_at = AwareDateTimeField(index=True)

        class Meta:
            table_name = "product_prices"

    @migrator.create_model
    class Warehouse(pw.Model):
        external_id = pw.CharField(max_length=64, unique=True)
        code = pw.TextField(null=True, index=True)
        name = pw.TextField(null=True)
        raw = JSONField()
        content_hash = pw.CharField(max_length=32)
        first_synced_at = AwareDateTimeField()
        last_synced_at = AwareDateTimeField(index=True)

        class Meta:
            table_name = "warehouses"

    @migrator.create_model
    class StockBalance(pw.Model):
        balance_key = pw.TextField(unique=True)
        warehouse_external_id = pw.CharField(max_length=64, index=True)
        warehouse_code = pw.TextField(null=True)
        product_external_id = pw.CharField(max_length=64, index=True)
        product_code = pw.TextField(null=True, index=True)
        product_barcode = pw.TextField(null=True)
        batch_number = pw.TextField(null=True)
        card_code = pw.TextField(null=True)
        expiry_date = pw.DateField(null=True)
        serial_number = pw.TextField(null=True)
        condition = pw.CharField(max_length=1)
        quantity = pw.DecimalField(max_digits=20, decimal_places=6, null=True)
        input_price = pw.DecimalField(max_digits=20, decimal_places=2, null=True)
        measure_code = pw.TextField(null=True)
        inventory_kind = pw.TextField(null=True)
        balance_date = pw.DateField(null=True)
        product = pw.ForeignKeyField(
            Product, null=True, on_delete="SET NULL", column_name="product_id", index=True
        )
        warehouse = pw.ForeignKeyField(
            Warehouse, null=True, on_delete="SET NULL", column_name="warehouse_id", index=True
        )
        content_hash = pw.CharField(max_length=32)
        first_synced_at = AwareDateTimeField()
        last_synced_at = AwareDateTimeField(index=True)

        class Meta:
            table_name = "stock_balances"

    migrator.sql(PRODUCT_STOCK_VIEW)
    migrator.add_fields("order_items", product_external_id=pw.TextField(null=True, index=True))
    migrator.sql("CREATE INDEX products_last_synced_at ON products (last_synced_at)")
    migrator.sql("CREATE INDEX orders_last_synced_at ON orders (last_synced_at)")


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.sql("DROP INDEX orders_last_synced_at")
    migrator.sql("DROP INDEX products_last_synced_at")
    migrator.remove_fields("order_items", "product_external_id")
    migrator.sql("DROP VIEW product_stock")
    for table in (
        "stock_balances",
        "warehouses",
        "product_prices",
        "price_types",
        "product_categories",
        "product_types",
        "product_groups",
    ):
        migrator.remove_model(table)
