"""``OrderBook`` through its Decimal API, and ``PriceLevel`` / ``BookSide`` views, on both backends."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from _helpers import ALL, book_state, order_fields, raises_unchanged
from tradebook import (
    Depth,
    DuplicateOrderError,
    Instrument,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    LevelSnapshot,
    OrderNotFoundError,
    OrderStatus,
    Side,
    SymbolMismatchError,
    TradebookError,
)

D = Decimal


def _add(backend, book, oid, side, price, qty, **kw):
    order = backend.Order(oid, side, price, qty, **kw)
    assert book.add_order(order) is None
    return order


# -- construction and basic facts ------------------------------------------------


def test_empty_book(backend, btc):
    book = backend.OrderBook(btc)
    assert len(book) == 0
    assert book.instrument == btc
    assert book.symbol == "BTC/USDT"
    assert book.best_bid is None and book.best_ask is None
    assert book.best_bid_raw is None and book.best_ask_raw is None
    assert book.spread is None and book.mid_price is None
    assert book.depth() == Depth([], [])
    assert book.depth() == ([], [])
    assert list(book.bids) == [] and list(book.asks) == []
    assert len(book.bids) == 0 and len(book.asks) == 0
    assert book.level("BUY", "100") is None
    assert book.orders_at("SELL", "100") == []
    assert 1 not in book
    book._check()
    for call in (book.remove_order, book.get_order):
        raises_unchanged(book, OrderNotFoundError, "order_not_found", call, 1)
    raises_unchanged(book, OrderNotFoundError, "order_not_found", book.fill_order, 1, "1")
    raises_unchanged(book, OrderNotFoundError, "order_not_found", book.amend_order, 1, quantity="1")


@pytest.mark.parametrize("bad", [None, "BTC/USDT", {"symbol": "BTC/USDT"}, 42])
def test_book_needs_an_instrument(backend, bad):
    with pytest.raises(TypeError):
        backend.OrderBook(bad)


def test_views_are_the_backend_classes(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    assert isinstance(book.bids, backend.BookSide)
    assert isinstance(book.asks, backend.BookSide)
    assert isinstance(book.best_bid, backend.PriceLevel)
    assert isinstance(book.level("BUY", "100"), backend.PriceLevel)
    assert isinstance(book.get_order(1), backend.Order)


# -- add_order ---------------------------------------------------------------------


def test_add_order_rests_and_updates_order(backend, book):
    order = _add(backend, book, 1, Side.BUY, "100.00", "1.5", owner="alice", client_order_id="c1")
    assert len(book) == 1
    assert 1 in book
    assert order.status is OrderStatus.OPEN
    assert order.symbol == "BTC/USDT"
    assert order.sequence == 1
    assert order.price == D("100.00") and order.quantity == D("1.5")
    assert order.price_ticks == 10000 and order.quantity_lots == 1500 and order.filled_lots == 0
    got = book.get_order(1)
    assert order_fields(got) == order_fields(order)
    assert got.owner == "alice" and got.client_order_id == "c1"
    book._check()


def test_add_order_with_matching_symbol(backend, book):
    order = _add(backend, book, 1, "SELL", "1", "1", symbol="BTC/USDT")
    assert order.symbol == "BTC/USDT"


def test_sequences_increase_across_sides(backend, book):
    orders = [_add(backend, book, i, "BUY" if i % 2 else "SELL", str(100 + (i % 2) * -10 + i), "1") for i in range(6)]
    assert [o.sequence for o in orders] == [1, 2, 3, 4, 5, 6]


def test_add_duplicate_id(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    raises_unchanged(book, DuplicateOrderError, "duplicate_order", book.add_order, backend.Order(1, "SELL", "200", "1"))
    err = raises_unchanged(book, DuplicateOrderError, None, book.add_order, backend.Order(1, "BUY", "100", "1"))
    assert isinstance(err, TradebookError)
    assert not isinstance(err, (ValueError, KeyError))


def test_add_rejects_equal_ids_of_other_types(backend, book):
    # 1 and 1.0 (and True) are the same dict key; the book is a mapping by id
    _add(backend, book, 1, "BUY", "100", "1")
    raises_unchanged(book, DuplicateOrderError, None, book.add_order, backend.Order(1.0, "BUY", "100", "1"))


def test_add_wrong_symbol(backend, book):
    order = backend.Order(1, "BUY", "100", "1", symbol="ETH/USDT")
    err = raises_unchanged(book, SymbolMismatchError, "symbol_mismatch", book.add_order, order)
    assert isinstance(err, InvalidOrderError) and isinstance(err, ValueError)
    assert order.status is OrderStatus.PENDING and order.sequence is None


def test_add_market_order(backend, book):
    order = backend.Order(1, "BUY", None, "1", type="MARKET")
    raises_unchanged(book, InvalidOrderError, "invalid_order", book.add_order, order)
    assert order.status is OrderStatus.PENDING


@pytest.mark.parametrize(
    ("price", "qty", "error"),
    [
        ("100.001", "1", InvalidPriceError),  # off the 0.01 grid
        ("1", "0.0001", InvalidQuantityError),  # off the 0.001 grid
        (0.1, "1", InvalidPriceError),  # float 0.1 is not on the grid
        ("1", 0.1, InvalidQuantityError),
        (D(2**63) * D("0.01"), "1", InvalidPriceError),  # beyond int64 ticks
        ("1", D(2**63) * D("0.001"), InvalidQuantityError),  # beyond int64 lots
        ("1E+30", "1", InvalidPriceError),
        ("1", "1E+30", InvalidQuantityError),
        ("1e-9", "1", InvalidPriceError),
    ],
)
def test_add_bad_price_or_quantity(backend, book, price, qty, error):
    _add(backend, book, 1, "BUY", "99", "2")
    order = backend.Order(2, "BUY", price, qty)
    raises_unchanged(book, error, error.code, book.add_order, order)
    assert order.status is OrderStatus.PENDING and order.sequence is None
    assert order.price_ticks is None


def test_add_float_on_exact_grid(backend):
    book = backend.OrderBook(Instrument("X/Y", "0.5", "0.25"))
    order = _add(backend, book, 1, "BUY", 0.5, 0.75)
    assert order.price == D("0.5") and order.quantity == D("0.75")
    assert order.price_ticks == 1 and order.quantity_lots == 3


def test_add_not_an_order(backend, book):
    for bad in (None, 1, "order", {"id": 1}):
        raises_unchanged(book, InvalidOrderError, None, book.add_order, bad)


def test_add_same_order_twice(backend, book):
    order = _add(backend, book, 1, "BUY", "100", "1")
    with pytest.raises(InvalidOrderError):  # it is no longer a new order
        book.add_order(order)
    assert len(book) == 1 and order.sequence == 1
    other = backend.OrderBook(book.instrument)
    with pytest.raises(InvalidOrderError):
        other.add_order(order)
    assert len(other) == 0 and order.status is OrderStatus.OPEN


def test_add_used_order_rejected(backend, book):
    removed = _add(backend, book, 1, "BUY", "100", "1")
    book.remove_order(1)
    raises_unchanged(book, InvalidOrderError, None, book.add_order, removed)
    filled = _add(backend, book, 2, "BUY", "100", "1")
    book.fill_order(2, "1")
    raises_unchanged(book, InvalidOrderError, None, book.add_order, filled)
    assert removed.status is OrderStatus.CANCELLED and filled.status is OrderStatus.FILLED


def test_rejected_order_can_be_added_elsewhere(backend, book):
    order = backend.Order(1, "BUY", "0.5", "1")
    coarse = backend.OrderBook(Instrument("BTC/USDT", "1", "1"))
    with pytest.raises(InvalidPriceError):
        coarse.add_order(order)
    book.add_order(order)
    assert order.status is OrderStatus.OPEN and order.price_ticks == 50


def test_post_only_and_tif_orders_rest(backend, book):
    order = _add(backend, book, 1, "BUY", "1", "1", post_only=True, self_trade_prevention="CANCEL_MAKER")
    assert order.post_only is True
    assert book.get_order(1).post_only is True


# -- remove_order ---------------------------------------------------------------------


def test_remove_order(backend, book):
    a = _add(backend, book, "a", "BUY", "100", "1")
    _add(backend, book, "b", "BUY", "100", "2")
    removed = book.remove_order("a")
    assert isinstance(removed, backend.Order)
    assert removed.id == "a" and removed.status is OrderStatus.CANCELLED
    assert removed.price == D(100) and removed.remaining_quantity == D(1)
    assert a.status is OrderStatus.CANCELLED  # the caller's order is live
    assert "a" not in book and len(book) == 1
    assert book.best_bid.quantity == D(2)
    raises_unchanged(book, OrderNotFoundError, "order_not_found", book.remove_order, "a")
    raises_unchanged(book, OrderNotFoundError, None, book.get_order, "a")
    book.remove_order("b")
    assert book.best_bid is None and len(book.bids) == 0
    book._check()


def test_order_not_found_is_a_key_error(backend, book):
    with pytest.raises(KeyError):
        book.remove_order(99)
    with pytest.raises(LookupError):
        book.get_order(99)


def test_remove_middle_of_level_keeps_fifo(backend, book):
    for i in range(5):
        _add(backend, book, i, "SELL", "10", "1")
    book.remove_order(2)
    assert [o.id for o in book.orders_at("SELL", "10")] == [0, 1, 3, 4]
    book.remove_order(0)
    book.remove_order(4)
    assert [o.id for o in book.orders_at("SELL", "10")] == [1, 3]
    book._check()


# -- fill_order -----------------------------------------------------------------------


def test_partial_and_full_fill(backend, book):
    order = _add(backend, book, 1, "SELL", "101", "5")
    _add(backend, book, 2, "SELL", "101", "1")
    got = book.fill_order(1, "2")
    assert got.id == 1
    assert got.status is OrderStatus.PARTIALLY_FILLED
    assert got.filled_quantity == D(2) and got.remaining_quantity == D(3) and got.quantity == D(5)
    assert got.filled_lots == 2000 and not got.is_filled
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_quantity == D(2)
    assert book.best_ask.quantity == D(4)
    assert [o.id for o in book.best_ask] == [1, 2]  # a fill keeps priority
    got = book.fill_order(1, D("1.5"))
    assert got.remaining_quantity == D("1.5")
    done = book.fill_order(1, "1.5")
    assert done.status is OrderStatus.FILLED and done.is_filled
    assert done.remaining_quantity == 0 and done.filled_quantity == D(5)
    assert 1 not in book and len(book) == 1
    assert book.best_ask.quantity == D(1) and book.best_ask.order_count == 1
    book._check()


def test_full_fill_of_last_order_drops_level(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    _add(backend, book, 2, "BUY", "99", "1")
    book.fill_order(1, "1")
    assert book.best_bid.price == D(99)
    assert book.level("BUY", "100") is None
    assert len(book.bids) == 1


@pytest.mark.parametrize(
    ("qty", "error"),
    [
        ("5.001", InvalidQuantityError),  # more than remains
        ("0", InvalidQuantityError),
        ("-1", InvalidQuantityError),
        ("0.0005", InvalidQuantityError),  # off grid
        (None, InvalidQuantityError),
        ("x", InvalidQuantityError),
        (D(2**64), InvalidQuantityError),
    ],
)
def test_fill_errors(backend, book, qty, error):
    _add(backend, book, 1, "SELL", "101", "5")
    book.fill_order(1, "1")
    book.fill_order(1, "1")
    raises_unchanged(book, error, error.code, book.fill_order, 1, qty)


def test_fill_more_than_remaining_after_partial(backend, book):
    _add(backend, book, 1, "SELL", "101", "5")
    book.fill_order(1, "4")
    raises_unchanged(book, InvalidQuantityError, None, book.fill_order, 1, "2")
    assert book.fill_order(1, "1").is_filled


# -- amend_order ------------------------------------------------------------------------


def _ids(book, side, price):
    return [o.id for o in book.orders_at(side, price)]


def test_amend_lower_quantity_keeps_priority(backend, book):
    for i in (1, 2, 3):
        _add(backend, book, i, "BUY", "100", "5")
    seq = book.get_order(1).sequence
    got = book.amend_order(1, quantity="2")
    assert got.id == 1 and got.quantity == D(2) and got.remaining_quantity == D(2)
    assert got.sequence == seq
    assert _ids(book, "BUY", "100") == [1, 2, 3]
    assert book.level("BUY", "100").quantity == D(12)
    book._check()


def test_amend_raise_quantity_goes_to_back(backend, book):
    for i in (1, 2, 3):
        _add(backend, book, i, "BUY", "100", "5")
    got = book.amend_order(1, quantity="6")
    assert got.quantity == D(6)
    assert got.sequence == 4
    assert _ids(book, "BUY", "100") == [2, 3, 1]
    assert book.level("BUY", "100").quantity == D(16)
    book._check()


def test_amend_new_price_goes_to_back_of_new_level(backend, book):
    for i in (1, 2, 3):
        _add(backend, book, i, "SELL", "101", "1")
    _add(backend, book, 4, "SELL", "102", "1")
    got = book.amend_order(1, price="102")
    assert got.price == D(102) and got.sequence == 5
    assert _ids(book, "SELL", "101") == [2, 3]
    assert _ids(book, "SELL", "102") == [4, 1]
    # a new price with a lower quantity still loses priority
    book.amend_order(4, price="101", quantity="0.5")
    assert _ids(book, "SELL", "101") == [2, 3, 4]
    assert book.get_order(4).quantity == D("0.5")
    book._check()


def test_amend_to_new_level_and_away(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    book.amend_order(1, price="99.5")
    assert book.level("BUY", "100") is None
    assert book.best_bid.price == D("99.5") and len(book.bids) == 1
    book._check()


def test_amend_same_price_is_no_change(backend, book):
    for i in (1, 2):
        _add(backend, book, i, "BUY", "100", "5")
    before = book_state(book)
    got = book.amend_order(1, price="100.00")
    assert got.sequence == 1
    assert book_state(book) == before
    got = book.amend_order(1, price="100", quantity="5")  # same price, same quantity
    assert book_state(book) == before
    # same price with a lower quantity keeps priority; with a higher one loses it
    book.amend_order(1, price="100", quantity="4")
    assert _ids(book, "BUY", "100") == [1, 2]
    book.amend_order(1, price="100", quantity="4.5")
    assert _ids(book, "BUY", "100") == [2, 1]


def test_amend_same_quantity_is_no_change(backend, book):
    for i in (1, 2):
        _add(backend, book, i, "BUY", "100", "5")
    before = book_state(book)
    book.amend_order(1, quantity="5.000")
    assert book_state(book) == before


def test_amend_partially_filled(backend, book):
    order = _add(backend, book, 1, "SELL", "101", "5")
    _add(backend, book, 2, "SELL", "101", "1")
    book.fill_order(1, "3")
    # the new total must exceed what is already filled
    raises_unchanged(book, InvalidQuantityError, "invalid_quantity", book.amend_order, 1, quantity="3")
    raises_unchanged(book, InvalidQuantityError, None, book.amend_order, 1, quantity="2")
    raises_unchanged(book, InvalidQuantityError, None, book.amend_order, 1, quantity="2", price="105")
    got = book.amend_order(1, quantity="3.001")
    assert got.remaining_quantity == D("0.001") and got.filled_quantity == D(3)
    assert got.status is OrderStatus.PARTIALLY_FILLED
    assert order.quantity == D("3.001")
    assert _ids(book, "SELL", "101") == [1, 2]
    assert book.level("SELL", "101").quantity == D("1.001")
    got = book.amend_order(1, price="100")
    assert got.filled_quantity == D(3) and got.remaining_quantity == D("0.001")
    assert book.best_ask.price == D(100) and book.best_ask.quantity == D("0.001")
    book._check()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, InvalidOrderError),
        ({"quantity": None, "price": None}, InvalidOrderError),
        ({"quantity": "0"}, InvalidQuantityError),
        ({"quantity": "-2"}, InvalidQuantityError),
        ({"quantity": "1.0001"}, InvalidQuantityError),
        ({"quantity": 0.1}, InvalidQuantityError),
        ({"quantity": D(2**63) * D("0.001")}, InvalidQuantityError),
        ({"price": "0"}, InvalidPriceError),
        ({"price": "100.001"}, InvalidPriceError),
        ({"price": "NaN"}, InvalidPriceError),
        ({"price": D(2**63) * D("0.01")}, InvalidPriceError),
        ({"price": "100.001", "quantity": "1"}, InvalidPriceError),
        ({"price": "100", "quantity": "x"}, InvalidQuantityError),
    ],
)
def test_amend_errors(backend, book, kwargs, error):
    _add(backend, book, 1, "BUY", "100", "2")
    _add(backend, book, 2, "BUY", "100", "2")
    raises_unchanged(book, error, error.code, book.amend_order, 1, **kwargs)


def test_amend_unknown_id(backend, book):
    _add(backend, book, 1, "BUY", "100", "2")
    raises_unchanged(book, OrderNotFoundError, "order_not_found", book.amend_order, 2, quantity="1")
    raises_unchanged(book, OrderNotFoundError, None, book.amend_order, 2, price="1")


def test_amend_can_cross_the_book(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    _add(backend, book, 2, "SELL", "101", "1")
    book.amend_order(1, price="102")
    assert book.best_bid.price == D(102) and book.best_ask.price == D(101)
    assert book.spread == D("-1.00")
    book._check()


# -- get_order, in, len -------------------------------------------------------------------


def test_get_contains_len(backend, book):
    ids = [1, "two", uuid.UUID(int=3), (4, "four")]
    for i, oid in enumerate(ids):
        _add(backend, book, oid, "BUY", str(100 + i), "1")
    assert len(book) == 4
    for oid in ids:
        assert oid in book
        assert book.get_order(oid).id == oid
    assert 5 not in book
    assert "1" not in book
    assert [] not in book  # unhashable: simply not there
    assert None not in book
    book.remove_order("two")
    assert "two" not in book and len(book) == 3


# -- best bid/ask, spread, mid ----------------------------------------------------------------


def test_best_prices_spread_mid(backend, book):
    _add(backend, book, 1, "BUY", "100.00", "1.5")
    assert book.best_bid.price == D("100.00")
    assert book.best_ask is None
    assert book.spread is None and book.mid_price is None
    _add(backend, book, 2, "SELL", "100.50", "2")
    _add(backend, book, 3, "BUY", "99.99", "1")
    _add(backend, book, 4, "SELL", "100.51", "1")
    bid, ask = book.best_bid, book.best_ask
    assert bid.side is Side.BUY and ask.side is Side.SELL
    assert bid.price == D("100.00") and bid.quantity == D("1.5") and bid.order_count == 1
    assert ask.price == D("100.50") and ask.quantity == D(2)
    assert book.spread == D("0.50") and isinstance(book.spread, Decimal)
    assert book.mid_price == D("100.25") and isinstance(book.mid_price, Decimal)
    book.remove_order(1)
    assert book.best_bid.price == D("99.99")
    assert book.spread == D("0.51")
    assert book.mid_price == D("100.245")  # exact, not rounded to the tick
    book.remove_order(2)
    assert book.best_ask.price == D("100.51")
    book.remove_order(3)
    assert book.best_bid is None and book.spread is None and book.mid_price is None


def test_spread_zero_when_locked(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    _add(backend, book, 2, "SELL", "100", "1")
    assert book.spread == 0
    assert book.mid_price == D(100)


def test_best_levels_are_live_views(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    _add(backend, book, 2, "SELL", "101", "1")
    bid, ask = book.best_bid, book.best_ask
    _add(backend, book, 3, "BUY", "100", "2")
    book.fill_order(2, "0.25")
    assert bid.quantity == D(3) and bid.order_count == 2 and len(bid) == 2
    assert [o.id for o in bid] == [1, 3]
    assert ask.quantity == D("0.75") and ask.order_count == 1
    book.remove_order(1)
    book.remove_order(3)
    # the level emptied: the view shows nothing left
    assert bid.quantity == 0 and bid.order_count == 0 and len(bid) == 0 and list(bid) == []
    assert bid.price == D(100)
    book.add_order(backend.Order(5, "BUY", "100", "4"))
    assert bid.quantity == D(4) and [o.id for o in bid] == [5]


# -- level, orders_at -------------------------------------------------------------------------


def test_level_and_orders_at(backend, book):
    for i in range(4):
        _add(backend, book, i, "BUY", "50.5", str(i + 1), owner=f"o{i}")
    _add(backend, book, 9, "SELL", "50.5", "7")  # the other side, same price
    level = book.level("BUY", "50.50")
    assert level.side is Side.BUY
    assert level.price == D("50.5") and isinstance(level.price, Decimal)
    assert level.quantity == D(10) and isinstance(level.quantity, Decimal)
    assert level.order_count == 4 and len(level) == 4
    assert level.price_ticks == 5050 and level.quantity_lots == 10000
    assert [o.id for o in level] == [0, 1, 2, 3]
    assert [o.owner for o in level] == ["o0", "o1", "o2", "o3"]
    assert all(isinstance(o, backend.Order) for o in level)
    orders = book.orders_at(Side.BUY, D("50.5"))
    assert isinstance(orders, list)
    assert [o.id for o in orders] == [0, 1, 2, 3]
    assert [o.sequence for o in orders] == [1, 2, 3, 4]
    assert book.level(Side.SELL, 50.5).quantity == D(7)
    assert [o.id for o in book.orders_at("SELL", "50.5")] == [9]
    assert book.level("BUY", "50.49") is None
    assert book.orders_at("BUY", "50.49") == []
    book.fill_order(1, "2")
    assert level.quantity == D(8) and [o.id for o in level] == [0, 2, 3]


def test_iterating_a_level_is_a_snapshot_of_its_orders(backend, book):
    for i in range(3):
        _add(backend, book, i, "BUY", "10", "1")
    seen = []
    for order in book.level("BUY", "10"):
        seen.append(order.id)
        if order.id in book:
            book.remove_order(order.id)
    assert seen == [0, 1, 2]
    assert len(book) == 0


@pytest.mark.parametrize(
    ("side", "price", "error"),
    [
        ("BUY", "100.001", InvalidPriceError),
        ("BUY", 0.1, InvalidPriceError),
        ("BUY", "0", InvalidPriceError),
        ("BUY", "-1", InvalidPriceError),
        ("BUY", None, InvalidPriceError),
        ("BUY", "abc", InvalidPriceError),
        ("BUY", D(2**63) * D("0.01"), InvalidPriceError),
        ("buy", "100", InvalidOrderError),
        ("HOLD", "100", InvalidOrderError),
        (None, "100", InvalidOrderError),
    ],
)
def test_level_bad_input(backend, book, side, price, error):
    _add(backend, book, 1, "BUY", "100", "1")
    raises_unchanged(book, error, error.code, book.level, side, price)
    raises_unchanged(book, error, error.code, book.orders_at, side, price)


# -- depth --------------------------------------------------------------------------------------


def test_depth(backend, book):
    for i, (price, qty) in enumerate([("99", "1"), ("100", "2"), ("98", "3"), ("100", "0.5")]):
        _add(backend, book, i, "BUY", price, qty)
    for i, (price, qty) in enumerate([("102", "1"), ("101", "2"), ("101", "3")], start=10):
        _add(backend, book, i, "SELL", price, qty)
    depth = book.depth()
    assert isinstance(depth, Depth)
    assert depth.bids == [
        LevelSnapshot(D(100), D("2.5"), 2),
        LevelSnapshot(D(99), D(1), 1),
        LevelSnapshot(D(98), D(3), 1),
    ]
    assert depth.asks == [LevelSnapshot(D(101), D(5), 2), LevelSnapshot(D(102), D(1), 1)]
    top = depth.bids[0]
    assert isinstance(top, LevelSnapshot)
    assert top.price == D(100) and top.quantity == D("2.5") and top.order_count == 2
    assert top == (D("100.00"), D("2.500"), 2)  # a named tuple compares by value
    assert isinstance(top.price, Decimal) and isinstance(top.quantity, Decimal)
    assert book.depth(1) == Depth([LevelSnapshot(D(100), D("2.5"), 2)], [LevelSnapshot(D(101), D(5), 2)])
    assert book.depth(levels=2).bids == depth.bids[:2]
    assert book.depth(0) == Depth([], [])
    assert book.depth(10**30) == depth  # more levels than exist: all of them
    # a depth is a value: later changes do not touch it
    book.remove_order(0)
    assert depth.bids[1] == LevelSnapshot(D(99), D(1), 1)
    assert book.depth().bids[1] == LevelSnapshot(D(98), D(3), 1)


def test_depth_default_is_ten_levels(backend, book):
    for i in range(15):
        _add(backend, book, i, "BUY", str(100 - i), "1")
        _add(backend, book, 100 + i, "SELL", str(200 + i), "1")
    depth = book.depth()
    assert len(depth.bids) == 10 and len(depth.asks) == 10
    assert [lv.price for lv in depth.bids] == [D(100 - i) for i in range(10)]
    assert [lv.price for lv in depth.asks] == [D(200 + i) for i in range(10)]
    assert len(book.depth(15).bids) == 15 and len(book.depth(16).asks) == 15


@pytest.mark.parametrize("levels", [-1, 1.5, "3", None, True, D(2)], ids=repr)
def test_depth_bad_levels(backend, book, levels):
    _add(backend, book, 1, "BUY", "100", "1")
    with pytest.raises((ValueError, TypeError)):
        book.depth(levels)
    with pytest.raises((ValueError, TypeError)):
        book.depth_raw(levels)


# -- bids / asks views --------------------------------------------------------------------------


def test_sides_iterate_best_first(backend, book):
    for i, price in enumerate(["99", "101", "100", "98", "101"]):
        _add(backend, book, i, "BUY", price, "1")
    for i, price in enumerate(["105", "103", "104", "103"], start=10):
        _add(backend, book, i, "SELL", price, "1")
    bids, asks = book.bids, book.asks
    assert len(bids) == 4 and len(asks) == 3
    assert [lv.price for lv in bids] == [D(101), D(100), D(99), D(98)]
    assert [lv.price for lv in asks] == [D(103), D(104), D(105)]
    assert [lv.order_count for lv in bids] == [2, 1, 1, 1]
    assert all(lv.side is Side.BUY for lv in bids)
    assert all(lv.side is Side.SELL for lv in asks)
    assert [[o.id for o in lv] for lv in asks] == [[11, 13], [12], [10]]
    assert bids.side is Side.BUY and asks.side is Side.SELL
    assert bids.best.price == D(101) and asks.best.price == D(103)
    assert bool(bids) and bool(asks)
    book.remove_order(4)
    book.remove_order(1)
    assert len(bids) == 3  # the side view is live
    assert [lv.price for lv in book.bids] == [D(100), D(99), D(98)]


def test_empty_sides(backend, book):
    assert not book.bids and not book.asks
    assert book.bids.best is None and book.asks.best is None
    assert "BUY" in repr(book.bids) or "bid" in repr(book.bids).lower()


def test_repr(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    assert "BTC/USDT" in repr(book)
    assert "100" in repr(book.best_bid)


# -- both APIs give the same book ----------------------------------------------------------------


def test_decimal_and_raw_apis_agree(backend, btc):
    a, b = backend.OrderBook(btc), backend.OrderBook(btc)
    a.add_order(backend.Order(1, "BUY", "100.25", "1.5"))
    b.add_raw(1, "BUY", 10025, 1500)
    a.add_order(backend.Order(2, "SELL", "101", "0.002"))
    b.add_raw(2, Side.SELL, 10100, 2)
    a.add_order(backend.Order(3, "BUY", "100.25", "3"))
    b.add_raw(3, "BUY", 10025, 3000)
    assert a.snapshot() == b.snapshot()
    a.fill_order(1, "0.5")
    assert b.fill_raw(1, 500) == 1000
    a.amend_order(3, quantity="2", price="100.30")
    b.amend_raw(3, quantity=2000, price=10030)
    a.remove_order(2)
    assert b.remove_raw(2) == 2
    assert a.snapshot() == b.snapshot()
    assert book_state(a) == book_state(b)
    assert a.depth_raw(ALL) == b.depth_raw(ALL) == ([(10030, 2000, 1), (10025, 1000, 1)], [])
    assert order_fields(a.get_order(1)) == order_fields(b.get_order(1))
    a._check()
    b._check()


def test_next_sequence(backend, book):
    assert book.next_sequence == 1
    book.add_raw(1, "BUY", 1, 1)
    book.add_order(backend.Order(2, "BUY", "0.01", "0.005"))
    assert book.next_sequence == 3
    book.amend_raw(1, quantity=5)  # requeued: takes a number
    assert book.next_sequence == 4
    book.amend_raw(1, quantity=2)  # keeps its place: takes none
    book.fill_raw(2, 1)
    book.remove_raw(1)
    assert book.next_sequence == 4
    with pytest.raises(DuplicateOrderError):
        book.add_raw(2, "BUY", 1, 1)
    assert book.next_sequence == 4  # a failed add uses no number
    assert backend.OrderBook.from_snapshot(book.snapshot()).next_sequence == 4


def test_level_views_compare_by_book_side_and_price(backend, book):
    _add(backend, book, 1, "BUY", "100", "1")
    _add(backend, book, 2, "SELL", "100", "1")
    bid = book.best_bid
    assert bid == book.level("BUY", "100.00")
    assert hash(bid) == hash(book.level("BUY", "100"))
    assert bid == next(iter(book.bids))
    assert bid != book.best_ask  # the other side
    other = backend.OrderBook(book.instrument)
    _add(backend, other, 1, "BUY", "100", "1")
    assert bid != other.best_bid  # another book
    assert bid != "BUY 100"
    assert len({bid, book.level("BUY", "100"), book.best_ask}) == 2


def test_the_book_does_not_enforce_instrument_limits(backend):
    """api.md lists limits among the engine's checks; the book is a plain container on the grid.

    (Interpretation: ``add_order``'s "bad price or quantity" means off the grid,
    non-positive or out of 64-bit range; minimum/maximum and notional limits are
    enforced where orders are accepted, by the engine.)
    """
    inst = Instrument("ETH/EUR", "0.01", "0.1", min_quantity="1", max_quantity="10", min_price="5", max_price="50")
    book = backend.OrderBook(inst)
    book.add_order(backend.Order(1, "BUY", "1.00", "0.1"))  # below min price and min quantity
    book.add_raw(2, "SELL", 10_000, 1_000)  # above max price and max quantity
    assert len(book) == 2
    book._check()
