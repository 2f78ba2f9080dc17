"""Records as the simulator keeps them: encoded JSON plus what the filters look at."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar

ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""Compact JSON, non-ASCII text kept as is: how every record and answer part is encoded."""


class ProductEntry(NamedTuple):
    """A product as served: its encoded JSON plus what the filters look at."""

    product_id: str
    code: str
    producer_code: str
    created_on: datetime.date
    modified_on: datetime.date
    encoded: bytes


class OrderEntry(NamedTuple):
    """An order as served: its encoded JSON plus what the filters look at."""

    deal_id: str
    external_id: str
    filial_id: str
    filial_code: str
    status: str
    deal_date: datetime.date | None
    delivery_date: datetime.date | None
    modified_on: datetime.date | None
    encoded: bytes


def encode_record(record: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON of one record (non-ASCII text kept as is)."""
    return ENCODER.encode(record if isinstance(record, dict) else dict(record)).encode()


def _text(value: Any) -> str:
    """A record field as a string ("" for missing or null)."""
    return "" if value is None else str(value)


def _record_date(value: Any) -> datetime.date | None:
    """The date of a record's ``dd.mm.yyyy`` or ``dd.mm.yyyy hh24:mi:ss`` field, if valid."""
    text = _text(value)
    try:
        return datetime.date(int(text[6:10]), int(text[3:5]), int(text[0:2]))
    except ValueError:
        return None


def product_entry(
    record: Mapping[str, Any], *, created_on: datetime.date, modified_on: datetime.date
) -> ProductEntry:
    """Index one product, dated as the caller says (products carry no dates)."""
    return ProductEntry(
        product_id=_text(record.get("product_id")),
        code=_text(record.get("code")),
        producer_code=_text(record.get("producer_code")),
        created_on=created_on,
        modified_on=modified_on,
        encoded=encode_record(record),
    )


def order_entry(
    record: Mapping[str, Any], *, modified_on: datetime.date | None = None
) -> OrderEntry:
    """Index one order; ``modified_on`` defaults to the date of its ``deal_time``."""
    deal_date = _record_date(record.get("deal_time"))
    return OrderEntry(
        deal_id=_text(record.get("deal_id")),
        external_id=_text(record.get("external_id")),
        filial_id=_text(record.get("filial_id")),
        filial_code=_text(record.get("filial_code")),
        status=_text(record.get("status")),
        deal_date=deal_date,
        delivery_date=_record_date(record.get("delivery_date")),
        modified_on=modified_on or deal_date,
        encoded=encode_record(record),
    )


EntryT = TypeVar("EntryT", ProductEntry, OrderEntry)


class Table(Generic[EntryT]):
    """Entries in export order, findable by natural key.

    ``entries`` is never changed in place: every change installs a new list, so a reader
    holding the old list keeps a consistent snapshot. Callers serialise writes.
    """

    def __init__(self, key: Callable[[EntryT], str]) -> None:
        self._key: Callable[[EntryT], str] = key
        self.entries: list[EntryT] = []
        self._position: dict[str, int] = {}

    def replace_all(self, entries: list[EntryT]) -> None:
        self.entries = entries
        self._position = {self._key(entry): index for index, entry in enumerate(entries)}

    def find(self, key: str) -> EntryT:
        """The entry with this natural key; KeyError if there is none."""
        return self.entries[self._position[key]]

    def replace(self, key: str, entry: EntryT) -> None:
        """Put ``entry`` where the entry with natural key ``key`` is."""
        index = self._position[key]
        entries = list(self.entries)
        entries[index] = entry
        self.entries = entries
        new_key = self._key(entry)
        if new_key != key:
            del self._position[key]
            self._position[new_key] = index

    def remove(self, key: str) -> None:
        """Drop the entry with natural key ``key`` (KeyError if there is none)."""
        index = self._position[key]
        self.replace_all(self.entries[:index] + self.entries[index + 1 :])

    def add(self, entries: list[EntryT]) -> None:
        """Append ``entries``; one whose key is already here replaces the old entry."""
        keep = {self._key(entry) for entry in entries}
        self.replace_all([e for e in self.entries if self._key(e) not in keep] + entries)


class PriceEntry(NamedTuple):
    """One product's prices as served: the record (for filtered answers) and its JSON."""

    inventory_code: str
    record: dict[str, Any]
    encoded: bytes


class StockEntry(NamedTuple):
    """One balance row: its condition, what filters and mutators look at, and its JSON
    after the opening brace, starting with a comma (the answer puts ``{"date":"..."``
    in front)."""

    condition: str
    warehouse_code: str
    product_id: str
    batch_number: str | None
    record: dict[str, Any]
    tail: bytes


def price_entry(record: Mapping[str, Any]) -> PriceEntry:
    """Index one prices export entry by its ``inventory_code`` (a copy of ``record``)."""
    copy = dict(record)
    return PriceEntry(_text(copy.get("inventory_code")), copy, encode_record(copy))


def stock_entry(condition: str, record: Mapping[str, Any]) -> StockEntry:
    """Index one balance row of ``condition``; its ``date`` is dropped (an answer dates
    its rows by the day asked for)."""
    copy = {key: value for key, value in record.items() if key != "date"}
    encoded = encode_record(copy)
    batch = copy.get("batch_number")
    return StockEntry(
        condition=condition,
        warehouse_code=_text(copy.get("warehouse_code")),
        product_id=_text(copy.get("product_id")),
        batch_number=None if batch is None else str(batch),
        record=copy,
        tail=(b"," + encoded[1:-1] if len(encoded) > 2 else b"") + b"}",
    )
