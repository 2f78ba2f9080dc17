"""The one sync engine: fetch → parse → load, counting, for any declared stream.

For each export call of a stream, the answer's records are read as they stream in, in
batches: one query per batch finds the records stored already with the same content hash,
which go on unparsed; the others are parsed into rows. The loader applies the whole
answer in one transaction. A bad record (one that cannot be read, identified or parsed,
whatever the reason) is set aside with its id and reason, and the rest is applied; a body
that breaks off rolls the answer back and the call is made again, within the retry policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Protocol

from jobs.pipeline.batches import batches
from jobs.pipeline.loader import LoadCounts, Loader
from jobs.pipeline.records import Identity, ParsedRecord, RecordRejected, storable_text
from jobs.pipeline.smartup import (
    ExportRequest,
    RetryBudget,
    SmartUpClient,
    SmartUpError,
    SmartUpQuotaSpent,
    SmartUpRangeTooLong,
    UnreadableRecord,
    limits_spent,
)
from jobs.pipeline.streams.base import Call, Export, Stream


class Progress(Protocol):
    """What the engine reports; every method is cheap and never raises."""

    def stream(self, name: str, requests: Sequence[ExportRequest]) -> None:
        """A stream starts, with the export calls it will make."""

    def request(self, number: int) -> None:
        """Export call ``number`` (0-based) starts, or starts again after a broken body."""

    def received(self, count: int) -> None:
        """``count`` more records of the current answer were read."""

    def answered(self) -> None:
        """The current answer was applied."""


class NoProgress:
    """The default: nobody watches."""

    def stream(self, name: str, requests: Sequence[ExportRequest]) -> None:
        pass

    def request(self, number: int) -> None:
        pass

    def received(self, count: int) -> None:
        pass

    def answered(self) -> None:
        pass


NO_PROGRESS = NoProgress()


class KeySink(Protocol):
    """Where the engine puts the key of every record it receives (reconciliation)."""

    def add(self, key: tuple[str, ...], /) -> None: ...

    def hold(self, holder: str, /) -> None: ...


REJECTS_KEPT = 50  # rejects kept in the run's details; every one of them is logged
LOOKUP_BATCH = 2000  # weight of the records looked up at once (see Stream.weight)


@dataclass
class StreamResult:
    """What one stream did in one run.

    Its fields are read anywhere but changed only through its methods, in the order of a
    run: :meth:`add` per answer applied, :meth:`skip` per optional export refused,
    :meth:`fail` when a call cannot be had, :meth:`add_settled` per export settled after a
    complete stream, and :meth:`scrub_error` before the error is logged and stored."""

    stream: str
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    requests: int = 0
    gone: int = 0  # stored records marked gone after this run's complete export
    rejects: list[dict[str, str | None]] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None  # the stream completed, but something is left undone
    quota_spent: bool = False  # SmartUp refused a request: the day's quota is spent
    skipped: list[str] = field(default_factory=list)  # optional exports SmartUp refused

    @property
    def stored(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def add(self, received: int, counts: LoadCounts, rejects: list[RecordRejected]) -> None:
        """One answer applied: ``received`` records, what the loader did with them, and
        those rejected (the first :data:`REJECTS_KEPT` kept with their id and reason)."""
        self.requests += 1
        self.received += received
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.rejected += len(rejects)
        room = REJECTS_KEPT - len(self.rejects)
        self.rejects += [{"id": r.record_id, "reason": r.reason} for r in rejects[:room]]

    def skip(self, export: str) -> None:
        """SmartUp refused the optional ``export``; the stream goes on without it (and
        settles nothing by it)."""
        self.skipped.append(export)

    def fail(self, error: str, *, quota_spent: bool = False) -> None:
        """The stream stopped: ``error`` says why (a later call may say it better);
        ``quota_spent`` when SmartUp refused because the day's quota is spent."""
        self.error, self.quota_spent = error, quota_spent

    def add_settled(self, *, gone: int, refused: str | None) -> None:
        """What settling one export did after a complete stream: ``gone`` stored records
        marked gone; ``refused``, when the brake held, why (added to the warning)."""
        self.gone += gone
        if refused:
            self.warning = "; ".join(filter(None, (self.warning, refused)))

    def scrub_error(self, scrub: Callable[[str], str]) -> None:
        """The error passed through ``scrub`` (the run masks its secrets and keeps it to
        one line before it is logged and stored); an empty one is none."""
        self.error = scrub(self.error) if self.error else None

    def summary(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "requests": self.requests,
            "gone": self.gone,
        }


@dataclass
class _Applied:
    received: int
    counts: LoadCounts
    rejects: list[RecordRejected]
    limits: dict[str, Any] | None


class SyncEngine:
    """Runs streams: ``engine.sync(stream, requests)`` → :class:`StreamResult`."""

    def __init__(
        self,
        *,
        client: SmartUpClient,
        loader: Loader,
        tz: tzinfo,
        log: Any,
        progress: Progress = NO_PROGRESS,
    ) -> None:
        self.client = client
        self.loader = loader
        self.tz = tz
        self.log = log
        self.progress = progress

    def sync(
        self,
        stream: Stream,
        calls: Sequence[Call | ExportRequest],
        *,
        on_applied: Callable[[ExportRequest, dict[str, Any] | None], None] | None = None,
        on_sent: Callable[[ExportRequest], None] | None = None,
        on_narrowed: Callable[[ExportRequest, int], None] | None = None,
        seen: Callable[[Export], KeySink | None] | KeySink | None = None,
    ) -> StreamResult:
        """Apply every export call of ``stream``; stop at the first that cannot be had
        (one of an ``optional`` export that SmartUp refuses is logged and skipped).

        ``calls``: the stream's calls (a bare request is one to the stream's own export).
        ``on_sent(request)`` is called as each attempt of a call is sent (the last one
        before ``on_applied`` is the one answered). ``on_applied(request, limits)`` is
        called once each answer is committed (the caller keeps its sync state: a run
        killed later keeps what it finished). A window SmartUp refuses as too long
        (:class:`SmartUpRangeTooLong`) is asked again in windows of the days it allows
        (half the window when it does not say), and so is every later window of the same
        export; ``on_narrowed(request, days)`` is told first. ``seen`` collects the key of
        every record received, per export (settling).
        """
        result = StreamResult(stream.name)
        pairs = [c if isinstance(c, Call) else Call(stream, c) for c in calls]
        self.progress.stream(stream.name, [call.request for call in pairs])
        last_limits: dict[str, Any] | None = None
        number = 0
        while number < len(pairs):
            export, request = pairs[number]
            sink = seen(export) if callable(seen) else seen
            try:
                if number and limits_spent(last_limits):
                    raise SmartUpQuotaSpent(stream.name)  # the last answer used the last one
                applied = self._apply_with_retries(
                    stream.name, export, request, number, sink, on_sent
                )
            except SmartUpRangeTooLong as refused:
                days = narrower_window(request, refused)
                if days is not None:
                    if on_narrowed is not None:
                        on_narrowed(request, days)
                    self.log.warning(
                        "sync.window.narrowed",
                        stream=stream.name,
                        request=request.describe(),
                        days=days,
                    )
                    pairs[number:] = [
                        Call(e, narrowed)
                        for e, r in pairs[number:]
                        for narrowed in (e.narrowed(r, days) if e is export else [r])
                    ]
                    self.progress.stream(stream.name, [call.request for call in pairs])
                    continue
                result.fail(str(refused))
                self.log.error("sync.error", stream=stream.name, error=result.error)
                return result
            except SmartUpError as error:
                if export.optional and not isinstance(error, SmartUpQuotaSpent):
                    result.skip(export.name)
                    self.log.warning(
                        "sync.export.skipped",
                        stream=stream.name,
                        export=export.name,
                        error=str(error),
                    )
                    self.progress.answered()
                    number += 1
                    continue
                result.fail(str(error), quota_spent=isinstance(error, SmartUpQuotaSpent))
                self.log.error("sync.error", stream=stream.name, error=result.error)
                return result
            for reject in applied.rejects:
                self.log.warning(
                    "sync.record.rejected",
                    stream=stream.name,
                    record_id=reject.record_id,
                    reason=reject.reason,
                )
            if applied.limits is not None:
                self.log.info("smartup.limits", request=request.describe(), limits=applied.limits)
            result.add(applied.received, applied.counts, applied.rejects)
            last_limits = applied.limits
            if on_applied is not None:
                on_applied(request, applied.limits)
            self.progress.answered()
            number += 1
        return result

    def _apply_with_retries(
        self,
        stream_name: str,
        export: Export,
        request: ExportRequest,
        number: int,
        seen: KeySink | None,
        on_sent: Callable[[ExportRequest], None] | None = None,
    ) -> _Applied:
        budget = self.client.retry.budget()  # one for the whole export, both kinds of retry
        waits = self.client.retry.broken_body_waits(budget)
        while True:
            self.progress.request(number)
            if on_sent is not None:
                on_sent(request)
            try:
                return self._apply(stream_name, export, request, seen, budget)
            except SmartUpError as error:
                wait = next(waits, None) if error.retryable else None
                if wait is None:
                    raise
                self.log.warning(
                    "smartup.retry",
                    request=request.describe(),
                    error=str(error),
                    wait_s=round(wait, 2),
                )
                time.sleep(wait)

    def _apply(
        self,
        stream_name: str,
        export: Export,
        request: ExportRequest,
        seen: KeySink | None,
        budget: RetryBudget,
    ) -> _Applied:
        """Load one answer of ``export`` (an export of the stream ``stream_name``, the
        name its change is announced by)."""
        rejects: list[RecordRejected] = []
        received = 0

        def parsed(records: Iterator[Any]) -> Iterator[ParsedRecord]:
            """Records in batches: one query per batch finds those stored unchanged,
            which are passed on unparsed; the others are parsed, or rejected. An id that
            was parsed earlier in this answer is parsed again, never taken as unchanged:
            its last copy must reach the loader in full, to win over the earlier one."""
            nonlocal received
            parsed_ids: set[int] = set()  # hashes of stored keys parsed; a collision costs a parse
            for batch in batches(records, LOOKUP_BATCH, weight=export.weight):
                received += len(batch)
                self.progress.received(len(batch))
                identified = []
                for record in batch:
                    try:
                        identified.append((_identify(export, record), record))
                        if seen is not None:
                            seen.add(identified[-1][0].key)
                    except _Unreadable as reject:
                        rejects.append(reject)
                        if seen is not None and reject.key is not None:
                            seen.add(reject.key)  # rejected, not absent: its row stays
                    except RecordRejected as reject:
                        rejects.append(reject)
                stored = self.loader.stored_hashes(export.target, [i.key for i, _ in identified])
                for identity, record in identified:
                    stored_hash = stored.get(identity.key)
                    if stored_hash is not None:  # only a stored id can be taken as unchanged
                        key_hash = hash(identity.key)
                        if stored_hash == identity.content_hash and key_hash not in parsed_ids:
                            yield ParsedRecord(identity.key, identity.content_hash, None)
                            continue
                        parsed_ids.add(key_hash)
                    try:
                        yield export.parse(record, identity, tz=self.tz)
                    except RecordRejected as reject:
                        rejects.append(reject)
                    except Exception as error:  # a value no parser expected: still one record
                        rejects.append(
                            RecordRejected(identity.record_id, f"cannot be parsed: {_named(error)}")
                        )
                # Let go of this batch's records before the next batch is read, not after.
                batch.clear()
                identified.clear()

        def expanded(records: Iterator[Any]) -> Iterator[Any]:
            """The records each record of the answer holds; one that cannot be expanded
            is rejected, with its id when one can be read."""
            for record in records:
                if isinstance(record, UnreadableRecord):
                    _hold(export, record.fields, seen)
                    yield record
                    continue
                try:
                    yield from export.expand(record)
                except RecordRejected as reject:
                    rejects.append(reject)
                    _hold(export, record, seen)

        with self.client.export(request, budget=budget) as response:
            counts = self.loader.load(
                export.target, parsed(expanded(response.records())), stream=stream_name
            )
            return _Applied(received, counts, rejects, response.limits)


def narrower_window(request: ExportRequest, refused: SmartUpRangeTooLong) -> int | None:
    """The days of the windows to ask again after SmartUp refused ``request``'s as too
    long: the days it allows when it says so and that is shorter, else half the window;
    None when the request asks no days or one day alone (nothing narrower to ask)."""
    if request.days is None:
        return None
    asked = (request.days[1] - request.days[0]).days + 1
    if asked <= 1:
        return None
    allowed = refused.allowed_days
    if allowed is not None and 1 <= allowed < asked:
        return allowed
    return max(1, asked // 2)


class _Unreadable(RecordRejected):
    """A record that cannot be read, with the key read from its text members, if any:
    in a snapshot it is rejected, not absent, so the row of that key must stay."""

    def __init__(self, record_id: str | None, reason: str, key: tuple[str, ...] | None) -> None:
        super().__init__(record_id, reason)
        self.key = key


def _identify(export: Export, record: Any) -> Identity:
    """The record's identity; :class:`RecordRejected` for one that cannot be read or
    identified, whatever the reason, with its id when one can be read."""
    if isinstance(record, UnreadableRecord):
        try:
            identity: Identity | None = export.identify(record.fields)
        except Exception:
            identity = None
        raise _Unreadable(
            identity.record_id if identity else None,
            f"record {record.reason}",
            identity.key if identity else None,
        )
    try:
        return export.identify(record)
    except RecordRejected:
        raise
    except Exception as error:  # hashing or reading the id failed in a way no one expected
        raise RecordRejected(None, f"cannot be identified: {_named(error)}") from None


def _hold(export: Export, record: Any, seen: KeySink | None) -> None:
    """A record rejected whole before its rows could be told apart: the rows it holds
    are kept (by its ``holder_field``, when it names one), never taken as absent."""
    field = export.holder_field
    if seen is None or field is None or not isinstance(record, Mapping):
        return
    holder = record.get(field)
    if isinstance(holder, str) and holder and storable_text(holder):  # else no row has it
        seen.hold(holder)


def _named(error: BaseException) -> str:
    """An error in words for a reject: its type, and its message made safe for a log line."""
    return f"{type(error).__name__}: {ascii(str(error))[1:-1][:120]}"
