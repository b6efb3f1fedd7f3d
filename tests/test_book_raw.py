"""The raw integer API of ``OrderBook`` (ticks and lots), on both backends."""

from __future__ import annotations

from decimal import Decimal

import pytest

from _helpers import ALL, INT64_MAX, book_state, raises_unchanged
from tradebook import (
    DuplicateOrderError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

D = Decimal


class Ticks(int):
    """An int subclass: accepted like the int it is."""


BAD_UNITS = [
    (True, "bool"),
    (False, "bool false"),
    (1.0, "float"),
    (1.5, "float frac"),
    (float("nan"), "nan"),
    (-1, "negative"),
    (0, "zero"),
    (INT64_MAX + 1, "2**63"),
    (2**100, "2**100"),
    (-(2**100), "-2**100"),
    (None, "None"),
    ("1", "str"),
    (D(1), "Decimal"),
    (b"1", "bytes"),
    ([1], "list"),
]
BAD_IDS = [v for v, _ in BAD_UNITS]
BAD_NAMES = [n for _, n in BAD_UNITS]


def _seed(book):
    book.add_raw(1, "BUY", 100, 5)
    book.add_raw(2, "BUY", 100, 7)
    book.add_raw(3, "SELL", 105, 2)


def test_add_raw(backend, book):
    assert book.add_raw(1, "BUY", 10025, 1500) is None
    book.add_raw("s", Side.SELL, 10100, 2)
    assert len(book) == 2
    order = book.get_order(1)
    assert isinstance(order, backend.Order)
    assert order.id == 1 and order.side is Side.BUY
    assert order.price == D("100.25") and order.quantity == D("1.500")
    assert order.price_ticks == 10025 and order.quantity_lots == 1500 and order.filled_lots == 0
    assert order.filled_quantity == 0 and order.remaining_quantity == D("1.5")
    assert order.type is OrderType.LIMIT and order.time_in_force is TimeInForce.GTC
    assert order.post_only is False and order.owner is None and order.client_order_id is None
    assert order.symbol == "BTC/USDT"
    assert order.status is OrderStatus.OPEN and order.sequence == 1
    assert book.get_order("s").sequence == 2
    assert book.best_bid_raw == 10025 and book.best_ask_raw == 10100
    assert book.best_bid.price == D("100.25")
    book._check()


def test_add_raw_int_subclass(backend, book):
    book.add_raw(1, "BUY", Ticks(100), Ticks(3))
    assert book.level_raw("BUY", 100) == (3, 1)
    assert type(book.get_order(1).price_ticks) is int
    assert type(book.depth_raw()[0][0][0]) is int


@pytest.mark.parametrize("bad", [v for v, _ in BAD_UNITS], ids=BAD_NAMES)
def test_add_raw_bad_price(backend, book, bad):
    _seed(book)
    raises_unchanged(book, InvalidPriceError, "invalid_price", book.add_raw, 9, "BUY", bad, 1)


@pytest.mark.parametrize("bad", [v for v, _ in BAD_UNITS], ids=BAD_NAMES)
def test_add_raw_bad_quantity(backend, book, bad):
    _seed(book)
    raises_unchanged(book, InvalidQuantityError, "invalid_quantity", book.add_raw, 9, "BUY", 100, bad)


@pytest.mark.parametrize("side", ["buy", "sell", "B", None, 0, 1, True, "", b"BUY", OrderType.LIMIT])
def test_add_raw_bad_side(backend, book, side):
    _seed(book)
    raises_unchanged(book, InvalidOrderError, "invalid_order", book.add_raw, 9, side, 100, 1)


@pytest.mark.parametrize("oid", [None, [], {}, {1}, bytearray(b"x")], ids=repr)
def test_add_raw_bad_id(backend, book, oid):
    _seed(book)
    raises_unchanged(book, InvalidOrderError, "invalid_order", book.add_raw, oid, "BUY", 100, 1)


def test_add_raw_duplicate(backend, book):
    _seed(book)
    raises_unchanged(book, DuplicateOrderError, "duplicate_order", book.add_raw, 1, "SELL", 200, 1)
    raises_unchanged(book, DuplicateOrderError, None, book.add_raw, 3, "SELL", 105, 2)


def test_remove_raw(backend, book):
    _seed(book)
    book.fill_raw(2, 3)
    assert book.remove_raw(2) == 4  # the remaining lots
    assert 2 not in book
    assert book.level_raw("BUY", 100) == (5, 1)
    assert book.remove_raw(1) == 5
    assert book.level_raw("BUY", 100) is None
    assert book.best_bid_raw is None
    for oid in (1, 2, 99, "1", None, [], 1.5):
        raises_unchanged(book, OrderNotFoundError, "order_not_found", book.remove_raw, oid)
    book._check()


def test_fill_raw(backend, book):
    _seed(book)
    assert book.fill_raw(1, 2) == 3
    order = book.get_order(1)
    assert order.filled_lots == 2 and order.status is OrderStatus.PARTIALLY_FILLED
    assert order.filled_quantity == D("0.002")
    assert book.level_raw("BUY", 100) == (10, 2)
    assert book.fill_raw(1, 3) == 0
    assert 1 not in book
    assert book.level_raw("BUY", 100) == (7, 1)
    raises_unchanged(book, InvalidQuantityError, "invalid_quantity", book.fill_raw, 2, 8)
    raises_unchanged(book, OrderNotFoundError, "order_not_found", book.fill_raw, 1, 1)
    book._check()


@pytest.mark.parametrize("bad", [v for v, _ in BAD_UNITS], ids=BAD_NAMES)
def test_fill_raw_bad_quantity(backend, book, bad):
    _seed(book)
    raises_unchanged(book, InvalidQuantityError, "invalid_quantity", book.fill_raw, 1, bad)


def test_amend_raw(backend, book):
    _seed(book)
    assert book.amend_raw(2, quantity=3) is None  # lower: keeps priority
    assert [o.id for o in book.level("BUY", "1.00")] == [1, 2]
    assert book.level_raw("BUY", 100) == (8, 2)
    book.amend_raw(1, quantity=6)  # raise: to the back
    assert [o.id for o in book.level("BUY", "1.00")] == [2, 1]
    assert book.get_order(1).sequence == 4
    book.amend_raw(2, price=100)  # same price: nothing happens
    assert book.get_order(2).sequence == 2
    book.amend_raw(2, price=101, quantity=1)  # new price: to the back of the new level
    assert book.best_bid_raw == 101 and book.level_raw("BUY", 101) == (1, 1)
    assert book.get_order(2).sequence == 5
    book.fill_raw(1, 4)
    raises_unchanged(book, InvalidQuantityError, "invalid_quantity", book.amend_raw, 1, quantity=4)
    raises_unchanged(book, InvalidQuantityError, None, book.amend_raw, 1, quantity=4, price=50)
    book.amend_raw(1, quantity=5)
    assert book.get_order(1).remaining_quantity == D("0.001")
    raises_unchanged(book, InvalidOrderError, "invalid_order", book.amend_raw, 1)
    raises_unchanged(book, InvalidOrderError, None, book.amend_raw, 1, quantity=None, price=None)
    raises_unchanged(book, OrderNotFoundError, "order_not_found", book.amend_raw, 77, quantity=1)
    book._check()


@pytest.mark.parametrize("bad", [v for v, _ in BAD_UNITS if v is not None], ids=[n for n in BAD_NAMES if n != "None"])
def test_amend_raw_bad_values(backend, book, bad):
    _seed(book)
    raises_unchanged(book, InvalidQuantityError, "invalid_quantity", book.amend_raw, 1, quantity=bad)
    raises_unchanged(book, InvalidPriceError, "invalid_price", book.amend_raw, 1, price=bad)
    raises_unchanged(book, InvalidPriceError, None, book.amend_raw, 1, price=bad, quantity=2)
    raises_unchanged(book, InvalidQuantityError, None, book.amend_raw, 1, price=101, quantity=bad)


def test_best_raw(backend, book):
    assert book.best_bid_raw is None and book.best_ask_raw is None
    book.add_raw(1, "BUY", 10, 1)
    book.add_raw(2, "BUY", 12, 1)
    book.add_raw(3, "SELL", 20, 1)
    book.add_raw(4, "SELL", 15, 1)
    assert book.best_bid_raw == 12 and book.best_ask_raw == 15
    assert type(book.best_bid_raw) is int
    book.remove_raw(2)
    book.remove_raw(4)
    assert book.best_bid_raw == 10 and book.best_ask_raw == 20


def test_level_raw(backend, book):
    _seed(book)
    assert book.level_raw("BUY", 100) == (12, 2)
    assert book.level_raw(Side.SELL, 105) == (2, 1)
    assert book.level_raw("SELL", 100) is None
    assert book.level_raw("BUY", 101) is None
    assert isinstance(book.level_raw("BUY", 100), tuple)


@pytest.mark.parametrize("bad", [v for v, _ in BAD_UNITS], ids=BAD_NAMES)
def test_level_raw_bad_price(backend, book, bad):
    # the raw twin of level(): a price that cannot be a tick count is an InvalidPriceError
    _seed(book)
    raises_unchanged(book, InvalidPriceError, "invalid_price", book.level_raw, "BUY", bad)


def test_level_raw_bad_side(backend, book):
    _seed(book)
    raises_unchanged(book, InvalidOrderError, "invalid_order", book.level_raw, "buy", 100)
    raises_unchanged(book, InvalidOrderError, None, book.level_raw, None, 100)


def test_depth_raw(backend, book):
    _seed(book)
    book.add_raw(4, "BUY", 90, 1)
    book.add_raw(5, "SELL", 110, 4)
    book.add_raw(6, "SELL", 104, 1)
    bids, asks = book.depth_raw()
    assert bids == [(100, 12, 2), (90, 1, 1)]
    assert asks == [(104, 1, 1), (105, 2, 1), (110, 4, 1)]
    assert book.depth_raw(1) == ([(100, 12, 2)], [(104, 1, 1)])
    assert book.depth_raw(levels=2) == ([(100, 12, 2), (90, 1, 1)], [(104, 1, 1), (105, 2, 1)])
    assert book.depth_raw(0) == ([], [])
    assert book.depth_raw(2**80) == (bids, asks)
    assert all(type(x) is int for row in bids + asks for x in row)


def test_raw_order_views_track_changes(backend, book):
    book.add_raw(1, "SELL", 7, 10)
    order = book.get_order(1)
    book.fill_raw(1, 4)
    assert book.get_order(1).filled_lots == 4
    assert book.get_order(1).remaining_quantity == D("0.006")
    book.amend_raw(1, quantity=8, price=9)
    got = book.get_order(1)
    assert (got.price_ticks, got.quantity_lots, got.filled_lots) == (9, 8, 4)
    assert got.price == D("0.09") and got.quantity == D("0.008")
    assert order.id == 1


def test_raw_and_decimal_calls_mix(backend, book):
    book.add_order(backend.Order("d", "BUY", "1.00", "0.005"))
    book.add_raw("r", "BUY", 100, 5)
    assert book.level_raw("BUY", 100) == (10, 2)
    assert book.fill_raw("d", 1) == 4
    book.fill_order("r", "0.001")
    assert book.level("BUY", "1").quantity == D("0.008")
    book.amend_raw("d", quantity=3)
    book.amend_order("r", quantity="0.002")
    assert book.depth_raw() == ([(100, 3, 2)], [])
    assert book.remove_raw("r") == 1
    assert book.remove_order("d").remaining_quantity == D("0.002")
    assert len(book) == 0
    book._check()


def test_same_commands_same_state_via_either_api(backend, btc):
    raw, dec = backend.OrderBook(btc), backend.OrderBook(btc)
    import random

    rng = random.Random(7)
    live: list[int] = []
    for oid in range(300):
        choice = rng.random()
        if choice < 0.5 or not live:
            side = rng.choice(["BUY", "SELL"])
            ticks = rng.randrange(9990, 10010)
            lots = rng.randrange(1, 50)
            raw.add_raw(oid, side, ticks, lots)
            dec.add_order(backend.Order(oid, side, btc.ticks_to_price(ticks), btc.lots_to_quantity(lots)))
            live.append(oid)
        elif choice < 0.65:
            victim = live.pop(rng.randrange(len(live)))
            assert raw.remove_raw(victim) == btc.quantity_to_lots(dec.remove_order(victim).remaining_quantity)
        elif choice < 0.8:
            target = rng.choice(live)
            left = raw.get_order(target).quantity_lots - raw.get_order(target).filled_lots
            lots = rng.randrange(1, left + 1)
            remaining = raw.fill_raw(target, lots)
            assert dec.fill_order(target, btc.lots_to_quantity(lots)).remaining_quantity == btc.lots_to_quantity(
                remaining
            )
            if remaining == 0:
                live.remove(target)
        else:
            target = rng.choice(live)
            filled = raw.get_order(target).filled_lots
            lots = rng.randrange(filled + 1, filled + 40)
            ticks = rng.choice([None, rng.randrange(9990, 10010)])
            raw.amend_raw(target, quantity=lots, price=ticks)
            dec.amend_order(
                target, quantity=btc.lots_to_quantity(lots), price=None if ticks is None else btc.ticks_to_price(ticks)
            )
    raw._check()
    dec._check()
    assert book_state(raw) == book_state(dec)
    assert raw.depth_raw(ALL) == dec.depth_raw(ALL)
