"""``python -m jobs sync|enqueue|status|worker|demo``.

Exit codes: 0 on SUCCESS (and PARTIAL, with a warning), 1 on FAILED, 2 on bad arguments or
configuration.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import peewee as pw
import psycopg2
import redis.exceptions

from jobs.runs import one_line
from jobs.settings import Settings, SettingsError, check_days_back, load_settings
from jobs.streams import RUN_KINDS

DEMO_DATABASE = Path(".demo") / "smartup.sqlite3"


def _days_back(raw: str) -> int:
    value = int(raw)
    try:
        check_days_back(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs", description=__doc__.splitlines()[0] if __doc__ else None
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("sync", "run one sync now, in this process"),
        ("enqueue", "put one sync onto its queue"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("kind", choices=list(RUN_KINDS))
        command.add_argument(
            "--days-back",
            type=_days_back,
            metavar="N",
            help="orders modified in the last N days (1-90)",
        )
    status = commands.add_parser("status", help="the latest runs, newest first")
    status.add_argument("--limit", type=int, default=10)
    worker = commands.add_parser("worker", help="work both queues (the Procfile's worker)")
    worker.add_argument("--burst", action="store_true", help="quit once the queues are empty")
    demo = commands.add_parser(
        "demo", help="a complete sync from the bundled simulator into SQLite"
    )
    demo.add_argument("--products", type=int, default=500)
    demo.add_argument("--orders", type=int, default=200)
    demo.add_argument("--database", type=Path, default=DEMO_DATABASE)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from jobs.logs import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging()
    if args.command == "demo":
        return demo(products=args.products, orders=args.orders, database=args.database)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    try:
        if args.command == "sync":
            return sync(settings, args.kind, days_back=args.days_back)
        if args.command == "enqueue":
            return enqueue(settings, args.kind, days_back=args.days_back)
        if args.command == "worker":
            from jobs.worker import run_worker

            return run_worker(settings, burst=args.burst)
        return status(settings, limit=args.limit)
    except (pw.PeeweeException, psycopg2.Error) as error:
        hint = (
            " (has `python migrate.py` run?)"
            if "does not exist" in str(error) or "no such table" in str(error)
            else ""
        )
        print(one_line(f"database error: {error}{hint}", secrets=settings.secrets), file=sys.stderr)
        return 1
    except redis.exceptions.RedisError as error:
        print(
            one_line(f"Redis error at REDIS_URL: {error}", secrets=settings.secrets),
            file=sys.stderr,
        )
        return 1


def sync(settings: Settings, kind: str, *, days_back: int | None = None) -> int:
    from jobs.tasks import SKIPPED, SyncFailed, run_sync

    try:
        outcome = run_sync(kind, settings=settings, days_back=days_back)
    except SyncFailed as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    if outcome.status == SKIPPED:
        print(f"skipped: a {kind} run is already in progress", file=sys.stderr)
        return 0
    rows = [
        [r.stream, r.received, r.inserted, r.updated, r.unchanged, r.rejected]
        for r in outcome.results
    ]
    print(f"run {outcome.run_id} {outcome.status} in {outcome.duration_s:.2f}s")
    _print_table(["stream", "received", "inserted", "updated", "unchanged", "rejected"], rows)
    if outcome.error:
        print(f"error: {outcome.error}", file=sys.stderr)
    if outcome.status == "PARTIAL":
        print(
            "warning: PARTIAL run: see sync.record.rejected / sync.error in the logs",
            file=sys.stderr,
        )
    return 1 if outcome.status == "FAILED" else 0


def enqueue(settings: Settings, kind: str, *, days_back: int | None = None) -> int:
    from jobs.queueing import enqueue_sync

    job = enqueue_sync(kind, days_back=days_back, settings=settings)
    print(f"job {job.id} on queue {job.origin} ({job.get_status()})")
    return 0


def status(settings: Settings, *, limit: int = 10) -> int:
    from jobs.runs import latest_runs
    from models import open_database

    db = open_database(settings.database_url)
    try:
        runs = latest_runs(limit)
    finally:
        db.close()
    rows = [
        [
            run.id,
            run.run_type,
            run.status,
            _when(run.started_at),
            f"{run.duration_s:.1f}s" if run.duration_s is not None else "-",
            f"{run.products_inserted}/{run.products_updated}/{run.products_unchanged}/{run.products_rejected}",
            f"{run.orders_inserted}/{run.orders_updated}/{run.orders_unchanged}/{run.orders_rejected}",
            (run.error_message or "")[:80],
        ]
        for run in runs
    ]
    _print_table(
        [
            "id",
            "type",
            "status",
            "started",
            "took",
            "products i/u/=/rej",
            "orders i/u/=/rej",
            "error",
        ],
        rows,
    )
    return 0


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S%z") if moment else "-"


def _print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for number, row in enumerate(cells):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if number == 0:
            print("  ".join("-" * width for width in widths))


def demo(*, products: int, orders: int, database: Path) -> int:
    """The embedded default: simulator → full sync → SQLite, then what was stored."""
    from jobs.demo import run_demo

    return run_demo(products=products, orders=orders, database=database, show=_print_table)
