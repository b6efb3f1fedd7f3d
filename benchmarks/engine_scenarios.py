"""Matching-engine scenarios: one flow, one backend, one API, on a fresh ~200k-order book.

Shared by ``test_bench_engine.py`` (pytest-benchmark) and ``engine_ratios.py`` so
both time exactly the same loops on exactly the same command streams
(``engine_workload.py``).

An :class:`EngineScenario` owns a freshly built engine (or the sortedcontainers
matcher). ``setup()`` (untimed) hands out the stream's next batch, converted to
``Decimal`` for the Decimal API; ``run(batch)`` (timed) drives the engine through
it in a plain Python loop, the way a caller would, counting the trades every
report carries (so they exist as ``Trade`` objects); ``check()`` compares the
trade counts per batch, the number of resting orders and every level with what
the generator's reference run says a correct engine must show.

Backends: ``python`` (``tradebook._engine_py`` on ``tradebook._book_py``),
``cython`` (the compiled ``tradebook._engine`` on ``tradebook._book``; unavailable
with the import error when it is not built) and ``sortedcontainers``
(``sorted_matcher.SortedMatcher``, raw API only).
"""

from __future__ import annotations

import gc
import importlib
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import engine_workload as ew
import workload as wl

__all__ = [
    "API_DECIMAL",
    "API_RAW",
    "BACKENDS",
    "FLOWS",
    "EngineScenario",
    "backend_unavailable",
    "check_trades_materialised",
    "load_backend",
    "supports",
]

BACKENDS = ("python", "cython", "sortedcontainers")
API_RAW = "raw"
API_DECIMAL = "decimal"
FLOWS = ("mixed", "matching")
SYMBOL = wl.SYMBOL
_IOC = ew.IOC


def load_backend(name: str) -> SimpleNamespace:
    """A namespace with ``name``, ``MatchingEngine``, ``Order`` and ``Trade`` (None for the baseline)."""
    if name == "python":
        engine = importlib.import_module("tradebook._engine_py")
        book = importlib.import_module("tradebook._book_py")
    elif name == "cython":
        engine = importlib.import_module("tradebook._engine")
        book = importlib.import_module("tradebook._book")
    elif name == "sortedcontainers":
        return SimpleNamespace(name=name, MatchingEngine=None, Order=None, Trade=None)
    else:
        raise ValueError(f"unknown backend {name!r}")
    order = getattr(engine, "Order", None) or book.Order
    return SimpleNamespace(name=name, MatchingEngine=engine.MatchingEngine, Order=order, Trade=engine.Trade)


def backend_unavailable(name: str) -> str | None:
    """None if backend ``name`` can be loaded, else why not."""
    try:
        load_backend(name)
    except ImportError as exc:
        return f"{name} engine not available: {exc}"
    return None


def supports(backend: str, api: str) -> bool:
    """The sortedcontainers matcher has no Decimal API."""
    return api == API_RAW or backend != "sortedcontainers"


def check_trades_materialised(backend: SimpleNamespace) -> None:
    """``report.trades`` is a list of real ``Trade`` objects (what the loops count is what a caller gets)."""
    engine = backend.MatchingEngine([wl.instrument()])
    engine.submit_raw(1, wl.SELL, 100, 5)
    engine.submit_raw(2, wl.SELL, 101, 5)
    report = engine.submit_raw(3, wl.BUY, 101, 7, time_in_force=_IOC)
    trades = report.trades
    assert type(trades) is list, f"{backend.name}: report.trades is a {type(trades).__name__}, not a list"
    assert all(type(t) is backend.Trade for t in trades), f"{backend.name}: trades are not Trade objects"
    assert [(t.price_ticks, t.quantity_lots, t.maker_order_id, t.taker_order_id) for t in trades] == [
        (100, 5, 1, 3),
        (101, 2, 2, 3),
    ], f"{backend.name}: wrong trades {trades!r}"


class EngineScenario:
    """One flow on one freshly built book (see the module docstring)."""

    def __init__(self, backend: SimpleNamespace, api: str, stream: ew.Stream, *, settle_gc: bool = True) -> None:
        if not supports(backend.name, api):
            raise ValueError(f"{backend.name} has no {api} API")
        self.backend = backend
        self.api = api
        self.stream = stream
        self.flow = stream.name
        self.batches = 0  # batches handed out by setup() so far
        self.results: list[Any] = []  # what each run() returned
        self.baseline = backend.name == "sortedcontainers"
        if settle_gc:  # free the previous case's book before building this one (timed runs only: it is slow)
            gc.collect()
        if self.baseline:  # bulk-loaded: the state SortedMatcher.add() would leave, faster
            self.engine: Any = ew.load_matcher(stream.orders)
            self.book: Any = self.engine
        else:
            self.engine = backend.MatchingEngine([wl.instrument()])
            self.book = self.engine.book(SYMBOL)
            add = self.book.add_raw
            for order in stream.orders:
                add(*order)
        if settle_gc:
            gc.collect()  # the book starts out as long-lived objects
        self.run: Callable[[Any], Any] = getattr(self, f"_make_{self.flow}")()

    @property
    def name(self) -> str:
        return f"{self.flow}[{self.backend.name}-{self.api}]"

    # -- mixed flow ---------------------------------------------------------------------

    def _make_mixed(self) -> Callable[[Any], Any]:
        engine, results = self.engine, self.results
        if self.baseline:
            submit, cancel, amend = engine.submit, engine.cancel, engine.amend

            def run(cmds: list[Any]) -> int:
                n = 0
                for kind, oid, side, price, qty, tif in cmds:
                    if kind == 0:
                        n += len(submit(oid, side, price, qty, tif is _IOC))
                    elif kind == 1:
                        cancel(oid)
                    else:
                        n += len(amend(oid, qty, price))
                results.append(n)
                return n
        elif self.api == API_RAW:
            submit, cancel, amend = engine.submit_raw, engine.cancel_raw, engine.amend_raw

            def run(cmds: list[Any]) -> int:
                n = 0
                for kind, oid, side, price, qty, tif in cmds:
                    if kind == 0:
                        n += len(submit(oid, side, price, qty, time_in_force=tif).trades)
                    elif kind == 1:
                        cancel(SYMBOL, oid)
                    else:
                        n += len(amend(SYMBOL, oid, quantity=qty, price=price).trades)
                results.append(n)
                return n
        else:
            submit, cancel, amend = engine.submit, engine.cancel, engine.amend
            Order = self.backend.Order

            def run(cmds: list[Any]) -> int:
                n = 0
                for kind, oid, side, price, qty, tif in cmds:
                    if kind == 0:
                        n += len(submit(Order(oid, side, price, qty, time_in_force=tif)).trades)
                    elif kind == 1:
                        cancel(SYMBOL, oid)
                    else:
                        n += len(amend(SYMBOL, oid, quantity=qty, price=price).trades)
                results.append(n)
                return n

        return run

    # -- matching-heavy -----------------------------------------------------------------
    #
    # Each chunk's marketable orders are timed on their own (perf_counter_ns around
    # the chunk of 16, included in the figure); the refills that follow are not.
    # run() returns (trades, taker-only ns); pytest-benchmark's own clock sees both.

    def _make_matching(self) -> Callable[[Any], Any]:
        engine, results = self.engine, self.results
        clock = time.perf_counter_ns
        if self.baseline:
            submit = engine.submit

            def run(chunks: list[Any]) -> tuple[int, int]:
                n = spent = 0
                for takers, refills in chunks:
                    t0 = clock()
                    for oid, side, price, qty, tif in takers:
                        n += len(submit(oid, side, price, qty, tif is _IOC))
                    spent += clock() - t0
                    for oid, side, price, qty in refills:
                        submit(oid, side, price, qty)
                results.append((n, spent))
                return n, spent
        elif self.api == API_RAW:
            submit = engine.submit_raw

            def run(chunks: list[Any]) -> tuple[int, int]:
                n = spent = 0
                for takers, refills in chunks:
                    t0 = clock()
                    for oid, side, price, qty, tif in takers:
                        n += len(submit(oid, side, price, qty, time_in_force=tif).trades)
                    spent += clock() - t0
                    for oid, side, price, qty in refills:
                        submit(oid, side, price, qty)
                results.append((n, spent))
                return n, spent
        else:
            submit = engine.submit
            Order = self.backend.Order

            def run(chunks: list[Any]) -> tuple[int, int]:
                n = spent = 0
                for takers, refills in chunks:
                    t0 = clock()
                    for oid, side, price, qty, tif in takers:
                        n += len(submit(Order(oid, side, price, qty, time_in_force=tif)).trades)
                    spent += clock() - t0
                    for oid, side, price, qty in refills:
                        submit(Order(oid, side, price, qty))
                results.append((n, spent))
                return n, spent

        return run

    # -- driving --------------------------------------------------------------------------

    def setup(self) -> Any:
        """The next batch's argument (untimed; Decimals are made here for the Decimal API)."""
        if self.batches >= len(self.stream.batches):
            raise RuntimeError(f"{self.name}: the stream has only {len(self.stream.batches)} batches")
        commands = self.stream.batches[self.batches].commands
        self.batches += 1
        if self.api == API_DECIMAL:
            return ew.decimal_mixed(commands) if self.flow == "mixed" else ew.decimal_matching(commands)
        return commands

    def pedantic_setup(self) -> tuple[tuple[Any], dict[str, Any]]:
        """``setup()`` in the shape ``benchmark.pedantic(setup=...)`` wants."""
        return (self.setup(),), {}

    def batch_info(self, index: int) -> ew.Batch:
        return self.stream.batches[index]

    def trades_per_batch(self) -> list[int]:
        """The trades each run() counted (matching-heavy: the marketable orders')."""
        return [r[0] if isinstance(r, tuple) else r for r in self.results]

    def check(self, *, deep: bool = False) -> None:
        """Assert the trades and the book match the reference run of the batches handed out so far.

        Every batch must have been run exactly once, in order. ``deep`` also runs
        the book's own ``_check()`` invariant walk when it has one.
        """
        expected = [b.n_trades for b in self.stream.batches[: self.batches]]
        got = self.trades_per_batch()
        assert got == expected, f"{self.name}: trades per batch {got}, the reference run printed {expected}"
        if not self.batches:
            return
        last = self.stream.batches[self.batches - 1]
        book = self.book
        assert len(book) == last.orders_after, f"{self.name}: {len(book)} orders rest, expected {last.orders_after}"
        depth = book.depth(1 << 30) if self.baseline else book.depth_raw(1 << 30)
        assert depth == last.depth_after, f"{self.name}: the book's levels differ from the reference run"
        if deep and hasattr(book, "_check"):
            book._check()
