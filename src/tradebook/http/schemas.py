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

from collections.abc import Iterable, Mapping, Sequence
from decimal import Context, Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from .._common import Depth
from ..enums import OrderType, TimeInForce
from ..instrument import Instrument
from ..oms.models import Balance, OrderRecord, TradeRecord

__all__ = [
    "DECIMAL_PATTERN",
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
TypeName = Literal["LIMIT", "MARKET"]
TimeInForceName = Literal["GTC", "IOC", "FOK"]
StatusName = Literal["OPEN", "PARTIALLY_FILLED", "FILLED", "CANCELLED", "REJECTED", "EXPIRED"]
Symbol = Annotated[str, Field(min_length=1, max_length=64, description="BASE/QUOTE", examples=["BTC/USDT"])]


class OrderIn(BaseModel):
    """A new order (``POST /api/v1/orders``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    symbol: Symbol
    side: SideName
    type: TypeName = "LIMIT"
    quantity: DecimalString
    price: DecimalString | None = Field(default=None, description="Required for LIMIT, absent (or null) for MARKET.")
    time_in_force: TimeInForceName | None = Field(
        default=None,
        description="GTC when absent for LIMIT; IOC when absent for MARKET, which never rests (GTC is refused).",
    )
    post_only: bool = Field(default=False, description="Refuse the order rather than let it take liquidity.")
    client_order_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[ -~]+$",
        description="Your id for the order (printable ASCII); a repeat returns the original order with 200.",
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
    quantity: DecimalOut
    filled_quantity: DecimalOut
    remaining_quantity: DecimalOut
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


def order_json(order: OrderRecord) -> dict[str, Any]:
    """The API form of an order (see :class:`OrderOut`)."""
    price = order.price
    tif = order.time_in_force
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
        "quantity": format(order.quantity, "f"),
        "filled_quantity": format(order.filled_quantity, "f"),
        "remaining_quantity": format(order.quantity - order.filled_quantity, "f"),
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
