"""The charset an answer declares is the charset it is read in: the body reader (bytes in
memory: each BOM case, unknown and non-text charsets, invalid bytes, and a property over
many codecs), and end to end over HTTP into PostgreSQL for products and orders."""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from jobs.models import Order, OrderItem, Product, SyncRun
from jobs.pipeline.smartup.body import BodyProblem, RecordsReader
from jobs.pipeline.smartup.client import declared_charset
from jobs.simulator import PRODUCTS_PATH, Fault, SmartUpSimulator
from jobs.simulator.catalogue import generate_orders, generate_products
from tests.helpers import FAST_RETRY, PASSWORD, TODAY, USER, settings_for

DOCUMENT: dict[str, Any] = {
    "inventory": [
        {"product_id": "1", "name": 'Молоко "Домик" 3,2% 1 л, ёЁ', "barcodes": "4870001"},
        {"product_id": "2", "name": "Хлеб ржаной; Щи 5", "barcodes": ""},
    ],
    "limits": {"left_limit_quant": "9"},
}
RECORDS = DOCUMENT["inventory"]
TEXT = json.dumps(DOCUMENT, ensure_ascii=False)


def read(data: bytes, charset: str | None, *, chunk: int = 1 << 20) -> tuple[list[Any], str]:
    """The records of ``data`` read in pieces of ``chunk`` bytes, and the encoding used."""
    stream = io.BytesIO(data)
    ended = False

    def piece(size: int) -> bytes:
        nonlocal ended
        assert not ended, "read again after the end of the body"
        got = stream.read(min(size, chunk))
        ended = not got
        return got

    reader = RecordsReader(piece, **_key(), charset=charset)
    return list(reader.records()), reader.encoding


def problem(data: bytes, charset: str | None, *, chunk: int = 1 << 20) -> BodyProblem:
    with pytest.raises(BodyProblem) as caught:
        read(data, charset, chunk=chunk)
    return caught.value


def _key() -> dict[str, str]:
    return {"records_key": "inventory"}


# -- the reader: declared charsets -------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("windows-1251", "cp1251"),
        ("WINDOWS-1251", "cp1251"),
        ("cp1251", "cp1251"),
        ("koi8-r", "koi8-r"),
        ("KOI8-R", "koi8-r"),
        ("utf-16-le", "utf-16-le"),
        ("UTF-16BE", "utf-16-be"),
        ("utf-32", "utf-32"),
        ("iso-8859-5", "iso8859-5"),
    ],
)
@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_a_declared_charset_is_the_one_the_body_is_read_in(label, codec, chunk):
    records, encoding = read(TEXT.encode(codec), label, chunk=chunk)
    assert records == RECORDS
    assert encoding == codecs.lookup(codec).name


@pytest.mark.parametrize("label", [None, "utf-8", "UTF-8", "utf8"])
def test_utf8_declared_or_not_keeps_its_path_where_bad_bytes_reject_the_record_only(label):
    broken = TEXT.encode().replace("Хлеб".encode(), b"\xd0\xff")
    records, encoding = read(broken, label)
    assert encoding == "utf-8"
    assert records[0] == RECORDS[0]
    assert records[1]["name"].startswith("\udcd0\udcff")  # kept as lone surrogates


def test_the_same_bytes_read_in_their_declared_charset_not_as_utf8():
    cp1251 = TEXT.encode("cp1251")
    assert read(cp1251, "windows-1251")[0] == RECORDS
    as_utf8 = read(cp1251, None)[0]
    assert as_utf8 != RECORDS  # what the issue was: other characters, silently


@pytest.mark.parametrize(
    "label", ["x-unknown-charset", "rot13", "hex", "base64", "zlib", "bz2", "utf-9"]
)
def test_a_charset_python_does_not_know_as_text_fails_whole_naming_it(label):
    found = problem(TEXT.encode(), label)
    assert found.bad_charset
    assert str(found) == f"declares charset {label!r}, which is not a text encoding Python knows"


def test_an_unknown_charset_is_named_on_one_line_however_it_is_spelled():
    label = "evil\r\nX-Injected: 1\x00" + "x" * 200
    found = problem(TEXT.encode(), label)
    message = str(found)
    assert found.bad_charset and "\n" not in message and "\r" not in message
    assert "'evil\\r\\nX-Injected: 1\\x00xxx" in message and message.count("x") < 100


@pytest.mark.parametrize("chunk", [1, 2, 1 << 20])
def test_bytes_not_valid_in_the_declared_charset_fail_whole_naming_charset_and_offset(chunk):
    utf8 = TEXT.replace("Хлеб", "Иней").encode()  # "И" is D0 98; 0x98 is no cp1251 character
    found = problem(utf8, "windows-1251", chunk=chunk)
    assert found.bad_charset
    offset = utf8.index(b"\x98")
    assert str(found) == (
        "is not valid in its declared charset 'windows-1251': character maps to "
        f"<undefined> (bytes 98 at offset {offset})"
    )


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_a_lone_surrogate_or_a_cut_character_in_utf16_fails_whole(chunk):
    data = TEXT.encode("utf-16-le")
    at = data.index("Хлеб".encode("utf-16-le"))
    found = problem(data[:at] + b"\x00\xdc" + data[at:], "utf-16-le", chunk=chunk)
    assert found.bad_charset and f"at offset {at})" in str(found)
    cut = problem(data + b"{", "utf-16-le", chunk=chunk)
    assert cut.bad_charset and f"at offset {len(data)})" in str(cut)


def test_a_codec_that_fails_without_naming_bytes_fails_whole_all_the_same():
    found = problem(TEXT.encode(), "undefined")  # a text codec that decodes nothing
    assert found.bad_charset
    assert str(found) == "is not valid in its declared charset 'undefined': undefined encoding"


# -- the reader: byte order marks --------------------------------------------------------


@pytest.mark.parametrize("label", [None, "utf-8", "windows-1251", "utf-16"])
def test_a_utf8_bom_is_skipped_and_wins_over_the_declared_label(label):
    assert read(codecs.BOM_UTF8 + TEXT.encode(), label) == (RECORDS, "utf-8")


@pytest.mark.parametrize(
    ("bom", "codec", "encoding"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
    ],
)
@pytest.mark.parametrize("label", [None, "utf-8", "utf-16", "utf-16-le", "utf-16-be", "cp1251"])
@pytest.mark.parametrize("chunk", [1, 1 << 20])
def test_a_utf16_bom_decides_with_or_without_a_declared_charset(bom, codec, encoding, label, chunk):
    assert read(bom + TEXT.encode(codec), label, chunk=chunk) == (RECORDS, encoding)


def test_utf16_without_a_bom_is_read_as_declared_and_a_wrong_order_is_not_json():
    assert read(TEXT.encode("utf-16-be"), "utf-16-be")[0] == RECORDS
    assert read(TEXT.encode("utf-16-le"), "utf-16")[0] == RECORDS  # Python's default: LE
    assert problem(TEXT.encode("utf-16-be"), "utf-16-le").not_json


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (TEXT.encode("utf-32"), "utf-32"),
        (codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le"), "utf-32-le"),
        (codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"), "UTF-32BE"),
    ],
)
def test_a_utf32_bom_under_a_utf32_label_is_left_to_the_codec(data, label):
    assert read(data, label)[0] == RECORDS


def test_a_utf32_bom_without_a_utf32_label_is_sniffed_as_utf16_and_refused():
    data = codecs.BOM_UTF32_LE + TEXT.encode("utf-32-le")
    assert problem(data, None).not_json  # WHATWG's sniff: FF FE is UTF-16LE


def test_a_bom_does_not_excuse_an_unknown_label():
    assert problem(codecs.BOM_UTF8 + TEXT.encode(), "x-unknown").bad_charset


def test_a_bom_alone_or_nothing_is_an_empty_body():
    for data in (b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE):
        found = problem(data, "windows-1251")
        assert str(found) == "is empty" and not found.bad_charset


# -- the Content-Type header ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "charset"),
    [
        ("application/json; charset=windows-1251", "windows-1251"),
        ('application/json;Charset="KOI8-R"', "KOI8-R"),
        ("application/json; charset=utf-8; q=1", "utf-8"),
        ("application/json", None),
        ("application/json; charset=", None),
        (None, None),
    ],
)
def test_the_declared_charset_is_taken_from_content_type_as_sent(header, charset):
    assert declared_charset(header) == charset


# -- a property: any codec that can encode the body reads back the same records -----------

CODECS = [
    "cp1251",
    "koi8-r",
    "koi8-u",
    "iso8859-5",
    "cp866",
    "mac-cyrillic",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "utf-32-le",
    "utf-32-be",
    "latin-1",
    "cp1252",
    "ascii",
    "utf-8",
    "gb18030",
    "shift_jis",
]
POOL = (
    " !#$%&'()*+,-./0123456789:;<=>?@ABCXYZ[]^_`abcxyz{|}~\"\\\t\n"
    "АБВГДЕЁЖИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжийклмнопрстуфхцчшщъыьэюя"
    "ЄІЇҐєіїґЎўҚқҒғҲҳ«»№—–…€£©°±µ·àéöß漢字かなｶ\u00a0\u200b\u2028\U0001f600\x00\x1f\x7f"
)


@st.composite
def encoded_bodies(draw: st.DrawFn) -> tuple[bytes, str, str]:
    """(body bytes, its codec, the same body's JSON text) for products whose text the
    codec can encode; the charset is declared with a random case."""
    codec = draw(st.sampled_from(CODECS))
    alphabet = [c for c in POOL if _encodable(c, codec)]
    text = st.text(alphabet=alphabet, max_size=12)
    products = draw(
        st.lists(
            st.fixed_dictionaries(
                {"product_id": text, "name": text, "barcodes": text},
                optional={"price": st.decimals(allow_nan=False, places=2).map(str)},
            ),
            max_size=6,
        )
    )
    document = json.dumps(
        {"inventory": products, "limits": {"left_limit_quant": "3"}},
        ensure_ascii=draw(st.booleans()),
        indent=draw(st.sampled_from([None, 1])),
    )
    label = "".join(draw(st.sampled_from([c.lower(), c.upper()])) for c in codec)
    return document.encode(codec), label, document


def _encodable(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


@given(encoded_bodies(), st.integers(min_value=1, max_value=9))
def test_any_codec_that_encodes_a_body_reads_back_what_utf8_reads(body, chunk):
    data, label, document = body
    records, _ = read(data, label, chunk=chunk)
    assert records == read(document.encode(), None)[0]
    assert records == json.loads(document)["inventory"]


# -- the simulator serves any charset -------------------------------------------------------


def _export(sim: SmartUpSimulator) -> requests.Response:
    return requests.post(
        sim.base_url + PRODUCTS_PATH,
        json={},
        auth=(USER, PASSWORD),
        headers={"project_code": "trade"},
        timeout=10,
    )


def test_the_simulator_serves_an_export_in_a_charset_with_its_header_and_a_bom():
    products = [{**p, "name": f"Товар №{i} «ё»"} for i, p in enumerate(generate_products(3))]
    with SmartUpSimulator(products=products, user=USER, password=PASSWORD) as sim:
        normal = _export(sim)
        sim.add_fault(
            "products",
            Fault(
                encoding="utf-16-be",
                bom=codecs.BOM_UTF16_BE,
                export_content_type="application/json; Charset=UTF-16BE",
            ),
        )
        sim.add_fault("products", Fault(encoding="cp1251"))
        sim.add_fault("products", Fault(export_content_type="application/json; charset=x-none"))
        utf16, cp1251, labelled = _export(sim), _export(sim), _export(sim)
    assert normal.headers["Content-Type"] == "application/json; charset=utf-8"
    assert utf16.headers["Content-Type"] == "application/json; Charset=UTF-16BE"
    records = normal.text[: normal.text.index('"limits"')]  # the limits count requests
    assert utf16.content.startswith(codecs.BOM_UTF16_BE + records.encode("utf-16-be"))
    assert json.loads(utf16.content[2:].decode("utf-16-be"))["inventory"] == products
    assert cp1251.headers["Content-Type"] == "application/json; charset=cp1251"
    assert cp1251.content.startswith(records.encode("cp1251"))
    assert json.loads(cp1251.content.decode("cp1251"))["inventory"] == products
    assert labelled.headers["Content-Type"] == "application/json; charset=x-none"
    assert labelled.content.startswith(records.encode())
    assert "Товар №2 «ё»" in normal.content.decode()


def test_a_fault_with_an_encoding_python_does_not_know_is_refused_when_made():
    with pytest.raises(LookupError):
        Fault(encoding="x-none")


# -- end to end: over HTTP into PostgreSQL ------------------------------------------------


def _in_cp1251(value: Any) -> Any:
    """``value`` with every character cp1251 lacks (Uzbek letters, ...) replaced by "?"."""
    if isinstance(value, str):
        return value.encode("cp1251", errors="replace").decode("cp1251")
    if isinstance(value, list):
        return [_in_cp1251(item) for item in value]
    if isinstance(value, dict):
        return {key: _in_cp1251(item) for key, item in value.items()}
    return value


@pytest.fixture
def cyrillic_simulator() -> Iterator[SmartUpSimulator]:
    """The usual catalogue, its text made encodable in windows-1251."""
    products = _in_cp1251(generate_products(60))
    orders = _in_cp1251(
        generate_orders(25, products=products, today=TODAY, days=7, filial_ids=("100",))
    )
    with SmartUpSimulator(
        products=products, orders=orders, user=USER, password=PASSWORD, today=TODAY
    ) as sim:
        yield sim


def sync(sim: SmartUpSimulator, url: str, kind: str) -> Any:
    from jobs.run.sync import RunRequest, run_sync

    return run_sync(
        RunRequest(kind=kind, settings=settings_for(sim, url), today=TODAY, retry=FAST_RETRY)
    )


def stored_state() -> tuple[Any, ...]:
    return (
        sorted((p.external_id, p.name, p.raw, p.content_hash) for p in Product.select()),
        sorted((o.source_external_id, o.person_name, o.raw) for o in Order.select()),
        OrderItem.select().count(),
    )


def reopen(url: str) -> None:
    from jobs.models import open_database

    open_database(url)


CP1251 = Fault(encoding="cp1251", export_content_type="application/json; charset=windows-1251")


def test_a_windows_1251_answer_is_stored_exactly_for_products_and_orders(pg, cyrillic_simulator):
    sim = cyrillic_simulator
    sim.add_fault("products", CP1251)
    sim.add_fault("orders", CP1251)
    outcome = sync(sim, pg, "full")
    assert outcome.status == "SUCCESS", outcome.error
    assert [request.status for request in sim.requests] == [200, 200]
    reopen(pg)
    served_products = {p["product_id"]: p for p in sim.products}
    stored = {p.external_id: p for p in Product.select()}
    assert set(stored) == set(served_products)
    for product_id, served in served_products.items():
        assert stored[product_id].name == (served["name"] or None)
        assert stored[product_id].raw == served
    assert any(any("\u0400" <= c <= "\u04ff" for c in p["name"]) for p in sim.products)
    served_orders = {o["deal_id"]: o for o in sim.orders}
    orders = {o.source_external_id: o for o in Order.select()}
    assert set(orders) == set(served_orders)
    for deal_id, served in served_orders.items():
        assert orders[deal_id].person_name == served["person_name"]
        assert orders[deal_id].raw == served
    assert any("Магазин" in o["person_name"] for o in served_orders.values())
    run = SyncRun.get_by_id(outcome.run_id)
    assert run.status == "SUCCESS" and run.error_message is None


def test_a_bom_and_utf16_over_a_wrong_label_are_read_as_the_bom_says(pg, cyrillic_simulator):
    sim = cyrillic_simulator
    sim.add_fault(
        "products",
        Fault(
            encoding="utf-16-le",
            bom=codecs.BOM_UTF16_LE,
            export_content_type="application/json; charset=windows-1251",
        ),
    )
    sim.add_fault("orders", Fault(bom=codecs.BOM_UTF8))
    outcome = sync(sim, pg, "full")
    assert outcome.status == "SUCCESS", outcome.error
    reopen(pg)
    assert sorted((p.external_id, p.raw) for p in Product.select()) == sorted(
        (p["product_id"], p) for p in sim.products
    )
    assert sorted((o.source_external_id, o.raw) for o in Order.select()) == sorted(
        (o["deal_id"], o) for o in sim.orders
    )


@pytest.mark.parametrize("stream", ["products", "orders"])
@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (  # UTF-8 bytes labelled windows-1251: "И" is D0 98, and 0x98 is no cp1251 character
            Fault(export_content_type="application/json; charset=windows-1251"),
            "is not valid in its declared charset 'windows-1251': character maps to "
            "<undefined> (bytes 98 at offset ",
        ),
        (
            Fault(export_content_type='application/json; charset="x-mac-klingon"'),
            "declares charset 'x-mac-klingon', which is not a text encoding Python knows",
        ),
        (
            Fault(export_content_type="application/json; charset=rot13"),
            "declares charset 'rot13', which is not a text encoding Python knows",
        ),
    ],
)
def test_a_body_its_charset_cannot_read_fails_whole_once_and_changes_nothing(
    pg, cyrillic_simulator, stream, fault, words
):
    sim = cyrillic_simulator
    assert sync(sim, pg, "full").status == "SUCCESS"
    reopen(pg)
    before = stored_state()
    assert before[0] and before[1] and before[2]
    if stream == "products":  # the first product changes; its name now holds the byte 0x98
        first = sim.products[0]
        sim.update_product(first["product_id"], name="Иней " + first["name"])
    else:
        first = sim.orders[0]
        sim.update_order(first["deal_id"], modified_on=TODAY, person_name="Иван Иванов")
    requests_before = len(sim.requests)
    sim.add_fault(stream, fault, times=5)
    outcome = sync(sim, pg, stream)
    assert outcome.status == "FAILED" and outcome.error is not None
    assert words in outcome.error and "\n" not in outcome.error
    assert outcome.error.startswith(f"{stream}: SmartUp's answer to the {stream} export")
    assert len(sim.requests) == requests_before + 1  # not retried: the same bytes would come
    run = SyncRun.get_by_id(outcome.run_id)
    assert run.status == "FAILED" and words in (run.error_message or "")
    reopen(pg)
    assert stored_state() == before


def test_smartups_own_refusal_in_its_declared_charset_is_recognised(pg, cyrillic_simulator):
    refusal = '{"error_code": "A02-24-048", "message": "Превышен лимит запросов на сегодня"}'
    cyrillic_simulator.add_fault(
        "products",
        Fault(
            status=200,
            body=refusal,
            encoding="cp1251",
            content_type="application/json; charset=windows-1251",
        ),
    )
    outcome = sync(cyrillic_simulator, pg, "products")
    assert outcome.status == "FAILED"
    assert "SmartUp daily quota for products is spent" in outcome.error
