"""One validated settings object, read from the environment (and a ``.env`` file) once.

Every entry point reads what it needs here once and passes it down: the CLI, the job and
``schedule.py`` call :func:`load_settings`, ``migrate.py`` :func:`load_database_url`, the
dashboard :func:`load_dashboard_settings`, the web app's calls the ``web_*`` readers.
Nothing deeper reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from environs import Env, EnvError

T = TypeVar("T")


DAYS_BACK_MIN, DAYS_BACK_MAX = 1, 90  # SYNC_ORDERS_DAYS_BACK, and --days-back of one run
# SYNC_STREAMS by default: the seed's behaviour, and nothing more spent on a shared quota
DEFAULT_STREAMS: tuple[str, ...] = ("products", "orders")
SEAL_MINUTES_DEFAULT = 15  # SYNC_SEAL_MINUTES (see jobs.day.sealing)
SEAL_MINUTES_MIN, SEAL_MINUTES_MAX = 0, 1440
STOCK_CONDITIONS = ("F", "B", "T")  # free, booked, in transit
DEFAULT_CONDITIONS: tuple[str, ...] = ("F",)  # SMARTUP_STOCK_CONDITIONS by default


class SettingsError(Exception):
    """A missing or invalid setting. ``str()`` is one line naming the variable; never its value."""

    def __init__(self, variable: str, accepted: str) -> None:
        self.variable = variable
        self.accepted = accepted
        super().__init__(f"invalid setting {variable}: expected {accepted}")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the worker is configured with. Build it with :func:`load_settings`."""

    database_url: str
    smartup_base_url: str
    smartup_user: str
    smartup_password: str = field(repr=False)
    redis_url: str = "redis://localhost:6379/0"
    smartup_project_code: str = "trade"
    smartup_filial_ids: tuple[str, ...] = ()
    smartup_inventory_export_url: str | None = None
    smartup_timezone: str = "Asia/Tashkent"
    smartup_timeout_seconds: float = 60.0
    smartup_retry_seconds: float = 300.0
    sync_interval_seconds: int = 600
    sync_orders_days_back: int = 7
    sync_job_timeout_seconds: int = 1800
    smartup_quota_reserve_percent: int = 20
    sync_max_gone_percent: float = 10.0
    sync_sweep_seconds: int = 86400
    sync_seal_minutes: int = SEAL_MINUTES_DEFAULT
    sync_alert_webhook_url: str | None = field(default=None, repr=False)
    sentry_dsn: str | None = field(default=None, repr=False)
    sync_streams: tuple[str, ...] = DEFAULT_STREAMS
    stream_intervals: Mapping[str, int] = field(default_factory=dict)
    smartup_price_type_codes: tuple[str, ...] = ()
    smartup_stock_conditions: tuple[str, ...] = DEFAULT_CONDITIONS

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.smartup_timezone)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line, an error or the run table."""
        found = [self.smartup_password]
        db_password = urlsplit(self.database_url).password
        if db_password:
            found.append(db_password)
        redis_password = urlsplit(self.redis_url).password
        if redis_password:
            found.append(redis_password)
        if self.sync_alert_webhook_url:  # a webhook URL is a credential (Slack, Telegram)
            found.append(self.sync_alert_webhook_url)
            path = urlsplit(self.sync_alert_webhook_url).path  # holds the token
            if len(path) >= 8:
                found.append(path)
        if self.sentry_dsn:  # its key lets anyone send events to the project
            found.append(self.sentry_dsn)
            key = urlsplit(self.sentry_dsn).username
            if key and len(key) >= 8:
                found.append(key)
        return tuple(s for s in found if s)


def check_days_back(days_back: int | None) -> None:
    """A run's own ``days_back`` keeps to the bounds of ``SYNC_ORDERS_DAYS_BACK``."""
    if days_back is not None and not DAYS_BACK_MIN <= days_back <= DAYS_BACK_MAX:
        raise ValueError(
            f"days_back must be between {DAYS_BACK_MIN} and {DAYS_BACK_MAX}, not {days_back}"
        )


def _process_environment() -> Callable[[str], str]:
    """The environment as environs reads it: the process's variables, and a ``.env``
    file in the working directory for those that are not set."""
    env = Env()
    env.read_env(".env", recurse=False, override=False)
    return lambda name: str(env.str(name, ""))


def _web_environment(env_file: str | None) -> Callable[[str], str]:
    """The environment as the web app's calls read it: the process's variables only, and
    ``env_file`` for those that are not set when the caller names one (never a ``.env``
    it did not ask for)."""
    if env_file is None:
        return lambda name: os.environ.get(name, "")
    env = Env()
    if not env.read_env(env_file, recurse=False, override=False):
        raise SettingsError("env_file", f"a readable file (cannot read {env_file!r})")
    return lambda name: str(env.str(name, ""))


def web_redis_url(*, env_file: str | None = None) -> str:
    """``REDIS_URL`` alone: what :func:`jobs.enqueue_sync` needs when it is given no
    connection. Raises :class:`SettingsError` naming it when it is not set."""
    return _Reader(_web_environment(env_file)).required(
        "REDIS_URL",
        _redis_url,
        "redis://, rediss:// or unix:// URL, or pass connection=redis.Redis(...)",
    )


def web_database_url(*, env_file: str | None = None) -> str:
    """``DATABASE_URL`` alone: what :func:`jobs.sync_overview` needs. Raises
    :class:`SettingsError` naming it when it is not set."""
    return _Reader(_web_environment(env_file)).required(
        "DATABASE_URL", _database_url, "postgresql://... or sqlite:///..."
    )


def web_optional_redis_url(*, env_file: str | None = None) -> str | None:
    """``REDIS_URL`` when it is set (the overview's queue part goes without it)."""
    return _Reader(_web_environment(env_file)).optional(
        "REDIS_URL", None, _redis_url, "redis://, rediss:// or unix:// URL"
    )


def load_database_url() -> str:
    """Only ``DATABASE_URL``: what ``migrate.py`` (the release step) needs."""
    return _Reader(_process_environment()).required(
        "DATABASE_URL", _database_url, "postgresql://... or sqlite:///..."
    )


@dataclass(frozen=True, kw_only=True)
class DashboardSettings:
    """What the optional ``dashboard`` process reads (it needs no database or SmartUp)."""

    redis_url: str = "redis://localhost:6379/0"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)  # for the page of the day


def load_dashboard_settings(environ: Mapping[str, str] | None = None) -> DashboardSettings:
    """``REDIS_URL``, ``RQ_DASHBOARD_USERNAME`` and ``RQ_DASHBOARD_PASSWORD`` (both or
    none), and ``DATABASE_URL`` when set (the ``/sync`` page needs it)."""
    reader = _Reader(
        _process_environment() if environ is None else lambda name: environ.get(name, "")
    )
    username = reader.optional("RQ_DASHBOARD_USERNAME", None, _non_empty, "a user name")
    password = reader.optional("RQ_DASHBOARD_PASSWORD", None, _non_empty, "a password")
    if bool(username) != bool(password):
        missing, given = (
            ("RQ_DASHBOARD_PASSWORD", "RQ_DASHBOARD_USERNAME")
            if username
            else ("RQ_DASHBOARD_USERNAME", "RQ_DASHBOARD_PASSWORD")
        )
        raise SettingsError(missing, f"a value too, since {given} is set (set both or neither)")
    return DashboardSettings(
        redis_url=reader.optional(
            "REDIS_URL",
            "redis://localhost:6379/0",
            _redis_url,
            "redis://, rediss:// or unix:// URL",
        ),
        username=username,
        password=password,
        database_url=reader.optional(
            "DATABASE_URL", None, _database_url, "postgresql://... or sqlite:///..."
        ),
    )


def load_settings(environ: Mapping[str, str] | None = None, *, streams: Sequence[str]) -> Settings:
    """Read and validate every variable; raise :class:`SettingsError` on the first bad one.

    ``environ`` defaults to the process's environment plus a ``.env`` file in the working
    directory (which never overrides a variable that is already set). ``streams``: the
    names of the declared streams (:func:`jobs.pipeline.streams.declared_names`), which
    ``SYNC_STREAMS`` may list and ``SYNC_<STREAM>_INTERVAL_SECONDS`` may tune; the entry
    point that loads the settings passes them, as the settings sit below the streams.
    """
    reader = _Reader(
        _process_environment() if environ is None else lambda name: environ.get(name, "")
    )
    database_url = reader.required(
        "DATABASE_URL", _database_url, "postgresql://... or sqlite:///..."
    )
    base_url = reader.required(
        "SMARTUP_BASE_URL", _smartup_url, "an https:// URL (http:// only for loopback hosts)"
    )
    return Settings(
        database_url=database_url,
        smartup_base_url=base_url.rstrip("/"),
        smartup_user=reader.required("SMARTUP_BASIC_USER", _non_empty, "a non-empty user name"),
        smartup_password=reader.required("SMARTUP_BASIC_PASS", _non_empty, "a non-empty password"),
        redis_url=reader.optional(
            "REDIS_URL",
            "redis://localhost:6379/0",
            _redis_url,
            "redis://, rediss:// or unix:// URL",
        ),
        smartup_project_code=reader.optional(
            "SMARTUP_PROJECT_CODE", "trade", _non_empty, "a project code such as trade or anor"
        ),
        smartup_filial_ids=reader.optional(
            "SMARTUP_FILIAL_ID",
            (),
            _filial_ids,
            "a numeric id or a comma-separated list of numeric ids",
        ),
        smartup_inventory_export_url=reader.optional(
            "SMARTUP_INVENTORY_EXPORT_URL",
            None,
            _smartup_url,
            "an https:// URL (http:// only for loopback hosts)",
        ),
        smartup_timezone=reader.optional(
            "SMARTUP_TIMEZONE",
            "Asia/Tashkent",
            _timezone,
            "an IANA time zone such as Asia/Tashkent",
        ),
        smartup_timeout_seconds=reader.optional(
            "SMARTUP_TIMEOUT_SECONDS", 60.0, _bounded(float, 1, 3600), "seconds between 1 and 3600"
        ),
        smartup_retry_seconds=reader.optional(
            "SMARTUP_RETRY_SECONDS", 300.0, _bounded(float, 0, 3600), "seconds between 0 and 3600"
        ),
        sync_interval_seconds=reader.optional(
            "SYNC_INTERVAL_SECONDS",
            600,
            _bounded(int, 60, 86400),
            "an integer between 60 and 86400",
        ),
        sync_orders_days_back=reader.optional(
            "SYNC_ORDERS_DAYS_BACK",
            7,
            _bounded(int, DAYS_BACK_MIN, DAYS_BACK_MAX),
            f"an integer between {DAYS_BACK_MIN} and {DAYS_BACK_MAX}",
        ),
        sync_job_timeout_seconds=reader.optional(
            "SYNC_JOB_TIMEOUT_SECONDS",
            1800,
            _bounded(int, 60, 86400),
            "an integer between 60 and 86400",
        ),
        smartup_quota_reserve_percent=reader.optional(
            "SMARTUP_QUOTA_RESERVE_PERCENT",
            20,
            _bounded(int, 0, 90),
            "an integer percentage between 0 and 90",
        ),
        sync_max_gone_percent=reader.optional(
            "SYNC_MAX_GONE_PERCENT",
            10.0,
            _bounded(float, 0, 100),
            "a percentage between 0 and 100",
        ),
        sync_sweep_seconds=reader.optional(
            "SYNC_SWEEP_SECONDS",
            86400,
            _bounded(int, 3600, 7 * 86400),
            "an integer between 3600 and 604800",
        ),
        sync_seal_minutes=reader.optional(
            "SYNC_SEAL_MINUTES",
            SEAL_MINUTES_DEFAULT,
            _bounded(int, SEAL_MINUTES_MIN, SEAL_MINUTES_MAX),
            f"an integer between {SEAL_MINUTES_MIN} and {SEAL_MINUTES_MAX} (minutes)",
        ),
        sync_alert_webhook_url=reader.optional(
            "SYNC_ALERT_WEBHOOK_URL",
            None,
            _webhook_url,
            "an https:// URL (http:// only for loopback hosts)",
        ),
        sentry_dsn=reader.optional(
            "SENTRY_DSN",
            None,
            _sentry_dsn,
            "a Sentry DSN such as https://KEY@o1.ingest.sentry.io/2 (http:// only for loopback)",
        ),
        sync_streams=_streams(reader, streams),
        stream_intervals={
            name: interval
            for name in streams
            if (
                interval := reader.optional(
                    f"SYNC_{name.upper()}_INTERVAL_SECONDS",
                    0,
                    _bounded(int, 60, 86400),
                    "an integer between 60 and 86400",
                )
            )
        },
        smartup_price_type_codes=reader.optional(
            "SMARTUP_PRICE_TYPE_CODES", (), _code_list, "a comma-separated list of price type codes"
        ),
        smartup_stock_conditions=reader.optional(
            "SMARTUP_STOCK_CONDITIONS",
            DEFAULT_CONDITIONS,
            _conditions,
            f"a comma-separated list of {', '.join(STOCK_CONDITIONS)}",
        ),
    )


def _streams(reader: _Reader, declared: Sequence[str]) -> tuple[str, ...]:
    """``SYNC_STREAMS``: declared stream names, comma-separated; an unknown one is named."""
    accepted = f"a comma-separated list of {', '.join(declared)}"
    names = reader.optional("SYNC_STREAMS", DEFAULT_STREAMS, _code_list, accepted)
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise SettingsError("SYNC_STREAMS", f"{accepted}, not {unknown[0]!r}")
    return names


class _Reader:
    def __init__(self, lookup: Callable[[str], str]) -> None:
        self._lookup = lookup

    def required(self, name: str, parse: Callable[[str], T], accepted: str) -> T:
        raw = self._lookup(name).strip()
        if not raw:
            raise SettingsError(name, f"{accepted} (required, not set)")
        return self._parse(name, raw, parse, accepted)

    def optional(self, name: str, default: T, parse: Callable[[str], T], accepted: str) -> T:
        raw = self._lookup(name).strip()
        if not raw:
            return default
        return self._parse(name, raw, parse, accepted)

    @staticmethod
    def _parse(name: str, raw: str, parse: Callable[[str], T], accepted: str) -> T:
        try:
            return parse(raw)
        except (ValueError, EnvError):
            raise SettingsError(name, accepted) from None


def _non_empty(raw: str) -> str:
    if not raw:
        raise ValueError("empty")
    return raw


def _bounded(kind: Callable[[str], T], low: float, high: float) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if not low <= value <= high:  # type: ignore[operator]
            raise ValueError("out of range")
        return value

    return parse


def _database_url(raw: str) -> str:
    scheme = urlsplit(raw).scheme
    if scheme in ("postgresql", "postgres") and urlsplit(raw).path.strip("/"):
        return raw
    if scheme == "sqlite" and raw.startswith("sqlite:///") and len(raw) > len("sqlite:///"):
        return raw
    raise ValueError("unsupported database URL")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _smartup_url(raw: str) -> str:
    parts = urlsplit(raw)
    if not parts.hostname or parts.username or parts.password:
        raise ValueError("no host, or credentials inside the URL")
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname)):
        return raw
    raise ValueError("not https")


def _webhook_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.hostname and (
        parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))
    ):
        return raw
    raise ValueError("not https")


def _sentry_dsn(raw: str) -> str:
    parts = urlsplit(raw)
    if not parts.username or not parts.path.strip("/"):
        raise ValueError("no key or no project")
    return _webhook_url(raw)


def _redis_url(raw: str) -> str:
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("not a redis URL")
    return raw


def _filial_ids(raw: str) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in raw.split(","))
    if not ids or not all(part.isdigit() for part in ids):
        raise ValueError("not numeric ids")
    return tuple(dict.fromkeys(ids))


def _code_list(raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(","))
    if not all(names):
        raise ValueError("an empty name")
    return tuple(dict.fromkeys(names))


def _conditions(raw: str) -> tuple[str, ...]:
    names = _code_list(raw.upper())
    if any(name not in STOCK_CONDITIONS for name in names):
        raise ValueError("unknown condition")
    return names


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone") from None
    return raw
