"""How the SQLite adapters store records: value converters, row codecs and the migrations."""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources
from typing import Any, TypeVar

from ...enums import OrderStatus, OrderType, Side, TimeInForce
from ...errors import PersistenceError
from ..models import OrderRecord, TradeRecord

T = TypeVar("T")

_ZERO = Decimal(0)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_ACTIVE_SQL = "('OPEN', 'PARTIALLY_FILLED')"


# --------------------------------------------------------------------------- values


def _text(value: Decimal) -> str:
    """A decimal as the exact text SQLite stores (``Decimal(text) == value``, same exponent)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a Decimal, not {type(value).__name__}")


def _timestamp(value: datetime) -> str:
    """A timezone-aware datetime as ISO-8601 UTC text with microseconds (sorts like the instants)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"timestamp {value!r} must be timezone-aware")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _datetime(text: str) -> datetime:
    """Stored timestamp text back as a timezone-aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _storable_id(value: int) -> bool:
    """Whether ``value`` fits an SQLite INTEGER (an id outside that range cannot be stored)."""
    return isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX


def _checked_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not _storable_id(value):
        raise ValueError(f"{what} {value} does not fit a signed 64-bit integer")
    return value


_ORDER_COLUMNS = (
    "id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity, status,"
    " created_at, updated_at, client_order_id, post_only, sequence"
)
_TRADE_COLUMNS = "id, symbol, price, quantity, buy_order_id, sell_order_id, buyer_id, seller_id, taker_side, created_at"


def _order_row(order: OrderRecord) -> tuple[object, ...]:
    return (
        _checked_id(order.id, "order id"),
        order.user_id,
        order.symbol,
        Side(order.side).value,
        OrderType(order.type).value,
        TimeInForce(order.time_in_force).value,
        None if order.price is None else _text(order.price),
        _text(order.quantity),
        _text(order.filled_quantity),
        OrderStatus(order.status).value,
        _timestamp(order.created_at),
        _timestamp(order.updated_at),
        order.client_order_id,
        1 if order.post_only else 0,
        None if order.sequence is None else _checked_id(order.sequence, "sequence"),
    )


def _order(row: Sequence[Any]) -> OrderRecord:
    return OrderRecord(
        id=row[0],
        user_id=row[1],
        symbol=row[2],
        side=Side(row[3]),
        type=OrderType(row[4]),
        time_in_force=TimeInForce(row[5]),
        price=None if row[6] is None else Decimal(row[6]),
        quantity=Decimal(row[7]),
        filled_quantity=Decimal(row[8]),
        status=OrderStatus(row[9]),
        created_at=_datetime(row[10]),
        updated_at=_datetime(row[11]),
        client_order_id=row[12],
        post_only=bool(row[13]),
        sequence=row[14],
    )


def _trade_row(trade: TradeRecord) -> tuple[object, ...]:
    return (
        _checked_id(trade.id, "trade id"),
        trade.symbol,
        _text(trade.price),
        _text(trade.quantity),
        _checked_id(trade.buy_order_id, "buy order id"),
        _checked_id(trade.sell_order_id, "sell order id"),
        trade.buyer_id,
        trade.seller_id,
        Side(trade.taker_side).value,
        _timestamp(trade.created_at),
    )


def _trade(row: Sequence[Any]) -> TradeRecord:
    return TradeRecord(
        id=row[0],
        symbol=row[1],
        price=Decimal(row[2]),
        quantity=Decimal(row[3]),
        buy_order_id=row[4],
        sell_order_id=row[5],
        buyer_id=row[6],
        seller_id=row[7],
        taker_side=Side(row[8]),
        created_at=_datetime(row[9]),
    )


# --------------------------------------------------------------------------- migrations


@dataclass(frozen=True)
class _Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The script cut into single statements (``execute`` runs one at a time).

        ``executescript`` would commit the migration's transaction first, so the
        statements are run one by one inside it instead.
        """
        statements: list[str] = []
        start = 0
        for match in re.finditer(";", self.sql):
            candidate = self.sql[start : match.end()]
            if sqlite3.complete_statement(candidate):
                statements.append(candidate.strip())
                start = match.end()
        rest = self.sql[start:]
        if rest.strip():
            statements.append(rest.strip())  # comments only (a no-op), or an error SQLite reports
        return statements


_MIGRATION_FILE = re.compile(r"(\d{4})_(\w+)\.sql")

_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


@functools.cache
def _migrations() -> tuple[_Migration, ...]:
    """The shipped migrations in version order."""
    folder = resources.files("tradebook.oms") / "migrations" / "sqlite"
    found: dict[int, _Migration] = {}
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two SQLite migrations have version {version}")
        found[version] = _Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    if not found:
        raise RuntimeError("the SQLite migrations are missing from the tradebook package")
    return tuple(found[v] for v in sorted(found))


def _apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations ``conn``'s file lacks, in one transaction; their versions.

    ``BEGIN IMMEDIATE`` takes the write lock before ``schema_migrations`` is
    read, so two connections opening one file at once apply each migration once.
    """
    known = _migrations()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SCHEMA_MIGRATIONS)
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        newest = known[-1].version
        if applied and max(applied) > newest:
            raise PersistenceError(
                f"the database has schema version {max(applied)}, newer than this tradebook knows ({newest}): "
                "upgrade tradebook"
            )
        done = []
        for migration in known:
            if migration.version in applied:
                continue
            for statement in migration.statements():
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, _now()),
            )
            done.append(migration.version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done
