"""The PostgreSQL adapters' statement budget, and their transactions when cancelled.

On PostgreSQL a placement costs what its round trips cost (client CPU in psycopg
and asyncio, a wake-up of the server, a commit): each wallet call is one
statement (the functions of migration 0003), and a unit of work sends ``BEGIN``
with its first statement and ``COMMIT`` alone, the outbox entries marked done
going out with it. These tests pin that budget, so that a change adding
statements shows here and not only in ``benchmarks/report.py service``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from tradebook import DuplicateOrderError, InsufficientBalanceError, OrderStatus, OrderType, Side, TimeInForce
from tradebook.oms import OrderRecord, Release, Settlement, TradeRecord, WalletOp

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402

from tradebook.oms import postgres  # noqa: E402
from tradebook.oms.postgres import PostgresOrderRepository, PostgresWallet  # noqa: E402

pytestmark = pytest.mark.postgres

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def begin() -> int:
    """The round trip ``BEGIN`` takes of its own: none in a pipeline (libpq 14 or later)."""
    return 0 if postgres.repository._PIPELINE else 1


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts what the adapters send: ``statements`` (one each, ``BEGIN`` included) and ``round_trips``.

    Statements queued in a pipeline share its one round trip.
    """
    counts: Counter[str] = Counter()
    in_pipeline: set[int] = set()
    execute = psycopg.AsyncCursor.execute
    commit = psycopg.AsyncConnection.commit
    pipeline = psycopg.AsyncConnection.pipeline

    async def counted_execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        counts["statements"] += 1
        if id(self.connection) not in in_pipeline:
            counts["round_trips"] += 1
        return await execute(self, query, params, **kwargs)

    async def counted_commit(self: Any) -> None:
        if self.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            counts["statements"] += 1
            counts["round_trips"] += 1
        await commit(self)

    def counted_pipeline(self: Any) -> Any:
        context = pipeline(self)

        class Counted:
            async def __aenter__(self_: Any) -> Any:
                counts["round_trips"] += 1
                in_pipeline.add(id(self))
                return await context.__aenter__()

            async def __aexit__(self_: Any, *exc: Any) -> Any:
                in_pipeline.discard(id(self))
                return await context.__aexit__(*exc)

        return Counted()

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted_execute)
    monkeypatch.setattr(psycopg.AsyncConnection, "commit", counted_commit)
    monkeypatch.setattr(psycopg.AsyncConnection, "pipeline", counted_pipeline)
    return counts


def order(order_id: int, **changes: Any) -> OrderRecord:
    base = OrderRecord(
        id=order_id,
        user_id="alice",
        symbol="BTC/USD",
        side=Side.BUY,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price=Decimal("100.5"),
        quantity=Decimal("2"),
        filled_quantity=Decimal(0),
        status=OrderStatus.PENDING,
        created_at=NOW,
        updated_at=NOW,
    )
    return base.replace(**changes)


def trade(trade_id: int) -> TradeRecord:
    return TradeRecord(trade_id, "BTC/USD", Decimal("100.5"), Decimal("0.5"), 1, 2, "alice", "bob", Side.BUY, NOW)


def release(op_id: int) -> WalletOp:
    return WalletOp(op_id, "BTC/USD", Release(str(op_id), Decimal("0.5")))


def taken(counts: Counter[str]) -> tuple[int, int]:
    """``(statements, round_trips)`` since the last call, and start counting afresh."""
    result = (counts["statements"], counts["round_trips"])
    counts.clear()
    return result


# -- the budget ----------------------------------------------------------------------------------


async def test_each_wallet_call_is_one_statement(wallet: PostgresWallet, sent: Counter[str]) -> None:
    await wallet.deposit("alice", "USD", 1000)
    await wallet.deposit("bob", "BTC", 10)
    taken(sent)
    await wallet.reserve("alice", "USD", Decimal(200), "buy")
    assert taken(sent) == (1, 1)
    await wallet.reserve("bob", "BTC", Decimal(5), "sell")
    await wallet.reserve("bob", "BTC", Decimal(5), "sell")  # a retry: still one statement
    assert taken(sent) == (2, 2)
    with pytest.raises(InsufficientBalanceError):
        await wallet.reserve("alice", "USD", Decimal(801), "too-much")
    assert taken(sent) == (1, 1)
    await wallet.settle(Settlement(1, "BTC", "USD", "alice", "bob", "buy", "sell", Decimal(1), Decimal(100)))
    await wallet.settle(Settlement(1, "BTC", "USD", "alice", "bob", "buy", "sell", Decimal(1), Decimal(100)))
    assert taken(sent) == (2, 2)
    with pytest.raises(InsufficientBalanceError):
        await wallet.settle(Settlement(2, "BTC", "USD", "alice", "bob", "buy", "sell", Decimal(1), Decimal(101)))
    assert taken(sent) == (1, 1)
    assert await wallet.release("buy", Decimal(50)) == 50
    assert await wallet.release("buy") == 50
    assert await wallet.release("missing") == 0
    assert taken(sent) == (3, 3)
    assert await wallet.reserved("sell") == 4
    assert taken(sent) == (1, 1)


async def test_a_unit_of_work_sends_begin_with_its_first_statement(
    repo: PostgresOrderRepository, sent: Counter[str]
) -> None:
    async with repo.transaction() as uow:
        await uow.create_order(order(1))
    assert taken(sent) == (3, 2 + begin())  # BEGIN + INSERT in one round trip, COMMIT
    async with repo.transaction() as uow:
        await uow.update_order(1, status=OrderStatus.OPEN, filled_quantity=Decimal(0), updated_at=NOW, sequence=1)
        await uow.record_trades([trade(1), trade(2), trade(3)])  # one statement however many
        await uow.add_wallet_ops([release(1), release(2)])
    assert taken(sent) == (5, 4 + begin())
    async with repo.transaction() as uow:
        await uow.mark_wallet_ops_done([1])
        await uow.create_order(order(2))
    assert taken(sent) == (3, 2 + begin())  # the DELETE of the outbox rows goes with COMMIT
    async with repo.transaction() as uow:
        await uow.mark_wallet_ops_done([2])
    assert taken(sent) == (1, 1)  # nothing else written: one autocommit DELETE
    async with repo.transaction():
        pass
    assert taken(sent) == (0, 0)
    assert await repo.pending_wallet_ops() == []
    assert [t.id for t in (await repo.list_trades()).items] == [3, 2, 1]


@pytest.mark.parametrize("size", [1, 32, 33, 200])  # multi-row VALUES up to 32 rows, unnest() beyond
async def test_a_batch_of_any_size_is_one_statement_and_all_or_nothing(
    repo: PostgresOrderRepository, sent: Counter[str], size: int
) -> None:
    async with repo.transaction() as uow:
        await uow.record_trades([trade(n) for n in range(1, size + 1)])
        await uow.add_wallet_ops([release(n) for n in range(1, size + 1)])
    assert taken(sent) == (4, 3 + begin())
    assert [t.id for t in (await repo.list_trades(limit=1000)).items] == list(range(size, 0, -1))
    assert (await repo.list_trades(limit=1)).items == [trade(size)]
    assert await repo.pending_wallet_ops() == [release(n) for n in range(1, size + 1)]
    async with repo.transaction() as uow:
        fresh = [trade(n) for n in range(size + 1, 2 * size + 1)]
        with pytest.raises(DuplicateOrderError, match=f"trade id {size} already"):
            await uow.record_trades([*fresh, trade(size), trade(size + 1)])
        with pytest.raises(DuplicateOrderError, match=f"trade id {2 * size} already"):
            await uow.record_trades([*fresh, trade(2 * size)])  # repeated within the batch
        with pytest.raises(DuplicateOrderError, match="wallet operation id 1 already"):
            await uow.add_wallet_ops([release(n) for n in range(size + 1, 2 * size + 1)] + [release(1)])
        await uow.record_trades(fresh)  # the refused batches left nothing behind
    assert [t.id for t in (await repo.list_trades(limit=1000)).items] == list(range(2 * size, 0, -1))
    assert [op.id for op in await repo.pending_wallet_ops()] == list(range(1, size + 1))


async def test_a_refused_duplicate_costs_a_round_trip_more_and_rolls_back(
    repo: PostgresOrderRepository, sent: Counter[str]
) -> None:
    async with repo.transaction() as uow:
        await uow.create_order(order(1, client_order_id="c"))
    taken(sent)
    with pytest.raises(DuplicateOrderError):
        async with repo.transaction() as uow:
            await uow.create_order(order(2, client_order_id="c"))
    assert taken(sent) == (4, 3 + begin())  # BEGIN + INSERT, which of the keys was taken, ROLLBACK
    assert await repo.get_order(2) is None
    async with repo.transaction() as uow:
        await uow.create_order(order(2, client_order_id="d"))
    assert (await repo.get_order(2)) == order(2, client_order_id="d")


# -- cancellation and the functions' search_path ---------------------------------------------------


async def test_a_cancelled_unit_of_work_rolls_back_and_the_pool_recovers(repo: PostgresOrderRepository) -> None:
    async with repo.transaction() as uow:
        await uow.create_order(order(1, status=OrderStatus.OPEN, sequence=1))
    holding = asyncio.Event()
    finish = asyncio.Event()

    async def holder() -> None:
        async with repo.transaction() as uow:
            await uow.update_order(1, status=OrderStatus.OPEN, filled_quantity=Decimal("0.5"), updated_at=NOW)
            holding.set()
            await finish.wait()

    async def victim() -> None:
        async with repo.transaction() as uow:
            await uow.create_order(order(2))
            await uow.update_order(1, status=OrderStatus.CANCELLED, filled_quantity=Decimal(0), updated_at=NOW)

    holding_task = asyncio.create_task(holder())
    await asyncio.wait_for(holding.wait(), 10)
    victim_task = asyncio.create_task(victim())
    await asyncio.sleep(0.2)  # the victim now waits for the holder's row lock, its query in flight
    victim_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim_task
    finish.set()
    await asyncio.wait_for(holding_task, 10)
    assert await repo.get_order(2) is None
    got = await repo.get_order(1)
    assert got is not None and (got.status, got.filled_quantity) == (OrderStatus.OPEN, Decimal("0.5"))
    for n in range(3, 13):  # more transactions than the pool had idle: it replaced what it lost
        async with repo.transaction() as uow:
            await uow.create_order(order(n))
    assert [o.id for o in await repo.pending_orders()] == list(range(3, 13))


async def test_the_wallet_functions_work_from_any_search_path(wallet: PostgresWallet, pg: tuple[str, str]) -> None:
    await wallet.deposit("alice", "USD", 10)
    await wallet.reserve("alice", "USD", Decimal(4), "r")
    async with await psycopg.AsyncConnection.connect(pg[0], autocommit=True) as conn:  # search_path: the default
        cur = await conn.execute(
            sql.SQL("SELECT {}(%s, %s::numeric)").format(sql.Identifier(pg[1], "tb_release")), ("r", Decimal(1))
        )
        assert await cur.fetchall() == [(Decimal(1),)]
    assert await wallet.reserved("r") == 3
    assert (await wallet.balances("alice"))["USD"].available == 7
