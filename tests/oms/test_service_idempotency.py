"""Idempotent placement on (user, client_order_id): a repeat returns the original order and does nothing else."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from _service_support import DEPOSITS, D, SpyWallet, service_env

from tradebook import DuplicateOrderError, InsufficientBalanceError, OrderStatus, OrderType, Side, TimeInForce
from tradebook.oms import MemoryOrderRepository, OrderRecord, OrderService

S = "BTC/USDT"
USDT0 = DEPOSITS["USDT"]


@pytest.fixture
async def env():
    async with service_env() as e:
        yield e
        await e.check()


async def test_a_repeat_returns_the_original_and_reserves_nothing_more(env):
    first = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="order-1")
    assert first.replayed is False
    reserves = len(env.wallet.called("reserve"))
    before = await env.snapshot()
    again = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="order-1")
    assert again.replayed is True and again.trades == ()
    assert again.order == first.order
    assert len(env.wallet.called("reserve")) == reserves
    assert await env.snapshot() == before
    assert await env.balance("bob", "USDT") == (USDT0 - 100, D("100"))


async def test_a_repeat_of_a_filled_order_makes_no_trade(env):
    await env.service.place_order("alice", S, "SELL", "5", "100")
    first = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="x")
    assert first.order.status is OrderStatus.FILLED and len(first.trades) == 1
    before = await env.snapshot()
    again = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="x")
    assert again.replayed is True and again.trades == ()
    assert again.order.id == first.order.id and again.order.status is OrderStatus.FILLED
    assert await env.snapshot() == before
    assert len((await env.service.list_trades(symbol=S)).items) == 1


async def test_a_repeat_with_other_terms_still_returns_the_original(env):
    first = await env.service.place_order("bob", S, "BUY", "1", "100", client_order_id="k")
    before = await env.snapshot()
    again = await env.service.place("bob", S, "SELL", "3", type="MARKET", client_order_id="k")
    assert again.replayed is True and again.order == first
    assert await env.snapshot() == before


async def test_a_repeat_returns_the_order_in_its_current_state(env):
    first = await env.service.place_order("bob", S, "BUY", "2", "100", client_order_id="k")
    await env.service.place_order("alice", S, "SELL", "1", "100")
    again = await env.service.place("bob", S, "BUY", "2", "100", client_order_id="k")
    assert again.replayed is True and again.order.id == first.id
    assert again.order.status is OrderStatus.PARTIALLY_FILLED and again.order.filled_quantity == D("1")


async def test_a_repeat_of_a_cancelled_order_does_not_place_it_again(env):
    first = await env.service.place_order("bob", S, "BUY", "1", "100", client_order_id="k")
    await env.service.cancel_order("bob", first.id)
    again = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="k")
    assert again.replayed is True and again.order.status is OrderStatus.CANCELLED
    assert env.service.depth(S).bids == []
    assert await env.balance("bob", "USDT") == (USDT0, 0)


async def test_twenty_concurrent_repeats_make_one_order_and_one_reservation(env):
    env.wallet.interleave = True  # the wallet yields on every call: the requests really overlap
    results = await asyncio.gather(
        *(env.service.place("bob", S, "BUY", "1", "100", client_order_id="burst") for _ in range(20))
    )
    ids = {r.order.id for r in results}
    assert len(ids) == 1
    assert sum(not r.replayed for r in results) == 1
    assert sum(r.replayed for r in results) == 19
    (order_id,) = ids
    assert [args for args in env.wallet.called("reserve") if args[0] == "bob"] == [
        ("bob", "USDT", D("100"), str(order_id))
    ]
    page = await env.service.list_orders("bob")
    assert [o.id for o in page.items] == [order_id]
    assert await env.balance("bob", "USDT") == (USDT0 - 100, D("100"))


async def test_twenty_concurrent_crossing_repeats_make_one_trade(env):
    await env.service.place_order("alice", S, "SELL", "10", "100")
    env.wallet.interleave = True
    results = await asyncio.gather(
        *(env.service.place("bob", S, "BUY", "1", "100", client_order_id="burst") for _ in range(20))
    )
    assert sum(len(r.trades) for r in results) == 1
    assert all(r.order.status is OrderStatus.FILLED for r in results if not r.replayed)
    assert len((await env.service.list_trades(symbol=S)).items) == 1
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)
    assert await env.balance("bob", "BTC") == (DEPOSITS["BTC"] + 1, 0)


async def test_concurrent_repeats_that_are_all_refused_leave_nothing():
    async with service_env(deposits={"USDT": D("50")}) as env:
        results = await asyncio.gather(
            *(env.service.place("bob", S, "BUY", "1", "100", client_order_id="k") for _ in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(r, InsufficientBalanceError) for r in results)
        assert (await env.service.list_orders("bob")).items == []
        await env.ledger.deposit("bob", "USDT", 100)
        env.initial_totals = await env.ledger.totals()
        placed = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="k")
        assert placed.replayed is False and placed.order.status is OrderStatus.OPEN
        await env.check()


async def test_the_same_client_order_id_for_two_users_is_two_orders(env):
    a = await env.service.place("alice", S, "BUY", "1", "100", client_order_id="same")
    b = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="same")
    assert a.replayed is b.replayed is False
    assert a.order.id != b.order.id
    assert env.service.depth(S).bids[0].order_count == 2
    assert await env.balance("alice", "USDT") == await env.balance("bob", "USDT") == (USDT0 - 100, D("100"))


async def test_concurrent_placements_of_two_users_with_one_client_order_id(env):
    results = await asyncio.gather(
        *(env.service.place(user, S, "BUY", "1", "100", client_order_id="same") for user in ("alice", "bob") * 5)
    )
    assert len({r.order.id for r in results}) == 2
    assert sum(not r.replayed for r in results) == 2


async def test_orders_without_a_client_order_id_are_never_replays(env):
    a = await env.service.place("bob", S, "BUY", "1", "100")
    b = await env.service.place("bob", S, "BUY", "1", "100")
    assert a.order.id != b.order.id and not a.replayed and not b.replayed


async def test_a_repeat_after_a_restart_returns_the_original(env):
    first = await env.service.place_order("bob", S, "BUY", "1", "100", client_order_id="k")
    await env.service.close()
    async with OrderService(env.repo, env.wallet, env.instruments) as again:
        env.service = again
        replay = await again.place("bob", S, "BUY", "1", "100", client_order_id="k")
        assert replay.replayed is True and replay.order == first
        await env.check()


async def test_an_order_id_taken_by_another_writer_is_a_duplicate_and_leaves_nothing():
    """One service must own a repository; if another writer takes the next id anyway, the
    placement fails with DuplicateOrderError and reserves nothing."""
    repo = MemoryOrderRepository()
    async with service_env(repo=repo, wallet=SpyWallet()) as env:
        now = datetime(2030, 1, 1, tzinfo=timezone.utc)
        for order_id, cid in ((1, None), (2, "theirs")):
            intruder = OrderRecord(
                id=order_id,
                user_id="mallory",
                symbol=S,
                side=Side.BUY,
                type=OrderType.LIMIT,
                time_in_force=TimeInForce.GTC,
                price=D("1"),
                quantity=D("1"),
                filled_quantity=D("0"),
                status=OrderStatus.CANCELLED,
                created_at=now,
                updated_at=now,
                client_order_id=cid,
            )
            async with repo.transaction() as uow:
                await uow.create_order(intruder)
        with pytest.raises(DuplicateOrderError):
            await env.service.place("bob", S, "BUY", "1", "100")
        with pytest.raises(DuplicateOrderError):
            await env.service.place("bob", S, "BUY", "1", "100", client_order_id="mine")
        assert env.wallet.called("reserve") == []
        assert (await env.service.list_orders("bob")).items == []
        placed = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="mine")
        assert placed.order.id == 3 and placed.replayed is False
        await env.check()
