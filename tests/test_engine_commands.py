"""Cancel, amend, instrument limits, the error paths and the raw integer API, on both backends.

Every call that raises must leave the whole engine as it was (its snapshot,
including sequence and trade counters, is compared before and after).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.engine import Venue, check_books, fills, unchanged
from tradebook import (
    DuplicateOrderError,
    Instrument,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    OrderStatus,
    Side,
    UnknownSymbolError,
)

INT64_MAX = (1 << 63) - 1
ACME = Instrument("ACME/USD", "1", "1")
ZETA = Instrument("ZETA/USD", "0.5", "0.1")
LIMITED = Instrument(
    "LIM/USD",
    "0.5",
    "0.1",
    min_quantity="1",
    max_quantity="100",
    min_notional="50",
    min_price="10",
    max_price="1000",
)


@pytest.fixture
def venue(engine_backend):
    return Venue(engine_backend, [ACME])


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_removes_a_resting_order_and_returns_it_cancelled(venue):
    venue.sell("a", 100, 3)
    venue.sell("b", 100, 2)
    order = venue.engine.cancel("ACME/USD", "a")
    assert order.id == "a" and order.status is OrderStatus.CANCELLED
    assert order.remaining_quantity == 3
    assert venue.asks() == [(100, [("b", 2)])]
    check_books(venue.engine)


def test_cancel_keeps_what_a_partially_filled_order_had_filled(venue):
    venue.sell("a", 100, 5)
    venue.buy("b", 100, 2)
    order = venue.engine.cancel(None, "a")
    assert (order.filled_quantity, order.remaining_quantity) == (2, 3)
    assert venue.asks() == []


def test_cancel_of_an_unknown_or_gone_order_raises_and_changes_nothing(venue):
    venue.sell("a", 100, 1)
    venue.buy("b", 100, 1)  # fills a
    venue.sell("c", 101, 1)
    for oid in ("a", "b", "zzz", 3):
        with unchanged(venue.engine), pytest.raises(OrderNotFoundError):
            venue.engine.cancel("ACME/USD", oid)
        with unchanged(venue.engine), pytest.raises(OrderNotFoundError):
            venue.engine.cancel_raw("ACME/USD", oid)


def test_cancel_raw_returns_the_remaining_lots(venue):
    venue.engine.submit_raw(1, "SELL", 100, 7)
    venue.engine.submit_raw(2, "BUY", 100, 3)
    assert venue.engine.cancel_raw("ACME/USD", 1) == 4
    assert venue.engine.top_of_book_raw() == (None, None, None, None)


def test_a_cancelled_id_can_be_used_again(venue):
    venue.sell("a", 100, 1)
    venue.engine.cancel(None, "a")
    assert venue.sell("a", 101, 1).status is OrderStatus.OPEN


# -- amend -------------------------------------------------------------------------------------


def test_amend_quantity_down_keeps_time_priority(venue):
    venue.sell("a", 100, 5)
    venue.sell("b", 100, 1)
    seq = venue.resting("a").sequence
    report = venue.engine.amend(None, "a", quantity=2)
    assert report.trades == [] and report.order.quantity == 2
    assert report.order.sequence == seq
    assert venue.asks() == [(100, [("a", 2), ("b", 1)])]
    assert [t.maker_order_id for t in venue.buy("t", 100, 1).trades] == ["a"]


def test_amend_quantity_up_goes_to_the_back_of_the_level(venue):
    venue.sell("a", 100, 1)
    venue.sell("b", 100, 1)
    seq = venue.resting("a").sequence
    report = venue.engine.amend(None, "a", quantity=4)
    assert report.order.sequence > seq
    assert venue.asks() == [(100, [("b", 1), ("a", 4)])]
    assert venue.engine.book().next_sequence == report.order.sequence + 1


def test_amend_to_a_new_price_requeues_at_the_back_of_the_new_level(venue):
    venue.buy("a", 99, 1)
    venue.buy("b", 98, 1)
    report = venue.engine.amend(None, "a", price=98)
    assert report.trades == [] and report.order.price == 98
    assert venue.bids() == [(98, [("b", 1), ("a", 1)])]


def test_amend_to_the_same_price_and_quantity_is_no_change(venue):
    venue.sell("a", 100, 2)
    venue.sell("b", 100, 2)
    seq = venue.resting("a").sequence
    report = venue.engine.amend(None, "a", price=100, quantity=2)
    assert report.order.sequence == seq
    assert venue.asks() == [(100, [("a", 2), ("b", 2)])]


def test_amend_price_and_quantity_together(venue):
    venue.sell("a", 100, 2)
    report = venue.engine.amend(None, "a", price=103, quantity=1)
    assert (report.order.price, report.order.quantity) == (103, 1)
    assert venue.asks() == [(103, [("a", 1)])]


def test_amend_partially_filled_quantity_must_stay_above_the_fill(venue):
    venue.sell("a", 100, 5)
    venue.buy("b", 100, 2)
    for qty in (2, 1):
        with unchanged(venue.engine), pytest.raises(InvalidQuantityError):
            venue.engine.amend(None, "a", quantity=qty)
    report = venue.engine.amend(None, "a", quantity=3)
    assert (report.order.quantity, report.order.remaining_quantity) == (3, 1)
    assert report.order.status is OrderStatus.PARTIALLY_FILLED


def test_a_crossing_amend_trades_like_a_new_taker_and_rests_the_rest_with_new_priority(venue):
    """Asks 101 x1 and 102 x1, bids 99 (a, then b). Moving a to 101 for 3 trades 1@101 and rests 2 at 101,
    behind nothing but with a fresh sequence."""
    venue.sell("s1", 101, 1)
    venue.sell("s2", 102, 1)
    venue.buy("a", 99, 3)
    venue.buy("b", 99, 1)
    seq = venue.resting("a").sequence
    report = venue.engine.amend(None, "a", price=101)
    assert fills(report) == [(101, 1)]
    assert report.trades[0].taker_order_id == "a" and report.trades[0].taker_side is Side.BUY
    assert report.order.status is OrderStatus.PARTIALLY_FILLED
    assert report.order.sequence > seq
    assert venue.bids() == [(101, [("a", 2)]), (99, [("b", 1)])]
    assert venue.asks() == [(102, [("s2", 1)])]
    check_books(venue.engine)


def test_a_crossing_amend_that_fills_completely_leaves_the_book(venue):
    venue.sell("s", 101, 5)
    venue.buy("a", 99, 2)
    report = venue.engine.amend(None, "a", price=105)
    assert fills(report) == [(101, 2)] and report.order.status is OrderStatus.FILLED
    assert "a" not in venue.engine.book()
    assert venue.asks() == [(101, [("s", 3)])]


def test_a_crossing_amend_keeps_earlier_fills(venue):
    venue.buy("b", 99, 5)
    venue.sell("a", 101, 4)
    venue.buy("t", 101, 1)  # a has 1 filled
    report = venue.engine.amend(None, "a", price=99)
    assert fills(report) == [(99, 3)]
    assert (report.order.filled_quantity, report.order.status) == (4, OrderStatus.FILLED)


def test_a_crossing_amend_applies_self_trade_prevention(engine_backend):
    venue = Venue(engine_backend, [ACME], stp="CANCEL_TAKER")
    venue.sell("own", 100, 1, owner="alice")
    venue.buy("a", 99, 1, owner="alice")
    report = venue.engine.amend(None, "a", price=100)
    assert report.order.status is OrderStatus.CANCELLED and report.trades == []
    assert "a" not in venue.engine.book()
    assert venue.asks() == [(100, [("own", 1)])]
    venue = Venue(engine_backend, [ACME], stp="CANCEL_MAKER")
    venue.sell("own", 100, 1, owner="alice")
    venue.buy("a", 99, 1, owner="alice")
    report = venue.engine.amend(None, "a", price=100)
    assert [o.id for o in report.cancelled] == ["own"]
    assert venue.bids() == [(100, [("a", 1)])] and venue.asks() == []


def test_a_post_only_order_cannot_be_amended_to_a_crossing_price(venue):
    venue.sell("s", 101, 1)
    venue.buy("po", 99, 1, post_only=True)
    for price in (101, 102):
        with unchanged(venue.engine), pytest.raises(InvalidOrderError):
            venue.engine.amend(None, "po", price=price)
    report = venue.engine.amend(None, "po", price=100)
    assert report.order.price == 100 and report.order.post_only
    report = venue.engine.amend(None, "po", quantity=7)
    assert report.order.quantity == 7


def test_amend_without_changes_or_of_an_unknown_order_raises(venue):
    venue.sell("a", 100, 1)
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.amend(None, "a")
    with unchanged(venue.engine), pytest.raises(OrderNotFoundError):
        venue.engine.amend(None, "nope", quantity=1)
    with unchanged(venue.engine), pytest.raises(InvalidPriceError):
        venue.engine.amend(None, "a", price="100.5")
    with unchanged(venue.engine), pytest.raises(InvalidQuantityError):
        venue.engine.amend(None, "a", quantity=0)
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.amend_raw(None, "a")
    with unchanged(venue.engine), pytest.raises(InvalidPriceError):
        venue.engine.amend_raw(None, "a", price=0)


def test_amend_raw_works_in_ticks_and_lots(engine_backend):
    engine = engine_backend.MatchingEngine([ZETA])
    engine.submit_raw("s", "SELL", 30, 10)  # 15.0 x 1.0
    engine.submit_raw("b", "BUY", 20, 5)
    report = engine.amend_raw("ZETA/USD", "b", quantity=15, price=30)
    assert [(t.price_ticks, t.quantity_lots) for t in report.trades] == [(30, 10)]
    assert report.order.price == Decimal("15.0") and report.order.remaining_quantity == Decimal("0.5")
    assert engine.top_of_book_raw() == (30, 5, None, None)
    report = engine.amend_raw(None, "b", quantity=12)
    assert report.order.quantity_lots == 12 and report.order.filled_lots == 10


# -- instrument limits ----------------------------------------------------------------------------


@pytest.fixture
def limited(engine_backend):
    venue = Venue(engine_backend, [LIMITED])
    venue.sell("resting", 20, 5)
    return venue


@pytest.mark.parametrize(
    ("price", "qty", "error"),
    [
        (100, "0.9", InvalidQuantityError),  # below min quantity
        (20, "100.1", InvalidQuantityError),  # above max quantity
        ("9.5", 10, InvalidPriceError),  # below min price
        ("1000.5", 1, InvalidPriceError),  # above max price
        (10, "4.9", InvalidOrderError),  # notional 49 < 50
    ],
)
def test_instrument_limits_reject_with_the_right_error_and_change_nothing(limited, price, qty, error):
    for side in ("BUY", "SELL"):
        with unchanged(limited.engine), pytest.raises(error) as info:
            limited.submit("x", side, price, qty)
        assert type(info.value) is error


def test_instrument_limits_on_the_raw_api(limited):
    e = limited.engine
    for ticks, lots, error in [(200, 9, InvalidQuantityError), (40, 1001, InvalidQuantityError),
                               (19, 100, InvalidPriceError), (2001, 10, InvalidPriceError),
                               (20, 49, InvalidOrderError)]:  # fmt: skip
        with unchanged(e), pytest.raises(error) as info:
            e.submit_raw("x", "BUY", ticks, lots)
        assert type(info.value) is error


def test_orders_on_the_limits_are_accepted(limited):
    assert limited.buy("a", 10, 5).status is OrderStatus.OPEN  # notional exactly 50
    assert limited.sell("b", 1000, 1).status is OrderStatus.OPEN
    assert limited.buy("c", 11, 100).status is OrderStatus.OPEN


def test_market_orders_are_held_to_the_quantity_limits_only(limited):
    with unchanged(limited.engine), pytest.raises(InvalidQuantityError):
        limited.market_buy("m", "0.5")
    with unchanged(limited.engine), pytest.raises(InvalidQuantityError):
        limited.market_buy("m", 101)
    report = limited.market_buy("m", 1)  # notional 20 < 50: no notional check without a price
    assert fills(report) == [(20, 1)]


def test_amend_is_held_to_the_limits_too(limited):
    with unchanged(limited.engine), pytest.raises(InvalidQuantityError):
        limited.engine.amend(None, "resting", quantity="0.5")
    with unchanged(limited.engine), pytest.raises(InvalidPriceError):
        limited.engine.amend(None, "resting", price="1000.5")
    with unchanged(limited.engine), pytest.raises(InvalidOrderError):
        limited.engine.amend(None, "resting", price=10, quantity="4.9")  # notional 49
    assert limited.engine.amend(None, "resting", price=10).order.price == 10  # notional 50


# -- invalid input -----------------------------------------------------------------------------------


def test_an_unknown_symbol_raises_everywhere_and_changes_nothing(engine_backend):
    venue = Venue(engine_backend, [ACME])
    venue.sell("a", 100, 1)
    e = venue.engine
    calls = [
        lambda: venue.sell("x", 100, 1, symbol="NOPE/USD"),
        lambda: e.submit_raw("x", "BUY", 100, 1, symbol="NOPE/USD"),
        lambda: e.cancel("NOPE/USD", "a"),
        lambda: e.cancel_raw("NOPE/USD", "a"),
        lambda: e.amend("NOPE/USD", "a", quantity=1),
        lambda: e.amend_raw("NOPE/USD", "a", quantity=1),
        lambda: e.book("NOPE/USD"),
        lambda: e.top_of_book("NOPE/USD"),
        lambda: e.top_of_book_raw("NOPE/USD"),
    ]
    for call in calls:
        with unchanged(e), pytest.raises(UnknownSymbolError):
            call()


def test_a_duplicate_resting_id_raises_and_changes_nothing(venue):
    venue.sell("a", 100, 1)
    venue.buy("b", 90, 1)
    for side, price in (("SELL", 100), ("BUY", 100), ("BUY", 90)):
        with unchanged(venue.engine), pytest.raises(DuplicateOrderError):
            venue.submit("a", side, price, 1)
        with unchanged(venue.engine), pytest.raises(DuplicateOrderError):
            venue.submit("b", side, price, 1, time_in_force="IOC")
    with unchanged(venue.engine), pytest.raises(DuplicateOrderError):
        venue.engine.submit_raw("a", "BUY", 100, 1)


def test_ids_only_clash_with_orders_still_resting_in_the_same_book(engine_backend):
    venue = Venue(engine_backend, [ACME, ZETA])
    venue.sell(1, 100, 1, symbol="ACME/USD")
    assert venue.sell(1, 100, 1, symbol="ZETA/USD").status is OrderStatus.OPEN  # another book
    venue.buy(2, 100, 1, symbol="ACME/USD")  # fills ACME order 1
    assert venue.sell(1, 100, 1, symbol="ACME/USD").status is OrderStatus.OPEN  # no longer resting
    assert venue.buy(3, 50, 1, symbol="ACME/USD", time_in_force="IOC").status is OrderStatus.EXPIRED
    assert venue.buy(3, 50, 1, symbol="ACME/USD").status is OrderStatus.OPEN


@pytest.mark.parametrize(
    ("price", "qty", "error"),
    [
        ("100.5", 1, InvalidPriceError),
        (100, "1.5", InvalidQuantityError),
        (100, INT64_MAX + 1, InvalidQuantityError),
        (INT64_MAX + 1, 1, InvalidPriceError),
    ],
)
def test_off_grid_or_out_of_range_input_raises_and_changes_nothing(venue, price, qty, error):
    venue.sell("a", 100, 1)
    with unchanged(venue.engine), pytest.raises(error):
        venue.buy("x", price, qty)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("x", "BUY", 0, 1), InvalidPriceError),
        (("x", "BUY", 100, 0), InvalidQuantityError),
        (("x", "BUY", 100, -1), InvalidQuantityError),
        (("x", "BUY", 100, INT64_MAX + 1), InvalidQuantityError),
        (("x", "BUY", 1.5, 1), InvalidPriceError),
        (("x", "BUY", 100, True), InvalidQuantityError),
        (("x", "UP", 100, 1), InvalidOrderError),
        ((None, "BUY", 100, 1), InvalidOrderError),
        (([], "BUY", 100, 1), InvalidOrderError),
    ],
)
def test_submit_raw_rejects_bad_input_and_changes_nothing(venue, args, error):
    venue.sell("a", 100, 1)
    with unchanged(venue.engine), pytest.raises(error):
        venue.engine.submit_raw(*args)
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.submit_raw("x", "BUY", 100, 1, time_in_force="DAY")


def test_an_order_object_can_be_submitted_only_once(venue):
    order = venue.Order("a", "SELL", 100, 1)
    venue.engine.submit(order)
    venue.engine.cancel(None, "a")
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.submit(order)
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.submit("not an order")


def test_a_remainder_that_would_overflow_its_level_raises_and_changes_nothing(venue):
    """Level totals are 64-bit: a GTC order that would push one past 2**63-1 lots is refused outright
    (no sequence number taken), like any other invalid input."""
    e = venue.engine
    e.submit_raw(1, "BUY", 100, INT64_MAX)
    with unchanged(e), pytest.raises(InvalidQuantityError):
        e.submit_raw(2, "BUY", 100, 1)
    with unchanged(e), pytest.raises(InvalidQuantityError):
        venue.buy(3, 100, 1)
    e.submit_raw(4, "BUY", 99, 5)
    with unchanged(e), pytest.raises(InvalidQuantityError):
        e.amend_raw(None, 4, price=100)
    assert e.submit_raw(5, "BUY", 100, 1, time_in_force="IOC").status is OrderStatus.EXPIRED


# -- symbol=None --------------------------------------------------------------------------------------


def test_with_one_instrument_symbol_none_means_that_one(engine_backend):
    e = engine_backend.MatchingEngine([ZETA])
    e.submit(engine_backend.Order("a", "SELL", "10", "1"))
    e.submit_raw("b", "SELL", 21, 3)
    assert e.book().symbol == "ZETA/USD" and e.book(None) is e.book("ZETA/USD")
    assert e.top_of_book() == e.top_of_book("ZETA/USD")
    assert e.top_of_book_raw() == (None, None, 20, 10)
    e.amend(None, "a", quantity="2")
    assert e.cancel(None, "a").symbol == "ZETA/USD"
    assert e.cancel_raw(None, "b") == 3


def test_with_several_instruments_symbol_none_raises(engine_backend):
    venue = Venue(engine_backend, [ACME, ZETA])
    venue.sell("a", 100, 1, symbol="ACME/USD")
    e = venue.engine
    calls = [
        lambda: venue.sell("x", 100, 1),
        lambda: e.submit_raw("x", "BUY", 100, 1),
        lambda: e.cancel(None, "a"),
        lambda: e.amend(None, "a", quantity=1),
        lambda: e.book(),
        lambda: e.top_of_book(),
    ]
    for call in calls:
        with unchanged(e), pytest.raises(UnknownSymbolError):
            call()
    assert venue.buy("b", 100, 1, symbol="ACME/USD").status is OrderStatus.FILLED


def test_with_no_instrument_symbol_none_raises(engine_backend):
    e = engine_backend.MatchingEngine()
    assert e.symbols == []
    with pytest.raises(UnknownSymbolError):
        e.submit(engine_backend.Order("x", "BUY", 1, 1))
    with pytest.raises(UnknownSymbolError):
        e.submit_raw("x", "BUY", 1, 1)
    e.add_instrument(ACME)
    assert e.submit_raw("x", "BUY", 1, 1).status is OrderStatus.OPEN


# -- the raw API -------------------------------------------------------------------------------------


def test_submit_raw_covers_every_order_kind(engine_backend):
    e = engine_backend.MatchingEngine([ZETA])  # tick 0.5, lot 0.1
    assert e.submit_raw(1, "SELL", 200, 10, owner="m").status is OrderStatus.OPEN  # 100.0 x 1.0
    assert e.submit_raw(2, Side.SELL, 202, 10).status is OrderStatus.OPEN
    report = e.submit_raw(3, "BUY", 201, 15, time_in_force="IOC", owner="t")
    assert [(t.price_ticks, t.quantity_lots, t.maker_owner, t.taker_owner) for t in report.trades] == [
        (200, 10, "m", "t")
    ]
    assert report.status is OrderStatus.EXPIRED and report.order.filled_lots == 10
    assert e.submit_raw(4, "BUY", 202, 11, time_in_force="FOK").status is OrderStatus.EXPIRED
    report = e.submit_raw(5, "BUY", None, 3)
    assert report.order.type.value == "MARKET" and report.order.price_ticks is None
    assert [(t.price, t.quantity) for t in report.trades] == [(Decimal("101.0"), Decimal("0.3"))]
    report = e.submit_raw(6, "BUY", None, 100, time_in_force="FOK")
    assert report.status is OrderStatus.EXPIRED
    report = e.submit_raw(7, "BUY", 100, 4, time_in_force="GTC")
    assert report.status is OrderStatus.OPEN and report.order.quantity == Decimal("0.4")
    assert e.top_of_book_raw() == (100, 4, 202, 7)


def test_raw_and_decimal_apis_give_identical_results(engine_backend):
    results = []
    for api in ("raw", "decimal"):
        e = engine_backend.MatchingEngine([ZETA], self_trade_prevention="CANCEL_MAKER")
        plan = [(1, "SELL", 20, 5, "x"), (2, "SELL", 21, 5, "y"), (3, "SELL", 21, 2, "x"), (4, "BUY", 22, 11, "x")]
        out = []
        for oid, side, ticks, lots, owner in plan:
            if api == "raw":
                r = e.submit_raw(oid, side, ticks, lots, owner=owner)
            else:
                r = e.submit(engine_backend.Order(oid, side, ticks * ZETA.tick_size, lots * ZETA.lot_size, owner=owner))
            out.append(
                (r.status, r.order.filled_lots, [(t.id, t.price, t.quantity, t.maker_order_id) for t in r.trades],
                 [o.id for o in r.cancelled])
            )  # fmt: skip
        results.append((out, e.snapshot()))
    assert results[0] == results[1]
