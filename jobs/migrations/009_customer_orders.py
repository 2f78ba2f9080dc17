"""An index for the web app's "a customer's orders" (README "Reading the data"): orders by
``person_id``, newest first, so that one customer's orders are found without reading
every order. Created only where missing. Runs on PostgreSQL and SQLite alike.
"""

import peewee as pw
from peewee_migrate import Migrator

INDEX = "orders_person_id_deal_time"


def migrate(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.sql(f"CREATE INDEX IF NOT EXISTS {INDEX} ON orders (person_id, deal_time DESC)")


def rollback(migrator: Migrator, database: pw.Database, *, fake: bool = False) -> None:
    migrator.sql(f"DROP INDEX IF EXISTS {INDEX}")
