"""The records the order-management layer stores and passes between its ports.

Prices, quantities and amounts are :class:`~decimal.Decimal` everywhere (never
floats); timestamps are timezone-aware UTC :class:`~datetime.datetime`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from ..enums import OrderStatus, OrderType, Side, TimeInForce

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "Balance",
    "OrderQuery",
    "OrderRecord",
    "Page",
    "Release",
    "Reservation",
    "Settlement",
    "TradeRecord",
    "WalletOp",
]

T = TypeVar("T")

#: Orders in these states are live: they rest in a book, or (``UNTRIGGERED``) wait off the book for their
#: stop to trigger; either way they hold a reservation and can be cancelled.
ACTIVE_STATUSES = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNTRIGGERED})
#: Orders in these states never change again.
TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


@dataclass(frozen=True)
class OrderRecord:
    """One order as the repository stores it.

    ``status`` is ``PENDING`` from the moment the order is written until the
    engine has taken it; a ``PENDING`` order found at start-up was never
    accepted and is removed by recovery. ``sequence`` is the engine priority
    (arrival order; a stop's place among the stops while it waits; an
    iceberg's latest slice) and is ``None`` while pending.

    The fields of the order types beyond limit and market, ``None`` where they
    do not apply: ``stop_price`` (STOP and STOP_LIMIT; a TRAILING_STOP's
    current stop price, ``None`` until the symbol's first trade gives it a
    reference), ``trailing_offset``, ``display_quantity`` (an iceberg) and
    ``visible_quantity`` (its current slice in the book; 0 once it no longer
    rests), ``expire_at`` (GTD: the engine time in epoch milliseconds at which
    it expires) and ``quote_quantity`` (a MARKET order sized by the quote
    amount; its ``quantity`` is then ``None``).
    """

    id: int
    user_id: str
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: Decimal | None
    quantity: Decimal | None
    filled_quantity: Decimal
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    client_order_id: str | None = None
    post_only: bool = False
    sequence: int | None = None
    stop_price: Decimal | None = None
    trailing_offset: Decimal | None = None
    display_quantity: Decimal | None = None
    visible_quantity: Decimal | None = None
    expire_at: int | None = None
    quote_quantity: Decimal | None = None

    @property
    def remaining_quantity(self) -> Decimal:
        """Quantity not yet filled (0 for an order sized by ``quote_quantity``, which never rests)."""
        quantity = self.quantity
        return self.filled_quantity * 0 if quantity is None else quantity - self.filled_quantity

    @property
    def is_active(self) -> bool:
        """True while the order is live: resting in a book, or waiting for its stop to trigger."""
        return self.status in ACTIVE_STATUSES

    def replace(self, **changes: Any) -> OrderRecord:
        """A copy with ``changes`` applied (the fields are not re-validated)."""
        if not changes.keys() <= _ORDER_FIELDS:
            raise TypeError(f"OrderRecord has no field(s) {sorted(changes.keys() - _ORDER_FIELDS)}")
        # dataclasses.replace re-runs __init__ through a generic path: ten times slower on the hot path.
        copy = object.__new__(OrderRecord)
        fields = copy.__dict__
        fields.update(self.__dict__)
        fields.update(changes)
        return copy


_ORDER_FIELDS = frozenset(f.name for f in dataclasses.fields(OrderRecord))


@dataclass(frozen=True)
class TradeRecord:
    """One execution between a resting (maker) and an incoming (taker) order."""

    id: int
    symbol: str
    price: Decimal
    quantity: Decimal
    buy_order_id: int
    sell_order_id: int
    buyer_id: str
    seller_id: str
    taker_side: Side
    created_at: datetime

    @property
    def notional(self) -> Decimal:
        """``price * quantity`` in the quote asset."""
        return self.price * self.quantity


@dataclass(frozen=True)
class OrderQuery:
    """Filters and pagination for :meth:`OrderRepository.list_orders` (newest first).

    ``cursor`` is the ``next_cursor`` of the previous page; ``since`` is
    inclusive and ``until`` exclusive, on ``created_at``.
    """

    symbol: str | None = None
    status: OrderStatus | None = None
    side: Side | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results, newest first; ``next_cursor`` is ``None`` on the last page."""

    items: Sequence[T]
    next_cursor: str | None = None


@dataclass(frozen=True)
class Balance:
    """A user's holding of one asset: ``available`` to spend and ``reserved`` by open orders."""

    asset: str
    available: Decimal
    reserved: Decimal

    @property
    def total(self) -> Decimal:
        """``available + reserved``."""
        return self.available + self.reserved


@dataclass(frozen=True)
class Reservation:
    """Funds set aside for one order, found again by ``ref`` (the order id as text)."""

    ref: str
    user_id: str
    asset: str
    amount: Decimal


@dataclass(frozen=True)
class Settlement:
    """The wallet movements of one trade.

    The buyer's reservation ``buy_ref`` (quote asset) pays ``notional``; the
    seller's reservation ``sell_ref`` (base asset) delivers ``quantity``. The
    buyer receives ``quantity - buyer_fee`` of the base asset, the seller
    ``notional - seller_fee`` of the quote asset, and ``fee_account`` both fees,
    so every asset's total is conserved. A wallet applies a given
    ``trade_id`` once, however often it is asked.
    """

    trade_id: int
    base: str
    quote: str
    buyer_id: str
    seller_id: str
    buy_ref: str
    sell_ref: str
    quantity: Decimal
    notional: Decimal
    buyer_fee: Decimal = Decimal(0)
    seller_fee: Decimal = Decimal(0)
    fee_account: str | None = None


@dataclass(frozen=True)
class Release:
    """Bring reservation ``ref`` down to ``keep`` (a no-op if it already holds no more).

    Stated as a target rather than a delta, so applying it twice is harmless.
    """

    ref: str
    keep: Decimal = Decimal(0)


@dataclass(frozen=True)
class WalletOp:
    """A wallet movement recorded in the same transaction as the trades that caused it.

    The service applies it after the commit and marks it done; recovery applies
    whatever is still pending (an outbox). ``op`` is a :class:`Settlement` or a
    :class:`Release`.
    """

    id: int
    symbol: str
    op: Settlement | Release = field(compare=True)

    @property
    def kind(self) -> Literal["settle", "release"]:
        """``"settle"`` or ``"release"``."""
        return "settle" if isinstance(self.op, Settlement) else "release"

    def payload(self) -> str:
        """The operation as JSON text, decimals as strings (what SQL adapters store)."""
        # vars() rather than dataclasses.asdict: the fields are flat, and asdict deep-copies each one
        data = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in vars(self.op).items()}
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_payload(cls, op_id: int, symbol: str, kind: str, payload: str) -> WalletOp:
        """Rebuild an operation stored with :meth:`payload`."""
        data = json.loads(payload)
        op: Settlement | Release
        if kind == "settle":
            for name in ("quantity", "notional", "buyer_fee", "seller_fee"):
                data[name] = Decimal(data[name])
            op = Settlement(**data)
        elif kind == "release":
            op = Release(ref=data["ref"], keep=Decimal(data["keep"]))
        else:
            raise ValueError(f"unknown wallet operation kind {kind!r}")
        return cls(op_id, symbol, op)
