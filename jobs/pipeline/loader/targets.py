"""What a loader is told: where a stream's rows go (declared by the streams), and what
it answers: how many rows it inserted, updated and found unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import peewee as pw

from jobs.pipeline.records import ParsedRecord


@dataclass(frozen=True, kw_only=True)
class Reference:
    """``column`` of a row points to ``table.id`` of the row whose ``target_column``
    equals the row's ``source_column`` (NULL when there is none).

    With ``fallback`` (``(target_column, source_column)``), a row whose ``source_column``
    is NULL is matched by the fallback pair instead (a line's ``product_id`` first, its
    product code only when it has no id). ``copy`` names columns of the referenced row
    copied beside the reference (``(column here, column there)``: a price's currency is
    its price type's)."""

    column: str
    table: str
    target_column: str
    source_column: str
    fallback: tuple[str, str] | None = None
    copy: tuple[tuple[str, str], ...] = ()
    scope: str = ""  # an SQL condition on the referenced rows that may be pointed to


@dataclass(frozen=True, kw_only=True)
class ChildTarget:
    """Rows that belong to a parent row and are written with it.

    Without ``key`` they are replaced with their parent (order lines, a product's
    categories). With ``key`` (their own unique column) they are upserted by it, and
    ``retire`` marks the children a changed parent no longer lists gone
    (``is_active = false``, ``deleted_at``) instead of deleting them (a group's types)."""

    model: type[pw.Model]
    columns: tuple[str, ...]
    parent_column: str
    references: tuple[Reference, ...] = ()
    key: str | None = None
    retire: bool = False

    @property
    def table(self) -> str:
        return str(self.model._meta.table_name)


@dataclass(frozen=True, kw_only=True)
class LoadTarget:
    """Where one export's rows go: table (as a model), row columns, natural key."""

    model: type[pw.Model]
    columns: tuple[str, ...]
    key: tuple[str, ...]
    hash_column: str = "content_hash"
    child: ChildTarget | None = None
    # The rows' own references (filled in after a load that wrote rows).
    references: tuple[Reference, ...] = ()
    # References elsewhere (table, reference) that may point at this table: filled in
    # after it changes.
    referenced_by: tuple[tuple[str, Reference], ...] = ()

    def __post_init__(self) -> None:
        missing = [c for c in (*self.key, self.hash_column) if c not in self.columns]
        if missing:
            raise ValueError(f"key or hash columns {missing} are not among the columns")

    @property
    def table(self) -> str:
        return str(self.model._meta.table_name)

    def references_to_fill(self) -> tuple[tuple[str, Reference], ...]:
        """After a load that wrote rows: the rows' own references, then those elsewhere."""
        own = tuple((self.table, ref) for ref in self.references)
        return own + self.referenced_by


@dataclass
class LoadCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


class Loader(Protocol):
    def stored_hashes(
        self, target: LoadTarget, keys: Sequence[tuple[str, ...]]
    ) -> dict[tuple[str, ...], str]:
        """The content hash stored for each of ``keys`` that has a row (one query)."""
        ...

    def load(
        self, target: LoadTarget, records: Iterable[ParsedRecord], *, stream: str | None = None
    ) -> LoadCounts:
        """Store ``records`` in one transaction and count what changed. A record whose
        ``row`` is None is already stored unchanged: it is counted, not written. With
        ``stream``, an answer that changed anything is announced (PostgreSQL's NOTIFY)."""
        ...
