"""``python -m jobs sync|enqueue|status|check|plan|worker|demo``.

Exit codes: 0 on SUCCESS (and PARTIAL, with a warning), 1 on FAILED, 2 on bad arguments or
configuration. ``check``: 0 when healthy, 1 with one line per problem.

``sync`` and ``enqueue --wait`` print the same summary on stdout. Log lines are JSON on
stdout, for log shippers, except where stdout is a terminal a person reads: there ``sync``
and ``enqueue`` send them to stderr, so that the summary table stands alone (``check``
always does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import peewee as pw
import psycopg2
import redis.exceptions
from rq.exceptions import NoSuchJobError
from rq.job import JobStatus

from jobs.day.plan import plan_for
from jobs.day.state import (
    StreamState,
    all_states,
    data_age,
    day_range_limits,
    limits_seen,
    quota_today,
)
from jobs.kinds import FULL, META_PROGRESS
from jobs.logs import configure_logging, get_logger
from jobs.models import SyncRun, open_database
from jobs.pipeline.streams import declared_names, enabled_streams, kinds_of, streams_of
from jobs.processes.demo import run_demo
from jobs.processes.job import run_and_report
from jobs.processes.queueing import enqueue_sync, queues_of, redis_connection
from jobs.processes.scheduler import periodic_jobs
from jobs.processes.worker import run_worker
from jobs.run.progress import TerminalLine, format_progress
from jobs.run.rows import FAILED, PARTIAL, RUNNING, SKIPPED, counts_of, latest_runs, one_line
from jobs.run.sync import SUMMARY_COLUMNS, RunRequest, SyncFailed, summary_row
from jobs.settings import Settings, SettingsError, check_days_back, load_settings
from jobs.watching.alerts import alert_stale
from jobs.watching.error_tracking import start
from jobs.watching.health import database_problems, queue_problems
from jobs.watching.overview import sync_overview

DEMO_DATABASE = Path(".demo") / "smartup.sqlite3"
DESCRIPTION = (
    "smartup-sync: run or queue a sync, watch runs, check health, show the day's plan, "
    "run the worker, or try it all in a demo. Exit codes: 0 success (PARTIAL too, with a "
    "warning), 1 failed or unhealthy, 2 bad arguments or settings."
)


def days_back(raw: str) -> int:
    """``--days-back``: a whole number of days within the accepted range."""
    try:
        value = int(raw)
        check_days_back(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of days from 1 to 90, not {raw!r}"
        ) from None
    return value


def _prog() -> str:
    """What the user typed: the console script's name, or ``python -m jobs``."""
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return script if script == "smartup-sync" else "python -m jobs"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_prog(), description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("sync", "run one sync now, in this process"),
        ("enqueue", "put one sync onto its queue"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("kind", choices=[*declared_names(), FULL])
        command.add_argument(
            "--days-back",
            type=days_back,
            metavar="N",
            help="orders modified in the last N days (1-90)",
        )
        command.add_argument(
            "--full",
            action="store_true",
            help="every stream's whole set, and a sweep, not what changed",
        )
        if name == "enqueue":
            command.add_argument(
                "--wait", action="store_true", help="follow the job to its end; exit as sync"
            )
    status = commands.add_parser("status", help="the latest runs, newest first")
    status.add_argument("--limit", type=int, default=10)
    status.add_argument(
        "--json", action="store_true", help="print jobs.sync_overview() as JSON instead"
    )
    commands.add_parser(
        "check", help="health: exit 0 when healthy, else 1 and one line per problem"
    )
    plan_command = commands.add_parser(
        "plan", help="each stream's cadence, requests per run and per day; each quota pool"
    )
    plan_command.add_argument("--json", action="store_true", help="print the plan as JSON")
    worker = commands.add_parser(
        "worker", help="work every enabled stream's queue (the Procfile's worker)"
    )
    worker.add_argument("--burst", action="store_true", help="quit once the queues are empty")
    demo = commands.add_parser(
        "demo", help="a complete sync from the bundled simulator into SQLite"
    )
    demo.add_argument("--products", type=int, default=500)
    demo.add_argument("--orders", type=int, default=200)
    demo.add_argument("--database", type=Path, default=DEMO_DATABASE)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs_to_stderr = args.command == "check" or (
        args.command in ("sync", "enqueue") and sys.stdout.isatty()
    )
    configure_logging(stream=sys.stderr if logs_to_stderr else None)
    if args.command == "demo":
        return demo(products=args.products, orders=args.orders, database=args.database)
    try:
        settings = load_settings(streams=declared_names())
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    if args.command in ("sync", "enqueue"):
        try:
            streams_of(args.kind, settings)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
    try:
        if args.command == "sync":
            return sync(settings, args.kind, days_back=args.days_back, full=args.full)
        if args.command == "enqueue":
            return enqueue(
                settings, args.kind, days_back=args.days_back, full=args.full, wait=args.wait
            )
        if args.command == "check":
            return check(settings)
        if args.command == "plan":
            return plan(settings, as_json=args.json)
        if args.command == "worker":
            return run_worker(settings, burst=args.burst)
        if args.json:
            return status_json(settings)
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


def _terminal_line() -> Any:
    """A live progress line on stderr, only when stderr is a terminal (logs stay clean)."""
    return TerminalLine(sys.stderr) if sys.stderr.isatty() else None


def sync(settings: Settings, kind: str, *, days_back: int | None = None, full: bool = False) -> int:
    start(settings.sentry_dsn, secrets=settings.secrets, process="sync")
    line = _terminal_line()
    try:
        outcome = run_and_report(
            RunRequest(
                kind=kind,
                settings=settings,
                days_back=days_back,
                full=full,
                progress=[line] if line else (),
            )
        )
    except SyncFailed as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    if outcome.status == SKIPPED:
        print(f"skipped: a {kind} run is already in progress", file=sys.stderr)
        return 0

    return print_summary(
        outcome.run_id,
        outcome.status,
        outcome.duration_s,
        [summary_row(result) for result in outcome.results],
        outcome.error,
    )


def print_summary(
    run_id: int | None,
    run_status: str | None,
    duration_s: float | None,
    streams: Sequence[dict[str, Any]],
    error: str | None,
) -> int:
    """The summary of one run, as ``sync`` and ``enqueue --wait`` print it; the exit code."""
    took = f" in {duration_s:.2f}s" if duration_s is not None else ""
    print(f"run {run_id} {run_status}{took}")
    _print_table(SUMMARY_COLUMNS, [[row.get(c, "-") for c in SUMMARY_COLUMNS] for row in streams])
    if error:
        print(f"error: {error}", file=sys.stderr)
    if run_status == PARTIAL:
        print(
            "warning: PARTIAL run: see sync.record.rejected / sync.error in the logs",
            file=sys.stderr,
        )
    return 1 if run_status == FAILED else 0


def enqueue(
    settings: Settings,
    kind: str,
    *,
    days_back: int | None = None,
    full: bool = False,
    wait: bool = False,
) -> int:
    job = enqueue_sync(kind, days_back=days_back, full=full, settings=settings)
    print(f"job {job.id} on queue {job.origin} ({_word(job.get_status())})")
    return follow(settings, job, kind) if wait else 0


def _word(status: Any) -> str:
    """``queued``, not ``JobStatus.QUEUED``."""
    return str(getattr(status, "value", status) or "gone")


def follow(settings: Settings, job: Any, kind: str, *, poll_seconds: float = 0.5) -> int:
    """Follow ``job`` to its end, drawing its progress on a terminal; exit as ``sync``."""
    ended = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
    line = _terminal_line()
    status = None
    try:
        while True:
            try:
                status = job.get_status(refresh=True)
            except NoSuchJobError:
                status = None
            if status is None or status in ended:
                break
            progress = job.get_meta(refresh=True).get(META_PROGRESS)
            if line is not None and status == JobStatus.STARTED and progress:
                line(progress)
            time.sleep(poll_seconds)
    finally:
        if line is not None:
            line.close()
    if status != JobStatus.FINISHED:
        result = job.latest_result() if status is not None else None
        reason = (result.exc_string or "").strip().splitlines()[-1:] if result else []
        print(
            one_line(
                f"FAILED: job {job.id} {_word(status)}" + (f": {reason[0]}" if reason else ""),
                secrets=settings.secrets,
            ),
            file=sys.stderr,
        )
        return 1
    value = job.return_value() or {}
    if value.get("status") == SKIPPED:
        print(f"skipped: a {kind} run is already in progress", file=sys.stderr)
        return 0
    if "streams" in value:
        return print_summary(
            value.get("run_id"),
            value.get("status"),
            value.get("duration_s"),
            value["streams"],
            value.get("error"),
        )
    return _report_run(settings, value.get("run_id"), value.get("status"), value.get("error"))


def _report_run(
    settings: Settings, run_id: int | None, run_status: str | None, error: str | None
) -> int:
    """The summary of a job whose result holds none (a worker of an older version), read
    back from the run row (its details, else the columns of products and orders)."""
    db = open_database(settings.database_url)
    try:
        run = SyncRun.get_or_none(SyncRun.id == run_id) if run_id else None
    finally:
        db.close()
    if run is None:
        return print_summary(run_id, run_status, None, [], error)

    names = list(run.details) if isinstance(run.details, dict) else []
    names = names or list(kinds_of(settings).get(run.run_type, ()))
    streams = [{"stream": name, **counts_of(run, name)} for name in names]
    return print_summary(run.id, run_status, run.duration_s, streams, error)


def status(settings: Settings, *, limit: int = 10) -> int:
    db = open_database(settings.database_url)
    try:
        runs = latest_runs(limit)
        states = all_states()
        now = datetime.now(UTC)
        day = _day_rows(settings, states, now=now)
        ages = _data_ages(settings, states, now=now)
    finally:
        db.close()

    names = [stream.name for stream in enabled_streams(settings)]

    def counted(run: Any, stream: str) -> str:
        counts = counts_of(run, stream)
        return "/".join(str(counts[n]) for n in ("inserted", "updated", "unchanged", "rejected"))

    rows = [
        [
            run.id,
            run.run_type,
            run.status,
            _when(run.started_at),
            f"{run.duration_s:.1f}s" if run.duration_s is not None else "-",
            *(counted(run, name) for name in names),
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
            *(f"{name} i/u/=/rej" for name in names),
            "error",
        ],
        rows,
    )

    for run in runs:
        if run.status == RUNNING:
            print(f"run {run.id} ({run.run_type}) RUNNING: {format_progress(run.progress)}")
    print()
    _print_table(
        [
            "stream",
            "filial",
            "last success",
            "data age",
            "watermark",
            "sealed through",
            "last sweep/full",
            "quota used/left today",
            "next planned run",
        ],
        day,
    )
    print()
    print(
        "data age (since the last successful request; bounds how stale a record can be): "
        + ", ".join(f"{name} {_age(age)}" for name, age in ages.items())
    )
    return 0


def _day_rows(
    settings: Settings, all_of_them: Sequence[StreamState], *, now: datetime
) -> list[list[Any]]:
    """Per enabled stream and state key (filial): what the worker knows of its day."""
    today = now.astimezone(settings.tz).date()
    plan = plan_for(settings, limits_seen=limits_seen(), day_range_limits=day_range_limits())
    states = {(s.stream, s.filial_id): s for s in all_of_them}
    streams = enabled_streams(settings)
    quotas = {pool: quota_today(pool, today=today) for pool in {s.pool.name for s in streams}}
    rows = []
    for stream in streams:
        name = stream.name
        quota = quotas[stream.pool.name]
        used_left = "-/-"
        if quota is not None:
            used_left = f"{_or_dash(quota.used)}/{_or_dash(quota.left)} ({stream.pool.name})"
            used_left += " (spent)" if quota.spent else ""
        keys = list(stream.filial_keys(settings))
        known = {key for owner, key in states if owner == name}
        for key in [*keys, *sorted(known - set(keys))]:
            state = states.get((name, key))
            last = state.last_success_at if state else None
            next_run = last + timedelta(seconds=plan[name].interval_used) if last else None
            rows.append(
                [
                    name,
                    key or "-",
                    _when(last),
                    _age(data_age([state], now=now) if state else None),
                    state.watermark.isoformat() if state and state.watermark else "-",
                    state.sealed_through.isoformat() if state and state.sealed_through else "-",
                    _when(state.last_sweep_at if state else None),
                    used_left,
                    _when(next_run) + f" (every {plan[name].interval_used}s)",
                ]
            )
    return rows


def plan(settings: Settings, *, as_json: bool = False) -> int:
    """The day's plan per enabled stream and per quota pool, from the settings and the
    quotas last seen."""
    seen: dict[str, int | None] = {}
    ranges: dict[str, int] = {}
    try:
        db = open_database(settings.database_url)
        try:
            seen, ranges = limits_seen(), day_range_limits()
        finally:
            db.close()
    except (pw.PeeweeException, psycopg2.Error) as error:
        print(
            one_line(f"quotas seen unknown ({error}): default quotas", secrets=settings.secrets),
            file=sys.stderr,
        )
    day = plan_for(settings, limits_seen=seen, day_range_limits=ranges)
    fits = all(pool.fits for pool in day.pools.values())
    if as_json:
        streams = [
            {
                "name": p.stream,
                "pool": p.pool,
                "interval_asked": p.interval_asked,
                "interval_used": p.interval_used,
                "requests_per_run": p.requests_per_run,
                "requests_per_sweep": p.requests_per_sweep,
                "runs_per_day": p.runs_per_day,
                "requests_per_day": p.requests_per_day,
                "sweep_asked": p.sweep_asked,
                "sweep_used": p.sweep_used,
            }
            for p in day.values()
        ]
        pools = [pool.as_dict() for pool in day.pools.values()]
        print(json.dumps({"streams": streams, "pools": pools}, indent=2))
        return 0 if fits else 1
    rows = [
        [
            p.stream,
            p.interval_asked,
            p.interval_used,
            p.requests_per_run,
            p.requests_per_sweep,
            p.runs_per_day,
            p.requests_per_day,
            p.quota,
            p.reserve,
            p.budget,
            "yes" if p.fits else "NO",
        ]
        for p in day.values()
    ]
    _print_table(
        [
            "stream",
            "interval asked s",
            "interval used s",
            "requests/run",
            "requests/sweep",
            "runs/day",
            "requests/day",
            "quota",
            "reserve",
            "quota - reserve",
            "fits",
        ],
        rows,
    )
    print()
    _print_table(
        ["pool", "streams", "quota", "reserve", "requests/day", "fits"],
        [
            [
                pool.name,
                ",".join(pool.streams) or "-",
                pool.quota,
                pool.reserve,
                pool.requests_per_day,
                "yes" if pool.fits else "NO",
            ]
            for pool in day.pools.values()
        ],
    )
    return 0 if fits else 1


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def status_json(settings: Settings) -> int:
    print(json.dumps(sync_overview(settings=settings), indent=2))
    return 0


def check(settings: Settings) -> int:
    """One line per problem (exit 1), or one ``ok`` line (exit 0). Also sends the alerts
    of kinds that went stale, when ``SYNC_ALERT_WEBHOOK_URL`` is set."""
    now = datetime.now(UTC)
    problems: list[str] = []
    try:
        db = open_database(settings.database_url)
        try:
            problems += database_problems(
                settings, now=now, today=now.astimezone(settings.tz).date()
            )
            alert_stale(settings, log=get_logger(), now=now)
        finally:
            db.close()
    except (pw.PeeweeException, psycopg2.Error) as error:
        problems.append(one_line(f"database error: {error}", secrets=settings.secrets))
    try:
        problems += queue_problems(
            redis_connection(settings),
            periodic_ids=list(periodic_jobs(settings)),
            queues=queues_of(settings),
            now=now,
        )
    except redis.exceptions.RedisError as error:
        problems.append(one_line(f"Redis error at REDIS_URL: {error}", secrets=settings.secrets))
    for problem in problems:
        print(problem)
    if not problems:
        print("ok: syncs are recent, workers and the scheduler are registered, quota above reserve")
    return 1 if problems else 0


def _data_ages(
    settings: Settings, states: Sequence[StreamState], *, now: datetime
) -> dict[str, float | None]:
    """Per enabled stream, its data age in seconds (:func:`jobs.day.state.data_age`)."""
    return {
        stream.name: data_age(
            [s for s in states if s.stream == stream.name], now=now, counts=stream.ages_data
        )
        for stream in enabled_streams(settings)
    }


def _age(seconds: float | None) -> str:
    """``42s``, ``17 min``, ``3.5 h``, ``2.0 d``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


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
    return run_demo(products=products, orders=orders, database=database, show=_print_table)
