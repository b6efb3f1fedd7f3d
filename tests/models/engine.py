"""A tiny, obviously correct reference matching engine, in integer ticks and lots.

Each book is a plain list of resting orders. Whenever the engine needs the best
maker it sorts the opposite side by (price priority, sequence) and takes the
first: no trees, no levels, no linked lists. A fill-or-kill order is judged by
running the very same matching on a deep copy of the book and looking at what
happened, so the "would it fill?" rule cannot drift from the matching rule.

Commands return ``("ok", value)`` or ``("error", ErrorClass)``; a command that
errs changes nothing. The helpers at the bottom turn the real engine's reports
and snapshots into the same plain tuples, so the two can be compared with ``==``.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tradebook import (
    DuplicateOrderError,
    Instrument,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderNotFoundError,
    UnknownSymbolError,
)

__all__ = [
    "RefEngine",
    "ROrder",
    "Venue",
    "check_books",
    "engine_state",
    "fills",
    "report_key",
    "snapshot_rows",
    "trade_key",
    "unchanged",
]

NONE, CANCEL_TAKER, CANCEL_MAKER, CANCEL_BOTH, DECREMENT = (
    "NONE",
    "CANCEL_TAKER",
    "CANCEL_MAKER",
    "CANCEL_BOTH",
    "DECREMENT",
)


@dataclass
class ROrder:
    """One order of the reference: plain fields, ticks None for a market order."""

    id: Any
    side: str  # "BUY" or "SELL"
    ticks: int | None
    lots: int
    owner: Any = None
    tif: str = "GTC"
    post_only: bool = False
    stp: str | None = None
    filled: int = 0
    seq: int | None = None
    status: str = "PENDING"

    @property
    def remaining(self) -> int:
        return self.lots - self.filled

    @property
    def market(self) -> bool:
        return self.ticks is None


def _priority(order: ROrder) -> tuple[int, int]:
    """Sort key of a resting order: better price first, then earlier sequence."""
    assert order.ticks is not None and order.seq is not None
    return (-order.ticks if order.side == "BUY" else order.ticks, order.seq)


class RBook:
    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.seq = 1
        self.resting: list[ROrder] = []

    def side(self, side: str) -> list[ROrder]:
        """The resting orders of one side, best first."""
        return sorted((o for o in self.resting if o.side == side), key=_priority)

    def find(self, oid: Any) -> ROrder | None:
        for o in self.resting:
            if o.id == oid:
                return o
        return None

    def crosses(self, side: str, ticks: int) -> bool:
        """Would a limit order at ``ticks`` on ``side`` meet a resting order of the other side?"""
        other = self.side("SELL" if side == "BUY" else "BUY")
        if not other:
            return False
        best = other[0].ticks
        assert best is not None
        return best <= ticks if side == "BUY" else best >= ticks


class RefEngine:
    """The reference engine: same commands as ``MatchingEngine``'s raw API, same outcomes."""

    def __init__(self, instruments: list[Instrument], stp: str = CANCEL_TAKER) -> None:
        self.books = {inst.symbol: RBook(inst) for inst in instruments}
        self.stp = stp
        self.next_trade_id = 1

    # -- lookups ---------------------------------------------------------------------

    def book(self, symbol: str | None) -> RBook | None:
        if symbol is None:
            return next(iter(self.books.values())) if len(self.books) == 1 else None
        return self.books.get(symbol)

    @staticmethod
    def limit_error(inst: Instrument, ticks: int | None, lots: int) -> type[Exception] | None:
        """The error an order of ``lots`` at ``ticks`` (None: market) gets from the instrument's limits."""
        qty = lots * inst.lot_size
        if inst.min_quantity is not None and qty < inst.min_quantity:
            return InvalidQuantityError
        if inst.max_quantity is not None and qty > inst.max_quantity:
            return InvalidQuantityError
        if ticks is None:
            return None
        price = ticks * inst.tick_size
        if inst.min_price is not None and price < inst.min_price:
            return InvalidPriceError
        if inst.max_price is not None and price > inst.max_price:
            return InvalidPriceError
        if inst.min_notional is not None and price * qty < inst.min_notional:
            return InvalidOrderError
        return None

    # -- matching ----------------------------------------------------------------------

    def _mode(self, taker: ROrder) -> str:
        if taker.owner is None:
            return NONE
        return taker.stp if taker.stp is not None else self.stp

    def _match(self, book: RBook, taker: ROrder, symbol: str) -> tuple[list[tuple], list[ROrder], bool]:
        """Trade ``taker`` against ``book``; returns (trades without ids, cancelled makers, stopped by STP)."""
        mode = self._mode(taker)
        other = "SELL" if taker.side == "BUY" else "BUY"
        trades: list[tuple] = []
        cancelled: list[ROrder] = []
        while taker.remaining > 0:
            makers = book.side(other)
            if not makers:
                break
            maker = makers[0]
            if not taker.market:
                assert maker.ticks is not None and taker.ticks is not None
                if (maker.ticks > taker.ticks) if taker.side == "BUY" else (maker.ticks < taker.ticks):
                    break
            if mode != NONE and maker.owner is not None and maker.owner == taker.owner:
                if mode == CANCEL_TAKER:
                    return trades, cancelled, True
                if mode == DECREMENT:
                    cut = min(taker.remaining, maker.remaining)
                    taker.lots -= cut
                    maker.lots -= cut
                    if maker.remaining == 0:
                        book.resting.remove(maker)
                        maker.status = "CANCELLED"
                        cancelled.append(maker)
                    if taker.remaining == 0:
                        return trades, cancelled, True
                    continue
                book.resting.remove(maker)
                maker.status = "CANCELLED"
                cancelled.append(maker)
                if mode == CANCEL_BOTH:
                    return trades, cancelled, True
                continue
            qty = min(taker.remaining, maker.remaining)
            trades.append((symbol, maker.ticks, qty, maker.id, taker.id, maker.owner, taker.owner, taker.side))
            taker.filled += qty
            maker.filled += qty
            if maker.remaining == 0:
                book.resting.remove(maker)
                maker.status = "FILLED"
            else:
                maker.status = "PARTIALLY_FILLED"
        return trades, cancelled, False

    def _fok_fills(self, book: RBook, taker: ROrder, symbol: str) -> bool:
        """Run the matching on copies; a FOK order is fillable iff its whole quantity trades."""
        trial_book, trial_taker = copy.deepcopy(book), copy.deepcopy(taker)
        wanted = trial_taker.remaining
        trades, _, _ = self._match(trial_book, trial_taker, symbol)
        return sum(t[2] for t in trades) == wanted

    def _execute(self, book: RBook, taker: ROrder, symbol: str) -> tuple[list[tuple], list[ROrder]]:
        """Match a taker (not resting) and settle its status; a GTC limit remainder rests."""
        if taker.post_only and book.crosses(taker.side, taker.ticks):  # type: ignore[arg-type]
            taker.status = "REJECTED"
            return [], []
        if taker.tif == "FOK" and not self._fok_fills(book, taker, symbol):
            taker.status = "EXPIRED"
            return [], []
        taker.seq = book.seq
        book.seq += 1
        raw_trades, cancelled, stopped = self._match(book, taker, symbol)
        trades = []
        for t in raw_trades:
            trades.append((self.next_trade_id, *t))
            self.next_trade_id += 1
        if stopped:
            taker.status = "CANCELLED"
        elif taker.remaining == 0:
            taker.status = "FILLED"
        elif taker.market or taker.tif != "GTC":
            taker.status = "EXPIRED"
        else:
            taker.status = "PARTIALLY_FILLED" if taker.filled else "OPEN"
            book.resting.append(taker)
        return trades, cancelled

    # -- commands ------------------------------------------------------------------------

    def submit(
        self,
        symbol: str | None,
        oid: Any,
        side: str,
        ticks: int | None,
        lots: int,
        *,
        tif: str = "GTC",
        owner: Any = None,
        post_only: bool = False,
        stp: str | None = None,
    ) -> tuple[str, Any]:
        if post_only and (ticks is None or tif != "GTC"):
            return "error", InvalidOrderError  # the Order itself refuses this, before any lookup
        book = self.book(symbol)
        if book is None:
            return "error", UnknownSymbolError
        err = self.limit_error(book.inst, ticks, lots)
        if err is not None:
            return "error", err
        if book.find(oid) is not None:
            return "error", DuplicateOrderError
        taker = ROrder(oid, side, ticks, lots, owner=owner, tif=tif, post_only=post_only, stp=stp)
        trades, cancelled = self._execute(book, taker, book.inst.symbol)
        return "ok", _ref_report(taker, trades, cancelled)

    def cancel(self, symbol: str | None, oid: Any) -> tuple[str, Any]:
        book = self.book(symbol)
        if book is None:
            return "error", UnknownSymbolError
        order = book.find(oid)
        if order is None:
            return "error", OrderNotFoundError
        book.resting.remove(order)
        order.status = "CANCELLED"
        return "ok", (order.id, order.status, order.lots, order.filled, order.remaining)

    def amend(self, symbol: str | None, oid: Any, lots: int | None, ticks: int | None) -> tuple[str, Any]:
        book = self.book(symbol)
        if book is None:
            return "error", UnknownSymbolError
        if lots is None and ticks is None:
            return "error", InvalidOrderError
        order = book.find(oid)
        if order is None:
            return "error", OrderNotFoundError
        new_lots = order.lots if lots is None else lots
        new_ticks = order.ticks if ticks is None else ticks
        assert new_ticks is not None
        if new_lots <= order.filled:
            return "error", InvalidQuantityError
        err = self.limit_error(book.inst, new_ticks, new_lots)
        if err is not None:
            return "error", err
        if new_ticks != order.ticks and book.crosses(order.side, new_ticks):
            if order.post_only:
                return "error", InvalidOrderError
            book.resting.remove(order)
            order.ticks, order.lots = new_ticks, new_lots
            trades, cancelled = self._execute(book, order, book.inst.symbol)
            return "ok", _ref_report(order, trades, cancelled)
        if new_ticks != order.ticks or new_lots > order.lots:
            order.seq = book.seq  # to the back of its (new) level
            book.seq += 1
        order.ticks, order.lots = new_ticks, new_lots
        return "ok", _ref_report(order, [], [])

    # -- state ------------------------------------------------------------------------------

    def rows(self, symbol: str) -> list[tuple]:
        """The resting orders as :func:`snapshot_rows` gives them: bids then asks, best first, FIFO."""
        book = self.books[symbol]
        return [
            (o.id, o.side, o.ticks, o.lots, o.filled, o.seq, o.owner, o.post_only, o.stp)
            for side in ("BUY", "SELL")
            for o in book.side(side)
        ]

    def state(self) -> dict[str, Any]:
        """Comparable with :func:`engine_state`."""
        return {
            "next_trade_id": self.next_trade_id,
            "stp": self.stp,
            "books": {s: (b.seq, self.rows(s), self.top(s)) for s, b in self.books.items()},
        }

    def top(self, symbol: str) -> tuple[int | None, int | None, int | None, int | None]:
        book = self.books[symbol]
        out: list[int | None] = []
        for side in ("BUY", "SELL"):
            orders = book.side(side)
            if not orders:
                out += [None, None]
            else:
                best = orders[0].ticks
                out += [best, sum(o.remaining for o in orders if o.ticks == best)]
        return (out[0], out[1], out[2], out[3])


def _ref_report(order: ROrder, trades: list[tuple], cancelled: list[ROrder]) -> tuple:
    return (
        (order.id, order.status, order.ticks, order.lots, order.filled, order.seq),
        trades,
        [(m.id, m.status, m.lots, m.filled) for m in cancelled],
    )


# -- the real engine, as the same plain tuples --------------------------------------------------


def trade_key(t: Any) -> tuple:
    """Every field of a real ``Trade``, in the reference's order (raw units, plain strings)."""
    return (
        t.id,
        t.symbol,
        t.price_ticks,
        t.quantity_lots,
        t.maker_order_id,
        t.taker_order_id,
        t.maker_owner,
        t.taker_owner,
        t.taker_side.value,
    )


def report_key(report: Any) -> tuple:
    """A real ``ExecutionReport`` as ``((id, status, ticks, lots, filled, seq), trades, cancelled)``."""
    o = report.order
    assert report.status is o.status
    assert o.filled_quantity + o.remaining_quantity == o.quantity, "filled + remaining != quantity"
    if hasattr(report, "filled_lots"):  # the raw-report shortcuts agree with the order
        assert (report.filled_lots, report.remaining_lots) == (o.filled_lots, o.quantity_lots - o.filled_lots)
    return (
        (o.id, o.status.value, o.price_ticks, o.quantity_lots, o.filled_lots, o.sequence),
        [trade_key(t) for t in report.trades],
        [(m.id, m.status.value, m.quantity_lots, m.filled_lots) for m in report.cancelled],
    )


def snapshot_rows(book_data: dict[str, Any]) -> list[tuple]:
    """The resting orders of one book snapshot, as the reference's :meth:`RefEngine.rows`."""
    out = []
    for r in book_data["orders"]:
        assert r["type"] == "LIMIT" and r["time_in_force"] == "GTC" and r["client_order_id"] is None
        out.append(
            (
                r["id"],
                r["side"],
                r["price"],
                r["quantity"],
                r["filled"],
                r["sequence"],
                r["owner"],
                r["post_only"],
                r["self_trade_prevention"],
            )
        )
    return out


def engine_state(engine: Any) -> dict[str, Any]:
    """A real engine's state, through a JSON round trip of its snapshot, comparable with ``RefEngine.state()``."""
    data = json.loads(json.dumps(engine.snapshot()))
    return {
        "next_trade_id": data["next_trade_id"],
        "stp": data["self_trade_prevention"],
        "books": {
            b["instrument"]["symbol"]: (
                b["next_sequence"],
                snapshot_rows(b),
                engine.top_of_book_raw(b["instrument"]["symbol"]),
            )
            for b in data["books"]
        },
    }


# -- small helpers for the engine test modules ------------------------------------------------


def check_books(engine: Any) -> None:
    """``_check()`` every book of ``engine`` and demand that none is crossed."""
    for symbol in engine.symbols:
        engine.book(symbol)._check()
        bid, _, ask, _ = engine.top_of_book_raw(symbol)
        assert bid is None or ask is None or bid < ask, f"{symbol} is crossed: {bid} >= {ask}"


@contextlib.contextmanager
def unchanged(engine: Any) -> Iterator[None]:
    """Assert that the block (expected to raise or to do nothing) leaves ``engine`` exactly as it was."""
    before = json.dumps(engine.snapshot(), sort_keys=True)
    tops = [engine.top_of_book_raw(s) for s in engine.symbols]
    try:
        yield
    finally:
        check_books(engine)
        assert json.dumps(engine.snapshot(), sort_keys=True) == before, "the engine changed"
        assert [engine.top_of_book_raw(s) for s in engine.symbols] == tops


class Venue:
    """A matching engine of one backend with rulebook-style helpers (``buy``, ``sell``, ``asks()``...)."""

    def __init__(self, backend: Any, instruments: list[Instrument], stp: str = CANCEL_TAKER) -> None:
        self.backend = backend
        self.engine = backend.MatchingEngine(instruments, self_trade_prevention=stp)
        self.Order = backend.Order

    def submit(self, oid: Any, side: str, price: Any, qty: Any, **kw: Any) -> Any:
        return self.engine.submit(self.Order(oid, side, price, qty, **kw))

    def buy(self, oid: Any, price: Any, qty: Any, **kw: Any) -> Any:
        return self.submit(oid, "BUY", price, qty, **kw)

    def sell(self, oid: Any, price: Any, qty: Any, **kw: Any) -> Any:
        return self.submit(oid, "SELL", price, qty, **kw)

    def market_buy(self, oid: Any, qty: Any, **kw: Any) -> Any:
        return self.submit(oid, "BUY", None, qty, type="MARKET", **kw)

    def market_sell(self, oid: Any, qty: Any, **kw: Any) -> Any:
        return self.submit(oid, "SELL", None, qty, type="MARKET", **kw)

    def _side(self, which: str, symbol: str | None) -> list[tuple[Any, list[tuple[Any, Any]]]]:
        book = self.engine.book(symbol)
        return [
            (level.price, [(o.id, o.remaining_quantity) for o in level])
            for level in (book.bids if which == "BUY" else book.asks)
        ]

    def bids(self, symbol: str | None = None) -> list[tuple[Any, list[tuple[Any, Any]]]]:
        """``[(price, [(id, remaining), ...]), ...]``, best level first, FIFO within a level."""
        return self._side("BUY", symbol)

    def asks(self, symbol: str | None = None) -> list[tuple[Any, list[tuple[Any, Any]]]]:
        """``[(price, [(id, remaining), ...]), ...]``, best level first, FIFO within a level."""
        return self._side("SELL", symbol)

    def resting(self, oid: Any, symbol: str | None = None) -> Any:
        return self.engine.book(symbol).get_order(oid)


def fills(report: Any) -> list[tuple[Any, Any]]:
    """``[(price, quantity), ...]`` of a report's trades, in execution order."""
    return [(t.price, t.quantity) for t in report.trades]
