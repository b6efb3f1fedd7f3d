# cython: language_level=3
# The AVL tree over a growable pool of C nodes, shared by PriceTree and the book.
from libc.stdint cimport int32_t, int64_t


cdef struct Node:
    int64_t key
    int32_t left
    int32_t right
    int32_t prev        # in-order neighbours: the nodes also form a sorted list
    int32_t next        # (and ``next`` links the free list of unused nodes)
    int32_t height
    int32_t payload


cdef struct Tree:
    Node* nodes
    int32_t cap
    int32_t root
    int32_t head        # smallest key (cached minimum)
    int32_t tail        # largest key (cached maximum)
    int32_t count
    int32_t free


cdef int tree_init(Tree* t) except -1
cdef void tree_dealloc(Tree* t) noexcept
cdef int tree_reserve(Tree* t) except -1
cdef int32_t tree_find(Tree* t, int64_t key) noexcept
cdef int32_t tree_insert(Tree* t, int64_t key, int32_t payload) noexcept
cdef void tree_remove(Tree* t, int32_t node) noexcept
cdef int tree_height(Tree* t) noexcept
cdef str tree_check(Tree* t)


cdef class PriceTree:
    cdef Tree _t
    cdef list _values
    cdef object __weakref__
