"""The fast path: COPY into a staging table and merge, batch by batch.

Rows are buffered as COPY text; every 4 MB the batch goes to a thread of its own, which
copies it into a temporary staging table and merges it with one
``INSERT ... ON CONFLICT DO UPDATE ... WHERE content_hash IS DISTINCT FROM`` (so an
unchanged row is never written), writes the child rows of the rows that changed (an
order's lines, a product's categories, a group's types), and empties the staging tables,
while this thread parses the next batch. All batches of one answer share one
transaction. Memory stays flat: at most three batches are held at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from typing import Any

import peewee as pw
import psycopg2

from jobs.pipeline.loader import copy_text
from jobs.pipeline.loader.announce import announce
from jobs.pipeline.loader.copy_text import BatchSender, CopyBuffer
from jobs.pipeline.loader.targets import ChildTarget, LoadCounts, LoadTarget, Reference
from jobs.pipeline.records import ParsedRecord


class PostgresLoader:
    """COPY into staging and merge, batch by batch, on a thread of its own."""

    def __init__(self, db: pw.Database, *, run_id: int | None = None) -> None:
        self.db = db
        self.run_id = run_id  # named in the NOTIFY of each answer that changed anything
        copy_text.keep_batches_out_of_the_heap()
        # While a load streams rows in, its connection is busy with COPY: look-ups go
        # through a second one, which sees what is committed, as a look-up should.
        self._lookups: Any = None
        self._table_was_empty = False  # then there is nothing to look up (a first sync)
        self._analyzed = False  # whether this load's staging tables have statistics

    def stored_hashes(
        self, target: LoadTarget, keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], str]:
        if not keys or (self._lookups and self._table_was_empty):
            return {}
        names = [f"k{n}" for n in range(len(target.key))]
        cursor = self._lookups.cursor() if self._lookups else self.db.cursor()
        cursor.execute(
            f"SELECT {', '.join('t.' + k for k in target.key)}, t.{target.hash_column} "
            f"FROM unnest({', '.join(['%s::text[]'] * len(names))}) AS u({', '.join(names)}) "
            f"JOIN {target.table} t ON "
            + " AND ".join(f"t.{k} = u.{n}" for k, n in zip(target.key, names, strict=True)),
            [list(column) for column in zip(*keys, strict=True)],
        )
        return {tuple(row[:-1]): row[-1] for row in cursor.fetchall()}

    def load(
        self, target: LoadTarget, records: Iterable[ParsedRecord], *, stream: str | None = None
    ) -> LoadCounts:
        with self.db.atomic():
            cursor = self.db.cursor()
            stage, child_stage = self._create_tables(cursor, target)
            cursor.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {target.table})")
            self._table_was_empty = cursor.fetchone()[0]
            self._analyzed = False
            sender = BatchSender(
                self.db.connection(),
                after_each=lambda batch_cursor: self._merge_batch(
                    batch_cursor, target, stage, child_stage
                ),
            )
            self._lookups = psycopg2.connect(dbname=self.db.database, **self.db.connect_params)
            self._lookups.autocommit = True
            try:
                self._send_in_batches(records, target, stage, child_stage, sender)
            except BaseException:
                with suppress(Exception):  # the first error is the one to report
                    sender.close()
                raise
            finally:
                self._lookups.close()
                self._lookups = None
            sender.close()
            counts = self._counts(cursor)
            if counts.inserted or counts.updated:
                for table, reference in target.referenced_by:  # own ones: in the merge
                    self._fill_reference(cursor, table, reference)
                if stream is not None:  # heard only if this transaction commits
                    announce(
                        cursor,
                        stream,
                        self.run_id,
                        inserted=counts.inserted,
                        updated=counts.updated,
                    )
        return counts

    def _create_tables(self, cursor: Any, target: LoadTarget) -> tuple[str, str | None]:
        """The staging tables of the parents and their children, and the bookkeeping
        tables: ``_keys`` (every key received), ``_changed`` (every row written) and
        ``_batch_changed`` (the rows the current batch wrote). All vanish at commit."""
        stage, child_stage = f"_stage_{target.table}", None
        self._create_stage(cursor, stage, target.table, target.columns, "_seq")
        if target.child:
            child_table = target.child.model._meta.table_name
            child_stage = f"_stage_{child_table}"
            self._create_stage(
                cursor, child_stage, child_table, target.child.columns, "_parent_seq"
            )
        key = ", ".join(target.key)
        for table, select in (
            ("_keys", f"SELECT {key} FROM {target.table}"),
            ("_changed", f"SELECT id, {key}, true AS inserted FROM {target.table}"),
            ("_batch_changed", f"SELECT id, {key}, true AS inserted FROM {target.table}"),
        ):
            cursor.execute(f"CREATE TEMP TABLE {table} ON COMMIT DROP AS {select} WITH NO DATA")
        return stage, child_stage

    @staticmethod
    def _send_in_batches(
        records: Iterable[ParsedRecord],
        target: LoadTarget,
        stage: str,
        child_stage: str | None,
        sender: BatchSender,
    ) -> None:
        """Rows as COPY text, handed to the sender every ``COPY_BUFFER_BYTES``: parents
        and their children always in the same batch; records known unchanged as their
        key only, to be counted."""
        parents = CopyBuffer(stage, ("_seq", *target.columns))
        children = None
        if target.child and child_stage:
            children = CopyBuffer(child_stage, ("_parent_seq", *target.child.columns))
        unchanged = CopyBuffer("_keys", target.key)
        buffers = [b for b in (parents, children, unchanged) if b is not None]

        def send() -> None:
            merge = parents.size > 0
            sender.send([copy for b in buffers for copy in b.take()], then_after_each=merge)

        for seq, record in enumerate(records):
            if record.row is None:
                unchanged.add(record.key)
            else:
                parents.add((seq, *record.row))
                if children:
                    for child_row in record.children:
                        children.add((seq, *child_row))
            if sum(b.size for b in buffers) >= copy_text.COPY_BUFFER_BYTES:
                send()
        send()

    @staticmethod
    def _create_stage(
        cursor: Any, stage: str, table: str, columns: Sequence[str], seq: str
    ) -> None:
        cursor.execute(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS "
            f"SELECT 0::integer AS {seq}, {', '.join(columns)} FROM {table} WITH NO DATA"
        )

    def _merge_batch(
        self, cursor: Any, target: LoadTarget, stage: str, child_stage: str | None
    ) -> None:
        """Merge the batch that was just copied into the staging tables, then empty them.

        Batches are merged in the order they arrived, so when an id comes twice, the
        later copy is written over the earlier one: the last one wins. (The engine parses
        a record again rather than take it as unchanged once its id was parsed earlier in
        the same answer, so the last copy is always a full row; records known unchanged
        go straight to ``_keys``, to be counted.)"""
        script = _Script()
        key = ", ".join(target.key)
        same_key = " AND ".join(f"a.{k} = b.{k}" for k in target.key)
        # Temp tables have no statistics otherwise; the joins need only the keys'. What
        # the first batch shows holds for the next ones (TRUNCATE keeps the statistics,
        # and the planner sizes a table by its pages), so later batches are not analyzed.
        analyze = not self._analyzed
        self._analyzed = True
        if analyze:
            script.execute(f"ANALYZE {stage} (_seq, {key})")
        script.execute(
            f"DELETE FROM {stage} a USING {stage} b WHERE {same_key} AND a._seq < b._seq"
        )
        script.execute(f"INSERT INTO _keys SELECT {key} FROM {stage}")
        # The rows' own references are resolved in the merge itself (a hash join on the
        # rows they point to); one whose row is not there yet is filled in by that
        # table's load (its ``referenced_by``).
        refs = list(enumerate(target.references))
        written = [*target.columns, *_reference_columns(target.references)]
        values = [f"s.{c}" for c in target.columns]
        for n, ref in refs:
            values.append(_matched(f"ref{n}", ref))
            values += [f"ref{n}.copy{k}" for k in range(len(ref.copy))]
        joins = "".join(_match_joins(f"ref{n}", ref, "s") for n, ref in refs)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in written if c not in target.key)
        script.execute(
            f"WITH merged AS ("
            f" INSERT INTO {target.table} AS t ({', '.join(written)}, first_synced_at,"
            f" last_synced_at)"
            f" SELECT {', '.join(values)}, now(), now() FROM {stage} s{joins}"
            f" ON CONFLICT ({key}) DO UPDATE SET {updates},"
            f" last_synced_at = EXCLUDED.last_synced_at"
            f" WHERE t.{target.hash_column} IS DISTINCT FROM EXCLUDED.{target.hash_column}"
            f" RETURNING t.id, {', '.join('t.' + k for k in target.key)}, (t.xmax = 0) AS inserted"
            f") INSERT INTO _batch_changed SELECT * FROM merged"
        )
        if target.child and child_stage:
            if analyze:
                script.execute(f"ANALYZE {child_stage} (_parent_seq)")
                script.execute("ANALYZE _batch_changed")
            self._replace_children(script, target, target.child, stage, child_stage)
        script.execute("INSERT INTO _changed SELECT * FROM _batch_changed")
        script.execute(
            f"TRUNCATE {', '.join(filter(None, (stage, child_stage, '_batch_changed')))}"
        )
        script.run(cursor)

    @staticmethod
    def _counts(cursor: Any) -> LoadCounts:
        """Counts over distinct ids: an id written by two batches is counted once."""
        cursor.execute("SELECT count(*) FROM (SELECT DISTINCT * FROM _keys) AS k")
        distinct = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(DISTINCT id) FILTER (WHERE inserted), count(DISTINCT id) FROM _changed"
        )
        inserted, changed = cursor.fetchone()
        return LoadCounts(
            inserted=inserted, updated=changed - inserted, unchanged=distinct - changed
        )

    @staticmethod
    def _replace_children(
        cursor: Any, target: LoadTarget, child: ChildTarget, stage: str, child_stage: str
    ) -> None:
        """Write the children of the batch's changed parents: replaced with their parent
        (no ``key``), or upserted by their own key, those a changed parent no longer
        lists marked gone (``retire``)."""
        table = child.table
        if child.key is None:
            cursor.execute(
                f"DELETE FROM {table} c USING _batch_changed ch "
                f"WHERE c.{child.parent_column} = ch.id AND NOT ch.inserted"
            )
        elif child.retire:
            cursor.execute(
                f"UPDATE {table} c SET is_active = false, deleted_at = now(), "
                f"last_synced_at = now() FROM _batch_changed ch "
                f"WHERE c.{child.parent_column} = ch.id AND NOT ch.inserted "
                f"AND c.deleted_at IS NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {child_stage} s WHERE s.{child.key} = c.{child.key})"
            )
        refs = list(enumerate(child.references))
        same_key = " AND ".join(f"s.{k} = ch.{k}" for k in target.key)
        columns = [child.parent_column, *child.columns, *(ref.column for ref in child.references)]
        values = ["ch.id", *(f"c.{col}" for col in child.columns)]
        values += [_matched(f"ref{n}", ref) for n, ref in refs]
        joins = "".join(_match_joins(f"ref{n}", ref, "c") for n, ref in refs)
        source = (
            f"FROM _batch_changed ch JOIN {stage} s ON {same_key} "
            f"JOIN {child_stage} c ON c._parent_seq = s._seq{joins}"
        )
        if child.key is None:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} {source}"
            )
            return
        key = child.key
        updated = [c for c in columns if c != key]
        revive = ", deleted_at = NULL" if child.retire else ""
        changed = [f"t.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in updated]
        if child.retire:
            changed.append("t.deleted_at IS NOT NULL")
        cursor.execute(
            f"INSERT INTO {table} AS t ({', '.join(columns)}, first_synced_at, last_synced_at) "
            f"SELECT DISTINCT ON (c.{key}) {', '.join(values)}, now(), now() {source} "
            f"ORDER BY c.{key}, s._seq DESC "
            f"ON CONFLICT ({key}) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
            + f", last_synced_at = EXCLUDED.last_synced_at{revive} WHERE "
            + " OR ".join(changed)
        )

    @staticmethod
    def _fill_reference(cursor: Any, table: str, ref: Reference) -> None:
        """Point the rows of ``table`` whose reference is NULL (or whose copied columns
        differ) to the rows they name, in one statement."""
        cursor.execute(
            f"UPDATE {table} c SET {ref.column} = m.id"
            + "".join(f", {here} = m.copy{n}" for n, (here, _) in enumerate(ref.copy))
            + f" FROM (SELECT c.id AS row_id, {_matched('r', ref)} AS id"
            + "".join(f", r.copy{n}" for n in range(len(ref.copy)))
            + f" FROM {table} c{_match_joins('r', ref, 'c')}"
            + ("" if ref.copy else f" WHERE c.{ref.column} IS NULL")
            + ") m WHERE c.id = m.row_id AND m.id IS NOT NULL AND "
            + "("
            + " OR ".join(
                [f"c.{ref.column} IS NULL"]
                + [f"c.{here} IS DISTINCT FROM m.copy{n}" for n, (here, _) in enumerate(ref.copy)]
            )
            + ")"
        )


class _Script:
    """Statements gathered to go to PostgreSQL as one: a batch's merge is then one round
    trip, so the sender thread waits once for the interpreter lock (which the parsing
    thread holds most of the time), not once a statement."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)

    def run(self, cursor: Any) -> None:
        cursor.execute(";\n".join(self.statements))


def _first_ids(ref: Reference, target_column: str | None = None) -> str:
    """A subquery: each value of the referenced column with the lowest id holding it (and
    the columns it copies).

    A join on this (rather than a lookup per row) keeps the plan a hash join whatever the
    table's statistics say."""
    column = target_column or ref.target_column
    scope = f" AND {ref.scope}" if ref.scope else ""
    if not ref.copy or target_column is not None:
        return (
            f"(SELECT {column} AS value, min(id) AS id FROM {ref.table}"
            f" WHERE {column} IS NOT NULL{scope} GROUP BY {column})"
        )
    copies = "".join(f", {there} AS copy{n}" for n, (_, there) in enumerate(ref.copy))
    return (
        f"(SELECT DISTINCT ON ({column}) {column} AS value, id{copies} FROM {ref.table}"
        f" WHERE {column} IS NOT NULL{scope} ORDER BY {column}, id)"
    )


def _match_joins(alias: str, ref: Reference, rows: str) -> str:
    """LEFT JOINs that find the row ``ref`` points to for each of ``rows``: by the
    source column, else (when it is NULL) by the fallback pair."""
    joins = f" LEFT JOIN {_first_ids(ref)} {alias} ON {alias}.value = {rows}.{ref.source_column}"
    if ref.fallback is not None:
        target, source = ref.fallback
        joins += (
            f" LEFT JOIN {_first_ids(ref, target)} {alias}f ON {rows}.{ref.source_column} IS NULL"
            f" AND {alias}f.value = {rows}.{source}"
        )
    return joins


def _reference_columns(refs: Sequence[Reference]) -> list[str]:
    """The columns references write: each one's own, then the columns it copies."""
    return [column for ref in refs for column in (ref.column, *(here for here, _ in ref.copy))]


def _matched(alias: str, ref: Reference) -> str:
    return f"coalesce({alias}.id, {alias}f.id)" if ref.fallback else f"{alias}.id"
