"""Records to rows and back, with the dialect's converters for decimals, timestamps, flags and ids.

PostgreSQL stores each value as it is (``NUMERIC``, ``timestamptz``,
``boolean``), SQLite as text and integers: a :class:`Codec` holds the
converters, and its methods the column order of :mod:`.columns`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ...enums import OrderStatus, OrderType, Side, TimeInForce
from ..models import OrderRecord, TradeRecord, WalletOp

__all__ = ["Codec"]


def _same(value: Any) -> Any:
    return value


def _same_id(value: int, what: str) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Codec:
    """How one dialect stores the values of a record; the defaults store them as they are."""

    decimal_out: Callable[[Decimal], Any] = _same
    decimal_in: Callable[[Any], Decimal] = _same
    time_out: Callable[[datetime], Any] = _same
    time_in: Callable[[Any], datetime] = _same
    flag_out: Callable[[bool], Any] = _same
    flag_in: Callable[[Any], bool] = _same
    #: ``id_out(value, what)``: an id as stored; may refuse one the column cannot hold.
    id_out: Callable[[int, str], Any] = _same_id

    def order_row(self, order: OrderRecord) -> tuple[Any, ...]:
        """The values of ``ORDER_COLUMNS`` for ``order``."""
        number, stamp, ident = self.decimal_out, self.time_out, self.id_out
        return (
            ident(order.id, "order id"),
            order.user_id,
            order.symbol,
            Side(order.side).value,
            OrderType(order.type).value,
            TimeInForce(order.time_in_force).value,
            None if order.price is None else number(order.price),
            None if order.quantity is None else number(order.quantity),
            number(order.filled_quantity),
            OrderStatus(order.status).value,
            stamp(order.created_at),
            stamp(order.updated_at),
            order.client_order_id,
            self.flag_out(order.post_only),
            None if order.sequence is None else ident(order.sequence, "sequence"),
            None if order.stop_price is None else number(order.stop_price),
            None if order.trailing_offset is None else number(order.trailing_offset),
            None if order.display_quantity is None else number(order.display_quantity),
            None if order.visible_quantity is None else number(order.visible_quantity),
            None if order.expire_at is None else ident(order.expire_at, "expire_at"),
            None if order.quote_quantity is None else number(order.quote_quantity),
        )

    def order(self, row: Sequence[Any]) -> OrderRecord:
        """The order a row of ``ORDER_COLUMNS`` holds."""
        number, stamp = self.decimal_in, self.time_in
        return OrderRecord(
            id=row[0],
            user_id=row[1],
            symbol=row[2],
            side=Side(row[3]),
            type=OrderType(row[4]),
            time_in_force=TimeInForce(row[5]),
            price=None if row[6] is None else number(row[6]),
            quantity=None if row[7] is None else number(row[7]),
            filled_quantity=number(row[8]),
            status=OrderStatus(row[9]),
            created_at=stamp(row[10]),
            updated_at=stamp(row[11]),
            client_order_id=row[12],
            post_only=self.flag_in(row[13]),
            sequence=row[14],
            stop_price=None if row[15] is None else number(row[15]),
            trailing_offset=None if row[16] is None else number(row[16]),
            display_quantity=None if row[17] is None else number(row[17]),
            visible_quantity=None if row[18] is None else number(row[18]),
            expire_at=row[19],
            quote_quantity=None if row[20] is None else number(row[20]),
        )

    def trade_row(self, trade: TradeRecord) -> tuple[Any, ...]:
        """The values of ``TRADE_COLUMNS`` for ``trade``."""
        number, ident = self.decimal_out, self.id_out
        return (
            ident(trade.id, "trade id"),
            trade.symbol,
            number(trade.price),
            number(trade.quantity),
            ident(trade.buy_order_id, "buy order id"),
            ident(trade.sell_order_id, "sell order id"),
            trade.buyer_id,
            trade.seller_id,
            Side(trade.taker_side).value,
            self.time_out(trade.created_at),
        )

    def trade(self, row: Sequence[Any]) -> TradeRecord:
        """The trade a row of ``TRADE_COLUMNS`` holds."""
        number = self.decimal_in
        return TradeRecord(
            id=row[0],
            symbol=row[1],
            price=number(row[2]),
            quantity=number(row[3]),
            buy_order_id=row[4],
            sell_order_id=row[5],
            buyer_id=row[6],
            seller_id=row[7],
            taker_side=Side(row[8]),
            created_at=self.time_in(row[9]),
        )

    def op_row(self, op: WalletOp) -> tuple[Any, ...]:
        """The values of ``OP_COLUMNS`` for an outbox entry (the payload as JSON text)."""
        return (self.id_out(op.id, "wallet operation id"), op.symbol, op.kind, op.payload())
