"""The matching rules, written as a venue's rulebook would state them, on both backends.

Price-time priority, trades at the maker's price, engine-wide trade ids, sequence
numbers, the time-in-force rules (GTC, IOC, FOK), market orders and post-only.
Prices and quantities on ACME/USD are whole numbers (tick 1, lot 1), so the
rules read as they would on paper.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.engine import Venue, check_books, fills, unchanged
from tradebook import Instrument, InvalidOrderError, OrderStatus, Side

ACME = Instrument("ACME/USD", "1", "1")
ZETA = Instrument("ZETA/USD", "0.5", "0.1")
BTC = Instrument("BTC/USDT", "0.01", "0.001")


@pytest.fixture
def venue(engine_backend):
    return Venue(engine_backend, [ACME])


@pytest.fixture
def two(engine_backend):
    """A venue trading ACME/USD and ZETA/USD."""
    return Venue(engine_backend, [ACME, ZETA])


# -- price-time priority --------------------------------------------------------------------


def test_buy_limit_takes_the_cheapest_asks_first_at_their_prices(venue):
    """A buy limit at 101 for 2 against asks 100 x1 and 101 x2 trades 1@100 then 1@101 and rests nothing."""
    venue.sell("a1", 100, 1)
    venue.sell("a2", 101, 2)
    report = venue.buy("b", 101, 2)
    assert fills(report) == [(100, 1), (101, 1)]
    assert report.status is OrderStatus.FILLED
    assert report.order.filled_quantity == 2 and report.order.remaining_quantity == 0
    assert venue.bids() == []
    assert venue.asks() == [(101, [("a2", 1)])]
    check_books(venue.engine)


def test_trades_print_at_the_resting_orders_price_not_the_takers(venue):
    """A sell at 95 against a bid at 101 trades at 101: the taker gets the price improvement."""
    venue.buy("b", 101, 3)
    report = venue.sell("s", 95, 1)
    assert fills(report) == [(101, 1)]
    assert venue.bids() == [(101, [("b", 2)])]


def test_a_sell_limit_walks_the_bids_best_first_and_rests_its_remainder(venue):
    """Bids 100 x1 and 99 x2; a sell at 99 for 5 trades 1@100, 2@99 and rests 2 at 99."""
    venue.buy("b1", 100, 1)
    venue.buy("b2", 99, 2)
    report = venue.sell("s", 99, 5)
    assert fills(report) == [(100, 1), (99, 2)]
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert venue.bids() == []
    assert venue.asks() == [(99, [("s", 2)])]
    assert venue.resting("s").filled_quantity == 3


def test_within_a_level_the_earliest_order_fills_first(venue):
    """Asks a x1, b x2, c x1 all at 100; a buy of 2 fills a, then half of b; c waits."""
    venue.sell("a", 100, 1)
    venue.sell("b", 100, 2)
    venue.sell("c", 100, 1)
    report = venue.buy("t", 100, 2)
    assert [t.maker_order_id for t in report.trades] == ["a", "b"]
    assert fills(report) == [(100, 1), (100, 1)]
    assert venue.asks() == [(100, [("b", 1), ("c", 1)])]
    b = venue.resting("b")
    assert b.status is OrderStatus.PARTIALLY_FILLED and b.filled_quantity == 1


def test_a_better_price_beats_an_earlier_time(venue):
    """An ask at 101 entered first loses to a later ask at 100."""
    venue.sell("early", 101, 1)
    venue.sell("better", 100, 1)
    report = venue.buy("t", 101, 1)
    assert [t.maker_order_id for t in report.trades] == ["better"]


def test_a_limit_never_trades_through_its_own_price(venue):
    """Asks 100 x1 and 102 x1; a buy at 101 for 3 takes 1@100 and rests 2 at 101."""
    venue.sell("a1", 100, 1)
    venue.sell("a2", 102, 1)
    report = venue.buy("b", 101, 3)
    assert fills(report) == [(100, 1)]
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert venue.engine.top_of_book_raw() == (101, 2, 102, 1)
    check_books(venue.engine)


def test_an_order_that_does_not_cross_rests_open(venue):
    venue.sell("a", 102, 1)
    report = venue.buy("b", 101, 1)
    assert report.trades == [] and report.cancelled == []
    assert report.status is OrderStatus.OPEN
    assert venue.resting("b").status is OrderStatus.OPEN
    assert venue.bids() == [(101, [("b", 1)])]


def test_a_trade_reports_every_field(engine_backend):
    venue = Venue(engine_backend, [BTC])
    venue.sell(7, "100.25", "0.5", owner="maker-co")
    report = venue.buy(8, "101.00", "0.2", owner="taker-co")
    assert len(report.trades) == 1
    trade = report.trades[0]
    assert isinstance(trade, engine_backend.Trade)
    assert isinstance(report, engine_backend.ExecutionReport)
    assert trade.id == 1
    assert trade.symbol == "BTC/USDT"
    assert trade.price == Decimal("100.25") and isinstance(trade.price, Decimal)
    assert trade.quantity == Decimal("0.2") and isinstance(trade.quantity, Decimal)
    assert (trade.price_ticks, trade.quantity_lots) == (10025, 200)
    assert (trade.maker_order_id, trade.taker_order_id) == (7, 8)
    assert (trade.maker_owner, trade.taker_owner) == ("maker-co", "taker-co")
    assert trade.taker_side is Side.BUY
    assert report.order.id == 8 and report.order.symbol == "BTC/USDT"


def test_a_taker_sweeps_a_whole_level_then_the_next(venue):
    for i in range(5):
        venue.sell(f"x{i}", 100, 1)
    venue.sell("y", 101, 10)
    report = venue.buy("t", 105, 7)
    assert [t.maker_order_id for t in report.trades] == ["x0", "x1", "x2", "x3", "x4", "y"]
    assert fills(report)[-1] == (101, 2)
    assert venue.asks() == [(101, [("y", 8)])]


def test_a_maker_filled_over_several_takers(venue):
    venue.sell("m", 100, 5)
    for i in range(4):
        venue.buy(f"t{i}", 100, 1)
        assert venue.resting("m").filled_quantity == i + 1
    report = venue.buy("last", 100, 3)
    assert fills(report) == [(100, 1)]
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert "m" not in venue.engine.book()
    assert venue.bids() == [(100, [("last", 2)])]


# -- trade ids and sequence numbers -------------------------------------------------------------


def test_trade_ids_increase_engine_wide_across_symbols(two):
    """Trades on two symbols share one increasing id counter."""
    ids = []
    for i in range(3):
        two.sell(f"a{i}", 100, 2, symbol="ACME/USD")
        two.sell(f"z{i}", "10.5", "0.3", symbol="ZETA/USD")
    for i in range(3):
        ids += [t.id for t in two.buy(f"ab{i}", 100, 2, symbol="ACME/USD").trades]
        ids += [t.id for t in two.buy(f"zb{i}", "11", "0.3", symbol="ZETA/USD").trades]
        assert two.engine.next_trade_id == ids[-1] + 1
    assert ids == list(range(1, 7))
    report = two.buy("big", 200, 1, symbol="ACME/USD")
    assert report.trades == [] and two.engine.next_trade_id == 7


def test_trade_ids_within_one_order_are_consecutive(venue):
    for i in range(4):
        venue.sell(i, 100 + i, 1)
    report = venue.buy("t", 110, 4)
    assert [t.id for t in report.trades] == [1, 2, 3, 4]
    assert venue.engine.next_trade_id == 5


def test_each_accepted_order_gets_the_next_sequence_of_its_book(two):
    """Sequences count per book; resting, filled, IOC and market orders all take one."""
    e = two.engine
    assert two.sell("a", 100, 1, symbol="ACME/USD").order.sequence == 1
    assert two.sell("z", 10, 1, symbol="ZETA/USD").order.sequence == 1
    assert two.buy("b", 99, 1, symbol="ACME/USD").order.sequence == 2
    assert two.buy("ioc", 90, 1, symbol="ACME/USD", time_in_force="IOC").order.sequence == 3
    assert two.market_buy("mkt", 1, symbol="ACME/USD").order.sequence == 4
    assert two.buy("c", 98, 1, symbol="ACME/USD").order.sequence == 5
    assert e.book("ACME/USD").next_sequence == 6
    assert e.book("ZETA/USD").next_sequence == 2


def test_the_sequence_number_is_the_time_priority(venue):
    venue.sell("first", 100, 1)
    venue.sell("second", 100, 1)
    seqs = [o.sequence for o in venue.engine.book().best_ask]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2
    assert [o.id for o in venue.engine.book().best_ask] == ["first", "second"]


# -- time in force --------------------------------------------------------------------------------


def test_ioc_fills_what_it_can_and_the_rest_expires(venue):
    """Asks 100 x1; an IOC buy at 100 for 3 trades 1 and its remaining 2 expire; nothing rests."""
    venue.sell("a", 100, 1)
    report = venue.buy("ioc", 100, 3, time_in_force="IOC")
    assert fills(report) == [(100, 1)]
    assert report.status is OrderStatus.EXPIRED
    assert (report.order.filled_quantity, report.order.remaining_quantity) == (1, 2)
    assert venue.bids() == [] and venue.asks() == []


def test_ioc_with_nothing_to_take_expires_and_leaves_the_book(venue):
    venue.sell("a", 101, 1)
    venue.buy("b", 99, 1)
    before = venue.asks(), venue.bids()
    report = venue.buy("ioc", 100, 3, time_in_force="IOC")
    assert report.status is OrderStatus.EXPIRED and report.trades == []
    assert report.order.filled_quantity == 0
    assert (venue.asks(), venue.bids()) == before


def test_ioc_that_fills_completely_is_filled(venue):
    venue.sell("a", 100, 5)
    report = venue.buy("ioc", 100, 5, time_in_force="IOC")
    assert report.status is OrderStatus.FILLED and fills(report) == [(100, 5)]


def test_fok_that_can_fill_completely_fills_across_levels(venue):
    venue.sell("a1", 100, 1)
    venue.sell("a2", 101, 2)
    report = venue.buy("fok", 101, 3, time_in_force="FOK")
    assert report.status is OrderStatus.FILLED
    assert fills(report) == [(100, 1), (101, 2)]
    assert venue.asks() == []


def test_fok_that_cannot_fill_completely_changes_nothing_at_all(venue):
    """Asks 100 x1 and 101 x1; a FOK buy at 101 for 3 expires with no trades, no sequence, no book change."""
    venue.sell("a1", 100, 1)
    venue.sell("a2", 101, 1)
    with unchanged(venue.engine):
        report = venue.buy("fok", 101, 3, time_in_force="FOK")
    assert report.status is OrderStatus.EXPIRED and report.trades == [] and report.cancelled == []
    assert report.order.filled_quantity == 0 and report.order.sequence is None
    assert venue.engine.next_trade_id == 1


def test_fok_counts_only_the_liquidity_within_its_price(venue):
    venue.sell("a1", 100, 1)
    venue.sell("a2", 102, 5)
    with unchanged(venue.engine):
        assert venue.buy("fok", 101, 2, time_in_force="FOK").status is OrderStatus.EXPIRED
    assert venue.buy("fok2", 102, 6, time_in_force="FOK").status is OrderStatus.FILLED


def test_fok_with_exactly_enough_liquidity_fills(venue):
    venue.buy("b1", 100, 2)
    venue.buy("b2", 99, 3)
    report = venue.sell("fok", 99, 5, time_in_force="FOK")
    assert report.status is OrderStatus.FILLED and fills(report) == [(100, 2), (99, 3)]


def test_fok_on_an_empty_book_expires(venue):
    with unchanged(venue.engine):
        assert venue.sell("fok", 100, 1, time_in_force="FOK").status is OrderStatus.EXPIRED


def test_market_fok_fills_against_the_whole_side_or_not_at_all(venue):
    venue.sell("a1", 100, 1)
    venue.sell("a2", 500, 1)
    with unchanged(venue.engine):
        assert venue.market_buy("m1", 3, time_in_force="FOK").status is OrderStatus.EXPIRED
    report = venue.market_buy("m2", 2, time_in_force="FOK")
    assert report.status is OrderStatus.FILLED and fills(report) == [(100, 1), (500, 1)]


# -- market orders --------------------------------------------------------------------------------


def test_a_market_order_walks_several_levels_and_the_rest_expires(venue):
    """Asks 100 x1, 101 x1, 105 x2; a market buy of 5 trades 1@100, 1@101, 2@105 and expires 1."""
    venue.sell("a1", 100, 1)
    venue.sell("a2", 101, 1)
    venue.sell("a3", 105, 2)
    report = venue.market_buy("m", 5)
    assert fills(report) == [(100, 1), (101, 1), (105, 2)]
    assert report.status is OrderStatus.EXPIRED
    assert report.order.filled_quantity == 4 and report.order.remaining_quantity == 1
    assert report.order.price is None
    assert venue.asks() == [] and venue.bids() == []


def test_a_market_order_on_an_empty_book_expires_without_trades(venue):
    report = venue.market_sell("m", 3)
    assert report.status is OrderStatus.EXPIRED and report.trades == []
    assert venue.bids() == [] and venue.asks() == [] and len(venue.engine.book()) == 0


def test_a_market_sell_walks_the_bids(venue):
    venue.buy("b1", 100, 1)
    venue.buy("b2", 90, 1)
    report = venue.market_sell("m", 2)
    assert fills(report) == [(100, 1), (90, 1)]
    assert report.status is OrderStatus.FILLED


def test_a_market_order_never_rests_whatever_its_time_in_force(venue):
    venue.sell("a", 100, 1)
    report = venue.market_buy("m", 3, time_in_force="GTC")
    assert report.status is OrderStatus.EXPIRED and "m" not in venue.engine.book()
    assert venue.bids() == []


# -- post-only ----------------------------------------------------------------------------------


def test_post_only_that_would_rest_rests(venue):
    venue.sell("a", 101, 1)
    report = venue.buy("po", 100, 1, post_only=True)
    assert report.status is OrderStatus.OPEN and report.trades == []
    assert venue.resting("po").post_only is True


@pytest.mark.parametrize("price", [101, 102])
def test_post_only_that_would_take_is_rejected_and_changes_nothing(venue, price):
    venue.sell("a", 101, 1)
    with unchanged(venue.engine):
        report = venue.buy("po", price, 1, post_only=True)
    assert report.status is OrderStatus.REJECTED
    assert report.trades == [] and report.cancelled == [] and report.order.sequence is None


@pytest.mark.parametrize("stp", ["NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT"])
def test_post_only_is_rejected_even_against_its_own_owners_orders(venue, stp):
    venue.sell("mine", 100, 1, owner="alice")
    with unchanged(venue.engine):
        report = venue.buy("po", 100, 1, owner="alice", post_only=True, self_trade_prevention=stp)
    assert report.status is OrderStatus.REJECTED and report.cancelled == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_in_force": "IOC"},
        {"time_in_force": "FOK"},
        {"type": "MARKET", "price": None},
    ],
)
def test_post_only_on_anything_but_limit_gtc_raises(venue, kwargs):
    args = {"price": 100, **kwargs}
    price = args.pop("price")
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.submit(venue.Order("po", "BUY", price, 1, post_only=True, **args))


def test_a_rejected_or_expired_order_takes_no_sequence(venue):
    venue.sell("a", 100, 1)
    venue.buy("po", 100, 1, post_only=True)
    venue.buy("fok", 100, 2, time_in_force="FOK")
    assert venue.buy("next", 90, 1).order.sequence == 2


# -- Decimal grid ----------------------------------------------------------------------------------


def test_decimal_prices_and_quantities_on_a_fine_grid(engine_backend):
    venue = Venue(engine_backend, [BTC])
    venue.sell(1, "30000.01", "0.125")
    venue.sell(2, Decimal("30000.02"), "0.5")
    report = venue.buy(3, "30000.02", Decimal("0.2"))
    assert fills(report) == [(Decimal("30000.01"), Decimal("0.125")), (Decimal("30000.02"), Decimal("0.075"))]
    assert venue.engine.top_of_book().ask_quantity == Decimal("0.425")
