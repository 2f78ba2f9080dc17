"""The sync state and the quota as last seen, on PostgreSQL and on SQLite."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from jobs.day.state import (
    advance_watermark,
    all_states,
    latest_quota,
    mark_sweep,
    quota_today,
    record_limits,
    record_quota_spent,
    stream_state,
)
from jobs.models import open_database

DAY = date(2026, 11, 29)


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request, sqlite_url):
    if request.param == "sqlite":
        return sqlite_url
    return request.getfixturevalue("pg")


def test_limits_are_kept_per_stream_and_count_for_their_day(db_url):
    db = open_database(db_url)
    try:
        limits = {"limit_quant": "100", "request_quant": "7", "left_limit_quant": "93"}
        record_limits("products", limits, day=DAY)
        record_limits("orders", {"limit_quant": "500", "left_limit_quant": "x"}, day=DAY)
        products = quota_today("products", today=DAY)
        assert products is not None
        assert (products.limit, products.used, products.left) == (100, 7, 93)
        assert not products.exhausted
        orders = quota_today("orders", today=DAY)
        assert orders is not None and (orders.limit, orders.left) == (500, None)
        assert quota_today("products", today=DAY + timedelta(days=1)) is None  # a new day
        record_limits("products", {**limits, "left_limit_quant": "0"}, day=DAY)
        spent = quota_today("products", today=DAY)
        assert spent is not None and spent.exhausted
    finally:
        db.close()


def test_a_refusal_marks_the_quota_spent_and_keeps_the_known_limit(db_url):
    db = open_database(db_url)
    try:
        record_limits("orders", {"limit_quant": "500", "left_limit_quant": "3"}, day=DAY)
        record_quota_spent("orders", day=DAY + timedelta(days=1))
        seen = latest_quota("orders")
        assert seen is not None
        assert (seen.spent, seen.left, seen.limit, seen.used) == (True, 0, 500, None)
        assert seen.day == DAY + timedelta(days=1)
    finally:
        db.close()


def test_watermarks_never_move_back_and_sweeps_are_kept_per_filial(db_url):
    db = open_database(db_url)
    try:
        advance_watermark("orders", "100", DAY)
        advance_watermark("orders", "100", DAY - timedelta(days=3))
        advance_watermark("orders", "200", DAY - timedelta(days=1))
        mark_sweep("products", None)
        first = stream_state("orders", "100")
        assert first is not None and first.watermark == DAY
        second = stream_state("orders", "200")
        assert second is not None and second.watermark == DAY - timedelta(days=1)
        products = stream_state("products")
        assert products is not None
        assert products.watermark is None and products.last_sweep_at is not None
        assert [(s.stream, s.filial_id) for s in all_states()] == [
            ("orders", "100"),
            ("orders", "200"),
            ("products", ""),
        ]
    finally:
        db.close()
