# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled order book: ``Order``, ``PriceLevel``, ``BookSide``, ``OrderBook``.

Resting orders live in one growable array of C records linked by integer
indices (FIFO per level, doubly linked, so any order leaves its level in O(1)).
Integer order ids and level prices are found through open-addressing hash maps
that store the record index inline. No per-order object is created unless the
caller hands one in or asks for one, and the ``Order`` class does not take part
in the cyclic garbage collector, so a large book costs the collector nothing.

The pure-Python twin is ``_book_py.py``; one test suite checks that both behave
identically, down to error classes and messages.
"""

cimport cython
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.pythread cimport PyThread_get_thread_ident
cdef extern from "<sched.h>" nogil:
    int sched_yield()
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy, memset

from tradebook._avl cimport Node, Tree, tree_check, tree_dealloc, tree_init, tree_insert, tree_remove, tree_reserve
from tradebook._intmap cimport map_del, map_free, map_get, map_init, map_put, map_reserve
from tradebook._units cimport TB_PYDEC_SIZE, parse_decimal, raw_units, small_int, step_units, tb_dec_parts

import operator
from decimal import Decimal

from tradebook._common import REENTERED, SNAPSHOT_FORMAT, STATUS_CODES, Depth, LevelSnapshot
from tradebook._extras import ext_stop_price, make_ext
from tradebook._limits import has_limits
from tradebook._numeric import EXACT, check_units, to_decimal, to_units
from tradebook._snapshot import SEQ_EXHAUSTED, order_row, read_snapshot
from tradebook.enums import (
    ORDER_TYPES,
    SIDES,
    STP_MODES,
    TIMES_IN_FORCE,
    OrderType,
    SelfTradePrevention,
    Side,
    TimeInForce,
    coerce_enum,
)
from tradebook.errors import (
    DuplicateOrderError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    SymbolMismatchError,
    TradebookError,
)
from tradebook.instrument import Instrument

cdef extern from "Python.h":
    bint PyUnicode_CheckExact(object o)
    object PyObject_Str(object o)
    PyObject* PyDict_GetItem(object d, object key)
    PyObject* PyTuple_GET_ITEM(object t, Py_ssize_t i)

__all__ = ["BookSide", "Order", "OrderBook", "PriceLevel"]

cdef int32_t NIL = -1
cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF

cdef object _BUY = Side.BUY
cdef object _SELL = Side.SELL
cdef object _LIMIT = OrderType.LIMIT
cdef object _STOP_LIMIT = OrderType.STOP_LIMIT
cdef object _GTD_TIF = TimeInForce.GTD
cdef dict _STATUS_CODE = {status: code for code, status in enumerate(STATUS_CODES)}
cdef object _MARKET = OrderType.MARKET
cdef object _GTC = TimeInForce.GTC
cdef object _IOC = TimeInForce.IOC
cdef object _FOK = TimeInForce.FOK
cdef object _DecimalType = Decimal


cdef bint _dec_layout_ok():
    """True if a Decimal's coefficient and exponent can be read straight from the C object.

    That is CPython's C ``decimal`` with the 64-bit libmpdec layout; the check is the
    type, its size and a set of known values, so any other build takes the string path.
    """
    cdef int64_t m = 0
    cdef int e = 0
    try:
        import sys
        from _decimal import Decimal as CDecimal
    except ImportError:
        return False
    if sys.implementation.name != "cpython" or Decimal is not CDecimal or sys.maxsize != 0x7FFFFFFFFFFFFFFF:
        return False
    if CDecimal.__basicsize__ != TB_PYDEC_SIZE + 4 * 8:    # + the inline data words
        return False
    for text in ("1", "123.45", "0.001", "1.500", "1E+5", "5E-7", "999999999999999999", "12345678901234567.8"):
        d = Decimal(text)
        _, digits, exponent = d.as_tuple()
        if not tb_dec_parts(<PyObject*>d, &m, &e) or m != int("".join(map(str, digits))) or e != exponent:
            return False
    for text in ("-1", "0", "-0.5", "NaN", "sNaN", "Infinity", "-Infinity", "1E+1000000", "10000000000000000000000"):
        d = Decimal(text)
        if tb_dec_parts(<PyObject*>d, &m, &e):
            return False
    return True


cdef bint _DEC_DIRECT = _dec_layout_ok()
DECIMAL_DIRECT = _DEC_DIRECT   # for the tests: the fast read is live
cdef object _STPType = SelfTradePrevention
cdef dict _SIDE_STR = SIDES
cdef tuple _STP_VALUES = ("NONE", "CANCEL_TAKER", "CANCEL_MAKER", "CANCEL_BOTH", "DECREMENT")
cdef tuple _STP_MEMBERS = tuple([STP_MODES[v] for v in _STP_VALUES])
cdef str _S_BUY = "BUY"
cdef str _S_SELL = "SELL"
cdef str _S_LIMIT = "LIMIT"
cdef str _S_MARKET = "MARKET"
cdef str _S_GTC = "GTC"
cdef str _S_IOC = "IOC"
cdef str _S_FOK = "FOK"
cdef dict _TYPE_STR = ORDER_TYPES
cdef dict _TIF_STR = TIMES_IN_FORCE
cdef dict _STP_STR = STP_MODES
cdef object _index = operator.index

# Order status codes (ST_* in _book.pxd) index STATUS_CODES.
cdef tuple _STATUSES = STATUS_CODES

cdef bint _int_key(object key, int64_t* out) except -1:
    """True and the int64 key if ``key`` is an id that equals an int (as dict keys compare)."""
    cdef int overflow = 0
    cdef long long v
    if PyLong_CheckExact(key):
        v = PyLong_AsLongLongAndOverflow(key, &overflow)
        if overflow:
            return False
        out[0] = v
        return True
    if isinstance(key, (str, bytes, tuple)):
        return False
    if type(key) is _DecimalType and (not key.is_finite() or key.adjusted() > 18):
        return False        # cannot equal an int64 (and int() of 1E+99999999 would take ages)
    try:
        iv = _index(key)
    except TypeError:
        if not isinstance(key, (float, _DecimalType)):
            try:
                if not hasattr(key, "__int__") or not hasattr(key, "__float__"):
                    return False
                iv = int(key)
                if iv != key:
                    return False
            except (TypeError, ValueError, OverflowError, ArithmeticError):
                return False
        else:
            try:
                iv = int(key)
            except (ValueError, OverflowError, ArithmeticError):
                return False
            if iv != key:
                return False
    if type(iv) is not int:
        iv = int(iv)
    v = PyLong_AsLongLongAndOverflow(iv, &overflow)
    if overflow:
        return False
    out[0] = v
    return True


cdef object _check_id(object order_id):
    if order_id is None:
        raise InvalidOrderError("order id must not be None")
    try:
        hash(order_id)
    except TypeError:
        raise InvalidOrderError(f"order id must be hashable; got {type(order_id).__name__}") from None


cdef inline object _by_str(dict table, object value):
    """The member whose value is the exact str ``value``, or None; runs no Python code."""
    cdef PyObject* p
    if PyUnicode_CheckExact(value):
        p = PyDict_GetItem(table, value)    # borrowed; a str key's hash is cached
        if p != NULL:
            return <object>p
    return None


# Enum arguments: the members by identity, then their string values by identity
# (a literal "BUY" in the caller's code is the same interned object as ours),
# then any other exact str by one dict probe (a str from JSON, say), and only
# then the full coercion with its error message. So "BUY" costs what Side.BUY does.

cdef int _side_code(object side) except -1:
    """0 for a buy, 1 for a sell."""
    if side is _BUY or side is _S_BUY:
        return 0
    if side is _SELL or side is _S_SELL:
        return 1
    member = _by_str(_SIDE_STR, side)
    if member is None:
        member = coerce_enum(Side, side, "side", InvalidOrderError)
    return 1 if member is _SELL else 0


cdef object _tif_of(object value):
    """A ``TimeInForce`` from a member or its string value."""
    if value is _GTC or value is _IOC or value is _FOK:
        return value
    if value is _S_GTC:
        return _GTC
    if value is _S_IOC:
        return _IOC
    if value is _S_FOK:
        return _FOK
    member = _by_str(_TIF_STR, value)
    return coerce_enum(TimeInForce, value, "time in force", InvalidOrderError) if member is None else member


cdef object _type_of(object value):
    """An ``OrderType`` from a member or its string value."""
    if value is _LIMIT or value is _MARKET:
        return value
    if value is _S_LIMIT:
        return _LIMIT
    if value is _S_MARKET:
        return _MARKET
    member = _by_str(_TYPE_STR, value)
    return coerce_enum(OrderType, value, "order type", InvalidOrderError) if member is None else member


cdef object _stp_of(object value):
    """A ``SelfTradePrevention`` (or None) from a member, its string value or None."""
    if value is None or type(value) is _STPType:
        return value
    cdef Py_ssize_t i
    for i in range(5):      # the interned values by identity, as for the other enums
        if value is <object>PyTuple_GET_ITEM(_STP_VALUES, i):
            return <object>PyTuple_GET_ITEM(_STP_MEMBERS, i)
    member = _by_str(_STP_STR, value)
    return coerce_enum(SelfTradePrevention, value, "self_trade_prevention", InvalidOrderError) if member is None else member


cdef void _touch(Level* level) noexcept:
    """Forget a level's cached depth row and snapshot after its total or count changed."""
    cdef PyObject* row = level.row
    cdef PyObject* snap = level.snap
    if row != NULL:
        level.row = NULL
        Py_XDECREF(row)
    if snap != NULL:
        level.snap = NULL
        Py_XDECREF(snap)


cdef object _row(Level* level):
    """The level's ``(price, total, count)`` tuple, built once until the level changes."""
    if level.row == NULL:
        row = (level.price, level.total, level.count)
        Py_INCREF(row)
        level.row = <PyObject*>row
    return <object>level.row


# -- Order ----------------------------------------------------------------------------

cdef int64_t hidden_lots(Order o) noexcept:
    """An iceberg's hidden lots (0 for any other order). Out of line, so that the hot paths that
    test for it (the match, cancel_rec) stay small enough for the C compiler to inline them."""
    ext = o._ext
    if ext is None:
        return 0
    try:
        return ext.hidden
    except Exception:       # not reached: ``hidden`` is an int the engine keeps in range
        return 0


cdef object _as_decimal(object value):
    return value if type(value) is _DecimalType else Decimal(value)


@cython.no_gc
@cython.final
@cython.freelist(64)       # a Decimal submit makes one per command: reuse the memory of dropped ones
cdef class Order:
    """An order: what a client asked for and, once in a book, its live state.

    Prices and quantities are accepted as ``Decimal``, ``int``, ``str`` or an
    exactly representable ``float`` and come back as ``Decimal``. ``price`` is
    None for a market order. All attributes are read-only; the book updates
    ``filled_quantity``, ``status`` and ``sequence`` as the order lives.

    Orders do not take part in the cyclic garbage collector (that keeps large
    books cheap), so ids and owners should be plain values (int, str, UUID).

    >>> order = Order(1, "BUY", "101.5", 2)
    >>> order.side, order.price, order.status
    (<Side.BUY: 'BUY'>, Decimal('101.5'), <OrderStatus.PENDING: 'PENDING'>)
    """

    def __init__(
        self,
        id,
        side,
        price,
        quantity,
        *,
        symbol=None,
        owner=None,
        type=_LIMIT,
        time_in_force=_GTC,
        post_only=False,
        client_order_id=None,
        self_trade_prevention=None,
        stop_price=None,
        trailing_offset=None,
        display_quantity=None,
        expire_at=None,
        quote_quantity=None,
    ):
        if self._inst is not None or self._status != ST_PENDING:
            raise InvalidOrderError("an Order cannot be re-initialised")
        if not PyLong_CheckExact(id):
            _check_id(id)
        cdef bint sell = _side_code(side)
        otype = _type_of(type)
        tif = _tif_of(time_in_force)
        ext = None
        if (otype is not _LIMIT and otype is not _MARKET) or tif is _GTD_TIF or stop_price is not None \
                or trailing_offset is not None or display_quantity is not None or expire_at is not None \
                or quote_quantity is not None:
            ext = make_ext(otype, tif, price, quantity, post_only is True, stop_price, trailing_offset,
                           display_quantity, expire_at, quote_quantity)
        if otype is _LIMIT or otype is _STOP_LIMIT:
            if price is None:
                raise InvalidPriceError("a limit order needs a price")
            price = self._take(price, True)
        elif price is not None:
            raise InvalidPriceError(f"a market order takes no price; got {price!r}")
        if quantity is not None or ext is None or ext.quote_in is None:
            quantity = self._take(quantity, False)
        if post_only is not True and post_only is not False:
            raise InvalidOrderError(f"post_only must be a bool; got {post_only!r}")
        if post_only and (otype is not _LIMIT or (tif is not _GTC and tif is not _GTD_TIF)):
            raise InvalidOrderError("post_only applies only to LIMIT GTC or GTD orders")
        if symbol is not None and not isinstance(symbol, str):
            raise InvalidOrderError(f"symbol must be a str or None; got {symbol!r}")
        stp = _stp_of(self_trade_prevention)
        self._id = id
        self._sell = sell
        self._type = otype
        self._tif = tif
        self._post_only = post_only
        self._owner = owner
        self._client_order_id = client_order_id
        self._symbol = symbol
        self._stp = stp
        self._price_in = price
        self._quantity_in = quantity
        self._ext = ext

    # -- primitives for the shared order-type code (``_ordertypes``) ---------------

    def _x_state(self, book, ticks, lots, status, seq):
        cdef OrderBook b
        if book is not None:
            b = <OrderBook?>book
            self._inst = b._inst
            self._symbol = b._symbol
        if ticks is not None:
            self._ticks = ticks
        if lots is not None:
            self._lots = lots
        if status is not None:
            self._status = _STATUS_CODE[status]
        if seq is not None:
            self._seq = seq

    def _x_bound(self):
        return self._inst is not None

    def _x_inputs(self):
        return (None if self._price_in is None else _as_decimal(self._price_in),
                None if self._quantity_in is None else _as_decimal(self._quantity_in))

    def _x_ticks(self):
        return self._ticks

    def _x_lots(self):
        return self._lots

    @staticmethod
    def _x_restored(order_id, side, otype, tif, owner, client_order_id, stp, ext):
        cdef Order o = Order.__new__(Order)
        o._id = order_id
        o._sell = side is _SELL
        o._type = otype
        o._tif = tif
        o._owner = owner
        o._client_order_id = client_order_id
        o._stp = stp
        o._ext = ext
        return o

    cdef object _take(self, object value, bint is_price):
        """Validate a price or quantity; keep its exact ``m * 10**e`` form when it is small."""
        cdef int64_t m = 0
        cdef int e = 0
        cdef bint fast
        if PyLong_CheckExact(value) and small_int(value, &m):
            fast = True
        elif type(value) is _DecimalType and _DEC_DIRECT and tb_dec_parts(<PyObject*>value, &m, &e):
            fast = True         # read from the Decimal itself: no string made
        elif type(value) is _DecimalType or PyUnicode_CheckExact(value):
            fast = parse_decimal(PyObject_Str(value), &m, &e)
            if not fast:
                value = self._slow(value, is_price)
                fast = parse_decimal(PyObject_Str(value), &m, &e)
        else:
            value = self._slow(value, is_price)
            fast = parse_decimal(PyObject_Str(value), &m, &e)
        if is_price:
            self._pfast, self._pm, self._pe = fast, m, e
        else:
            self._qfast, self._qm, self._qe = fast, m, e
        return value

    cdef object _slow(self, object value, bint is_price):
        if is_price:
            return to_decimal(value, "price", InvalidPriceError)
        return to_decimal(value, "quantity", InvalidQuantityError)

    @property
    def id(self):
        """The order id given by the caller."""
        return self._id

    @property
    def side(self):
        """``Side.BUY`` or ``Side.SELL``."""
        return _SELL if self._sell else _BUY

    @property
    def type(self):
        """``OrderType.LIMIT`` or ``OrderType.MARKET``."""
        return self._type

    @property
    def time_in_force(self):
        """``GTC``, ``IOC`` or ``FOK``."""
        return self._tif

    @property
    def post_only(self):
        """True if the order may only add liquidity."""
        return self._post_only

    @property
    def owner(self):
        """Who owns the order (used by self-trade prevention), or None."""
        return self._owner

    @property
    def client_order_id(self):
        """The client's own reference, or None."""
        return self._client_order_id

    @property
    def symbol(self):
        """The instrument symbol; set by the book when the order joins it."""
        return self._symbol

    @property
    def self_trade_prevention(self):
        """The order's own self-trade prevention mode, or None for the engine default."""
        return self._stp

    @property
    def status(self):
        """Where the order is in its life."""
        return _STATUSES[self._status]

    @property
    def sequence(self):
        """The book's sequence number that gives the order its time priority, or None."""
        return None if self._seq == 0 else self._seq

    @property
    def price(self):
        """The limit price (None for a market order)."""
        if self._inst is None:
            return None if self._price_in is None else _as_decimal(self._price_in)
        return self._inst.ticks_to_price(self._ticks) if self._ticks else None

    @property
    def quantity(self):
        """The total quantity ordered (None for a market order sized by ``quote_quantity``)."""
        if self._inst is None:
            return None if self._quantity_in is None else _as_decimal(self._quantity_in)
        if self._ext is None:
            return self._inst.lots_to_quantity(self._lots)
        if self._ext.quote is not None:
            return None
        return self._inst.lots_to_quantity(self._lots + self._ext.hidden)

    @property
    def filled_quantity(self):
        """The quantity filled so far."""
        if self._inst is None:
            return Decimal(0)
        return self._inst.lots_to_quantity(self._filled)

    @property
    def remaining_quantity(self):
        """``quantity - filled_quantity`` (None for a market order sized by ``quote_quantity``)."""
        if self._inst is None:
            return None if self._quantity_in is None else _as_decimal(self._quantity_in)
        if self._ext is None:
            return self._inst.lots_to_quantity(self._lots - self._filled)
        if self._ext.quote is not None:
            return None
        return self._inst.lots_to_quantity(self._lots + self._ext.hidden - self._filled)

    @property
    def visible_quantity(self):
        """What the book shows of the order: an iceberg's current slice, else the remaining quantity while it rests (0 otherwise)."""
        if self._inst is None or (self._status != ST_OPEN and self._status != ST_PARTIAL):
            return Decimal(0)
        return self._inst.lots_to_quantity(self._lots - self._filled)

    @property
    def stop_price(self):
        """The stop price (a trailing stop's current one; None before its first reference trade)."""
        return ext_stop_price(self._ext, self._inst)

    @property
    def trailing_offset(self):
        """A trailing stop's distance from its reference price."""
        ext = self._ext
        if ext is None:
            return None
        return ext.trail_in if self._inst is None or ext.trail is None else self._inst.ticks_to_price(ext.trail)

    @property
    def display_quantity(self):
        """An iceberg's slice size."""
        ext = self._ext
        if ext is None:
            return None
        return ext.display_in if self._inst is None or ext.display is None else self._inst.lots_to_quantity(ext.display)

    @property
    def expire_at(self):
        """A GTD order's expiry, in the engine's time unit."""
        return None if self._ext is None else self._ext.expire_at

    @property
    def quote_quantity(self):
        """A market order's quote budget."""
        ext = self._ext
        if ext is None:
            return None
        if self._inst is None or ext.quote is None:
            return ext.quote_in
        return ext.quote * self._inst.tick_size * self._inst.lot_size

    @property
    def is_filled(self):
        """True once the whole quantity is filled (a quote-sized order: once it spent its whole budget)."""
        ext = self._ext
        if ext is None:
            return self._inst is not None and self._filled >= self._lots
        if ext.quote is not None:
            return self._status == ST_FILLED
        return self._inst is not None and self._filled >= self._lots + ext.hidden

    @property
    def price_ticks(self):
        """The price in integer ticks once the order is in a book, else None."""
        return self._ticks if self._inst is not None and self._ticks else None

    @property
    def quantity_lots(self):
        """The total quantity in integer lots once the order is in a book, else None (and for a quote-sized order)."""
        if self._inst is None:
            return None
        ext = self._ext
        if ext is None:
            return self._lots
        return None if ext.quote is not None else self._lots + ext.hidden

    @property
    def filled_lots(self):
        """The filled quantity in integer lots."""
        return self._filled

    def __repr__(self):
        return (
            f"Order(id={self._id!r}, side={self.side.value}, price={self.price}, quantity={self.quantity}, "
            f"filled={self.filled_quantity}, status={self.status.value})"
        )


cdef Order _new_order(object order_id, bint sell, object inst):
    """An Order built straight from integer state, as the raw API and snapshots need."""
    cdef Order o = Order.__new__(Order)
    o._id = order_id
    o._sell = sell
    o._type = _LIMIT
    o._tif = _GTC
    o._post_only = False
    o._inst = inst
    o._symbol = inst.symbol
    return o


# -- views ------------------------------------------------------------------------------

@cython.final
cdef class PriceLevel:
    """A live view of one price level: totals and the resting orders in FIFO order.

    The view follows the book: if the level empties, ``quantity`` is 0,
    ``order_count`` 0 and iteration yields nothing.
    """

    cdef OrderBook _book
    cdef bint _sell
    cdef int64_t _ticks
    cdef object _price          # the Decimal price, made on first read (it never changes)
    cdef object _qty            # the Decimal quantity last read, while the total is _qty_lots
    cdef int64_t _qty_lots

    def __init__(self, OrderBook book not None, side, price_ticks):
        self._book = book
        self._sell = _side_code(side)
        self._ticks = price_ticks
        self._price = None
        self._qty = None

    cdef Level* _state(self) noexcept:
        cdef int32_t lv = map_get(&self._book._prices[self._sell], self._ticks)
        return NULL if lv == NIL else &self._book._levels[lv]

    @property
    def side(self):
        """The side of the level."""
        return _SELL if self._sell else _BUY

    @property
    def price(self):
        """The level's price."""
        if self._price is None:
            self._price = self._book._inst.ticks_to_price(self._ticks)
        return self._price

    @property
    def price_ticks(self):
        """The level's price in integer ticks."""
        return self._ticks

    @property
    def quantity(self):
        """The sum of the remaining quantities of the level's orders."""
        cdef Level* lv = self._state()
        cdef int64_t lots = 0 if lv == NULL else lv.total
        if self._qty is None or lots != self._qty_lots:     # a new Decimal only when the total changed
            self._qty = self._book._inst.lots_to_quantity(lots)
            self._qty_lots = lots
        return self._qty

    @property
    def quantity_lots(self):
        """The level's total remaining quantity in integer lots."""
        cdef Level* lv = self._state()
        return 0 if lv == NULL else lv.total

    @property
    def order_count(self):
        """The number of resting orders at this price."""
        cdef Level* lv = self._state()
        return 0 if lv == NULL else lv.count

    def __len__(self):
        cdef Level* lv = self._state()
        return 0 if lv == NULL else lv.count

    def __iter__(self):
        cdef OrderBook book = self._book
        cdef list out = []
        cdef int32_t r
        cdef Level* lv
        book._acquire()
        try:
            lv = self._state()
            r = NIL if lv == NULL else lv.head
            while r != NIL:
                out.append(book._order_of(r))
                r = book._recs[r].next
        finally:
            book._release()
        return iter(out)

    def __eq__(self, other):
        if not isinstance(other, PriceLevel):
            return NotImplemented
        cdef PriceLevel o = other
        return self._book is o._book and self._sell == o._sell and self._ticks == o._ticks

    def __hash__(self):
        return hash((id(self._book), self.side, self._ticks))

    def __repr__(self):
        return f"PriceLevel(side={self.side.value}, price={self.price}, quantity={self.quantity}, orders={self.order_count})"


cdef PriceLevel _view(OrderBook book, bint sell, int64_t ticks):
    """A level view made without the side coercion of ``PriceLevel(...)``."""
    cdef PriceLevel v = PriceLevel.__new__(PriceLevel)
    v._book = book
    v._sell = sell
    v._ticks = ticks
    return v


@cython.final
cdef class BookSide:
    """One side of a book: iterable best-first over its :class:`PriceLevel` views."""

    cdef OrderBook _book
    cdef bint _sell

    def __init__(self, OrderBook book not None, side):
        self._book = book
        self._sell = _side_code(side)

    @property
    def side(self):
        """Which side this is."""
        return _SELL if self._sell else _BUY

    def __len__(self):
        """The number of price levels."""
        return self._book._trees[self._sell].count

    def __bool__(self):
        return self._book._trees[self._sell].count > 0

    def __iter__(self):
        cdef OrderBook book = self._book
        cdef list keys = []
        cdef Tree* t = &book._trees[self._sell]
        cdef int32_t i
        book._acquire()
        try:
            i = t.head if self._sell else t.tail
            while i != NIL:
                keys.append(t.nodes[i].key)
                i = t.nodes[i].next if self._sell else t.nodes[i].prev
        finally:
            book._release()
        return iter([_view(book, self._sell, k) for k in keys])

    @property
    def best(self):
        """The best level of this side, or None when empty."""
        return self._book.best_ask if self._sell else self._book.best_bid

    def __repr__(self):
        return f"BookSide({self.side.value}, levels={len(self)})"


# -- the book ---------------------------------------------------------------------------

@cython.final
@cython.final
cdef class _Hold:
    """``with book._x_hold():`` holds the book's (re-entrant) lock, for the shared order-type code."""

    cdef OrderBook _book

    def __cinit__(self, OrderBook book):
        self._book = book

    def __enter__(self):
        self._book._acquire()
        return self._book

    def __exit__(self, *exc):
        self._book._release()
        return False


cdef class OrderBook:
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

    def __cinit__(self, *args, **kwargs):
        self._recs = NULL
        self._recs_block = NULL
        self._levels = NULL
        tree_init(&self._trees[0])
        tree_init(&self._trees[1])
        self._ids.slots = NULL
        self._prices[0].slots = NULL
        self._prices[1].slots = NULL
        map_init(&self._ids, 10)
        map_init(&self._prices[0], 8)
        map_init(&self._prices[1], 8)
        self._rec_free = NIL
        self._lvl_free = NIL
        self._obj_ids = {}
        self._seq = 1

    def __init__(self, instrument):
        if not isinstance(instrument, Instrument):
            raise TypeError(f"OrderBook needs an Instrument; got {type(instrument).__name__}")
        if self._inst is not None:
            raise TypeError("an OrderBook cannot be re-initialised")
        self._inst = instrument
        self._symbol = instrument.symbol
        self._tick = instrument.tick_size
        self._lot = instrument.lot_size
        self._has_limits = has_limits(instrument)
        self._tick_fast = parse_decimal(PyObject_Str(self._tick), &self._tm, &self._te)
        self._lot_fast = parse_decimal(PyObject_Str(self._lot), &self._lm, &self._le)
        self._bids = BookSide(self, _BUY)
        self._asks = BookSide(self, _SELL)

    def __dealloc__(self):
        cdef int32_t r
        if self._recs != NULL:
            for r in range(self._rec_cap):
                if self._recs[r].flags & LIVE and self._recs[r].obj != NULL:
                    Py_DECREF(<object>self._recs[r].obj)
                    self._recs[r].obj = NULL
        cdef int sell
        cdef int32_t i
        for sell in range(2):
            i = self._trees[sell].head
            while i != NIL:
                _touch(&self._levels[self._trees[sell].nodes[i].payload])
                i = self._trees[sell].nodes[i].next
        PyMem_Free(self._recs_block)
        PyMem_Free(self._levels)
        tree_dealloc(&self._trees[0])
        tree_dealloc(&self._trees[1])
        map_free(&self._ids)
        map_free(&self._prices[0])
        map_free(&self._prices[1])

    # -- locking: reentrant per book; waits without holding the GIL ----------------

    cdef inline int _acquire(self) except -1:
        # Under the GIL this check-and-set is atomic: no other thread runs
        # between them. A thread only finds the book busy when its holder let
        # the GIL go mid-operation (running Python code such as a user's
        # __hash__); then it yields the GIL until the holder is done. Builds
        # without a GIL use the pure-Python backend (see _compat).
        cdef unsigned long me = PyThread_get_thread_ident()
        if self._lock_depth:
            if self._lock_owner == me:
                self._lock_depth += 1
                return 0
            while self._lock_depth:
                with nogil:
                    sched_yield()
        self._lock_owner = me
        self._lock_depth = 1
        return 0

    cdef inline void _release(self) noexcept:
        self._lock_depth -= 1

    cdef inline int _enter(self) except -1:
        """Take the lock to change the book; refuse a call back into a book that is changing.

        A change holds raw record and level pointers while it may run Python
        code: an order id's or owner's ``__eq__``/``__hash__``, an object's
        ``__del__``. If that code changed the book (a cancel, or adds that
        reallocate the record array), the change would go on with dangling
        pointers. So while ``_busy`` is set, the holder's own thread may read the
        book but not change it. Market data callbacks run after the change, with
        ``_busy`` cleared, and may submit, cancel and amend.
        """
        self._acquire()
        if self._busy:
            self._release()
            raise RuntimeError(REENTERED)
        self._busy = 1
        return 0

    cdef inline void _exit(self) noexcept:
        self._busy = 0
        self._release()

    # -- storage -----------------------------------------------------------------------

    cdef int _reserve(self) except -1:
        """Make room for one more order and one more level, so mutation cannot fail."""
        cdef int32_t cap, i
        cdef Rec* recs
        cdef void* block
        cdef Level* levels
        if self._rec_free == NIL:
            if self._rec_cap >= 0x3FFFFFFF:
                raise MemoryError("order book is full")
            cap = 256 if self._rec_cap == 0 else self._rec_cap * 2
            # Align records to cache lines so a random cancel touches one line per record.
            block = PyMem_Malloc(cap * sizeof(Rec) + 63)
            if block == NULL:
                raise MemoryError()
            recs = <Rec*>((<size_t>block + 63) & ~(<size_t>63))
            if self._rec_cap:
                memcpy(recs, self._recs, self._rec_cap * sizeof(Rec))
            PyMem_Free(self._recs_block)
            self._recs_block = block
            memset(&recs[self._rec_cap], 0, (cap - self._rec_cap) * sizeof(Rec))
            for i in range(self._rec_cap, cap - 1):
                recs[i].next = i + 1
            recs[cap - 1].next = NIL
            self._recs = recs
            self._rec_free = self._rec_cap
            self._rec_cap = cap
        if self._lvl_free == NIL:
            cap = 64 if self._lvl_cap == 0 else self._lvl_cap * 2
            levels = <Level*>PyMem_Realloc(self._levels, cap * sizeof(Level))
            if levels == NULL:
                raise MemoryError()
            for i in range(self._lvl_cap, cap - 1):
                levels[i].node = i + 1
            levels[cap - 1].node = NIL
            self._levels = levels
            self._lvl_free = self._lvl_cap
            self._lvl_cap = cap
        tree_reserve(&self._trees[0])
        tree_reserve(&self._trees[1])
        map_reserve(&self._ids)
        map_reserve(&self._prices[0])
        map_reserve(&self._prices[1])
        return 0

    cdef inline int32_t _new_rec(self) noexcept:
        cdef int32_t r = self._rec_free
        self._rec_free = self._recs[r].next
        return r

    cdef inline void _free_rec(self, int32_t r) noexcept:
        self._recs[r].flags = 0
        self._recs[r].obj = NULL
        self._recs[r].next = self._rec_free
        self._rec_free = r

    cdef void _link(self, int32_t r, int32_t lv) noexcept:
        """Append a filled-in record to the tail of level ``lv``, or of a new level if NIL."""
        cdef Rec* rec = &self._recs[r]
        cdef int sell = 1 if rec.flags & SELL else 0
        cdef Level* level
        if lv == NIL:
            lv = self._lvl_free
            level = &self._levels[lv]
            self._lvl_free = level.node
            level.price = rec.price
            level.total = 0
            level.count = 0
            level.head = NIL
            level.tail = NIL
            level.sell = sell
            level.row = NULL
            level.snap = NULL
            level.node = tree_insert(&self._trees[sell], rec.price, lv)
            map_put(&self._prices[sell], rec.price, lv)
        else:
            level = &self._levels[lv]
            _touch(level)
        rec.level = lv
        rec.next = NIL
        rec.prev = level.tail
        if level.tail == NIL:
            level.head = r
        else:
            self._recs[level.tail].next = r
        level.tail = r
        level.total += rec.qty - rec.filled
        level.count += 1

    cdef void _unlink(self, int32_t r) noexcept:
        """Take a record out of its level (dropping the level if it empties)."""
        cdef Rec* rec = &self._recs[r]
        cdef int32_t lv = rec.level
        cdef Level* level = &self._levels[lv]
        if rec.prev == NIL:
            level.head = rec.next
        else:
            self._recs[rec.prev].next = rec.next
        if rec.next == NIL:
            level.tail = rec.prev
        else:
            self._recs[rec.next].prev = rec.prev
        level.total -= rec.qty - rec.filled
        level.count -= 1
        _touch(level)
        if level.count == 0:
            tree_remove(&self._trees[level.sell], level.node)
            map_del(&self._prices[level.sell], level.price)
            level.node = self._lvl_free
            self._lvl_free = lv

    cdef void _forget(self, int32_t r) except *:
        """Drop a record's id from the id maps."""
        cdef Rec* rec = &self._recs[r]
        if rec.flags & INTID:
            map_del(&self._ids, rec.key)
        else:
            del self._obj_ids[(<Order>rec.obj)._id]
        self._n -= 1

    cdef int32_t _lookup(self, object order_id) except -2:
        """The record of a resting order id, or NIL."""
        cdef int64_t key
        if _int_key(order_id, &key):
            return map_get(&self._ids, key)
        try:
            r = self._obj_ids.get(order_id)
        except TypeError:
            return NIL
        return NIL if r is None else <int32_t>r

    cdef int32_t _find(self, object order_id) except -2:
        cdef int32_t r = self._lookup(order_id)
        if r == NIL:
            raise OrderNotFoundError(f"no resting order with id {order_id!r}")
        return r

    cdef object _order_of(self, int32_t r):
        """The Order of a live record, creating (and keeping) it on first request."""
        cdef Rec* rec = &self._recs[r]
        cdef Order o
        if rec.obj != NULL:
            return <object>rec.obj
        o = _new_order(rec.key, (rec.flags & SELL) != 0, self._inst)
        self._sync(o, rec, ST_PARTIAL if rec.filled else ST_OPEN)
        Py_INCREF(o)
        rec.obj = <PyObject*>o
        return o

    cdef void _sync(self, Order o, Rec* rec, int status) noexcept:
        o._ticks = rec.price
        o._lots = rec.qty
        o._filled = rec.filled
        o._seq = rec.seq
        o._status = status

    cdef object _release_order(self, int32_t r, int status):
        """Hand out a leaving record's Order (creating one if needed) with its final status."""
        cdef Rec* rec = &self._recs[r]
        cdef Order o
        if rec.obj != NULL:
            o = <Order>rec.obj
            Py_DECREF(o)     # the reference held by the record; ``o`` keeps its own
            rec.obj = NULL
        else:
            o = _new_order(rec.key, (rec.flags & SELL) != 0, self._inst)
        self._sync(o, rec, status)
        return o

    cdef int32_t _room(self, int sell, int64_t price, int64_t extra) except -2:
        """The level at ``price`` (or NIL), after checking its total can grow by ``extra``."""
        cdef int32_t lv = map_get(&self._prices[sell], price)
        if lv != NIL and self._levels[lv].total > INT64_MAX - extra:
            raise InvalidQuantityError("the level's total quantity would exceed 2**63-1 lots")
        return lv

    cdef inline int _check_seq(self) except -1:
        """Refuse to hand out a sequence number once ``next_sequence`` has reached 2**63-1.

        The counter is an int64 and ``next_sequence`` must stay one, so the last
        number handed out is 2**63-2: a book at the limit still cancels, fills,
        lowers quantities and snapshots (and its snapshot restores), but it takes
        no new order and re-queues none.
        """
        if self._seq >= INT64_MAX:
            raise TradebookError(SEQ_EXHAUSTED)
        return 0

    cdef int32_t _insert(self, object order_id, bint intid, int64_t key, int sell, int64_t ticks, int64_t lots,
                         int64_t filled, int64_t seq, Order obj, int32_t lv) except -2:
        """Store a new resting order at level ``lv`` (NIL: a new level); the caller holds
        the lock and has checked everything."""
        self._reserve()
        cdef int32_t r = self._rec_free
        if not intid:
            # first, while nothing has changed: this runs the id's __hash__ (and maybe __eq__), which may raise
            self._obj_ids[order_id] = r
        r = self._new_rec()
        cdef Rec* rec = &self._recs[r]
        rec.key = key
        rec.price = ticks
        rec.qty = lots
        rec.filled = filled
        rec.seq = seq
        rec.flags = LIVE | (INTID if intid else 0) | (SELL if sell else 0)
        rec.obj = NULL
        if obj is not None:
            Py_INCREF(obj)
            rec.obj = <PyObject*>obj
        if intid:
            map_put(&self._ids, key, r)
        self._link(r, lv)
        self._n += 1
        if obj is not None:
            self._sync(obj, rec, ST_PARTIAL if filled else ST_OPEN)
        return r

    cdef int64_t _ticks_of(self, Order o) except 0:
        """An unbound order's price in ticks: exact integer arithmetic, else the Decimal path."""
        cdef int64_t ticks = 0
        if o._pfast and self._tick_fast:
            ticks = step_units(o._pm, o._pe, self._tm, self._te)
        if ticks == 0:
            ticks = to_units(_as_decimal(o._price_in), self._tick, "price", "tick size", InvalidPriceError)
        return ticks

    cdef int64_t _lots_of(self, Order o) except 0:
        """An unbound order's quantity in lots."""
        cdef int64_t lots = 0
        if o._qfast and self._lot_fast:
            lots = step_units(o._qm, o._qe, self._lm, self._le)
        if lots == 0:
            lots = to_units(_as_decimal(o._quantity_in), self._lot, "quantity", "lot size", InvalidQuantityError)
        return lots

    # -- basic facts ---------------------------------------------------------------------

    @property
    def instrument(self):
        """The book's instrument."""
        return self._inst

    @property
    def symbol(self):
        """The instrument's symbol."""
        return self._symbol

    @property
    def next_sequence(self):
        """The sequence number the next accepted order will get."""
        return self._seq

    def __len__(self):
        return self._n

    def __contains__(self, order_id):
        return self._lookup(order_id) != NIL

    def __repr__(self):
        return f"OrderBook({self._symbol!r}, orders={self._n}, bid={self.best_bid_raw}, ask={self.best_ask_raw})"

    # -- the Decimal API -------------------------------------------------------------------

    def add_order(self, order):
        """Rest ``order`` in the book (no matching). O(1) on an existing level, else O(log L).

        Raises ``DuplicateOrderError`` if the id is resting, ``SymbolMismatchError``
        for another symbol's order, ``InvalidOrderError`` for a market order or one
        already used, ``InvalidPriceError``/``InvalidQuantityError`` off the grid.
        """
        if type(order) is not Order:
            raise InvalidOrderError(f"add_order takes an Order; got {type(order).__name__}")
        cdef Order o = <Order>order
        cdef int64_t ticks = 0, lots = 0, key = 0
        cdef int32_t lv
        cdef bint intid
        self._enter()
        try:
            if o._status != ST_PENDING or o._inst is not None:
                raise InvalidOrderError(f"order {o._id!r} is {o.status.value}; only a new order can be added")
            if o._symbol is not None and o._symbol != self._symbol:
                raise SymbolMismatchError(f"order {o._id!r} is for {o._symbol}, this book is {self._symbol}")
            if o._type is not _LIMIT:
                raise InvalidOrderError("a market order cannot rest in a book")
            if o._ext is not None:
                raise InvalidOrderError(
                    "an order with stop, iceberg, GTD or quote fields goes through MatchingEngine.submit"
                )
            ticks = self._ticks_of(o)
            lots = self._lots_of(o)
            intid = _int_key(o._id, &key)
            if (map_get(&self._ids, key) if intid else self._lookup(o._id)) != NIL:
                raise DuplicateOrderError(f"an order with id {o._id!r} is already resting")
            lv = self._room(o._sell, ticks, lots)
            self._check_seq()
            self._insert(o._id, intid, key, o._sell, ticks, lots, 0, self._seq, o, lv)
            o._inst = self._inst
            o._symbol = self._symbol
            self._seq += 1
        finally:
            self._exit()

    def remove_order(self, order_id):
        """Remove a resting order and return it, ``CANCELLED``. O(1), O(log L) if its level empties."""
        cdef int32_t r
        self._enter()
        try:
            r = self._find(order_id)
            self._forget(r)
            self._unlink(r)
            o = self._release_order(r, ST_CANCELLED)
            self._free_rec(r)
            return o
        finally:
            self._exit()

    def fill_order(self, order_id, quantity):
        """Record a fill of ``quantity``; a fully filled order leaves the book. O(1)."""
        cdef int64_t lots = self._inst.quantity_to_lots(quantity)
        self._enter()
        try:
            return self._fill(self._find(order_id), lots, True)
        finally:
            self._exit()

    cdef object _fill(self, int32_t r, int64_t lots, bint want_order):
        cdef Rec* rec = &self._recs[r]
        cdef int64_t remaining = rec.qty - rec.filled
        if lots > remaining:
            raise InvalidQuantityError(
                f"fill of {self._inst.lots_to_quantity(lots)} exceeds the remaining "
                f"{self._inst.lots_to_quantity(remaining)} of order {self._id_of(r)!r}"
            )
        if lots == remaining:
            self._forget(r)
            self._unlink(r)
            rec.filled += lots
            o = self._release_order(r, ST_FILLED) if want_order or rec.obj != NULL else None
            self._free_rec(r)
            return o
        rec.filled += lots
        self._levels[rec.level].total -= lots
        _touch(&self._levels[rec.level])
        if rec.obj != NULL:
            self._sync(<Order>rec.obj, rec, ST_PARTIAL)
        return self._order_of(r) if want_order else None

    cdef object _id_of(self, int32_t r):
        cdef Rec* rec = &self._recs[r]
        return (<Order>rec.obj)._id if rec.obj != NULL else rec.key

    def amend_order(self, order_id, *, quantity=None, price=None):
        """Change a resting order's total quantity and/or price.

        ``quantity`` is the new total and must exceed what is already filled.
        Lowering it keeps time priority; raising it, or a new price, sends the
        order to the back of its (new) level. The same price is no change. The
        book does not match, so an amend can leave it crossed.
        """
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        lots = None if quantity is None else self._inst.quantity_to_lots(quantity)
        ticks = None if price is None else self._inst.price_to_ticks(price)
        cdef int32_t r
        self._enter()
        try:
            r = self._find(order_id)
            self._amend(r, lots, ticks)
            return self._order_of(r)
        finally:
            self._exit()

    cdef int _amend(self, int32_t r, object lots_obj, object ticks_obj) except -1:
        cdef Rec* rec = &self._recs[r]
        cdef int64_t new_lots = rec.qty if lots_obj is None else <int64_t>lots_obj
        cdef int64_t new_ticks = rec.price if ticks_obj is None else <int64_t>ticks_obj
        cdef int sell = 1 if rec.flags & SELL else 0
        if new_lots <= rec.filled:
            raise InvalidQuantityError(
                f"the new quantity {self._inst.lots_to_quantity(new_lots)} must exceed the filled "
                f"{self._inst.lots_to_quantity(rec.filled)}"
            )
        if new_ticks != rec.price or new_lots > rec.qty:
            if new_ticks == rec.price:
                self._room(sell, new_ticks, new_lots - rec.qty)
            else:
                self._room(sell, new_ticks, new_lots - rec.filled)
            self._check_seq()
            self._reserve()          # a new level may be needed; may reallocate
            rec = &self._recs[r]
            self._unlink(r)
            rec.price = new_ticks
            rec.qty = new_lots
            rec.seq = self._seq
            self._seq += 1
            self._link(r, map_get(&self._prices[sell], new_ticks))
        elif new_lots < rec.qty:
            self._levels[rec.level].total -= rec.qty - new_lots
            _touch(&self._levels[rec.level])
            rec.qty = new_lots
        if rec.obj != NULL:
            self._sync(<Order>rec.obj, rec, ST_PARTIAL if rec.filled else ST_OPEN)
        return 0

    def get_order(self, order_id):
        """Return the resting order with this id; raises ``OrderNotFoundError``. O(1)."""
        self._acquire()
        try:
            return self._order_of(self._find(order_id))
        finally:
            self._release()

    # -- top of book and levels -------------------------------------------------------

    @property
    def best_bid(self):
        """The highest bid level (a live view), or None. O(1)."""
        cdef int32_t i = self._trees[0].tail
        if i == NIL:
            return None
        cdef int64_t key = self._trees[0].nodes[i].key
        # A view depends only on (book, side, price): keep the last one handed out, with its
        # Decimal price and quantity, until the best price moves.
        if self._bid_view is None or (<PriceLevel>self._bid_view)._ticks != key:
            self._bid_view = _view(self, 0, key)
        return self._bid_view

    @property
    def best_ask(self):
        """The lowest ask level (a live view), or None. O(1)."""
        cdef int32_t i = self._trees[1].head
        if i == NIL:
            return None
        cdef int64_t key = self._trees[1].nodes[i].key
        if self._ask_view is None or (<PriceLevel>self._ask_view)._ticks != key:
            self._ask_view = _view(self, 1, key)
        return self._ask_view

    @property
    def spread(self):
        """Best ask minus best bid, or None if a side is empty."""
        bid, ask = self.best_bid_raw, self.best_ask_raw
        if bid is None or ask is None:
            return None
        return self._inst.ticks_to_price(ask - bid)

    @property
    def mid_price(self):
        """The midpoint of best bid and best ask, or None if a side is empty."""
        bid, ask = self.best_bid_raw, self.best_ask_raw
        if bid is None or ask is None:
            return None
        return EXACT.divide(self._inst.ticks_to_price(bid + ask), Decimal(2))

    def level(self, side, price):
        """The level at ``price`` on ``side`` (a live view), or None. O(1)."""
        cdef int sell = _side_code(side)
        cdef int64_t ticks = self._inst.price_to_ticks(price)
        if map_get(&self._prices[sell], ticks) == NIL:
            return None
        return _view(self, sell, ticks)

    def orders_at(self, side, price):
        """The orders resting at ``price`` on ``side``, in FIFO order. O(1) + O(n)."""
        level = self.level(side, price)
        return [] if level is None else list(level)

    @property
    def bids(self):
        """The bid side, iterable best (highest) first."""
        return self._bids

    @property
    def asks(self):
        """The ask side, iterable best (lowest) first."""
        return self._asks

    def depth(self, levels=10):
        """The best ``levels`` levels of each side as value snapshots. O(levels)."""
        if type(levels) is not int or levels < 0:
            raise ValueError(f"levels must be a non-negative int; got {levels!r}")
        cdef Py_ssize_t k = min(levels, 0x7FFFFFFF)
        cdef list sides = [[], []]
        cdef list rows
        cdef Py_ssize_t n
        cdef int sell
        cdef int32_t i
        cdef Tree* t
        cdef Level* level
        self._acquire()
        try:
            for sell in range(2):
                t = &self._trees[sell]
                rows = sides[sell]
                i = t.head if sell else t.tail
                n = 0
                while i != NIL and n < k:
                    level = &self._levels[t.nodes[i].payload]
                    if level.snap == NULL:      # made once until the level changes, like depth_raw's rows
                        snap = LevelSnapshot(
                            self._inst.ticks_to_price(level.price), self._inst.lots_to_quantity(level.total), level.count
                        )
                        Py_INCREF(snap)
                        level.snap = <PyObject*>snap
                    rows.append(<object>level.snap)
                    i = t.nodes[i].next if sell else t.nodes[i].prev
                    n += 1
        finally:
            self._release()
        return Depth(sides[0], sides[1])

    # -- the raw integer API -------------------------------------------------------------

    def add_raw(self, order_id, side, price, quantity):
        """Rest a limit order given in integer ticks and lots (no Decimal work)."""
        cdef int sell = _side_code(side)
        cdef int64_t ticks = raw_units(price, "price", InvalidPriceError)
        cdef int64_t lots = raw_units(quantity, "quantity", InvalidQuantityError)
        cdef int64_t key = 0
        cdef int overflow = 0
        cdef int32_t lv
        cdef bint intid
        cdef Order obj = None
        if PyLong_CheckExact(order_id):
            key = PyLong_AsLongLongAndOverflow(order_id, &overflow)
            intid = not overflow
        else:
            _check_id(order_id)
            intid = _int_key(order_id, &key)
        if not intid or not PyLong_CheckExact(order_id):
            obj = _new_order(order_id, sell, self._inst)
        self._enter()
        try:
            if (map_get(&self._ids, key) if intid else self._lookup(order_id)) != NIL:
                raise DuplicateOrderError(f"an order with id {order_id!r} is already resting")
            lv = self._room(sell, ticks, lots)
            self._check_seq()
            self._insert(order_id, intid, key, sell, ticks, lots, 0, self._seq, obj, lv)
            self._seq += 1
        finally:
            self._exit()

    # -- primitives for the new order types (``_ordertypes``, the engine's matching) -----

    cdef int _refresh(self, int32_t r) except -1:
        """An iceberg's slice is used up: show the next one at the back of its level, with a new sequence."""
        cdef Rec* rec = &self._recs[r]
        cdef Order o = <Order>rec.obj
        cdef int32_t lv = rec.level
        cdef bint alone = self._levels[lv].count == 1
        cdef int64_t show, hidden
        ext = o._ext
        self._check_seq()
        hidden = ext.hidden
        show = ext.display
        if hidden < show:
            show = hidden
        ext.hidden = hidden - show
        self._unlink(r)         # alone: frees its level, which _link takes straight back
        rec.qty += show
        rec.seq = self._seq
        self._seq += 1
        self._link(r, NIL if alone else lv)
        self._sync(o, rec, ST_PARTIAL)
        return 0

    cdef int _requeue(self, int32_t r) except -1:
        """Send a record to the back of its level with a new sequence."""
        cdef Rec* rec = &self._recs[r]
        cdef int32_t lv = rec.level
        cdef bint alone = self._levels[lv].count == 1
        self._check_seq()
        self._unlink(r)
        rec.seq = self._seq
        self._seq += 1
        self._link(r, NIL if alone else lv)
        if rec.obj != NULL:
            self._sync(<Order>rec.obj, rec, ST_PARTIAL if rec.filled else ST_OPEN)
        return 0

    def _take_seq(self):
        self._check_seq()
        self._seq += 1
        return self._seq - 1

    def _x_hold(self):
        return _Hold(self)

    def _last_ticks(self):
        return None if self._last == 0 else self._last

    def _set_last(self, ticks):
        self._last = ticks

    def _x_resting_gtd(self):
        """The resting orders with an expiry (their Order objects)."""
        cdef int32_t r
        out = []
        for r in range(self._rec_cap):
            if self._recs[r].flags & LIVE and self._recs[r].obj != NULL:
                o = <Order>self._recs[r].obj
                if o._ext is not None and o._ext.expire_at is not None:
                    out.append(o)
        return out

    def remove_raw(self, order_id):
        """Remove a resting order; return its remaining quantity in lots."""
        self._enter()
        try:
            return cancel_rec(self, self._find(order_id))
        finally:
            self._exit()

    def fill_raw(self, order_id, quantity):
        """Fill ``quantity`` lots of a resting order; return its remaining lots."""
        cdef int64_t lots = raw_units(quantity, "quantity", InvalidQuantityError)
        cdef int32_t r
        cdef int64_t remaining
        self._enter()
        try:
            r = self._find(order_id)
            remaining = self._recs[r].qty - self._recs[r].filled - lots
            self._fill(r, lots, False)
            return remaining
        finally:
            self._exit()

    def amend_raw(self, order_id, *, quantity=None, price=None):
        """``amend_order`` with the new total quantity in lots and price in ticks."""
        if quantity is None and price is None:
            raise InvalidOrderError("amend needs a new quantity or a new price")
        lots = None if quantity is None else raw_units(quantity, "quantity", InvalidQuantityError)
        ticks = None if price is None else raw_units(price, "price", InvalidPriceError)
        self._enter()
        try:
            self._amend(self._find(order_id), lots, ticks)
        finally:
            self._exit()

    @property
    def best_bid_raw(self):
        """The best bid price in ticks, or None. O(1)."""
        cdef int32_t i = self._trees[0].tail
        return None if i == NIL else self._trees[0].nodes[i].key

    @property
    def best_ask_raw(self):
        """The best ask price in ticks, or None. O(1)."""
        cdef int32_t i = self._trees[1].head
        return None if i == NIL else self._trees[1].nodes[i].key

    def level_raw(self, side, price):
        """``(total lots, order count)`` at ``price`` ticks on ``side``, or None. O(1)."""
        cdef int sell = _side_code(side)
        cdef int64_t ticks
        if not small_int(price, &ticks):
            # like level(): a price that is no valid tick count raises instead of reading as "no level"
            ticks = check_units(price, "price", InvalidPriceError)
        cdef int32_t lv = map_get(&self._prices[sell], ticks)
        return None if lv == NIL else (self._levels[lv].total, self._levels[lv].count)

    def depth_raw(self, levels=10):
        """The best ``levels`` levels per side as ``(price ticks, total lots, count)``. O(levels)."""
        if type(levels) is not int or levels < 0:
            raise ValueError(f"levels must be a non-negative int; got {levels!r}")
        cdef Py_ssize_t k = min(levels, 0x7FFFFFFF)
        cdef list bids = []
        cdef list asks = []
        cdef Py_ssize_t n
        cdef int32_t i
        cdef Node* nodes
        self._acquire()
        try:
            nodes = self._trees[0].nodes
            i = self._trees[0].tail
            n = 0
            while i != NIL and n < k:
                bids.append(_row(&self._levels[nodes[i].payload]))
                i = nodes[i].prev
                n += 1
            nodes = self._trees[1].nodes
            i = self._trees[1].head
            n = 0
            while i != NIL and n < k:
                asks.append(_row(&self._levels[nodes[i].payload]))
                i = nodes[i].next
                n += 1
        finally:
            self._release()
        return bids, asks

    # -- snapshots ---------------------------------------------------------------------

    def snapshot(self):
        """The whole book as plain JSON-safe data (see :meth:`from_snapshot`)."""
        cdef list rows = []
        cdef int sell
        cdef int32_t i, r
        cdef Tree* t
        cdef Rec* rec
        cdef Order o
        self._acquire()
        try:
            for sell in range(2):
                t = &self._trees[sell]
                i = t.tail if sell == 0 else t.head
                while i != NIL:
                    r = self._levels[t.nodes[i].payload].head
                    while r != NIL:
                        rec = &self._recs[r]
                        if rec.obj != NULL:
                            o = <Order>rec.obj
                            rows.append(order_row(
                                o._id, o.side, rec.price, rec.qty, rec.filled, rec.seq, o._owner,
                                o._client_order_id, o._type, o._tif, o._post_only, o._stp, o._ext,
                            ))
                        else:
                            rows.append(order_row(
                                rec.key, _SELL if sell else _BUY, rec.price, rec.qty, rec.filled, rec.seq,
                                None, None, _LIMIT, _GTC, False, None,
                            ))
                        r = rec.next
                    i = t.nodes[i].prev if sell == 0 else t.nodes[i].next
            return {
                "format": SNAPSHOT_FORMAT,
                "instrument": self._inst.to_dict(),
                "next_sequence": self._seq,
                "orders": rows,
            }
        finally:
            self._release()

    @classmethod
    def from_snapshot(cls, data):
        """Rebuild a book from :meth:`snapshot` data (also after a JSON round trip)."""
        inst, seq, rows = read_snapshot(data)
        cdef OrderBook book = cls(inst)
        cdef Order o
        cdef int64_t key = 0
        cdef bint intid
        for row in rows:
            intid = _int_key(row.id, &key)
            o = None
            if (
                not (intid and PyLong_CheckExact(row.id))
                or row.owner is not None
                or row.client_order_id is not None
                or row.time_in_force is not _GTC
                or row.post_only
                or row.self_trade_prevention is not None
                or row.ext is not None
            ):
                o = _new_order(row.id, row.side is _SELL, inst)
                o._owner = row.owner
                o._client_order_id = row.client_order_id
                o._tif = row.time_in_force
                o._post_only = row.post_only
                o._stp = row.self_trade_prevention
                o._type = row.type
                o._ext = row.ext
            book._insert(
                row.id, intid, key, row.side is _SELL, row.ticks, row.lots, row.filled, row.sequence, o,
                map_get(&book._prices[row.side is _SELL], row.ticks),
            )
        book._seq = seq
        return book

    # -- memory ------------------------------------------------------------------------

    def compact(self):
        """Give memory back: shrink the storage to fit the orders and levels that rest. O(n).

        The record and level arrays, the price trees and the id and price maps
        grow as a book fills and never shrink on their own (a cancel must not
        stall on a reallocation, and the matching loop holds record indices), so
        a book that once held a million orders keeps their room until this is
        called. Orders keep their ids, FIFO places and sequence numbers; live
        views and Order objects stay valid. On ``MemoryError`` nothing changes.
        """
        self._enter()
        try:
            self._compact()
        finally:
            self._exit()

    def _capacity(self):
        """``(order slots, level slots, id map slots)`` allocated: what :meth:`compact` shrinks (for tests)."""
        return self._rec_cap, self._lvl_cap, self._ids.mask + 1

    cdef int _compact(self) except -1:
        """Copy every live record and level, in FIFO and price order, into storage that fits."""
        cdef Py_ssize_t n = self._n
        cdef int32_t nlv = self._trees[0].count + self._trees[1].count
        cdef int32_t rec_cap = 256, lvl_cap = 64, j = 0, nl = 0, i, r, prev
        cdef int bits
        cdef int sell
        cdef void* block = NULL
        cdef Rec* recs = NULL
        cdef Level* levels = NULL
        cdef Level* old_level
        cdef Level* level
        cdef Rec* rec
        cdef Tree trees[2]
        cdef IntMap ids
        cdef IntMap prices[2]
        cdef dict obj_ids = {}
        while rec_cap < n:
            rec_cap *= 2
        while lvl_cap < nlv:
            lvl_cap *= 2
        tree_init(&trees[0])
        tree_init(&trees[1])
        ids.slots = NULL
        prices[0].slots = NULL
        prices[1].slots = NULL
        try:
            bits = 10
            while ((<size_t>1) << bits) < 2 * (self._ids.count + 1):
                bits += 1
            map_init(&ids, bits)
            for sell in range(2):
                bits = 8
                while ((<size_t>1) << bits) < 2 * (self._prices[sell].count + 1):
                    bits += 1
                map_init(&prices[sell], bits)
            block = PyMem_Malloc(rec_cap * sizeof(Rec) + 63)
            levels = <Level*>PyMem_Malloc(lvl_cap * sizeof(Level))
            if block == NULL or levels == NULL:
                raise MemoryError()
            recs = <Rec*>((<size_t>block + 63) & ~(<size_t>63))
            memset(recs, 0, rec_cap * sizeof(Rec))
            # First pass: the new numbering, the trees and maps. Only the object id map
            # runs Python code (the ids' __hash__); the book is not touched until all is in place.
            for sell in range(2):
                i = self._trees[sell].head
                while i != NIL:
                    old_level = &self._levels[self._trees[sell].nodes[i].payload]
                    level = &levels[nl]
                    level.price = old_level.price
                    level.total = old_level.total
                    level.count = old_level.count
                    level.dead = 0
                    level.sell = sell
                    level.row = NULL
                    level.snap = NULL
                    level.head = NIL if old_level.head == NIL else j
                    tree_reserve(&trees[sell])
                    level.node = tree_insert(&trees[sell], level.price, nl)
                    map_put(&prices[sell], level.price, nl)
                    prev = NIL
                    r = old_level.head
                    while r != NIL:
                        rec = &recs[j]
                        rec[0] = self._recs[r]
                        rec.level = nl
                        rec.prev = prev
                        rec.next = NIL
                        if prev != NIL:
                            recs[prev].next = j
                        if rec.flags & INTID:
                            map_put(&ids, rec.key, j)
                        else:
                            obj_ids[(<Order>rec.obj)._id] = j
                        prev = j
                        j += 1
                        r = self._recs[r].next
                    level.tail = prev
                    nl += 1
                    i = self._trees[sell].nodes[i].next
        except BaseException:
            PyMem_Free(block)
            PyMem_Free(levels)
            tree_dealloc(&trees[0])
            tree_dealloc(&trees[1])
            map_free(&ids)
            map_free(&prices[0])
            map_free(&prices[1])
            raise
        # Second pass, which cannot fail: move the cached level rows over, free lists, swap.
        for sell in range(2):
            i = self._trees[sell].head
            while i != NIL:
                old_level = &self._levels[self._trees[sell].nodes[i].payload]
                level = &levels[map_get(&prices[sell], old_level.price)]
                level.row, old_level.row = old_level.row, NULL
                level.snap, old_level.snap = old_level.snap, NULL
                i = self._trees[sell].nodes[i].next
        for r in range(j, rec_cap):
            recs[r].next = r + 1 if r + 1 < rec_cap else NIL
        for i in range(nl, lvl_cap):
            levels[i].node = i + 1 if i + 1 < lvl_cap else NIL
        PyMem_Free(self._recs_block)
        PyMem_Free(self._levels)
        tree_dealloc(&self._trees[0])
        tree_dealloc(&self._trees[1])
        map_free(&self._ids)
        map_free(&self._prices[0])
        map_free(&self._prices[1])
        self._recs_block = block
        self._recs = recs
        self._rec_cap = rec_cap
        self._rec_free = NIL if j == rec_cap else j
        self._levels = levels
        self._lvl_cap = lvl_cap
        self._lvl_free = NIL if nl == lvl_cap else nl
        self._trees[0] = trees[0]
        self._trees[1] = trees[1]
        self._ids = ids
        self._prices[0] = prices[0]
        self._prices[1] = prices[1]
        self._obj_ids = obj_ids
        return 0

    # -- invariants ----------------------------------------------------------------------

    def _check(self):
        """Walk every structure and verify its invariants; raises ``AssertionError``."""
        cdef int sell
        cdef int32_t i, r, prev, lv
        cdef Tree* t
        cdef Level* level
        cdef Rec* rec
        cdef int64_t total, last_seq
        cdef Py_ssize_t count, seen = 0, int_ids = 0
        cdef Order o
        self._acquire()
        try:
            for sell in range(2):
                t = &self._trees[sell]
                tree_check(t)
                if <size_t>t.count != self._prices[sell].count:
                    raise AssertionError("tree and level map disagree")
                i = t.head
                while i != NIL:
                    lv = t.nodes[i].payload
                    level = &self._levels[lv]
                    if map_get(&self._prices[sell], t.nodes[i].key) != lv or level.node != i:
                        raise AssertionError("level map disagrees with the tree")
                    if level.price != t.nodes[i].key or level.sell != sell:
                        raise AssertionError("level price or side is wrong")
                    total = 0
                    count = 0
                    last_seq = 0
                    prev = NIL
                    r = level.head
                    while r != NIL:
                        rec = &self._recs[r]
                        if rec.prev != prev:
                            raise AssertionError("broken FIFO back link")
                        if not rec.flags & LIVE or rec.level != lv or rec.price != level.price:
                            raise AssertionError("record does not belong to its level")
                        if (1 if rec.flags & SELL else 0) != sell:
                            raise AssertionError("record on the wrong side")
                        if not 0 <= rec.filled < rec.qty:
                            raise AssertionError("resting order has nothing left")
                        if not last_seq < rec.seq < self._seq:
                            raise AssertionError("FIFO out of sequence")
                        last_seq = rec.seq
                        if rec.flags & INTID:
                            int_ids += 1
                            if map_get(&self._ids, rec.key) != r:
                                raise AssertionError("id map disagrees with the level")
                        elif rec.obj == NULL or self._obj_ids.get((<Order>rec.obj)._id) != r:
                            raise AssertionError("object id map disagrees with the level")
                        if rec.obj != NULL:
                            o = <Order>rec.obj
                            if (o._ticks != rec.price or o._lots != rec.qty or o._filled != rec.filled
                                    or o._seq != rec.seq or o._sell != sell or o._inst is not self._inst
                                    or o._status != (ST_PARTIAL if rec.filled else ST_OPEN)):
                                raise AssertionError("Order object out of step with its record")
                        total += rec.qty - rec.filled
                        count += 1
                        prev = r
                        r = rec.next
                    if prev != level.tail:
                        raise AssertionError("stale level tail")
                    if count == 0:
                        raise AssertionError("empty level left in the book")
                    if level.total != total:
                        raise AssertionError("level total disagrees with its orders")
                    if level.count != count:
                        raise AssertionError("level count disagrees with its orders")
                    seen += count
                    i = t.nodes[i].next
            if seen != self._n:
                raise AssertionError("order count disagrees with the levels")
            if <size_t>int_ids != self._ids.count or seen - int_ids != len(self._obj_ids):
                raise AssertionError("id maps hold orders that are not in a level")
        finally:
            self._release()
