"""Request filters as SmartUp reads them: scalar and list filters, ``dd.mm.yyyy`` date
windows and their day-range limit; a filter SmartUp would refuse raises :class:`Rejection`."""

# Error messages are Russian, as SmartUp's are; ruff's confusable-letter check is off.

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobs.simulator.tables import OrderEntry, ProductEntry


class Rejection(Exception):
    """A request SmartUp would refuse: answered with ``status`` and plain ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_DATE_PATTERN = re.compile(r"\d{2}\.\d{2}\.\d{4}")


def _filter_value(filters: Mapping[str, Any], name: str) -> str | None:
    """A scalar filter; None when absent, null or ``""``."""
    value = filters.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Rejection(400, f"Неверный формат запроса: поле {name}")
    return str(value)


def _filter_date(filters: Mapping[str, Any], name: str) -> datetime.date | None:
    """A ``dd.mm.yyyy`` filter; None when absent; 400 A02-24-050 when malformed."""
    value = filters.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and _DATE_PATTERN.fullmatch(value):
        try:
            return datetime.datetime.strptime(value, "%d.%m.%Y").date()
        except ValueError:
            pass
    raise Rejection(400, f"A02-24-050 Неверный формат даты: {value}")


def _days_word(count: int) -> str:
    """Russian plural of "day" for ``count``: 1 день, 2 дня, 7 дней."""
    if count % 10 == 1 and count % 100 != 11:
        return "день"
    if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
        return "дня"
    return "дней"


@dataclass(frozen=True)
class _Window:
    """An inclusive date window; an absent end is open."""

    begin: datetime.date | None = None
    end: datetime.date | None = None

    @classmethod
    def from_filters(cls, filters: Mapping[str, Any], begin: str, end: str) -> _Window:
        return cls(_filter_date(filters, begin), _filter_date(filters, end))

    @property
    def is_open(self) -> bool:
        return self.begin is None and self.end is None

    def contains(self, day: datetime.date | None) -> bool:
        if self.is_open:
            return True
        if day is None:
            return False
        return (self.begin is None or self.begin <= day) and (self.end is None or day <= self.end)

    def check_span(self, day_range_limit: int) -> None:
        """400 A02-24-051 if both ends are given and span more than the limit (inclusive)."""
        if self.begin is None or self.end is None:
            return
        if (self.end - self.begin).days + 1 > day_range_limit:
            raise Rejection(
                400,
                f"A02-24-051 Период не может превышать {day_range_limit} "
                f"{_days_word(day_range_limit)}",
            )


@dataclass(frozen=True)
class ProductFilters:
    """Filters of the products export: ``code`` and the created/modified windows."""

    code: str | None
    created: _Window
    modified: _Window

    @classmethod
    def parse(cls, filters: Mapping[str, Any], *, day_range_limit: int) -> ProductFilters:
        parsed = cls(
            code=_filter_value(filters, "code"),
            created=_Window.from_filters(filters, "begin_created_on", "end_created_on"),
            modified=_Window.from_filters(filters, "begin_modified_on", "end_modified_on"),
        )
        for window in (parsed.created, parsed.modified):
            window.check_span(day_range_limit)
        return parsed

    def select(self, entries: list[ProductEntry]) -> list[ProductEntry]:
        if self.code is None and self.created.is_open and self.modified.is_open:
            return entries
        return [
            entry
            for entry in entries
            if (self.code is None or entry.code == self.code)
            and self.created.contains(entry.created_on)
            and self.modified.contains(entry.modified_on)
        ]


def _string_set(filters: Mapping[str, Any], name: str, item_key: str | None) -> frozenset[str]:
    """A list filter (``statuses: [..]`` or ``filial_codes: [{filial_code}]``) as a set.

    Empty or absent means "no filter" (an empty set). Items of object lists may also be
    given as plain strings.
    """
    value = filters.get(name)
    if value is None or value == "":
        return frozenset()
    items = value if isinstance(value, list) else [value]
    result: set[str] = set()
    for item in items:
        if item_key is not None and isinstance(item, Mapping):
            item = item.get(item_key)
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise Rejection(400, f"Неверный формат запроса: поле {name}")
        result.add(str(item))
    return frozenset(result)


@dataclass(frozen=True)
class OrderFilters:
    """Filters of the orders export; ``filial_id`` comes from the request header."""

    deal_id: str | None
    external_id: str | None
    filial_code: str | None
    filial_codes: frozenset[str]
    statuses: frozenset[str]
    deal: _Window
    delivery_date: datetime.date | None
    created: _Window
    modified: _Window
    filial_id: str | None  # from the header, not the body

    @classmethod
    def parse(
        cls, filters: Mapping[str, Any], *, filial_id: str | None, day_range_limit: int
    ) -> OrderFilters:
        parsed = cls(
            deal_id=_filter_value(filters, "deal_id"),
            external_id=_filter_value(filters, "external_id"),
            filial_code=_filter_value(filters, "filial_code"),
            filial_codes=_string_set(filters, "filial_codes", "filial_code"),
            statuses=_string_set(filters, "statuses", None),
            deal=_Window.from_filters(filters, "begin_deal_date", "end_deal_date"),
            delivery_date=_filter_date(filters, "delivery_date"),
            created=_Window.from_filters(filters, "begin_created_on", "end_created_on"),
            modified=_Window.from_filters(filters, "begin_modified_on", "end_modified_on"),
            filial_id=filial_id,
        )
        for window in (parsed.deal, parsed.created, parsed.modified):
            window.check_span(day_range_limit)
        return parsed

    def accepts(self, entry: OrderEntry) -> bool:
        return (
            (self.deal_id is None or entry.deal_id == self.deal_id)
            and (self.external_id is None or entry.external_id == self.external_id)
            and (self.filial_code is None or entry.filial_code == self.filial_code)
            and (not self.filial_codes or entry.filial_code in self.filial_codes)
            and (not self.statuses or entry.status in self.statuses)
            and (self.filial_id is None or entry.filial_id == self.filial_id)
            and (self.delivery_date is None or entry.delivery_date == self.delivery_date)
            and self.deal.contains(entry.deal_date)
            and self.created.contains(entry.deal_date)
            and self.modified.contains(entry.modified_on)
        )

    def select(self, entries: list[OrderEntry]) -> list[OrderEntry]:
        return [entry for entry in entries if self.accepts(entry)]


def parse_body(raw: bytes) -> Any:
    """The request body as JSON, or None when it is empty or not JSON."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --- the catalogue's exports ------------------------------------------------------------

_BAD_FILTER_DATE = '{"error_code":"A02-24-122","message":"Неверный формат даты в фильтре"}'.encode()
_CONDITIONS = frozenset({"F", "B", "T"})


def _required_date(filters: Mapping[str, Any], name: str) -> datetime.date:
    """A required ``dd.mm.yyyy`` filter: 400 A02-24-122 (JSON, as SmartUp sends it) when
    it is missing or malformed."""
    value = filters.get(name)
    if isinstance(value, str) and _DATE_PATTERN.fullmatch(value):
        try:
            return datetime.datetime.strptime(value, "%d.%m.%Y").date()
        except ValueError:
            pass
    raise JSONRejection(400, _BAD_FILTER_DATE)


class JSONRejection(Rejection):
    """A refusal whose body is JSON (``body``) rather than plain text."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status, body.decode("utf-8"))
        self.body = body


@dataclass(frozen=True)
class BalanceFilters:
    """Filters of the stock balance export; ``begin_date``/``end_date`` are required."""

    window: _Window
    filial_code: str | None
    warehouse_codes: frozenset[str]
    conditions: frozenset[str]
    producer_codes: frozenset[str]

    @classmethod
    def parse(cls, filters: Mapping[str, Any], *, day_range_limit: int) -> BalanceFilters:
        begin = _required_date(filters, "begin_date")
        end = _required_date(filters, "end_date")
        if end < begin:
            raise JSONRejection(400, _BAD_FILTER_DATE)
        window = _Window(begin, end)
        window.check_span(day_range_limit)
        conditions = _string_set(filters, "product_conditions", "product_condition")
        unknown = conditions - _CONDITIONS
        if unknown:
            raise Rejection(
                400, f"Неверный формат запроса: поле product_conditions ({min(unknown)})"
            )
        return cls(
            window=window,
            filial_code=_filter_value(filters, "filial_code"),
            warehouse_codes=_string_set(filters, "warehouse_codes", "warehouse_code"),
            conditions=conditions,
            producer_codes=_string_set(filters, "producer_codes", "producer_code"),
        )


def price_type_codes(filters: Mapping[str, Any]) -> frozenset[str]:
    """The prices export's ``price_type_codes`` (empty: every price type)."""
    return _string_set(filters, "price_type_codes", "price_type_code")


_PAGE_MAX = 1000


@dataclass(frozen=True)
class Page:
    """A v2 export's page: ``column_list`` (None: every column), ``limit``, ``offset``."""

    columns: tuple[str, ...] | None
    limit: int
    offset: int

    @classmethod
    def parse(cls, filters: Mapping[str, Any], *, known_columns: tuple[str, ...]) -> Page:
        columns = filters.get("column_list")
        if columns is not None:
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise Rejection(400, "Неверный формат запроса: поле column_list")
            unknown = [c for c in columns if c not in known_columns]
            if unknown:
                raise Rejection(400, f"Неизвестная колонка: {unknown[0]}")
        limit = cls._number(filters, "limit", default=_PAGE_MAX)
        if not 1 <= limit <= _PAGE_MAX:
            raise Rejection(400, f"Значение limit должно быть от 1 до {_PAGE_MAX}")
        return cls(
            columns=None if columns is None else tuple(columns),
            limit=limit,
            offset=cls._number(filters, "offset", default=0),
        )

    @staticmethod
    def _number(filters: Mapping[str, Any], name: str, *, default: int) -> int:
        value = filters.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise Rejection(400, f"Неверный формат запроса: поле {name}")
