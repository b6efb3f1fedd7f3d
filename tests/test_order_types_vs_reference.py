"""The added order types on each engine backend against the reference matcher.

A hypothesis ``RuleBasedStateMachine`` (one run per backend, through the
``engine_backend`` fixture) drives STOP, STOP_LIMIT, TRAILING_STOP, icebergs
(``display_quantity``), GTD orders with ``advance_time``, MARKET orders by
``quote_quantity``, plain LIMIT/MARKET orders with owners and self-trade
prevention, cancels (waiting stops included), amends and wrong field
combinations, all through the Decimal API with every new keyword argument,
against ``models.engine.RefEngine``. Each command must give the reference's
outcome: the report (status, type, price, quantity, fills, sequence, stop price,
visible size), every trade, the STP-cancelled makers and the ``triggered``
reports of the whole cascade; or an error of the reference's class. After every
step each engine's visible state (levels with their orders in FIFO order,
``depth``, ``len(book)``, top of book, last trade price, time, next trade id)
and the live ``Order`` objects of its waiting stops must equal the reference's,
no book may be crossed, and each command's trades must account exactly for the
fills it gave takers and makers. A rule restores an engine from a JSON copy of
its snapshot; from then on the original and the copy both run every command and
both must keep agreeing with the reference.

Where api.md and the order-types spec leave a case open the reference raises
``Unspecified`` and the machine does not send that command (see
``models/engine.py``). The plain tests at the top check the model itself on
small hand-worked cases, so that the machine compares against rules that are
known to hold.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from _helpers import tier
from models.engine import RefEngine, Unspecified, check_books, engine_view, full_report_key
from tradebook import (
    DuplicateOrderError,
    Instrument,
    InvalidOrderError,
    InvalidPriceError,
    OrderNotFoundError,
)

ACME = Instrument("ACME/USD", "1", "1")
LIM = Instrument(
    "LIM/USD", "0.5", "0.1", min_quantity="0.2", max_quantity="2", min_notional="4", min_price="18.5", max_price="21.5"
)
INSTRUMENTS = {"ACME/USD": ACME, "LIM/USD": LIM}
MID = {"ACME/USD": 100, "LIM/USD": 40}
STOP_RANGE = {"ACME/USD": (90, 110), "LIM/USD": (37, 43)}  # LIM's price limits: 18.5 .. 21.5
LOTS = {"ACME/USD": st.integers(1, 8), "LIM/USD": st.integers(1, 22)}

MODES = ["NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT"]
owners = st.sampled_from([None, None, "a", "a", "b", 1])
order_stp = st.sampled_from([None, None, None, *MODES])
symbols = st.sampled_from(["ACME/USD", "ACME/USD", "ACME/USD", "LIM/USD"])
sides = st.sampled_from(["BUY", "SELL"])
KINDS = ["LIMIT"] * 4 + ["ICEBERG"] * 3 + ["MARKET", "QUOTE", "QUOTE"] + ["STOP", "STOP_LIMIT", "TRAILING_STOP"] * 2


# -- the model on hand-worked cases ------------------------------------------------------------------


def _ref() -> RefEngine:
    return RefEngine([ACME], "CANCEL_TAKER")


def _ok(result: tuple[str, Any]) -> Any:
    assert result[0] == "ok", result
    return result[1]


def _trades(report: tuple) -> list[tuple[Any, int, int]]:
    """``[(maker id, price, quantity), ...]`` of a model report's own trades."""
    return [(t[4], t[2], t[3]) for t in report[1]]


def test_model_stop_cascade_order_and_new_sequences():
    """Stops fired by one run go BUY ascending, then SELL descending, ties by acceptance; each gets a new sequence."""
    ref = _ref()
    for i, ticks in enumerate((100, 101, 102, 103), start=1):
        _ok(ref.place(None, f"a{i}", "SELL", ticks, 1))
    _ok(ref.place(None, "b0", "BUY", 99, 5))
    _ok(ref.place(None, "t0", "BUY", 100, 1))  # prints 100: the last price
    accepted = [
        _ok(ref.place(None, "s102", "BUY", None, 1, type="STOP", stop=102)),
        _ok(ref.place(None, "s101", "BUY", None, 1, type="STOP", stop=101)),
        _ok(ref.place(None, "s101b", "BUY", None, 1, type="STOP", stop=101)),
        _ok(ref.place(None, "sell100", "SELL", None, 1, type="STOP", stop=100)),  # last 100 <= 100: met
    ]
    assert [r[0][1] for r in accepted] == ["UNTRIGGERED"] * 3 + ["REJECTED"]
    report = _ok(ref.place(None, "t1", "BUY", 101, 1))  # prints 101: fires s101 and s101b, not s102
    ran = [(r[0][0], r[0][1], _trades(r)) for r in report[3]]
    # s101 (accepted first) runs first and buys 102, which fires s102; s101b then buys 103; s102 finds nothing
    assert ran == [
        ("s101", "FILLED", [("a3", 102, 1)]),
        ("s101b", "FILLED", [("a4", 103, 1)]),
        ("s102", "EXPIRED", []),
    ]
    seqs = [r[0][6] for r in report[3]]
    assert seqs == sorted(seqs) and seqs[0] > report[0][6]
    assert ref.books["ACME/USD"].waiting == [] and ref.books["ACME/USD"].last == 103


def test_model_sell_stop_rejected_when_already_met():
    ref = _ref()
    _ok(ref.place(None, "a", "SELL", 100, 1))
    _ok(ref.place(None, "b", "BUY", 100, 1))
    assert _ok(ref.place(None, "s1", "SELL", None, 1, type="STOP", stop=100))[0][1] == "REJECTED"
    assert _ok(ref.place(None, "s2", "BUY", None, 1, type="STOP", stop=100))[0][1] == "REJECTED"
    waiting = _ok(ref.place(None, "s3", "SELL", None, 1, type="STOP", stop=99))
    assert waiting[0][1] == "UNTRIGGERED" and waiting[0][6] is not None
    assert ref.place(None, "s3", "BUY", 90, 1) == ("error", DuplicateOrderError)
    assert _ok(ref.cancel(None, "s3"))[:2] == ("s3", "CANCELLED")
    assert ref.cancel(None, "s3") == ("error", OrderNotFoundError)


def test_model_trailing_reference_moves_then_triggers():
    """A SELL trailing stop 2 below the highest trade since acceptance; the first trade only sets the reference."""
    ref = _ref()
    rep = _ok(ref.place(None, "ts", "SELL", None, 1, type="TRAILING_STOP", trail=2))
    assert rep[0][1] == "UNTRIGGERED" and rep[0][7] is None  # no trade yet: no reference, no stop price
    _ok(ref.place(None, "b1", "BUY", 90, 5))
    for i, ticks in enumerate((97, 103, 102, 101), start=1):
        _ok(ref.place(None, f"a{i}", "SELL", ticks, 1))
        report = _ok(ref.place(None, f"t{i}", "BUY", ticks, 1))
        if ticks == 97:  # sets the reference (97 - 2 = 95): cannot trigger on the first trade
            assert ref.waiting_rows("ACME/USD")[0][3] == 95
        if ticks == 103:
            assert ref.waiting_rows("ACME/USD")[0][3] == 101
        if ticks == 102:
            assert report[3] == []
    assert [(r[0][0], _trades(r)) for r in report[3]] == [("ts", [("b1", 90, 1)])]
    assert report[3][0][0][7] == 101  # its stop price when it fired


def test_model_trailing_with_last_price_and_buy_side():
    ref = _ref()
    _ok(ref.place(None, "a", "SELL", 100, 3))
    _ok(ref.place(None, "b", "BUY", 100, 1))
    rep = _ok(ref.place(None, "ts", "BUY", None, 1, type="TRAILING_STOP", trail=3))
    assert rep[0][7] == 103
    _ok(ref.place(None, "bid", "BUY", 96, 1))
    _ok(ref.place(None, "s", "SELL", 96, 1))  # prints 96: reference 96, stop 99
    assert ref.waiting_rows("ACME/USD")[0][3] == 99
    report = _ok(ref.place(None, "b2", "BUY", 100, 1))  # prints 100 >= 99: fires
    assert [(r[0][0], r[0][7], _trades(r)) for r in report[3]] == [("ts", 99, [("a", 100, 1)])]


def test_model_iceberg_refreshes_at_the_back_within_the_same_taker():
    ref = _ref()
    _ok(ref.place(None, "ice", "SELL", 100, 5, display=2))
    _ok(ref.place(None, "a", "SELL", 100, 3))
    view = ref.view()["books"]["ACME/USD"]
    assert view["asks"] == [(100, 5, 2, [("ice", 1, 5, 0, 2, "OPEN", "LIMIT"), ("a", 2, 3, 0, 3, "OPEN", "LIMIT")])]
    report = _ok(ref.place(None, "t", "BUY", 100, 7))
    assert _trades(report) == [("ice", 100, 2), ("a", 100, 3), ("ice", 100, 2)]
    (level,) = ref.view()["books"]["ACME/USD"]["asks"]
    assert level == (100, 1, 1, [("ice", 5, 5, 4, 1, "PARTIALLY_FILLED", "LIMIT")])  # two refreshes: seqs 4, 5


def test_model_iceberg_taker_trades_all_then_rests_a_slice_and_fok_sees_hidden():
    ref = _ref()
    _ok(ref.place(None, "a", "SELL", 100, 2))
    rep = _ok(ref.place(None, "ice", "BUY", 100, 10, display=3))
    assert _trades(rep) == [("a", 100, 2)] and rep[0][8] == 3  # visible: a slice of 3 of the 8 left
    assert ref.top("ACME/USD") == (100, 3, None, None)
    fok = _ok(ref.place(None, "f", "SELL", 100, 8, tif="FOK"))  # the hidden quantity counts
    assert fok[0][1] == "FILLED" and len(fok[1]) == 3
    assert ref.place(None, "f2", "SELL", 100, 1, tif="FOK")[1][0][1] == "EXPIRED"


def test_model_iceberg_amend_takes_from_hidden_first():
    ref = _ref()
    _ok(ref.place(None, "ice", "BUY", 100, 10, display=4))
    _ok(ref.place(None, "b", "BUY", 100, 1))
    rep = _ok(ref.amend_order(None, "ice", 7, None))  # hidden 6 -> 3, slice stays 4, priority kept
    assert rep[0][6] == 1 and rep[0][8] == 4
    rep = _ok(ref.amend_order(None, "ice", 2, None))  # hidden gone, slice 4 -> 2
    assert rep[0][6] == 1 and rep[0][8] == 2
    rep = _ok(ref.amend_order(None, "ice", 9, None))  # raising: to the hidden part, to the back
    assert rep[0][6] == 3 and rep[0][8] == 2
    rep = _ok(ref.amend_order(None, "ice", None, 99))  # a new price: the back, the slice kept
    assert rep[0][6] == 4 and rep[0][8] == 2


def test_model_gtd_expiry_order_and_expired_on_submit():
    ref = _ref()
    _ok(ref.place(None, "g3", "BUY", 90, 1, tif="GTD", expire_at=3))
    _ok(ref.place(None, "g2", "BUY", 91, 1, tif="GTD", expire_at=2))
    _ok(ref.place(None, "s2", "SELL", None, 1, type="STOP", stop=80, tif="GTD", expire_at=2))
    _ok(ref.place(None, "keep", "BUY", 92, 1))
    assert ref.advance_time(1) == ("ok", {"ACME/USD": []})
    assert ref.advance_time(0) == ("error", ValueError)
    out = _ok(ref.advance_time(3))["ACME/USD"]
    assert [(oid, status) for oid, status, _, _ in out] == [("g2", "EXPIRED"), ("s2", "EXPIRED"), ("g3", "EXPIRED")]
    late = _ok(ref.place(None, "late", "SELL", 92, 1, tif="GTD", expire_at=3))
    assert late[0][1] == "EXPIRED" and late[1] == [] and late[0][6] is None
    assert len(ref.books["ACME/USD"].resting) == 1


def test_model_quote_budget_whole_lots_and_no_skipping():
    ref = _ref()
    _ok(ref.place(None, "a1", "SELL", 100, 2))
    _ok(ref.place(None, "a2", "SELL", 101, 5))
    _ok(ref.place(None, "a3", "SELL", 150, 5))
    rep = _ok(ref.place(None, "q", "BUY", None, None, quote=Decimal("350.5")))
    assert _trades(rep) == [("a1", 100, 2), ("a2", 101, 1)] and rep[0][1] == "EXPIRED" and rep[0][4] is None
    rep = _ok(ref.place(None, "q2", "BUY", None, None, quote=Decimal(202)))
    assert _trades(rep) == [("a2", 101, 2)] and rep[0][1] == "FILLED"
    _ok(ref.place(None, "b1", "BUY", 99, 1))
    _ok(ref.place(None, "b2", "BUY", 10, 9))
    rep = _ok(ref.place(None, "q3", "SELL", None, None, quote=Decimal(98)))  # 99 does not fit: no skip to 10
    assert _trades(rep) == [] and rep[0][1] == "EXPIRED"


def test_model_wrong_combinations():
    ref = _ref()
    for kw in WRONG:
        before = ref.view()
        assert ref.place(None, "x", "BUY", **kw) == ("error", InvalidOrderError), kw
        assert ref.view() == before


def test_model_random_commands_keep_its_invariants():
    """Seeded random commands on the model alone: never crossed, slices within bounds, volume conserved."""
    rng = random.Random(5)
    ref = RefEngine([ACME], "CANCEL_MAKER")
    ids = []
    for step in range(3000):
        oid = step
        side = rng.choice(["BUY", "SELL"])
        last = ref.books["ACME/USD"].last or 100
        kind = rng.choice(KINDS)
        kw: dict[str, Any] = {"owner": rng.choice([None, "a", "b"])}
        ticks: int | None = last + rng.randint(-3, 3)
        lots: int | None = rng.randint(1, 8)
        if kind in ("MARKET", "STOP", "TRAILING_STOP", "QUOTE"):
            ticks = None
        if kind == "ICEBERG":
            lots = rng.randint(2, 12)
            kw["display"] = rng.randint(1, lots - 1)
        if kind == "QUOTE":
            lots, kw["quote"] = None, Decimal(rng.randint(50, 900))
        if kind in ("STOP", "STOP_LIMIT"):
            kw.update(type=kind, stop=last + rng.randint(-3, 3))
        if kind == "TRAILING_STOP":
            kw.update(type=kind, trail=rng.randint(1, 4))
        if rng.random() < 0.2 and kind != "QUOTE" and kind != "MARKET":
            kw.update(tif="GTD", expire_at=ref.time + rng.randint(0, 5))
        roll = rng.random()
        try:
            if roll < 0.1 and ids:
                ref.cancel(None, rng.choice(ids))
            elif roll < 0.15:
                ref.advance_time(ref.time + rng.randint(0, 2))
            else:
                before = {o.id: (o, o.filled) for o in ref.books["ACME/USD"].resting}
                kind_, report = ref.place(None, oid, side, ticks, lots, **kw)
                ids.append(oid)
                if kind_ == "ok":
                    runs = [report[:3], *report[3]]
                    volume: Counter = Counter()
                    for run in runs:
                        for t in run[1]:
                            volume[t[4]] += t[3]
                            volume[t[5]] += t[3]
                    takers = {run[0][0]: run[0][5] for run in runs}  # new takers and fired stops start at 0
                    for who, traded in volume.items():
                        if who in before:
                            order, filled = before[who]
                            assert order.filled - filled == traded
                        else:
                            assert takers[who] == traded
        except Unspecified:
            continue
        book = ref.books["ACME/USD"]
        bid, _, ask, _ = ref.top("ACME/USD")
        assert bid is None or ask is None or bid < ask
        for o in book.resting:
            assert 0 < o.visible <= o.remaining and o.status in ("OPEN", "PARTIALLY_FILLED")
            assert o.display is None or o.visible <= o.display
        seqs = [o.seq for o in book.resting + book.waiting]
        assert len(seqs) == len(set(seqs)) and all(s < book.seq for s in seqs)  # type: ignore[operator]
        assert all(o.status == "UNTRIGGERED" and o.filled == 0 for o in book.waiting)
        assert not {o.id for o in book.resting} & {o.id for o in book.waiting}


# -- wrong field combinations (api.md: InvalidOrderError, nothing changes) --------------------------------

WRONG: list[dict[str, Any]] = [
    {"ticks": None, "lots": 3, "type": "STOP"},  # a stop without stop_price
    {"ticks": 100, "lots": 3, "type": "STOP_LIMIT"},
    {"ticks": 100, "lots": 3, "stop": 101},  # stop_price on a LIMIT
    {"ticks": 100, "lots": 3, "tif": "IOC", "display": 1},  # display on an IOC
    {"ticks": 100, "lots": 3, "tif": "FOK", "display": 1},
    {"ticks": 100, "lots": 3, "tif": "GTD"},  # GTD without expire_at
    {"ticks": None, "lots": 3, "quote": Decimal(100)},  # quote with a quantity
    {"ticks": 100, "lots": 3, "type": "STOP", "stop": 101},  # a price on STOP
    {"ticks": 100, "lots": 3, "type": "TRAILING_STOP", "trail": 2},  # a price on TRAILING_STOP
    {"ticks": None, "lots": 3, "type": "TRAILING_STOP", "trail": 2, "stop": 101},
    {"ticks": None, "lots": 3, "type": "STOP", "stop": 101, "trail": 2},  # trailing_offset on another type
    {"ticks": 100, "lots": 3, "trail": 2},
    {"ticks": 100, "lots": 3, "expire_at": 5},  # expire_at without GTD
    {"ticks": None, "lots": 3, "type": "STOP", "stop": 101, "expire_at": 5},
    {"ticks": None, "lots": 3, "display": 1},  # display on MARKET
    {"ticks": 100, "lots": 3, "type": "STOP_LIMIT", "stop": 101, "display": 1},  # display on STOP_LIMIT
    {"ticks": None, "lots": 3, "type": "STOP", "stop": 101, "display": 1},
    {"ticks": 100, "lots": None, "quote": Decimal(100)},  # quote on a non-MARKET order
    {"ticks": None, "lots": None, "type": "STOP", "stop": 101, "quote": Decimal(100)},
    {"ticks": None, "lots": None, "quote": Decimal(0)},  # quote <= 0
    {"ticks": None, "lots": None, "quote": Decimal(-5)},
    {"ticks": None, "lots": None},  # a MARKET order with neither quantity nor quote
    {"ticks": None, "lots": None, "quote": Decimal(100), "tif": "FOK"},  # FOK with quote
    {"ticks": None, "lots": 3, "type": "STOP", "stop": 0},  # a stop price <= 0
    {"ticks": None, "lots": 3, "type": "STOP", "stop": -1},
    {"ticks": None, "lots": 3, "type": "STOP", "stop": Decimal("100.5")},  # off the tick grid
    {"ticks": 100, "lots": 3, "type": "STOP_LIMIT", "stop": Decimal("99.5")},
    {"ticks": None, "lots": 3, "type": "TRAILING_STOP", "trail": 0},  # a trailing offset <= 0
    {"ticks": None, "lots": 3, "type": "TRAILING_STOP", "trail": -2},
    {"ticks": None, "lots": 3, "type": "TRAILING_STOP", "trail": Decimal("0.5")},  # off the grid
    {"ticks": 100, "lots": 3, "type": "STOP_LIMIT", "stop": 101, "post_only": True},  # post_only on a stop
    {"ticks": None, "lots": 3, "type": "TRAILING_STOP", "trail": 2, "post_only": True},
    {"ticks": 100, "lots": 3, "display": 3},  # display not smaller than quantity
    {"ticks": 100, "lots": 3, "display": 5},
    {"ticks": 100, "lots": 3, "display": 0},  # display <= 0
    {"ticks": 100, "lots": 3, "display": Decimal("0.5")},  # display off the lot grid
    {"ticks": None, "lots": 3, "tif": "FOK", "type": "MARKET", "display": 2},
]


# -- the state machine ---------------------------------------------------------------------------------


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except Exception as exc:
        return "error", type(exc)


def _dec(units: Any, step: Decimal) -> Decimal | None:
    return None if units is None else Decimal(units) * step


def _first_difference(got: Any, expected: Any, path: str = "") -> str:
    """Where two nested views first differ, for a readable failure."""
    if isinstance(got, dict) and isinstance(expected, dict) and got.keys() == expected.keys():
        for k in got:
            if got[k] != expected[k]:
                return _first_difference(got[k], expected[k], f"{path}[{k!r}]")
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)) and len(got) == len(expected):
        for n, (a, b) in enumerate(zip(got, expected, strict=True)):
            if a != b:
                return _first_difference(a, b, f"{path}[{n}]")
    return f"at {path}: engine {got!r} != reference {expected!r}"


class OrderTypesMachine(RuleBasedStateMachine):
    backend: ClassVar[Any] = None

    def __init__(self) -> None:
        super().__init__()
        self.ref = RefEngine(list(INSTRUMENTS.values()))
        self.engines: list[Any] = []
        self.live: list[dict[tuple[str, Any], Any]] = []  # per engine: (symbol, id) -> the Order submitted to it
        self.counter = 0
        self.model_orders: dict[tuple[str, Any], Any] = {}  # the reference's resting orders before the command

    @initialize(
        default=st.sampled_from(MODES),
        seed=st.lists(st.tuples(st.booleans(), st.integers(0, 4), st.integers(1, 6), owners), max_size=12),
    )
    def start(self, default, seed):
        """A fresh engine with the given default STP mode, seeded with resting orders around 100."""
        self.ref = RefEngine(list(INSTRUMENTS.values()), default)
        self.engines = [self.backend.MatchingEngine(list(INSTRUMENTS.values()), self_trade_prevention=default)]
        self.live = [{}]
        for sell, away, lots, owner in seed:
            ticks = 100 + away if sell else 100 - away
            self._submit({"symbol": "ACME/USD", "side": "SELL" if sell else "BUY", "ticks": ticks, "lots": lots}, owner)

    # -- helpers -----------------------------------------------------------------------------------------

    def _fresh_id(self) -> Any:
        self.counter += 1
        return self.counter if self.counter % 3 else f"o{self.counter}"

    def _expect(self, command: Any) -> tuple[str, Any] | None:
        """Run ``command(ref)`` on a copy of the reference; None (nothing sent) if the rules leave it open."""
        trial = copy.deepcopy(self.ref)
        self.model_orders = {(s, o.id): o for s, b in trial.books.items() for o in b.resting}
        try:
            expected = command(trial)
        except Unspecified as exc:
            event(f"not sent: {exc}")
            return None
        self.ref = trial
        return expected

    def _resting(self) -> list[dict[str, dict[Any, tuple[int, int]]]]:
        """Per engine index: {symbol: {id: (lots, filled)}} of the resting orders, read before a command."""
        out = []
        for engine in self.engines:
            out.append(
                {
                    s: {o.id: (o.quantity_lots, o.filled_lots) for side in (b.bids, b.asks) for lv in side for o in lv}
                    for s in engine.symbols
                    for b in [engine.book(s)]
                }
            )
        return out

    def _run(self, expected: tuple[str, Any], call: Any, key: Any) -> list[Any]:
        """``call(engine)`` on every engine; each outcome must equal ``expected`` (an error: of its class)."""
        results = []
        for i, engine in enumerate(self.engines):
            kind, value = _outcome(lambda engine=engine: call(engine))
            where = f"engine {i} ({self.backend.name}{', restored' if i else ''})"
            if expected[0] == "error":
                assert kind == "error" and issubclass(value, expected[1]), f"{where}: {value!r} != {expected!r}"
            else:
                got = (kind, key(value) if kind == "ok" else value)
                assert got == expected, f"{where}: {got!r}\n!= reference {expected!r}"
            results.append(value)
        return results

    def _conserve(self, before: list[dict], reports: list[Any], symbol: str) -> None:
        """Every order's new fills equal the volume of the command's trades it was part of (maker or taker)."""
        for i, report in enumerate(reports):
            book = self.engines[i].book(symbol)
            runs = [report, *report.triggered]
            volume: Counter = Counter()
            for run in runs:
                for t in run.trades:
                    volume[t.maker_order_id] += t.quantity_lots
                    volume[t.taker_order_id] += t.quantity_lots
            takers = {run.order.id: run.order.filled_lots for run in runs}
            cancelled = {m.id: m.filled_lots for run in runs for m in run.cancelled}
            held = before[i][symbol]
            for oid, traded in volume.items():
                if oid in book:
                    after = book.get_order(oid).filled_lots
                elif oid in takers:
                    after = takers[oid]
                elif oid in cancelled:
                    after = cancelled[oid]
                else:  # a maker that left filled: all of its quantity (DECREMENT may have cut it meanwhile)
                    after = self.model_orders[(symbol, oid)].lots
                    assert after <= held[oid][0]
                assert after - held.get(oid, (0, 0))[1] == traded, f"{oid!r}: fills {after} vs traded {traded}"

    def _submit(self, spec: dict[str, Any], owner: Any = None, stp: Any = None) -> None:
        """Send one order (``spec``: symbol, side, ticks, lots and the new fields in ticks/lots) everywhere."""
        spec = {"type": None, "tif": "GTC", "post_only": False, "owner": owner, "stp": stp, **spec}
        spec.setdefault("oid", self._fresh_id())
        for field in ("stop", "trail", "display", "expire_at", "quote"):
            spec.setdefault(field, None)
        symbol = spec["symbol"]
        expected = self._expect(
            lambda ref: ref.place(
                symbol,
                spec["oid"],
                spec["side"],
                spec["ticks"],
                spec["lots"],
                **{k: spec[k] for k in ("type", "tif", "owner", "post_only", "stp")},
                **{k: spec[k] for k in ("stop", "trail", "display", "expire_at", "quote")},
            )
        )
        if expected is None:
            return
        inst = INSTRUMENTS.get(symbol, ACME)
        tick, lot = inst.tick_size, inst.lot_size
        before = self._resting()
        orders: list[Any] = []

        def call(engine: Any) -> Any:
            order = self.backend.Order(
                spec["oid"],
                spec["side"],
                _dec(spec["ticks"], tick),
                _dec(spec["lots"], lot),
                symbol=symbol,
                owner=spec["owner"],
                type=spec["type"] or ("MARKET" if spec["ticks"] is None else "LIMIT"),
                time_in_force=spec["tif"],
                post_only=spec["post_only"],
                self_trade_prevention=spec["stp"],
                stop_price=_dec(spec["stop"], tick),
                trailing_offset=_dec(spec["trail"], tick),
                display_quantity=_dec(spec["display"], lot),
                expire_at=spec["expire_at"],
                quote_quantity=spec["quote"],
            )
            orders.append(order)
            return engine.submit(order)

        reports = self._run(expected, call, key=lambda r: full_report_key(r, inst))
        if expected[0] == "ok":
            for live, order in zip(self.live, orders, strict=True):
                live[(symbol, spec["oid"])] = order
            self._conserve(before, reports, symbol)

    def _price(self, data, symbol: str, side: str) -> int:
        """A price near the other side's best: about half of them cross it."""
        other = self.ref.books[symbol].side("SELL" if side == "BUY" else "BUY")
        best = other[0].ticks if other else MID[symbol]
        assert best is not None
        offset = data.draw(st.sampled_from([0, 1, -1, 2, 0, -2, 1]), label="aggressiveness")
        return best + offset if side == "BUY" else best - offset

    def _stop(self, data, symbol: str) -> int:
        """A stop price a few ticks either side of the last trade (some already met: REJECTED)."""
        last = self.ref.books[symbol].last or MID[symbol]
        low, high = STOP_RANGE[symbol]
        return min(high, max(low, last + data.draw(st.integers(-3, 3), label="stop away")))

    def _live_ids(self) -> list[tuple[str, Any]]:
        return [(s, o.id) for s, b in self.ref.books.items() for o in b.resting + b.waiting]

    # -- commands -------------------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        symbol=symbols,
        side=sides,
        kind=st.sampled_from(KINDS),
        owner=owners,
        stp=order_stp,
        fault=st.sampled_from([None] * 16 + ["duplicate", "symbol"]),
    )
    def submit(self, data, symbol, side, kind, owner, stp, fault):
        draw = data.draw
        if kind in ("ICEBERG", "QUOTE"):
            symbol = "ACME/USD"  # instrument limits on slices and quote amounts are not specified
        spec: dict[str, Any] = {"symbol": symbol, "side": side, "ticks": None, "lots": draw(LOTS[symbol], label="lots")}
        tifs = ["GTC", "GTC", "IOC", "FOK", "GTD", "GTD"]
        if kind == "LIMIT":
            spec["ticks"] = self._price(data, symbol, side)
            spec["tif"] = draw(st.sampled_from(tifs), label="tif")
            spec["post_only"] = spec["tif"] == "GTC" and draw(st.sampled_from([False] * 5 + [True]), label="post")
        elif kind == "ICEBERG":
            spec["ticks"] = self._price(data, symbol, side)
            spec["lots"] = draw(st.integers(2, 14), label="iceberg lots")
            spec["display"] = draw(st.integers(1, spec["lots"] - 1), label="display")
            spec["tif"] = draw(st.sampled_from(["GTC", "GTC", "GTD"]), label="tif")
            spec["post_only"] = spec["tif"] == "GTC" and draw(st.sampled_from([False] * 5 + [True]), label="post")
        elif kind == "MARKET":
            spec["tif"] = draw(st.sampled_from(["GTC", "IOC", "FOK"]), label="tif")
            spec["type"] = "MARKET"
        elif kind == "QUOTE":
            spec["type"], spec["lots"] = "MARKET", None
            whole = draw(st.integers(1, 1500), label="quote")
            spec["quote"] = Decimal(whole) + draw(st.sampled_from([Decimal(0)] * 3 + [Decimal("0.5")]), label="cents")
            spec["tif"] = draw(st.sampled_from(["GTC", "IOC"]), label="tif")
        else:
            spec["type"] = kind
            spec["tif"] = draw(st.sampled_from(tifs), label="tif")
            if kind == "TRAILING_STOP":
                spec["trail"] = draw(st.integers(1, 4), label="trail")
            else:
                spec["stop"] = self._stop(data, symbol)
            if kind == "STOP_LIMIT":
                low, high = STOP_RANGE[symbol]
                spec["ticks"] = min(high, max(low, spec["stop"] + draw(st.integers(-2, 2), label="limit away")))
        if spec["tif"] == "GTD":
            spec["expire_at"] = self.ref.time + draw(st.sampled_from([-1, 0, 1, 1, 2, 3, 5]), label="expire in")
        if fault == "duplicate" and self._live_ids():
            spec["symbol"], spec["oid"] = draw(st.sampled_from(self._live_ids()), label="live id")
        elif fault == "symbol":
            spec["symbol"] = draw(st.sampled_from([None, "NOPE/USD"]), label="symbol")
        self._submit(spec, owner, stp)

    @rule(
        symbol=symbols, side=sides, away=st.integers(1, 3), lots=st.integers(2, 10), owner=owners, iceberg=st.booleans()
    )
    def add_liquidity(self, symbol, side, away, lots, owner, iceberg):
        """A passive GTC order (maybe an iceberg) just behind the other side's best, so takers find something."""
        if iceberg:
            symbol = "ACME/USD"
        other = self.ref.books[symbol].side("SELL" if side == "BUY" else "BUY")
        best = other[0].ticks if other else MID[symbol]
        assert best is not None
        ticks = best - away if side == "BUY" else best + away
        spec = {
            "symbol": symbol,
            "side": side,
            "ticks": ticks,
            "lots": lots,
            "display": 1 + lots // 3 if iceberg else None,
        }
        self._submit(spec, owner)

    @rule(data=st.data(), index=st.integers(0, len(WRONG) - 1))
    def submit_wrong_combination(self, data, index):
        """A wrong field combination raises InvalidOrderError (or a subclass) and changes nothing."""
        spec = {"symbol": "ACME/USD", "side": data.draw(sides, label="side"), **WRONG[index]}
        expected = self.ref.place("ACME/USD", "x", "BUY", **WRONG[index])
        assert expected == ("error", InvalidOrderError), expected  # the model agrees it is wrong
        self._submit(spec)

    @precondition(lambda self: self._live_ids())
    @rule(data=st.data(), fault=st.sampled_from([None] * 8 + ["absent", "symbol"]))
    def cancel(self, data, fault):
        """Cancel a resting order or a waiting stop (or an absent id, or on an unknown symbol)."""
        symbol, oid = data.draw(st.sampled_from(self._live_ids()), label="live order")
        if fault == "absent":
            oid = data.draw(st.sampled_from([0, "nope", -5]), label="absent id")
        elif fault == "symbol":
            symbol = data.draw(st.sampled_from([None, "NOPE/USD"]), label="symbol")
        expected = self._expect(lambda ref: ref.cancel(symbol, oid))
        assert expected is not None
        if expected[0] == "ok":
            expected = ("ok", expected[1][:4])
        self._run(
            expected,
            lambda engine: engine.cancel(symbol, oid),
            key=lambda o: (o.id, o.status.value, o.quantity_lots, o.filled_lots),
        )

    @precondition(lambda self: any(b.resting for b in self.ref.books.values()))
    @rule(
        data=st.data(),
        api=st.sampled_from(["raw", "decimal"]),
        what=st.sampled_from(["quantity", "quantity", "price", "both", "nothing", "filled"]),
    )
    def amend(self, data, api, what):
        live = [(s, o.id) for s, b in self.ref.books.items() for o in b.resting]
        symbol, oid = data.draw(st.sampled_from(live), label="resting order")
        order = self.ref.books[symbol].find(oid)
        assert order is not None and order.ticks is not None
        filled, lots_now, ticks_now = order.filled, order.lots, order.ticks
        lots = ticks = None
        if what in ("quantity", "both"):
            choices = [filled + 1, max(filled + 1, lots_now - 1), max(filled + 1, lots_now - 3), lots_now, lots_now + 2]
            lots = data.draw(st.sampled_from(choices), label="lots")
        if what in ("price", "both"):
            ticks = data.draw(st.sampled_from([ticks_now, None]), label="same price?") or self._price(
                data, symbol, order.side
            )
        if what == "filled":
            lots = data.draw(st.sampled_from([filled, max(1, filled - 1)]), label="at most filled")
        inst = INSTRUMENTS[symbol]
        expected = self._expect(lambda ref: ref.amend_order(symbol, oid, lots, ticks))
        if expected is None:
            return
        before = self._resting()

        def call(engine):
            if api == "raw":
                return engine.amend_raw(symbol, oid, quantity=lots, price=ticks)
            return engine.amend(symbol, oid, quantity=_dec(lots, inst.lot_size), price=_dec(ticks, inst.tick_size))

        reports = self._run(expected, call, key=lambda r: full_report_key(r, inst))
        if expected[0] == "ok":
            self._conserve(before, reports, symbol)

    @rule(step=st.sampled_from([0, 1, 1, 1, 2, 3, 5, -1]))
    def advance_time(self, step):
        """Move the clock (backwards raises ValueError); due GTD orders expire, per symbol in expiry order."""
        now = self.ref.time + step
        expected = self._expect(lambda ref: ref.advance_time(now))
        assert expected is not None

        def key(expired: list[Any]) -> dict[str, list[tuple]]:
            out: dict[str, list[tuple]] = {s: [] for s in INSTRUMENTS}
            for o in expired:
                out[o.symbol].append((o.id, o.status.value, o.quantity_lots, o.filled_lots))
            return out

        self._run(expected, lambda engine: engine.advance_time(now), key=key)

    @rule(source=st.sampled_from([0, -1]))
    def snapshot_and_restore(self, source):
        """An engine restored from a JSON copy of a snapshot runs beside the original from now on."""
        data = json.loads(json.dumps(self.engines[source].snapshot()))
        restored = self.backend.MatchingEngine.from_snapshot(data)
        assert json.loads(json.dumps(restored.snapshot())) == data
        self.engines = [self.engines[0], restored]
        self.live = [self.live[0], {}]  # the restored engine has Order objects of its own

    # -- after every step ------------------------------------------------------------------------------------

    @invariant()
    def engines_match_the_reference(self):
        expected = self.ref.view()
        for i, engine in enumerate(self.engines):
            check_books(engine)
            got = engine_view(engine)
            assert got == expected, f"engine {i}: {_first_difference(got, expected)}"
            for symbol in INSTRUMENTS:
                for oid, status, otype, stop, seq, filled in self.ref.waiting_rows(symbol):
                    assert oid not in engine.book(symbol), f"engine {i}: waiting stop {oid!r} is in the book"
                    order = self.live[i].get((symbol, oid))
                    if order is None:
                        continue
                    inst = INSTRUMENTS[symbol]
                    stop_ticks = None if order.stop_price is None else order.stop_price / inst.tick_size
                    got = (order.status.value, order.type.value, stop_ticks, order.sequence, order.filled_lots)
                    assert got == (status, otype, stop, seq, filled), f"engine {i}: waiting stop {oid!r}"


def test_order_types_agree_with_the_reference(engine_backend):
    machine = type(f"OrderTypesMachine_{engine_backend.name}", (OrderTypesMachine,), {"backend": engine_backend})
    run_state_machine_as_test(
        machine, settings=settings(settings.default, max_examples=tier(300, 50), stateful_step_count=50)
    )


def test_wrong_combinations_raise_on_the_engine(engine_backend):
    """Each wrong combination raises InvalidOrderError (from Order or from submit) and changes nothing."""
    engine = engine_backend.MatchingEngine([ACME])
    engine.submit(engine_backend.Order("rest", "SELL", Decimal(101), Decimal(1)))
    before = json.dumps(engine.snapshot(), sort_keys=True)
    for kw in WRONG:
        with pytest.raises(InvalidOrderError):
            engine.submit(
                engine_backend.Order(
                    "x",
                    "BUY",
                    _dec(kw["ticks"], ACME.tick_size),
                    _dec(kw["lots"], ACME.lot_size),
                    type=kw.get("type") or ("MARKET" if kw["ticks"] is None else "LIMIT"),
                    time_in_force=kw.get("tif", "GTC"),
                    post_only=kw.get("post_only", False),
                    stop_price=_dec(kw.get("stop"), ACME.tick_size),
                    trailing_offset=_dec(kw.get("trail"), ACME.tick_size),
                    display_quantity=_dec(kw.get("display"), ACME.lot_size),
                    expire_at=kw.get("expire_at"),
                    quote_quantity=kw.get("quote"),
                )
            )
        assert json.dumps(engine.snapshot(), sort_keys=True) == before, kw
    assert issubclass(InvalidPriceError, InvalidOrderError)
