"""``NOTIFY smartup_sync``: every committed change, announced to whoever listens.

A web app that ``LISTEN smartup_sync`` hears one notification per export answer that
changed anything (and one per reconciliation that marked rows gone or revived them),
sent inside the transaction that made the change: PostgreSQL delivers it only if that
transaction commits. The payload is JSON with counts only, never rows:
``{"stream", "run_id", "inserted", "updated", "gone", "revived"}``; the rows themselves
are those whose ``last_synced_at`` moved (see README "Hearing every change").
"""

from __future__ import annotations

import json
from typing import Any

CHANNEL = "smartup_sync"


def payload(
    stream: str,
    run_id: int | None,
    *,
    inserted: int = 0,
    updated: int = 0,
    gone: int = 0,
    revived: int = 0,
) -> str:
    return json.dumps(
        {
            "stream": stream,
            "run_id": run_id,
            "inserted": inserted,
            "updated": updated,
            "gone": gone,
            "revived": revived,
        }
    )


def announce(
    cursor: Any,
    stream: str,
    run_id: int | None,
    *,
    inserted: int = 0,
    updated: int = 0,
    gone: int = 0,
    revived: int = 0,
) -> bool:
    """Queue the notification on ``cursor``'s transaction (PostgreSQL) when anything
    changed; return whether it did."""
    if not (inserted or updated or gone or revived):
        return False
    cursor.execute(
        "SELECT pg_notify(%s, %s)",
        (
            CHANNEL,
            payload(stream, run_id, inserted=inserted, updated=updated, gone=gone, revived=revived),
        ),
    )
    return True
