"""How the PostgreSQL adapters store records: columns, row codecs and the migrations."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from ...enums import OrderStatus, OrderType, Side, TimeInForce
from .._paging import check_limit, decode_cursor, encode_cursor
from ..models import OrderQuery, OrderRecord, Page, TradeRecord

_Conn = psycopg.AsyncConnection[TupleRow]

_ZERO = Decimal(0)
# pg_advisory_xact_lock(int4, int4): a fixed class for tradebook migrations, and the schema.
_LOCK_CLASS = 0x7462  # "tb"
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ACTIVE = sql.SQL("status IN ('OPEN', 'PARTIALLY_FILLED')")

# -- migrations ------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file of ``tradebook/oms/migrations/postgres/``."""

    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """The shipped PostgreSQL migrations, in version order (read once from the package data)."""
    folder = resources.files("tradebook.oms").joinpath("migrations").joinpath("postgres")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match is not None:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"the PostgreSQL migrations are not numbered 1..n: {versions}")
    return tuple(found)


def _lock_key(schema: str) -> int:
    """The schema as a signed 32-bit advisory-lock key (schemas migrate independently)."""
    key = zlib.crc32(schema.encode("utf-8"))
    return key - (1 << 32) if key >= 1 << 31 else key


async def _schema_exists(conn: _Conn, schema: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    return await cur.fetchone() is not None


async def _table_exists(conn: _Conn, schema: str, table: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    )
    return await cur.fetchone() is not None


async def _apply_migrations(conn: _Conn, schema: str) -> list[int]:
    """Create the schema if missing and apply the migrations it lacks, in one transaction.

    A transaction-scoped advisory lock serialises concurrent callers: the
    second waits, then finds everything applied.
    """
    ident = sql.Identifier(schema)
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, _lock_key(schema)))
        # Checked, not IF NOT EXISTS: CREATE SCHEMA needs a privilege an existing schema does not.
        if not await _schema_exists(conn, schema):
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
        if not await _table_exists(conn, schema, "schema_migrations"):
            await conn.execute(
                "CREATE TABLE schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for migration in migrations():
            if migration.version in done:
                continue
            # No parameters: sent as one simple query, so a file may hold many statements.
            await conn.execute(migration.sql.encode("utf-8"))
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name)
            )
            applied.append(migration.version)
    return applied


# -- the order repository ------------------------------------------------------------

_ORDER_COLUMNS = sql.SQL(
    "id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity, status,"
    " created_at, updated_at, client_order_id, post_only, sequence"
)
_TRADE_COLUMNS = sql.SQL(
    "id, symbol, price, quantity, buy_order_id, sell_order_id, buyer_id, seller_id, taker_side, created_at"
)


def _order(row: TupleRow) -> OrderRecord:
    return OrderRecord(
        id=row[0],
        user_id=row[1],
        symbol=row[2],
        side=Side(row[3]),
        type=OrderType(row[4]),
        time_in_force=TimeInForce(row[5]),
        price=row[6],
        quantity=row[7],
        filled_quantity=row[8],
        status=OrderStatus(row[9]),
        created_at=row[10],
        updated_at=row[11],
        client_order_id=row[12],
        post_only=row[13],
        sequence=row[14],
    )


def _trade(row: TupleRow) -> TradeRecord:
    return TradeRecord(
        id=row[0],
        symbol=row[1],
        price=row[2],
        quantity=row[3],
        buy_order_id=row[4],
        sell_order_id=row[5],
        buyer_id=row[6],
        seller_id=row[7],
        taker_side=Side(row[8]),
        created_at=row[9],
    )


def _page(rows: list[TupleRow], limit: int, build: Any) -> Page[Any]:
    items = [build(row) for row in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page(items, next_cursor)


def _list_orders_query(user_id: str, query: OrderQuery) -> tuple[sql.Composed, list[Any]]:
    """The statement and parameters of :meth:`PostgresOrderRepository.list_orders`.

    Status and side go in as literals (they are enum values): the planner then
    proves partial-index predicates (a user's open orders) even for a cached
    generic plan. Fetches one row past the page to know whether another follows.
    """
    limit = check_limit(query.limit)
    before = decode_cursor(query.cursor)
    where: list[sql.Composable] = [sql.SQL("user_id = %s")]
    params: list[Any] = [user_id]
    if before is not None:
        where.append(sql.SQL("id < %s"))
        params.append(before)
    if query.symbol is not None:
        where.append(sql.SQL("symbol = %s"))
        params.append(query.symbol)
    if query.status is not None:
        where.append(sql.SQL("status = {}").format(sql.Literal(OrderStatus(query.status).value)))
    if query.side is not None:
        where.append(sql.SQL("side = {}").format(sql.Literal(Side(query.side).value)))
    if query.since is not None:
        where.append(sql.SQL("created_at >= %s"))
        params.append(query.since)
    if query.until is not None:
        where.append(sql.SQL("created_at < %s"))
        params.append(query.until)
    statement = sql.SQL("SELECT {} FROM orders WHERE {} ORDER BY id DESC LIMIT {}").format(
        _ORDER_COLUMNS, sql.SQL(" AND ").join(where), sql.Literal(limit + 1)
    )
    return statement, params
