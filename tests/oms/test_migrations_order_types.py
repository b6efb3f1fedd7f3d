"""The migrations that add the new order types (SQLite 0002, PostgreSQL 0004) keep what was stored before.

A database migrated by the previous release, with orders in it, is opened by
this one: the orders read back as they were (the new fields ``None``), the live
ones are restored by a service, and the new kinds of order can be stored.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from _stores import drop_schema, new_schema_name, postgres_dsn_or_skip

from tradebook import Instrument, OrderStatus, OrderType, Side, TimeInForce
from tradebook.oms import MemoryWallet, OrderRecord, OrderService
from tradebook.oms._sql import migrations
from tradebook.oms.sqlite import SQLiteOrderRepository
from tradebook.oms.sqlite.schema import _split

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
BTC = Instrument("BTC/USDT", "0.01", "0.001")


def quote_order(order_id: int) -> OrderRecord:
    return OrderRecord(
        id=order_id,
        user_id="bob",
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        time_in_force=TimeInForce.IOC,
        price=None,
        quantity=None,
        filled_quantity=Decimal("0.5"),
        status=OrderStatus.EXPIRED,
        created_at=NOW,
        updated_at=NOW,
        sequence=9,
        quote_quantity=Decimal("50.00000"),
    )


async def check_old_orders_and_new_ones(repo: object) -> None:
    old = await repo.get_order(1)  # type: ignore[attr-defined]
    assert (old.status, old.price, old.quantity, old.sequence) == (OrderStatus.OPEN, Decimal("100.10"), 1, 3)
    assert (old.stop_price, old.display_quantity, old.expire_at, old.quote_quantity) == (None, None, None, None)
    async with repo.transaction() as uow:  # type: ignore[attr-defined]
        await uow.create_order(quote_order(2))
    assert await repo.get_order(2) == quote_order(2)  # type: ignore[attr-defined]
    wallet = MemoryWallet()
    await wallet.deposit("alice", "USDT", "1000")
    await wallet.reserve("alice", "USDT", Decimal("100.1"), "1")
    service = OrderService(repo, wallet, [BTC], expiry_interval=None)  # type: ignore[arg-type]
    report = await service.start()
    assert report.orders_restored == {"BTC/USDT": 1}
    assert service.depth("BTC/USDT").bids[0] == (Decimal("100.10"), Decimal(1), 1)
    await service.close()


async def test_sqlite_0002_keeps_the_orders_of_a_database_at_version_1(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT)")
    first = migrations.load("sqlite")[0]
    for statement in _split(first.sql):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_migrations VALUES (1, ?, ?)", (first.name, NOW.isoformat()))
    conn.execute(
        "INSERT INTO orders (id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity,"
        " status, created_at, updated_at, sequence) VALUES (1, 'alice', 'BTC/USDT', 'BUY', 'LIMIT', 'GTC', '100.10',"
        " '1', '0', 'OPEN', ?, ?, 3)",
        (NOW.isoformat(timespec="microseconds"), NOW.isoformat(timespec="microseconds")),
    )
    conn.close()
    repo = await SQLiteOrderRepository.open(path)
    try:
        await check_old_orders_and_new_ones(repo)
    finally:
        await repo.close()
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):  # a quantity, or a quote amount instead
        conn.execute(
            "INSERT INTO orders (id, user_id, symbol, side, type, time_in_force, filled_quantity, status, created_at,"
            " updated_at) VALUES (5, 'a', 'S', 'BUY', 'MARKET', 'IOC', '0', 'EXPIRED', 'x', 'x')"
        )
    indexes = {row[1]: row[2] for row in conn.execute("SELECT type, name, sql FROM sqlite_master WHERE type='index'")}
    assert "'UNTRIGGERED'" in indexes["orders_active_idx"]
    conn.close()


async def test_postgres_0004_keeps_the_orders_of_a_schema_at_version_3(monkeypatch: pytest.MonkeyPatch) -> None:
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    from tradebook.oms import postgres
    from tradebook.oms.postgres import PostgresOrderRepository

    dsn, schema = postgres_dsn_or_skip(), new_schema_name()
    try:
        monkeypatch.setattr(postgres.schema, "migrations", lambda: migrations.load("postgres")[:3])
        assert await postgres.migrate(dsn, schema) == [1, 2, 3]
        monkeypatch.undo()
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            await conn.execute(
                "INSERT INTO orders (id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity,"
                " status, created_at, updated_at, sequence) VALUES (1, 'alice', 'BTC/USDT', 'BUY', 'LIMIT', 'GTC',"
                " 100.10, 1, 0, 'OPEN', %s, %s, 3)",
                (NOW, NOW),
            )
        repo = await PostgresOrderRepository.open(dsn, schema=schema)
        try:
            await check_old_orders_and_new_ones(repo)
        finally:
            await repo.close()
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            with pytest.raises(psycopg.errors.CheckViolation):
                await conn.execute(
                    "INSERT INTO orders (id, user_id, symbol, side, type, time_in_force, status, created_at,"
                    " updated_at) VALUES (5, 'a', 'S', 'BUY', 'MARKET', 'IOC', 'EXPIRED', now(), now())"
                )
            cur = await conn.execute("SELECT untriggered FROM user_order_stats WHERE user_id = 'alice'")
            assert await cur.fetchall() == [(0,)]
    finally:
        await drop_schema(dsn, schema)
