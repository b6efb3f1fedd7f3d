"""The JSON the API takes and gives: request models, response models, and the fast serializers.

Prices, quantities and amounts are **decimal strings** both ways (``"0.010"``),
never JSON numbers: a number where a decimal belongs is refused with 400, so no
value ever passes through a binary float. Request bodies refuse unknown fields.

The response models document the shapes in the OpenAPI document; the handlers
build the same dictionaries directly (:func:`order_json` and friends) and
serialize them with orjson, which is several times cheaper per request than
validating models on the way out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema
from starlette.responses import Response

from .._common import Depth
from ..enums import OrderType, TimeInForce
from ..instrument import Instrument
from ..oms._time import from_epoch_ms
from ..oms.models import Balance, OrderRecord, TradeRecord

__all__ = [
    "DECIMAL_PATTERN",
    "RFC3339_PATTERN",
    "BalanceOut",
    "BalancesOut",
    "DepthLevelOut",
    "DepthOut",
    "ErrorBody",
    "ErrorResponse",
    "HealthOut",
    "JSONResponse",
    "OrderIn",
    "OrderOut",
    "OrderPage",
    "TradeOut",
    "TradePage",
    "asset_scales",
    "balances_json",
    "decimal_text",
    "depth_json",
    "order_json",
    "trade_json",
]

#: What a decimal string in a request looks like: digits, optionally a point and more digits.
DECIMAL_PATTERN = r"^[0-9]{1,24}(\.[0-9]{1,24})?$"

DecimalString = Annotated[
    str,
    Field(
        pattern=DECIMAL_PATTERN,
        max_length=49,
        description='A non-negative decimal as a string (never a JSON number), such as "0.010".',
        examples=["0.010"],
    ),
]
DecimalOut = Annotated[str, Field(description='A decimal as a string, such as "60000.00".', examples=["60000.00"])]
SideName = Literal["BUY", "SELL"]
TypeName = Literal["LIMIT", "MARKET", "STOP", "STOP_LIMIT", "TRAILING_STOP"]
TimeInForceName = Literal["GTC", "IOC", "FOK", "GTD"]
StatusName = Literal["OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED", "UNTRIGGERED"]

#: An RFC 3339 timestamp with its offset (``Z`` or ``+HH:MM``), such as ``2030-01-01T12:00:00.250Z``.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,30})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,30}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def _expire_at(value: object) -> int | datetime:
    """``expire_at`` as the JSON gives it: an integer (epoch milliseconds) as it is, an RFC 3339 string parsed.

    The service checks the range (:func:`tradebook.oms._time.expire_at_ms`).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or len(value) > 64 or (match := _RFC3339.fullmatch(value)) is None:
        raise ValueError("expire_at is epoch milliseconds (a JSON integer) or an RFC 3339 timestamp with its offset")
    return _instant(match)


def _instant(match: re.Match[str]) -> datetime:
    """A matched RFC 3339 timestamp as an aware datetime.

    Digits past the microsecond round it up by one microsecond, so that rounding
    up to the millisecond (what ``expire_at`` does) stays exact: ``.123000001``
    is after ``.123`` and counts as ``.124``.
    """
    year, month, day, hour, minute, second, fraction, utc, sign, off_hours, off_minutes = match.groups()
    digits = (fraction or "").ljust(6, "0")
    try:
        if utc:
            zone = timezone.utc
        else:
            if int(off_minutes) > 59:
                raise ValueError(f"offset minutes {off_minutes} are past 59")
            offset = timedelta(hours=int(off_hours), minutes=int(off_minutes))
            zone = timezone(-offset if sign == "-" else offset)
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), int(digits[:6]), tzinfo=zone
        )
        return moment + timedelta(microseconds=1) if digits[6:].strip("0") else moment
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not a valid RFC 3339 timestamp: {exc}") from None


ExpireAt = Annotated[
    int | datetime,
    PlainValidator(_expire_at),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "description": "epoch milliseconds"},
                {"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN, "maxLength": 64},
            ]
        }
    ),
]
Symbol = Annotated[str, Field(min_length=1, max_length=64, description="BASE/QUOTE", examples=["BTC/USDT"])]


class OrderIn(BaseModel):
    """A new order (``POST /api/v1/orders``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    symbol: Symbol
    side: SideName
    type: TypeName = Field(
        default="LIMIT",
        description="STOP is a market order once triggered, STOP_LIMIT a limit order at price, TRAILING_STOP a market "
        "order whose stop price trails the market by trailing_offset.",
    )
    quantity: DecimalString | None = Field(
        default=None, description="Required, except for a MARKET order sized by quote_quantity (then absent or null)."
    )
    price: DecimalString | None = Field(
        default=None, description="Required for LIMIT and STOP_LIMIT, absent (or null) for the other types."
    )
    time_in_force: TimeInForceName | None = Field(
        default=None,
        description="When absent: GTD if expire_at is given, IOC for MARKET (which never rests: GTC is refused), "
        "GTC otherwise. A stop's applies once it is triggered (GTD also while it waits).",
    )
    post_only: bool = Field(default=False, description="Refuse the order rather than let it take liquidity.")
    client_order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[ -~]+$",
        description="Your id for the order (printable ASCII); a repeat returns the original order with 200.",
    )
    stop_price: DecimalString | None = Field(
        default=None, description="STOP and STOP_LIMIT: a BUY triggers on a trade at or above it, a SELL at or below."
    )
    trailing_offset: DecimalString | None = Field(
        default=None, description="TRAILING_STOP: the stop's distance from the best trade price since it was placed."
    )
    display_quantity: DecimalString | None = Field(
        default=None, description="An iceberg (LIMIT GTC or GTD): the book shows at most this much of it at a time."
    )
    expire_at: ExpireAt | None = Field(
        default=None,
        description="GTD: when the order expires, as epoch milliseconds (the service's engine clock) or an RFC 3339 "
        "timestamp (rounded up to the millisecond).",
        examples=[1893456000000, "2030-01-01T00:00:00Z"],
    )
    quote_quantity: DecimalString | None = Field(
        default=None,
        description="MARKET (GTC/IOC, not FOK): the quote amount to spend (BUY) or receive (SELL), on the grid of "
        "tick size times lot size, instead of quantity.",
    )


class AmendIn(BaseModel):
    """A change to a resting limit order (``PATCH /api/v1/orders/{id}``): at least one of the two fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    quantity: DecimalString | None = Field(
        default=None,
        description="The new total quantity (more than what is filled). Lower keeps the order's time priority; "
        "higher sends it to the back of its level.",
    )
    price: DecimalString | None = Field(
        default=None, description="The new limit price: the back of the new level; a price that crosses trades."
    )


class OrderOut(BaseModel):
    """An order as the API returns it."""

    id: int
    client_order_id: str | None
    symbol: str
    side: SideName
    type: TypeName
    time_in_force: TimeInForceName
    post_only: bool
    status: StatusName
    price: DecimalOut | None
    quantity: DecimalOut | None = Field(description="null for a MARKET order sized by quote_quantity")
    filled_quantity: DecimalOut
    remaining_quantity: DecimalOut | None = Field(description="null for a MARKET order sized by quote_quantity")
    stop_price: DecimalOut | None = Field(
        description="A stop's trigger price (a TRAILING_STOP's current one: null before the first trade)"
    )
    trailing_offset: DecimalOut | None
    display_quantity: DecimalOut | None
    visible_quantity: DecimalOut | None = Field(description="An iceberg's slice in the book now (0 once it left)")
    expire_at: str | None = Field(description="GTD: RFC 3339 UTC timestamp, to the millisecond")
    quote_quantity: DecimalOut | None
    created_at: str = Field(description="RFC 3339 UTC timestamp")
    updated_at: str = Field(description="RFC 3339 UTC timestamp")


class OrderPage(BaseModel):
    """A page of the caller's orders, newest first."""

    orders: list[OrderOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last page.")


class TradeOut(BaseModel):
    """A trade. ``side``, ``order_id`` and ``liquidity`` are the caller's, and only present with ``mine=true``."""

    id: int
    symbol: str
    price: DecimalOut
    quantity: DecimalOut
    taker_side: SideName
    created_at: str
    side: SideName | None = None
    order_id: int | None = None
    liquidity: Literal["MAKER", "TAKER"] | None = None


class TradePage(BaseModel):
    """A page of trades, newest first."""

    trades: list[TradeOut]
    next_cursor: str | None


class DepthLevelOut(BaseModel):
    """One aggregated price level."""

    price: DecimalOut
    quantity: DecimalOut
    orders: int


class DepthOut(BaseModel):
    """A symbol's book: bids best (highest) first, asks best (lowest) first."""

    symbol: str
    bids: list[DepthLevelOut]
    asks: list[DepthLevelOut]


class BalanceOut(BaseModel):
    """One asset of the caller's wallet."""

    asset: str
    available: DecimalOut
    reserved: DecimalOut
    total: DecimalOut


class BalancesOut(BaseModel):
    """The caller's balances, by asset name."""

    balances: list[BalanceOut]


class HealthOut(BaseModel):
    """Liveness and what is serving."""

    status: Literal["ok", "degraded", "starting", "stopping"]
    version: str
    backend: str
    wallet: str | None = Field(description="The wallet circuit breaker's state, when there is one.")


class ErrorBody(BaseModel):
    """What went wrong: a stable machine-readable ``code``, a sentence, and details where useful."""

    code: str = Field(examples=["insufficient_balance"])
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """Every error response has this shape."""

    error: ErrorBody


class JSONResponse(Response):
    """A JSON response serialized by orjson (decimals must already be strings)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """``content`` as compact JSON bytes."""
        return orjson.dumps(content)


def decimal_text(value: Decimal) -> str:
    """A decimal in plain notation (``1E+2`` becomes ``"100"``), exactly."""
    return format(value, "f")


def _time(value: Any) -> str:
    text: str = value.isoformat()
    return text


def _decimal_or_none(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def order_json(order: OrderRecord) -> dict[str, Any]:
    """The API form of an order (see :class:`OrderOut`)."""
    price = order.price
    tif = order.time_in_force
    quantity = order.quantity
    expire_at = order.expire_at
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        # A MARKET order never rests: one placed through the library with the default GTC behaves as IOC.
        "time_in_force": "IOC" if tif is TimeInForce.GTC and order.type is OrderType.MARKET else tif.value,
        "post_only": order.post_only,
        "status": order.status.value,
        "price": None if price is None else format(price, "f"),
        "quantity": None if quantity is None else format(quantity, "f"),
        "filled_quantity": format(order.filled_quantity, "f"),
        "remaining_quantity": None if quantity is None else format(quantity - order.filled_quantity, "f"),
        "stop_price": _decimal_or_none(order.stop_price),
        "trailing_offset": _decimal_or_none(order.trailing_offset),
        "display_quantity": _decimal_or_none(order.display_quantity),
        "visible_quantity": _decimal_or_none(order.visible_quantity),
        "expire_at": None if expire_at is None else from_epoch_ms(expire_at).isoformat(timespec="milliseconds"),
        "quote_quantity": _decimal_or_none(order.quote_quantity),
        "created_at": _time(order.created_at),
        "updated_at": _time(order.updated_at),
    }


def trade_json(trade: TradeRecord, user_id: str | None = None) -> dict[str, Any]:
    """The API form of a trade; with ``user_id``, also that user's side, order and liquidity."""
    out: dict[str, Any] = {
        "id": trade.id,
        "symbol": trade.symbol,
        "price": format(trade.price, "f"),
        "quantity": format(trade.quantity, "f"),
        "taker_side": trade.taker_side.value,
        "created_at": _time(trade.created_at),
    }
    if user_id is not None:
        buyer = trade.buyer_id == user_id
        out["side"] = "BUY" if buyer else "SELL"
        out["order_id"] = trade.buy_order_id if buyer else trade.sell_order_id
        out["liquidity"] = "TAKER" if trade.taker_side.value == out["side"] else "MAKER"
    return out


def depth_json(symbol: str, depth: Depth) -> dict[str, Any]:
    """The API form of a book's depth (see :class:`DepthOut`)."""

    def levels(side: Sequence[Any]) -> list[dict[str, Any]]:
        return [{"price": format(p, "f"), "quantity": format(q, "f"), "orders": n} for p, q, n in side]

    return {"symbol": symbol, "bids": levels(depth.bids), "asks": levels(depth.asks)}


def _places(value: Decimal) -> int:
    """How many decimal places ``value`` needs (``Decimal("8.500")`` needs 1, ``Decimal("10")`` none)."""
    exponent = value.normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def asset_scales(instruments: Iterable[Instrument]) -> dict[str, int]:
    """Each asset's number of decimal places: what its amounts can carry when trading these instruments.

    A base asset moves in lots (``lot_size``'s places); a quote asset in
    notionals, price times quantity (``tick_size``'s plus ``lot_size``'s
    places). An asset of several instruments takes the most.
    """
    scales: dict[str, int] = {}
    for inst in instruments:
        lot, tick = _places(inst.lot_size), _places(inst.tick_size)
        for asset, places in ((inst.base, lot), (inst.quote, tick + lot)):
            scales[asset] = max(scales.get(asset, 0), places)
    return scales


_WIDE = Context(prec=10_000)


def balances_json(balances: Mapping[str, Balance], scales: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The API form of a user's balances, sorted by asset (see :class:`BalancesOut`).

    Every amount of an asset is written with the asset's scale (``scales``,
    from :func:`asset_scales`), so ``"10"`` and ``"8.5"`` of BTC read
    ``"10.000"`` and ``"8.500"``; an amount with more places than that (a fee,
    a deposit made through the library) keeps all of them, and the other
    amounts of its row get as many. Nothing is ever rounded.
    """
    rows = []
    for asset, b in sorted(balances.items()):
        available, reserved = b.available, b.reserved
        total = available + reserved
        places = max((scales or {}).get(asset, 0), _places(available), _places(reserved), _places(total))
        step = Decimal(1).scaleb(-places)
        rows.append(
            {
                "asset": asset,
                "available": format(_WIDE.quantize(available, step), "f"),
                "reserved": format(_WIDE.quantize(reserved, step), "f"),
                "total": format(_WIDE.quantize(total, step), "f"),
            }
        )
    return {"balances": rows}
