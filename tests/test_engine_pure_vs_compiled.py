"""Seeded differential run: the pure and the compiled engine get the same long command stream.

Every command (raw and Decimal submits of every kind, owners and self-trade
modes, cancels and amends, many of them failing) goes to both engines; their
outcomes (report status, fills, every trade field, STP cancellations, or the
error class), their market-data updates, periodic snapshots and the final
snapshot must be identical. Half way through, both engines are replaced by
copies restored from a JSON snapshot, which must change nothing either; the
second half runs without market-data subscribers, so the engines' quiet fast
paths are compared too.

The 20,000-command run is part of every test run. The long run is marked ``slow``:
1,000,000 commands with ``TRADEBOOK_TEST_TIER=full`` (as CI runs it), 200,000 by
default::

    TRADEBOOK_TEST_TIER=full python -m pytest -m slow tests/test_engine_pure_vs_compiled.py

(``-m 'not slow'`` deselects it; pick another stream with ``TRADEBOOK_DIFF_SEED=<int>``.)
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

from _backends import available_backends
from _helpers import tier
from models.engine import check_books, trade_key
from tradebook import Instrument, TradebookError

ACME = Instrument("ACME/USD", "1", "1")
BTC = Instrument("BTC/USDT", "0.01", "0.001", min_quantity="0.002")
INSTRUMENTS = [ACME, BTC]
MID = {"ACME/USD": 1000, "BTC/USDT": 3_000_000}
OWNERS = [None, None, None, 1, 2, 3, "x", "y"]
MODES = [None, None, None, "NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT"]
SEED = int(os.environ.get("TRADEBOOK_DIFF_SEED", "20240611"))


def _engines() -> dict[str, Any]:
    backends = {name: b for name, b in available_backends().items() if b.MatchingEngine is not None}
    if "cython" not in backends:
        pytest.skip("the compiled engine is not available: nothing to compare the pure one with")
    return backends


def _key(report: Any) -> tuple:
    return (
        report.status,
        report.order.filled_lots,
        report.order.quantity_lots,
        report.order.sequence,
        [trade_key(t) for t in report.trades],
        [(o.id, o.status, o.quantity_lots, o.filled_lots) for o in report.cancelled],
    )


class Stream:
    """A seeded command stream: prices random-walk around a mid, ids are mostly fresh, a few reused."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.mid = dict(MID)
        self.next_id = 1
        self.recent: list[tuple[str, Any]] = []  # (symbol, id) of recent submits, for cancels and amends

    def _fresh(self, symbol: str) -> Any:
        self.next_id += 1
        oid = self.next_id if self.next_id % 4 else f"s{self.next_id}"
        self.recent.append((symbol, oid))
        if len(self.recent) > 400:
            del self.recent[:200]
        return oid

    def command(self) -> tuple[str, tuple]:
        rng = self.rng
        symbol = "ACME/USD" if rng.random() < 0.7 else "BTC/USDT"
        if rng.random() < 0.01:
            self.mid[symbol] += rng.choice((-3, -1, 1, 3))
        mid = self.mid[symbol]
        side = "BUY" if rng.random() < 0.5 else "SELL"
        sign = 1 if side == "BUY" else -1
        roll = rng.random()
        if roll < 0.50:
            ticks = mid + sign * rng.randint(-6, 2)
            lots = rng.choice((1, 2, 3, 5, 8, 13, 40)) if symbol == "ACME/USD" else rng.randint(1, 30)
            tif = rng.choice(("GTC", "GTC", "GTC", "IOC", "FOK"))
            return "submit_raw", (self._fresh(symbol), side, ticks, lots, symbol, tif, rng.choice(OWNERS))
        if roll < 0.54:
            lots = rng.randint(1, 60)
            tif = rng.choice(("GTC", "IOC", "FOK"))
            return "submit_raw", (self._fresh(symbol), side, None, lots, symbol, tif, rng.choice(OWNERS))
        if roll < 0.64:
            market = rng.random() < 0.1
            ticks = None if market else mid + sign * rng.randint(-6, 2)
            tif = "GTC" if rng.random() < 0.6 else rng.choice(("IOC", "FOK"))
            post_only = not market and tif == "GTC" and rng.random() < 0.25
            lots = rng.randint(1, 25)
            owner, stp = rng.choice(OWNERS), rng.choice(MODES)
            return "submit", (self._fresh(symbol), side, ticks, lots, symbol, tif, owner, post_only, stp)
        if roll < 0.66 and self.recent:  # a reused id: a duplicate if it still rests
            sym, oid = rng.choice(self.recent)
            return "submit_raw", (oid, side, self.mid[sym] - sign * 8, 1, sym, "GTC", None)
        if not self.recent:
            return "cancel", (symbol, 0, rng.random() < 0.5)
        sym, oid = self.recent[rng.randrange(len(self.recent))]
        if roll < 0.84:
            return "cancel", (sym, oid, rng.random() < 0.5)
        if rng.random() < 0.05:
            sym = "NOPE/USD"
        m = self.mid.get(sym, 1000)
        lots = rng.choice((None, rng.randint(1, 40)))
        ticks = None if lots is not None and rng.random() < 0.5 else m + rng.randint(-5, 5)
        return "amend", (sym, oid, lots, ticks, rng.random() < 0.3)


def _apply(backend: Any, engine: Any, command: str, args: tuple) -> Any:
    if command == "submit_raw":
        oid, side, ticks, lots, symbol, tif, owner = args
        return _key(engine.submit_raw(oid, side, ticks, lots, symbol=symbol, time_in_force=tif, owner=owner))
    if command == "submit":
        oid, side, ticks, lots, symbol, tif, owner, post_only, stp = args
        inst = engine.book(symbol).instrument
        order = backend.Order(
            oid,
            side,
            None if ticks is None else ticks * inst.tick_size,
            lots * inst.lot_size,
            symbol=symbol,
            owner=owner,
            type="MARKET" if ticks is None else "LIMIT",
            time_in_force=tif,
            post_only=post_only,
            self_trade_prevention=stp,
        )
        return _key(engine.submit(order))
    if command == "cancel":
        symbol, oid, raw = args
        if raw:
            return engine.cancel_raw(symbol, oid)
        o = engine.cancel(symbol, oid)
        return (o.id, o.status, o.quantity_lots, o.filled_lots)
    symbol, oid, lots, ticks, decimal = args
    if decimal and symbol in engine.symbols:
        inst = engine.book(symbol).instrument
        report = engine.amend(
            symbol,
            oid,
            quantity=None if lots is None else lots * inst.lot_size,
            price=None if ticks is None else ticks * inst.tick_size,
        )
    else:
        report = engine.amend_raw(symbol, oid, quantity=lots, price=ticks)
    return _key(report)


def run_differential(n_commands: int, seed: int = SEED, check_every: int = 5000) -> dict[str, int]:
    """Drive both engines with ``n_commands`` seeded commands; assert they never differ. Returns counts."""
    backends = _engines()
    names = ["python", "cython"]
    engines = {n: backends[n].MatchingEngine(INSTRUMENTS, self_trade_prevention="CANCEL_MAKER") for n in names}
    updates: dict[str, list[Any]] = {n: [] for n in names}
    for n in names:
        engines[n].subscribe(updates[n].append)
    stream = Stream(seed)
    counts = {"trades": 0, "errors": 0, "stp_cancelled": 0}
    for step in range(n_commands):
        command, args = stream.command()
        outcomes = []
        for n in names:
            try:
                outcomes.append(("ok", _apply(backends[n], engines[n], command, args)))
            except TradebookError as exc:
                outcomes.append(("error", type(exc).__name__))
        py, cy = outcomes
        assert py == cy, f"step {step}: {command}{args}: python {py!r} != cython {cy!r}"
        if py[0] == "error":
            counts["errors"] += 1
        elif command != "cancel":
            counts["trades"] += len(py[1][4])
            counts["stp_cancelled"] += len(py[1][5])
        py_updates = [(u.symbol, u.deltas, [trade_key(t) for t in u.trades]) for u in updates["python"]]
        cy_updates = [(u.symbol, u.deltas, [trade_key(t) for t in u.trades]) for u in updates["cython"]]
        assert py_updates == cy_updates, f"step {step}: market data differs"
        updates["python"].clear()
        updates["cython"].clear()
        if (step + 1) % check_every == 0 or step + 1 == n_commands:
            snaps = {n: engines[n].snapshot() for n in names}
            assert snaps["python"] == snaps["cython"], f"snapshots differ after step {step}"
            for engine in engines.values():
                check_books(engine)
        if step == n_commands // 2:
            data = json.loads(json.dumps(engines["python"].snapshot()))
            engines = {n: backends[n].MatchingEngine.from_snapshot(data) for n in names}
            for n in names:  # no subscribers from here on: the engines' quiet fast paths run too
                assert engines[n].snapshot() == data
    return counts


def test_backends_agree_on_20k_seeded_commands():
    counts = run_differential(20_000)
    assert counts["trades"] > 2_000 and counts["errors"] > 500 and counts["stp_cancelled"] > 50, counts


@pytest.mark.slow
def test_backends_agree_on_1m_seeded_commands():
    """One million commands in the full tier (200,000 in the quick one); see the module docstring."""
    commands = tier(1_000_000, 200_000)
    counts = run_differential(commands, check_every=50_000)
    assert counts["trades"] > commands // 10, counts


def test_the_stream_is_deterministic():
    a, b = Stream(7), Stream(7)
    assert [a.command() for _ in range(500)] == [b.command() for _ in range(500)]
