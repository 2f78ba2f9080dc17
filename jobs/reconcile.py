"""Keeping the catalogue honest: products SmartUp no longer sends are marked gone, and
products that come back are revived.

After a *complete, successful* full catalogue export, a stored product whose id the
export did not hold is marked gone: ``is_active = false`` and ``deleted_at`` set, never a
DELETE (order lines point at it). A product seen again in any products export is revived:
``deleted_at`` NULL, ``is_active`` from its own ``state``. Both are set-based: the ids seen
go into a temporary table, and one UPDATE compares, so 100,000 products cost one round of
inserts and one statement, on PostgreSQL and on SQLite alike.

Safety: a wrong filial or a permissions glitch must never empty a shop. A full export
that is empty, or that would mark more than ``max_gone_percent`` of the active catalogue
gone, marks nothing and says why.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import peewee as pw
from psycopg2.extras import execute_values

from jobs.announce import announce
from jobs.models import Product, is_postgres

SEEN_TABLE = "smartup_seen_products"
INSERT_PAGE = 5000
SOURCE = "smartup"


class SeenIds:
    """The product ids a run received, kept small: as a set of key tuples 200,000 ids hold
    about 30 MB, which a full export would add to the sync's peak memory. An id that is a
    plain decimal number (SmartUp's are) is kept as an 8-byte integer; any other as text.
    The same id may be added twice."""

    def __init__(self) -> None:
        self._numbers = array("q")
        self._others: set[str] = set()

    def add(self, key: tuple[str, ...]) -> None:
        product_id = key[-1]
        if _plain_number(product_id):
            self._numbers.append(int(product_id))
        else:
            self._others.add(product_id)

    def __bool__(self) -> bool:
        return bool(self._numbers) or bool(self._others)

    def ids(self) -> Iterator[str]:
        """Every id added, as text (an id added twice comes twice)."""
        yield from map(str, self._numbers)
        yield from self._others


def _plain_number(text: str) -> bool:
    """Digits that ``str(int(text))`` gives back exactly, within 64 bits."""
    return (
        0 < len(text) <= 18
        and text.isascii()
        and text.isdigit()
        and (text[0] != "0" or text == "0")
    )


@dataclass(frozen=True)
class Reconciled:
    """What reconciliation did: products marked gone and revived, or why it marked none."""

    gone: int = 0
    revived: int = 0
    refused: str | None = None


def reconcile_products(
    seen: SeenIds,
    *,
    complete_catalogue: bool,
    max_gone_percent: float,
    now: datetime | None = None,
    run_id: int | None = None,
) -> Reconciled:
    """Revive the products in ``seen`` (keys ``("smartup", product_id)`` received by this
    run); when ``complete_catalogue``, also mark gone the active products not in it.

    On PostgreSQL, rows marked gone or revived get ``last_synced_at = now()`` (the
    transaction's time, after the run's loads), and one ``NOTIFY smartup_sync`` says
    how many, in the same transaction (:mod:`jobs.announce`)."""
    db = Product._meta.database
    if isinstance(db, pw.DatabaseProxy):
        db = db.obj  # the database the models are bound to
    now = now or datetime.now(UTC)
    if complete_catalogue and not seen:
        if not _count_stored(db):  # nothing stored, nothing to lose: an empty shop stays so
            return Reconciled()
        return Reconciled(refused="the full catalogue export was empty: no product marked gone")
    with db.atomic():
        _fill_seen(db, seen.ids())
        try:
            reconciled = _reconcile(db, complete_catalogue, max_gone_percent, now)
        finally:
            db.execute_sql(f"DROP TABLE {SEEN_TABLE}")
        if is_postgres(db):
            announce(
                db.cursor(), "products", run_id, gone=reconciled.gone, revived=reconciled.revived
            )
    return reconciled


def _reconcile(
    db: pw.Database, complete_catalogue: bool, max_gone_percent: float, now: datetime
) -> Reconciled:
    revived = _revive(db, now)
    if not complete_catalogue:
        return Reconciled(revived=revived)
    active, missing = _count_missing(db)
    if active and missing * 100 > max_gone_percent * active:
        return Reconciled(
            revived=revived,
            refused=(
                f"the full catalogue export lacks {missing} of {active} active products "
                f"({missing * 100 / active:.0f}%, more than SYNC_MAX_GONE_PERCENT="
                f"{max_gone_percent:g}): no product marked gone"
            ),
        )
    return Reconciled(gone=_mark_gone(db, now), revived=revived)


def _fill_seen(db: pw.Database, ids: Iterable[str]) -> None:
    db.execute_sql(f"CREATE TEMPORARY TABLE {SEEN_TABLE} (external_id TEXT PRIMARY KEY)")
    insert = f"INSERT INTO {SEEN_TABLE} (external_id) VALUES "
    ids = iter(ids)
    while page := list(islice(ids, INSERT_PAGE)):
        if is_postgres(db):
            execute_values(
                db.cursor(),
                insert + "%s ON CONFLICT DO NOTHING",
                [(i,) for i in page],
                page_size=INSERT_PAGE,
            )
        else:
            db.execute_sql(
                insert + ", ".join(["(?)"] * len(page)) + " ON CONFLICT DO NOTHING", page
            )


_UNSEEN = (
    f"external_source = '{SOURCE}' AND deleted_at IS NULL AND NOT EXISTS "
    f"(SELECT 1 FROM {SEEN_TABLE} s WHERE s.external_id = products.external_id)"
)


def _count_stored(db: pw.Database) -> int:
    row = db.execute_sql(
        f"SELECT count(*) FROM products WHERE external_source = '{SOURCE}' AND deleted_at IS NULL"
    ).fetchone()
    return int(row[0])


def _count_missing(db: pw.Database) -> tuple[int, int]:
    row = db.execute_sql(
        f"SELECT (SELECT count(*) FROM products WHERE external_source = '{SOURCE}' "
        f"AND deleted_at IS NULL), (SELECT count(*) FROM products WHERE {_UNSEEN})"
    ).fetchone()
    return int(row[0]), int(row[1])


def _synced_at(db: pw.Database, now: datetime) -> tuple[str, tuple[Any, ...]]:
    """``last_synced_at``'s new value: the transaction's time on PostgreSQL (later than
    any load of the run, so a "changed since" cursor never skips it), ``now`` elsewhere."""
    if is_postgres(db):
        return "now()", ()
    return db.param, (Product.last_synced_at.db_value(now),)


def _mark_gone(db: pw.Database, now: datetime) -> int:
    param = db.param
    synced_at, synced_param = _synced_at(db, now)
    cursor = db.execute_sql(
        f"UPDATE products SET is_active = {param}, deleted_at = {param}, "
        f"last_synced_at = {synced_at} WHERE {_UNSEEN}",
        (False, Product.deleted_at.db_value(now), *synced_param),
    )
    return int(cursor.rowcount)


def _revive(db: pw.Database, now: datetime) -> int:
    synced_at, synced_param = _synced_at(db, now)
    state = "raw->>'state'" if is_postgres(db) else "json_extract(raw, '$.state')"
    cursor = db.execute_sql(
        f"UPDATE products SET deleted_at = NULL, is_active = ({state} = 'A'), "
        f"last_synced_at = {synced_at} WHERE external_source = '{SOURCE}' "
        f"AND deleted_at IS NOT NULL AND EXISTS "
        f"(SELECT 1 FROM {SEEN_TABLE} s WHERE s.external_id = products.external_id)",
        synced_param,
    )
    return int(cursor.rowcount)
