"""Thread safety of the engine: eight threads submitting, amending and cancelling on two symbols at once.

Afterwards both books must pass ``_check()`` and be uncrossed, trade ids must be
exactly 1..N (none lost or repeated), and quantity must be conserved: every
order's final filled quantity equals the trades it took part in, and the fills
of all orders add up to twice the traded volume (a taker and a maker per trade).
Market data published meanwhile must rebuild each book exactly.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest

from models.engine import check_books
from tradebook import Instrument, InvalidQuantityError, OrderNotFoundError, OrderStatus

N_THREADS = 8
STEPS = 2500
SYMBOLS = ("ACME/USD", "ZETA/USD")
INSTRUMENTS = [Instrument("ACME/USD", "1", "1"), Instrument("ZETA/USD", "0.5", "0.1")]
MID = {"ACME/USD": 100, "ZETA/USD": 200}


def _worker(engine: Any, t: int, start: threading.Barrier, log: dict[str, Any], errors: list) -> None:
    rng = random.Random(500 + t)
    own: list[tuple[str, Any]] = []  # (symbol, id) of this thread's orders that may still rest
    try:
        start.wait()
        for step in range(STEPS):
            roll = rng.random()
            if roll < 0.6 or not own:
                symbol = rng.choice(SYMBOLS)
                oid = (t + 1) * 1_000_000 + step if step % 5 else f"t{t}-{step}"
                side = rng.choice(("BUY", "SELL"))
                sign = 1 if side == "BUY" else -1
                market = rng.random() < 0.05
                ticks = None if market else MID[symbol] + sign * rng.randint(-4, 2)
                lots = rng.randint(1, 12)
                tif = rng.choice(("GTC", "GTC", "GTC", "IOC", "FOK"))
                owner = None if rng.random() < 0.3 else t % 4  # threads t and t+4 share an owner
                report = engine.submit_raw(oid, side, ticks, lots, symbol=symbol, time_in_force=tif, owner=owner)
                log["lots"][oid] = lots
                log["last"][oid] = ("report", report.order.status, report.order.filled_lots)
                log["trades"].extend(report.trades)
                if report.order.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                    own.append((symbol, oid))
            elif roll < 0.85:
                symbol, oid = own.pop(rng.randrange(len(own)))
                try:
                    order = engine.cancel(symbol, oid)
                except OrderNotFoundError:
                    continue  # filled completely by another thread in the meantime
                log["last"][oid] = ("cancel", order.status, order.filled_lots)
            else:
                symbol, oid = own[rng.randrange(len(own))]
                try:
                    report = engine.amend_raw(symbol, oid, price=MID[symbol] + rng.randint(-4, 4))
                except OrderNotFoundError:
                    own.remove((symbol, oid))
                    continue
                log["last"][oid] = ("report", report.order.status, report.order.filled_lots)
                log["trades"].extend(report.trades)
                if report.order.status not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                    own.remove((symbol, oid))
    except BaseException as exc:  # pragma: no cover - reported by the main thread
        errors.append(exc)


@pytest.mark.parametrize("default", ["CANCEL_TAKER", "NONE"])
def test_eight_threads_on_two_symbols_conserve_quantity(engine_backend, default):
    engine = engine_backend.MatchingEngine(INSTRUMENTS, self_trade_prevention=default)
    published: list[Any] = []
    engine.subscribe(lambda update: published.extend(update.trades))
    logs = [{"lots": {}, "last": {}, "trades": []} for _ in range(N_THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(N_THREADS)
    threads = [threading.Thread(target=_worker, args=(engine, t, start, logs[t], errors)) for t in range(N_THREADS)]
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so commands really interleave
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors

    check_books(engine)
    trades = [trade for log in logs for trade in log["trades"]]
    assert len(trades) > 1000
    ids = sorted(trade.id for trade in trades)
    assert ids == list(range(1, len(trades) + 1)), "trade ids lost or repeated"
    assert engine.next_trade_id == len(trades) + 1
    assert sorted(t.id for t in published) == ids

    # every order's fills, as the trades tell them
    traded: Counter[Any] = Counter()
    for trade in trades:
        traded[trade.maker_order_id] += trade.quantity_lots
        traded[trade.taker_order_id] += trade.quantity_lots
    # ... and as the orders' last known state tells them
    resting = {}
    for book_data in engine.snapshot()["books"]:
        for row in book_data["orders"]:
            resting[row["id"]] = row["filled"]
    final: dict[Any, int] = {}
    for log in logs:
        for oid, (how, status, filled) in log["last"].items():
            if how == "report" and status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                # it rested; still resting, or since filled completely by other threads' takers
                final[oid] = resting[oid] if oid in resting else log["lots"][oid]
            else:
                final[oid] = filled
    assert set(resting) <= set(final)
    mismatched = {oid: (final[oid], traded[oid]) for oid in final if final[oid] != traded[oid]}
    assert not mismatched, f"fills disagree with trades: {list(mismatched.items())[:5]}"
    assert sum(final.values()) == 2 * sum(t.quantity_lots for t in trades)
    assert set(traded) <= set(final)


def test_market_data_from_eight_threads_rebuilds_the_books(engine_backend):
    """Deltas applied in the order subscribers get them must rebuild each book exactly, and each
    book's trade ids must arrive in increasing order: updates of one book are delivered in command
    order, each showing the book right after its command, however the threads interleave."""
    engine = engine_backend.MatchingEngine(INSTRUMENTS)
    ladders: dict[str, dict[tuple[str, int], int]] = {s: {} for s in SYMBOLS}
    trade_ids: dict[str, list[int]] = {s: [] for s in SYMBOLS}
    lock = threading.Lock()

    def apply(update):
        time.sleep(0)  # hand the GIL to another thread mid-delivery: a late or stale update would show
        with lock:
            ladder = ladders[update.symbol]
            for d in update.deltas:
                if d.quantity_lots:
                    ladder[(d.side.value, d.price_ticks)] = d.quantity_lots
                else:
                    ladder.pop((d.side.value, d.price_ticks), None)
            trade_ids[update.symbol].extend(t.id for t in update.trades)

    engine.subscribe(apply)

    def work(t: int) -> None:
        rng = random.Random(900 + t)
        start.wait()
        for i in range(1200):
            symbol = rng.choice(SYMBOLS)
            try:
                if rng.random() < 0.7:
                    side = rng.choice(("BUY", "SELL"))
                    engine.submit_raw(t * 10**6 + i, side, MID[symbol] + rng.randint(-3, 3), rng.randint(1, 5),
                                      symbol=symbol, owner=rng.choice((None, t)))  # fmt: skip
                elif rng.random() < 0.7:
                    engine.cancel_raw(symbol, t * 10**6 + rng.randrange(i + 1))
                else:
                    engine.amend_raw(symbol, t * 10**6 + rng.randrange(i + 1), price=MID[symbol] + rng.randint(-3, 3))
            except (OrderNotFoundError, InvalidQuantityError):
                pass

    start = threading.Barrier(N_THREADS)
    threads = [threading.Thread(target=work, args=(t,)) for t in range(N_THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    check_books(engine)
    for symbol in SYMBOLS:
        bids, asks = engine.book(symbol).depth_raw(1000)
        book = {("BUY", p): q for p, q, _ in bids} | {("SELL", p): q for p, q, _ in asks}
        assert ladders[symbol] == book, f"{symbol}: the deltas do not rebuild the book"
        ids = trade_ids[symbol]
        assert ids == sorted(ids) and len(ids) > 100
