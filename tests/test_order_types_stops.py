"""Stop, stop-limit and trailing-stop orders, written from the venue rules, on both backends.

The trigger is the CME Globex rule: the last trade price of the order's symbol. A BUY
stop triggers on a print at or above its stop price, a SELL stop on a print at or
below it; a stop whose condition already holds at submit is REJECTED; with no trade
yet it waits. The stops one command triggers run after that command's own matching:
BUY stops by ascending stop price, then SELL stops by descending stop price, ties by
submission; their trades may trigger more stops, which join the same queue. Expected
trades and statuses below are worked out by hand from those rules (see
shared/api.md and notes/ordertypes-spec.md).

X/USD trades on a grid of 1 and 1 so that every number reads as it would on paper.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from models.engine import Venue, check_books, unchanged
from tradebook import (
    DuplicateOrderError,
    Instrument,
    InvalidOrderError,
    OrderNotFoundError,
    OrderStatus,
    OrderType,
    Side,
)

X = Instrument("X/USD", "1", "1")
Y = Instrument("Y/USD", "1", "1")
BTC = Instrument("BTC/USDT", "0.01", "0.001")

OPEN = OrderStatus.OPEN
FILLED = OrderStatus.FILLED
PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
EXPIRED = OrderStatus.EXPIRED
REJECTED = OrderStatus.REJECTED
CANCELLED = OrderStatus.CANCELLED


@pytest.fixture
def venue(engine_backend):
    return Venue(engine_backend, [X])


# -- helpers ----------------------------------------------------------------------------------


def place(venue, oid, side, price, qty, **kw):
    """Submit an order built here; returns (the submitted Order object, its report)."""
    order = venue.Order(oid, side, price, qty, **kw)
    return order, venue.engine.submit(order)


def stop(venue, oid, side, stop_price, qty, **kw):
    return place(venue, oid, side, None, qty, type="STOP", stop_price=stop_price, **kw)


def stop_limit(venue, oid, side, stop_price, price, qty, **kw):
    return place(venue, oid, side, price, qty, type="STOP_LIMIT", stop_price=stop_price, **kw)


def trailing(venue, oid, side, offset, qty, **kw):
    return place(venue, oid, side, None, qty, type="TRAILING_STOP", trailing_offset=offset, **kw)


def trade_at(venue, price, symbol=None):
    """Print one trade of 1 at ``price`` (a sell rests, a buy takes it); returns the buyer's report."""
    venue.prints = getattr(venue, "prints", 0) + 1
    maker, taker = f"pm{venue.prints}", f"pt{venue.prints}"
    kw = {} if symbol is None else {"symbol": symbol}
    assert venue.sell(maker, price, 1, **kw).status is OPEN, "setup: the print's maker must rest"
    report = venue.buy(taker, price, 1, **kw)
    assert trades_of(report) == [(price, 1, maker)], "setup: the print must trade with its own maker"
    return report


def trades_of(report):
    """``[(price, quantity, maker id), ...]`` of a report's own trades."""
    return [(t.price, t.quantity, t.maker_order_id) for t in report.trades]


def cascade(report):
    """``[(stop id, status, its trades), ...]`` of every stop the command triggered, in run order."""
    return [(r.order.id, r.status, trades_of(r)) for r in report.triggered]


def visible(venue):
    """Everything a market-data reader sees of the book."""
    book = venue.engine.book()
    return (len(book), book.depth(100), venue.bids(), venue.asks(), venue.engine.top_of_book())


def restore(venue):
    """A new venue on the same backend from ``venue``'s engine snapshot, through JSON."""
    data = json.loads(json.dumps(venue.engine.snapshot()))
    copy = Venue(venue.backend, [X])
    copy.engine = venue.backend.MatchingEngine.from_snapshot(data)
    return copy


# -- waiting with no trade yet; last_trade_price -----------------------------------------------


def test_with_no_trade_yet_every_stop_waits_and_the_first_print_sets_trailing_references(venue):
    """No last trade price: nothing can be 'already met', so each stop is accepted UNTRIGGERED."""
    e = venue.engine
    assert e.last_trade_price() is None and e.last_trade_price("X/USD") is None
    bs, r1 = stop(venue, "bs", "BUY", 105, 1)
    ss, r2 = stop(venue, "ss", "SELL", 95, 1)
    sl, r3 = stop_limit(venue, "sl", "BUY", 105, 106, 1)
    ts, r4 = trailing(venue, "ts", "SELL", 3, 1)
    for order, report in ((bs, r1), (ss, r2), (sl, r3), (ts, r4)):
        assert report.status is OrderStatus.UNTRIGGERED and order.status is OrderStatus.UNTRIGGERED
        assert report.trades == [] and report.triggered == []
    # the first print at 100 meets no stop (105 > 100 > 95); it only sets the trailing reference: 100 - 3
    report = trade_at(venue, 100)
    assert report.triggered == []
    assert e.last_trade_price() == Decimal(100)
    assert [o.status for o in (bs, ss, sl, ts)] == [OrderStatus.UNTRIGGERED] * 4
    assert ts.stop_price == 97


def test_a_stop_waiting_from_an_empty_market_triggers_on_the_first_print_that_meets_it(venue):
    """BUY stop 105 with no trade yet; the first print at 106 (>= 105) triggers it; it buys the next ask."""
    bs, _ = stop(venue, "bs", "BUY", 105, 1)
    venue.sell("a1", 106, 1)
    venue.sell("a2", 108, 1)
    report = venue.buy("t", 106, 1)
    assert trades_of(report) == [(106, 1, "a1")]
    assert cascade(report) == [("bs", FILLED, [(108, 1, "a2")])]
    assert bs.status is FILLED and bs.filled_quantity == 1
    assert venue.engine.last_trade_price() == 108


def test_last_trade_price_is_the_last_print_per_symbol(engine_backend):
    """A buy walking 100 then 101 leaves 101; another symbol has its own last price (None before its first trade)."""
    venue = Venue(engine_backend, [X, Y])
    e = venue.engine
    venue.sell("a1", 100, 1, symbol="X/USD")
    venue.sell("a2", 101, 1, symbol="X/USD")
    venue.buy("t", 101, 2, symbol="X/USD")
    price = e.last_trade_price("X/USD")
    assert price == Decimal(101) and isinstance(price, Decimal)
    assert e.last_trade_price("Y/USD") is None
    trade_at(venue, 50, symbol="Y/USD")
    assert (e.last_trade_price("X/USD"), e.last_trade_price("Y/USD")) == (101, 50)
    # a print on Y/USD does not trigger a stop on X/USD (the trigger is the order's own symbol)
    bs, report = stop(venue, "bs", "BUY", 102, 1, symbol="X/USD")
    assert report.status is OrderStatus.UNTRIGGERED
    assert trade_at(venue, 150, symbol="Y/USD").triggered == []
    assert bs.status is OrderStatus.UNTRIGGERED
    assert e.last_trade_price("X/USD") == 101


# -- the trigger: at the stop price, through it, never the other way ---------------------------------


@pytest.mark.parametrize("print_price", [102, 104], ids=["exactly-at", "gapping-through"])
def test_a_buy_stop_triggers_on_a_print_at_or_above_its_stop_price(venue, print_price):
    """Last 100, BUY stop 102; a print at 102 (or 104: a gap) triggers it; it buys as a market order."""
    trade_at(venue, 100)
    bs, report = stop(venue, "bs", "BUY", 102, 1)
    assert report.status is OrderStatus.UNTRIGGERED
    venue.sell("trig", print_price, 1)
    venue.sell("a", 110, 5)
    report = venue.buy("t", print_price, 1)
    assert trades_of(report) == [(print_price, 1, "trig")]
    assert cascade(report) == [("bs", FILLED, [(110, 1, "a")])]
    assert bs.status is FILLED
    assert venue.asks() == [(110, [("a", 4)])]
    check_books(venue.engine)


@pytest.mark.parametrize("print_price", [98, 96], ids=["exactly-at", "gapping-through"])
def test_a_sell_stop_triggers_on_a_print_at_or_below_its_stop_price(venue, print_price):
    """Last 100, SELL stop 98; a print at 98 (or 96: a gap) triggers it; it sells as a market order."""
    trade_at(venue, 100)
    ss, report = stop(venue, "ss", "SELL", 98, 1)
    assert report.status is OrderStatus.UNTRIGGERED
    venue.buy("trig", print_price, 1)
    venue.buy("b", 90, 2)
    report = venue.sell("t", print_price, 1)
    assert trades_of(report) == [(print_price, 1, "trig")]
    assert cascade(report) == [("ss", FILLED, [(90, 1, "b")])]
    assert ss.status is FILLED
    assert venue.bids() == [(90, [("b", 1)])]
    check_books(venue.engine)


def test_stops_do_not_trigger_on_prints_on_the_other_side_of_their_stop_price(venue):
    """Last 100, BUY stop 102 and SELL stop 98: prints at 101, 99, 100 and 101 meet neither condition."""
    trade_at(venue, 100)
    bs, _ = stop(venue, "bs", "BUY", 102, 1)
    ss, _ = stop(venue, "ss", "SELL", 98, 1)
    for price in (101, 99, 100, 101):
        assert trade_at(venue, price).triggered == []
        assert bs.status is OrderStatus.UNTRIGGERED and ss.status is OrderStatus.UNTRIGGERED
    # 102 >= 102 triggers the BUY stop only; with no ask left its market order expires unfilled
    report = trade_at(venue, 102)
    assert cascade(report) == [("bs", EXPIRED, [])]
    assert ss.status is OrderStatus.UNTRIGGERED


@pytest.mark.parametrize(
    ("kind", "side", "stop_price", "price"),
    [
        ("STOP", "BUY", 100, None),
        ("STOP", "BUY", 99, None),
        ("STOP", "SELL", 100, None),
        ("STOP", "SELL", 101, None),
        ("STOP_LIMIT", "BUY", 100, 101),
        ("STOP_LIMIT", "SELL", 100, 99),
    ],
)
def test_a_stop_already_met_by_the_last_trade_price_is_rejected_and_changes_nothing(
    venue, kind, side, stop_price, price
):
    """Last 100: BUY stop <= 100 or SELL stop >= 100 would trigger at once, so it is REJECTED."""
    trade_at(venue, 100)
    venue.buy("b", 95, 2)
    venue.sell("a", 105, 2)
    with unchanged(venue.engine):
        order, report = place(venue, "s", side, price, 1, type=kind, stop_price=stop_price)
    assert report.status is REJECTED and order.status is REJECTED
    assert report.trades == [] and report.triggered == [] and report.order.filled_quantity == 0
    # it is gone: a later print at the same price triggers nothing
    assert trade_at(venue, 100).triggered == []


def test_a_stop_one_tick_short_of_the_last_trade_price_is_accepted(venue):
    """Last 100: BUY stop 101 and SELL stop 99 are not met yet, so they wait."""
    trade_at(venue, 100)
    assert stop(venue, "bs", "BUY", 101, 1)[1].status is OrderStatus.UNTRIGGERED
    assert stop(venue, "ss", "SELL", 99, 1)[1].status is OrderStatus.UNTRIGGERED


def test_a_trailing_stop_is_never_rejected_on_submit(venue):
    """A trailing stop's stop price is the offset away from the last price, so it is never already met."""
    trade_at(venue, 100)
    ts, r1 = trailing(venue, "ts", "SELL", 1, 1)
    tb, r2 = trailing(venue, "tb", "BUY", 1, 1)
    assert r1.status is OrderStatus.UNTRIGGERED and r2.status is OrderStatus.UNTRIGGERED
    assert (ts.stop_price, tb.stop_price) == (99, 101)
    assert (r1.order.stop_price, r2.order.stop_price) == (99, 101)


# -- the cascade ----------------------------------------------------------------------------------


def test_buy_stops_run_by_ascending_stop_price_ties_by_submission(venue):
    """Print 103 triggers BUY stops 103, 102 (z), 101, 102 (a): they run 101, 102 z, 102 a, 103."""
    trade_at(venue, 100)
    for oid, stop_price in (("s103", 103), ("z", 102), ("s101", 101), ("a", 102)):
        assert stop(venue, oid, "BUY", stop_price, 1)[1].status is OrderStatus.UNTRIGGERED
    venue.sell("trig", 103, 1)
    for i, price in enumerate((110, 111, 112, 113), 1):
        venue.sell(f"m{i}", price, 1)
    report = venue.buy("t", 103, 1)
    assert trades_of(report) == [(103, 1, "trig")]
    # each triggered market buy takes the best ask left, so the run order shows in the prices
    assert cascade(report) == [
        ("s101", FILLED, [(110, 1, "m1")]),
        ("z", FILLED, [(111, 1, "m2")]),
        ("a", FILLED, [(112, 1, "m3")]),
        ("s103", FILLED, [(113, 1, "m4")]),
    ]
    # trade ids: the setup print is 1, the command's own trade 2, then the stops in run order
    assert [t.id for r in report.triggered for t in r.trades] == [3, 4, 5, 6]
    # each stop enters as a new taker with a new sequence, after the command that triggered it
    seqs = [report.order.sequence] + [r.order.sequence for r in report.triggered]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert venue.asks() == []
    assert venue.engine.last_trade_price() == 113


def test_sell_stops_run_by_descending_stop_price_ties_by_submission(venue):
    """Print 97 triggers SELL stops 97, 98 (z), 99, 98 (a): they run 99, 98 z, 98 a, 97."""
    trade_at(venue, 100)
    for oid, stop_price in (("s97", 97), ("z", 98), ("s99", 99), ("a", 98)):
        assert stop(venue, oid, "SELL", stop_price, 1)[1].status is OrderStatus.UNTRIGGERED
    venue.buy("trig", 97, 1)
    for i, price in enumerate((90, 89, 88, 87), 1):
        venue.buy(f"m{i}", price, 1)
    report = venue.sell("t", 97, 1)
    assert trades_of(report) == [(97, 1, "trig")]
    assert cascade(report) == [
        ("s99", FILLED, [(90, 1, "m1")]),
        ("z", FILLED, [(89, 1, "m2")]),
        ("a", FILLED, [(88, 1, "m3")]),
        ("s97", FILLED, [(87, 1, "m4")]),
    ]
    assert venue.bids() == []
    assert venue.engine.last_trade_price() == 87


def test_when_one_command_triggers_both_sides_the_buy_stops_run_first(venue):
    """Prints 98 then 102 trigger SELL stop 99 (first) and BUY stop 101: BUY stops run first (spec 2)."""
    trade_at(venue, 100)
    stop(venue, "ss", "SELL", 99, 1)
    stop(venue, "bs", "BUY", 101, 1)
    venue.sell("a98", 98, 1)
    venue.sell("a102", 102, 1)
    venue.sell("a105", 105, 1)
    venue.buy("b90", 90, 1)
    report = venue.buy("t", 102, 2)
    assert trades_of(report) == [(98, 1, "a98"), (102, 1, "a102")]
    assert cascade(report) == [("bs", FILLED, [(105, 1, "a105")]), ("ss", FILLED, [(90, 1, "b90")])]
    assert [t.id for t in report.trades] == [2, 3]
    assert [t.id for r in report.triggered for t in r.trades] == [4, 5]


def test_a_stop_triggered_by_a_stop_joins_the_same_flat_cascade(venue):
    """Print 102 triggers BUY stop 102; its buy prints 105, which triggers BUY stop 105; both are in .triggered."""
    trade_at(venue, 100)
    s1, _ = stop(venue, "s1", "BUY", 102, 1)
    s2, _ = stop(venue, "s2", "BUY", 105, 1)
    venue.sell("a102", 102, 1)
    venue.sell("a105", 105, 1)
    venue.sell("a107", 107, 1)
    report = venue.buy("t", 102, 1)
    # the command's report holds only its own trade; every stop of the cascade is in one flat list
    assert trades_of(report) == [(102, 1, "a102")]
    assert cascade(report) == [("s1", FILLED, [(105, 1, "a105")]), ("s2", FILLED, [(107, 1, "a107")])]
    assert s1.status is FILLED and s2.status is FILLED
    assert venue.engine.last_trade_price() == 107


def test_the_cascade_is_a_queue_stops_triggered_later_run_after_those_already_waiting(venue):
    """t prints 98 and 102: BUY A (101) then SELL S (99) queue; A's print 104 triggers BUY C (104), queued after S."""
    trade_at(venue, 100)
    stop(venue, "S", "SELL", 99, 1)
    stop(venue, "A", "BUY", 101, 1)
    stop(venue, "C", "BUY", 104, 1)
    for oid, price in (("a98", 98), ("a102", 102), ("a104", 104), ("a106", 106)):
        venue.sell(oid, price, 1)
    venue.buy("b90", 90, 1)
    report = venue.buy("t", 102, 2)
    assert trades_of(report) == [(98, 1, "a98"), (102, 1, "a102")]
    assert cascade(report) == [
        ("A", FILLED, [(104, 1, "a104")]),
        ("S", FILLED, [(90, 1, "b90")]),
        ("C", FILLED, [(106, 1, "a106")]),
    ]


def test_every_print_of_a_command_is_checked_not_only_its_last(venue):
    """A buy prints 98 then 102: the SELL stop 99 triggers on the 98 print although the last price is 102."""
    trade_at(venue, 100)
    ss, _ = stop(venue, "ss", "SELL", 99, 1)
    venue.sell("a98", 98, 1)
    venue.sell("a102", 102, 1)
    venue.buy("b95", 95, 1)
    report = venue.buy("t", 102, 2)
    assert trades_of(report) == [(98, 1, "a98"), (102, 1, "a102")]
    assert cascade(report) == [("ss", FILLED, [(95, 1, "b95")])]
    assert ss.status is FILLED
    assert venue.engine.last_trade_price() == 95


def test_every_print_of_a_sell_command_is_checked_too(venue):
    """A sell prints 102 then 97: the BUY stop 101 triggers on the 102 print although the last price is 97."""
    trade_at(venue, 100)
    bs, _ = stop(venue, "bs", "BUY", 101, 1)
    venue.buy("b102", 102, 1)
    venue.buy("b97", 97, 1)
    venue.sell("a110", 110, 1)
    report = venue.sell("t", 97, 2)
    assert trades_of(report) == [(102, 1, "b102"), (97, 1, "b97")]
    assert cascade(report) == [("bs", FILLED, [(110, 1, "a110")])]
    assert bs.status is FILLED


def test_triggered_stops_run_after_the_commands_own_matching_is_done(venue):
    """t buys 1 at 98 (triggering SELL stop 99) and rests 2 at 98; the stop then sells into t's resting bid."""
    trade_at(venue, 100)
    stop(venue, "ss", "SELL", 99, 1)
    venue.sell("a98", 98, 1)
    venue.buy("b90", 90, 1)
    report = venue.buy("t", 98, 3)
    # t's report holds only its own taker trade; the stop's trade against t is in the stop's report
    assert trades_of(report) == [(98, 1, "a98")]
    assert [tr.taker_order_id for tr in report.trades] == ["t"]
    assert cascade(report) == [("ss", FILLED, [(98, 1, "t")])]
    assert venue.bids() == [(98, [("t", 1)]), (90, [("b90", 1)])]
    assert venue.resting("t").filled_quantity == 2
    assert venue.resting("t").status is PARTIALLY_FILLED


# -- untriggered stops are off the book -------------------------------------------------------------


def test_untriggered_stops_are_invisible_in_the_book(venue):
    """Waiting stops are in no len(book), depth, level, best price or order lookup."""
    trade_at(venue, 100)
    venue.buy("b", 95, 2)
    venue.sell("a", 105, 3)
    before = visible(venue)
    stop(venue, "ss", "SELL", 96, 5)
    stop_limit(venue, "sl", "BUY", 104, 103, 4)
    stop_limit(venue, "sl2", "SELL", 97, 105, 6)
    trailing(venue, "ts", "SELL", 2, 1)
    stop(venue, "bs", "BUY", 101, 7)
    assert visible(venue) == before
    book = venue.engine.book()
    assert len(book) == 2
    assert book.level(Side.BUY, 103) is None
    assert book.level(Side.SELL, 105).quantity == 3 and book.level(Side.SELL, 105).order_count == 1
    assert (book.best_bid.quantity, book.best_ask.quantity) == (2, 3)
    assert (len(book.bids), len(book.asks)) == (1, 1)
    assert [o.id for o in book.orders_at(Side.SELL, 105)] == ["a"]
    for oid in ("ss", "sl", "sl2", "ts", "bs"):
        assert oid not in book
        with pytest.raises(OrderNotFoundError):
            book.get_order(oid)
    check_books(venue.engine)


def test_cancel_of_an_untriggered_stop(venue):
    """A cancelled waiting stop is CANCELLED, leaves the book as it was and no longer triggers."""
    trade_at(venue, 100)
    bs, _ = stop(venue, "bs", "BUY", 102, 1)
    venue.sell("a102", 102, 1)
    venue.sell("a103", 103, 1)
    before = visible(venue)
    cancelled = venue.engine.cancel(None, "bs")
    assert cancelled.id == "bs" and cancelled.status is CANCELLED
    assert bs.status is CANCELLED
    assert visible(venue) == before
    with pytest.raises(OrderNotFoundError):
        venue.engine.cancel(None, "bs")
    report = venue.buy("t", 102, 1)
    assert report.triggered == []
    assert venue.asks() == [(103, [("a103", 1)])]


def test_ids_are_unique_across_resting_orders_and_waiting_stops(venue):
    """A waiting stop's id cannot be reused by a new order, nor a resting order's id by a stop."""
    trade_at(venue, 100)
    stop(venue, "dup", "BUY", 102, 1)
    venue.buy("r", 95, 1)
    with unchanged(venue.engine), pytest.raises(DuplicateOrderError):
        venue.buy("dup", 90, 1)
    with unchanged(venue.engine), pytest.raises(DuplicateOrderError):
        stop(venue, "r", "SELL", 98, 1)


# -- what a triggered stop becomes -------------------------------------------------------------------


def test_a_triggered_stop_limit_rests_at_the_back_of_its_level_with_a_new_sequence(venue):
    """b1 and b2 bid 101 (b2 after the stop was accepted); the stop-limit triggered later rests behind both."""
    trade_at(venue, 100)
    venue.buy("b1", 101, 1)
    sl, report = stop_limit(venue, "sl", "BUY", 102, 101, 2)
    assert report.status is OrderStatus.UNTRIGGERED
    b2 = venue.buy("b2", 101, 1).order
    venue.sell("trig", 102, 1)
    report = venue.buy("t", 102, 1)
    assert trades_of(report) == [(102, 1, "trig")]
    assert cascade(report) == [("sl", OPEN, [])]
    assert sl.status is OPEN
    # time priority comes from the trigger, not from acceptance
    assert venue.bids() == [(101, [("b1", 1), ("b2", 1), ("sl", 2)])]
    assert sl.sequence > b2.sequence and sl.sequence > report.order.sequence
    assert venue.resting("sl").sequence == sl.sequence
    assert len(venue.engine.book()) == 3
    # the FIFO at 101 is b1, b2, sl
    report = venue.sell("s", 101, 3)
    assert trades_of(report) == [(101, 1, "b1"), (101, 1, "b2"), (101, 1, "sl")]
    assert sl.status is PARTIALLY_FILLED and sl.filled_quantity == 1


def test_a_triggered_stop_limit_takes_up_to_its_limit_and_rests_the_rest(venue):
    """Stop-limit BUY 3 at 103 (stop 102): after the trigger it takes 103 x1, not 104, and rests 2 at 103."""
    trade_at(venue, 100)
    sl, _ = stop_limit(venue, "sl", "BUY", 102, 103, 3)
    venue.sell("trig", 102, 1)
    venue.sell("a103", 103, 1)
    venue.sell("a104", 104, 5)
    report = venue.buy("t", 102, 1)
    assert cascade(report) == [("sl", PARTIALLY_FILLED, [(103, 1, "a103")])]
    assert venue.bids() == [(103, [("sl", 2)])]
    assert venue.asks() == [(104, [("a104", 5)])]
    assert sl.type is OrderType.STOP_LIMIT and sl.price == 103 and sl.stop_price == 102


def test_a_triggered_stop_is_a_market_order_whose_remainder_expires(venue):
    """SELL stop 99 for 5 triggers; only 2 can sell (at 98): it fills 2 and the other 3 expire."""
    trade_at(venue, 100)
    ss, _ = stop(venue, "ss", "SELL", 99, 5, owner="o")
    venue.buy("trig", 99, 1)
    venue.buy("b98", 98, 2)
    report = venue.sell("t", 99, 1)
    assert cascade(report) == [("ss", EXPIRED, [(98, 2, "b98")])]
    stopped = report.triggered[0].order
    assert (stopped.id, stopped.type, stopped.price, stopped.owner) == ("ss", OrderType.STOP, None, "o")
    assert (ss.status, ss.filled_quantity, ss.remaining_quantity) == (EXPIRED, 2, 3)
    assert venue.bids() == []


# -- trailing stops ----------------------------------------------------------------------------------


def test_a_sell_trailing_stop_follows_the_highs_not_the_lows(venue):
    """Offset 3 from 100: stop 97; a 103 print lifts it to 100; 101 and 102 leave it there; a 100 print triggers."""
    trade_at(venue, 100)
    ts, report = trailing(venue, "ts", "SELL", 3, 1)
    assert ts.stop_price == 97 and report.order.stop_price == 97
    trade_at(venue, 103)
    assert ts.stop_price == 100
    for price in (101, 102):
        assert trade_at(venue, price).triggered == []
        assert ts.stop_price == 100 and ts.status is OrderStatus.UNTRIGGERED
    venue.buy("b95", 95, 1)
    report = trade_at(venue, 100)
    assert cascade(report) == [("ts", FILLED, [(95, 1, "b95")])]
    assert ts.status is FILLED


def test_a_buy_trailing_stop_follows_the_lows_not_the_highs(venue):
    """Offset 2 from 100: stop 102; 97 lowers it to 99; 98 leaves it; 96 lowers it to 98; 97 leaves it; 98 triggers."""
    trade_at(venue, 100)
    tb, _ = trailing(venue, "tb", "BUY", 2, 1)
    assert tb.stop_price == 102
    for price, expected in ((97, 99), (98, 99), (96, 98), (97, 98)):
        assert trade_at(venue, price).triggered == []
        assert tb.stop_price == expected and tb.status is OrderStatus.UNTRIGGERED
    venue.sell("a110", 110, 1)
    report = trade_at(venue, 98)
    assert cascade(report) == [("tb", FILLED, [(110, 1, "a110")])]
    assert tb.status is FILLED


def test_a_trailing_stop_moves_then_checks_on_each_print_of_one_command(venue):
    """Stop 97; one sell prints 105 (stop -> 102) then 101 (<= 102): it triggers within the command."""
    trade_at(venue, 100)
    ts, _ = trailing(venue, "ts", "SELL", 3, 1)
    venue.buy("b105", 105, 1)
    venue.buy("b101", 101, 1)
    venue.buy("b90", 90, 1)
    report = venue.sell("t", 101, 2)
    assert trades_of(report) == [(105, 1, "b105"), (101, 1, "b101")]
    assert cascade(report) == [("ts", FILLED, [(90, 1, "b90")])]
    assert ts.stop_price == 102


def test_a_trailing_stop_with_no_trade_yet_takes_its_reference_from_the_first_print(venue):
    """No trade yet: the first print (100) sets both references and triggers neither; 97 then triggers the SELL."""
    ts, _ = trailing(venue, "ts", "SELL", 3, 1)
    tb, _ = trailing(venue, "tb", "BUY", 3, 1)
    assert trade_at(venue, 100).triggered == []
    assert (ts.stop_price, tb.stop_price) == (97, 103)
    # 97: the SELL's reference stays 100 (stop 97, met); the BUY's drops to 97 (stop 100, not met)
    report = trade_at(venue, 97)
    assert cascade(report) == [("ts", EXPIRED, [])]  # no bid left: its market order expires
    assert tb.stop_price == 100 and tb.status is OrderStatus.UNTRIGGERED


# -- snapshots -------------------------------------------------------------------------------------


def test_snapshot_round_trip_keeps_waiting_stops_and_trailing_references(venue):
    """Waiting BUY stop 103, SELL stop-limit 97 @ 96 and a trailing SELL at 102 - 3 survive a JSON round trip."""
    trade_at(venue, 100)
    stop(venue, "bs", "BUY", 103, 1)
    stop_limit(venue, "ssl", "SELL", 97, 96, 2)
    trailing(venue, "ts", "SELL", 3, 1)
    trade_at(venue, 102)  # the trailing reference is now 102: stop 99
    venue.buy("b1", 95, 3)
    venue.sell("a1", 104, 1)
    venue.sell("a2", 106, 2)
    copy = restore(venue)
    assert json.loads(json.dumps(copy.engine.snapshot())) == json.loads(json.dumps(venue.engine.snapshot()))
    assert copy.engine.last_trade_price() == 102 and copy.engine.time == venue.engine.time
    assert visible(copy) == visible(venue)
    expected = [
        # m1 takes a1 @104: BUY stop 103 triggers and buys a2 @106; the trailing reference rises to 106 (stop 103)
        ("m1", FILLED, [(104, 1, "a1")], [("bs", FILLED, [(106, 1, "a2")])]),
        # b2 rests at 103 below a2's 106
        ("b2", OPEN, [], []),
        # s3 prints 103 <= 103: the trailing stop sells b1 @95, and 95 <= 97 triggers the stop-limit, which rests at 96
        ("s3", FILLED, [(103, 1, "b2")], [("ts", FILLED, [(95, 1, "b1")]), ("ssl", OPEN, [])]),
    ]
    for v in (venue, copy):
        outcomes = []
        trade_ids = []
        for oid, side, price, kw in (
            ("m1", "BUY", None, {"type": "MARKET"}),
            ("b2", "BUY", 103, {}),
            ("s3", "SELL", 103, {}),
        ):
            report = v.submit(oid, side, price, 1, **kw)
            outcomes.append((oid, report.status, trades_of(report), cascade(report)))
            trade_ids += [t.id for t in report.trades] + [t.id for r in report.triggered for t in r.trades]
        assert outcomes == expected
        assert trade_ids == [3, 4, 5, 6]
        assert v.bids() == [(95, [("b1", 2)])]
        assert v.asks() == [(96, [("ssl", 2)]), (106, [("a2", 1)])]
        assert v.engine.last_trade_price() == 95
        check_books(v.engine)
    assert json.loads(json.dumps(copy.engine.snapshot())) == json.loads(json.dumps(venue.engine.snapshot()))


def test_snapshot_round_trip_keeps_the_tie_order_of_waiting_stops(venue):
    """BUY stops z then a, both at 102: after a restore they still run z first (submission order)."""
    trade_at(venue, 100)
    stop(venue, "z", "BUY", 102, 1)
    stop(venue, "a", "BUY", 102, 1)
    venue.sell("trig", 102, 1)
    venue.sell("m1", 110, 1)
    venue.sell("m2", 111, 1)
    copy = restore(venue)
    for v in (venue, copy):
        report = v.buy("t", 102, 1)
        assert cascade(report) == [("z", FILLED, [(110, 1, "m1")]), ("a", FILLED, [(111, 1, "m2")])]


def test_snapshot_round_trip_keeps_a_trailing_stop_with_no_reference_yet(venue):
    """A trailing SELL (offset 2) accepted before any trade: after a restore the first print still only sets it."""
    trailing(venue, "ts", "SELL", 2, 1)
    copy = restore(venue)
    assert copy.engine.last_trade_price() is None
    for v in (venue, copy):
        assert trade_at(v, 100).triggered == []  # reference 100, stop 98
        assert trade_at(v, 99).triggered == []  # 99 > 98
        assert cascade(trade_at(v, 98)) == [("ts", EXPIRED, [])]  # 98 <= 98; no bid: it expires


# -- invalid combinations ----------------------------------------------------------------------------

P = "100.00"  # BTC/USDT prices below sit around the last trade at 100.00
INVALID = [
    pytest.param("BUY", None, "1", {"type": "STOP"}, id="stop-without-stop-price"),
    pytest.param("BUY", "103.00", "1", {"type": "STOP_LIMIT"}, id="stop-limit-without-stop-price"),
    pytest.param("BUY", None, "1", {"type": "STOP_LIMIT", "stop_price": "102.00"}, id="stop-limit-without-price"),
    pytest.param("BUY", "103.00", "1", {"type": "STOP", "stop_price": "102.00"}, id="price-on-stop"),
    pytest.param("SELL", "97.00", "1", {"type": "TRAILING_STOP", "trailing_offset": "1"}, id="price-on-trailing"),
    pytest.param("BUY", "99.00", "1", {"stop_price": "102.00"}, id="stop-price-on-limit"),
    pytest.param("BUY", None, "1", {"type": "MARKET", "stop_price": "102.00"}, id="stop-price-on-market"),
    pytest.param(
        "SELL",
        None,
        "1",
        {"type": "TRAILING_STOP", "trailing_offset": "1", "stop_price": "98.00"},
        id="stop-price-on-trailing",
    ),
    pytest.param("SELL", None, "1", {"type": "TRAILING_STOP"}, id="trailing-without-offset"),
    pytest.param("BUY", "99.00", "1", {"trailing_offset": "1"}, id="trailing-offset-on-limit"),
    pytest.param("BUY", None, "1", {"type": "MARKET", "trailing_offset": "1"}, id="trailing-offset-on-market"),
    pytest.param(
        "BUY", None, "1", {"type": "STOP", "stop_price": "102.00", "trailing_offset": "1"}, id="trailing-offset-on-stop"
    ),
    pytest.param(
        "BUY",
        "103.00",
        "1",
        {"type": "STOP_LIMIT", "stop_price": "102.00", "trailing_offset": "1"},
        id="trailing-offset-on-stop-limit",
    ),
    pytest.param("SELL", None, "1", {"type": "STOP", "stop_price": "0"}, id="stop-price-zero"),
    pytest.param("SELL", None, "1", {"type": "STOP", "stop_price": "-1"}, id="stop-price-negative"),
    pytest.param("BUY", None, "1", {"type": "STOP", "stop_price": "102.005"}, id="stop-price-off-grid"),
    pytest.param(
        "BUY", "103.00", "1", {"type": "STOP_LIMIT", "stop_price": "102.005"}, id="stop-limit-stop-price-off-grid"
    ),
    pytest.param("SELL", None, "1", {"type": "TRAILING_STOP", "trailing_offset": "0"}, id="trailing-offset-zero"),
    pytest.param("SELL", None, "1", {"type": "TRAILING_STOP", "trailing_offset": "-1"}, id="trailing-offset-negative"),
    pytest.param(
        "SELL", None, "1", {"type": "TRAILING_STOP", "trailing_offset": "0.005"}, id="trailing-offset-off-grid"
    ),
    pytest.param("BUY", "99.00", "1", {"time_in_force": "IOC", "display_quantity": "0.5"}, id="display-on-ioc"),
    pytest.param("BUY", "99.00", "1", {"time_in_force": "FOK", "display_quantity": "0.5"}, id="display-on-fok"),
    pytest.param("BUY", None, "1", {"type": "MARKET", "display_quantity": "0.5"}, id="display-on-market"),
    pytest.param(
        "BUY",
        "103.00",
        "1",
        {"type": "STOP_LIMIT", "stop_price": "102.00", "display_quantity": "0.5"},
        id="display-on-stop-limit",
    ),
    pytest.param(
        "BUY", None, "1", {"type": "STOP", "stop_price": "102.00", "display_quantity": "0.5"}, id="display-on-stop"
    ),
    pytest.param(
        "SELL",
        None,
        "1",
        {"type": "TRAILING_STOP", "trailing_offset": "1", "display_quantity": "0.5"},
        id="display-on-trailing",
    ),
    pytest.param("BUY", "99.00", "1", {"time_in_force": "GTD"}, id="gtd-without-expire-at"),
    pytest.param(
        "SELL",
        None,
        "1",
        {"type": "STOP", "stop_price": "98.00", "time_in_force": "GTD"},
        id="gtd-stop-without-expire-at",
    ),
    pytest.param("BUY", "99.00", "1", {"expire_at": 10}, id="expire-at-on-gtc"),
    pytest.param("BUY", "99.00", "1", {"time_in_force": "IOC", "expire_at": 10}, id="expire-at-on-ioc"),
    pytest.param(
        "SELL", None, "1", {"type": "STOP", "stop_price": "98.00", "expire_at": 10}, id="expire-at-on-gtc-stop"
    ),
    pytest.param("BUY", None, "1", {"type": "MARKET", "quote_quantity": "100"}, id="quote-with-quantity"),
    pytest.param("BUY", "99.00", None, {"quote_quantity": "100"}, id="quote-on-limit"),
    pytest.param(
        "BUY", None, None, {"type": "STOP", "stop_price": "102.00", "quote_quantity": "100"}, id="quote-on-stop"
    ),
    pytest.param("BUY", None, None, {"type": "MARKET", "quote_quantity": "0"}, id="quote-zero"),
    pytest.param("BUY", None, None, {"type": "MARKET", "quote_quantity": "-100"}, id="quote-negative"),
    pytest.param(
        "BUY", None, None, {"type": "MARKET", "quote_quantity": "100", "time_in_force": "FOK"}, id="quote-with-fok"
    ),
    pytest.param("BUY", None, None, {"type": "MARKET"}, id="market-without-quantity-or-quote"),
    pytest.param("BUY", None, "1", {"type": "STOP", "stop_price": "102.00", "post_only": True}, id="post-only-stop"),
    pytest.param(
        "BUY",
        "103.00",
        "1",
        {"type": "STOP_LIMIT", "stop_price": "102.00", "post_only": True},
        id="post-only-stop-limit",
    ),
    pytest.param(
        "SELL", None, "1", {"type": "TRAILING_STOP", "trailing_offset": "1", "post_only": True}, id="post-only-trailing"
    ),
]


@pytest.mark.parametrize(("side", "price", "qty", "kw"), INVALID)
def test_invalid_combinations_raise_and_change_nothing(engine_backend, side, price, qty, kw):
    """Each wrong combination raises InvalidOrderError (from Order(...) or from submit) and leaves the engine as it was."""
    venue = Venue(engine_backend, [BTC])
    trade_at(venue, Decimal(P))
    venue.buy("b", "95.00", "2")
    venue.sell("a", "105.00", "2")
    stop(venue, "waiting", "SELL", "98.00", "1")
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.submit(venue.Order("bad", side, price, qty, **kw))
    assert venue.engine.last_trade_price() == Decimal(P)
    # nothing of the refused order was kept: its id is still free
    assert venue.buy("bad", "99.00", "1").status is OPEN
