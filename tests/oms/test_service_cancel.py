"""OrderService.cancel_order: owner only, conflicts for orders no longer active, exact release."""

from __future__ import annotations

import asyncio

import pytest
from _service_support import DEPOSITS, D, FailingRepository, book_orders, service_env

from tradebook import (
    InvalidRequestError,
    LevelSnapshot,
    OrderConflictError,
    OrderNotFoundError,
    OrderStatus,
    PersistenceError,
)

S = "BTC/USDT"
USDT0, BTC0 = DEPOSITS["USDT"], DEPOSITS["BTC"]


@pytest.fixture
async def env():
    async with service_env() as e:
        yield e
        await e.check()


async def test_cancel_an_open_buy_releases_its_reservation(env):
    order = await env.service.place_order("bob", S, "BUY", "2", "100.5")
    cancelled = await env.service.cancel_order("bob", order.id)
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.id == order.id
    assert (await env.repo.get_order(order.id)).status is OrderStatus.CANCELLED
    assert await env.balance("bob", "USDT") == (USDT0, 0)
    assert env.service.depth(S).bids == []
    assert order.id not in book_orders(env.service, S)


async def test_cancel_releases_exactly_the_remaining_reservation_of_a_partly_filled_buy(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    order = await env.service.place_order("bob", S, "BUY", "3", "100")
    assert await env.balance("bob", "USDT") == (USDT0 - 300, D("200"))
    cancelled = await env.service.cancel_order("bob", order.id)
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.filled_quantity == D("1")
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)
    assert await env.balance("bob", "BTC") == (BTC0 + 1, 0)


async def test_cancel_after_price_improvement_releases_the_limit_cost_of_the_remainder(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    order = await env.service.place_order("bob", S, "BUY", "2", "105")
    assert await env.balance("bob", "USDT") == (USDT0 - 205, D("105"))
    await env.service.cancel_order("bob", order.id)
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)


async def test_cancel_a_partly_filled_sell_releases_the_rest_of_its_quantity(env):
    order = await env.service.place_order("alice", S, "SELL", "3", "100")
    await env.service.place_order("bob", S, "BUY", "1.25", "100")
    await env.service.cancel_order("alice", order.id)
    assert await env.balance("alice", "BTC") == (BTC0 - D("1.25"), 0)
    assert await env.balance("alice", "USDT") == (USDT0 + 125, 0)


async def test_cancel_keeps_the_other_orders_of_the_level_in_order(env):
    a = await env.service.place_order("alice", S, "SELL", "1", "100")
    b = await env.service.place_order("carol", S, "SELL", "2", "100")
    c = await env.service.place_order("alice", S, "SELL", "3", "100")
    await env.service.cancel_order("carol", b.id)
    assert env.service.depth(S).asks == [LevelSnapshot(D("100"), D("4"), 2)]
    placed = await env.service.place("bob", S, "BUY", "2", "100")
    assert [t.sell_order_id for t in placed.trades] == [a.id, c.id]


async def test_another_users_order_is_not_found_and_stays(env):
    order = await env.service.place_order("bob", S, "BUY", "1", "100")
    before = await env.snapshot()
    with pytest.raises(OrderNotFoundError) as caught:
        await env.service.cancel_order("alice", order.id)
    assert caught.value.code == "order_not_found"
    assert await env.snapshot() == before


async def test_another_users_finished_order_is_not_found_either(env):
    order = await env.service.place_order("bob", S, "BUY", "1", "100")
    await env.service.cancel_order("bob", order.id)
    with pytest.raises(OrderNotFoundError):
        await env.service.cancel_order("alice", order.id)


@pytest.mark.parametrize("order_id", [999, 0, -1, 2**63, "1", None, True, 1.0])
async def test_unknown_or_malformed_ids_are_not_found(env, order_id):
    await env.service.place_order("bob", S, "BUY", "1", "100")  # id 1 exists
    before = await env.snapshot()
    with pytest.raises(OrderNotFoundError):
        await env.service.cancel_order("bob", order_id)
    assert await env.snapshot() == before


@pytest.mark.parametrize("user", ["", None, "a\nb", 5])
async def test_bad_user_id(env, user):
    order = await env.service.place_order("bob", S, "BUY", "1", "100")
    with pytest.raises(InvalidRequestError):
        await env.service.cancel_order(user, order.id)
    assert (await env.repo.get_order(order.id)).status is OrderStatus.OPEN


async def conflict(env, user: str, order_id: int, status: OrderStatus) -> None:
    before = await env.snapshot()
    with pytest.raises(OrderConflictError) as caught:
        await env.service.cancel_order(user, order_id)
    assert caught.value.code == "order_conflict"
    assert status.value in str(caught.value)
    assert not isinstance(caught.value, (ValueError, KeyError))
    assert await env.snapshot() == before


async def test_cancel_of_a_filled_order_is_a_conflict(env):
    order = await env.service.place_order("alice", S, "SELL", "1", "100")
    await env.service.place_order("bob", S, "BUY", "1", "100")
    await conflict(env, "alice", order.id, OrderStatus.FILLED)


async def test_cancel_of_a_filled_taker_is_a_conflict(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    taker = await env.service.place_order("bob", S, "BUY", "1", "100")
    await conflict(env, "bob", taker.id, OrderStatus.FILLED)


async def test_cancel_twice_is_a_conflict(env):
    order = await env.service.place_order("bob", S, "BUY", "1", "100")
    await env.service.cancel_order("bob", order.id)
    await conflict(env, "bob", order.id, OrderStatus.CANCELLED)


async def test_cancel_of_an_expired_order_is_a_conflict(env):
    ioc = await env.service.place_order("bob", S, "BUY", "1", "100", time_in_force="IOC")
    assert ioc.status is OrderStatus.EXPIRED
    await conflict(env, "bob", ioc.id, OrderStatus.EXPIRED)
    market = await env.service.place_order("bob", S, "SELL", "1", type="MARKET")
    await conflict(env, "bob", market.id, OrderStatus.EXPIRED)


async def test_cancel_of_a_rejected_order_is_a_conflict(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    rejected = await env.service.place_order("bob", S, "BUY", "1", "100", post_only=True)
    assert rejected.status is OrderStatus.REJECTED
    await conflict(env, "bob", rejected.id, OrderStatus.REJECTED)


async def test_cancel_of_a_maker_filled_while_the_cancel_waited_for_the_lock_is_a_conflict(env):
    order = await env.service.place_order("alice", S, "SELL", "1", "100")
    gate = env.wallet.gate("bob")
    fill = asyncio.ensure_future(env.service.place_order("bob", S, "BUY", "1", "100"))
    await env.wallet.waiting["bob"].wait()  # the buy holds the symbol's lock, inside its reservation
    cancel = asyncio.ensure_future(env.service.cancel_order("alice", order.id))
    await asyncio.sleep(0.01)
    assert not cancel.done()  # the cancel waits for the lock
    gate.set()
    assert (await fill).status is OrderStatus.FILLED
    with pytest.raises(OrderConflictError, match="FILLED"):
        await cancel
    assert await env.balance("alice", "USDT") == (USDT0 + 100, 0)


async def test_concurrent_cancels_of_one_order_succeed_once(env):
    order = await env.service.place_order("bob", S, "BUY", "1", "100")
    results = await asyncio.gather(
        *(env.service.cancel_order("bob", order.id) for _ in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, OrderConflictError) for r in results) == 4
    assert [args for args in env.wallet.called("release") if args[0] == str(order.id)] == [(str(order.id), None)]
    assert await env.balance("bob", "USDT") == (USDT0, 0)


async def test_a_cancel_that_cannot_be_stored_is_a_persistence_error_and_keeps_the_order():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        order = await env.service.place_order("bob", S, "BUY", "1", "100")
        await env.service.place_order("alice", S, "SELL", "1", "101")
        before = await env.snapshot()
        repo.fail_on = "cancel_order"
        with pytest.raises(PersistenceError) as caught:
            await env.service.cancel_order("bob", order.id)
        assert caught.value.code == "persistence_error"
        assert repo.failures == 1
        assert await env.snapshot() == before
        assert order.id in book_orders(env.service, S)
        # and the order still works: it fills, then cancels normally
        cancelled = await env.service.cancel_order("bob", order.id)
        assert cancelled.status is OrderStatus.CANCELLED
        await env.check()
