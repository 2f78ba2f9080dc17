"""One first sync in a fresh process, then its peak RSS, as one JSON line on stdout.

``python -m bench.rss --products N --url SIMULATOR_URL --db DATABASE_URL`` (a products
sync of N products), ``--orders N`` (an orders sync of N orders) or ``--stock N`` (a
stock sync of N balance rows).

On Linux a process inherits the peak RSS (``ru_maxrss``) of the process it was started
from: fork copies the parent's pages, and exec keeps the larger of the old and the new
peak. Started straight from the benchmark (which holds the raw bound's rows) it would
report the benchmark's peak. So this module is a tiny launcher that imports nothing
heavy and starts itself once more (``--measure``): that grandchild inherits only the
launcher's few megabytes, runs the sync, and reports
``resource.getrusage(RUSAGE_SELF).ru_maxrss``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any


class RssFailed(Exception):
    """``bench.rss`` exited with an error, or printed no answer."""


def first_sync_peak(what: str, count: int, *, base_url: str, database_url: str) -> dict[str, Any]:
    """Run ``python -m bench.rss --<what> <count>`` against the simulator at ``base_url``
    and the migrated, empty ``database_url``; its answer (``seconds``, ``max_rss_kb``,
    ``vm_hwm_kb``, ...). Called by the benchmark, not by the launcher."""
    from bench.common import PROJECT_ROOT  # the launcher itself imports nothing of the project

    command = [
        sys.executable, "-m", "bench.rss",
        f"--{what}", str(count), "--url", base_url, "--db", database_url,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RssFailed(f"bench.rss failed: {(done.stdout + done.stderr)[-2000:]}")
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


def _measure(args: argparse.Namespace) -> int:
    import logging

    from jobs.logs import configure_logging

    configure_logging(level=logging.WARNING)

    from bench.common import ORDER_DAYS, make_settings, sync_today
    from jobs.run.sync import RunRequest, run_sync

    kind = "orders" if args.orders is not None else "products"
    expected = args.orders if args.orders is not None else args.products
    settings = make_settings(args.db, args.url)
    if args.stock is not None:
        from bench.catalogue import settings_for

        kind, expected = "stock", args.stock
        settings = settings_for(args.db, args.url, kind)
    started = time.perf_counter()
    outcome = run_sync(
        RunRequest(kind=kind, settings=settings, days_back=ORDER_DAYS, today=sync_today())
    )
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with open("/proc/self/status") as status:
        hwm = [line.split()[1] for line in status if line.startswith("VmHWM:")]
    inserted = sum(result.inserted for result in outcome.results)
    answer = {
        "status": outcome.status,
        "kind": kind,
        "expected": expected,
        "inserted": inserted,
        "seconds": seconds,
        "max_rss_kb": peak_kb,
        "vm_hwm_kb": int(hwm[0]) if hwm else None,
    }
    print(json.dumps(answer), flush=True)
    if args.stock is not None:  # generated rows may share a key; warehouses count too
        return 0 if outcome.status == "SUCCESS" and inserted > 0 else 1
    return 0 if outcome.status == "SUCCESS" and inserted == expected else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rss")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--products", type=int, help="a products sync: products the export holds")
    what.add_argument("--orders", type=int, help="an orders sync: orders the exports hold")
    what.add_argument("--stock", type=int, help="a stock sync: balance rows the export holds")
    parser.add_argument("--url", required=True, help="the simulator's base URL")
    parser.add_argument("--db", required=True, help="an empty, migrated PostgreSQL database")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        return _measure(args)
    kind, count = (
        ("--orders", args.orders) if args.orders is not None else ("--products", args.products)
    )
    if args.stock is not None:
        kind, count = "--stock", args.stock
    command = [
        sys.executable, "-m", "bench.rss", "--measure",
        kind, str(count), "--url", args.url, "--db", args.db,
    ]  # fmt: skip
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(main())
