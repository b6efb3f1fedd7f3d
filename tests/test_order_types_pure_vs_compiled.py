"""Seeded differential run of the added order types: the pure and the compiled engine, same stream.

The stream mixes every order type: LIMIT (GTC, IOC, FOK, GTD, post-only,
icebergs with ``display_quantity``), MARKET by quantity and by
``quote_quantity``, STOP, STOP_LIMIT and TRAILING_STOP (any time in force, GTD
included), owners and self-trade modes, wrong field combinations, reused ids,
cancels (waiting stops included), amends and ``advance_time`` (sometimes
backwards), through the Decimal API and the raw API (``submit_raw`` with
``stop_price``/``trailing_offset``/``display``/``expire_at``/``quote``). Prices
random-walk around a mid and stop prices sit a few ticks either side of it, so
stops wait, trigger and cascade. Every outcome must be identical on both
engines: the report (status, type, fills, quantity, sequence, stop price,
visible size, every trade field, STP cancellations) and the ``triggered``
reports of the cascade, recursively; the orders ``advance_time`` expired; or
the error class. Their market-data updates must be equal field by field, and
periodically (and at the end) their snapshots, depth, top of book, last trade
price, time and trade-id counter. Half way through, both engines are replaced
by copies restored from a JSON snapshot (the waiting stops, trailing
references, hidden iceberg quantity, GTD expiries, time and last price must
all survive it); the second half runs without market-data subscribers.

A 20,000-command run (5,000 in the quick tier) is part of every test run. The
long run is marked ``slow``: 1,000,000 commands with ``TRADEBOOK_TEST_TIER=full``
(as CI runs it), 100,000 by default::

    TRADEBOOK_TEST_TIER=full python -m pytest -m slow tests/test_order_types_pure_vs_compiled.py

(pick another stream with ``TRADEBOOK_DIFF_SEED=<int>``.)
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from _backends import available_backends
from _helpers import ALL, tier
from models.engine import check_books, trade_key
from tradebook import Instrument, TradebookError

ACME = Instrument("ACME/USD", "1", "1")
BTC = Instrument("BTC/USDT", "0.01", "0.001", min_quantity="0.002")
INSTRUMENTS = [ACME, BTC]
BY_SYMBOL = {inst.symbol: inst for inst in INSTRUMENTS}
MID = {"ACME/USD": 1000, "BTC/USDT": 3_000_000}
OWNERS = [None, None, None, 1, 2, 3, "x", "y"]
MODES = [None, None, None, "NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT"]
SEED = int(os.environ.get("TRADEBOOK_DIFF_SEED", "20240612"))

#: wrong field combinations: changes applied to an otherwise valid LIMIT or MARKET order's fields
WRONG = [
    {"stop": 1000},  # stop_price on a LIMIT
    {"tif": "IOC", "display": 1},  # display on an IOC
    {"tif": "GTD"},  # GTD without expire_at
    {"expire_at": 5},  # expire_at without GTD
    {"trail": 2},  # trailing_offset on a LIMIT
    {"type": "STOP"},  # a stop without stop_price (and with a price)
    {"type": "TRAILING_STOP", "ticks": None},  # no trailing_offset
    {"type": "STOP", "ticks": None, "stop": 0},  # a stop price <= 0
    {"type": "TRAILING_STOP", "ticks": None, "trail": -1},
    {"type": "MARKET", "ticks": None, "quote": 100},  # quote with a quantity
    {"type": "MARKET", "ticks": None, "lots": None},  # neither quantity nor quote
    {"type": "MARKET", "ticks": None, "lots": None, "quote": 100, "tif": "FOK"},
    {"type": "MARKET", "ticks": None, "display": 1},
    {"type": "STOP_LIMIT", "stop": 1000, "display": 1},
    {"type": "STOP_LIMIT", "stop": 1000, "post_only": True},
    {"lots": None, "quote": 100},  # quote on a LIMIT
    {"display": 0},
]


def _engines() -> dict[str, Any]:
    backends = {name: b for name, b in available_backends().items() if b.MatchingEngine is not None}
    if "cython" not in backends:
        pytest.skip("the compiled engine is not available: nothing to compare the pure one with")
    return backends


def _dec(units: Any, step: Decimal) -> Decimal | None:
    return None if units is None else units * step


def _key(report: Any) -> tuple:
    """Everything a report says, its cascade's reports included (recursively)."""
    o = report.order
    return (
        report.status,
        o.id,
        o.type,
        o.filled_lots,
        o.quantity_lots,
        o.price_ticks,
        o.sequence,
        o.stop_price,
        o.visible_quantity,
        [trade_key(t) for t in report.trades],
        [(m.id, m.status, m.quantity_lots, m.filled_lots) for m in report.cancelled],
        [_key(r) for r in report.triggered],
    )


def _update_key(update: Any) -> tuple:
    """A market-data update, field by field (trades by every field)."""
    return tuple(
        (name, [trade_key(t) for t in value] if name == "trades" else value) for name, value in update._asdict().items()
    )


def _state(engine: Any) -> dict[str, Any]:
    """What a user can read of the whole engine besides its snapshot."""
    out: dict[str, Any] = {"time": engine.time, "next_trade_id": engine.next_trade_id}
    for symbol in engine.symbols:
        book = engine.book(symbol)
        depth = book.depth(ALL)
        out[symbol] = (
            engine.last_trade_price(symbol),
            engine.top_of_book_raw(symbol),
            [tuple(x) for x in depth.bids],
            [tuple(x) for x in depth.asks],
            len(book),
        )
    return out


class Stream:
    """A seeded command stream over every order type; prices random-walk around a mid."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.mid = dict(MID)
        self.time = 0
        self.next_id = 1
        self.recent: list[tuple[str, Any]] = []  # (symbol, id) of recent orders that may rest or wait

    def _fresh(self, symbol: str, may_stay: bool) -> Any:
        self.next_id += 1
        oid = self.next_id if self.next_id % 4 else f"s{self.next_id}"
        if may_stay or self.rng.random() < 0.1:  # cancels and amends mostly aim at orders that may be live
            self.recent.append((symbol, oid))
            if len(self.recent) > 300:
                del self.recent[:150]
        return oid

    def _lots(self, symbol: str) -> int:
        rng = self.rng
        return rng.choice((1, 2, 3, 5, 8, 13, 40)) if symbol == "ACME/USD" else rng.randint(1, 30)

    def _order(self, symbol: str, side: str, otype: str, ticks: int | None, lots: int | None, **kw: Any) -> tuple:
        """A submit command: ``(api, symbol, id, side, type, ticks, lots, tif, owner, stp, post_only, stop,
        trail, display, expire_at, quote, half)``; ``quote`` in ticks x lots, ``half`` adds half of that unit."""
        rng = self.rng
        fields = {
            "tif": "GTC",
            "owner": rng.choice(OWNERS),
            "stp": rng.choice(MODES),
            "post_only": False,
            "stop": None,
            "trail": None,
            "display": None,
            "expire_at": None,
            "quote": None,
            "half": False,
            "ticks": ticks,
            "lots": lots,
            "type": otype,
            **kw,
        }
        if fields["tif"] == "GTD" and fields["expire_at"] is None:
            fields["expire_at"] = self.time + rng.randint(-1, 30)
        f = fields
        raw = rng.random() < 0.3 and fields["stp"] is None and not fields["post_only"] and not fields["half"]
        may_stay = f["tif"] in ("GTC", "GTD") and (otype != "MARKET" or rng.random() < 0.1)
        oid = self._fresh(symbol, may_stay)
        if rng.random() < 0.02 and self.recent:  # a reused id: a duplicate if it still rests or waits
            symbol, oid = rng.choice(self.recent)
        return (
            "raw" if raw else "decimal",
            symbol,
            oid,
            side,
            f["type"],
            f["ticks"],
            f["lots"],
            f["tif"],
            f["owner"],
            f["stp"],
            f["post_only"],
            f["stop"],
            f["trail"],
            f["display"],
            f["expire_at"],
            f["quote"],
            f["half"],
        )

    def command(self) -> tuple[str, tuple]:
        rng = self.rng
        symbol = "ACME/USD" if rng.random() < 0.7 else "BTC/USDT"
        if rng.random() < 0.01:
            self.mid[symbol] += rng.choice((-3, -1, 1, 3))
        mid = self.mid[symbol]
        side = "BUY" if rng.random() < 0.5 else "SELL"
        sign = 1 if side == "BUY" else -1
        roll = rng.random()
        gtd = rng.random() < 0.15
        if roll < 0.45:
            ticks = mid + sign * rng.randint(-6, 2)
            lots = self._lots(symbol)
            tif = "GTD" if gtd else rng.choice(("GTC", "GTC", "GTC", "IOC", "FOK"))
            kw: dict[str, Any] = {"tif": tif}
            if tif in ("GTC", "GTD") and rng.random() < 0.25:  # an iceberg
                lots = max(lots, rng.randint(2, 40))
                kw["display"] = rng.randint(1, max(1, lots // 3))
            if tif == "GTC" and rng.random() < 0.1:
                kw["post_only"] = True
            return "submit", self._order(symbol, side, "LIMIT", ticks, lots, **kw)
        if roll < 0.48:
            tif = rng.choice(("GTC", "IOC", "FOK"))
            return "submit", self._order(symbol, side, "MARKET", None, rng.randint(1, 20), tif=tif)
        if roll < 0.51:
            per_lot = mid  # quote units (ticks x lots) of one lot at the mid
            quote = rng.randint(per_lot // 2, per_lot * 12)
            tif = rng.choice(("GTC", "IOC"))
            half = rng.random() < 0.2
            return "submit", self._order(symbol, side, "MARKET", None, None, tif=tif, quote=quote, half=half)
        if roll < 0.62:
            otype = rng.choice(("STOP", "STOP_LIMIT", "TRAILING_STOP"))
            tif = "GTD" if gtd else rng.choice(("GTC", "GTC", "GTC", "IOC", "FOK"))
            kw = {"tif": tif}
            ticks = None
            if otype == "TRAILING_STOP":
                kw["trail"] = rng.randint(1, 6)
            else:
                kw["stop"] = mid + rng.randint(-8, 8)
            if otype == "STOP_LIMIT":
                ticks = kw["stop"] + sign * rng.randint(-2, 3)
            return "submit", self._order(symbol, side, otype, ticks, self._lots(symbol), **kw)
        if roll < 0.635:
            wrong = dict(rng.choice(WRONG))
            if wrong.get("stop"):
                wrong["stop"] = mid
            fields = {"ticks": mid - sign * 5, "lots": 3, "type": "LIMIT", **wrong}
            otype, ticks, lots = fields.pop("type"), fields.pop("ticks"), fields.pop("lots")
            return "submit", self._order(symbol, side, otype, ticks, lots, **fields)
        if roll < 0.68:
            step = rng.choice((0, 1, 1, 1, 2, 3, 5))
            if rng.random() < 0.03:
                return "advance_time", (self.time - 1,)  # backwards: ValueError
            self.time += step
            return "advance_time", (self.time,)
        if not self.recent:
            return "cancel", (symbol, 0, rng.random() < 0.5)
        if rng.random() < 0.7:  # mostly one of the latest: more of them still rest or wait
            sym, oid = self.recent[-rng.randint(1, min(len(self.recent), 30))]
        else:
            sym, oid = self.recent[rng.randrange(len(self.recent))]
        if roll < 0.83:
            return "cancel", (sym, oid, rng.random() < 0.5)
        if rng.random() < 0.05:
            sym = "NOPE/USD"
        m = self.mid.get(sym, 1000)
        lots = rng.choice((None, rng.randint(1, 40)))
        ticks = None if lots is not None and rng.random() < 0.5 else m + rng.randint(-5, 5)
        return "amend", (sym, oid, lots, ticks, rng.random() < 0.3)


def _apply(backend: Any, engine: Any, command: str, args: tuple) -> Any:
    if command == "submit":
        api, symbol, oid, side, otype, ticks, lots, tif, owner, stp, post_only = args[:11]
        stop, trail, display, expire_at, quote, half = args[11:]
        if api == "raw":
            report = engine.submit_raw_typed(
                oid,
                side,
                ticks,
                lots,
                symbol=symbol,
                time_in_force=tif,
                owner=owner,
                order_type=otype,
                stop_price=stop,
                trailing_offset=trail,
                display=display,
                expire_at=expire_at,
                quote=quote,
            )
            return _key(report)
        inst = BY_SYMBOL[symbol]
        tick, lot = inst.tick_size, inst.lot_size
        amount = None
        if quote is not None:
            amount = quote * tick * lot + (tick * lot / 2 if half else 0)
        order = backend.Order(
            oid,
            side,
            _dec(ticks, tick),
            _dec(lots, lot),
            symbol=symbol,
            owner=owner,
            type=otype,
            time_in_force=tif,
            post_only=post_only,
            self_trade_prevention=stp,
            stop_price=_dec(stop, tick),
            trailing_offset=_dec(trail, tick),
            display_quantity=_dec(display, lot),
            expire_at=expire_at,
            quote_quantity=amount,
        )
        return _key(engine.submit(order))
    if command == "cancel":
        symbol, oid, raw = args
        if raw:
            return engine.cancel_raw(symbol, oid)
        o = engine.cancel(symbol, oid)
        return (o.id, o.status, o.type, o.quantity_lots, o.filled_lots)
    if command == "advance_time":
        (now,) = args
        return [(o.id, o.symbol, o.status, o.type, o.quantity_lots, o.filled_lots) for o in engine.advance_time(now)]
    symbol, oid, lots, ticks, decimal = args
    if decimal and symbol in engine.symbols:
        inst = engine.book(symbol).instrument
        report = engine.amend(symbol, oid, quantity=_dec(lots, inst.lot_size), price=_dec(ticks, inst.tick_size))
    else:
        report = engine.amend_raw(symbol, oid, quantity=lots, price=ticks)
    return _key(report)


def _count(counts: Counter, key: tuple) -> None:
    """Tally what a submit or amend report shows (for the stream's coverage assertions)."""
    status, trades, triggered = key[0], key[9], key[11]
    counts["trades"] += len(trades)
    counts["stp_cancelled"] += len(key[10])
    counts[f"status {status.value}"] += 1
    makers = [t[4] for t in trades]
    if len(makers) != len(set(makers)):
        counts["same maker twice (iceberg refresh)"] += 1
    counts["triggered"] += len(triggered)
    for inner in triggered:
        counts["triggered trades"] += len(inner[9])
        counts[f"triggered {inner[0].value}"] += 1


def run_differential(n_commands: int, seed: int = SEED, check_every: int = 5000) -> Counter:
    """Drive both engines with ``n_commands`` seeded commands; assert they never differ. Returns counts."""
    backends = _engines()
    names = ["python", "cython"]
    engines = {n: backends[n].MatchingEngine(INSTRUMENTS, self_trade_prevention="CANCEL_MAKER") for n in names}
    updates: dict[str, list[Any]] = {n: [] for n in names}
    for n in names:
        engines[n].subscribe(updates[n].append)
    stream = Stream(seed)
    counts: Counter = Counter()
    for step in range(n_commands):
        command, args = stream.command()
        outcomes = []
        for n in names:
            try:
                outcomes.append(("ok", _apply(backends[n], engines[n], command, args)))
            except (TradebookError, ValueError) as exc:
                outcomes.append(("error", type(exc).__name__))
        py, cy = outcomes
        assert py == cy, f"step {step}: {command}{args}: python {py!r} != cython {cy!r}"
        if py[0] == "error":
            counts["errors"] += 1
        elif command in ("submit", "amend"):
            _count(counts, py[1])
        elif command == "advance_time":
            counts["expired by time"] += len(py[1])
        py_updates = [_update_key(u) for u in updates["python"]]
        cy_updates = [_update_key(u) for u in updates["cython"]]
        assert py_updates == cy_updates, f"step {step}: market data differs"
        updates["python"].clear()
        updates["cython"].clear()
        if (step + 1) % check_every == 0 or step + 1 == n_commands:
            snaps = {n: engines[n].snapshot() for n in names}
            assert snaps["python"] == snaps["cython"], f"snapshots differ after step {step}"
            assert _state(engines["python"]) == _state(engines["cython"]), f"state differs after step {step}"
            for engine in engines.values():
                check_books(engine)
        if step == n_commands // 2:
            data = json.loads(json.dumps(engines["python"].snapshot()))
            engines = {n: backends[n].MatchingEngine.from_snapshot(data) for n in names}
            for n in names:  # no subscribers from here on: the engines' quiet fast paths run too
                assert engines[n].snapshot() == data
    return counts


def _assert_coverage(counts: Counter, commands: int) -> None:
    """The stream really exercises the new order types (loose floors, scaled to its length)."""
    per = commands / 10_000
    assert counts["trades"] > 1_000 * per, counts
    assert counts["status UNTRIGGERED"] > 300 * per, counts
    assert counts["triggered"] > 100 * per, counts
    assert counts["expired by time"] > 20 * per, counts
    assert counts["same maker twice (iceberg refresh)"] > 5 * per, counts
    assert counts["errors"] > 100 * per, counts


def test_backends_agree_on_seeded_order_type_commands():
    commands = tier(20_000, 5_000)
    counts = run_differential(commands, check_every=1000)
    _assert_coverage(counts, commands)


@pytest.mark.slow
def test_backends_agree_on_1m_seeded_order_type_commands():
    """One million commands in the full tier (100,000 in the quick one); see the module docstring."""
    commands = tier(1_000_000, 100_000)
    counts = run_differential(commands, check_every=50_000)
    _assert_coverage(counts, commands)


def test_the_order_type_stream_is_deterministic():
    a, b = Stream(7), Stream(7)
    assert [a.command() for _ in range(2000)] == [b.command() for _ in range(2000)]
    stream = Stream(8)
    commands = [stream.command() for _ in range(5000)]
    kinds = Counter(args[4] for command, args in commands if command == "submit")
    assert {"LIMIT", "MARKET", "STOP", "STOP_LIMIT", "TRAILING_STOP"} <= set(kinds), kinds
