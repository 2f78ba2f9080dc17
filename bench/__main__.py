"""``python -m bench`` (``make bench``): the sync against the goals of the performance issue.

Cases, each one row of the table (ratios, not absolute times, all in one run):

1. ``products-first``: a products sync of 100,000 products from the simulator (its own
   process, over loopback) into empty tables, end to end in this process, against the raw
   bound's first load of the same rows (goal >= 0.5x).
2. ``products-resync``: the same sync again, unchanged: no row may be written
   (``pg_stat_user_tables``), against the raw bound's no-op merge (goal >= 1.0x).
3. ``orders-first``: 20,000 orders of 8 lines into empty tables; rows = orders + lines
   (goal >= 0.85x the raw bound).
4. ``orders-resync``: the same orders sync again, unchanged: no row may be written
   (``pg_stat_user_tables``).
5. ``memory``: peak RSS of a products first sync of 200,000 and of 20,000 products, each
   in a fresh process (goal <= 150 MB and <= 1.25x the 20,000 peak).
6. ``orders-memory``: peak RSS of an orders first sync of 50,000 and of 2,000 orders of 1
   to 20 lines, each in a fresh process (goal <= 120 MB and <= 1.15x the 2,000 peak).
7. ``naive``: one peewee get-then-save per product (goal: ours >= 30x faster).
8. ``day``: a day of operation of every stream (100,000 products, 1% changing, 5,000
   orders a day, 20,000 stock rows, 3 price types; one filial, defaults): requests per
   pool, MB downloaded, rows written and staleness per stream, before (every stream whole
   every 600 s) and after (the day's plan); ends with the ``day:`` line; ``bench/day.py``.
   ``week``: seven days in fast-forward through an outage, another program spending half
   the reference quota, a quota refusal and a killed worker; the day-by-day table, then
   the ``week:`` line; ``bench/week.py`` (its default size is ``WEEK_SCALE`` of the
   day's, times ``--scale``).
9. ``stock``, ``stock-memory``, ``prices``: the shop's catalogue (``bench/catalogue.py``):
   a stock snapshot of 100,000 balance rows and the prices of 100,000 products x 3 price
   types, first and unchanged, against the raw bound; peak RSS of a stock sync at 10,000
   and 100,000 rows.

``--scale 0.1`` multiplies every size (a quick run); ``--only products-first,naive``
runs some cases. The raw bound of each case is the median of ``--raw-runs`` loads.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import traceback
from collections.abc import Callable, Sequence

from jobs.logs import configure_logging

ALIASES = {
    "products": "products-first",
    "products-first-sync": "products-first",
    "resync": "products-resync",
    "products-unchanged-re-sync": "products-resync",
    "orders": "orders-first",
    "orders-first-sync": "orders-first",
    "orders-unchanged-re-sync": "orders-resync",
    "orders-unchanged": "orders-resync",
    "products-memory": "memory",
}


def _cases(raw: str | None, known: Sequence[str]) -> frozenset[str]:
    if not raw:
        return frozenset(known)
    chosen = set()
    for part in raw.split(","):
        name = "-".join(part.strip().lower().replace("_", " ").split())
        name = ALIASES.get(name, name)
        if name not in known:
            raise SystemExit(f"unknown case {part.strip()!r}; cases: {', '.join(known)}")
        chosen.add(name)
    return frozenset(chosen)


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging(level=logging.WARNING)  # before anything logs: keep stdout for the table

    from bench import cases, catalogue
    from bench.common import progress
    from bench.day import day_of_operation
    from bench.pg import Databases, server_version
    from bench.report import Row, render
    from bench.week import week_case

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size (0.1: quick)")
    known = (*cases.CASES, *catalogue.CASES)
    parser.add_argument("--only", help=f"comma-separated cases: {', '.join(known)}")
    parser.add_argument("--raw-runs", type=int, default=3, help="raw bound loads per case (median)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is not met")
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.raw_runs < 1:
        parser.error("--scale must be positive and --raw-runs at least 1")

    bench = cases.Bench(
        scale=args.scale, cases=_cases(args.only, known), dbs=Databases(),
        raw_runs=args.raw_runs,
    )  # fmt: skip
    steps: list[tuple[set[str], Callable[[cases.Bench], None]]] = [
        ({cases.PRODUCTS_FIRST, cases.PRODUCTS_RESYNC}, cases.products),
        ({cases.ORDERS_FIRST, cases.ORDERS_RESYNC}, cases.orders),
        ({cases.MEMORY}, cases.memory),
        ({cases.ORDERS_MEMORY}, cases.orders_memory),
        ({cases.NAIVE}, cases.naive),
        ({cases.DAY}, day_of_operation),
        ({cases.WEEK}, week_case),
        ({catalogue.STOCK}, catalogue.stock),
        ({catalogue.STOCK_MEMORY}, catalogue.stock_memory),
        ({catalogue.PRICES}, catalogue.prices),
    ]
    failed = False
    try:
        for names, step in steps:
            if not names & bench.cases:
                continue
            try:
                step(bench)
            except Exception as error:
                failed = True
                traceback.print_exc()
                bench.rows.append(Row(f"{step.__name__}: FAILED", goal=str(error)[:80], met=False))
    finally:
        progress("dropping the benchmark's databases")
        bench.dbs.drop_all()

    nproc = len(os.sched_getaffinity(0))
    print(render(bench.rows))
    print()
    print(
        f"machine: nproc {nproc}; PostgreSQL {server_version()}; "
        f"Python {platform.python_version()}; scale {args.scale:g}; "
        f"raw bound = median of {args.raw_runs} loads"
    )
    for note in bench.notes:
        print(f"note: {note}")
    for line in bench.closing:
        print(line)
    unmet = any(row.met is False for row in bench.rows)
    return 1 if failed or (args.strict and unmet) else 0


if __name__ == "__main__":
    sys.exit(main())
