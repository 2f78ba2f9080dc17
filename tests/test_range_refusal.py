"""A "period too long" refusal (SmartUp's ``A02-24-051``) is its own error, with the days
SmartUp allows when it says them, and is never retried as it is (simulator over loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from jobs.pipeline.smartup import (
    ExportRequest,
    SmartUpClient,
    SmartUpHTTPError,
    SmartUpQuotaSpent,
    SmartUpRangeTooLong,
    SmartUpRefused,
)
from jobs.pipeline.smartup.refusals import range_refusal_in, refusal_in
from jobs.simulator import ORDERS_PATH, Fault, SmartUpSimulator, generate_orders, generate_products
from tests.helpers import FAST_RETRY, PASSWORD, TODAY, USER


@pytest.fixture
def smartup() -> Iterator[SmartUpSimulator]:
    products = generate_products(10)
    orders = generate_orders(20, products=products, today=TODAY, days=10, filial_ids=("100",))
    with SmartUpSimulator(
        products=products,
        orders=orders,
        user=USER,
        password=PASSWORD,
        today=TODAY,
        day_range_limits={"orders": 3},
    ) as sim:
        yield sim


def orders_request(sim: SmartUpSimulator, days: int) -> ExportRequest:
    first = TODAY - timedelta(days=days - 1)
    return ExportRequest(
        name="orders",
        url=sim.base_url + ORDERS_PATH,
        records_key="order",
        filters={
            "begin_modified_on": first.strftime("%d.%m.%Y"),
            "end_modified_on": TODAY.strftime("%d.%m.%Y"),
        },
        filial_id="100",
        days=(first, TODAY),
        state_key="100",
    )


def fetch(sim: SmartUpSimulator, request: ExportRequest) -> int:
    with (
        SmartUpClient(user=USER, password=PASSWORD, retry=FAST_RETRY) as client,
        client.export(request) as response,
    ):
        return sum(1 for _ in response.records())


def order_posts(sim: SmartUpSimulator) -> int:
    return sum(1 for r in sim.requests if r.endpoint == "orders")


def test_a_window_longer_than_the_export_allows_is_refused_as_too_long_with_the_days_allowed(
    smartup,
):
    with pytest.raises(SmartUpRangeTooLong) as refused:
        fetch(smartup, orders_request(smartup, 4))
    assert refused.value.allowed_days == 3  # "Период не может превышать 3 дня"
    assert not refused.value.retryable
    assert order_posts(smartup) == 1  # not retried as it is
    message = str(refused.value)
    assert "A02-24-051" in message and "filial 100" in message and "\n" not in message
    assert PASSWORD not in message
    # the same request in windows of the days allowed goes through
    assert fetch(smartup, orders_request(smartup, 3)) >= 0
    assert order_posts(smartup) == 2


def test_a_json_refusal_naming_the_range_without_a_number_carries_no_days(smartup):
    body = json.dumps({"error_code": "A02-24-051", "message": "Период слишком длинный"})
    smartup.add_fault(
        "orders",
        Fault(status=400, body=body, content_type="application/json; charset=utf-8"),
    )
    with pytest.raises(SmartUpRangeTooLong) as refused:
        fetch(smartup, orders_request(smartup, 2))
    assert refused.value.allowed_days is None
    assert order_posts(smartup) == 1


def test_the_refusal_answered_as_a_200_is_recognised_too(smartup):
    smartup.add_fault(
        "orders", Fault(status=200, body="A02-24-051 Период не может превышать 30 дней")
    )
    with pytest.raises(SmartUpRangeTooLong) as refused:
        fetch(smartup, orders_request(smartup, 2))
    assert refused.value.allowed_days == 30
    assert order_posts(smartup) == 1


def test_other_refusals_are_not_taken_for_a_range_too_long(smartup):
    smartup.add_fault("orders", Fault(status=400, body="A02-24-050 Неверный формат даты: 1.1.26"))
    with pytest.raises(SmartUpHTTPError) as bad_date:
        fetch(smartup, orders_request(smartup, 2))
    assert not isinstance(bad_date.value, SmartUpRangeTooLong)
    smartup.set_quota("orders", 0)
    with pytest.raises(SmartUpQuotaSpent):
        fetch(smartup, orders_request(smartup, 2))


def test_range_words_are_told_from_quota_words():
    english = range_refusal_in("Day range limit exceeded: at most 7 days", what="orders export")
    assert english is not None and english.allowed_days == 7
    # "limit" alone would read as a spent quota: the range comes first
    assert isinstance(
        refusal_in("Day range limit exceeded", stream="orders", status=200), SmartUpRangeTooLong
    )
    assert isinstance(
        refusal_in("Превышен дневной лимит запросов (500)", stream="orders", status=429),
        SmartUpQuotaSpent,
    )
    with_limits = json.dumps(
        {"error_code": "A02-24-051", "message": "too long", "limits": {"day_range_limit": "30"}}
    )
    found = range_refusal_in(with_limits)
    assert found is not None and found.allowed_days == 30
    assert isinstance(found, SmartUpRefused)
    assert range_refusal_in("A02-24-122 Неверный формат даты в фильтре") is None
    assert range_refusal_in("") is None
