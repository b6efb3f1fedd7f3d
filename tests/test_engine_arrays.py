"""execute_array: numpy rows in, numpy arrays out, with exactly execute_batch's effects."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _backends import available_backends
from test_engine_batch import AMEND, BTC, BUY, CANCEL, IOC, LIMIT, SELL, code, random_commands
from tradebook import (
    COMMAND_DTYPE,
    ERROR_DUPLICATE,
    ERROR_INVALID,
    ERROR_NOT_FOUND,
    TRADE_DTYPE,
    ArrayResult,
    Instrument,
    InvalidOrderError,
    OrderStatus,
    UnknownSymbolError,
)

MAX = 2**63 - 1
WIDE = Instrument("BTC/USDT", "0.01", "0.001")  # no limits: any positive int64 price or quantity


def rows_of(commands: list[tuple[int, int, int, int, int]]) -> np.ndarray:
    out = np.zeros(len(commands), COMMAND_DTYPE)
    for i, (op, oid, side, price, qty) in enumerate(commands):
        out[i] = (op, side, oid, price, qty, 0, 0, 0)
    return out


def trade_rows(trades) -> list[tuple[int, int, int, int, int, int]]:
    """``Trade`` objects as the ``TRADE_DTYPE`` columns execute_array must give."""
    return [
        (t.id, t.maker_order_id, t.taker_order_id, t.price_ticks, t.quantity_lots, int(t.taker_side.value == "BUY"))
        for t in trades
    ]


def test_layout():
    assert COMMAND_DTYPE.itemsize == 56 and TRADE_DTYPE.itemsize == 48
    names = ("op", "side", "id", "price", "quantity", "stop", "display", "expire_at")
    assert [COMMAND_DTYPE.fields[n][1] for n in names] == [0, 1, 8, 16, 24, 32, 40, 48]
    assert TRADE_DTYPE.names == ("trade_id", "maker_id", "taker_id", "price", "lots", "maker_side")


@pytest.mark.parametrize("seed", [3, 11])
def test_an_array_does_what_execute_batch_does(engine_backend, seed):
    commands = random_commands(seed, 6_000)
    arrays = engine_backend.MatchingEngine([BTC])
    batch = engine_backend.MatchingEngine([BTC])
    for start in range(0, len(commands), 1_500):
        chunk = commands[start : start + 1_500]
        got = arrays.execute_array(rows_of(chunk))
        want = batch.execute_batch(chunk)
        assert isinstance(got, ArrayResult)
        assert got.statuses.dtype == np.int8 and got.lots.dtype == np.int64 and got.trades.dtype == TRADE_DTYPE
        assert got.statuses.tolist() == want.statuses.tolist()
        assert got.lots.tolist() == want.lots.tolist()
        assert got.trades.tolist() == trade_rows(want.trades)
    assert arrays.snapshot() == batch.snapshot()
    assert arrays.next_trade_id == batch.next_trade_id
    arrays.book()._check()


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 400), cut=st.integers(1, 400))
def test_both_backends_agree(seed, n, cut):
    backends = available_backends()
    if len(backends) < 2:
        pytest.skip("only one backend is importable here")
    commands = random_commands(seed, n)
    results = []
    for b in backends.values():
        engine = b.MatchingEngine([BTC])
        out = []
        for start in range(0, len(commands), cut):
            r = engine.execute_array(rows_of(commands[start : start + cut]))
            out.append((r.statuses.tolist(), r.lots.tolist(), r.trades.tolist()))
        engine.book()._check()
        results.append((out, engine.snapshot()))
    assert all(r == results[0] for r in results)


def test_trade_columns_by_example(engine_backend):
    e = engine_backend.MatchingEngine([WIDE])
    r = e.execute_array(
        rows_of(
            [
                (LIMIT, 10, SELL, 100, 3),
                (LIMIT, 11, SELL, 101, 4),
                (IOC, 12, BUY, 101, 6),  # takes 3 at 100, 3 at 101
                (LIMIT, 13, BUY, 99, 2),
                (AMEND, 13, 0, 101, 0),  # moves across: takes the last lot at 101, rests 1 at 101
                (CANCEL, 13, 0, 0, 0),
                (CANCEL, 13, 0, 0, 0),
                (LIMIT, 10, BUY, 1, 1),
                (LIMIT, 10, BUY, 1, 1),
                (42, 1, 0, 1, 1),  # no such op
            ]
        )
    )
    st_ = [code(OrderStatus[s]) for s in ("OPEN", "OPEN", "FILLED", "OPEN", "PARTIALLY_FILLED", "CANCELLED")]
    assert r.statuses.tolist() == [*st_, ERROR_NOT_FOUND, code(OrderStatus.OPEN), ERROR_DUPLICATE, ERROR_INVALID]
    assert r.lots.tolist() == [0, 0, 6, 0, 1, 1, 0, 0, 0, 0]
    assert r.trades.tolist() == [(1, 10, 12, 100, 3, 1), (2, 11, 12, 101, 3, 1), (3, 11, 13, 101, 1, 1)]


def test_extreme_values(engine_backend):
    e = engine_backend.MatchingEngine([WIDE])
    r = e.execute_array(
        rows_of([(LIMIT, MAX, SELL, MAX, MAX), (LIMIT, -(2**63), BUY, MAX, MAX - 1), (CANCEL, MAX, 0, 0, 0)])
    )
    assert r.statuses.tolist() == [code(OrderStatus.OPEN), code(OrderStatus.FILLED), code(OrderStatus.CANCELLED)]
    assert r.lots.tolist() == [0, MAX - 1, 1]
    assert r.trades.tolist() == [(1, MAX, -(2**63), MAX, MAX - 1, 1)]
    assert len(e.book()) == 0


def test_empty_array(engine_backend):
    e = engine_backend.MatchingEngine([BTC])
    e.execute_array(rows_of([(LIMIT, 1, SELL, 100, 5)]))
    before = e.snapshot()
    r = e.execute_array(np.zeros(0, COMMAND_DTYPE))
    assert (r.statuses.shape, r.lots.shape, r.trades.shape) == ((0,), (0,), (0,))
    assert r.trades.dtype == TRADE_DTYPE
    assert e.snapshot() == before


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda a: a.tolist(), "numpy array"),
        (lambda a: np.zeros((4, 5), np.int64), "dtype"),
        (
            lambda a: np.zeros(
                len(a), [("op", "i8"), ("side", "i8"), ("id", "i8"), ("price", "i8"), ("quantity", "i8")]
            ),
            "dtype",
        ),
        (lambda a: np.stack([a, a]), "one-dimensional"),
        (lambda a: np.concatenate([a, a])[::2], "C-contiguous"),
        (lambda a: np.frombuffer(b"\0" + a.tobytes(), np.uint8)[1:].view(COMMAND_DTYPE), "aligned"),
    ],
)
def test_bad_arrays_raise_and_change_nothing(engine_backend, bad, message):
    e = engine_backend.MatchingEngine([BTC])
    e.execute_array(rows_of([(LIMIT, 1, SELL, 100, 5)]))
    before = e.snapshot()
    with pytest.raises(InvalidOrderError, match=message):
        e.execute_array(bad(rows_of([(LIMIT, 2, BUY, 100, 5), (LIMIT, 3, BUY, 90, 5)])))
    assert e.snapshot() == before


def test_unknown_symbol(engine_backend):
    e = engine_backend.MatchingEngine([BTC, Instrument("ETH/USDT", "0.01", "0.01")])
    with pytest.raises(UnknownSymbolError):
        e.execute_array(rows_of([(LIMIT, 1, SELL, 100, 5)]))
    r = e.execute_array(rows_of([(LIMIT, 1, SELL, 100, 5)]), symbol="ETH/USDT")
    assert r.statuses.tolist() == [code(OrderStatus.OPEN)] and len(e.book("ETH/USDT")) == 1


def test_a_book_with_an_id_that_is_not_an_int64_is_refused(engine_backend):
    e = engine_backend.MatchingEngine([BTC])
    e.submit_raw("abc", "SELL", 100, 5)
    before = e.snapshot()
    with pytest.raises(InvalidOrderError, match="int64 id"):
        e.execute_array(rows_of([(LIMIT, 2, BUY, 100, 5)]))
    assert e.snapshot() == before
    e.cancel_raw(None, "abc")
    e.submit_raw(2**63, "SELL", 100, 5)
    with pytest.raises(InvalidOrderError, match="int64 id"):
        e.execute_array(rows_of([(LIMIT, 2, BUY, 100, 5)]))


def test_orders_placed_with_owners_trade_through_arrays(engine_backend):
    e = engine_backend.MatchingEngine([WIDE])
    e.submit_raw(5, "SELL", 100, 5, owner="alice")
    r = e.execute_array(rows_of([(LIMIT, 6, BUY, 100, 2), (AMEND, 5, 0, 0, 4), (CANCEL, 5, 0, 0, 0)]))
    assert r.statuses.tolist() == [
        code(OrderStatus.FILLED),
        code(OrderStatus.PARTIALLY_FILLED),
        code(OrderStatus.CANCELLED),
    ]
    assert r.lots.tolist() == [2, 2, 2]
    assert r.trades.tolist() == [(1, 5, 6, 100, 2, 1)]


def test_subscribers_still_get_one_update_per_command(engine_backend):
    e = engine_backend.MatchingEngine([BTC])
    updates = []
    e.subscribe(updates.append)
    r = e.execute_array(rows_of([(LIMIT, 1, SELL, 100, 5), (LIMIT, 2, BUY, 100, 2), (CANCEL, 1, 0, 0, 0)]))
    assert r.statuses.tolist() == [code(OrderStatus.OPEN), code(OrderStatus.FILLED), code(OrderStatus.CANCELLED)]
    assert r.trades.tolist() == [(1, 1, 2, 100, 2, 1)]
    assert [[(d.price_ticks, d.quantity_lots) for d in u.deltas] for u in updates] == [
        [(100, 5)],
        [(100, 3)],
        [(100, 0)],
    ]


def test_the_core_imports_without_numpy():
    code_ = (
        "import sys; sys.modules['numpy'] = None\n"
        "import tradebook\n"
        "e = tradebook.MatchingEngine([tradebook.Instrument('BTC/USDT', '0.01', '0.001')])\n"
        "assert e.execute_batch([(0, 1, 1, 100, 5)]).statuses.tolist() == [1]\n"
        "try:\n"
        "    tradebook.COMMAND_DTYPE\n"
        "except ImportError as exc:\n"
        "    assert 'numpy' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('COMMAND_DTYPE without numpy')\n"
    )
    subprocess.run([sys.executable, "-c", code_], check=True)


def _run_examples(text: str, globs: dict, name: str) -> None:
    import doctest

    test = doctest.DocTestParser().get_doctest(text, globs, name, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert test.examples and runner.failures == 0, f"{runner.failures} example(s) failed in {name}"


def test_the_examples_run_on_each_backend(engine_backend):
    """The execute_array docstring and the engine guide's array example, against this backend."""
    from pathlib import Path

    from tradebook import STATUS_CODES, BatchOp
    from tradebook._engine_py import MatchingEngine as Pure

    globs = {"MatchingEngine": engine_backend.MatchingEngine, "Instrument": Instrument}
    _run_examples(Pure.execute_array.__doc__ or "", dict(globs), "execute_array")
    guide = (Path(__file__).parents[1] / "docs" / "engine.md").read_text().split("### Arrays", 1)[1]
    globs.update(btc=BTC, BatchOp=BatchOp, STATUS_CODES=STATUS_CODES)
    _run_examples(guide.split("\n## ", 1)[0], globs, "docs/engine.md#arrays")


def test_another_books_commands_meanwhile_make_their_own_trades(engine_backend):
    """An array run on one book must not capture the trades (or ids) of a command on another book."""
    import threading

    eth = Instrument("ETH/USDT", "0.01", "0.001", max_quantity="100")  # limits: Python calls in the loop
    e = engine_backend.MatchingEngine([BTC, eth])
    stop = threading.Event()
    errors: list[str] = []

    def arrays() -> None:
        oid = 1
        while not stop.is_set():
            rows = rows_of([(LIMIT, oid + k, k % 2, 10_000, 5) for k in range(2_000)])
            e.execute_array(rows, symbol="ETH/USDT")
            oid += 2_000

    def singles() -> None:
        for oid in range(1, 3_000):
            e.submit_raw(10**9 + 2 * oid, "SELL", 10_000, 1, symbol="BTC/USDT")
            report = e.submit_raw(10**9 + 2 * oid + 1, "BUY", 10_000, 1, symbol="BTC/USDT")
            if [t.maker_order_id for t in report.trades] != [10**9 + 2 * oid]:
                errors.append(f"order {oid}: trades {report.trades}")

    worker = threading.Thread(target=arrays)
    worker.start()
    try:
        singles()
    finally:
        stop.set()
        worker.join()
    assert not errors, errors[:3]
    assert len(e.book("BTC/USDT")) == 0
    e.book("ETH/USDT")._check()
