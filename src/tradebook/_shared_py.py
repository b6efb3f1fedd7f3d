"""What the pure-Python book and engine share: a resting order's record, a level's
state, the enum members they test by identity, and the side and id checks.

The compiled counterparts are declared in ``_book.pxd`` (``Rec``, ``Level``,
``_side_code``, ``_check_id``), where ``_engine.pyx`` cimports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .enums import OrderStatus, OrderType, Side, TimeInForce, coerce_enum
from .errors import InvalidOrderError

if TYPE_CHECKING:
    from ._book_py import Order

BUY = Side.BUY
SELL = Side.SELL
LIMIT = OrderType.LIMIT
GTC = TimeInForce.GTC
OPEN = OrderStatus.OPEN
PARTIAL = OrderStatus.PARTIALLY_FILLED
PENDING = OrderStatus.PENDING
CANCELLED = OrderStatus.CANCELLED
FILLED_ST = OrderStatus.FILLED


def to_side(value: object) -> Side:
    """``value`` as a ``Side``: the members themselves at once, anything else through ``coerce_enum``."""
    if value is BUY or value is SELL:
        return value
    return coerce_enum(Side, value, "side", InvalidOrderError)


def check_id(order_id: object) -> None:
    """Refuse an order id that is None or unhashable."""
    if order_id is None:
        raise InvalidOrderError("order id must not be None")
    try:
        hash(order_id)
    except TypeError:
        raise InvalidOrderError(f"order id must be hashable; got {type(order_id).__name__}") from None


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

    __slots__ = ("sell", "ticks", "total", "count", "head", "tail")

    def __init__(self, sell: bool, ticks: int) -> None:
        self.sell = sell
        self.ticks = ticks
        self.total = 0
        self.count = 0
        self.head: Rec | None = None
        self.tail: Rec | None = None


def sync(order: Order, rec: Rec) -> None:
    """Copy a record's price, quantities and sequence into the Order handed out for it."""
    order._ticks = rec[TICKS]
    order._lots = rec[LOTS]
    order._filled_lots = rec[FILLED]
    order._sequence = rec[SEQ]
