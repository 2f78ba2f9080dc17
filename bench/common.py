"""What every part of the benchmark shares: settings, time zone, sizes, where things are."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jobs.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Tashkent")

# The simulator CLI's defaults (jobs/simulator/__main__.py), passed explicitly anyway.
SMARTUP_USER = "demo@smartup"
SMARTUP_PASSWORD = "demo-secret"
FILIAL_ID = "100"
SEED = 1
ORDER_DAYS = 7  # the simulator's --days: orders span this many days up to its today


def make_settings(database_url: str, base_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        smartup_base_url=base_url,
        smartup_user=SMARTUP_USER,
        smartup_password=SMARTUP_PASSWORD,
        smartup_filial_ids=(FILIAL_ID,),
    )


def sync_today() -> date:
    """The ``today`` a run asks orders up to.

    The simulator dates orders up to its ``date.today()`` (the machine's zone); a worker
    uses today in Asia/Tashkent. The later of the two covers every generated order with a
    7-day look-back.
    """
    return max(date.today(), datetime.now(TZ).date())


def progress(message: str) -> None:
    """A progress line on stderr, so stdout holds only the table."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
