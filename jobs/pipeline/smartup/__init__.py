"""SmartUp's export API: the client, its retry policy and its errors."""

from jobs.pipeline.smartup.body import UnreadableRecord
from jobs.pipeline.smartup.client import ExportRequest, ExportResponse, SmartUpClient
from jobs.pipeline.smartup.errors import (
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
from jobs.pipeline.smartup.refusals import limits_spent
from jobs.pipeline.smartup.retry import RetryBudget, RetryPolicy

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
