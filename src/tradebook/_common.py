"""Value types and helpers shared by both backends."""

from __future__ import annotations

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


class MarketDataUpdate(NamedTuple):
    """What one engine command changed in one book: level deltas and trades, in order."""

    symbol: str
    deltas: list[L2Delta]
    trades: list[Any]


ENGINE_SNAPSHOT_FORMAT = "tradebook.engine/1"
