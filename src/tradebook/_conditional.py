"""Orders that wait off the book: stops, stop-limits and trailing stops, and GTD expiry.

Shared by both backends: the engines call in only when a symbol holds waiting
stops (after a command that traded) or when an order of a new type arrives, so
the plain path pays nothing here. Everything is deterministic: the same
commands give the same triggers and expiries on both backends.

Structures (n waiting stops, k of them triggered by a trade):

- plain stops in two heaps, BUY by (stop, acceptance) and SELL by (-stop,
  acceptance): a trade pops exactly the triggered ones, O(k log n);
- trailing stops in groups that share a reference price. A trade at price p
  moves every reference it passes to p, which merges those groups into one
  (the smaller group's members move into the larger: O(log n) amortised per
  stop over its life); a heap of group tops finds the triggered ones,
  O((k + 1) log n) amortised;
- GTD orders in a heap by (expire_at, entry): ``advance_time`` pops the due
  ones, O((k + 1) log n). Orders that left the book early are dropped lazily.

Cancelled stops stay in the heaps and are skipped when they surface.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Hashable
from typing import Any

from ._extras import OrderExt
from .enums import OrderStatus, OrderType, Side

__all__ = ["Expiry", "Triggers"]

_UNTRIGGERED = OrderStatus.UNTRIGGERED
_TRAILING = OrderType.TRAILING_STOP
_SELL = Side.SELL


class _Group:
    """Trailing stops of one side that share a reference price."""

    __slots__ = ("ref", "heap", "sell")

    def __init__(self, ref: int, sell: bool) -> None:
        self.ref = ref
        self.sell = sell
        self.heap: list[tuple[int, int, Any]] = []  # (offset, acceptance, order): the nearest stop first


class _Trailing:
    """One side's trailing stops. SELL: reference = highest trade, stop = ref - offset, triggers at p <= stop.
    BUY: reference = lowest trade, stop = ref + offset, triggers at p >= stop."""

    __slots__ = ("sell", "groups", "refs", "tops", "unset")

    def __init__(self, sell: bool) -> None:
        self.sell = sell
        self.groups: dict[int, _Group] = {}
        self.refs: list[int] = []  # sorted reference prices of the groups
        self.tops: list[tuple[int, int]] = []  # (key, ref): key = -stop (SELL) or stop (BUY) of the group's nearest
        self.unset: list[tuple[int, int, Any]] = []  # accepted before any trade: no reference yet

    def add(self, ext: OrderExt, order: Any, ref: int | None) -> None:
        assert ext.trail is not None
        entry = (ext.trail, ext.accepted, order)
        if ref is None:
            self.unset.append(entry)
            ext.ref = None
            return
        group = self._group(ref)
        heapq.heappush(group.heap, entry)
        ext.group = group
        self._push_top(group)

    def _group(self, ref: int) -> _Group:
        group = self.groups.get(ref)
        if group is None:
            group = self.groups[ref] = _Group(ref, self.sell)
            insort(self.refs, ref)
        return group

    def _push_top(self, group: _Group) -> None:
        if group.heap:
            off = group.heap[0][0]
            heapq.heappush(self.tops, (-(group.ref - off) if self.sell else group.ref + off, group.ref))

    def trade(self, p: int, out: list[tuple[int, int, Any]]) -> None:
        """Move the references past ``p`` to ``p``, then append the triggered (stop, acceptance, order)."""
        if self.unset:
            group = self._group(p)
            for entry in self.unset:
                heapq.heappush(group.heap, entry)
                entry[2]._ext.group = group
            self.unset = []
            self._push_top(group)
        refs = self.refs
        if self.sell:
            lo, hi = 0, bisect_left(refs, p)
        else:
            lo, hi = bisect_right(refs, p), len(refs)
        if hi > lo:
            moved = refs[lo:hi]
            del refs[lo:hi]
            target = self.groups.pop(p, None)
            if target is not None:
                refs.remove(p)
            for ref in moved:
                moving: _Group | None = self.groups.pop(ref)
                assert moving is not None
                if target is None or len(moving.heap) > len(target.heap):
                    moving, target = target, moving  # the smaller group moves into the larger
                if moving is not None:
                    assert target is not None
                    for entry in moving.heap:
                        heapq.heappush(target.heap, entry)
                        entry[2]._ext.group = target
            assert target is not None
            target.ref = p
            self.groups[p] = target
            insort(refs, p)
            self._push_top(target)
        tops = self.tops
        while tops:
            key, ref = tops[0]
            found = self.groups.get(ref)
            heap = None if found is None else found.heap
            while heap and heap[0][2].status is not _UNTRIGGERED:
                heapq.heappop(heap)  # cancelled or expired while waiting
            if not heap:
                heapq.heappop(tops)
                if found is not None:
                    del self.groups[ref]
                    self.refs.remove(ref)
                continue
            assert found is not None
            off = heap[0][0]
            stop = ref - off if self.sell else ref + off
            if key != (-stop if self.sell else stop):
                heapq.heappop(tops)  # stale: the group moved or its nearest stop left
                self._push_top(found)
                continue
            if (p > stop) if self.sell else (p < stop):
                break
            _, accepted, order = heapq.heappop(heap)
            order._ext.group = None
            order._ext.ref = ref
            heapq.heappop(tops)
            self._push_top(found)
            out.append((stop, accepted, order))


def _by_stop(entry: tuple[int, int, Any]) -> tuple[int, int]:
    return entry[0], entry[1]


def _by_stop_descending(entry: tuple[int, int, Any]) -> tuple[int, int]:
    return -entry[0], entry[1]


class Triggers:
    """A symbol's waiting stops, and its last trade price."""

    __slots__ = ("waiting", "buy", "sell", "trail_buy", "trail_sell")

    def __init__(self) -> None:
        self.waiting: dict[Hashable, Any] = {}  # id -> Order, UNTRIGGERED
        self.buy: list[tuple[int, int, Any]] = []  # (stop, acceptance, order)
        self.sell: list[tuple[int, int, Any]] = []  # (-stop, acceptance, order)
        self.trail_buy = _Trailing(False)
        self.trail_sell = _Trailing(True)

    def add(self, order: Any, last: int | None) -> None:
        """Start watching an accepted stop (its extras bound, ``accepted`` set)."""
        ext: OrderExt = order._ext
        sell = order.side is _SELL
        if order.type is _TRAILING:
            (self.trail_sell if sell else self.trail_buy).add(ext, order, last)
        elif sell:
            assert ext.stop is not None
            heapq.heappush(self.sell, (-ext.stop, ext.accepted, order))
        else:
            assert ext.stop is not None
            heapq.heappush(self.buy, (ext.stop, ext.accepted, order))
        self.waiting[order.id] = order

    def remove(self, order_id: Hashable) -> Any:
        """Stop watching a stop (cancelled or expired); the heaps drop it lazily."""
        return self.waiting.pop(order_id)

    def check(self, prices: list[int]) -> list[Any]:
        """The stops that trades at ``prices`` (in print order) trigger, in the order they run.

        BUY stops by ascending stop price, then SELL stops by descending stop
        price, ties by acceptance. Each leaves the waiting set.
        """
        buys: list[tuple[int, int, Any]] = []
        sells: list[tuple[int, int, Any]] = []
        buy, sell = self.buy, self.sell
        for p in prices:
            while buy and buy[0][0] <= p:
                stop, accepted, order = heapq.heappop(buy)
                if order.status is _UNTRIGGERED:
                    buys.append((stop, accepted, order))
            while sell and -sell[0][0] >= p:
                key, accepted, order = heapq.heappop(sell)
                if order.status is _UNTRIGGERED:
                    sells.append((-key, accepted, order))
            trail = self.trail_buy
            if trail.groups or trail.unset:
                trail.trade(p, buys)
            trail = self.trail_sell
            if trail.groups or trail.unset:
                trail.trade(p, sells)
        if not buys and not sells:
            return []
        if len(buys) > 1:
            buys.sort(key=_by_stop)
        if len(sells) > 1:
            sells.sort(key=_by_stop_descending)
        out = []
        waiting = self.waiting
        for stop, _, order in buys + sells:
            if waiting.pop(order.id, None) is order:
                order._ext.stop = stop
                out.append(order)
        return out

    def orders(self) -> list[Any]:
        """The waiting stops in acceptance order (snapshots)."""
        return sorted(self.waiting.values(), key=lambda o: o._ext.accepted)


class Expiry:
    """GTD orders of an engine (resting or waiting), by expiry."""

    __slots__ = ("heap", "count")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, str, Any]] = []  # (expire_at, entry, symbol, order)
        self.count = 0

    def add(self, symbol: str, order: Any) -> None:
        self.count += 1
        heapq.heappush(self.heap, (order._ext.expire_at, self.count, symbol, order))

    def due(self, now: int, live: Any) -> list[tuple[str, Any]]:
        """Pop the orders with ``expire_at <= now`` that ``live(order)`` still holds, by (expire_at, sequence)."""
        heap = self.heap
        out = []
        while heap and heap[0][0] <= now:
            expire_at, _, symbol, order = heapq.heappop(heap)
            if live(order):
                out.append((expire_at, order.sequence or 0, symbol, order))
        out.sort(key=lambda e: (e[0], e[1], e[2]))
        return [(symbol, order) for _, _, symbol, order in out]
