"""Both engine backends against the reference matcher, under the same random commands.

A hypothesis ``RuleBasedStateMachine`` sends every command (limit GTC/IOC/FOK,
market, post-only, owners from a small pool incl. None, per-order and default
self-trade prevention, amends, cancels, raw and Decimal API, some invalid) to
each available engine backend and to ``models.engine.RefEngine``. Every
engine must give exactly the reference's outcome (report: status, quantities,
sequence, every trade field incl. ids, cancelled makers; or the same error
class), and after every command the engines' state (snapshot rows, sequence and
trade counters, top of book) must equal the reference's. Invariants: no book
is crossed, ``_check()`` passes, and each command's trade volume equals the
fills it gave the taker and the makers.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from _backends import available_backends
from _helpers import tier
from models.engine import RefEngine, check_books, engine_state, report_key, snapshot_rows
from tradebook import Instrument

ACME = Instrument("ACME/USD", "1", "1")
LIM = Instrument(
    "LIM/USD", "0.5", "0.1", min_quantity="0.2", max_quantity="2", min_notional="4", min_price="18.5", max_price="21.5"
)
INSTRUMENTS = {"ACME/USD": ACME, "LIM/USD": LIM}
MID = {"ACME/USD": 100, "LIM/USD": 40}
LOTS = {"ACME/USD": st.integers(1, 8), "LIM/USD": st.integers(1, 22)}

MODES = ["NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT"]
owners = st.sampled_from([None, "a", "a", "b", "b", 1])
order_stp = st.sampled_from([None, None, *MODES])
symbols = st.sampled_from(["ACME/USD", "ACME/USD", "LIM/USD"])
odd_symbols = st.sampled_from([None, "NOPE/USD"])
sides = st.sampled_from(["BUY", "SELL"])
apis = st.sampled_from(["raw", "decimal"])


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except Exception as exc:
        return "error", type(exc)


class EngineMachine(RuleBasedStateMachine):
    backends: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.ref = RefEngine(list(INSTRUMENTS.values()))
        self.engines: dict[str, Any] = {}
        self.before: dict[str, dict[str, Any]] = {}
        self.counter = 0

    @initialize(
        default=st.sampled_from(MODES),
        seed=st.lists(st.tuples(st.booleans(), st.integers(0, 4), st.integers(1, 6), owners), max_size=14),
    )
    def start(self, default, seed):
        """A fresh engine with the given default STP mode, seeded with resting orders around 100."""
        self.ref = RefEngine(list(INSTRUMENTS.values()), default)
        self.engines = {
            name: b.MatchingEngine(list(INSTRUMENTS.values()), self_trade_prevention=default)
            for name, b in self.backends.items()
        }
        for sell, away, lots, owner in seed:
            oid = self._fresh_id()
            ticks = 100 + away if sell else 100 - away
            side = "SELL" if sell else "BUY"
            expected = self.ref.submit("ACME/USD", oid, side, ticks, lots, owner=owner)
            self._run(
                expected,
                lambda n, b, e, a=(oid, side, ticks, lots, owner): e.submit_raw(*a[:4], owner=a[4], symbol="ACME/USD"),
            )
        self._remember()

    # -- helpers -------------------------------------------------------------------------------

    def _remember(self) -> None:
        """Each engine's resting orders (id -> (lots, filled)) per symbol, for the conservation check."""
        self.before = {}
        for name, engine in self.engines.items():
            data = engine.snapshot()
            self.before[name] = {
                b["instrument"]["symbol"]: {(r[0]): (r[3], r[4]) for r in snapshot_rows(b)} for b in data["books"]
            }

    def _fresh_id(self) -> Any:
        self.counter += 1
        return self.counter if self.counter % 3 else f"o{self.counter}"

    def _price(self, data, symbol: str, side: str) -> int:
        """A price near the other side's best: about half of them cross it."""
        other = self.ref.books[symbol].side("SELL" if side == "BUY" else "BUY")
        best = other[0].ticks if other else MID[symbol]
        assert best is not None
        offset = data.draw(st.sampled_from([0, 1, -1, 2, 0, -2, 1]), label="aggressiveness")
        return best + offset if side == "BUY" else best - offset

    def _resting_ids(self) -> list[Any]:
        return [o.id for b in self.ref.books.values() for o in b.resting]

    def _run(self, expected: tuple[str, Any], call: Any, key: Any = report_key) -> dict[str, Any]:
        """Run ``call(name, backend, engine)`` on every engine; each outcome must equal ``expected``."""
        results = {}
        for name, engine in self.engines.items():
            kind, value = _outcome(lambda name=name, engine=engine: call(name, self.backends[name], engine))
            got = (kind, key(value) if kind == "ok" else value)
            assert got == expected, f"{name}: {got!r} != reference {expected!r}"
            results[name] = value
        return results

    def _conserve(self, results: dict[str, Any], symbol: str | None, taker_filled_before: int = 0) -> None:
        """A command's trade volume equals the taker's new fills and the makers' new fills."""
        if symbol not in INSTRUMENTS:
            return
        for name, report in results.items():
            volume = sum(t.quantity_lots for t in report.trades)
            assert report.order.filled_lots - taker_filled_before == volume
            after = {
                r[0]: (r[3], r[4])
                for b in self.engines[name].snapshot()["books"]
                if b["instrument"]["symbol"] == symbol
                for r in snapshot_rows(b)
            }
            before = self.before[name][symbol]
            maker_fills = 0
            for maker in {t.maker_order_id for t in report.trades}:
                lots, filled = before[maker]
                maker_fills += (after[maker][1] if maker in after else lots) - filled
            assert maker_fills == volume, f"{name}: makers got {maker_fills}, trades say {volume}"

    # -- commands ----------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        symbol=symbols,
        side=sides,
        market=st.sampled_from([False] * 6 + [True]),
        tif=st.sampled_from(["GTC", "GTC", "GTC", "IOC", "FOK", "FOK"]),
        owner=owners,
        stp=order_stp,
        post_only=st.sampled_from([False] * 5 + [True]),
        api=apis,
        fault=st.sampled_from([None] * 20 + ["duplicate", "duplicate", "symbol"]),
    )
    def submit(self, data, symbol, side, market, tif, owner, stp, post_only, api, fault):
        oid = self._fresh_id()
        ticks = None if market else self._price(data, symbol, side)
        lots = data.draw(LOTS[symbol], label="lots")
        if fault == "duplicate" and self._resting_ids():
            oid = data.draw(st.sampled_from(self._resting_ids()), label="resting id")
        elif fault == "symbol":
            symbol = data.draw(odd_symbols, label="symbol")
        if post_only and (ticks is None or tif != "GTC") and data.draw(st.integers(0, 4), label="keep?"):
            post_only = False  # keep only some of the invalid post-only combinations
        if api == "raw" and (stp is not None or post_only):
            api = "decimal"  # the raw API has no per-order STP or post-only
        inst = INSTRUMENTS.get(symbol, ACME)
        expected = self.ref.submit(symbol, oid, side, ticks, lots, tif=tif, owner=owner, post_only=post_only, stp=stp)

        def call(name, backend, engine):
            if api == "raw":
                return engine.submit_raw(oid, side, ticks, lots, symbol=symbol, time_in_force=tif, owner=owner)
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
            return engine.submit(order)

        results = self._run(expected, call)
        if expected[0] == "ok":
            self._conserve(results, symbol)

    @rule(symbol=symbols, side=sides, away=st.integers(1, 3), lots=st.integers(2, 8), owner=owners)
    def add_liquidity(self, symbol, side, away, lots, owner):
        """A passive GTC order just behind the other side's best (so takers find something)."""
        other = self.ref.books[symbol].side("SELL" if side == "BUY" else "BUY")
        best = other[0].ticks if other else MID[symbol]
        assert best is not None
        ticks = best - away if side == "BUY" else best + away
        oid = self._fresh_id()
        expected = self.ref.submit(symbol, oid, side, ticks, lots, owner=owner)
        self._run(
            expected,
            lambda name, backend, engine: engine.submit_raw(oid, side, ticks, lots, symbol=symbol, owner=owner),
        )

    @precondition(lambda self: self._resting_ids())
    @rule(data=st.data(), api=apis, fault=st.sampled_from([None] * 8 + ["absent", "symbol"]))
    def cancel(self, data, api, fault):
        symbol, oid = self._pick(data)
        if fault == "absent":
            oid = data.draw(st.sampled_from([0, "nope", -5]), label="absent id")
        elif fault == "symbol":
            symbol = data.draw(st.sampled_from([None, "NOPE/USD", *INSTRUMENTS]), label="symbol")
        expected = self.ref.cancel(symbol, oid)
        if api == "raw":
            if expected[0] == "ok":
                expected = ("ok", expected[1][4])
            self._run(expected, lambda name, backend, engine: engine.cancel_raw(symbol, oid), key=lambda v: v)
        else:
            if expected[0] == "ok":
                expected = ("ok", expected[1][:4])
            self._run(
                expected,
                lambda name, backend, engine: engine.cancel(symbol, oid),
                key=lambda o: (o.id, o.status.value, o.quantity_lots, o.filled_lots),
            )

    def _pick(self, data) -> tuple[str, Any]:
        live = [(s, o.id) for s, b in self.ref.books.items() for o in b.resting]
        return data.draw(st.sampled_from(live), label="resting order")

    @precondition(lambda self: self._resting_ids())
    @rule(
        data=st.data(),
        api=apis,
        what=st.sampled_from(["quantity", "price", "both", "both", "nothing", "filled"]),
    )
    def amend(self, data, api, what):
        symbol, oid = self._pick(data)
        order = self.ref.books[symbol].find(oid)
        assert order is not None
        filled, lots_now, ticks_now = order.filled, order.lots, order.ticks
        lots = ticks = None
        if what in ("quantity", "both"):
            lots = data.draw(
                st.sampled_from([filled + 1, max(filled + 1, lots_now - 1), lots_now, lots_now + 1, lots_now + 3]),
                label="lots",
            )
        if what in ("price", "both"):
            ticks = data.draw(st.sampled_from([ticks_now, None]), label="same price?") or self._price(
                data, symbol, order.side
            )
        if what == "filled":
            lots = data.draw(st.sampled_from([filled, max(1, filled - 1)]), label="at most filled")
        inst = INSTRUMENTS[symbol]
        expected = self.ref.amend(symbol, oid, lots, ticks)

        def call(name, backend, engine):
            if api == "raw":
                return engine.amend_raw(symbol, oid, quantity=lots, price=ticks)
            return engine.amend(
                symbol,
                oid,
                quantity=None if lots is None else lots * inst.lot_size,
                price=None if ticks is None else ticks * inst.tick_size,
            )

        results = self._run(expected, call)
        if expected[0] == "ok":
            self._conserve(results, symbol, taker_filled_before=filled)

    @rule(source=st.sampled_from(["python", "cython"]))
    def snapshot_and_restore(self, source):
        """Every engine is replaced by one restored from a JSON copy of one backend's snapshot."""
        if source not in self.engines:
            source = "python"
        data = json.loads(json.dumps(self.engines[source].snapshot()))
        self.engines = {name: b.MatchingEngine.from_snapshot(data) for name, b in self.backends.items()}

    # -- after every step -------------------------------------------------------------------------------

    @invariant()
    def engines_match_the_reference(self):
        expected = self.ref.state()
        for name, engine in self.engines.items():
            check_books(engine)
            assert engine_state(engine) == expected, name
        self._remember()


def test_engines_and_reference_agree():
    backends = {name: b for name, b in available_backends().items() if b.MatchingEngine is not None}
    EngineMachine.backends = backends
    run_state_machine_as_test(
        EngineMachine, settings=settings(settings.default, max_examples=tier(150, 40), stateful_step_count=40)
    )
