"""The contestants of ``compare.py``: tradebook and the other Python order books, behind one small interface.

Each contestant wraps one library the way its own documentation uses it, with
its fastest documented calls, and nothing of ours inside its timed loops:

* inputs are converted to the library's own types before the clock starts
  (ints for tradebook's raw API, ``Decimal`` for its Decimal API, ``Price`` /
  ``Quantity`` / ``BookOrder`` objects for nautilus-trader, ``Order`` objects for
  pyorderbook, side strings for nanobook), so a loop times the library's calls
  plus the bare Python ``for`` loop that drives them, the same loop for all;
* libraries that number orders themselves (lightmatchingengine, nanobook)
  get their ids read back outside the timing (both count up from 1 by one per
  submitted order, which ``check()`` verifies);
* ``levels()`` reads the book's best ten levels a side for the correctness
  check after timing, through whatever the library offers (for
  lightmatchingengine and pyorderbook, which have no depth call, their public
  attributes).

Two tables, two kinds of contestant. *Books* (``TABLE_BOOK``) store resting
orders and do not match: tradebook's ``OrderBook``, the sortedcontainers
baseline, ``order-book`` (an L2 book: one size per price, set by the caller)
and nautilus-trader's L3 ``OrderBook``. *Engines* (``TABLE_ENGINE``) match every
incoming order: tradebook's ``MatchingEngine``, the sortedcontainers matcher,
lightmatchingengine, nanobook, pyorderbook and matching-engine.

Operations (``None`` from ``api`` means the library has no call for it):

* ``add``: rest a new limit order that does not cross (engines check it against
  the opposite side first, as they must);
* ``cancel``: cancel a random resting order;
* ``top``: read the best bid and the best ask price (one op = both);
* ``depth``: read the best ten levels of both sides (price, size per level);
* ``update_top`` (books): rest one order, then read the best bid and ask, what a
  feed handler does per message;
* ``match`` (engines): a marketable limit order that sweeps 1-5 levels and
  fills completely, its trades counted from the report.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Callable, Iterable
from decimal import Decimal
from itertools import repeat
from typing import Any, ClassVar

import workloads as wl
from baselines import SortedBook, load_matcher
from tradebook import Side, TimeInForce

__all__ = ["CONTESTANTS", "TABLE_BOOK", "TABLE_ENGINE", "Contestant", "make"]

TABLE_BOOK = "book"
TABLE_ENGINE = "engine"
SYMBOL = wl.SYMBOL
DEPTH = 10
BUY, SELL = Side.BUY, Side.SELL
IOC = TimeInForce.IOC

OrderTuple = tuple[int, Side, int, int]
Levels = tuple[list[tuple[int, int]], list[tuple[int, int]]]


def dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class Contestant:
    """One library (and API) under test; subclasses fill in the operations they support."""

    key = ""
    label = ""
    table = TABLE_BOOK
    dist: str | None = None  # the distribution whose version is reported
    module = ""  # imported by load()
    #: the calls each operation times, for the page (None: no such call)
    api: ClassVar[dict[str, str | None]] = {}
    #: (minimum Python, why) for peers that cannot be installed on older Pythons
    requires: tuple[tuple[int, int], str] | None = None

    def __init__(self) -> None:
        self.info: dict[int, tuple[Side, int, int]] = {}  # resting id -> (side, ticks, lots)

    # -- availability ------------------------------------------------------------------

    def unavailable(self) -> str | None:
        """None if the library can be used here, else a short reason (the table prints it)."""
        if self.requires is not None and sys.version_info < self.requires[0] and dist_version(self.dist or "") is None:
            return f"not installable on Python {sys.version_info[0]}.{sys.version_info[1]}: {self.requires[1]}"
        if self.dist is not None and dist_version(self.dist) is None:
            return "not installed"
        try:
            self.load()
        except Exception as exc:  # an installed peer that cannot be imported is reported, not dropped
            return f"installed, but import failed: {type(exc).__name__}: {exc}"
        return None

    def version(self) -> str | None:
        if self.dist:
            return dist_version(self.dist)
        return str(importlib.import_module("tradebook").__version__) if self.key.startswith("tradebook") else None

    def load(self) -> None:
        if self.module:
            importlib.import_module(self.module)

    def supports(self, op: str) -> bool:
        return self.api.get(op) is not None

    # -- the book ------------------------------------------------------------------------

    def build(self, orders: Iterable[OrderTuple]) -> None:
        """A fresh book holding ``orders`` (untimed)."""
        raise NotImplementedError

    def levels(self) -> Levels:
        """The best ten levels a side as ``(ticks, lots)``, for the check after timing."""
        raise NotImplementedError

    # -- operations: prep_* and undo_* untimed, the operation itself timed ---------------------

    def prep_add(self, batch: list[OrderTuple]) -> Any:
        return batch

    def add(self, arg: Any) -> Any:
        raise NotImplementedError

    def undo_add(self, batch: list[OrderTuple]) -> None:
        self.cancel(self.prep_cancel([oid for oid, *_ in batch]))

    def prep_cancel(self, ids: list[int]) -> Any:
        return ids

    def cancel(self, arg: Any) -> Any:
        raise NotImplementedError

    def undo_cancel(self, ids: list[int]) -> None:
        info = self.info
        self.add(self.prep_add([(oid, *info[oid]) for oid in ids]))

    def top(self, n: int) -> Any:
        raise NotImplementedError

    def depth(self, n: int) -> Any:
        raise NotImplementedError

    def update_top(self, arg: Any) -> Any:
        raise NotImplementedError

    def prep_take(self, takers: list[tuple[int, Side, int, int, TimeInForce]]) -> Any:
        return takers

    def take(self, arg: Any) -> int:
        """Submit marketable orders; returns the number of trades the reports carried."""
        raise NotImplementedError

    def refill(self, refills: list[OrderTuple]) -> None:
        self.add(self.prep_add(refills))

    # -- bookkeeping ---------------------------------------------------------------------

    def remember(self, orders: Iterable[OrderTuple]) -> None:
        info = self.info
        for oid, side, ticks, lots in orders:
            info[oid] = (side, ticks, lots)


def _by_side(bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]]) -> Levels:
    return list(bids)[:DEPTH], list(asks)[:DEPTH]


# == tradebook ================================================================================


class TradebookBook(Contestant):
    """tradebook's ``OrderBook`` (compiled or pure, raw or Decimal API)."""

    table = TABLE_BOOK
    dist = None  # importable from a checkout (PYTHONPATH=src) without being installed

    def __init__(self, backend: str, decimal: bool) -> None:
        super().__init__()
        self.backend, self.decimal = backend, decimal
        self.key = f"tradebook-{backend}-{'decimal' if decimal else 'raw'}"
        self.label = f"tradebook {'compiled' if backend == 'cython' else 'pure'} {'Decimal' if decimal else 'raw'}"
        self.module = "tradebook._book" if backend == "cython" else "tradebook._book_py"
        if decimal:
            self.api = {
                "add": "book.add_order(Order(id, side, price, qty))",
                "cancel": "book.remove_order(id)",
                "top": "book.best_bid.price, book.best_ask.price",
                "depth": "book.depth(10)",
                "update_top": "add_order(Order(...)), then best_bid.price, best_ask.price",
            }
        else:
            self.api = {
                "add": "book.add_raw(id, side, ticks, lots)",
                "cancel": "book.remove_raw(id)",
                "top": "book.best_bid_raw, book.best_ask_raw",
                "depth": "book.depth_raw(10)",
                "update_top": "add_raw(...), then best_bid_raw, best_ask_raw",
            }
        self.inst = wl.instrument()

    def load(self) -> None:
        mod = importlib.import_module(self.module)
        self.OrderBook, self.Order = mod.OrderBook, mod.Order

    def build(self, orders: Iterable[OrderTuple]) -> None:
        orders = list(orders)
        self.book = book = self.OrderBook(self.inst)
        add = book.add_raw
        for oid, side, ticks, lots in orders:
            add(oid, side, ticks, lots)
        self.remember(orders)

    def levels(self) -> Levels:
        bids, asks = self.book.depth_raw(DEPTH)
        return _by_side(((p, q) for p, q, _ in bids), ((p, q) for p, q, _ in asks))

    def prep_add(self, batch: list[OrderTuple]) -> Any:
        if not self.decimal:
            return batch
        price, qty = self.inst.ticks_to_price, self.inst.lots_to_quantity
        return [(oid, side, price(t), qty(q)) for oid, side, t, q in batch]

    def add(self, arg: Any) -> None:
        if self.decimal:
            add_order, order = self.book.add_order, self.Order
            for oid, side, price, qty in arg:
                add_order(order(oid, side, price, qty))
        else:
            add = self.book.add_raw
            for oid, side, ticks, lots in arg:
                add(oid, side, ticks, lots)

    def undo_add(self, batch: list[OrderTuple]) -> None:
        remove = self.book.remove_raw
        for oid, *_ in batch:
            remove(oid)

    def cancel(self, arg: list[int]) -> Any:
        remove = self.book.remove_order if self.decimal else self.book.remove_raw
        out = None
        for oid in arg:
            out = remove(oid)
        return out

    def undo_cancel(self, ids: list[int]) -> None:
        add, info = self.book.add_raw, self.info
        for oid in ids:
            add(oid, *info[oid])

    def top(self, n: int) -> Any:
        book = self.book
        bid = ask = None
        if self.decimal:
            for _ in repeat(None, n):
                bid = book.best_bid.price
                ask = book.best_ask.price
        else:
            for _ in repeat(None, n):
                bid = book.best_bid_raw
                ask = book.best_ask_raw
        return bid, ask

    def depth(self, n: int) -> Any:
        depth = self.book.depth if self.decimal else self.book.depth_raw
        d = None
        for _ in repeat(None, n):
            d = depth(DEPTH)
        return d

    def update_top(self, arg: Any) -> Any:
        book = self.book
        bid = ask = None
        if self.decimal:
            add_order, order = book.add_order, self.Order
            for oid, side, price, qty in arg:
                add_order(order(oid, side, price, qty))
                bid = book.best_bid.price
                ask = book.best_ask.price
        else:
            add = book.add_raw
            for oid, side, ticks, lots in arg:
                add(oid, side, ticks, lots)
                bid = book.best_bid_raw
                ask = book.best_ask_raw
        return bid, ask


class TradebookEngine(Contestant):
    """tradebook's ``MatchingEngine`` (compiled or pure, raw or Decimal API)."""

    table = TABLE_ENGINE
    dist = None  # importable from a checkout (PYTHONPATH=src) without being installed

    def __init__(self, backend: str, decimal: bool) -> None:
        super().__init__()
        self.backend, self.decimal = backend, decimal
        self.key = f"tradebook-{backend}-{'decimal' if decimal else 'raw'}"
        self.label = f"tradebook {'compiled' if backend == 'cython' else 'pure'} {'Decimal' if decimal else 'raw'}"
        self.module = "tradebook._engine" if backend == "cython" else "tradebook._engine_py"
        self.book_module = "tradebook._book" if backend == "cython" else "tradebook._book_py"
        if decimal:
            self.api = {
                "add": "engine.submit(Order(id, side, price, qty))",
                "cancel": "engine.cancel(symbol, id)",
                "top": "book.best_bid.price, book.best_ask.price  (book = engine.book(symbol))",
                "depth": "book.depth(10)",
                "match": "len(engine.submit(Order(..., time_in_force=tif)).trades)",
            }
        else:
            self.api = {
                "add": "engine.submit_raw(id, side, ticks, lots)",
                "cancel": "engine.cancel_raw(symbol, id)",
                "top": "book.best_bid_raw, book.best_ask_raw  (book = engine.book(symbol))",
                "depth": "book.depth_raw(10)",
                "match": "len(engine.submit_raw(id, side, ticks, lots, time_in_force=tif).trades)",
            }
        self.inst = wl.instrument()

    def load(self) -> None:
        self.MatchingEngine = importlib.import_module(self.module).MatchingEngine
        self.Order = importlib.import_module(self.book_module).Order

    def build(self, orders: Iterable[OrderTuple]) -> None:
        orders = list(orders)
        self.engine = self.MatchingEngine([self.inst])
        self.book = book = self.engine.book(SYMBOL)
        add = book.add_raw  # the book is not crossed: resting it directly is what submitting would do
        for oid, side, ticks, lots in orders:
            add(oid, side, ticks, lots)
        self.remember(orders)

    def levels(self) -> Levels:
        bids, asks = self.book.depth_raw(DEPTH)
        return _by_side(((p, q) for p, q, _ in bids), ((p, q) for p, q, _ in asks))

    def _decimals(self, rows: list[Any]) -> list[Any]:
        price, qty = self.inst.ticks_to_price, self.inst.lots_to_quantity
        return [(oid, side, price(t), qty(q), *rest) for oid, side, t, q, *rest in rows]

    def prep_add(self, batch: list[OrderTuple]) -> Any:
        return self._decimals(batch) if self.decimal else batch

    def add(self, arg: Any) -> Any:
        report = None
        if self.decimal:
            submit, order = self.engine.submit, self.Order
            for oid, side, price, qty in arg:
                report = submit(order(oid, side, price, qty))
        else:
            submit = self.engine.submit_raw
            for oid, side, ticks, lots in arg:
                report = submit(oid, side, ticks, lots)
        return report

    def undo_add(self, batch: list[OrderTuple]) -> None:
        remove = self.book.remove_raw
        for oid, *_ in batch:
            remove(oid)

    def cancel(self, arg: list[int]) -> Any:
        cancel = self.engine.cancel if self.decimal else self.engine.cancel_raw
        out = None
        for oid in arg:
            out = cancel(SYMBOL, oid)
        return out

    def undo_cancel(self, ids: list[int]) -> None:
        add, info = self.book.add_raw, self.info
        for oid in ids:
            add(oid, *info[oid])

    def top(self, n: int) -> Any:
        book = self.book  # the engine's live book: the prices alone, as the peers give them
        bid = ask = None
        if self.decimal:
            for _ in repeat(None, n):
                bid = book.best_bid.price
                ask = book.best_ask.price
        else:
            for _ in repeat(None, n):
                bid = book.best_bid_raw
                ask = book.best_ask_raw
        return bid, ask

    def depth(self, n: int) -> Any:
        depth = self.book.depth if self.decimal else self.book.depth_raw
        d = None
        for _ in repeat(None, n):
            d = depth(DEPTH)
        return d

    def prep_take(self, takers: list[Any]) -> Any:
        return self._decimals(takers) if self.decimal else takers

    def take(self, arg: Any) -> int:
        n = 0
        if self.decimal:
            submit, order = self.engine.submit, self.Order
            for oid, side, price, qty, tif in arg:
                n += len(submit(order(oid, side, price, qty, time_in_force=tif)).trades)
        else:
            submit = self.engine.submit_raw
            for oid, side, ticks, lots, tif in arg:
                n += len(submit(oid, side, ticks, lots, time_in_force=tif).trades)
        return n

    def refill(self, refills: list[OrderTuple]) -> None:
        submit = self.engine.submit_raw
        for oid, side, ticks, lots in refills:
            submit(oid, side, ticks, lots)


# == the sortedcontainers baselines ===============================================================


class SortedBaselineBook(Contestant):
    key = "sortedcontainers"
    label = "sortedcontainers baseline"
    table = TABLE_BOOK
    dist = "sortedcontainers"
    module = "sortedcontainers"
    api: ClassVar[dict[str, str | None]] = {
        "add": "SortedBook.add(id, side, ticks, lots)",
        "cancel": "SortedBook.cancel(id)",
        "top": "best_bid, best_ask (SortedDict.peekitem)",
        "depth": "SortedBook.depth(10)",
        "update_top": "add(...), then best_bid, best_ask",
    }

    def build(self, orders: Iterable[OrderTuple]) -> None:
        orders = list(orders)
        self.book = book = SortedBook(wl.instrument())
        add = book.add
        for oid, side, ticks, lots in orders:
            add(oid, side, ticks, lots)
        self.remember(orders)

    def levels(self) -> Levels:
        bids, asks = self.book.depth(DEPTH)
        return _by_side(((p, q) for p, q, _ in bids), ((p, q) for p, q, _ in asks))

    def add(self, arg: list[OrderTuple]) -> None:
        add = self.book.add
        for oid, side, ticks, lots in arg:
            add(oid, side, ticks, lots)

    def cancel(self, arg: list[int]) -> Any:
        cancel = self.book.cancel
        out = None
        for oid in arg:
            out = cancel(oid)
        return out

    def top(self, n: int) -> Any:
        book = self.book
        bid = ask = None
        for _ in repeat(None, n):
            bid = book.best_bid
            ask = book.best_ask
        return bid, ask

    def depth(self, n: int) -> Any:
        depth = self.book.depth
        d = None
        for _ in repeat(None, n):
            d = depth(DEPTH)
        return d

    def update_top(self, arg: list[OrderTuple]) -> Any:
        book = self.book
        add = book.add
        bid = ask = None
        for oid, side, ticks, lots in arg:
            add(oid, side, ticks, lots)
            bid = book.best_bid
            ask = book.best_ask
        return bid, ask


class SortedBaselineEngine(Contestant):
    key = "sortedcontainers"
    label = "sortedcontainers baseline"
    table = TABLE_ENGINE
    dist = "sortedcontainers"
    module = "sortedcontainers"
    api: ClassVar[dict[str, str | None]] = {
        "add": "SortedMatcher.submit(id, side, ticks, lots)",
        "cancel": "SortedMatcher.cancel(id)",
        "top": "best_bid, best_ask",
        "depth": "SortedMatcher.depth(10)",
        "match": "len(SortedMatcher.submit(id, side, ticks, lots, ioc))",
    }

    def build(self, orders: Iterable[OrderTuple]) -> None:
        orders = list(orders)
        self.engine = load_matcher(orders, wl.instrument())
        self.remember(orders)

    def levels(self) -> Levels:
        bids, asks = self.engine.depth(DEPTH)
        return _by_side(((p, q) for p, q, _ in bids), ((p, q) for p, q, _ in asks))

    def add(self, arg: list[OrderTuple]) -> Any:
        submit = self.engine.submit
        out = None
        for oid, side, ticks, lots in arg:
            out = submit(oid, side, ticks, lots)
        return out

    def cancel(self, arg: list[int]) -> Any:
        cancel = self.engine.cancel
        out = None
        for oid in arg:
            out = cancel(oid)
        return out

    def top(self, n: int) -> Any:
        m = self.engine
        bid = ask = None
        for _ in repeat(None, n):
            bid = m.best_bid
            ask = m.best_ask
        return bid, ask

    def depth(self, n: int) -> Any:
        depth = self.engine.depth
        d = None
        for _ in repeat(None, n):
            d = depth(DEPTH)
        return d

    def take(self, arg: list[Any]) -> int:
        submit = self.engine.submit
        n = 0
        for oid, side, ticks, lots, tif in arg:
            n += len(submit(oid, side, ticks, lots, tif is IOC))
        return n


# == order-book (C, L2) ============================================================================


class OrderBookL2(Contestant):
    """``order-book``: an L2 book, a C sorted dict of price -> size per side.

    An L2 book keeps one size per price and the caller sets it, so "add" and
    "cancel" are level updates: ``bids[price] = new size`` (the size the level has
    after the order arrives or leaves, worked out before the clock starts), and
    ``del bids[price]`` when a cancel empties the level. Its sorted view is rebuilt
    lazily: the first read after a write sorts the side's prices again.
    """

    key = "order-book"
    label = "order-book (C, L2)"
    table = TABLE_BOOK
    dist = "order-book"
    module = "order_book"
    api: ClassVar[dict[str, str | None]] = {
        "add": "bids[price] = new level size  (L2: one size per price)",
        "cancel": "bids[price] = new level size, or del bids[price] when it empties",
        "top": "bids.index(0)[0], asks.index(0)[0]",
        "depth": "bids.to_list(), asks.to_list() with OrderBook(max_depth=10)",
        "update_top": "bids[price] = new size, then bids.index(0), asks.index(0)",
    }

    def build(self, orders: Iterable[OrderTuple]) -> None:
        import order_book

        orders = list(orders)
        self.ob = order_book.OrderBook(max_depth=DEPTH)  # max_depth only limits reads (truncate is off)
        self.totals: tuple[dict[int, list[int]], dict[int, list[int]]] = ({}, {})  # ticks -> [lots, orders]
        for _, side, ticks, lots in orders:
            row = self.totals[side is SELL].setdefault(ticks, [0, 0])
            row[0] += lots
            row[1] += 1
        for sell, sorted_dict in ((0, self.ob.bids), (1, self.ob.asks)):
            for ticks, (lots, _) in self.totals[sell].items():
                sorted_dict[ticks] = lots
        self.remember(orders)

    def levels(self) -> Levels:
        return _by_side(self.ob.bids.to_list(), self.ob.asks.to_list())

    def _updates(self, rows: Iterable[tuple[Side, int, int]], sign: int) -> list[tuple[Any, int, int | None]]:
        """Walk the level totals through the changes; return (side dict, price, new size or None) per change."""
        out = []
        for side, ticks, lots in rows:
            sell = side is SELL
            row = self.totals[sell].setdefault(ticks, [0, 0])
            row[0] += sign * lots
            row[1] += sign
            size: int | None = row[0]
            if row[1] == 0:
                del self.totals[sell][ticks]
                size = None
            out.append((self.ob.asks if sell else self.ob.bids, ticks, size))
        return out

    def prep_add(self, batch: list[OrderTuple]) -> Any:
        self.remember(batch)
        return self._updates(((side, t, q) for _, side, t, q in batch), +1)

    def prep_cancel(self, ids: list[int]) -> Any:
        return self._updates((self.info[oid] for oid in ids), -1)

    def _apply(self, arg: list[tuple[Any, int, int | None]]) -> None:
        for sorted_dict, ticks, size in arg:
            if size is None:
                del sorted_dict[ticks]
            else:
                sorted_dict[ticks] = size

    add = _apply
    cancel = _apply

    def top(self, n: int) -> Any:
        bids, asks = self.ob.bids, self.ob.asks
        bid = ask = None
        for _ in repeat(None, n):
            bid = bids.index(0)[0]
            ask = asks.index(0)[0]
        return bid, ask

    def depth(self, n: int) -> Any:
        bids, asks = self.ob.bids, self.ob.asks
        d = None
        for _ in repeat(None, n):
            d = bids.to_list(), asks.to_list()
        return d

    def update_top(self, arg: list[tuple[Any, int, int | None]]) -> Any:
        bids, asks = self.ob.bids, self.ob.asks
        bid = ask = None
        for sorted_dict, ticks, size in arg:
            sorted_dict[ticks] = size
            bid = bids.index(0)[0]
            ask = asks.index(0)[0]
        return bid, ask


# == nautilus-trader ================================================================================


class NautilusBook(Contestant):
    """nautilus-trader's L3 (market-by-order) ``OrderBook``, the Rust core through its pyo3 bindings.

    ``BookOrder`` objects (with their ``Price`` and ``Quantity``) are made before
    the clock starts, so the timed loops are the book's own calls. nautilus's
    books hold market data; matching happens in its backtest venue, not here.
    """

    key = "nautilus-trader"
    label = "nautilus-trader (Rust, L3)"
    table = TABLE_BOOK
    dist = "nautilus_trader"
    module = "nautilus_trader.core.nautilus_pyo3"
    api: ClassVar[dict[str, str | None]] = {
        "add": "book.add(BookOrder, 0, 0, 0)  (BookOrder made in advance)",
        "cancel": "book.delete(BookOrder, 0, 0, 0)",
        "top": "book.best_bid_price(), book.best_ask_price()",
        "depth": "book.bids_to_dict(10), book.asks_to_dict(10)",
        "update_top": "book.add(...), then best_bid_price(), best_ask_price()",
    }
    PRICE_SCALE = 10**14  # raw fixed point: 16 decimals; a tick is 0.01
    SIZE_SCALE = 10**13  # a lot is 0.001

    def load(self) -> None:
        self.p3 = importlib.import_module(self.module)

    def version(self) -> str | None:
        return dist_version("nautilus_trader") or dist_version("nautilus-trader")

    def build(self, orders: Iterable[OrderTuple]) -> None:
        p3 = self.p3
        orders = list(orders)
        self.book = p3.OrderBook(p3.InstrumentId.from_str("BTCUSDT.SIM"), p3.BookType.L3_MBO)
        self.objects: dict[int, Any] = {}
        add = self.book.add
        for order in self.prep_add(orders):
            add(order, 0, 0, 0)
        self.remember(orders)

    def prep_add(self, batch: list[OrderTuple]) -> Any:
        p3 = self.p3
        book_order, price, size = p3.BookOrder, p3.Price.from_raw, p3.Quantity.from_raw
        buy, sell = p3.OrderSide.BUY, p3.OrderSide.SELL
        out = []
        for oid, side, ticks, lots in batch:
            obj = book_order(
                sell if side is SELL else buy, price(ticks * self.PRICE_SCALE, 2), size(lots * self.SIZE_SCALE, 3), oid
            )
            self.objects[oid] = obj
            out.append(obj)
        self.remember(batch)
        return out

    def prep_cancel(self, ids: list[int]) -> Any:
        return [self.objects[oid] for oid in ids]

    def add(self, arg: list[Any]) -> None:
        add = self.book.add
        for order in arg:
            add(order, 0, 0, 0)

    def cancel(self, arg: list[Any]) -> None:
        delete = self.book.delete
        for order in arg:
            delete(order, 0, 0, 0)

    def levels(self) -> Levels:
        def rows(d: dict[Decimal, Decimal]) -> list[tuple[int, int]]:
            return [(int(p / Decimal("0.01")), int(q / Decimal("0.001"))) for p, q in d.items()]

        return _by_side(rows(self.book.bids_to_dict(DEPTH)), rows(self.book.asks_to_dict(DEPTH)))

    def top(self, n: int) -> Any:
        book = self.book
        bid = ask = None
        for _ in repeat(None, n):
            bid = book.best_bid_price()
            ask = book.best_ask_price()
        return bid, ask

    def depth(self, n: int) -> Any:
        bids, asks = self.book.bids_to_dict, self.book.asks_to_dict
        d = None
        for _ in repeat(None, n):
            d = bids(DEPTH), asks(DEPTH)
        return d

    def update_top(self, arg: list[Any]) -> Any:
        book = self.book
        add = book.add
        bid = ask = None
        for order in arg:
            add(order, 0, 0, 0)
            bid = book.best_bid_price()
            ask = book.best_ask_price()
        return bid, ask


# == lightmatchingengine ================================================================================


class LightMatchingEngine(Contestant):
    """``lightmatchingengine``: pure Python; it numbers orders itself (1, 2, ... per add_order)."""

    key = "lightmatchingengine"
    label = "lightmatchingengine"
    table = TABLE_ENGINE
    dist = "lightmatchingengine"
    module = "lightmatchingengine.lightmatchingengine"
    trades_are_fills = False  # its reports hold one trade per level for the taker plus one per maker
    api: ClassVar[dict[str, str | None]] = {
        "add": "engine.add_order(symbol, ticks, lots, side)",
        "cancel": "engine.cancel_order(their id, symbol)",
        "top": None,
        "depth": None,
        "match": "len(engine.add_order(symbol, ticks, lots, side)[1])  (no IOC: every taker fills completely)",
    }

    def load(self) -> None:
        mod = importlib.import_module(self.module)
        self.Engine, self.Side = mod.LightMatchingEngine, mod.Side

    def build(self, orders: Iterable[OrderTuple]) -> None:
        orders = list(orders)
        self.engine = self.Engine()
        self.theirs: dict[int, int] = {}
        self.add(self.prep_add(orders))

    def prep_add(self, batch: list[OrderTuple]) -> Any:
        buy, sell = self.Side.BUY, self.Side.SELL
        first = self.engine.curr_order_id + 1  # ids count up by one per add_order call
        for i, (oid, *_) in enumerate(batch):
            self.theirs[oid] = first + i
        self.remember(batch)
        return [(ticks, lots, sell if side is SELL else buy) for _, side, ticks, lots in batch]

    def add(self, arg: list[Any]) -> Any:
        add = self.engine.add_order
        out = None
        for ticks, lots, side in arg:
            out = add(SYMBOL, ticks, lots, side)
        return out

    def prep_cancel(self, ids: list[int]) -> Any:
        return [self.theirs[oid] for oid in ids]

    def cancel(self, arg: list[int]) -> Any:
        cancel = self.engine.cancel_order
        out = None
        for their_id in arg:
            out = cancel(their_id, SYMBOL)
        return out

    def prep_take(self, takers: list[Any]) -> Any:
        buy, sell = self.Side.BUY, self.Side.SELL
        return [(ticks, lots, sell if side is SELL else buy) for _, side, ticks, lots, _ in takers]

    def take(self, arg: list[Any]) -> int:
        add = self.engine.add_order
        n = 0
        for ticks, lots, side in arg:
            n += len(add(SYMBOL, ticks, lots, side)[1])
        return n

    def levels(self) -> Levels:
        book = self.engine.order_books[SYMBOL]
        bids = sorted(book.bids.items(), reverse=True)
        asks = sorted(book.asks.items())
        return _by_side(
            ((p, sum(o.leaves_qty for o in level)) for p, level in bids if level),
            ((p, sum(o.leaves_qty for o in level)) for p, level in asks if level),
        )


# == nanobook ======================================================================================


class NanobookEngine(Contestant):
    """``nanobook``'s ``Exchange``: a Rust matching engine; it numbers orders itself (1, 2, ... per submit)."""

    key = "nanobook"
    label = "nanobook (Rust)"
    table = TABLE_ENGINE
    dist = "nanobook"
    module = "nanobook"
    api: ClassVar[dict[str, str | None]] = {
        "add": 'ex.submit_limit("buy"|"sell", ticks, lots, "gtc")',
        "cancel": "ex.cancel(their id)",
        "top": "ex.best_bid_ask()",
        "depth": "d = ex.depth(10); d.bids, d.asks",
        "match": 'len(ex.submit_limit(side, ticks, lots, "ioc"|"gtc").trades)',
    }

    def load(self) -> None:
        self.Exchange = importlib.import_module(self.module).Exchange

    def build(self, orders: Iterable[OrderTuple]) -> None:
        orders = list(orders)
        self.ex = self.Exchange()
        self.next_id = 1
        self.theirs: dict[int, int] = {}
        self.add(self.prep_add(orders))

    def _ids(self, count: int) -> int:
        first = self.next_id
        self.next_id += count
        return first

    def prep_add(self, batch: list[OrderTuple]) -> Any:
        first = self._ids(len(batch))
        for i, (oid, *_) in enumerate(batch):
            self.theirs[oid] = first + i
        self.remember(batch)
        return [("sell" if side is SELL else "buy", ticks, lots) for _, side, ticks, lots in batch]

    def add(self, arg: list[Any]) -> Any:
        submit = self.ex.submit_limit
        out = None
        for side, ticks, lots in arg:
            out = submit(side, ticks, lots, "gtc")
        return out

    def prep_cancel(self, ids: list[int]) -> Any:
        return [self.theirs[oid] for oid in ids]

    def cancel(self, arg: list[int]) -> Any:
        cancel = self.ex.cancel
        out = None
        for their_id in arg:
            out = cancel(their_id)
        return out

    def top(self, n: int) -> Any:
        best = self.ex.best_bid_ask
        t = None
        for _ in repeat(None, n):
            t = best()
        return t

    def depth(self, n: int) -> Any:
        depth = self.ex.depth
        d = None
        for _ in repeat(None, n):
            snap = depth(DEPTH)
            d = snap.bids, snap.asks
        return d

    def prep_take(self, takers: list[Any]) -> Any:
        self._ids(len(takers))
        return [
            ("sell" if side is SELL else "buy", ticks, lots, "ioc" if tif is IOC else "gtc")
            for _, side, ticks, lots, tif in takers
        ]

    def take(self, arg: list[Any]) -> int:
        submit = self.ex.submit_limit
        n = 0
        for side, ticks, lots, tif in arg:
            n += len(submit(side, ticks, lots, tif).trades)
        return n

    def levels(self) -> Levels:
        snap = self.ex.depth(DEPTH)
        return _by_side(((lv.price, lv.quantity) for lv in snap.bids), ((lv.price, lv.quantity) for lv in snap.asks))

    def check_ids(self) -> None:
        """The id bookkeeping holds: the next submit gets the id we expect."""
        got = self.ex.submit_limit("buy", 1, 1, "gtc").order_id
        assert got == self.next_id, f"nanobook numbered an order {got}, expected {self.next_id}"
        self.ex.cancel(got)
        self.next_id += 1


# == pyorderbook ======================================================================================


class PyOrderBook(Contestant):
    """``pyorderbook``: pure Python, ``Decimal`` prices, a uuid4 per ``Order``.

    ``Order`` objects are made before the clock starts; ``Book.match(order)``
    both matches and rests an order, ``Book.cancel(order)`` takes the object.
    """

    key = "pyorderbook"
    label = "pyorderbook"
    table = TABLE_ENGINE
    dist = "pyorderbook"
    module = "pyorderbook"
    api: ClassVar[dict[str, str | None]] = {
        "add": "book.match(Order)  (Order made in advance)",
        "cancel": "book.cancel(Order)",
        "top": None,
        "depth": None,
        "match": "len(book.match(Order).trades)  (no IOC: every taker fills completely)",
    }

    def load(self) -> None:
        import logging

        self.mod = importlib.import_module(self.module)
        # pyorderbook sets the root logger to INFO at import; its hot path calls logger.debug, which
        # returns at once below DEBUG, as in any application that does not ask for debug logs.
        logging.getLogger("pyorderbook").setLevel(logging.INFO)

    def build(self, orders: Iterable[OrderTuple]) -> None:
        orders = list(orders)
        self.book = self.mod.Book()
        self.objects: dict[int, Any] = {}
        self.add(self.prep_add(orders))

    def _order(self, side: Side, ticks: int, lots: int) -> Any:
        mod = self.mod
        return mod.Order(mod.Side.ASK if side is SELL else mod.Side.BID, SYMBOL, ticks, lots)

    def prep_add(self, batch: list[OrderTuple]) -> Any:
        out = []
        for oid, side, ticks, lots in batch:
            order = self.objects[oid] = self._order(side, ticks, lots)
            out.append(order)
        self.remember(batch)
        return out

    def add(self, arg: list[Any]) -> Any:
        match = self.book.match
        out = None
        for order in arg:
            out = match(order)
        return out

    def prep_cancel(self, ids: list[int]) -> Any:
        return [self.objects[oid] for oid in ids]

    def cancel(self, arg: list[Any]) -> None:
        cancel = self.book.cancel
        for order in arg:
            cancel(order)

    def prep_take(self, takers: list[Any]) -> Any:
        return [self._order(side, ticks, lots) for _, side, ticks, lots, _ in takers]

    def take(self, arg: list[Any]) -> int:
        match = self.book.match
        n = 0
        for order in arg:
            n += len(match(order).trades)
        return n

    def levels(self) -> Levels:
        side_maps = self.book.level_map[SYMBOL]
        out = []
        for side, reverse in ((self.mod.Side.BID, True), (self.mod.Side.ASK, False)):
            rows = [
                (int(price), sum(o.quantity for o in level.orders.values()))
                for price, level in side_maps[side].items()
                if level.orders
            ]
            out.append(sorted(rows, reverse=reverse))
        return _by_side(out[0], out[1])


# == matching-engine ==================================================================================


class MatchingEnginePeer(Contestant):
    """``matching-engine`` (pure Python, 3.12+). Measured only where it installs; reported either way."""

    key = "matching-engine"
    label = "matching-engine"
    table = TABLE_ENGINE
    dist = "matching-engine"
    module = "matching_engine"
    requires = ((3, 12), "it declares Requires-Python >= 3.12, and its code uses PEP 695 `type` statements")
    api: ClassVar[dict[str, str | None]] = {"add": None, "cancel": None, "top": None, "depth": None, "match": None}

    def unavailable(self) -> str | None:
        reason = super().unavailable()
        if reason is None:
            return "installed; not wired into compare.py yet (its API was not available to read on Python 3.11)"
        return reason


# == registry ==========================================================================================


def _registry() -> dict[tuple[str, str], Callable[[], Contestant]]:
    out: dict[tuple[str, str], Callable[[], Contestant]] = {}
    for backend in ("cython", "python"):
        for decimal in (False, True):
            tag = f"tradebook-{backend}-{'decimal' if decimal else 'raw'}"
            out[TABLE_BOOK, tag] = lambda b=backend, d=decimal: TradebookBook(b, d)
            out[TABLE_ENGINE, tag] = lambda b=backend, d=decimal: TradebookEngine(b, d)
    for cls in (
        SortedBaselineBook,
        OrderBookL2,
        NautilusBook,
        SortedBaselineEngine,
        LightMatchingEngine,
        NanobookEngine,
        PyOrderBook,
        MatchingEnginePeer,
    ):
        out[cls.table, cls.key] = cls
    return out


CONTESTANTS = _registry()


def make(table: str, key: str) -> Contestant:
    return CONTESTANTS[table, key]()
