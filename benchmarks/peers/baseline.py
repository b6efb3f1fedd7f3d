"""The sortedcontainers baselines (``baselines.SortedBook`` and ``SortedMatcher``) as contestants."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from typing import Any, ClassVar

import workloads as wl
from baselines import SortedBook, load_matcher
from peers.base import DEPTH, IOC, TABLE_BOOK, TABLE_ENGINE, Levels, OrderTuple, Peer, by_side


class _Sorted(Peer):
    """What both baselines share: the reads and the cancel, on ``self.book`` (a SortedBook or a SortedMatcher)."""

    dist = "sortedcontainers"
    module = "sortedcontainers"

    def levels(self) -> Levels:
        bids, asks = self.book.depth(DEPTH)
        return by_side(((p, q) for p, q, _ in bids), ((p, q) for p, q, _ in asks))

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


class SortedBaselineBook(_Sorted):
    key = "sortedcontainers"
    label = "sortedcontainers baseline"
    table = TABLE_BOOK
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

    def add(self, arg: list[OrderTuple]) -> None:
        add = self.book.add
        for oid, side, ticks, lots in arg:
            add(oid, side, ticks, lots)

    def update_top(self, arg: list[OrderTuple]) -> Any:
        book = self.book
        add = book.add
        bid = ask = None
        for oid, side, ticks, lots in arg:
            add(oid, side, ticks, lots)
            bid = book.best_bid
            ask = book.best_ask
        return bid, ask


class SortedBaselineEngine(_Sorted):
    key = "sortedcontainers"
    label = "sortedcontainers baseline"
    table = TABLE_ENGINE
    api: ClassVar[dict[str, str | None]] = {
        "add": "SortedMatcher.submit(id, side, ticks, lots)",
        "cancel": "SortedMatcher.cancel(id)",
        "top": "best_bid, best_ask",
        "depth": "SortedMatcher.depth(10)",
        "match": "len(SortedMatcher.submit(id, side, ticks, lots, ioc))",
    }

    def build(self, orders: Iterable[OrderTuple]) -> None:
        orders = list(orders)
        self.book = self.engine = load_matcher(orders, wl.instrument())
        self.remember(orders)

    def add(self, arg: list[OrderTuple]) -> Any:
        submit = self.engine.submit
        out = None
        for oid, side, ticks, lots in arg:
            out = submit(oid, side, ticks, lots)
        return out

    def take(self, arg: list[Any]) -> int:
        submit = self.engine.submit
        n = 0
        for oid, side, ticks, lots, tif in arg:
            n += len(submit(oid, side, ticks, lots, tif is IOC))
        return n
