"""Rebuilding a symbol's engine from the repository's live orders, exactly as it stood.

The engine is restored from snapshot data (its public ``snapshot()`` /
``from_snapshot()`` format) rather than by submitting the orders again: a
resubmitted order would get a new place in its level, an iceberg a fresh slice,
a trailing stop a fresh reference, and a stop could find its condition met.
From the stored records alone it comes back with each resting order's priority
(the stored ``sequence``, which the service keeps in the engine's order), an
iceberg's current slice and hidden rest, each waiting stop's place among the
stops, a trailing stop's reference, and the symbol's last trade price.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from .._compat import MatchingEngine
from ..enums import OrderStatus, SelfTradePrevention, Side
from ..instrument import Instrument
from .models import OrderRecord

__all__ = ["restore_engine"]

_UNTRIGGERED = OrderStatus.UNTRIGGERED


def restore_engine(
    inst: Instrument,
    records: Sequence[OrderRecord],
    *,
    self_trade_prevention: SelfTradePrevention,
    last_trade_price: Decimal | None,
    time: int,
    next_sequence: int,
) -> Any:
    """A :class:`~tradebook.MatchingEngine` of ``inst`` holding ``records`` (live orders, in ``sequence`` order).

    ``last_trade_price`` is the symbol's last trade's (what stops trigger on),
    ``time`` the engine clock, ``next_sequence`` at least the service's next.
    """
    data = MatchingEngine([inst], self_trade_prevention=self_trade_prevention).snapshot()
    book = data["books"][0]
    rows: list[dict[str, Any]] = []
    stops: list[dict[str, Any]] = []
    for record in records:
        (stops if record.status is _UNTRIGGERED else rows).append(_snapshot_row(inst, record))
    book["orders"] = rows
    book["next_sequence"] = max(next_sequence, max((r.sequence or 0 for r in records), default=0) + 1)
    entry: dict[str, Any] = {}
    if last_trade_price is not None:
        entry["last_trade_price"] = inst.price_to_ticks(last_trade_price)
    if stops:
        entry["stops"] = stops
    data["order_types"] = {"time": time, "books": {inst.symbol: entry}}
    return MatchingEngine.from_snapshot(data)


def _snapshot_row(inst: Instrument, record: OrderRecord) -> dict[str, Any]:
    """A live order as the engine's snapshot data holds it: a resting order's row, or a waiting stop's.

    Sequences are the stored ones: they order the symbol's live orders as the engine did.
    """
    ticks, lots = inst.price_to_ticks, inst.quantity_to_lots
    assert record.quantity is not None and record.sequence is not None  # a live order has both
    extras: dict[str, Any] = {}
    if record.expire_at is not None:
        extras["expire_at"] = record.expire_at
    if record.stop_price is not None:
        extras["stop"] = ticks(record.stop_price)
    row: dict[str, Any] = {
        "id": record.id,
        "side": record.side.value,
        "type": record.type.value,
        "time_in_force": record.time_in_force.value,
        "owner": record.user_id,
        "client_order_id": None,
        "self_trade_prevention": None,
    }
    if record.status is _UNTRIGGERED:
        if record.trailing_offset is not None:
            trail = ticks(record.trailing_offset)
            extras["trail"] = trail
            if record.stop_price is not None:  # else no trade has given it a reference yet
                stop = extras["stop"]
                extras["ref"] = stop + trail if record.side is Side.SELL else stop - trail
        extras["accepted"] = record.sequence
        row["price"] = ticks(record.price) if record.price is not None else 0
        row["quantity"] = lots(record.quantity)
        row["extras"] = extras
        return row
    total, filled = lots(record.quantity), lots(record.filled_quantity) if record.filled_quantity else 0
    shown = total
    if record.display_quantity is not None:
        assert record.visible_quantity is not None
        extras["display"] = lots(record.display_quantity)
        shown = filled + lots(record.visible_quantity)  # what the book has shown so far; the rest is hidden
        extras["hidden"] = total - shown
    row.update(
        price=ticks(record.price),  # type: ignore[arg-type]
        quantity=shown,
        filled=filled,
        sequence=record.sequence,
        post_only=record.post_only,
    )
    if extras:
        row["extras"] = extras
    return row
