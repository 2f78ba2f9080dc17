"""What a loader is told: where a stream's rows go (declared by the streams), and what
it answers: how many rows it inserted, updated and found unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import peewee as pw

from jobs.records import ParsedRecord


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
