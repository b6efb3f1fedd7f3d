"""``lightmatchingengine``: a pure-Python matching engine."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any, ClassVar

from peers.base import SELL, SYMBOL, TABLE_ENGINE, Levels, OrderTuple, Peer, by_side


class LightMatchingEngine(Peer):
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
        return by_side(
            ((p, sum(o.leaves_qty for o in level)) for p, level in bids if level),
            ((p, sum(o.leaves_qty for o in level)) for p, level in asks if level),
        )
