"""The plan the scheduler registered, kept in PostgreSQL for the web app.

``schedule.py`` writes it each time it registers the periodic jobs (at start, and when a
new quota changes the plan); :func:`jobs.sync_overview` reads it, so the web app shows
the cadence the scheduler really uses, whatever ``SYNC_*`` variables its own environment
holds. PostgreSQL rather than Redis: the overview needs the database anyway, and a Redis
that restarts empty would lose it until the next registration.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from jobs.day.plan import StreamPlan
from jobs.models import RegisteredPlan, database


def save_plan(
    plan: Mapping[str, StreamPlan], *, timezone: str, now: datetime | None = None
) -> None:
    """Keep ``plan`` (one row per stream, replacing what was there) in one transaction."""
    now = now or datetime.now(UTC)
    with database.atomic():
        RegisteredPlan.delete().where(RegisteredPlan.stream.not_in(list(plan))).execute()
        for stream, stream_plan in plan.items():
            RegisteredPlan.insert(
                stream=stream, plan=stream_plan.as_dict(), timezone=timezone, registered_at=now
            ).on_conflict(
                conflict_target=[RegisteredPlan.stream],
                update={
                    RegisteredPlan.plan: stream_plan.as_dict(),
                    RegisteredPlan.timezone: timezone,
                    RegisteredPlan.registered_at: now,
                },
            ).execute()


def registered_plan() -> dict[str, dict[str, Any]]:
    """Per stream: the plan registered last (``as_dict`` of it), with ``timezone`` and
    ``registered_at``; empty when no scheduler has registered one yet."""
    return {
        row.stream: {
            **row.plan,
            "timezone": row.timezone,
            "registered_at": row.registered_at.isoformat(timespec="seconds"),
        }
        for row in RegisteredPlan.select()
    }
