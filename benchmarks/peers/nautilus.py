"""nautilus-trader's L3 ``OrderBook`` (Rust core, pyo3 bindings)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from decimal import Decimal
from itertools import repeat
from typing import Any, ClassVar

from peers.base import DEPTH, SELL, TABLE_BOOK, Levels, OrderTuple, Peer, by_side, dist_version


class NautilusBook(Peer):
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

        return by_side(rows(self.book.bids_to_dict(DEPTH)), rows(self.book.asks_to_dict(DEPTH)))

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
