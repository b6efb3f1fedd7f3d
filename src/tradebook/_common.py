"""Value types and helpers shared by both backends."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple
from uuid import UUID

from .enums import OrderStatus

__all__ = [
    "ENGINE_SNAPSHOT_FORMAT",
    "REENTERED",
    "SNAPSHOT_FORMAT",
    "STATUS_CODES",
    "Depth",
    "L2Delta",
    "LevelSnapshot",
    "MarketDataUpdate",
    "MarketSnapshot",
    "OrderEvent",
    "TopOfBook",
    "decode_key",
    "encode_key",
]

SNAPSHOT_FORMAT = "tradebook.orderbook/1"

#: Order status codes: ``BatchResult.statuses`` 0..6 and the compiled core's ``ST_*`` index this tuple.
STATUS_CODES: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING,
    OrderStatus.OPEN,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED,
    OrderStatus.CANCELLED,
    OrderStatus.REJECTED,
    OrderStatus.EXPIRED,
    OrderStatus.UNTRIGGERED,
)

# What both backends raise when a book is changed from code it runs while changing.
REENTERED = (
    "the order book was called back while it was changing (from an order id's or owner's __eq__ or __hash__, "
    "or a __del__): that code may read the book but not change it; market data subscribers may"
)


class LevelSnapshot(NamedTuple):
    """One price level at a moment: price, total remaining quantity, number of orders."""

    price: Decimal
    quantity: Decimal
    order_count: int


class Depth(NamedTuple):
    """The top of both sides: ``bids`` high to low, ``asks`` low to high."""

    bids: list[LevelSnapshot]
    asks: list[LevelSnapshot]


def encode_key(value: Any, what: str) -> Any:
    """Encode an id or owner for JSON: int, str and None as they are, UUID tagged."""
    tp = type(value)
    if value is None or tp is int or tp is str:
        return value
    if isinstance(value, UUID):
        return {"uuid": str(value)}
    raise TypeError(f"snapshot supports {what}s of type int, str or UUID; got {tp.__name__} {value!r}")


def decode_key(value: Any, what: str) -> Any:
    """Invert :func:`encode_key`."""
    tp = type(value)
    if value is None or tp is int or tp is str:
        return value
    if tp is dict and set(value) == {"uuid"}:
        return UUID(value["uuid"])
    raise ValueError(f"bad {what} in snapshot: {value!r}")


class TopOfBook(NamedTuple):
    """Best bid and ask with their total quantities (None where a side is empty)."""

    bid_price: Decimal | None
    bid_quantity: Decimal | None
    ask_price: Decimal | None
    ask_quantity: Decimal | None


class L2Delta(NamedTuple):
    """A level that changed: its side, price and new total quantity (0: the level is gone)."""

    side: Any
    price: Decimal
    quantity: Decimal
    price_ticks: int
    quantity_lots: int


class OrderEvent(NamedTuple):
    """One L3 (per-order) event: what happened to one resting order's visible part.

    ``kind`` is ``"ADD"`` (the order, or an iceberg's next slice, became visible;
    ``quantity`` is its visible size), ``"MODIFY"`` (its visible size changed in
    place, keeping its priority; ``quantity`` is the new visible size),
    ``"DELETE"`` (it left the book for any reason but a fill: cancel, self-trade
    prevention, GTD expiry, the old place of an amend that lost priority;
    ``quantity`` is the visible size it had) or ``"EXECUTE"`` (it traded as a
    maker; ``quantity`` is the traded quantity, and an order whose visible size
    reaches 0 has left the book). ``sequence`` is the order's time priority: an
    ADD goes to the back of its level, and a larger sequence always means later.
    """

    kind: str
    order_id: Any
    side: Any
    price: Decimal
    quantity: Decimal
    sequence: int


class MarketDataUpdate(NamedTuple):
    """What one engine command changed in one book, in order.

    ``deltas``: each level it changed with its new visible total (0: gone);
    ``trades``: its trades; ``seq``: the book's update number (1 for the first
    update published, then one more for each, never a gap); ``time``: the
    engine's time; ``orders``: its L3 events (:class:`OrderEvent`).
    """

    symbol: str
    deltas: list[L2Delta]
    trades: list[Any]
    seq: int = 0
    time: int = 0
    orders: Sequence[OrderEvent] = ()


class MarketSnapshot(NamedTuple):
    """A book's visible state at update ``seq``: the next update is ``seq + 1``.

    ``depth``: every visible level of both sides; ``orders``: every visible
    resting order as an ``"ADD"`` :class:`OrderEvent`, the bids best price
    first, then the asks best price first, time priority (FIFO) within a level.
    """

    seq: int
    time: int
    depth: Depth
    orders: list[OrderEvent]


ENGINE_SNAPSHOT_FORMAT = "tradebook.engine/1"
