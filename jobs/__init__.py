"""smartup-sync: keeps a PostgreSQL database in step with SmartUp ERP.

The web app's entry points are :func:`enqueue_sync` (needs Redis only: ``REDIS_URL`` or a
connection) and :func:`sync_overview` (needs ``DATABASE_URL``, and Redis for its queue
part); neither reads a ``.env`` unless asked. They are imported lazily, on first use:
importing any ``jobs.*`` module runs this file first, and ``jobs.simulator`` must load
nothing of the worker (nor Redis, RQ or the database driver).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.processes.queueing import enqueue_sync
    from jobs.watching.overview import sync_overview

__all__ = ["enqueue_sync", "sync_overview"]


def __getattr__(name: str) -> Any:
    # Inside on purpose (PEP 562), not at the top: see the module's docstring.
    if name == "enqueue_sync":
        from jobs.processes.queueing import enqueue_sync  # noqa: PLC0415

        return enqueue_sync
    if name == "sync_overview":
        from jobs.watching.overview import sync_overview  # noqa: PLC0415

        return sync_overview
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")
