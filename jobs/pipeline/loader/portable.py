"""The portable path, for SQLite (the demo): plain peewee upserts in batches. It holds
one export's distinct records in memory, which a demo-sized catalogue affords."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import peewee as pw

from jobs.clock import utc_now
from jobs.pipeline.batches import batches
from jobs.pipeline.loader.targets import ChildTarget, LoadCounts, LoadTarget, Reference
from jobs.pipeline.records import ParsedRecord

PORTABLE_BATCH_ROWS = 500


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
        for batch in batches(keys, PORTABLE_BATCH_ROWS):
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
            for batch in batches(latest.values(), PORTABLE_BATCH_ROWS):
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
            if counts.inserted or counts.updated:
                for table, reference in target.references_to_fill():
                    self._fill_reference(table, reference)
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
        now = utc_now()
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
        if plan.updated_ids and child.key is None:
            child_model.delete().where(parent_field.in_(plan.updated_ids)).execute()
        ids = {
            key: stored[0]
            for key, stored in self._existing(target, [r.key for r in plan.records]).items()
        }
        child_fields = [child_model._meta.columns[c] for c in child.columns]
        ref_fields = [child_model._meta.columns[ref.column] for ref in child.references]
        lookups = [self._lookup(ref, child, plan.records) for ref in child.references]
        child_rows = [
            (ids[record.key], *row, *(lookup(row) for lookup in lookups))
            for record in plan.records
            for row in record.children
        ]
        fields = [parent_field, *child_fields, *ref_fields]
        if child.key is None:
            for batch in batches(child_rows, PORTABLE_BATCH_ROWS):
                child_model.insert_many(batch, fields=fields).execute()
            return
        self._upsert_children(child, fields, child_rows, plan.updated_ids, now)

    def _upsert_children(
        self,
        child: ChildTarget,
        fields: list[Any],
        rows: list[tuple[Any, ...]],
        parent_ids: list[int],
        now: datetime,
    ) -> None:
        """Children with a key of their own: upserted by it; with ``retire``, those a
        changed parent no longer lists are marked gone, and those listed are revived."""
        model = child.model
        columns = model._meta.columns
        key_field = columns[child.key]
        latest = {row[1 + child.columns.index(str(child.key))]: row for row in rows}
        if child.retire and parent_ids:
            model.update(is_active=False, deleted_at=now, last_synced_at=now).where(
                columns[child.parent_column].in_(parent_ids)
                & columns["deleted_at"].is_null()
                & key_field.not_in(list(latest))
            ).execute()
        first_synced, last_synced = columns["first_synced_at"], columns["last_synced_at"]
        extra: dict[Any, Any] = {columns["deleted_at"]: None} if child.retire else {}
        for batch in batches(list(latest.values()), PORTABLE_BATCH_ROWS):
            model.insert_many(
                [(*row, now, now) for row in batch], fields=[*fields, first_synced, last_synced]
            ).on_conflict(
                conflict_target=[key_field],
                preserve=[f for f in fields if f is not key_field] + [last_synced],
                update=extra or None,
            ).execute()

    def _lookup(
        self, ref: Reference, child: ChildTarget, records: list[ParsedRecord]
    ) -> Callable[[tuple[Any, ...]], int | None]:
        """For a child row, the id its reference points to: one query a batch for the
        source column's values (and one for the fallback's)."""
        index = child.columns.index(ref.source_column)
        rows = [row for record in records for row in record.children]
        found = self._ids(ref.table, ref.target_column, {row[index] for row in rows}, ref.scope)
        if ref.fallback is None:
            return lambda row: found.get(row[index])
        target, source = ref.fallback
        other = child.columns.index(source)
        by_fallback = self._ids(
            ref.table, target, {row[other] for row in rows if row[index] is None}, ref.scope
        )

        def lookup(row: tuple[Any, ...]) -> int | None:
            if row[index] is not None:
                return found.get(row[index])
            return by_fallback.get(row[other])

        return lookup

    def _ids(self, table: str, column: str, values: set[Any], scope: str) -> dict[Any, int]:
        found: dict[Any, int] = {}
        where = f" AND {scope}" if scope else ""
        for batch in batches(sorted(values - {None}), PORTABLE_BATCH_ROWS):
            marks = ", ".join("?" for _ in batch)
            cursor = self.db.execute_sql(
                f'SELECT "{column}", min(id) FROM "{table}" '
                f'WHERE "{column}" IN ({marks}){where} GROUP BY "{column}"',
                batch,
            )
            found.update(cursor.fetchall())
        return found

    def _fill_reference(self, table: str, ref: Reference) -> None:
        """Point the rows of ``table`` whose reference is NULL to the rows they name (by
        the source column, else the fallback pair), then refresh the copied columns."""
        scope = f" AND {ref.scope}" if ref.scope else ""
        match = (
            f'(SELECT min(r.id) FROM "{ref.table}" r '
            f'WHERE r."{ref.target_column}" = "{table}"."{ref.source_column}"{scope})'
        )
        if ref.fallback is not None:
            target, source = ref.fallback
            match = (
                f'coalesce({match}, CASE WHEN "{table}"."{ref.source_column}" IS NULL THEN '
                f'(SELECT min(r.id) FROM "{ref.table}" r '
                f'WHERE r."{target}" = "{table}"."{source}"{scope}) END)'
            )
        self.db.execute_sql(
            f'UPDATE "{table}" SET "{ref.column}" = {match} '
            f'WHERE "{ref.column}" IS NULL AND {match} IS NOT NULL'
        )
        for here, there in ref.copy:
            copied = (
                f'(SELECT r."{there}" FROM "{ref.table}" r WHERE r.id = "{table}"."{ref.column}")'
            )
            self.db.execute_sql(
                f'UPDATE "{table}" SET "{here}" = {copied} '
                f'WHERE "{ref.column}" IS NOT NULL AND "{here}" IS NOT {copied}'
            )
