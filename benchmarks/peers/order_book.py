"""``order-book``: a C L2 book (one size per price, set by the caller)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat
from typing import Any, ClassVar

from peers.base import DEPTH, SELL, TABLE_BOOK, Levels, OrderTuple, Peer, by_side
from tradebook import Side


class OrderBookL2(Peer):
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
        return by_side(self.ob.bids.to_list(), self.ob.asks.to_list())

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
