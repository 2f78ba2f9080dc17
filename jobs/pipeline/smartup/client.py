"""The SmartUp HTTP client: one export request, its answer parsed as a stream.

Knows nothing of the database. :meth:`SmartUpClient.export` POSTs the filters with Basic
auth and the ``project_code``/``filial_id`` headers, retries what is worth retrying (see
:mod:`jobs.pipeline.smartup.retry`), and yields the records one by one while the body arrives, so
memory does not grow with the size of an export.
"""

from __future__ import annotations

import email.message
import email.utils
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from jobs.pipeline.smartup.body import CHUNK_BYTES, BodyProblem, RecordsReader
from jobs.pipeline.smartup.errors import (
    SmartUpAuthError,
    SmartUpBadCharset,
    SmartUpBadResponse,
    SmartUpBrokenResponse,
    SmartUpError,
    SmartUpHTTPError,
    SmartUpQuotaSpent,
)
from jobs.pipeline.smartup.refusals import range_refusal_in, refusal_in
from jobs.pipeline.smartup.retry import RETRY_STATUSES, RetryBudget, RetryPolicy

LIMITS_LOGGED_CHARS = 4096  # a ``limits`` object longer than this is not logged
AUTH_STATUSES = {
    401: "bad credentials or a filial_id the account may not use",
    403: "access denied",
    481: "project not visible: check SMARTUP_PROJECT_CODE",
}


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """One export call: where, with which filters, for which filial."""

    name: str  # the export's name, for messages: "products", "price types", ...
    url: str
    records_key: str  # the array in the answer: "inventory", "order", ...
    filters: Mapping[str, Any] = field(default_factory=dict)
    filial_id: str | None = None
    days: tuple[date, date] | None = None  # the modification days asked for; None: all
    state_key: str = ""  # whose sync state the answer advances (the filial, "" for none)
    project_code: str | None = None  # instead of the client's (an export of another project)

    def describe(self) -> str:
        parts = [f"{self.name} export"]
        if self.filial_id:
            parts.append(f"filial {self.filial_id}")
        window = (self.filters.get("begin_modified_on"), self.filters.get("end_modified_on"))
        if all(window):
            parts.append(f"modified {window[0]}..{window[1]}")
        return ", ".join(parts)


class _Body:
    """The response body as a file, which keeps its first bytes (for error messages) and
    turns a broken transfer into :class:`SmartUpBrokenResponse`."""

    def __init__(self, raw: Any, request: ExportRequest) -> None:
        self._raw = raw
        self._request = request
        self.head = b""

    def read(self, size: int = CHUNK_BYTES) -> bytes:
        try:
            chunk: bytes = self._raw.read(size, decode_content=True)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
            raise SmartUpBrokenResponse(
                f"the {self._request.describe()} broke off midway: {type(error).__name__}"
            ) from None
        if len(self.head) < CHUNK_BYTES:
            self.head += chunk
        return chunk


class ExportResponse:
    """The records of one answer, read as they arrive; ``limits`` once they are all read."""

    def __init__(self, request: ExportRequest, response: requests.Response) -> None:
        self._request = request
        self._response = response
        self.limits: dict[str, Any] | None = None

    def records(self) -> Iterator[Any]:
        """Yield each record of the export array (see :mod:`jobs.pipeline.smartup.body`; a
        record that cannot be built comes as an
        :class:`~jobs.pipeline.smartup.body.UnreadableRecord`).

        The body is read in the charset its ``Content-Type`` declares (see
        :mod:`jobs.pipeline.smartup.body`).

        Raises :class:`SmartUpBrokenResponse` when the body breaks off (worth retrying),
        :class:`SmartUpBadCharset` when its declared charset is unknown or its bytes are
        not valid in it, and :class:`SmartUpBadResponse` when it is not the JSON expected:
        either before the first record or, at the latest, before the last record has
        been taken, so nothing read from such a body need be kept.
        """
        body = _Body(self._response.raw, self._request)
        reader = RecordsReader(
            body.read,
            records_key=self._request.records_key,
            charset=declared_charset(self._response.headers.get("Content-Type")),
        )
        try:
            yield from reader.records()
        except BodyProblem as problem:
            raise self._problem(problem, body.head, reader.encoding) from None
        self.limits = _loggable(reader.limits)

    def _problem(self, problem: BodyProblem, head: bytes, encoding: str) -> SmartUpError:
        if problem.bad_charset:
            return SmartUpBadCharset(
                f"SmartUp's answer to the {self._request.describe()} {problem}"
            )
        head_text = _decoded(head, encoding)
        if problem.truncated:
            return SmartUpBrokenResponse(
                f"the {self._request.describe()} ended before its JSON did (truncated body)"
            )
        if problem.not_json:
            return self._refusal(head_text, self._not_json(head_text))
        return self._refusal(
            head_text,
            SmartUpBadResponse(
                f"SmartUp's answer to the {self._request.describe()} {problem}: "
                f"body starts {_snippet_of(head_text)}"
            ),
        )

    def _refusal(self, head: str, otherwise: SmartUpError) -> SmartUpError:
        """SmartUp's own error when the body states one (its code and message, or
        "quota spent", or "period too long"), else ``otherwise``."""
        too_long = range_refusal_in(head, what=self._request.describe())
        if too_long is not None:
            return too_long
        stated = refusal_in(head, stream=self._request.name, status=self._response.status_code)
        return stated if stated is not None else otherwise

    def _not_json(self, head: str) -> SmartUpBadResponse:
        content_type = self._response.headers.get("Content-Type", "no content type")
        return SmartUpBadResponse(
            f"SmartUp answered {self._response.status_code} with a body that is not JSON "
            f"({content_type}) for the {self._request.describe()}: {_snippet_of(head)}"
        )


class SmartUpClient:
    """Talks to one SmartUp account. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        *,
        user: str,
        password: str,
        project_code: str = "trade",
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not user or not password:
            raise ValueError("SmartUp user and password are required")
        self.retry = retry or RetryPolicy()
        self._timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()
        self._session.auth = (user, password)
        self._session.headers.update(
            {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "project_code": project_code,
            }
        )
        self._adapter = HTTPAdapter(max_retries=self.retry.urllib3_retry())
        self._session.mount("https://", self._adapter)
        self._session.mount("http://", self._adapter)

    def __enter__(self) -> SmartUpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    @contextmanager
    def export(
        self, request: ExportRequest, *, budget: RetryBudget | None = None
    ) -> Iterator[ExportResponse]:
        """Send ``request``: ``with client.export(r) as response: response.records()``.

        ``budget``: the export's retry budget, shared with the caller's own retries of a
        broken body (without one, this request's retries get a budget of their own).
        Raises :class:`SmartUpError` subclasses, one line each, free of credentials.
        """
        self._adapter.max_retries = self.retry.urllib3_retry(budget)
        headers = {"filial_id": request.filial_id} if request.filial_id else {}
        if request.project_code:
            headers["project_code"] = request.project_code
        try:
            response = self._session.post(
                request.url,
                data=json.dumps(dict(request.filters)).encode(),
                headers=headers,
                timeout=self._timeout,
                stream=True,
            )
        except requests.exceptions.RetryError as error:
            raise SmartUpHTTPError(
                f"SmartUp kept failing for the {request.describe()}: {_reason(error)}"
            ) from None
        except requests.exceptions.Timeout:
            raise SmartUpBrokenResponse(
                f"SmartUp did not answer the {request.describe()} in time"
            ) from None
        except requests.exceptions.ConnectionError as error:
            raise SmartUpBrokenResponse(
                f"cannot reach SmartUp for the {request.describe()}: {_reason(error)}"
            ) from None
        except requests.RequestException as error:
            raise SmartUpError(
                f"request for the {request.describe()} failed: {type(error).__name__}"
            ) from None
        try:
            self._raise_for_status(request, response)
            yield ExportResponse(request, response)
        finally:
            response.close()

    @staticmethod
    def _raise_for_status(request: ExportRequest, response: requests.Response) -> None:
        status = response.status_code
        if status < 400 and status != 204:
            return
        raw = b""
        if response.raw is not None:  # a 429's body may have been read by the retry already
            raw = (
                response.raw.data if status == 429 else response.raw.read(2048, decode_content=True)
            )
        stated = refusal_in(raw or b"", stream=request.name, status=status)
        if isinstance(stated, SmartUpQuotaSpent):
            raise SmartUpQuotaSpent(request.name)
        too_long = range_refusal_in(raw or b"", what=request.describe())
        if too_long is not None and status == 400:
            raise too_long
        body = _snippet(raw or b"")
        if status in AUTH_STATUSES:
            raise SmartUpAuthError(
                f"SmartUp refused the {request.describe()} with {status} "
                f"({AUTH_STATUSES[status]}): {body}"
            )
        after = " after retries" if status in RETRY_STATUSES else ""
        raise SmartUpHTTPError(
            f"SmartUp answered {status}{after} to the {request.describe()}: {body}"
        )


def _loggable(limits: Any) -> dict[str, Any] | None:
    """The ``limits`` object if it can go into a log line as it is: an object of
    reasonable size whose text is valid Unicode (the body is SmartUp's to write)."""
    if not isinstance(limits, dict):
        return None
    try:
        text = json.dumps(limits, ensure_ascii=False, default=str)
        text.encode("utf-8")
    except (ValueError, TypeError, RecursionError):
        return None
    return limits if len(text) <= LIMITS_LOGGED_CHARS else None


def declared_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` header, as sent (unquoted); None
    when there is none or it is empty."""
    if not content_type:
        return None
    header = email.message.Message()
    header["Content-Type"] = content_type
    charset = header.get_param("charset")
    if charset is None:
        return None
    return email.utils.collapse_rfc2231_value(charset) or None


def _decoded(head: bytes, encoding: str) -> str:
    """The first bytes of a body as text, for messages and refusals: undecodable bytes
    (and a character cut at the end) become U+FFFD."""
    return head.decode(encoding, errors="replace")


def _snippet(data: bytes, limit: int = 160) -> str:
    """A short one-line view of a body, for error messages."""
    return _snippet_of(data[: limit * 4].decode("utf-8", errors="replace"), limit)


def _snippet_of(text: str, limit: int = 160) -> str:
    """A short one-line view of a body's text, for error messages."""
    text = " ".join(text[: limit * 4].split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _reason(error: BaseException) -> str:
    """The innermost cause of a requests error, by type only: no URL, no credentials."""
    for _ in range(8):
        inner = getattr(error, "reason", None) or error.__cause__ or error.__context__
        if not isinstance(inner, BaseException):
            break
        error = inner
    return type(error).__name__
