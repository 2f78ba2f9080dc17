"""SmartUp's own refusals, recognised in a body that is not the export expected.

SmartUp often answers an error as HTTP 200 with ``{"error_code": ..., "message": ...}``, an
``errors`` array, or plain (Russian) text; what it sends once the daily quota is spent is
not documented. :func:`refusal_in` turns such a body into one error that carries
SmartUp's own code and message, and recognises "quota spent" by the rule of
``SMARTUP_API.md``: a refusal whose status or body mentions the limit (``limit``,
``лимит``, ``left_limit_quant`` 0), or an answer whose own ``limits.left_limit_quant`` is 0.
A refusal that names the date range (``A02-24-051`` "Период не может превышать 7 дней")
is told apart first, as "period too long" (:func:`range_refusal_in`), so that a message
such as "day range limit exceeded" is not taken for a spent quota.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from jobs.pipeline.smartup.errors import SmartUpQuotaSpent, SmartUpRangeTooLong, SmartUpRefused

_LIMIT_WORDS = re.compile(r"лимит|\blimit", re.IGNORECASE)
RANGE_TOO_LONG_CODE = "A02-24-051"
_RANGE_WORDS = re.compile(
    r"A02-24-051"
    r"|период\w*\s+(?:не\s+может\s+|не\s+должен\s+)?превыша"
    r"|превыш\w*\s+(?:допустим\w*\s+|максимальн\w*\s+)?период"
    r"|\b(?:period|date\s+range|day\s+range)\b.{0,40}?\b(?:too\s+long|exceed)"
    r"|\bday_range_limit\b",
    re.IGNORECASE,
)
_ALLOWED_DAYS = re.compile(r"(\d{1,4})\s*(?:дн\w*|день|days?)\b", re.IGNORECASE)
MESSAGE_CHARS = 300


def limits_spent(limits: Mapping[str, Any] | None) -> bool:
    """Whether an answer's own ``limits`` say no request is left today."""
    if not limits:
        return False
    return str(limits.get("left_limit_quant", "")).strip() == "0"


def range_refusal_in(body: bytes | str, *, what: str = "request") -> SmartUpRangeTooLong | None:
    """ "Period too long" when ``body`` names the date range (SmartUp's ``A02-24-051``, or
    its words "Период не может превышать ..."; plain text or JSON), with the days it
    allows when it says them (``N дней``/``N days``, or ``limits.day_range_limit``);
    None otherwise. ``what`` names the request in the message."""
    text = _text_of(body)
    if not _RANGE_WORDS.search(text):
        return None
    allowed: int | None = None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict):
        stated = _stated(document) or _short(text)
        limits = document.get("limits")
        if isinstance(limits, Mapping):
            allowed = _count(limits.get("day_range_limit"))
    else:
        stated = _short(text)
    if allowed is None and (days := _ALLOWED_DAYS.search(stated)):
        allowed = int(days.group(1)) or None
    return SmartUpRangeTooLong(
        f"SmartUp refused the {what} as a period too long: {stated}", allowed_days=allowed
    )


def refusal_in(
    body: bytes | str, *, stream: str, status: int
) -> SmartUpQuotaSpent | SmartUpRefused | None:
    """The error SmartUp's ``body`` (answered with ``status``) states, or None when it
    states none that can be told apart (an HTML page, an empty body, other JSON). Bytes
    are read as UTF-8; a caller that knows the body's charset passes the decoded text."""
    text = _text_of(body)
    if not text or text.startswith("<"):
        return None
    too_long = range_refusal_in(text, what=f"{stream or 'export'} request")
    if too_long is not None:
        return too_long
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past what json.loads reads
        document = None
    if isinstance(document, dict):
        limits = document.get("limits")
        if isinstance(limits, Mapping) and limits_spent(limits):
            return SmartUpQuotaSpent(stream)
        stated = _stated(document)
        if stated is None:
            return None
        if _LIMIT_WORDS.search(stated):
            return SmartUpQuotaSpent(stream)
        return SmartUpRefused(f"SmartUp {stated}")
    if document is not None or text.startswith(("{", "[")):
        return None
    if _LIMIT_WORDS.search(text):
        return SmartUpQuotaSpent(stream)
    if status != 200:
        return None  # a plain-text error status is told by the caller, with its status
    return SmartUpRefused(f"SmartUp: {_short(text)}")


def _stated(document: Mapping[str, Any]) -> str | None:
    """``"A02-24-048: message"`` from an ``error_code``/``message`` object or an
    ``errors`` array (several joined by "; ")."""
    errors = document.get("errors")
    items = errors if isinstance(errors, list) and errors else [document]
    parts = []
    for item in items:
        if isinstance(item, str):
            parts.append(_short(item))
            continue
        if not isinstance(item, Mapping):
            continue
        code = item.get("error_code") or item.get("code")
        message = item.get("message") or item.get("error") or item.get("text")
        if code is None and message is None:
            continue
        parts.append(": ".join(_short(str(v)) for v in (code, message) if v is not None))
    return "; ".join(parts) if parts else None


def _text_of(body: bytes | str) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    return body.strip().lstrip("\ufeff").strip()


def _count(value: Any) -> int | None:
    """A positive whole number SmartUp sent (often as a string), else None."""
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    return int(text) if text.isdigit() and int(text) > 0 else None


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text[:MESSAGE_CHARS] + ("..." if len(text) > MESSAGE_CHARS else "")
