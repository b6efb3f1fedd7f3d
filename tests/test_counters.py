"""The sequence and trade-id counters at 2**63-1, on both backends (issue 10, item 2).

A book's ``next_sequence`` and an engine's ``next_trade_id`` live in int64s in
the compiled core. Both backends keep them at or below 2**63-1: a snapshot may
carry the limit itself (and then restores), but no command hands out a number
that would push a counter past it. Such a command raises ``TradebookError`` and
changes nothing.
"""

from __future__ import annotations

import json
from array import array

import pytest

from _helpers import INT64_MAX, raises_unchanged
from models.engine import check_books
from tradebook import ERROR_INVALID, BatchOp, Instrument, InvalidOrderError, OrderStatus, TradebookError

ACME = Instrument("ACME/USD", "1", "1")
SEQ_MSG = (
    "the book's sequence counter is used up: next_sequence has reached 2**63-1, "
    "so it accepts no new order and re-queues none"
)


def _engine_at(engine_backend, *, next_sequence=None, next_trade_id=None, orders=()):
    """An ACME engine restored from a snapshot with the given counters, after resting ``orders`` (raw)."""
    engine = engine_backend.MatchingEngine([ACME])
    for order_id, side, price, lots in orders:
        engine.submit_raw(order_id, side, price, lots)
    data = json.loads(json.dumps(engine.snapshot()))
    if next_sequence is not None:
        data["books"][0]["next_sequence"] = next_sequence
    if next_trade_id is not None:
        data["next_trade_id"] = next_trade_id
    return engine_backend.MatchingEngine.from_snapshot(data)


def _round_trip(engine_backend, engine):
    copy = engine_backend.MatchingEngine.from_snapshot(json.loads(json.dumps(engine.snapshot())))
    assert copy.snapshot() == engine.snapshot()
    check_books(copy)
    return copy


# -- the book's sequence counter ----------------------------------------------------------------


def test_the_last_sequence_number_is_handed_out_then_the_book_refuses_new_orders(engine_backend):
    engine = _engine_at(engine_backend, next_sequence=INT64_MAX - 1)
    book = engine.book()
    report = engine.submit_raw(1, "SELL", 100, 5)
    assert report.order.sequence == INT64_MAX - 1
    assert book.next_sequence == INT64_MAX
    err = raises_unchanged(book, TradebookError, "tradebook_error", engine.submit_raw, 2, "SELL", 101, 1)
    assert str(err) == SEQ_MSG
    # every way in that needs a sequence number is refused alike, on the book and on the engine
    raises_unchanged(book, TradebookError, None, engine.submit, engine_backend.Order(2, "BUY", 90, 1))
    raises_unchanged(book, TradebookError, None, engine.submit_raw, 2, "BUY", 100, 1)  # would trade
    raises_unchanged(book, TradebookError, None, engine.submit_raw, 2, "BUY", None, 1)  # market
    raises_unchanged(book, TradebookError, None, book.add_raw, 2, "BUY", 90, 1)
    raises_unchanged(book, TradebookError, None, book.add_order, engine_backend.Order(2, "BUY", 90, 1))
    raises_unchanged(book, TradebookError, None, book.amend_raw, 1, price=101)  # re-queued
    raises_unchanged(book, TradebookError, None, book.amend_raw, 1, quantity=6)  # re-queued
    raises_unchanged(book, TradebookError, None, engine.amend_raw, None, 1, quantity=6)
    raises_unchanged(book, TradebookError, None, engine.amend_raw, None, 1, price=99)
    assert book.next_sequence == INT64_MAX
    # what needs no new number still works, and the book restores from its own snapshot
    copy = _round_trip(engine_backend, engine)
    assert copy.book().next_sequence == INT64_MAX
    engine.amend_raw(None, 1, quantity=4)  # lowering keeps priority
    assert book.get_order(1).sequence == INT64_MAX - 1
    assert engine.cancel_raw(None, 1) == 4
    _round_trip(engine_backend, engine)


def test_refusals_at_the_sequence_limit_keep_their_own_precedence(engine_backend):
    """Invalid input, a duplicate id and a full level are reported as before; FOK and post-only outcomes too."""
    engine = _engine_at(engine_backend, next_sequence=INT64_MAX, orders=[(1, "SELL", 100, INT64_MAX)])
    book = engine.book()
    raises_unchanged(book, InvalidOrderError, "invalid_quantity", engine.submit_raw, 2, "SELL", 100, 1)
    raises_unchanged(book, InvalidOrderError, "invalid_quantity", book.add_raw, 2, "SELL", 100, 1)
    from tradebook import DuplicateOrderError

    raises_unchanged(book, DuplicateOrderError, None, engine.submit_raw, 1, "SELL", 100, 1)
    # outcomes that accept nothing need no sequence number
    fok = engine.submit_raw(3, "BUY", 99, 1, time_in_force="FOK")
    assert fok.status is OrderStatus.EXPIRED
    post = engine.submit(engine_backend.Order(4, "BUY", 100, 1, post_only=True))
    assert post.status is OrderStatus.REJECTED
    check_books(engine)


def test_a_batch_at_the_sequence_limit_marks_each_new_order_invalid(engine_backend):
    engine = _engine_at(engine_backend, next_sequence=INT64_MAX - 1)
    commands = array(
        "q",
        [
            BatchOp.LIMIT, 1, 1, 100, 3,
            BatchOp.LIMIT, 2, 1, 100, 3,
            BatchOp.IOC, 3, 0, 100, 1,
            BatchOp.AMEND, 1, 0, 0, 2,
            BatchOp.AMEND, 1, 0, 101, 0,
            BatchOp.CANCEL, 1, 0, 0, 0,
        ],
    )  # fmt: skip
    result = engine.execute_batch(commands)
    assert list(result.statuses) == [1, ERROR_INVALID, ERROR_INVALID, 1, ERROR_INVALID, 4]
    assert list(result.lots) == [0, 0, 0, 0, 0, 2]
    assert engine.book().next_sequence == INT64_MAX
    _round_trip(engine_backend, engine)


def test_book_snapshots_past_the_limit_are_refused(engine_backend):
    data = engine_backend.OrderBook(ACME).snapshot()
    assert engine_backend.OrderBook.from_snapshot({**data, "next_sequence": INT64_MAX}).next_sequence == INT64_MAX
    for bad in (INT64_MAX + 1, 2**64, 0, -1):
        with pytest.raises(InvalidOrderError):
            engine_backend.OrderBook.from_snapshot({**data, "next_sequence": bad})


# -- the engine's trade ids -------------------------------------------------------------------------


def test_the_last_trade_ids_are_used_then_a_crossing_order_is_refused(engine_backend):
    engine = _engine_at(engine_backend, next_trade_id=INT64_MAX - 2, orders=[(1, "SELL", 100, 1), (2, "SELL", 101, 1)])
    book = engine.book()
    report = engine.submit_raw(3, "BUY", 101, 2)  # two resting orders, two ids left: allowed
    assert [t.id for t in report.trades] == [INT64_MAX - 2, INT64_MAX - 1]
    assert engine.next_trade_id == INT64_MAX
    engine.submit_raw(4, "SELL", 100, 1)
    err = raises_unchanged(book, TradebookError, "tradebook_error", engine.submit_raw, 5, "BUY", 100, 1)
    assert str(err) == (
        f"the engine's trade ids are running out: next_trade_id {INT64_MAX} leaves 0 before 2**63-1, "
        "fewer than the 1 resting orders of ACME/USD that this order could trade with"
    )
    raises_unchanged(book, TradebookError, None, engine.submit_raw, 5, "BUY", None, 1)  # market
    raises_unchanged(
        book, TradebookError, None, engine.submit, engine_backend.Order(5, "BUY", 100, 1, time_in_force="IOC")
    )
    raises_unchanged(book, TradebookError, None, engine.submit_raw, 5, "BUY", 100, 1, time_in_force="FOK")
    # an order that cannot trade needs no trade id: it rests, and the crossing amend of it is refused
    engine.submit_raw(6, "BUY", 99, 1)
    raises_unchanged(book, TradebookError, None, engine.amend_raw, None, 6, price=100)
    assert engine.next_trade_id == INT64_MAX
    copy = _round_trip(engine_backend, engine)
    assert copy.next_trade_id == INT64_MAX


def test_the_trade_id_rule_counts_every_resting_order(engine_backend):
    """Fewer ids left than resting orders refuses a crossing order even if it would trade once."""
    engine = _engine_at(
        engine_backend,
        next_trade_id=INT64_MAX - 2,
        orders=[(1, "SELL", 100, 5), (2, "SELL", 101, 1), (3, "BUY", 90, 1)],
    )
    with pytest.raises(TradebookError):
        engine.submit_raw(4, "BUY", 100, 1)
    engine.cancel_raw(None, 3)
    assert engine.submit_raw(4, "BUY", 100, 1).status is OrderStatus.FILLED
    assert engine.next_trade_id == INT64_MAX - 1
    check_books(engine)


def test_engine_snapshots_past_the_trade_id_limit_are_refused(engine_backend):
    data = engine_backend.MatchingEngine([ACME]).snapshot()
    assert engine_backend.MatchingEngine.from_snapshot({**data, "next_trade_id": INT64_MAX}).next_trade_id == INT64_MAX
    for bad in (INT64_MAX + 1, 0):
        with pytest.raises(InvalidOrderError):
            engine_backend.MatchingEngine.from_snapshot({**data, "next_trade_id": bad})
