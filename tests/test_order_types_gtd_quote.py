"""Good-till-date orders and quote-quantity market orders, written from the venue rules, on both backends.

GTD: the engine has no wall clock; ``advance_time(now)`` moves its time forward and
expires every GTD order (resting, or a stop still waiting) with ``expire_at <= now``,
in order of ``expire_at`` then sequence. An order submitted at or after its expiry is
EXPIRED without trading. Quote quantity (Binance's ``quoteOrderQty``): a MARKET order
that spends (BUY) or receives (SELL) up to a quote amount, in whole lots, taking from
each maker as many lots as the budget left allows and stopping at the first maker where
not one more lot fits. Expected trades are worked out by hand from those rules (see
shared/api.md and notes/ordertypes-spec.md, decisions 7 and 8).

X/USD trades on a grid of 1 and 1 so that every number reads as it would on paper.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from models.engine import Venue, check_books, unchanged
from tradebook import Instrument, InvalidOrderError, OrderStatus, Side

X = Instrument("X/USD", "1", "1")
BTC = Instrument("BTC/USDT", "0.01", "0.001")

OPEN = OrderStatus.OPEN
FILLED = OrderStatus.FILLED
PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
EXPIRED = OrderStatus.EXPIRED
CANCELLED = OrderStatus.CANCELLED
UNTRIGGERED = OrderStatus.UNTRIGGERED


@pytest.fixture
def venue(engine_backend):
    return Venue(engine_backend, [X])


def place(venue, oid, side, price, qty, **kw):
    """Submit an order built here; returns (the submitted Order object, its report)."""
    order = venue.Order(oid, side, price, qty, **kw)
    return order, venue.engine.submit(order)


def gtd(venue, oid, side, price, qty, expire_at, **kw):
    return place(venue, oid, side, price, qty, time_in_force="GTD", expire_at=expire_at, **kw)


def quote(venue, oid, side, amount, **kw):
    """A MARKET order sized by the quote amount (its quantity is None)."""
    return place(venue, oid, side, None, None, type="MARKET", quote_quantity=amount, **kw)


def trades_of(report):
    """``[(price, quantity, maker id), ...]`` of a report's trades."""
    return [(t.price, t.quantity, t.maker_order_id) for t in report.trades]


def trade_at(venue, price):
    """Print one trade of 1 at ``price`` (a sell rests, a buy takes it)."""
    venue.prints = getattr(venue, "prints", 0) + 1
    maker = f"pm{venue.prints}"
    assert venue.sell(maker, price, 1).status is OPEN
    assert trades_of(venue.buy(f"pt{venue.prints}", price, 1)) == [(price, 1, maker)]


def visible(venue):
    book = venue.engine.book()
    return (len(book), book.depth(100), venue.bids(), venue.asks())


# == GTD ============================================================================================

# -- time ------------------------------------------------------------------------------------------


def test_time_starts_at_zero_and_advance_time_sets_it(venue):
    """Time is the caller's: 0 at start, then whatever advance_time was given; the same time again is allowed."""
    e = venue.engine
    assert e.time == 0 and isinstance(e.time, int)
    assert e.advance_time(5) == []
    assert e.time == 5
    assert e.advance_time(5) == []  # equal time: allowed
    assert e.time == 5
    assert e.advance_time(7) == [] and e.time == 7


def test_advance_time_backwards_raises_value_error_and_changes_nothing(venue):
    e = venue.engine
    e.advance_time(10)
    gtd(venue, "g", "SELL", 100, 1, 12)
    with unchanged(e), pytest.raises(ValueError):
        e.advance_time(9)
    assert e.time == 10
    assert venue.asks() == [(100, [("g", 1)])]


# -- expiry ------------------------------------------------------------------------------------------


def test_advance_time_expires_due_orders_by_expire_at_then_sequence(venue):
    """Due at 30: 4 and 2 (expire 10, 4 accepted first), 3 and the stop (20), 1 (30); 5 (40) and the GTC stay."""
    e = venue.engine
    o1, _ = gtd(venue, 1, "SELL", 105, 1, 30)
    o4, _ = gtd(venue, 4, "BUY", 95, 1, 10)
    o3, _ = gtd(venue, 3, "SELL", 106, 1, 20)
    stop, report = gtd(venue, "stop", "SELL", None, 1, 20, type="STOP", stop_price=90)
    assert report.status is UNTRIGGERED  # no trade yet: it waits
    o2, _ = gtd(venue, 2, "SELL", 105, 2, 10)
    o5, _ = gtd(venue, 5, "BUY", 94, 1, 40)
    venue.buy("gtc", 94, 3)
    expired = e.advance_time(30)
    assert [o.id for o in expired] == [4, 2, 3, "stop", 1]
    assert all(o.status is EXPIRED for o in expired)
    assert [o.status for o in (o1, o2, o3, o4, stop)] == [EXPIRED] * 5
    assert o5.status is OPEN
    assert venue.bids() == [(94, [(5, 1), ("gtc", 3)])]
    assert venue.asks() == []
    assert e.time == 30
    assert [o.id for o in e.advance_time(40)] == [5]
    assert o5.status is EXPIRED
    check_books(e)


def test_an_order_expires_when_time_reaches_expire_at_not_before(venue):
    """expire_at 10: still resting at 9; expired at 10 (expire_at <= now)."""
    e = venue.engine
    g, _ = gtd(venue, "g", "SELL", 100, 1, 10)
    assert e.advance_time(9) == []
    assert g.status is OPEN and venue.asks() == [(100, [("g", 1)])]
    assert [o.id for o in e.advance_time(10)] == ["g"]
    assert g.status is EXPIRED and venue.asks() == []
    assert e.advance_time(11) == []  # expired once only


def test_advance_time_returns_the_orders_it_expired_and_only_those(venue):
    """Two GTD bids expire at 10 and 20: the first call returns one, the second the other."""
    e = venue.engine
    gtd(venue, "a", "BUY", 99, 1, 10)
    gtd(venue, "b", "BUY", 98, 1, 20)
    first = e.advance_time(15)
    assert [(o.id, o.status) for o in first] == [("a", EXPIRED)]
    second = e.advance_time(25)
    assert [(o.id, o.status) for o in second] == [("b", EXPIRED)]
    assert venue.bids() == []


@pytest.mark.parametrize(("now", "expire_at"), [(0, 0), (10, 10), (10, 9)])
def test_a_gtd_order_submitted_at_or_after_its_expiry_is_expired_without_trading(venue, now, expire_at):
    """expire_at <= time at submit: EXPIRED at once, no trade even against a crossing ask."""
    e = venue.engine
    venue.sell("a", 100, 1)
    if now:
        e.advance_time(now)
    before = visible(venue)
    order, report = gtd(venue, "late", "BUY", 100, 1, expire_at)
    assert report.status is EXPIRED and order.status is EXPIRED
    assert report.trades == [] and order.filled_quantity == 0
    assert visible(venue) == before
    assert e.last_trade_price() is None and e.next_trade_id == 1
    assert "late" not in e.book()


def test_a_gtd_order_with_time_left_rests_and_trades_like_gtc(venue):
    """expire_at 1 at time 0: it crosses an ask 100 x1, trades, and rests the rest."""
    venue.sell("a", 100, 1)
    order, report = gtd(venue, "g", "BUY", 100, 3, 1)
    assert trades_of(report) == [(100, 1, "a")]
    assert report.status is PARTIALLY_FILLED
    assert venue.bids() == [(100, [("g", 2)])]
    assert order.time_in_force == "GTD" and order.expire_at == 1


def test_a_gtd_stop_submitted_already_expired_is_expired_not_untriggered(venue):
    """At time 10 a stop with expire_at 10 is EXPIRED (not UNTRIGGERED)."""
    trade_at(venue, 100)
    venue.engine.advance_time(10)
    s1, r1 = gtd(venue, "s1", "SELL", None, 1, 10, type="STOP", stop_price=95)
    s2, r2 = gtd(venue, "s2", "BUY", 106, 1, 5, type="STOP_LIMIT", stop_price=105)
    assert (r1.status, r2.status) == (EXPIRED, EXPIRED)
    assert (s1.status, s2.status) == (EXPIRED, EXPIRED)
    assert r1.trades == [] and r2.trades == []


def test_a_waiting_gtd_stop_expires_and_no_longer_triggers(venue):
    """Last 100, SELL stop 98 GTD 50: expired at 50; a later print at 98 triggers nothing."""
    trade_at(venue, 100)
    ss, report = gtd(venue, "ss", "SELL", None, 1, 50, type="STOP", stop_price=98)
    assert report.status is UNTRIGGERED
    venue.buy("b90", 90, 1)
    assert venue.engine.advance_time(49) == []
    assert ss.status is UNTRIGGERED
    assert [o.id for o in venue.engine.advance_time(50)] == ["ss"]
    assert ss.status is EXPIRED
    venue.buy("b98", 98, 1)
    report = venue.sell("t", 98, 1)
    assert trades_of(report) == [(98, 1, "b98")]
    assert report.triggered == []
    assert venue.bids() == [(90, [("b90", 1)])]


def test_a_triggered_gtd_stop_limit_rests_as_gtd_and_expires(venue):
    """BUY stop-limit 101 (stop 102) GTD 50: triggered at time 10 it rests at 101; at 50 it expires."""
    trade_at(venue, 100)
    sl, _ = gtd(venue, "sl", "BUY", 101, 2, 50, type="STOP_LIMIT", stop_price=102)
    venue.engine.advance_time(10)
    venue.sell("trig", 102, 1)
    report = venue.buy("t", 102, 1)
    assert [(r.order.id, r.status) for r in report.triggered] == [("sl", OPEN)]
    assert venue.bids() == [(101, [("sl", 2)])]
    assert venue.engine.advance_time(49) == []
    assert [o.id for o in venue.engine.advance_time(50)] == ["sl"]
    assert sl.status is EXPIRED and venue.bids() == []


def test_expiry_keeps_earlier_fills(venue):
    """GTD sell 5 at 100, 2 bought; at expiry it is EXPIRED with its 2 filled, and the trade stands."""
    g, _ = gtd(venue, "g", "SELL", 100, 5, 100)
    venue.buy("t", 100, 2)
    assert g.status is PARTIALLY_FILLED
    (expired,) = venue.engine.advance_time(100)
    assert expired.id == "g" and expired.status is EXPIRED
    assert (expired.quantity, expired.filled_quantity, expired.remaining_quantity) == (5, 2, 3)
    assert g.status is EXPIRED and g.filled_quantity == 2
    assert venue.asks() == []
    assert venue.engine.last_trade_price() == 100 and venue.engine.next_trade_id == 2


def test_an_expired_gtd_iceberg_takes_its_hidden_quantity_with_it(venue):
    """A GTD iceberg 10 showing 3, 4 sold: at expiry nothing of it is left, hidden part included."""
    gtd(venue, "ice", "SELL", 100, 10, 5, display_quantity=3)
    venue.buy("t", 100, 4)
    (expired,) = venue.engine.advance_time(5)
    assert expired.id == "ice" and expired.status is EXPIRED and expired.filled_quantity == 4
    assert venue.asks() == [] and len(venue.engine.book()) == 0
    report = venue.buy("t2", 100, 1)
    assert report.trades == [] and report.status is OPEN


def test_subscribers_get_the_deltas_of_expired_orders(venue):
    """Expiring 2 of the 5 offered at 101 and the only bid at 99 publishes 101 -> 3 and 99 -> 0, no trades."""
    updates = []
    venue.engine.subscribe(updates.append)
    venue.sell("g", 101, 3)
    gtd(venue, "e1", "SELL", 101, 2, 10)
    gtd(venue, "e2", "BUY", 99, 1, 10)
    updates.clear()
    venue.engine.advance_time(10)
    assert updates, "expiry changed the book: subscribers must hear of it"
    final = {}
    for update in updates:
        assert update.symbol == "X/USD" and update.trades == []
        for d in update.deltas:
            final[(d.side, d.price)] = d.quantity
    assert final == {(Side.SELL, Decimal(101)): 3, (Side.BUY, Decimal(99)): 0}
    # a time step that expires nothing changes no book, so it publishes nothing
    updates.clear()
    venue.engine.advance_time(20)
    assert updates == []


def test_snapshot_round_trip_keeps_time_and_gtd_expiries(venue):
    """At time 5: a (101, expire 20), b (102, expire 10) and a waiting stop s (expire 15); a restore keeps them."""
    e = venue.engine
    e.advance_time(5)
    gtd(venue, "a", "SELL", 101, 1, 20)
    gtd(venue, "b", "SELL", 102, 1, 10)
    gtd(venue, "s", "SELL", None, 1, 15, type="STOP", stop_price=90)
    data = json.loads(json.dumps(e.snapshot()))
    copy = Venue(venue.backend, [X])
    copy.engine = venue.backend.MatchingEngine.from_snapshot(data)
    assert copy.engine.time == 5
    assert json.loads(json.dumps(copy.engine.snapshot())) == data
    for v in (venue, copy):
        with pytest.raises(ValueError):
            v.engine.advance_time(4)
        assert [(o.id, o.status) for o in v.engine.advance_time(15)] == [("b", EXPIRED), ("s", EXPIRED)]
        assert [(o.id, o.status) for o in v.engine.advance_time(20)] == [("a", EXPIRED)]
        assert v.asks() == []


# == quote quantity =================================================================================


def test_a_quote_buy_spends_its_budget_across_levels_and_the_rest_expires(venue):
    """Budget 600: 2 @100 (200, 400 left), 3 @101 (303, 97 left); 97 buys no lot at 105: EXPIRED."""
    venue.sell("a1", 100, 2)
    venue.sell("a2", 101, 3)
    venue.sell("a3", 105, 10)
    order, report = quote(venue, "q", "BUY", 600)
    assert trades_of(report) == [(100, 2, "a1"), (101, 3, "a2")]
    assert report.status is EXPIRED and order.status is EXPIRED
    assert order.quantity is None and report.order.quantity is None
    assert order.quote_quantity == Decimal(600) and isinstance(order.quote_quantity, Decimal)
    assert order.filled_quantity == 5
    assert venue.asks() == [(105, [("a3", 10)])] and venue.bids() == []
    check_books(venue.engine)


def test_a_quote_buy_that_spends_its_budget_exactly_is_filled(venue):
    """Budget 503 = 2 @100 + 3 @101: FILLED, and the ask at 101 keeps its other 2."""
    venue.sell("a1", 100, 2)
    venue.sell("a2", 101, 5)
    order, report = quote(venue, "q", "BUY", 503)
    assert trades_of(report) == [(100, 2, "a1"), (101, 3, "a2")]
    assert report.status is FILLED and order.filled_quantity == 5
    assert venue.asks() == [(101, [("a2", 2)])]


def test_a_quote_buy_leftover_smaller_than_a_lot_expires(venue):
    """Budget 250 at 100 a lot: 2 lots (200); 50 is less than a lot: EXPIRED, the ask keeps 8."""
    venue.sell("a", 100, 10)
    order, report = quote(venue, "q", "BUY", 250)
    assert trades_of(report) == [(100, 2, "a")]
    assert report.status is EXPIRED and order.filled_quantity == 2
    assert venue.asks() == [(100, [("a", 8)])]


def test_a_quote_buy_moves_from_maker_to_maker_while_a_lot_fits(venue):
    """Budget 350: a1 1 @100 (250 left), a2 1 @100 (150 left), a3 1 @150 (0 left): FILLED."""
    venue.sell("a1", 100, 1)
    venue.sell("a2", 100, 1)
    venue.sell("a3", 150, 1)
    _, report = quote(venue, "q", "BUY", 350)
    assert trades_of(report) == [(100, 1, "a1"), (100, 1, "a2"), (150, 1, "a3")]
    assert report.status is FILLED
    assert venue.asks() == []


def test_a_quote_sell_receives_up_to_its_budget_across_levels(venue):
    """Receive 600: 2 @102 (204, 396 left), 3 @101 (303, 93 left); 93 is less than one lot at 99: EXPIRED."""
    venue.buy("b1", 102, 2)
    venue.buy("b2", 101, 3)
    venue.buy("b3", 99, 5)
    order, report = quote(venue, "q", "SELL", 600)
    assert trades_of(report) == [(102, 2, "b1"), (101, 3, "b2")]
    assert report.status is EXPIRED and order.filled_quantity == 5 and order.quantity is None
    assert venue.bids() == [(99, [("b3", 5)])]


def test_a_quote_sell_that_receives_its_budget_exactly_is_filled(venue):
    """Receive 300 at 100 a lot: 3 lots, FILLED; the bid keeps 2."""
    venue.buy("b", 100, 5)
    order, report = quote(venue, "q", "SELL", 300)
    assert trades_of(report) == [(100, 3, "b")]
    assert report.status is FILLED and order.filled_quantity == 3
    assert venue.bids() == [(100, [("b", 2)])]


def test_a_quote_sell_stops_at_the_first_maker_where_a_lot_no_longer_fits(venue):
    """Receive 250: 2 @100 (50 left); one more lot at 100 exceeds it, so it stops there, not 1 @40 below."""
    venue.buy("b100", 100, 5)
    venue.buy("b40", 40, 5)
    order, report = quote(venue, "q", "SELL", 250)
    assert trades_of(report) == [(100, 2, "b100")]
    assert report.status is EXPIRED and order.filled_quantity == 2
    assert venue.bids() == [(100, [("b100", 3)]), (40, [("b40", 5)])]


def test_a_quote_buy_stops_at_the_first_maker_where_a_lot_no_longer_fits(venue):
    """Budget 250: 2 @100 (50 left) from a 3-lot ask; it stops at that ask and leaves the 101 level alone."""
    venue.sell("a100", 100, 3)
    venue.sell("a101", 101, 5)
    _, report = quote(venue, "q", "BUY", 250)
    assert trades_of(report) == [(100, 2, "a100")]
    assert report.status is EXPIRED
    assert venue.asks() == [(100, [("a100", 1)]), (101, [("a101", 5)])]


def test_a_quote_order_on_a_fine_grid_trades_whole_lots(engine_backend):
    """BTC/USDT (tick 0.01, lot 0.001) at 30000.00: 150 USDT buys 0.005 exactly; 100 USDT buys 0.003 (90 spent)."""
    venue = Venue(engine_backend, [BTC])
    venue.sell("a", "30000.00", "0.010")
    order, report = quote(venue, "q1", "BUY", "150.00")
    assert trades_of(report) == [(Decimal("30000.00"), Decimal("0.005"), "a")]
    assert report.status is FILLED and order.filled_quantity == Decimal("0.005")
    order, report = quote(venue, "q2", "BUY", "100")
    assert trades_of(report) == [(Decimal("30000.00"), Decimal("0.003"), "a")]
    assert report.status is EXPIRED and order.filled_quantity == Decimal("0.003")
    assert venue.asks() == [(Decimal("30000.00"), [("a", Decimal("0.002"))])]


def test_a_quote_order_on_an_empty_book_expires(venue):
    order, report = quote(venue, "q", "BUY", 500)
    assert report.status is EXPIRED and report.trades == [] and order.filled_quantity == 0


def test_a_quote_order_may_be_ioc(venue):
    """quote_quantity takes MARKET with GTC or IOC: an IOC quote order trades the same way."""
    venue.sell("a", 100, 10)
    _, report = quote(venue, "q", "BUY", 250, time_in_force="IOC")
    assert trades_of(report) == [(100, 2, "a")] and report.status is EXPIRED


def test_a_quote_order_stopped_by_self_trade_prevention_is_cancelled(venue):
    """The best ask is the taker's own (CANCEL_TAKER by default): the quote order is CANCELLED, no trade."""
    venue.sell("mine", 100, 5, owner="alice")
    _, report = quote(venue, "q", "BUY", 300, owner="alice")
    assert report.status is CANCELLED and report.trades == []
    assert venue.asks() == [(100, [("mine", 5)])]


@pytest.mark.parametrize(
    ("price", "qty", "kw"),
    [
        pytest.param(None, 1, {"type": "MARKET", "quote_quantity": 100}, id="with-a-quantity"),
        pytest.param(100, None, {"quote_quantity": 100}, id="on-a-limit"),
        pytest.param(100, 1, {"quote_quantity": 100}, id="on-a-limit-with-quantity"),
        pytest.param(None, None, {"type": "STOP", "stop_price": 105, "quote_quantity": 100}, id="on-a-stop"),
        pytest.param(None, None, {"type": "MARKET", "quote_quantity": 0}, id="zero"),
        pytest.param(None, None, {"type": "MARKET", "quote_quantity": -100}, id="negative"),
        pytest.param(None, None, {"type": "MARKET", "quote_quantity": 100, "time_in_force": "FOK"}, id="fok"),
        pytest.param(None, None, {"type": "MARKET"}, id="market-with-neither"),
    ],
)
def test_invalid_quote_orders_raise_and_change_nothing(venue, price, qty, kw):
    """quote_quantity only on a MARKET order without a quantity, > 0, GTC or IOC; anything else raises."""
    venue.sell("a", 100, 5)
    venue.buy("b", 90, 5)
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.submit(venue.Order("q", "BUY", price, qty, **kw))
