"""Self-trade prevention, rule by rule, on both backends.

It applies when taker and maker share a non-None owner, in the taker's mode (its
own, else the engine's default): NONE trades, CANCEL_TAKER stops the taker
(fills kept, maker untouched), CANCEL_MAKER cancels the resting order and keeps
matching, CANCEL_BOTH does both, DECREMENT shrinks both by the smaller remaining
quantity without a trade and cancels whichever reaches its filled quantity.
"""

from __future__ import annotations

import pytest

from models.engine import Venue, check_books, fills, unchanged
from tradebook import Instrument, OrderStatus, SelfTradePrevention

ACME = Instrument("ACME/USD", "1", "1")
MODES = ["NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT"]


def venue_with(engine_backend, stp="CANCEL_TAKER"):
    return Venue(engine_backend, [ACME], stp=stp)


@pytest.fixture
def venue(engine_backend):
    return venue_with(engine_backend)


def cancelled(report):
    return [(o.id, o.status, o.quantity, o.filled_quantity) for o in report.cancelled]


# -- CANCEL_TAKER -----------------------------------------------------------------------------


def test_cancel_taker_stops_the_taker_keeping_its_fills_and_leaves_the_maker(venue):
    """Asks: bob 100 x1, alice 100 x2. Alice buys 3 at 100: 1@100 from bob, then she meets
    her own order; she is CANCELLED with 1 filled, her resting ask is untouched."""
    venue.sell("bob-ask", 100, 1, owner="bob")
    venue.sell("alice-ask", 100, 2, owner="alice")
    report = venue.buy("alice-bid", 100, 3, owner="alice", self_trade_prevention="CANCEL_TAKER")
    assert fills(report) == [(100, 1)]
    assert report.status is OrderStatus.CANCELLED
    assert (report.order.filled_quantity, report.order.quantity) == (1, 3)
    assert report.cancelled == []
    assert venue.asks() == [(100, [("alice-ask", 2)])]
    assert venue.bids() == []
    check_books(venue.engine)


def test_cancel_taker_is_the_engine_default(venue):
    assert venue.engine.self_trade_prevention is SelfTradePrevention.CANCEL_TAKER
    venue.sell("mine", 100, 1, owner="alice")
    report = venue.buy("me", 100, 1, owner="alice")
    assert report.status is OrderStatus.CANCELLED and report.trades == []
    assert venue.asks() == [(100, [("mine", 1)])]


def test_cancel_taker_before_any_fill_changes_no_level(venue):
    venue.sell("mine", 100, 1, owner="alice")
    venue.sell("other", 101, 1, owner="bob")
    seen = []
    venue.engine.subscribe(seen.append)
    report = venue.buy("me", 101, 2, owner="alice")
    assert report.status is OrderStatus.CANCELLED and report.trades == []
    assert seen == []
    assert venue.asks() == [(100, [("mine", 1)]), (101, [("other", 1)])]


# -- CANCEL_MAKER ------------------------------------------------------------------------------------


def test_cancel_maker_cancels_the_resting_order_and_keeps_matching(engine_backend):
    """Asks: alice 100 x2, bob 100 x1, bob 101 x5. Alice buys 3 at 101 with CANCEL_MAKER: her own ask is
    cancelled (listed in the report), then she trades 1@100 and 2@101 with bob."""
    venue = venue_with(engine_backend)
    venue.sell("alice-ask", 100, 2, owner="alice")
    venue.sell("bob-1", 100, 1, owner="bob")
    venue.sell("bob-2", 101, 5, owner="bob")
    report = venue.buy("alice-bid", 101, 3, owner="alice", self_trade_prevention="CANCEL_MAKER")
    assert cancelled(report) == [("alice-ask", OrderStatus.CANCELLED, 2, 0)]
    assert fills(report) == [(100, 1), (101, 2)]
    assert report.status is OrderStatus.FILLED
    assert "alice-ask" not in venue.engine.book()
    assert venue.asks() == [(101, [("bob-2", 3)])]


def test_cancel_maker_removes_several_own_orders_then_rests(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_MAKER")
    venue.sell("own1", 100, 1, owner="alice")
    venue.sell("own2", 100, 1, owner="alice")
    venue.sell("own3", 101, 4, owner="alice")
    report = venue.buy("bid", 101, 2, owner="alice")
    assert [o.id for o in report.cancelled] == ["own1", "own2", "own3"]
    assert report.trades == []
    assert report.status is OrderStatus.OPEN
    assert venue.asks() == [] and venue.bids() == [(101, [("bid", 2)])]


def test_cancel_maker_keeps_a_partially_filled_makers_fills(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_MAKER")
    venue.sell("own", 100, 5, owner="alice")
    venue.buy("bob", 100, 2, owner="bob")
    report = venue.buy("alice", 100, 1, owner="alice")
    assert cancelled(report) == [("own", OrderStatus.CANCELLED, 5, 2)]
    assert report.order.status is OrderStatus.OPEN


# -- CANCEL_BOTH ---------------------------------------------------------------------------------------


def test_cancel_both_cancels_the_maker_and_stops_the_taker_keeping_its_fills(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_BOTH")
    venue.sell("bob", 100, 1, owner="bob")
    venue.sell("own", 100, 3, owner="alice")
    venue.sell("own-later", 100, 3, owner="alice")
    report = venue.buy("alice", 100, 5, owner="alice")
    assert fills(report) == [(100, 1)]
    assert report.status is OrderStatus.CANCELLED and report.order.filled_quantity == 1
    assert cancelled(report) == [("own", OrderStatus.CANCELLED, 3, 0)]
    assert venue.asks() == [(100, [("own-later", 3)])]
    assert venue.bids() == []


# -- DECREMENT -----------------------------------------------------------------------------------------


def test_decrement_bigger_taker_cancels_the_maker_and_keeps_matching(engine_backend):
    """Alice's ask 100 x2, bob's ask 100 x3. Alice buys 4 with DECREMENT: both shrink by 2 (no trade), her
    ask reaches zero and is cancelled; her bid, now 2, trades 2@100 with bob."""
    venue = venue_with(engine_backend, "DECREMENT")
    venue.sell("own", 100, 2, owner="alice")
    venue.sell("bob", 100, 3, owner="bob")
    report = venue.buy("alice", 100, 4, owner="alice")
    assert cancelled(report) == [("own", OrderStatus.CANCELLED, 0, 0)]
    assert fills(report) == [(100, 2)]
    assert report.status is OrderStatus.FILLED
    assert (report.order.quantity, report.order.filled_quantity) == (2, 2)
    assert venue.asks() == [(100, [("bob", 1)])]


def test_decrement_bigger_maker_shrinks_it_in_place_and_cancels_the_taker(engine_backend):
    venue = venue_with(engine_backend, "DECREMENT")
    venue.sell("own", 100, 5, owner="alice")
    venue.sell("later", 100, 1, owner="bob")
    seq = venue.resting("own").sequence
    report = venue.buy("alice", 100, 2, owner="alice")
    assert report.trades == [] and report.cancelled == []
    assert report.status is OrderStatus.CANCELLED
    assert (report.order.quantity, report.order.filled_quantity) == (0, 0)
    own = venue.resting("own")
    assert (own.quantity, own.remaining_quantity, own.status) == (3, 3, OrderStatus.OPEN)
    assert own.sequence == seq  # shrinking keeps time priority
    assert venue.asks() == [(100, [("own", 3), ("later", 1)])]
    check_books(venue.engine)


def test_decrement_equal_quantities_cancels_both(engine_backend):
    venue = venue_with(engine_backend, "DECREMENT")
    venue.sell("own", 100, 3, owner="alice")
    report = venue.buy("alice", 100, 3, owner="alice")
    assert cancelled(report) == [("own", OrderStatus.CANCELLED, 0, 0)]
    assert report.status is OrderStatus.CANCELLED and report.trades == []
    assert report.order.quantity == 0
    assert venue.asks() == [] and venue.bids() == []


def test_decrement_a_partially_filled_maker_down_to_its_fill(engine_backend):
    """A maker with 2 of 5 filled, decremented by its remaining 3, is cancelled with quantity 2 = filled 2."""
    venue = venue_with(engine_backend, "DECREMENT")
    venue.sell("own", 100, 5, owner="alice")
    venue.buy("bob", 100, 2, owner="bob")
    report = venue.buy("alice", 100, 4, owner="alice")
    assert cancelled(report) == [("own", OrderStatus.CANCELLED, 2, 2)]
    assert report.status is OrderStatus.OPEN
    assert (report.order.quantity, report.order.filled_quantity) == (1, 0)
    assert venue.bids() == [(100, [("alice", 1)])]


def test_decrement_a_taker_with_fills_down_to_its_fill(engine_backend):
    """The taker fills 1 from bob, then meets its own larger ask: it shrinks to its 1 filled and is CANCELLED."""
    venue = venue_with(engine_backend, "DECREMENT")
    venue.sell("bob", 100, 1, owner="bob")
    venue.sell("own", 101, 9, owner="alice")
    report = venue.buy("alice", 101, 4, owner="alice")
    assert fills(report) == [(100, 1)]
    assert report.status is OrderStatus.CANCELLED
    assert (report.order.quantity, report.order.filled_quantity, report.order.remaining_quantity) == (1, 1, 0)
    assert venue.resting("own").quantity == 6
    assert venue.asks() == [(101, [("own", 6)])]


def test_decrement_through_several_own_makers(engine_backend):
    venue = venue_with(engine_backend, "DECREMENT")
    venue.buy("own1", 100, 1, owner="alice")
    venue.buy("own2", 99, 1, owner="alice")
    venue.buy("bob", 98, 5, owner="bob")
    report = venue.sell("alice", 98, 4, owner="alice")
    assert [o.id for o in report.cancelled] == ["own1", "own2"]
    assert fills(report) == [(98, 2)]
    assert report.status is OrderStatus.FILLED and report.order.quantity == 2
    assert venue.bids() == [(98, [("bob", 3)])]


# -- NONE, owners, defaults and overrides --------------------------------------------------------------


def test_stp_none_trades_with_itself(engine_backend):
    venue = venue_with(engine_backend, "NONE")
    venue.sell("own", 100, 2, owner="alice")
    report = venue.buy("alice", 100, 1, owner="alice")
    assert fills(report) == [(100, 1)]
    trade = report.trades[0]
    assert trade.maker_owner == trade.taker_owner == "alice"
    assert report.status is OrderStatus.FILLED


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("maker_owner", "taker_owner"), [(None, None), ("alice", None), (None, "alice")])
def test_a_none_owner_never_triggers_stp(engine_backend, mode, maker_owner, taker_owner):
    venue = venue_with(engine_backend, mode)
    venue.sell("m", 100, 1, owner=maker_owner)
    report = venue.buy("t", 100, 1, owner=taker_owner, self_trade_prevention=mode)
    assert fills(report) == [(100, 1)] and report.cancelled == []
    assert report.status is OrderStatus.FILLED


@pytest.mark.parametrize("mode", MODES)
def test_different_owners_always_trade(engine_backend, mode):
    venue = venue_with(engine_backend, mode)
    venue.sell("m", 100, 1, owner=1)
    report = venue.buy("t", 100, 1, owner="1")
    assert fills(report) == [(100, 1)]


def test_the_takers_own_mode_overrides_the_engine_default(engine_backend):
    venue = venue_with(engine_backend, "NONE")
    venue.sell("own", 100, 2, owner="alice")
    report = venue.buy("t1", 100, 1, owner="alice", self_trade_prevention="CANCEL_TAKER")
    assert report.status is OrderStatus.CANCELLED and report.trades == []
    report = venue.buy("t2", 100, 1, owner="alice")  # default NONE: trades
    assert fills(report) == [(100, 1)]

    venue = venue_with(engine_backend, "CANCEL_TAKER")
    venue.sell("own", 100, 2, owner="alice")
    assert fills(venue.buy("t", 100, 1, owner="alice", self_trade_prevention="NONE")) == [(100, 1)]


def test_the_makers_mode_does_not_matter(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_TAKER")
    venue.sell("own", 100, 2, owner="alice", self_trade_prevention="NONE")
    report = venue.buy("t", 100, 1, owner="alice")
    assert report.status is OrderStatus.CANCELLED and report.trades == []
    venue = venue_with(engine_backend, "NONE")
    venue.sell("own", 100, 2, owner="alice", self_trade_prevention="CANCEL_MAKER")
    assert fills(venue.buy("t", 100, 1, owner="alice")) == [(100, 1)]


def test_modes_accept_their_string_values(engine_backend):
    engine = engine_backend.MatchingEngine([ACME], self_trade_prevention="DECREMENT")
    assert engine.self_trade_prevention is SelfTradePrevention.DECREMENT
    order = engine_backend.Order(1, "BUY", 1, 1, self_trade_prevention="CANCEL_BOTH")
    assert order.self_trade_prevention is SelfTradePrevention.CANCEL_BOTH


def test_stp_applies_to_market_orders(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_MAKER")
    venue.sell("own", 100, 1, owner="alice")
    venue.sell("bob", 101, 1, owner="bob")
    report = venue.market_buy("m", 3, owner="alice")
    assert [o.id for o in report.cancelled] == ["own"]
    assert fills(report) == [(101, 1)]
    assert report.status is OrderStatus.EXPIRED


def test_stp_on_a_market_order_that_cancels_the_taker(engine_backend):
    venue = venue_with(engine_backend)
    venue.buy("bob", 100, 1, owner="bob")
    venue.buy("own", 99, 1, owner="alice")
    report = venue.market_sell("m", 3, owner="alice")
    assert fills(report) == [(100, 1)]
    assert report.status is OrderStatus.CANCELLED


# -- FOK judged with STP -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["CANCEL_TAKER", "CANCEL_BOTH", "DECREMENT"])
def test_fok_that_would_meet_its_own_order_before_filling_changes_nothing(engine_backend, mode):
    """Asks: bob 100 x1, alice 100 x1, bob 101 x5. Alice's FOK buy of 3 at 101 would be stopped (or shrunk) by
    her own ask before it filled: EXPIRED, and nothing at all changes, not even her own ask."""
    venue = venue_with(engine_backend, mode)
    venue.sell("bob-1", 100, 1, owner="bob")
    venue.sell("own", 100, 1, owner="alice")
    venue.sell("bob-2", 101, 5, owner="bob")
    with unchanged(venue.engine):
        report = venue.buy("fok", 101, 3, owner="alice", time_in_force="FOK")
    assert report.status is OrderStatus.EXPIRED
    assert report.trades == [] and report.cancelled == []
    assert report.order.quantity == 3


def test_fok_with_cancel_maker_fills_past_its_own_orders(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_MAKER")
    venue.sell("own", 100, 5, owner="alice")
    venue.sell("bob", 101, 3, owner="bob")
    report = venue.buy("fok", 101, 3, owner="alice", time_in_force="FOK")
    assert report.status is OrderStatus.FILLED
    assert fills(report) == [(101, 3)]
    assert [o.id for o in report.cancelled] == ["own"]


def test_fok_with_cancel_maker_does_not_count_its_own_orders_as_liquidity(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_MAKER")
    venue.sell("own", 100, 5, owner="alice")
    venue.sell("bob", 101, 2, owner="bob")
    with unchanged(venue.engine):
        report = venue.buy("fok", 101, 3, owner="alice", time_in_force="FOK")
    assert report.status is OrderStatus.EXPIRED and report.cancelled == []
    assert venue.asks()[0] == (100, [("own", 5)])


def test_fok_that_fills_before_reaching_its_own_order_fills(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_TAKER")
    venue.sell("bob", 100, 1, owner="bob")
    venue.sell("own", 100, 1, owner="alice")
    report = venue.buy("fok", 100, 1, owner="alice", time_in_force="FOK")
    assert report.status is OrderStatus.FILLED and fills(report) == [(100, 1)]
    assert venue.asks() == [(100, [("own", 1)])]


def test_fok_with_stp_none_fills_against_itself(engine_backend):
    venue = venue_with(engine_backend, "NONE")
    venue.sell("own", 100, 2, owner="alice")
    report = venue.buy("fok", 100, 2, owner="alice", time_in_force="FOK")
    assert report.status is OrderStatus.FILLED


def test_ioc_stopped_by_stp_is_cancelled_not_expired(engine_backend):
    venue = venue_with(engine_backend, "CANCEL_TAKER")
    venue.sell("bob", 100, 1, owner="bob")
    venue.sell("own", 101, 1, owner="alice")
    report = venue.buy("ioc", 101, 3, owner="alice", time_in_force="IOC")
    assert report.status is OrderStatus.CANCELLED and fills(report) == [(100, 1)]
