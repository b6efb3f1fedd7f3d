"""Pure-Python order book: ``Order``, ``PriceLevel``, ``OrderBook``.

The compiled twin is ``_book.pyx``; both behave identically and one test suite
runs against both. This module is also the typed reference for the public API.

Inside, prices are integer ticks and quantities integer lots. Each price level
is a FIFO doubly linked list threaded through its orders, so removing an order
from anywhere in its level is O(1); levels are found by price in a dict (O(1))
and kept in price order by a :class:`PriceTree` (O(log L) to add or drop one).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from decimal import Decimal
from typing import Any

from ._avl_py import PriceTree
from ._common import REENTERED, SNAPSHOT_FORMAT, Depth, LevelSnapshot
from ._extras import ext_stop_price, make_ext, needs_ext
from ._numeric import EXACT, INT64_MAX, check_units, to_decimal, to_units
from ._records_py import FILLED, ID, LEVEL, LOTS, NEXT, OBJ, PREV, SELLS, SEQ, TICKS, Level, Rec, sync
from ._shared_py import (
    BUY,
    BUY_STR,
    CANCELLED,
    FILLED_ST,
    GTC,
    GTC_STR,
    LIMIT,
    LIMIT_STR,
    OPEN,
    PARTIAL,
    PENDING,
    SELL,
    SELL_STR,
    check_id,
    to_side,
)
from ._snapshot import SEQ_EXHAUSTED, order_row, read_snapshot
from .enums import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce, coerce_enum
from .errors import (
    DuplicateOrderError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    SymbolMismatchError,
    TradebookError,
)
from .instrument import Instrument

GTD = TimeInForce.GTD
STOP_LIMIT = OrderType.STOP_LIMIT

__all__ = ["BookSide", "Order", "OrderBook", "PriceLevel"]

Number = Decimal | int | str | float


class Order:
    """An order: what a client asked for and, once in a book, its live state.

    Prices and quantities are accepted as ``Decimal``, ``int``, ``str`` or an
    exactly representable ``float`` and come back as ``Decimal``. ``price`` is
    None for a market order. All attributes are read-only; the book updates
    ``filled_quantity``, ``status`` and ``sequence`` as the order lives.

    >>> order = Order(1, "BUY", "101.5", 2)
    >>> order.side, order.price, order.status
    (<Side.BUY: 'BUY'>, Decimal('101.5'), <OrderStatus.PENDING: 'PENDING'>)
    """

    __slots__ = (
        "_id",
        "_side",
        "_type",
        "_tif",
        "_post_only",
        "_owner",
        "_client_order_id",
        "_symbol",
        "_stp",
        "_status",
        "_sequence",
        # unbound: the validated inputs
        "_price_in",
        "_quantity_in",
        # bound: integer state and the instrument that scales it
        "_inst",
        "_ticks",
        "_lots",
        "_filled_lots",
        # the new order types' fields (stop, trailing, iceberg, GTD, quote amount), or None
        "_ext",
    )

    def __init__(
        self,
        id: Hashable,
        side: Side | str,
        price: Number | None,
        quantity: Number,
        *,
        symbol: str | None = None,
        owner: Hashable | None = None,
        type: OrderType | str = OrderType.LIMIT,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        post_only: bool = False,
        client_order_id: Hashable | None = None,
        self_trade_prevention: SelfTradePrevention | str | None = None,
        stop_price: Number | None = None,
        trailing_offset: Number | None = None,
        display_quantity: Number | None = None,
        expire_at: int | None = None,
        quote_quantity: Number | None = None,
    ) -> None:
        check_id(id)
        side = to_side(side)
        # the defaults, as members or strings, without a call; anything else through coerce_enum
        otype = (
            LIMIT
            if type is LIMIT or type is LIMIT_STR
            else coerce_enum(OrderType, type, "order type", InvalidOrderError)
        )
        tif = (
            GTC
            if time_in_force is GTC or time_in_force is GTC_STR
            else coerce_enum(TimeInForce, time_in_force, "time in force", InvalidOrderError)
        )
        ext = None
        if needs_ext(otype, tif, stop_price, trailing_offset, display_quantity, expire_at, quote_quantity):
            ext = make_ext(
                otype, tif, price, quantity, post_only is True,
                stop_price, trailing_offset, display_quantity, expire_at, quote_quantity,
            )  # fmt: skip
        if otype is LIMIT or otype is STOP_LIMIT:
            if price is None:
                raise InvalidPriceError("a limit order needs a price")
            price = to_decimal(price, "price", InvalidPriceError)
        elif price is not None:
            raise InvalidPriceError(f"a market order takes no price; got {price!r}")
        if quantity is not None or ext is None or ext.quote_in is None:
            quantity = to_decimal(quantity, "quantity", InvalidQuantityError)
        if post_only is not True and post_only is not False:
            raise InvalidOrderError(f"post_only must be a bool; got {post_only!r}")
        if post_only and (otype is not LIMIT or (tif is not GTC and tif is not GTD)):
            raise InvalidOrderError("post_only applies only to LIMIT GTC or GTD orders")
        if symbol is not None and not isinstance(symbol, str):
            raise InvalidOrderError(f"symbol must be a str or None; got {symbol!r}")
        stp = (
            None
            if self_trade_prevention is None
            else coerce_enum(SelfTradePrevention, self_trade_prevention, "self_trade_prevention", InvalidOrderError)
        )
        self._id = id
        self._side = side
        self._type = otype
        self._tif = tif
        self._post_only = post_only
        self._owner = owner
        self._client_order_id = client_order_id
        self._symbol = symbol
        self._stp = stp
        self._status = PENDING
        self._sequence: int | None = None
        self._price_in: Decimal | None = price
        self._quantity_in: Decimal | None = quantity
        self._inst: Instrument | None = None
        self._ticks = 0
        self._lots = 0
        self._filled_lots = 0
        self._ext = ext

    @classmethod
    def _bound(
        cls, order_id: Hashable, side: Side, ticks: int, lots: int, inst: Instrument, owner: Hashable | None = None
    ) -> Order:
        # Build an order straight from integer units (raw API), skipping Decimal parsing.
        self = cls.__new__(cls)
        self._id = order_id
        self._side = side
        self._type = LIMIT
        self._tif = GTC
        self._post_only = False
        self._owner = owner
        self._client_order_id = None
        self._symbol = inst.symbol
        self._stp = None
        self._status = PENDING
        self._sequence = None
        self._price_in = None
        self._quantity_in = Decimal(0)
        self._inst = inst
        self._ticks = ticks
        self._lots = lots
        self._filled_lots = 0
        self._ext = None
        return self

    # -- primitives for the shared order-type code (``_ordertypes``) ---------------

    def _x_state(
        self, book: Any, ticks: int | None, lots: int | None, status: OrderStatus | None, seq: int | None
    ) -> None:
        if book is not None:
            self._inst = book._inst
            self._symbol = book._symbol
        if ticks is not None:
            self._ticks = ticks
        if lots is not None:
            self._lots = lots
        if status is not None:
            self._status = status
        if seq is not None:
            self._sequence = seq

    def _x_bound(self) -> bool:
        return self._inst is not None

    def _x_inputs(self) -> tuple[Decimal | None, Decimal | None]:
        return self._price_in, self._quantity_in

    def _x_ticks(self) -> int:
        return self._ticks

    def _x_lots(self) -> int:
        return self._lots

    @classmethod
    def _x_restored(
        cls,
        order_id: Hashable,
        side: Side,
        otype: OrderType,
        tif: TimeInForce,
        owner: Hashable | None,
        client_order_id: Hashable | None,
        stp: SelfTradePrevention | None,
        ext: Any,
    ) -> Order:
        self = cls.__new__(cls)
        self._id = order_id
        self._side = side
        self._type = otype
        self._tif = tif
        self._post_only = False
        self._owner = owner
        self._client_order_id = client_order_id
        self._symbol = None
        self._stp = stp
        self._status = PENDING
        self._sequence = None
        self._price_in = None
        self._quantity_in = None
        self._inst = None
        self._ticks = 0
        self._lots = 0
        self._filled_lots = 0
        self._ext = ext
        return self

    # -- read-only views --------------------------------------------------------

    @property
    def id(self) -> Hashable:
        """The order id given by the caller."""
        return self._id

    @property
    def side(self) -> Side:
        """``Side.BUY`` or ``Side.SELL``."""
        return self._side

    @property
    def type(self) -> OrderType:
        """``OrderType.LIMIT`` or ``OrderType.MARKET``."""
        return self._type

    @property
    def time_in_force(self) -> TimeInForce:
        """``GTC``, ``IOC`` or ``FOK``."""
        return self._tif

    @property
    def post_only(self) -> bool:
        """True if the order may only add liquidity."""
        return self._post_only

    @property
    def owner(self) -> Hashable | None:
        """Who owns the order (used by self-trade prevention), or None."""
        return self._owner

    @property
    def client_order_id(self) -> Hashable | None:
        """The client's own reference, or None."""
        return self._client_order_id

    @property
    def symbol(self) -> str | None:
        """The instrument symbol; set by the book when the order joins it."""
        return self._symbol

    @property
    def self_trade_prevention(self) -> SelfTradePrevention | None:
        """The order's own self-trade prevention mode, or None for the engine default."""
        return self._stp

    @property
    def status(self) -> OrderStatus:
        """Where the order is in its life."""
        return self._status

    @property
    def sequence(self) -> int | None:
        """The book's sequence number that gives the order its time priority, or None."""
        return self._sequence

    @property
    def price(self) -> Decimal | None:
        """The limit price (None for a market order)."""
        inst = self._inst
        if inst is None:
            return self._price_in
        return inst.ticks_to_price(self._ticks) if self._ticks else None

    @property
    def quantity(self) -> Decimal | None:
        """The total quantity ordered (None for a market order sized by ``quote_quantity``)."""
        inst = self._inst
        if inst is None:
            return self._quantity_in
        ext = self._ext
        if ext is None:
            return inst.lots_to_quantity(self._lots)
        if ext.quote is not None:
            return None
        return inst.lots_to_quantity(self._lots + ext.hidden)

    @property
    def filled_quantity(self) -> Decimal:
        """The quantity filled so far."""
        inst = self._inst
        return Decimal(0) if inst is None else inst.lots_to_quantity(self._filled_lots)

    @property
    def remaining_quantity(self) -> Decimal | None:
        """``quantity - filled_quantity`` (None for a market order sized by ``quote_quantity``)."""
        inst = self._inst
        if inst is None:
            return self._quantity_in
        ext = self._ext
        if ext is None:
            return inst.lots_to_quantity(self._lots - self._filled_lots)
        if ext.quote is not None:
            return None
        return inst.lots_to_quantity(self._lots + ext.hidden - self._filled_lots)

    @property
    def visible_quantity(self) -> Decimal:
        """What the book shows of the order: an iceberg's current slice, else the remaining quantity while it rests (0 otherwise)."""
        inst = self._inst
        if inst is None or (self._status is not OPEN and self._status is not PARTIAL):
            return Decimal(0)
        return inst.lots_to_quantity(self._lots - self._filled_lots)

    # -- the new order types' fields ----------------------------------------------

    @property
    def stop_price(self) -> Decimal | None:
        """The stop price (a trailing stop's current one; None before its first reference trade)."""
        return ext_stop_price(self._ext, self._inst)

    @property
    def trailing_offset(self) -> Decimal | None:
        """A trailing stop's distance from its reference price."""
        ext = self._ext
        return (
            None
            if ext is None
            else ext.trail_in
            if self._inst is None or ext.trail is None
            else self._inst.ticks_to_price(ext.trail)
        )

    @property
    def display_quantity(self) -> Decimal | None:
        """An iceberg's slice size."""
        ext = self._ext
        return (
            None
            if ext is None
            else ext.display_in
            if self._inst is None or ext.display is None
            else self._inst.lots_to_quantity(ext.display)
        )

    @property
    def expire_at(self) -> int | None:
        """A GTD order's expiry, in the engine's time unit."""
        return None if self._ext is None else self._ext.expire_at

    @property
    def quote_quantity(self) -> Decimal | None:
        """A market order's quote budget."""
        ext = self._ext
        if ext is None:
            return None
        if self._inst is None or ext.quote is None:
            return ext.quote_in
        return ext.quote * self._inst.tick_size * self._inst.lot_size

    @property
    def is_filled(self) -> bool:
        """True once the whole quantity is filled (a quote-sized order: once it spent its whole budget)."""
        ext = self._ext
        if ext is None:
            return self._inst is not None and self._filled_lots >= self._lots
        if ext.quote is not None:
            return self._status is FILLED_ST
        return self._inst is not None and self._filled_lots >= self._lots + ext.hidden

    # raw (integer) views, valid once the order has joined a book
    @property
    def price_ticks(self) -> int | None:
        """The price in integer ticks once the order is in a book, else None."""
        return self._ticks if self._inst is not None and self._ticks else None

    @property
    def quantity_lots(self) -> int | None:
        """The total quantity in integer lots once the order is in a book, else None (and for a quote-sized order)."""
        if self._inst is None:
            return None
        ext = self._ext
        if ext is None:
            return self._lots
        return None if ext.quote is not None else self._lots + ext.hidden

    @property
    def filled_lots(self) -> int:
        """The filled quantity in integer lots."""
        return self._filled_lots

    def __repr__(self) -> str:
        return (
            f"Order(id={self._id!r}, side={self._side.value}, price={self.price}, quantity={self.quantity}, "
            f"filled={self.filled_quantity}, status={self._status.value})"
        )


class PriceLevel:
    """A live view of one price level: totals and the resting orders in FIFO order.

    The view follows the book: if the level empties, ``quantity`` is 0,
    ``order_count`` 0 and iteration yields nothing.
    """

    __slots__ = ("_book", "_side", "_ticks", "_price", "_qty", "_qty_lots")

    def __init__(self, book: OrderBook, side: Side | str, price_ticks: int) -> None:
        self._book = book
        self._side = to_side(side)
        self._ticks = price_ticks
        self._price: Decimal | None = None  # made on first read (it never changes)
        self._qty: Decimal | None = None  # the Decimal quantity last read, while the total is _qty_lots
        self._qty_lots = 0

    def _state(self) -> Level | None:
        return self._book._levels[self._side is SELL].get(self._ticks)

    @property
    def side(self) -> Side:
        """The side of the level."""
        return self._side

    @property
    def price(self) -> Decimal:
        """The level's price."""
        price = self._price
        if price is None:
            price = self._price = self._book._inst.ticks_to_price(self._ticks)
        return price

    @property
    def price_ticks(self) -> int:
        """The level's price in integer ticks."""
        return self._ticks

    @property
    def quantity(self) -> Decimal:
        """The sum of the remaining quantities of the level's orders."""
        level = self._book._levels[self._side is SELL].get(self._ticks)
        lots = 0 if level is None else level.total
        qty = self._qty
        if qty is None or lots != self._qty_lots:  # a new Decimal only when the total changed
            qty = self._qty = self._book._inst.lots_to_quantity(lots)
            self._qty_lots = lots
        return qty

    @property
    def quantity_lots(self) -> int:
        """The level's total remaining quantity in integer lots."""
        level = self._state()
        return 0 if level is None else level.total

    @property
    def order_count(self) -> int:
        """The number of resting orders at this price."""
        level = self._state()
        return 0 if level is None else level.count

    def __len__(self) -> int:
        return self.order_count

    def __iter__(self) -> Iterator[Order]:
        book = self._book
        out: list[Order] = []
        with book._lock:
            level = self._state()
            rec = None if level is None else level.head
            while rec is not None:
                out.append(book._order_of(rec))
                rec = rec[NEXT]
        return iter(out)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PriceLevel):
            return NotImplemented
        return self._book is other._book and self._side is other._side and self._ticks == other._ticks

    def __hash__(self) -> int:
        return hash((id(self._book), self._side, self._ticks))

    def __repr__(self) -> str:
        return f"PriceLevel(side={self._side.value}, price={self.price}, quantity={self.quantity}, orders={self.order_count})"


class BookSide:
    """One side of a book: iterable best-first over its :class:`PriceLevel` views."""

    __slots__ = ("_book", "_side")

    def __init__(self, book: OrderBook, side: Side | str) -> None:
        self._book = book
        self._side = to_side(side)

    @property
    def side(self) -> Side:
        """Which side this is."""
        return self._side

    def __len__(self) -> int:
        """The number of price levels."""
        return len(self._book._trees[self._side is SELL])

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[PriceLevel]:
        book = self._book
        with book._lock:
            keys = list(book._trees[self._side is SELL].keys(reverse=self._side is BUY))
        return iter([PriceLevel(book, self._side, k) for k in keys])

    @property
    def best(self) -> PriceLevel | None:
        """The best level of this side, or None when empty."""
        return self._book.best_bid if self._side is BUY else self._book.best_ask

    def __repr__(self) -> str:
        return f"BookSide({self._side.value}, levels={len(self)})"


class OrderBook:
    """A limit order book for one instrument. It stores orders; it does not match.

    Adding to an existing level is O(1), adding a new level O(log L); removing
    any order is O(1) (O(log L) when it empties its level); best bid and ask
    are O(1); ``level()`` and ``orders_at()`` find a level in O(1); ``depth(k)``
    is O(k). All methods are safe to call from several threads. Python code
    that runs while the book changes (an order id's or owner's ``__eq__`` or
    ``__hash__``) may read the book but not change it: that raises
    ``RuntimeError`` and changes nothing.

    >>> book = OrderBook(Instrument("BTC/USDT", "0.01", "0.001"))
    >>> book.add_order(Order(1, "BUY", "100.00", "1.5"))
    >>> book.add_order(Order(2, "SELL", "100.50", "2"))
    >>> book.best_bid.price, book.best_ask.quantity, book.spread
    (Decimal('100.00'), Decimal('2.000'), Decimal('0.50'))
    """

    def __init__(self, instrument: Instrument) -> None:
        if not isinstance(instrument, Instrument):
            raise TypeError(f"OrderBook needs an Instrument; got {type(instrument).__name__}")
        self._inst = instrument
        self._symbol = instrument.symbol
        self._lock = threading.RLock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._orders: dict[Hashable, Rec] = {}
        # index 0: bids, 1: asks (``side is SELL``)
        self._levels: tuple[dict[int, Level], dict[int, Level]] = ({}, {})
        self._trees: tuple[PriceTree, PriceTree] = (PriceTree(), PriceTree())
        self._seq = 1
        # the engine's state for the new order types: waiting stops (``_conditional.Triggers``) and the
        # last trade price in ticks; the book itself never reads them
        self._trig: Any = None
        self._last: int | None = None
        # A change is under way: the lock holder's thread may read the book, not change it (see _begin).
        self._busy = False
        self._bids = BookSide(self, BUY)
        self._asks = BookSide(self, SELL)

    # -- basic facts ----------------------------------------------------------

    @property
    def instrument(self) -> Instrument:
        """The book's instrument."""
        return self._inst

    @property
    def symbol(self) -> str:
        """The instrument's symbol."""
        return self._symbol

    @property
    def next_sequence(self) -> int:
        """The sequence number the next accepted order will get."""
        return self._seq

    def __len__(self) -> int:
        return len(self._orders)

    def __contains__(self, order_id: object) -> bool:
        try:
            return order_id in self._orders
        except TypeError:
            return False

    def __repr__(self) -> str:
        return (
            f"OrderBook({self._symbol!r}, orders={len(self._orders)}, bid={self.best_bid_raw}, ask={self.best_ask_raw})"
        )

    # -- records (callers hold the lock) -----------------------------------------

    def _link(self, rec: Rec) -> None:
        """Append a record to the tail of its level, creating the level if needed."""
        sell = rec[SELLS]
        ticks = rec[TICKS]
        level = self._levels[sell].get(ticks)
        if level is None:
            level = self._levels[sell][ticks] = Level(sell, ticks)
            self._trees[sell].insert(ticks, level)
        rec[LEVEL] = level
        rec[NEXT] = None
        tail = rec[PREV] = level.tail
        if tail is None:
            level.head = rec
        else:
            tail[NEXT] = rec
        level.tail = rec
        level.total += rec[LOTS] - rec[FILLED]
        level.count += 1

    def _unlink(self, rec: Rec) -> None:
        """Take a record out of its level, dropping the level if it empties."""
        level = rec[LEVEL]
        prev, nxt = rec[PREV], rec[NEXT]
        if prev is None:
            level.head = nxt
        else:
            prev[NEXT] = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt[PREV] = prev
        rec[PREV] = rec[NEXT] = rec[LEVEL] = None
        level.total -= rec[LOTS] - rec[FILLED]
        level.count -= 1
        if level.count == 0:
            del self._levels[level.sell][level.ticks]
            self._trees[level.sell].remove(level.ticks)

    def _room(self, sell: bool, ticks: int, extra: int) -> None:
        level = self._levels[sell].get(ticks)
        if level is not None and level.total + extra > INT64_MAX:
            raise InvalidQuantityError("the level's total quantity would exceed 2**63-1 lots")

    def _begin(self) -> None:
        """Mark the book as changing (the caller holds the lock); refuse a call back into a changing book.

        A change may run Python code half-way (an order id's or owner's
        ``__eq__``/``__hash__``, an object's ``__del__``); if that code changed the
        book, the change would go on from a stale state. So, as in the compiled
        twin, such code may read the book but not change it. Market data
        callbacks run after the change and may submit, cancel and amend.
        """
        if self._busy:
            raise RuntimeError(REENTERED)
        self._busy = True

    def _check_seq(self) -> None:
        """Refuse to hand out a sequence number once ``next_sequence`` has reached 2**63-1 (see ``_snapshot``)."""
        if self._seq >= INT64_MAX:
            raise TradebookError(SEQ_EXHAUSTED)

    def _take_seq(self) -> int:
        """Hand out the next sequence number (refused at 2**63-1)."""
        self._check_seq()
        seq = self._seq
        self._seq += 1
        return seq

    def _refresh(self, rec: Rec, order: Order) -> None:
        """An iceberg's slice is used up: show the next one at the back of its level, with a new sequence."""
        ext = order._ext
        assert ext is not None and ext.display is not None
        self._unlink(rec)
        show = min(ext.display, ext.hidden)
        ext.hidden -= show
        rec[LOTS] += show
        rec[SEQ] = self._take_seq()
        self._link(rec)
        sync(order, rec)
        order._status = PARTIAL

    def _x_hold(self) -> Any:
        return self._lock

    def _last_ticks(self) -> int | None:
        return self._last

    def _set_last(self, ticks: int) -> None:
        self._last = ticks

    def _x_resting_gtd(self) -> list[Order]:
        """The resting orders with an expiry (their Order objects)."""
        out = []
        for rec in self._orders.values():
            order = rec[OBJ]
            if order is not None and order._ext is not None and order._ext.expire_at is not None:
                out.append(order)
        return out

    def _requeue(self, rec: Rec) -> None:
        """Send a record to the back of its level with a new sequence."""
        seq = self._take_seq()
        self._unlink(rec)
        rec[SEQ] = seq
        self._link(rec)
        if rec[OBJ] is not None:
            sync(rec[OBJ], rec)

    def _find(self, order_id: object) -> Rec:
        try:
            return self._orders[order_id]  # type: ignore[index,unused-ignore]
        except (KeyError, TypeError):
            raise OrderNotFoundError(f"no resting order with id {order_id!r}") from None

    def _order_of(self, rec: Rec) -> Order:
        """The Order of a live record, made (and kept) on first request."""
        order: Order | None = rec[OBJ]
        if order is None:
            order = rec[OBJ] = Order._bound(rec[ID], SELL if rec[SELLS] else BUY, 0, 0, self._inst)
            sync(order, rec)
            order._status = PARTIAL if rec[FILLED] else OPEN
        return order

    def _leave(self, rec: Rec, status: OrderStatus) -> Order:
        """Drop a record from the book; return its Order with the final status."""
        del self._orders[rec[ID]]
        self._unlink(rec)
        order = self._order_of(rec)
        rec[OBJ] = None
        sync(order, rec)
        order._status = status
        return order

    def _insert(
        self, order_id: Hashable, sell: bool, ticks: int, lots: int, filled: int, seq: int, obj: Order | None
    ) -> Rec:
        rec = [None, None, None, order_id, sell, ticks, lots, filled, seq, obj]
        self._orders[order_id] = rec
        self._link(rec)
        if obj is not None:
            sync(obj, rec)
            obj._status = PARTIAL if filled else OPEN
        return rec

    # -- the Decimal API --------------------------------------------------------

    def add_order(self, order: Order) -> None:
        """Rest ``order`` in the book (no matching). O(1) on an existing level, else O(log L).

        Raises ``DuplicateOrderError`` if the id is resting, ``SymbolMismatchError``
        for another symbol's order, ``InvalidOrderError`` for a market order or one
        already used, ``InvalidPriceError``/``InvalidQuantityError`` off the grid.
        """
        if type(order) is not Order:
            raise InvalidOrderError(f"add_order takes an Order; got {type(order).__name__}")
        inst = self._inst
        with self._lock:
            self._begin()
            try:
                if order._status is not PENDING or order._inst is not None:
                    raise InvalidOrderError(
                        f"order {order._id!r} is {order._status.value}; only a new order can be added"
                    )
                if order._symbol is not None and order._symbol != self._symbol:
                    raise SymbolMismatchError(
                        f"order {order._id!r} is for {order._symbol}, this book is {self._symbol}"
                    )
                if order._type is not LIMIT:
                    raise InvalidOrderError("a market order cannot rest in a book")
                if order._ext is not None:
                    raise InvalidOrderError(
                        "an order with stop, iceberg, GTD or quote fields goes through MatchingEngine.submit"
                    )
                ticks = to_units(order._price_in, inst.tick_size, "price", "tick size", InvalidPriceError)  # type: ignore[arg-type]
                lots = to_units(order._quantity_in, inst.lot_size, "quantity", "lot size", InvalidQuantityError)  # type: ignore[arg-type]
                if order._id in self._orders:
                    raise DuplicateOrderError(f"an order with id {order._id!r} is already resting")
                sell = order._side is SELL
                self._room(sell, ticks, lots)
                self._check_seq()
                order._inst = inst
                order._symbol = self._symbol
                self._insert(order._id, sell, ticks, lots, 0, self._seq, order)
                self._seq += 1
            finally:
                self._busy = False

    def remove_order(self, order_id: Hashable) -> Order:
        """Remove a resting order and return it, ``CANCELLED``. O(1), O(log L) if its level empties."""
        with self._lock:
            self._begin()
            try:
                return self._leave(self._find(order_id), CANCELLED)
            finally:
                self._busy = False

    def compact(self) -> None:
        """Give memory back: rebuild the id and level dicts to fit the orders that rest. O(n).

        A ``dict`` keeps its table when entries are deleted, so a book that once
        held a million orders keeps that room; copying the dicts sizes them to
        what is left (records and levels are ordinary objects, freed as they go).
        Orders keep their ids, FIFO places and sequence numbers.
        """
        with self._lock:
            self._begin()
            try:
                self._orders = dict(self._orders)
                self._levels = (dict(self._levels[0]), dict(self._levels[1]))
            finally:
                self._busy = False

    def fill_order(self, order_id: Hashable, quantity: Number) -> Order:
        """Record a fill of ``quantity``; a fully filled order leaves the book. O(1)."""
        lots = self._inst.quantity_to_lots(quantity)
        with self._lock:
            self._begin()
            try:
                rec = self._find(order_id)
                if self._fill(rec, lots):
                    return self._order_of(rec)
                return self._leave_filled(rec)
            finally:
                self._busy = False

    def _fill(self, rec: Rec, lots: int) -> int:
        """Fill ``lots`` of a record; returns what remains (0: the caller removes it)."""
        remaining: int = rec[LOTS] - rec[FILLED]
        if lots > remaining:
            inst = self._inst
            raise InvalidQuantityError(
                f"fill of {inst.lots_to_quantity(lots)} exceeds the remaining "
                f"{inst.lots_to_quantity(remaining)} of order {rec[ID]!r}"
            )
        if lots < remaining:
            rec[FILLED] += lots
            rec[LEVEL].total -= lots
            order = rec[OBJ]
            if order is not None:
                order._filled_lots = rec[FILLED]
                order._status = PARTIAL
        return remaining - lots

    def _leave_filled(self, rec: Rec) -> Order:
        del self._orders[rec[ID]]
        return self._drop_filled(rec)

    def _drop_filled(self, rec: Rec) -> Order:
        """``_leave_filled`` once the id is out of the map."""
        self._unlink(rec)
        rec[FILLED] = rec[LOTS]
        order = self._order_of(rec)
        rec[OBJ] = None
        sync(order, rec)
        order._status = FILLED_ST
        return order

    def amend_order(self, order_id: Hashable, *, quantity: Number | None = None, price: Number | None = None) -> Order:
        """Change a resting order's total quantity and/or price.

        ``quantity`` is the new total and must exceed what is already filled.
        Lowering it keeps time priority; raising it, or a new price, sends the
        order to the back of its (new) level. The same price is no change. The
        book does not match, so an amend can leave it crossed.
        """
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        inst = self._inst
        lots = None if quantity is None else inst.quantity_to_lots(quantity)
        ticks = None if price is None else inst.price_to_ticks(price)
        with self._lock:
            self._begin()
            try:
                rec = self._find(order_id)
                self._amend(rec, lots, ticks)
                return self._order_of(rec)
            finally:
                self._busy = False

    def _amend(self, rec: Rec, lots: int | None, ticks: int | None) -> None:
        new_lots = rec[LOTS] if lots is None else lots
        new_ticks = rec[TICKS] if ticks is None else ticks
        filled = rec[FILLED]
        if new_lots <= filled:
            raise InvalidQuantityError(
                f"the new quantity {self._inst.lots_to_quantity(new_lots)} must exceed the filled "
                f"{self._inst.lots_to_quantity(filled)}"
            )
        if new_ticks != rec[TICKS] or new_lots > rec[LOTS]:
            if new_ticks == rec[TICKS]:
                self._room(rec[SELLS], new_ticks, new_lots - rec[LOTS])
            else:
                self._room(rec[SELLS], new_ticks, new_lots - filled)
            self._check_seq()
            self._unlink(rec)
            rec[TICKS] = new_ticks
            rec[LOTS] = new_lots
            rec[SEQ] = self._seq
            self._seq += 1
            self._link(rec)
        elif new_lots < rec[LOTS]:
            rec[LEVEL].total -= rec[LOTS] - new_lots
            rec[LOTS] = new_lots
        if rec[OBJ] is not None:
            sync(rec[OBJ], rec)

    def get_order(self, order_id: Hashable) -> Order:
        """Return the resting order with this id; raises ``OrderNotFoundError``. O(1)."""
        with self._lock:
            return self._order_of(self._find(order_id))

    # -- top of book and levels --------------------------------------------------

    @property
    def best_bid(self) -> PriceLevel | None:
        """The highest bid level (a live view), or None. O(1)."""
        top = self._trees[0]._tail
        if top is None:
            return None
        # A view depends only on (book, side, price): the level keeps the one handed out
        # (with its Decimal price and quantity) for as long as it exists.
        level: Level = top.value
        view: PriceLevel | None = level.view
        if view is None:
            view = level.view = PriceLevel(self, BUY, level.ticks)
        return view

    @property
    def best_ask(self) -> PriceLevel | None:
        """The lowest ask level (a live view), or None. O(1)."""
        top = self._trees[1]._head
        if top is None:
            return None
        level: Level = top.value
        view: PriceLevel | None = level.view
        if view is None:
            view = level.view = PriceLevel(self, SELL, level.ticks)
        return view

    @property
    def spread(self) -> Decimal | None:
        """Best ask minus best bid, or None if a side is empty."""
        bid, ask = self.best_bid_raw, self.best_ask_raw
        if bid is None or ask is None:
            return None
        return self._inst.ticks_to_price(ask - bid)

    @property
    def mid_price(self) -> Decimal | None:
        """The midpoint of best bid and best ask, or None if a side is empty."""
        bid, ask = self.best_bid_raw, self.best_ask_raw
        if bid is None or ask is None:
            return None
        return EXACT.divide(self._inst.ticks_to_price(bid + ask), Decimal(2))

    def level(self, side: Side | str, price: Number) -> PriceLevel | None:
        """The level at ``price`` on ``side`` (a live view), or None. O(1)."""
        side = to_side(side)
        ticks = self._inst.price_to_ticks(price)
        if ticks not in self._levels[side is SELL]:
            return None
        return PriceLevel(self, side, ticks)

    def orders_at(self, side: Side | str, price: Number) -> list[Order]:
        """The orders resting at ``price`` on ``side``, in FIFO order. O(1) + O(n)."""
        level = self.level(side, price)
        return [] if level is None else list(level)

    @property
    def bids(self) -> BookSide:
        """The bid side, iterable best (highest) first."""
        return self._bids

    @property
    def asks(self) -> BookSide:
        """The ask side, iterable best (lowest) first."""
        return self._asks

    def depth(self, levels: int = 10) -> Depth:
        """The best ``levels`` levels of each side as value snapshots. O(levels)."""
        bids, asks = self.depth_raw(levels)
        inst = self._inst
        return Depth(
            [LevelSnapshot(inst.ticks_to_price(p), inst.lots_to_quantity(q), n) for p, q, n in bids],
            [LevelSnapshot(inst.ticks_to_price(p), inst.lots_to_quantity(q), n) for p, q, n in asks],
        )

    # -- the raw integer API ----------------------------------------------------

    def add_raw(self, order_id: Hashable, side: Side | str, price: int, quantity: int) -> None:
        """Rest a limit order given in integer ticks and lots (no Decimal work)."""
        if side is BUY or side is BUY_STR:
            sell = False
        elif side is SELL or side is SELL_STR:
            sell = True
        else:
            sell = to_side(side) is SELL
        if type(price) is not int or not 0 < price <= INT64_MAX:
            price = check_units(price, "price", InvalidPriceError)
        if type(quantity) is not int or not 0 < quantity <= INT64_MAX:
            quantity = check_units(quantity, "quantity", InvalidQuantityError)
        if type(order_id) is not int:
            check_id(order_id)
        obj = None if type(order_id) is int else Order._bound(order_id, SELL if sell else BUY, 0, 0, self._inst)
        self._acquire()
        try:
            if self._busy:
                raise RuntimeError(REENTERED)
            self._busy = True
            try:
                orders = self._orders
                if order_id in orders:
                    raise DuplicateOrderError(f"an order with id {order_id!r} is already resting")
                # _insert and _link, inlined: this is the pure backend's hottest path.
                levels = self._levels[sell]
                level = levels.get(price)
                if level is not None and level.total + quantity > INT64_MAX:
                    raise InvalidQuantityError("the level's total quantity would exceed 2**63-1 lots")
                if self._seq >= INT64_MAX:
                    raise TradebookError(SEQ_EXHAUSTED)
                rec: Rec = [None, None, level, order_id, sell, price, quantity, 0, self._seq, obj]
                orders[order_id] = rec  # first: the id's __hash__ (or a stored id's __eq__) may raise
                if level is None:
                    level = rec[LEVEL] = levels[price] = Level(sell, price)
                    self._trees[sell].insert(price, level)
                tail: Rec | None = level.tail
                rec[PREV] = tail
                if tail is None:
                    level.head = rec
                else:
                    tail[NEXT] = rec
                level.tail = rec
                level.total += quantity
                level.count += 1
                self._seq += 1
                if obj is not None:
                    sync(obj, rec)
                    obj._status = OPEN
            finally:
                self._busy = False
        finally:
            self._release()

    def remove_raw(self, order_id: Hashable) -> int:
        """Remove a resting order; return its remaining quantity in lots."""
        self._acquire()
        try:
            if self._busy:
                raise RuntimeError(REENTERED)
            self._busy = True
            try:
                try:
                    rec = self._orders.pop(order_id)
                except (KeyError, TypeError):
                    raise OrderNotFoundError(f"no resting order with id {order_id!r}") from None
                self._unlink(rec)
                order = rec[OBJ]
                if order is not None:
                    rec[OBJ] = None
                    sync(order, rec)
                    order._status = CANCELLED
                    if order._ext is not None:
                        return rec[LOTS] - rec[FILLED] + order._ext.hidden  # type: ignore[no-any-return]
                return rec[LOTS] - rec[FILLED]  # type: ignore[no-any-return]
            finally:
                self._busy = False
        finally:
            self._release()

    def fill_raw(self, order_id: Hashable, quantity: int) -> int:
        """Fill ``quantity`` lots of a resting order; return its remaining lots."""
        lots = check_units(quantity, "quantity", InvalidQuantityError)
        with self._lock:
            self._begin()
            try:
                rec = self._find(order_id)
                remaining = self._fill(rec, lots)
                if not remaining:
                    self._leave_filled(rec)
                return remaining
            finally:
                self._busy = False

    def amend_raw(self, order_id: Hashable, *, quantity: int | None = None, price: int | None = None) -> None:
        """``amend_order`` with the new total quantity in lots and price in ticks."""
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        lots = None if quantity is None else check_units(quantity, "quantity", InvalidQuantityError)
        ticks = None if price is None else check_units(price, "price", InvalidPriceError)
        with self._lock:
            self._begin()
            try:
                self._amend(self._find(order_id), lots, ticks)
            finally:
                self._busy = False

    @property
    def best_bid_raw(self) -> int | None:
        """The best bid price in ticks, or None. O(1)."""
        tail = self._trees[0]._tail
        return None if tail is None else tail.key

    @property
    def best_ask_raw(self) -> int | None:
        """The best ask price in ticks, or None. O(1)."""
        head = self._trees[1]._head
        return None if head is None else head.key

    def level_raw(self, side: Side | str, price: int) -> tuple[int, int] | None:
        """``(total lots, order count)`` at ``price`` ticks on ``side``, or None. O(1).

        Like :meth:`level`, a price that is not a tick count (an int in 1..2**63-1)
        raises ``InvalidPriceError``.
        """
        side = to_side(side)
        if type(price) is not int or not 0 < price <= INT64_MAX:
            # like level(): a price that is no valid tick count raises instead of reading as "no level"
            price = check_units(price, "price", InvalidPriceError)
        level = self._levels[side is SELL].get(price)
        return None if level is None else (level.total, level.count)

    def depth_raw(self, levels: int = 10) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """The best ``levels`` levels per side as ``(price ticks, total lots, count)``. O(levels)."""
        if type(levels) is not int or levels < 0:
            raise ValueError(f"levels must be a non-negative int; got {levels!r}")
        out: tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]] = ([], [])
        with self._lock:
            for sell in (0, 1):
                rows = out[sell]
                if levels:
                    for _, level in self._trees[sell].items(reverse=not sell):
                        rows.append((level.ticks, level.total, level.count))
                        if len(rows) == levels:
                            break
        return out

    # -- snapshots ----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole book as plain JSON-safe data (see :meth:`from_snapshot`)."""
        with self._lock:
            rows = []
            for sell in (0, 1):
                for _, level in self._trees[sell].items(reverse=not sell):
                    rec = level.head
                    while rec is not None:
                        order = rec[OBJ]
                        side = SELL if sell else BUY
                        if order is None:
                            row = order_row(
                                rec[ID], side, rec[TICKS], rec[LOTS], rec[FILLED], rec[SEQ],
                                None, None, LIMIT, GTC, False, None,
                            )  # fmt: skip
                        else:
                            row = order_row(
                                order._id, side, rec[TICKS], rec[LOTS], rec[FILLED], rec[SEQ], order._owner,
                                order._client_order_id, order._type, order._tif, order._post_only, order._stp,
                                order._ext,
                            )  # fmt: skip
                        rows.append(row)
                        rec = rec[NEXT]
            return {
                "format": SNAPSHOT_FORMAT,
                "instrument": self._inst.to_dict(),
                "next_sequence": self._seq,
                "orders": rows,
            }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> OrderBook:
        """Rebuild a book from :meth:`snapshot` data (also after a JSON round trip)."""
        inst, seq, rows = read_snapshot(data)
        book = cls(inst)
        for row in rows:
            order = None
            if (
                type(row.id) is not int
                or row.owner is not None
                or row.client_order_id is not None
                or row.time_in_force is not GTC
                or row.post_only
                or row.self_trade_prevention is not None
                or row.ext is not None
            ):
                order = Order._bound(row.id, row.side, 0, 0, inst, row.owner)
                order._client_order_id = row.client_order_id
                order._tif = row.time_in_force
                order._post_only = row.post_only
                order._stp = row.self_trade_prevention
                order._type = row.type
                order._ext = row.ext
            book._insert(row.id, row.side is SELL, row.ticks, row.lots, row.filled, row.sequence, order)
        book._seq = seq
        return book

    # -- invariants -----------------------------------------------------------------

    def _check(self) -> None:
        """Walk every structure and verify its invariants; raises ``AssertionError``."""
        with self._lock:
            seen = 0
            for sell in (0, 1):
                tree, levels = self._trees[sell], self._levels[sell]
                tree._check()
                assert len(tree) == len(levels), "tree and level map disagree"
                for ticks, lvl in tree.items():
                    level: Level = lvl
                    assert levels.get(ticks) is level, "level map disagrees with the tree"
                    assert level.ticks == ticks, "level price is wrong"
                    assert level.sell == bool(sell), "level on the wrong side"
                    total = count = last_seq = 0
                    prev: Rec | None = None
                    rec: Rec | None = level.head
                    while rec is not None:
                        assert rec[PREV] is prev, "broken FIFO back link"
                        assert rec[LEVEL] is level, "record does not belong to its level"
                        assert rec[TICKS] == ticks, "record price differs from its level"
                        assert rec[SELLS] == bool(sell), "record on the wrong side"
                        assert self._orders.get(rec[ID]) is rec, "id map disagrees with the level"
                        assert 0 <= rec[FILLED] < rec[LOTS], "resting order has nothing left"
                        assert last_seq < rec[SEQ] < self._seq, "FIFO out of sequence"
                        order = rec[OBJ]
                        if order is not None:
                            assert order._id is rec[ID] or order._id == rec[ID], "Order has another id"
                            assert (order._ticks, order._lots, order._filled_lots, order._sequence) == (
                                rec[TICKS],
                                rec[LOTS],
                                rec[FILLED],
                                rec[SEQ],
                            ), "Order object out of step with its record"
                            assert order._status is (PARTIAL if rec[FILLED] else OPEN), "Order has a wrong status"
                            assert order._inst is self._inst, "Order bound to another instrument"
                        last_seq = rec[SEQ]
                        total += rec[LOTS] - rec[FILLED]
                        count += 1
                        prev, rec = rec, rec[NEXT]
                    assert prev is level.tail, "stale level tail"
                    assert count > 0, "empty level left in the book"
                    assert level.total == total, "level total disagrees with its orders"
                    assert level.count == count, "level count disagrees with its orders"
                    seen += count
            assert seen == len(self._orders), "id map holds orders that are not in a level"
