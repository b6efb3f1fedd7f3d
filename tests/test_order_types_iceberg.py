"""Iceberg orders (``display_quantity``), written from the venue rules, on both backends.

Only the displayed slice of a resting iceberg is visible (depth, level quantity, best
prices, market data). When a taker uses a slice up, the next slice (the display size,
or what is left if less) is shown at the back of the level with a new sequence: it
loses time priority to every order already at that price, and the same taker may
reach it after them. An incoming iceberg trades its whole quantity as a taker; only
what rests is sliced. Expected trades are worked out by hand from those rules (see
shared/api.md and notes/ordertypes-spec.md, decision 6).

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


@pytest.fixture
def venue(engine_backend):
    return Venue(engine_backend, [X])


def place(venue, oid, side, price, qty, **kw):
    """Submit an order built here; returns (the submitted Order object, its report)."""
    order = venue.Order(oid, side, price, qty, **kw)
    return order, venue.engine.submit(order)


def iceberg(venue, oid, side, price, qty, display, **kw):
    return place(venue, oid, side, price, qty, display_quantity=display, **kw)


def trades_of(report):
    """``[(price, quantity, maker id), ...]`` of a report's trades."""
    return [(t.price, t.quantity, t.maker_order_id) for t in report.trades]


def asks_depth(venue):
    return [tuple(level) for level in venue.engine.book().depth(100).asks]


def bids_depth(venue):
    return [tuple(level) for level in venue.engine.book().depth(100).bids]


def fifo(venue, side, price):
    """The ids resting at one price, in time priority."""
    return [o.id for o in venue.engine.book().orders_at(side, price)]


def restore(venue):
    """A new venue on the same backend from ``venue``'s engine snapshot, through JSON."""
    data = json.loads(json.dumps(venue.engine.snapshot()))
    copy = Venue(venue.backend, [X])
    copy.engine = venue.backend.MatchingEngine.from_snapshot(data)
    return copy


# -- what is visible ------------------------------------------------------------------------------


def test_only_the_displayed_slice_is_visible(venue):
    """A SELL 10 showing 3 at 100 is a level of 3; the order still reads its whole quantity."""
    ice, report = iceberg(venue, "ice", "SELL", 100, 10, 3)
    assert report.status is OPEN and report.trades == []
    book = venue.engine.book()
    assert asks_depth(venue) == [(100, 3, 1)]
    assert book.level(Side.SELL, 100).quantity == 3 and book.level(Side.SELL, 100).order_count == 1
    assert book.best_ask.quantity == 3 and book.best_ask.price == 100
    assert venue.engine.top_of_book().ask_quantity == 3
    assert len(book) == 1
    for order in (ice, book.get_order("ice")):
        assert order.quantity == 10 and order.remaining_quantity == 10 and order.filled_quantity == 0
        assert order.visible_quantity == 3 and order.display_quantity == 3
        assert isinstance(order.visible_quantity, Decimal) and isinstance(order.display_quantity, Decimal)
    # a plain order at the same price adds its whole size to the level
    venue.sell("x", 100, 2)
    assert asks_depth(venue) == [(100, 5, 2)]
    assert book.get_order("x").visible_quantity == 2  # a plain resting order shows all it has left
    # the bid side alike
    iceberg(venue, "iceb", "BUY", 95, 8, 2)
    assert bids_depth(venue) == [(95, 2, 1)]
    assert book.best_bid.quantity == 2
    check_books(venue.engine)


def test_market_data_shows_only_the_slice(venue):
    """The L2 delta of a resting iceberg carries its slice, and after a refresh what is left of the new slice."""
    updates = []
    venue.engine.subscribe(updates.append)
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    assert [(d.side, d.price, d.quantity) for d in updates[-1].deltas] == [(Side.SELL, 100, 3)]
    # a buy of 4 uses the first slice up (3), the next slice of 3 shows at once, and 1 of it trades
    venue.buy("t", 100, 4)
    final = {(d.side, d.price): d.quantity for d in updates[-1].deltas}
    assert final == {(Side.SELL, Decimal(100)): 2}
    assert [(t.price, t.quantity) for t in updates[-1].trades] == [(100, 3), (100, 1)]


# -- refresh: the back of the level -----------------------------------------------------------------


def test_a_refreshed_slice_goes_behind_a_later_order_at_the_same_price(venue):
    """ice (10 showing 3) then late x2 at 100; a buy of 3 uses the slice up: the new slice queues behind late."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    late = venue.sell("late", 100, 2).order
    report = venue.buy("t", 100, 3)
    assert trades_of(report) == [(100, 3, "ice")]
    assert report.status is FILLED
    assert fifo(venue, Side.SELL, 100) == ["late", "ice"]
    resting = venue.resting("ice")
    assert resting.sequence > late.sequence  # a new sequence: time priority lost
    assert (resting.visible_quantity, resting.remaining_quantity, resting.filled_quantity) == (3, 7, 3)
    assert resting.quantity == 10 and resting.status is PARTIALLY_FILLED
    assert asks_depth(venue) == [(100, 5, 2)]
    # the next buyer meets late first
    assert trades_of(venue.buy("t2", 100, 1)) == [(100, 1, "late")]


def test_the_same_taker_trades_the_refreshed_slice_after_the_orders_ahead(venue):
    """ice 10/3 and late x2 at 100, more at 101; a buy of 7 at 101 takes ice 3, late 2, then ice's new slice 2."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    venue.sell("late", 100, 2)
    venue.sell("a101", 101, 5)
    report = venue.buy("t", 101, 7)
    # the refreshed slice at 100 is still a better price than 101
    assert trades_of(report) == [(100, 3, "ice"), (100, 2, "late"), (100, 2, "ice")]
    assert report.status is FILLED
    ice = venue.resting("ice")
    assert (ice.filled_quantity, ice.remaining_quantity, ice.visible_quantity) == (5, 5, 1)
    assert asks_depth(venue) == [(100, 1, 1), (101, 5, 1)]
    # the last unit of that slice goes, and a fresh slice of 3 shows (4 were hidden)
    assert trades_of(venue.buy("t2", 100, 1)) == [(100, 1, "ice")]
    assert (ice.remaining_quantity, ice.visible_quantity) == (4, 3)
    assert asks_depth(venue) == [(100, 3, 1), (101, 5, 1)]
    check_books(venue.engine)


def test_the_last_slice_is_what_is_left_when_less_than_the_display(venue):
    """7 showing 3: slices of 3, 3, then 1; a buy of 6 takes two slices, leaving a last slice of 1."""
    ice, _ = iceberg(venue, "ice", "SELL", 100, 7, 3)
    report = venue.buy("t", 100, 6)
    assert trades_of(report) == [(100, 3, "ice"), (100, 3, "ice")]
    resting = venue.resting("ice")
    assert (resting.remaining_quantity, resting.visible_quantity) == (1, 1)
    assert asks_depth(venue) == [(100, 1, 1)]
    report = venue.buy("t2", 100, 1)
    assert trades_of(report) == [(100, 1, "ice")]
    assert "ice" not in venue.engine.book() and asks_depth(venue) == []
    assert ice.status is FILLED and ice.filled_quantity == 7


def test_a_bid_iceberg_refreshes_behind_a_later_bid(venue):
    """BUY 5 showing 2 then late x1 at 100; a sell of 4 takes ice 2, late 1, then 1 of ice's new slice of 2."""
    iceberg(venue, "ice", "BUY", 100, 5, 2)
    venue.buy("late", 100, 1)
    report = venue.sell("t", 100, 4)
    assert trades_of(report) == [(100, 2, "ice"), (100, 1, "late"), (100, 1, "ice")]
    ice = venue.resting("ice")
    assert (ice.remaining_quantity, ice.visible_quantity) == (2, 1)
    assert bids_depth(venue) == [(100, 1, 1)]


# -- an incoming iceberg ---------------------------------------------------------------------------


def test_an_incoming_iceberg_trades_its_whole_quantity_as_a_taker(venue):
    """Asks 100 x2 and 101 x5; a BUY 6 at 101 showing 2 takes 2 @100 and 4 @101, not just 2."""
    venue.sell("a100", 100, 2)
    venue.sell("a101", 101, 5)
    _, report = iceberg(venue, "ice", "BUY", 101, 6, 2)
    assert trades_of(report) == [(100, 2, "a100"), (101, 4, "a101")]
    assert report.status is FILLED
    assert bids_depth(venue) == [] and asks_depth(venue) == [(101, 1, 1)]


def test_only_what_an_incoming_iceberg_rests_is_sliced(venue):
    """Asks 100 x3; a BUY 8 at 100 showing 2 takes 3, then rests 5 of which 2 are shown."""
    venue.sell("a100", 100, 3)
    ice, report = iceberg(venue, "ice", "BUY", 100, 8, 2)
    assert trades_of(report) == [(100, 3, "a100")]
    assert report.status is PARTIALLY_FILLED
    assert bids_depth(venue) == [(100, 2, 1)]
    assert (ice.quantity, ice.filled_quantity, ice.remaining_quantity, ice.visible_quantity) == (8, 3, 5, 2)


# -- cancel and amend --------------------------------------------------------------------------------


def test_cancel_removes_the_hidden_quantity_too(venue):
    """Cancelling ice (10 showing 3) leaves only late x2 at 100; a buy of 5 finds nothing hidden."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    venue.sell("late", 100, 2)
    cancelled = venue.engine.cancel(None, "ice")
    assert cancelled.id == "ice" and cancelled.status is CANCELLED
    assert cancelled.visible_quantity == 0
    assert "ice" not in venue.engine.book()
    assert asks_depth(venue) == [(100, 2, 1)]
    report = venue.buy("t", 100, 5)
    assert trades_of(report) == [(100, 2, "late")]
    assert venue.bids() == [(100, [("t", 3)])] and venue.asks() == []


def test_lowering_an_icebergs_quantity_takes_from_the_hidden_part_and_keeps_priority(venue):
    """ice 10 showing 3, late x2: quantity 5 leaves the slice at 3; quantity 2 shrinks it to 2; ice stays first."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    venue.sell("late", 100, 2)
    seq = venue.resting("ice").sequence
    report = venue.engine.amend(None, "ice", quantity=5)
    assert report.trades == []
    ice = venue.resting("ice")
    assert (ice.quantity, ice.remaining_quantity, ice.visible_quantity, ice.sequence) == (5, 5, 3, seq)
    assert fifo(venue, Side.SELL, 100) == ["ice", "late"]
    assert asks_depth(venue) == [(100, 5, 2)]
    venue.engine.amend(None, "ice", quantity=2)  # the hidden part is gone first, then the slice shrinks
    ice = venue.resting("ice")
    assert (ice.quantity, ice.remaining_quantity, ice.visible_quantity, ice.sequence) == (2, 2, 2, seq)
    assert fifo(venue, Side.SELL, 100) == ["ice", "late"]
    assert asks_depth(venue) == [(100, 4, 2)]
    assert trades_of(venue.buy("t", 100, 1)) == [(100, 1, "ice")]


def test_lowering_a_partly_filled_icebergs_quantity_keeps_its_current_slice(venue):
    """ice 10 showing 3 sold 1 (slice 2, hidden 7); quantity 6 leaves 5: hidden 3, slice still 2."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    venue.buy("t0", 100, 1)
    venue.engine.amend(None, "ice", quantity=6)
    ice = venue.resting("ice")
    assert (ice.quantity, ice.filled_quantity, ice.remaining_quantity, ice.visible_quantity) == (6, 1, 5, 2)
    # the slice of 2 goes, then a slice of 3 (all that is hidden) shows
    assert trades_of(venue.buy("t1", 100, 2)) == [(100, 2, "ice")]
    assert (ice.remaining_quantity, ice.visible_quantity) == (3, 3)


def test_raising_an_icebergs_quantity_adds_to_the_hidden_part_and_goes_to_the_back(venue):
    """ice 10 showing 3 sold 1 (slice 2), then late x2; quantity 12: slice still 2, ice now behind late."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    venue.buy("t0", 100, 1)
    venue.sell("late", 100, 2)
    venue.engine.amend(None, "ice", quantity=12)
    ice = venue.resting("ice")
    assert (ice.quantity, ice.filled_quantity, ice.remaining_quantity, ice.visible_quantity) == (12, 1, 11, 2)
    assert fifo(venue, Side.SELL, 100) == ["late", "ice"]
    assert asks_depth(venue) == [(100, 4, 2)]
    assert trades_of(venue.buy("t", 100, 2)) == [(100, 2, "late")]


def test_a_price_amend_sends_an_iceberg_to_the_back_of_the_new_level_with_its_current_slice(venue):
    """ice 10 showing 3 sold 1 (slice 2) moves from 100 to 101, behind other x1 there, still showing 2."""
    venue.sell("other", 101, 1)
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    venue.buy("t0", 100, 1)
    report = venue.engine.amend(None, "ice", price=101)
    assert report.trades == [] and report.status is PARTIALLY_FILLED
    ice = venue.resting("ice")
    assert (ice.price, ice.quantity, ice.filled_quantity, ice.visible_quantity) == (101, 10, 1, 2)
    assert fifo(venue, Side.SELL, 101) == ["other", "ice"]
    assert asks_depth(venue) == [(101, 3, 2)]


# -- fill-or-kill counts the hidden quantity --------------------------------------------------------


def test_fok_counts_an_icebergs_hidden_quantity(venue):
    """ice 10 showing 3 and late x2 at 100 hold 12: a FOK buy of 13 expires untouched; one of 12 fills."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    venue.sell("late", 100, 2)
    with unchanged(venue.engine):
        report = venue.buy("fok13", 100, 13, time_in_force="FOK")
    assert report.status is EXPIRED and report.trades == []
    report = venue.buy("fok12", 100, 12, time_in_force="FOK")
    # slice 3, then late (ahead of the refreshed slice), then ice's slices 3, 3 and the last 1
    assert trades_of(report) == [(100, 3, "ice"), (100, 2, "late"), (100, 3, "ice"), (100, 3, "ice"), (100, 1, "ice")]
    assert report.status is FILLED
    assert asks_depth(venue) == [] and len(venue.engine.book()) == 0


def test_fok_alone_against_an_iceberg_fills_through_its_slices(venue):
    """ice 10 showing 3 alone: a FOK buy of 8 fills 3, 3, 2 (more than the displayed 3)."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    report = venue.buy("fok", 100, 8, time_in_force="FOK")
    assert report.status is FILLED
    assert trades_of(report) == [(100, 3, "ice"), (100, 3, "ice"), (100, 2, "ice")]
    assert venue.resting("ice").visible_quantity == 1 and venue.resting("ice").remaining_quantity == 2


# -- snapshots -------------------------------------------------------------------------------------


def test_snapshot_round_trip_keeps_hidden_quantity_display_and_priority(venue):
    """ice 10/3 sold 4 (slice 2, hidden 4) then late x2; after a restore a buy of 8 trades the same on both."""
    iceberg(venue, "ice", "SELL", 100, 10, 3)
    assert trades_of(venue.buy("t1", 100, 4)) == [(100, 3, "ice"), (100, 1, "ice")]
    venue.sell("late", 100, 2)
    copy = restore(venue)
    assert json.loads(json.dumps(copy.engine.snapshot())) == json.loads(json.dumps(venue.engine.snapshot()))
    for v in (venue, copy):
        ice = v.resting("ice")
        assert (ice.quantity, ice.filled_quantity, ice.visible_quantity, ice.display_quantity) == (10, 4, 2, 3)
        assert asks_depth(v) == [(100, 4, 2)]
        assert fifo(v, Side.SELL, 100) == ["ice", "late"]
        report = v.buy("t2", 100, 8)
        # slice 2; the new slice of 3 queues behind late; late 2; slice 3; the last slice 1
        assert trades_of(report) == [(100, 2, "ice"), (100, 2, "late"), (100, 3, "ice"), (100, 1, "ice")]
        assert [t.id for t in report.trades] == [3, 4, 5, 6]
        assert report.status is FILLED and asks_depth(v) == []
        check_books(v.engine)


# -- invalid display sizes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "display"),
    [("1", "1"), ("1", "2"), ("1", "0"), ("1", "-0.5"), ("1", "0.0005")],
    ids=["equal-to-quantity", "above-quantity", "zero", "negative", "off-the-lot-grid"],
)
def test_a_display_quantity_not_between_zero_and_the_quantity_on_the_grid_raises(engine_backend, qty, display):
    """display_quantity must be on the lot grid, > 0 and < quantity; otherwise InvalidOrderError and no change."""
    venue = Venue(engine_backend, [BTC])
    venue.sell("a", "101.00", "1")
    with unchanged(venue.engine), pytest.raises(InvalidOrderError):
        venue.engine.submit(venue.Order("ice", "BUY", "100.00", qty, display_quantity=display))


def test_an_iceberg_may_be_gtd(venue):
    """An iceberg is LIMIT GTC or GTD: a GTD iceberg rests showing its slice."""
    ice, report = iceberg(venue, "ice", "SELL", 100, 10, 3, time_in_force="GTD", expire_at=50)
    assert report.status is OPEN and ice.expire_at == 50
    assert asks_depth(venue) == [(100, 3, 1)]
