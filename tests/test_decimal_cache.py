"""The Decimal top of book is cached (one view per best level, its Decimal price made
once, its quantity re-made only when the total changes): the values must still
follow every change of the book."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradebook import InvalidOrderError


def test_best_views_follow_the_book(backend, book):
    book.add_raw(1, "BUY", 10_000, 1_500)
    book.add_raw(2, "SELL", 10_050, 2_000)
    bid, ask = book.best_bid, book.best_ask
    assert (bid.price, bid.quantity, bid.order_count) == (Decimal("100.00"), Decimal("1.500"), 1)
    assert (ask.price, ask.quantity) == (Decimal("100.50"), Decimal("2.000"))
    assert book.best_bid == bid and book.best_ask == ask

    book.add_raw(3, "BUY", 10_000, 500)  # same level: the total changes, the price does not
    assert book.best_bid.quantity == Decimal("2.000") == bid.quantity
    book.fill_raw(1, 1_000)
    assert bid.quantity == Decimal("1.000") and book.best_bid.quantity_lots == 1_000
    book.amend_raw(3, quantity=200)
    assert bid.quantity == Decimal("0.700")

    book.add_raw(4, "BUY", 10_010, 100)  # the best moves up: a view of the new level
    top = book.best_bid
    assert (top.price, top.quantity) == (Decimal("100.10"), Decimal("0.100"))
    assert bid.price == Decimal("100.00") and bid.quantity == Decimal("0.700")

    book.remove_raw(4)  # back to the old level
    assert book.best_bid.price == Decimal("100.00") and book.best_bid.quantity == Decimal("0.700")
    assert top.quantity == 0 and top.order_count == 0 and list(top) == []

    book.remove_raw(1)
    book.remove_raw(3)  # the level goes: the view reads it as empty, then as re-created
    assert book.best_bid is None
    assert bid.quantity == 0 and bid.price == Decimal("100.00")
    book.add_raw(5, "BUY", 10_000, 3_000)
    assert bid.quantity == Decimal("3.000") and book.best_bid.quantity == Decimal("3.000")
    assert [o.id for o in book.best_bid] == [5]

    book.remove_raw(2)
    assert book.best_ask is None
    assert ask.quantity == 0
    book._check()


def test_best_views_through_the_decimal_api_and_snapshot(backend, btc):
    book = backend.OrderBook(btc)
    book.add_order(backend.Order(1, "BUY", "100.00", "1.5"))
    book.add_order(backend.Order(2, "SELL", "100.50", "2"))
    assert (book.best_bid.price, book.best_ask.quantity, book.spread) == (
        Decimal("100.00"),
        Decimal("2.000"),
        Decimal("0.50"),
    )
    book.fill_order(2, "0.5")
    assert book.best_ask.quantity == Decimal("1.500")
    copy = backend.OrderBook.from_snapshot(book.snapshot())
    assert (copy.best_bid.price, copy.best_ask.quantity) == (book.best_bid.price, book.best_ask.quantity)
    assert copy.best_bid != book.best_bid  # views of different books
    copy._check()


def test_a_constructed_view_reads_like_the_cached_one(backend, book):
    book.add_raw(1, "SELL", 10_100, 7)
    made = backend.PriceLevel(book, "SELL", 10_100)
    assert made == book.best_ask
    assert (made.price, made.quantity) == (book.best_ask.price, book.best_ask.quantity)
    book.add_raw(2, "SELL", 10_100, 3)
    assert made.quantity == book.best_ask.quantity == Decimal("0.010")


DECIMAL_CASES = [
    "100.00",
    "100",
    "1E+2",
    "100.0000000",
    "0.01",
    "12345678901234.56",
    "123456789012345678",  # 18 digits: too many ticks for int64 at 0.01
    "1234567890123456.78",  # 18 significant digits
    "12345678901234567.89",  # 19: the exact slow path
    "100.005",  # off the grid
    "1E-5",
    "1E+400",
    "-100.00",
    "0",
    "0E+3",
    "-0",
    "NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
]


@pytest.mark.parametrize("text", DECIMAL_CASES)
def test_decimal_prices_read_like_their_strings(backend, btc, text):
    """A Decimal is converted exactly as its string is (the compiled core reads a Decimal's digits directly)."""
    outcomes = []
    for given in (Decimal(text), text):
        book = backend.OrderBook(btc)
        try:
            book.add_order(backend.Order(1, "BUY", given, Decimal("1.5")))
        except InvalidOrderError as exc:
            outcomes.append((type(exc), str(exc).replace(repr(text), "X").replace(text, "X")))
        else:
            order = book.get_order(1)
            outcomes.append((order.price_ticks, order.quantity_lots, order.price))
            book._check()
    assert outcomes[0][0] == outcomes[1][0]
    if isinstance(outcomes[0][0], int):
        assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("text", ["1.5", "1.500", "15E-1", "0.001", "9223372036854775.807", "9223372036854775.808"])
def test_decimal_quantities_through_submit(engine_backend, btc, text):
    results = []
    for given in (Decimal(text), text):
        engine = engine_backend.MatchingEngine([btc])
        try:
            report = engine.submit(engine_backend.Order(1, "SELL", Decimal("100.00"), given))
        except InvalidOrderError as exc:
            results.append(type(exc))
        else:
            results.append((report.status, report.order.quantity_lots, report.order.quantity))
    assert results[0] == results[1]


def test_the_direct_decimal_read_is_live_on_cpython():
    import platform

    book_module = pytest.importorskip("tradebook._book")
    if platform.python_implementation() == "CPython":
        assert book_module.DECIMAL_DIRECT


def test_to_units_cache_is_exact_and_bounded(monkeypatch):
    from tradebook import _numeric
    from tradebook.errors import InvalidPriceError

    monkeypatch.setattr(_numeric, "_UNITS", {})
    monkeypatch.setattr(_numeric, "_UNITS_SIZE", 4)
    step = Decimal("0.01")
    for _ in range(2):
        assert _numeric.to_units(Decimal("1.5"), step, "price", "tick size", InvalidPriceError) == 150
        assert _numeric.to_units(Decimal("1.50"), step, "price", "tick size", InvalidPriceError) == 150
        assert _numeric.to_units(Decimal("1.5"), Decimal("0.5"), "price", "tick size", InvalidPriceError) == 3
        with pytest.raises(InvalidPriceError, match="not a multiple"):
            _numeric.to_units(Decimal("1.505"), step, "price", "tick size", InvalidPriceError)
    for i in range(1, 20):
        assert _numeric.to_units(Decimal(i), step, "price", "tick size", InvalidPriceError) == 100 * i
        assert len(_numeric._UNITS) <= 4
