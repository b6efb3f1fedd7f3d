"""Pure-Python matching engine: ``MatchingEngine``, ``Trade``, ``ExecutionReport``.

The compiled twin is ``_engine.pyx``; both behave identically. The engine owns
one :class:`OrderBook` per instrument and matches by price-time priority: an
incoming order trades against the best opposite level first and, within a
level, against the oldest order first; every trade prints at the resting
(maker) order's price. Nothing in here reads a clock or a random source: the
same commands always give the same trades.
"""

from __future__ import annotations

import logging
import threading
from array import array
from collections.abc import Callable, Hashable, Iterable
from decimal import Decimal
from typing import Any

from . import _arrays
from ._arrays import ArrayResult
from ._batch import ERROR_DUPLICATE, ERROR_INVALID, ERROR_NOT_FOUND, BatchOp, BatchResult, as_commands
from ._book_py import Order, OrderBook
from ._common import ENGINE_SNAPSHOT_FORMAT, REENTERED, STATUS_CODES, MarketDataUpdate, TopOfBook
from ._extras import OrderExt
from ._limits import check_limits, has_limits
from ._marketdata import ADD, DELETE, EXECUTE, MODIFY, MarketDataMixin, amended, make_update
from ._numeric import INT64_MAX, check_units, to_units
from ._ordertypes import OrderTypesMixin
from ._records_py import FILLED, ID, LOTS, NEXT, OBJ, SELLS, SEQ, TICKS, Rec, sync
from ._shared_py import (
    BUY,
    BUY_STR,
    CANCELLED,
    FILLED_ST,
    GTC,
    OPEN,
    PARTIAL,
    PENDING,
    SELL,
    SELL_STR,
    check_id,
    to_side,
)
from ._snapshot import TRADE_IDS_EXHAUSTED
from .enums import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce, coerce_enum
from .errors import (
    DuplicateOrderError,
    InvalidInstrumentError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    TradebookError,
    UnknownSymbolError,
)
from .instrument import Instrument

__all__ = ["ExecutionReport", "MatchingEngine", "Trade"]

log = logging.getLogger("tradebook")

_STATUS_CODE = {status: code for code, status in enumerate(STATUS_CODES)}
_BATCH_TIF = (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTC)

_MARKET = OrderType.MARKET
_IOC = TimeInForce.IOC
_FOK = TimeInForce.FOK
_REJECTED = OrderStatus.REJECTED
_EXPIRED = OrderStatus.EXPIRED
_STP_NONE = SelfTradePrevention.NONE
_CANCEL_TAKER = SelfTradePrevention.CANCEL_TAKER
_CANCEL_MAKER = SelfTradePrevention.CANCEL_MAKER
_CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
_DECREMENT = SelfTradePrevention.DECREMENT
_GTD = TimeInForce.GTD
_BATCH_EXT: dict[int, str] = {
    BatchOp.STOP: "stop_price",
    BatchOp.TRAILING_STOP: "trailing_offset",
    BatchOp.MARKET_QUOTE: "quote",
}
_STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)


class Trade:
    """One execution between a resting maker and an incoming taker, at the maker's price."""

    __slots__ = ("_id", "_inst", "_ticks", "_lots", "_maker_id", "_taker_id", "_maker_owner", "_taker_owner", "_sell")

    def __init__(
        self,
        trade_id: int,
        inst: Instrument,
        ticks: int,
        lots: int,
        maker_id: Hashable,
        taker_id: Hashable,
        maker_owner: Hashable | None,
        taker_owner: Hashable | None,
        taker_sells: bool,
    ) -> None:
        self._id = trade_id
        self._inst = inst
        self._ticks = ticks
        self._lots = lots
        self._maker_id = maker_id
        self._taker_id = taker_id
        self._maker_owner = maker_owner
        self._taker_owner = taker_owner
        self._sell = taker_sells

    @property
    def id(self) -> int:
        """Engine-wide increasing trade id."""
        return self._id

    @property
    def symbol(self) -> str:
        """The instrument traded."""
        return self._inst.symbol

    @property
    def price(self) -> Decimal:
        """The execution price (the maker's)."""
        return self._inst.ticks_to_price(self._ticks)

    @property
    def quantity(self) -> Decimal:
        """The quantity traded."""
        return self._inst.lots_to_quantity(self._lots)

    @property
    def price_ticks(self) -> int:
        """The execution price in ticks."""
        return self._ticks

    @property
    def quantity_lots(self) -> int:
        """The quantity traded in lots."""
        return self._lots

    @property
    def maker_order_id(self) -> Hashable:
        """The resting order's id."""
        return self._maker_id

    @property
    def taker_order_id(self) -> Hashable:
        """The incoming order's id."""
        return self._taker_id

    @property
    def maker_owner(self) -> Hashable | None:
        """The resting order's owner."""
        return self._maker_owner

    @property
    def taker_owner(self) -> Hashable | None:
        """The incoming order's owner."""
        return self._taker_owner

    @property
    def taker_side(self) -> Side:
        """The incoming order's side (the aggressor)."""
        return SELL if self._sell else BUY

    def _key(self) -> tuple[Any, ...]:
        return (
            self._id,
            self._inst.symbol,
            self._ticks,
            self._lots,
            self._maker_id,
            self._taker_id,
            self._maker_owner,
            self._taker_owner,
            self._sell,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trade):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Trade(id={self._id}, symbol={self._inst.symbol!r}, price={self.price}, quantity={self.quantity}, "
            f"maker={self._maker_id!r}, taker={self._taker_id!r}, taker_side={self.taker_side.value})"
        )


class _Taker:
    """An incoming order while it matches: plain state, no Order object needed."""

    __slots__ = (
        "id",
        "owner",
        "sell",
        "market",
        "ticks",
        "lots",
        "filled",
        "seq",
        "status",
        "tif",
        "post_only",
        "mode",
        "ext",
        "quote",
    )

    def __init__(
        self,
        order_id: Hashable,
        owner: Hashable | None,
        sell: bool,
        market: bool,
        ticks: int,
        lots: int,
        tif: TimeInForce,
        post_only: bool,
        mode: SelfTradePrevention,
    ) -> None:
        self.id = order_id
        self.owner = owner
        self.sell = sell
        self.market = market
        self.ticks = ticks
        self.lots = lots
        self.filled = 0
        self.seq: int | None = None
        self.status = PENDING
        self.tif = tif
        self.post_only = post_only
        self.mode = _STP_NONE if owner is None else mode
        self.ext: OrderExt | None = None  # the new order types' fields (iceberg display, quote budget)
        self.quote: int | None = None  # a quote-sized market order's budget left, in tick*lot units


def _write_back(order: Order, tk: _Taker) -> None:
    order._ticks = tk.ticks
    order._lots = tk.lots
    order._filled_lots = tk.filled
    order._sequence = tk.seq
    order._status = tk.status


class ExecutionReport:
    """What one command did: the order's state afterwards, its trades, and the makers
    that self-trade prevention cancelled.

    For a raw submit (``submit_raw``) the engine keeps no ``Order`` object:
    ``order`` is made on first request and shows the order as the command left
    it; ``status``, ``filled_lots`` and ``remaining_lots`` read that state
    without making one.
    """

    __slots__ = ("_order", "_trades", "_cancelled", "_inst", "_tk", "_triggered")

    def __init__(
        self,
        order: Order | None,
        trades: list[Trade],
        cancelled: list[Order],
        inst: Instrument | None = None,
        taker: _Taker | None = None,
    ) -> None:
        self._order = order
        self._trades = trades
        self._cancelled = cancelled
        self._inst = inst
        self._tk = taker
        self._triggered: list[ExecutionReport] | None = None

    @property
    def order(self) -> Order:
        """The order, in its state after the command."""
        if self._order is None:
            tk, inst = self._tk, self._inst
            assert tk is not None and inst is not None
            order = Order._bound(tk.id, SELL if tk.sell else BUY, 0, 0, inst, tk.owner)
            order._tif = tk.tif
            if tk.market:
                order._type = _MARKET
            _write_back(order, tk)
            self._order = order
        return self._order

    @property
    def trades(self) -> list[Trade]:
        """The trades, in execution order."""
        return self._trades

    @property
    def cancelled(self) -> list[Order]:
        """Resting orders removed by self-trade prevention."""
        return self._cancelled

    @property
    def triggered(self) -> list[ExecutionReport]:
        """The reports of the stops this command triggered, in the order they ran (the whole cascade)."""
        if self._triggered is None:
            self._triggered = []
        return self._triggered

    @property
    def status(self) -> OrderStatus:
        """The order's status after the command."""
        return self.order._status if self._tk is None else self._tk.status

    @property
    def filled_lots(self) -> int:
        """The order's filled quantity in lots after the command."""
        return self.order._filled_lots if self._tk is None else self._tk.filled

    @property
    def remaining_lots(self) -> int:
        """The order's unfilled quantity in lots after the command."""
        if self._tk is None:
            return self.order._lots - self.order._filled_lots
        return self._tk.lots - self._tk.filled

    def __repr__(self) -> str:
        return f"ExecutionReport(order={self.order!r}, trades={len(self._trades)}, cancelled={len(self._cancelled)})"


class _Run:
    """Bookkeeping of one command: trades, STP cancellations, market data events."""

    __slots__ = ("trades", "cancelled", "touched", "triggered")

    def __init__(self, track: bool) -> None:
        self.triggered: list[ExecutionReport] | None = None
        self.trades: list[Trade] = []
        self.cancelled: list[Order] = []
        # the raw L3 events of the command (``_marketdata``), kept only when someone listens to market data
        self.touched: list[tuple[str, bool, int, Hashable, int, int]] | None = [] if track else None


class MatchingEngine(OrderTypesMixin, MarketDataMixin):
    """A multi-symbol, price-time-priority matching engine.

    >>> engine = MatchingEngine([Instrument("BTC/USDT", "0.01", "0.001")])
    >>> engine.submit(Order(1, "SELL", "100.00", "1", owner="alice")).status
    <OrderStatus.OPEN: 'OPEN'>
    >>> report = engine.submit(Order(2, "BUY", "101.00", "0.4", owner="bob"))
    >>> report.status, [(t.price, t.quantity) for t in report.trades]
    (<OrderStatus.FILLED: 'FILLED'>, [(Decimal('100.00'), Decimal('0.400'))])
    """

    def __init__(
        self,
        instruments: Iterable[Instrument] = (),
        *,
        self_trade_prevention: SelfTradePrevention | str = SelfTradePrevention.CANCEL_TAKER,
    ) -> None:
        self._stp = coerce_enum(SelfTradePrevention, self_trade_prevention, "self_trade_prevention", InvalidOrderError)
        self._books: dict[str, OrderBook] = {}
        self._limited: dict[str, bool] = {}
        self._next_trade_id = 1
        self._ids_lock = threading.Lock()
        self._listeners: list[Callable[[MarketDataUpdate], object]] = []
        # per book publishing right now: the updates its subscribers' own commands published meanwhile
        self._delivering: dict[
            OrderBook, list[tuple[MarketDataUpdate, list[Callable[[MarketDataUpdate], object]]]]
        ] = {}
        for inst in instruments:
            self.add_instrument(inst)

    _x_order_type = Order

    # -- instruments and books ---------------------------------------------------

    def add_instrument(self, instrument: Instrument) -> OrderBook:
        """Start trading ``instrument``; returns its (empty) book."""
        if not isinstance(instrument, Instrument):
            raise InvalidInstrumentError(f"add_instrument takes an Instrument; got {type(instrument).__name__}")
        if instrument.symbol in self._books:
            raise InvalidInstrumentError(f"the engine already trades {instrument.symbol}")
        book = OrderBook(instrument)
        self._books[instrument.symbol] = book
        self._limited[instrument.symbol] = has_limits(instrument)
        return book

    def book(self, symbol: str | None = None) -> OrderBook:
        """The order book of ``symbol`` (None: the only one)."""
        if symbol is None:
            if len(self._books) != 1:
                raise UnknownSymbolError(f"no symbol given and the engine trades {len(self._books)} instruments")
            return next(iter(self._books.values()))
        try:
            return self._books[symbol]
        except (KeyError, TypeError):
            raise UnknownSymbolError(f"unknown symbol {symbol!r}") from None

    @property
    def symbols(self) -> list[str]:
        """The symbols traded, in the order they were added."""
        return list(self._books)

    @property
    def self_trade_prevention(self) -> SelfTradePrevention:
        """The default self-trade prevention mode."""
        return self._stp

    @property
    def next_trade_id(self) -> int:
        """The id the next trade will get."""
        return self._next_trade_id

    def __repr__(self) -> str:
        return f"MatchingEngine(symbols={self.symbols!r}, self_trade_prevention={self._stp.value})"

    # -- market data ----------------------------------------------------------------

    def subscribe(self, callback: Callable[[MarketDataUpdate], object]) -> Callable[[], None]:
        """Call ``callback(update)`` after every command that changed a book; returns an unsubscribe function.

        ``update.deltas`` lists each level the command changed with its new total
        (0: the level is gone); ``update.trades`` the trades; ``update.orders``
        the L3 events (:class:`OrderEvent`: ADD, MODIFY, DELETE, EXECUTE);
        ``update.seq`` numbers the book's updates (1, 2, 3... never a gap: join
        mid-stream with :meth:`market_snapshot`) and ``update.time`` is the
        engine's time. A command that changes no book publishes nothing; with no
        subscriber, commands record no market data at all. A callback that
        raises is logged and does not undo or interrupt anything. Callbacks run
        under the book's (re-entrant) lock, so with several threads each book's
        updates still arrive in command order, each showing the book right after
        its command. A callback may submit, cancel and amend; the update of such a
        nested command is delivered after the current one has reached every
        subscriber, so every subscriber sees the updates in command order.
        """
        if not callable(callback):
            raise TypeError("subscribe takes a callable")
        self._listeners = [*self._listeners, callback]

        def unsubscribe() -> None:
            self._listeners = [cb for cb in self._listeners if cb is not callback]

        return unsubscribe

    def _publish(self, book: OrderBook, run: _Run) -> None:
        listeners = self._listeners
        if not listeners or not run.touched:  # every change of the visible book is an event
            return
        update = make_update(self, book, run.touched, run.trades)
        queue = self._delivering.get(book)
        if queue is not None:
            # a subscriber changed this book from its callback: this update goes out once the one in hand
            # has reached every subscriber, so that all of them see the updates in command order
            queue.append((update, listeners))
            return
        queue = self._delivering[book] = [(update, listeners)]
        try:
            i = 0
            while i < len(queue):
                update, listeners = queue[i]
                i += 1
                for callback in listeners:
                    try:
                        callback(update)
                    except Exception:
                        log.exception("market data subscriber %r failed", callback)
        finally:
            del self._delivering[book]

    @staticmethod
    def _x_l3(book: OrderBook) -> list[tuple[bool, int, Hashable, int, int]]:
        """The visible resting orders as (sell, ticks, id, visible lots, sequence): bids best first,
        then asks best first, FIFO within a level (``market_snapshot``). The caller holds the lock."""
        out = []
        for sell in (False, True):
            for ticks, level in book._trees[sell].items(reverse=not sell):
                rec = level.head
                while rec is not None:
                    out.append((sell, ticks, rec[ID], rec[LOTS] - rec[FILLED], rec[SEQ]))
                    rec = rec[NEXT]
        return out

    def top_of_book(self, symbol: str | None = None) -> TopOfBook:
        """Best bid and ask with their sizes, in O(1)."""
        book = self.book(symbol)
        bid_ticks, bid_lots, ask_ticks, ask_lots = self.top_of_book_raw(symbol)
        inst = book._inst
        return TopOfBook(
            None if bid_ticks is None else inst.ticks_to_price(bid_ticks),
            None if bid_lots is None else inst.lots_to_quantity(bid_lots),
            None if ask_ticks is None else inst.ticks_to_price(ask_ticks),
            None if ask_lots is None else inst.lots_to_quantity(ask_lots),
        )

    def top_of_book_raw(self, symbol: str | None = None) -> tuple[int | None, int | None, int | None, int | None]:
        """``(bid ticks, bid lots, ask ticks, ask lots)``, None where a side is empty. O(1)."""
        book = self.book(symbol)
        bid = book._trees[0]._tail
        ask = book._trees[1]._head
        return (
            None if bid is None else bid.key,
            None if bid is None else bid.value.total,
            None if ask is None else ask.key,
            None if ask is None else ask.value.total,
        )

    def compact(self, symbol: str | None = None) -> None:
        """Give memory back in ``symbol``'s book, or in every book when None (see ``OrderBook.compact``)."""
        for book in list(self._books.values()) if symbol is None else [self.book(symbol)]:
            book.compact()

    # -- commands ---------------------------------------------------------------------

    def submit(self, order: Order) -> ExecutionReport:
        """Match ``order`` against the book by price-time priority; rest a GTC remainder.

        Invalid input raises and changes nothing. Outcomes are statuses: a
        post-only order that would take is ``REJECTED``; an IOC or market
        remainder, and a FOK order that cannot fill completely, are ``EXPIRED``;
        a taker stopped by self-trade prevention is ``CANCELLED``.
        """
        if type(order) is not Order:
            raise InvalidOrderError(f"submit takes an Order; got {type(order).__name__}")
        book = self.book(order._symbol)
        inst = book._inst
        if order._status is not PENDING or order._inst is not None:
            raise InvalidOrderError(f"order {order._id!r} is {order._status.value}; only a new order can be submitted")
        if order._ext is not None:
            return self._submit_ext(order)  # type: ignore[no-any-return]
        market = order._type is _MARKET
        ticks = 0 if market else to_units(order._price_in, inst.tick_size, "price", "tick size", InvalidPriceError)  # type: ignore[arg-type]
        lots = to_units(order._quantity_in, inst.lot_size, "quantity", "lot size", InvalidQuantityError)  # type: ignore[arg-type]
        if self._limited[book._symbol]:
            check_limits(inst, None if market else ticks, lots)
        mode = self._stp if order._stp is None else order._stp
        tk = _Taker(
            order._id, order._owner, order._side is SELL, market, ticks, lots, order._tif, order._post_only, mode
        )
        run = _Run(bool(self._listeners))
        self._lock_and_run(book, tk, order, run)
        report = ExecutionReport(order, run.trades, run.cancelled)
        report._triggered = run.triggered
        return report

    def submit_raw(
        self,
        order_id: Hashable,
        side: Side | str,
        price: int | None,
        quantity: int,
        *,
        symbol: str | None = None,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        owner: Hashable | None = None,
    ) -> ExecutionReport:
        """``submit`` with the price in ticks (None: a market order) and the quantity in lots.

        The returned report makes its ``order`` only when asked; read
        ``report.status`` and ``report.filled_lots`` in hot loops. The new order
        types' raw form is :meth:`submit_raw_typed`.
        """
        book = self.book(symbol)
        sell = side is SELL or side is SELL_STR or (side is not BUY and side is not BUY_STR and to_side(side) is SELL)
        tif = (
            time_in_force
            if time_in_force is GTC
            else coerce_enum(TimeInForce, time_in_force, "time in force", InvalidOrderError)
        )
        if price is None:
            ticks = 0
        elif type(price) is int and 0 < price <= INT64_MAX:
            ticks = price
        else:
            ticks = check_units(price, "price", InvalidPriceError)
        lots = (
            quantity
            if type(quantity) is int and 0 < quantity <= INT64_MAX
            else check_units(quantity, "quantity", InvalidQuantityError)
        )
        if type(order_id) is not int:
            check_id(order_id)
        if self._limited[book._symbol]:
            check_limits(book._inst, None if price is None else ticks, lots)
        tk = _Taker(order_id, owner, sell, price is None, ticks, lots, tif, False, self._stp)
        run = _Run(bool(self._listeners))
        self._lock_and_run(book, tk, None, run)
        report = ExecutionReport(None, run.trades, run.cancelled, book._inst, tk)
        report._triggered = run.triggered
        return report

    def submit_raw_typed(
        self,
        order_id: Hashable,
        side: Side | str,
        price: int | None,
        quantity: int | None,
        *,
        order_type: OrderType | str | None = None,
        stop_price: int | None = None,
        trailing_offset: int | None = None,
        display: int | None = None,
        expire_at: int | None = None,
        quote: int | None = None,
        symbol: str | None = None,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        owner: Hashable | None = None,
    ) -> ExecutionReport:
        """``submit_raw`` for every order type: the new fields in integer units.

        ``stop_price`` and ``trailing_offset`` in ticks, ``display`` in lots,
        ``quote`` (with ``quantity=None``) in units of one tick times one lot,
        ``expire_at`` in the engine's time unit; ``order_type`` defaults to what
        the fields imply (LIMIT, MARKET, STOP, STOP_LIMIT or TRAILING_STOP). The
        engine keeps an ``Order`` for such an order, as for a Decimal submit.
        """
        return self._submit_raw_ext(  # type: ignore[no-any-return]
            order_id, side, price, quantity, symbol, time_in_force, owner,
            order_type, stop_price, trailing_offset, display, expire_at, quote,
        )  # fmt: skip

    def _lock_and_run(self, book: OrderBook, tk: _Taker, order: Order | None, run: _Run) -> None:
        """Check the id is free, match and publish, under the book's lock."""
        with book._lock:
            if book._busy:  # book._begin(), inlined on this hot path
                raise RuntimeError(REENTERED)
            book._busy = True
            try:
                if tk.id in book._orders or (book._trig is not None and tk.id in book._trig.waiting):
                    raise DuplicateOrderError(f"an order with id {tk.id!r} is already resting or waiting")
                if order is not None:
                    order._inst = book._inst
                    order._symbol = book._symbol
                self._execute(book, tk, order, run)
            finally:
                book._busy = False  # the change is done: subscribers may change the book
            self._publish(book, run)
            run.triggered = self._cascade_after(book, run.trades)

    def _cascade_after(self, book: OrderBook, trades: list[Trade]) -> list[ExecutionReport] | None:
        """Run the stops ``trades`` trigger (the caller holds the book's lock; its change is done); None if none wait."""
        if not trades or book._trig is None or not book._trig.waiting:
            return None
        return self._x_cascade(book, [t._ticks for t in trades])

    # -- primitives for the shared order-type code (``_ordertypes``) ----------------------

    def _x_run(
        self, book: OrderBook, order: Order, market: bool, ticks: int, lots: int | None, quote: int | None
    ) -> ExecutionReport:
        """Match a bound ``order`` as a new taker (no cascade here: the caller runs it)."""
        ext = order._ext
        mode = self._stp if order._stp is None else order._stp
        tif = order._tif
        tk = _Taker(
            order._id, order._owner, order._side is SELL, market, 0 if market else ticks,
            INT64_MAX if lots is None else lots, GTC if tif is _GTD else tif, order._post_only, mode,
        )  # fmt: skip
        tk.ext = ext
        tk.quote = quote
        tk.seq = order._sequence  # a stop keeps its acceptance sequence unless its run gets a new one
        run = _Run(bool(self._listeners))
        order._inst = book._inst
        order._symbol = book._symbol
        order._status = PENDING
        with book._lock:
            book._begin()
            try:
                self._execute(book, tk, order, run)
            finally:
                book._busy = False
            self._publish(book, run)
            if order._type not in _STOP_TYPES:  # a triggered stop's own trades join the cascade running it
                run.triggered = self._cascade_after(book, run.trades)
        report = ExecutionReport(order, run.trades, run.cancelled)
        report._triggered = run.triggered
        return report

    def _x_remove(self, book: OrderBook, order_id: Hashable, status: OrderStatus, order: Order) -> Order | None:
        """Take a resting order out with ``status`` (GTD expiry), publishing it; None if it no longer rests."""
        with book._lock:
            book._begin()
            try:
                rec = book._orders.get(order_id)
                if rec is None or rec[OBJ] is not order:
                    return None
                run = _Run(bool(self._listeners))
                if run.touched is not None:
                    run.touched.append((DELETE, rec[SELLS], rec[TICKS], rec[ID], rec[LOTS] - rec[FILLED], rec[SEQ]))
                book._leave(rec, status)
            finally:
                book._busy = False
            self._publish(book, run)
        return order  # type: ignore[no-any-return]  # the identity test above narrows it to Any

    @staticmethod
    def _x_report(order: Order) -> ExecutionReport:
        return ExecutionReport(order, [], [])

    def cancel(self, symbol: str | None, order_id: Hashable) -> Order:
        """Remove a resting order; returns it ``CANCELLED``."""
        book = self.book(symbol)
        with book._lock:
            book._begin()
            try:
                if book._trig is not None and book._trig.waiting:
                    waiting = self._cancel_waiting(book, order_id)
                    if waiting is not None:
                        return waiting  # type: ignore[no-any-return]
                rec = book._find(order_id)
                run = _Run(bool(self._listeners))
                if run.touched is not None:
                    run.touched.append((DELETE, rec[SELLS], rec[TICKS], rec[ID], rec[LOTS] - rec[FILLED], rec[SEQ]))
                order = book._leave(rec, CANCELLED)
            finally:
                book._busy = False
            self._publish(book, run)
        return order

    def cancel_raw(self, symbol: str | None, order_id: Hashable) -> int:
        """Remove a resting order; returns its remaining lots."""
        if self._listeners:
            order = self.cancel(symbol, order_id)
            return order._lots - order._filled_lots + (0 if order._ext is None else order._ext.hidden)
        book = self.book(symbol)
        if book._trig is not None and book._trig.waiting:
            order = self.cancel(symbol, order_id)
            return order._lots - order._filled_lots + (0 if order._ext is None else order._ext.hidden)
        return book.remove_raw(order_id)

    def amend(
        self,
        symbol: str | None,
        order_id: Hashable,
        *,
        quantity: Decimal | int | str | None = None,
        price: Decimal | int | str | None = None,
    ) -> ExecutionReport:
        """Change a resting order's quantity and/or price.

        Lowering the quantity keeps time priority; raising it or a new price
        sends the order to the back of its level. A new price that crosses the
        book trades like a new taker (self-trade prevention included), then any
        remainder rests. A post-only order cannot be moved to a price that would take.
        """
        book = self.book(symbol)
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        lots = None if quantity is None else book._inst.quantity_to_lots(quantity)
        ticks = None if price is None else book._inst.price_to_ticks(price)
        return self._amend(book, order_id, lots, ticks)

    def amend_raw(
        self, symbol: str | None, order_id: Hashable, *, quantity: int | None = None, price: int | None = None
    ) -> ExecutionReport:
        """``amend`` with the quantity in lots and the price in ticks."""
        book = self.book(symbol)
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        lots = None if quantity is None else check_units(quantity, "quantity", InvalidQuantityError)
        ticks = None if price is None else check_units(price, "price", InvalidPriceError)
        return self._amend(book, order_id, lots, ticks)

    def _amend(self, book: OrderBook, order_id: Hashable, lots: int | None, ticks: int | None) -> ExecutionReport:
        inst = book._inst
        with book._lock:
            book._begin()
            try:
                if book._trig is not None and book._trig.waiting:
                    waiting = self._amend_waiting(book, order_id, lots, ticks)
                    if waiting is not None:
                        return waiting  # type: ignore[no-any-return]
                rec = book._find(order_id)
                sell = rec[4]
                obj = rec[OBJ]
                ext = None if obj is None else obj._ext
                if ext is not None and ext.display is not None:
                    return self._amend_iceberg(book, rec, obj, ext, lots, ticks)
                new_lots = rec[LOTS] if lots is None else lots
                new_ticks = rec[TICKS] if ticks is None else ticks
                if new_lots <= rec[FILLED]:
                    raise InvalidQuantityError(
                        f"the new quantity {inst.lots_to_quantity(new_lots)} must exceed the filled "
                        f"{inst.lots_to_quantity(rec[FILLED])}"
                    )
                if self._limited[book._symbol]:
                    check_limits(inst, new_ticks, new_lots)
                run = _Run(bool(self._listeners))
                touched = run.touched
                if touched is not None:
                    old = (rec[TICKS], rec[LOTS] - rec[FILLED], rec[SEQ])
                if new_ticks != rec[TICKS] and self._crosses(book, sell, new_ticks):
                    order = book._order_of(rec)
                    if order._post_only:
                        raise InvalidOrderError(f"post-only order {order_id!r} cannot move to a price that would take")
                    book._room(sell, new_ticks, new_lots - rec[FILLED])
                    self._check_counters(book, sell, False, new_ticks)
                    del book._orders[rec[ID]]
                    book._unlink(rec)
                    if touched is not None:
                        touched.append((DELETE, sell, old[0], rec[ID], old[1], old[2]))
                    rec[OBJ] = None
                    mode = self._stp if order._stp is None else order._stp
                    tif = GTC if order._tif is _GTD else order._tif
                    tk = _Taker(order._id, order._owner, sell, False, new_ticks, new_lots, tif, False, mode)
                    tk.filled = rec[FILLED]
                    self._execute(book, tk, order, run)
                else:
                    book._amend(rec, lots, ticks)
                    if touched is not None:
                        amended(touched, sell, rec[ID], old, (rec[TICKS], rec[LOTS] - rec[FILLED], rec[SEQ]))
                    order = book._order_of(rec)
                report = ExecutionReport(order, run.trades, run.cancelled)
            finally:
                book._busy = False  # the change is done: subscribers may change the book
            self._publish(book, run)
            report._triggered = self._cascade_after(book, run.trades)
        return report

    def _amend_iceberg(
        self, book: OrderBook, rec: Rec, order: Order, ext: OrderExt, lots: int | None, ticks: int | None
    ) -> ExecutionReport:
        """Amend a resting iceberg; the caller holds the lock and has marked the book busy.

        ``lots`` is the new total. Lowering it takes from the hidden part first and
        keeps priority; raising it adds to the hidden part and goes to the back; a
        new price goes to the back with the current slice (or trades, if it crosses).
        """
        inst = book._inst
        sell = rec[4]
        total = rec[LOTS] + ext.hidden
        new_total = total if lots is None else lots
        new_ticks = rec[TICKS] if ticks is None else ticks
        if new_total <= rec[FILLED]:
            raise InvalidQuantityError(
                f"the new quantity {inst.lots_to_quantity(new_total)} must exceed the filled "
                f"{inst.lots_to_quantity(rec[FILLED])}"
            )
        if self._limited[book._symbol]:
            check_limits(inst, new_ticks, new_total)
        run = _Run(bool(self._listeners))
        touched = run.touched
        if touched is not None:
            old = (rec[TICKS], rec[LOTS] - rec[FILLED], rec[SEQ])
        if new_ticks != rec[TICKS] and self._crosses(book, sell, new_ticks):
            if order._post_only:
                raise InvalidOrderError(f"post-only order {order._id!r} cannot move to a price that would take")
            book._room(sell, new_ticks, new_total - rec[FILLED])
            self._check_counters(book, sell, False, new_ticks)
            filled = rec[FILLED]
            del book._orders[rec[ID]]
            book._unlink(rec)
            if touched is not None:
                touched.append((DELETE, sell, old[0], rec[ID], old[1], old[2]))
            rec[OBJ] = None
            ext.hidden = 0
            mode = self._stp if order._stp is None else order._stp
            tk = _Taker(order._id, order._owner, sell, False, new_ticks, new_total, order._tif, False, mode)
            if tk.tif is _GTD:
                tk.tif = GTC
            tk.filled = filled
            tk.ext = ext
            self._execute(book, tk, order, run)
        else:
            if new_total < total:
                cut = total - new_total
                from_hidden = min(ext.hidden, cut)
                book._amend(rec, rec[LOTS] - (cut - from_hidden) if cut > from_hidden else None, ticks)
                ext.hidden -= from_hidden
            elif new_total > total:
                if new_ticks != rec[TICKS]:
                    book._amend(rec, None, new_ticks)
                else:
                    book._requeue(rec)
                ext.hidden += new_total - total
            elif new_ticks != rec[TICKS]:
                book._amend(rec, None, new_ticks)
            if touched is not None:
                amended(touched, sell, rec[ID], old, (rec[TICKS], rec[LOTS] - rec[FILLED], rec[SEQ]))
            sync(order, rec)
        report = ExecutionReport(order, run.trades, run.cancelled)
        book._busy = False
        self._publish(book, run)
        report._triggered = self._cascade_after(book, run.trades)
        return report

    # -- batches ----------------------------------------------------------------------------

    def execute_batch(self, commands: Any, *, symbol: str | None = None) -> BatchResult:
        """Run many raw commands in one call; see :class:`BatchOp` for the format.

        Each command does exactly what the matching single call would
        (``submit_raw``, ``cancel_raw``, ``amend_raw``). A command that the single
        call would refuse changes nothing and gets a negative status code
        (``ERROR_NOT_FOUND``, ``ERROR_DUPLICATE``, ``ERROR_INVALID``); the batch goes on.
        """
        view = as_commands(commands)
        book = self.book(symbol)  # an unknown symbol fails the whole batch up front
        with book._lock:  # and so does a batch from code the book runs while changing, as in the compiled twin
            book._begin()
            book._busy = False
        n = len(view) // 5
        statuses = array("b", bytes(n))
        lots = array("q", bytes(8 * n))
        trades: list[Trade] = []
        for i in range(n):
            op, order_id, side, price, quantity = view[5 * i : 5 * i + 5]
            try:
                if op == BatchOp.CANCEL:
                    lots[i] = self.cancel_raw(symbol, order_id)
                    statuses[i] = _STATUS_CODE[CANCELLED]
                    continue
                if op == BatchOp.AMEND:
                    report = self.amend_raw(symbol, order_id, quantity=quantity or None, price=price or None)
                elif op in _BATCH_EXT and side in (0, 1):
                    extra: dict[str, Any] = {_BATCH_EXT[op]: quantity if op == BatchOp.MARKET_QUOTE else price}
                    report = self.submit_raw_typed(
                        order_id, SELL if side else BUY, None, None if op == BatchOp.MARKET_QUOTE else quantity,
                        symbol=symbol, **extra,
                    )  # fmt: skip
                elif 0 <= op <= 3 and side in (0, 1):
                    report = self.submit_raw(
                        order_id,
                        SELL if side else BUY,
                        None if op == BatchOp.MARKET else price,
                        quantity,
                        symbol=symbol,
                        time_in_force=_BATCH_TIF[op],
                    )
                else:
                    statuses[i] = ERROR_INVALID
                    continue
            except OrderNotFoundError:
                statuses[i] = ERROR_NOT_FOUND
                continue
            except DuplicateOrderError:
                statuses[i] = ERROR_DUPLICATE
                continue
            except TradebookError:
                statuses[i] = ERROR_INVALID
                continue
            statuses[i] = _STATUS_CODE[report.status]
            lots[i] = report.filled_lots
            trades.extend(report.trades)
            for triggered in report.triggered:
                trades.extend(triggered.trades)
        return BatchResult(statuses, lots, trades)

    def execute_array(self, commands: Any, *, symbol: str | None = None) -> ArrayResult:
        """Run a numpy array of ``COMMAND_DTYPE`` rows; return numpy arrays (:class:`ArrayResult`).

        Per command, exactly what :meth:`execute_batch` does (statuses, negative
        error codes, nothing changed on an error); the trades come back as
        ``TRADE_DTYPE`` rows. Every order resting in the book must have an
        int64 id (checked up front). This backend runs the rows through
        ``execute_batch``; the compiled one runs them in C.

        >>> import numpy as np
        >>> from tradebook import COMMAND_DTYPE, BatchOp
        >>> engine = MatchingEngine([Instrument("BTC/USDT", "0.01", "0.001")])
        >>> rows = np.zeros(2, COMMAND_DTYPE)
        >>> fields = ["op", "side", "id", "price", "quantity"]  # side 1 is SELL
        >>> rows[fields] = [(BatchOp.LIMIT, 1, 7, 10_000, 5), (BatchOp.IOC, 0, 8, 10_000, 2)]
        >>> result = engine.execute_array(rows)
        >>> result.statuses.tolist(), result.lots.tolist()
        ([1, 3], [0, 2])
        >>> result.trades[["maker_id", "taker_id", "price", "lots", "maker_side"]].tolist()
        [(7, 8, 10000, 2, 1)]
        """
        _arrays.check_commands(commands)
        book = self.book(symbol)
        with book._lock:
            _arrays.check_book_ids(book._orders, book.symbol)
            if _arrays.has_extended_rows(commands) or (book._trig is not None and book._trig.waiting):
                return _arrays.via_single(self, commands, symbol)
        return _arrays.via_batch(self, commands, symbol)

    # -- matching -------------------------------------------------------------------------

    @staticmethod
    def _crosses(book: OrderBook, sell: bool, ticks: int) -> bool:
        if sell:
            best = book._trees[0]._tail
            return best is not None and best.key >= ticks
        best = book._trees[1]._head
        return best is not None and best.key <= ticks

    def _execute(self, book: OrderBook, tk: _Taker, order: Order | None, run: _Run) -> None:
        """Match a taker that is not in the book and settle its fate; rest a GTC remainder.

        ``order`` is the taker's Order (Decimal API) or None (raw API). The
        caller holds the book's lock.
        """
        if tk.post_only and self._crosses(book, tk.sell, tk.ticks):
            tk.status = _REJECTED
        elif tk.tif is _FOK and not self._fillable(book, tk):
            tk.status = _EXPIRED
        else:
            if not tk.market and tk.tif is GTC:
                # Refuse a remainder that would overflow its level before anything changes (the sequence
                # counter included); if that level exists, the uncrossed book cannot trade this order at all.
                # Matching only shrinks the remainder, so this check also covers resting it below.
                book._room(tk.sell, tk.ticks, tk.lots - tk.filled)
            if book._seq >= INT64_MAX or self._next_trade_id > INT64_MAX - len(book._orders):
                self._check_counters(book, tk.sell, tk.market, tk.ticks)  # near a limit: the exact rule
            tk.seq = book._seq  # accepted: this fixes its time priority
            book._seq += 1
            stopped = self._match(book, tk, run)
            remaining = tk.lots - tk.filled
            if stopped:
                tk.status = CANCELLED
            elif tk.quote is not None:
                # a market order sized by a quote amount: FILLED when it spent the budget exactly
                tk.status = FILLED_ST if tk.quote == 0 else _EXPIRED
                tk.lots = tk.filled
            elif remaining == 0:
                tk.status = FILLED_ST
            elif tk.market or tk.tif is not GTC:
                tk.status = _EXPIRED
            else:
                if order is None and (tk.owner is not None or type(tk.id) is not int):
                    # the book keeps an Order only to remember an owner or a non-int id
                    order = Order._bound(tk.id, SELL if tk.sell else BUY, 0, 0, book._inst, tk.owner)
                    order._tif = tk.tif
                ext = tk.ext
                if ext is not None and ext.display is not None:
                    # an iceberg rests one slice; the rest waits, hidden, on the order
                    show = min(ext.display, remaining)
                    ext.hidden = remaining - show
                    rec = book._insert(tk.id, tk.sell, tk.ticks, tk.filled + show, tk.filled, tk.seq, order)
                    tk.status = PARTIAL if tk.filled else OPEN
                    if run.touched is not None:
                        run.touched.append((ADD, tk.sell, tk.ticks, tk.id, show, tk.seq))
                    _write_back(order, tk)  # type: ignore[arg-type]
                    order._lots = rec[LOTS]  # type: ignore[union-attr]
                    return
                book._insert(tk.id, tk.sell, tk.ticks, tk.lots, tk.filled, tk.seq, order)
                tk.status = PARTIAL if tk.filled else OPEN
                if run.touched is not None:
                    run.touched.append((ADD, tk.sell, tk.ticks, tk.id, remaining, tk.seq))
        if order is not None:
            _write_back(order, tk)

    def _check_counters(self, book: OrderBook, sell: bool, market: bool, ticks: int) -> None:
        """Refuse an order before anything changes if its sequence number or its trade ids could pass 2**63-1.

        One command makes at most one trade per resting order, so an order that
        could trade needs at most ``len(book)`` ids (see ``_snapshot`` for the rule).
        """
        book._check_seq()
        orders = len(book._orders)
        if self._next_trade_id <= INT64_MAX - orders:
            return
        if len(book._trees[0 if sell else 1]) != 0 if market else self._crosses(book, sell, ticks):
            raise TradebookError(
                TRADE_IDS_EXHAUSTED.format(
                    next_id=self._next_trade_id,
                    left=INT64_MAX - self._next_trade_id,
                    orders=orders,
                    symbol=book._symbol,
                )
            )

    @staticmethod
    def _fillable(book: OrderBook, tk: _Taker) -> bool:
        """Would a FOK taker fill completely by trades (self-trade prevention applied)?"""
        sell, owner, mode = tk.sell, tk.owner, tk.mode
        tree = book._trees[0 if sell else 1]
        node = tree._tail if sell else tree._head
        wanted = tk.lots - tk.filled
        got = 0
        while node is not None:
            if not tk.market and (node.key < tk.ticks if sell else node.key > tk.ticks):
                return False
            rec = node.value.head
            hidden = 0  # icebergs' hidden lots: their next slices come after every order at this level
            while rec is not None:
                maker = rec[OBJ]
                if mode is not _STP_NONE and maker is not None and maker._owner is not None and maker._owner == owner:
                    if mode is not _CANCEL_MAKER:
                        return False
                else:
                    # the compiled twin compares before adding so that its int64 sum cannot wrap
                    avail = rec[LOTS] - rec[FILLED]
                    if avail >= wanted - got:
                        return True
                    got += avail
                    if maker is not None and maker._ext is not None:
                        hidden += maker._ext.hidden
                rec = rec[NEXT]
            if hidden:
                if hidden >= wanted - got:
                    return True
                got += hidden
            node = node.prev if sell else node.next
        return False

    def _match(self, book: OrderBook, tk: _Taker, run: _Run) -> bool:
        """Trade the taker against the opposite side; True if self-trade prevention stopped it."""
        sell, owner, mode, market, ticks = tk.sell, tk.owner, tk.mode, tk.market, tk.ticks
        tree = book._trees[0 if sell else 1]
        inst = book._inst
        taker_id = tk.id
        trades = run.trades
        touched = run.touched
        first_trade = len(trades)
        stopped = False
        try:
            while tk.lots > tk.filled:
                node = tree._tail if sell else tree._head
                if node is None or (not market and (node.key < ticks if sell else node.key > ticks)):
                    break
                level = node.value
                rec: Rec = level.head
                maker = rec[OBJ]
                maker_owner = None if maker is None else maker._owner
                if mode is not _STP_NONE and maker_owner is not None and maker_owner == owner:
                    if mode is _CANCEL_TAKER:
                        stopped = True
                        break
                    if mode is _DECREMENT:
                        cut = min(tk.lots - tk.filled, rec[LOTS] - rec[FILLED])
                        if cut == rec[LOTS] - rec[FILLED]:
                            # the maker leaves: drop its id first (an id's __hash__ may raise) before anything changes
                            del book._orders[rec[ID]]
                            if touched is not None:
                                touched.append((DELETE, not sell, level.ticks, rec[ID], cut, rec[SEQ]))
                            tk.lots -= cut
                            rec[LOTS] -= cut  # now equal to the filled lots: _unlink takes nothing more off
                            level.total -= cut
                            book._unlink(rec)
                            rec[OBJ] = None
                            sync(maker, rec)
                            maker._status = CANCELLED
                            run.cancelled.append(maker)
                        else:
                            tk.lots -= cut
                            rec[LOTS] -= cut
                            level.total -= cut
                            sync(maker, rec)
                            if touched is not None:
                                left = rec[LOTS] - rec[FILLED]
                                touched.append((MODIFY, not sell, level.ticks, rec[ID], left, rec[SEQ]))
                        if tk.lots == tk.filled:
                            stopped = True
                            break
                        continue
                    if touched is not None:
                        touched.append((DELETE, not sell, level.ticks, rec[ID], rec[LOTS] - rec[FILLED], rec[SEQ]))
                    run.cancelled.append(book._leave(rec, CANCELLED))
                    if mode is _CANCEL_BOTH:
                        stopped = True
                        break
                    continue
                qty = min(tk.lots - tk.filled, rec[LOTS] - rec[FILLED])
                if tk.quote is not None:
                    # sized by a quote amount: only whole lots the budget left pays for, at the maker's price
                    cap = tk.quote // level.ticks
                    if cap == 0:
                        break
                    if cap < qty:
                        qty = cap
                    tk.quote -= qty * level.ticks
                if touched is not None:
                    touched.append((EXECUTE, not sell, level.ticks, rec[ID], qty, rec[SEQ]))
                full = rec[LOTS] - rec[FILLED] == qty
                if full and maker is not None and maker._ext is not None and maker._ext.hidden:
                    # an iceberg's slice is used up: its next slice goes to the back of the level at once
                    trades.append(Trade(0, inst, level.ticks, qty, rec[ID], taker_id, maker_owner, owner, sell))
                    tk.filled += qty
                    rec[FILLED] += qty
                    level.total -= qty
                    book._refresh(rec, maker)
                    if touched is not None:
                        touched.append((ADD, not sell, level.ticks, rec[ID], rec[LOTS] - rec[FILLED], rec[SEQ]))
                    continue
                if full:
                    # the maker leaves: drop its id first (an id's __hash__ may raise) before anything changes
                    del book._orders[rec[ID]]
                trades.append(Trade(0, inst, level.ticks, qty, rec[ID], taker_id, maker_owner, owner, sell))
                tk.filled += qty
                if full:
                    book._drop_filled(rec)
                else:
                    rec[FILLED] += qty
                    level.total -= qty
                    if maker is not None:
                        maker._filled_lots = rec[FILLED]
                        maker._status = PARTIAL
        finally:
            # also when Python code (an owner's __eq__, an id's __hash__) raised half-way: the trades
            # made so far stand, and their ids are used, as in the compiled twin
            if len(trades) > first_trade:
                book._last = trades[-1]._ticks
                with self._ids_lock:
                    next_id = self._next_trade_id
                    for trade in trades[first_trade:]:
                        trade._id = next_id
                        next_id += 1
                    self._next_trade_id = next_id
        return stopped

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole engine as plain JSON-safe data: instruments, books, counters, default mode."""
        return {
            "format": ENGINE_SNAPSHOT_FORMAT,
            "self_trade_prevention": self._stp.value,
            "next_trade_id": self._next_trade_id,
            "books": [book.snapshot() for book in self._books.values()],
            "order_types": self._ext_snapshot(),
        }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> MatchingEngine:
        """Rebuild an engine from :meth:`snapshot` data (also after a JSON round trip)."""
        if not isinstance(data, dict) or data.get("format") != ENGINE_SNAPSHOT_FORMAT:
            raise InvalidOrderError(f"not an engine snapshot (expected format {ENGINE_SNAPSHOT_FORMAT!r})")
        next_id = data.get("next_trade_id")
        books = data.get("books")
        if type(next_id) is not int or not 0 < next_id <= INT64_MAX or not isinstance(books, list):
            raise InvalidOrderError("engine snapshot has a bad next_trade_id or books list")
        engine = cls(self_trade_prevention=data.get("self_trade_prevention", "CANCEL_TAKER"))
        for book_data in books:
            book = OrderBook.from_snapshot(book_data)
            if book._symbol in engine._books:
                raise InvalidOrderError(f"engine snapshot holds {book._symbol} twice")
            engine._books[book._symbol] = book
            engine._limited[book._symbol] = has_limits(book._inst)
        engine._next_trade_id = next_id
        engine._ext_restore(data.get("order_types"))
        return engine
