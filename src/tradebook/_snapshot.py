"""Snapshot rows of resting orders: writing them and reading them back, shared by both backends.

Counters. A book's ``next_sequence`` and an engine's ``next_trade_id`` are the
numbers the next accepted order and the next trade get. Both are int64s in the
compiled core, so both backends keep them in 1..2**63-1 (a snapshot with a
value outside that range is refused) and never let them pass 2**63-1: a book
whose ``next_sequence`` is 2**63-1 accepts no new order and re-queues none
(``TradebookError``, ``SEQ_EXHAUSTED``), and an engine refuses an order that
could trade when fewer trade ids are left (2**63-1 - ``next_trade_id``) than the
book has resting orders (``TRADE_IDS_EXHAUSTED``). Either refusal changes
nothing, and a book or engine at its limit still cancels, snapshots and
restores from its own snapshot.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, NamedTuple

from ._common import SNAPSHOT_FORMAT, decode_key, encode_key
from ._extras import OrderExt
from ._numeric import INT64_MAX
from .enums import OrderType, SelfTradePrevention, Side, TimeInForce, coerce_enum
from .errors import InvalidOrderError
from .instrument import Instrument

__all__ = ["SEQ_EXHAUSTED", "TRADE_IDS_EXHAUSTED", "OrderRow", "order_row", "read_snapshot"]

SEQ_EXHAUSTED = (
    "the book's sequence counter is used up: next_sequence has reached 2**63-1, "
    "so it accepts no new order and re-queues none"
)
TRADE_IDS_EXHAUSTED = (
    "the engine's trade ids are running out: next_trade_id {next_id} leaves {left} before 2**63-1, "
    "fewer than the {orders} resting orders of {symbol} that this order could trade with"
)


#: the types a resting order may have: a triggered STOP_LIMIT rests as what it is
_RESTING_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)


class OrderRow(NamedTuple):
    """A resting order read back from a snapshot, validated and decoded."""

    id: Any
    side: Side
    ticks: int
    lots: int
    filled: int
    sequence: int
    owner: Any
    client_order_id: Any
    type: OrderType
    time_in_force: TimeInForce
    post_only: bool
    self_trade_prevention: SelfTradePrevention | None
    ext: OrderExt | None = None


def order_row(
    order_id: Any,
    side: Side,
    ticks: int,
    lots: int,
    filled: int,
    sequence: int,
    owner: Any,
    client_order_id: Any,
    otype: OrderType,
    tif: TimeInForce,
    post_only: bool,
    stp: SelfTradePrevention | None,
    ext: OrderExt | None = None,
) -> dict[str, Any]:
    """One resting order as JSON-safe data (``extras``: an iceberg's or GTD order's integer state)."""
    row = {
        "id": encode_key(order_id, "order id"),
        "side": side.value,
        "price": ticks,
        "quantity": lots,
        "filled": filled,
        "sequence": sequence,
        "owner": encode_key(owner, "owner"),
        "client_order_id": encode_key(client_order_id, "client order id"),
        "type": otype.value,
        "time_in_force": tif.value,
        "post_only": post_only,
        "self_trade_prevention": None if stp is None else stp.value,
    }
    if ext is not None:
        row["extras"] = ext.copy_state()
    return row


def _units(value: Any, what: str) -> int:
    if type(value) is not int or not 0 < value <= INT64_MAX:
        raise InvalidOrderError(f"bad {what} in snapshot: {value!r}")
    return value


def read_snapshot(data: Any) -> tuple[Instrument, int, list[OrderRow]]:
    """Validate snapshot data; return the instrument, the next sequence and the rows by sequence."""
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise InvalidOrderError(f"not an order book snapshot (expected format {SNAPSHOT_FORMAT!r})")
    inst = Instrument.from_dict(data.get("instrument"))  # type: ignore[arg-type]
    next_seq = data.get("next_sequence")
    raw_rows = data.get("orders")
    if type(next_seq) is not int or not 0 < next_seq <= INT64_MAX or not isinstance(raw_rows, list):
        raise InvalidOrderError("snapshot has a bad next_sequence or orders list")
    rows: list[OrderRow] = []
    ids: set[Any] = set()
    totals: dict[tuple[Side, int], int] = {}
    for raw in raw_rows:
        if not isinstance(raw, dict):
            raise InvalidOrderError(f"bad order in snapshot: {raw!r}")
        try:
            row = OrderRow(
                decode_key(raw["id"], "order id"),
                coerce_enum(Side, raw["side"], "side", InvalidOrderError),
                _units(raw["price"], "price"),
                _units(raw["quantity"], "quantity"),
                raw.get("filled", 0),
                _units(raw["sequence"], "sequence"),
                decode_key(raw.get("owner"), "owner"),
                decode_key(raw.get("client_order_id"), "client order id"),
                coerce_enum(OrderType, raw.get("type", "LIMIT"), "order type", InvalidOrderError),
                coerce_enum(TimeInForce, raw.get("time_in_force", "GTC"), "time in force", InvalidOrderError),
                raw.get("post_only", False),
                None
                if raw.get("self_trade_prevention") is None
                else coerce_enum(
                    SelfTradePrevention, raw["self_trade_prevention"], "self_trade_prevention", InvalidOrderError
                ),
                None if raw.get("extras") is None else OrderExt.from_state(raw["extras"]),
            )
        except (KeyError, ValueError) as exc:
            raise InvalidOrderError(f"bad order in snapshot: {exc}") from None
        if (
            row.id is None
            or row.type not in _RESTING_TYPES
            or (row.type is not OrderType.LIMIT and row.ext is None)
            or type(row.filled) is not int
            or not 0 <= row.filled < row.lots
            or type(row.post_only) is not bool
            or row.sequence >= next_seq
        ):
            raise InvalidOrderError(f"bad order in snapshot: {raw!r}")
        if row.id in ids:
            raise InvalidOrderError(f"snapshot holds order id {row.id!r} twice")
        ids.add(row.id)
        # a book never holds a level whose total exceeds 2**63-1 lots (the core keeps it in an int64)
        level = (row.side, row.ticks)
        total = totals.get(level, 0) + row.lots - row.filled
        if total > INT64_MAX:
            raise InvalidOrderError(f"snapshot's {row.side.value} level at {row.ticks} ticks exceeds 2**63-1 lots")
        totals[level] = total
        rows.append(row)
    rows.sort(key=lambda r: r.sequence)
    for a, b in pairwise(rows):
        if a.sequence == b.sequence:
            raise InvalidOrderError(f"snapshot holds sequence {a.sequence} twice")
    return inst, next_seq, rows
