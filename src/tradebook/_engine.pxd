# cython: language_level=3
# Declarations of the compiled matching engine.
from libc.stdint cimport int64_t

from tradebook._book cimport Order, OrderBook


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
    cdef object _order
    cdef list _trades
    cdef list _cancelled


cdef class MatchingEngine:
    cdef object _stp
    cdef int _stp_code
    cdef dict _books
    cdef dict _limited
    cdef OrderBook _single
    cdef int64_t _next_trade_id
    cdef list _listeners
    cdef object __weakref__

    cdef OrderBook _book_for(self, object symbol)
    cdef ExecutionReport _run(self, OrderBook book, Order o)
    cdef int _execute(self, OrderBook book, Order o, list trades, list cancelled, list touched) except -1
    cdef bint _fillable(self, OrderBook book, Order o, bint market, int mode) except -1
    cdef bint _match(self, OrderBook book, Order o, bint market, int mode, list trades, list cancelled,
                     list touched) except -1
    cdef ExecutionReport _amend(self, OrderBook book, object order_id, object lots, object ticks)
