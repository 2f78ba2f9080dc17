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


class SmartUpBrokenResponse(SmartUpError):
    """The body broke off midway (dropped connection, timeout, truncated JSON)."""

    retryable = True
