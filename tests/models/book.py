"""A tiny, obviously correct reference model of an order book, in integer ticks and lots.

Orders live in a dict with a global sequence number; a level's FIFO is its orders
sorted by sequence. Each command first works out every error that applies (the
set, since the contract does not rank them), and changes state only when there is
none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tradebook import (
    DuplicateOrderError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    OrderStatus,
    Side,
)

INT64_MAX = (1 << 63) - 1
SIDES = {"BUY": "BUY", "SELL": "SELL", Side.BUY: "BUY", Side.SELL: "SELL"}


def valid_units(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 0 < n <= INT64_MAX


def valid_id(oid: Any) -> bool:
    if oid is None:
        return False
    try:
        hash(oid)
    except TypeError:
        return False
    return True


def side_of(side: Any) -> str | None:
    try:
        return SIDES.get(side)
    except TypeError:
        return None


@dataclass
class MOrder:
    side: str
    ticks: int
    lots: int
    filled: int
    seq: int

    @property
    def remaining(self) -> int:
        return self.lots - self.filled

    @property
    def status(self) -> OrderStatus:
        return OrderStatus.PARTIALLY_FILLED if self.filled else OrderStatus.OPEN


class Model:
    def __init__(self) -> None:
        self.orders: dict[Any, MOrder] = {}
        self.seq = 1

    # -- helpers -------------------------------------------------------------------

    def _total(self, side: str, ticks: int) -> int:
        return sum(o.remaining for o in self.orders.values() if o.side == side and o.ticks == ticks)

    def _get(self, oid: Any) -> MOrder | None:
        try:
            return self.orders.get(oid)
        except TypeError:
            return None

    # -- commands: each returns the set of acceptable errors (empty: it succeeded) --

    def add(self, oid: Any, side: Any, ticks: Any, lots: Any) -> set[type[Exception]]:
        errors: set[type[Exception]] = set()
        s = side_of(side)
        if s is None:
            errors.add(InvalidOrderError)
        if not valid_units(ticks):
            errors.add(InvalidPriceError)
        if not valid_units(lots):
            errors.add(InvalidQuantityError)
        if not valid_id(oid):
            errors.add(InvalidOrderError)
        elif oid in self.orders:
            errors.add(DuplicateOrderError)
        if errors:
            return errors
        assert s is not None
        if self._total(s, ticks) + lots > INT64_MAX:
            return {InvalidQuantityError}
        self.orders[oid] = MOrder(s, int(ticks), int(lots), 0, self.seq)
        self.seq += 1
        return set()

    def remove(self, oid: Any) -> tuple[set[type[Exception]], int | None]:
        order = self._get(oid)
        if order is None:
            return {OrderNotFoundError}, None
        del self.orders[oid]
        return set(), order.remaining

    def fill(self, oid: Any, lots: Any) -> tuple[set[type[Exception]], int | None]:
        errors: set[type[Exception]] = set()
        if not valid_units(lots):
            errors.add(InvalidQuantityError)
        order = self._get(oid)
        if order is None:
            errors.add(OrderNotFoundError)
        if errors:
            return errors, None
        assert order is not None
        if lots > order.remaining:
            return {InvalidQuantityError}, None
        order.filled += lots
        left = order.remaining
        if left == 0:
            del self.orders[oid]
        return set(), left

    def amend(self, oid: Any, lots: Any = None, ticks: Any = None) -> set[type[Exception]]:
        errors: set[type[Exception]] = set()
        if lots is None and ticks is None:
            errors.add(InvalidOrderError)
        if lots is not None and not valid_units(lots):
            errors.add(InvalidQuantityError)
        if ticks is not None and not valid_units(ticks):
            errors.add(InvalidPriceError)
        order = self._get(oid)
        if order is None:
            errors.add(OrderNotFoundError)
        if errors:
            return errors
        assert order is not None
        new_lots = order.lots if lots is None else lots
        new_ticks = order.ticks if ticks is None else ticks
        if new_lots <= order.filled:
            return {InvalidQuantityError}
        if new_ticks != order.ticks:
            if self._total(order.side, new_ticks) + new_lots - order.filled > INT64_MAX:
                return {InvalidQuantityError}
        elif new_lots > order.lots and self._total(order.side, new_ticks) + new_lots - order.lots > INT64_MAX:
            return {InvalidQuantityError}
        if new_ticks != order.ticks or new_lots > order.lots:
            order.ticks, order.lots, order.seq = new_ticks, new_lots, self.seq
            self.seq += 1
        elif new_lots < order.lots:
            order.lots = new_lots
        return set()

    # -- observations ------------------------------------------------------------------

    def levels(self, side: str) -> list[tuple[int, list[Any]]]:
        """``[(ticks, [ids in FIFO order])]`` best first."""
        by_price: dict[int, list[tuple[int, Any]]] = {}
        for oid, o in self.orders.items():
            if o.side == side:
                by_price.setdefault(o.ticks, []).append((o.seq, oid))
        prices = sorted(by_price, reverse=side == "BUY")
        return [(p, [oid for _, oid in sorted(by_price[p], key=lambda x: x[0])]) for p in prices]

    def depth_raw(self) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        out = []
        for side in ("BUY", "SELL"):
            out.append([(p, sum(self.orders[i].remaining for i in ids), len(ids)) for p, ids in self.levels(side)])
        return out[0], out[1]

    def best(self) -> tuple[int | None, int | None]:
        bids, asks = self.levels("BUY"), self.levels("SELL")
        return (bids[0][0] if bids else None, asks[0][0] if asks else None)

    def snapshot_rows(self) -> list[tuple[Any, ...]]:
        rows = []
        for side in ("BUY", "SELL"):
            for _, ids in self.levels(side):
                for oid in ids:
                    o = self.orders[oid]
                    rows.append((oid, side, o.ticks, o.lots, o.filled, o.seq))
        return rows


def assert_matches(book: Any, model: Model) -> None:
    """The book shows exactly the model's state (through the raw views and the snapshot)."""
    assert len(book) == len(model.orders)
    assert (book.best_bid_raw, book.best_ask_raw) == model.best()
    assert book.depth_raw(1 << 30) == model.depth_raw()
    snap = book.snapshot()
    assert snap["next_sequence"] == model.seq
    rows = [(r["id"], r["side"], r["price"], r["quantity"], r["filled"], r["sequence"]) for r in snap["orders"]]
    assert rows == model.snapshot_rows()
    for side, view in (("BUY", book.bids), ("SELL", book.asks)):
        assert [(lv.price_ticks, [o.id for o in lv]) for lv in view] == model.levels(side)
    for side, rows in zip(("BUY", "SELL"), model.depth_raw(), strict=True):
        for ticks, total, count in rows:
            assert book.level_raw(side, ticks) == (total, count)
            level = book.level(side, book.instrument.ticks_to_price(ticks))
            assert (level.quantity_lots, level.order_count) == (total, count)
        assert book.level_raw(side, 999_999) is None
    for oid, mo in model.orders.items():
        order = book.get_order(oid)
        assert (order.side.value, order.price_ticks, order.quantity_lots, order.filled_lots, order.sequence) == (
            mo.side,
            mo.ticks,
            mo.lots,
            mo.filled,
            mo.seq,
        )
        assert order.status is mo.status
