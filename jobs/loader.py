"""How parsed rows reach the database, all or nothing per export answer.

Two loaders behind one interface, :meth:`Loader.load`:

- :class:`PostgresLoader`, the fast path: rows are streamed with ``COPY`` into a staging
  table, duplicates are dropped there (the last one wins), and one
  ``INSERT ... ON CONFLICT DO UPDATE ... WHERE content_hash IS DISTINCT FROM`` merges
  them, so an unchanged row is never written. Child rows (order lines) of the parents that
  changed are replaced in two more statements. Memory stays flat: only one COPY buffer is
  held at a time.
- :class:`PortableLoader`, plain peewee upserts in batches, for SQLite (the demo).

Both run inside one transaction: an answer that breaks off midway changes nothing.
"""

from __future__ import annotations

import io
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, Protocol, cast

import peewee as pw

from jobs.records import ParsedRecord
from models import is_postgres

COPY_BUFFER_BYTES = 4 * 1024 * 1024
PORTABLE_BATCH_ROWS = 500


@dataclass(frozen=True, kw_only=True)
class Reference:
    """``column`` of a child row points to ``table.id`` of the row whose ``target_column``
    equals the child's ``source_column`` (NULL when there is none)."""

    column: str
    table: str
    target_column: str
    source_column: str


@dataclass(frozen=True, kw_only=True)
class ChildTarget:
    """Rows that belong to a parent row and are replaced with it (order lines)."""

    model: type[pw.Model]
    columns: tuple[str, ...]
    parent_column: str
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LoadTarget:
    """Where one stream's rows go: table (as a model), row columns, natural key."""

    model: type[pw.Model]
    columns: tuple[str, ...]
    key: tuple[str, ...]
    hash_column: str = "content_hash"
    child: ChildTarget | None = None
    # References elsewhere that may point at this table: filled in after it changes.
    referenced_by: tuple[tuple[ChildTarget, Reference], ...] = ()

    def __post_init__(self) -> None:
        missing = [c for c in (*self.key, self.hash_column) if c not in self.columns]
        if missing:
            raise ValueError(f"key or hash columns {missing} are not among the columns")

    @property
    def table(self) -> str:
        return str(self.model._meta.table_name)


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def stored(self) -> int:
        return self.inserted + self.updated + self.unchanged


class Loader(Protocol):
    def stored_hashes(
        self, target: LoadTarget, keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], str]:
        """The content hash stored for each of ``keys`` that has a row (one query)."""
        ...

    def load(self, target: LoadTarget, records: Iterable[ParsedRecord]) -> LoadCounts:
        """Store ``records`` in one transaction and count what changed. A record whose
        ``row`` is None is already stored unchanged: it is counted, not written."""
        ...


def loader_for(db: pw.Database) -> Loader:
    return PostgresLoader(db) if is_postgres(db) else PortableLoader(db)


def _now() -> datetime:
    return datetime.now(UTC)


# -- PostgreSQL -----------------------------------------------------------------------


def _copy_text(text: str) -> str:
    """Escape text for COPY's text format. Most values hold nothing to escape, and
    ``in`` tests are far cheaper than building a new string."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t")
        text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text


_JSON_SAFE_TEXT = re.compile(r'[^"\\\x00-\x1f]*')


def _is_plain_text_list(value: Any) -> bool:
    """A list of strings with nothing JSON would escape."""
    return (
        isinstance(value, list)
        and all(type(item) is str for item in value)
        and _JSON_SAFE_TEXT.fullmatch("".join(value)) is not None
    )


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return _copy_text(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if _is_plain_text_list(value):  # barcodes: JSON without json.dumps
        return '["' + '","'.join(value) + '"]' if value else "[]"
    if isinstance(value, (list, dict)):
        return _copy_text(json.dumps(value, ensure_ascii=False))
    return str(value)


def _key_only_line(target: LoadTarget) -> Callable[[int, ParsedRecord], str]:
    """COPY text for a record stored unchanged: its key and hash, NULL elsewhere. It is
    staged anyway so that, when an export holds an id twice, the last copy still wins."""
    key_positions = [target.columns.index(column) for column in target.key]
    hash_position = target.columns.index(target.hash_column)

    def line(seq: int, record: ParsedRecord) -> str:
        values = ["\\N"] * len(target.columns)
        for position, value in zip(key_positions, record.key, strict=True):
            values[position] = _copy_text(value)
        values[hash_position] = record.content_hash
        return f"{seq}\tt\t" + "\t".join(values) + "\n"

    return line


class _CopySender:
    """Runs COPY statements on a thread of its own, one at a time in order, so that
    PostgreSQL takes in one batch while this process parses the next (psycopg2 lets go of
    the GIL while it waits). At most one batch waits while another is sent.

    psycopg2 does not keep a COPY and another statement on the same connection apart:
    every other use of the connection meanwhile must hold :attr:`connection_lock`."""

    def __init__(self, connection: Any) -> None:
        self.connection_lock = threading.Lock()
        self._cursor = connection.cursor()
        self._batches: queue.Queue[tuple[str, str] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="copy-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            if self._error is None:
                sql, text = batch
                try:
                    with self.connection_lock:
                        self._cursor.copy_expert(sql, io.StringIO(text), size=COPY_BUFFER_BYTES)
                except BaseException as error:  # handed to the caller's thread
                    self._error = error

    def send(self, sql: str, text: str) -> None:
        self._raise_error()
        self._batches.put((sql, text))

    def close(self) -> None:
        """Wait until every batch is sent; raise the first error, if any."""
        self._batches.put(None)
        self._thread.join()
        self._cursor.close()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


class _CopyBuffer:
    """Rows as COPY text, handed to the sender whenever the buffer fills up."""

    def __init__(self, sender: _CopySender, table: str, columns: Sequence[str]) -> None:
        self._sender = sender
        self._sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        self._lines: list[str] = []
        self._size = 0

    def add(self, values: Iterable[Any]) -> None:
        self.add_line("\t".join(map(_copy_value, values)) + "\n")

    def add_line(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line)
        if self._size >= COPY_BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._lines:
            self._sender.send(self._sql, "".join(self._lines))
            self._lines, self._size = [], 0


class PostgresLoader:
    """COPY into staging, then one merge statement per table."""

    def __init__(self, db: pw.Database) -> None:
        self.db = db
        self._sender: _CopySender | None = None  # while a load streams rows in

    def stored_hashes(
        self, target: LoadTarget, keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], str]:
        if not keys:
            return {}
        with self._sender.connection_lock if self._sender else nullcontext():
            return self._stored_hashes(target, keys)

    def _stored_hashes(
        self, target: LoadTarget, keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], str]:
        names = [f"k{n}" for n in range(len(target.key))]
        cursor = self.db.cursor()
        cursor.execute(
            f"SELECT {', '.join('t.' + k for k in target.key)}, t.{target.hash_column} "
            f"FROM unnest({', '.join(['%s::text[]'] * len(names))}) AS u({', '.join(names)}) "
            f"JOIN {target.table} t ON "
            + " AND ".join(f"t.{k} = u.{n}" for k, n in zip(target.key, names, strict=True)),
            [list(column) for column in zip(*keys, strict=True)],
        )
        return {tuple(row[:-1]): row[-1] for row in cursor.fetchall()}

    def load(self, target: LoadTarget, records: Iterable[ParsedRecord]) -> LoadCounts:
        stage, child_stage = f"_stage_{target.table}", None
        child = target.child
        key_only_line = _key_only_line(target)
        with self.db.atomic():
            cursor = self.db.cursor()
            self._create_stage(cursor, stage, target.table, target.columns, "_seq")
            cursor.execute(f"ALTER TABLE {stage} ADD COLUMN _unchanged boolean")
            if child:
                child_stage = f"_stage_{child.model._meta.table_name}"
                self._create_stage(
                    cursor, child_stage, child.model._meta.table_name, child.columns, "_parent_seq"
                )
            sender = self._sender = _CopySender(self.db.connection())
            parents = _CopyBuffer(sender, stage, ("_seq", "_unchanged", *target.columns))
            children = None
            if child and child_stage:
                children = _CopyBuffer(sender, child_stage, ("_parent_seq", *child.columns))
            try:
                for seq, record in enumerate(records):
                    if record.row is None:
                        parents.add_line(key_only_line(seq, record))
                        continue
                    parents.add((seq, False, *record.row))
                    if children:
                        for child_row in record.children:
                            children.add((seq, *child_row))
                parents.flush()
                if children:
                    children.flush()
            except BaseException:
                with suppress(Exception):  # the first error is the one to report
                    sender.close()
                raise
            finally:
                self._sender = None
            sender.close()
            cursor.execute(f"ANALYZE {stage}")  # temp tables have no statistics otherwise
            if child_stage:
                cursor.execute(f"ANALYZE {child_stage}")
            counts = self._merge(cursor, target, stage, child_stage)
            if counts.inserted or counts.updated:
                for referring, reference in target.referenced_by:
                    self._fill_reference(cursor, referring, reference)
        return counts

    @staticmethod
    def _create_stage(
        cursor: Any, stage: str, table: str, columns: Sequence[str], seq: str
    ) -> None:
        cursor.execute(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
            f"SELECT 0::integer AS {seq}, {', '.join(columns)} FROM {table} WITH NO DATA"
        )

    def _merge(
        self, cursor: Any, target: LoadTarget, stage: str, child_stage: str | None
    ) -> LoadCounts:
        key = ", ".join(target.key)
        same_key = " AND ".join(f"a.{k} = b.{k}" for k in target.key)
        # The same id twice in one export: the last one wins.
        cursor.execute(
            f"DELETE FROM {stage} a USING {stage} b WHERE {same_key} AND a._seq < b._seq"
        )
        cursor.execute(f"SELECT count(*) FROM {stage}")
        distinct = cursor.fetchone()[0]
        columns = ", ".join(target.columns)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in target.columns if c not in target.key)
        cursor.execute(
            f"CREATE TEMP TABLE _changed ON COMMIT DROP AS "
            f"SELECT id, {key}, true AS inserted FROM {target.table} WITH NO DATA"
        )
        cursor.execute(
            f"WITH merged AS ("
            f" INSERT INTO {target.table} AS t ({columns}, first_synced_at, last_synced_at)"
            f" SELECT {columns}, now(), now() FROM {stage} WHERE NOT _unchanged"
            f" ON CONFLICT ({key}) DO UPDATE SET {updates},"
            f" last_synced_at = EXCLUDED.last_synced_at"
            f" WHERE t.{target.hash_column} IS DISTINCT FROM EXCLUDED.{target.hash_column}"
            f" RETURNING t.id, {', '.join('t.' + k for k in target.key)}, (t.xmax = 0) AS inserted"
            f") INSERT INTO _changed SELECT * FROM merged"
        )
        cursor.execute("ANALYZE _changed")
        cursor.execute("SELECT count(*) FILTER (WHERE inserted), count(*) FROM _changed")
        inserted, changed = cursor.fetchone()
        if target.child and child_stage:
            self._replace_children(cursor, target, target.child, stage, child_stage)
        return LoadCounts(
            inserted=inserted, updated=changed - inserted, unchanged=distinct - changed
        )

    @staticmethod
    def _replace_children(
        cursor: Any, target: LoadTarget, child: ChildTarget, stage: str, child_stage: str
    ) -> None:
        table = child.model._meta.table_name
        cursor.execute(
            f"DELETE FROM {table} c USING _changed ch "
            f"WHERE c.{child.parent_column} = ch.id AND NOT ch.inserted"
        )
        refs = list(enumerate(child.references))
        same_key = " AND ".join(f"s.{k} = ch.{k}" for k in target.key)
        cursor.execute(
            f"INSERT INTO {table} ({child.parent_column}, {', '.join(child.columns)}"
            f"{''.join(', ' + ref.column for ref in child.references)}) "
            f"SELECT ch.id, {', '.join('c.' + col for col in child.columns)}"
            f"{''.join(f', ref{n}.id' for n, _ in refs)} "
            f"FROM _changed ch JOIN {stage} s ON {same_key} "
            f"JOIN {child_stage} c ON c._parent_seq = s._seq"
            + "".join(
                f" LEFT JOIN {_first_ids(ref)} ref{n} ON ref{n}.value = c.{ref.source_column}"
                for n, ref in refs
            )
        )

    @staticmethod
    def _fill_reference(cursor: Any, child: ChildTarget, ref: Reference) -> None:
        table = child.model._meta.table_name
        cursor.execute(
            f"UPDATE {table} c SET {ref.column} = r.id FROM {_first_ids(ref)} r "
            f"WHERE c.{ref.column} IS NULL AND c.{ref.source_column} = r.value"
        )


def _first_ids(ref: Reference) -> str:
    """A subquery: each value of the referenced column with the lowest id holding it.

    A join on this (rather than a lookup per child row) keeps the plan a hash join
    whatever the table's statistics say."""
    return (
        f"(SELECT {ref.target_column} AS value, min(id) AS id FROM {ref.table}"
        f" WHERE {ref.target_column} IS NOT NULL GROUP BY {ref.target_column})"
    )


# -- portable (SQLite) ----------------------------------------------------------------


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass
class _Plan:
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    records: list[ParsedRecord] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)


class PortableLoader:
    """Plain peewee upserts in batches; holds one export's distinct records in memory."""

    def __init__(self, db: pw.Database) -> None:
        self.db = db

    def stored_hashes(
        self, target: LoadTarget, keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], str]:
        found: dict[tuple[str, ...], str] = {}
        for batch in _batches(keys, PORTABLE_BATCH_ROWS):
            found.update((key, stored[1]) for key, stored in self._existing(target, batch).items())
        return found

    def load(self, target: LoadTarget, records: Iterable[ParsedRecord]) -> LoadCounts:
        counts = LoadCounts()
        with self.db.atomic():
            latest: dict[tuple[str, ...], ParsedRecord] = {}
            for record in records:
                latest[record.key] = record  # the same id twice: the last one wins
            for batch in _batches(latest.values(), PORTABLE_BATCH_ROWS):
                existing = self._existing(target, [record.key for record in batch])
                plan = _Plan()
                for record in batch:
                    found = existing.get(record.key)
                    if record.row is None or (found and found[1] == record.content_hash):
                        counts.unchanged += 1
                        continue
                    if found is None:
                        counts.inserted += 1
                    else:
                        counts.updated += 1
                        plan.updated_ids.append(found[0])
                    plan.records.append(record)
                if plan.records:
                    self._write(target, plan)
            if (counts.inserted or counts.updated) and target.referenced_by:
                for child, reference in target.referenced_by:
                    self._fill_reference(child, reference)
        return counts

    @staticmethod
    def _existing(
        target: LoadTarget, keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], tuple[int, str]]:
        """The id and content hash of each of ``keys`` that is stored."""
        model = target.model
        key_fields = [model._meta.columns[k] for k in target.key]
        hash_field = model._meta.columns[target.hash_column]
        query = model.select(model._meta.primary_key, *key_fields, hash_field)
        rows = cast(
            Iterable[tuple[Any, ...]], query.where(pw.Tuple(*key_fields).in_(list(keys))).tuples()
        )
        return {tuple(row[1:-1]): (row[0], row[-1]) for row in rows}

    def _write(self, target: LoadTarget, plan: _Plan) -> None:
        model = target.model
        fields = [model._meta.columns[c] for c in target.columns]
        key_fields = [model._meta.columns[k] for k in target.key]
        first_synced, last_synced = (
            model._meta.columns[c] for c in ("first_synced_at", "last_synced_at")
        )
        now = _now()
        rows = [(*(record.row or ()), now, now) for record in plan.records]
        model.insert_many(rows, fields=[*fields, first_synced, last_synced]).on_conflict(
            conflict_target=key_fields,
            preserve=[f for f in fields if f not in key_fields] + [last_synced],
        ).execute()
        child = target.child
        if child is None:
            return
        child_model = child.model
        parent_field = child_model._meta.columns[child.parent_column]
        if plan.updated_ids:
            child_model.delete().where(parent_field.in_(plan.updated_ids)).execute()
        ids = {
            key: stored[0]
            for key, stored in self._existing(target, [r.key for r in plan.records]).items()
        }
        child_fields = [child_model._meta.columns[c] for c in child.columns]
        ref_fields = [child_model._meta.columns[ref.column] for ref in child.references]
        lookups = [self._lookup(ref, child, plan.records) for ref in child.references]
        child_rows = [
            (ids[record.key], *row, *(lookup.get(row[index]) for index, lookup in lookups))
            for record in plan.records
            for row in record.children
        ]
        for batch in _batches(child_rows, PORTABLE_BATCH_ROWS):
            child_model.insert_many(
                batch, fields=[parent_field, *child_fields, *ref_fields]
            ).execute()

    def _lookup(
        self, ref: Reference, child: ChildTarget, records: list[ParsedRecord]
    ) -> tuple[int, dict[Any, int]]:
        """The source column's position in a child row, and the ids its values point to:
        one query for the whole batch."""
        index = child.columns.index(ref.source_column)
        values = list({row[index] for record in records for row in record.children} - {None})
        found: dict[Any, int] = {}
        for batch in _batches(values, PORTABLE_BATCH_ROWS):
            marks = ", ".join("?" for _ in batch)
            cursor = self.db.execute_sql(
                f'SELECT "{ref.target_column}", min(id) FROM "{ref.table}" '
                f'WHERE "{ref.target_column}" IN ({marks}) GROUP BY "{ref.target_column}"',
                batch,
            )
            found.update(cursor.fetchall())
        return index, found

    def _fill_reference(self, child: ChildTarget, ref: Reference) -> None:
        table = child.model._meta.table_name
        match = (
            f'FROM "{ref.table}" r WHERE r."{ref.target_column}" = "{table}"."{ref.source_column}"'
        )
        self.db.execute_sql(
            f'UPDATE "{table}" SET "{ref.column}" = (SELECT min(r.id) {match}) '
            f'WHERE "{ref.column}" IS NULL AND "{ref.source_column}" IS NOT NULL '
            f"AND EXISTS (SELECT 1 {match})"
        )
