# cython: language_level=3
# Declarations of the compiled matching engine.
from cpython.object cimport PyObject
from libc.stdint cimport int64_t

from tradebook._book cimport Order, OrderBook


cdef struct Taker:
    # An incoming order while it matches: C state only, no Order object needed.
    int64_t ticks       # limit price (0 for a market order)
    int64_t lots        # total quantity (self-trade DECREMENT lowers it)
    int64_t filled
    int64_t seq
    int status
    int mode            # effective self-trade prevention mode (STP_* codes)
    bint sell
    bint market
    bint post_only
    bint fok
    bint gtc
    PyObject* id        # borrowed: the caller keeps the id and owner alive
    PyObject* owner


cdef class Trade:
    cdef int64_t _id
    cdef int64_t _ticks
    cdef int64_t _lots
    cdef object _inst
    cdef object _maker_id
    cdef object _taker_id
    cdef object _maker_owner
    cdef object _taker_owner
    cdef bint _sell


cdef class ExecutionReport:
    cdef object _order          # the Order, or None until a raw submit's is asked for
    cdef list _trades
    cdef list _cancelled
    # a raw submit's final state, to make its Order on request
    cdef object _inst
    cdef object _oid
    cdef object _owner
    cdef object _tif
    cdef Taker _tk


cdef class MatchingEngine:
    cdef object _stp
    cdef int _stp_code
    cdef dict _books
    cdef OrderBook _single
    cdef int64_t _next_trade_id
    cdef list _listeners
    cdef dict _delivering       # per book publishing right now: the updates queued behind the one in hand
    cdef object __weakref__

    cdef OrderBook _book_for(self, object symbol)
    cdef int _prepare(self, Taker* tk, object order_id, object owner, object tif, object stp) except -1
    cdef int _lock_and_run(self, OrderBook book, Taker* tk, Order obj, object tif, ExecutionReport report,
                           list touched) except -1
    cdef int _execute(self, OrderBook book, Taker* tk, Order obj, object tif, ExecutionReport report,
                      list touched) except -1
    cdef int _check_counters(self, OrderBook book, bint sell, bint market, int64_t ticks) except -1
    cdef bint _fillable(self, OrderBook book, Taker* tk) except -1
    cdef bint _match(self, OrderBook book, Taker* tk, ExecutionReport report, list touched) except -1
    cdef ExecutionReport _amend(self, OrderBook book, object order_id, object lots, object ticks)
