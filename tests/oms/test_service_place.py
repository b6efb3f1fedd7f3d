"""OrderService.place: resting, crossing, sweeping, time in force, market orders, self-trade prevention, fees.

Each scenario checks the exact wallet movements (Decimal amounts) and ends
with the conservation check: reservations equal what active orders need and
every asset's total is unchanged.
"""

from __future__ import annotations

import pytest
from _service_support import BTC, DEPOSITS, ETH, FEES, D, book_queues, service_env

from tradebook import InsufficientBalanceError, LevelSnapshot, OrderStatus, OrderType, Side, TimeInForce
from tradebook.oms import MemoryOrderRepository, MemoryWallet, OrderService

S = "BTC/USDT"
USDT0, BTC0 = DEPOSITS["USDT"], DEPOSITS["BTC"]


@pytest.fixture
async def env():
    async with service_env() as e:
        yield e
        await e.check()


# -- limit orders ----------------------------------------------------------------


async def test_limit_buy_rests_and_reserves_its_notional(env):
    placed = await env.service.place("alice", S, "BUY", "1.5", "100.25")
    order = placed.order
    assert (order.status, order.filled_quantity, order.remaining_quantity) == (OrderStatus.OPEN, 0, D("1.5"))
    assert (order.side, order.type, order.time_in_force) == (Side.BUY, OrderType.LIMIT, TimeInForce.GTC)
    assert (order.price, order.user_id, order.symbol, order.sequence) == (D("100.25"), "alice", S, 1)
    assert placed.trades == () and placed.replayed is False
    assert await env.balance("alice", "USDT") == (USDT0 - D("150.375"), D("150.375"))
    assert await env.wallet.inner.reserved(str(order.id)) == D("150.375")
    assert env.service.depth(S).bids == [LevelSnapshot(D("100.25"), D("1.5"), 1)]
    assert env.service.depth(S).asks == []
    assert await env.repo.get_order(order.id) == order


async def test_limit_sell_rests_and_reserves_its_quantity(env):
    order = await env.service.place_order("bob", S, Side.SELL, D("2.5"), D("101"))
    assert order.status is OrderStatus.OPEN
    assert await env.balance("bob", "BTC") == (BTC0 - D("2.5"), D("2.5"))
    assert await env.balance("bob", "USDT") == (USDT0, 0)
    assert env.service.depth(S).asks == [LevelSnapshot(D("101"), D("2.5"), 1)]


async def test_crossing_limit_fills_fully_at_the_maker_price(env):
    maker = await env.service.place_order("alice", S, "SELL", "1", "100")
    placed = await env.service.place("bob", S, "BUY", "1", "100")
    assert placed.order.status is OrderStatus.FILLED and placed.order.filled_quantity == D("1")
    (trade,) = placed.trades
    assert (trade.price, trade.quantity, trade.symbol) == (D("100"), D("1"), S)
    assert (trade.buy_order_id, trade.sell_order_id) == (placed.order.id, maker.id)
    assert (trade.buyer_id, trade.seller_id, trade.taker_side) == ("bob", "alice", Side.BUY)
    assert (await env.repo.get_order(maker.id)).status is OrderStatus.FILLED
    assert await env.balance("alice", "BTC") == (BTC0 - 1, 0)
    assert await env.balance("alice", "USDT") == (USDT0 + 100, 0)
    assert await env.balance("bob", "BTC") == (BTC0 + 1, 0)
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)
    assert env.service.depth(S).bids == env.service.depth(S).asks == []
    assert list((await env.service.list_trades(symbol=S)).items) == [trade]


async def test_partial_fill_then_the_remainder_rests(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    placed = await env.service.place("bob", S, "BUY", "3", "100")
    order = placed.order
    assert (order.status, order.filled_quantity, order.remaining_quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        D("1"),
        D("2"),
    )
    assert len(placed.trades) == 1
    assert await env.balance("bob", "USDT") == (USDT0 - 300, D("200"))
    assert await env.balance("bob", "BTC") == (BTC0 + 1, 0)
    assert env.service.depth(S).bids == [LevelSnapshot(D("100"), D("2"), 1)]
    assert env.service.depth(S).asks == []


async def test_a_sweep_trades_each_level_at_the_maker_price_and_releases_the_surplus(env):
    a1 = await env.service.place_order("alice", S, "SELL", "1", "100")
    c1 = await env.service.place_order("carol", S, "SELL", "1", "101")
    a2 = await env.service.place_order("alice", S, "SELL", "2", "102")
    placed = await env.service.place("bob", S, "BUY", "3", "102")
    assert placed.order.status is OrderStatus.FILLED
    assert [(t.price, t.quantity, t.sell_order_id) for t in placed.trades] == [
        (D("100"), D("1"), a1.id),
        (D("101"), D("1"), c1.id),
        (D("102"), D("1"), a2.id),
    ]
    assert [t.id for t in placed.trades] == [1, 2, 3]
    # reserved 3 x 102 = 306, paid 303: the 3 of price improvement is back
    assert await env.balance("bob", "USDT") == (USDT0 - 303, 0)
    assert await env.balance("bob", "BTC") == (BTC0 + 3, 0)
    assert await env.balance("alice", "USDT") == (USDT0 + 202, 0)
    assert await env.balance("alice", "BTC") == (BTC0 - 3, D("1"))
    assert await env.balance("carol", "USDT") == (USDT0 + 101, 0)
    assert env.service.depth(S).asks == [LevelSnapshot(D("102"), D("1"), 1)]
    assert (await env.repo.get_order(a2.id)).status is OrderStatus.PARTIALLY_FILLED


async def test_price_improvement_on_a_resting_buy_keeps_exactly_the_remainder_at_its_limit(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    await env.service.place_order("carol", S, "SELL", "0.5", "104.5")
    placed = await env.service.place("bob", S, "BUY", "2", "105")
    assert placed.order.status is OrderStatus.PARTIALLY_FILLED
    assert placed.order.filled_quantity == D("1.5")
    # paid 100 + 52.25; the 0.5 left rests at 105 and holds 52.5; 210 - 152.25 - 52.5 = 5.25 released
    assert await env.balance("bob", "USDT") == (USDT0 - D("152.25") - D("52.5"), D("52.5"))
    assert await env.wallet.inner.reserved(str(placed.order.id)) == D("52.5")


async def test_a_sell_sweeps_bids_best_first_at_the_maker_prices(env):
    await env.service.place_order("alice", S, "BUY", "1", "101")
    await env.service.place_order("carol", S, "BUY", "1", "100")
    await env.service.place_order("carol", S, "BUY", "1", "98")
    placed = await env.service.place("bob", S, "SELL", "3", "99")
    assert [(t.price, t.buyer_id, t.taker_side) for t in placed.trades] == [
        (D("101"), "alice", Side.SELL),
        (D("100"), "carol", Side.SELL),
    ]
    assert placed.order.status is OrderStatus.PARTIALLY_FILLED
    assert await env.balance("bob", "USDT") == (USDT0 + 201, 0)
    assert await env.balance("bob", "BTC") == (BTC0 - 3, D("1"))
    assert env.service.depth(S).asks == [LevelSnapshot(D("99"), D("1"), 1)]
    assert env.service.depth(S).bids == [LevelSnapshot(D("98"), D("1"), 1)]


async def test_time_priority_within_a_level(env):
    first = await env.service.place_order("alice", S, "SELL", "1", "100")
    second = await env.service.place_order("carol", S, "SELL", "1", "100")
    placed = await env.service.place("bob", S, "BUY", "1", "100")
    assert [t.sell_order_id for t in placed.trades] == [first.id]
    assert book_queues(env.service, S) == [(Side.SELL, D("100"), [second.id])]


async def test_enum_values_are_accepted_as_strings_and_values_are_normalised(env):
    order = await env.service.place_order(
        "alice", S, "SELL", 2, "100.10", type="LIMIT", time_in_force="GTC", client_order_id="c-1"
    )
    assert (order.side, order.type, order.time_in_force) == (Side.SELL, OrderType.LIMIT, TimeInForce.GTC)
    assert order.quantity == D("2") and order.price == D("100.1")
    assert order.client_order_id == "c-1"
    assert await env.balance("alice", "BTC") == (BTC0 - 2, D("2"))


async def test_a_float_on_the_grid_is_accepted(env):
    order = await env.service.place_order("alice", S, "BUY", 0.5, 100.5)
    assert (order.quantity, order.price) == (D("0.5"), D("100.5"))
    assert await env.balance("alice", "USDT") == (USDT0 - D("50.25"), D("50.25"))


# -- IOC, FOK, post-only -----------------------------------------------------------


async def test_ioc_remainder_expires_and_releases_what_it_did_not_spend(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    placed = await env.service.place("bob", S, "BUY", "3", "101", time_in_force="IOC")
    assert placed.order.status is OrderStatus.EXPIRED
    assert placed.order.filled_quantity == D("1")
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)
    assert env.service.depth(S).bids == env.service.depth(S).asks == []


async def test_ioc_sell_with_no_bids_expires_and_releases_its_quantity(env):
    placed = await env.service.place("bob", S, "SELL", "3", "100", time_in_force=TimeInForce.IOC)
    assert placed.order.status is OrderStatus.EXPIRED and placed.trades == ()
    assert await env.balance("bob", "BTC") == (BTC0, 0)


async def test_fok_that_can_fill_fills_completely(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    await env.service.place_order("carol", S, "SELL", "1", "101")
    placed = await env.service.place("bob", S, "BUY", "2", "101", time_in_force="FOK")
    assert placed.order.status is OrderStatus.FILLED
    assert await env.balance("bob", "USDT") == (USDT0 - 201, 0)


async def test_fok_that_cannot_fill_changes_nothing_but_releases(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    await env.service.place_order("carol", S, "SELL", "1", "102")
    before = env.service.depth(S)
    placed = await env.service.place("bob", S, "BUY", "2", "101", time_in_force="FOK")
    assert placed.order.status is OrderStatus.EXPIRED
    assert placed.order.filled_quantity == 0 and placed.trades == ()
    assert env.service.depth(S) == before
    assert await env.balance("bob", "USDT") == (USDT0, 0)
    assert (await env.repo.get_order(placed.order.id)).status is OrderStatus.EXPIRED


async def test_post_only_that_would_cross_is_rejected_and_released(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    before = env.service.depth(S)
    placed = await env.service.place("bob", S, "BUY", "1", "100", post_only=True)
    assert placed.order.status is OrderStatus.REJECTED and placed.trades == ()
    assert env.service.depth(S) == before
    assert await env.balance("bob", "USDT") == (USDT0, 0)


async def test_post_only_that_does_not_cross_rests(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    order = await env.service.place_order("bob", S, "BUY", "1", "99.99", post_only=True)
    assert order.status is OrderStatus.OPEN and order.post_only is True
    assert await env.balance("bob", "USDT") == (USDT0 - D("99.99"), D("99.99"))


# -- market orders -----------------------------------------------------------------


async def test_market_buy_reserves_what_a_sweep_of_the_book_costs(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    await env.service.place_order("carol", S, "SELL", "2", "101")
    await env.service.place_order("carol", S, "SELL", "5", "150")
    placed = await env.service.place("bob", S, "BUY", "2", type="MARKET")
    reserve = [args for args in env.wallet.called("reserve") if args[0] == "bob"]
    assert reserve == [("bob", "USDT", D("201"), str(placed.order.id))]
    assert placed.order.status is OrderStatus.FILLED and placed.order.price is None
    assert [(t.price, t.quantity) for t in placed.trades] == [(D("100"), D("1")), (D("101"), D("1"))]
    assert await env.balance("bob", "USDT") == (USDT0 - 201, 0)
    assert await env.balance("bob", "BTC") == (BTC0 + 2, 0)


async def test_market_buy_larger_than_the_book_takes_everything_and_expires(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    placed = await env.service.place("bob", S, "BUY", "3", type=OrderType.MARKET)
    reserve = [args for args in env.wallet.called("reserve") if args[0] == "bob"]
    assert reserve == [("bob", "USDT", D("100"), str(placed.order.id))]
    assert placed.order.status is OrderStatus.EXPIRED and placed.order.filled_quantity == D("1")
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)


async def test_market_buy_on_an_empty_book_expires_and_reserves_nothing():
    async with service_env(deposits=None) as env:  # nobody holds anything
        placed = await env.service.place("bob", S, "BUY", "1", type="MARKET")
        assert placed.order.status is OrderStatus.EXPIRED and placed.trades == ()
        assert env.wallet.called("reserve") == []
        assert await env.ledger.balances("bob") == {}
        await env.check()


async def test_market_buy_reservation_leaves_out_the_users_own_asks(env):
    await env.service.place_order("bob", S, "SELL", "1", "100")
    await env.service.place_order("carol", S, "SELL", "1", "101")
    placed = await env.service.place("bob", S, "BUY", "1", type="MARKET")
    assert env.wallet.called("reserve")[-1] == ("bob", "USDT", D("101"), str(placed.order.id))
    # CANCEL_TAKER: the market buy meets bob's own ask first and is cancelled, funds released
    assert placed.order.status is OrderStatus.CANCELLED and placed.trades == ()
    assert await env.balance("bob", "USDT") == (USDT0, 0)


async def test_market_buy_the_user_cannot_afford_in_full_is_refused():
    async with service_env(deposits={"USDT": D("150"), "BTC": D("10")}) as env:
        await env.service.place_order("alice", S, "SELL", "1", "100")
        await env.service.place_order("carol", S, "SELL", "1", "101")
        before = await env.snapshot()
        with pytest.raises(InsufficientBalanceError):
            await env.service.place("bob", S, "BUY", "2", type="MARKET")
        assert await env.snapshot() == before
        await env.check()


async def test_market_sell_reserves_its_quantity_and_expires_the_rest(env):
    await env.service.place_order("alice", S, "BUY", "1", "100")
    await env.service.place_order("carol", S, "BUY", "1", "99")
    placed = await env.service.place("bob", S, "SELL", "3", type="MARKET")
    assert env.wallet.called("reserve")[-1] == ("bob", "BTC", D("3"), str(placed.order.id))
    assert placed.order.status is OrderStatus.EXPIRED and placed.order.filled_quantity == D("2")
    assert [t.price for t in placed.trades] == [D("100"), D("99")]
    assert await env.balance("bob", "BTC") == (BTC0 - 2, 0)
    assert await env.balance("bob", "USDT") == (USDT0 + 199, 0)
    assert await env.balance("alice", "USDT") == (USDT0 - 100, 0)


async def test_market_sell_that_fills_completely(env):
    await env.service.place_order("alice", S, "BUY", "5", "100")
    placed = await env.service.place("bob", S, "SELL", "2", type="MARKET")
    assert placed.order.status is OrderStatus.FILLED
    assert await env.balance("alice", "USDT") == (USDT0 - 500, D("300"))
    assert await env.balance("bob", "BTC") == (BTC0 - 2, 0)


async def test_market_ioc_and_fok_orders(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    fok = await env.service.place("bob", S, "BUY", "2", type="MARKET", time_in_force="FOK")
    assert fok.order.status is OrderStatus.EXPIRED and fok.trades == ()
    ioc = await env.service.place("bob", S, "BUY", "2", type="MARKET", time_in_force="IOC")
    assert ioc.order.status is OrderStatus.EXPIRED and ioc.order.filled_quantity == D("1")
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)


# -- self-trade prevention ---------------------------------------------------------


async def test_default_cancel_taker_cancels_a_buy_against_the_users_own_ask(env):
    ask = await env.service.place_order("alice", S, "SELL", "1", "100")
    placed = await env.service.place("alice", S, "BUY", "1", "100")
    assert placed.order.status is OrderStatus.CANCELLED and placed.trades == ()
    assert (await env.repo.get_order(ask.id)).status is OrderStatus.OPEN
    assert await env.balance("alice", "USDT") == (USDT0, 0)
    assert await env.balance("alice", "BTC") == (BTC0 - 1, D("1"))
    assert env.service.depth(S).asks == [LevelSnapshot(D("100"), D("1"), 1)]


async def test_cancel_taker_keeps_fills_made_before_meeting_the_own_order(env):
    await env.service.place_order("carol", S, "SELL", "1", "100")
    own = await env.service.place_order("alice", S, "SELL", "1", "101")
    placed = await env.service.place("alice", S, "BUY", "3", "102")
    assert placed.order.status is OrderStatus.CANCELLED
    assert placed.order.filled_quantity == D("1") and len(placed.trades) == 1
    assert await env.balance("alice", "USDT") == (USDT0 - 100, 0)
    assert await env.balance("alice", "BTC") == (BTC0, D("1"))
    assert (await env.repo.get_order(own.id)).status is OrderStatus.OPEN


async def test_cancel_maker_removes_the_own_maker_and_releases_its_funds():
    async with service_env(self_trade_prevention="CANCEL_MAKER") as env:
        ask = await env.service.place_order("alice", S, "SELL", "1", "100")
        other = await env.service.place_order("carol", S, "SELL", "1", "101")
        placed = await env.service.place("alice", S, "BUY", "1", "101")
        assert placed.order.status is OrderStatus.FILLED
        assert [t.sell_order_id for t in placed.trades] == [other.id]
        assert (await env.repo.get_order(ask.id)).status is OrderStatus.CANCELLED
        assert await env.balance("alice", "BTC") == (BTC0 + 1, 0)
        assert await env.balance("alice", "USDT") == (USDT0 - 101, 0)
        assert env.service.depth(S).asks == []
        await env.check()


async def test_cancel_maker_then_rest_the_taker():
    async with service_env(self_trade_prevention="CANCEL_MAKER") as env:
        ask = await env.service.place_order("alice", S, "SELL", "1", "100")
        placed = await env.service.place("alice", S, "BUY", "2", "100")
        assert placed.order.status is OrderStatus.OPEN
        assert (await env.repo.get_order(ask.id)).status is OrderStatus.CANCELLED
        assert await env.balance("alice", "BTC") == (BTC0, 0)
        assert await env.balance("alice", "USDT") == (USDT0 - 200, D("200"))
        await env.check()


async def test_cancel_both_cancels_taker_and_maker():
    async with service_env(self_trade_prevention="CANCEL_BOTH") as env:
        ask = await env.service.place_order("alice", S, "SELL", "1", "100")
        placed = await env.service.place("alice", S, "BUY", "1", "100")
        assert placed.order.status is OrderStatus.CANCELLED
        assert (await env.repo.get_order(ask.id)).status is OrderStatus.CANCELLED
        assert await env.balance("alice", "BTC") == (BTC0, 0)
        assert await env.balance("alice", "USDT") == (USDT0, 0)
        await env.check()


async def test_no_self_trade_prevention_lets_a_user_trade_with_themselves():
    async with service_env(self_trade_prevention="NONE") as env:
        await env.service.place_order("alice", S, "SELL", "1", "100")
        await env.service.place_order("alice", S, "SELL", "1", "101")
        placed = await env.service.place("alice", S, "BUY", "2", type="MARKET")
        assert env.wallet.called("reserve")[-1][2] == D("201")
        assert placed.order.status is OrderStatus.FILLED
        assert [(t.buyer_id, t.seller_id) for t in placed.trades] == [("alice", "alice")] * 2
        assert await env.balance("alice", "BTC") == (BTC0, 0)
        assert await env.balance("alice", "USDT") == (USDT0, 0)
        await env.check()


def test_decrement_self_trade_prevention_is_refused():
    with pytest.raises(ValueError, match="DECREMENT"):
        OrderService(MemoryOrderRepository(), MemoryWallet(), [BTC], self_trade_prevention="DECREMENT")


# -- fees ------------------------------------------------------------------------


async def test_maker_and_taker_fees_go_to_the_fee_account():
    async with service_env(maker_fee_rate="0.001", taker_fee_rate=D("0.002"), fee_account=FEES) as env:
        await env.service.place_order("alice", S, "SELL", "2", "100")  # maker seller
        await env.service.place_order("bob", S, "BUY", "2", "100")  # taker buyer
        # buyer (taker) pays 2 x 0.002 BTC; seller (maker) pays 200 x 0.001 USDT
        assert await env.balance("bob", "BTC") == (BTC0 + D("1.996"), 0)
        assert await env.balance("bob", "USDT") == (USDT0 - 200, 0)
        assert await env.balance("alice", "USDT") == (USDT0 + D("199.8"), 0)
        assert await env.balance("alice", "BTC") == (BTC0 - 2, 0)
        assert await env.balance(FEES, "BTC") == (D("0.004"), 0)
        assert await env.balance(FEES, "USDT") == (D("0.2"), 0)
        await env.check()


async def test_fees_when_the_taker_sells():
    async with service_env(maker_fee_rate="0.001", taker_fee_rate="0.002", fee_account=FEES) as env:
        await env.service.place_order("alice", S, "BUY", "1", "100")  # maker buyer
        await env.service.place_order("bob", S, "SELL", "1", "100")  # taker seller
        assert await env.balance("alice", "BTC") == (BTC0 + D("0.999"), 0)
        assert await env.balance("bob", "USDT") == (USDT0 + D("99.8"), 0)
        assert await env.balance(FEES, "BTC") == (D("0.001"), 0)
        assert await env.balance(FEES, "USDT") == (D("0.2"), 0)
        await env.check()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"maker_fee_rate": "0.001"}, ValueError),  # no fee account
        ({"taker_fee_rate": 1, "fee_account": FEES}, ValueError),
        ({"taker_fee_rate": "-0.001", "fee_account": FEES}, ValueError),
        ({"taker_fee_rate": "NaN", "fee_account": FEES}, ValueError),
        ({"taker_fee_rate": 0.001, "fee_account": FEES}, TypeError),
        ({"maker_fee_rate": True, "fee_account": FEES}, TypeError),
        ({"self_trade_prevention": "SOMETIMES"}, ValueError),
    ],
)
def test_bad_service_options_are_refused(options, error):
    with pytest.raises(error):
        OrderService(MemoryOrderRepository(), MemoryWallet(), [BTC], **options)


def test_instruments_must_be_instruments_and_listed_once():
    with pytest.raises(TypeError):
        OrderService(MemoryOrderRepository(), MemoryWallet(), ["BTC/USDT"])
    with pytest.raises(ValueError, match="twice"):
        OrderService(MemoryOrderRepository(), MemoryWallet(), [BTC, BTC])


async def test_instruments_is_a_copy():
    service = OrderService(MemoryOrderRepository(), MemoryWallet(), [BTC, ETH])
    listed = service.instruments
    assert listed == {"BTC/USDT": BTC, "ETH/USDT": ETH}
    listed.clear()
    assert set(service.instruments) == {"BTC/USDT", "ETH/USDT"}
