"""What only the PostgreSQL adapters have: migrations, indexes and plans, statistics views,
NUMERIC exactness, health reports, concurrency and connection failures.

The behaviour they share with the other adapters is in the contract tests. Every
test here works in a schema of its own and drops it.
"""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from _stores import drop_schema

from tradebook import (
    DuplicateOrderError,
    InsufficientBalanceError,
    OrderStatus,
    OrderType,
    PersistenceError,
    Side,
    TimeInForce,
    WalletUnavailableError,
)
from tradebook.oms import OrderQuery, OrderRecord, Settlement, TradeRecord

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402

from tradebook.oms import postgres  # noqa: E402
from tradebook.oms.postgres import (  # noqa: E402
    Migration,
    PostgresOrderRepository,
    PostgresWallet,
    health_report,
    migrate,
    migration_status,
    refresh_statistics,
)

pytestmark = pytest.mark.postgres

NOW = datetime.now(timezone.utc).replace(microsecond=0)
VERSIONS = [m.version for m in postgres.migrations()]


async def connect(dsn: str, schema: str) -> psycopg.AsyncConnection:
    """A test's own autocommit connection with the schema on its search_path."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


async def rows(conn: psycopg.AsyncConnection, query: str | sql.Composable, params: object = ()) -> list[tuple]:
    cur = await conn.execute(query, params)
    return await cur.fetchall()


def order(order_id: int, user: str = "alice", **changes: object) -> OrderRecord:
    base = OrderRecord(
        id=order_id,
        user_id=user,
        symbol="BTC/USD",
        side=Side.BUY,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price=Decimal("100.5"),
        quantity=Decimal("2"),
        filled_quantity=Decimal(0),
        status=OrderStatus.OPEN,
        created_at=NOW,
        updated_at=NOW,
        sequence=order_id,
    )
    return base.replace(**changes)


def trade(trade_id: int, price: str, quantity: str, at: datetime, symbol: str = "BTC/USD") -> TradeRecord:
    return TradeRecord(trade_id, symbol, Decimal(price), Decimal(quantity), 1, 2, "alice", "bob", Side.BUY, at)


# -- migrations --------------------------------------------------------------------


async def test_migrations_are_applied_once_and_recorded(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    before = await migration_status(dsn, schema)
    assert [(v, at) for v, _, at in before] == [(v, None) for v in VERSIONS]
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        assert await rows(conn, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) == []  # status is read-only

    assert await migrate(dsn, schema) == VERSIONS
    assert await migrate(dsn, schema) == []
    repository = await PostgresOrderRepository.open(dsn, schema=schema)
    await repository.close()
    wallet = await PostgresWallet.open(dsn, schema=schema)
    await wallet.close()

    conn = await connect(dsn, schema)
    async with conn:
        recorded = await rows(conn, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    assert [(v, n) for v, n, _ in recorded] == [(m.version, m.name) for m in postgres.migrations()]
    status = await migration_status(dsn, schema)
    assert [(v, n, at) for v, n, at in status] == recorded
    assert all(at.utcoffset() == timedelta(0) for _, _, at in status)


async def test_concurrent_opens_apply_each_migration_once(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    opened = await asyncio.gather(
        PostgresOrderRepository.open(dsn, schema=schema),
        PostgresWallet.open(dsn, schema=schema),
        PostgresOrderRepository.open(dsn, schema=schema),
        PostgresWallet.open(dsn, schema=schema),
    )
    for adapter in opened:
        await adapter.close()
    conn = await connect(dsn, schema)
    async with conn:
        assert await rows(conn, "SELECT version FROM schema_migrations ORDER BY version") == [(v,) for v in VERSIONS]


async def test_migrate_calls_racing_on_separate_connections_apply_once(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    results = await asyncio.gather(*(migrate(dsn, schema) for _ in range(4)))
    assert sorted(results, key=len, reverse=True) == [VERSIONS, [], [], []]


async def test_a_failing_migration_applies_nothing(pg: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    dsn, schema = pg
    assert await migrate(dsn, schema) == VERSIONS
    broken = (
        *postgres.migrations(),
        Migration(len(VERSIONS) + 1, "good_part", "CREATE TABLE extra (x int);"),
        Migration(len(VERSIONS) + 2, "bad_part", "CREATE TABLE extra2 (x int); SELECT no_such_function();"),
    )
    monkeypatch.setattr(postgres.schema, "migrations", lambda: broken)
    with pytest.raises(psycopg.errors.UndefinedFunction):
        await migrate(dsn, schema)
    monkeypatch.undo()
    conn = await connect(dsn, schema)
    async with conn:
        assert await rows(conn, "SELECT max(version) FROM schema_migrations") == [(VERSIONS[-1],)]
        assert await rows(conn, "SELECT to_regclass('extra'), to_regclass('extra2')") == [(None, None)]


async def test_status_lists_versions_recorded_by_a_newer_tradebook(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    await migrate(dsn, schema)
    conn = await connect(dsn, schema)
    async with conn:
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'from_the_future')")
    status = await migration_status(dsn, schema)
    assert [v for v, _, _ in status] == [*VERSIONS, 99]
    assert status[-1][1] == "from_the_future"
    assert status[-1][2] is not None


def test_shipped_migrations_are_numbered_and_named() -> None:
    found = postgres.migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert all(m.name and m.sql.strip() for m in found)


# -- schema, indexes and plans -------------------------------------------------------


async def test_schema_names_are_quoted_and_schemas_are_isolated(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    other = f"{schema}-Odd Name"
    try:
        first = await PostgresOrderRepository.open(dsn, schema=schema)
        second = await PostgresOrderRepository.open(dsn, schema=other)
        async with first.transaction() as uow:
            await uow.create_order(order(1))
        assert await first.get_order(1) == order(1)
        assert await second.get_order(1) is None
        await first.close()
        await second.close()
        assert [at is not None for _, _, at in await migration_status(dsn, other)] == [True] * len(VERSIONS)
    finally:
        await drop_schema(dsn, other)


async def test_the_indexes_exist(repo: PostgresOrderRepository, pg: tuple[str, str]) -> None:
    async with await psycopg.AsyncConnection.connect(pg[0]) as conn:
        found = dict(await rows(conn, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (pg[1],)))
    expected = {
        "orders_user_open_idx": ["(user_id, id DESC)", "WHERE", "'OPEN'", "'PARTIALLY_FILLED'"],
        "orders_user_id_idx": ["(user_id, id DESC)"],
        "orders_symbol_active_idx": ["(symbol, side, price, sequence)", "WHERE", "'OPEN'"],
        "orders_user_client_order_id_key": ["UNIQUE", "(user_id, client_order_id)", "client_order_id IS NOT NULL"],
        "orders_created_at_idx": ["(created_at DESC)"],
        "orders_pending_idx": ["'PENDING'"],
        "trades_symbol_idx": ["(symbol, id DESC)"],
        "trades_buyer_idx": ["(buyer_id, id DESC)"],
        "trades_seller_idx": ["(seller_id, id DESC)"],
        "trading_stats_24h_symbol_key": ["UNIQUE", "(symbol)"],
    }
    for name, parts in expected.items():
        assert name in found, name
        for part in parts:
            assert part in found[name], (name, part, found[name])
    open_index = found["orders_user_open_idx"]
    assert "FILLED'" not in open_index.replace("PARTIALLY_FILLED'", "")


async def test_columns_are_numeric_timestamptz_and_checked_text(
    repo: PostgresOrderRepository, pg: tuple[str, str]
) -> None:
    async with await psycopg.AsyncConnection.connect(pg[0]) as conn:
        types = dict(
            (f"{t}.{c}", d)
            for t, c, d in await rows(
                conn,
                "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = %s",
                (pg[1],),
            )
        )
        checks = [
            d
            for (d,) in await rows(
                conn,
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
                " WHERE n.nspname = %s AND c.contype = 'c'",
                (pg[1],),
            )
        ]
    for column in ("orders.price", "orders.quantity", "orders.filled_quantity", "trades.price", "trades.quantity"):
        assert types[column] == "numeric"
    for column in ("wallet_balances.available", "wallet_balances.reserved", "wallet_reservations.amount"):
        assert types[column] == "numeric"
    assert types["orders.created_at"] == types["trades.created_at"] == "timestamp with time zone"
    assert not any("double" in d or "real" in d for d in types.values())
    assert any("'PARTIALLY_FILLED'" in c for c in checks)
    assert any("'SELL'" in c for c in checks)
    conn = await connect(*pg)
    async with conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(
                "INSERT INTO orders (id, user_id, symbol, side, type, time_in_force, quantity, status,"
                " created_at, updated_at) VALUES (1, 'u', 'S', 'BUY', 'LIMIT', 'GTC', 1, 'NOT_A_STATUS', now(), now())"
            )
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(
                "INSERT INTO orders (id, user_id, symbol, side, type, time_in_force, quantity, status,"
                " created_at, updated_at) VALUES (1, 'u', 'S', 'UP', 'LIMIT', 'GTC', 1, 'OPEN', now(), now())"
            )


async def fill_orders(conn: psycopg.AsyncConnection, count: int) -> None:
    """``count`` orders over 50 users: one in a hundred open, the rest filled or cancelled."""
    await conn.execute(
        """
        INSERT INTO orders (id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity,
                            status, created_at, updated_at, sequence)
        SELECT g, 'u' || (g %% 50), 'BTC/USD', CASE WHEN g %% 2 = 0 THEN 'BUY' ELSE 'SELL' END, 'LIMIT', 'GTC',
               100 + g %% 7, 1, CASE WHEN g %% 100 = 0 OR g %% 3 = 0 THEN 0 ELSE 1 END,
               CASE WHEN g %% 100 = 0 THEN 'OPEN' WHEN g %% 3 = 0 THEN 'CANCELLED' ELSE 'FILLED' END,
               now() - g * interval '1 second', now(), g
        FROM generate_series(1, %s) AS g
        """,
        (count,),
    )
    await conn.execute("ANALYZE orders")


async def plan(conn: psycopg.AsyncConnection, query: sql.Composable | str, params: object = ()) -> str:
    explain = sql.SQL("EXPLAIN ") + (sql.SQL(query) if isinstance(query, str) else query)  # type: ignore[operator]
    return "\n".join(line for (line,) in await rows(conn, explain, params))


async def test_the_planner_uses_the_open_orders_index(repo: PostgresOrderRepository, pg: tuple[str, str]) -> None:
    conn = await connect(*pg)
    async with conn:
        await fill_orders(conn, 5000)
        typical = (
            "SELECT * FROM orders WHERE user_id = %s AND status IN ('OPEN', 'PARTIALLY_FILLED')"
            " ORDER BY id DESC LIMIT 50"
        )
        assert "orders_user_open_idx" in await plan(conn, typical, ("u0",))
        # what list_orders sends for a user's open orders, literal status and all
        statement, params = postgres.repository._Q.list_orders("u0", OrderQuery(status=OrderStatus.OPEN, limit=50))
        assert "orders_user_open_idx" in await plan(conn, statement, params)
    page = await repo.list_orders("u0", OrderQuery(status=OrderStatus.OPEN, limit=50))
    assert [o.id for o in page.items] == sorted(range(100, 5001, 100), reverse=True)[: len(page.items)]
    assert all(o.user_id == "u0" and o.status is OrderStatus.OPEN for o in page.items)


# -- statistics views ------------------------------------------------------------------


async def stats(dsn: str, schema: str) -> dict[str, tuple]:
    conn = await connect(dsn, schema)
    async with conn:
        found = await rows(
            conn, "SELECT symbol, trade_count, volume, notional, open, high, low, close FROM trading_stats_24h"
        )
    return {row[0]: row[1:] for row in found}


async def test_trading_stats_cover_the_last_24_hours(repo: PostgresOrderRepository, pg: tuple[str, str]) -> None:
    now = datetime.now(timezone.utc)
    async with repo.transaction() as uow:
        await uow.record_trades(
            [
                # ids out of time order: open/close follow created_at
                trade(1, "101.5", "2", now - timedelta(hours=3)),
                trade(2, "99.25", "0.5", now - timedelta(hours=23)),  # the open
                trade(3, "103", "1", now - timedelta(hours=1)),  # the close
                trade(4, "98", "1.5", now - timedelta(hours=12)),
                trade(5, "1000", "9", now - timedelta(hours=25)),  # too old
                trade(6, "5", "100", now - timedelta(days=3)),  # too old
                trade(7, "20.1", "3", now - timedelta(hours=2), symbol="ETH/USD"),
                trade(8, "1", "1", now - timedelta(hours=30), symbol="OLD/USD"),  # only old trades
            ]
        )
    assert await stats(*pg) == {}  # a materialized view: nothing until refreshed
    assert await refresh_statistics(*pg) == 2
    found = await stats(*pg)
    assert set(found) == {"BTC/USD", "ETH/USD"}
    count, volume, notional, open_, high, low, close = found["BTC/USD"]
    assert count == 4
    assert volume == Decimal("5")
    assert notional == Decimal("101.5") * 2 + Decimal("99.25") * Decimal("0.5") + 103 + 98 * Decimal("1.5")
    assert (open_, high, low, close) == (Decimal("99.25"), Decimal("103"), Decimal("98"), Decimal("103"))
    assert found["ETH/USD"] == (
        1,
        Decimal(3),
        Decimal("60.3"),
        Decimal("20.1"),
        Decimal("20.1"),
        Decimal("20.1"),
        Decimal("20.1"),
    )


async def test_refresh_is_concurrent_and_picks_up_new_trades(
    repo: PostgresOrderRepository, pg: tuple[str, str]
) -> None:
    dsn, schema = pg
    now = datetime.now(timezone.utc)
    async with repo.transaction() as uow:
        await uow.record_trades([trade(1, "10", "1", now - timedelta(minutes=5))])
    await refresh_statistics(dsn, schema)
    async with repo.transaction() as uow:
        await uow.record_trades([trade(2, "12", "2", now - timedelta(minutes=1))])
    reader = await connect(dsn, schema)
    async with reader:
        # A reader inside a transaction holds ACCESS SHARE on the view until it ends. A plain
        # REFRESH would wait for it (ACCESS EXCLUSIVE); the concurrent one does not.
        async with reader.transaction():
            assert await rows(reader, "SELECT trade_count FROM trading_stats_24h") == [(1,)]
            assert await asyncio.wait_for(refresh_statistics(dsn, schema), timeout=20) == 1
            # the refresh committed while the reader's transaction (and its lock) was still open
            assert await rows(reader, "SELECT trade_count FROM trading_stats_24h") == [(2,)]
        source = await rows(reader, "SELECT prosrc FROM pg_proc WHERE proname = 'refresh_trading_stats'")
        assert "CONCURRENTLY" in source[0][0]
        # callable by name from any session whose search_path holds the schema
        await reader.execute("SELECT refresh_trading_stats()")
    assert (await stats(dsn, schema))["BTC/USD"][:3] == (2, Decimal(3), Decimal(34))


async def test_refresh_statistics_of_an_unmigrated_schema_says_so(pg: tuple[str, str]) -> None:
    with pytest.raises(PersistenceError, match="tradebook db migrate"):
        await refresh_statistics(*pg)


async def test_user_order_stats(repo: PostgresOrderRepository, pg: tuple[str, str]) -> None:
    async with repo.transaction() as uow:
        await uow.create_order(order(1, status=OrderStatus.OPEN))
        await uow.create_order(order(2, status=OrderStatus.PARTIALLY_FILLED, filled_quantity=Decimal("0.5")))
        await uow.create_order(order(3, status=OrderStatus.FILLED, filled_quantity=Decimal("2"), side=Side.SELL))
        await uow.create_order(order(4, status=OrderStatus.CANCELLED, filled_quantity=Decimal("0.25")))
        await uow.create_order(order(5, status=OrderStatus.PENDING, sequence=None))
        await uow.create_order(order(6, status=OrderStatus.FILLED, filled_quantity=Decimal("2"), symbol="ETH/USD"))
        await uow.create_order(order(7, "bob", status=OrderStatus.REJECTED))
        await uow.create_order(order(8, "bob", status=OrderStatus.EXPIRED, filled_quantity=Decimal("1")))
    conn = await connect(*pg)
    async with conn:
        found = await rows(
            conn,
            "SELECT user_id, symbol, order_count, pending, open, partially_filled, filled, cancelled, rejected,"
            " expired, filled_volume, bought_volume, sold_volume FROM user_order_stats ORDER BY user_id, symbol",
        )
    assert found == [
        ("alice", "BTC/USD", 5, 1, 1, 1, 1, 1, 0, 0, Decimal("2.75"), Decimal("0.75"), Decimal("2")),
        ("alice", "ETH/USD", 1, 0, 0, 0, 1, 0, 0, 0, Decimal("2"), Decimal("2"), Decimal("0")),
        ("bob", "BTC/USD", 2, 0, 0, 0, 0, 0, 1, 1, Decimal("1"), Decimal("1"), Decimal("0")),
    ]


# -- exactness -----------------------------------------------------------------------------


async def test_numeric_round_trips_exactly(repo: PostgresOrderRepository, wallet: PostgresWallet) -> None:
    price = Decimal("12345678901234567890.123456789012345678901234567890")
    quantity = Decimal("0.000000000000000000000000000001")
    async with repo.transaction() as uow:
        await uow.create_order(order(1, price=price, quantity=quantity, filled_quantity=Decimal("0.10")))
        await uow.record_trades([trade(1, "0.30", "3", NOW)])
    stored = await repo.get_order(1)
    assert stored is not None
    assert stored.price == price and stored.price.as_tuple() == price.as_tuple()
    assert stored.quantity.as_tuple() == quantity.as_tuple()
    assert str(stored.filled_quantity) == "0.10"  # the scale is kept too
    (stored_trade,) = (await repo.list_trades()).items
    assert stored_trade.notional == Decimal("0.90")
    for _ in range(10):
        await wallet.deposit("alice", "USD", "0.1")  # ten float 0.1s make 0.9999999999999999
    assert (await wallet.balances("alice"))["USD"].available == Decimal("1")
    await wallet.reserve("alice", "USD", Decimal("0.3"), "r")
    assert await wallet.release("r", Decimal("0.1")) == Decimal("0.1")
    assert await wallet.reserved("r") == Decimal("0.2")
    assert (await wallet.balances("alice"))["USD"] == (await wallet.balances("alice"))["USD"].__class__(
        "USD", Decimal("0.8"), Decimal("0.2")
    )


async def test_timestamps_come_back_as_the_same_instants_in_utc(repo: PostgresOrderRepository) -> None:
    created = datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5)))
    async with repo.transaction() as uow:
        await uow.create_order(order(1, created_at=created, updated_at=created))
    stored = await repo.get_order(1)
    assert stored is not None
    assert stored.created_at == created
    assert stored.created_at.utcoffset() == timedelta(0)


# -- transactions and concurrency ---------------------------------------------------------


async def test_a_refused_write_leaves_the_unit_of_work_usable(repo: PostgresOrderRepository) -> None:
    async with repo.transaction() as uow:
        await uow.create_order(order(1, client_order_id="c1"))
        with pytest.raises(DuplicateOrderError, match="order id 1"):
            await uow.create_order(order(1))
        with pytest.raises(DuplicateOrderError, match="client_order_id 'c1'"):
            await uow.create_order(order(2, client_order_id="c1"))
        await uow.record_trades([trade(1, "1", "1", NOW)])
        with pytest.raises(DuplicateOrderError, match="trade id 1"):
            await uow.record_trades([trade(2, "1", "1", NOW), trade(1, "1", "1", NOW), trade(3, "1", "1", NOW)])
        await uow.create_order(order(3, client_order_id="c3"))
    assert await repo.get_order(1) == order(1, client_order_id="c1")
    assert await repo.get_order(3) == order(3, client_order_id="c3")
    # like the memory adapter: a batch with a duplicate stores none of its trades
    assert [t.id for t in (await repo.list_trades()).items] == [1]


async def test_an_exception_rolls_the_whole_transaction_back(repo: PostgresOrderRepository) -> None:
    with pytest.raises(RuntimeError):
        async with repo.transaction() as uow:
            await uow.create_order(order(1))
            await uow.record_trades([trade(1, "1", "1", NOW)])
            raise RuntimeError("boom")
    assert await repo.get_order(1) is None
    assert (await repo.list_trades()).items == []


async def test_concurrent_reserves_never_overdraw(wallet: PostgresWallet) -> None:
    await wallet.deposit("alice", "USD", 100)

    async def attempt(i: int) -> bool:
        try:
            await wallet.reserve("alice", "USD", Decimal(10), f"r{i}")
        except InsufficientBalanceError:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(25)))
    assert results.count(True) == 10
    assert (await wallet.balances("alice"))["USD"].available == 0
    assert (await wallet.balances("alice"))["USD"].reserved == 100
    # the same ref reserved by racing calls is reserved once
    await wallet.deposit("bob", "USD", 100)
    same = await asyncio.gather(*(wallet.reserve("bob", "USD", Decimal(30), "b") for _ in range(6)))
    assert {r.amount for r in same} == {Decimal(30)}
    assert (await wallet.balances("bob"))["USD"].reserved == 30


async def test_concurrent_settlements_of_one_trade_apply_once(wallet: PostgresWallet) -> None:
    await wallet.deposit("alice", "USD", 1000)
    await wallet.deposit("bob", "BTC", 10)
    await wallet.reserve("alice", "USD", Decimal(500), "buy")
    await wallet.reserve("bob", "BTC", Decimal(5), "sell")
    s = Settlement(7, "BTC", "USD", "alice", "bob", "buy", "sell", Decimal(1), Decimal(100))
    await asyncio.gather(*(wallet.settle(s) for _ in range(8)))
    assert await wallet.reserved("buy") == 400
    assert await wallet.reserved("sell") == 4
    assert await wallet.totals() == {"BTC": Decimal(10), "USD": Decimal(1000)}
    assert (await wallet.balances("alice"))["BTC"].available == 1


async def test_crossing_settlements_do_not_deadlock(wallet: PostgresWallet) -> None:
    for user in ("alice", "bob"):
        await wallet.deposit(user, "USD", 10_000)
        await wallet.deposit(user, "BTC", 100)
    for i in range(20):
        await wallet.reserve("alice", "USD", Decimal(100), f"a-buy{i}")
        await wallet.reserve("bob", "BTC", Decimal(1), f"b-sell{i}")
        await wallet.reserve("bob", "USD", Decimal(100), f"b-buy{i}")
        await wallet.reserve("alice", "BTC", Decimal(1), f"a-sell{i}")
    settlements = []
    for i in range(20):
        settlements.append(
            Settlement(2 * i, "BTC", "USD", "alice", "bob", f"a-buy{i}", f"b-sell{i}", Decimal(1), Decimal(100))
        )
        settlements.append(
            Settlement(2 * i + 1, "BTC", "USD", "bob", "alice", f"b-buy{i}", f"a-sell{i}", Decimal(1), Decimal(100))
        )
    await asyncio.wait_for(asyncio.gather(*(wallet.settle(s) for s in settlements)), timeout=60)
    assert await wallet.totals() == {"BTC": Decimal(200), "USD": Decimal(20_000)}
    for user in ("alice", "bob"):
        balances = await wallet.balances(user)
        assert balances["USD"] == balances["USD"].__class__("USD", Decimal(10_000), Decimal(0))
        assert balances["BTC"].total == 100


# -- failures ----------------------------------------------------------------------------------


async def terminate_backend_of(pool: object, dsn: str) -> None:
    """Kill the one pooled connection's server process and wait until it is gone."""
    async with pool.connection() as conn:  # type: ignore[attr-defined]
        pid = conn.info.backend_pid
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        assert await rows(admin, "SELECT pg_terminate_backend(%s)", (pid,)) == [(True,)]
        for _ in range(200):
            if not await rows(admin, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)):
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} did not exit")


async def test_a_dead_connection_is_a_persistence_error(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    repository = await PostgresOrderRepository.open(dsn, schema=schema, min_size=1, max_size=1)
    try:
        await terminate_backend_of(repository._pool, dsn)
        with pytest.raises(PersistenceError) as caught:
            await repository.get_order(1)
        assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        # the pool replaced the dead connection: the next call works
        assert await repository.get_order(1) is None

        await terminate_backend_of(repository._pool, dsn)
        with pytest.raises(PersistenceError) as caught:
            async with repository.transaction() as uow:
                await uow.create_order(order(1))
        assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        assert await repository.get_order(1) is None
        async with repository.transaction() as uow:
            await uow.create_order(order(1))
        assert await repository.get_order(1) == order(1)
    finally:
        await repository.close()


async def test_a_dead_wallet_connection_is_wallet_unavailable(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    wallet = await PostgresWallet.open(dsn, schema=schema, min_size=1, max_size=1)
    try:
        await wallet.deposit("alice", "USD", 10)
        await terminate_backend_of(wallet._pool, dsn)
        with pytest.raises(WalletUnavailableError) as caught:
            await wallet.reserve("alice", "USD", Decimal(1), "r")
        assert isinstance(caught.value.__cause__, psycopg.OperationalError)
        assert await wallet.reserved("r") == 0
        assert (await wallet.reserve("alice", "USD", Decimal(1), "r")).amount == 1
    finally:
        await wallet.close()


async def test_an_unreachable_server_fails_to_open_cleanly() -> None:
    dsn = "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2"
    with pytest.raises(PersistenceError) as caught:
        await PostgresOrderRepository.open(dsn, schema="tbtest_unreachable")
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    with pytest.raises(WalletUnavailableError):
        await PostgresWallet.open(dsn, schema="tbtest_unreachable")
    with pytest.raises(PersistenceError):
        await migrate(dsn)
    with pytest.raises(PersistenceError):
        await health_report(dsn)


async def test_closed_adapters_refuse_work_and_close_twice(pg: tuple[str, str]) -> None:
    repository = await PostgresOrderRepository.open(pg[0], schema=pg[1])
    wallet = await PostgresWallet.open(pg[0], schema=pg[1])
    await repository.close()
    await repository.close()
    await wallet.close()
    await wallet.close()
    with pytest.raises(RuntimeError, match="closed"):
        await repository.get_order(1)
    with pytest.raises(RuntimeError, match="closed"):
        async with repository.transaction():
            pass
    with pytest.raises(RuntimeError, match="closed"):
        await wallet.balances("alice")


async def test_pool_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="max_size"):
        await PostgresOrderRepository.open("postgresql://unused", min_size=5, max_size=2)
    with pytest.raises(ValueError, match="min_size"):
        await PostgresWallet.open("postgresql://unused", min_size=-1)


# -- health ------------------------------------------------------------------------------------


async def test_health_report(repo: PostgresOrderRepository, pg: tuple[str, str]) -> None:
    dsn, schema = pg
    conn = await connect(dsn, schema)
    async with conn:
        # Work from this session, then flush its statistics now (PostgreSQL would within about a second).
        await conn.execute(
            "INSERT INTO orders (id, user_id, symbol, side, type, time_in_force, price, quantity, status,"
            " created_at, updated_at) SELECT g, 'u', 'BTC/USD', 'BUY', 'LIMIT', 'GTC', 1, 1, 'OPEN', now(), now()"
            " FROM generate_series(1, 5) AS g"
        )
        await conn.execute("UPDATE orders SET status = 'CANCELLED' WHERE id = 1")  # one dead row version
        await conn.execute("SET enable_seqscan = off")
        await rows(conn, "SELECT id FROM orders WHERE id = 3")
        await conn.execute("SELECT pg_stat_force_next_flush()")
        await conn.execute("SELECT 1")
        installed = await rows(conn, "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
    report = await health_report(dsn, schema)
    assert report.schema == schema
    assert report.server_version
    by_name = {i.index: i for i in report.indexes}
    assert by_name["orders_pkey"].scans >= 1
    assert by_name["orders_pkey"].unique and by_name["orders_pkey"].table == "orders"
    assert by_name["orders_pkey"].size_bytes > 0
    assert "orders.orders_created_at_idx" in report.unused_indexes
    assert not any(name.endswith(("_pkey", "_key")) for name in report.unused_indexes)
    tables = {t.table: t for t in report.tables}
    assert {"orders", "trades", "wallet_ops", "wallet_balances", "schema_migrations"} <= set(tables)
    assert tables["orders"].total_bytes >= tables["orders"].table_bytes > 0
    assert (tables["orders"].live_rows, tables["orders"].dead_rows) == (5, 1)
    assert tables["orders"].dead_ratio == pytest.approx(1 / 6)
    if not installed:
        assert report.slow_statements is None
        assert "pg_stat_statements" in (report.statements_note or "")
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) >= {"indexes", "unused_indexes", "tables", "slow_statements", "statements_note"}


async def test_health_report_when_pg_stat_statements_is_installed_but_not_loaded(pg: tuple[str, str]) -> None:
    dsn, schema = pg
    await migrate(dsn, schema)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        if await rows(conn, "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"):
            pytest.skip("pg_stat_statements is installed in this database already")
        preload = (await rows(conn, "SHOW shared_preload_libraries"))[0][0]
        if "pg_stat_statements" in preload:
            pytest.skip("pg_stat_statements is loaded on this server")
        try:
            await conn.execute(sql.SQL("CREATE EXTENSION pg_stat_statements SCHEMA {}").format(sql.Identifier(schema)))
        except psycopg.Error as exc:
            pytest.skip(f"cannot create pg_stat_statements here: {exc}")
    try:
        report = await health_report(dsn, schema)
    finally:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
    assert report.slow_statements is None
    assert "installed but cannot be read" in (report.statements_note or "")


# -- the same answers as the memory adapters, on random command streams ----------------------


async def outcome(call: object, *args: object, **kwargs: object) -> tuple[object, ...]:
    """``("ok", result)`` or ``("err", error type, message)``."""
    try:
        return ("ok", await call(*args, **kwargs))  # type: ignore[operator]
    except Exception as exc:
        return ("err", type(exc).__name__, str(exc))


@pytest.mark.parametrize("seed", [1, 2])
async def test_wallet_answers_like_the_memory_wallet(seed: int, wallet: PostgresWallet) -> None:
    from tradebook.oms import MemoryWallet

    rng = random.Random(seed)
    memory = MemoryWallet()
    users, refs = ["a", "b", "c"], [f"r{i}" for i in range(6)]
    trade_id = 0
    for step in range(300):
        amount = rng.choice(["1", "2.5", "0.1", "10", "100", "0.0001", "0", "-1"])
        kind = rng.choice(["deposit", "reserve", "release", "release_part", "settle", "balances", "reserved"])
        if kind == "deposit":
            name, args = "deposit", (rng.choice(users), rng.choice(["BTC", "USD"]), amount)
        elif kind == "reserve":
            name, args = "reserve", (rng.choice(users), rng.choice(["BTC", "USD"]), Decimal(amount), rng.choice(refs))
        elif kind == "release":
            name, args = "release", (rng.choice(refs),)
        elif kind == "release_part":
            name, args = "release", (rng.choice(refs), Decimal(amount))
        elif kind == "settle":
            trade_id += rng.random() < 0.8  # sometimes a replay
            fees = rng.random() < 0.3
            settlement = Settlement(
                trade_id,
                "BTC",
                "USD",
                rng.choice(users),
                rng.choice(users),
                rng.choice(refs),
                rng.choice(refs),
                Decimal(rng.choice(["1", "0.5"])),
                Decimal(rng.choice(["10", "5", "1"])),
                Decimal("0.01") if fees else Decimal(0),
                Decimal("0.1") if fees else Decimal(0),
                "fees" if fees and rng.random() < 0.8 else None,
            )
            name, args = "settle", (settlement,)
        else:
            name, args = kind, ((rng.choice([*users, "fees"]),) if kind == "balances" else (rng.choice(refs),))
        expected = await outcome(getattr(memory, name), *args)
        assert await outcome(getattr(wallet, name), *args) == expected, (step, name, args)
    assert await wallet.totals() == await memory.totals()


@pytest.mark.parametrize("seed", [1, 2])
async def test_repository_answers_like_the_memory_repository(seed: int, repo: PostgresOrderRepository) -> None:
    from tradebook.oms import MemoryOrderRepository, Release, WalletOp

    rng = random.Random(seed)
    memory = MemoryOrderRepository()
    users, symbols = ["a", "b"], ["X/Y", "Z/Y"]

    def at() -> datetime:
        return NOW + timedelta(seconds=rng.randint(0, 100))

    def command() -> tuple[str, tuple[object, ...], dict[str, object]]:
        kind = rng.choice(["create", "update", "cancel", "delete", "trades", "ops", "done"])
        order_id = rng.randint(1, 15)
        if kind == "create":
            record = order(
                order_id,
                rng.choice(users),
                symbol=rng.choice(symbols),
                side=rng.choice(list(Side)),
                status=rng.choice(list(OrderStatus)),
                created_at=at(),
                client_order_id=rng.choice([None, "c1", "c2"]),
                sequence=rng.choice([None, rng.randint(1, 50)]),
            )
            return "create_order", (record,), {}
        if kind == "update":
            changes = {
                "status": rng.choice(list(OrderStatus)),
                "filled_quantity": Decimal(rng.choice(["0", "1", "2"])),
                "updated_at": at(),
                "sequence": rng.choice([None, rng.randint(1, 50)]),
            }
            return "update_order", (order_id,), changes
        if kind == "cancel":
            return "cancel_order", (order_id,), {"updated_at": at()}
        if kind == "delete":
            return "delete_order", (order_id,), {}
        if kind == "trades":
            count = rng.randint(1, 3)
            trades = [trade(rng.randint(1, 20), "1.5", "2", at(), rng.choice(symbols)) for _ in range(count)]
            return "record_trades", (trades,), {}
        if kind == "ops":
            ops = [
                WalletOp(rng.randint(1, 10), rng.choice(symbols), Release(str(rng.randint(1, 5)), Decimal("1.5")))
                for _ in range(rng.randint(1, 2))
            ]
            return "add_wallet_ops", (ops,), {}
        return "mark_wallet_ops_done", ([rng.randint(1, 10) for _ in range(2)],), {}

    async def apply(target: object, commands: list, roll_back: bool) -> list[object]:
        results: list[object] = []
        try:
            async with target.transaction() as uow:  # type: ignore[attr-defined]
                for name, args, kwargs in commands:
                    results.append(await outcome(getattr(uow, name), *args, **kwargs))
                if roll_back:
                    raise LookupError("roll back")
        except LookupError:
            results.append("rolled back")
        return results

    for step in range(120):
        commands = [command() for _ in range(rng.randint(1, 4))]
        roll_back = rng.random() < 0.2
        expected = await apply(memory, commands, roll_back)
        assert await apply(repo, commands, roll_back) == expected, (step, commands)
        query = OrderQuery(
            symbol=rng.choice([None, *symbols]),
            status=rng.choice([None, *OrderStatus]),
            side=rng.choice([None, Side.BUY]),
            since=rng.choice([None, NOW + timedelta(seconds=50)]),
            until=rng.choice([None, NOW + timedelta(seconds=70)]),
            limit=rng.choice([1, 3, 100]),
            cursor=rng.choice([None, "10", "5"]),
        )
        trades_filter = {
            "symbol": rng.choice([None, *symbols]),
            "user_id": rng.choice([None, *users]),
            "limit": rng.choice([1, 2, 100]),
            "cursor": rng.choice([None, "10"]),
        }
        reads: list[tuple[str, tuple[object, ...], dict[str, object]]] = [
            ("get_order", (rng.randint(1, 15),), {}),
            ("get_order_by_client_id", (rng.choice(users), rng.choice(["c1", "c2"])), {}),
            ("list_orders", (rng.choice(users), query), {}),
            ("active_orders", (rng.choice(symbols),), {}),
            ("pending_orders", (), {}),
            ("list_trades", (), trades_filter),
            ("pending_wallet_ops", (), {}),
            ("last_ids", (), {}),
        ]
        for name, args, kwargs in reads:
            expected_read = await outcome(getattr(memory, name), *args, **kwargs)
            assert await outcome(getattr(repo, name), *args, **kwargs) == expected_read, (step, name, args, kwargs)
