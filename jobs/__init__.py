"""smartup-sync: keeps a PostgreSQL database in step with SmartUp ERP.

The web app's entry point is :func:`enqueue_sync`; it is imported lazily so that
``jobs.simulator`` and the CLI do not pay for Redis and RQ when they do not need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.queueing import enqueue_sync

__all__ = ["enqueue_sync"]


def __getattr__(name: str) -> Any:
    if name == "enqueue_sync":
        from jobs.queueing import enqueue_sync

        return enqueue_sync
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")
