"""``OrderBook.compact()`` / ``MatchingEngine.compact()``: memory goes back, the book stays the same."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import uuid

import pytest

from _helpers import book_state


def churn(book, rng: random.Random, n: int) -> list:
    """Fill a book with int, str and UUID ids over many levels, then cancel most of them."""
    ids = []
    for i in range(n):
        oid = (i, f"s{i}", uuid.UUID(int=i))[i % 3]
        side = "BUY" if rng.random() < 0.5 else "SELL"
        price = 10_000 - rng.randrange(1, 200) if side == "BUY" else 10_000 + rng.randrange(0, 200)
        book.add_raw(oid, side, price, rng.randrange(1, 50))
        ids.append(oid)
    rng.shuffle(ids)
    keep = ids[: n // 10]
    for oid in ids[n // 10 :]:
        book.remove_raw(oid)
    return keep


def test_compact_keeps_the_book(backend, btc):
    rng = random.Random(7)
    book = backend.OrderBook(btc)
    keep = churn(book, rng, 3000)
    for oid in keep[:50]:
        if book.get_order(oid).quantity_lots > 1:
            book.fill_raw(oid, 1)
    held = [book.get_order(oid) for oid in keep[::7]]  # Order objects handed out before
    bid, ask = book.best_bid, book.best_ask
    depth = book.depth(5)
    before = (book_state(book), book.snapshot(), book.next_sequence, len(book))
    book.compact()
    book._check()
    assert (book_state(book), book.snapshot(), book.next_sequence, len(book)) == before
    assert book.depth(5) == depth
    assert (bid.price, bid.quantity, ask.price, ask.quantity) == (
        book.best_bid.price,
        book.best_bid.quantity,
        book.best_ask.price,
        book.best_ask.quantity,
    )
    for order in held:
        assert book.get_order(order.id) is order
    for oid in keep:
        assert oid in book
    # and it goes on working: FIFO behind the old orders, cancels, fills, amends, compact again
    level = book.best_bid
    book.add_raw("late", "BUY", level.price_ticks, 5)
    assert [o.id for o in level][-1] == "late"
    assert book.get_order("late").sequence == before[2]
    for oid in keep[: len(keep) // 2]:
        book.remove_raw(oid)
    book.amend_raw(keep[-1], price=9_000)
    book._check()
    book.compact()
    book._check()
    for oid in [*keep[len(keep) // 2 :], "late"]:
        book.remove_raw(oid)
    assert len(book) == 0
    book.compact()
    book._check()
    book.add_raw(1, "SELL", 10_001, 1)
    assert book.best_ask_raw == 10_001
    book._check()


def test_compact_an_empty_and_a_fresh_book(backend, btc):
    book = backend.OrderBook(btc)
    book.compact()
    book._check()
    book.add_raw(1, "BUY", 100, 1)
    book.compact()
    assert book.snapshot()["orders"][0]["id"] == 1
    book._check()


def test_compact_matches_the_other_backend(available, btc):
    """Both backends, same stream with compactions in between: identical snapshots."""
    snapshots = []
    for backend in available.values():
        rng = random.Random(11)
        book = backend.OrderBook(btc)
        live: list = []
        for step in range(4000):
            if live and rng.random() < 0.45:
                book.remove_raw(live.pop(rng.randrange(len(live))))
            else:
                book.add_raw(step, rng.choice(("BUY", "SELL")), 1_000 + rng.randrange(40), rng.randrange(1, 9))
                live.append(step)
            if step % 700 == 0:
                book.compact()
                book._check()
        snapshots.append(book.snapshot())
    assert all(s == snapshots[0] for s in snapshots)


@pytest.fixture
def available():
    from _backends import available_backends

    return available_backends()


def test_engine_compact(engine_backend, btc):
    from tradebook import Instrument

    eth = Instrument("ETH/USDT", "0.01", "0.001")
    engine = engine_backend.MatchingEngine([btc, eth])
    for i in range(1, 400):
        engine.submit_raw(i, "BUY", 1_000 + i % 7, 3, symbol="BTC/USDT")
        engine.submit_raw(i, "SELL", 2_000 + i % 7, 3, symbol="ETH/USDT")
    for i in range(1, 390):
        engine.cancel_raw("BTC/USDT", i)
        engine.cancel_raw("ETH/USDT", i)
    before = engine.snapshot()
    engine.compact("BTC/USDT")
    engine.compact()
    assert engine.snapshot() == before
    report = engine.submit_raw(1_000, "SELL", 1_000, 30, symbol="BTC/USDT")
    assert [t.maker_order_id for t in report.trades] == sorted(range(390, 400), key=lambda i: (-(i % 7), i))
    for symbol in engine.symbols:
        engine.book(symbol)._check()
    with pytest.raises(KeyError):
        engine.compact("NOPE/USDT")


def test_compact_refuses_a_call_back_into_a_changing_book(backend, btc):
    book = backend.OrderBook(btc)

    class Nasty:
        armed = False

        def __hash__(self) -> int:
            if Nasty.armed:
                book.compact()
            return 1

        def __eq__(self, other: object) -> bool:
            return other is self

    book.add_raw(Nasty(), "BUY", 100, 1)
    Nasty.armed = True
    with pytest.raises(RuntimeError):
        book.add_raw(Nasty(), "BUY", 100, 1)
    Nasty.armed = False
    assert len(book) == 1
    book._check()


def test_compact_shrinks_the_compiled_storage(btc):
    book_module = pytest.importorskip("tradebook._book")
    if os.environ.get("TRADEBOOK_NO_EXTENSIONS"):
        pytest.skip("compiled core not used")
    book = book_module.OrderBook(btc)
    for i in range(20_000):
        book.add_raw(i, "BUY" if i % 2 else "SELL", 10_000 + (i % 500) * (1 if i % 2 else -1), 1)
    big = book._capacity()
    for i in range(19_900):
        book.remove_raw(i)
    assert book._capacity() == big  # nothing shrinks on its own
    book.compact()
    small = book._capacity()
    assert small[0] <= 256 and small[1] <= 256 and small[2] <= 1024 < big[2]
    book._check()


RSS_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from tradebook import BACKEND, Instrument, OrderBook
    assert BACKEND == "cython", BACKEND
    page = os.sysconf("SC_PAGE_SIZE")
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * page
    book = OrderBook(Instrument("BTC/USDT", "0.01", "0.001"))
    n = int(sys.argv[1])
    add, remove = book.add_raw, book.remove_raw
    for i in range(n):
        add(i, "BUY" if i & 1 else "SELL", 100_000 + (i % 1000) * (1 if i & 1 else -1) - (0 if i & 1 else 1), 1)
    full = rss()
    for i in range(n):
        remove(i)
    cancelled = rss()
    book.compact()
    compacted = rss()
    book.add_raw(1, "BUY", 100_000, 1)
    book._check()
    print(full, cancelled, compacted)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_compact_gives_memory_back_to_the_system():
    """A million orders added and cancelled: RSS stays up until compact() (compiled core, own process)."""
    from _backends import NO_EXTENSIONS

    if NO_EXTENSIONS:
        pytest.skip("compiled core not used")
    pytest.importorskip("tradebook._book")
    env = {k: v for k, v in os.environ.items() if k != "TRADEBOOK_NO_EXTENSIONS"}
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, "1000000"], capture_output=True, text=True, env=env, check=True
    ).stdout
    full, cancelled, compacted = map(int, out.split())
    mb = 1 << 20
    assert cancelled > full - 8 * mb  # cancelling alone keeps the room
    assert cancelled - compacted > 64 * mb, (full, cancelled, compacted)
