"""What ``tradebook serve`` runs with: a :class:`ServerConfig` from a TOML or JSON file and flags.

A configuration file (TOML or JSON, chosen by its suffix) holds the same keys
as the flags; flags win. Decimals are written as strings (``"0.01"``), never as
TOML or JSON floats: a float is refused with a message saying so.

.. code-block:: toml

    [server]
    host = "127.0.0.1"
    port = 8000
    database = "tradebook.db"        # or "postgresql://user@host/db"

    [auth]
    mode = "token"                   # or "trusted-header"

    [[instruments]]
    symbol = "BTC/USDT"
    tick_size = "0.01"
    lot_size = "0.001"

    [[accounts]]                     # demo balances, credited once
    user = "alice"
    balances = { BTC = "10", USDT = "1000000" }

This module needs nothing beyond the standard library (``tomli`` on Python 3.10).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import InvalidInstrumentError
from ..instrument import Instrument
from ..oms.stores import DatabaseTarget, parse_database_url

__all__ = [
    "AUTH_MODES",
    "DEFAULT_INSTRUMENT",
    "DEFAULT_SECRET_ENV",
    "AccountConfig",
    "ConfigError",
    "ServerConfig",
    "load_config",
    "parse_account",
    "parse_instrument",
]

#: Where the token authenticator reads its secret unless told otherwise.
DEFAULT_SECRET_ENV = "TRADEBOOK_AUTH_SECRET"
#: The authentication modes ``tradebook serve`` offers.
AUTH_MODES = ("token", "trusted-header")
#: The instrument a server without any configured instrument trades.
DEFAULT_INSTRUMENT = Instrument("BTC/USDT", "0.01", "0.001")

_INSTRUMENT_KEYS = (
    "symbol",
    "tick_size",
    "lot_size",
    "min_quantity",
    "max_quantity",
    "min_notional",
    "min_price",
    "max_price",
)
_TEN_YEARS = 10 * 365 * 86_400
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """A configuration file or flag is invalid; the message says where and why."""


@dataclass(frozen=True)
class AccountConfig:
    """A demo account: ``balances`` (asset -> amount) are credited when the account holds none of that asset."""

    user_id: str
    balances: Mapping[str, Decimal]


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``tradebook serve`` needs; every field has a working default.

    ``database`` is what :func:`~tradebook.oms.stores.parse_database_url`
    reads (a SQLite path or ``sqlite:///path``, a ``postgresql://`` URL, or
    ``memory``); ``schema`` is the PostgreSQL schema. ``auth_mode`` is
    ``"token"`` (HMAC-signed bearer tokens, the secret in the environment
    variable ``secret_env``) or ``"trusted-header"`` (the user id in
    ``user_header``, for deployments behind an authenticating gateway).
    The wallet sits behind a circuit breaker (``wallet_breaker``) that opens
    after ``breaker_threshold`` consecutive failures and tries again after
    ``breaker_reset`` seconds; ``wallet_timeout`` bounds each call to a
    PostgreSQL wallet (SQLite and memory wallets answer on the event loop).

    A connection that has not sent a complete request head within
    ``header_timeout`` seconds of opening (or of its previous response) is
    closed; at most ``max_connections`` connections are served at once, and
    one beyond them gets one answer (``/health``, or 503) and is closed.
    Tokens that expire more than ``max_token_lifetime`` seconds from now are
    refused. The WebSocket feed sends a heartbeat every ``heartbeat`` seconds.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    database: str = "tradebook.db"
    schema: str = "public"
    instruments: tuple[Instrument, ...] = ()
    accounts: tuple[AccountConfig, ...] = ()
    auth_mode: str = "token"
    secret_env: str = DEFAULT_SECRET_ENV
    user_header: str = "X-User-ID"
    max_body_bytes: int = 64 * 1024
    metrics: bool = True
    access_log: bool = True
    log_level: str = "info"
    shutdown_timeout: float = 30.0
    maker_fee_rate: Decimal = Decimal(0)
    taker_fee_rate: Decimal = Decimal(0)
    fee_account: str | None = None
    wallet_breaker: bool = True
    breaker_threshold: int = 5
    breaker_reset: float = 10.0
    wallet_timeout: float = 2.0
    header_timeout: float = 10.0
    max_connections: int = 1000
    max_token_lifetime: float = 30 * 86_400.0
    heartbeat: float = 15.0

    def __post_init__(self) -> None:
        _check_range("port", self.port, 0, 65535)
        _check_range("max_body_bytes", self.max_body_bytes, 1024, 64 * 1024 * 1024)
        _check_range("breaker_threshold", self.breaker_threshold, 1, 1_000_000)
        _check_range("max_connections", self.max_connections, 1, 1_000_000)
        lifetime = self.max_token_lifetime
        if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or not 0 < lifetime <= _TEN_YEARS:
            raise ConfigError(f"max_token_lifetime must be a number of seconds in (0, ten years], not {lifetime!r}")
        for name in ("shutdown_timeout", "breaker_reset", "wallet_timeout", "header_timeout", "heartbeat"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
                raise ConfigError(f"{name} must be a number of seconds in (0, 3600], not {value!r}")
        if self.auth_mode not in AUTH_MODES:
            raise ConfigError(f"auth mode must be one of {', '.join(AUTH_MODES)}, not {self.auth_mode!r}")
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(_LOG_LEVELS)}, not {self.log_level!r}")
        for name in ("host", "database", "schema", "secret_env", "user_header"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or not value.isprintable():
                raise ConfigError(f"{name} must be a non-empty string, not {value!r}")
        try:
            parse_database_url(self.database)
        except ValueError as exc:
            raise ConfigError(f"database: {exc}") from None
        symbols = [inst.symbol for inst in self.instruments]
        if len(set(symbols)) != len(symbols):
            raise ConfigError(f"an instrument is listed twice: {sorted(symbols)}")

    @property
    def tradable(self) -> tuple[Instrument, ...]:
        """The configured instruments, or :data:`DEFAULT_INSTRUMENT` when there are none."""
        return self.instruments or (DEFAULT_INSTRUMENT,)

    @property
    def database_target(self) -> DatabaseTarget:
        """What ``database`` names (:func:`~tradebook.oms.stores.parse_database_url`), with ``schema`` for PostgreSQL."""
        target = parse_database_url(self.database)
        return dataclasses.replace(target, schema=self.schema) if target.kind == "postgresql" else target

    @property
    def is_postgres(self) -> bool:
        """True when ``database`` is a PostgreSQL URL."""
        return self.database_target.kind == "postgresql"

    @property
    def sqlite_path(self) -> str:
        """``database`` as a SQLite file path (``sqlite:///x.db`` becomes ``x.db``)."""
        return self.database_target.location

    def replace(self, **changes: Any) -> ServerConfig:
        """A copy with ``changes`` applied and checked (``None`` values are ignored: "not given")."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _check_range(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer from {low} to {high}, not {value!r}")


def _decimal(value: object, where: str) -> Decimal:
    """A config value as a Decimal: strings and integers only (a float would already be inexact)."""
    if isinstance(value, float):
        raise ConfigError(f'{where}: write decimals as strings ("{value!r}"), not as a float')
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(f"{where}: expected a decimal string, not {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{where}: {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ConfigError(f"{where}: {value!r} is not a finite number")
    return number


def _instrument(data: object, where: str) -> Instrument:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: an instrument is a table with symbol, tick_size and lot_size")
    unknown = set(data) - set(_INSTRUMENT_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {', '.join(_INSTRUMENT_KEYS)}")
    for required in ("symbol", "tick_size", "lot_size"):
        if required not in data:
            raise ConfigError(f"{where}: {required} is missing")
    values = {k: _decimal(v, f"{where}.{k}") for k, v in data.items() if k != "symbol"}
    try:
        return Instrument(data["symbol"], **values)
    except InvalidInstrumentError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _account(data: object, where: str) -> AccountConfig:
    if not isinstance(data, Mapping) or set(data) != {"user", "balances"}:
        raise ConfigError(f"{where}: an account is a table with exactly a user and its balances")
    user, balances = data["user"], data["balances"]
    if not isinstance(user, str) or not 1 <= len(user) <= 128 or not user.isprintable():
        raise ConfigError(f"{where}.user: 1 to 128 printable characters, not {user!r}")
    if not isinstance(balances, Mapping) or not balances:
        raise ConfigError(f'{where}.balances: a table of asset = "amount"')
    amounts: dict[str, Decimal] = {}
    for asset, amount in balances.items():
        value = _decimal(amount, f"{where}.balances.{asset}")
        if value <= 0:
            raise ConfigError(f"{where}.balances.{asset}: must be positive, not {amount!r}")
        amounts[str(asset)] = value
    return AccountConfig(user, amounts)


def parse_instrument(text: str) -> Instrument:
    """An instrument from a ``SYMBOL:TICK:LOT`` flag, such as ``BTC/USDT:0.01:0.001``."""
    parts = text.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--instrument takes SYMBOL:TICK_SIZE:LOT_SIZE (such as BTC/USDT:0.01:0.001), not {text!r}")
    symbol, tick, lot = parts
    return _instrument({"symbol": symbol, "tick_size": tick, "lot_size": lot}, f"--instrument {text}")


def parse_account(text: str) -> AccountConfig:
    """A demo account from a ``USER:ASSET=AMOUNT[,ASSET=AMOUNT...]`` flag, such as ``alice:BTC=10,USDT=1000``."""
    user, sep, rest = text.partition(":")
    pairs = [item.partition("=") for item in rest.split(",")] if sep and rest else []
    if not pairs or any(not eq or not asset for asset, eq, _ in pairs):
        raise ConfigError(
            f"--account takes USER:ASSET=AMOUNT[,ASSET=AMOUNT...] (such as alice:USDT=1000), not {text!r}"
        )
    return _account({"user": user, "balances": {a: v for a, _, v in pairs}}, f"--account {text}")


# The file's sections and keys, and the ServerConfig field each key sets.
_SECTIONS: dict[str, dict[str, str]] = {
    "server": {
        "host": "host",
        "port": "port",
        "database": "database",
        "schema": "schema",
        "max_body_bytes": "max_body_bytes",
        "metrics": "metrics",
        "access_log": "access_log",
        "log_level": "log_level",
        "shutdown_timeout": "shutdown_timeout",
        "header_timeout": "header_timeout",
        "max_connections": "max_connections",
        "heartbeat": "heartbeat",
    },
    "auth": {
        "mode": "auth_mode",
        "secret_env": "secret_env",
        "user_header": "user_header",
        "max_token_lifetime": "max_token_lifetime",
    },
    "fees": {"maker_fee_rate": "maker_fee_rate", "taker_fee_rate": "taker_fee_rate", "fee_account": "fee_account"},
    "wallet": {
        "breaker": "wallet_breaker",
        "breaker_threshold": "breaker_threshold",
        "breaker_reset": "breaker_reset",
        "timeout": "wallet_timeout",
    },
}
_BOOLEANS = {"metrics", "access_log", "wallet_breaker"}


def _read(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(raw)
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - exercised on Python 3.10 only
                import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
            return tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid {suffix[1:].upper()}: {exc}") from None
    raise ConfigError(f"{path}: the configuration file must end in .toml or .json")


def load_config(path: str | Path, base: ServerConfig | None = None) -> ServerConfig:
    """Read a TOML or JSON configuration file over ``base`` (the defaults); raises :class:`ConfigError`."""
    path = Path(path)
    data = _read(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table (an object)")
    allowed = {*_SECTIONS, "instruments", "accounts"}
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: {', '.join(sorted(allowed))}")
    changes: dict[str, Any] = {}
    for section, keys in _SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table")
        for key, value in table.items():
            name = keys.get(key)
            if name is None:
                raise ConfigError(f"{path}: unknown key {section}.{key}; allowed: {', '.join(keys)}")
            where = f"{path}: {section}.{key}"
            if name in _BOOLEANS and not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false, not {value!r}")
            if name in ("maker_fee_rate", "taker_fee_rate"):
                value = _decimal(value, where)
            changes[name] = value
    for name, parse in (("instruments", _instrument), ("accounts", _account)):
        items = data.get(name, [])
        if not isinstance(items, list):
            raise ConfigError(f"{path}: {name} must be a list of tables")
        changes[name] = tuple(parse(item, f"{path}: {name}[{i}]") for i, item in enumerate(items))
    try:
        return dataclasses.replace(base or ServerConfig(), **changes)
    except TypeError as exc:  # pragma: no cover - every key is mapped above
        raise ConfigError(f"{path}: {exc}") from None
