"""How long and how often to retry: one policy for the request and for a broken body.

The request side is urllib3's ``Retry`` (through requests): connection errors, read
timeouts before the answer, and the statuses SmartUp uses for "try again later" (429,
5xx, 608), honouring ``Retry-After``. A body that breaks off midway is outside urllib3's
reach; :meth:`RetryPolicy.broken_body_waits` gives the waits for redoing the whole export.
Both are exponential with jitter and stop at ``total_seconds``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from jobs.smartup.errors import SmartUpQuotaSpent
from jobs.smartup.refusals import refusal_in

RETRY_STATUSES = frozenset({429, 608, *range(500, 600)})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """``attempts`` tries at most, waits of ``backoff_seconds * 2**n`` (capped at
    ``backoff_max_seconds``) plus up to ``jitter_seconds``, all within ``total_seconds``."""

    attempts: int = 6
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    jitter_seconds: float = 1.0
    total_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {self.attempts}")
        for name in ("backoff_seconds", "backoff_max_seconds", "jitter_seconds", "total_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def urllib3_retry(self) -> Retry:
        """The request-level retry for an ``HTTPAdapter``."""
        return _BoundedRetry(
            total=self.attempts - 1,
            allowed_methods=None,  # exports are POSTs that change nothing: safe to repeat
            status_forcelist=RETRY_STATUSES,
            backoff_factor=self.backoff_seconds / 2,
            backoff_max=self.backoff_max_seconds,
            backoff_jitter=self.jitter_seconds,
            retry_after_max=max(1, int(self.total_seconds)),
            raise_on_status=False,
            total_seconds=self.total_seconds,
        )

    def broken_body_waits(self) -> Iterator[float]:
        """The waits before each retry of an export whose body broke off; ends when the
        attempts or the time are used up."""
        deadline = time.monotonic() + self.total_seconds
        for retry_number in range(self.attempts - 1):
            wait = min(self.backoff_max_seconds, self.backoff_seconds * 2**retry_number)
            wait += random.uniform(0, self.jitter_seconds)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            yield min(wait, remaining)


class _BoundedRetry(Retry):
    """urllib3's Retry that also gives up once ``total_seconds`` have passed since the
    first failure of a request, and never sleeps past that point."""

    def __init__(self, *, total_seconds: float, deadline: float | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.total_seconds = total_seconds
        self.deadline = deadline

    def new(self, **kw: Any) -> _BoundedRetry:
        deadline = self.deadline
        if deadline is None:
            deadline = time.monotonic() + self.total_seconds
        kw.setdefault("total_seconds", self.total_seconds)
        kw.setdefault("deadline", deadline)
        return super().new(**kw)

    def _remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def is_exhausted(self) -> bool:
        return bool(super().is_exhausted()) or self._remaining() <= 0

    def get_backoff_time(self) -> float:
        return max(0.0, min(float(super().get_backoff_time()), self._remaining()))

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> _BoundedRetry:
        """Like urllib3's, but a 429 whose body says the daily quota is spent is final:
        every retry would be refused until the quota resets."""
        if response is not None and response.status == 429:
            body = response.data or b""  # small; kept on the response for the client
            if isinstance(refusal_in(body, stream="", status=429), SmartUpQuotaSpent):
                raise MaxRetryError(_pool, url or "", None)
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def parse_retry_after(self, retry_after: str) -> float:
        return max(0.0, min(float(super().parse_retry_after(retry_after)), self._remaining()))
