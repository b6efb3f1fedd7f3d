"""``pyorderbook``: a pure-Python matching engine with Decimal prices."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any, ClassVar

from peers.base import SELL, SYMBOL, TABLE_ENGINE, Levels, OrderTuple, Peer, by_side
from tradebook import Side


class PyOrderBook(Peer):
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
        return by_side(out[0], out[1])
