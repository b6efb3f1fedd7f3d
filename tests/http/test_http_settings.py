"""``tradebook serve``'s configuration: files (TOML, JSON), flags, and the messages bad ones get."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tradebook import Instrument
from tradebook.http import AccountConfig, ConfigError, ServerConfig, load_config, parse_account, parse_instrument
from tradebook.http.settings import DEFAULT_INSTRUMENT

TOML = """
[server]
host = "0.0.0.0"
port = 9000
database = "postgresql://trader:hunter2@db/exchange"
schema = "trading"
max_body_bytes = 4096
metrics = false
access_log = false
log_level = "warning"
shutdown_timeout = 5

[auth]
mode = "trusted-header"
user_header = "X-Gateway-User"
secret_env = "OTHER_SECRET"

[fees]
maker_fee_rate = "0.001"
taker_fee_rate = "0.002"
fee_account = "fees"

[wallet]
breaker = false
breaker_threshold = 3
breaker_reset = 2.5
timeout = 1

[[instruments]]
symbol = "BTC/USDT"
tick_size = "0.01"
lot_size = "0.001"
max_quantity = "100"

[[instruments]]
symbol = "ETH/USDT"
tick_size = "0.05"
lot_size = 1

[[accounts]]
user = "alice"
balances = { BTC = "10", USDT = "1000000" }
"""


TWICE = "[[instruments]]\nsymbol='A/B'\ntick_size='1'\nlot_size='1'\n" * 2


def test_a_toml_file_sets_everything(tmp_path: Path) -> None:
    path = tmp_path / "tradebook.toml"
    path.write_text(TOML)
    config = load_config(path)
    assert (config.host, config.port, config.schema, config.max_body_bytes) == ("0.0.0.0", 9000, "trading", 4096)
    assert config.is_postgres and not config.metrics and not config.access_log
    assert (config.log_level, config.shutdown_timeout) == ("warning", 5)
    assert (config.auth_mode, config.user_header, config.secret_env) == (
        "trusted-header",
        "X-Gateway-User",
        "OTHER_SECRET",
    )
    assert (config.maker_fee_rate, config.taker_fee_rate, config.fee_account) == (
        Decimal("0.001"),
        Decimal("0.002"),
        "fees",
    )
    assert not config.wallet_breaker and (config.breaker_threshold, config.breaker_reset, config.wallet_timeout) == (
        3,
        2.5,
        1,
    )
    assert config.instruments == (
        Instrument("BTC/USDT", "0.01", "0.001", max_quantity="100"),
        Instrument("ETH/USDT", "0.05", "1"),
    )
    assert config.tradable == config.instruments
    assert config.accounts == (AccountConfig("alice", {"BTC": Decimal(10), "USDT": Decimal(1_000_000)}),)


def test_json_has_the_same_structure(tmp_path: Path) -> None:
    path = tmp_path / "tradebook.json"
    path.write_text(
        json.dumps(
            {
                "server": {"database": "sqlite:///data/x.db"},
                "instruments": [{"symbol": "S/USD", "tick_size": "1", "lot_size": "1"}],
            }
        )
    )
    config = load_config(path)
    assert config.sqlite_path == "data/x.db" and not config.is_postgres
    assert [i.symbol for i in config.tradable] == ["S/USD"]


def test_defaults_work_with_nothing_configured() -> None:
    config = ServerConfig()
    assert (config.host, config.port, config.database, config.auth_mode) == ("127.0.0.1", 8000, "tradebook.db", "token")
    assert config.sqlite_path == "tradebook.db" and config.tradable == (DEFAULT_INSTRUMENT,)
    assert config.replace(port=None, host="::1").host == "::1"  # None means "not given"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = 70000\n", "port must be an integer from 0 to 65535"),
        ("[server]\nport = '80'\n", "port must be an integer"),
        ("[server]\nmax_body_bytes = 10\n", "max_body_bytes"),
        ("[server]\nshutdown_timeout = 0\n", "shutdown_timeout"),
        ("[server]\nlog_level = 'loud'\n", "log_level"),
        ("[server]\nhost = ''\n", "host must be a non-empty string"),
        ("[server]\nmetrics = 'yes'\n", "server.metrics must be true or false"),
        ("[server]\nworkers = 4\n", "unknown key server.workers"),
        ("[auth]\nmode = 'none'\n", "auth mode must be one of"),
        ("[wallet]\nbreaker_threshold = 0\n", "breaker_threshold"),
        ("[fees]\nmaker_fee_rate = 0.001\n", "write decimals as strings"),
        ("[tls]\ncert = 'x'\n", "unknown section"),
        ("server = 1\n", "[server] must be a table"),
        ("instruments = 'BTC/USDT'\n", "instruments must be a list"),
        ("[[instruments]]\nsymbol = 'BTC/USDT'\ntick_size = '0.01'\n", "lot_size is missing"),
        ("[[instruments]]\nsymbol = 'BTC/USDT'\ntick_size = 0.01\nlot_size = '1'\n", "write decimals as strings"),
        ("[[instruments]]\nsymbol = 'BTC/USDT'\ntick_size = '-1'\nlot_size = '1'\n", "instruments[0]"),
        ("[[instruments]]\nsymbol = 'BTC/USDT'\ntick_size = 'abc'\nlot_size = '1'\n", "not a decimal number"),
        ("[[instruments]]\nsymbol = 'BTC/USDT'\ntick_size = 'NaN'\nlot_size = '1'\n", "not a finite number"),
        ("[[instruments]]\nsymbol = 'X/Y'\ntick_size = '1'\nlot_size = '1'\ncolour = 'red'\n", "unknown key"),
        (TWICE, "listed twice"),
        ("instruments = [1]\n", "an instrument is a table"),
        ("[[accounts]]\nuser = 'a'\n", "exactly a user and its balances"),
        ("[[accounts]]\nuser = ''\nbalances = { X = '1' }\n", "printable"),
        ("[[accounts]]\nuser = 'a'\nbalances = {}\n", "a table of asset"),
        ("[[accounts]]\nuser = 'a'\nbalances = { X = '-1' }\n", "must be positive"),
        ("[[accounts]]\nuser = 'a'\nbalances = { X = true }\n", "expected a decimal string"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_bad_files_say_where_and_why(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)


def test_files_that_are_not_configurations(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "x.yaml").write_text("a: 1")
    with pytest.raises(ConfigError, match=r"must end in \.toml or \.json"):
        load_config(tmp_path / "x.yaml")
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="top level must be a table"):
        load_config(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "y.json")


def test_flags() -> None:
    assert parse_instrument("ETH/USDT:0.01:0.0001") == Instrument("ETH/USDT", "0.01", "0.0001")
    assert parse_account("bob:BTC=1.5,USDT=100") == AccountConfig("bob", {"BTC": Decimal("1.5"), "USDT": Decimal(100)})
    for bad in ("ETH/USDT", "ETH/USDT:0.01", "a:b:c:d"):
        with pytest.raises(ConfigError, match="SYMBOL:TICK_SIZE:LOT_SIZE"):
            parse_instrument(bad)
    with pytest.raises(ConfigError, match="--instrument ETH:1:1"):
        parse_instrument("ETH:1:1")
    for bad in ("bob", "bob:", "bob:BTC", "bob:=1", "bob:BTC=1,"):
        with pytest.raises(ConfigError, match="USER:ASSET=AMOUNT"):
            parse_account(bad)
    with pytest.raises(ConfigError, match="not a decimal"):
        parse_account("bob:BTC=lots")
