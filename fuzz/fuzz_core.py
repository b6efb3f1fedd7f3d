#!/usr/bin/env python3
"""Differential fuzz target: the compiled core and the pure-Python twin in lockstep.

Each fuzz input is decoded into a short program of commands (the Decimal API,
the raw API, ``execute_batch`` with arbitrary int64 buffers, snapshot round
trips, corrupted snapshots, subscribers that raise or re-enter, ids and owners
whose ``__eq__``/``__hash__`` raise or re-enter). Every command runs against
both backends -- a ``MatchingEngine`` and a standalone ``OrderBook`` each --
and after every command the harness demands:

* the same outcome: equal return values (reports, trades, orders, depth,
  snapshots, batch results), or the same exception type (and, for
  ``TradebookError``s, the same message);
* the same state: depth, top of book, counters, ``snapshot()``, the market-data
  updates the subscribers saw, every ``Order`` object the caller holds;
* ``_check()`` passes on every book of both backends; an engine book is never
  crossed (unless a corrupted snapshot was loaded into it); a command that
  raised a ``TradebookError`` left the state unchanged.

Anything else raises ``Divergence`` (an ``AssertionError``), which atheris reports
as a crash: the process exits non-zero and the input is saved. A segfault in the
compiled core kills the process the same way.

Usage (see docs/fuzzing.md)::

    python fuzz/fuzz_core.py [--no-reentry] [--no-extreme] ... -max_total_time=60 fuzz/corpus
    python fuzz/fuzz_core.py --replay FILE_OR_DIR ...     # no atheris needed
    python fuzz/fuzz_core.py --minimize CRASH OUT          # shrink a reproducer, no atheris needed

The decoder reads the input with its own tiny byte reader (not atheris'
FuzzedDataProvider) so that ``tests/test_fuzz_harness.py`` can replay the corpus
and the saved reproducers without atheris installed.
"""

from __future__ import annotations

import copy
import enum
import importlib
import json
import logging
import os
import re
import sys
import types
import uuid
from array import array
from decimal import Decimal
from typing import Any, ClassVar

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_STEPS = 48
TRACE = bool(os.environ.get("FUZZ_TRACE"))  # print every step (with --replay)


# -- configuration -------------------------------------------------------------------


class Config:
    """Which input families are on. Each can be switched off by a flag or an environment variable."""

    FLAGS: ClassVar[dict[str, tuple[str, str]]] = {
        # flag name: (attribute, environment variable)
        "reentry": ("reentry", "FUZZ_NO_REENTRY"),  # hostile ids/owners/subscribers that re-enter the engine
        "hostile": ("hostile", "FUZZ_NO_HOSTILE"),  # ids/owners/subscribers that raise (no re-entry)
        "extreme": ("extreme", "FUZZ_NO_EXTREME"),  # ints at and beyond 2**63-1 where they are legal input
        "snapshots": ("snapshots", "FUZZ_NO_SNAPSHOTS"),  # snapshot round trips and corrupted snapshots
        "batch": ("batch", "FUZZ_NO_BATCH"),  # execute_batch
    }

    def __init__(self) -> None:
        for attr, env in self.FLAGS.values():
            setattr(self, attr, not os.environ.get(env))
        # Messages of TradebookErrors are part of the API and must agree word for word. Messages of
        # other exceptions (TypeError, OverflowError, ...) are worded by the interpreter or by Cython
        # and may differ; only their types must agree unless FUZZ_STRICT_MESSAGES is set.
        self.strict_messages = bool(os.environ.get("FUZZ_STRICT_MESSAGES"))

    def take_argv(self, argv: list[str]) -> list[str]:
        """Consume ``--no-<family>`` flags from ``argv``; return the rest (for libFuzzer)."""
        rest = []
        for arg in argv:
            name = arg[5:] if arg.startswith("--no-") else None
            if name in self.FLAGS:
                setattr(self, self.FLAGS[name][0], False)
            else:
                rest.append(arg)
        return rest

    def describe(self) -> str:
        return " ".join(f"{name}={'on' if getattr(self, attr) else 'off'}" for name, (attr, _) in self.FLAGS.items())


CONFIG = Config()


class Divergence(AssertionError):
    """The two backends disagreed, or an invariant failed."""


# -- the two backends ------------------------------------------------------------------

LANES_SPEC = (
    ("python", "tradebook._book_py", "tradebook._engine_py"),
    ("cython", "tradebook._book", "tradebook._engine"),
)
M: Any = types.SimpleNamespace()  # shared modules, filled by load()
BACKENDS: list[types.SimpleNamespace] = []


def load() -> None:
    """Import both backends (call it inside ``atheris.instrument_imports()`` to instrument the pure one)."""
    if BACKENDS:
        return
    import tradebook  # noqa: F401  (the package first: it picks and warns)

    M.enums = importlib.import_module("tradebook.enums")
    M.errors = importlib.import_module("tradebook.errors")
    M.instrument = importlib.import_module("tradebook.instrument")
    M.batch = importlib.import_module("tradebook._batch")
    for name, book_mod, engine_mod in LANES_SPEC:
        book = importlib.import_module(book_mod)
        engine = importlib.import_module(engine_mod)
        BACKENDS.append(
            types.SimpleNamespace(
                name=name, Order=book.Order, OrderBook=book.OrderBook, MatchingEngine=engine.MatchingEngine
            )
        )
    try:
        import numpy

        M.np = numpy
    except ImportError:  # the batch buffers then come from array('q') only
        M.np = None
    Instrument = M.instrument.Instrument
    M.INSTRUMENTS = [
        (Instrument("ACME/USD", "1", "1"), 100),
        (Instrument("BTC/USDT", "0.01", "0.001", min_quantity="0.002"), 10_000),
        (
            Instrument("LIM/USD", "0.5", "1", min_price="50", max_price="150", max_quantity="1000", min_notional="100"),
            200,
        ),
    ]
    # a subscriber that raises is logged by the engine; the fuzzer does not need the noise
    logging.getLogger("tradebook").disabled = True


# -- reading the input -----------------------------------------------------------------


class Reader:
    """Bytes in, small decisions out; reads zeros once the input is used up."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)

    def u8(self) -> int:
        if self.pos >= len(self.data):
            self.pos += 1
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def below(self, n: int) -> int:
        return self.u8() % n

    def pick(self, seq: Any) -> Any:
        return seq[self.u8() % len(seq)]

    def flag(self) -> bool:
        return self.u8() & 1 == 1

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk.ljust(n, b"\0")

    def i64(self) -> int:
        return int.from_bytes(self.take(8), "little", signed=True)


# -- hostile objects --------------------------------------------------------------------


class Hostile:
    """An id or owner with a hostile ``__eq__``/``__hash__``; equal to another of the same label.

    Its hooks act only while its lane is running a command (``lane.armed``), so the
    harness itself can hash and compare them freely.
    """

    __slots__ = ("label", "h", "mode", "lane")

    def __init__(self, label: str, h: int, mode: str, lane: Lane) -> None:
        self.label, self.h, self.mode, self.lane = label, h, mode, lane

    def __hash__(self) -> int:
        if self.lane.armed:
            self.lane.calls += 1
            if self.mode == "hash_raise":
                raise RuntimeError(f"hostile hash {self.label}")
            if self.mode == "hash_reenter":
                self.lane.hook(self.label)
        return self.h

    def __eq__(self, other: object) -> bool:
        if self.lane.armed:
            self.lane.calls += 1
            if self.mode == "eq_raise":
                raise RuntimeError(f"hostile eq {self.label}")
            if self.mode == "eq_reenter":
                self.lane.hook(self.label)
            if self.mode == "eq_true":
                return True
        if type(other) is Hostile:
            return other.label == self.label
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __repr__(self) -> str:
        return f"Hostile({self.label})"


HOSTILE_MODES_RAISE = ("hash_raise", "eq_raise", "eq_true", "eq_false")
HOSTILE_MODES_REENTER = ("hash_reenter", "eq_reenter")


# -- one backend's world ---------------------------------------------------------------------


class Lane:
    """One backend: its engine, its standalone book, and what the harness saw happen to them."""

    def __init__(self, backend: types.SimpleNamespace, program: Program) -> None:
        self.b = backend
        self.name = backend.name
        self.program = program
        self.engine: Any = None
        self.book: Any = None
        self.updates: list[Any] = []  # normalized market-data updates, drained after each step
        self.nested: list[Any] = []  # normalized outcomes of re-entrant calls, drained after each step
        self.orders: list[Any] = []  # Order objects the caller created, compared after each step
        self.hostiles: dict[str, Hostile] = {}
        self.subscribers: list[Any] = []  # (spec) to re-subscribe after a restore
        self.unsubs: list[Any] = []
        # the L2 book a feed consumer rebuilds from the deltas alone (None: no recording subscriber)
        self.l2: dict[str, dict[tuple[str, int], int]] | None = None
        self.armed = False
        self.depth = 0
        self.fired = 0  # re-entrant actions run
        self.calls = 0  # hostile __eq__/__hash__ calls while a command ran, re-entrant or not

    # hostile hooks: re-enter the engine with the next scripted action
    def hook(self, label: str) -> None:
        if self.depth or self.fired >= 8:
            return
        self.fired += 1
        action = self.program.reentry_actions[(self.fired - 1) % len(self.program.reentry_actions)]
        self.depth += 1
        try:
            try:
                value = self.program.apply_action(self, action)
                self.nested.append((label, "ok", norm(value)))
            except Exception as exc:  # the nested call's own failure is an outcome, not ours
                self.nested.append((label, "exc", exc_key(exc)))
        finally:
            self.depth -= 1

    def hostile(self, spec: tuple) -> Hostile:
        """The lane's hostile object of that label; the first spec of a label fixes its hash and mode."""
        _, label, h, mode = spec
        obj = self.hostiles.get(label)
        if obj is None:
            obj = self.hostiles[label] = Hostile(label, h, mode, self)
        return obj

    def make_subscriber(self, spec: tuple) -> Any:
        kind = spec[0]
        lane = self

        if kind == "record":

            def callback(update: Any) -> None:
                lane.updates.append(norm(update))
                levels = lane.l2.get(update.symbol) if lane.l2 is not None else None
                if levels is not None:
                    for delta in update.deltas:
                        key = (delta.side.value, delta.price_ticks)
                        if delta.quantity_lots:
                            levels[key] = delta.quantity_lots
                        else:
                            levels.pop(key, None)

        elif kind == "raise":

            def callback(update: Any) -> None:
                lane.updates.append(("raise", update.symbol))
                raise RuntimeError("hostile subscriber")

        else:  # "reenter": run a scripted action from inside the callback

            def callback(update: Any) -> None:
                lane.updates.append(("reenter", update.symbol))
                if lane.depth or lane.fired >= 8:
                    return
                lane.fired += 1
                lane.depth += 1
                try:
                    try:
                        value = lane.program.apply_action(lane, spec[1])
                        lane.nested.append(("sub", "ok", norm(value)))
                    except Exception as exc:
                        lane.nested.append(("sub", "exc", exc_key(exc)))
                finally:
                    lane.depth -= 1

        return callback

    def subscribe(self, spec: tuple) -> Any:
        unsubscribe = self.engine.subscribe(self.make_subscriber(spec))
        self.unsubs.append(unsubscribe)
        return unsubscribe

    def subscribe_all(self) -> None:
        self.unsubs = []
        for spec in self.subscribers:
            self.subscribe(spec)
        self.reset_l2()

    def reset_l2(self) -> None:
        """Start the feed consumer's L2 book from the engine's depth (after subscribing or a restore)."""
        if ("record",) not in self.subscribers:
            self.l2 = None
            return
        self.l2 = {}
        for symbol in self.engine.symbols:
            bids, asks = self.engine.book(symbol).depth_raw(1000)
            levels = self.l2[symbol] = {}
            for side, rows in (("BUY", bids), ("SELL", asks)):
                for ticks, lots, _ in rows:
                    levels[(side, ticks)] = lots

    def l2_problems(self) -> list[str]:
        problems = []
        for symbol, levels in (self.l2 or {}).items():
            bids, asks = self.engine.book(symbol).depth_raw(1000)
            depth = {("BUY", t): q for t, q, _ in bids} | {("SELL", t): q for t, q, _ in asks}
            if levels != depth:
                problems.append(
                    f"{self.name} {symbol}: the L2 book rebuilt from the deltas is {levels}, depth is {depth}"
                )
        return problems


# -- normalizing results so the two backends compare by value --------------------------------

ORDER_FIELDS = (
    "id", "side", "price", "quantity", "filled_quantity", "remaining_quantity", "type", "time_in_force",
    "post_only", "owner", "client_order_id", "symbol", "self_trade_prevention", "status", "sequence",
    "is_filled", "price_ticks", "quantity_lots", "filled_lots", "stop_price", "trailing_offset",
    "display_quantity", "expire_at", "quote_quantity", "visible_quantity",
)  # fmt: skip
TRADE_FIELDS = (
    "id", "symbol", "price", "quantity", "price_ticks", "quantity_lots", "maker_order_id", "taker_order_id",
    "maker_owner", "taker_owner", "taker_side",
)  # fmt: skip


def _fields(obj: Any, names: tuple[str, ...]) -> tuple:
    out = []
    for name in names:
        try:
            out.append(norm(getattr(obj, name)))
        except Exception as exc:
            out.append(("exc", type(exc).__name__))
    return tuple(out)


def norm(x: Any) -> Any:
    """A plain, comparable picture of a value returned by either backend."""
    if x is None or type(x) is int or type(x) is str:
        return x
    tp = type(x)
    if tp is bool:
        return ("bool", x)
    if tp is Hostile:
        return ("H", x.label)
    if tp is Decimal:
        return ("D", str(x))
    if tp is float:
        return ("f", repr(x))
    if tp is uuid.UUID:
        return ("U", str(x))
    if isinstance(x, enum.Enum):
        return (tp.__name__, x.value)
    if tp is dict:
        return ("dict", tuple((norm(k), norm(v)) for k, v in x.items()))
    if tp is list or tp is tuple or isinstance(x, tuple):  # named tuples too
        return tuple(norm(v) for v in x)
    if tp is array:
        return ("array", x.typecode, x.tolist())
    name = tp.__name__
    if name == "Order":
        return ("Order", _fields(x, ORDER_FIELDS))
    if name == "Trade":
        return ("Trade", _fields(x, TRADE_FIELDS))
    if name == "ExecutionReport":
        return (
            "Report",
            _fields(x, ("status", "filled_lots", "remaining_lots")),
            norm(x.order),
            norm(list(x.trades)),
            norm(list(x.cancelled)),
            norm(list(x.triggered)),
        )
    if name == "PriceLevel":
        return ("Level", _fields(x, ("side", "price", "quantity", "order_count", "price_ticks", "quantity_lots")))
    if name == "ndarray":
        return ("array", x.dtype.str, x.tolist())
    if callable(x):
        return ("callable",)
    return ("?", name)


def exc_key(exc: BaseException) -> tuple:
    """How an exception is compared: its type, and its message where the message is ours."""
    tp = type(exc)
    ours = isinstance(exc, M.errors.TradebookError) or (tp is RuntimeError and str(exc).startswith("hostile"))
    message = str(exc) if ours or CONFIG.strict_messages else None
    return (tp.__module__, tp.__qualname__, message)


# -- the program -------------------------------------------------------------------------------

SIDES = ("BUY", "SELL", "BUY", "SELL", "BUY", "SELL", "buy", "X", 0, None)
TIFS = ("GTC", "GTC", "IOC", "FOK", "IOC", "FOK", "gtc", "DAY", None)
TYPES = ("LIMIT", "LIMIT", "LIMIT", "MARKET", "MARKET", "STOP", 3)
STPS = (None, None, "NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT", "bogus")
ENGINE_STPS = ("CANCEL_TAKER", "NONE", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT")
SMALL_BAD_INTS = (0, -1, -5)
EXTREME_INTS = (INT64_MAX, INT64_MAX - 1, 2**62, 2**63, 2**64, 10**30, INT64_MIN, -(2**64))
SNAPSHOT_VALUES = (
    None, True, False, 0, 1, -1, 2, 3, 1.5, "", "x", "BUY", "SELL", "GTC", "IOC", "FOK", "LIMIT", "MARKET",
    "NONE", "DECREMENT", "1", "0.01", "0", "-1", "NaN", "1E+400", [], {}, {"uuid": "not-a-uuid"},
    {"uuid": "12345678-1234-5678-1234-567812345678"}, {"uuid": 5}, {"x": 1}, "tradebook.orderbook/1",
    "tradebook.engine/1", "A/B", "ACME/USD", "BTC/USDT", "ACMEUSD", 100, 101, 99, 10_000, 10_001,
)  # fmt: skip
SNAPSHOT_EXTREME = (INT64_MAX, INT64_MAX - 1, INT64_MAX - 2, 2**63, 2**64, -(2**63), 10**40, float("inf"))
BATCH_FORMS = (
    "array", "array", "numpy2d", "numpy1d", "tuples", "tuples", "bytes", "array_i", "numpy_strided",
    "numpy_f8", "short", "tuples4", "memoryview", "str", "none", "numpy_i4", "bytearray",
)  # fmt: skip

# the order types beyond limit and market: their types, times in force and field values
NEW_TYPES = ("STOP", "STOP_LIMIT", "TRAILING_STOP", "LIMIT", "MARKET", "LIMIT")
NEW_TIFS = ("GTC", "GTD", "GTD", "IOC", "FOK")
EXPIRES = (0, 1, 2, 3, 5, 8, 100, -1, INT64_MAX, 2**63, 1.5, "5")

OPS = (
    "submit", "submit", "submit", "submit_raw", "submit_raw", "submit_raw", "submit_raw", "cancel", "cancel_raw",
    "amend", "amend_raw", "batch", "batch", "snap_engine", "snap_engine_bad", "snap_book", "snap_book_bad",
    "subscribe", "unsubscribe", "queries", "add_order", "add_raw", "add_raw", "remove", "remove_raw",
    "fill", "fill_raw", "amend_order", "amend_book_raw", "book_queries", "resubmit",
    "submit_typed", "submit_typed", "submit_typed", "submit_typed_raw", "submit_typed_raw", "advance_time",
)  # fmt: skip


class Program:
    """One fuzz input: a header (instruments, default STP) and up to MAX_STEPS commands."""

    def __init__(self, data: bytes, cfg: Config) -> None:
        self.r = Reader(data)
        self.cfg = cfg
        r = self.r
        choice = r.below(4)
        picked = [[0], [1], [0, 1], [2, 0]][choice]
        self.insts = [M.INSTRUMENTS[i][0] for i in picked]
        self.mids = {M.INSTRUMENTS[i][0].symbol: M.INSTRUMENTS[i][1] for i in picked}
        self.stp = r.pick(ENGINE_STPS)
        self.crossable: set[str] = set()  # engine books loaded from a corrupted snapshot may be crossed
        self.book_crossed_ok = True  # the standalone book is a container: it may cross
        self.desynced: str | None = None  # where a hostile hook made the backends part ways, if it did
        self.steps = 0
        # the scripted actions that re-entrant hooks run (the same on both lanes)
        self.reentry_actions = [self.decode_action() for _ in range(3)]
        self.lanes = [Lane(b, self) for b in BACKENDS]
        for lane in self.lanes:
            lane.engine = lane.b.MatchingEngine(self.insts, self_trade_prevention=self.stp)
            lane.book = lane.b.OrderBook(self.insts[0])
        if r.flag():
            self.add_subscriber(("record",))

    # -- decoding values ------------------------------------------------------------------

    def sym(self) -> Any:
        r = self.r
        k = r.below(16)
        if k < 12:
            return self.insts[k % len(self.insts)].symbol
        return (None, None, "NOPE/USD", 5)[k - 12]

    def mid_of(self, symbol: Any) -> int:
        return self.mids.get(symbol, 100) if isinstance(symbol, str) else self.mids[self.insts[0].symbol]

    def oid(self) -> tuple:
        r = self.r
        k = r.below(32)
        if k < 20:
            return ("v", 1 + k % 12)
        if k < 24:
            return ("v", "abcd"[k - 20])
        if k == 24:
            return ("v", uuid.UUID(int=r.below(3)))
        if k == 25:
            return ("v", (None, 1.0, True, 2**70, -3, 0)[r.below(6)])
        if k == 26:
            return ("v", [])
        if k in (27, 28) and (self.cfg.hostile or self.cfg.reentry):
            return self.hostile_spec()
        return ("v", 1 + r.below(12))

    def hostile_spec(self) -> tuple:
        r = self.r
        modes = (HOSTILE_MODES_RAISE if self.cfg.hostile else ()) + (HOSTILE_MODES_REENTER if self.cfg.reentry else ())
        label = f"h{r.below(4)}"
        # the hash collides with a small int id on purpose: dict lookups then call __eq__
        return ("hostile", label, 1 + r.below(12), modes[r.below(len(modes))])

    def owner(self) -> tuple:
        r = self.r
        k = r.below(16)
        if k < 6:
            return ("v", None)
        if k < 13:
            return ("v", (1, 2, "x", "y", 1, 2, 3)[k - 6])
        if k == 13:
            return ("v", uuid.UUID(int=1))
        if self.cfg.hostile or self.cfg.reentry:
            return self.hostile_spec()
        return ("v", 1)

    def ticks(self, symbol: Any) -> Any:
        r = self.r
        k = r.below(32)
        if k < 26:
            return self.mid_of(symbol) + (k % 13) - 6
        if k < 29:
            return SMALL_BAD_INTS[k - 26]
        if self.cfg.extreme and k < 31:
            return r.pick(EXTREME_INTS)
        return (1.5, "100", Decimal(100), None, True)[r.below(5)]

    def lots(self) -> Any:
        r = self.r
        k = r.below(32)
        if k < 24:
            return (1, 2, 3, 5, 8, 13, 40, 100, 1, 2, 3, 4)[k % 12]
        if k < 27:
            return SMALL_BAD_INTS[k - 24]
        if self.cfg.extreme and k < 31:
            return r.pick(EXTREME_INTS)
        return (1.0, "3", True, 2**40)[r.below(4)]

    def price(self, symbol: Any) -> Any:
        r = self.r
        inst = self.inst_of(symbol)
        k = r.below(32)
        if k < 24:
            return str(inst.ticks_to_price(self.mid_of(symbol) + (k % 13) - 6))
        weird = ["0", "-5", "NaN", "sNaN", "Infinity", "1E+30", "1E-30", "100.0001", 0.5, 0.1, 100, "abc", None]
        if self.cfg.extreme:
            weird += ["9223372036854775807", "9223372036854775808", "92233720368547758.07", "92233720368547758.08"]
        return weird[r.below(len(weird))]

    def quantity(self, symbol: Any) -> Any:
        r = self.r
        inst = self.inst_of(symbol)
        k = r.below(32)
        if k < 24:
            return str(inst.lots_to_quantity((1, 2, 3, 5, 8, 13, 40, 100, 1, 2, 3, 4)[k % 12]))
        weird = ["0", "-1", "NaN", "0.0005", "1E+20", 3, 0.25, 0.1, "abc"]
        if self.cfg.extreme:
            weird += ["9223372036854775807", "9223372036854775.807", "9223372036854775.808", "1E+400"]
        return weird[r.below(len(weird))]

    def inst_of(self, symbol: Any) -> Any:
        for inst in self.insts:
            if inst.symbol == symbol:
                return inst
        return self.insts[0]

    def order_spec(self, symbol: Any) -> tuple:
        """An Order's arguments: (id, side, price, quantity, kwargs)."""
        r = self.r
        otype = r.pick(TYPES)
        kwargs: dict[str, Any] = {}
        if r.below(4) == 0:
            kwargs["symbol"] = symbol
        kwargs["owner"] = self.owner()
        if otype != "LIMIT" or r.below(4) == 0:
            kwargs["type"] = otype
        tif = r.pick(TIFS)
        if tif != "GTC":
            kwargs["time_in_force"] = tif
        if r.below(6) == 0:
            kwargs["post_only"] = r.pick((True, True, False, 1))
        if r.below(8) == 0:
            kwargs["client_order_id"] = r.pick(("c1", 7, None))
        stp = r.pick(STPS)
        if stp is not None:
            kwargs["self_trade_prevention"] = stp
        price = None if otype == "MARKET" and r.below(8) else self.price(symbol)
        return (self.oid(), r.pick(SIDES), price, self.quantity(symbol), kwargs)

    def typed_spec(self, symbol: Any) -> tuple:
        """An Order of the new types: (id, side, price, quantity, kwargs) with stop, trailing, iceberg, GTD or quote fields."""
        r = self.r
        otype = r.pick(NEW_TYPES)
        kwargs: dict[str, Any] = {"type": otype, "owner": self.owner()}
        tif = r.pick(NEW_TIFS)
        if tif != "GTC":
            kwargs["time_in_force"] = tif
        if tif == "GTD" or r.below(12) == 0:
            kwargs["expire_at"] = r.pick(EXPIRES)
        if otype in ("STOP", "STOP_LIMIT") or r.below(12) == 0:
            kwargs["stop_price"] = self.price(symbol)
        if otype == "TRAILING_STOP" or r.below(12) == 0:
            kwargs["trailing_offset"] = r.pick(("1", "2", "5", "0", "-1", "0.001", 3))
        if (otype == "LIMIT" and r.flag()) or r.below(12) == 0:
            kwargs["display_quantity"] = self.quantity(symbol)
        quantity = self.quantity(symbol)
        if otype == "MARKET" and r.flag():
            kwargs["quote_quantity"] = r.pick(("100", "1000.5", "0.0001", "0", "-5", "1E+30", 250))
            quantity = None if r.below(6) else quantity
        if r.below(8) == 0:
            kwargs["post_only"] = True
        price = None if otype in ("MARKET", "STOP", "TRAILING_STOP") and r.below(8) else self.price(symbol)
        return (self.oid(), r.pick(SIDES), price, quantity, kwargs)

    def decode_action(self) -> tuple:
        """A command a re-entrant hook or subscriber runs from inside another command."""
        r = self.r
        sym = self.insts[r.below(len(self.insts))].symbol
        kind = r.below(5)
        oid = ("v", 1 + r.below(12))
        if kind == 0:
            return ("cancel", sym, oid)
        if kind == 1:
            return ("submit_raw", sym, oid, r.pick(("BUY", "SELL")), self.mid_of(sym) + r.below(7) - 3, 1 + r.below(5))
        if kind == 2:
            return ("amend_raw", sym, oid, 1 + r.below(9))
        if kind == 3:
            return ("book_remove", oid)
        return ("book_add", oid, r.pick(("BUY", "SELL")), self.mid_of(sym) + r.below(7) - 3, 1 + r.below(5))

    # -- materializing specs on one lane --------------------------------------------------------

    @staticmethod
    def val(lane: Lane, spec: tuple) -> Any:
        return lane.hostile(spec) if spec[0] == "hostile" else spec[1]

    def make_order(self, lane: Lane, spec: tuple) -> Any:
        oid, side, price, quantity, kwargs = spec
        kw = dict(kwargs)
        kw["owner"] = self.val(lane, kw["owner"])
        order = lane.b.Order(self.val(lane, oid), side, price, quantity, **kw)
        lane.orders.append(order)
        del lane.orders[:-12]
        return order

    def apply_action(self, lane: Lane, action: tuple) -> Any:
        kind = action[0]
        if kind == "cancel":
            return lane.engine.cancel(action[1], action[2][1])
        if kind == "submit_raw":
            return lane.engine.submit_raw(action[2][1], action[3], action[4], action[5], symbol=action[1])
        if kind == "amend_raw":
            return lane.engine.amend_raw(action[1], action[2][1], quantity=action[3])
        if kind == "book_remove":
            return lane.book.remove_raw(action[1][1])
        return lane.book.add_raw(action[1][1], action[2], action[3], action[4])

    def add_subscriber(self, spec: tuple) -> None:
        for lane in self.lanes:
            lane.subscribers.append(spec)
            lane.subscribe(spec)
            lane.reset_l2()

    # -- the commands: decode once, apply per lane ------------------------------------------------

    def decode(self, op: str) -> tuple:
        r = self.r
        if op == "submit":
            sym = self.sym()
            return (self.order_spec(sym),)
        if op == "submit_raw":
            sym = self.sym()
            market = r.below(6) == 0
            kw: dict[str, Any] = {}
            if sym is not None or r.flag():
                kw["symbol"] = sym
            tif = r.pick(TIFS)
            if tif != "GTC" or r.flag():
                kw["time_in_force"] = tif
            owner = self.owner()
            return (self.oid(), r.pick(SIDES), None if market else self.ticks(sym), self.lots(), kw, owner)
        if op in ("cancel", "cancel_raw"):
            return (self.sym(), self.oid())
        if op == "amend":
            sym = self.sym()
            q = self.quantity(sym) if r.flag() else None
            p = self.price(sym) if r.flag() or q is None else None
            return (sym, self.oid(), q, p)
        if op == "amend_raw":
            sym = self.sym()
            q = self.lots() if r.flag() else None
            p = self.ticks(sym) if r.flag() or q is None else None
            return (sym, self.oid(), q, p)
        if op == "batch":
            return self.decode_batch()
        if op in ("snap_engine", "snap_book"):
            return (r.flag(),)  # via JSON or not
        if op in ("snap_engine_bad", "snap_book_bad"):
            return tuple(self.decode_mutation() for _ in range(1 + r.below(3)))
        if op == "subscribe":
            k = r.below(4)
            if k == 0 or not (self.cfg.hostile or self.cfg.reentry):
                return (("record",),)
            if (k == 1 and self.cfg.hostile) or not self.cfg.reentry:
                return (("raise",),)
            return (("reenter", self.decode_action()),)
        if op == "unsubscribe":
            return ()
        if op == "queries":
            return (self.sym(), r.pick((0, 1, 2, 5, 1000, -1, None)))
        if op == "add_order":
            return (self.order_spec(self.insts[0].symbol),)
        if op == "add_raw":
            sym = self.insts[0].symbol
            return (self.oid(), r.pick(SIDES), self.ticks(sym), self.lots())
        if op in ("remove", "remove_raw"):
            return (self.oid(),)
        if op == "fill":
            return (self.oid(), self.quantity(self.insts[0].symbol))
        if op == "fill_raw":
            return (self.oid(), self.lots())
        if op == "amend_order":
            sym = self.insts[0].symbol
            q = self.quantity(sym) if r.flag() else None
            p = self.price(sym) if r.flag() or q is None else None
            return (self.oid(), q, p)
        if op == "amend_book_raw":
            sym = self.insts[0].symbol
            q = self.lots() if r.flag() else None
            p = self.ticks(sym) if r.flag() or q is None else None
            return (self.oid(), q, p)
        if op == "book_queries":
            sym = self.insts[0].symbol
            return (self.oid(), r.pick((*SIDES[:2], "X")), self.price(sym), self.ticks(sym), r.pick((0, 1, 3, -1)))
        if op == "resubmit":
            return (r.below(12), r.flag())
        if op == "submit_typed":
            return (self.typed_spec(self.sym()),)
        if op == "submit_typed_raw":
            sym = self.sym()
            field = r.pick(("stop_price", "trailing_offset", "display", "expire_at", "quote", "order_type"))
            value = r.pick(("STOP", "GTD", None)) if field == "order_type" else (
                r.pick(EXPIRES) if field == "expire_at" else self.lots() if field in ("display", "quote") else self.ticks(sym)
            )  # fmt: skip
            tif = r.pick(NEW_TIFS)
            price = None if r.below(3) == 0 else self.ticks(sym)
            qty = None if field == "quote" and r.flag() else self.lots()
            return (self.oid(), r.pick(SIDES), price, qty, {"symbol": sym, "time_in_force": tif, field: value})
        if op == "advance_time":
            return (self.sym(), r.pick((0, 1, 1, 2, 3, 10, -1, INT64_MAX, "x")))
        raise AssertionError(op)

    def decode_batch(self) -> tuple:
        r = self.r
        form = r.pick(BATCH_FORMS)
        rows = []
        for _ in range(r.below(9)):
            row = []
            for col in range(5):
                k = r.below(16)
                if k < 12:
                    if col == 0:
                        v = (0, 0, 1, 2, 3, 4, 5, 0, 1, 4, 5, 6)[k]
                    elif col == 1:
                        v = 1 + k % 12
                    elif col == 2:
                        v = (0, 1)[k % 2] if k < 11 else 2
                    elif col == 3:
                        v = self.mid_of(self.insts[0].symbol) + k % 13 - 6 if k < 10 else 0
                    else:
                        v = (1, 2, 3, 5, 8, 13, 40, 100, 1, 0, 2, 3)[k]
                elif k < 14:
                    v = (-1, 0, 2**31, -(2**31))[r.below(4)]
                elif self.cfg.extreme:
                    v = r.pick((INT64_MAX, INT64_MIN, INT64_MAX - 1, r.i64()))
                else:
                    v = r.below(256) - 128
                row.append(v)
            rows.append(tuple(row))
        return (form, tuple(rows), r.pick((None, None, None, *(i.symbol for i in self.insts), "NOPE/X")))

    def decode_mutation(self) -> tuple:
        r = self.r
        path = tuple(r.u8() for _ in range(1 + r.below(5)))
        action = r.below(8)
        values = SNAPSHOT_VALUES + (SNAPSHOT_EXTREME if self.cfg.extreme else ())
        return (path, action, r.pick(values), r.flag())

    def batch_buffer(self, form: str, rows: tuple) -> Any:
        flat = [v for row in rows for v in row]
        np = M.np
        if np is None and form.startswith("numpy"):
            form = "array"
        if form == "array":
            return array("q", flat)
        if form == "numpy2d":
            return np.array(rows, dtype=np.int64).reshape(len(rows), 5)
        if form == "numpy1d":
            return np.array(flat, dtype=np.int64)
        if form == "tuples":
            return [tuple(row) for row in rows]
        if form == "bytes":
            return array("q", flat).tobytes()
        if form == "bytearray":
            return bytearray(array("q", flat).tobytes())
        if form == "array_i":
            return array("i", [max(-(2**31), min(2**31 - 1, v)) for v in flat])
        if form == "numpy_strided":
            return np.array(flat + flat, dtype=np.int64)[::2]
        if form == "numpy_f8":
            return np.array(flat, dtype=np.float64)
        if form == "numpy_i4":
            return np.array([max(-(2**31), min(2**31 - 1, v)) for v in flat], dtype=np.int32)
        if form == "short":
            return array("q", flat[:-1] if flat else [1])
        if form == "tuples4":
            return [tuple(row[:4]) for row in rows]
        if form == "memoryview":
            return memoryview(array("q", flat))
        if form == "str":
            return "1,2,3,4,5"
        return None

    def mutate(self, data: Any, mutations: tuple) -> Any:
        data = copy.deepcopy(data)
        for path, action, new_value, up in mutations:
            parent, key = None, None
            node = data
            for b in path:
                if isinstance(node, dict) and node:
                    keys = sorted(node, key=str)
                    parent, key = node, keys[b % len(keys)]
                elif isinstance(node, list) and node:
                    parent, key = node, b % len(node)
                else:
                    break
                node = parent[key]
            value = copy.deepcopy(new_value)
            if parent is None:
                continue
            if action <= 3:
                parent[key] = value
            elif action == 4 and isinstance(parent, dict):
                del parent[key]
            elif action == 4:
                parent.append(copy.deepcopy(parent[key]))  # a duplicate row
            elif action == 5 and isinstance(parent, list):
                parent.insert(0, copy.deepcopy(parent[key]))
            elif action == 5 and isinstance(node, int) and type(node) is not bool:
                parent[key] = node + (1 if up else -1)  # off by one
            elif action == 6 and isinstance(parent, list) and len(parent) > 1:
                parent[0], parent[key] = parent[key], parent[0]
            elif action == 6 and isinstance(node, int) and type(node) is not bool:
                parent[key] = -node
            elif isinstance(parent, list):
                del parent[key]
            else:
                parent[key] = value
        return data

    def apply(self, lane: Lane, op: str, spec: tuple) -> Any:
        e, b, val = lane.engine, lane.book, self.val
        if op == "submit" or op == "submit_typed":
            return e.submit(self.make_order(lane, spec[0]))
        if op == "submit_typed_raw":
            oid, side, ticks, lots, kw = spec
            return e.submit_raw_typed(val(lane, oid), side, ticks, lots, **kw)
        if op == "advance_time":
            _sym, step = spec
            now = e.time + step if isinstance(step, int) and step < INT64_MAX else step
            return (e.advance_time(now), e.time)  # "queries" reads the last trade price (sym may be unknown)
        if op == "submit_raw":
            oid, side, ticks, lots, kw, owner = spec
            return e.submit_raw(val(lane, oid), side, ticks, lots, owner=val(lane, owner), **kw)
        if op == "cancel":
            return e.cancel(spec[0], val(lane, spec[1]))
        if op == "cancel_raw":
            return e.cancel_raw(spec[0], val(lane, spec[1]))
        if op == "amend":
            return e.amend(spec[0], val(lane, spec[1]), quantity=spec[2], price=spec[3])
        if op == "amend_raw":
            return e.amend_raw(spec[0], val(lane, spec[1]), quantity=spec[2], price=spec[3])
        if op == "batch":
            form, rows, symbol = spec
            return e.execute_batch(self.batch_buffer(form, rows), symbol=symbol)
        if op == "snap_engine":
            data = e.snapshot()
            if spec[0]:
                data = json.loads(json.dumps(data))
            restored = type(e).from_snapshot(data)
            again = restored.snapshot()
            if again != data:
                raise Divergence(f"{lane.name}: engine snapshot round trip changed it:\n{data}\n{again}")
            lane.engine = restored
            lane.subscribe_all()
            return data
        if op == "snap_engine_bad":
            data = self.mutate(e.snapshot(), spec)
            restored = type(e).from_snapshot(data)
            lane.engine = restored
            lane.subscribe_all()
            self.crossable.update(restored.symbols)
            return restored.snapshot()
        if op == "snap_book":
            data = b.snapshot()
            if spec[0]:
                data = json.loads(json.dumps(data))
            restored = type(b).from_snapshot(data)
            again = restored.snapshot()
            if again != data:
                raise Divergence(f"{lane.name}: book snapshot round trip changed it:\n{data}\n{again}")
            lane.book = restored
            return data
        if op == "snap_book_bad":
            data = self.mutate(b.snapshot(), spec)
            lane.book = type(b).from_snapshot(data)
            return lane.book.snapshot()
        if op == "subscribe":
            lane.subscribers.append(spec[0])
            unsubscribe = lane.subscribe(spec[0])
            lane.reset_l2()
            return unsubscribe
        if op == "unsubscribe":
            for unsubscribe in lane.unsubs:
                unsubscribe()
            lane.subscribers, lane.unsubs = [], []
            lane.reset_l2()
            return None
        if op == "queries":
            sym, levels = spec
            return (
                e.top_of_book(sym), e.top_of_book_raw(sym), e.book(sym).depth(levels), e.next_trade_id,
                e.time, e.last_trade_price(sym),
            )  # fmt: skip
        if op == "add_order":
            return b.add_order(self.make_order(lane, spec[0]))
        if op == "add_raw":
            return b.add_raw(val(lane, spec[0]), spec[1], spec[2], spec[3])
        if op == "remove":
            return b.remove_order(val(lane, spec[0]))
        if op == "remove_raw":
            return b.remove_raw(val(lane, spec[0]))
        if op == "fill":
            return b.fill_order(val(lane, spec[0]), spec[1])
        if op == "fill_raw":
            return b.fill_raw(val(lane, spec[0]), spec[1])
        if op == "amend_order":
            return b.amend_order(val(lane, spec[0]), quantity=spec[1], price=spec[2])
        if op == "amend_book_raw":
            return b.amend_raw(val(lane, spec[0]), quantity=spec[1], price=spec[2])
        if op == "book_queries":
            oid, side, price, ticks, levels = spec
            out = []
            for fn in (
                lambda: b.get_order(val(lane, oid)),
                lambda: val(lane, oid) in b,
                lambda: b.level(side, price),
                lambda: b.orders_at(side, price),
                lambda: b.level_raw(side, ticks),
                lambda: b.depth(levels),
                lambda: (b.best_bid, b.best_ask, b.spread, b.mid_price, len(b.bids), len(b.asks)),
                lambda: [[norm(o) for o in lvl] for lvl in b.bids] + [[norm(o) for o in lvl] for lvl in b.asks],
            ):
                try:
                    out.append(("ok", norm(fn())))
                except Exception as exc:
                    if isinstance(exc, Divergence):
                        raise
                    out.append(("exc", exc_key(exc)))
            return out
        if op == "resubmit":
            if not lane.orders:
                return None
            order = lane.orders[spec[0] % len(lane.orders)]
            return e.submit(order) if spec[1] else b.add_order(order)
        raise AssertionError(op)

    # -- running and checking ------------------------------------------------------------------

    def run(self) -> None:
        r = self.r
        before = [self.state(lane) for lane in self.lanes]
        self.compare("initial state", before)
        for step in range(MAX_STEPS):
            if r.done:
                break
            op = r.pick(OPS)
            if op in ("batch",) and not self.cfg.batch:
                continue
            if op.startswith("snap") and not self.cfg.snapshots:
                continue
            spec = self.decode(op)
            where = f"step {step} {op}{spec!r}"
            outcomes = []
            for lane in self.lanes:
                fired = lane.fired + lane.calls
                lane.armed = True
                try:
                    value = self.apply(lane, op, spec)
                except Divergence:
                    raise
                except Exception as exc:
                    lane.armed = False
                    if isinstance(exc, (SystemError, MemoryError)):
                        raise Divergence(f"{where}: {lane.name} raised {exc!r}") from exc
                    outcomes.append(("exc", exc_key(exc), lane.fired + lane.calls != fired))
                else:
                    lane.armed = False
                    outcomes.append(("ok", norm(value), lane.fired + lane.calls != fired))
            after = [self.state(lane) for lane in self.lanes]
            # A hostile __eq__/__hash__ or a re-entrant callback acted: each backend calls those at
            # its own moments (CPython's dict skips hashing on an empty dict, a C loop may compare
            # owners in another order), so the two may now legitimately differ. If they do, the
            # program goes on with each backend checked only against its own invariants.
            hostile = any(self.hostile_outcome(o) for o in outcomes)
            if not self.desynced and hostile and (outcomes[0] != outcomes[1] or after[0] != after[1]):
                self.desynced = where
            if not self.desynced:
                self.compare(f"{where}: outcome", outcomes)
                self.compare(f"{where}: state", after)
            self.steps += 1
            if TRACE:
                print(
                    f"{where}\n    -> {_short(outcomes, 600)}{' [desynced]' if self.desynced else ''}", file=sys.stderr
                )
            broken = [problem for lane in self.lanes for problem in self.invariants(lane)]
            if broken:
                raise Divergence(f"{where}: " + "; ".join(broken))
            # a command that raised a TradebookError changed nothing (a restore replaces, it does not change)
            for lane, outcome, old, new in zip(self.lanes, outcomes, before, after, strict=True):
                refused = outcome[0] == "exc" and outcome[1][0] == "tradebook.errors" and not outcome[2]
                changed = (old["books"], old["book"]) != (new["books"], new["book"])
                if refused and changed and not op.startswith("snap"):
                    raise Divergence(f"{where}: {lane.name} raised {outcome[1]} but changed the state")
            before = after

    @staticmethod
    def hostile_outcome(outcome: tuple) -> bool:
        """Did a hostile hook fire, or a hostile exception come out, during this command?"""
        return outcome[2] or (
            outcome[0] == "exc" and outcome[1][1] == "RuntimeError" and "hostile" in str(outcome[1][2])
        )

    def compare(self, where: str, values: list[Any]) -> None:
        first = values[0]
        for lane, other in zip(self.lanes[1:], values[1:], strict=True):
            if other != first:
                path, a, b = _first_difference(first, other)
                raise Divergence(
                    f"{where}: {self.lanes[0].name} and {lane.name} disagree at {path}\n"
                    f"  {self.lanes[0].name}: {_short(a)}\n  {lane.name}: {_short(b)}"
                )

    def state(self, lane: Lane) -> dict[str, Any]:
        e = lane.engine
        books = [(e.symbols, norm(e.self_trade_prevention), e.next_trade_id)]
        for symbol in e.symbols:
            books.append(self.book_state(e.book(symbol)))
            books.append(e.top_of_book_raw(symbol))
        out = {
            "books": books,
            "book": self.book_state(lane.book),
            "orders": [norm(o) for o in lane.orders],
            "updates": lane.updates,
            "nested": lane.nested,
        }
        lane.updates, lane.nested = [], []
        return out

    @staticmethod
    def book_state(book: Any) -> Any:
        try:
            snap = ("ok", norm(book.snapshot()))
        except Exception as exc:
            snap = ("exc", exc_key(exc))
        return (
            book.symbol,
            len(book),
            book.next_sequence,
            book.best_bid_raw,
            book.best_ask_raw,
            book.depth_raw(1000),
            snap,
        )

    def invariants(self, lane: Lane) -> list[str]:
        """What is wrong with one lane's books (empty: nothing)."""
        problems = []
        e = lane.engine
        books = [(s, e.book(s)) for s in e.symbols] + [(None, lane.book)]
        for symbol, book in books:
            what = f"{lane.name} {'engine book ' + symbol if symbol else 'standalone book'}"
            try:
                book._check()
            except AssertionError as exc:
                problems.append(f"{what}: _check failed: {exc}")
            if symbol is not None and symbol not in self.crossable:
                bid, ask = book.best_bid_raw, book.best_ask_raw
                if bid is not None and ask is not None and bid >= ask:
                    problems.append(f"{what} is crossed: {bid} >= {ask}")
            if not 0 < book.next_sequence <= INT64_MAX + 1:
                problems.append(f"{what}: next_sequence {book.next_sequence} out of range")
        if not 0 < e.next_trade_id <= INT64_MAX + 1:
            problems.append(f"{lane.name} engine: next_trade_id {e.next_trade_id} out of range")
        return problems + lane.l2_problems()


def _first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any]:
    """The innermost place where two normalized values differ, for a readable report."""
    if type(a) is dict and type(b) is dict and a.keys() == b.keys():
        for key in a:
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}[{key!r}]")
    if type(a) in (list, tuple) and type(b) in (list, tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return path or "top", a, b


def _short(value: Any, limit: int = 4000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def run_one(data: bytes, cfg: Config | None = None) -> None:
    """Run one input; raises ``Divergence`` on any disagreement or broken invariant."""
    load()
    Program(data, CONFIG if cfg is None else cfg).run()


def config_for(path: str) -> Config:
    """The configuration a saved input was found with: ``name__no-reentry__no-extreme.bin`` style names."""
    cfg = Config()
    cfg.take_argv(["--" + part for part in os.path.basename(path).split(".")[0].split("__")[1:]])
    return cfg


# -- entry points --------------------------------------------------------------------------------


def replay(paths: list[str]) -> int:
    """Run saved inputs (files, or every file in a directory) without atheris; returns failures."""
    load()
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, f) for f in os.listdir(path) if not f.startswith("."))
        else:
            files.append(path)
    failed = 0
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        try:
            run_one(data, config_for(path) if "__no-" in os.path.basename(path) else None)
        except Exception as exc:
            failed += 1
            print(f"FAIL {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            print(f"ok   {path}")
    return failed


def _signature(exc: BaseException) -> str:
    """A failure's kind, without the step, the command and the numbers that a smaller input changes."""
    text = str(exc).split("\n")[0]
    text = text.split("): ", 1)[-1] if text.startswith("step ") else text
    return type(exc).__name__ + ":" + re.sub(r"[0-9]+", "#", text)


def minimize(path: str, out: str, cfg: Config | None = None) -> int:
    """Shrink a failing input (dropping chunks, then zeroing bytes) while it fails the same way."""
    load()
    cfg = cfg or (config_for(path) if "__no-" in os.path.basename(path) else CONFIG)
    with open(path, "rb") as fh:
        data = fh.read()

    def failure(candidate: bytes) -> str | None:
        try:
            run_one(candidate, cfg)
        except Exception as exc:
            return _signature(exc)
        return None

    wanted = failure(data)
    if wanted is None:
        print(f"{path} does not fail", file=sys.stderr)
        return 1
    chunk = max(1, len(data) // 2)
    while chunk:
        i = 0
        while i < len(data):
            candidate = data[:i] + data[i + chunk :]
            if failure(candidate) == wanted:
                data = candidate
            else:
                i += chunk
        chunk //= 2
    for i in range(len(data)):
        if data[i]:
            candidate = data[:i] + b"\0" + data[i + 1 :]
            if failure(candidate) == wanted:
                data = candidate
    with open(out, "wb") as fh:
        fh.write(data)
    print(f"{out}: {len(data)} bytes, fails with {wanted}", file=sys.stderr)
    return 0


def main() -> None:
    argv = CONFIG.take_argv(sys.argv)
    if len(argv) > 1 and argv[1] == "--replay":
        sys.exit(1 if replay(argv[2:]) else 0)
    if len(argv) == 4 and argv[1] == "--minimize":
        sys.exit(minimize(argv[2], argv[3]))
    import atheris

    if os.environ.get("FUZZ_NO_INSTRUMENT"):
        load()
    else:
        # coverage feedback from the pure-Python twin and the shared modules (the .so files are not
        # instrumented: libFuzzer sees the compiled core only through the pure twin's branches)
        with atheris.instrument_imports(include=["tradebook"]):
            load()
    print(f"fuzz_core: {CONFIG.describe()}", file=sys.stderr)
    # libFuzzer runs child processes for -fork, -jobs and -minimize_crash through the shell with
    # argv[0] as the command: make that this interpreter and this file, and hand the switches
    # down through the environment (the children do not see the --no-* flags).
    for attr, env in Config.FLAGS.values():
        if not getattr(CONFIG, attr):
            os.environ[env] = "1"
    argv = [f"{sys.executable} {os.path.abspath(__file__)}", *argv[1:]]
    atheris.Setup(argv, run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
