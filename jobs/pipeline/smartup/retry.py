"""How long and how often to retry: one policy for the request and for a broken body.

The request side is urllib3's ``Retry`` (through requests): connection errors, read
timeouts before the answer, and the statuses SmartUp uses for "try again later" (429,
5xx, 608), honouring ``Retry-After``. A body that breaks off midway is outside urllib3's
reach; :meth:`RetryPolicy.broken_body_waits` gives the waits for redoing the whole export.
Both are exponential with jitter, and both draw on one :class:`RetryBudget` per export:
``total_seconds`` from the export's first attempt, waits included. A wait that would end
past the budget is never started: the export fails instead, so an export spends at most
``total_seconds`` plus the one request under way when the budget ran out.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from jobs.logs import get_logger
from jobs.pipeline.smartup.errors import SmartUpQuotaSpent
from jobs.pipeline.smartup.refusals import refusal_in

RETRY_STATUSES = frozenset({429, 608, *range(500, 600)})


class RetryBudget:
    """The time one export may still spend on retries: ``total_seconds`` from its creation
    (the export's first attempt), waits and the requests between them included."""

    def __init__(self, total_seconds: float) -> None:
        self.total_seconds = total_seconds
        self.deadline = time.monotonic() + total_seconds
        self.waits: list[float] = []  # every wait started, in order

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, wait: float) -> bool:
        """Whether a wait of ``wait`` seconds, started now, ends within the budget."""
        return wait <= self.remaining()


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

    def budget(self) -> RetryBudget:
        """A new export's budget, counted from now."""
        return RetryBudget(self.total_seconds)

    def urllib3_retry(self, budget: RetryBudget | None = None) -> Retry:
        """The request-level retry for an ``HTTPAdapter``, drawing on ``budget`` (without
        one, each request gets its own, from its first failure)."""
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
            budget=budget,
        )

    def broken_body_waits(self, budget: RetryBudget | None = None) -> Iterator[float]:
        """The waits before each retry of an export whose body broke off (the caller sleeps
        each); ends when the attempts are used up or when the next wait would end past
        ``budget``."""
        budget = budget or self.budget()
        for retry_number in range(self.attempts - 1):
            wait = min(self.backoff_max_seconds, self.backoff_seconds * 2**retry_number)
            wait += random.uniform(0, self.jitter_seconds)
            if not budget.allows(wait):
                return
            budget.waits.append(wait)
            yield wait


class _BoundedRetry(Retry):
    """urllib3's Retry drawing on a :class:`RetryBudget`: a retry whose wait (backoff, or
    the answer's ``Retry-After``) would end past the budget is not made; the last answer
    (or error) stands instead."""

    def __init__(
        self, *, total_seconds: float, budget: RetryBudget | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.total_seconds = total_seconds
        self.budget = budget
        self.planned_wait = 0.0

    def new(self, **kw: Any) -> _BoundedRetry:
        kw.setdefault("total_seconds", self.total_seconds)
        kw.setdefault("budget", self.budget or RetryBudget(self.total_seconds))
        return super().new(**kw)

    def is_exhausted(self) -> bool:
        budget_spent = self.budget is not None and self.budget.remaining() <= 0
        return bool(super().is_exhausted()) or budget_spent

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> _BoundedRetry:
        """Like urllib3's, but a 429 whose body says the daily quota is spent is final
        (every retry would be refused until the quota resets), and so is a failure whose
        wait would end past the budget."""
        if response is not None and response.status == 429:
            body = response.data or b""  # small; kept on the response for the client
            if isinstance(refusal_in(body, stream="", status=429), SmartUpQuotaSpent):
                raise MaxRetryError(_pool, url or "", None)
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        assert isinstance(retry, _BoundedRetry) and retry.budget is not None
        wait = retry.wait_after(response)
        if not retry.budget.allows(wait):
            reason = error or ResponseError(
                f"a retry after {wait:.1f} s would cross SMARTUP_RETRY_SECONDS"
            )
            raise MaxRetryError(_pool, url or "", reason) from reason
        retry.planned_wait = wait
        return retry

    def wait_after(self, response: Any) -> float:
        """The wait before the next attempt: the answer's ``Retry-After``, else backoff."""
        if self.respect_retry_after_header and response is not None:
            after = self.get_retry_after(response)
            if after:
                return after
        return float(super().get_backoff_time())

    def sleep(self, response: Any = None) -> None:
        """Sleep the wait :meth:`increment` found within the budget (and log it)."""
        if self.planned_wait <= 0:
            return
        if self.budget is not None:
            self.budget.waits.append(self.planned_wait)
        last = self.history[-1] if self.history else None
        get_logger().warning(
            "smartup.retry",
            after=(last.status or type(last.error).__name__) if last else None,
            wait_s=round(self.planned_wait, 2),
        )
        time.sleep(self.planned_wait)
