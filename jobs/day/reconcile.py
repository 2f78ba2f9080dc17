"""What a complete answer settles: rows SmartUp no longer sends are marked gone (and come
back when seen again), or deleted. One mechanism, two modes, declared per export
(:class:`Settle`):

- :data:`MARK_GONE` (the catalogue, groups, price types): after a *complete, successful*
  export, a stored row whose key the export did not hold gets ``is_active = false`` and
  ``deleted_at``, never a DELETE (other rows point at it). A row seen again in any export is
  revived: ``deleted_at`` NULL, ``is_active`` from its own ``state`` in ``raw``.
- :data:`~jobs.pipeline.streams.settle.DELETE` (prices, stock balances: nothing points at
  them): after a complete snapshot, a stored row whose key the snapshot did not hold is
  deleted.

Both are set-based: the keys seen go into a temporary table, and one statement compares,
so 100,000 rows cost one round of inserts and one statement, on PostgreSQL and on SQLite
alike. On PostgreSQL, the rows marked gone or revived get ``last_synced_at = now()`` (the
time of the settling transaction, after the run's loads, so that a web app's cursor taken
after a load cannot skip them), and one ``NOTIFY smartup_sync`` says how many, in the same
transaction (:mod:`jobs.pipeline.loader.announce`).

Safety (the brake): a wrong filial or a permissions glitch must never empty a shop. A
complete export that is empty, or that would mark gone (delete) more than
``max_gone_percent`` of the active (stored) rows, settles nothing and says why.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

import peewee as pw
from psycopg2.extras import execute_values

from jobs.models import AwareDateTimeField, database, is_postgres
from jobs.pipeline.loader.announce import announce
from jobs.pipeline.streams.settle import MARK_GONE, Settle

SEEN_TABLE = "smartup_seen_keys"
HELD_TABLE = "smartup_held_keys"
INSERT_PAGE = 5000
_STAMP = AwareDateTimeField()


class SeenIds:
    """The keys a run received, kept small: as a set of key tuples 200,000 ids hold about
    30 MB, which a full export would add to the sync's peak memory. A key (its last part)
    that is a plain decimal number (SmartUp's ids are) is kept as an 8-byte integer; any
    other as text. The same key may be added twice.

    A *holder* (:meth:`hold`) names an answer's record that was rejected whole (a price
    entry, by its product's code): every stored row it holds stays, whatever its key
    (see :attr:`Settle.holder_column`)."""

    def __init__(self) -> None:
        self._numbers = array("q")
        self._others: set[str] = set()
        self._holders: set[str] = set()

    def add(self, key: tuple[str, ...]) -> None:
        value = key[-1]
        if _plain_number(value):
            self._numbers.append(int(value))
        else:
            self._others.add(value)

    def hold(self, holder: str) -> None:
        self._holders.add(holder)

    def __bool__(self) -> bool:
        return bool(self._numbers) or bool(self._others) or bool(self._holders)

    def holders(self) -> Iterator[str]:
        yield from self._holders

    def ids(self) -> Iterator[str]:
        """Every key added, as text (a key added twice comes twice)."""
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
class Settled:
    """What settling did: rows marked gone (or deleted) and revived, or why it did none."""

    gone: int = 0
    revived: int = 0
    refused: str | None = None


def settle(
    rule: Settle,
    seen: SeenIds,
    *,
    complete: bool,
    max_gone_percent: float,
    now: datetime | None = None,
    stream: str | None = None,
    run_id: int | None = None,
) -> Settled:
    """Revive the rows in ``seen`` (:data:`MARK_GONE`); when ``complete``, also mark gone
    (delete) the rows of the scope that ``seen`` lacks, unless the brake holds."""
    db = _database()
    now = now or datetime.now(UTC)
    mark = rule.mode == MARK_GONE
    verb = "marked gone" if mark else "deleted"
    if not mark and not complete:
        return Settled()
    if complete and not seen:
        if not _count(db, rule, missing=False):  # nothing stored, nothing to lose
            return Settled()
        return Settled(refused=f"the full {rule.whole} export was empty: no {rule.noun} {verb}")
    with db.atomic():
        _fill_seen(db, seen.ids())
        if rule.holder_column:
            _fill_seen(db, seen.holders(), table=HELD_TABLE)
        try:
            settled = _settle(
                db, rule, complete=complete, max_gone_percent=max_gone_percent, now=now
            )
        finally:
            db.execute_sql(f"DROP TABLE {SEEN_TABLE}")
            if rule.holder_column:
                db.execute_sql(f"DROP TABLE {HELD_TABLE}")
        if stream is not None and is_postgres(db):  # heard only if this transaction commits
            announce(db.cursor(), stream, run_id, gone=settled.gone, revived=settled.revived)
    return settled


def _settle(
    db: pw.Database, rule: Settle, *, complete: bool, max_gone_percent: float, now: datetime
) -> Settled:
    """The statements of :func:`settle`, the keys seen being in :data:`SEEN_TABLE`."""
    mark = rule.mode == MARK_GONE
    verb = "marked gone" if mark else "deleted"
    revived = _revive(db, rule, now) if mark else 0
    if not complete:
        return Settled(revived=revived)
    stored, missing = _count(db, rule, missing=False), _count(db, rule, missing=True)
    if stored and missing * 100 > max_gone_percent * stored:
        which = "active" if mark else "stored"
        return Settled(
            revived=revived,
            refused=(
                f"the full {rule.whole} export lacks {missing} of {stored} {which} "
                f"{rule.noun}s ({missing * 100 / stored:.0f}%, more than "
                f"SYNC_MAX_GONE_PERCENT={max_gone_percent:g}): no {rule.noun} {verb}"
            ),
        )
    gone = _mark_gone(db, rule, now) if mark else _delete(db, rule)
    if mark and gone and rule.after_gone:
        run_statements(rule.after_gone, now=now)
    return Settled(gone=gone, revived=revived)


def _database() -> pw.Database:
    bound: pw.Database = database.obj  # the database the models are bound to
    return bound


def _fill_seen(db: pw.Database, ids: Iterable[str], *, table: str = SEEN_TABLE) -> None:
    db.execute_sql(f"CREATE TEMPORARY TABLE {table} (key TEXT PRIMARY KEY)")
    insert = f"INSERT INTO {table} (key) VALUES "
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


def _where(rule: Settle, *extra: str) -> str:
    return " AND ".join(filter(None, (rule.scope, *extra))) or "true"


def _seen(rule: Settle) -> str:
    seen = f"EXISTS (SELECT 1 FROM {SEEN_TABLE} s WHERE s.key = {rule.table}.{rule.key_column})"
    if not rule.holder_column:
        return seen
    held = f"EXISTS (SELECT 1 FROM {HELD_TABLE} h WHERE h.key = {rule.table}.{rule.holder_column})"
    return f"({seen} OR {held})"


def _count(db: pw.Database, rule: Settle, *, missing: bool) -> int:
    conditions = ["deleted_at IS NULL"] if rule.mode == MARK_GONE else []
    if missing:
        conditions.append(f"NOT {_seen(rule)}")
    row = db.execute_sql(f"SELECT count(*) FROM {rule.table} WHERE {_where(rule, *conditions)}")
    return int(row.fetchone()[0])


def _mark_gone(db: pw.Database, rule: Settle, now: datetime) -> int:
    param = db.param
    forget = ", content_hash = ''" if rule.forget_hash else ""
    synced, stamp = _synced_at(db, now)
    cursor = db.execute_sql(
        f"UPDATE {rule.table} SET is_active = {param}, deleted_at = {param}, "
        f"last_synced_at = {synced}{forget} "
        f"WHERE {_where(rule, 'deleted_at IS NULL', f'NOT {_seen(rule)}')}",
        (False, _STAMP.db_value(now), *stamp),
    )
    return int(cursor.rowcount)


def _delete(db: pw.Database, rule: Settle) -> int:
    cursor = db.execute_sql(f"DELETE FROM {rule.table} WHERE {_where(rule, f'NOT {_seen(rule)}')}")
    return int(cursor.rowcount)


def _revive(db: pw.Database, rule: Settle, now: datetime) -> int:
    state = "raw->>'state'" if is_postgres(db) else "json_extract(raw, '$.state')"
    synced, stamp = _synced_at(db, now)
    cursor = db.execute_sql(
        f"UPDATE {rule.table} SET deleted_at = NULL, is_active = ({state} = 'A'), "
        f"last_synced_at = {synced} "
        f"WHERE {_where(rule, 'deleted_at IS NOT NULL', _seen(rule))}",
        stamp,
    )
    return int(cursor.rowcount)


def _synced_at(db: pw.Database, now: datetime) -> tuple[str, tuple[str, ...]]:
    """The ``last_synced_at`` of a row settled: PostgreSQL's ``now()`` (the transaction's
    time, after this run's loads committed), else ``now`` as a parameter."""
    if is_postgres(db):
        return "now()", ()
    return db.param, (str(_STAMP.db_value(now)),)


def run_statements(statements: Iterable[str], *, now: datetime) -> None:
    """Run SQL statements of a declaration, each ``%s`` standing for ``now``, in one
    transaction, on PostgreSQL or SQLite."""
    db = _database()
    stamp = _STAMP.db_value(now)
    with db.atomic():
        for statement in statements:
            db.execute_sql(statement.replace("%s", db.param), (stamp,) * statement.count("%s"))
