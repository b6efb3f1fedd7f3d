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
from ._common import SNAPSHOT_FORMAT, Depth, LevelSnapshot
from ._numeric import EXACT, INT64_MAX, check_units, to_decimal, to_units
from ._snapshot import order_row, read_snapshot
from .enums import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce, coerce_enum
from .errors import (
    DuplicateOrderError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    SymbolMismatchError,
)
from .instrument import Instrument

__all__ = ["BookSide", "Order", "OrderBook", "PriceLevel"]

Number = Decimal | int | str | float

_BUY = Side.BUY
_SELL = Side.SELL
_LIMIT = OrderType.LIMIT
_GTC = TimeInForce.GTC
_OPEN = OrderStatus.OPEN
_PARTIAL = OrderStatus.PARTIALLY_FILLED
_PENDING = OrderStatus.PENDING


def _side(value: object) -> Side:
    if value is _BUY or value is _SELL:
        return value
    return coerce_enum(Side, value, "side", InvalidOrderError)


def _check_id(order_id: object) -> None:
    if order_id is None:
        raise InvalidOrderError("order id must not be None")
    try:
        hash(order_id)
    except TypeError:
        raise InvalidOrderError(f"order id must be hashable; got {type(order_id).__name__}") from None


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
        # FIFO links inside the level, and the level itself
        "_prev",
        "_next",
        "_level",
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
    ) -> None:
        _check_id(id)
        side = _side(side)
        otype = coerce_enum(OrderType, type, "order type", InvalidOrderError)
        tif = coerce_enum(TimeInForce, time_in_force, "time in force", InvalidOrderError)
        if otype is _LIMIT:
            if price is None:
                raise InvalidPriceError("a limit order needs a price")
            price = to_decimal(price, "price", InvalidPriceError)
        elif price is not None:
            raise InvalidPriceError(f"a market order takes no price; got {price!r}")
        quantity = to_decimal(quantity, "quantity", InvalidQuantityError)
        if post_only is not True and post_only is not False:
            raise InvalidOrderError(f"post_only must be a bool; got {post_only!r}")
        if post_only and (otype is not _LIMIT or tif is not _GTC):
            raise InvalidOrderError("post_only applies only to LIMIT GTC orders")
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
        self._status = _PENDING
        self._sequence: int | None = None
        self._price_in: Decimal | None = price
        self._quantity_in: Decimal = quantity
        self._inst: Instrument | None = None
        self._ticks = 0
        self._lots = 0
        self._filled_lots = 0
        self._prev: Order | None = None
        self._next: Order | None = None
        self._level: _Level | None = None

    @classmethod
    def _bound(
        cls, order_id: Hashable, side: Side, ticks: int, lots: int, inst: Instrument, owner: Hashable | None = None
    ) -> Order:
        # Build an order straight from integer units (raw API), skipping Decimal parsing.
        self = cls.__new__(cls)
        self._id = order_id
        self._side = side
        self._type = _LIMIT
        self._tif = _GTC
        self._post_only = False
        self._owner = owner
        self._client_order_id = None
        self._symbol = inst.symbol
        self._stp = None
        self._status = _PENDING
        self._sequence = None
        self._price_in = None
        self._quantity_in = Decimal(0)
        self._inst = inst
        self._ticks = ticks
        self._lots = lots
        self._filled_lots = 0
        self._prev = None
        self._next = None
        self._level = None
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
    def quantity(self) -> Decimal:
        """The total quantity ordered."""
        inst = self._inst
        return self._quantity_in if inst is None else inst.lots_to_quantity(self._lots)

    @property
    def filled_quantity(self) -> Decimal:
        """The quantity filled so far."""
        inst = self._inst
        return Decimal(0) if inst is None else inst.lots_to_quantity(self._filled_lots)

    @property
    def remaining_quantity(self) -> Decimal:
        """``quantity - filled_quantity``."""
        inst = self._inst
        return self._quantity_in if inst is None else inst.lots_to_quantity(self._lots - self._filled_lots)

    @property
    def is_filled(self) -> bool:
        """True once the whole quantity is filled."""
        return self._inst is not None and self._filled_lots >= self._lots

    # raw (integer) views, valid once the order has joined a book
    @property
    def price_ticks(self) -> int | None:
        """The price in integer ticks once the order is in a book, else None."""
        return self._ticks if self._inst is not None and self._ticks else None

    @property
    def quantity_lots(self) -> int | None:
        """The total quantity in integer lots once the order is in a book, else None."""
        return self._lots if self._inst is not None else None

    @property
    def filled_lots(self) -> int:
        """The filled quantity in integer lots."""
        return self._filled_lots

    def __repr__(self) -> str:
        return (
            f"Order(id={self._id!r}, side={self._side.value}, price={self.price}, quantity={self.quantity}, "
            f"filled={self.filled_quantity}, status={self._status.value})"
        )


class _Level:
    """A price level's state: FIFO of orders plus their running totals."""

    __slots__ = ("side", "ticks", "total", "count", "head", "tail")

    def __init__(self, side: Side, ticks: int) -> None:
        self.side = side
        self.ticks = ticks
        self.total = 0
        self.count = 0
        self.head: Order | None = None
        self.tail: Order | None = None


class PriceLevel:
    """A live view of one price level: totals and the resting orders in FIFO order.

    The view follows the book: if the level empties, ``quantity`` is 0,
    ``order_count`` 0 and iteration yields nothing.
    """

    __slots__ = ("_book", "_side", "_ticks")

    def __init__(self, book: OrderBook, side: Side, ticks: int) -> None:
        self._book = book
        self._side = side
        self._ticks = ticks

    def _state(self) -> _Level | None:
        return self._book._levels[self._side is _SELL].get(self._ticks)

    @property
    def side(self) -> Side:
        """The side of the level."""
        return self._side

    @property
    def price(self) -> Decimal:
        """The level's price."""
        return self._book._inst.ticks_to_price(self._ticks)

    @property
    def price_ticks(self) -> int:
        """The level's price in integer ticks."""
        return self._ticks

    @property
    def quantity(self) -> Decimal:
        """The sum of the remaining quantities of the level's orders."""
        return self._book._inst.lots_to_quantity(self.quantity_lots)

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
        with self._book._lock:
            level = self._state()
            out: list[Order] = []
            node = None if level is None else level.head
            while node is not None:
                out.append(node)
                node = node._next
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

    def __init__(self, book: OrderBook, side: Side) -> None:
        self._book = book
        self._side = side

    @property
    def side(self) -> Side:
        """Which side this is."""
        return self._side

    def __len__(self) -> int:
        """The number of price levels."""
        return len(self._book._trees[self._side is _SELL])

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[PriceLevel]:
        book = self._book
        with book._lock:
            keys = list(book._trees[self._side is _SELL].keys(reverse=self._side is _BUY))
        return iter([PriceLevel(book, self._side, k) for k in keys])

    @property
    def best(self) -> PriceLevel | None:
        """The best level of this side, or None when empty."""
        return self._book.best_bid if self._side is _BUY else self._book.best_ask

    def __repr__(self) -> str:
        return f"BookSide({self._side.value}, levels={len(self)})"


class OrderBook:
    """A limit order book for one instrument. It stores orders; it does not match.

    Adding to an existing level is O(1), adding a new level O(log L); removing
    any order is O(1) (O(log L) when it empties its level); best bid and ask
    are O(1); ``level()`` and ``orders_at()`` find a level in O(1); ``depth(k)``
    is O(k). All methods are safe to call from several threads.

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
        self._orders: dict[Hashable, Order] = {}
        # index 0: bids, 1: asks (``side is _SELL``)
        self._levels: tuple[dict[int, _Level], dict[int, _Level]] = ({}, {})
        self._trees: tuple[PriceTree, PriceTree] = (PriceTree(), PriceTree())
        self._seq = 1
        self._bids = BookSide(self, _BUY)
        self._asks = BookSide(self, _SELL)

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

    # -- internal linking (callers hold the lock) -----------------------------

    def _link(self, order: Order) -> None:
        sell = order._side is _SELL
        levels = self._levels[sell]
        ticks = order._ticks
        level = levels.get(ticks)
        if level is None:
            level = _Level(order._side, ticks)
            levels[ticks] = level
            self._trees[sell].insert(ticks, level)
        order._level = level
        order._next = None
        order._prev = level.tail
        if level.tail is None:
            level.head = order
        else:
            level.tail._next = order
        level.tail = order
        level.total += order._lots - order._filled_lots
        level.count += 1

    def _unlink(self, order: Order) -> None:
        level = order._level
        assert level is not None
        prev, nxt = order._prev, order._next
        if prev is None:
            level.head = nxt
        else:
            prev._next = nxt
        if nxt is None:
            level.tail = prev
        else:
            nxt._prev = prev
        order._prev = order._next = None
        order._level = None
        level.total -= order._lots - order._filled_lots
        level.count -= 1
        if level.count == 0:
            sell = level.side is _SELL
            del self._levels[sell][level.ticks]
            self._trees[sell].remove(level.ticks)

    def _room(self, side: Side, ticks: int, extra: int) -> None:
        level = self._levels[side is _SELL].get(ticks)
        if level is not None and level.total + extra > INT64_MAX:
            raise InvalidQuantityError("the level's total quantity would exceed 2**63-1 lots")

    def _find(self, order_id: object) -> Order:
        try:
            return self._orders[order_id]
        except (KeyError, TypeError):
            raise OrderNotFoundError(f"no resting order with id {order_id!r}") from None

    def _accept(self, order: Order) -> None:
        order._sequence = self._seq
        self._seq += 1
        order._status = _PARTIAL if order._filled_lots else _OPEN
        self._orders[order._id] = order
        self._link(order)

    # -- the Decimal API --------------------------------------------------------

    def add_order(self, order: Order) -> None:
        """Rest ``order`` in the book (no matching). O(1) on an existing level, else O(log L).

        Raises ``DuplicateOrderError`` if the id is resting, ``SymbolMismatchError``
        for another symbol's order, ``InvalidOrderError`` for a market order or one
        already used, ``InvalidPriceError``/``InvalidQuantityError`` off the grid.
        """
        if not isinstance(order, Order):
            raise InvalidOrderError(f"add_order takes an Order; got {type(order).__name__}")
        inst = self._inst
        with self._lock:
            if order._status is not _PENDING or order._inst is not None:
                raise InvalidOrderError(f"order {order._id!r} is {order._status.value}; only a new order can be added")
            if order._symbol is not None and order._symbol != self._symbol:
                raise SymbolMismatchError(f"order {order._id!r} is for {order._symbol}, this book is {self._symbol}")
            if order._type is not _LIMIT:
                raise InvalidOrderError("a market order cannot rest in a book")
            ticks = to_units(order._price_in, inst.tick_size, "price", "tick size", InvalidPriceError)  # type: ignore[arg-type]
            lots = to_units(order._quantity_in, inst.lot_size, "quantity", "lot size", InvalidQuantityError)
            if order._id in self._orders:
                raise DuplicateOrderError(f"an order with id {order._id!r} is already resting")
            self._room(order._side, ticks, lots)
            order._inst = inst
            order._symbol = self._symbol
            order._ticks = ticks
            order._lots = lots
            order._filled_lots = 0
            self._accept(order)

    def remove_order(self, order_id: Hashable) -> Order:
        """Remove a resting order and return it, ``CANCELLED``. O(1), O(log L) if its level empties."""
        with self._lock:
            order = self._find(order_id)
            del self._orders[order._id]
            self._unlink(order)
            order._status = OrderStatus.CANCELLED
            return order

    def fill_order(self, order_id: Hashable, quantity: Number) -> Order:
        """Record a fill of ``quantity``; a fully filled order leaves the book. O(1)."""
        lots = self._inst.quantity_to_lots(quantity)
        with self._lock:
            return self._fill(self._find(order_id), lots)

    def _fill(self, order: Order, lots: int) -> Order:
        remaining = order._lots - order._filled_lots
        if lots > remaining:
            raise InvalidQuantityError(
                f"fill of {self._inst.lots_to_quantity(lots)} exceeds the remaining "
                f"{self._inst.lots_to_quantity(remaining)} of order {order._id!r}"
            )
        if lots == remaining:
            del self._orders[order._id]
            self._unlink(order)
            order._filled_lots += lots
            order._status = OrderStatus.FILLED
        else:
            order._filled_lots += lots
            assert order._level is not None
            order._level.total -= lots
            order._status = _PARTIAL
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
            self._amend(self._find(order_id), lots, ticks)
            return self._orders[order_id]

    def _amend(self, order: Order, lots: int | None, ticks: int | None) -> None:
        new_lots = order._lots if lots is None else lots
        new_ticks = order._ticks if ticks is None else ticks
        if new_lots <= order._filled_lots:
            raise InvalidQuantityError(
                f"the new quantity {self._inst.lots_to_quantity(new_lots)} must exceed the filled "
                f"{self._inst.lots_to_quantity(order._filled_lots)}"
            )
        if new_ticks != order._ticks or new_lots > order._lots:
            remaining = new_lots - order._filled_lots
            if new_ticks == order._ticks:
                self._room(order._side, new_ticks, new_lots - order._lots)
            else:
                self._room(order._side, new_ticks, remaining)
            self._unlink(order)
            order._ticks = new_ticks
            order._lots = new_lots
            order._sequence = self._seq
            self._seq += 1
            self._link(order)
        elif new_lots < order._lots:
            assert order._level is not None
            order._level.total -= order._lots - new_lots
            order._lots = new_lots

    def get_order(self, order_id: Hashable) -> Order:
        """Return the resting order with this id; raises ``OrderNotFoundError``. O(1)."""
        return self._find(order_id)

    # -- top of book and levels --------------------------------------------------

    @property
    def best_bid(self) -> PriceLevel | None:
        """The highest bid level (a live view), or None. O(1)."""
        top = self._trees[0].max_item()
        return None if top is None else PriceLevel(self, _BUY, top[0])

    @property
    def best_ask(self) -> PriceLevel | None:
        """The lowest ask level (a live view), or None. O(1)."""
        top = self._trees[1].min_item()
        return None if top is None else PriceLevel(self, _SELL, top[0])

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
        side = _side(side)
        ticks = self._inst.price_to_ticks(price)
        if ticks not in self._levels[side is _SELL]:
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
        side = _side(side)
        ticks = check_units(price, "price", InvalidPriceError)
        lots = check_units(quantity, "quantity", InvalidQuantityError)
        _check_id(order_id)
        with self._lock:
            if order_id in self._orders:
                raise DuplicateOrderError(f"an order with id {order_id!r} is already resting")
            self._room(side, ticks, lots)
            self._accept(Order._bound(order_id, side, ticks, lots, self._inst))

    def remove_raw(self, order_id: Hashable) -> int:
        """Remove a resting order; return its remaining quantity in lots."""
        with self._lock:
            order = self._find(order_id)
            del self._orders[order._id]
            self._unlink(order)
            order._status = OrderStatus.CANCELLED
            return order._lots - order._filled_lots

    def fill_raw(self, order_id: Hashable, quantity: int) -> int:
        """Fill ``quantity`` lots of a resting order; return its remaining lots."""
        lots = check_units(quantity, "quantity", InvalidQuantityError)
        with self._lock:
            order = self._fill(self._find(order_id), lots)
            return order._lots - order._filled_lots

    def amend_raw(self, order_id: Hashable, *, quantity: int | None = None, price: int | None = None) -> None:
        """``amend_order`` with the new total quantity in lots and price in ticks."""
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        lots = None if quantity is None else check_units(quantity, "quantity", InvalidQuantityError)
        ticks = None if price is None else check_units(price, "price", InvalidPriceError)
        with self._lock:
            self._amend(self._find(order_id), lots, ticks)

    @property
    def best_bid_raw(self) -> int | None:
        """The best bid price in ticks, or None. O(1)."""
        top = self._trees[0].max_item()
        return None if top is None else top[0]

    @property
    def best_ask_raw(self) -> int | None:
        """The best ask price in ticks, or None. O(1)."""
        top = self._trees[1].min_item()
        return None if top is None else top[0]

    def level_raw(self, side: Side | str, price: int) -> tuple[int, int] | None:
        """``(total lots, order count)`` at ``price`` ticks on ``side``, or None. O(1).

        Like :meth:`level`, a price that is not a tick count (an int in 1..2**63-1)
        raises ``InvalidPriceError``.
        """
        side = _side(side)
        if type(price) is not int or not 0 < price <= INT64_MAX:
            # like level(): a price that is no valid tick count raises instead of reading as "no level"
            price = check_units(price, "price", InvalidPriceError)
        level = self._levels[side is _SELL].get(price)
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
                    node = level.head
                    while node is not None:
                        rows.append(
                            order_row(
                                node._id,
                                node._side,
                                node._ticks,
                                node._lots,
                                node._filled_lots,
                                node._sequence,
                                node._owner,
                                node._client_order_id,
                                node._type,
                                node._tif,
                                node._post_only,
                                node._stp,
                            )
                        )
                        node = node._next
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
            order = Order._bound(row.id, row.side, row.ticks, row.lots, inst, row.owner)
            order._client_order_id = row.client_order_id
            order._tif = row.time_in_force
            order._post_only = row.post_only
            order._stp = row.self_trade_prevention
            order._filled_lots = row.filled
            order._sequence = row.sequence
            order._status = _PARTIAL if row.filled else _OPEN
            book._orders[order._id] = order
            book._link(order)
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
                    level: _Level = lvl
                    assert levels.get(ticks) is level, "level map disagrees with the tree"
                    assert level.ticks == ticks and (level.side is _SELL) == bool(sell)
                    total = count = 0
                    prev: Order | None = None
                    node: Order | None = level.head
                    last_seq = 0
                    while node is not None:
                        assert node._prev is prev, "broken FIFO back link"
                        assert node._level is lvl and node._ticks == ticks and node._side is level.side
                        assert self._orders.get(node._id) is node, "id map disagrees with the level"
                        assert 0 <= node._filled_lots < node._lots, "resting order has nothing left"
                        assert node._sequence is not None and last_seq < node._sequence < self._seq, (
                            "FIFO out of sequence"
                        )
                        assert node._status in (_OPEN, _PARTIAL)
                        last_seq = node._sequence
                        total += node._lots - node._filled_lots
                        count += 1
                        prev, node = node, node._next
                    assert prev is level.tail, "stale level tail"
                    assert count > 0, "empty level left in the book"
                    assert level.total == total, "level total disagrees with its orders"
                    assert level.count == count, "level count disagrees with its orders"
                    seen += count
            assert seen == len(self._orders), "id map holds orders that are not in a level"
            bid, ask = self._trees[0].max_item(), self._trees[1].min_item()
            assert bid is None or bid[1].count > 0
            assert ask is None or ask[1].count > 0
