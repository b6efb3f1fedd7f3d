"""The enumerations of the public API. Each is a ``str`` enum, and wherever an
enum is taken its string value is accepted too (``"BUY"`` for ``Side.BUY``)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TypeVar

__all__ = [
    "OrderStatus",
    "OrderType",
    "SelfTradePrevention",
    "Side",
    "TimeInForce",
    "coerce_enum",
]


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)


class Side(_StrEnum):
    """Which side of the book an order is on."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(_StrEnum):
    """LIMIT orders carry a price and may rest; MARKET orders never rest."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING_STOP = "TRAILING_STOP"


class TimeInForce(_StrEnum):
    """How long an order's unfilled remainder lives."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"


class OrderStatus(_StrEnum):
    """Where an order is in its life."""

    PENDING = "PENDING"
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNTRIGGERED = "UNTRIGGERED"


class SelfTradePrevention(_StrEnum):
    """What happens when a taker would trade against a maker of the same owner."""

    NONE = "NONE"
    CANCEL_TAKER = "CANCEL_TAKER"
    CANCEL_MAKER = "CANCEL_MAKER"
    CANCEL_BOTH = "CANCEL_BOTH"
    DECREMENT = "DECREMENT"


E = TypeVar("E", bound=Enum)

# Each enum's members by their exact string value. A ``str`` is looked up here
# before anything else (a dict probe with the string's cached hash), so "BUY"
# costs about what Side.BUY does; the hot paths of both backends use these
# tables directly. The members themselves are not keys: Enum's __hash__ is
# Python code, so callers test members by identity first.
SIDES: dict[str, Side] = {m.value: m for m in Side}
ORDER_TYPES: dict[str, OrderType] = {m.value: m for m in OrderType}
TIMES_IN_FORCE: dict[str, TimeInForce] = {m.value: m for m in TimeInForce}
STP_MODES: dict[str, SelfTradePrevention] = {m.value: m for m in SelfTradePrevention}
_BY_VALUE: dict[type[Enum], Mapping[str, Enum]] = {
    Side: SIDES,
    OrderType: ORDER_TYPES,
    TimeInForce: TIMES_IN_FORCE,
    SelfTradePrevention: STP_MODES,
    OrderStatus: {m.value: m for m in OrderStatus},
}


def coerce_enum(enum_type: type[E], value: object, what: str, error: type[Exception]) -> E:
    """Return ``value`` as a member of ``enum_type``, accepting the member or its string value.

    Raises ``error`` with a message naming ``what`` and the allowed values otherwise.
    """
    if type(value) is enum_type:
        return value
    if type(value) is str:
        try:
            return _BY_VALUE[enum_type][value]  # type: ignore[return-value]
        except KeyError:
            pass
    try:
        return enum_type(value)
    except (ValueError, TypeError):
        allowed = ", ".join(str(m.value) for m in enum_type)
        raise error(f"{what} must be one of {allowed}; got {value!r}") from None
