"""Settings: every variable, default and bound; a bad one stops the process with exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from jobs.pipeline.streams import STREAMS
from jobs.settings import SettingsError
from tests.helpers import ROOT, run_cli, settings_from, without_our_settings

GOOD = {
    "DATABASE_URL": "postgresql://root@127.0.0.1:5432/nowhere",
    "SMARTUP_BASE_URL": "https://smartup.online",
    "SMARTUP_BASIC_USER": "sync@acme",
    "SMARTUP_BASIC_PASS": "topsecret-value",
}


def test_defaults():
    settings = settings_from(GOOD)
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.smartup_project_code == "trade"
    assert settings.smartup_filial_ids == ()
    assert settings.sync_interval_seconds == 600
    assert settings.sync_orders_days_back == 7
    assert settings.smartup_timezone == "Asia/Tashkent"
    assert (
        STREAMS["products"].url(settings)
        == "https://smartup.online/b/anor/mxsx/mr/inventory$export"
    )
    assert (
        STREAMS["orders"].url(settings) == "https://smartup.online/b/trade/txs/tdeal/order$export"
    )
    assert "topsecret-value" not in repr(settings)


def test_values_are_read():
    settings = settings_from(
        {
            **GOOD,
            "SMARTUP_FILIAL_ID": "101, 102,101",
            "SYNC_INTERVAL_SECONDS": "60",
            "SYNC_ORDERS_DAYS_BACK": "90",
            "SMARTUP_INVENTORY_EXPORT_URL": "http://127.0.0.1:9/x",
            "SMARTUP_BASE_URL": "http://localhost:8080/",
            "DATABASE_URL": "sqlite:///demo.db",
        }
    )
    assert settings.smartup_filial_ids == ("101", "102")
    assert settings.sync_interval_seconds == 60 and settings.sync_orders_days_back == 90
    assert STREAMS["products"].url(settings) == "http://127.0.0.1:9/x"
    assert STREAMS["orders"].url(settings).startswith("http://localhost:8080/b/trade/")


BAD = [
    ("DATABASE_URL", None),
    ("DATABASE_URL", "mysql://x/y"),
    ("SMARTUP_BASE_URL", None),
    ("SMARTUP_BASE_URL", "http://smartup.online"),
    ("SMARTUP_BASE_URL", "https://user:pw@smartup.online"),
    ("SMARTUP_BASIC_USER", None),
    ("SMARTUP_BASIC_PASS", None),
    ("SMARTUP_FILIAL_ID", "12,abc"),
    ("SMARTUP_INVENTORY_EXPORT_URL", "ftp://x"),
    ("SYNC_INTERVAL_SECONDS", "59"),
    ("SYNC_INTERVAL_SECONDS", "86401"),
    ("SYNC_INTERVAL_SECONDS", "ten"),
    ("SYNC_ORDERS_DAYS_BACK", "0"),
    ("SYNC_ORDERS_DAYS_BACK", "91"),
    ("SMARTUP_TIMEZONE", "Mars/Olympus"),
    ("REDIS_URL", "http://localhost"),
]


@pytest.mark.parametrize(("variable", "value"), BAD)
def test_each_bad_setting_is_named(variable, value):
    environ = {k: v for k, v in GOOD.items() if k != variable}
    if value is not None:
        environ[variable] = value
    with pytest.raises(SettingsError) as caught:
        settings_from(environ)
    message = str(caught.value)
    assert caught.value.variable == variable and variable in message
    assert "\n" not in message and "topsecret-value" not in message
    if value and len(value) > 3:  # short values (digits) may occur in the bounds text
        assert value not in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SYNC_INTERVAL_SECONDS", "5"), ("SMARTUP_BASIC_PASS", None), ("DATABASE_URL", "nope")],
)
def test_the_cli_exits_2_with_one_line_naming_the_variable(variable, value, tmp_path):
    environ = dict(GOOD)
    environ.pop(variable, None)
    if value is not None:
        environ[variable] = value
    done = run_cli("sync", "products", cwd=tmp_path, env=environ)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0]
    assert "topsecret-value" not in done.stderr + done.stdout


def test_bad_cli_arguments_exit_2(tmp_path):
    done = run_cli("sync", "everything")
    assert done.returncode == 2


def test_a_dotenv_file_is_read_and_never_overrides_the_environment(tmp_path):
    (tmp_path / ".env").write_text("SYNC_INTERVAL_SECONDS=5\nSMARTUP_PROJECT_CODE=anor\n")
    done = run_cli("sync", "products", cwd=tmp_path, env=GOOD)
    assert done.returncode == 2 and "SYNC_INTERVAL_SECONDS" in done.stderr

    show = (
        "from jobs.settings import load_settings as load; "
        "from jobs.pipeline.streams import declared_names; s = load(streams=declared_names()); "
        "print(s.smartup_project_code, s.sync_interval_seconds)"
    )
    read = subprocess.run(
        [sys.executable, "-c", show],
        cwd=tmp_path,
        env={
            **without_our_settings(),
            **GOOD,
            "PYTHONPATH": str(ROOT),
            "SYNC_INTERVAL_SECONDS": "900",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert read.stdout.split() == ["anor", "900"], read.stderr


def test_quota_reserve_and_gone_limit_have_defaults_and_bounds():
    base = {
        "DATABASE_URL": "sqlite:///x.sqlite3",
        "SMARTUP_BASE_URL": "https://smartup.online",
        "SMARTUP_BASIC_USER": "u@c",
        "SMARTUP_BASIC_PASS": "p",
    }
    settings = settings_from(base)
    assert (settings.smartup_quota_reserve_percent, settings.sync_max_gone_percent) == (20, 10.0)
    for name, bad in (("SMARTUP_QUOTA_RESERVE_PERCENT", "95"), ("SYNC_MAX_GONE_PERCENT", "-1")):
        with pytest.raises(SettingsError, match=name):
            settings_from({**base, name: bad})


def test_the_sweep_period_defaults_to_a_day_and_has_bounds():
    base = {
        "DATABASE_URL": "sqlite:///x.sqlite3",
        "SMARTUP_BASE_URL": "https://smartup.online",
        "SMARTUP_BASIC_USER": "u@c",
        "SMARTUP_BASIC_PASS": "p",
    }
    assert settings_from(base).sync_sweep_seconds == 86400
    assert settings_from({**base, "SYNC_SWEEP_SECONDS": "3600"}).sync_sweep_seconds == 3600
    for bad in ("59", "604801", "daily"):
        with pytest.raises(SettingsError, match="SYNC_SWEEP_SECONDS"):
            settings_from({**base, "SYNC_SWEEP_SECONDS": bad})


def test_a_half_set_dashboard_login_names_the_missing_variable_and_the_one_set():
    from jobs.settings import load_dashboard_settings

    with pytest.raises(SettingsError) as raised:
        load_dashboard_settings({"RQ_DASHBOARD_USERNAME": "ops"})
    assert str(raised.value) == (
        "invalid setting RQ_DASHBOARD_PASSWORD: expected a value too, since "
        "RQ_DASHBOARD_USERNAME is set (set both or neither)"
    )


def test_an_unknown_stream_in_sync_streams_exits_2_naming_it_and_the_accepted_ones(tmp_path):
    done = run_cli(
        "sync", "products", cwd=tmp_path, env={**GOOD, "SYNC_STREAMS": "products,stocks"}
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "SYNC_STREAMS" in line and "'stocks'" in line
    for accepted in ("products", "orders", "groups", "prices", "stock"):
        assert accepted in line


def test_sync_streams_and_the_streams_own_settings():
    default = settings_from(GOOD)
    assert default.sync_streams == ("products", "orders")
    assert default.smartup_stock_conditions == ("F",) and default.smartup_price_type_codes == ()
    every = settings_from(
        {
            **GOOD,
            "SYNC_STREAMS": " stock, prices ,groups,products,orders",
            "SYNC_PRICES_INTERVAL_SECONDS": "7200",
            "SMARTUP_STOCK_CONDITIONS": "f,B",
            "SMARTUP_PRICE_TYPE_CODES": "PRCT:1, PRCT:3",
        }
    )
    assert set(every.sync_streams) == {"stock", "prices", "groups", "products", "orders"}
    assert every.stream_intervals == {"prices": 7200}
    assert every.smartup_stock_conditions == ("F", "B")
    assert every.smartup_price_type_codes == ("PRCT:1", "PRCT:3")
    for variable, bad in (
        ("SYNC_STREAMS", "products,,orders"),
        ("SYNC_STOCK_INTERVAL_SECONDS", "30"),
        ("SMARTUP_STOCK_CONDITIONS", "F,X"),
    ):
        with pytest.raises(SettingsError) as caught:
            settings_from({**GOOD, variable: bad})
        assert caught.value.variable == variable


def test_a_kind_that_is_not_enabled_exits_2(tmp_path):
    done = run_cli("sync", "prices", cwd=tmp_path, env=GOOD)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "prices" in line and "not enabled" in line and "SYNC_STREAMS" in line
