"""One writer per symbol at a time, many symbols in parallel."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from _service_support import DEPOSITS, D, FailingRepository, service_env

from tradebook import OrderStatus, Side
from tradebook.oms import OrderQuery

S, E = "BTC/USDT", "ETH/USDT"


@pytest.fixture
async def env():
    async with service_env() as e:
        yield e
        await e.check()


async def test_a_symbol_takes_one_command_at_a_time_while_other_symbols_proceed(env):
    gate = env.wallet.gate("bob")
    held = asyncio.ensure_future(env.service.place_order("bob", S, "BUY", "1", "100"))
    await env.wallet.waiting["bob"].wait()  # bob's BTC order is inside the BTC lock
    queued = asyncio.ensure_future(env.service.place_order("alice", S, "SELL", "1", "100"))
    other = await asyncio.wait_for(env.service.place_order("carol", E, "BUY", "1", "10"), 1)
    assert other.status is OrderStatus.OPEN  # ETH is not held up by BTC
    await asyncio.sleep(0.01)
    assert not queued.done()
    assert [args[0] for args in env.wallet.called("reserve")] == ["bob", "carol"]  # alice never got in
    gate.set()
    bob, alice = await held, await queued
    assert bob.status is OrderStatus.OPEN  # it rested before alice arrived
    assert alice.status is OrderStatus.FILLED
    assert (await env.service.get_order("bob", bob.id)).status is OrderStatus.FILLED


async def test_a_cancel_waits_for_the_symbols_placement(env):
    resting = await env.service.place_order("alice", S, "BUY", "1", "90")
    gate = env.wallet.gate("bob")
    placing = asyncio.ensure_future(env.service.place_order("bob", S, "BUY", "1", "95"))
    await env.wallet.waiting["bob"].wait()
    cancelling = asyncio.ensure_future(env.service.cancel_order("alice", resting.id))
    await asyncio.sleep(0.01)
    assert not cancelling.done()
    gate.set()
    await placing
    assert (await cancelling).status is OrderStatus.CANCELLED


def command_list(n: int) -> list[tuple[str, str, str, str, str]]:
    """A deterministic mix of crossing orders from three users on two symbols."""
    users = ("alice", "bob", "carol")
    out = []
    for i in range(n):
        symbol = S if i % 2 else E
        side = "BUY" if (i // 2) % 2 else "SELL"
        offset = (i * 7) % 5 - 2  # -2 .. 2 around the mid: many orders cross
        price = D(100 + offset) if symbol == S else D(20 + offset)
        quantity = D((i * 3) % 4 + 1) / (4 if symbol == S else 2)
        out.append((users[i % 3], symbol, side, str(quantity), str(price)))
    return out


async def test_many_placements_on_two_symbols_in_parallel_keep_books_and_funds_consistent():
    async with service_env(repo=FailingRepository()) as env:
        env.repo.interleave = env.wallet.interleave = True  # commands interleave at every port call
        await many_placements(env)
        await env.check()


async def many_placements(env) -> None:
    commands = command_list(120)
    results = await asyncio.gather(*(env.service.place(*c) for c in commands))
    assert len({r.order.id for r in results}) == 120
    trades = [t for r in results for t in r.trades]
    assert sorted(t.id for t in trades) == list(range(1, len(trades) + 1))
    assert trades, "the mix is meant to cross"
    # each symbol's fills add up on both sides, and to its trades
    filled = defaultdict(D)
    for user in env.users:
        for order in (await env.service.list_orders(user, OrderQuery(limit=1000))).items:
            filled[(order.symbol, order.side)] += order.filled_quantity
    for symbol in (S, E):
        traded = sum((t.quantity for t in trades if t.symbol == symbol), D(0))
        assert filled[(symbol, Side.BUY)] == filled[(symbol, Side.SELL)] == traded
    # a fixed order of the same commands, one at a time per symbol, gives the same trades
    async with service_env() as serial:
        for c in commands:
            await serial.service.place(*c)
        for symbol in (S, E):
            assert serial.service.depth(symbol, 1000) == env.service.depth(symbol, 1000)
        await serial.check()
    assert await env.ledger.totals() == {asset: amount * len(env.users) for asset, amount in DEPOSITS.items()}
