"""The base of every contestant of ``report.py compare``: the interface each adapter fills in, and the timing loop.

One module per contestant beside this one (``ours.py``: tradebook itself; ``baseline.py``: the
sortedcontainers baselines; ``order_book.py``, ``nautilus.py``, ``lightmatchingengine.py``,
``nanobook.py``, ``pyorderbook.py``, ``matching_engine.py``: the peers); ``peers/__init__.py``
holds the registry.

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

import gc
import importlib
import importlib.metadata
import statistics
import sys
import time
from collections.abc import Iterable
from typing import Any, ClassVar

import workloads as wl
from tradebook import Side, TimeInForce

__all__ = ["DEPTH", "TABLE_BOOK", "TABLE_ENGINE", "Levels", "OrderTuple", "Peer", "by_side", "dist_version"]

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


class Peer:
    """One library (and API) under test: subclasses fill in the operations they support, this class times them."""

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

    # -- the timing loop (the same for every peer) ---------------------------------------------

    def run(
        self, data: wl.CompareData, batch: dict[str, int], warmup: int, repeats: int, ops: Iterable[str]
    ) -> dict[str, Any]:
        """Measure each supported operation of ``ops``; a failure is reported in its cell, the rest still run."""
        ops = tuple(ops)
        results: dict[str, Any] = {}
        wanted = [op for op in ("top", "depth", "add", "cancel", "update_top") if op in ops and self.supports(op)]
        if wanted:  # these leave the book as they found it: one book for all of them
            self.build(data.orders)
            gc.collect()
            for op in wanted:
                try:
                    results[op] = self.measure(op, data, batch[op], warmup, repeats)
                except Exception as exc:  # reported in the table, the rest still measured
                    results[op] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            check = getattr(self, "check_ids", None)
            if check is not None:
                check()
        if "match" in ops and self.supports("match"):
            self.build(data.orders)  # a fresh book: the stream's expected trades assume the original priorities
            gc.collect()
            try:
                results["match"] = self.measure_match(data, warmup, repeats)
            except Exception as exc:
                results["match"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        return results

    def measure(self, op: str, data: wl.CompareData, batch: int, warmup: int, repeats: int) -> dict[str, Any]:
        """``warmup`` untimed and ``repeats`` timed batches of ``op``; the book is put back between batches."""
        clock = time.perf_counter_ns
        fn = getattr(self, op)
        per_op: list[float] = []
        for i in range(warmup + repeats):
            undo = None
            if op in ("add", "update_top"):
                rows = _slice(data.adds, batch, i)
                arg, n = self.prep_add(rows), len(rows)
                undo = (self.undo_add, rows)
            elif op == "cancel":
                ids = _slice(data.cancel_ids, batch, i)
                arg, n = self.prep_cancel(ids), len(ids)
                undo = (self.undo_cancel, ids)
            else:
                arg = n = batch
            t0 = clock()
            fn(arg)
            t1 = clock()
            if undo is not None:
                undo[0](undo[1])
            if i >= warmup:
                per_op.append((t1 - t0) / n)
        levels = self.levels()
        if levels != data.top10:
            raise AssertionError(f"{op}: the book's best levels are wrong afterwards: {levels} != {data.top10}")
        return summary(per_op, batch)

    def measure_match(self, data: wl.CompareData, warmup: int, repeats: int) -> dict[str, Any]:
        """The matching stream: each chunk's marketable orders timed, the refills between chunks not."""
        assert data.stream is not None
        clock = time.perf_counter_ns
        take, prep, refill = self.take, self.prep_take, self.refill
        per_op: list[float] = []
        batches = data.stream.batches[: warmup + repeats]
        trades_expected = trades_seen = 0
        for i, batch in enumerate(batches):
            ns = 0
            for takers, refills in batch.commands:
                arg = prep(takers)
                t0 = clock()
                trades_seen += take(arg)
                t1 = clock()
                ns += t1 - t0
                refill(refills)
            trades_expected += batch.n_trades
            if i >= warmup:
                per_op.append(ns / batch.n_takers)
        bids, asks = batches[-1].depth_after
        expected = ([(p, q) for p, q, _ in bids[:10]], [(p, q) for p, q, _ in asks[:10]])
        levels = self.levels()
        if levels != expected:
            raise AssertionError(f"match: the book's best levels are wrong afterwards: {levels} != {expected}")
        if getattr(self, "trades_are_fills", True) and trades_seen != trades_expected:
            raise AssertionError(f"match: {trades_seen} trades reported, {trades_expected} expected")
        out = summary(per_op, batches[0].n_takers)
        out["trades_per_order"] = trades_expected / sum(b.n_takers for b in batches)
        return out


def by_side(bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]]) -> Levels:
    return list(bids)[:DEPTH], list(asks)[:DEPTH]


def _slice(items: list[Any], size: int, index: int) -> list[Any]:
    count = max(1, len(items) // size)
    start = (index % count) * size
    return items[start : start + size]


def summary(per_op: list[float], ops_per_batch: int) -> dict[str, Any]:
    """The figures of one operation: median, min, max and every batch, in ns per operation."""
    return {
        "median_ns": statistics.median(per_op),
        "min_ns": min(per_op),
        "max_ns": max(per_op),
        "batches_ns": [round(x, 1) for x in per_op],
        "ops_per_batch": ops_per_batch,
    }
