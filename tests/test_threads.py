"""Thread safety: eight threads hammering one book, each with its own ids plus contended shared ids."""

from __future__ import annotations

import random
import sys
import threading
from decimal import Decimal

import pytest

from tradebook import DuplicateOrderError, OrderNotFoundError

N_THREADS = 8
STEPS = 3000
SHARED = range(50)  # ids every thread fights over


def _worker(book, backend, t: int, start: threading.Barrier, own: dict, errors: list) -> None:
    rng = random.Random(1000 + t)
    base = (t + 1) * 1_000_000
    next_id = base
    inst = book.instrument
    try:
        start.wait()
        for step in range(STEPS):
            roll = rng.random()
            if roll < 0.2:  # contention: any thread may have added or removed these
                sid = rng.choice(SHARED)
                op = rng.randrange(4)
                try:
                    if op == 0:
                        book.add_raw(sid, rng.choice(["BUY", "SELL"]), rng.randrange(90, 110), rng.randrange(1, 5))
                    elif op == 1:
                        book.remove_raw(sid)
                    elif op == 2:
                        book.fill_raw(sid, 1)
                    else:
                        book.amend_raw(sid, price=rng.randrange(90, 110))
                except (OrderNotFoundError, DuplicateOrderError):
                    pass
            elif roll < 0.5 or not own:
                side = "BUY" if rng.random() < 0.5 else "SELL"
                ticks = rng.randrange(80, 120)
                lots = rng.randrange(1, 20)
                if rng.random() < 0.5:
                    book.add_raw(next_id, side, ticks, lots)
                else:
                    book.add_order(
                        backend.Order(next_id, side, inst.ticks_to_price(ticks), inst.lots_to_quantity(lots), owner=t)
                    )
                own[next_id] = [side, ticks, lots, 0]
                next_id += 1
            elif roll < 0.65:
                oid = rng.choice(list(own))
                side, ticks, lots, filled = own.pop(oid)
                if rng.random() < 0.5:
                    assert book.remove_raw(oid) == lots - filled
                else:
                    assert book.remove_order(oid).remaining_quantity == inst.lots_to_quantity(lots - filled)
            elif roll < 0.85:
                oid = rng.choice(list(own))
                rec = own[oid]
                qty = rng.randrange(1, rec[2] - rec[3] + 1)
                if rng.random() < 0.5:
                    left = book.fill_raw(oid, qty)
                else:
                    rest = book.fill_order(oid, inst.lots_to_quantity(qty)).remaining_quantity
                    left = inst.quantity_to_lots(rest) if rest else 0
                rec[3] += qty
                assert left == rec[2] - rec[3]
                if left == 0:
                    del own[oid]
            else:
                oid = rng.choice(list(own))
                rec = own[oid]
                lots = rng.randrange(rec[3] + 1, rec[3] + 25)
                ticks = rng.randrange(80, 120)
                if rng.random() < 0.5:
                    book.amend_raw(oid, quantity=lots, price=ticks)
                else:
                    book.amend_order(oid, quantity=inst.lots_to_quantity(lots), price=inst.ticks_to_price(ticks))
                rec[1], rec[2] = ticks, lots
            if step % 100 == 0:  # readers run alongside the writers
                book.depth(5)
                book.snapshot()
                for level in book.bids:
                    list(level)
                book.best_ask  # noqa: B018
                len(book)
    except BaseException as exc:  # report it from the main thread
        errors.append(exc)


def test_eight_threads_one_book(backend, btc):
    book = backend.OrderBook(btc)
    start = threading.Barrier(N_THREADS)
    owns = [{} for _ in range(N_THREADS)]
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_worker, args=(book, backend, t, start, owns[t], errors)) for t in range(N_THREADS)
    ]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often to provoke races
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
    finally:
        sys.setswitchinterval(old)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    if errors:
        raise errors[0]
    book._check()
    # every thread's own orders are exactly as it left them
    expected_total = 0
    for own in owns:
        for oid, (side, ticks, lots, filled) in own.items():
            order = book.get_order(oid)
            assert (order.side.value, order.price_ticks, order.quantity_lots, order.filled_lots) == (
                side,
                ticks,
                lots,
                filled,
            )
            expected_total += lots - filled
    shared_live = [sid for sid in SHARED if sid in book]
    for sid in shared_live:
        order = book.get_order(sid)
        expected_total += order.quantity_lots - order.filled_lots
    assert len(book) == sum(len(own) for own in owns) + len(shared_live)
    bids, asks = book.depth_raw(1 << 30)
    assert sum(q for _, q, _ in bids + asks) == expected_total
    assert sum(n for _, _, n in bids + asks) == len(book)
    if bids:
        assert book.depth(1).bids[0].quantity == Decimal(bids[0][1]) * btc.lot_size


@pytest.mark.parametrize("n_books", [4])
def test_threads_on_separate_books(backend, btc, n_books):
    books = [backend.OrderBook(btc) for _ in range(n_books)]
    errors: list[BaseException] = []

    def run(book, seed):
        try:
            rng = random.Random(seed)
            for i in range(3000):
                book.add_raw(i, "BUY" if i % 2 else "SELL", rng.randrange(1, 50), 1 + i % 9)
                if i % 3 == 0:
                    book.remove_raw(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b, s)) for s, b in enumerate(books)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    for b in books:
        b._check()
        assert len(b) == 2000
