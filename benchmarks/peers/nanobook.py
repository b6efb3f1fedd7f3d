"""``nanobook``: a Rust matching engine."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from itertools import repeat
from typing import Any, ClassVar

from peers.base import DEPTH, IOC, SELL, TABLE_ENGINE, Levels, OrderTuple, Peer, by_side


class NanobookEngine(Peer):
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
        return by_side(((lv.price, lv.quantity) for lv in snap.bids), ((lv.price, lv.quantity) for lv in snap.asks))

    def check_ids(self) -> None:
        """The id bookkeeping holds: the next submit gets the id we expect."""
        got = self.ex.submit_limit("buy", 1, 1, "gtc").order_id
        assert got == self.next_id, f"nanobook numbered an order {got}, expected {self.next_id}"
        self.ex.cancel(got)
        self.next_id += 1
