"""A market data consumer, as a host would write one: a book rebuilt from a snapshot and the updates.

``FeedBook(engine.market_snapshot(symbol))`` starts from the snapshot; ``apply``
takes each ``MarketDataUpdate``: it skips one the snapshot already holds
(``seq <= snapshot.seq``), refuses a gap, and applies the L3 events (ADD to the
back of the order's level, MODIFY in place, DELETE, EXECUTE down to 0) and the
L2 deltas, checking each event against what it holds (the order exists, at
that side and price, with that sequence; an ADD comes after everything at its
level). ``orders()`` and ``depth()`` render it the way ``market_snapshot``
does, so a test compares them with the engine's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tradebook import Depth, LevelSnapshot, MarketSnapshot, OrderEvent, Side

__all__ = ["FeedBook", "FeedGap"]


class FeedGap(AssertionError):
    """An update's ``seq`` is not the next one."""


class FeedBook:
    """One symbol's book, from a ``MarketSnapshot`` and the ``MarketDataUpdate``s after it."""

    def __init__(self, snapshot: MarketSnapshot) -> None:
        self.seq = snapshot.seq
        self.time = snapshot.time
        # id -> [side, price, visible quantity, sequence]
        self.book: dict[Any, list[Any]] = {}
        # (side, price) -> ids in time priority (a dict keeps insertion order, removes in O(1))
        self.levels: dict[tuple[Side, Decimal], dict[Any, None]] = {}
        self.ladder: dict[tuple[Side, Decimal], Decimal] = {}  # the L2 view, from deltas alone
        self.kinds: dict[str, int] = {"ADD": 0, "MODIFY": 0, "DELETE": 0, "EXECUTE": 0}
        for event in snapshot.orders:
            assert event.kind == "ADD", event
            self._add(event)
        for side, levels in ((Side.BUY, snapshot.depth.bids), (Side.SELL, snapshot.depth.asks)):
            for level in levels:
                self.ladder[(side, level.price)] = level.quantity

    # -- applying ----------------------------------------------------------------------

    def apply(self, update: Any) -> bool:
        """Apply one update; False if the snapshot already held it. Raises ``FeedGap`` on a gap."""
        if update.seq <= self.seq:
            return False
        if update.seq != self.seq + 1:
            raise FeedGap(f"update {update.seq} after {self.seq}")
        self.seq = update.seq
        assert update.time >= self.time, "the engine's time went back"
        self.time = update.time
        for event in update.orders:
            self.kinds[event.kind] += 1
            getattr(self, "_" + event.kind.lower())(event)
        for delta in update.deltas:
            key = (delta.side, delta.price)
            if delta.quantity:
                self.ladder[key] = delta.quantity
            else:
                self.ladder.pop(key, None)
        return True

    def _add(self, e: OrderEvent) -> None:
        assert e.order_id not in self.book, f"ADD of {e.order_id!r}, which is in the book"
        assert e.quantity > 0, e
        level = self.levels.setdefault((e.side, e.price), {})
        if level:
            last = self.book[next(reversed(level))]
            assert e.sequence > last[3], f"ADD {e} is not behind {last} at its level"
        level[e.order_id] = None
        self.book[e.order_id] = [e.side, e.price, e.quantity, e.sequence]

    def _resting(self, e: OrderEvent) -> list[Any]:
        entry = self.book.get(e.order_id)
        assert entry is not None, f"{e.kind} of {e.order_id!r}, which is not in the book"
        assert (entry[0], entry[1], entry[3]) == (e.side, e.price, e.sequence), (e, entry)
        return entry

    def _remove(self, e: OrderEvent) -> None:
        del self.book[e.order_id]
        level = self.levels[(e.side, e.price)]
        del level[e.order_id]
        if not level:
            del self.levels[(e.side, e.price)]

    def _modify(self, e: OrderEvent) -> None:
        entry = self._resting(e)
        assert 0 < e.quantity != entry[2], (e, entry)
        entry[2] = e.quantity

    def _delete(self, e: OrderEvent) -> None:
        entry = self._resting(e)
        assert e.quantity == entry[2], (e, entry)
        self._remove(e)

    def _execute(self, e: OrderEvent) -> None:
        entry = self._resting(e)
        assert 0 < e.quantity <= entry[2], (e, entry)
        entry[2] -= e.quantity
        if entry[2] == 0:
            self._remove(e)

    # -- rendering as market_snapshot does ------------------------------------------------

    def orders(self) -> list[OrderEvent]:
        """The visible orders as ADD events: bids best first, then asks best first, FIFO in a level."""
        out = []
        for side, best_first in ((Side.BUY, True), (Side.SELL, False)):
            keys = sorted((k for k in self.levels if k[0] is side), key=lambda k: k[1], reverse=best_first)
            for key in keys:
                for oid in self.levels[key]:
                    s, price, qty, seq = self.book[oid]
                    out.append(OrderEvent("ADD", oid, s, price, qty, seq))
        return out

    def depth(self) -> Depth:
        """Every level, from the L3 orders."""
        sides: dict[Side, list[LevelSnapshot]] = {Side.BUY: [], Side.SELL: []}
        for side, best_first in ((Side.BUY, True), (Side.SELL, False)):
            keys = sorted((k for k in self.levels if k[0] is side), key=lambda k: k[1], reverse=best_first)
            for key in keys:
                ids = self.levels[key]
                sides[side].append(LevelSnapshot(key[1], sum(self.book[i][2] for i in ids), len(ids)))
        return Depth(sides[Side.BUY], sides[Side.SELL])

    def ladder_depth(self) -> Depth:
        """Every level, from the L2 deltas alone (prices and quantities; counts are not in L2)."""
        bids = sorted(((p, q) for (s, p), q in self.ladder.items() if s is Side.BUY), reverse=True)
        asks = sorted((p, q) for (s, p), q in self.ladder.items() if s is Side.SELL)
        return Depth([LevelSnapshot(p, q, 0) for p, q in bids], [LevelSnapshot(p, q, 0) for p, q in asks])


def check_feed(feed: FeedBook, engine: Any, symbol: str | None = None) -> None:
    """The consumer's book is exactly the engine's visible book, L3 and L2, at the same ``seq``."""
    snap = engine.market_snapshot(symbol)
    assert feed.seq == snap.seq, (feed.seq, snap.seq)
    assert feed.orders() == snap.orders
    assert feed.depth() == snap.depth
    assert snap.depth == engine.book(symbol).depth(1 << 30)
    ladder = feed.ladder_depth()
    assert [(x.price, x.quantity) for x in ladder.bids] == [(x.price, x.quantity) for x in snap.depth.bids]
    assert [(x.price, x.quantity) for x in ladder.asks] == [(x.price, x.quantity) for x in snap.depth.asks]
