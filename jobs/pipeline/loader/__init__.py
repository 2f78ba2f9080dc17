"""How parsed rows reach the database, all or nothing per export answer.

Two loaders behind one interface (:class:`Loader`): :class:`PostgresLoader`, the fast path
(COPY into staging and merge, batch by batch), and :class:`PortableLoader`, plain peewee upserts
for SQLite (the demo). Both apply one answer in one transaction, so an answer that breaks
off midway changes nothing, and neither writes a row whose content did not change.
"""

from __future__ import annotations

import peewee as pw

from jobs.models import is_postgres
from jobs.pipeline.loader.portable import PortableLoader
from jobs.pipeline.loader.postgres import PostgresLoader
from jobs.pipeline.loader.targets import ChildTarget, LoadCounts, Loader, LoadTarget, Reference

__all__ = [
    "ChildTarget",
    "LoadCounts",
    "LoadTarget",
    "Loader",
    "PortableLoader",
    "PostgresLoader",
    "Reference",
    "loader_for",
]


def loader_for(db: pw.Database, *, run_id: int | None = None) -> Loader:
    """The fast path on PostgreSQL (announcing changes as run ``run_id``), the portable
    one elsewhere."""
    return PostgresLoader(db, run_id=run_id) if is_postgres(db) else PortableLoader(db)
