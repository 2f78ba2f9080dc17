"""What can go wrong when asking SmartUp for an export. Every message is one line."""

from __future__ import annotations


class SmartUpError(Exception):
    """The export could not be had. ``str()`` is one line, free of credentials."""

    retryable = False


class SmartUpAuthError(SmartUpError):
    """401, 403 or 481: credentials, filial or project code are wrong. Never retried."""


class SmartUpHTTPError(SmartUpError):
    """An error status that is not (or no longer) worth retrying."""


class SmartUpBadResponse(SmartUpError):
    """A 200 whose body is not the JSON export expected (an HTML page, plain text, ...)."""


class SmartUpBadCharset(SmartUpBadResponse):
    """A 200 whose body declares a charset Python does not know as a text encoding, or
    holds bytes that are not valid in the charset it declares (or its byte order mark
    says). Never retried: the same bytes would come again."""


class SmartUpBrokenResponse(SmartUpError):
    """The body broke off midway (dropped connection, timeout, truncated JSON)."""

    retryable = True


class SmartUpQuotaSpent(SmartUpError):
    """SmartUp refused the request because the company's daily quota for this export is
    spent. Never retried: every attempt would be refused until the quota resets."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        super().__init__(f"SmartUp daily quota for {stream} is spent")


class SmartUpRefused(SmartUpError):
    """SmartUp answered with an error of its own (often as a 200): its code and message."""


class SmartUpRangeTooLong(SmartUpRefused):
    """SmartUp refused a date window as longer than the export allows (``A02-24-051``
    "Период не может превышать N дней", a 400, or the same as a 200). Never retried as it
    is: the same window would be refused again; ask again in windows of at most
    ``allowed_days`` (None when the answer does not say how many days it allows)."""

    def __init__(self, message: str, *, allowed_days: int | None) -> None:
        self.allowed_days = allowed_days
        super().__init__(message)
