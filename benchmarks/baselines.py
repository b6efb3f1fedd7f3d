"""The baselines tradebook is measured against: a book and a matcher on ``sortedcontainers``.

Written the way a user would write them in an afternoon: a ``SortedDict`` per
side from price (integer ticks) to its :class:`Level`, each level a ``dict`` of
order id to what rests there (dicts keep insertion order, so a level is a FIFO
with O(1) removal) plus its running total, and one ``dict`` from id to where the
order rests. They check duplicate and unknown ids and nothing else; no
``Decimal``, no locking, no order objects, no self-trade prevention. Same raw
operations as tradebook's integer API.

* :class:`SortedBook`: add, cancel, best bid/ask, depth (a level maps id -> lots).
* :class:`SortedMatcher`: submit (GTC/IOC), cancel, amend, best bid/ask, depth
  (a level maps id -> the order's record). Semantics are tradebook's, so the
  same command stream gives the same trades: price-time priority, trades at the
  maker's price, limit GTC (the remainder rests) or IOC (the remainder is
  dropped). ``amend`` takes the new *total* quantity (what was filled counts)
  like ``MatchingEngine.amend_raw``: lowering it at the same price shrinks the
  order in place (keeps its priority), anything else is a cancel plus an add at
  the back of the (new) level, matching first if the new price crosses. Every
  command returns its trades as a list of ``(price, quantity, maker id, taker
  id)`` tuples. :func:`load_matcher` bulk-loads one from resting orders.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from itertools import islice
from typing import Any

from sortedcontainers import SortedDict

from tradebook import Side

__all__ = ["Level", "SortedBook", "SortedMatcher", "load_matcher"]

_SELL = Side.SELL


class Level:
    """One price level: FIFO of ``order id -> lots`` (book) or ``-> record`` (matcher), and the total."""

    __slots__ = ("orders", "total")

    def __init__(self) -> None:
        self.orders: dict[Hashable, Any] = {}
        self.total = 0


class _Sides:
    """What both baselines share: a ``SortedDict`` of levels per side, the id map, the market data reads."""

    def __init__(self, instrument: Any = None) -> None:
        self.instrument = instrument
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.orders: dict[Hashable, Any] = {}

    def __len__(self) -> int:
        return len(self.orders)

    def __contains__(self, order_id: object) -> bool:
        return order_id in self.orders

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


class SortedBook(_Sides):
    """Baseline book: add, cancel, best bid/ask, depth; prices in ticks, quantities in lots."""

    orders: dict[Hashable, tuple[Side, int, int]]

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


# An order's record: [sells, price, remaining lots, total lots]; filled = total - remaining.
_SELLS, _PRICE, _REMAINING, _TOTAL = range(4)


class SortedMatcher(_Sides):
    """Baseline engine: submit (GTC/IOC), cancel, amend; prices in ticks, quantities in lots."""

    orders: dict[Hashable, list[Any]]

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


def load_matcher(orders: Iterable[tuple[Hashable, Side, int, int]], instrument: Any = None) -> SortedMatcher:
    """A SortedMatcher holding ``orders`` (not crossed): the state ``add()`` would leave, built with one sort a side."""
    m = SortedMatcher(instrument)
    sides: tuple[dict[int, Level], dict[int, Level]] = ({}, {})
    for oid, side, ticks, lots in orders:
        sell = side is _SELL
        level = sides[sell].get(ticks)
        if level is None:
            level = sides[sell][ticks] = Level()
        rec = [sell, ticks, lots, lots]
        level.orders[oid] = rec
        level.total += lots
        m.orders[oid] = rec
    m.bids, m.asks = SortedDict(sides[0]), SortedDict(sides[1])
    return m
