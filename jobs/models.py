"""peewee models for the tables the web app reads, and the database handle.

The same models (and migrations) serve PostgreSQL in production and SQLite for the demo:
the two custom column types below map to ``jsonb``/``timestamptz`` on PostgreSQL and to
``TEXT`` on SQLite, where decimals are kept as text so that money stays exact.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import peewee as pw

database = pw.DatabaseProxy()

POSTGRES_FIELD_TYPES = {"JSONB": "jsonb", "TIMESTAMPTZ": "timestamptz"}
SQLITE_FIELD_TYPES = {"JSONB": "TEXT", "TIMESTAMPTZ": "TEXT", "DECIMAL": "TEXT"}


class JSONField(pw.Field):
    """``jsonb`` on PostgreSQL, JSON text on SQLite. A ``str`` is JSON already encoded (a
    record's raw JSON as received, :class:`jobs.pipeline.records.JSONText`) and is stored
    as is; any other value is encoded."""

    field_type = "JSONB"

    def db_value(self, value: Any) -> str | None:
        if value is None or isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)

    def python_value(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class AwareDateTimeField(pw.Field):
    """``timestamptz`` on PostgreSQL, ISO-8601 text with its offset on SQLite."""

    field_type = "TIMESTAMPTZ"

    def db_value(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("AwareDateTimeField needs a time zone aware datetime")
        return value.isoformat()

    def python_value(self, value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else value


def Money(**kwargs: Any) -> pw.DecimalField:
    return pw.DecimalField(max_digits=20, decimal_places=2, auto_round=False, **kwargs)


def Quantity(**kwargs: Any) -> pw.DecimalField:
    return pw.DecimalField(max_digits=20, decimal_places=6, auto_round=False, **kwargs)


class BaseModel(pw.Model):
    class Meta:
        database = database


class Product(BaseModel):
    id = pw.AutoField()
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
    last_synced_at = AwareDateTimeField(index=True)
    deleted_at = AwareDateTimeField(null=True)  # gone from the last complete catalogue

    class Meta:
        table_name = "products"
        indexes = ((("external_source", "external_id"), True),)


class Order(BaseModel):
    id = pw.AutoField()
    source_external_id = pw.CharField(max_length=64, unique=True)
    external_id = pw.TextField(null=True)
    filial_id = pw.TextField(null=True)
    filial_code = pw.TextField(null=True)
    status = pw.TextField(null=True)
    deal_time = AwareDateTimeField(null=True)
    delivery_date = pw.DateField(null=True)
    booked_date = pw.DateField(null=True)
    total_amount = Money(null=True)
    currency_code = pw.TextField(null=True)
    person_id = pw.TextField(null=True)
    person_code = pw.TextField(null=True)
    person_name = pw.TextField(null=True)
    raw = JSONField()
    content_hash = pw.CharField(max_length=32)
    first_synced_at = AwareDateTimeField()
    last_synced_at = AwareDateTimeField(index=True)
    items: pw.ModelSelect[OrderItem]  # the order's lines (backref of OrderItem.order)

    class Meta:
        table_name = "orders"


class OrderItem(BaseModel):
    id = pw.AutoField()
    order = pw.ForeignKeyField(Order, backref="items", on_delete="CASCADE", column_name="order_id")
    order_id: int
    line_no = pw.IntegerField()
    product_unit_id = pw.TextField(null=True)
    product_code = pw.TextField(null=True, index=True)
    product_barcode = pw.TextField(null=True)
    product_name = pw.TextField(null=True)
    product = pw.ForeignKeyField(
        Product, null=True, on_delete="SET NULL", column_name="product_id", index=True
    )
    product_id: int | None
    quantity = Quantity(null=True)
    sold_quant = Quantity(null=True)
    return_quant = Quantity(null=True)
    price = Money(null=True)
    amount = Money(null=True)
    vat_percent = Quantity(null=True)
    vat_amount = Money(null=True)
    inventory_kind = pw.TextField(null=True)
    warehouse_code = pw.TextField(null=True)
    product_external_id = pw.TextField(null=True, index=True)  # the line's product_id as sent

    class Meta:
        table_name = "order_items"
        indexes = ((("order", "line_no"), True),)


# -- the shop's whole catalogue: groups, types, prices, warehouses, stock ------------------
#
# Every natural key is ONE text column, NOT NULL and UNIQUE, built by jobs.pipeline.records from its
# parts (PostgreSQL's unique indexes treat NULLs as distinct, so a key of several nullable
# columns would let duplicates in). Tables whose rows the loader may write as children of
# another record (product_types, product_categories) keep content_hash and the synced
# times nullable, so that either way of loading them fits. Beyond schema.md: indexes on
# the columns the loader matches foreign keys by (price_types.code, warehouses.code,
# product_prices.product_code/price_type_code, stock_balances.product_external_id/
# warehouse_external_id/product_code, product_categories.type_external_id); warehouses
# have no deleted_at (schema.md gives them none).


class ProductGroup(BaseModel):
    """A dimension of the catalogue (category, brand, ...): ``product_group$export``."""

    id = pw.AutoField()
    external_id = pw.CharField(max_length=64, unique=True)  # product_group_id
    code = pw.TextField(null=True)
    name = pw.TextField(null=True)
    product_kind = pw.TextField(null=True)
    is_active = pw.BooleanField()
    raw = JSONField()
    content_hash = pw.CharField(max_length=32)
    first_synced_at = AwareDateTimeField()
    last_synced_at = AwareDateTimeField(index=True)
    deleted_at = AwareDateTimeField(null=True)  # gone from the last complete export

    class Meta:
        table_name = "product_groups"


class ProductType(BaseModel):
    """A value of a group (one category, one brand): a group's ``product_group_types``."""

    id = pw.AutoField()
    external_id = pw.CharField(max_length=64, unique=True)  # product_type_id
    group_external_id = pw.CharField(max_length=64)
    group = pw.ForeignKeyField(
        ProductGroup, null=True, on_delete="SET NULL", column_name="group_id", index=True
    )
    group_id: int | None
    code = pw.TextField(null=True)
    name = pw.TextField(null=True)
    is_active = pw.BooleanField()
    order_no = pw.TextField(null=True)  # as sent
    content_hash = pw.CharField(max_length=32, null=True)
    first_synced_at = AwareDateTimeField(null=True)
    last_synced_at = AwareDateTimeField(null=True, index=True)
    deleted_at = AwareDateTimeField(null=True)

    class Meta:
        table_name = "product_types"


class ProductCategory(BaseModel):
    """One entry of a product's ``groups``: the product's type within a group. Replaced
    with the product, as order lines are with their order."""

    id = pw.AutoField()
    product = pw.ForeignKeyField(Product, on_delete="CASCADE", column_name="product_id", index=True)
    product_id: int
    line_no = pw.IntegerField()
    group_external_id = pw.TextField(null=True)
    group_code = pw.TextField(null=True)
    type_external_id = pw.TextField(null=True, index=True)
    type_code = pw.TextField(null=True)
    product_type = pw.ForeignKeyField(
        ProductType, null=True, on_delete="SET NULL", column_name="product_type_id", index=True
    )
    product_type_id: int | None
    content_hash = pw.CharField(max_length=32, null=True)
    first_synced_at = AwareDateTimeField(null=True)
    last_synced_at = AwareDateTimeField(null=True)

    class Meta:
        table_name = "product_categories"
        indexes = ((("product", "line_no"), True),)


class PriceType(BaseModel):
    """A price type (retail, dealer, ...). Keyed by ``price_type_key``: ``id:<id>`` when
    SmartUp sent an id, else ``code:<code>``."""

    id = pw.AutoField()
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


class ProductPrice(BaseModel):
    """One price of one product (by code) in one price type (by code), per card."""

    id = pw.AutoField()
    price_key = pw.TextField(unique=True)
    product_code = pw.TextField(index=True)
    product_barcode = pw.TextField(null=True)
    price_type_code = pw.TextField(index=True)
    card_code = pw.TextField(null=True)
    price = Money(null=True)
    currency_code = pw.TextField(null=True)  # the price type's, filled at load
    product = pw.ForeignKeyField(
        Product, null=True, on_delete="SET NULL", column_name="product_id", index=True
    )
    product_id: int | None
    price_type = pw.ForeignKeyField(
        PriceType, null=True, on_delete="SET NULL", column_name="price_type_id", index=True
    )
    price_type_id: int | None
    content_hash = pw.CharField(max_length=32)
    first_synced_at = AwareDateTimeField()
    last_synced_at = AwareDateTimeField(index=True)

    class Meta:
        table_name = "product_prices"


class Warehouse(BaseModel):
    id = pw.AutoField()
    external_id = pw.CharField(max_length=64, unique=True)  # warehouse_id
    code = pw.TextField(null=True, index=True)
    name = pw.TextField(null=True)
    raw = JSONField()
    content_hash = pw.CharField(max_length=32)
    first_synced_at = AwareDateTimeField()
    last_synced_at = AwareDateTimeField(index=True)

    class Meta:
        table_name = "warehouses"


class StockBalance(BaseModel):
    """One row of ``balance$export``: one warehouse, product and batch (and card, expiry
    date, serial number) in one condition (``F`` free, ``B`` booked, ``T`` in transit)."""

    id = pw.AutoField()
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
    quantity = Quantity(null=True)
    input_price = Money(null=True)
    measure_code = pw.TextField(null=True)
    inventory_kind = pw.TextField(null=True)
    balance_date = pw.DateField(null=True)
    product = pw.ForeignKeyField(
        Product, null=True, on_delete="SET NULL", column_name="product_id", index=True
    )
    product_id: int | None
    warehouse = pw.ForeignKeyField(
        Warehouse, null=True, on_delete="SET NULL", column_name="warehouse_id", index=True
    )
    warehouse_id: int | None
    content_hash = pw.CharField(max_length=32)
    first_synced_at = AwareDateTimeField()
    last_synced_at = AwareDateTimeField(index=True)

    class Meta:
        table_name = "stock_balances"


class SyncRun(BaseModel):
    id = pw.AutoField()
    run_type = pw.CharField(max_length=16)
    status = pw.CharField(max_length=16)
    synced_products_count = pw.IntegerField(default=0)
    synced_orders_count = pw.IntegerField(default=0)
    started_at = AwareDateTimeField()
    finished_at = AwareDateTimeField(null=True)
    duration_s = pw.FloatField(null=True)
    error_message = pw.TextField(null=True)
    job_id = pw.CharField(max_length=64, null=True)
    attempt = pw.IntegerField(default=1)  # of the job: RQ retries under the same job id
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
    products_gone = pw.IntegerField(default=0)
    details = JSONField(null=True)
    progress = JSONField(null=True)  # while RUNNING: request in hand, records, elapsed

    class Meta:
        table_name = "smartup_sync_runs"
        indexes = ((("run_type", "status"), False), (("started_at",), False))


class SyncState(BaseModel):
    """Per stream and filial (``""`` when none): how far SmartUp has been read."""

    id = pw.AutoField()
    stream = pw.CharField(max_length=16)
    filial_id = pw.CharField(max_length=32, default="")
    watermark = pw.DateField(null=True)  # newest SmartUp day fully covered by a success
    sealed_through = pw.DateField(null=True)  # newest sealed company day (jobs.day.sealing)
    last_sweep_at = AwareDateTimeField(null=True)  # end of the last complete sweep
    last_success_at = AwareDateTimeField(null=True)
    updated_at = AwareDateTimeField()
    day_range_limit = pw.IntegerField(null=True)  # limits.day_range_limit, as last seen

    class Meta:
        table_name = "smartup_sync_state"
        indexes = ((("stream", "filial_id"), True),)


class QuotaSeen(BaseModel):
    """SmartUp's ``limits`` for one quota pool (``stream`` holds the pool's name), as last
    seen on any export of the pool, and the company day it counts."""

    id = pw.AutoField()
    stream = pw.CharField(max_length=16, unique=True)
    day = pw.DateField()
    limit_quant = pw.IntegerField(null=True)
    request_quant = pw.IntegerField(null=True)
    left_limit_quant = pw.IntegerField(null=True)
    spent = pw.BooleanField(default=False)
    seen_at = AwareDateTimeField()

    class Meta:
        table_name = "smartup_quota"


class AlertState(BaseModel):
    """Per kind: the state the last alert told (``ok``, ``failed``, ``stale``)."""

    id = pw.AutoField()
    kind = pw.CharField(max_length=16, unique=True)
    state = pw.CharField(max_length=16)
    run_id = pw.IntegerField(null=True)
    changed_at = AwareDateTimeField()

    class Meta:
        table_name = "smartup_sync_alerts"


class RegisteredPlan(BaseModel):
    """Per stream: the plan the scheduler registered last (what ``sync_overview`` shows),
    with the company time zone it plans in."""

    id = pw.AutoField()
    stream = pw.CharField(max_length=32, unique=True)
    plan = JSONField()
    timezone = pw.TextField()
    registered_at = AwareDateTimeField()

    class Meta:
        table_name = "smartup_sync_plan"


ALL_MODELS: tuple[type[BaseModel], ...] = (
    Product,
    Order,
    OrderItem,
    SyncRun,
    SyncState,
    QuotaSeen,
    AlertState,
    RegisteredPlan,
    ProductGroup,
    ProductType,
    ProductCategory,
    PriceType,
    ProductPrice,
    Warehouse,
    StockBalance,
)


def open_database(url: str, *, statement_timeout_ms: int | None = None) -> pw.Database:
    """Open ``url`` (``postgresql://`` or ``sqlite:///``), bind the models to it and connect.

    On PostgreSQL ``statement_timeout_ms`` bounds every statement of the session, so that a
    stuck query cannot outlive the job that issued it by more than that.
    """
    parts = urlsplit(url)
    db: pw.Database
    if parts.scheme in ("postgresql", "postgres"):
        # A worker killed mid-query must not leave its query running: PostgreSQL checks
        # every 10 s that the client is still there.
        options = "-c client_connection_check_interval=10000"
        if statement_timeout_ms:
            options += f" -c statement_timeout={statement_timeout_ms}"
        db = pw.PostgresqlDatabase(
            unquote(parts.path.lstrip("/")),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=parts.port,
            field_types=POSTGRES_FIELD_TYPES,
            options=options,
            application_name="smartup-sync",
            connect_timeout=10,
        )
    elif parts.scheme == "sqlite":
        db = pw.SqliteDatabase(
            url[len("sqlite:///") :],
            field_types=SQLITE_FIELD_TYPES,
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000},
        )
    else:
        raise ValueError(f"unsupported database URL scheme {parts.scheme!r}")
    database.initialize(db)
    db.connect(reuse_if_open=True)
    return db


def is_postgres(db: pw.Database) -> bool:
    return isinstance(db, pw.PostgresqlDatabase)
