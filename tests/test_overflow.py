"""64-bit edges of the core's arithmetic, on both backends (issue 10, item 1).

The compiled core keeps ticks, lots and level totals in ``int64_t``. Every sum
it forms must either be proven to stay in range (a level's total is refused at
insert time past 2**63-1) or be written so that it cannot wrap (the FOK
fillability check compares before it adds). The pure backend must give the
same answers and raise the same errors.
"""

from __future__ import annotations

from array import array
from decimal import Decimal as D

import pytest

from _helpers import INT64_MAX, raises_unchanged
from models.engine import check_books
from tradebook import STATUS_CODES, BatchOp, Instrument, InvalidOrderError, InvalidQuantityError, OrderStatus

ETH = Instrument("ETH/USDT", "0.01", "0.000000000000000001")  # 1 ETH = 10**18 lots
ACME = Instrument("ACME/USD", "1", "1")
HALF = 1 << 62  # two of these make 2**63: one more than an int64 holds


def _engine(engine_backend, inst=ACME, **kwargs):
    return engine_backend.MatchingEngine([inst], **kwargs)


# -- FOK fillability: the resting quantity it adds up crosses 2**63-1 ------------------------


def test_fok_fills_ten_eth_of_liquidity_on_an_attoether_grid(engine_backend):
    """The issue's example: 5 ETH at 3000.00 and 5 ETH at 3001.00 (10**19 lots in all), FOK buy 6 ETH."""
    engine = _engine(engine_backend, ETH)
    engine.submit(engine_backend.Order(1, "SELL", "3000.00", "5"))
    engine.submit(engine_backend.Order(2, "SELL", "3001.00", "5"))
    report = engine.submit(engine_backend.Order(3, "BUY", "3001.00", "6", time_in_force="FOK"))
    assert report.status is OrderStatus.FILLED
    assert [(t.price, t.quantity) for t in report.trades] == [(D("3000.00"), D(5)), (D("3001.00"), D(1))]
    check_books(engine)


@pytest.mark.parametrize(
    ("first", "second", "wanted"),
    [
        (HALF, HALF, HALF + 1),  # the running sum reaches exactly 2**63
        (1, INT64_MAX, INT64_MAX),  # 1 + (2**63-1): the largest order the book can see
        (INT64_MAX, INT64_MAX, INT64_MAX),  # the first level alone is enough
        (INT64_MAX - 1, INT64_MAX, INT64_MAX),  # one lot short on the first level
    ],
    ids=["half+half", "1+max", "max+max", "max-1+max"],
)
@pytest.mark.parametrize("market", [False, True], ids=["limit", "market"])
def test_fok_raw_fills_when_the_levels_together_pass_int64(engine_backend, first, second, wanted, market):
    engine = _engine(engine_backend)
    engine.submit_raw(1, "SELL", 100, first)
    engine.submit_raw(2, "SELL", 101, second)
    report = engine.submit_raw(3, "BUY", None if market else 101, wanted, time_in_force="FOK")
    assert report.status is OrderStatus.FILLED
    assert report.filled_lots == wanted
    assert sum(t.quantity_lots for t in report.trades) == wanted
    check_books(engine)


@pytest.mark.parametrize("market", [False, True], ids=["limit", "market"])
def test_fok_sell_walks_bids_past_int64(engine_backend, market):
    engine = _engine(engine_backend)
    engine.submit_raw(1, "BUY", 101, HALF)
    engine.submit_raw(2, "BUY", 100, HALF)
    report = engine.submit_raw(3, "SELL", None if market else 100, HALF + 1, time_in_force="FOK")
    assert report.status is OrderStatus.FILLED
    assert engine.book().level_raw("BUY", 100) == (HALF - 1, 1)
    check_books(engine)


def test_fok_still_expires_when_even_the_unbounded_sum_falls_short(engine_backend):
    """Three levels of 2**62 are 3 * 2**62 lots; a FOK for more than is there at its price expires."""
    engine = _engine(engine_backend)
    for i, price in enumerate((100, 101, 102)):
        engine.submit_raw(i + 1, "SELL", price, HALF)
    with_two = engine.submit_raw(9, "BUY", 101, INT64_MAX, time_in_force="FOK")
    assert with_two.status is OrderStatus.FILLED  # 2**63-1 < 2 * 2**62
    engine.submit_raw(10, "SELL", 100, HALF)
    engine.submit_raw(11, "SELL", 101, 1)
    short = engine.submit_raw(12, "BUY", 100, INT64_MAX, time_in_force="FOK")
    assert short.status is OrderStatus.EXPIRED and short.trades == []
    check_books(engine)


def test_fok_cancel_maker_skips_own_orders_without_wrapping(engine_backend):
    """Self-trade prevention CANCEL_MAKER: own liquidity is not counted, other owners' is, past 2**63-1."""
    engine = _engine(engine_backend, self_trade_prevention="CANCEL_MAKER")
    engine.submit_raw(1, "SELL", 100, HALF, owner="alice")
    engine.submit_raw(2, "SELL", 100, HALF - 1, owner="bob")
    engine.submit_raw(3, "SELL", 101, HALF + 1, owner="carol")  # bob's and carol's lots add up to 2**63
    report = engine.submit_raw(4, "BUY", 101, INT64_MAX, time_in_force="FOK", owner="alice")
    assert report.status is OrderStatus.FILLED
    assert [o.id for o in report.cancelled] == [1]
    assert [t.quantity_lots for t in report.trades] == [HALF - 1, HALF]
    assert engine.book().level_raw("SELL", 101) == (1, 1)
    check_books(engine)


def test_fok_in_a_batch_past_int64(engine_backend):
    engine = _engine(engine_backend)
    commands = array(
        "q",
        [
            BatchOp.LIMIT, 1, 1, 100, HALF,
            BatchOp.LIMIT, 2, 1, 101, HALF,
            BatchOp.FOK, 3, 0, 101, HALF + 1,
            BatchOp.LIMIT, 4, 1, 100, HALF,
            BatchOp.LIMIT, 5, 1, 102, INT64_MAX,
            BatchOp.MARKET, 6, 0, 0, INT64_MAX,
        ],
    )  # fmt: skip
    result = engine.execute_batch(commands)
    filled = STATUS_CODES.index(OrderStatus.FILLED)
    assert list(result.statuses) == [1, 1, filled, 1, 1, filled]
    assert list(result.lots)[2] == HALF + 1 and list(result.lots)[5] == INT64_MAX
    check_books(engine)


# -- level totals: refused at 2**63-1, on every way into a level ------------------------------


def test_a_level_holds_exactly_int64_max_and_not_one_lot_more(engine_backend):
    engine = _engine(engine_backend)
    book = engine.book()
    engine.submit_raw(1, "SELL", 100, INT64_MAX - 1)
    engine.submit_raw(2, "SELL", 100, 1)
    assert book.level_raw("SELL", 100) == (INT64_MAX, 2)
    assert engine.top_of_book_raw() == (None, None, 100, INT64_MAX)
    assert book.depth_raw(1) == ([], [(100, INT64_MAX, 2)])
    assert book.depth(1).asks[0].quantity == D(INT64_MAX)
    msg = "the level's total quantity would exceed 2**63-1 lots"
    err = raises_unchanged(book, InvalidQuantityError, "invalid_quantity", engine.submit_raw, 3, "SELL", 100, 1)
    assert str(err) == msg
    raises_unchanged(book, InvalidQuantityError, None, book.add_raw, 3, "SELL", 100, 1)
    raises_unchanged(book, InvalidQuantityError, None, book.add_order, engine_backend.Order(3, "SELL", 100, 1))
    engine.submit_raw(4, "SELL", 101, 5)
    raises_unchanged(book, InvalidQuantityError, None, engine.amend_raw, None, 4, price=100)
    raises_unchanged(book, InvalidQuantityError, None, engine.amend_raw, None, 2, quantity=2)
    raises_unchanged(book, InvalidQuantityError, None, book.amend_raw, 4, price=100)
    # a buy that crosses the full level and would rest its remainder there is refused before it trades
    engine.submit_raw(5, "BUY", 100, 1)  # trades 1 lot against order 1: the level has room for one again
    assert book.level_raw("SELL", 100) == (INT64_MAX - 1, 2)
    engine.submit_raw(6, "SELL", 100, 1)
    assert book.level_raw("SELL", 100) == (INT64_MAX, 3)
    check_books(engine)


def test_a_crossing_amend_whose_remainder_would_overflow_its_new_level_changes_nothing(engine_backend):
    engine = _engine(engine_backend)
    book = engine.book()
    engine.submit_raw(1, "BUY", 99, INT64_MAX)
    engine.submit_raw(2, "SELL", 101, 3)
    engine.submit_raw(3, "BUY", 100, 5)
    engine.submit_raw(4, "BUY", 98, 1)
    # moving order 4 to 99 joins a full level
    raises_unchanged(book, InvalidQuantityError, None, engine.amend_raw, None, 4, price=99)
    check_books(engine)


def test_decrement_at_int64_max_leaves_consistent_totals(engine_backend):
    """Self-trade DECREMENT shrinks both sides by the smaller remainder, at the very top of the range."""
    engine = _engine(engine_backend, self_trade_prevention="DECREMENT")
    book = engine.book()
    engine.submit_raw(1, "SELL", 100, INT64_MAX, owner="alice")
    report = engine.submit_raw(2, "BUY", 100, INT64_MAX - 1, owner="alice")
    assert report.status is OrderStatus.CANCELLED and report.trades == []
    assert report.remaining_lots == 0 and report.order.quantity_lots == 0
    assert book.level_raw("SELL", 100) == (1, 1)
    assert book.get_order(1).quantity_lots == 1
    engine.submit_raw(3, "SELL", 100, INT64_MAX - 1, owner="bob")
    assert book.level_raw("SELL", 100) == (INT64_MAX, 2)
    report = engine.submit_raw(4, "BUY", 100, INT64_MAX, owner="alice")
    # 1 lot decremented against alice's own order, then 2**63-2 traded with bob
    assert report.status is OrderStatus.FILLED
    assert report.order.quantity_lots == INT64_MAX - 1
    assert [t.quantity_lots for t in report.trades] == [INT64_MAX - 1]
    assert [o.id for o in report.cancelled] == [1]
    assert len(book) == 0
    check_books(engine)


def test_batch_cancel_and_fill_lots_at_int64_max(engine_backend):
    engine = _engine(engine_backend)
    commands = array(
        "q",
        [
            BatchOp.LIMIT, 1, 1, 100, INT64_MAX,
            BatchOp.CANCEL, 1, 0, 0, 0,
            BatchOp.LIMIT, 2, 0, 50, INT64_MAX,
            BatchOp.IOC, 3, 1, 50, INT64_MAX,
            BatchOp.LIMIT, 4, 0, 50, INT64_MAX,
            BatchOp.AMEND, 4, 0, 0, INT64_MAX - 1,
        ],
    )  # fmt: skip
    result = engine.execute_batch(commands)
    assert list(result.lots) == [0, INT64_MAX, 0, INT64_MAX, 0, 0]
    assert [t.quantity_lots for t in result.trades] == [INT64_MAX]
    assert engine.book().level_raw("BUY", 50) == (INT64_MAX - 1, 1)
    check_books(engine)


def test_snapshot_with_a_level_past_int64_is_refused(engine_backend):
    engine = _engine(engine_backend)
    engine.submit_raw(1, "SELL", 100, INT64_MAX)
    data = engine.book().snapshot()
    row = dict(data["orders"][0], id=2, sequence=2)
    with pytest.raises(InvalidOrderError):
        engine_backend.OrderBook.from_snapshot({**data, "next_sequence": 3, "orders": [*data["orders"], row]})


# -- the notional check: price x quantity is exact, whatever the caller's decimal context ----------


def test_min_notional_compares_the_exact_product(engine_backend):
    """15-digit price and quantity make a 29-digit notional: rounded to 28 digits it fell below its minimum."""
    import decimal

    inst = Instrument("A/B", "0.00000000000001", "0.00000000000001", min_notional="1.0000000000000200000000000001")
    engine = _engine(engine_backend, inst)
    report = engine.submit(engine_backend.Order(1, "SELL", "1.00000000000001", "1.00000000000001"))
    assert report.status is OrderStatus.OPEN
    with decimal.localcontext() as ctx:
        ctx.prec = 6
        ctx.traps[decimal.Inexact] = True
        assert engine.submit_raw(2, "SELL", 100000000000001, 100000000000001).status is OrderStatus.OPEN
        with pytest.raises(InvalidOrderError, match="below the minimum"):
            engine.submit_raw(3, "SELL", 100000000000001, 100000000000000)
    check_books(engine)
