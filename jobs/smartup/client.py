"""The SmartUp HTTP client: one export request, its answer parsed as a stream.

Knows nothing of the database. :meth:`SmartUpClient.export` POSTs the filters with Basic
auth and the ``project_code``/``filial_id`` headers, retries what is worth retrying (see
:mod:`jobs.smartup.retry`), and yields the records one by one while the body arrives, so
memory does not grow with the size of an export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from jobs.smartup.body import CHUNK_BYTES, BodyProblem, RecordsReader
from jobs.smartup.errors import (
    SmartUpAuthError,
    SmartUpBadResponse,
    SmartUpBrokenResponse,
    SmartUpError,
    SmartUpHTTPError,
    SmartUpQuotaSpent,
)
from jobs.smartup.refusals import refusal_in
from jobs.smartup.retry import RETRY_STATUSES, RetryPolicy

LIMITS_LOGGED_CHARS = 4096  # a ``limits`` object longer than this is not logged
AUTH_STATUSES = {
    401: "bad credentials or a filial_id the account may not use",
    403: "access denied",
    481: "project not visible: check SMARTUP_PROJECT_CODE",
}


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """One export call: where, with which filters, for which filial."""

    name: str  # "products" or "orders", for messages
    url: str
    records_key: str  # "inventory" or "order"
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
        self.record_count = 0

    def records(self) -> Iterator[Any]:
        """Yield each record of the export array (see :mod:`jobs.smartup.body`; a record
        that cannot be built comes as an :class:`UnreadableRecord`).

        Raises :class:`SmartUpBrokenResponse` when the body breaks off (worth retrying)
        and :class:`SmartUpBadResponse` when it is not the JSON expected: either before
        the first record or, at the latest, before the last record has been taken, so
        nothing read from such a body need be kept.
        """
        body = _Body(self._response.raw, self._request)
        reader = RecordsReader(body.read, records_key=self._request.records_key)
        try:
            for record in reader.records():
                self.record_count += 1
                yield record
        except BodyProblem as problem:
            raise self._problem(problem, body.head) from None
        self.limits = _loggable(reader.limits)

    def _problem(self, problem: BodyProblem, head: bytes) -> SmartUpError:
        if problem.truncated:
            return SmartUpBrokenResponse(
                f"the {self._request.describe()} ended before its JSON did (truncated body)"
            )
        if problem.not_json:
            return self._refusal(head, self._not_json(head))
        return self._refusal(
            head,
            SmartUpBadResponse(
                f"SmartUp's answer to the {self._request.describe()} {problem}: "
                f"body starts {_snippet(head)}"
            ),
        )

    def _refusal(self, head: bytes, otherwise: SmartUpError) -> SmartUpError:
        """SmartUp's own error when the body states one (its code and message, or
        "quota spent"), else ``otherwise``."""
        stated = refusal_in(head, stream=self._request.name, status=self._response.status_code)
        return stated if stated is not None else otherwise

    def _not_json(self, chunk: bytes) -> SmartUpBadResponse:
        content_type = self._response.headers.get("Content-Type", "no content type")
        return SmartUpBadResponse(
            f"SmartUp answered {self._response.status_code} with a body that is not JSON "
            f"({content_type}) for the {self._request.describe()}: {_snippet(chunk)}"
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
        adapter = HTTPAdapter(max_retries=self.retry.urllib3_retry())
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def __enter__(self) -> SmartUpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    @contextmanager
    def export(self, request: ExportRequest) -> Iterator[ExportResponse]:
        """Send ``request``: ``with client.export(r) as response: response.records()``.

        Raises :class:`SmartUpError` subclasses, one line each, free of credentials.
        """
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
        if isinstance(
            refusal_in(raw or b"", stream=request.name, status=status), SmartUpQuotaSpent
        ):
            raise SmartUpQuotaSpent(request.name)
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


def _snippet(data: bytes, limit: int = 160) -> str:
    """A short one-line view of a body, for error messages."""
    text = data[: limit * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def _reason(error: BaseException) -> str:
    """The innermost cause of a requests error, by type only: no URL, no credentials."""
    for _ in range(8):
        inner = getattr(error, "reason", None) or error.__cause__ or error.__context__
        if not isinstance(inner, BaseException):
            break
        error = inner
    return type(error).__name__
