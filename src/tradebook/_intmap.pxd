# cython: language_level=3
# The int64 -> int32 hash map behind the book's id and price look-ups. What a
# command does per call (get, put, delete, the room check) is inline here;
# allocation and growth live in _intmap.pyx.
from libc.stdint cimport int32_t, int64_t, uint64_t


cdef struct Slot:
    int64_t key
    int32_t val         # -1: empty


cdef struct IntMap:
    Slot* slots
    size_t mask
    size_t count
    int shift


cdef int map_init(IntMap* m, int bits) except -1
cdef int map_grow(IntMap* m) except -1
cdef void map_free(IntMap* m) noexcept


cdef inline size_t _home(IntMap* m, int64_t key) noexcept:
    return <size_t>((<uint64_t>key * <uint64_t>0x9E3779B97F4A7C15) >> m.shift)


cdef inline int32_t map_get(IntMap* m, int64_t key) noexcept:
    """The value stored under ``key``, or -1."""
    cdef size_t i = _home(m, key)
    cdef Slot* s
    while True:
        s = &m.slots[i]
        if s.val == -1:
            return -1
        if s.key == key:
            return s.val
        i = (i + 1) & m.mask


cdef inline void map_put(IntMap* m, int64_t key, int32_t val) noexcept:
    """Store ``val`` under ``key``; room for it was made by ``map_reserve``."""
    cdef size_t i = _home(m, key)
    while m.slots[i].val != -1:
        if m.slots[i].key == key:
            m.slots[i].val = val
            return
        i = (i + 1) & m.mask
    m.slots[i].key = key
    m.slots[i].val = val
    m.count += 1


cdef inline void map_del(IntMap* m, int64_t key) noexcept:
    """Delete a present key, shifting the following run back (no tombstones)."""
    cdef size_t i = _home(m, key)
    cdef size_t j, k
    while m.slots[i].key != key or m.slots[i].val == -1:
        i = (i + 1) & m.mask
    j = i
    while True:
        j = (j + 1) & m.mask
        if m.slots[j].val == -1:
            break
        k = _home(m, m.slots[j].key)
        # Leave slot j alone if its home lies cyclically in (i, j].
        if (i <= j and i < k and k <= j) or (i > j and (i < k or k <= j)):
            continue
        m.slots[i] = m.slots[j]
        i = j
    m.slots[i].val = -1
    m.count -= 1


cdef inline int map_reserve(IntMap* m) except -1:
    """Make sure one more key fits under a load factor of 1/2 without allocating later."""
    if (m.count + 1) * 2 <= m.mask + 1:
        return 0
    return map_grow(m)
