"""What a stream is: a declaration of everything the worker knows of one kind of data.

A :class:`Stream` names its kind (also its queue), its quota pool and the cadence it asks
for, how far a run reaches (:mod:`jobs.pipeline.streams.reach`), how it fans out into
export calls (:meth:`Stream.calls`: per filial, per condition, per price type, or one
call), and what each call's records become: an :class:`Export` says where SmartUp serves
them (path and records key), how one record is expanded (a record that holds several
rows), identified and parsed, where its rows go (a :class:`~jobs.pipeline.loader.LoadTarget`),
and what a complete answer settles (:class:`~jobs.pipeline.streams.settle.Settle`). A stream
is its own main export; streams that read a second export (price types before prices,
warehouses after the balances) name it in their calls. A stream may also declare SQL run
once its settles are done (``after_settled``: stock's warehouses known only from balance
rows).

Behaviour lives in small steps a subclass may override: ``calls``/``requests``,
``expand``, ``identify``, ``parse``, ``weight``, and the costs the plan reads
(``requests_per_run``, ``requests_per_sweep``). :func:`declare` registers a stream; every
other module iterates the registry (:func:`declared`, :func:`enabled_streams`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, tzinfo
from typing import Any, ClassVar, NamedTuple

from jobs.kinds import FULL, queue_for
from jobs.pipeline.loader import LoadTarget
from jobs.pipeline.records import Identity, ParsedRecord
from jobs.pipeline.smartup import ExportRequest
from jobs.pipeline.streams.pools import Pool
from jobs.pipeline.streams.reach import (
    DAY_RANGE_LIMIT,
    INCREMENTAL_DAYS,
    MODIFIED,
    SNAPSHOT,
    SNAPSHOT_TODAY,
    Reach,
    date_windows,
    windows_for,
)
from jobs.pipeline.streams.settle import Settle
from jobs.settings import DEFAULT_STREAMS, Settings, SettingsError

Span = Mapping[str, Reach]
"""What one run asks of a stream: per state key (filial, ``""`` when none), how far back."""


class Export:
    """One export's records into one table: where SmartUp serves them, and what becomes
    of each record. Subclass, or build one with keyword arguments."""

    name: str = ""  # for messages: "products", "price types", ...
    path: str = ""  # below SMARTUP_BASE_URL
    records_key: str = ""  # the array in SmartUp's answer
    identifier: Callable[..., Identity]
    parser: Callable[..., ParsedRecord]
    target: LoadTarget
    settle: Settle | None = None  # what a complete answer settles
    optional: bool = False  # an account that does not answer it does not fail the run
    body: Mapping[str, Any] = {}  # sent with every call (besides the filters)
    # The field of an answer's record that names the rows it holds (its settle's
    # holder_column): a record rejected whole keeps them. None: a record is one row.
    holder_field: str | None = None
    # The field of a record that lists its child rows (an order's lines, a group's types),
    # each weighing as much as a record (see weight). None: a record weighs one.
    child_rows_field: str | None = None

    def __init__(self, **declared: Any) -> None:
        for name, value in declared.items():
            setattr(self, name, value)

    def url(self, settings: Settings) -> str:
        return settings.smartup_base_url + self.path

    def expand(self, record: Any) -> Iterable[Any]:
        """The records one answer's record holds (most hold one: itself)."""
        return (record,)

    def identify(self, record: Any) -> Identity:
        """The record's id, key and content hash; rejects a record without an id."""
        return self.identifier(record)

    def parse(self, record: Any, identity: Identity, *, tz: tzinfo) -> ParsedRecord:
        """The record's rows; rejects a record that cannot be stored."""
        return self.parser(record, identity, tz=tz)

    def weight(self, record: Any) -> int:
        """How many rows the record holds, roughly (itself and the child rows its
        ``child_rows_field`` lists): the engine holds records of a look-up batch up to a
        total weight, so memory does not grow with their size."""
        if self.child_rows_field is None or not isinstance(record, dict):
            return 1
        rows = record.get(self.child_rows_field)
        return 1 + (len(rows) if isinstance(rows, list) else 0)

    def request(self, settings: Settings, **kwargs: Any) -> ExportRequest:
        filters = {**self.body, **kwargs.pop("filters", {})}
        return ExportRequest(
            name=self.name,
            url=self.url(settings),
            records_key=self.records_key,
            filters=filters,
            **kwargs,
        )

    def narrowed(self, request: ExportRequest, days: int) -> list[ExportRequest]:
        """``request``'s modification days again, in windows of at most ``days`` days,
        oldest first (SmartUp refused the window as too long); ``[request]`` when it asks
        no days or already fits."""
        if request.days is None or (request.days[1] - request.days[0]).days < days:
            return [request]
        return [
            replace(request, filters={**request.filters, **modified(begin, end)}, days=(begin, end))
            for begin, end in date_windows(*request.days, days=days)
        ]


class Call(NamedTuple):
    """One export call of a run: which export's records it brings, and the request."""

    export: Export
    request: ExportRequest


class Stream(Export):
    """One kind of data the worker keeps in step; see the module's docstring."""

    pool: Pool
    reach: str = MODIFIED
    default_interval: int | None = None  # None: SYNC_INTERVAL_SECONDS
    # Requests a day in pools other than its own (stock's warehouses).
    side_requests: tuple[tuple[Pool, int], ...] = ()
    # SQL run after the settles of a run that read every call, each %s standing for the
    # time (stock: warehouses known only from balance rows).
    after_settled: tuple[str, ...] = ()
    counts: ClassVar[tuple[str, ...]] = (
        "received",
        "inserted",
        "updated",
        "unchanged",
        "rejected",
        "requests",
        "gone",
    )

    def __init__(self, **declared: Any) -> None:
        super().__init__(**declared)
        if not self.name:
            raise ValueError("a stream needs a name")

    @property
    def queue(self) -> str:
        return queue_for(self.name)

    def filial_keys(self, settings: Settings) -> tuple[str, ...]:
        """The state keys this stream keeps state for (``""``: requests without one)."""
        return ("",)

    def reach_of(self, key: str) -> str:
        """How far a run reaches for state key ``key`` (one of
        :data:`~jobs.pipeline.streams.reach.REACHES`)."""
        return self.reach

    def ages_data(self, key: str) -> bool:
        """Whether state key ``key``'s last success says how old the stream's data is
        (a side call made once a day, say, does not)."""
        return True

    def sweep_seconds_of(self, key: str, sweep_seconds: int) -> int:
        """How often state key ``key`` sweeps (the plan's sweep period, by default)."""
        return sweep_seconds

    def complete(self, span: Span) -> bool:
        """Whether a run that asked ``span`` and succeeded read the whole set (then its
        settles may mark gone or delete what it lacked)."""
        if self.reach in (SNAPSHOT, SNAPSHOT_TODAY):
            return True
        return any(reach.first is None for reach in span.values())

    def calls(
        self, settings: Settings, span: Span, *, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> list[Call]:
        """The export calls of one run, in order."""
        return [
            Call(self, request)
            for request in self.requests(settings, span, day_range_limit=day_range_limit)
        ]

    def requests(
        self, settings: Settings, span: Span, *, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> list[ExportRequest]:
        """The requests of one run to the stream's own export: one call, without a filial
        (or with the first one), the whole set or what was modified in the span."""
        filial = settings.smartup_filial_ids[0] if settings.smartup_filial_ids else None
        reach = span[""]
        if reach.first is None:
            return [self.request(settings, filial_id=filial, state_key="")]
        return [
            self.request(
                settings,
                filial_id=filial,
                filters=modified(reach.first, reach.last),
                days=(reach.first, reach.last),
                state_key="",
            )
        ]

    def requests_per_run(
        self, *, filials: int, settings: Settings | None, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> int:
        """Requests of one incremental periodic run."""
        return 1

    def requests_per_sweep(
        self, *, filials: int, days_back: int, day_range_limit: int, settings: Settings | None
    ) -> int:
        """Requests of one sweep (the whole set, or the whole window)."""
        return self.requests_per_run(
            filials=filials, settings=settings, day_range_limit=day_range_limit
        )


def windowed_requests(
    export: Export,
    settings: Settings,
    span: Span,
    keys: Sequence[str],
    *,
    day_range_limit: int = DAY_RANGE_LIMIT,
) -> list[ExportRequest]:
    """Per state key (filial), the span's modification days in windows SmartUp allows,
    oldest first."""
    requests = []
    for key in keys:
        reach = span[key]
        first = reach.first if reach.first is not None else reach.last
        for begin, end in date_windows(first, reach.last, days=day_range_limit):
            requests.append(
                export.request(
                    settings,
                    filial_id=key or None,
                    filters=modified(begin, end),
                    days=(begin, end),
                    state_key=key,
                )
            )
    return requests


def windowed_cost(filials: int, days: int, day_range_limit: int = DAY_RANGE_LIMIT) -> int:
    return max(filials, 1) * windows_for(days, day_range_limit=day_range_limit)


def incremental_cost(filials: int, day_range_limit: int = DAY_RANGE_LIMIT) -> int:
    return windowed_cost(filials, INCREMENTAL_DAYS, day_range_limit)


def smartup_date(day: date) -> str:
    return day.strftime("%d.%m.%Y")


def modified(first: date, last: date) -> dict[str, str]:
    return {"begin_modified_on": smartup_date(first), "end_modified_on": smartup_date(last)}


# -- the registry ----------------------------------------------------------------------------

_DECLARED: dict[str, Stream] = {}


def declare(stream: Stream) -> Stream:
    """Register ``stream`` (a later declaration of the same name replaces the earlier)."""
    if stream.name == FULL:
        raise ValueError(f"{FULL!r} is the kind of every enabled stream, not a stream's name")
    _DECLARED[stream.name] = stream
    return stream


def undeclare(name: str) -> None:
    """Forget a declared stream (tests that declare one of their own)."""
    _DECLARED.pop(name, None)


def declared() -> dict[str, Stream]:
    """Every declared stream by name, in declaration order."""
    return dict(_DECLARED)


def declared_names() -> tuple[str, ...]:
    return tuple(_DECLARED)


def enabled_streams(settings: Settings) -> list[Stream]:
    """The streams ``SYNC_STREAMS`` enables, in declaration order."""
    unknown = [name for name in settings.sync_streams if name not in _DECLARED]
    if unknown:
        raise SettingsError(
            "SYNC_STREAMS",
            f"a comma-separated list of {', '.join(_DECLARED)}, not {unknown[0]!r}",
        )
    return [stream for name, stream in _DECLARED.items() if name in settings.sync_streams]


def default_streams() -> list[Stream]:
    """The streams the default ``SYNC_STREAMS`` enables."""
    return [_DECLARED[name] for name in DEFAULT_STREAMS]


def kinds_of(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Every kind a job may run, with the streams it runs: each enabled stream alone, and
    ``full``, every enabled stream."""
    names = tuple(stream.name for stream in enabled_streams(settings))
    return {**{name: (name,) for name in names}, FULL: names}


def streams_of(kind: str, settings: Settings) -> tuple[str, ...]:
    """The streams a run of ``kind`` syncs; ValueError for a kind that is not enabled."""
    kinds = kinds_of(settings)
    if kind not in kinds:
        known = ", ".join([*_DECLARED, FULL])
        if kind in _DECLARED:
            raise ValueError(
                f"stream {kind!r} is not enabled (SYNC_STREAMS={','.join(settings.sync_streams)})"
            )
        raise ValueError(f"kind must be one of {known}, not {kind!r}")
    return kinds[kind]
