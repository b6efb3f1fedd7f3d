# cython: language_level=3
# Declarations of the compiled order book: C records for resting orders and
# levels, and the Python-facing classes.
from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t

from tradebook._avl cimport Tree
from tradebook._intmap cimport IntMap


cdef enum:
    # Rec.flags
    LIVE = 1
    INTID = 2           # the id is an int kept in the int64 map
    SELL = 4


cdef struct Rec:
    # One resting order (or a dead record still chained in its level).
    int64_t key         # the id, when it is an int that fits in 64 bits
    int64_t price       # ticks
    int64_t qty         # total lots
    int64_t filled      # lots
    int64_t seq         # time priority
    int32_t prev        # FIFO links within the level
    int32_t next        # (``next`` also links the free list)
    int32_t level
    uint8_t flags
    PyObject* obj       # the Order handed out for this record, or NULL (owned)


cdef struct Level:
    int64_t price
    int64_t total       # remaining lots of the live orders
    int32_t count       # live orders
    int32_t dead        # cancelled records still chained, unlinked lazily
    int32_t head
    int32_t tail
    int32_t node        # this level's node in its side's tree (or free-list link)
    uint8_t sell
    PyObject* row       # cached (price, total, count) tuple for depth_raw, or NULL (owned)
    PyObject* snap      # cached LevelSnapshot for depth, or NULL (owned)


cdef enum:
    ST_PENDING = 0
    ST_OPEN = 1
    ST_PARTIAL = 2
    ST_FILLED = 3
    ST_CANCELLED = 4
    ST_REJECTED = 5
    ST_EXPIRED = 6


cdef class Order:
    cdef object _id
    cdef object _owner
    cdef object _client_order_id
    cdef object _symbol
    cdef object _type
    cdef object _tif
    cdef object _stp
    cdef object _price_in       # what the caller gave, validated
    cdef object _quantity_in
    cdef object _inst           # the book's Instrument once added
    cdef bint _sell
    cdef bint _post_only
    cdef int _status
    cdef int64_t _ticks
    cdef int64_t _lots
    cdef int64_t _filled
    cdef int64_t _seq
    # exact decimal form m * 10**e of the inputs, when it fits (fast path)
    cdef bint _pfast
    cdef bint _qfast
    cdef int64_t _pm
    cdef int64_t _qm
    cdef int _pe
    cdef int _qe
    # the new order types' fields (stop, trailing, iceberg, GTD, quote amount: ``_extras.OrderExt``), or None
    cdef public object _ext

    cdef object _take(self, object value, bint is_price)
    cdef object _slow(self, object value, bint is_price)


cdef class OrderBook:
    cdef object _inst
    cdef object _symbol
    cdef object _tick
    cdef object _lot
    cdef bint _has_limits       # the instrument sets limits the engine must check
    cdef bint _tick_fast
    cdef bint _lot_fast
    cdef int64_t _tm
    cdef int64_t _lm
    cdef int _te
    cdef int _le
    cdef Rec* _recs             # 64-byte aligned: one record, one cache line
    cdef void* _recs_block
    cdef int32_t _rec_cap
    cdef int32_t _rec_free
    cdef Level* _levels
    cdef int32_t _lvl_cap
    cdef int32_t _lvl_free
    cdef Tree _trees[2]
    cdef IntMap _ids
    cdef IntMap _prices[2]
    cdef dict _obj_ids
    cdef int64_t _seq
    cdef Py_ssize_t _n
    cdef unsigned long _lock_owner
    cdef int _lock_depth
    cdef int _busy              # a change is under way: the lock holder may read, not change (see _enter)
    cdef object _bids
    cdef object _asks
    cdef object _bid_view       # the PriceLevel last handed out by best_bid / best_ask
    cdef public object _trig    # the engine's waiting stops for this symbol (``_conditional.Triggers``), or None
    cdef int64_t _last          # the engine's last trade price in ticks (0: none yet)
    cdef object _ask_view
    cdef object __weakref__

    cdef inline int _acquire(self) except -1
    cdef inline void _release(self) noexcept
    cdef inline int _enter(self) except -1
    cdef inline void _exit(self) noexcept
    cdef int _reserve(self) except -1
    cdef inline int32_t _new_rec(self) noexcept
    cdef inline void _free_rec(self, int32_t r) noexcept
    cdef void _link(self, int32_t r, int32_t lv) noexcept
    cdef void _unlink(self, int32_t r) noexcept
    cdef void _forget(self, int32_t r) except *
    cdef int32_t _lookup(self, object order_id) except -2
    cdef int32_t _find(self, object order_id) except -2
    cdef object _order_of(self, int32_t r)
    cdef void _sync(self, Order o, Rec* rec, int status) noexcept
    cdef object _release_order(self, int32_t r, int status)
    cdef int32_t _room(self, int sell, int64_t price, int64_t extra) except -2
    cdef inline int _check_seq(self) except -1
    cdef int32_t _insert(self, object order_id, bint intid, int64_t key, int sell, int64_t ticks, int64_t lots,
                         int64_t filled, int64_t seq, Order obj, int32_t lv) except -2
    cdef object _fill(self, int32_t r, int64_t lots, bint want_order)
    cdef object _id_of(self, int32_t r)
    cdef int _amend(self, int32_t r, object lots_obj, object ticks_obj) except -1
    cdef int _compact(self) except -1
    cdef int _refresh(self, int32_t r) except -1
    cdef int _requeue(self, int32_t r) except -1
    cdef int64_t _ticks_of(self, Order o) except 0
    cdef int64_t _lots_of(self, Order o) except 0


cdef bint _int_key(object key, int64_t* out) except -1
cdef int _side_code(object side) except -1
cdef object _tif_of(object value)
cdef object _type_of(object value)
cdef object _stp_of(object value)
cdef void _touch(Level* level) noexcept
cdef Order _new_order(object order_id, bint sell, object inst)
cdef object _check_id(object order_id)
cdef int64_t hidden_lots(Order o) noexcept


cdef inline int64_t cancel_rec(OrderBook book, int32_t r) except -1:
    """Take resting record ``r`` out as ``CANCELLED``; return the lots it still had (never 0).

    The one cancel of a record, inline wherever it is cimported: ``remove_raw`` and both
    batch loops of the engine (an out-of-line method cost a batch cancel 5% more instructions).
    """
    cdef Rec* rec = &book._recs[r]
    cdef int64_t remaining = rec.qty - rec.filled
    book._forget(r)
    book._unlink(r)
    if rec.obj != NULL:
        if (<Order>rec.obj)._ext is not None:
            remaining += hidden_lots(<Order>rec.obj)      # an iceberg's hidden lots leave with it
        book._release_order(r, ST_CANCELLED)
    book._free_rec(r)
    return remaining
