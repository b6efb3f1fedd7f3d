"""What is timed: one operation (book) or one flow (engine), one backend, one API, on a fresh ~200k-order book.

Shared by the pytest-benchmark suites (``test_book.py``, ``test_engine.py``) and
the report command (``report.py book``, ``report.py engine``), so both time
exactly the same loops on exactly the same workload (``workloads.py``).

A scenario owns a freshly built book (or engine). ``setup()`` (untimed) restores
the book's size, or hands out the stream's next batch (converted to ``Decimal``
for the Decimal API), and returns the next batch's argument; ``run(batch)``
(timed) performs the batch in a plain Python loop, the way a caller would, and
returns something to check; ``check()`` verifies the whole book against a
reference model of what the batches run so far should have left.

* :class:`BookScenario`: one operation (``OPS``: add, cancel, best bid/ask,
  depth(10), fill, amend; ``add_order_only`` in the Decimal API) on the book
  workload.
* :class:`EngineScenario`: one flow (``FLOWS``: mixed, matching) of the engine
  streams; engine loops count the trades every report carries (so they exist as
  ``Trade`` objects), and ``check()`` compares the trade counts per batch, the
  number of resting orders and every level with the generator's reference run.

Backends (``BACKENDS``): ``python`` (``tradebook._book_py`` and
``tradebook._engine_py``), ``cython`` (the compiled ``tradebook._book`` and
``tradebook._engine``; unavailable with the import error when not built) and
``sortedcontainers`` (``baselines.SortedBook`` / ``SortedMatcher``, raw API
only).
"""

from __future__ import annotations

import gc
import importlib
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from itertools import repeat
from types import SimpleNamespace
from typing import Any

import workloads as wl
from baselines import SortedBook, load_matcher

__all__ = [
    "API_DECIMAL",
    "API_RAW",
    "BACKENDS",
    "BATCH",
    "FLOWS",
    "OPS",
    "BatchScenario",
    "BookScenario",
    "EngineScenario",
    "backend_unavailable",
    "check_trades_materialised",
    "load_backend",
    "run_stream",
    "supports",
]

BACKENDS = ("python", "cython", "sortedcontainers")
API_RAW = "raw"
API_DECIMAL = "decimal"
OPS = ("add", "cancel", "best", "depth", "fill", "amend")
FLOWS = ("mixed", "matching")
# Operations per timed batch. Depth is ~10-30x dearer than the rest in pure Python.
BATCH = {"add": 10_000, "add_order_only": 10_000, "cancel": 10_000, "best": 10_000, "depth": 1_000}
BATCH["fill"] = BATCH["amend"] = 10_000
DEPTH_LEVELS = 10
SORTED_OPS = ("add", "cancel", "best", "depth", *FLOWS)  # what the sortedcontainers baselines implement
SYMBOL = wl.SYMBOL
_IOC = wl.IOC


def load_backend(name: str) -> SimpleNamespace:
    """A namespace with ``name``, ``Order``, ``OrderBook``, ``MatchingEngine`` and ``Trade`` for one backend.

    ``python``: ``tradebook._book_py`` and ``tradebook._engine_py``; ``cython``:
    the compiled ``tradebook._book`` and ``tradebook._engine`` (ImportError if
    they are not built); ``sortedcontainers``: the baseline book (``Order``,
    ``MatchingEngine`` and ``Trade`` are None: it has no Decimal API, and the
    engine scenarios use ``baselines.load_matcher``).
    """
    if name == "python":
        book = importlib.import_module("tradebook._book_py")
        engine = importlib.import_module("tradebook._engine_py")
    elif name == "cython":
        book = importlib.import_module("tradebook._book")
        importlib.import_module("tradebook._avl")
        engine = importlib.import_module("tradebook._engine")
    elif name == "sortedcontainers":
        return SimpleNamespace(name=name, Order=None, OrderBook=SortedBook, MatchingEngine=None, Trade=None)
    else:
        raise ValueError(f"unknown backend {name!r}")
    return SimpleNamespace(
        name=name,
        Order=book.Order,
        OrderBook=book.OrderBook,
        MatchingEngine=engine.MatchingEngine,
        Trade=engine.Trade,
        module=book,
    )


def backend_unavailable(name: str) -> str | None:
    """None if backend ``name`` can be loaded, else the reason it cannot."""
    try:
        load_backend(name)
    except ImportError as exc:
        return f"{name} backend not available: {exc}"
    return None


def supports(backend: str, api: str, op: str) -> bool:
    """Whether the (backend, api, operation or flow) combination exists."""
    if backend == "sortedcontainers":
        return api == API_RAW and op in SORTED_OPS
    return not (op == "add_order_only" and api != API_DECIMAL)


def _batches(items: list[Any], size: int, index: int, *, wrap: bool) -> list[Any]:
    count = len(items) // size
    if index >= count:
        if not wrap:
            raise RuntimeError(f"workload exhausted: only {count} distinct batches of {size}")
        index %= count
    return items[index * size : (index + 1) * size]


class BookScenario:
    """One operation on one freshly built 200k-order book (see the module docstring)."""

    def __init__(
        self,
        backend: SimpleNamespace,
        api: str,
        op: str,
        workload: wl.Workload | None = None,
        batch_size: int | None = None,
    ) -> None:
        if not supports(backend.name, api, op):
            raise ValueError(f"{backend.name} has no {op} in the {api} API")
        self.backend = backend
        self.api = api
        self.op = op
        self.workload = workload if workload is not None else wl.get_workload()
        self.batch_size = batch_size if batch_size is not None else BATCH[op]
        self.ops_per_batch = self.batch_size * (2 if op == "best" else 1)
        self.batches = 0  # batches handed out by setup() so far
        self.baseline = backend.name == "sortedcontainers"
        # Free the previous case's book first (its FIFO links are reference cycles that
        # only a full collection frees) so it does not weigh on this case's GC passes.
        gc.collect()
        if self.baseline:
            self.book = SortedBook(wl.instrument())
            add = self.book.add
            for order in self.workload.orders:
                add(*order)
        else:
            self.book = wl.build_book_raw(backend.OrderBook, self.workload.orders)
        gc.collect()  # settle the build: the book starts out as long-lived (oldest-generation) objects
        self._pending: list[Any] = []  # state to undo in the next setup()
        prepare: Callable[[], None] = getattr(self, f"_prepare_{op}")
        prepare()

    @property
    def name(self) -> str:
        return f"{self.op}[{self.backend.name}-{self.api}]"

    # -- untimed helpers on the book (raw API: the cheapest way to restore state) ----

    def _add_back(self, orders: list[wl.OrderTuple]) -> None:
        add = self.book.add if self.baseline else self.book.add_raw
        for order in orders:
            add(*order)

    def _remove(self, ids: list[int]) -> None:
        remove = self.book.cancel if self.baseline else self.book.remove_raw
        for oid in ids:
            remove(oid)

    # -- add ------------------------------------------------------------------------

    def _prepare_add(self) -> None:
        adds = self.workload.adds[: self.batch_size]
        if len(adds) < self.batch_size:
            raise ValueError(f"the workload has only {len(adds)} prepared adds")
        self._adds = adds
        self._batch: list[Any] = wl.decimal_orders(adds) if self.api == API_DECIMAL else adds
        book, Order = self.book, self.backend.Order

        if self.baseline or self.api == API_RAW:
            add_raw = book.add if self.baseline else book.add_raw

            def run(ops: list[Any]) -> int:
                add = add_raw
                for oid, side, price, qty in ops:
                    add(oid, side, price, qty)
                return len(book)
        else:

            def run(ops: list[Any]) -> int:
                add = book.add_order
                for oid, side, price, qty in ops:
                    add(Order(oid, side, price, qty))
                return len(book)

        self.run = run

    def _setup_add(self) -> Any:
        if self.batches:
            self._remove([o[0] for o in self._adds])
        return self._batch

    def _expect_add(self) -> tuple[int, wl.Levels]:
        added = self._adds if self.batches else []
        changes = [(side, ticks, lots, 1) for _, side, ticks, lots in added]
        return len(self.workload.orders) + len(added), self.workload.levels_with(changes)

    # -- add_order only (Decimal API, Order objects built untimed) ------------------------

    def _prepare_add_order_only(self) -> None:
        self._prepare_add()
        book = self.book

        def run(orders: list[Any]) -> int:
            add = book.add_order
            for order in orders:
                add(order)
            return len(book)

        self.run = run

    def _setup_add_order_only(self) -> Any:
        self._setup_add()
        Order = self.backend.Order
        return [Order(*row) for row in self._batch]

    _expect_add_order_only = _expect_add

    # -- cancel ------------------------------------------------------------------

    def _prepare_cancel(self) -> None:
        book = self.book
        cancel = book.cancel if self.baseline else book.remove_raw if self.api == API_RAW else book.remove_order

        def run(ids: list[int]) -> int:
            remove = cancel
            for oid in ids:
                remove(oid)
            return len(book)

        self.run = run

    def _setup_cancel(self) -> Any:
        orders = self.workload.orders
        if self._pending:  # put the previous batch back (at the back of its levels)
            self._add_back([orders[oid - 1] for oid in self._pending])
        # Each batch cancels fresh random resting orders; after 20 batches ids repeat,
        # which is still valid since every batch is restored before the next.
        self._pending = _batches(self.workload.cancel_ids, self.batch_size, self.batches, wrap=True)
        return self._pending

    def _expect_cancel(self) -> tuple[int, wl.Levels]:
        orders = self.workload.orders
        changes = [(side, ticks, -lots, -1) for _, side, ticks, lots in (orders[oid - 1] for oid in self._pending)]
        return len(orders) - len(self._pending), self.workload.levels_with(changes)

    # -- best bid / ask ---------------------------------------------------------------

    def _prepare_best(self) -> None:
        book = self.book
        if self.baseline:

            def run(n: int) -> tuple[Any, Any]:
                bid = ask = None
                for _ in repeat(None, n):
                    bid = book.best_bid
                    ask = book.best_ask
                return bid, ask
        elif self.api == API_RAW:

            def run(n: int) -> tuple[Any, Any]:
                bid = ask = None
                for _ in repeat(None, n):
                    bid = book.best_bid_raw
                    ask = book.best_ask_raw
                return bid, ask
        else:

            def run(n: int) -> tuple[Any, Any]:
                bid = ask = None
                for _ in repeat(None, n):
                    bid = book.best_bid
                    ask = book.best_ask
                return bid.price, ask.price  # type: ignore[union-attr]

        self.run = run

    def _setup_best(self) -> Any:
        return self.batch_size

    def _expect_best(self) -> tuple[int, wl.Levels]:
        return len(self.workload.orders), self.workload.levels

    # -- depth(10) ------------------------------------------------------------------

    def _prepare_depth(self) -> None:
        book = self.book
        if self.baseline or self.api == API_RAW:
            depth = book.depth if self.baseline else book.depth_raw

            def run(n: int) -> Any:
                d = None
                for _ in repeat(None, n):
                    d = depth(DEPTH_LEVELS)
                return d
        else:

            def run(n: int) -> Any:
                d = None
                for _ in repeat(None, n):
                    d = book.depth(DEPTH_LEVELS)
                return d

        self.run = run

    _setup_depth = _setup_best
    _expect_depth = _expect_best

    # -- fill (1-lot partial fills of random resting orders) -------------------------------

    def _prepare_fill(self) -> None:
        book = self.book
        if self.api == API_RAW:

            def run(ids: list[int]) -> int:
                fill = book.fill_raw
                for oid in ids:
                    fill(oid, 1)
                return len(book)
        else:
            one_lot = Decimal(wl.LOT)

            def run(ids: list[int]) -> int:
                fill = book.fill_order
                for oid in ids:
                    fill(oid, one_lot)
                return len(book)

        self.run = run

    def _setup_fill(self) -> Any:
        # Fresh orders every batch (each has >= 2 lots), so the book keeps its size.
        return _batches(self.workload.fill_ids, self.batch_size, self.batches, wrap=False)

    def _expect_fill(self) -> tuple[int, wl.Levels]:
        orders = self.workload.orders
        filled = self.workload.fill_ids[: self.batches * self.batch_size]
        changes = [(orders[oid - 1][1], orders[oid - 1][2], -1, 0) for oid in filled]
        return len(orders), self.workload.levels_with(changes)

    # -- amend (half: quantity down one lot; half: price moves 1-5 ticks) ---------------------

    def _prepare_amend(self) -> None:
        book = self.book
        if self.api == API_RAW:
            self._convert: Callable[[list[Any]], list[Any]] = list

            def run(ops: list[Any]) -> int:
                amend = book.amend_raw
                for oid, qty, price in ops:
                    amend(oid, quantity=qty, price=price)
                return len(book)
        else:
            inst = wl.instrument()

            def convert(ops: list[Any]) -> list[Any]:
                return [
                    (
                        oid,
                        None if q is None else inst.lots_to_quantity(q),
                        None if p is None else inst.ticks_to_price(p),
                    )
                    for oid, q, p in ops
                ]

            self._convert = convert

            def run(ops: list[Any]) -> int:
                amend = book.amend_order
                for oid, qty, price in ops:
                    amend(oid, quantity=qty, price=price)
                return len(book)

        self.run = run

    def _setup_amend(self) -> Any:
        # Fresh orders every batch; Decimals are prepared here, outside the timing.
        return self._convert(_batches(self.workload.amends, self.batch_size, self.batches, wrap=False))

    def _expect_amend(self) -> tuple[int, wl.Levels]:
        orders = self.workload.orders
        changes: list[tuple[Any, int, int, int]] = []
        for oid, qty, price in self.workload.amends[: self.batches * self.batch_size]:
            _, side, ticks, lots = orders[oid - 1]  # each order is amended at most once
            if qty is not None:
                changes.append((side, ticks, qty - lots, 0))
            if price is not None:
                changes.append((side, ticks, -lots, -1))
                changes.append((side, price, lots, 1))
        return len(orders), self.workload.levels_with(changes)

    # -- driving --------------------------------------------------------------------

    def setup(self) -> Any:
        """Restore the book's size and return the next batch's argument (untimed)."""
        arg = getattr(self, f"_setup_{self.op}")()
        self.batches += 1
        return arg

    def pedantic_setup(self) -> tuple[tuple[Any], dict[str, Any]]:
        """``setup()`` in the shape ``benchmark.pedantic(setup=...)`` wants."""
        return (self.setup(),), {}

    run: Callable[[Any], Any]

    def expected_result(self) -> Any:
        """What the last ``run()`` must have returned."""
        size, levels = getattr(self, f"_expect_{self.op}")()
        inst = wl.instrument()
        p, q = inst.ticks_to_price, inst.lots_to_quantity
        if self.op == "best":
            (bids, asks) = wl.depth_of(levels, 1)
            bid, ask = bids[0][0], asks[0][0]
            return (p(bid), p(ask)) if self.api == API_DECIMAL else (bid, ask)
        if self.op == "depth":
            bids, asks = wl.depth_of(levels, DEPTH_LEVELS)
            if self.api == API_DECIMAL:
                return [(p(t), q(n), c) for t, n, c in bids], [(p(t), q(n), c) for t, n, c in asks]
            return bids, asks
        return size

    def check(self, *, deep: bool = False) -> None:
        """Assert the book holds exactly what the batches run so far should leave.

        Compares the order count and every level's total and order count with the
        reference model; ``deep`` also runs the book's own ``_check()`` invariant
        walk when it has one.
        """
        size, levels = getattr(self, f"_expect_{self.op}")()
        book = self.book
        assert len(book) == size, f"{self.name}: {len(book)} orders resting, expected {size}"
        expected = wl.depth_of(levels, 1 << 30)
        got = book.depth(1 << 30) if self.baseline else book.depth_raw(1 << 30)
        assert got == expected, f"{self.name}: level totals differ from the reference model"
        if self.op in ("add", "add_order_only") and self.batches:
            assert all(o[0] in book for o in self._adds), f"{self.name}: an added order is missing"
        if self.op == "cancel":
            assert not any(oid in book for oid in self._pending), f"{self.name}: a cancelled order still rests"
        if deep and hasattr(book, "_check"):
            book._check()


# == the engine ==============================================================


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

    def __init__(self, backend: SimpleNamespace, api: str, stream: wl.Stream, *, settle_gc: bool = True) -> None:
        if not supports(backend.name, api, stream.name):
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
            self.engine: Any = load_matcher(stream.orders, wl.instrument())
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
            return wl.decimal_mixed(commands) if self.flow == "mixed" else wl.decimal_matching(commands)
        return commands

    def pedantic_setup(self) -> tuple[tuple[Any], dict[str, Any]]:
        """``setup()`` in the shape ``benchmark.pedantic(setup=...)`` wants."""
        return (self.setup(),), {}

    def batch_info(self, index: int) -> wl.Batch:
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


# == execute_batch ============================================================================


class BatchScenario:
    """One flow of the engine streams through ``MatchingEngine.execute_batch`` on a freshly built engine.

    ``setup()`` (untimed) turns the stream's next batch into ``array("q")`` rows
    (matching-heavy: a takers' array and a refills' array per chunk of 16);
    ``run(rows)`` (timed) makes one ``execute_batch`` call per array and counts
    the trades of every result (they are ``Trade`` objects); ``check()``
    compares the trades per batch (matching-heavy: the takers'), the resting
    orders and every level with the generator's reference run.
    """

    def __init__(self, backend: SimpleNamespace, stream: wl.Stream) -> None:
        if backend.MatchingEngine is None:
            raise ValueError(f"{backend.name} has no execute_batch")
        self.backend = backend
        self.stream = stream
        self.flow = stream.name
        self.batches = 0
        self.results: list[int] = []  # trades per run()
        gc.collect()
        self.engine = backend.MatchingEngine([wl.instrument()])
        self.engine.execute_batch(wl.batch_rows(stream.orders))
        self.book = self.engine.book(SYMBOL)
        gc.collect()
        execute, results = self.engine.execute_batch, self.results
        if self.flow == "mixed":

            def run(rows: Any) -> int:
                n = len(execute(rows).trades)
                results.append(n)
                return n
        else:

            def run(chunks: list[Any]) -> int:
                n = 0
                for takers, refills in chunks:
                    n += len(execute(takers).trades)
                    execute(refills)
                results.append(n)
                return n

        self.run: Callable[[Any], int] = run

    @property
    def name(self) -> str:
        return f"batch-{self.flow}[{self.backend.name}]"

    def setup(self) -> Any:
        """The next batch as rows (untimed)."""
        if self.batches >= len(self.stream.batches):
            raise RuntimeError(f"{self.name}: the stream has only {len(self.stream.batches)} batches")
        commands = self.stream.batches[self.batches].commands
        self.batches += 1
        if self.flow == "mixed":
            return wl.mixed_rows(commands)
        return [(wl.taker_rows(takers), wl.batch_rows(refills)) for takers, refills in commands]

    def pedantic_setup(self) -> tuple[tuple[Any], dict[str, Any]]:
        """``setup()`` in the shape ``benchmark.pedantic(setup=...)`` wants."""
        return (self.setup(),), {}

    def check(self, *, deep: bool = False) -> None:
        """Assert the trades and the book match the reference run of the batches handed out so far."""
        expected = [b.n_trades for b in self.stream.batches[: self.batches]]
        assert self.results == expected, f"{self.name}: trades per batch {self.results}, expected {expected}"
        if not self.batches:
            return
        last = self.stream.batches[self.batches - 1]
        assert len(self.book) == last.orders_after, f"{self.name}: {len(self.book)} orders rest"
        assert self.book.depth_raw(1 << 30) == last.depth_after, f"{self.name}: levels differ from the reference"
        if deep:
            self.book._check()


class ArrayScenario(BatchScenario):
    """A one-call-a-batch flow (mixed or add-heavy) through ``MatchingEngine.execute_array``.

    ``setup()`` (untimed) turns the next batch into a ``COMMAND_DTYPE`` array;
    ``run(rows)`` (timed) makes one ``execute_array`` call and counts the rows
    of its trades array (no ``Trade`` objects); ``check()`` is the batch one.
    """

    def __init__(self, backend: SimpleNamespace, stream: wl.Stream) -> None:
        super().__init__(backend, stream)
        execute, results = self.engine.execute_array, self.results

        def run(rows: Any) -> int:
            n = len(execute(rows).trades)
            results.append(n)
            return n

        self.run = run

    @property
    def name(self) -> str:
        return f"array-{self.flow}[{self.backend.name}]"

    def setup(self) -> Any:
        """The next batch as a ``COMMAND_DTYPE`` array (untimed)."""
        if self.batches >= len(self.stream.batches):
            raise RuntimeError(f"{self.name}: the stream has only {len(self.stream.batches)} batches")
        commands = self.stream.batches[self.batches].commands
        self.batches += 1
        return wl.command_array(wl.mixed_rows(commands))


def run_stream(benchmark: Any, scenario: Any) -> list[wl.Batch]:
    """Run a stream scenario's batches under ``benchmark.pedantic`` (the first one a warm-up) and check it.

    Returns the timed batches, in the order of ``benchmark.stats.stats.data``;
    records ``ns_per_command_median`` and ``commands_per_s`` when timing.
    """
    stream = scenario.stream
    rounds = len(stream.batches) - 1
    benchmark.pedantic(
        scenario.run,
        setup=scenario.pedantic_setup,
        rounds=max(rounds, 1),
        warmup_rounds=1 if rounds else 0,
        iterations=1,
    )
    scenario.check(deep=benchmark.disabled)
    timed = stream.batches[: scenario.batches][-rounds:] if rounds else []  # the warm-up batch is not in the stats
    if benchmark.stats is not None:
        per_command = [t * 1e9 / b.n_commands for t, b in zip(benchmark.stats.stats.data, timed, strict=True)]
        median = statistics.median(per_command)
        benchmark.extra_info["ns_per_command_median"] = round(median, 1)
        benchmark.extra_info["commands_per_s"] = round(1e9 / median)
    return timed
