"""SmartUp's export API: the client, its retry policy and its errors."""

from jobs.smartup.body import UnreadableRecord
from jobs.smartup.client import ExportRequest, ExportResponse, SmartUpClient
from jobs.smartup.errors import (
    SmartUpAuthError,
    SmartUpBadCharset,
    SmartUpBadResponse,
    SmartUpBrokenResponse,
    SmartUpError,
    SmartUpHTTPError,
    SmartUpQuotaSpent,
    SmartUpRangeTooLong,
    SmartUpRefused,
)
from jobs.smartup.refusals import limits_spent
from jobs.smartup.retry import RetryBudget, RetryPolicy

__all__ = [
    "ExportRequest",
    "ExportResponse",
    "RetryBudget",
    "RetryPolicy",
    "SmartUpAuthError",
    "SmartUpBadCharset",
    "SmartUpBadResponse",
    "SmartUpBrokenResponse",
    "SmartUpClient",
    "SmartUpError",
    "SmartUpHTTPError",
    "SmartUpQuotaSpent",
    "SmartUpRangeTooLong",
    "SmartUpRefused",
    "UnreadableRecord",
    "limits_spent",
]
