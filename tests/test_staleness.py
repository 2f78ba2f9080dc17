"""The freshness harness (``bench/staleness.py``) on hand-worked numbers, rows in PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bench.staleness import RunClock, landed_at, nearest_rank, staleness
from jobs.models import Product

SIM = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)  # 10:00 in Tashkent, on the simulated clock
WALL = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # when the bench really ran


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_p50_p95_and_max_are_nearest_rank_over_the_changes_that_landed():
    changed = {f"p{n}": SIM for n in range(1, 21)}
    landed = {f"p{n}": SIM + minutes(n) for n in range(1, 21)}  # 1 .. 20 minutes late
    figures = staleness("products", changed, landed)
    assert (figures.changes, figures.landed, figures.not_landed) == (20, 20, ())
    assert figures.p50 == minutes(10)  # the 10th of 20
    assert figures.p95 == minutes(19)  # the 19th of 20 (ceil(0.95 * 20))
    assert figures.max == minutes(20)
    assert (
        figures.describe()
        == "products: p50 10m00s, p95 19m00s, max 20m00s (20 changes, 0 not landed)"
    )
    assert nearest_rank([minutes(1), minutes(2), minutes(3), minutes(4)], 50) == minutes(2)
    # a rank that is not whole is rounded up: the 3rd of 5 (ceil(2.5)), not the 2nd
    assert nearest_rank([minutes(n) for n in range(1, 6)], 50) == minutes(3)
    with pytest.raises(ValueError):
        nearest_rank([], 50)


def test_nothing_landed_gives_no_figures_and_names_every_change():
    figures = staleness("stock", {"a": SIM, "b": SIM}, {})
    assert (figures.landed, figures.p50, figures.p95, figures.max) == (0, None, None, None)
    assert set(figures.not_landed) == {"a", "b"}


def add_product(external_id: str, last_synced_at: datetime) -> None:
    Product.insert(
        external_source="smartup",
        external_id=external_id,
        barcodes=[],
        is_active=True,
        raw={},
        content_hash="x",
        first_synced_at=last_synced_at,
        last_synced_at=last_synced_at,
    ).execute()


def test_changes_against_rows_landed_in_postgresql_at_known_moments(pg):
    # three runs, at 10:10, 10:20 and 10:40 simulated, each a minute of wall clock
    runs = RunClock()
    for number, at in enumerate((minutes(10), minutes(20), minutes(40))):
        start = WALL + minutes(10 * number)
        runs.record(SIM + at, start, start + minutes(1))
    second = timedelta(seconds=1)
    add_product("p1", WALL + second)  # written by the 10:10 run
    add_product("p2", WALL + second)
    add_product("p3", WALL + 2 * second)
    add_product("p5", WALL + minutes(10) + second)  # the 10:20 run
    add_product("p4", WALL + minutes(20) + second)  # the 10:40 run
    add_product("p7", WALL + minutes(5))  # between runs: not a run's write
    changed = {
        "p1": SIM,  # landed 10:10: 10 minutes
        "p2": SIM + minutes(5),  # 5 minutes
        "p3": SIM + minutes(10),  # 0 minutes
        "p4": SIM + minutes(20),  # landed 10:40: 20 minutes
        "p5": SIM + minutes(30),  # its row was written at 10:20, before the change
        "p6": SIM,  # its row was never written
        "p7": SIM,  # written outside every run
    }
    landed = landed_at(pg, "products", "external_id")
    assert set(landed) == {"p1", "p2", "p3", "p4", "p5", "p7"}
    simulated = runs.simulated_all(landed)
    assert simulated["p4"] == SIM + minutes(40) and "p7" not in simulated
    figures = staleness("products", changed, simulated)
    assert (figures.changes, figures.landed) == (7, 4)
    assert set(figures.not_landed) == {"p5", "p6", "p7"}
    # landed: 0, 5, 10, 20 minutes
    assert (figures.p50, figures.p95, figures.max) == (minutes(5), minutes(20), minutes(20))


def test_runs_are_recorded_in_order():
    runs = RunClock()
    runs.record(SIM, WALL, WALL + minutes(1))
    with pytest.raises(ValueError):
        runs.record(SIM, WALL + minutes(0.5), WALL + minutes(2))  # overlaps
    assert runs.simulated(WALL - minutes(1)) is None
    assert runs.simulated(WALL + minutes(1)) == SIM
    assert runs.simulated(WALL + minutes(2)) is None
