# cython: language_level=3
# Declarations of the compiled matching engine.
from cpython.object cimport PyObject
from libc.stdint cimport int8_t, int32_t, int64_t

from tradebook._book cimport Order, OrderBook


cdef struct CmdRow:
    # One row of a ``COMMAND_DTYPE`` array (``_arrays.py``): 56 bytes, natural alignment.
    int8_t op
    int8_t side
    int64_t id
    int64_t price
    int64_t quantity
    int64_t stop
    int64_t display
    int64_t expire_at


cdef struct TradeRow:
    # One row of a ``TRADE_DTYPE`` array: 48 bytes, natural alignment.
    int64_t trade_id
    int64_t maker_id
    int64_t taker_id
    int64_t price
    int64_t lots
    int8_t maker_side


cdef struct TradeSink:
    # While ``execute_array`` runs, ``_match`` appends trades here instead of making ``Trade`` objects.
    TradeRow* rows
    Py_ssize_t n
    Py_ssize_t cap
    int64_t taker_key   # the current command's id


cdef struct Taker:
    # An incoming order while it matches: C state only, no Order object needed.
    int64_t ticks       # limit price (0 for a market order)
    int64_t lots        # total quantity (self-trade DECREMENT lowers it)
    int64_t filled
    int64_t seq
    int64_t quote       # a quote-sized market order's budget left (tick*lot units); -1 for any other order
    int status
    int mode            # effective self-trade prevention mode (STP_* codes)
    bint sell
    bint market
    bint post_only
    bint fok
    bint gtc
    PyObject* id        # borrowed: the caller keeps the id and owner alive
    PyObject* owner
    # execute_array: trades go to these C rows (not Trade objects) and the id is sink.taker_key; NULL
    # otherwise. Per taker, not per engine: another book's command may run meanwhile (another thread).
    TradeSink* sink


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
    cdef list _triggered        # reports of the stops this command triggered, or None


cdef class MatchingEngine:
    cdef object _stp
    cdef int _stp_code
    cdef readonly dict _books
    cdef OrderBook _single
    cdef int64_t _next_trade_id
    cdef list _listeners
    cdef dict _delivering       # per book publishing right now: the updates queued behind the one in hand
    cdef ExecutionReport _spare     # execute_batch's trade collector, kept between batches
    cdef public object _ot_state    # the engine clock and GTD index (``_ordertypes``), made on first use
    cdef object __weakref__

    cdef OrderBook _book_for(self, object symbol)
    cdef int _publish(self, OrderBook book, list touched, list trades) except -1
    cdef int _prepare(self, Taker* tk, object order_id, object owner, object tif, object stp) except -1
    cdef int _lock_and_run(self, OrderBook book, Taker* tk, Order obj, object tif, ExecutionReport report,
                           list touched) except -1
    cdef int _execute(self, OrderBook book, Taker* tk, Order obj, object tif, ExecutionReport report,
                      list touched) except -1
    cdef int _check_counters(self, OrderBook book, bint sell, bint market, int64_t ticks) except -1
    cdef bint _fillable(self, OrderBook book, Taker* tk) except -1
    cdef bint _match(self, OrderBook book, Taker* tk, ExecutionReport report, list touched) except -1
    cdef ExecutionReport _amend(self, OrderBook book, object order_id, object lots, object ticks)
    cdef ExecutionReport _amend_iceberg(self, OrderBook book, int32_t r, Order o, object lots, object ticks)
    cdef list _cascade_after(self, OrderBook book, list trades)
    cdef object _batch_rows(self, object commands, object symbol, const int64_t* cmd, Py_ssize_t n)
    cdef Py_ssize_t _run_rows(self, OrderBook book, const CmdRow* rows, Py_ssize_t n, int8_t* st, int64_t* out,
                              TradeSink* sink) except -1
