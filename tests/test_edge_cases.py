"""Edge cases: one order, long FIFO queues, big books, extreme prices and quantities, level overflow."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from _helpers import ALL, INT64_MAX, book_state, raises_unchanged
from tradebook import Instrument, InvalidQuantityError, LevelSnapshot, OrderStatus

D = Decimal


def test_single_order_lifecycle(backend, book):
    book.add_raw(1, "SELL", 5, 5)
    assert len(book) == 1 and len(book.asks) == 1 and len(book.bids) == 0
    assert book.best_ask.order_count == 1 and book.best_bid is None
    assert book.spread is None and book.mid_price is None
    assert book.depth() == ([], [LevelSnapshot(D("0.05"), D("0.005"), 1)])
    book.fill_raw(1, 5)
    assert len(book) == 0 and book.best_ask is None and len(book.asks) == 0
    assert book.snapshot()["orders"] == []
    book._check()
    assert book_state(book) == book_state(backend.OrderBook(book.instrument)) | {
        "snapshot": book.snapshot()  # only the sequence counter differs from a fresh book
    }


def test_many_orders_at_one_price_fifo(backend, book):
    n = 2000
    for i in range(n):
        book.add_raw(i, "BUY", 100, 1 + i % 7)
    level = book.level("BUY", "1")
    assert level.order_count == n
    assert [o.id for o in level] == list(range(n))
    assert level.quantity_lots == sum(1 + i % 7 for i in range(n))
    rng = random.Random(5)
    gone = set(rng.sample(range(n), n // 2))
    for oid in gone:
        book.remove_raw(oid)
    left = [i for i in range(n) if i not in gone]
    assert [o.id for o in book.orders_at("BUY", "1.00")] == left
    # requeue every other survivor by raising its quantity: they move to the back in that order
    moved = left[::2]
    for oid in moved:
        book.amend_raw(oid, quantity=10)
    stay = [i for i in left if i not in set(moved)]
    assert [o.id for o in book.orders_at("BUY", "1")] == stay + moved
    seqs = [o.sequence for o in book.orders_at("BUY", "1")]
    assert seqs == sorted(seqs)
    book._check()


def test_ten_thousand_orders_per_side(backend, btc):
    book = backend.OrderBook(btc)
    rng = random.Random(10_000)
    n = 10_000
    bids: dict[int, list[int]] = {}
    asks: dict[int, list[int]] = {}
    for i in range(n):
        ticks = rng.randrange(9_000, 10_000)
        book.add_raw(i, "BUY", ticks, 1 + i % 13)
        bids.setdefault(ticks, []).append(1 + i % 13)
        ticks = rng.randrange(10_001, 11_000)
        book.add_raw(n + i, "SELL", ticks, 1 + i % 11)
        asks.setdefault(ticks, []).append(1 + i % 11)
    assert len(book) == 2 * n
    assert len(book.bids) == len(bids) and len(book.asks) == len(asks)
    exp_bids = [(t, sum(q), len(q)) for t, q in sorted(bids.items(), reverse=True)]
    exp_asks = [(t, sum(q), len(q)) for t, q in sorted(asks.items())]
    assert book.depth_raw(ALL) == (exp_bids, exp_asks)
    assert book.depth_raw(10) == (exp_bids[:10], exp_asks[:10])
    assert book.best_bid_raw == exp_bids[0][0] and book.best_ask_raw == exp_asks[0][0]
    assert [lv.price_ticks for lv in book.bids] == [t for t, _, _ in exp_bids]
    book._check()
    # drain the best levels one order at a time
    for _ in range(500):
        top = book.best_bid
        first = next(iter(top))
        book.remove_order(first.id)
    book._check()
    for i in range(2 * n):
        if i in book:
            book.remove_raw(i)
    assert len(book) == 0 and book.best_bid is None and book.best_ask is None
    book._check()


def test_extreme_prices(backend, btc):
    book = backend.OrderBook(btc)
    book.add_raw("low", "BUY", 1, 1)
    book.add_raw("high", "SELL", INT64_MAX, 1)
    assert book.best_bid_raw == 1 and book.best_ask_raw == INT64_MAX
    assert book.best_bid.price == D("0.01")
    top = D(INT64_MAX) * D("0.01")
    assert book.best_ask.price == top
    assert book.spread == top - D("0.01")
    assert book.mid_price == (top + D("0.01")) / 2
    assert book.level("SELL", top).order_count == 1
    assert book.level_raw("SELL", INT64_MAX) == (1, 1)
    # the highest bid and ask: their sum does not fit in 64 bits, the mid price is still exact
    book.add_raw("hb", "BUY", INT64_MAX - 1, 1)
    assert book.mid_price == (top + top - D("0.01")) / 2
    assert book.spread == D("0.01")
    # crossed at the extremes: the spread is exact and negative
    book.remove_raw("hb")
    book.remove_raw("high")
    book.add_raw("cross", "BUY", INT64_MAX, 1)
    book.add_raw("ask", "SELL", 1, 1)
    assert book.spread == D("0.01") - top
    book.amend_raw("ask", price=INT64_MAX)
    book.amend_raw("low", price=INT64_MAX)
    assert book.level_raw("BUY", INT64_MAX) == (2, 2)
    book._check()


def test_extreme_prices_via_decimal(backend, btc):
    book = backend.OrderBook(btc)
    top = D(INT64_MAX) * D("0.01")
    order = backend.Order(1, "SELL", top, D(INT64_MAX) * D("0.001"))
    book.add_order(order)
    assert order.price_ticks == INT64_MAX and order.quantity_lots == INT64_MAX
    assert book.depth() == ([], [LevelSnapshot(top, D(INT64_MAX) * D("0.001"), 1)])
    book.amend_order(1, price="0.01")
    assert book.best_ask_raw == 1
    book.fill_order(1, D(INT64_MAX - 1) * D("0.001"))
    assert book.get_order(1).remaining_quantity == D("0.001")
    assert book.get_order(1).status is OrderStatus.PARTIALLY_FILLED


def test_level_total_overflow_rejected(backend, book):
    book.add_raw(1, "BUY", 100, INT64_MAX)  # exactly at the limit: fine
    assert book.level_raw("BUY", 100) == (INT64_MAX, 1)
    raises_unchanged(book, InvalidQuantityError, "invalid_quantity", book.add_raw, 2, "BUY", 100, 1)
    raises_unchanged(book, InvalidQuantityError, None, book.add_order, backend.Order(2, "BUY", "1.00", "0.001"))
    book.add_raw(2, "SELL", 100, INT64_MAX)  # the other side is another level
    book.add_raw(3, "BUY", 101, 5)
    # moving into the full level, or growing in it, would overflow it
    raises_unchanged(book, InvalidQuantityError, None, book.amend_raw, 3, price=100)
    raises_unchanged(book, InvalidQuantityError, None, book.amend_order, 3, price="1.00")
    book.amend_raw(1, quantity=INT64_MAX)  # the same quantity: no change, no overflow
    raises_unchanged(book, InvalidQuantityError, None, book.amend_raw, 1, quantity=INT64_MAX + 1)
    book._check()


def test_level_total_overflow_by_amend_raise(backend, book):
    half = 1 << 62
    book.add_raw(1, "BUY", 100, half)
    book.add_raw(2, "BUY", 100, half - 1)
    assert book.level_raw("BUY", 100) == (INT64_MAX, 2)
    raises_unchanged(book, InvalidQuantityError, None, book.amend_raw, 2, quantity=half)
    book.fill_raw(1, 10)
    book.amend_raw(2, quantity=half + 9)  # room freed by the fill
    assert book.level_raw("BUY", 100) == (INT64_MAX, 2)
    book.amend_raw(1, quantity=half - 5)  # lowering is always fine
    book._check()


def test_level_totals_near_the_limit_across_fills(backend, book):
    book.add_raw(1, "SELL", 7, INT64_MAX - 1)
    book.add_raw(2, "SELL", 7, 1)
    assert book.level("SELL", "0.07").quantity == D(INT64_MAX) * D("0.001")
    book.fill_raw(1, INT64_MAX - 2)
    book.add_raw(3, "SELL", 7, INT64_MAX - 2)
    assert book.level_raw("SELL", 7) == (INT64_MAX, 3)
    book._check()


@pytest.mark.parametrize(("tick", "lot"), [("1", "1"), ("0.00000001", "0.00000001"), ("25", "100"), ("0.5", "0.25")])
def test_other_grids(backend, tick, lot):
    inst = Instrument("X/Y", tick, lot)
    book = backend.OrderBook(inst)
    price = D(tick) * 7
    qty = D(lot) * 3
    book.add_order(backend.Order(1, "BUY", price, qty))
    assert book.level_raw("BUY", 7) == (3, 1)
    assert book.best_bid.price == price and book.best_bid.quantity == qty
    assert book.get_order(1).price == price
    book.add_order(backend.Order(2, "SELL", D(tick) * 9, qty))
    assert book.spread == D(tick) * 2
    assert book.mid_price == D(tick) * 8


def test_orders_alternate_between_books(backend, btc):
    # two books never share state
    a, b = backend.OrderBook(btc), backend.OrderBook(btc)
    a.add_raw(1, "BUY", 1, 1)
    b.add_raw(1, "SELL", 2, 2)
    assert a.get_order(1).side == "BUY" and b.get_order(1).side == "SELL"
    a.remove_raw(1)
    assert 1 in b and len(a) == 0


def test_reuse_id_after_removal(backend, book):
    book.add_raw(1, "BUY", 10, 1)
    book.remove_raw(1)
    book.add_raw(1, "SELL", 20, 2)
    assert book.get_order(1).side == "SELL" and book.get_order(1).sequence == 2
    book.fill_raw(1, 2)
    book.add_order(backend.Order(1, "BUY", "0.3", "0.003"))
    assert book.get_order(1).sequence == 3
    book._check()
