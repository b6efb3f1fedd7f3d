"""Memory stays flat across many add/remove cycles (C allocations included: measured as process RSS)."""

from __future__ import annotations

import gc
import os
import resource
import sys

import pytest

from _helpers import tier

LIMIT = 20 * 1024 * 1024  # bytes of growth tolerated after the warm-up

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RSS measured through /proc or getrusage")


def _rss() -> int:
    """Current resident set size in bytes (peak RSS where /proc is missing)."""
    gc.collect()
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _raw_cycles(book, start: int, n: int) -> None:
    add, remove, fill, amend = book.add_raw, book.remove_raw, book.fill_raw, book.amend_raw
    for i in range(start, start + n):
        side = "BUY" if i & 1 else "SELL"
        ticks = 1000 + (i % 997) * (-1 if i & 1 else 1)  # levels come and go
        add(i, side, ticks, 5)
        if i % 4 == 0:
            fill(i, 2)
        if i % 8 == 0:
            amend(i, quantity=9, price=ticks + 1)
        remove(i)


def _object_cycles(book, backend, inst, start: int, n: int) -> None:
    for i in range(start, start + n):
        oid = f"o{i}" if i % 3 else i
        book.add_order(
            backend.Order(oid, "BUY" if i & 1 else "SELL", inst.ticks_to_price(100 + i % 50), "0.005", owner=i)
        )
        order = book.get_order(oid)
        assert order.remaining_quantity
        book.fill_order(oid, "0.001")
        book.amend_order(oid, quantity="0.004")
        book.remove_order(oid)
        if i % 1000 == 0:
            book.snapshot()
            book.depth()


def _assert_flat(run, warmup: int, cycles: int) -> None:
    run(0, warmup)
    before = _rss()
    run(warmup, cycles)
    grown = _rss() - before
    assert grown < LIMIT, f"RSS grew by {grown / 2**20:.1f} MiB over {cycles:,} cycles"


def _resident(book, n: int = 2000) -> None:
    # a resting base of orders, so the cycles run inside a populated book
    for i in range(n):
        book.add_raw(
            -1 - i, "BUY" if i & 1 else "SELL", 500 + (i % 300) * (1 if i & 1 else -1) + (0 if i & 1 else 1000), 3
        )


def test_raw_add_remove_cycles_do_not_leak(backend, btc):
    book = backend.OrderBook(btc)
    _resident(book)
    cycles = 1_000_000 if backend.name == "cython" else 100_000
    _assert_flat(lambda start, n: _raw_cycles(book, start, n), warmup=cycles // 10, cycles=cycles)
    book._check()
    assert len(book) == 2000


def test_object_cycles_do_not_leak(backend, btc):
    book = backend.OrderBook(btc)
    _resident(book)
    cycles = 100_000 if backend.name == "cython" else 20_000
    _assert_flat(lambda start, n: _object_cycles(book, backend, btc, start, n), warmup=cycles // 10, cycles=cycles)
    book._check()


@pytest.mark.slow
def test_many_books_do_not_leak(backend, btc):
    def run(start, n):
        for _ in range(start, start + n):
            book = backend.OrderBook(btc)
            for j in range(20):
                book.add_raw(j, "BUY", 10 + j, 1)
            book.remove_raw(3)
            book.get_order(5)
            del book

    _assert_flat(run, warmup=2_000, cycles=20_000)


@pytest.mark.slow
def test_raw_million_cycles_python(backend, btc):
    if backend.name != "python":
        pytest.skip("the compiled core runs a million cycles in the fast test")
    book = backend.OrderBook(btc)
    _resident(book)
    cycles = tier(1_000_000, 250_000)  # the quick tier: a quarter of the full run
    _assert_flat(lambda start, n: _raw_cycles(book, start, n), warmup=cycles // 10, cycles=cycles)
