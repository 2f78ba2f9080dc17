"""Freshness measured: how long each change made in the simulator took to land in PostgreSQL.

The simulator stamps every change with the moment it made it
(:meth:`~jobs.simulator.SmartUpSimulator.changed_at`); a row's ``last_synced_at`` is the
moment the loader last wrote it, and the loader writes a row only when its content
changed. So a change landed when its row's ``last_synced_at`` is at or after the change's
stamp, and its staleness is the difference. A change whose row is missing, or was last
written before the change, has **not landed**: it is counted and named, never dropped.

Percentiles are nearest-rank over the staleness of the changes that landed (p50 of
1, 2, 3, 4 minutes is 2 minutes; p95 of twenty values is the 19th), so every figure is
one that was observed.

Clocks: the loader stamps ``last_synced_at`` with PostgreSQL's ``now()`` (the wall clock),
while a fast-forward bench runs the simulator and the runs on a simulated clock. A
:class:`RunClock` records each run's simulated moment and the wall-clock interval it ran
in, and turns a wall ``last_synced_at`` back into the simulated moment of the run that
wrote it.

Typical use, per stream::

    landed = landed_at(url, "products", "external_id")
    figures = staleness("products", sim.changed_at("products"), runs.simulated_all(landed))
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from psycopg2 import sql

from bench.pg import pairs

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Staleness:
    """One stream's freshness: how many changes were measured, how many landed, the
    keys of those that did not, and p50/p95/max staleness of those that did (None when
    none landed)."""

    stream: str
    changes: int
    landed: int
    not_landed: tuple[Hashable, ...]
    p50: timedelta | None
    p95: timedelta | None
    max: timedelta | None

    def describe(self) -> str:
        """One line: ``orders: p50 4m10s, p95 9m50s, max 10m0s (5000 changes, 2 not landed)``."""

        def fmt(value: timedelta | None) -> str:
            if value is None:
                return "-"
            minutes, seconds = divmod(round(value.total_seconds()), 60)
            return f"{minutes}m{seconds:02d}s"

        return (
            f"{self.stream}: p50 {fmt(self.p50)}, p95 {fmt(self.p95)}, max {fmt(self.max)} "
            f"({self.changes} changes, {len(self.not_landed)} not landed)"
        )


def nearest_rank(ordered: Sequence[timedelta], percent: float) -> timedelta:
    """The nearest-rank ``percent`` percentile of ``ordered`` (sorted, not empty)."""
    if not ordered:
        raise ValueError("no values")
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], not {percent}")
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def staleness(
    stream: str,
    changed: Mapping[K, datetime],
    landed: Mapping[K, datetime],
) -> Staleness:
    """The freshness of ``stream``: ``changed`` maps each changed record's key to when it
    changed, ``landed`` maps keys to when their row was last written (same keys, same
    clock). A change lands at its row's ``landed`` moment when that is not before it."""
    delays: list[timedelta] = []
    missing: list[K] = []
    for key, moment in changed.items():
        written = landed.get(key)
        if written is None or written < moment:
            missing.append(key)
        else:
            delays.append(written - moment)
    delays.sort()
    return Staleness(
        stream=stream,
        changes=len(changed),
        landed=len(delays),
        not_landed=tuple(missing),
        p50=nearest_rank(delays, 50) if delays else None,
        p95=nearest_rank(delays, 95) if delays else None,
        max=delays[-1] if delays else None,
    )


def landed_at(
    url: str, table: str, key_column: str, *, where: str | None = None
) -> dict[str, datetime]:
    """``{key: last_synced_at}`` of every row of ``table`` (PostgreSQL at ``url``);
    ``where`` is an optional SQL condition of the bench's own (not user input)."""
    query = sql.SQL("SELECT {key}::text, last_synced_at FROM {table}").format(
        key=sql.Identifier(key_column), table=sql.Identifier(table)
    )
    if where:
        query = query + sql.SQL(" WHERE ") + sql.SQL(where)
    return pairs(url, query)


@dataclass
class RunClock:
    """The runs of a fast-forward bench: each run's simulated moment and the wall-clock
    interval it ran in, to read a wall ``last_synced_at`` on the simulated clock."""

    _wall_starts: list[datetime] = field(default_factory=list)
    _runs: list[tuple[datetime, datetime, datetime]] = field(default_factory=list)

    def record(self, simulated: datetime, wall_start: datetime, wall_end: datetime) -> None:
        """One run at simulated ``simulated`` ran from ``wall_start`` to ``wall_end``
        (runs are recorded in order and do not overlap)."""
        if wall_end < wall_start or (self._runs and wall_start < self._runs[-1][1]):
            raise ValueError("runs are recorded in order, each after the last one ended")
        self._wall_starts.append(wall_start)
        self._runs.append((wall_start, wall_end, simulated))

    def simulated(self, wall: datetime) -> datetime | None:
        """The simulated moment of the run that ran at ``wall``; None when none did
        (the row was written outside every recorded run)."""
        index = bisect.bisect_right(self._wall_starts, wall) - 1
        if index < 0:
            return None
        start, end, simulated = self._runs[index]
        return simulated if start <= wall <= end else None

    def simulated_all(self, landed: Mapping[K, datetime]) -> dict[K, datetime]:
        """:meth:`simulated` of every ``landed`` moment; rows written outside the runs
        are left out (their changes then count as not landed)."""
        result: dict[K, datetime] = {}
        for key, wall in landed.items():
            moment = self.simulated(wall)
            if moment is not None:
                result[key] = moment
        return result

    def timed(
        self, simulated: datetime, run: Callable[[], object], *, now: Callable[[], datetime]
    ) -> None:
        """Call ``run`` and record it at ``simulated``, timed by ``now`` (the wall clock
        as PostgreSQL's ``now()`` reads it, e.g. ``lambda: datetime.now(UTC)``)."""
        start = now()
        try:
            run()
        finally:
            self.record(simulated, start, now())
