# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled matching engine: ``MatchingEngine``, ``Trade``, ``ExecutionReport``.

The matching loop walks the book's C records directly: best level from the
price tree's cached end, FIFO by record links, fills and removals in place. No
Python object is made per step except the ``Trade`` it reports (and the
``Order`` of a maker self-trade prevention cancels). ``Trade`` objects do not
take part in the cyclic garbage collector. The pure-Python twin is
``_engine_py.py``; both behave identically.
"""

cimport cython
from cpython.long cimport PyLong_CheckExact
from cpython cimport array
from cpython.buffer cimport (
    PyBUF_C_CONTIGUOUS,
    PyBUF_FORMAT,
    PyBUF_SIMPLE,
    PyBUF_WRITABLE,
    PyBuffer_Release,
    PyObject_CheckBuffer,
    PyObject_GetBuffer,
)
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from libc.stdint cimport int8_t, int32_t, int64_t
from libc.string cimport memcpy

from tradebook._avl cimport Tree
from tradebook._intmap cimport _home, map_get
from tradebook._units cimport raw_units
from tradebook._book cimport (
    SELL,
    Level,
    Order,
    OrderBook,
    Rec,
    ST_CANCELLED,
    ST_EXPIRED,
    ST_FILLED,
    ST_OPEN,
    ST_PARTIAL,
    ST_PENDING,
    ST_REJECTED,
    _check_id,
    cancel_rec,
    hidden_lots,
    _int_key,
    _new_order,
    _side_code,
    _tif_of,
    _touch,
)

import logging
from array import array as _array

from tradebook import _arrays
from tradebook._batch import ERROR_DUPLICATE, ERROR_INVALID, ERROR_NOT_FOUND, BatchResult, as_commands
from tradebook._common import ENGINE_SNAPSHOT_FORMAT, STATUS_CODES, L2Delta, MarketDataUpdate, OrderEvent, TopOfBook
from tradebook._limits import check_limits
from tradebook._marketdata import ADD, DELETE, EXECUTE, MODIFY, MarketDataMixin as _MD
from tradebook._marketdata import amended as _l3_amended
from tradebook._ordertypes import OrderTypesMixin as _OT
from tradebook._snapshot import TRADE_IDS_EXHAUSTED
from tradebook._numeric import INT64_MAX as _INT64_MAX
from tradebook.enums import OrderType, SelfTradePrevention, Side, TimeInForce, coerce_enum
from tradebook.errors import (
    DuplicateOrderError,
    InvalidInstrumentError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    TradebookError,
    UnknownSymbolError,
)
from tradebook.instrument import Instrument

__all__ = ["ExecutionReport", "MatchingEngine", "Trade"]

log = logging.getLogger("tradebook")

cdef int32_t NIL = -1
cdef int64_t _INT64_MAX_C = 0x7FFFFFFFFFFFFFFF

cdef object _BUY = Side.BUY
cdef object _SELL = Side.SELL
cdef object _MARKET = OrderType.MARKET
cdef object _GTC = TimeInForce.GTC
cdef object _IOC = TimeInForce.IOC
cdef object _FOK = TimeInForce.FOK
cdef object _GTD = TimeInForce.GTD
cdef tuple _STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)

cdef enum:
    STP_NONE = 0
    STP_CANCEL_TAKER = 1
    STP_CANCEL_MAKER = 2
    STP_CANCEL_BOTH = 3
    STP_DECREMENT = 4

cdef tuple _BATCH_TIF = (_GTC, _IOC, _FOK, _GTC)
cdef array.array _INT8_TEMPLATE = _array("b")
cdef array.array _INT64_TEMPLATE = _array("q")

cdef dict _STP_CODES = {
    SelfTradePrevention.NONE: STP_NONE,
    SelfTradePrevention.CANCEL_TAKER: STP_CANCEL_TAKER,
    SelfTradePrevention.CANCEL_MAKER: STP_CANCEL_MAKER,
    SelfTradePrevention.CANCEL_BOTH: STP_CANCEL_BOTH,
    SelfTradePrevention.DECREMENT: STP_DECREMENT,
}


@cython.no_gc
@cython.final
cdef class Trade:
    """One execution between a resting maker and an incoming taker, at the maker's price."""

    @property
    def id(self):
        """Engine-wide increasing trade id."""
        return self._id

    @property
    def symbol(self):
        """The instrument traded."""
        return self._inst.symbol

    @property
    def price(self):
        """The execution price (the maker's)."""
        return self._inst.ticks_to_price(self._ticks)

    @property
    def quantity(self):
        """The quantity traded."""
        return self._inst.lots_to_quantity(self._lots)

    @property
    def price_ticks(self):
        """The execution price in ticks."""
        return self._ticks

    @property
    def quantity_lots(self):
        """The quantity traded in lots."""
        return self._lots

    @property
    def maker_order_id(self):
        """The resting order's id."""
        return self._maker_id

    @property
    def taker_order_id(self):
        """The incoming order's id."""
        return self._taker_id

    @property
    def maker_owner(self):
        """The resting order's owner."""
        return self._maker_owner

    @property
    def taker_owner(self):
        """The incoming order's owner."""
        return self._taker_owner

    @property
    def taker_side(self):
        """The incoming order's side (the aggressor)."""
        return _SELL if self._sell else _BUY

    def _key(self):
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

    def __eq__(self, other):
        if not isinstance(other, Trade):
            return NotImplemented
        return self._key() == (<Trade>other)._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return (
            f"Trade(id={self._id}, symbol={self._inst.symbol!r}, price={self.price}, quantity={self.quantity}, "
            f"maker={self._maker_id!r}, taker={self._taker_id!r}, taker_side={self.taker_side.value})"
        )


cdef tuple _STATUSES = STATUS_CODES     # ST_* codes index it
cdef dict _STATUS_CODE = {status: code for code, status in enumerate(STATUS_CODES)}


@cython.no_gc
@cython.final
cdef class ExecutionReport:
    """What one command did: the order's state afterwards, its trades, and the makers
    that self-trade prevention cancelled.

    Reports do not take part in the cyclic garbage collector (one is made per
    command); do not store a report inside its own lists.

    For a raw submit (``submit_raw``) the engine keeps no ``Order`` object:
    ``order`` is made on first request and shows the order as the command left
    it; ``status``, ``filled_lots`` and ``remaining_lots`` read that state
    without making one.
    """

    @property
    def order(self):
        """The order, in its state after the command."""
        cdef Order o
        if self._order is None:
            o = _new_order(self._oid, self._tk.sell, self._inst)
            o._owner = self._owner
            o._tif = self._tif
            if self._tk.market:
                o._type = _MARKET
            o._ticks = self._tk.ticks
            o._lots = self._tk.lots
            o._filled = self._tk.filled
            o._seq = self._tk.seq
            o._status = self._tk.status
            self._order = o
        return self._order

    @property
    def trades(self):
        """The trades, in execution order."""
        if self._trades is None:       # made on demand: most commands trade nothing
            self._trades = []
        return self._trades

    @property
    def cancelled(self):
        """Resting orders removed by self-trade prevention."""
        if self._cancelled is None:
            self._cancelled = []
        return self._cancelled

    @property
    def triggered(self):
        """The reports of the stops this command triggered, in the order they ran (the whole cascade)."""
        if self._triggered is None:
            self._triggered = []
        return self._triggered

    @property
    def status(self):
        """The order's status after the command."""
        if self._inst is None:
            return self._order.status
        return _STATUSES[self._tk.status]

    @property
    def filled_lots(self):
        """The order's filled quantity in lots after the command."""
        if self._inst is None:
            return (<Order>self._order)._filled
        return self._tk.filled

    @property
    def remaining_lots(self):
        """The order's unfilled quantity in lots after the command."""
        if self._inst is None:
            return (<Order>self._order)._lots - (<Order>self._order)._filled
        return self._tk.lots - self._tk.filled

    def __repr__(self):
        return f"ExecutionReport(order={self.order!r}, trades={len(self.trades)}, cancelled={len(self.cancelled)})"


cdef inline void _write_back(Order o, Taker* tk) noexcept:
    o._ticks = tk.ticks
    o._lots = tk.lots
    o._filled = tk.filled
    o._seq = tk.seq
    o._status = tk.status


cdef inline bint _crosses(OrderBook book, bint sell, int64_t ticks) noexcept:
    cdef Tree* t
    if sell:
        t = &book._trees[0]
        return t.tail != NIL and t.nodes[t.tail].key >= ticks
    t = &book._trees[1]
    return t.head != NIL and t.nodes[t.head].key <= ticks


cdef int _sink_push(TradeSink* sink, int64_t trade_id, int64_t maker, int64_t price, int64_t lots,
                    bint maker_sell) except -1:
    """Append a trade row, doubling the rows when full (the old rows stay valid if that fails)."""
    cdef Py_ssize_t cap
    cdef TradeRow* rows
    cdef TradeRow* row
    if sink.n == sink.cap:
        cap = 2 * sink.cap if sink.cap else 256
        rows = <TradeRow*>PyMem_Realloc(sink.rows, cap * sizeof(TradeRow))
        if rows == NULL:
            raise MemoryError()
        sink.rows = rows
        sink.cap = cap
    row = &sink.rows[sink.n]
    row.trade_id = trade_id
    row.maker_id = maker
    row.taker_id = sink.taker_key
    row.price = price
    row.lots = lots
    row.maker_side = 1 if maker_sell else 0
    sink.n += 1
    return 0


cdef int _sink_trades(TradeSink* sink, list trades) except -1:
    """Append ``Trade`` objects (a crossing amend's, made by the engine's amend) as rows; ids are int64 here."""
    cdef Trade t
    cdef int64_t maker = 0
    for t in trades:
        _int_key(t._maker_id, &maker)
        _sink_push(sink, t._id, maker, t._ticks, t._lots, not t._sell)
    return 0


cdef extern from *:
    """
    /* A 3-field NamedTuple instance made in C: its generated __new__ is a Python function. */
    static PyObject* tb_named3(PyObject* cls, PyObject* a, PyObject* b, PyObject* c) {
        PyObject* out = ((PyTypeObject*)cls)->tp_alloc((PyTypeObject*)cls, 3);
        if (out == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(out, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(out, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(out, 2, c);
        return out;
    }
    """
    object _named3 "tb_named3"(object cls, object a, object b, object c)


cdef extern from *:
    """
    /* NamedTuple instances of 5 and 6 fields made in C, for market data updates (see tb_named3). */
    static PyObject* tb_named5(PyObject* cls, PyObject* a, PyObject* b, PyObject* c, PyObject* d, PyObject* e) {
        PyObject* out = ((PyTypeObject*)cls)->tp_alloc((PyTypeObject*)cls, 5);
        if (out == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(out, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(out, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(out, 2, c);
        Py_INCREF(d); PyTuple_SET_ITEM(out, 3, d);
        Py_INCREF(e); PyTuple_SET_ITEM(out, 4, e);
        return out;
    }
    static PyObject* tb_named6(PyObject* cls, PyObject* a, PyObject* b, PyObject* c, PyObject* d, PyObject* e,
                               PyObject* f) {
        PyObject* out = ((PyTypeObject*)cls)->tp_alloc((PyTypeObject*)cls, 6);
        if (out == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(out, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(out, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(out, 2, c);
        Py_INCREF(d); PyTuple_SET_ITEM(out, 3, d);
        Py_INCREF(e); PyTuple_SET_ITEM(out, 4, e);
        Py_INCREF(f); PyTuple_SET_ITEM(out, 5, f);
        return out;
    }
    """
    object _named5 "tb_named5"(object cls, object a, object b, object c, object d, object e)
    object _named6 "tb_named6"(object cls, object a, object b, object c, object d, object e, object f)


cdef extern from *:
    """
    #define tb_prefetch(p) __builtin_prefetch((const void*)(p))
    """
    void _prefetch "tb_prefetch"(const void* p) noexcept nogil


cdef enum:
    _SLOT_AHEAD = 16    # execute_array: rows between fetching an id's map slot and using it
    _REC_AHEAD = 8      # ... and between fetching a cancel's or amend's record and using it


cdef enum:
    # the batch error codes of tradebook._batch, as C constants for the loops (checked at import below)
    _E_NOT_FOUND = -1
    _E_DUPLICATE = -2
    _E_INVALID = -3

if (ERROR_NOT_FOUND, ERROR_DUPLICATE, ERROR_INVALID) != (_E_NOT_FOUND, _E_DUPLICATE, _E_INVALID):
    raise ImportError("tradebook._engine: the batch error codes disagree with tradebook._batch")


cdef inline int _rest(OrderBook book, int64_t key, int side, int64_t price, int64_t qty) except -9:
    """Rest a new int-id GTC limit that cannot trade: _execute's steps for it (``_room``, ``_check_seq``,
    a sequence number, ``_insert``) without the matching loop's set-up. ST_OPEN, or ERROR_INVALID
    (nothing changed) where _execute would raise."""
    cdef int32_t lv = map_get(&book._prices[side], price)
    if (lv != NIL and book._levels[lv].total > _INT64_MAX_C - qty) or book._seq >= _INT64_MAX_C:
        return _E_INVALID
    book._insert(None, True, key, side, price, qty, 0, book._seq, None, lv)
    book._seq += 1
    return ST_OPEN


cdef bint _int64_rows(object commands, Py_buffer* buf) except -1:
    """Take a C-contiguous buffer of int64s, five per command, without a Python call; False: not at once."""
    cdef const char* fmt
    if not PyObject_CheckBuffer(commands) or isinstance(commands, (list, tuple)):
        return False
    try:
        PyObject_GetBuffer(commands, buf, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    except (TypeError, BufferError, ValueError):
        return False
    fmt = buf.format
    if fmt != NULL and (fmt[0] == b"<" or fmt[0] == b"="):
        fmt += 1
    if (buf.itemsize == 8 and fmt != NULL and (fmt[0] == b"q" or fmt[0] == b"l") and fmt[1] == 0
            and buf.len % 40 == 0 and buf.len > 0):
        return True
    PyBuffer_Release(buf)
    return False


cdef enum:
    # L3 event kinds (``_marketdata``), as C codes for the call sites in the matching code
    EV_ADD = 0
    EV_MODIFY = 1
    EV_DELETE = 2
    EV_EXECUTE = 3

cdef tuple _EV_KINDS = (ADD, MODIFY, DELETE, EXECUTE)


cdef int _ev_rec(list events, int kind, OrderBook book, int32_t r, int64_t lots) except -1:
    """Note an L3 event of resting record ``r`` (lots < 0: its visible lots) for market data.

    Out of line and only called when someone subscribes: the matching loop stays small enough
    for the C compiler to treat it as before (the instruction gate)."""
    cdef Rec* rec = &book._recs[r]
    if lots < 0:
        lots = rec.qty - rec.filled
    events.append((_EV_KINDS[kind], (rec.flags & SELL) != 0, rec.price, book._id_of(r), lots, rec.seq))
    return 0


cdef int _ev_add(list events, bint sell, int64_t ticks, object order_id, int64_t lots, int64_t seq) except -1:
    """Note that a taker's remainder rests (an L3 ADD); out of line like ``_ev_rec``."""
    events.append((ADD, sell, ticks, order_id, lots, seq))
    return 0


cdef int _ev_amended(list events, OrderBook book, int32_t r, int64_t ticks, int64_t lots, int64_t seq) except -1:
    """Note what an amend did to record ``r`` that was at ``ticks`` showing ``lots`` with sequence ``seq``."""
    cdef Rec* rec = &book._recs[r]
    _l3_amended(events, (rec.flags & SELL) != 0, book._id_of(r), (ticks, lots, seq),
                (rec.price, rec.qty - rec.filled, rec.seq))
    return 0


cdef object _update_of(MatchingEngine engine, OrderBook book, list events, list trades):
    """``_marketdata.make_update`` in C, field for field (the pure backend runs that function): one
    command's update from its raw events and trades, taking the book's next ``seq``. The caller
    holds the book's lock and publishes what this returns."""
    cdef list deltas = []
    cdef list orders = []
    cdef set seen = None
    cdef tuple event
    cdef bint sell
    cdef int32_t lv
    cdef int64_t total
    cdef dict md_seq
    inst = book._inst
    price_of = inst.ticks_to_price
    qty_of = inst.lots_to_quantity
    for event in events:
        kind, sell, ticks, order_id, lots, sequence = event
        side = _SELL if sell else _BUY
        price = price_of(ticks)
        if len(events) > 1:     # a level's delta once, where the command first touched it
            key = (sell, ticks)
            if seen is None:
                seen = set()
            elif key in seen:
                orders.append(_named6(OrderEvent, kind, order_id, side, price, qty_of(lots), sequence))
                continue
            seen.add(key)
        lv = map_get(&book._prices[1 if sell else 0], <int64_t>ticks)
        total = 0 if lv == NIL else book._levels[lv].total
        deltas.append(_named5(L2Delta, side, price, qty_of(total), ticks, total))
        orders.append(_named6(OrderEvent, kind, order_id, side, price, qty_of(lots), sequence))
    state = engine._ot_state
    if state is None:
        state = engine._ot()
    md_seq = state.md_seq
    symbol = book._symbol
    seq = md_seq.get(symbol, 0) + 1
    md_seq[symbol] = seq
    return _named6(MarketDataUpdate, symbol, deltas, list(trades), seq, state.time, orders)


cdef object _leave(OrderBook book, int32_t r, int status):
    """Take a record out of the book; return its Order with the final status."""
    book._forget(r)
    book._unlink(r)
    o = book._release_order(r, status)
    book._free_rec(r)
    return o


@cython.final
cdef class MatchingEngine:
    """A multi-symbol, price-time-priority matching engine.

    >>> engine = MatchingEngine([Instrument("BTC/USDT", "0.01", "0.001")])
    >>> engine.submit(Order(1, "SELL", "100.00", "1", owner="alice")).status
    <OrderStatus.OPEN: 'OPEN'>
    >>> report = engine.submit(Order(2, "BUY", "101.00", "0.4", owner="bob"))
    >>> report.status, [(t.price, t.quantity) for t in report.trades]
    (<OrderStatus.FILLED: 'FILLED'>, [(Decimal('100.00'), Decimal('0.400'))])
    """

    # the new order types' engine side, shared with the pure backend (``_ordertypes``)
    time = _OT.time
    last_trade_price = _OT.last_trade_price
    advance_time = _OT.advance_time
    _ot = _OT._ot
    _submit_ext = _OT._submit_ext
    _submit_bound = _OT._submit_bound
    _accept_stop = _OT._accept_stop
    _submit_raw_ext = _OT._submit_raw_ext
    _x_cascade = _OT._x_cascade
    _cancel_waiting = _OT._cancel_waiting
    _amend_waiting = _OT._amend_waiting
    _ext_snapshot = _OT._ext_snapshot
    _ext_restore = _OT._ext_restore
    _x_order_type = Order
    # market data snapshots, shared with the pure backend (``_marketdata``)
    market_snapshot = _MD.market_snapshot

    def __init__(self, instruments=(), *, self_trade_prevention=SelfTradePrevention.CANCEL_TAKER):
        self._stp = coerce_enum(SelfTradePrevention, self_trade_prevention, "self_trade_prevention", InvalidOrderError)
        self._stp_code = _STP_CODES[self._stp]
        self._books = {}
        self._single = None
        self._next_trade_id = 1
        self._listeners = []
        self._delivering = {}
        for inst in instruments:
            self.add_instrument(inst)

    # -- instruments and books ---------------------------------------------------

    def add_instrument(self, instrument):
        """Start trading ``instrument``; returns its (empty) book."""
        if not isinstance(instrument, Instrument):
            raise InvalidInstrumentError(f"add_instrument takes an Instrument; got {type(instrument).__name__}")
        if instrument.symbol in self._books:
            raise InvalidInstrumentError(f"the engine already trades {instrument.symbol}")
        book = OrderBook(instrument)
        self._add_book(book)
        return book

    def _add_book(self, OrderBook book):
        self._books[book._symbol] = book
        self._single = book if len(self._books) == 1 else None

    cdef OrderBook _book_for(self, object symbol):
        if symbol is None:
            if self._single is None:
                raise UnknownSymbolError(f"no symbol given and the engine trades {len(self._books)} instruments")
            return self._single
        try:
            return self._books[symbol]
        except (KeyError, TypeError):
            raise UnknownSymbolError(f"unknown symbol {symbol!r}") from None

    def book(self, symbol=None):
        """The order book of ``symbol`` (None: the only one)."""
        return self._book_for(symbol)

    @property
    def symbols(self):
        """The symbols traded, in the order they were added."""
        return list(self._books)

    @property
    def self_trade_prevention(self):
        """The default self-trade prevention mode."""
        return self._stp

    @property
    def next_trade_id(self):
        """The id the next trade will get."""
        return self._next_trade_id

    def __repr__(self):
        return f"MatchingEngine(symbols={self.symbols!r}, self_trade_prevention={self._stp.value})"

    # -- market data ----------------------------------------------------------------

    def subscribe(self, callback):
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

        def unsubscribe():
            self._listeners = [cb for cb in self._listeners if cb is not callback]

        return unsubscribe

    cdef int _publish(self, OrderBook book, list touched, list trades) except -1:
        cdef list listeners = self._listeners
        if not listeners or not touched:       # every change of the visible book is an event
            return 0
        update = _update_of(self, book, touched, trades or [])
        queue = self._delivering.get(book)
        if queue is not None:
            # a subscriber changed this book from its callback: this update goes out once the one in hand
            # has reached every subscriber, so that all of them see the updates in command order
            queue.append((update, listeners))
            return 0
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
        return 0

    def _x_l3(self, OrderBook book):
        """The visible resting orders as (sell, ticks, id, visible lots, sequence): bids best first,
        then asks best first, FIFO within a level (``market_snapshot``). The caller holds the lock."""
        cdef list out = []
        cdef int sell
        cdef int32_t i, r
        cdef Tree* t
        cdef Level* level
        cdef Rec* rec
        for sell in range(2):
            t = &book._trees[sell]
            i = t.head if sell else t.tail
            while i != NIL:
                level = &book._levels[t.nodes[i].payload]
                r = level.head
                while r != NIL:
                    rec = &book._recs[r]
                    out.append((sell == 1, level.price, book._id_of(r), rec.qty - rec.filled, rec.seq))
                    r = rec.next
                i = t.nodes[i].next if sell else t.nodes[i].prev
        return out

    def top_of_book(self, symbol=None):
        """Best bid and ask with their sizes, in O(1)."""
        cdef OrderBook book = self._book_for(symbol)
        bid_ticks, bid_lots, ask_ticks, ask_lots = self.top_of_book_raw(symbol)
        inst = book._inst
        return TopOfBook(
            None if bid_ticks is None else inst.ticks_to_price(bid_ticks),
            None if bid_lots is None else inst.lots_to_quantity(bid_lots),
            None if ask_ticks is None else inst.ticks_to_price(ask_ticks),
            None if ask_lots is None else inst.lots_to_quantity(ask_lots),
        )

    def top_of_book_raw(self, symbol=None):
        """``(bid ticks, bid lots, ask ticks, ask lots)``, None where a side is empty. O(1)."""
        cdef OrderBook book = self._book_for(symbol)
        cdef Tree* bids = &book._trees[0]
        cdef Tree* asks = &book._trees[1]
        cdef int32_t b = bids.tail
        cdef int32_t a = asks.head
        return (
            None if b == NIL else bids.nodes[b].key,
            None if b == NIL else book._levels[bids.nodes[b].payload].total,
            None if a == NIL else asks.nodes[a].key,
            None if a == NIL else book._levels[asks.nodes[a].payload].total,
        )

    def compact(self, symbol=None):
        """Give memory back in ``symbol``'s book, or in every book when None (see ``OrderBook.compact``)."""
        for book in (list(self._books.values()) if symbol is None else [self._book_for(symbol)]):
            book.compact()

    # -- commands ---------------------------------------------------------------------

    def submit(self, order):
        """Match ``order`` against the book by price-time priority; rest a GTC remainder.

        Invalid input raises and changes nothing. Outcomes are statuses: a
        post-only order that would take is ``REJECTED``; an IOC or market
        remainder, and a FOK order that cannot fill completely, are ``EXPIRED``;
        a taker stopped by self-trade prevention is ``CANCELLED``.
        """
        if type(order) is not Order:
            raise InvalidOrderError(f"submit takes an Order; got {type(order).__name__}")
        cdef Order o = <Order>order
        cdef OrderBook book = self._book_for(o._symbol)
        if o._status != ST_PENDING or o._inst is not None:
            raise InvalidOrderError(f"order {o._id!r} is {o.status.value}; only a new order can be submitted")
        if o._ext is not None:
            return self._submit_ext(o)
        cdef Taker tk
        tk.market = o._type is _MARKET
        tk.ticks = 0 if tk.market else book._ticks_of(o)
        tk.lots = book._lots_of(o)
        if book._has_limits:
            check_limits(book._inst, None if tk.market else tk.ticks, tk.lots)
        tk.sell = o._sell
        tk.post_only = o._post_only
        self._prepare(&tk, o._id, o._owner, o._tif, o._stp)
        cdef ExecutionReport report = ExecutionReport.__new__(ExecutionReport)
        report._order = o
        cdef list touched = [] if self._listeners else None
        self._lock_and_run(book, &tk, o, o._tif, report, touched)
        return report

    def submit_raw(self, order_id, side, price, quantity, *, symbol=None, time_in_force=_GTC, owner=None):
        """``submit`` with the price in ticks (None: a market order) and the quantity in lots.

        The returned report makes its ``order`` only when asked; read
        ``report.status`` and ``report.filled_lots`` in hot loops. The new order
        types' raw form is :meth:`submit_raw_typed`.
        """
        cdef OrderBook book = self._book_for(symbol)
        cdef Taker tk
        tk.sell = _side_code(side)
        tif = time_in_force if time_in_force is _GTC else _tif_of(time_in_force)
        tk.market = price is None
        tk.ticks = 0 if tk.market else raw_units(price, "price", InvalidPriceError)
        tk.lots = raw_units(quantity, "quantity", InvalidQuantityError)
        if not PyLong_CheckExact(order_id):
            _check_id(order_id)
        if book._has_limits:
            check_limits(book._inst, None if tk.market else tk.ticks, tk.lots)
        tk.post_only = False
        self._prepare(&tk, order_id, owner, tif, None)
        cdef ExecutionReport report = ExecutionReport.__new__(ExecutionReport)
        cdef list touched = [] if self._listeners else None
        self._lock_and_run(book, &tk, None, tif, report, touched)
        report._inst = book._inst
        report._oid = order_id
        report._owner = owner
        report._tif = tif
        report._tk = tk
        return report

    def submit_raw_typed(self, order_id, side, price, quantity, *, order_type=None, stop_price=None,
                         trailing_offset=None, display=None, expire_at=None, quote=None, symbol=None,
                         time_in_force=_GTC, owner=None):
        """``submit_raw`` for every order type: the new fields in integer units.

        ``stop_price`` and ``trailing_offset`` in ticks, ``display`` in lots,
        ``quote`` (with ``quantity=None``) in units of one tick times one lot,
        ``expire_at`` in the engine's time unit; ``order_type`` defaults to what
        the fields imply (LIMIT, MARKET, STOP, STOP_LIMIT or TRAILING_STOP). The
        engine keeps an ``Order`` for such an order, as for a Decimal submit.
        """
        return self._submit_raw_ext(order_id, side, price, quantity, symbol, time_in_force, owner,
                                    order_type, stop_price, trailing_offset, display, expire_at, quote)

    cdef int _prepare(self, Taker* tk, object order_id, object owner, object tif, object stp) except -1:
        """Fill in the taker's identity, time in force and effective self-trade mode."""
        tk.id = <PyObject*>order_id
        tk.owner = <PyObject*>owner
        tk.fok = tif is _FOK
        tk.gtc = tif is _GTC
        tk.filled = 0
        tk.seq = 0
        tk.quote = -1
        tk.status = ST_PENDING
        tk.sink = NULL
        if owner is None:
            tk.mode = STP_NONE
        else:
            tk.mode = self._stp_code if stp is None else _STP_CODES[stp]
        return 0

    cdef int _lock_and_run(self, OrderBook book, Taker* tk, Order obj, object tif, ExecutionReport report,
                           list touched) except -1:
        """Check the id is free, match and publish, under the book's lock."""
        book._enter()
        try:
            if book._lookup(<object>tk.id) != NIL or (
                book._trig is not None and book._trig.waiting and <object>tk.id in book._trig.waiting
            ):
                raise DuplicateOrderError(f"an order with id {<object>tk.id!r} is already resting or waiting")
            if obj is not None:
                obj._inst = book._inst
                obj._symbol = book._symbol
            self._execute(book, tk, obj, tif, report, touched)
            if touched is not None:
                book._busy = 0      # the change is done: subscribers may change the book
                self._publish(book, touched, report._trades)
            if book._trig is not None and report._trades and book._trig.waiting:
                report._triggered = self._cascade_after(book, report._trades)
        finally:
            book._exit()
        return 0

    cdef list _cascade_after(self, OrderBook book, list trades):
        """Run the stops ``trades`` trigger (the caller holds the book; its change is done)."""
        book._busy = 0
        return self._x_cascade(book, [(<Trade>t)._ticks for t in trades])

    # -- primitives for the shared order-type code (``_ordertypes``) ----------------------

    def _x_run(self, OrderBook book, Order o, bint market, ticks, lots, quote):
        """Match a bound Order as a new taker (no cascade for a triggered stop: the caller runs it)."""
        cdef Taker tk
        tk.market = market
        tk.ticks = 0 if market else ticks
        tk.lots = _INT64_MAX_C if lots is None else lots
        tk.sell = o._sell
        tk.post_only = o._post_only
        tif = o._tif
        self._prepare(&tk, o._id, o._owner, _GTC if tif is _GTD else tif, o._stp)
        tk.quote = -1 if quote is None else quote
        tk.seq = o._seq         # a stop keeps its acceptance sequence unless its run gets a new one
        cdef ExecutionReport report = ExecutionReport.__new__(ExecutionReport)
        report._order = o
        cdef list touched = [] if self._listeners else None
        o._status = ST_PENDING
        book._enter()
        try:
            o._inst = book._inst
            o._symbol = book._symbol
            self._execute(book, &tk, o, tif, report, touched)
            if touched is not None:
                book._busy = 0
                self._publish(book, touched, report._trades)
            if o._type not in _STOP_TYPES and book._trig is not None and report._trades and book._trig.waiting:
                report._triggered = self._cascade_after(book, report._trades)
        finally:
            book._exit()
        return report

    def _x_remove(self, OrderBook book, order_id, status, Order order):
        """Take a resting order out with ``status`` (GTD expiry), publishing it; None if it no longer rests."""
        cdef int32_t r
        cdef list touched = [] if self._listeners else None
        book._enter()
        try:
            r = book._lookup(order_id)
            if r == NIL or book._recs[r].obj != <PyObject*>order:
                return None
            if touched is not None:
                _ev_rec(touched, EV_DELETE, book, r, -1)
            o = _leave(book, r, _STATUS_CODE[status])
            if touched is not None:
                book._busy = 0
                self._publish(book, touched, [])
        finally:
            book._exit()
        return o

    @staticmethod
    def _x_report(order):
        cdef ExecutionReport report = ExecutionReport.__new__(ExecutionReport)
        report._order = order
        return report

    def cancel(self, symbol, order_id):
        """Remove a resting order; returns it ``CANCELLED``."""
        cdef OrderBook book = self._book_for(symbol)
        cdef int32_t r
        cdef list touched = [] if self._listeners else None
        book._enter()
        try:
            if book._trig is not None and book._trig.waiting:
                o = self._cancel_waiting(book, order_id)
                if o is not None:
                    return o
            r = book._find(order_id)
            if touched is not None:
                _ev_rec(touched, EV_DELETE, book, r, -1)
            o = _leave(book, r, ST_CANCELLED)
            if touched is not None:
                book._busy = 0
                self._publish(book, touched, [])
        finally:
            book._exit()
        return o

    def cancel_raw(self, symbol, order_id):
        """Remove a resting order; returns its remaining lots."""
        cdef OrderBook book = self._book_for(symbol)
        if self._listeners or (book._trig is not None and book._trig.waiting):
            o = self.cancel(symbol, order_id)
            return (<Order>o)._lots - (<Order>o)._filled + (0 if (<Order>o)._ext is None else (<Order>o)._ext.hidden)
        return book.remove_raw(order_id)

    def amend(self, symbol, order_id, *, quantity=None, price=None):
        """Change a resting order's quantity and/or price.

        Lowering the quantity keeps time priority; raising it or a new price
        sends the order to the back of its level. A new price that crosses the
        book trades like a new taker (self-trade prevention included), then any
        remainder rests. A post-only order cannot be moved to a price that would take.
        """
        cdef OrderBook book = self._book_for(symbol)
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        lots = None if quantity is None else book._inst.quantity_to_lots(quantity)
        ticks = None if price is None else book._inst.price_to_ticks(price)
        book._enter()
        try:
            return self._amend(book, order_id, lots, ticks)
        finally:
            book._exit()

    def amend_raw(self, symbol, order_id, *, quantity=None, price=None):
        """``amend`` with the quantity in lots and the price in ticks."""
        cdef OrderBook book = self._book_for(symbol)
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        lots = None if quantity is None else raw_units(quantity, "quantity", InvalidQuantityError)
        ticks = None if price is None else raw_units(price, "price", InvalidPriceError)
        book._enter()
        try:
            return self._amend(book, order_id, lots, ticks)
        finally:
            book._exit()

    cdef ExecutionReport _amend(self, OrderBook book, object order_id, object lots, object ticks):
        """Amend a resting order; the caller holds the book for a change (``_enter``)."""
        cdef int32_t r
        cdef Rec* rec
        cdef bint sell
        cdef int64_t new_lots, new_ticks, old_ticks, old_lots, old_seq
        cdef Order o
        cdef Taker tk
        cdef ExecutionReport report = ExecutionReport.__new__(ExecutionReport)
        cdef list touched = [] if self._listeners else None
        inst = book._inst
        if book._trig is not None and book._trig.waiting:
            waiting = self._amend_waiting(book, order_id, lots, ticks)
            if waiting is not None:
                return waiting
        r = book._find(order_id)
        rec = &book._recs[r]
        if rec.obj != NULL and (<Order>rec.obj)._ext is not None and (<Order>rec.obj)._ext.display is not None:
            return self._amend_iceberg(book, r, <Order>rec.obj, lots, ticks)
        sell = (rec.flags & SELL) != 0
        new_lots = rec.qty if lots is None else <int64_t>lots
        new_ticks = rec.price if ticks is None else <int64_t>ticks
        if new_lots <= rec.filled:
            raise InvalidQuantityError(
                f"the new quantity {inst.lots_to_quantity(new_lots)} must exceed the filled "
                f"{inst.lots_to_quantity(rec.filled)}"
            )
        if book._has_limits:
            check_limits(inst, new_ticks, new_lots)
        old_ticks = rec.price        # where it was, for market data
        old_lots = rec.qty - rec.filled
        old_seq = rec.seq
        if new_ticks != rec.price and _crosses(book, sell, new_ticks):
            o = book._order_of(r)
            if o._post_only:
                raise InvalidOrderError(f"post-only order {order_id!r} cannot move to a price that would take")
            book._room(sell, new_ticks, new_lots - rec.filled)
            self._check_counters(book, sell, False, new_ticks)
            if touched is not None:
                _ev_rec(touched, EV_DELETE, book, r, -1)
            book._forget(r)
            book._unlink(r)
            book._release_order(r, ST_PENDING)   # detach the Order; the match sets its state
            book._free_rec(r)
            tk.ticks = new_ticks
            tk.lots = new_lots
            tk.sell = sell
            tk.market = False
            tk.post_only = False
            self._prepare(&tk, o._id, o._owner, _GTC if o._tif is _GTD else o._tif, o._stp)
            tk.filled = o._filled
            self._execute(book, &tk, o, o._tif, report, touched)
        else:
            book._amend(r, lots, ticks)
            if touched is not None:
                _ev_amended(touched, book, r, old_ticks, old_lots, old_seq)
            o = book._order_of(r)
        if touched is not None:
            book._busy = 0      # the change is done: subscribers may change the book
            self._publish(book, touched, report._trades)
        report._order = o
        if book._trig is not None and report._trades and book._trig.waiting:
            report._triggered = self._cascade_after(book, report._trades)
        return report

    cdef ExecutionReport _amend_iceberg(self, OrderBook book, int32_t r, Order o, object lots, object ticks):
        """Amend a resting iceberg (the caller holds the book for a change).

        ``lots`` is the new total. Lowering it takes from the hidden part first and
        keeps priority; raising it adds to the hidden part and goes to the back; a
        new price goes to the back with the current slice (or trades, if it crosses).
        """
        cdef Rec* rec = &book._recs[r]
        cdef bint sell = (rec.flags & SELL) != 0
        cdef Taker tk
        cdef ExecutionReport report = ExecutionReport.__new__(ExecutionReport)
        cdef list touched = [] if self._listeners else None
        ext = o._ext
        inst = book._inst
        total = rec.qty + ext.hidden
        new_total = total if lots is None else lots
        new_ticks = rec.price if ticks is None else ticks
        if new_total <= rec.filled:
            raise InvalidQuantityError(
                f"the new quantity {inst.lots_to_quantity(new_total)} must exceed the filled "
                f"{inst.lots_to_quantity(rec.filled)}"
            )
        if book._has_limits:
            check_limits(inst, new_ticks, new_total)
        cdef int64_t old_ticks = rec.price, old_lots = rec.qty - rec.filled, old_seq = rec.seq
        if new_ticks != rec.price and _crosses(book, sell, new_ticks):
            if o._post_only:
                raise InvalidOrderError(f"post-only order {o._id!r} cannot move to a price that would take")
            book._room(sell, new_ticks, new_total - rec.filled)
            self._check_counters(book, sell, False, new_ticks)
            if touched is not None:
                _ev_rec(touched, EV_DELETE, book, r, -1)
            book._forget(r)
            book._unlink(r)
            book._release_order(r, ST_PENDING)
            book._free_rec(r)
            ext.hidden = 0
            tk.ticks = new_ticks
            tk.lots = new_total
            tk.sell = sell
            tk.market = False
            tk.post_only = False
            self._prepare(&tk, o._id, o._owner, _GTC if o._tif is _GTD else o._tif, o._stp)
            tk.filled = o._filled
            self._execute(book, &tk, o, o._tif, report, touched)
        else:
            if new_total < total:
                cut = total - new_total
                from_hidden = min(ext.hidden, cut)
                book._amend(r, rec.qty - (cut - from_hidden) if cut > from_hidden else None, ticks)
                ext.hidden -= from_hidden
            elif new_total > total:
                if new_ticks != rec.price:
                    book._amend(r, None, new_ticks)
                else:
                    book._requeue(r)
                ext.hidden += new_total - total
            elif new_ticks != rec.price:
                book._amend(r, None, new_ticks)
            if touched is not None:
                _ev_amended(touched, book, r, old_ticks, old_lots, old_seq)
            book._sync(o, &book._recs[r], ST_PARTIAL if book._recs[r].filled else ST_OPEN)
        if touched is not None:
            book._busy = 0
            self._publish(book, touched, report._trades)
        report._order = o
        if book._trig is not None and report._trades and book._trig.waiting:
            report._triggered = self._cascade_after(book, report._trades)
        return report

    # -- batches ----------------------------------------------------------------------------

    def execute_batch(self, commands, *, symbol=None):
        """Run many raw commands in one call; see :class:`BatchOp` for the format.

        Each command does exactly what the matching single call would
        (``submit_raw``, ``cancel_raw``, ``amend_raw``). A command that the single
        call would refuse changes nothing and gets a negative status code
        (``ERROR_NOT_FOUND``, ``ERROR_DUPLICATE``, ``ERROR_INVALID``); the batch goes on.
        The whole loop runs in C, holding the book's lock, with no per-command
        Python objects but the trades.
        """
        cdef Py_buffer buf
        if not _int64_rows(commands, &buf):
            # lists, and anything _int64_rows does not take at once: the checks (and errors) of as_commands
            PyObject_GetBuffer(as_commands(commands), &buf, PyBUF_SIMPLE)
        try:
            return self._batch_rows(commands, symbol, <const int64_t*>buf.buf, buf.len // 40)
        finally:
            PyBuffer_Release(&buf)

    cdef object _batch_rows(self, object commands, object symbol, const int64_t* cmd, Py_ssize_t n):
        """The ``execute_batch`` loop over ``n`` rows of five int64s."""
        cdef OrderBook book = self._book_for(symbol)
        cdef Py_ssize_t i
        cdef array.array statuses = array.clone(_INT8_TEMPLATE, n, zero=False)     # the loop sets each
        cdef array.array lots = array.clone(_INT64_TEMPLATE, n, zero=True)
        cdef int8_t* st = statuses.data.as_schars
        cdef long long* out = lots.data.as_longlongs
        cdef int64_t op, key, side, price, qty
        cdef int32_t r
        cdef Taker tk
        cdef ExecutionReport collector = self._spare
        cdef ExecutionReport amended
        cdef object order_id, tif     # owned here: the taker borrows them while it matches
        cdef Py_ssize_t switch = -1
        if collector is None:
            collector = ExecutionReport.__new__(ExecutionReport)
        else:
            self._spare = None      # taken: a batch run meanwhile (another thread, another book) makes its own
        book._enter()       # a batch from code the book runs while changing is refused up front, whatever it holds
        if self._listeners or (book._trig is not None and book._trig.waiting):
            # subscribers get one update per command, and stops trigger between commands (as do the new
            # order types' ops): take the single-call path
            book._exit()
            return self._batch_one_by_one(as_commands(commands), symbol, statuses, lots)
        try:
            for i in range(n):
                op = cmd[5 * i]
                key = cmd[5 * i + 1]
                side = cmd[5 * i + 2]
                price = cmd[5 * i + 3]
                qty = cmd[5 * i + 4]
                if 0 <= op <= 3:
                    if (side != 0 and side != 1) or qty <= 0 or (op != 3 and price <= 0):
                        st[i] = _E_INVALID
                        continue
                    if book._has_limits:
                        try:
                            check_limits(book._inst, None if op == 3 else price, qty)
                        except TradebookError:
                            st[i] = _E_INVALID
                            continue
                    if map_get(&book._ids, key) != NIL:
                        st[i] = _E_DUPLICATE
                        continue
                    if op == 0 and not _crosses(book, side == 1, price):
                        st[i] = _rest(book, key, side, price, qty)   # no id object, no matching set-up
                        continue
                    order_id = key
                    tif = _BATCH_TIF[op]
                    tk.sell = side == 1
                    tk.market = op == 3
                    tk.ticks = 0 if op == 3 else price
                    tk.lots = qty
                    tk.post_only = False
                    self._prepare(&tk, order_id, None, tif, None)
                    try:
                        self._execute(book, &tk, None, tif, collector, None)
                    except TradebookError:
                        st[i] = _E_INVALID
                        continue
                    st[i] = tk.status
                    out[i] = tk.filled
                elif op == 4:
                    r = map_get(&book._ids, key)
                    if r == NIL:
                        st[i] = _E_NOT_FOUND
                        continue
                    out[i] = cancel_rec(book, r)
                    st[i] = ST_CANCELLED
                elif op == 5:
                    try:
                        amended = self._amend(
                            book, key,
                            None if qty == 0 else raw_units(qty, "quantity", InvalidQuantityError),
                            None if price == 0 else raw_units(price, "price", InvalidPriceError),
                        ) if (qty or price) else None
                    except OrderNotFoundError:
                        st[i] = _E_NOT_FOUND
                        continue
                    except TradebookError:
                        st[i] = _E_INVALID
                        continue
                    if amended is None:     # neither a new quantity nor a new price
                        st[i] = _E_INVALID
                        continue
                    st[i] = (<Order>amended._order)._status
                    out[i] = (<Order>amended._order)._filled
                    if amended._trades:
                        if collector._trades is None:
                            collector._trades = []
                        collector._trades.extend(amended._trades)
                elif 6 <= op <= 10:
                    # a new order type: it and everything after it take the single-call path, where
                    # stops trigger between commands
                    switch = i
                    break
                else:
                    st[i] = _E_INVALID
        finally:
            book._exit()
        trades = collector._trades if collector._trades is not None else []
        collector._trades = None
        collector._cancelled = None
        self._spare = collector     # one object fewer to make per batch: small batches are mostly fixed cost
        if switch >= 0:
            trades.extend(self._batch_one_by_one(as_commands(commands), symbol, statuses, lots, switch).trades)
        return _named3(BatchResult, statuses, lots, trades)

    def _batch_one_by_one(self, view, symbol, statuses, lots, start=0):
        trades = []
        values = view.tolist()
        for i in range(start, len(values) // 5):
            op = values[5 * i]
            order_id = values[5 * i + 1]
            side = values[5 * i + 2]
            price = values[5 * i + 3]
            quantity = values[5 * i + 4]
            try:
                if op == 4:
                    lots[i] = self.cancel_raw(symbol, order_id)
                    statuses[i] = ST_CANCELLED
                    continue
                if op == 5:
                    report = self.amend_raw(symbol, order_id, quantity=quantity or None, price=price or None)
                elif 6 <= op <= 8 and side in (0, 1):
                    if op == 6:
                        report = self.submit_raw_typed(order_id, _SELL if side else _BUY, None, quantity,
                                                       symbol=symbol, stop_price=price)
                    elif op == 7:
                        report = self.submit_raw_typed(order_id, _SELL if side else _BUY, None, quantity,
                                                       symbol=symbol, trailing_offset=price)
                    else:
                        report = self.submit_raw_typed(order_id, _SELL if side else _BUY, None, None,
                                                       symbol=symbol, quote=quantity)
                elif 0 <= op <= 3 and side in (0, 1):
                    report = self.submit_raw(
                        order_id, _SELL if side else _BUY, None if op == 3 else price, quantity,
                        symbol=symbol, time_in_force=_BATCH_TIF[op],
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
            statuses[i] = _STATUSES.index(report.status)
            lots[i] = report.filled_lots
            trades.extend(report.trades)
            for triggered in report.triggered:
                trades.extend(triggered.trades)
        return BatchResult(statuses, lots, trades)

    def execute_array(self, commands, *, symbol=None):
        """Run a numpy array of ``COMMAND_DTYPE`` rows; return numpy arrays (:class:`ArrayResult`).

        Per command, exactly what :meth:`execute_batch` does (statuses, negative
        error codes, nothing changed on an error); the trades come back as
        ``TRADE_DTYPE`` rows. The loop runs in C without a Python object per
        command or per trade. Every order resting in the book must have an
        int64 id (checked up front). With market-data subscribers, each command
        is published as its single call would be (the slower per-command path).

        >>> import numpy as np
        >>> from tradebook import COMMAND_DTYPE, BatchOp
        >>> engine = MatchingEngine([Instrument("BTC/USDT", "0.01", "0.001")])
        >>> rows = np.zeros(2, COMMAND_DTYPE)
        >>> rows[0] = (BatchOp.LIMIT, 1, 7, 10_000, 5)      # op, side (1 SELL), id, price, quantity
        >>> rows[1] = (BatchOp.IOC, 0, 8, 10_000, 2)
        >>> result = engine.execute_array(rows)
        >>> result.statuses.tolist(), result.lots.tolist()
        ([1, 3], [0, 2])
        >>> result.trades[["maker_id", "taker_id", "price", "lots", "maker_side"]].tolist()
        [(7, 8, 10000, 2, 1)]
        """
        _arrays.check_commands(commands)
        cdef OrderBook book = self._book_for(symbol)
        np = _arrays._make_dtypes()["np"]
        cdef Py_ssize_t n = commands.shape[0]
        statuses = np.zeros(n, np.int8)
        lots = np.zeros(n, np.int64)
        cdef Py_buffer cbuf, sbuf, lbuf, tbuf
        cdef Py_ssize_t done = n
        cdef TradeSink sink
        sink.rows = NULL
        sink.n = sink.cap = 0
        sink.taker_key = 0
        book._enter()
        try:
            if book._obj_ids:
                raise _arrays.refuse_book_ids(book._symbol)
            if book._trig is not None and book._trig.waiting:
                book._exit()    # stops trigger between commands: take the single-call path
                try:
                    return _arrays.via_single(self, commands, symbol)
                finally:
                    book._enter()
            if self._listeners:
                book._exit()    # subscribers get one update per command: take the single-call path
                try:
                    return _arrays.via_batch(self, commands, symbol)
                finally:
                    book._enter()
            PyObject_GetBuffer(commands, &cbuf, PyBUF_SIMPLE)
            try:
                PyObject_GetBuffer(statuses, &sbuf, PyBUF_SIMPLE | PyBUF_WRITABLE)
                try:
                    PyObject_GetBuffer(lots, &lbuf, PyBUF_SIMPLE | PyBUF_WRITABLE)
                    try:
                        done = self._run_rows(book, <const CmdRow*>cbuf.buf, n, <int8_t*>sbuf.buf,
                                              <int64_t*>lbuf.buf, &sink)
                    finally:
                        PyBuffer_Release(&lbuf)
                finally:
                    PyBuffer_Release(&sbuf)
            finally:
                PyBuffer_Release(&cbuf)
            trades = np.empty(sink.n, _arrays.TRADE_DTYPE)
            if sink.n:
                PyObject_GetBuffer(trades, &tbuf, PyBUF_SIMPLE | PyBUF_WRITABLE)
                memcpy(tbuf.buf, sink.rows, sink.n * sizeof(TradeRow))
                PyBuffer_Release(&tbuf)
        finally:
            PyMem_Free(sink.rows)
            book._exit()
        if done < n:
            # a row of a new order type: it and the rows after it go through the single-command calls
            rest = _arrays.via_single(self, commands[done:], symbol)
            statuses[done:] = rest.statuses
            lots[done:] = rest.lots
            trades = np.concatenate((trades, rest.trades))
        return _arrays.ArrayResult(statuses, lots, trades)

    cdef Py_ssize_t _run_rows(self, OrderBook book, const CmdRow* rows, Py_ssize_t n, int8_t* st, int64_t* out,
                              TradeSink* sink) except -1:
        """The ``execute_array`` loop: the caller holds the book for a change; trades go to ``sink``.

        Returns ``n``, or the index of the first row of a new order type (an op from STOP on, or an
        iceberg's ``display``): the caller runs the rows from there through the single-command calls.
        """
        cdef Py_ssize_t i
        cdef const CmdRow* c
        cdef int64_t op, key, side, price, qty, new_lots, new_ticks
        cdef int32_t r
        cdef Rec* rec
        cdef Taker tk
        cdef ExecutionReport collector = ExecutionReport.__new__(ExecutionReport)
        cdef ExecutionReport amended
        cdef bint has_limits = book._has_limits
        tk.id = <PyObject*>None        # the id is sink.taker_key; no int object is made
        tk.owner = <PyObject*>None
        tk.mode = STP_NONE
        tk.post_only = False
        tk.sink = sink
        tk.quote = -1       # no row here is sized by a quote amount (those take the single-call path)
        for i in range(n):
            # A random id costs cache misses (its map slot, then for a cancel or amend its record);
            # the rows ahead are known, so fetch both early: the slot 16 rows ahead, the record 8
            # rows ahead (by then its slot is in cache). Hints only: a stale address does no harm.
            if i + _SLOT_AHEAD < n:
                _prefetch(&book._ids.slots[_home(&book._ids, rows[i + _SLOT_AHEAD].id)])
            if i + _REC_AHEAD < n and rows[i + _REC_AHEAD].op >= 4:
                r = map_get(&book._ids, rows[i + _REC_AHEAD].id)
                if r != NIL:
                    _prefetch(&book._recs[r])
            c = &rows[i]
            op = c.op
            key = c.id
            side = c.side
            price = c.price
            qty = c.quantity
            sink.taker_key = key
            if 0 <= op <= 3:
                if c.display != 0:
                    return i
                if (side != 0 and side != 1) or qty <= 0 or (op != 3 and price <= 0):
                    st[i] = _E_INVALID
                    continue
                if has_limits:
                    try:
                        check_limits(book._inst, None if op == 3 else price, qty)
                    except TradebookError:
                        st[i] = _E_INVALID
                        continue
                if map_get(&book._ids, key) != NIL:
                    st[i] = _E_DUPLICATE
                    continue
                if op == 0 and not _crosses(book, side == 1, price):
                    st[i] = _rest(book, key, side, price, qty)   # most commands of a replay are these
                    continue
                tk.sell = side == 1
                tk.market = op == 3
                tk.ticks = 0 if op == 3 else price
                tk.lots = qty
                tk.fok = op == 2
                tk.gtc = op == 0
                tk.filled = 0
                tk.seq = 0
                tk.status = ST_PENDING
                try:
                    self._execute(book, &tk, None, <object>(<PyObject*>_BATCH_TIF[op]), collector, None)
                except TradebookError:
                    st[i] = _E_INVALID
                    continue
                st[i] = tk.status
                out[i] = tk.filled
            elif op == 4:
                r = map_get(&book._ids, key)
                if r == NIL:
                    st[i] = _E_NOT_FOUND
                    continue
                out[i] = cancel_rec(book, r)
                st[i] = ST_CANCELLED
            elif op == 5:
                # execute_batch's checks in its order: neither field, a negative field, the id, then _amend's
                if (qty == 0 and price == 0) or qty < 0 or price < 0:
                    st[i] = _E_INVALID
                    continue
                r = map_get(&book._ids, key)
                if r == NIL:
                    st[i] = _E_NOT_FOUND
                    continue
                rec = &book._recs[r]
                new_ticks = price if price else rec.price
                if new_ticks != rec.price and _crosses(book, (rec.flags & SELL) != 0, new_ticks):
                    # a move that trades: the engine's amend (a taker again, self-trade prevention included)
                    try:
                        amended = self._amend(book, key, qty if qty else None, price if price else None)
                    except TradebookError:
                        st[i] = _E_INVALID
                        continue
                    st[i] = (<Order>amended._order)._status
                    out[i] = (<Order>amended._order)._filled
                    if amended._trades:
                        _sink_trades(sink, amended._trades)
                    continue
                new_lots = qty if qty else rec.qty
                if new_lots <= rec.filled:
                    st[i] = _E_INVALID
                    continue
                try:
                    if has_limits:
                        check_limits(book._inst, new_ticks, new_lots)
                    book._amend(r, qty if qty else None, price if price else None)
                except TradebookError:
                    st[i] = _E_INVALID
                    continue
                rec = &book._recs[r]       # _amend may have moved the records
                st[i] = ST_PARTIAL if rec.filled else ST_OPEN
                out[i] = rec.filled
            elif op > 5:
                return i
            else:
                st[i] = _E_INVALID
        return n

    # -- matching -------------------------------------------------------------------------

    cdef int _execute(self, OrderBook book, Taker* tk, Order obj, object tif, ExecutionReport report,
                      list touched) except -1:
        """Match a taker that is not in the book and settle its fate; rest a GTC remainder.

        ``obj`` is the taker's Order (Decimal API) or None (raw API). The caller
        holds the book's lock.
        """
        cdef int64_t remaining, rest, key = 0
        cdef int32_t own_level = NIL
        cdef bint stopped, intid
        if tk.post_only and _crosses(book, tk.sell, tk.ticks):
            tk.status = ST_REJECTED
        elif tk.fok and not self._fillable(book, tk):
            tk.status = ST_EXPIRED
        else:
            if not tk.market and tk.gtc:
                # Refuse a remainder that would overflow its level before anything changes (the
                # sequence counter included); if that level exists, the uncrossed book cannot
                # trade this order at all. Matching only touches the other side, so the level
                # found here is still the one a remainder joins.
                own_level = book._room(tk.sell, tk.ticks, tk.lots - tk.filled)
            self._check_counters(book, tk.sell, tk.market, tk.ticks)
            tk.seq = book._seq      # accepted: this fixes its time priority
            book._seq += 1
            stopped = self._match(book, tk, report, touched)
            remaining = tk.lots - tk.filled
            if stopped:
                tk.status = ST_CANCELLED
            elif tk.quote >= 0:
                # a market order sized by a quote amount: FILLED when it spent the budget exactly
                tk.status = ST_FILLED if tk.quote == 0 else ST_EXPIRED
                tk.lots = tk.filled
            elif remaining == 0:
                tk.status = ST_FILLED
            elif tk.market or not tk.gtc:
                tk.status = ST_EXPIRED
            else:
                order_id = <object>tk.id
                if tk.sink != NULL:
                    intid = True        # execute_array: the id is the command's int64
                    key = tk.sink.taker_key
                else:
                    intid = _int_key(order_id, &key)
                if obj is None and tk.sink == NULL and (
                    tk.owner != <PyObject*>None or not (intid and PyLong_CheckExact(order_id))
                ):
                    # the book keeps an Order only to remember an owner or a non-int id
                    obj = _new_order(order_id, tk.sell, book._inst)
                    obj._owner = <object>tk.owner
                    obj._tif = tif
                rest = tk.lots
                if obj is not None and obj._ext is not None and obj._ext.display is not None:
                    # an iceberg rests one slice; the rest waits, hidden, on the order
                    show = min(<object>obj._ext.display, remaining)
                    obj._ext.hidden = remaining - show
                    rest = tk.filled + show
                book._insert(order_id, intid, key, tk.sell, tk.ticks, rest, tk.filled, tk.seq, obj, own_level)
                tk.status = ST_PARTIAL if tk.filled else ST_OPEN
                if touched is not None:
                    _ev_add(touched, tk.sell, tk.ticks, order_id, rest - tk.filled, tk.seq)
                if obj is not None:
                    _write_back(obj, tk)
                    obj._lots = rest
                return 0
        if obj is not None:
            _write_back(obj, tk)
        return 0

    cdef int _check_counters(self, OrderBook book, bint sell, bint market, int64_t ticks) except -1:
        """Refuse an order before anything changes if its sequence number or its trade ids could pass 2**63-1.

        One command makes at most one trade per resting order, so an order that
        could trade needs at most ``len(book)`` ids (see ``_snapshot`` for the rule).
        """
        book._check_seq()
        if self._next_trade_id > _INT64_MAX_C - book._n:
            if book._trees[0 if sell else 1].count != 0 if market else _crosses(book, sell, ticks):
                raise TradebookError(TRADE_IDS_EXHAUSTED.format(
                    next_id=self._next_trade_id, left=_INT64_MAX_C - self._next_trade_id, orders=book._n,
                    symbol=book._symbol,
                ))
        return 0

    cdef bint _fillable(self, OrderBook book, Taker* tk) except -1:
        """Would a FOK taker fill completely by trades (self-trade prevention applied)?"""
        cdef bint sell = tk.sell
        cdef Tree* t = &book._trees[0 if sell else 1]
        cdef int32_t node = t.tail if sell else t.head
        cdef int64_t wanted = tk.lots - tk.filled
        cdef int64_t got = 0
        cdef int64_t avail
        cdef int32_t r
        cdef Level* level
        cdef Rec* rec
        owner = <object>tk.owner
        while node != NIL:
            level = &book._levels[t.nodes[node].payload]
            if not tk.market and (level.price < tk.ticks if sell else level.price > tk.ticks):
                return False
            r = level.head
            hidden = 0      # icebergs' hidden lots (a Python int): their next slices come after this level
            while r != NIL:
                rec = &book._recs[r]
                maker_owner = None if rec.obj == NULL else (<Order>rec.obj)._owner
                if tk.mode != STP_NONE and maker_owner is not None and (maker_owner is owner or maker_owner == owner):
                    if tk.mode != STP_CANCEL_MAKER:
                        return False
                else:
                    # Compare before adding: the sum of resting lots across levels can pass 2**63-1
                    # (each level's total fits in an int64, the sides' total need not); got < wanted
                    # keeps both ``wanted - got`` and the new ``got`` in range.
                    avail = rec.qty - rec.filled
                    if avail >= wanted - got:
                        return True
                    got += avail
                    if rec.obj != NULL and (<Order>rec.obj)._ext is not None:
                        hidden += (<Order>rec.obj)._ext.hidden
                r = rec.next
            if hidden:
                if hidden >= wanted - got:
                    return True
                got += <int64_t>hidden
            node = t.nodes[node].prev if sell else t.nodes[node].next
        return False

    cdef bint _match(self, OrderBook book, Taker* tk, ExecutionReport report, list touched) except -1:
        """Trade the taker against the opposite side; True if self-trade prevention stopped it."""
        cdef bint sell = tk.sell
        cdef Tree* t = &book._trees[0 if sell else 1]
        cdef int32_t node, r
        cdef Level* level
        cdef Rec* rec
        cdef int64_t qty, cut, price
        cdef bint refresh
        cdef Trade trade
        cdef int mode = tk.mode
        owner = <object>tk.owner
        taker_id = <object>tk.id
        inst = book._inst
        while tk.lots > tk.filled:
            node = t.tail if sell else t.head
            if node == NIL:
                break
            level = &book._levels[t.nodes[node].payload]
            price = level.price
            if not tk.market and (price < tk.ticks if sell else price > tk.ticks):
                break
            r = level.head
            rec = &book._recs[r]
            maker_owner = None if rec.obj == NULL else (<Order>rec.obj)._owner
            if mode != STP_NONE and maker_owner is not None and (maker_owner is owner or maker_owner == owner):
                if mode == STP_CANCEL_TAKER:
                    return True
                if mode == STP_DECREMENT:
                    cut = min(tk.lots - tk.filled, rec.qty - rec.filled)
                    if cut == rec.qty - rec.filled:
                        if touched is not None:
                            _ev_rec(touched, EV_DELETE, book, r, -1)
                        # the maker leaves: drop its id first (an id's __hash__ may raise) before anything changes
                        book._forget(r)
                        tk.lots -= cut
                        rec.qty -= cut      # now rec.qty == rec.filled: _unlink takes nothing more off
                        level.total -= cut
                        book._unlink(r)
                        report.cancelled.append(book._release_order(r, ST_CANCELLED))
                        book._free_rec(r)
                    else:
                        tk.lots -= cut
                        rec.qty -= cut
                        level.total -= cut
                        _touch(level)
                        book._sync(<Order>rec.obj, rec, ST_PARTIAL if rec.filled else ST_OPEN)
                        if touched is not None:
                            _ev_rec(touched, EV_MODIFY, book, r, -1)
                    if tk.lots == tk.filled:
                        return True
                    continue
                if touched is not None:
                    _ev_rec(touched, EV_DELETE, book, r, -1)
                report.cancelled.append(_leave(book, r, ST_CANCELLED))
                if mode == STP_CANCEL_BOTH:
                    return True
                continue
            qty = tk.lots - tk.filled
            if rec.qty - rec.filled < qty:
                qty = rec.qty - rec.filled
            if tk.quote >= 0:
                # sized by a quote amount: only whole lots the budget left pays for, at the maker's price
                if tk.quote < price:
                    break
                if tk.quote // price < qty:
                    qty = tk.quote // price
                tk.quote -= qty * price
            if touched is not None:
                _ev_rec(touched, EV_EXECUTE, book, r, qty)
            book._last = price
            refresh = False
            if rec.qty - rec.filled == qty and rec.obj != NULL and (<Order>rec.obj)._ext is not None:
                refresh = hidden_lots(<Order>rec.obj) > 0     # an iceberg with more to show stays in the book
            if tk.sink != NULL:
                # execute_array: a C row, taken before anything changes (growing it may fail); every
                # resting id is an int64 there (checked up front), so rec.key is the maker's id
                _sink_push(tk.sink, self._next_trade_id, rec.key, price, qty, not sell)
                self._next_trade_id += 1
                if rec.qty - rec.filled == qty and not refresh:
                    book._forget(r)
            else:
                if rec.qty - rec.filled == qty and not refresh:
                    # the maker leaves: drop its id first (an id's __hash__ may raise) before anything changes
                    book._forget(r)
                trade = Trade.__new__(Trade)
                trade._id = self._next_trade_id
                self._next_trade_id += 1
                trade._inst = inst
                trade._ticks = price
                trade._lots = qty
                trade._maker_id = book._id_of(r)
                trade._taker_id = taker_id
                trade._maker_owner = maker_owner
                trade._taker_owner = owner
                trade._sell = sell
                if report._trades is None:
                    report._trades = [trade]
                else:
                    report._trades.append(trade)
            tk.filled += qty
            if refresh:
                # the iceberg's slice is used up: its next slice goes to the back of the level at once
                rec.filled += qty
                level.total -= qty
                book._refresh(r)
                if touched is not None:
                    _ev_rec(touched, EV_ADD, book, r, -1)
            elif rec.qty - rec.filled == qty:
                book._unlink(r)         # takes the level total down by what was left
                rec.filled = rec.qty
                if rec.obj != NULL:
                    book._release_order(r, ST_FILLED)
                book._free_rec(r)
            else:
                rec.filled += qty
                level.total -= qty
                _touch(level)
                if rec.obj != NULL:
                    book._sync(<Order>rec.obj, rec, ST_PARTIAL)
        return False

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot(self):
        """The whole engine as plain JSON-safe data: instruments, books, counters, default mode."""
        return {
            "format": ENGINE_SNAPSHOT_FORMAT,
            "self_trade_prevention": self._stp.value,
            "next_trade_id": self._next_trade_id,
            "books": [book.snapshot() for book in self._books.values()],
            "order_types": self._ext_snapshot(),
        }

    @classmethod
    def from_snapshot(cls, data):
        """Rebuild an engine from :meth:`snapshot` data (also after a JSON round trip)."""
        if not isinstance(data, dict) or data.get("format") != ENGINE_SNAPSHOT_FORMAT:
            raise InvalidOrderError(f"not an engine snapshot (expected format {ENGINE_SNAPSHOT_FORMAT!r})")
        next_id = data.get("next_trade_id")
        books = data.get("books")
        if type(next_id) is not int or not 0 < next_id <= _INT64_MAX or not isinstance(books, list):
            raise InvalidOrderError("engine snapshot has a bad next_trade_id or books list")
        cdef MatchingEngine engine = cls(self_trade_prevention=data.get("self_trade_prevention", "CANCEL_TAKER"))
        for book_data in books:
            book = OrderBook.from_snapshot(book_data)
            if book.symbol in engine._books:
                raise InvalidOrderError(f"engine snapshot holds {book.symbol} twice")
            engine._add_book(book)
        engine._next_trade_id = next_id
        engine._ext_restore(data.get("order_types"))
        return engine
