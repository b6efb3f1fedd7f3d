"""Random streams of every order type through OrderService (memory adapters), checked after every step.

Three users place limit, market, IOC, stop, stop-limit, trailing-stop, iceberg,
GTD (resting and stop) and quote-sized market orders around a mid price,
cancel random orders, move the clock (GTD expiry) and restart the service.
After every command :func:`check_invariants` holds: reservations equal what
each live order's rule says it needs, every asset's total is conserved (fees
included), the books and waiting stops are exactly the repository's live
orders, and an engine rebuilt from the repository alone equals the live one.
A restart changes nothing an engine can tell; a refused command changes nothing
at all; no live GTD order is past its time once the clock has moved.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from _service_support import FEES, ManualClock, check_invariants, engine_state, service_env
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tradebook import Instrument, InsufficientBalanceError, OrderConflictError, OrderStatus
from tradebook.oms import OrderService

INST = Instrument("BTC/USDT", "0.5", "0.25", max_price="200")
S = INST.symbol
USERS = ("alice", "bob", "carol")
# small balances, so that some orders are refused for insufficient funds
DEPOSITS = {"USDT": Decimal("2500"), "BTC": Decimal("12")}
KINDS = [
    "limit",
    "limit",
    "market",
    "ioc",
    "stop",
    "stop_limit",
    "trailing",
    "iceberg",
    "gtd",
    "gtd_stop",
    "quote",
]

places = st.tuples(
    st.just("place"),
    st.sampled_from(USERS),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(KINDS),
    st.integers(-6, 6),  # the price: half units from 100, above for a buy and below for a sell
    st.integers(1, 8),  # quantity in lots
    st.integers(1, 8),  # the kind's own number: stop distance, offset, slice, seconds to expiry, budget
)
cancels = st.tuples(st.just("cancel"), st.sampled_from(USERS), st.integers(0, 40))
advances = st.tuples(st.just("advance"), st.integers(0, 40))
restarts = st.tuples(st.just("restart"))
commands = st.lists(st.one_of(places, places, places, cancels, advances, restarts), min_size=15, max_size=45)
stp_modes = st.sampled_from(["CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "NONE"])

# a stop that waits, a trailing stop that follows the trades up and then triggers, an iceberg whose
# slices refresh, a GTD order that expires, a quote-sized buy, with restarts in between: always run
SCENARIO = [
    ("place", "alice", "BUY", "limit", -4, 8, 1),  # 2 at 98
    ("place", "bob", "SELL", "limit", 4, 2, 1),  # a trade at 98
    ("place", "carol", "SELL", "stop", 0, 2, 6),  # stop at 97: waits
    ("place", "bob", "SELL", "trailing", 0, 2, 2),  # offset 1: stop at 97
    ("place", "bob", "SELL", "iceberg", 0, 8, 2),  # 2 at 100, shown 0.5 at a time
    ("restart",),
    ("place", "carol", "BUY", "limit", 0, 6, 1),  # three slices at 100: the trailing stop moves to 99
    ("place", "alice", "BUY", "gtd", -2, 4, 3),  # 1 at 99 for 15 s
    ("place", "carol", "BUY", "gtd", -6, 4, 1),  # 1 at 97 for 5 s
    ("place", "bob", "SELL", "market", 0, 4, 1),  # sells at 99: the trailing stop triggers and sells at 98
    ("restart",),
    ("advance", 20),  # carol's GTD bid expires
    ("place", "carol", "BUY", "quote", 0, 1, 8),  # 200 USDT: the rest of the iceberg
    ("cancel", "bob", 4),
]


@settings(max_examples=40)
@example(commands=SCENARIO, stp="CANCEL_TAKER", fees=True)
@example(commands=SCENARIO, stp="NONE", fees=False)
@given(commands=commands, stp=stp_modes, fees=st.booleans())
def test_random_streams_of_every_order_type_keep_every_invariant(commands, stp, fees):
    asyncio.run(run_stream(commands, stp, fees))


async def run_stream(commands: list[tuple[Any, ...]], stp: str, fees: bool) -> None:
    options: dict[str, Any] = (
        {"maker_fee_rate": "0.001", "taker_fee_rate": "0.002", "fee_account": FEES} if fees else {}
    )
    clock = ManualClock()
    async with service_env(
        instruments=(INST,), users=USERS, deposits=DEPOSITS, self_trade_prevention=stp, clock=clock, **options
    ) as env:
        placed: list[tuple[str, int]] = []  # (owner, order id)
        for command in commands:
            before = await env.snapshot()
            if command[0] == "place":
                await place(env, clock, placed, before, *command[1:])
            elif command[0] == "cancel":
                await cancel(env, placed, before, *command[1:])
            elif command[0] == "advance":
                clock.advance(seconds=command[1])
                await env.service.advance_time()
                for order in await env.repo.active_orders(S):
                    assert order.expire_at is None or order.expire_at > clock.ms(), order
            else:
                state = engine_state(env.service._engines[S], S)
                await env.service.close()
                env.service = OrderService(
                    env.repo, env.wallet, env.instruments, clock=clock, expiry_interval=None, self_trade_prevention=stp,
                    **options,
                )  # fmt: skip
                report = await env.service.start()
                assert report.expired == [] and report.pending_removed == []
                assert engine_state(env.service._engines[S], S) == state
            await check_invariants(env)


async def place(env, clock, placed, before, user, side, kind, offset, lots, number) -> None:
    buy = side == "BUY"
    price: Decimal | None = Decimal(100) + Decimal(offset if buy else -offset) / 2
    quantity: Decimal | None = Decimal(lots) / 4
    kwargs: dict[str, Any] = {}
    if kind in ("market", "quote", "stop", "trailing", "gtd_stop"):
        price = None
        kwargs["type"] = "MARKET"
    if kind == "quote":
        quantity = None
        kwargs["quote_quantity"] = Decimal(number) * 25
    elif kind == "ioc":
        kwargs["time_in_force"] = "IOC"
    elif kind in ("stop", "gtd_stop", "stop_limit"):
        # a buy stop above the mid, a sell stop below (some already met: REJECTED)
        kwargs["type"] = "STOP_LIMIT" if kind == "stop_limit" else "STOP"
        kwargs["stop_price"] = Decimal(100) + Decimal(number if buy else -number) / 2
    elif kind == "trailing":
        kwargs["type"] = "TRAILING_STOP"
        kwargs["trailing_offset"] = Decimal(number) / 2
    elif kind == "iceberg" and lots > 1:
        kwargs["display_quantity"] = Decimal(min(number, lots - 1)) / 4
    if kind in ("gtd", "gtd_stop"):
        kwargs["time_in_force"] = "GTD"
        kwargs["expire_at"] = clock.ms(seconds=number * 5)
    try:
        result = await env.service.place(user, S, side, quantity, price, **kwargs)
    except InsufficientBalanceError:
        assert await env.snapshot() == before
        return
    order = result.order
    placed.append((user, order.id))
    as_maker = [t for run in result.triggered for t in run.trades if order.id in (t.buy_order_id, t.sell_order_id)]
    assert order.filled_quantity == sum((t.quantity for t in (*result.trades, *as_maker)), Decimal(0))
    for run in (result, *result.triggered):
        for trade in run.trades:
            assert (trade.buy_order_id if trade.taker_side.value == "BUY" else trade.sell_order_id) == run.order.id
    if kind in ("market", "ioc", "quote"):
        assert not order.is_active
    if kind in ("stop", "stop_limit", "trailing", "gtd_stop"):
        assert (result.trades, result.triggered) == ((), ())
        assert order.status in (OrderStatus.UNTRIGGERED, OrderStatus.REJECTED)


async def cancel(env, placed, before, user, index) -> None:
    if not placed:
        return
    owner, order_id = placed[index % len(placed)]
    try:
        cancelled = await env.service.cancel_order(owner, order_id)
    except OrderConflictError:
        assert not before["orders"][order_id].is_active
        assert await env.snapshot() == before
        return
    assert before["orders"][order_id].is_active
    assert cancelled.status is OrderStatus.CANCELLED
