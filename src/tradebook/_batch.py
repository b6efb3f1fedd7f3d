"""The batch command format shared by both engines' ``execute_batch``.

A batch is a flat run of signed 64-bit integers, five per command:
``(op, order_id, side, price_ticks, quantity_lots)``. ``side`` is 0 for BUY and
1 for SELL. An ``array('q')``, a C-contiguous numpy ``int64`` array of shape
``(n, 5)`` or ``(5 * n,)``, any other buffer of int64s, or a list of 5-tuples
is accepted.
"""

from __future__ import annotations

from array import array
from enum import IntEnum
from itertools import chain
from typing import Any, NamedTuple

from ._common import STATUS_CODES
from .errors import InvalidOrderError

__all__ = [
    "BatchOp",
    "BatchResult",
    "ERROR_DUPLICATE",
    "ERROR_INVALID",
    "ERROR_NOT_FOUND",
    "STATUS_CODES",
    "as_commands",
]


class BatchOp(IntEnum):
    """What a batch command does. ``price`` and ``quantity`` are ticks and lots."""

    LIMIT = 0  # limit GTC: trade what crosses, rest the remainder
    IOC = 1  # limit IOC: trade what crosses, expire the remainder
    FOK = 2  # limit FOK: trade everything at once or nothing
    MARKET = 3  # market: walk the book at any price (price is ignored), expire the remainder
    CANCEL = 4  # cancel order_id (side, price and quantity are ignored)
    AMEND = 5  # amend order_id: price 0 keeps the price, quantity 0 keeps the quantity
    STOP = 6  # stop (market once triggered): price is the stop price
    TRAILING_STOP = 7  # trailing stop: price is the trailing offset
    MARKET_QUOTE = 8  # market sized by a quote amount: quantity is the budget in tick*lot units
    # only in execute_array, whose rows have the ``stop``, ``display`` and ``expire_at`` columns:
    STOP_LIMIT = 9  # stop-limit: price is the limit, ``stop`` the stop price
    GTD = 10  # limit good till ``expire_at``; ``display`` > 0 makes it an iceberg


# ``BatchResult.statuses`` codes 0..7 index STATUS_CODES (from _common); negative codes are errors.
ERROR_NOT_FOUND = -1  # cancel or amend of an id that is not resting
ERROR_DUPLICATE = -2  # a new order with an id that is already resting
ERROR_INVALID = -3  # anything else the single-order call would raise for; nothing changed


class BatchResult(NamedTuple):
    """Per command: a status code and a quantity in lots; and every trade in order.

    ``lots`` is the filled quantity for a new order or an amend, and the
    quantity removed for a cancel (0 for an error).
    """

    statuses: array  # type: ignore[type-arg]  # array('b')
    lots: array  # type: ignore[type-arg]  # array('q')
    trades: list[Any]


def as_commands(commands: Any) -> memoryview:
    """Return ``commands`` as a flat memoryview of int64s, five per command."""
    if isinstance(commands, (list, tuple)):
        try:
            flat: Any = array("q", chain.from_iterable(commands))
        except (TypeError, OverflowError) as exc:
            raise InvalidOrderError(f"batch commands must be 5-tuples of ints: {exc}") from None
    else:
        flat = commands
    try:
        view = memoryview(flat)
    except TypeError:
        raise InvalidOrderError(
            f"batch commands must be a buffer of int64s or a list of 5-tuples; got {type(commands).__name__}"
        ) from None
    if not view.c_contiguous:
        raise InvalidOrderError("batch command buffer must be C-contiguous")
    if view.format not in ("q", "l", "<q", "<l", "=q", "=l") or view.itemsize != 8:
        raise InvalidOrderError(f"batch command buffer must hold int64s; got format {view.format!r}")
    if not view.nbytes:  # an empty (0, 5) array: memoryview cannot cast a view with a zero in its shape
        return memoryview(array("q"))
    view = view.cast("B").cast("q")
    if len(view) % 5:
        raise InvalidOrderError(f"batch holds {len(view)} integers, not a multiple of 5")
    return view
