"""A tiny, obviously correct reference matching engine, in integer ticks and lots.

Each book is a plain list of resting orders. Whenever the engine needs the best
maker it sorts the opposite side by (price priority, sequence) and takes the
first: no trees, no levels, no linked lists. A fill-or-kill order is judged by
running the very same matching on a deep copy of the book and looking at what
happened, so the "would it fill?" rule cannot drift from the matching rule.

Commands return ``("ok", value)`` or ``("error", ErrorClass)``; a command that
errs changes nothing. The helpers at the bottom turn the real engine's reports
and snapshots into the same plain tuples, so the two can be compared with ``==``.

The order types added later (STOP, STOP_LIMIT, TRAILING_STOP, icebergs, GTD with
the engine's time, MARKET by quote quantity) are written the same way, straight
from ``shared/api.md`` and the order-types spec: waiting stops are a plain list
scanned in acceptance order after every trade, an iceberg is one order whose
current slice (``shown``) is all the matching sees and whose refresh simply takes
a new sequence (so the sort puts it at the back of its level), expiry sorts the
due GTD orders, a quote-sized market order spends a budget in ticks x lots. Use
:meth:`RefEngine.place`, :meth:`RefEngine.amend_order`, :meth:`RefEngine.cancel`,
:meth:`RefEngine.advance_time` and :meth:`RefEngine.view`; :func:`full_report_key`
and :func:`engine_view` turn the real engine's reports and books into the same
tuples. Where the rules leave a case open the model raises :class:`Unspecified`
instead of guessing; the tests do not send such commands.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
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
    "STOP_TYPES",
    "Unspecified",
    "Venue",
    "check_books",
    "combination_error",
    "engine_state",
    "engine_view",
    "fills",
    "full_report_key",
    "order_row",
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

STOP_TYPES = ("STOP", "STOP_LIMIT", "TRAILING_STOP")
ALL_LEVELS = 1 << 30


class Unspecified(Exception):
    """A case that api.md and the order-types spec leave open: the model does not guess, the tests skip it."""


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
    # -- the added order types (all None/0 for a plain LIMIT or MARKET order) --
    type: str = "LIMIT"  # LIMIT, MARKET, STOP, STOP_LIMIT, TRAILING_STOP
    stop: int | None = None  # stop price in ticks; a trailing stop's current one (None until it has a reference)
    trail: int | None = None  # trailing offset in ticks
    ref: int | None = None  # trailing reference: best trade price since acceptance (SELL: highest, BUY: lowest)
    display: int | None = None  # iceberg display quantity in lots
    shown: int = 0  # iceberg: lots left in the current slice while it rests
    expire_at: int | None = None  # GTD
    budget: int | None = None  # MARKET by quote quantity: quote units (ticks x lots) left to spend; lots is None
    accept_seq: int | None = None  # the sequence it was accepted with (ties in cascades and expiry)

    @property
    def remaining(self) -> int:
        return self.lots - self.filled

    @property
    def visible(self) -> int:
        """What the book shows of a resting order: an iceberg's current slice, else all that remains."""
        return self.shown if self.display is not None else self.remaining

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
        self.waiting: list[ROrder] = []  # untriggered stops, in acceptance order
        self.last: int | None = None  # last trade price in ticks

    def find_waiting(self, oid: Any) -> ROrder | None:
        for o in self.waiting:
            if o.id == oid:
                return o
        return None

    def is_resting(self, order: ROrder) -> bool:
        return any(o is order for o in self.resting)

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
        self.time = 0

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
        while (taker.budget > 0) if taker.budget is not None else (taker.remaining > 0):
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
                    if taker.budget is not None or maker.display is not None:
                        raise Unspecified("DECREMENT against an iceberg maker or by a quote-sized taker")
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
            assert maker.ticks is not None
            if taker.budget is not None:  # whole lots while the quote amount stays within the budget
                qty = min(maker.visible, taker.budget // maker.ticks)
                if qty == 0:
                    break  # not one lot of this maker fits: stop here, do not skip to other prices
                taker.budget -= qty * maker.ticks
            else:
                qty = min(taker.remaining, maker.visible)
            trades.append((symbol, maker.ticks, qty, maker.id, taker.id, maker.owner, taker.owner, taker.side))
            taker.filled += qty
            maker.filled += qty
            if maker.display is not None:
                maker.shown -= qty
            if maker.remaining == 0:
                book.resting.remove(maker)
                maker.status = "FILLED"
            else:
                maker.status = "PARTIALLY_FILLED"
                if maker.display is not None and maker.shown == 0:
                    # the next slice shows at once, at the back of its level (a new sequence): this
                    # same taker meets it again after the orders that were ahead of it
                    maker.shown = min(maker.display, maker.remaining)
                    maker.seq = book.seq
                    book.seq += 1
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
        if taker.accept_seq is None:
            taker.accept_seq = taker.seq
        raw_trades, cancelled, stopped = self._match(book, taker, symbol)
        trades = []
        for t in raw_trades:
            trades.append((self.next_trade_id, *t))
            self.next_trade_id += 1
        if stopped:
            taker.status = "CANCELLED"
        elif taker.budget is not None:
            taker.status = "FILLED" if taker.budget == 0 else "EXPIRED"
        elif taker.remaining == 0:
            taker.status = "FILLED"
        elif taker.market or taker.tif not in ("GTC", "GTD"):
            taker.status = "EXPIRED"
        else:
            taker.status = "PARTIALLY_FILLED" if taker.filled else "OPEN"
            if taker.display is not None:  # only what rests is sliced
                taker.shown = min(taker.display, taker.remaining)
            book.resting.append(taker)
        return trades, cancelled

    def _trigger(self, book: RBook, trades: list[tuple]) -> list[ROrder]:
        """Check every trade, in print order, against the waiting stops; return the fired ones in run order.

        Per trade: the last price moves, each trailing stop first moves its reference (the first
        trade after an acceptance without a last price only sets it), then every waiting stop is
        checked. The stops fired by one run go: BUY by ascending stop price, then SELL by
        descending stop price, ties by acceptance.
        """
        fired: list[ROrder] = []
        for trade in trades:
            price = trade[2]
            book.last = price
            for stop in list(book.waiting):
                if stop.type == "TRAILING_STOP":
                    assert stop.trail is not None
                    if stop.ref is None:
                        stop.ref = price
                        stop.stop = _trailing_stop(stop)
                        continue
                    stop.ref = max(stop.ref, price) if stop.side == "SELL" else min(stop.ref, price)
                    stop.stop = _trailing_stop(stop)
                assert stop.stop is not None
                if (price >= stop.stop) if stop.side == "BUY" else (price <= stop.stop):
                    book.waiting.remove(stop)
                    fired.append(stop)
        buys = sorted((s for s in fired if s.side == "BUY"), key=lambda s: (s.stop, s.accept_seq))
        sells = sorted((s for s in fired if s.side == "SELL"), key=lambda s: (-s.stop, s.accept_seq))  # type: ignore[operator]
        return buys + sells

    def _command(self, book: RBook, taker: ROrder) -> list[tuple[ROrder, list[tuple], list[ROrder]]]:
        """Run a taker, then the cascade of stops its trades trigger (first in, first out).

        Returns the runs ``[(order, trades, cancelled), ...]``: the taker's first, then each
        triggered stop's in the order it ran. A triggered stop keeps its id, owner and type
        and runs as a new taker: STOP and TRAILING_STOP as a market order (``ticks`` None),
        STOP_LIMIT as a limit order at its price, with its time in force.
        """
        symbol = book.inst.symbol
        trades, cancelled = self._execute(book, taker, symbol)
        runs = [(taker, trades, cancelled)]
        queue = self._trigger(book, trades)
        while queue:
            stop = queue.pop(0)
            trades, cancelled = self._execute(book, stop, symbol)
            runs.append((stop, trades, cancelled))
            queue += self._trigger(book, trades)
        return runs

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
        taker.type = "MARKET" if ticks is None else "LIMIT"
        _, trades, cancelled = self._command(book, taker)[0]
        return "ok", _ref_report(taker, trades, cancelled)

    def place(
        self,
        symbol: str | None,
        oid: Any,
        side: str,
        ticks: int | None,
        lots: int | None,
        *,
        type: str | None = None,
        tif: str = "GTC",
        owner: Any = None,
        post_only: bool = False,
        stp: str | None = None,
        stop: Any = None,
        trail: Any = None,
        display: Any = None,
        expire_at: int | None = None,
        quote: Any = None,
    ) -> tuple[str, Any]:
        """Submit any order type; ``("ok", report)`` as :func:`full_report_key` gives it, or ``("error", class)``.

        ``ticks`` is the limit price (LIMIT, STOP_LIMIT), ``lots`` the quantity (None with
        ``quote``); ``stop`` and ``trail`` are in ticks, ``display`` in lots (a non-integral
        ``Decimal`` stands for a value off the grid), ``quote`` the quote amount as a ``Decimal``
        in the instrument's quote currency.
        """
        otype = type or ("MARKET" if ticks is None else "LIMIT")
        err = combination_error(otype, ticks, lots, tif, post_only, stop, trail, display, expire_at, quote)
        if err is not None:
            return "error", err
        if tif == "GTD" and (post_only or otype == "MARKET"):
            raise Unspecified("post_only with GTD, or a GTD market order")
        book = self.book(symbol)
        if book is None:
            return "error", UnknownSymbolError
        inst = book.inst
        limited = _has_limits(inst)
        budget = None
        if quote is not None:
            if limited:
                raise Unspecified("instrument limits on a quote-sized order")
            budget = math.floor(Decimal(quote) / (inst.tick_size * inst.lot_size))  # floored to the grid
            if budget == 0:
                raise Unspecified("a quote amount below one tick x lot")
        else:
            assert lots is not None
            err = self.limit_error(inst, ticks if otype in ("LIMIT", "STOP_LIMIT") else None, lots)
            if err is not None:
                return "error", err
        if limited and display is not None:
            raise Unspecified("instrument limits on an iceberg's slices")
        if stop is not None:
            price = int(stop) * inst.tick_size
            if (inst.min_price is not None and price < inst.min_price) or (
                inst.max_price is not None and price > inst.max_price
            ):
                raise Unspecified("a stop price outside the instrument's price limits")
        if book.find(oid) is not None or book.find_waiting(oid) is not None:
            return "error", DuplicateOrderError
        order = ROrder(oid, side, ticks, lots, owner=owner, tif=tif, post_only=post_only, stp=stp)  # type: ignore[arg-type]
        order.type = otype
        order.stop = None if stop is None else int(stop)
        order.trail = None if trail is None else int(trail)
        order.display = None if display is None else int(display)
        order.expire_at = expire_at
        order.budget = budget
        met = (
            otype in ("STOP", "STOP_LIMIT")
            and book.last is not None
            and ((book.last >= order.stop) if side == "BUY" else (book.last <= order.stop))  # type: ignore[operator]
        )
        if tif == "GTD" and expire_at <= self.time:  # type: ignore[operator]
            if met:
                raise Unspecified("a GTD stop that is both expired and already triggered when submitted")
            order.status = "EXPIRED"  # no trades, no sequence
            return "ok", self._render(book, [(order, [], [])])
        if otype in STOP_TYPES:
            if met:
                order.status = "REJECTED"  # it would trigger at once
            else:
                order.seq = order.accept_seq = book.seq
                book.seq += 1
                order.status = "UNTRIGGERED"
                if otype == "TRAILING_STOP" and book.last is not None:
                    order.ref = book.last
                    order.stop = _trailing_stop(order)
                book.waiting.append(order)
            return "ok", self._render(book, [(order, [], [])])
        return "ok", self._render(book, self._command(book, order))

    def _render(self, book: RBook, runs: list[tuple[ROrder, list[tuple], list[ROrder]]]) -> tuple:
        """A command's report from its runs, read once the whole command (cascade included) is done."""

        def one(order: ROrder, trades: list[tuple], cancelled: list[ROrder]) -> tuple:
            row = (
                order.id,
                order.status,
                order.type,
                order.ticks,
                order.lots,
                order.filled,
                order.seq,
                order.stop,
                order.visible if book.is_resting(order) else 0,
            )
            return (row, trades, [(m.id, m.status, m.lots, m.filled) for m in cancelled])

        first, *triggered = runs
        return (*one(*first), [one(*run) for run in triggered])

    def cancel(self, symbol: str | None, oid: Any) -> tuple[str, Any]:
        book = self.book(symbol)
        if book is None:
            return "error", UnknownSymbolError
        order = book.find(oid)
        if order is not None:
            book.resting.remove(order)
        else:
            order = book.find_waiting(oid)  # an untriggered stop can be cancelled too
            if order is None:
                return "error", OrderNotFoundError
            book.waiting.remove(order)
        order.status = "CANCELLED"
        return "ok", (order.id, order.status, order.lots, order.filled, order.remaining)

    def amend(self, symbol: str | None, oid: Any, lots: int | None, ticks: int | None) -> tuple[str, Any]:
        kind, value = self._amend(symbol, oid, lots, ticks)
        if kind == "error":
            return kind, value
        order, trades, cancelled = value[0]
        return "ok", _ref_report(order, trades, cancelled)

    def amend_order(self, symbol: str | None, oid: Any, lots: int | None, ticks: int | None) -> tuple[str, Any]:
        """``amend`` with the added order types: the report as :func:`full_report_key` gives it."""
        book = self.book(symbol)
        kind, value = self._amend(symbol, oid, lots, ticks)
        if kind == "error":
            return kind, value
        assert book is not None
        return "ok", self._render(book, value)

    def _amend(self, symbol: str | None, oid: Any, lots: int | None, ticks: int | None) -> tuple[str, Any]:
        """The amend rules; ``("ok", runs)`` as :meth:`_command` gives them, or ``("error", class)``."""
        book = self.book(symbol)
        if book is None:
            return "error", UnknownSymbolError
        if lots is None and ticks is None:
            return "error", InvalidOrderError
        order = book.find(oid)
        if order is None:
            if book.find_waiting(oid) is not None:
                raise Unspecified("amend of an untriggered stop")
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
            return "ok", self._command(book, order)  # trades like a new taker (an iceberg: all it has left)
        if order.display is not None and new_lots < order.lots:
            # lowering an iceberg takes from its hidden part first; the slice shrinks only once that is gone
            hidden = order.remaining - order.shown
            cut = order.lots - new_lots
            if cut > hidden:
                order.shown -= cut - hidden
        if new_ticks != order.ticks or new_lots > order.lots:
            order.seq = book.seq  # to the back of its (new) level (an iceberg keeps its current slice)
            book.seq += 1
        order.ticks, order.lots = new_ticks, new_lots
        return "ok", [(order, [], [])]

    def advance_time(self, now: int) -> tuple[str, Any]:
        """Set the time and expire the due GTD orders (resting or waiting): ``{symbol: [(id, status, lots, filled)]}``.

        Within a symbol they expire by ``(expire_at, sequence at acceptance)``; the order across
        symbols is not compared (api.md orders by sequence, which is per book).
        """
        if now < self.time:
            return "error", ValueError
        self.time = now
        out = {}
        for symbol, book in self.books.items():
            due = [o for o in book.resting + book.waiting if o.tif == "GTD" and o.expire_at <= now]  # type: ignore[operator]
            due.sort(key=lambda o: (o.expire_at, o.accept_seq))
            for o in due:
                if book.is_resting(o):
                    book.resting.remove(o)
                else:
                    book.waiting.remove(o)
                o.status = "EXPIRED"
            out[symbol] = [(o.id, o.status, o.lots, o.filled) for o in due]
        return "ok", out

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
                out += [best, sum(o.visible for o in orders if o.ticks == best)]
        return (out[0], out[1], out[2], out[3])

    def view(self) -> dict[str, Any]:
        """Everything visible about the engine, comparable with :func:`engine_view`."""
        return {
            "time": self.time,
            "next_trade_id": self.next_trade_id,
            "books": {s: self._book_view(s) for s in self.books},
        }

    def _book_view(self, symbol: str) -> dict[str, Any]:
        book = self.books[symbol]
        inst = book.inst
        sides = {}
        depth = {}
        for side, name in (("BUY", "bids"), ("SELL", "asks")):
            levels: list[tuple] = []
            for o in book.side(side):  # best first, FIFO within a level
                row = (o.id, o.seq, o.lots, o.filled, o.visible, o.status, o.type)
                if levels and levels[-1][0] == o.ticks:
                    ticks, visible, count, rows = levels[-1]
                    levels[-1] = (ticks, visible + o.visible, count + 1, [*rows, row])
                else:
                    levels.append((o.ticks, o.visible, 1, [row]))
            sides[name] = levels
            depth[name] = [(inst.tick_size * t, inst.lot_size * v, n) for t, v, n, _ in levels]
        return {
            **sides,
            "depth": (depth["bids"], depth["asks"]),
            "len": len(book.resting),
            "top": self.top(symbol),
            "last": book.last,
        }

    def waiting_rows(self, symbol: str) -> list[tuple]:
        """The untriggered stops of a symbol: ``(id, status, type, stop, seq, filled)`` in acceptance order."""
        return [(o.id, o.status, o.type, o.stop, o.seq, o.filled) for o in self.books[symbol].waiting]


def _trailing_stop(order: ROrder) -> int:
    assert order.ref is not None and order.trail is not None
    return order.ref - order.trail if order.side == "SELL" else order.ref + order.trail


def _has_limits(inst: Instrument) -> bool:
    return any(
        v is not None for v in (inst.min_quantity, inst.max_quantity, inst.min_notional, inst.min_price, inst.max_price)
    )


def _bad_units(value: Any) -> bool:
    """Not a positive whole number of ticks or lots (a non-integral Decimal stands for a value off the grid)."""
    return value is not None and (value <= 0 or value != int(value))


def combination_error(
    otype: str,
    ticks: int | None,
    lots: Any,
    tif: str,
    post_only: bool,
    stop: Any,
    trail: Any,
    display: Any,
    expire_at: int | None,
    quote: Any,
) -> type[Exception] | None:
    """``InvalidOrderError`` for a combination of order fields that api.md calls wrong, else None."""
    priced = otype in ("LIMIT", "STOP_LIMIT")
    wrong = (
        (ticks is None) == priced  # LIMIT and STOP_LIMIT need a price; MARKET, STOP, TRAILING_STOP take none
        or (stop is not None) != (otype in ("STOP", "STOP_LIMIT"))
        or (trail is not None) != (otype == "TRAILING_STOP")
        or _bad_units(stop)
        or _bad_units(trail)
        or (tif == "GTD") != (expire_at is not None)
        or (
            display is not None
            and (
                otype != "LIMIT" or tif not in ("GTC", "GTD") or _bad_units(display) or lots is None or display >= lots
            )
        )
        or (quote is not None and (otype != "MARKET" or lots is not None or quote <= 0 or tif not in ("GTC", "IOC")))
        or (lots is None and quote is None)
        or (post_only and (otype != "LIMIT" or tif not in ("GTC", "GTD")))
    )
    return InvalidOrderError if wrong else None


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


def _units(value: Any, step: Decimal) -> int | None:
    """A Decimal read from the real engine, in ticks or lots (None stays None); it must be on the grid."""
    if value is None:
        return None
    units = Decimal(value) / step
    assert units == units.to_integral_value(), f"{value} is off the grid {step}"
    return int(units)


def order_row(order: Any, inst: Instrument) -> tuple:
    """A real ``Order`` as the reference's report row ``(id, status, type, ticks, lots, filled, seq, stop, visible)``."""
    tick, lot = inst.tick_size, inst.lot_size
    if order.quantity is not None:
        assert order.filled_quantity + order.remaining_quantity == order.quantity, "filled + remaining != quantity"
    return (
        order.id,
        order.status.value,
        order.type.value,
        _units(order.price, tick),
        _units(order.quantity, lot),
        _units(order.filled_quantity, lot),
        order.sequence,
        _units(order.stop_price, tick),
        _units(order.visible_quantity, lot),
    )


def full_report_key(report: Any, inst: Instrument, *, nested: bool = True) -> tuple:
    """A real ``ExecutionReport`` as :meth:`RefEngine.place` gives it: ``(row, trades, cancelled, triggered)``.

    The reports in ``triggered`` are keyed without their own ``triggered`` (api.md makes the top
    report's list the whole cascade and says nothing of the inner ones).
    """
    o = report.order
    assert report.status is o.status
    key: tuple = (
        order_row(o, inst),
        [trade_key(t) for t in report.trades],
        [(m.id, m.status.value, m.quantity_lots, m.filled_lots) for m in report.cancelled],
    )
    if nested:
        key += ([full_report_key(r, inst, nested=False) for r in report.triggered],)
    return key


def engine_view(engine: Any) -> dict[str, Any]:
    """A real engine's visible state through its public API, comparable with :meth:`RefEngine.view`."""
    books = {}
    for symbol in engine.symbols:
        book = engine.book(symbol)
        inst = book.instrument
        view: dict[str, Any] = {}
        for name, side in (("bids", book.bids), ("asks", book.asks)):
            view[name] = [
                (
                    level.price_ticks,
                    level.quantity_lots,
                    level.order_count,
                    [
                        (
                            o.id,
                            o.sequence,
                            o.quantity_lots,
                            o.filled_lots,
                            _units(o.visible_quantity, inst.lot_size),
                            o.status.value,
                            o.type.value,
                        )
                        for o in level
                    ],
                )
                for level in side
            ]
        depth = book.depth(ALL_LEVELS)
        view["depth"] = ([tuple(x) for x in depth.bids], [tuple(x) for x in depth.asks])
        view["len"] = len(book)
        view["top"] = engine.top_of_book_raw(symbol)
        view["last"] = _units(engine.last_trade_price(symbol), inst.tick_size)
        books[symbol] = view
    return {"time": engine.time, "next_trade_id": engine.next_trade_id, "books": books}


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
