"""tradebook itself as a contestant: its ``OrderBook`` and ``MatchingEngine``, compiled or pure, raw or Decimal API."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from itertools import repeat
from typing import Any

import workloads as wl
from peers.base import DEPTH, SYMBOL, TABLE_BOOK, TABLE_ENGINE, Levels, OrderTuple, Peer, by_side


class _Tradebook(Peer):
    """What tradebook's book and engine contestants share: the names, and the reads of the (engine's) book."""

    dist = None  # importable from a checkout (PYTHONPATH=src) without being installed

    def __init__(self, backend: str, decimal: bool) -> None:
        super().__init__()
        self.backend, self.decimal = backend, decimal
        self.key = f"tradebook-{backend}-{'decimal' if decimal else 'raw'}"
        self.label = f"tradebook {'compiled' if backend == 'cython' else 'pure'} {'Decimal' if decimal else 'raw'}"
        self.inst = wl.instrument()

    def levels(self) -> Levels:
        bids, asks = self.book.depth_raw(DEPTH)
        return by_side(((p, q) for p, q, _ in bids), ((p, q) for p, q, _ in asks))

    def undo_add(self, batch: list[OrderTuple]) -> None:
        remove = self.book.remove_raw
        for oid, *_ in batch:
            remove(oid)

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


class TradebookBook(_Tradebook):
    """tradebook's ``OrderBook`` (compiled or pure, raw or Decimal API)."""

    table = TABLE_BOOK

    def __init__(self, backend: str, decimal: bool) -> None:
        super().__init__(backend, decimal)
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

    def cancel(self, arg: list[int]) -> Any:
        remove = self.book.remove_order if self.decimal else self.book.remove_raw
        out = None
        for oid in arg:
            out = remove(oid)
        return out

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


class TradebookEngine(_Tradebook):
    """tradebook's ``MatchingEngine`` (compiled or pure, raw or Decimal API)."""

    table = TABLE_ENGINE

    def __init__(self, backend: str, decimal: bool) -> None:
        super().__init__(backend, decimal)
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

    def cancel(self, arg: list[int]) -> Any:
        cancel = self.engine.cancel if self.decimal else self.engine.cancel_raw
        out = None
        for oid in arg:
            out = cancel(SYMBOL, oid)
        return out

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
