"""The portable path, for SQLite (the demo): plain peewee upserts in batches. It holds
one export's distinct records in memory, which a demo-sized catalogue affords."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any, cast

import peewee as pw

from jobs.loader.targets import ChildTarget, LoadCounts, LoadTarget, Reference
from jobs.records import ParsedRecord

PORTABLE_BATCH_ROWS = 500


def _now() -> datetime:
    return datetime.now(UTC)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


@dataclass
class _Plan:
    """What one batch writes: the records to upsert, and the ids of the stored rows they
    replace (whose child rows go first)."""

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

    def load(
        self, target: LoadTarget, records: Iterable[ParsedRecord], *, stream: str | None = None
    ) -> LoadCounts:
        """``stream`` is for the PostgreSQL loader's NOTIFY; SQLite has none."""
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
