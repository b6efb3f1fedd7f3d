"""Random command streams through OrderService (memory adapters), checked after every step.

Three users place limit, market, IOC, FOK and post-only orders of random sides
around a mid price, sometimes repeating a client order id, and cancel random
orders (their own, and now and then someone else's). After every command:
the book is not crossed, the repository's active orders are exactly the
book's orders with the same remaining quantities, reservations equal what
active orders need, every asset's total is conserved (fees included), and no
order has filled more than its quantity. A refused command changes nothing.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from _service_support import BTC, FEES, check_invariants, service_env
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tradebook import InsufficientBalanceError, OrderConflictError, OrderNotFoundError, OrderStatus

S = BTC.symbol
USERS = ("alice", "bob", "carol")
# small balances, so that some orders are refused for insufficient funds
DEPOSITS = {"USDT": Decimal("400"), "BTC": Decimal("4")}

places = st.tuples(
    st.just("place"),
    st.sampled_from(USERS),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(["limit", "limit", "limit", "market", "ioc", "fok", "post_only"]),
    st.integers(-4, 4),  # aggressiveness: half units above 100 for a buy, below 100 for a sell
    st.integers(1, 8),  # quantity in quarters
    st.sampled_from([None, None, None, "k1", "k2"]),  # client order id
)
cancels = st.tuples(st.just("cancel"), st.sampled_from(USERS), st.integers(0, 40), st.booleans())
commands = st.lists(st.one_of(places, places, cancels), min_size=15, max_size=40)
stp_modes = st.sampled_from(["CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "NONE"])


# partial fills that rest, on both sides, with fees and a price improvement: always run
PARTIAL_FILLS = [
    ("place", "alice", "SELL", "limit", 0, 1, None),
    ("place", "alice", "SELL", "limit", -1, 2, None),
    ("place", "bob", "BUY", "limit", 2, 8, None),  # sweeps both asks, rests the rest
    ("place", "carol", "SELL", "limit", 4, 2, None),  # partly fills bob's bid
    ("place", "carol", "SELL", "limit", 0, 8, "k1"),
    ("place", "bob", "BUY", "market", 0, 3, None),
    ("cancel", "carol", 4, False),
    ("place", "carol", "SELL", "limit", 0, 8, "k1"),  # a replay of a cancelled order
    ("cancel", "bob", 2, True),
]


@settings(max_examples=50)
@example(commands=PARTIAL_FILLS, stp="CANCEL_TAKER", fees=True)
@example(commands=PARTIAL_FILLS, stp="NONE", fees=False)
@given(commands=commands, stp=stp_modes, fees=st.booleans())
def test_random_command_streams_keep_every_invariant(commands, stp, fees):
    asyncio.run(run_stream(commands, stp, fees))


async def run_stream(commands, stp: str, fees: bool) -> None:
    options = {"maker_fee_rate": "0.001", "taker_fee_rate": "0.002", "fee_account": FEES} if fees else {}
    async with service_env(
        instruments=(BTC,), users=USERS, deposits=DEPOSITS, self_trade_prevention=stp, **options
    ) as env:
        placed: list[tuple[str, int]] = []  # (owner, order id)
        for command in commands:
            before = await env.snapshot()
            if command[0] == "place":
                await place(env, placed, before, *command[1:])
            else:
                await cancel(env, placed, before, *command[1:])
            await check_invariants(env)


async def place(env, placed, before, user, side, kind, offset, quarters, client_order_id) -> None:
    price = Decimal(100) + Decimal(offset if side == "BUY" else -offset) / 2
    quantity = Decimal(quarters) / 4
    kwargs: dict = {"client_order_id": client_order_id}
    if kind == "market":
        kwargs["type"] = "MARKET"
        price = None
    elif kind in ("ioc", "fok"):
        kwargs["time_in_force"] = kind.upper()
    elif kind == "post_only":
        kwargs["post_only"] = True
    try:
        result = await env.service.place(user, S, side, quantity, price, **kwargs)
    except InsufficientBalanceError:
        assert await env.snapshot() == before
        return
    order = result.order
    if result.replayed:
        assert result.trades == ()
        assert await env.snapshot() == before
        assert order.client_order_id == client_order_id and order.user_id == user
        return
    placed.append((user, order.id))
    assert order.filled_quantity == sum((t.quantity for t in result.trades), Decimal(0))
    for trade in result.trades:
        assert (trade.buy_order_id if side == "BUY" else trade.sell_order_id) == order.id
        if side == "BUY" and price is not None:
            assert trade.price <= price
        if side == "SELL" and price is not None:
            assert trade.price >= price
    if kind in ("market", "ioc", "fok"):
        assert not order.is_active
    if kind == "fok":
        assert order.status in (OrderStatus.FILLED, OrderStatus.EXPIRED, OrderStatus.CANCELLED)
        if order.status is OrderStatus.EXPIRED:
            assert result.trades == ()
    if kind == "post_only":
        assert result.trades == ()


async def cancel(env, placed, before, user, index, someone_else) -> None:
    if not placed:
        return
    owner, order_id = placed[index % len(placed)]
    user = next(u for u in env.users if u != owner) if someone_else else owner
    try:
        cancelled = await env.service.cancel_order(user, order_id)
    except OrderNotFoundError:
        assert user != owner
        assert await env.snapshot() == before
        return
    except OrderConflictError:
        assert not before["orders"][order_id].is_active
        assert await env.snapshot() == before
        return
    assert user == owner and before["orders"][order_id].is_active
    assert cancelled.status is OrderStatus.CANCELLED
