# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The int64 -> int32 hash map's allocation and growth (look-ups are inline in ``_intmap.pxd``).

Open addressing with linear probing, a Fibonacci hash, a load factor of at most
1/2 and deletion by backward shift. The book keys it by int order ids and level
prices and stores record and level indices. The pure-Python book uses a dict.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc


cdef int map_init(IntMap* m, int bits) except -1:
    cdef size_t cap = (<size_t>1) << bits
    cdef size_t i
    m.slots = <Slot*>PyMem_Malloc(cap * sizeof(Slot))
    if m.slots == NULL:
        raise MemoryError()
    for i in range(cap):
        m.slots[i].val = -1
    m.mask = cap - 1
    m.count = 0
    m.shift = 64 - bits
    return 0


cdef int map_grow(IntMap* m) except -1:
    """Double the table and rehash every key into it; on MemoryError the map is left as it was."""
    cdef IntMap bigger
    cdef size_t old_cap = m.mask + 1
    cdef size_t i
    cdef int bits = 64 - m.shift + 1
    if bits > 40:
        raise MemoryError("id map is full")
    map_init(&bigger, bits)  # the new table first: if it cannot be had, nothing has changed
    for i in range(old_cap):
        if m.slots[i].val != -1:
            map_put(&bigger, m.slots[i].key, m.slots[i].val)
    PyMem_Free(m.slots)
    m[0] = bigger
    return 0


cdef void map_free(IntMap* m) noexcept:
    PyMem_Free(m.slots)
    m.slots = NULL
