"""SmartUp's own refusals, recognised in a body that is not the export expected.

SmartUp often answers an error as HTTP 200 with ``{"error_code": ..., "message": ...}``, an
``errors`` array, or plain (Russian) text; what it sends once the daily quota is spent is
not documented. :func:`refusal_in` turns such a body into one error that carries
SmartUp's own code and message, and recognises "quota spent" by the rule of
``SMARTUP_API.md``: a refusal whose status or body mentions the limit (``limit``,
``лимит``, ``left_limit_quant`` 0), or an answer whose own ``limits.left_limit_quant`` is 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from jobs.smartup.errors import SmartUpQuotaSpent, SmartUpRefused

_LIMIT_WORDS = re.compile(r"лимит|\blimit", re.IGNORECASE)
MESSAGE_CHARS = 300


def limits_spent(limits: Mapping[str, Any] | None) -> bool:
    """Whether an answer's own ``limits`` say no request is left today."""
    if not limits:
        return False
    return str(limits.get("left_limit_quant", "")).strip() == "0"


def refusal_in(
    body: bytes | str, *, stream: str, status: int
) -> SmartUpQuotaSpent | SmartUpRefused | None:
    """The error SmartUp's ``body`` (answered with ``status``) states, or None when it
    states none that can be told apart (an HTML page, an empty body, other JSON). Bytes
    are read as UTF-8; a caller that knows the body's charset passes the decoded text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = body.strip().lstrip("\ufeff").strip()
    if not text or text.startswith("<"):
        return None
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


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text[:MESSAGE_CHARS] + ("..." if len(text) > MESSAGE_CHARS else "")
