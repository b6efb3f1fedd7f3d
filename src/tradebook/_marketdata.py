"""The engine's market data, shared by both backends: sequence-numbered L2 and L3 updates and snapshots.

While someone subscribes (and only then: with no subscriber the matching code
records nothing), each backend's matching code notes one raw event per change
of a resting order's visible part, in the order the changes happen::

    (kind, sell, price ticks, order id, lots, sequence)

``make_update`` turns a command's events into its :class:`MarketDataUpdate`:
the L2 deltas (each level an event touched, in order of first touch, with its
total after the command), the L3 :class:`OrderEvent` list, and the book's next
update number (the compiled engine builds the same update in C, ``_update_of``
in ``_engine.pyx``: it runs once per command while anyone subscribes). ``MarketDataMixin.market_snapshot`` reads a book's visible state
at an update number through one backend primitive, ``engine._x_l3(book)``: the
visible resting orders as ``(sell, ticks, order id, visible lots, sequence)``,
bids best price first, then asks best price first, FIFO within a level.

The update numbers (``seq``) and the engine clock live in the shared engine
state of ``_ordertypes`` (``engine._ot()``) and go into ``snapshot()``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ._common import L2Delta, MarketDataUpdate, MarketSnapshot, OrderEvent
from .enums import Side

__all__ = ["ADD", "DELETE", "EXECUTE", "MODIFY", "MarketDataMixin", "amended", "make_update"]

ADD = "ADD"
MODIFY = "MODIFY"
DELETE = "DELETE"
EXECUTE = "EXECUTE"

_BUY = Side.BUY
_SELL = Side.SELL
_new = tuple.__new__

# a raw event: (kind, sell, ticks, order id, lots, sequence)
RawEvent = tuple[str, bool, int, Hashable, int, int]


def amended(
    events: list[Any], sell: bool, order_id: Hashable, old: tuple[int, int, int], new: tuple[int, int, int]
) -> None:
    """Note what an amend did to a resting order that stayed in the book: ``old``/``new`` are
    (ticks, visible lots, sequence). A new sequence (a new price, or more quantity: the back of
    the level) is DELETE then ADD; the same place with another visible size is MODIFY; no
    visible change (an iceberg's hidden part alone) is nothing."""
    if new[2] != old[2]:
        events.append((DELETE, sell, old[0], order_id, old[1], old[2]))
        events.append((ADD, sell, new[0], order_id, new[1], new[2]))
    elif new[1] != old[1]:
        events.append((MODIFY, sell, new[0], order_id, new[1], new[2]))


def make_update(engine: Any, book: Any, events: list[Any], trades: list[Any]) -> MarketDataUpdate:
    """The update of one command from its raw events and trades; takes the book's next ``seq``.

    The caller holds the book's lock and publishes what this returns (so ``seq`` has no gap).
    It runs once per command while someone subscribes: the named tuples are made with
    ``tuple.__new__`` (their generated ``__new__`` is a Python function, several times slower).
    """
    inst = book.instrument
    price_of = inst.ticks_to_price
    qty_of = inst.lots_to_quantity
    level_raw = book.level_raw
    deltas = []
    orders = []
    seen = set()
    for kind, sell, ticks, order_id, lots, sequence in events:
        side = _SELL if sell else _BUY
        price = price_of(ticks)
        key = (sell, ticks)
        if key not in seen:
            seen.add(key)
            level = level_raw(side, ticks)
            total = 0 if level is None else level[0]
            deltas.append(_new(L2Delta, (side, price, qty_of(total), ticks, total)))
        orders.append(_new(OrderEvent, (kind, order_id, side, price, qty_of(lots), sequence)))
    state = engine._ot()
    symbol = book.symbol
    md_seq = state.md_seq
    seq = md_seq.get(symbol, 0) + 1
    md_seq[symbol] = seq
    update: MarketDataUpdate = _new(MarketDataUpdate, (symbol, deltas, list(trades), seq, state.time, orders))
    return update


class MarketDataMixin:
    """``market_snapshot``: a base of the pure engine; the compiled one copies it into its class body."""

    book: Any
    _ot: Any
    _x_l3: Any

    def market_snapshot(self, symbol: str | None = None) -> MarketSnapshot:
        """The book's visible state at update number ``seq``: apply the updates with a larger ``seq``.

        ``depth`` holds every visible level, ``orders`` every visible resting
        order as an ``"ADD"`` :class:`OrderEvent` (bids best price first, then
        asks best price first, FIFO within a level). The next update published
        for this symbol has number ``seq + 1``; a fresh engine's ``seq`` is 0.
        O(orders).
        """
        book = self.book(symbol)
        inst = book.instrument
        price_of = inst.ticks_to_price
        qty_of = inst.lots_to_quantity
        with book._x_hold():
            rows = self._x_l3(book)
            depth = book.depth(len(book))
            state = self._ot()
            seq = state.md_seq.get(book.symbol, 0)
            time = state.time
        orders = [
            OrderEvent(ADD, order_id, _SELL if sell else _BUY, price_of(ticks), qty_of(lots), sequence)
            for sell, ticks, order_id, lots, sequence in rows
        ]
        return MarketSnapshot(seq, time, depth, orders)
