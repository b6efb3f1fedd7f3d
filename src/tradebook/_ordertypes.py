"""The engine's side of the new order types, shared by both backends.

``OrderTypesMixin`` is a base of both ``MatchingEngine`` classes. It holds what
runs off the hot path: accepting stops, running the trigger cascade, GTD expiry
with the engine clock, cancelling and amending waiting stops, and their part of
snapshots. The matching itself (iceberg refresh, the quote budget, the last
trade price) stays in each backend's core; this module reaches the core
through a few private primitives each backend provides:

- ``engine._x_run(book, order, market, tif, quote_lots)``: match an already
  bound ``Order`` as a new taker under the book's lock (no cascade), rest a
  limit remainder; returns its ``ExecutionReport``;
- ``engine._x_remove(book, order_id, status)``: take a resting order out with
  ``status``, publishing market data; returns the ``Order``;
- ``engine._x_report(order)``: a report with no trades;
- ``engine._x_order_type``: the backend's ``Order`` class;
- ``book._x_hold()`` (a context manager holding the book's lock),
  ``book._take_seq()``, ``book._trig``, ``book._last_ticks()``,
  ``book._set_last(ticks)``, ``book._x_resting_gtd()``;
- ``order._ext`` and ``order._x_state(book, ticks, lots, status, seq)``
  (None leaves a field alone), ``_x_bound()``, ``_x_inputs()``, ``_x_ticks()``,
  ``_x_lots()``, and ``Order._x_restored(...)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from decimal import Decimal
from typing import Any

from ._conditional import Expiry, Triggers
from ._extras import STOP_TYPES, OrderExt
from ._limits import check_limits, has_limits
from ._numeric import INT64_MAX, check_units, to_units
from .enums import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce, coerce_enum
from .errors import (
    DuplicateOrderError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    TradebookError,
)

__all__ = ["OrderTypesMixin"]

_UNTRIGGERED = OrderStatus.UNTRIGGERED
_EXPIRED = OrderStatus.EXPIRED
_REJECTED = OrderStatus.REJECTED
_CANCELLED = OrderStatus.CANCELLED
_OPEN = OrderStatus.OPEN
_PARTIAL = OrderStatus.PARTIALLY_FILLED
_LIVE = (_OPEN, _PARTIAL, _UNTRIGGERED)
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT
_TRAILING = OrderType.TRAILING_STOP
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_GTD = TimeInForce.GTD
_GTC = TimeInForce.GTC
_SELL = Side.SELL


class _State:
    """The engine clock, the GTD index and each symbol's last market data update number."""

    __slots__ = ("time", "expiry", "md_seq")

    def __init__(self) -> None:
        self.time = 0
        self.expiry = Expiry()
        self.md_seq: dict[str, int] = {}  # symbol -> ``seq`` of its last update published (``_marketdata``)


class OrderTypesMixin:
    """Stops, trailing stops, GTD expiry and the engine clock (see the module docstring)."""

    # no __slots__ here: the pure engine keeps ``_ot_state`` in its instance dict; the compiled engine
    # copies these functions into its own class body (a C type cannot take a Python base)

    # provided by each backend
    _x_run: Any
    _x_remove: Any
    _x_report: Any
    _x_order_type: Any
    book: Any
    _books: Any
    _listeners: Any

    _ot_state: Any = None  # the compiled engine has it as a C attribute

    def _ot(self) -> _State:
        state: _State | None = self._ot_state
        if state is None:
            state = self._ot_state = _State()
        return state

    # -- the clock --------------------------------------------------------------------

    @property
    def time(self) -> int:
        """The engine's time (an int in the caller's unit; 0 at start). Only :meth:`advance_time` moves it."""
        return self._ot().time

    def last_trade_price(self, symbol: str | None = None) -> Decimal | None:
        """The price of the symbol's last trade (what stops trigger on), or None before the first."""
        book = self.book(symbol)
        ticks = book._last_ticks()
        return None if ticks is None else book.instrument.ticks_to_price(ticks)

    def advance_time(self, now: int) -> list[Any]:
        """Set the engine's time to ``now`` and expire every GTD order due (``expire_at <= now``).

        Resting and waiting (untriggered) GTD orders expire in order of
        ``expire_at``, then sequence; each becomes ``EXPIRED``, and a resting
        one's removal is published as market data. Returns the expired orders.
        ``now`` earlier than :attr:`time` raises ``ValueError`` and changes nothing.
        """
        if type(now) is not int:
            raise TypeError(f"advance_time takes an int; got {type(now).__name__}")
        state = self._ot()
        if now < state.time:
            raise ValueError(f"time cannot go back: {now} is earlier than the engine's time {state.time}")
        if now > INT64_MAX:
            raise ValueError(f"time {now} does not fit in 64 bits")
        state.time = now
        expired = []
        for symbol, order in state.expiry.due(now, lambda o: o.status in _LIVE):
            book = self._books[symbol]
            if order.status is _UNTRIGGERED:
                with book._x_hold():
                    if book._trig is None or book._trig.waiting.get(order.id) is not order:
                        continue
                    book._trig.remove(order.id)
                    order._x_state(None, None, None, _EXPIRED, None)
            else:
                try:
                    if self._x_remove(book, order.id, _EXPIRED, order) is None:
                        continue
                except TradebookError:
                    continue
            expired.append(order)
        return expired

    # -- submitting -------------------------------------------------------------------------

    def _submit_ext(self, order: Any) -> Any:
        """``submit`` of an order with extras: a stop, an iceberg, a GTD order or a quote-sized market order."""
        book = self.book(order.symbol)
        inst = book.instrument
        if order.status is not OrderStatus.PENDING or order._x_bound():
            raise InvalidOrderError(f"order {order.id!r} is {order.status.value}; only a new order can be submitted")
        ext: OrderExt = order._ext
        price_in, qty_in = order._x_inputs()
        ticks = 0 if price_in is None else to_units(price_in, inst.tick_size, "price", "tick size", InvalidPriceError)
        lots = None if qty_in is None else to_units(qty_in, inst.lot_size, "quantity", "lot size", InvalidQuantityError)
        ext.bind(inst, lots)
        if has_limits(inst):
            if lots is not None:
                check_limits(inst, ticks or None, lots)
            if ext.stop is not None:
                check_limits(inst, ext.stop, None)  # the stop price within the price band
        return self._submit_bound(book, order, ticks, lots)

    def _submit_bound(self, book: Any, order: Any, ticks: int, lots: int | None) -> Any:
        ext: OrderExt = order._ext
        state = self._ot()
        tif = order.time_in_force
        with book._x_hold():
            if order.id in book or (book._trig is not None and order.id in book._trig.waiting):
                raise DuplicateOrderError(f"an order with id {order.id!r} is already resting or waiting")
            if tif is _GTD and ext.expire_at <= state.time:  # type: ignore[operator]
                order._x_state(book, ticks, lots or 0, _EXPIRED, None)
                return self._x_report(order)
            if order.type in STOP_TYPES:
                return self._accept_stop(book, order, ticks, lots)  # type: ignore[arg-type]
            report = self._x_run(book, order, order.type is _MARKET, ticks, lots, ext.quote)
            if tif is _GTD and order.status in _LIVE:
                state.expiry.add(book.symbol, order)
            return report

    def _accept_stop(self, book: Any, order: Any, ticks: int, lots: int) -> Any:
        ext: OrderExt = order._ext
        last = book._last_ticks()
        sell = order.side is _SELL
        stop = ext.stop
        if (
            order.type is not _TRAILING
            and last is not None
            and stop is not None
            and (last <= stop if sell else last >= stop)
        ):
            # the trigger condition already holds: the stop would trigger at once
            order._x_state(book, ticks, lots, _REJECTED, None)
            return self._x_report(order)
        ext.accepted = book._take_seq()
        order._x_state(book, ticks, lots, _UNTRIGGERED, ext.accepted)
        trig = book._trig
        if trig is None:
            trig = book._trig = Triggers()
        trig.add(order, last)
        if order.time_in_force is _GTD:
            self._ot().expiry.add(book.symbol, order)
        return self._x_report(order)

    def _submit_raw_ext(
        self,
        order_id: Hashable,
        side: Any,
        price: int | None,
        quantity: int | None,
        symbol: str | None,
        time_in_force: Any,
        owner: Hashable | None,
        otype: Any,
        stop_price: int | None,
        trailing_offset: int | None,
        display: int | None,
        expire_at: int | None,
        quote: int | None,
    ) -> Any:
        """``submit_raw`` with the new order types' fields, all in integer units (ticks, lots, tick*lot)."""
        book = self.book(symbol)
        inst = book.instrument
        if otype is None:
            otype = _MARKET if price is None and not (stop_price or trailing_offset) else _LIMIT
            if stop_price is not None:
                otype = _STOP if price is None else _STOP_LIMIT
            elif trailing_offset is not None:
                otype = _TRAILING
        tick, lot = inst.tick_size, inst.lot_size
        order = self._x_order_type(
            order_id,
            side,
            None if price is None else check_units(price, "price", InvalidPriceError) * tick,
            None if quantity is None else check_units(quantity, "quantity", InvalidQuantityError) * lot,
            owner=owner,
            type=coerce_enum(OrderType, otype, "order type", InvalidOrderError),
            time_in_force=time_in_force,
            stop_price=None if stop_price is None else check_units(stop_price, "stop price", InvalidPriceError) * tick,
            trailing_offset=None
            if trailing_offset is None
            else check_units(trailing_offset, "trailing offset", InvalidPriceError) * tick,
            display_quantity=None if display is None else check_units(display, "display", InvalidQuantityError) * lot,
            expire_at=expire_at,
            quote_quantity=None if quote is None else check_units(quote, "quote", InvalidQuantityError) * tick * lot,
            symbol=book.symbol,
        )
        if order._ext is None:  # a plain order after all
            return self.submit(order)  # type: ignore[attr-defined]
        return self._submit_ext(order)

    # -- the cascade ------------------------------------------------------------------------

    def _x_cascade(self, book: Any, prices: list[int]) -> list[Any]:
        """Run the stops that trades at ``prices`` trigger, and those their trades trigger, in order.

        The caller holds the book's lock and the command's own matching is done.
        """
        trig = book._trig
        reports = []
        queue = deque(trig.check(prices))
        while queue:
            order = queue.popleft()
            try:
                report = self._x_run(
                    book, order, order.type is not _STOP_LIMIT, order._x_ticks(), order._x_lots(), None
                )
            except TradebookError:
                # the book refuses it now (a level or a counter at its limit): nothing changed
                order._x_state(None, None, None, _REJECTED, None)
                report = self._x_report(order)
            reports.append(report)
            trades = report.trades
            if trades and trig.waiting:
                queue.extend(trig.check([t.price_ticks for t in trades]))
        return reports

    # -- cancel and amend of waiting stops ------------------------------------------------------

    def _cancel_waiting(self, book: Any, order_id: Hashable) -> Any:
        """Cancel a waiting stop; None if ``order_id`` is not one. The caller holds the book's lock."""
        trig = book._trig
        try:
            order = trig.waiting.get(order_id) if trig is not None else None
        except TypeError:
            return None
        if order is None:
            return None
        trig.remove(order_id)
        order._x_state(None, None, None, _CANCELLED, None)
        return order

    def _amend_waiting(self, book: Any, order_id: Hashable, lots: int | None, ticks: int | None) -> Any:
        """Amend a waiting stop's quantity (and a STOP_LIMIT's limit price); None if it is not one.

        The stop keeps its place among the stops (its trigger is unchanged).
        """
        trig = book._trig
        try:
            order = trig.waiting.get(order_id) if trig is not None else None
        except TypeError:
            return None
        if order is None:
            return None
        if ticks is not None and order.type is not _STOP_LIMIT:
            raise InvalidOrderError(f"a {order.type.value} order has no limit price to amend")
        if has_limits(book.instrument):
            check_limits(book.instrument, ticks, lots)
        order._x_state(None, ticks, lots, None, None)
        return self._x_report(order)

    # -- snapshots -----------------------------------------------------------------------------

    def _ext_snapshot(self) -> dict[str, Any]:
        """The engine clock, each book's last trade price, waiting stops and market data update number,
        as JSON-safe data."""
        from ._common import encode_key

        books = {}
        md_seq = self._ot().md_seq
        for symbol, book in self._books.items():
            entry: dict[str, Any] = {}
            last = book._last_ticks()
            if last is not None:
                entry["last_trade_price"] = last
            if md_seq.get(symbol):
                entry["market_data_seq"] = md_seq[symbol]  # a restored engine goes on from here
            if book._trig is not None and book._trig.waiting:
                entry["stops"] = [
                    {
                        "id": encode_key(o.id, "order id"),
                        "side": o.side.value,
                        "type": o.type.value,
                        "time_in_force": o.time_in_force.value,
                        "price": o._x_ticks(),
                        "quantity": o._x_lots(),
                        "owner": encode_key(o.owner, "owner"),
                        "client_order_id": encode_key(o.client_order_id, "client order id"),
                        "self_trade_prevention": None
                        if o.self_trade_prevention is None
                        else o.self_trade_prevention.value,
                        "extras": o._ext.copy_state(),
                    }
                    for o in book._trig.orders()
                ]
            if entry:
                books[symbol] = entry
        return {"time": self._ot().time, "books": books}

    def _ext_restore(self, data: Any) -> None:
        """Undo :meth:`_ext_snapshot` into a freshly restored engine (books already rebuilt)."""
        from ._common import decode_key

        if data is None:
            return
        if not isinstance(data, dict) or type(data.get("time")) is not int or not isinstance(data.get("books"), dict):
            raise InvalidOrderError("engine snapshot has bad order-type state")
        state = self._ot()
        state.time = data["time"]
        gtd: list[tuple[int, int, str, Any]] = []
        for symbol, entry in data["books"].items():
            if symbol not in self._books or not isinstance(entry, dict):
                raise InvalidOrderError(f"engine snapshot has order-type state for an unknown book {symbol!r}")
            book = self._books[symbol]
            last = entry.get("last_trade_price")
            if last is not None:
                book._set_last(check_units(last, "last trade price", InvalidOrderError))
            md_seq = entry.get("market_data_seq")
            if md_seq is not None:
                state.md_seq[symbol] = check_units(md_seq, "market data seq", InvalidOrderError)
            for raw in entry.get("stops", ()):
                try:
                    ext = OrderExt.from_state(raw["extras"])
                    otype = coerce_enum(OrderType, raw["type"], "order type", InvalidOrderError)
                    if otype not in STOP_TYPES:
                        raise InvalidOrderError(f"a waiting order must be a stop, not {otype.value}")
                    stp = raw.get("self_trade_prevention")
                    order = self._x_order_type._x_restored(
                        decode_key(raw["id"], "order id"),
                        coerce_enum(Side, raw["side"], "side", InvalidOrderError),
                        otype,
                        coerce_enum(TimeInForce, raw["time_in_force"], "time in force", InvalidOrderError),
                        decode_key(raw.get("owner"), "owner"),
                        decode_key(raw.get("client_order_id"), "client order id"),
                        None if stp is None else coerce_enum(SelfTradePrevention, stp, "stp", InvalidOrderError),
                        ext,
                    )
                    price = raw["price"]
                    if otype is _STOP_LIMIT:
                        price = check_units(price, "price", InvalidOrderError)
                    elif price != 0:
                        raise InvalidOrderError(f"a waiting {otype.value} order has no price")
                    lots = check_units(raw["quantity"], "quantity", InvalidOrderError)
                    order._x_state(book, price, lots, _UNTRIGGERED, ext.accepted)
                except (KeyError, TypeError, ValueError) as exc:
                    raise InvalidOrderError(f"bad waiting stop in engine snapshot: {exc}") from None
                if order.id in book or (book._trig is not None and order.id in book._trig.waiting):
                    raise InvalidOrderError(f"engine snapshot holds order id {order.id!r} twice in {symbol}")
                if book._trig is None:
                    book._trig = Triggers()
                book._trig.add(order, ext.ref)
                if order.time_in_force is _GTD:
                    gtd.append((ext.expire_at, ext.accepted, symbol, order))  # type: ignore[arg-type]
        for symbol, book in self._books.items():
            for order in book._x_resting_gtd():
                gtd.append((order.expire_at, order.sequence, symbol, order))
        gtd.sort(key=lambda e: (e[0], e[1], e[2]))
        for _, _, symbol, order in gtd:
            state.expiry.add(symbol, order)
