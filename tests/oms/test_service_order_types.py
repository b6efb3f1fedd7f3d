"""The new order types through the order service, on every store: memory, SQLite and PostgreSQL.

Each test is written from a rule (docs/orders.md, "Order types" and
"Reservation policy"; the engine's rules in the API contract) and checks the
exact wallet movements. Every scenario ends with :func:`check_store`: what each
live order reserves equals what its rule says, every order's fills equal its
trades, every asset's total is unchanged, and an engine rebuilt from the
repository alone equals the live one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from _service_support import ManualClock, book_queues, check_store, engine_state
from _stores import Store

from tradebook import (
    Instrument,
    InvalidOrderError,
    OrderConflictError,
    OrderStatus,
    OrderType,
    Side,
)
from tradebook.oms import OrderQuery, OrderService

D = Decimal
S, E = "BTC/USDT", "ETH/USDT"
#: BTC has a max_price (so stop and trailing-stop buys can reserve against it); ETH has none.
BTC = Instrument(S, "0.5", "0.1", max_price="1000")
ETH = Instrument(E, "0.01", "0.01")
USERS = ("alice", "bob", "carol", "dave")
USDT0, BTC0 = D(100_000), D(100)


@dataclass
class Env:
    store: Store
    service: OrderService
    clock: ManualClock
    totals: dict[str, Decimal]

    async def balance(self, user: str, asset: str) -> tuple[Decimal, Decimal]:
        found = (await self.store.wallet.balances(user)).get(asset)
        return (D(0), D(0)) if found is None else (found.available, found.reserved)

    async def reserved(self, order_id: int) -> Decimal:
        held: Decimal = await self.store.wallet.reserved(str(order_id))
        return held

    async def order(self, order_id: int) -> Any:
        return await self.store.repository.get_order(order_id)

    async def restart(self) -> Any:
        """Close the service, reopen the store (a process restart) and start a new service on it."""
        await self.service.close()
        await self.store.reopen()
        self.service = OrderService(
            self.store.repository, self.store.wallet, (BTC, ETH), clock=self.clock, expiry_interval=None
        )
        return await self.service.start()

    async def trade_at(self, price: str, quantity: str = "0.1") -> None:
        """Print one trade at ``price`` between carol (maker, selling) and dave (taker, buying)."""
        await self.service.place_order("carol", S, "SELL", quantity, price)
        placed = await self.service.place("dave", S, "BUY", quantity, price)
        assert [(t.price, t.quantity) for t in placed.trades] == [(D(price), D(quantity))]


@pytest.fixture
async def env(store: Store) -> AsyncIterator[Env]:
    for user in USERS:
        for asset, amount in (("USDT", USDT0), ("BTC", BTC0), ("ETH", D(1000))):
            await store.wallet.deposit(user, asset, amount)
    clock = ManualClock()
    service = OrderService(store.repository, store.wallet, (BTC, ETH), clock=clock, expiry_interval=None)
    await service.start()
    e = Env(store, service, clock, await store.wallet.totals())
    yield e
    await check_store(e.service, USERS, e.totals)
    await e.service.close()


def fills(placement: Any) -> list[tuple[Decimal, Decimal]]:
    return [(t.price, t.quantity) for t in placement.trades]


# -- stops -------------------------------------------------------------------------------


async def test_a_sell_stop_waits_then_a_trade_at_its_price_triggers_it_and_its_trade_settles(env: Env) -> None:
    svc = env.service
    await svc.place_order("carol", S, "BUY", "1", "100")
    low_bid = await svc.place_order("carol", S, "BUY", "2", "99")
    stop = await svc.place("alice", S, "SELL", "1", type="STOP", stop_price="99")
    assert stop.order.status is OrderStatus.UNTRIGGERED
    assert (stop.order.type, stop.order.stop_price, stop.order.price) == (OrderType.STOP, D(99), None)
    assert await env.balance("alice", "BTC") == (BTC0 - 1, 1)  # a sell reserves its quantity
    assert env.service.depth(S).asks == []  # a waiting stop is in no book

    placed = await svc.place("bob", S, "SELL", "1.5", "99")  # prints 100, then 99: the stop's price
    assert fills(placed) == [(D(100), D(1)), (D(99), D("0.5"))]
    (run,) = placed.triggered
    assert run.order.id == stop.order.id
    assert (run.order.status, run.order.filled_quantity) == (OrderStatus.FILLED, D(1))
    (trade,) = run.trades
    assert (trade.price, trade.quantity, trade.taker_side) == (D(99), D(1), Side.SELL)
    assert (trade.buy_order_id, trade.sell_order_id) == (low_bid.id, stop.order.id)
    assert placed.all_trades == [*placed.trades, trade]
    assert await env.order(stop.order.id) == run.order

    assert await env.balance("alice", "BTC") == (BTC0 - 1, 0)
    assert await env.balance("alice", "USDT") == (USDT0 + 99, 0)
    assert await env.balance("bob", "USDT") == (USDT0 + D("149.5"), 0)
    assert await env.balance("carol", "BTC") == (BTC0 + D("2.5"), 0)
    assert await env.balance("carol", "USDT") == (USDT0 - 298, D("49.5"))  # what is left of the 99 bid
    assert (await env.order(low_bid.id)).filled_quantity == D("1.5")


async def test_a_buy_stop_reserves_max_price_times_quantity_and_releases_what_it_did_not_spend(env: Env) -> None:
    svc = env.service
    stop = await svc.place_order("alice", S, "BUY", "2", type="STOP", stop_price="101")
    assert await env.balance("alice", "USDT") == (USDT0 - 2000, 2000)  # max_price 1000 x 2
    await svc.place_order("carol", S, "SELL", "1", "101")
    await svc.place_order("carol", S, "SELL", "3", "102")
    placed = await svc.place("bob", S, "BUY", "1", "101")
    (run,) = placed.triggered
    assert fills(run) == [(D(102), D(2))]
    assert run.order.status is OrderStatus.FILLED
    assert await env.balance("alice", "USDT") == (USDT0 - 204, 0)
    assert await env.balance("alice", "BTC") == (BTC0 + 2, 0)
    assert await env.reserved(stop.id) == 0


@pytest.mark.parametrize("order_type", ["STOP", "TRAILING_STOP"])
async def test_a_market_stop_buy_is_refused_without_a_max_price_and_leaves_nothing(env: Env, order_type: str) -> None:
    before = await env.balance("alice", "USDT")
    extra = {"stop_price": "10"} if order_type == "STOP" else {"trailing_offset": "1"}
    with pytest.raises(InvalidOrderError, match="max_price"):
        await env.service.place("alice", E, "BUY", "1", type=order_type, **extra)
    assert await env.balance("alice", "USDT") == before
    assert (await env.service.list_orders("alice")).items == []
    sell = await env.service.place_order("alice", E, "SELL", "1", type=order_type, **extra)  # a sell reserves ETH
    assert sell.status is OrderStatus.UNTRIGGERED
    assert await env.balance("alice", "ETH") == (D(999), 1)


async def test_a_stop_limit_buy_reserves_its_limit_rests_once_triggered_and_cancels_cleanly(env: Env) -> None:
    svc = env.service
    stop = await svc.place_order("alice", S, "BUY", "2", "103", type="STOP_LIMIT", stop_price="101")
    assert (stop.status, stop.price, stop.stop_price) == (OrderStatus.UNTRIGGERED, D(103), D(101))
    assert await env.balance("alice", "USDT") == (USDT0 - 206, 206)
    await svc.place_order("carol", S, "SELL", "1", "101")
    await svc.place_order("carol", S, "SELL", "0.5", "102.5")
    placed = await svc.place("bob", S, "BUY", "1", "101")
    (run,) = placed.triggered
    assert fills(run) == [(D("102.5"), D("0.5"))]
    order = run.order
    assert (order.status, order.filled_quantity, order.remaining_quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        D("0.5"),
        D("1.5"),
    )
    assert order.sequence > placed.order.sequence  # it entered the book after the order that triggered it
    # paid 51.25, and the price improvement of 0.25 came back: 103 x 1.5 stays reserved
    assert await env.balance("alice", "USDT") == (USDT0 - D("51.25") - D("154.5"), D("154.5"))
    assert env.service.depth(S).bids[0] == (D(103), D("1.5"), 1)
    cancelled = await svc.cancel_order("alice", stop.id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert await env.balance("alice", "USDT") == (USDT0 - D("51.25"), 0)


async def test_a_stop_whose_condition_already_holds_is_rejected_and_releases_everything(env: Env) -> None:
    await env.trade_at("100")
    for side, stop_price in (("SELL", "100"), ("SELL", "100.5"), ("BUY", "100"), ("BUY", "99.5")):
        placed = await env.service.place("alice", S, side, "1", type="STOP", stop_price=stop_price)
        assert placed.order.status is OrderStatus.REJECTED, (side, stop_price)
        assert await env.reserved(placed.order.id) == 0
    assert await env.balance("alice", "USDT") == (USDT0, 0)
    assert await env.balance("alice", "BTC") == (BTC0, 0)
    waiting = await env.service.place_order("alice", S, "SELL", "1", type="STOP", stop_price="99.5")
    assert waiting.status is OrderStatus.UNTRIGGERED


async def test_a_cascade_runs_the_stops_in_order_and_settles_each(env: Env) -> None:
    svc = env.service
    for price in ("99", "98", "97"):
        await svc.place_order("carol", S, "BUY", "1", price)
    first = await svc.place_order("alice", S, "SELL", "1", type="STOP", stop_price="99")
    second = await svc.place_order("dave", S, "SELL", "1", type="STOP", stop_price="98")
    placed = await svc.place("bob", S, "SELL", "1", "99")
    assert fills(placed) == [(D(99), D(1))]
    assert [(run.order.id, fills(run)) for run in placed.triggered] == [
        (first.id, [(D(98), D(1))]),  # triggered by bob's trade at 99
        (second.id, [(D(97), D(1))]),  # triggered by the first stop's trade at 98
    ]
    assert await env.balance("alice", "USDT") == (USDT0 + 98, 0)
    assert await env.balance("dave", "USDT") == (USDT0 + 97, 0)
    assert await env.balance("bob", "USDT") == (USDT0 + 99, 0)
    assert await env.balance("carol", "BTC") == (BTC0 + 3, 0)
    assert await env.balance("carol", "USDT") == (USDT0 - 294, 0)


async def test_a_triggered_stop_may_trade_with_the_order_that_triggered_it(env: Env) -> None:
    svc = env.service
    await env.trade_at("101")
    stop = await svc.place_order("alice", S, "SELL", "1", type="STOP", stop_price="100")
    await svc.place_order("carol", S, "SELL", "1", "100")
    placed = await svc.place("bob", S, "BUY", "2", "100")  # takes carol's 1 at 100, rests 1: the stop sells into it
    (run,) = placed.triggered
    assert fills(placed) == [(D(100), D(1))]
    assert [(t.buy_order_id, t.sell_order_id, t.price) for t in run.trades] == [(placed.order.id, stop.id, D(100))]
    assert (placed.order.status, placed.order.filled_quantity) == (OrderStatus.FILLED, D(2))
    assert await env.order(placed.order.id) == placed.order
    assert await env.balance("bob", "USDT") == (USDT0 - 200, 0)
    assert await env.balance("alice", "USDT") == (USDT0 + 100, 0)


async def test_self_trade_prevention_cancels_a_triggered_stop_and_releases_it(env: Env) -> None:
    svc = env.service
    await svc.place_order("alice", S, "BUY", "2", "99")
    stop = await svc.place_order("alice", S, "SELL", "1", type="STOP", stop_price="99")
    placed = await svc.place("bob", S, "SELL", "1", "99")  # the stop would sell into alice's own bid
    (run,) = placed.triggered
    assert (run.order.id, run.order.status, run.trades) == (stop.id, OrderStatus.CANCELLED, ())
    assert await env.balance("alice", "BTC") == (BTC0 + 1, 0)
    assert await env.balance("alice", "USDT") == (USDT0 - 198, 99)


async def test_cancel_a_waiting_stop_releases_its_reservation_once(env: Env) -> None:
    stop = await env.service.place_order("alice", S, "BUY", "1.5", "95", type="STOP_LIMIT", stop_price="96")
    assert await env.balance("alice", "USDT") == (USDT0 - D("142.5"), D("142.5"))
    cancelled = await env.service.cancel_order("alice", stop.id)
    assert (cancelled.status, await env.order(stop.id)) == (OrderStatus.CANCELLED, cancelled)
    assert await env.balance("alice", "USDT") == (USDT0, 0)
    with pytest.raises(OrderConflictError):
        await env.service.cancel_order("alice", stop.id)
    await env.trade_at("96")  # nothing left to trigger


async def test_waiting_stops_are_listed_as_untriggered(env: Env) -> None:
    stop = await env.service.place_order("alice", S, "SELL", "1", type="STOP", stop_price="90")
    await env.service.place_order("alice", S, "SELL", "1", "200")
    page = await env.service.list_orders("alice", OrderQuery(status=OrderStatus.UNTRIGGERED))
    assert [o.id for o in page.items] == [stop.id]
    assert stop.is_active and stop.remaining_quantity == 1


# -- trailing stops -------------------------------------------------------------------------


async def test_a_trailing_stop_follows_the_highest_trade_and_triggers_its_offset_below(env: Env) -> None:
    svc = env.service
    await svc.place_order("bob", S, "BUY", "5", "90")
    trail = await svc.place_order("alice", S, "SELL", "1", type="TRAILING_STOP", trailing_offset="2")
    assert (trail.status, trail.stop_price, trail.trailing_offset) == (OrderStatus.UNTRIGGERED, None, D(2))
    await env.trade_at("100")  # the first trade sets the reference
    assert (await env.order(trail.id)).stop_price == D(98)
    await env.trade_at("104")
    assert (await env.order(trail.id)).stop_price == D(102)
    await env.trade_at("103")
    assert (await env.order(trail.id)).stop_price == D(102)  # a lower trade leaves a sell's reference
    await svc.place_order("carol", S, "SELL", "0.1", "102")
    placed = await svc.place("dave", S, "BUY", "0.1", "102")
    (run,) = placed.triggered
    assert (run.order.id, run.order.status, run.order.stop_price) == (trail.id, OrderStatus.FILLED, D(102))
    assert fills(run) == [(D(90), D(1))]
    assert await env.balance("alice", "USDT") == (USDT0 + 90, 0)
    assert await env.balance("alice", "BTC") == (BTC0 - 1, 0)


async def test_a_trailing_buy_starts_from_the_last_trade_and_follows_the_lowest(env: Env) -> None:
    svc = env.service
    await env.trade_at("100")
    trail = await svc.place_order("alice", S, "BUY", "1", type="TRAILING_STOP", trailing_offset="3")
    assert trail.stop_price == D(103)
    assert await env.balance("alice", "USDT") == (USDT0 - 1000, 1000)
    await env.trade_at("97")
    assert (await env.order(trail.id)).stop_price == D(100)
    await svc.place_order("carol", S, "SELL", "1", "101")
    await env.trade_at("100")  # reaches the stop: alice buys at the best ask
    got = await env.order(trail.id)
    assert (got.status, got.filled_quantity) == (OrderStatus.FILLED, D(1))
    assert await env.balance("alice", "USDT") == (USDT0 - 101, 0)


# -- icebergs --------------------------------------------------------------------------------


async def test_an_iceberg_shows_one_slice_and_each_new_slice_goes_to_the_back(env: Env) -> None:
    svc = env.service
    ice = await svc.place_order("alice", S, "SELL", "3", "100", display_quantity="1")
    assert (ice.display_quantity, ice.visible_quantity, ice.quantity) == (D(1), D(1), D(3))
    assert await env.balance("alice", "BTC") == (BTC0 - 3, 3)  # the whole quantity, hidden part too
    other = await svc.place_order("carol", S, "SELL", "1", "100")
    assert env.service.depth(S).asks == [(D(100), D(2), 2)]  # 1 shown of alice's 3, and carol's 1

    first = await svc.place("bob", S, "BUY", "1.5", "100")
    assert [(t.sell_order_id, t.quantity) for t in first.trades] == [(ice.id, D(1)), (other.id, D("0.5"))]
    assert book_queues(env.service, S) == [(Side.SELL, D(100), [other.id, ice.id])]
    got = await env.order(ice.id)
    assert (got.filled_quantity, got.visible_quantity, got.status) == (D(1), D(1), OrderStatus.PARTIALLY_FILLED)
    assert got.sequence > first.order.sequence  # the new slice's place: behind carol's order

    second = await svc.place("bob", S, "BUY", "1", "100")
    assert [(t.sell_order_id, t.quantity) for t in second.trades] == [(other.id, D("0.5")), (ice.id, D("0.5"))]
    got = await env.order(ice.id)
    assert (got.filled_quantity, got.visible_quantity) == (D("1.5"), D("0.5"))
    assert await env.balance("alice", "BTC") == (BTC0 - 3, D("1.5"))
    assert await env.balance("alice", "USDT") == (USDT0 + 150, 0)

    last = await svc.place("dave", S, "BUY", "2", "100")
    assert fills(last) == [(D(100), D("0.5")), (D(100), D(1))]  # the rest of this slice, then the last one
    got = await env.order(ice.id)
    assert (got.status, got.filled_quantity, got.visible_quantity) == (OrderStatus.FILLED, D(3), D(0))
    assert await env.balance("alice", "BTC") == (BTC0 - 3, 0)
    assert await env.balance("dave", "USDT") == (USDT0 - 200, D(50))  # 150 paid, 50 for the 0.5 that rests


async def test_an_iceberg_that_takes_first_rests_its_remainder_in_slices(env: Env) -> None:
    svc = env.service
    await svc.place_order("carol", S, "SELL", "0.5", "100")
    ice = await svc.place("alice", S, "BUY", "2", "100", display_quantity="0.4")
    assert fills(ice) == [(D(100), D("0.5"))]  # the taker trades its whole quantity
    assert (ice.order.status, ice.order.visible_quantity) == (OrderStatus.PARTIALLY_FILLED, D("0.4"))
    assert env.service.depth(S).bids == [(D(100), D("0.4"), 1)]
    assert await env.balance("alice", "USDT") == (USDT0 - 200, 150)
    placed = await svc.place("bob", S, "SELL", "1", "100")
    assert fills(placed) == [(D(100), D("0.4")), (D(100), D("0.4")), (D(100), D("0.2"))]
    got = await env.order(ice.order.id)
    assert (got.filled_quantity, got.visible_quantity) == (D("1.5"), D("0.2"))
    assert await env.balance("alice", "USDT") == (USDT0 - 200, 50)


async def test_cancel_an_iceberg_releases_its_hidden_part_too(env: Env) -> None:
    ice = await env.service.place_order("alice", S, "BUY", "5", "50", display_quantity="1", time_in_force="GTD",
                                        expire_at=env.clock.ms(hours=1))  # fmt: skip
    assert await env.balance("alice", "USDT") == (USDT0 - 250, 250)
    cancelled = await env.service.cancel_order("alice", ice.id)
    assert (cancelled.status, cancelled.visible_quantity) == (OrderStatus.CANCELLED, D(0))
    assert await env.order(ice.id) == cancelled
    assert await env.balance("alice", "USDT") == (USDT0, 0)


# -- GTD and the clock ------------------------------------------------------------------------------


async def test_a_gtd_order_expires_on_the_clock_and_releases_its_reservation(env: Env) -> None:
    svc = env.service
    order = await svc.place_order("alice", S, "BUY", "1", "90", time_in_force="GTD", expire_at=env.clock.ms(seconds=10))
    assert (order.status, order.expire_at) == (OrderStatus.OPEN, env.clock.ms(seconds=10))
    assert await env.balance("alice", "USDT") == (USDT0 - 90, 90)
    env.clock.advance(seconds=9, milliseconds=999)
    assert await svc.advance_time() == []
    env.clock.advance(milliseconds=1)
    (expired,) = await svc.advance_time()
    assert (expired.id, expired.status, expired.updated_at) == (order.id, OrderStatus.EXPIRED, env.clock.now)
    assert await env.order(order.id) == expired
    assert await env.balance("alice", "USDT") == (USDT0, 0)
    assert env.service.depth(S).bids == []
    assert await svc.advance_time() == []  # once


async def test_an_order_past_its_expiry_never_trades_even_before_the_clock_task_runs(env: Env) -> None:
    svc = env.service
    gtd = await svc.place_order("alice", S, "BUY", "1", "100", time_in_force="GTD", expire_at=env.clock.ms(seconds=1))
    env.clock.advance(seconds=2)  # no advance_time call: the next command brings the clock forward itself
    placed = await svc.place("bob", S, "SELL", "1", "100")
    assert (placed.order.status, placed.trades) == (OrderStatus.OPEN, ())
    assert (await env.order(gtd.id)).status is OrderStatus.EXPIRED
    assert await env.balance("alice", "USDT") == (USDT0, 0)
    with pytest.raises(OrderConflictError, match="EXPIRED"):
        await svc.cancel_order("alice", gtd.id)


async def test_a_gtd_order_already_due_expires_at_once_and_keeps_nothing(env: Env) -> None:
    await env.service.place_order("carol", S, "SELL", "1", "100")
    placed = await env.service.place(
        "alice", S, "BUY", "1", "100", time_in_force="GTD", expire_at=env.clock.now - timedelta(seconds=1)
    )
    assert (placed.order.status, placed.trades) == (OrderStatus.EXPIRED, ())
    assert await env.balance("alice", "USDT") == (USDT0, 0)


async def test_a_partly_filled_gtd_order_expires_with_its_fills(env: Env) -> None:
    await env.service.place_order("carol", S, "SELL", "0.4", "100")
    placed = await env.service.place(
        "alice", S, "BUY", "1", "100", time_in_force="GTD", expire_at=env.clock.now + timedelta(minutes=1)
    )
    assert placed.order.status is OrderStatus.PARTIALLY_FILLED
    env.clock.advance(minutes=1)
    (expired,) = await env.service.advance_time()
    assert (expired.status, expired.filled_quantity) == (OrderStatus.EXPIRED, D("0.4"))
    assert await env.balance("alice", "USDT") == (USDT0 - 40, 0)


async def test_a_gtd_stop_expires_while_it_waits(env: Env) -> None:
    stop = await env.service.place_order(
        "alice", S, "SELL", "2", type="STOP", stop_price="80", time_in_force="GTD", expire_at=env.clock.ms(minutes=5)
    )
    assert await env.balance("alice", "BTC") == (BTC0 - 2, 2)
    env.clock.advance(minutes=5)
    (expired,) = await env.service.advance_time()
    assert (expired.id, expired.status) == (stop.id, OrderStatus.EXPIRED)
    assert await env.balance("alice", "BTC") == (BTC0, 0)
    await env.trade_at("80")  # nothing triggers


async def test_expiries_of_a_symbol_commit_together_and_other_symbols_are_untouched(env: Env) -> None:
    svc = env.service
    due = env.clock.ms(seconds=30)
    ids = [(await svc.place_order(u, S, "SELL", "1", p, time_in_force="GTD", expire_at=due)).id
           for u, p in (("alice", "110"), ("bob", "111"))]  # fmt: skip
    stay = await svc.place_order("carol", E, "BUY", "1", "10", time_in_force="GTD", expire_at=due + 1)
    env.clock.advance(seconds=30)
    assert sorted(o.id for o in await svc.advance_time()) == ids
    assert (await env.order(stay.id)).status is OrderStatus.OPEN


# -- quote-sized market orders -------------------------------------------------------------------


async def test_a_market_buy_sized_by_quote_spends_at_most_its_reservation(env: Env) -> None:
    svc = env.service
    await svc.place_order("carol", S, "SELL", "1", "100")
    await svc.place_order("carol", S, "SELL", "1", "101")
    placed = await svc.place("bob", S, "BUY", None, type="MARKET", quote_quantity="150")
    order = placed.order
    assert (order.quantity, order.quote_quantity, order.remaining_quantity) == (None, D(150), 0)
    assert fills(placed) == [(D(100), D(1)), (D(101), D("0.4"))]  # 9.6 left buys no lot at 101
    assert (order.status, order.filled_quantity) == (OrderStatus.EXPIRED, D("1.4"))
    assert await env.balance("bob", "USDT") == (USDT0 - D("140.4"), 0)
    assert await env.balance("bob", "BTC") == (BTC0 + D("1.4"), 0)
    assert await env.order(order.id) == order


async def test_a_quote_budget_used_exactly_fills_the_order(env: Env) -> None:
    await env.service.place_order("carol", S, "SELL", "2", "100")
    placed = await env.service.place("bob", S, "BUY", None, type="MARKET", quote_quantity="100",
                                     time_in_force="IOC")  # fmt: skip
    assert (placed.order.status, placed.order.filled_quantity) == (OrderStatus.FILLED, D(1))
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)


async def test_a_market_sell_sized_by_quote_reserves_what_sweeping_the_bids_would_sell(env: Env) -> None:
    svc = env.service
    await svc.place_order("carol", S, "BUY", "1", "100")
    await svc.place_order("carol", S, "BUY", "1", "99")
    await svc.place_order("alice", S, "BUY", "5", "98")  # alice's own bid: self-trade prevention leaves it out
    reserves: list[Any] = []
    wallet = env.service.wallet

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(wallet, name)

        async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Any:
            reserves.append((asset, amount))
            return await wallet.reserve(user_id, asset, amount, ref)

    env.service.wallet = Spy()  # type: ignore[assignment]
    try:
        placed = await svc.place("alice", S, "SELL", None, type="MARKET", quote_quantity="149.4")
    finally:
        env.service.wallet = wallet
    assert reserves == [("BTC", D("1.4"))]  # 1 at 100, then 49.4 buys 0.4 at 99
    assert fills(placed) == [(D(100), D(1)), (D(99), D("0.4"))]
    assert placed.order.status is OrderStatus.EXPIRED
    assert await env.balance("alice", "BTC") == (BTC0 - D("1.4"), 0)
    assert await env.balance("alice", "USDT") == (USDT0 + D("139.6") - 490, 490)


async def test_quote_orders_on_an_empty_book_expire_and_keep_nothing(env: Env) -> None:
    for side in ("BUY", "SELL"):
        placed = await env.service.place("alice", E, side, None, type="MARKET", quote_quantity="10")
        assert (placed.order.status, placed.trades) == (OrderStatus.EXPIRED, ())
    assert await env.balance("alice", "USDT") == (USDT0, 0)


# -- recovery ------------------------------------------------------------------------------------


async def build_everything(env: Env) -> dict[str, Any]:
    """Live orders of every new kind, some of them part-way through their life."""
    svc = env.service
    ids: dict[str, Any] = {}
    await svc.place_order("bob", S, "BUY", "10", "90")
    ids["ice"] = (await svc.place_order("alice", S, "SELL", "3", "110", display_quantity="1")).id
    ids["behind"] = (await svc.place_order("carol", S, "SELL", "1", "110")).id
    await svc.place_order("dave", S, "BUY", "1.2", "110")  # alice's first slice, then 0.2 of carol's
    await env.trade_at("100")
    ids["stop"] = (await svc.place_order("alice", S, "SELL", "1", type="STOP", stop_price="95")).id
    ids["stop_limit"] = (await svc.place_order("alice", S, "BUY", "1", "121", type="STOP_LIMIT", stop_price="120")).id
    ids["trail"] = (await svc.place_order("alice", S, "SELL", "1", type="TRAILING_STOP", trailing_offset="3")).id
    ids["trail_buy"] = (await svc.place_order("bob", S, "BUY", "1", type="TRAILING_STOP", trailing_offset="50")).id
    await env.trade_at("102")  # the sell trails up to 99, the buy stays at 150
    ids["gtd"] = (await svc.place_order("dave", S, "BUY", "1", "91", time_in_force="GTD",
                                        expire_at=env.clock.ms(minutes=10))).id  # fmt: skip
    ids["gtd_stop"] = (await svc.place_order("dave", S, "SELL", "1", type="STOP", stop_price="80",
                                             time_in_force="GTD", expire_at=env.clock.ms(minutes=20))).id  # fmt: skip
    return ids


async def test_a_restart_restores_stops_trailing_references_icebergs_and_gtd_orders_exactly(env: Env) -> None:
    ids = await build_everything(env)
    before = {s: engine_state(env.service._engines[s], s) for s in (S, E)}
    depth = env.service.depth(S, 100)
    report = await env.restart()
    assert report.orders_restored == {S: 9, E: 0} and report.expired == []
    assert {s: engine_state(env.service._engines[s], s) for s in (S, E)} == before
    assert env.service.depth(S, 100) == depth
    assert env.service._engines[S].last_trade_price() == D(102)
    assert [(await env.order(ids[k])).stop_price for k in ("trail", "trail_buy")] == [D(99), D(150)]

    # everything goes on as if nothing had happened: a trade at 99 triggers the trailing sell, whose sale
    # at 91 (dave's GTD bid) triggers the stop at 95, which sells at 90
    await env.service.place_order("carol", S, "SELL", "0.1", "99")
    placed = await env.service.place("bob", S, "BUY", "0.1", "99")
    assert [(run.order.id, fills(run)) for run in placed.triggered] == [
        (ids["trail"], [(D(91), D(1))]),
        (ids["stop"], [(D(90), D(1))]),
    ]
    # the iceberg's new slice waits behind carol's order, as before the restart
    placed = await env.service.place("dave", S, "BUY", "1.5", "110")
    assert [(t.sell_order_id, t.quantity) for t in placed.trades] == [(ids["behind"], D("0.8")), (ids["ice"], D("0.7"))]
    env.clock.advance(minutes=20)
    assert {o.id for o in await env.service.advance_time()} == {ids["gtd_stop"]}  # the GTD bid was filled


async def test_orders_that_expired_while_the_service_was_down_expire_at_start(env: Env) -> None:
    ids = await build_everything(env)
    await env.service.close()
    env.clock.advance(minutes=15)
    report = await env.restart()
    assert report.expired == [ids["gtd"]]
    assert (await env.order(ids["gtd"])).status is OrderStatus.EXPIRED
    assert await env.reserved(ids["gtd"]) == 0
