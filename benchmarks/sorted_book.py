"""A plain order book on ``sortedcontainers``: the baseline tradebook is measured against.

Written the way a user would write one in an afternoon: a ``SortedDict`` per
side from price (integer ticks) to its level, each level a ``dict`` of order id
to quantity (dicts keep insertion order, so a level is a FIFO with O(1) removal)
plus its running total, and one ``dict`` from id to where the order rests. It
checks duplicate and unknown ids and nothing else; no ``Decimal``, no locking,
no order objects. Same raw operations as tradebook's integer API.
"""

from __future__ import annotations

from collections.abc import Hashable
from itertools import islice
from typing import Any

from sortedcontainers import SortedDict

from tradebook import Side

__all__ = ["SortedBook"]

_SELL = Side.SELL


class Level:
    """One price level: FIFO of ``order id -> lots`` and the total."""

    __slots__ = ("orders", "total")

    def __init__(self) -> None:
        self.orders: dict[Hashable, int] = {}
        self.total = 0


class SortedBook:
    """Baseline book: add, cancel, best bid/ask, depth; prices in ticks, quantities in lots."""

    def __init__(self, instrument: Any = None) -> None:
        self.instrument = instrument
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.orders: dict[Hashable, tuple[Side, int, int]] = {}

    def __len__(self) -> int:
        return len(self.orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self.orders

    def add(self, order_id: Hashable, side: Side, price: int, quantity: int) -> None:
        if order_id in self.orders:
            raise KeyError(f"duplicate order id {order_id!r}")
        book = self.asks if side is _SELL else self.bids
        level = book.get(price)
        if level is None:
            level = book[price] = Level()
        level.orders[order_id] = quantity
        level.total += quantity
        self.orders[order_id] = (side, price, quantity)

    def cancel(self, order_id: Hashable) -> int:
        side, price, quantity = self.orders.pop(order_id)
        book = self.asks if side is _SELL else self.bids
        level = book[price]
        del level.orders[order_id]
        level.total -= quantity
        if not level.orders:
            del book[price]
        return quantity

    @property
    def best_bid(self) -> int | None:
        return self.bids.peekitem(-1)[0] if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return self.asks.peekitem(0)[0] if self.asks else None

    def depth(self, levels: int = 10) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        bids, asks = self.bids, self.asks
        return (
            [(p, bids[p].total, len(bids[p].orders)) for p in islice(reversed(bids), levels)],
            [(p, asks[p].total, len(asks[p].orders)) for p in islice(asks, levels)],
        )
