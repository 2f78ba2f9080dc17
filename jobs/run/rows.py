"""The run table (``smartup_sync_runs``) and the locks that allow one run per kind.

A run row is written when a run starts (RUNNING) and when it ends (SUCCESS, PARTIAL or
FAILED); every attempt of a job (RQ retries under the same job id) is a row of its own. A row
left RUNNING (its worker died, or the database went away so it could not be closed) is
closed as FAILED "interrupted" by the next run of its kind. The lock is a PostgreSQL session
advisory lock per kind, held for the whole run on the run's own connection: the database
frees it when the worker dies or the connection breaks, which is how a RUNNING row whose
lock is free is known to belong to a dead run.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import peewee as pw
import psycopg2

from jobs.clock import utc_now
from jobs.kinds import FULL
from jobs.models import SyncRun, is_postgres

RUNNING, SUCCESS, PARTIAL, FAILED = "RUNNING", "SUCCESS", "PARTIAL", "FAILED"
SKIPPED = "SKIPPED"  # an outcome's status, never a row's: a skipped run opens no row
INTERRUPTED = "interrupted: the database or the worker went away"
LOCK_NAMESPACE = zlib.crc32(b"smartup-sync") & 0x7FFFFFFF
ERROR_MESSAGE_CHARS = 1000


class RunLock:
    """One advisory lock per stream; a ``full`` run takes every enabled stream's."""

    def __init__(self, db: pw.Database, kinds: Iterable[str]) -> None:
        self.db = db
        self.kinds = tuple(sorted(set(kinds)))
        self._held: list[str] = []

    def try_acquire(self) -> bool:
        """Take every lock without waiting; on the first one taken elsewhere, take none."""
        if not is_postgres(self.db):
            return True
        for kind in self.kinds:
            cursor = self.db.execute_sql(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, _kind_key(kind))
            )
            if not cursor.fetchone()[0]:
                self.release()
                return False
            self._held.append(kind)
        return True

    def release(self) -> None:
        while self._held:
            kind = self._held.pop()
            if not self.db.is_closed():
                self.db.execute_sql(
                    "SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, _kind_key(kind))
                )


def _kind_key(kind: str) -> int:
    return zlib.crc32(kind.encode()) & 0x7FFFFFFF


def one_line(message: str, *, secrets: Sequence[str] = ()) -> str:
    """``message`` as one line of bounded length with every secret masked (secrets of
    fewer than 4 characters would mask ordinary letters, and are left as they are)."""
    for secret in secrets:
        if len(secret) >= 4:
            message = message.replace(secret, "***")
    message = " ".join(message.split())
    return message[:ERROR_MESSAGE_CHARS]


def close_orphans(
    kinds: Sequence[str], *, cause: Callable[[SyncRun], str | None] | None = None
) -> int:
    """Close RUNNING rows touching ``kinds`` as FAILED "interrupted". Call only while holding
    their locks: then no live worker can own them.

    ``cause`` may tell what interrupted a row (the error its process met, when it left word
    somewhere); it is added to the message.
    """
    run_types = {*kinds, FULL}
    orphans = list(
        SyncRun.select().where(
            (SyncRun.status == RUNNING) & (SyncRun.run_type.in_(sorted(run_types)))
        )
    )
    for run in orphans:
        why = cause(run) if cause else None
        run.status, run.finished_at = FAILED, utc_now()
        run.error_message = one_line(f"{INTERRUPTED} ({why})" if why else INTERRUPTED)
        run.save()
    return len(orphans)


def start_run(
    run_type: str, *, job_id: str | None = None, attempt: int = 1, days_back: int | None = None
) -> SyncRun:
    """Open a RUNNING row: one per attempt, even when RQ retries under the same job id."""
    return SyncRun.create(
        run_type=run_type,
        status=RUNNING,
        started_at=utc_now(),
        job_id=job_id,
        attempt=attempt,
        days_back=days_back,
    )


def status_of(results: Sequence[Any]) -> str:
    """SUCCESS, PARTIAL or FAILED from the stream results of a run.

    FAILED when no stream completed; PARTIAL when one did not, records were rejected, or
    a stream left a warning (a settle the brake refused).
    """
    failed = [r for r in results if r.error]
    if results and len(failed) == len(results):
        return FAILED
    if failed or any(r.rejected or getattr(r, "warning", None) for r in results):
        return PARTIAL
    return SUCCESS


def finish_run(
    run: SyncRun, results: Sequence[Any], *, error: str | None = None, secrets: Sequence[str] = ()
) -> SyncRun:
    """Write the outcome of ``run``: status, counts, error and timing."""
    status = FAILED if error else status_of(results)
    errors = [f"{r.stream}: {r.error}" for r in results if r.error]
    errors += [f"{r.stream}: {r.warning}" for r in results if getattr(r, "warning", None)]
    if error:
        errors.append(error)
    run.status = status
    run.finished_at = utc_now()
    run.duration_s = round((run.finished_at - run.started_at).total_seconds(), 3)
    run.error_message = one_line("; ".join(errors), secrets=secrets) if errors else None
    details: dict[str, Any] = {}
    columns = SyncRun._meta.columns
    for result in results:
        # the seed's columns for the streams that have them; every stream's in details
        for name, value in result.summary().items():
            if f"{result.stream}_{name}" in columns:
                setattr(run, f"{result.stream}_{name}", value)
        if f"synced_{result.stream}_count" in columns:
            setattr(run, f"synced_{result.stream}_count", result.stored)
        details[result.stream] = {**result.summary(), "rejects": result.rejects}
    run.details = details
    run.save()
    return run


COUNTS = ("received", "inserted", "updated", "unchanged", "rejected", "requests", "gone")


def counts_of(run: SyncRun, stream: str) -> dict[str, int]:
    """What ``run`` counted for ``stream``: from its ``details`` (every stream), else from
    the seed's columns (runs written before details held them); 0 for what neither has."""
    found = (run.details or {}).get(stream) if isinstance(run.details, dict) else None
    columns = SyncRun._meta.columns
    counts = {}
    for name in COUNTS:
        if isinstance(found, dict) and isinstance(found.get(name), int):
            counts[name] = int(found[name])
        elif f"{stream}_{name}" in columns:
            counts[name] = int(getattr(run, f"{stream}_{name}") or 0)
        else:
            counts[name] = 0
    return counts


def latest_runs(limit: int = 10) -> list[SyncRun]:
    return list(
        SyncRun.select().order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit)
    )


class RunProgressWriter:
    """A progress sink: writes the snapshot into the RUNNING row's ``progress`` column.

    The run's own connection holds one transaction per export answer while the loader
    streams rows in: an UPDATE there would stay invisible until the answer commits and
    roll back with it. So on PostgreSQL the writer uses a short connection of its own, in
    autocommit, with tight lock and statement timeouts (the load never locks the run row,
    so nothing waits on it). On SQLite, where a second writer would wait for the load's
    lock, it writes nothing: there the row shows the run's counts only when it ends.
    """

    def __init__(self, db: pw.Database, run_id: int) -> None:
        self.db = db
        self.run_id = run_id
        self._connection: Any = None

    def __call__(self, snapshot: dict[str, Any]) -> None:
        if not is_postgres(self.db):
            return
        if self._connection is None:
            params = dict(self.db.connect_params)
            params["options"] = (
                params.get("options", "") + " -c lock_timeout=2000 -c statement_timeout=5000"
            )
            params["application_name"] = "smartup-sync-progress"
            self._connection = psycopg2.connect(dbname=self.db.database, **params)
            self._connection.autocommit = True
        with self._connection.cursor() as cursor:
            cursor.execute(
                "UPDATE smartup_sync_runs SET progress = %s WHERE id = %s AND status = %s",
                (json.dumps(snapshot), self.run_id, RUNNING),
            )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def runs_of(kind: str) -> pw.ModelSelect[SyncRun]:
    """Runs that synced stream ``kind``: its own and ``full`` ones, newest first (a
    ``full`` run of settings that did not enable the stream counts too)."""
    return (
        SyncRun.select()
        .where(SyncRun.run_type.in_(sorted({kind, FULL})))
        .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
    )


def last_run_of(kind: str) -> SyncRun | None:
    run: SyncRun | None = runs_of(kind).first()
    return run


def last_success_of(kind: str) -> SyncRun | None:
    """The latest SUCCESS run of ``kind`` (a PARTIAL one does not count)."""
    run: SyncRun | None = runs_of(kind).where(SyncRun.status == SUCCESS).first()
    return run
