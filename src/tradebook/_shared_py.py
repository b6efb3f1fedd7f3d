"""What the pure-Python book and engine share besides records: the enum members
they test by identity, and the side and id checks.

The compiled counterparts (``_side_code``, ``_check_id``) are declared in
``_book.pxd``, where ``_engine.pyx`` cimports them. Records: ``_records_py``.
"""

from __future__ import annotations

from .enums import SIDES, OrderStatus, OrderType, Side, TimeInForce, coerce_enum
from .errors import InvalidOrderError

BUY = Side.BUY
SELL = Side.SELL
# The string values, tested by identity on hot paths: a literal "BUY" in the
# caller's code is this same interned object (any other str goes through to_side).
BUY_STR = "BUY"
SELL_STR = "SELL"
LIMIT_STR = "LIMIT"
GTC_STR = "GTC"
LIMIT = OrderType.LIMIT
GTC = TimeInForce.GTC
OPEN = OrderStatus.OPEN
PARTIAL = OrderStatus.PARTIALLY_FILLED
PENDING = OrderStatus.PENDING
CANCELLED = OrderStatus.CANCELLED
FILLED_ST = OrderStatus.FILLED


def to_side(value: object) -> Side:
    """``value`` as a ``Side``: the members and their exact strings at once, anything else through ``coerce_enum``."""
    if value is BUY or value is SELL:
        return value
    if type(value) is str:
        try:
            return SIDES[value]
        except KeyError:
            pass
    return coerce_enum(Side, value, "side", InvalidOrderError)


def check_id(order_id: object) -> None:
    """Refuse an order id that is None or unhashable."""
    if order_id is None:
        raise InvalidOrderError("order id must not be None")
    try:
        hash(order_id)
    except TypeError:
        raise InvalidOrderError(f"order id must be hashable; got {type(order_id).__name__}") from None
