"""Pure-Python ``PriceTree``: an AVL tree keyed by integer price ticks.

The compiled twin is ``_avl.pyx``; both behave identically. Nodes also form a
doubly linked list in key order, so the minimum and maximum are O(1) and
in-order iteration costs O(1) per item.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["PriceTree"]


class _Node:
    __slots__ = ("key", "value", "left", "right", "height", "prev", "next")

    def __init__(self, key: int, value: Any) -> None:
        self.key = key
        self.value = value
        self.left: _Node | None = None
        self.right: _Node | None = None
        self.height = 1
        self.prev: _Node | None = None
        self.next: _Node | None = None


def _h(node: _Node | None) -> int:
    return node.height if node is not None else 0


def _fix(node: _Node) -> None:
    lh = node.left.height if node.left is not None else 0
    rh = node.right.height if node.right is not None else 0
    node.height = (lh if lh > rh else rh) + 1


def _rotate_right(node: _Node) -> _Node:
    pivot = node.left
    assert pivot is not None
    node.left = pivot.right
    pivot.right = node
    _fix(node)
    _fix(pivot)
    return pivot


def _rotate_left(node: _Node) -> _Node:
    pivot = node.right
    assert pivot is not None
    node.right = pivot.left
    pivot.left = node
    _fix(node)
    _fix(pivot)
    return pivot


def _rebalance(node: _Node) -> _Node:
    _fix(node)
    balance = _h(node.left) - _h(node.right)
    if balance > 1:
        assert node.left is not None
        if _h(node.left.left) < _h(node.left.right):
            node.left = _rotate_left(node.left)
        return _rotate_right(node)
    if balance < -1:
        assert node.right is not None
        if _h(node.right.right) < _h(node.right.left):
            node.right = _rotate_right(node.right)
        return _rotate_left(node)
    return node


def _check_key(key: object) -> int:
    if type(key) is not int:
        if isinstance(key, int) and not isinstance(key, bool):
            return int(key)
        raise TypeError(f"PriceTree keys are int price ticks; got {type(key).__name__} {key!r}")
    if not -(1 << 63) <= key < (1 << 63):
        raise OverflowError(f"PriceTree key {key} does not fit in 64 bits")
    return key


class PriceTree:
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

    __slots__ = ("_root", "_head", "_tail", "_len")

    def __init__(self) -> None:
        self._root: _Node | None = None
        self._head: _Node | None = None
        self._tail: _Node | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    @property
    def height(self) -> int:
        """Height of the tree: 0 when empty, 1 for a single node."""
        return _h(self._root)

    def _find(self, key: int) -> _Node | None:
        node = self._root
        while node is not None:
            if key < node.key:
                node = node.left
            elif key > node.key:
                node = node.right
            else:
                return node
        return None

    def __contains__(self, key: object) -> bool:
        if type(key) is not int and not (isinstance(key, int) and not isinstance(key, bool)):
            return False
        return self._find(key) is not None

    def get(self, key: int, default: Any = None) -> Any:
        """Return the value stored under ``key``, or ``default``."""
        node = self._find(_check_key(key))
        return default if node is None else node.value

    def insert(self, key: int, value: Any) -> None:
        """Store ``value`` under ``key``, replacing the value of an existing key. O(log n)."""
        key = _check_key(key)
        node = self._find(key)
        if node is not None:
            node.value = value
            return
        new = _Node(key, value)
        self._root = self._insert(self._root, new, None, None)
        self._len += 1

    def _insert(self, node: _Node | None, new: _Node, before: _Node | None, after: _Node | None) -> _Node:
        # ``before``/``after`` track the closest smaller and larger keys on the way down.
        if node is None:
            new.prev = before
            new.next = after
            if before is None:
                self._head = new
            else:
                before.next = new
            if after is None:
                self._tail = new
            else:
                after.prev = new
            return new
        if new.key < node.key:
            node.left = self._insert(node.left, new, before, node)
        else:
            node.right = self._insert(node.right, new, node, after)
        return _rebalance(node)

    def remove(self, key: int) -> None:
        """Remove ``key``; raises ``KeyError`` if it is absent. O(log n)."""
        key = _check_key(key)
        target = self._find(key)
        if target is None:
            raise KeyError(key)
        self._root = self._remove(self._root, key)
        if target.prev is None:
            self._head = target.next
        else:
            target.prev.next = target.next
        if target.next is None:
            self._tail = target.prev
        else:
            target.next.prev = target.prev
        target.prev = target.next = target.left = target.right = None
        self._len -= 1

    def _remove(self, node: _Node | None, key: int) -> _Node | None:
        assert node is not None
        if key < node.key:
            node.left = self._remove(node.left, key)
        elif key > node.key:
            node.right = self._remove(node.right, key)
        else:
            if node.left is None:
                return node.right
            if node.right is None:
                return node.left
            # Move the successor node itself into this place (no key copying),
            # so nodes keep their identity.
            rest, succ = _pop_min(node.right)
            succ.left = node.left
            succ.right = rest
            node = succ
        return _rebalance(node)

    def min_item(self) -> tuple[int, Any] | None:
        """The smallest ``(key, value)``, or None when empty. O(1)."""
        head = self._head
        return None if head is None else (head.key, head.value)

    def max_item(self) -> tuple[int, Any] | None:
        """The largest ``(key, value)``, or None when empty. O(1)."""
        tail = self._tail
        return None if tail is None else (tail.key, tail.value)

    def items(self, reverse: bool = False) -> Iterator[tuple[int, Any]]:
        """Yield ``(key, value)`` in key order (descending with ``reverse=True``)."""
        if reverse:
            node = self._tail
            while node is not None:
                yield node.key, node.value
                node = node.prev
        else:
            node = self._head
            while node is not None:
                yield node.key, node.value
                node = node.next

    def keys(self, reverse: bool = False) -> Iterator[int]:
        """Yield the keys in order."""
        for key, _ in self.items(reverse):
            yield key

    def values(self, reverse: bool = False) -> Iterator[Any]:
        """Yield the values in key order."""
        for _, value in self.items(reverse):
            yield value

    def __iter__(self) -> Iterator[int]:
        return self.keys()

    def __repr__(self) -> str:
        return f"PriceTree({dict(self.items())!r})"

    def _check(self) -> None:
        """Walk the tree and verify every invariant; raises ``AssertionError`` on damage."""
        count = 0
        inorder: list[_Node] = []

        def walk(node: _Node | None, lo: int | None, hi: int | None) -> int:
            nonlocal count
            if node is None:
                return 0
            assert lo is None or node.key > lo, "AVL order violated"
            assert hi is None or node.key < hi, "AVL order violated"
            lh = walk(node.left, lo, node.key)
            inorder.append(node)
            rh = walk(node.right, node.key, hi)
            assert node.height == max(lh, rh) + 1, "stale height"
            assert abs(lh - rh) <= 1, "AVL balance violated"
            count += 1
            return node.height

        walk(self._root, None, None)
        assert count == self._len, "length disagrees with node count"
        linked: list[_Node] = []
        node = self._head
        prev = None
        while node is not None:
            assert node.prev is prev, "broken prev link"
            linked.append(node)
            prev, node = node, node.next
        assert prev is self._tail, "cached max is stale"
        assert linked == inorder, "ordered list disagrees with the tree"


def _pop_min(node: _Node) -> tuple[_Node | None, _Node]:
    if node.left is None:
        return node.right, node
    node.left, smallest = _pop_min(node.left)
    return _rebalance(node), smallest
