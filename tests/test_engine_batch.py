"""execute_batch: many raw commands in one call, with exactly the single calls' effects."""

from __future__ import annotations

import random
from array import array

import pytest

from _backends import available_backends
from tradebook import (
    ERROR_DUPLICATE,
    ERROR_INVALID,
    ERROR_NOT_FOUND,
    STATUS_CODES,
    BatchOp,
    DuplicateOrderError,
    Instrument,
    InvalidOrderError,
    OrderNotFoundError,
    OrderStatus,
    TradebookError,
    UnknownSymbolError,
)

BTC = Instrument("BTC/USDT", "0.01", "0.001", max_quantity="100")
LIMIT, IOC, FOK, MARKET, CANCEL, AMEND = (int(op) for op in list(BatchOp)[:6])
BUY, SELL = 0, 1


def code(status: OrderStatus) -> int:
    return STATUS_CODES.index(status)


def random_commands(seed: int, n: int) -> list[tuple[int, int, int, int, int]]:
    """Valid and invalid commands over a small id space, so cancels and amends often hit."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        x = rnd.random()
        oid = rnd.randrange(1, 3_000)
        if x < 0.6:
            op = rnd.choice([LIMIT, LIMIT, LIMIT, IOC, FOK, MARKET])
            price = 10_000 + rnd.randint(-1, 40) if rnd.random() > 0.01 else rnd.choice([0, -5])
            out.append((op, oid, rnd.choice([BUY, SELL, BUY, SELL, 2]), price, rnd.randint(-1, 120_000)))
        elif x < 0.88:
            out.append((CANCEL, oid, 0, 0, 0))
        elif x < 0.995:
            out.append(
                (AMEND, oid, 0, rnd.choice([0, 10_000 + rnd.randint(-3, 43)]), rnd.choice([0, rnd.randint(-1, 3_000)]))
            )
        else:
            out.append((rnd.choice([42, -1, 99]), oid, 0, 1, 1))
    return out


def single_calls(engine, commands):
    """What the single-call API does with each command: the batch must match it."""
    statuses, lots, trades = [], [], []
    tifs = ("GTC", "IOC", "FOK", "GTC")
    for op, oid, side, price, qty in commands:
        try:
            if op == CANCEL:
                lots.append(engine.cancel_raw(None, oid))
                statuses.append(code(OrderStatus.CANCELLED))
                continue
            if op == AMEND:
                report = engine.amend_raw(None, oid, quantity=qty or None, price=price or None)
            elif 0 <= op <= 3 and side in (0, 1):
                report = engine.submit_raw(
                    oid, ("BUY", "SELL")[side], None if op == MARKET else price, qty, time_in_force=tifs[op]
                )
            else:
                raise InvalidOrderError("unknown op or side")
        except OrderNotFoundError:
            statuses.append(ERROR_NOT_FOUND)
        except DuplicateOrderError:
            statuses.append(ERROR_DUPLICATE)
        except TradebookError:
            statuses.append(ERROR_INVALID)
        else:
            statuses.append(code(report.status))
            lots.append(report.filled_lots)
            trades.extend(t._key() for t in report.trades)
            continue
        lots.append(0)
    return statuses, lots, trades


def test_a_batch_does_what_the_single_calls_do(backend):
    commands = random_commands(3, 6_000)
    batched = backend.MatchingEngine([BTC])
    single = backend.MatchingEngine([BTC])
    result = batched.execute_batch(commands)
    statuses, lots, trades = single_calls(single, commands)
    assert result.statuses.tolist() == statuses
    assert result.lots.tolist() == lots
    assert [t._key() for t in result.trades] == trades
    assert batched.snapshot() == single.snapshot()
    batched.book()._check()
    assert {ERROR_NOT_FOUND, ERROR_DUPLICATE, ERROR_INVALID} <= set(statuses)  # the stream exercises every error


def test_both_backends_agree_on_batches():
    backends = available_backends()
    if len(backends) < 2:
        pytest.skip("only one backend is importable here")
    commands = random_commands(7, 20_000)
    results = []
    for b in backends.values():
        engine = b.MatchingEngine([BTC])
        out = []
        for start in range(0, len(commands), 3_000):
            r = engine.execute_batch(array("q", [v for c in commands[start : start + 3_000] for v in c]))
            out.append((r.statuses.tolist(), r.lots.tolist(), [t._key() for t in r.trades]))
        engine.book()._check()
        results.append((out, engine.snapshot()))
    assert all(r == results[0] for r in results)


def test_rules_by_example(backend):
    e = backend.MatchingEngine([BTC])
    r = e.execute_batch(
        [
            (LIMIT, 1, SELL, 10_000, 500),  # rests
            (LIMIT, 2, SELL, 10_001, 500),  # rests
            (LIMIT, 1, BUY, 9_000, 1),  # id 1 is resting: duplicate
            (IOC, 3, BUY, 10_001, 700),  # 500 @ 10000 then 200 @ 10001: filled
            (FOK, 4, BUY, 10_001, 400),  # only 300 left: expires untouched
            (MARKET, 5, BUY, 0, 100),  # 100 @ 10001
            (AMEND, 2, 0, 0, 250),  # 200 of 500 remain... quantity 250 > filled 300? no: invalid
            (AMEND, 2, 0, 10_005, 0),  # price change: back of 10005
            (CANCEL, 2, 0, 0, 0),  # 200 left
            (CANCEL, 2, 0, 0, 0),  # gone
            (LIMIT, 6, BUY, 10_000, 0),  # quantity 0: invalid
            (LIMIT, 7, 3, 10_000, 1),  # side 3: invalid
            (LIMIT, 8, BUY, 10_000, 200_000),  # above max_quantity 100: invalid
        ]
    )
    expect = [
        code(OrderStatus.OPEN),
        code(OrderStatus.OPEN),
        ERROR_DUPLICATE,
        code(OrderStatus.FILLED),
        code(OrderStatus.EXPIRED),
        code(OrderStatus.FILLED),
        ERROR_INVALID,
        code(OrderStatus.PARTIALLY_FILLED),
        code(OrderStatus.CANCELLED),
        ERROR_NOT_FOUND,
        ERROR_INVALID,
        ERROR_INVALID,
        ERROR_INVALID,
    ]
    assert r.statuses.tolist() == expect
    assert r.lots.tolist() == [0, 0, 0, 700, 0, 100, 0, 300, 200, 0, 0, 0, 0]
    assert [(t.price_ticks, t.quantity_lots, t.maker_order_id, t.taker_order_id) for t in r.trades] == [
        (10_000, 500, 1, 3),
        (10_001, 200, 2, 3),
        (10_001, 100, 2, 5),
    ]
    assert [t.id for t in r.trades] == [1, 2, 3]
    assert len(e.book()) == 0


def test_input_formats(backend):
    rows = [(LIMIT, 1, SELL, 100, 5), (LIMIT, 2, BUY, 100, 2)]
    flat = array("q", [v for row in rows for v in row])
    for commands in (rows, tuple(rows), flat, memoryview(flat), bytes(flat)):
        if isinstance(commands, bytes):
            with pytest.raises(InvalidOrderError):  # bytes are not int64s
                backend.MatchingEngine([BTC]).execute_batch(commands)
            continue
        r = backend.MatchingEngine([BTC]).execute_batch(commands)
        assert r.statuses.tolist() == [code(OrderStatus.OPEN), code(OrderStatus.FILLED)]
    np = pytest.importorskip("numpy")
    r = backend.MatchingEngine([BTC]).execute_batch(np.array(rows, dtype=np.int64))
    assert r.lots.tolist() == [0, 2]


@pytest.mark.parametrize(
    "bad",
    [
        [(0, 1, 0, 1)],
        array("q", [0, 1, 0, 1]),
        array("i", [0] * 5),
        42,
        "commands",
        [(0, 1, 0, 1, "x")],
        [(0, 2**63, 0, 1, 1)],
    ],
)
def test_malformed_batches_raise_and_change_nothing(backend, bad):
    e = backend.MatchingEngine([BTC])
    e.execute_batch([(LIMIT, 1, SELL, 100, 5)])
    before = e.snapshot()
    with pytest.raises(InvalidOrderError):
        e.execute_batch(bad)
    assert e.snapshot() == before


def test_unknown_symbol_fails_the_whole_batch(backend):
    e = backend.MatchingEngine([BTC, Instrument("ETH/USDT", "0.01", "0.01")])
    with pytest.raises(UnknownSymbolError):
        e.execute_batch([(LIMIT, 1, SELL, 100, 5)])
    with pytest.raises(UnknownSymbolError):
        e.execute_batch([(LIMIT, 1, SELL, 100, 5)], symbol="DOGE/USDT")
    r = e.execute_batch([(LIMIT, 1, SELL, 100, 5)], symbol="ETH/USDT")
    assert r.statuses.tolist() == [code(OrderStatus.OPEN)] and len(e.book("ETH/USDT")) == 1


def test_subscribers_get_one_update_per_command(backend):
    e = backend.MatchingEngine([BTC])
    updates = []
    e.subscribe(updates.append)
    r = e.execute_batch([(LIMIT, 1, SELL, 100, 5), (LIMIT, 2, BUY, 100, 2), (CANCEL, 1, 0, 0, 0)])
    assert r.statuses.tolist() == [code(OrderStatus.OPEN), code(OrderStatus.FILLED), code(OrderStatus.CANCELLED)]
    assert [[(d.price_ticks, d.quantity_lots) for d in u.deltas] for u in updates] == [
        [(100, 5)],
        [(100, 3)],
        [(100, 0)],
    ]
    assert [len(u.trades) for u in updates] == [0, 1, 0]
