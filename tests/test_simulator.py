"""The SmartUp simulator: generated data, the export API over real HTTP, and faults."""

from __future__ import annotations

import base64
import datetime
import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from jobs.simulator import (
    ORDERS_PATH,
    PRODUCTS_PATH,
    Fault,
    SmartUpSimulator,
    format_amount,
    generate_orders,
    generate_products,
)
from tests.helpers import ROOT, wait_for

TODAY = datetime.date(2026, 3, 10)
AUTH = ("demo@smartup", "demo-secret")


def _amount(text: str) -> Decimal:
    return Decimal(text.replace(" ", "").replace(",", "."))


def _day(text: str) -> datetime.date:
    return datetime.datetime.strptime(text[:10], "%d.%m.%Y").date()


@pytest.fixture(scope="module")
def catalogue() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    products = generate_products(300, seed=5)
    orders = generate_orders(
        60, products=products, today=TODAY, filial_ids=("100", "200"), lines=(1, 6), seed=5
    )
    return products, orders


@pytest.fixture
def smartup(catalogue: tuple[list[Any], list[Any]]) -> Iterator[SmartUpSimulator]:
    products, orders = catalogue
    with SmartUpSimulator(products=products, orders=orders) as simulator:
        yield simulator


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http_session:
        http_session.auth = AUTH
        http_session.headers["project_code"] = "trade"
        yield http_session


def post(
    session: requests.Session,
    smartup: SmartUpSimulator,
    path: str,
    body: dict[str, Any] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """POST a filter body (default ``{}``) to an export of the simulator."""
    return session.post(smartup.base_url + path, json={} if body is None else body, **kwargs)


# --- generation --------------------------------------------------------------------------


def test_generation_is_deterministic_and_shaped_like_smartup():
    products = generate_products(200, seed=3)
    assert products == generate_products(200, seed=3)
    assert products != generate_products(200, seed=4)
    orders = generate_orders(40, products=products, today=TODAY, lines=(2, 5), seed=3)
    assert orders == generate_orders(40, products=products, today=TODAY, lines=(2, 5), seed=3)

    assert [p["product_id"] for p in products[:2]] == ["100001", "100002"]
    scalars = [v for p in products for v in p.values() if not isinstance(v, list)]
    # SmartUp sends every value as a string, and null as often as "" for an empty one
    assert all(isinstance(v, str) or v is None for v in scalars)
    assert None in scalars and "" in scalars
    assert any(any("а" <= ch <= "я" for ch in p["name"]) for p in products)
    assert any("|" in p["barcodes"] or ";" in p["barcodes"] for p in products)
    assert {p["state"] for p in products} == {"A", "P"}

    unit_ids = [line["product_unit_id"] for o in orders for line in o["order_products"]]
    assert len(unit_ids) == len(set(unit_ids))
    for order in orders:
        lines = order["order_products"]
        assert 2 <= len(lines) <= 5
        assert TODAY - datetime.timedelta(days=6) <= _day(order["deal_time"]) <= TODAY
        assert _amount(order["total_amount"]) == sum(_amount(li["sold_amount"]) for li in lines)
        for line in lines:
            price, quantity = _amount(line["product_price"]), _amount(line["sold_quant"])
            assert _amount(line["sold_amount"]) == (price * quantity).quantize(Decimal("0.01"))


def test_format_amount_is_smartup_style():
    assert format_amount(Decimal("1200000.5")) == "1 200 000,50"
    assert format_amount(Decimal("0")) == "0,00"
    assert format_amount(Decimal("-1234.565")) == "-1 234,57"


# --- normal answers ----------------------------------------------------------------------


def test_products_export_returns_everything_with_limits(smartup, session, catalogue):
    products, _ = catalogue
    response = post(session, smartup, PRODUCTS_PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.headers["Transfer-Encoding"] == "chunked"
    raw = response.content.decode("utf-8")
    assert raw.index('"inventory"') < raw.index('"limits"')
    assert products[0]["name"] in raw  # Cyrillic is sent as UTF-8, not \u escapes
    payload = response.json()
    assert payload["inventory"] == products
    assert payload["limits"] == {
        "has_limit": "Y",
        "limit_quant": "100",
        "request_quant": "1",
        "left_limit_quant": "99",
        "object_count": "300",
        "day_range_limit": "7",
    }
    assert post(session, smartup, PRODUCTS_PATH).json()["limits"]["request_quant"] == "2"


def test_limits_first_and_keep_alive(catalogue):
    products, orders = catalogue
    with SmartUpSimulator(products=products, orders=orders, limits_first=True) as smartup:
        url = urlsplit(smartup.base_url)
        connection = http.client.HTTPConnection(url.hostname or "", url.port)
        headers = {
            "Authorization": "Basic " + base64.b64encode(":".join(AUTH).encode()).decode(),
            "project_code": "trade",
            "Content-Type": "application/json",
        }
        for path in (PRODUCTS_PATH, ORDERS_PATH, PRODUCTS_PATH):  # one connection throughout
            connection.request("POST", path, body=b"{}", headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            assert answer.status == 200
            assert body.startswith(b'{"limits":{')
        connection.close()


def test_code_filter_and_product_dates(smartup, session, catalogue):
    products, _ = catalogue
    wanted = products[7]["code"]
    answer = post(session, smartup, PRODUCTS_PATH, {"code": wanted}).json()
    assert [p["product_id"] for p in answer["inventory"]] == [products[7]["product_id"]]
    assert answer["limits"]["object_count"] == "1"
    window = {"begin_modified_on": "01.01.2026", "end_modified_on": "01.01.2026"}
    assert len(post(session, smartup, PRODUCTS_PATH, window).json()["inventory"]) == 300

    bad = post(session, smartup, PRODUCTS_PATH, {"begin_created_on": "2026-01-01"})
    assert bad.status_code == 400
    assert bad.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert bad.text == "A02-24-050 Неверный формат даты: 2026-01-01"


def test_orders_modified_window_and_update_order(smartup, session, catalogue):
    _, orders = catalogue
    last_day = {"begin_modified_on": "10.03.2026", "end_modified_on": "10.03.2026"}
    expected = [o["deal_id"] for o in orders if _day(o["deal_time"]) == TODAY]
    answer = post(session, smartup, ORDERS_PATH, last_day).json()
    assert [o["deal_id"] for o in answer["order"]] == expected
    assert answer["limits"]["object_count"] == str(len(expected))

    first = orders[0]
    assert _day(first["deal_time"]) < TODAY
    smartup.update_order(first["deal_id"], modified_on=TODAY, status="C")
    changed = post(session, smartup, ORDERS_PATH, last_day).json()["order"]
    assert changed[0]["deal_id"] == first["deal_id"]
    assert changed[0]["status"] == "C"
    assert changed[0]["order_products"] == first["order_products"]
    by_deal = post(session, smartup, ORDERS_PATH, {"deal_id": first["deal_id"]}).json()
    assert [o["status"] for o in by_deal["order"]] == ["C"]


def test_filial_header_filters_orders(catalogue, session):
    products, orders = catalogue
    with SmartUpSimulator(products=products, orders=orders, filial_ids=("100", "200")) as smartup:
        answer = post(session, smartup, ORDERS_PATH, headers={"filial_id": "200"}).json()
        assert answer["order"]
        assert {o["filial_id"] for o in answer["order"]} == {"200"}
        assert len(answer["order"]) == sum(o["filial_id"] == "200" for o in orders)
        refused = post(session, smartup, ORDERS_PATH, headers={"filial_id": "300"})
        assert (refused.status_code, refused.text) == (401, "Требуется авторизация")


def test_day_range_limit(smartup, session):
    seven = {"begin_modified_on": "02.03.2026", "end_modified_on": "08.03.2026"}
    assert post(session, smartup, ORDERS_PATH, seven).status_code == 200
    eight = {"begin_modified_on": "01.03.2026", "end_modified_on": "08.03.2026"}
    refused = post(session, smartup, ORDERS_PATH, eight)
    assert refused.status_code == 400
    assert refused.text == "A02-24-051 Период не может превышать 7 дней"


def test_update_product_is_visible_and_modified_today(smartup, session):
    smartup.update_product("100003", name="Чай чёрный Ahmad 100g", state="P")
    product = post(session, smartup, PRODUCTS_PATH, {"code": "P00003"}).json()["inventory"][0]
    assert (product["name"], product["state"]) == ("Чай чёрный Ahmad 100g", "P")
    today = smartup.today.strftime("%d.%m.%Y")  # the company's day, not the machine's
    window = {"begin_modified_on": today, "end_modified_on": today}
    changed = post(session, smartup, PRODUCTS_PATH, window).json()["inventory"]
    assert [p["product_id"] for p in changed] == ["100003"]
    assert smartup.products[2]["name"] == "Чай чёрный Ahmad 100g"
    with pytest.raises(KeyError):
        smartup.update_product("no-such-id", name="x")


# --- refusals ----------------------------------------------------------------------------


def test_bad_credentials_and_project_code_are_plain_text(smartup, session):
    wrong = session.post(smartup.base_url + PRODUCTS_PATH, json={}, auth=("demo@smartup", "x"))
    assert (wrong.status_code, wrong.text) == (401, "Требуется авторизация")
    assert wrong.headers["Content-Type"] == "text/plain; charset=utf-8"
    anonymous = requests.post(smartup.base_url + ORDERS_PATH, json={})
    assert anonymous.status_code == 401
    project = post(session, smartup, ORDERS_PATH, headers={"project_code": "crm"})
    assert (project.status_code, project.text) == (481, "Проект невидим")
    assert session.post(smartup.base_url + "/b/other$export", json={}).status_code == 404
    assert session.get(smartup.base_url + PRODUCTS_PATH).status_code == 405


# --- faults ------------------------------------------------------------------------------


def test_status_fault_with_retry_after_then_normal(smartup, session):
    smartup.add_fault("products", Fault(status=429, headers={"Retry-After": "1"}))
    limited = post(session, smartup, PRODUCTS_PATH)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert limited.text  # a plain-text message, not JSON
    assert post(session, smartup, PRODUCTS_PATH).status_code == 200


def test_faults_are_consumed_fifo_per_endpoint(smartup, session):
    smartup.add_fault("orders", Fault(status=503), times=2)
    smartup.add_fault("orders", Fault(status=608))
    smartup.add_fault("products", Fault(status=500))
    statuses = [post(session, smartup, ORDERS_PATH).status_code for _ in range(4)]
    assert statuses == [503, 503, 608, 200]
    assert post(session, smartup, PRODUCTS_PATH).status_code == 500
    assert [r.status for r in smartup.requests] == [503, 503, 608, 200, 500]
    assert [r.endpoint for r in smartup.requests] == ["orders"] * 4 + ["products"]
    assert smartup.requests[0].headers["project_code"] == "trade"
    assert smartup.requests[0].body == {}


def test_delay_fault_holds_its_answer_back_and_then_answers_normally(smartup, session):
    """The delayed request is answered after one sent while it waits (the delay holds that
    answer, not the server), and its answer is a normal one."""
    smartup.add_fault("orders", Fault(delay=3.0))
    answered: list[str] = []
    delayed: list[requests.Response] = []

    def send_delayed() -> None:
        with requests.Session() as own:  # a session is not shared between threads
            own.auth, own.headers["project_code"] = AUTH, "trade"
            delayed.append(post(own, smartup, ORDERS_PATH))
        answered.append("delayed")

    sender = threading.Thread(target=send_delayed)
    sender.start()
    wait_for(
        lambda: smartup.requests_today("orders") == 1,
        timeout=30,
        what="the simulator to take the delayed request",
    )
    assert post(session, smartup, ORDERS_PATH).status_code == 200
    answered.append("sent meanwhile")
    sender.join(timeout=60)
    assert not sender.is_alive(), "the delayed request was never answered"
    assert answered == ["sent meanwhile", "delayed"]
    [response] = delayed
    assert response.status_code == 200
    assert response.json()["order"]


def test_truncated_body_breaks_off(smartup, session):
    smartup.add_fault("products", Fault(truncate_at=0.5))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post(session, smartup, PRODUCTS_PATH)
    assert post(session, smartup, PRODUCTS_PATH).json()["limits"]["object_count"] == "300"


def test_invalid_json_fault(smartup, session):
    smartup.add_fault("orders", Fault(invalid_json=True))
    response = post(session, smartup, ORDERS_PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.text.startswith("<html>")
    with pytest.raises(requests.exceptions.JSONDecodeError):
        response.json()


def test_dropped_connection(smartup, session):
    smartup.add_fault("orders", Fault(drop_connection=True))
    with pytest.raises(requests.exceptions.ConnectionError):
        post(session, smartup, ORDERS_PATH)
    assert smartup.requests[-1].status == 0
    assert post(session, smartup, ORDERS_PATH).status_code == 200
    smartup.add_fault("orders", Fault(status=503), times=3)
    smartup.clear_faults()
    assert post(session, smartup, ORDERS_PATH).status_code == 200


# --- standalone process ------------------------------------------------------------------


def test_module_runs_as_a_process():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobs.simulator",
            "--products",
            "30",
            "--orders",
            "5",
            "--filial-ids",
            "100,200",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        name, _, base_url = line.partition("=")
        assert name == "SMARTUP_BASE_URL"
        assert base_url.startswith("http://127.0.0.1:")
        response = requests.post(
            base_url + ORDERS_PATH,
            json={},
            auth=AUTH,
            headers={"project_code": "trade"},
            timeout=5,
        )
        assert response.status_code == 200
        answer = json.loads(response.content)
        assert answer["limits"]["object_count"] == "5"
        assert {o["filial_id"] for o in answer["order"]} == {"100", "200"}
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def _post(sim: SmartUpSimulator, path: str, body: Any = None) -> requests.Response:
    return requests.post(
        sim.base_url + path,
        json=body or {},
        auth=AUTH,
        headers={"project_code": "trade"},
        timeout=30,
    )


def test_limits_count_down_for_real_and_a_spent_quota_is_refused_until_midnight() -> None:
    products = generate_products(5)
    with SmartUpSimulator(products=products, today=TODAY, quotas={"products": 3}) as sim:
        lefts = [_post(sim, PRODUCTS_PATH).json()["limits"]["left_limit_quant"] for _ in range(3)]
        assert lefts == ["2", "1", "0"]
        refused = _post(sim, PRODUCTS_PATH)
        assert refused.status_code == 429 and "лимит" in refused.text
        sim.quota_refusal = "200"
        refused = _post(sim, PRODUCTS_PATH)
        assert refused.status_code == 200 and "лимит" in refused.text
        assert _post(sim, ORDERS_PATH).status_code == 200  # each endpoint has its own quota
        assert sim.advance_day() == TODAY + datetime.timedelta(days=1)
        limits = _post(sim, PRODUCTS_PATH).json()["limits"]
        assert (limits["limit_quant"], limits["request_quant"], limits["left_limit_quant"]) == (
            "3",
            "1",
            "2",
        )
        sim.spend_quota("products", 1)  # another program on the same login
        sim.set_quota("products", 10)
        limits = _post(sim, PRODUCTS_PATH).json()["limits"]
        assert (limits["limit_quant"], limits["left_limit_quant"]) == ("10", "7")


def test_products_carry_a_modification_day_that_edits_move_and_can_vanish() -> None:
    products = generate_products(10)
    with SmartUpSimulator(products=products, today=TODAY) as sim:
        sim.update_product(products[1]["product_id"], name="edited")
        sim.advance_day()
        sim.update_product(products[2]["product_id"], name="edited too")
        window = {"begin_modified_on": "10.03.2026", "end_modified_on": "11.03.2026"}
        changed = _post(sim, PRODUCTS_PATH, window).json()["inventory"]
        assert [p["product_id"] for p in changed] == [
            products[1]["product_id"],
            products[2]["product_id"],
        ]
        since = _post(sim, PRODUCTS_PATH, {"begin_modified_on": "11.03.2026"}).json()["inventory"]
        assert [p["name"] for p in since] == ["edited too"]
        too_long = _post(
            sim, PRODUCTS_PATH, {"begin_modified_on": "01.03.2026", "end_modified_on": "11.03.2026"}
        )
        assert too_long.status_code == 400 and "A02-24-051" in too_long.text

        sim.delete_product(products[3]["product_id"])
        ids = [p["product_id"] for p in _post(sim, PRODUCTS_PATH).json()["inventory"]]
        assert products[3]["product_id"] not in ids and len(ids) == 9
        sim.add_products([products[3]])  # back, modified today
        since = _post(sim, PRODUCTS_PATH, {"begin_modified_on": "11.03.2026"}).json()["inventory"]
        assert products[3]["product_id"] in [p["product_id"] for p in since]
        with pytest.raises(KeyError):
            sim.delete_product("no-such-id")
