"""OrderService.market_feed and user_feed: snapshot then gap-free updates, bounded buffers, resync, privacy."""

from __future__ import annotations

import asyncio

import pytest
from _service_support import D, FailingRepository, service_env

from tradebook import MarketDataUpdate, MarketSnapshot, PersistenceError
from tradebook.oms import MemoryOrderRepository, OrderRecord, TradeRecord, UserFeedResync

S = "BTC/USDT"


@pytest.fixture
async def env():
    async with service_env() as e:
        yield e
        await e.check()


def apply(book: dict, update: MarketDataUpdate) -> None:
    """An L3 consumer (docs/engine.md): the visible resting orders by id."""
    for e in update.orders:
        if e.kind == "ADD":
            book[e.order_id] = e
        elif e.kind == "DELETE":
            del book[e.order_id]
        else:
            left = e.quantity if e.kind == "MODIFY" else book[e.order_id].quantity - e.quantity
            book[e.order_id] = book[e.order_id]._replace(quantity=left)
            if not left:
                del book[e.order_id]


async def drain(feed, count: int) -> list:
    return [await asyncio.wait_for(feed.__anext__(), 1) for _ in range(count)]


async def test_a_snapshot_then_every_update_in_seq_order(env):
    await env.service.place_order("alice", S, "SELL", "1", "101")
    async with env.service.market_feed(S) as feed:
        (snap,) = await drain(feed, 1)
        assert isinstance(snap, MarketSnapshot) and [e.price for e in snap.orders] == [D("101")]
        await env.service.place_order("bob", S, "BUY", "2", "101")
        order = await env.service.place_order("carol", S, "SELL", "1", "105")
        await env.service.amend_order("carol", order.id, price="104")
        await env.service.cancel_order("bob", (await env.service.list_orders("bob")).items[0].id)
        updates = await drain(feed, 4)
        assert [u.seq for u in updates] == [snap.seq + 1 + i for i in range(4)]
        book = {e.order_id: e for e in snap.orders}
        for update in updates:
            apply(book, update)
        assert list(book.values()) == env.service._engines[S].market_snapshot(S).orders
        assert updates[0].trades and updates[0].trades[0].price == D("101")
    assert feed.closed and S not in env.service._market_feeds


async def test_an_overflowing_feed_resyncs_and_never_blocks_placements(env):
    slow = env.service.market_feed(S, max_queue=3)
    fast = env.service.market_feed(S)
    assert isinstance(await slow.__anext__(), MarketSnapshot)
    assert isinstance(await fast.__anext__(), MarketSnapshot)
    for i in range(10):
        await env.service.place_order("alice", S, "BUY", "1", str(90 + i))
    assert slow.drops == 1 and fast.drops == 0
    resync = await slow.__anext__()
    assert isinstance(resync, MarketSnapshot) and len(resync.orders) == 10
    assert [u.seq for u in await drain(fast, 10)] == list(range(resync.seq - 9, resync.seq + 1))
    await env.service.place_order("alice", S, "BUY", "1", "80")
    assert (await slow.__anext__()).seq == resync.seq + 1
    slow.close()
    fast.close()


async def test_a_rebuilt_book_resyncs_its_feeds():
    repo = FailingRepository(MemoryOrderRepository())
    async with service_env(repo=repo) as env:
        await env.service.place_order("alice", S, "BUY", "1", "100")
        feed = env.service.market_feed(S)
        await feed.__anext__()
        repo.fail_on = "update_order"
        with pytest.raises(PersistenceError):
            await env.service.place_order("bob", S, "BUY", "1", "99")
        snap = await asyncio.wait_for(feed.__anext__(), 1)
        assert isinstance(snap, MarketSnapshot) and [e.price for e in snap.orders] == [D("100")]
        await env.service.place_order("bob", S, "BUY", "1", "98")
        update = await asyncio.wait_for(feed.__anext__(), 1)
        assert update.seq == snap.seq + 1 and update.orders[0].price == D("98")
        feed.close()


async def test_closing_the_service_ends_the_feeds():
    async with service_env() as env:
        market = env.service.market_feed(S)
        user = env.service.user_feed("alice")
        await market.__anext__()
        waiting = asyncio.ensure_future(user.__anext__())
        await asyncio.sleep(0)
    with pytest.raises(StopAsyncIteration):
        await waiting
    with pytest.raises(StopAsyncIteration):
        await market.__anext__()
    assert [item async for item in user] == []


async def test_a_user_sees_only_their_own_orders_and_trades(env):
    alice = env.service.user_feed("alice")
    bob = env.service.user_feed("bob")
    ask = await env.service.place_order("alice", S, "SELL", "2", "100")
    await env.service.place_order("carol", S, "BUY", "1", "100")
    await env.service.amend_order("alice", ask.id, quantity="1.5")
    await env.service.cancel_order("alice", ask.id)
    items = await drain(alice, 5)
    assert [(type(i).__name__, getattr(i, "status", None)) for i in items] == [
        ("OrderRecord", ask.status),
        ("OrderRecord", ask.status.PARTIALLY_FILLED),
        ("TradeRecord", None),
        ("OrderRecord", ask.status.PARTIALLY_FILLED),
        ("OrderRecord", ask.status.CANCELLED),
    ]
    assert all((isinstance(i, OrderRecord) and i.user_id == "alice") or isinstance(i, TradeRecord) for i in items)
    assert alice._items == deque_empty() and bob._items == deque_empty()
    alice.close()
    bob.close()
    assert env.service._user_feeds == {}


def deque_empty():
    from collections import deque

    return deque()


async def test_a_user_feed_overflow_says_resync(env):
    async with env.service.user_feed("alice", max_queue=2) as feed:
        for i in range(3):
            await env.service.place_order("alice", S, "BUY", "1", str(90 + i))
        marker = await feed.__anext__()
        assert isinstance(marker, UserFeedResync) and marker.drops == 1 and "drops=1" in repr(marker)
        await env.service.place_order("alice", S, "BUY", "1", "80")
        assert (await feed.__anext__()).price == D("80")


async def test_expired_orders_reach_the_user_feed():
    from _service_support import ManualClock

    clock = ManualClock()
    async with service_env(clock=clock) as env:
        feed = env.service.user_feed("alice")
        order = await env.service.place_order(
            "alice", S, "BUY", "1", "100", time_in_force="GTD", expire_at=clock.ms(seconds=5)
        )
        clock.advance(seconds=10)
        await env.service.advance_time()
        placed, expired = await drain(feed, 2)
        assert placed.id == expired.id == order.id and expired.status.value == "EXPIRED"
        feed.close()


@pytest.mark.parametrize("max_queue", [0, -1, True, "5"])
async def test_max_queue_must_be_positive(env, max_queue):
    with pytest.raises(ValueError):
        env.service.market_feed(S, max_queue=max_queue)
