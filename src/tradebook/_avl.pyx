# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Compiled ``PriceTree``: an AVL tree keyed by int64 price ticks.

The nodes live in one growable C array and link to each other by index, so the
tree costs the garbage collector nothing. The nodes also form a doubly linked
list in key order: minimum and maximum are O(1), iteration is O(1) per item.
The pure-Python twin is ``_avl_py.py``; both behave identically.
"""

from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport int32_t, int64_t

cdef int32_t NIL = -1


# -- the C tree --------------------------------------------------------------

cdef int tree_init(Tree* t) except -1:
    t.nodes = NULL
    t.cap = 0
    t.root = NIL
    t.head = NIL
    t.tail = NIL
    t.count = 0
    t.free = NIL
    return 0


cdef void tree_dealloc(Tree* t) noexcept:
    PyMem_Free(t.nodes)
    t.nodes = NULL
    t.cap = 0
    t.count = 0
    t.root = t.head = t.tail = t.free = NIL


cdef int tree_reserve(Tree* t) except -1:
    """Make sure one more node can be inserted without allocating."""
    cdef int32_t new_cap, i
    cdef Node* grown
    if t.free != NIL:
        return 0
    if t.cap >= 0x3FFFFFFF:
        raise MemoryError("price tree is full")
    new_cap = 64 if t.cap == 0 else t.cap * 2
    grown = <Node*>PyMem_Realloc(t.nodes, new_cap * sizeof(Node))
    if grown == NULL:
        raise MemoryError()
    t.nodes = grown
    for i in range(t.cap, new_cap - 1):
        grown[i].next = i + 1
    grown[new_cap - 1].next = NIL
    t.free = t.cap
    t.cap = new_cap
    return 0


cdef inline int32_t _h(Node* n, int32_t i) noexcept:
    return n[i].height if i != NIL else 0


cdef inline void _fix(Node* n, int32_t i) noexcept:
    cdef int32_t lh = _h(n, n[i].left)
    cdef int32_t rh = _h(n, n[i].right)
    n[i].height = (lh if lh > rh else rh) + 1


cdef int32_t _rotate_right(Node* n, int32_t i) noexcept:
    cdef int32_t p = n[i].left
    n[i].left = n[p].right
    n[p].right = i
    _fix(n, i)
    _fix(n, p)
    return p


cdef int32_t _rotate_left(Node* n, int32_t i) noexcept:
    cdef int32_t p = n[i].right
    n[i].right = n[p].left
    n[p].left = i
    _fix(n, i)
    _fix(n, p)
    return p


cdef int32_t _rebalance(Node* n, int32_t i) noexcept:
    _fix(n, i)
    cdef int32_t balance = _h(n, n[i].left) - _h(n, n[i].right)
    cdef int32_t child
    if balance > 1:
        child = n[i].left
        if _h(n, n[child].left) < _h(n, n[child].right):
            n[i].left = _rotate_left(n, child)
        return _rotate_right(n, i)
    if balance < -1:
        child = n[i].right
        if _h(n, n[child].right) < _h(n, n[child].left):
            n[i].right = _rotate_right(n, child)
        return _rotate_left(n, i)
    return i


cdef int32_t tree_find(Tree* t, int64_t key) noexcept:
    cdef Node* n = t.nodes
    cdef int32_t i = t.root
    while i != NIL:
        if key < n[i].key:
            i = n[i].left
        elif key > n[i].key:
            i = n[i].right
        else:
            return i
    return NIL


cdef int32_t _insert(Tree* t, int32_t i, int32_t new, int32_t before, int32_t after) noexcept:
    # ``before``/``after`` track the closest smaller and larger keys on the way down.
    cdef Node* n = t.nodes
    if i == NIL:
        n[new].prev = before
        n[new].next = after
        if before == NIL:
            t.head = new
        else:
            n[before].next = new
        if after == NIL:
            t.tail = new
        else:
            n[after].prev = new
        return new
    if n[new].key < n[i].key:
        n[i].left = _insert(t, n[i].left, new, before, i)
    else:
        n[i].right = _insert(t, n[i].right, new, i, after)
    return _rebalance(n, i)


cdef int32_t tree_insert(Tree* t, int64_t key, int32_t payload) noexcept:
    """Insert an absent key; the caller has called ``tree_reserve``. Returns the node."""
    cdef int32_t new = t.free
    cdef Node* n = t.nodes
    t.free = n[new].next
    n[new].key = key
    n[new].left = NIL
    n[new].right = NIL
    n[new].height = 1
    n[new].payload = payload
    t.root = _insert(t, t.root, new, NIL, NIL)
    t.count += 1
    return new


cdef int32_t _pop_min(Node* n, int32_t i, int32_t* smallest) noexcept:
    if n[i].left == NIL:
        smallest[0] = i
        return n[i].right
    n[i].left = _pop_min(n, n[i].left, smallest)
    return _rebalance(n, i)


cdef int32_t _remove(Node* n, int32_t i, int64_t key) noexcept:
    cdef int32_t succ = NIL
    cdef int32_t rest
    if key < n[i].key:
        n[i].left = _remove(n, n[i].left, key)
    elif key > n[i].key:
        n[i].right = _remove(n, n[i].right, key)
    else:
        if n[i].left == NIL:
            return n[i].right
        if n[i].right == NIL:
            return n[i].left
        # Move the successor node itself into this place (no key copying), so
        # node indices held elsewhere stay valid.
        rest = _pop_min(n, n[i].right, &succ)
        n[succ].left = n[i].left
        n[succ].right = rest
        i = succ
    return _rebalance(n, i)


cdef void tree_remove(Tree* t, int32_t node) noexcept:
    """Remove a node that is in the tree and return it to the free list."""
    cdef Node* n = t.nodes
    t.root = _remove(n, t.root, n[node].key)
    if n[node].prev == NIL:
        t.head = n[node].next
    else:
        n[n[node].prev].next = n[node].next
    if n[node].next == NIL:
        t.tail = n[node].prev
    else:
        n[n[node].next].prev = n[node].prev
    n[node].next = t.free
    t.free = node
    t.count -= 1


cdef int tree_height(Tree* t) noexcept:
    return _h(t.nodes, t.root)


cdef int _walk(Node* n, int32_t i, bint has_lo, int64_t lo, bint has_hi, int64_t hi, list order) except -2:
    if i == NIL:
        return 0
    if (has_lo and n[i].key <= lo) or (has_hi and n[i].key >= hi):
        raise AssertionError("AVL order violated")
    cdef int lh = _walk(n, n[i].left, has_lo, lo, True, n[i].key, order)
    order.append(i)
    cdef int rh = _walk(n, n[i].right, True, n[i].key, has_hi, hi, order)
    if n[i].height != (lh if lh > rh else rh) + 1:
        raise AssertionError("stale height")
    if lh - rh > 1 or rh - lh > 1:
        raise AssertionError("AVL balance violated")
    return n[i].height


cdef str tree_check(Tree* t):
    """Verify every invariant of the tree; raises AssertionError."""
    cdef list order = []
    cdef list linked = []
    _walk(t.nodes, t.root, False, 0, False, 0, order)
    if len(order) != t.count:
        raise AssertionError("length disagrees with node count")
    cdef int32_t i = t.head
    cdef int32_t prev = NIL
    while i != NIL:
        if t.nodes[i].prev != prev:
            raise AssertionError("broken prev link")
        linked.append(i)
        prev = i
        i = t.nodes[i].next
    if prev != t.tail:
        raise AssertionError("cached max is stale")
    if linked != order:
        raise AssertionError("ordered list disagrees with the tree")
    return "ok"


# -- the public class ------------------------------------------------------------

cdef int64_t _key(object key) except? -1:
    if type(key) is not int:
        if isinstance(key, int) and not isinstance(key, bool):
            key = int(key)
        else:
            raise TypeError(f"PriceTree keys are int price ticks; got {type(key).__name__} {key!r}")
    if not -(1 << 63) <= key < (1 << 63):
        raise OverflowError(f"PriceTree key {key} does not fit in 64 bits")
    return <int64_t>key


cdef class PriceTree:
    """A balanced (AVL) sorted map from integer keys (price ticks) to values.

    ``insert`` and ``remove`` cost O(log n); ``get`` and ``in`` O(log n);
    ``min_item``/``max_item`` O(1) (cached); iteration O(1) per item.

    >>> tree = PriceTree()
    >>> for key in (105, 101, 103):
    ...     tree.insert(key, str(key))
    >>> list(tree.items())
    [(101, '101'), (103, '103'), (105, '105')]
    >>> tree.min_item(), tree.max_item(), tree.height
    ((101, '101'), (105, '105'), 2)
    """

    def __cinit__(self):
        tree_init(&self._t)
        self._values = []

    def __dealloc__(self):
        tree_dealloc(&self._t)

    def __len__(self):
        return self._t.count

    def __bool__(self):
        return self._t.count > 0

    @property
    def height(self):
        """Height of the tree: 0 when empty, 1 for a single node."""
        return tree_height(&self._t)

    def __contains__(self, key):
        if type(key) is not int and not (isinstance(key, int) and not isinstance(key, bool)):
            return False
        if not -(1 << 63) <= key < (1 << 63):
            return False
        return tree_find(&self._t, <int64_t>key) != NIL

    def get(self, key, default=None):
        """Return the value stored under ``key``, or ``default``."""
        cdef int32_t i = tree_find(&self._t, _key(key))
        return default if i == NIL else self._values[i]

    def insert(self, key, value):
        """Store ``value`` under ``key``, replacing the value of an existing key. O(log n)."""
        cdef int64_t k = _key(key)
        cdef int32_t i = tree_find(&self._t, k)
        if i != NIL:
            self._values[i] = value
            return
        tree_reserve(&self._t)
        if len(self._values) < self._t.cap:
            self._values.extend([None] * (self._t.cap - len(self._values)))
        i = tree_insert(&self._t, k, 0)
        self._values[i] = value

    def remove(self, key):
        """Remove ``key``; raises ``KeyError`` if it is absent. O(log n)."""
        cdef int32_t i = tree_find(&self._t, _key(key))
        if i == NIL:
            raise KeyError(key)
        tree_remove(&self._t, i)
        self._values[i] = None

    def min_item(self):
        """The smallest ``(key, value)``, or None when empty. O(1)."""
        cdef int32_t i = self._t.head
        return None if i == NIL else (self._t.nodes[i].key, self._values[i])

    def max_item(self):
        """The largest ``(key, value)``, or None when empty. O(1)."""
        cdef int32_t i = self._t.tail
        return None if i == NIL else (self._t.nodes[i].key, self._values[i])

    def items(self, reverse=False):
        """Yield ``(key, value)`` in key order (descending with ``reverse=True``)."""
        cdef int32_t i = self._t.tail if reverse else self._t.head
        while i != NIL:
            item = (self._t.nodes[i].key, self._values[i])
            i = self._t.nodes[i].prev if reverse else self._t.nodes[i].next
            yield item

    def keys(self, reverse=False):
        """Yield the keys in order."""
        for key, _ in self.items(reverse):
            yield key

    def values(self, reverse=False):
        """Yield the values in key order."""
        for _, value in self.items(reverse):
            yield value

    def __iter__(self):
        return self.keys()

    def __repr__(self):
        return f"PriceTree({dict(self.items())!r})"

    def _check(self):
        """Walk the tree and verify every invariant; raises ``AssertionError`` on damage."""
        tree_check(&self._t)
