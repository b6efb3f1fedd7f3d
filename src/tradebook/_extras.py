"""The fields of the order types beyond limit and market, shared by both backends.

An ``Order`` of a plain LIMIT or MARKET type carries none of this (its ``_ext``
is None, so the plain path pays one pointer test). A stop, stop-limit, trailing
stop, iceberg, GTD order or a market order sized by a quote amount carries one
:class:`OrderExt`: the validated inputs, and once the order is bound to a book
their integer forms and the live state (a trailing stop's reference, an
iceberg's hidden quantity).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ._numeric import INT64_MAX, to_decimal, to_units
from .enums import OrderType, TimeInForce
from .errors import InvalidOrderError, InvalidPriceError, InvalidQuantityError

__all__ = ["STOP_TYPES", "OrderExt", "ext_stop_price", "make_ext", "needs_ext"]

_LIMIT = OrderType.LIMIT
_MARKET = OrderType.MARKET
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT
_TRAILING = OrderType.TRAILING_STOP
_GTC = TimeInForce.GTC
_GTD = TimeInForce.GTD
_FOK = TimeInForce.FOK

#: The order types that wait off the book for a trigger.
STOP_TYPES = frozenset((_STOP, _STOP_LIMIT, _TRAILING))


class OrderExt:
    """What an order of a new type carries beyond a plain order.

    Inputs (``*_in``) are Decimals as validated; the integer fields are set by
    :meth:`bind` when the order is submitted to a book of a known instrument.
    """

    __slots__ = (
        "stop_in",
        "trail_in",
        "display_in",
        "expire_at",
        "quote_in",
        "stop",
        "trail",
        "ref",
        "display",
        "hidden",
        "quote",
        "quote_left",
        "accepted",
        "group",
    )

    def __init__(
        self,
        stop_in: Decimal | None,
        trail_in: Decimal | None,
        display_in: Decimal | None,
        expire_at: int | None,
        quote_in: Decimal | None,
    ) -> None:
        self.stop_in = stop_in
        self.trail_in = trail_in
        self.display_in = display_in
        self.expire_at = expire_at
        self.quote_in = quote_in
        self.stop: int | None = None  # stop price in ticks (a trailing stop's current one; None before a trade)
        self.trail: int | None = None  # trailing offset in ticks
        self.ref: int | None = None  # trailing reference price in ticks, None until the first trade
        self.display: int | None = None  # iceberg slice size in lots
        self.hidden = 0  # iceberg lots not yet shown
        self.quote: int | None = None  # quote budget in tick*lot units
        self.quote_left = 0
        self.accepted = 0  # the book sequence when a stop was accepted (its place among stops)
        self.group: Any = None  # a waiting trailing stop's group (``_conditional``): its live reference

    def bind(self, inst: Any, lots: int | None) -> None:
        """Turn the inputs into integer units of ``inst`` (raises, changing nothing, if off the grid)."""
        stop = trail = display = quote = None
        if self.stop_in is not None:
            stop = to_units(self.stop_in, inst.tick_size, "stop_price", "tick size", InvalidPriceError)
        if self.trail_in is not None:
            trail = to_units(self.trail_in, inst.tick_size, "trailing_offset", "tick size", InvalidPriceError)
        if self.display_in is not None:
            display = to_units(self.display_in, inst.lot_size, "display_quantity", "lot size", InvalidQuantityError)
            if lots is not None and display >= lots:
                raise InvalidQuantityError(f"display_quantity {self.display_in} must be smaller than the quantity")
        if self.quote_in is not None:
            unit = inst.tick_size * inst.lot_size
            units = int(self.quote_in / unit)  # whole grid steps of tick * lot: what a trade can spend
            if units <= 0:
                raise InvalidQuantityError(
                    f"quote_quantity {self.quote_in} buys no lot: it is below one tick times one lot ({unit})"
                )
            quote = min(units, INT64_MAX)
        self.stop, self.trail, self.display, self.quote = stop, trail, display, quote
        self.quote_left = quote or 0

    def copy_state(self) -> dict[str, Any]:
        """The integer state, as JSON-safe data for snapshots."""
        if self.group is not None and self.trail is not None:  # a waiting trailing stop: its group holds the reference
            ref: int = self.group.ref
            self.ref = ref
            self.stop = ref - self.trail if self.group.sell else ref + self.trail
        out: dict[str, Any] = {}
        for name in ("stop", "trail", "ref", "display", "hidden", "quote", "quote_left", "expire_at", "accepted"):
            value = getattr(self, name)
            if value is not None and value != 0:
                out[name] = value
        return out

    @classmethod
    def from_state(cls, data: Any) -> OrderExt:
        """Rebuild the integer state written by :meth:`copy_state` (inputs are not needed once bound)."""
        if not isinstance(data, dict):
            raise InvalidOrderError(f"bad order extras in snapshot: {data!r}")
        ext = cls(None, None, None, None, None)
        for name, value in data.items():
            if name not in (
                "stop",
                "trail",
                "ref",
                "display",
                "hidden",
                "quote",
                "quote_left",
                "expire_at",
                "accepted",
            ):
                raise InvalidOrderError(f"unknown order extra {name!r} in snapshot")
            if type(value) is not int or not (-INT64_MAX <= value <= INT64_MAX) or (value < 0 and name != "expire_at"):
                raise InvalidOrderError(f"bad order extra {name}={value!r} in snapshot")
            setattr(ext, name, value)
        return ext


def needs_ext(otype: OrderType, tif: TimeInForce, *values: object) -> bool:
    """True when an order of this type, time in force and extra keyword values needs an :class:`OrderExt`."""
    return (otype is not _LIMIT and otype is not _MARKET) or tif is _GTD or any(v is not None for v in values)


def _positive(value: Any, what: str, error: type[InvalidOrderError]) -> Decimal:
    out = to_decimal(value, what, error)
    if out <= 0:
        raise error(f"{what} must be positive; got {value!r}")
    return out


def make_ext(
    otype: OrderType,
    tif: TimeInForce,
    price: Any,
    quantity: Any,
    post_only: bool,
    stop_price: Any,
    trailing_offset: Any,
    display_quantity: Any,
    expire_at: Any,
    quote_quantity: Any,
) -> OrderExt:
    """Validate the combination of a new order type's fields; raise ``InvalidOrderError`` (or a subclass)."""
    stops = otype in STOP_TYPES
    if otype is _STOP or otype is _TRAILING:
        if price is not None:
            raise InvalidOrderError(
                f"a {otype.value} order takes no price (it trades as a market order); got {price!r}"
            )
    elif otype is _STOP_LIMIT and price is None:
        raise InvalidOrderError("a STOP_LIMIT order needs a price (its limit once triggered)")
    if otype is _STOP or otype is _STOP_LIMIT:
        if stop_price is None:
            raise InvalidOrderError(f"a {otype.value} order needs a stop_price")
    elif stop_price is not None:
        raise InvalidOrderError(f"stop_price applies only to STOP and STOP_LIMIT orders, not {otype.value}")
    if otype is _TRAILING:
        if trailing_offset is None:
            raise InvalidOrderError("a TRAILING_STOP order needs a trailing_offset")
    elif trailing_offset is not None:
        raise InvalidOrderError(f"trailing_offset applies only to TRAILING_STOP orders, not {otype.value}")
    if stops and post_only:
        raise InvalidOrderError("post_only does not apply to stop orders")
    if display_quantity is not None and (otype is not _LIMIT or (tif is not _GTC and tif is not _GTD)):
        raise InvalidOrderError("display_quantity (an iceberg) applies only to LIMIT GTC or GTD orders")
    if tif is _GTD:
        if expire_at is None:
            raise InvalidOrderError("a GTD order needs expire_at")
        if otype is _MARKET:
            raise InvalidOrderError("a MARKET order cannot be GTD: it never rests")
    elif expire_at is not None:
        raise InvalidOrderError(f"expire_at applies only to GTD orders (time_in_force is {tif.value})")
    if expire_at is not None and (type(expire_at) is not int or not -INT64_MAX <= expire_at <= INT64_MAX):
        raise InvalidOrderError(f"expire_at must be an int (the engine's time unit) within 64 bits; got {expire_at!r}")
    if quote_quantity is not None:
        if otype is not _MARKET:
            raise InvalidOrderError(f"quote_quantity applies only to MARKET orders, not {otype.value}")
        if quantity is not None:
            raise InvalidOrderError("give quantity or quote_quantity, not both")
        if tif is _FOK:
            raise InvalidOrderError("quote_quantity does not combine with FOK")
    elif quantity is None:
        raise InvalidQuantityError("an order needs a quantity (or, for a MARKET order, a quote_quantity)")
    return OrderExt(
        None if stop_price is None else _positive(stop_price, "stop_price", InvalidPriceError),
        None if trailing_offset is None else _positive(trailing_offset, "trailing_offset", InvalidPriceError),
        None if display_quantity is None else _positive(display_quantity, "display_quantity", InvalidQuantityError),
        expire_at,
        None if quote_quantity is None else _positive(quote_quantity, "quote_quantity", InvalidQuantityError),
    )


def ext_stop_price(ext: OrderExt | None, inst: Any) -> Decimal | None:
    """``Order.stop_price``: the stop price as given, or once bound the live one (a trailing stop's moves)."""
    if ext is None:
        return None
    stop = ext.stop
    if ext.group is not None:
        ref = ext.group.ref
        stop = ref - ext.trail if ext.group.sell else ref + ext.trail
    if inst is None or stop is None:
        return ext.stop_in
    price: Decimal = inst.ticks_to_price(stop)
    return price
