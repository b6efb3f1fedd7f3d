"""The pure-Python core's storage: a resting order's record and a price level's state.

The book builds them and the engine's matching loop walks them. The compiled
counterparts are the ``Rec`` and ``Level`` structs in ``_book.pxd``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._book_py import Order

# A resting order's record: a list, cheaper to make than an object. The Order
# handed out for it (``OBJ``) is made on first request and kept in step.
PREV = 0  # FIFO neighbours within the level (records or None)
NEXT = 1
LEVEL = 2  # the Level it rests in
ID = 3
SELLS = 4  # True for a sell
TICKS = 5
LOTS = 6  # total quantity
FILLED = 7
SEQ = 8
OBJ = 9  # the Order, or None

Rec = list[Any]


class Level:
    """A price level's state: FIFO of records plus their running totals."""

    __slots__ = ("sell", "ticks", "total", "count", "head", "tail", "view")

    def __init__(self, sell: bool, ticks: int) -> None:
        self.sell = sell
        self.ticks = ticks
        self.total = 0
        self.count = 0
        self.head: Rec | None = None
        self.tail: Rec | None = None
        self.view: Any = None  # the PriceLevel that best_bid / best_ask handed out for it


def sync(order: Order, rec: Rec) -> None:
    """Copy a record's price, quantities and sequence into the Order handed out for it."""
    order._ticks = rec[TICKS]
    order._lots = rec[LOTS]
    order._filled_lots = rec[FILLED]
    order._sequence = rec[SEQ]
