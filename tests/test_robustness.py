"""Robustness: hostile input to every method must raise a Python exception and change nothing.

This matters most for the compiled core, where a missed check could corrupt memory
or crash the interpreter; it runs on both backends.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest

from _helpers import book_state
from tradebook import (
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    TradebookError,
)

INT64_MAX = (1 << 63) - 1


def _attempt(fn, *args):
    """``(exception or None, result)`` of ``fn(*args)``."""
    try:
        return None, fn(*args)
    except Exception as exc:
        return exc, None


def _no_crash(exc):
    assert not isinstance(exc, SystemError), f"the core reported an internal error: {exc!r}"


class FailingHash:
    def __hash__(self):
        raise RuntimeError("no hash for you")


class UnhashableByTypeError:
    __hash__ = None  # type: ignore[assignment]


class FailingEq:
    """Hashes like the int 1 (a resting id), then refuses to compare."""

    def __hash__(self):
        return hash(1)

    def __eq__(self, other):
        raise RuntimeError("no comparing either")


class WeirdInt(int):
    def __index__(self):
        raise RuntimeError("bad index")

    def __int__(self):
        raise RuntimeError("bad int")


class StrSub(str):
    pass


class FloatSub(float):
    pass


HOSTILE = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    float("nan"),
    float("inf"),
    -0.0,
    INT64_MAX + 1,
    2**64,
    -(2**63) - 1,
    2**1000,
    -(2**1000),
    "",
    "x",
    "1e999999999",
    "NaN",
    b"1",
    bytearray(b"1"),
    [],
    [1],
    {},
    set(),
    (),
    object(),
    FailingHash(),
    UnhashableByTypeError(),
    FailingEq(),
    WeirdInt(5),
    StrSub("BUY"),
    FloatSub(1.0),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("-Infinity"),
    Decimal("1E+999"),  # (far bigger exponents as ids: see test_huge_exponent_decimal_ids_are_cheap)
    Decimal("1E-999999999"),
    1 + 2j,
    type,
    print,
]
HOSTILE_IDS = [f"{type(v).__name__}-{i}" for i, v in enumerate(HOSTILE)]


def _seeded(backend, btc):
    book = backend.OrderBook(btc)
    book.add_raw(1, "BUY", 100, 5)
    book.add_raw(2, "BUY", 100, 7)
    book.add_raw("s", "SELL", 105, 2)
    book.add_order(backend.Order(3, "SELL", "1.10", "0.004", owner="alice"))
    book.fill_raw(2, 1)
    return book


CALLS = {
    "add_raw id": lambda b, bk, v: b.add_raw(v, "BUY", 100, 1),
    "add_raw side": lambda b, bk, v: b.add_raw(9, v, 100, 1),
    "add_raw price": lambda b, bk, v: b.add_raw(9, "BUY", v, 1),
    "add_raw quantity": lambda b, bk, v: b.add_raw(9, "BUY", 100, v),
    "remove_raw": lambda b, bk, v: b.remove_raw(v),
    "fill_raw id": lambda b, bk, v: b.fill_raw(v, 1),
    "fill_raw quantity": lambda b, bk, v: b.fill_raw(1, v),
    "amend_raw id": lambda b, bk, v: b.amend_raw(v, quantity=3),
    "amend_raw quantity": lambda b, bk, v: b.amend_raw(1, quantity=v),
    "amend_raw price": lambda b, bk, v: b.amend_raw(1, price=v),
    "level_raw side": lambda b, bk, v: b.level_raw(v, 100),
    "level_raw price": lambda b, bk, v: b.level_raw("BUY", v),
    "depth_raw": lambda b, bk, v: b.depth_raw(v),
    "depth": lambda b, bk, v: b.depth(v),
    "add_order": lambda b, bk, v: b.add_order(v),
    "Order id": lambda b, bk, v: b.add_order(bk.Order(v, "BUY", "1", "0.001")),
    "Order side": lambda b, bk, v: b.add_order(bk.Order(9, v, "1", "0.001")),
    "Order price": lambda b, bk, v: b.add_order(bk.Order(9, "BUY", v, "0.001")),
    "Order quantity": lambda b, bk, v: b.add_order(bk.Order(9, "BUY", "1", v)),
    "Order type": lambda b, bk, v: b.add_order(bk.Order(9, "BUY", "1", "0.001", type=v)),
    "Order tif": lambda b, bk, v: b.add_order(bk.Order(9, "BUY", "1", "0.001", time_in_force=v)),
    "Order post_only": lambda b, bk, v: b.add_order(bk.Order(9, "BUY", "1", "0.001", post_only=v)),
    "Order symbol": lambda b, bk, v: b.add_order(bk.Order(9, "BUY", "1", "0.001", symbol=v)),
    "Order stp": lambda b, bk, v: b.add_order(bk.Order(9, "BUY", "1", "0.001", self_trade_prevention=v)),
    "remove_order": lambda b, bk, v: b.remove_order(v),
    "get_order": lambda b, bk, v: b.get_order(v),
    "fill_order id": lambda b, bk, v: b.fill_order(v, "0.001"),
    "fill_order quantity": lambda b, bk, v: b.fill_order(1, v),
    "amend_order id": lambda b, bk, v: b.amend_order(v, quantity="0.003"),
    "amend_order quantity": lambda b, bk, v: b.amend_order(1, quantity=v),
    "amend_order price": lambda b, bk, v: b.amend_order(1, price=v),
    "level side": lambda b, bk, v: b.level(v, "1"),
    "level price": lambda b, bk, v: b.level("BUY", v),
    "orders_at price": lambda b, bk, v: b.orders_at("SELL", v),
    "from_snapshot": lambda b, bk, v: bk.OrderBook.from_snapshot(v),
    "OrderBook": lambda b, bk, v: bk.OrderBook(v),
}

# calls for which some hostile values are legitimate (None defaults, ids, int subclasses, valid numbers)
MAY_SUCCEED = {
    "add_raw id",
    "add_raw side",  # a str subclass equal to "BUY"
    "remove_raw",
    "fill_raw id",
    "amend_raw id",
    "amend_raw quantity",
    "amend_raw price",
    "level_raw side",
    "depth_raw",
    "depth",
    "Order id",
    "Order side",
    "Order price",
    "Order quantity",
    "Order post_only",  # True and False
    "Order symbol",  # None is the default
    "Order stp",  # None is the default
    "remove_order",
    "get_order",
    "fill_order id",
    "fill_order quantity",
    "amend_order id",
    "amend_order quantity",
    "amend_order price",
    "level side",
    "level price",
    "orders_at price",
}


@pytest.mark.parametrize("call", list(CALLS))
def test_hostile_input(backend, btc, call):
    fn = CALLS[call]
    for value in HOSTILE:
        book = _seeded(backend, btc)
        before = book_state(book)
        exc, result = _attempt(fn, book, backend, value)
        book._check()
        if exc is not None:
            _no_crash(exc)
            assert book_state(book) == before, f"{call}({value!r}) raised {exc!r} but changed the book"
        else:  # no exception: the value must have been a legitimate one for this call
            assert call in MAY_SUCCEED, f"{call}({value!r}) succeeded with {result!r}"


@pytest.mark.parametrize("value", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_membership(backend, btc, value):
    book = _seeded(backend, btc)
    before = book_state(book)
    exc, result = _attempt(lambda: value in book)
    if exc is not None:
        _no_crash(exc)
    else:
        assert result in (True, False)
    assert book_state(book) == before


@pytest.mark.parametrize("value", HOSTILE, ids=HOSTILE_IDS)
def test_hostile_tree_input(backend, value):
    tree = backend.PriceTree()
    for key in (5, 1, 9):
        tree.insert(key, str(key))
    for call in (
        lambda: tree.insert(value, "v"),
        lambda: tree.get(value),
        lambda: tree.remove(value),
        lambda: value in tree,
    ):
        exc, _ = _attempt(call)
        _no_crash(exc)
        tree._check()
    keys = [k for k, _ in tree.items()]
    assert all(type(k) is int for k in keys)
    assert {1, 5, 9} <= set(keys)


def test_specific_errors_for_unhashable_ids(backend, btc):
    book = _seeded(backend, btc)
    before = book_state(book)
    for bad in ([], {}, UnhashableByTypeError()):
        for call in (book.remove_raw, book.remove_order, book.get_order):
            with pytest.raises(OrderNotFoundError):
                call(bad)
        with pytest.raises(OrderNotFoundError):
            book.fill_raw(bad, 1)
        with pytest.raises(OrderNotFoundError):
            book.fill_order(bad, "0.001")
        with pytest.raises(OrderNotFoundError):
            book.amend_raw(bad, quantity=1)
        with pytest.raises(OrderNotFoundError):
            book.amend_order(bad, quantity="0.001")
        with pytest.raises(InvalidOrderError):
            book.add_raw(bad, "BUY", 1, 1)
        with pytest.raises(InvalidOrderError):
            backend.Order(bad, "BUY", 1, 1)
        assert bad not in book
    book._check()
    assert book_state(book) == before


def test_failing_hash_propagates(backend, btc):
    book = _seeded(backend, btc)
    before = book_state(book)
    with pytest.raises(RuntimeError):
        book.add_raw(FailingHash(), "BUY", 1, 1)
    with pytest.raises(RuntimeError):
        backend.Order(FailingHash(), "BUY", 1, 1)
    with pytest.raises((RuntimeError, OrderNotFoundError)):
        book.remove_raw(FailingHash())
    with pytest.raises((RuntimeError, OrderNotFoundError)):
        book.get_order(FailingHash())
    book._check()
    assert book_state(book) == before


def test_failing_eq_on_a_colliding_id(backend, btc):
    # FailingEq() == 1 raises, so whether it names order 1 is undefined: raising is fine,
    # and so is treating it as another id; corrupting the book is not.
    for call in (
        lambda b: b.add_raw(FailingEq(), "BUY", 1, 1),
        lambda b: b.remove_raw(FailingEq()),
        lambda b: b.fill_raw(FailingEq(), 1),
        lambda b: b.get_order(FailingEq()),
        lambda b: FailingEq() in b,
    ):
        book = _seeded(backend, btc)
        before = book_state(book)
        exc, _ = _attempt(call, book)
        _no_crash(exc)
        book._check()
        if exc is not None:
            assert book_state(book) == before


def test_reentrant_id_hash(backend, btc):
    """An id whose ``__hash__`` calls back into the same book must not corrupt it (or hang)."""
    book = _seeded(backend, btc)
    calls: list = []

    class Reentrant:
        def __hash__(self):
            if len(calls) < 3:
                calls.append(1)
                exc, _ = _attempt(book.add_raw, 100 + len(calls), "BUY", 50, 1)
                calls.append(exc)
            return 12345

        def __eq__(self, other):
            return self is other

    rid = Reentrant()
    exc, _ = _attempt(book.add_raw, rid, "SELL", 200, 1)
    _no_crash(exc)
    book._check()
    for call in (book.get_order, book.remove_raw):
        exc, _ = _attempt(call, rid)
        _no_crash(exc)
        book._check()


@pytest.mark.parametrize("value", [INT64_MAX + 1, 2**64, 2**200], ids=["2**63", "2**64", "2**200"])
def test_huge_ints_are_range_errors(backend, btc, value):
    book = _seeded(backend, btc)
    before = book_state(book)
    for call, err in [
        (lambda: book.add_raw(9, "BUY", value, 1), InvalidPriceError),
        (lambda: book.add_raw(9, "BUY", 1, value), InvalidQuantityError),
        (lambda: book.fill_raw(1, value), InvalidQuantityError),
        (lambda: book.amend_raw(1, quantity=value), InvalidQuantityError),
        (lambda: book.amend_raw(1, price=value), InvalidPriceError),
        (lambda: book.level_raw("BUY", value), InvalidPriceError),
        (lambda: book.add_order(backend.Order(9, "BUY", value, 1)), InvalidPriceError),
        (lambda: book.add_order(backend.Order(9, "BUY", 1, value)), InvalidQuantityError),
        (lambda: book.fill_order(1, value), InvalidQuantityError),
        (lambda: book.amend_order(1, price=value), InvalidPriceError),
        (lambda: book.level("BUY", value), InvalidPriceError),
    ]:
        with pytest.raises(err):
            call()
    assert book_state(book) == before


def test_snapshot_garbage_never_crashes(backend, btc):
    good = json.loads(json.dumps(_seeded(backend, btc).snapshot()))
    for key in ("format", "instrument", "next_sequence", "orders"):
        for value in HOSTILE:
            data = json.loads(json.dumps(good))
            data[key] = value
            exc, _ = _attempt(backend.OrderBook.from_snapshot, data)
            _no_crash(exc)
            if exc is None:
                assert (key, value) == ("orders", []), f"{key}={value!r} accepted"  # an empty book is fine
            elif type(value) in (type(None), bool, int, float, str, list, dict):  # JSON-like garbage
                assert isinstance(exc, (TradebookError, TypeError, ValueError)), repr(exc)
    for field in ("id", "side", "price", "quantity", "filled", "sequence", "owner", "type", "post_only"):
        for value in HOSTILE:
            data = json.loads(json.dumps(good))
            data["orders"][0][field] = value
            exc, rebuilt = _attempt(backend.OrderBook.from_snapshot, data)
            _no_crash(exc)
            if rebuilt is not None:
                rebuilt._check()


HUGE_EXPONENT_IDS = """
import time
from decimal import Decimal
from tradebook import Instrument
from {book} import OrderBook
book = OrderBook(Instrument("BTC/USDT", "0.01", "0.001"))
book.add_raw(1, "BUY", 100, 1)
for oid in (Decimal("1E+999999999"), Decimal("-9E+999999999"), Decimal("1E+99999999")):
    t = time.perf_counter()
    assert oid not in book
    book.add_raw(oid, "SELL", 200, 1)
    assert oid in book and book.get_order(oid).id == oid
    assert book.remove_raw(oid) == 1
    try:
        book.get_order(oid)
    except KeyError:
        pass
    assert time.perf_counter() - t < 5, (oid, time.perf_counter() - t)
book._check()
print("ok")
"""


def test_huge_exponent_decimal_ids_are_cheap(backend):
    """A Decimal id such as 1E+999999999 is hashable and must cost no more than any other id.

    (Turning it into an int to look for an int-equal id would build a billion-digit
    number.) It runs in a subprocess so that a slow core fails the test instead of hanging it.
    """
    code = HUGE_EXPONENT_IDS.format(book=backend.book_module.__name__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("a huge-exponent Decimal id took more than 20 seconds")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
