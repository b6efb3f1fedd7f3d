"""A plain matching engine on ``sortedcontainers``: the baseline tradebook's engine is measured against.

Written the way a user would write one in an afternoon, in the style of
``sorted_book.py``: a ``SortedDict`` per side from price (integer ticks) to its
level, each level a ``dict`` of order id to the order's record (dicts keep
insertion order, so a level is a FIFO with O(1) removal) plus its running total,
and one ``dict`` from id to record. Prices are ticks, quantities lots; no
``Decimal``, no order objects, no locking, no self-trade prevention, no
validation beyond duplicate and unknown ids.

Semantics are tradebook's, so the same command stream gives the same trades:
price-time priority, trades at the maker's price, limit GTC (the remainder
rests) or IOC (the remainder is dropped). ``amend`` takes the new *total*
quantity (what was filled counts) like ``MatchingEngine.amend_raw``: lowering it
at the same price shrinks the order in place (keeps its priority), anything else
is a cancel plus an add at the back of the (new) level, matching first if the
new price crosses. Every command returns its trades as a list of
``(price, quantity, maker id, taker id)`` tuples.
"""

from __future__ import annotations

from collections.abc import Hashable
from itertools import islice
from typing import Any

from sortedcontainers import SortedDict

from tradebook import Side

__all__ = ["SortedMatcher"]

_SELL = Side.SELL

# An order's record: [sells, price, remaining lots, total lots]; filled = total - remaining.
_SELLS, _PRICE, _REMAINING, _TOTAL = range(4)


class Level:
    """One price level: FIFO of ``order id -> record`` and the remaining total."""

    __slots__ = ("orders", "total")

    def __init__(self) -> None:
        self.orders: dict[Hashable, list[Any]] = {}
        self.total = 0


class SortedMatcher:
    """Baseline engine: submit (GTC/IOC), cancel, amend; prices in ticks, quantities in lots."""

    def __init__(self, instrument: Any = None) -> None:
        self.instrument = instrument
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.orders: dict[Hashable, list[Any]] = {}

    def __len__(self) -> int:
        return len(self.orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self.orders

    # -- commands ------------------------------------------------------------------------

    def submit(
        self, order_id: Hashable, side: Side, price: int, quantity: int, ioc: bool = False
    ) -> list[tuple[int, int, Hashable, Hashable]]:
        """Match a limit order, then rest what is left (GTC) or drop it (IOC)."""
        if order_id in self.orders:
            raise KeyError(f"duplicate order id {order_id!r}")
        sell = side is _SELL
        trades: list[tuple[int, int, Hashable, Hashable]] = []
        remaining = self._match(order_id, sell, price, quantity, trades)
        if remaining and not ioc:
            self._rest(order_id, sell, price, remaining, quantity)
        return trades

    def add(self, order_id: Hashable, side: Side, price: int, quantity: int) -> None:
        """Rest an order without matching (to build a book that is not crossed)."""
        if order_id in self.orders:
            raise KeyError(f"duplicate order id {order_id!r}")
        self._rest(order_id, side is _SELL, price, quantity, quantity)

    def cancel(self, order_id: Hashable) -> int:
        """Remove a resting order; returns its remaining lots."""
        rec = self.orders.pop(order_id)
        book = self.asks if rec[_SELLS] else self.bids
        level = book[rec[_PRICE]]
        del level.orders[order_id]
        level.total -= rec[_REMAINING]
        if not level.orders:
            del book[rec[_PRICE]]
        return rec[_REMAINING]

    def amend(
        self, order_id: Hashable, quantity: int | None = None, price: int | None = None
    ) -> list[tuple[int, int, Hashable, Hashable]]:
        """Change a resting order's total quantity and/or price (see the module docstring)."""
        rec = self.orders[order_id]
        sells, old_price, remaining, total = rec
        new_total = total if quantity is None else quantity
        new_price = old_price if price is None else price
        filled = total - remaining
        if new_total <= filled:
            raise ValueError(f"the new quantity {new_total} must exceed the filled {filled}")
        if new_price == old_price and new_total <= total:  # smaller (or same): keeps its place
            cut = total - new_total
            rec[_REMAINING] -= cut
            rec[_TOTAL] = new_total
            (self.asks if sells else self.bids)[old_price].total -= cut
            return []
        self.cancel(order_id)
        trades: list[tuple[int, int, Hashable, Hashable]] = []
        left = self._match(order_id, sells, new_price, new_total - filled, trades)
        if left:
            self._rest(order_id, sells, new_price, left, new_total)
        return trades

    # -- market data ---------------------------------------------------------------------

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

    # -- internals -----------------------------------------------------------------------

    def _rest(self, order_id: Hashable, sell: bool, price: int, remaining: int, total: int) -> None:
        book = self.asks if sell else self.bids
        level = book.get(price)
        if level is None:
            level = book[price] = Level()
        rec = [sell, price, remaining, total]
        level.orders[order_id] = rec
        level.total += remaining
        self.orders[order_id] = rec

    def _match(
        self,
        taker_id: Hashable,
        sell: bool,
        price: int,
        quantity: int,
        trades: list[tuple[int, int, Hashable, Hashable]],
    ) -> int:
        """Trade against the opposite side by price-time priority; returns the lots left."""
        book = self.bids if sell else self.asks
        orders = self.orders
        while quantity and book:
            level_price, level = book.peekitem(-1) if sell else book.peekitem(0)
            if (level_price < price) if sell else (level_price > price):
                break
            fifo = level.orders
            while quantity and fifo:
                maker_id = next(iter(fifo))
                rec = fifo[maker_id]
                qty = min(quantity, rec[_REMAINING])
                trades.append((level_price, qty, maker_id, taker_id))
                quantity -= qty
                level.total -= qty
                rec[_REMAINING] -= qty
                if not rec[_REMAINING]:
                    del fifo[maker_id]
                    del orders[maker_id]
            if not fifo:
                del book[level_price]
        return quantity
