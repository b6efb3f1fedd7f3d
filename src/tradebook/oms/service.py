"""The async order service: validation, reservation, persistence, matching, settlement, recovery.

A placement goes through these steps, each symbol's commands one at a time
(an :class:`asyncio.Lock` per symbol; different symbols run in parallel):

1. validate the request against the instrument (nothing is touched on error);
2. idempotency: a repeat of ``(user_id, client_order_id)`` returns the
   original order and reserves nothing;
3. bring the symbol's engine clock to the service's clock, expiring the GTD
   orders that are due (so an order past its ``expire_at`` never trades);
4. write the order as ``PENDING`` (so a crash from here on can be cleaned up);
5. reserve its funds in the wallet; if the wallet refuses or is down, delete
   the pending row and raise: nothing is left behind;
6. submit it to the symbol's :class:`~tradebook.MatchingEngine`;
7. in **one transaction**: the order's new state, every order the command
   touched (the makers it traded with, the stops its trades triggered and the
   makers those traded with, icebergs that showed a new slice, trailing stops
   whose reference moved), the trades, and the wallet operations they imply
   (settlements, releases) as an outbox; if this fails the symbol's book is
   rebuilt from the repository and the pending order is undone;
8. apply the wallet operations; they are idempotent (settlements by trade id,
   releases as targets), so recovery may apply them again safely.

On :meth:`OrderService.start` the service recovers: pending orders (never
accepted) are undone, outstanding wallet operations are applied, and every
book is rebuilt from the repository's live orders exactly as it stood:
resting orders in their priority, icebergs with their current slice and
hidden rest, stops waiting for their trigger in their order, trailing stops
with their reference price, the symbol's last trade price (what stops trigger
on); then the GTD orders that expired meanwhile are expired. A process killed
at any point restarts with no accepted order or trade lost or duplicated, and
every asset's total unchanged.

One service instance must own a repository at a time (it allocates ids).
Order ids are dense: a placement refused after its id was taken (a replayed
``client_order_id``, an unaffordable reservation, an order the engine refuses)
gives the id back once nothing of it is left, no row, no reservation and no
queued release, so the next order gets it. An id whose release may still be
applied (the wallet was unavailable) is never handed out again: a late release
would free the new order's funds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from types import TracebackType
from typing import Any

from .._common import Depth
from .._compat import Order
from .._limits import check_limits
from .._numeric import from_units, to_decimal, to_units
from ..enums import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce, coerce_enum
from ..errors import (
    DuplicateOrderError,
    InsufficientBalanceError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    InvalidRequestError,
    OrderConflictError,
    OrderNotFoundError,
    PersistenceError,
    TradebookError,
    UnknownSymbolError,
    WalletUnavailableError,
)
from ..instrument import Instrument
from ._money import in_money_context
from ._restore import restore_engine
from ._time import epoch_ms, expire_at_ms
from .feeds import MarketFeed, UserFeed
from .models import (
    ACTIVE_STATUSES,
    Balance,
    OrderQuery,
    OrderRecord,
    Page,
    Release,
    Settlement,
    TradeRecord,
    WalletOp,
)
from .ports import OrderRepository, WalletClient

__all__ = ["OrderService", "Placement", "RecoveryReport"]

log = logging.getLogger("tradebook.oms")

_ZERO = Decimal(0)
_MAX_ID_LENGTH = 128
_MAX_CLIENT_ID_LENGTH = 64

_LIMIT, _MARKET = OrderType.LIMIT, OrderType.MARKET
_STOP, _STOP_LIMIT, _TRAILING = OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP
_GTC, _FOK, _GTD = TimeInForce.GTC, TimeInForce.FOK, TimeInForce.GTD
_OPEN, _PARTIAL = OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED
_FILLED, _CANCELLED, _EXPIRED = OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED
_UNTRIGGERED = OrderStatus.UNTRIGGERED
_RESTING = frozenset({_OPEN, _PARTIAL})
#: Types that wait off the book for a trigger.
_STOP_TYPES = frozenset({_STOP, _STOP_LIMIT, _TRAILING})
#: Types that carry a limit price.
_PRICED_TYPES = frozenset({_LIMIT, _STOP_LIMIT})


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Placement:
    """What :meth:`OrderService.place` returns.

    ``order`` is the order after the command (a stop that waits is
    ``UNTRIGGERED``); ``trades`` the trades it made itself (empty for a
    repeat); ``replayed`` is true when the request repeated an earlier
    ``client_order_id`` and ``order`` is that earlier order. ``triggered``
    lists the stops the command's trades triggered (those of other orders
    too), each as a :class:`Placement` of its own with the trades it made, in
    the order they ran; their funds are settled like any other trade.
    """

    order: OrderRecord
    trades: Sequence[TradeRecord] = ()
    replayed: bool = False
    triggered: Sequence[Placement] = ()

    @property
    def all_trades(self) -> list[TradeRecord]:
        """Every trade of the command: the order's own, then those of each stop it triggered."""
        trades = list(self.trades)
        for stop in self.triggered:
            trades.extend(stop.trades)
        return trades


@dataclass
class RecoveryReport:
    """What :meth:`OrderService.start` found and repaired.

    ``orders_restored`` counts each symbol's live orders put back (resting
    and waiting); ``expired`` lists the GTD orders whose time passed while
    the service was down, expired (and their funds released) at start.
    """

    pending_removed: list[int] = field(default_factory=list)
    wallet_ops_applied: int = 0
    wallet_ops_outstanding: int = 0
    orders_restored: dict[str, int] = field(default_factory=dict)
    expired: list[int] = field(default_factory=list)


class OrderService:
    """Order management over a repository, a wallet and one engine book per symbol.

    ``instruments`` are the tradable symbols. ``clock`` returns aware UTC
    datetimes (injectable for tests and replays); it also drives the engines'
    time, in epoch milliseconds (see :meth:`advance_time`), which is what GTD
    orders' ``expire_at`` is measured in. ``expiry_interval`` is how often, in
    seconds, a background task started by :meth:`start` expires GTD orders
    that are due (``None``: no task; call :meth:`advance_time` yourself, as
    tests and replays do). Fees are rates on what each side receives (the
    buyer pays its fee in the base asset, the seller in the quote asset),
    credited to ``fee_account``; both default to zero.

    What each order reserves (see docs/orders.md, "Reservation policy"):
    a limit or stop-limit buy its price times its quantity; a market buy
    exactly what sweeping the book as it stands would cost (computed under the
    symbol's lock, leaving out the user's own resting orders when self-trade
    prevention is on), or its ``quote_quantity`` when it is sized by the quote
    amount; a stop or trailing-stop buy the instrument's ``max_price`` times
    its quantity (refused on an instrument without one: nothing would bound
    what it pays once triggered); a sell its quantity, or for a market sell
    sized by the quote amount the base quantity that sweeping the bids as they
    stand would sell. Whatever is not spent is released as soon as the order
    no longer needs it.

    Use as ``async with OrderService(repo, wallet, instruments) as service:``
    or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        repository: OrderRepository,
        wallet: WalletClient,
        instruments: Iterable[Instrument],
        *,
        clock: Callable[[], datetime] = _utc_now,
        self_trade_prevention: SelfTradePrevention | str = SelfTradePrevention.CANCEL_TAKER,
        maker_fee_rate: Decimal | int | str = 0,
        taker_fee_rate: Decimal | int | str = 0,
        fee_account: str | None = None,
        expiry_interval: float | None = 1.0,
    ) -> None:
        self.repository = repository
        self.wallet = wallet
        self._instruments: dict[str, Instrument] = {}
        for inst in instruments:
            if not isinstance(inst, Instrument):
                raise TypeError(f"instruments must be Instrument objects, not {type(inst).__name__}")
            if inst.symbol in self._instruments:
                raise ValueError(f"instrument {inst.symbol} is listed twice")
            self._instruments[inst.symbol] = inst
        stp = coerce_enum(SelfTradePrevention, self_trade_prevention, "self_trade_prevention", ValueError)
        if stp is SelfTradePrevention.DECREMENT:
            raise ValueError("the order service does not support DECREMENT self-trade prevention")
        self._stp = stp
        self._maker_fee = _rate(maker_fee_rate, "maker_fee_rate")
        self._taker_fee = _rate(taker_fee_rate, "taker_fee_rate")
        if (self._maker_fee or self._taker_fee) and not fee_account:
            raise ValueError("fees need a fee_account to credit")
        self._fee_account = fee_account
        if expiry_interval is not None and (
            isinstance(expiry_interval, bool)
            or not isinstance(expiry_interval, (int, float))
            or not 0 < expiry_interval < float("inf")
        ):
            raise ValueError(f"expiry_interval must be a positive number of seconds or None, not {expiry_interval!r}")
        self._expiry_interval = expiry_interval
        self._expiry_task: asyncio.Task[None] | None = None
        self._clock = clock
        self._engines: dict[str, Any] = {}
        self._locks = {symbol: asyncio.Lock() for symbol in self._instruments}
        self._active: dict[int, OrderRecord] = {}
        # the live trailing stops of each symbol (their reference moves with every trade), and each live
        # iceberg's sequence in its engine (a new slice takes a new one: the service gives it a new sequence too)
        self._trailing: dict[str, set[int]] = {symbol: set() for symbol in self._instruments}
        # the live GTD orders of each symbol: while there is none, a command need not bring the clock forward
        self._gtd: dict[str, set[int]] = {symbol: set() for symbol in self._instruments}
        self._iceberg_seq: dict[str, dict[int, int]] = {symbol: {} for symbol in self._instruments}
        self._outbox: dict[str, list[WalletOp]] = {symbol: [] for symbol in self._instruments}
        self._applied: list[int] = []  # applied wallet ops not yet marked done in the repository
        self._inflight: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._next_order_id = self._next_trade_id = self._next_sequence = self._next_op_id = 1
        self._free_order_ids: set[int] = set()  # given back below _next_order_id, handed out first
        self._broken: set[str] = set()
        # live feeds: each symbol with a market feed has one engine subscription that fills them all
        self._market_feeds: dict[str, set[MarketFeed]] = {}
        self._md_unsubscribe: dict[str, Callable[[], None]] = {}
        self._user_feeds: dict[str, set[UserFeed]] = {}
        self._started = False
        self._closed = False

    # -- life cycle -------------------------------------------------------------

    @property
    def instruments(self) -> dict[str, Instrument]:
        """The tradable instruments by symbol (a copy)."""
        return dict(self._instruments)

    async def __aenter__(self) -> OrderService:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @in_money_context
    async def start(self) -> RecoveryReport:
        """Recover from the repository and open for business; see the module docs."""
        if self._started:
            raise RuntimeError("the service is already started")
        report = RecoveryReport()
        last_order, last_trade, last_sequence, last_op = await self.repository.last_ids()
        self._next_order_id, self._next_trade_id = last_order + 1, last_trade + 1
        self._next_sequence, self._next_op_id = last_sequence + 1, last_op + 1
        for op in await self.repository.pending_wallet_ops():
            self._outbox.setdefault(op.symbol, []).append(op)
            if isinstance(op.op, Release) and op.op.ref.isdigit():
                # a release queued for a deleted pending order: never hand its id out again
                self._next_order_id = max(self._next_order_id, int(op.op.ref) + 1)
        for order in await self.repository.pending_orders():
            await self._undo_pending(order.id, order.symbol, release=True, strict=True)
            report.pending_removed.append(order.id)
            log.info("recovery: removed order %s, pending when the service stopped", order.id)
        for symbol in list(self._outbox):
            report.wallet_ops_applied += await self._drain_outbox(symbol)
            report.wallet_ops_outstanding += len(self._outbox[symbol])
        for symbol in self._instruments:
            report.orders_restored[symbol] = await self._rebuild(symbol)
        now = self._clock()
        for symbol in self._instruments:
            expired = await self._advance_locked(symbol, now)
            report.expired.extend(record.id for record in expired)
        await self._flush_applied()
        self._started = True
        if self._expiry_interval is not None:
            self._expiry_task = asyncio.get_running_loop().create_task(self._expire_periodically())
        return report

    async def close(self) -> None:
        """Record applied wallet operations and stop taking commands (the ports stay open)."""
        if self._closed:
            return
        self._closed = True
        task, self._expiry_task = self._expiry_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for market_feeds in list(self._market_feeds.values()):
            for market_feed in list(market_feeds):
                market_feed.close()
        for user_feeds in list(self._user_feeds.values()):
            for user_feed in list(user_feeds):
                user_feed.close()
        if self._started:
            await self._flush_applied()

    def _check_open(self) -> None:
        if not self._started:
            raise RuntimeError("the service is not started: call await service.start() first")
        if self._closed:
            raise RuntimeError("the service is closed")

    async def _rebuild(self, symbol: str) -> int:
        """Replace the symbol's engine with one restored from the repository's live orders; returns their count.

        See :func:`~tradebook.oms._restore.restore_engine`: it comes back exactly as it was, the time of the
        engine it replaces (if any) included.
        """
        inst = self._instruments[symbol]
        records = await self.repository.active_orders(symbol)
        latest = await self.repository.list_trades(symbol=symbol, limit=1)
        previous = self._engines.get(symbol)
        engine = restore_engine(
            inst,
            records,
            self_trade_prevention=self._stp,
            last_trade_price=latest.items[0].price if latest.items else None,
            time=0 if previous is None else previous.time,
            next_sequence=self._next_sequence,
        )
        for order_id in [i for i, o in self._active.items() if o.symbol == symbol]:
            del self._active[order_id]
        self._trailing[symbol] = set()
        self._gtd[symbol] = set()
        icebergs = self._iceberg_seq[symbol] = {}
        for record in records:
            self._remember(record)
            if record.display_quantity is not None and record.status is not _UNTRIGGERED:
                icebergs[record.id] = record.sequence  # type: ignore[assignment]
        self._engines[symbol] = engine
        if symbol in self._md_unsubscribe:  # the feeds follow the new book from a fresh snapshot
            self._md_unsubscribe.pop(symbol)()
            self._md_unsubscribe[symbol] = engine.subscribe(self._dispatch_market)
            for feed in self._market_feeds[symbol]:
                feed.resync()
        return len(records)

    async def _recover_symbol(self, symbol: str) -> None:
        """After a failed write: rebuild the book from the repository, or stop serving the symbol."""
        try:
            await self._rebuild(symbol)
        except BaseException as exc:
            # The book may now hold effects the repository lacks: refuse commands until a restart.
            self._broken.add(symbol)
            log.error("could not rebuild %s after a failed write; it is closed until restart: %s", symbol, exc)

    # -- time ---------------------------------------------------------------------

    @in_money_context
    async def advance_time(self, now: datetime | None = None) -> list[OrderRecord]:
        """Bring every symbol's engine clock to ``now`` (the service's clock by default); expire what is due.

        The engines keep time in epoch milliseconds. Every GTD order, resting
        or waiting for its trigger, whose ``expire_at`` is at or before ``now``
        becomes ``EXPIRED`` (keeping its fills) and its reservation is
        released, in one transaction per symbol. Returns the expired orders.
        Time never goes back: an earlier ``now`` expires nothing. The
        background task (``expiry_interval``) calls this; each command also
        brings its own symbol's clock forward first.
        """
        self._check_open()
        moment = self._clock() if now is None else now
        expired: list[OrderRecord] = []
        for symbol in self._instruments:
            async with self._locks[symbol]:
                if symbol in self._broken:
                    continue
                await self._drain_outbox(symbol)
                expired.extend(await self._advance_locked(symbol, moment))
        return expired

    async def _expire_periodically(self) -> None:
        assert self._expiry_interval is not None
        while True:
            await asyncio.sleep(self._expiry_interval)
            try:
                await self.advance_time()
            except (TradebookError, OSError) as exc:
                log.warning("could not expire GTD orders (retried in %s s): %s", self._expiry_interval, exc)
            except Exception:  # a bug: say so loudly, and keep expiring (a dead task would expire nothing again)
                log.exception("expiring GTD orders failed (retried in %s s)", self._expiry_interval)

    async def _advance_locked(self, symbol: str, now: datetime) -> list[OrderRecord]:
        """Expire the symbol's GTD orders due at ``now`` and persist it (the caller holds the symbol's lock)."""
        engine = self._engines[symbol]
        ms = epoch_ms(now)
        if ms < engine.time:
            return []  # the clock went back: the engine's time stands still until it catches up
        expired_orders = engine.advance_time(ms)
        if not expired_orders:
            return []
        records = []
        for order in expired_orders:
            record = self._active[order.id]
            changes: dict[str, Any] = {"status": _EXPIRED, "updated_at": now}
            if record.display_quantity is not None:
                changes["visible_quantity"] = record.display_quantity * 0  # zero at the lot's scale
            records.append(record.replace(**changes))
        ops = [self._op(symbol, Release(_ref(record.id))) for record in records]
        try:
            async with self._transaction() as uow:
                for record in records:
                    await _update(uow, record, now)
                await uow.add_wallet_ops(ops)
        except BaseException as exc:
            await self._recover_symbol(symbol)  # the orders are live again; the next command expires them
            if isinstance(exc, (TradebookError, OSError)):
                raise PersistenceError(f"the expiry of {symbol} orders was not stored: {exc}") from exc
            raise
        for record in records:
            self._remember(record)
            log.info("order %s expired (GTD, expire_at %s)", record.id, record.expire_at)
        if self._user_feeds:
            self._publish_user(records, ())
        self._outbox[symbol].extend(ops)
        await self._drain_outbox(symbol)
        return records

    # -- queries ----------------------------------------------------------------

    async def get_order(self, user_id: str, order_id: int) -> OrderRecord:
        """The user's order; another user's order is :class:`~tradebook.OrderNotFoundError` too."""
        self._check_open()
        _check_user(user_id)
        record = await self.repository.get_order(_check_order_id(order_id))
        if record is None or record.user_id != user_id or record.status is OrderStatus.PENDING:
            raise OrderNotFoundError(f"no order {order_id} for this user")
        return record

    async def list_orders(self, user_id: str, query: OrderQuery | None = None) -> Page[OrderRecord]:
        """The user's orders, newest first, filtered and paginated by ``query``."""
        self._check_open()
        _check_user(user_id)
        query = query or OrderQuery()
        if query.symbol is not None:
            self._instrument(query.symbol)
        return await self.repository.list_orders(user_id, query)

    async def list_trades(
        self, *, symbol: str | None = None, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[TradeRecord]:
        """Trades newest first, by symbol and/or user."""
        self._check_open()
        if symbol is not None:
            self._instrument(symbol)
        if user_id is not None:
            _check_user(user_id)
        return await self.repository.list_trades(symbol=symbol, user_id=user_id, limit=limit, cursor=cursor)

    def depth(self, symbol: str, levels: int = 10) -> Depth:
        """Aggregated price levels of the symbol's book (best first)."""
        self._check_open()
        self._instrument(symbol)
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= 1000:
            raise InvalidRequestError(f"levels must be an integer from 1 to 1000, not {levels!r}")
        depth: Depth = self._engines[symbol].book(symbol).depth(levels)
        return depth

    async def balances(self, user_id: str) -> dict[str, Balance]:
        """The user's wallet balances by asset."""
        self._check_open()
        _check_user(user_id)
        return await self.wallet.balances(user_id)

    def _check_symbol(self, symbol: str) -> None:
        if symbol in self._broken:
            raise PersistenceError(f"{symbol} is closed after a storage failure; restart the service to recover it")

    def _instrument(self, symbol: object) -> Instrument:
        inst = self._instruments.get(symbol) if isinstance(symbol, str) else None
        if inst is None:
            raise UnknownSymbolError(f"unknown symbol {symbol!r}")
        return inst

    # -- placing ----------------------------------------------------------------

    async def place_order(
        self,
        user_id: str,
        symbol: str,
        side: Side | str,
        quantity: Decimal | int | str | None,
        price: Decimal | int | str | None = None,
        *,
        type: OrderType | str = OrderType.LIMIT,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        post_only: bool = False,
        client_order_id: str | None = None,
        stop_price: Decimal | int | str | None = None,
        trailing_offset: Decimal | int | str | None = None,
        display_quantity: Decimal | int | str | None = None,
        expire_at: int | datetime | None = None,
        quote_quantity: Decimal | int | str | None = None,
    ) -> OrderRecord:
        """Place an order and return it after matching; see :meth:`place` for details."""
        placement = await self.place(
            user_id,
            symbol,
            side,
            quantity,
            price,
            type=type,
            time_in_force=time_in_force,
            post_only=post_only,
            client_order_id=client_order_id,
            stop_price=stop_price,
            trailing_offset=trailing_offset,
            display_quantity=display_quantity,
            expire_at=expire_at,
            quote_quantity=quote_quantity,
        )
        return placement.order

    @in_money_context
    async def place(
        self,
        user_id: str,
        symbol: str,
        side: Side | str,
        quantity: Decimal | int | str | None,
        price: Decimal | int | str | None = None,
        *,
        type: OrderType | str = OrderType.LIMIT,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        post_only: bool = False,
        client_order_id: str | None = None,
        stop_price: Decimal | int | str | None = None,
        trailing_offset: Decimal | int | str | None = None,
        display_quantity: Decimal | int | str | None = None,
        expire_at: int | datetime | None = None,
        quote_quantity: Decimal | int | str | None = None,
    ) -> Placement:
        """Validate, reserve, persist, match and settle one order.

        The order types are those of the engine: ``LIMIT`` and ``MARKET``;
        ``STOP`` (``stop_price``; a market order once triggered), ``STOP_LIMIT``
        (``stop_price`` and ``price``), ``TRAILING_STOP`` (``trailing_offset``);
        an iceberg is a ``LIMIT`` ``GTC`` or ``GTD`` order with
        ``display_quantity``; ``GTD`` needs ``expire_at`` (epoch milliseconds,
        or an aware datetime); a ``MARKET`` order may be sized by
        ``quote_quantity`` (on the grid of tick size times lot size) with
        ``quantity`` ``None``. A stop placed when the last trade price already
        meets its condition is ``REJECTED``.

        Raises a validation error (:class:`~tradebook.InvalidOrderError` and
        its subclasses, :class:`~tradebook.UnknownSymbolError`,
        :class:`~tradebook.InvalidRequestError`),
        :class:`~tradebook.InsufficientBalanceError`,
        :class:`~tradebook.WalletUnavailableError` or
        :class:`~tradebook.PersistenceError`; each leaves no order row and no
        reservation behind.
        """
        self._check_open()
        request = self._validate(
            user_id,
            symbol,
            side,
            quantity,
            price,
            type,
            time_in_force,
            post_only,
            client_order_id,
            stop_price,
            trailing_offset,
            display_quantity,
            expire_at,
            quote_quantity,
        )
        if client_order_id is None:
            return await self._place_locked(request)
        key = (user_id, client_order_id)
        while (waiting := self._inflight.get(key)) is not None:
            await asyncio.shield(waiting)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = done  # no await since the check: one request per key at a time
        try:
            # A repeat is caught by the repository's (user, client_order_id) uniqueness when the
            # pending row is written: no lookup before every placement.
            return await self._place_locked(request)
        finally:
            del self._inflight[key]
            done.set_result(None)

    def _validate(
        self,
        user_id: object,
        symbol: object,
        side: object,
        quantity: object,
        price: object,
        type: object,
        time_in_force: object,
        post_only: object,
        client_order_id: object,
        stop_price: object = None,
        trailing_offset: object = None,
        display_quantity: object = None,
        expire_at: object = None,
        quote_quantity: object = None,
    ) -> _Request:
        _check_user(user_id)
        inst = self._instrument(symbol)
        side_ = coerce_enum(Side, side, "side", InvalidOrderError)
        type_ = coerce_enum(OrderType, type, "type", InvalidOrderError)
        tif = coerce_enum(TimeInForce, time_in_force, "time_in_force", InvalidOrderError)
        if not isinstance(post_only, bool):
            raise InvalidOrderError(f"post_only must be true or false, not {post_only!r}")
        if client_order_id is not None and (
            not isinstance(client_order_id, str)
            or not 1 <= len(client_order_id) <= _MAX_CLIENT_ID_LENGTH
            or not client_order_id.isascii()
            or not client_order_id.isprintable()
        ):
            raise InvalidOrderError(
                f"client_order_id must be 1 to {_MAX_CLIENT_ID_LENGTH} printable ASCII characters, not {client_order_id!r}"
            )
        if (
            (type_ is _LIMIT or type_ is _MARKET)
            and tif is not _GTD
            and stop_price is None
            and trailing_offset is None
            and display_quantity is None
            and expire_at is None
            and quote_quantity is None
        ):  # a plain limit or market order: the usual case, in fewer steps
            if quantity is None:
                raise InvalidQuantityError("an order needs a quantity (or, for a MARKET order, a quote_quantity)")
            lots = inst.quantity_to_lots(quantity)  # type: ignore[arg-type]
            ticks: int | None
            if type_ is _LIMIT:
                if price is None:
                    raise InvalidPriceError("a LIMIT order needs a price")
                ticks = inst.price_to_ticks(price)  # type: ignore[arg-type]
            else:
                if price is not None:
                    raise InvalidPriceError("a MARKET order takes no price")
                ticks = None
            if post_only and (type_ is not _LIMIT or tif is not _GTC):
                raise InvalidOrderError("post_only applies to LIMIT GTC orders only")
            check_limits(inst, ticks, lots)
            return _Request(
                user_id,  # type: ignore[arg-type]
                inst,
                side_,
                type_,
                tif,
                post_only,
                client_order_id,
                inst.lots_to_quantity(lots),
                None if ticks is None else inst.ticks_to_price(ticks),
            )
        return self._validate_extended(
            user_id,  # type: ignore[arg-type]
            inst,
            side_,
            type_,
            tif,
            post_only,
            client_order_id,
            quantity,
            price,
            stop_price,
            trailing_offset,
            display_quantity,
            expire_at,
            quote_quantity,
        )

    def _validate_extended(
        self,
        user_id: str,
        inst: Instrument,
        side_: Side,
        type_: OrderType,
        tif: TimeInForce,
        post_only: bool,
        client_order_id: str | None,
        quantity: object,
        price: object,
        stop_price: object,
        trailing_offset: object,
        display_quantity: object,
        expire_at: object,
        quote_quantity: object,
    ) -> _Request:
        """The rest of :meth:`_validate` for the order types beyond plain limit and market."""
        quote: Decimal | None = None
        lots: int | None
        if quote_quantity is None:
            if quantity is None:
                raise InvalidQuantityError("an order needs a quantity (or, for a MARKET order, a quote_quantity)")
            lots = inst.quantity_to_lots(quantity)  # type: ignore[arg-type]
        else:
            if type_ is not _MARKET:
                raise InvalidOrderError(f"quote_quantity applies only to MARKET orders, not {type_.value}")
            if quantity is not None:
                raise InvalidOrderError("give quantity or quote_quantity, not both")
            if tif is _FOK:
                raise InvalidOrderError("quote_quantity does not combine with FOK")
            quote = _quote_amount(inst, quote_quantity)
            lots = None
        ticks: int | None
        if type_ in _PRICED_TYPES:
            if price is None:
                raise InvalidPriceError(f"a {type_.value} order needs a price")
            ticks = inst.price_to_ticks(price)  # type: ignore[arg-type]
        else:
            if price is not None:
                raise InvalidPriceError(f"a {type_.value} order takes no price")
            ticks = None
        if post_only and (type_ is not _LIMIT or tif is not _GTC):
            raise InvalidOrderError("post_only applies to LIMIT GTC orders only")
        stop: Decimal | None = None
        if type_ is _STOP or type_ is _STOP_LIMIT:
            if stop_price is None:
                raise InvalidOrderError(f"a {type_.value} order needs a stop_price")
            stop_ticks = _units(stop_price, inst.tick_size, "stop_price", "tick size", InvalidPriceError)
            check_limits(inst, stop_ticks, None)  # the stop price within the instrument's price band
            stop = inst.ticks_to_price(stop_ticks)
        elif stop_price is not None:
            raise InvalidOrderError(f"stop_price applies only to STOP and STOP_LIMIT orders, not {type_.value}")
        trail: Decimal | None = None
        if type_ is _TRAILING:
            if trailing_offset is None:
                raise InvalidOrderError("a TRAILING_STOP order needs a trailing_offset")
            trail = inst.ticks_to_price(
                _units(trailing_offset, inst.tick_size, "trailing_offset", "tick size", InvalidPriceError)
            )
        elif trailing_offset is not None:
            raise InvalidOrderError(f"trailing_offset applies only to TRAILING_STOP orders, not {type_.value}")
        display: Decimal | None = None
        if display_quantity is not None:
            if type_ is not _LIMIT or (tif is not _GTC and tif is not _GTD):
                raise InvalidOrderError("display_quantity (an iceberg) applies only to LIMIT GTC or GTD orders")
            display_lots = _units(display_quantity, inst.lot_size, "display_quantity", "lot size", InvalidQuantityError)
            if lots is not None and display_lots >= lots:
                raise InvalidQuantityError(f"display_quantity {display_quantity} must be smaller than the quantity")
            display = inst.lots_to_quantity(display_lots)
        expiry: int | None = None
        if tif is _GTD:
            if type_ is _MARKET:
                raise InvalidOrderError("a MARKET order cannot be GTD: it never rests")
            if expire_at is None:
                raise InvalidOrderError("a GTD order needs expire_at")
            expiry = expire_at_ms(expire_at)
        elif expire_at is not None:
            raise InvalidOrderError(f"expire_at applies only to GTD orders (time_in_force is {tif.value})")
        if side_ is Side.BUY and (type_ is _STOP or type_ is _TRAILING) and inst.max_price is None:
            raise InvalidOrderError(
                f"a {type_.value} BUY pays whatever the market asks once triggered, and {inst.symbol} has no "
                "max_price to reserve against: place a STOP_LIMIT order instead"
            )
        if lots is not None:
            check_limits(inst, ticks, lots)
        return _Request(
            user_id=user_id,
            inst=inst,
            side=side_,
            type=type_,
            time_in_force=tif,
            post_only=post_only,
            client_order_id=client_order_id,
            quantity=None if lots is None else inst.lots_to_quantity(lots),
            price=None if ticks is None else inst.ticks_to_price(ticks),
            stop_price=stop,
            trailing_offset=trail,
            display_quantity=display,
            expire_at=expiry,
            quote_quantity=quote,
        )

    async def _place_locked(self, req: _Request) -> Placement:
        symbol = req.inst.symbol
        async with self._locks[symbol]:
            self._check_symbol(symbol)
            await self._drain_outbox(symbol)
            now = self._clock()
            if self._gtd[symbol] or req.time_in_force is _GTD:
                await self._advance_locked(symbol, now)
            order_id = self._take_order_id()
            pending = _record(
                id=order_id,
                user_id=req.user_id,
                symbol=symbol,
                side=req.side,
                type=req.type,
                time_in_force=req.time_in_force,
                price=req.price,
                quantity=req.quantity,
                filled_quantity=_ZERO,
                status=OrderStatus.PENDING,
                created_at=now,
                updated_at=now,
                client_order_id=req.client_order_id,
                post_only=req.post_only,
                sequence=None,
                stop_price=req.stop_price,
                trailing_offset=req.trailing_offset,
                display_quantity=req.display_quantity,
                visible_quantity=None,
                expire_at=req.expire_at,
                quote_quantity=req.quote_quantity,
            )
            for attempt in (1, 2):
                try:
                    async with self._transaction() as uow:
                        await uow.create_order(pending)
                    break
                except DuplicateOrderError:
                    if req.client_order_id is None:
                        raise
                    existing = await self.repository.get_order_by_client_id(req.user_id, req.client_order_id)
                    if existing is None:
                        raise
                    if existing.status is not OrderStatus.PENDING or attempt == 2:
                        self._give_back_order_id(order_id)  # its row was never written
                        return Placement(existing, (), replayed=True)
                    # Left over by an earlier attempt whose undo failed (it is not in flight: the
                    # in-flight map admits one request per key): finish the undo, then place anew.
                    await self._undo_pending(existing.id, existing.symbol, release=True, strict=True)
                except OSError as exc:  # as _execute and cancel_order do: a storage failure is a PersistenceError
                    raise PersistenceError(f"order {order_id} was not stored: {exc}") from exc
            asset, amount = self._reservation_for(req)
            if amount > 0:
                try:
                    await self.wallet.reserve(req.user_id, asset, amount, _ref(order_id))
                except BaseException as exc:
                    refused = isinstance(exc, InsufficientBalanceError)  # then nothing was reserved
                    if await self._undo_pending(order_id, symbol, release=not refused) and refused:
                        self._give_back_order_id(order_id)
                    raise
            return await self._execute(pending)

    def _take_order_id(self) -> int:
        """The smallest id given back, else the next new one."""
        if self._free_order_ids:
            order_id = min(self._free_order_ids)
            self._free_order_ids.remove(order_id)
            return order_id
        order_id = self._next_order_id
        self._next_order_id += 1
        return order_id

    def _give_back_order_id(self, order_id: int) -> None:
        """Hand ``order_id`` out again: nothing of its placement is stored or reserved.

        Placements of other symbols may have taken later ids meanwhile; then it waits in
        ``_free_order_ids`` for the next placement (after a restart it stays a gap).
        """
        self._free_order_ids.add(order_id)
        while self._next_order_id - 1 in self._free_order_ids:
            self._next_order_id -= 1
            self._free_order_ids.remove(self._next_order_id)

    def _reservation_for(self, req: _Request) -> tuple[str, Decimal]:
        """The asset and amount an order reserves when it is placed (see the class docs)."""
        inst = req.inst
        if req.side is Side.SELL:
            if req.quantity is None:
                return inst.base, self._market_sell_quantity(req)
            return inst.base, req.quantity
        if req.quantity is None:
            assert req.quote_quantity is not None
            return inst.quote, req.quote_quantity
        if req.price is not None:
            return inst.quote, req.price * req.quantity
        if req.type is not _MARKET:  # STOP or TRAILING_STOP: the validation made sure of a max_price
            assert inst.max_price is not None
            return inst.quote, inst.max_price * req.quantity
        return inst.quote, self._market_buy_cost(req)

    def _market_buy_cost(self, req: _Request) -> Decimal:
        """What a market buy would pay sweeping the book as it stands (an upper bound)."""
        book = self._engines[req.inst.symbol].book(req.inst.symbol)
        skip_own = self._stp is not SelfTradePrevention.NONE
        left, cost = req.quantity, _ZERO
        assert left is not None
        for level in book.asks:
            price: Decimal = level.price
            for resting in level:
                if skip_own and resting.owner == req.user_id:
                    continue
                # an iceberg's remaining quantity counts its hidden part: the taker reaches it at this price
                take: Decimal = min(left, resting.remaining_quantity)
                cost += take * price
                left -= take
                if not left:
                    return cost
        return cost

    def _market_sell_quantity(self, req: _Request) -> Decimal:
        """What a market sell sized by a quote amount would sell sweeping the bids as they stand (an upper bound).

        The engine's rule, level by level: as many whole lots as the budget left
        pays for at the level's price, stopping at the first level where that is
        less than the level holds (one more lot would exceed the budget).
        """
        inst = req.inst
        assert req.quote_quantity is not None
        book = self._engines[inst.symbol].book(inst.symbol)
        skip_own = self._stp is not SelfTradePrevention.NONE
        budget = to_units(
            req.quote_quantity, inst.tick_size * inst.lot_size, "quote_quantity", "", InvalidQuantityError
        )
        sold = 0
        for level in book.bids:
            ticks = inst.price_to_ticks(level.price)
            held = 0
            for resting in level:
                if not (skip_own and resting.owner == req.user_id):
                    held += inst.quantity_to_lots(resting.remaining_quantity)
            if not held:
                continue
            take = min(held, budget // ticks)
            sold += take
            budget -= take * ticks
            if take < held:
                break
        return _ZERO if not sold else inst.lots_to_quantity(sold)

    async def _undo_pending(self, order_id: int, symbol: str, *, release: bool, strict: bool = False) -> bool:
        """Take back a pending order: delete its row and, when a reservation may exist, release it.

        The release is queued in the outbox in the same transaction as the delete, so a wallet
        that is down (or a breaker that is open) does not keep the row: the release is applied
        now if the wallet answers, else before the symbol's next command or at start. A failure
        to write is logged and left for the next attempt or recovery, or raised when ``strict``.

        Returns whether nothing of the order is left: the row deleted and the release, if any,
        applied and marked done (a release still on record may be applied again at start).
        """
        ops = [self._op(symbol, Release(_ref(order_id)))] if release else []
        try:
            async with self._transaction() as uow:
                await uow.delete_order(order_id)
                if ops:
                    await uow.add_wallet_ops(ops)
        except (TradebookError, OSError) as exc:
            if strict:
                raise
            log.warning("could not undo pending order %s (recovery will): %s", order_id, exc)
            return False
        queue = self._outbox.setdefault(symbol, [])
        queue.extend(ops)
        await self._drain_outbox(symbol)
        if not ops:
            return True
        if any(op is ops[0] for op in queue):
            return False
        try:
            await self._flush_applied()
        except (TradebookError, OSError) as exc:
            log.warning("could not mark the release of order %s done (it stays marked applied): %s", order_id, exc)
            return False
        return True

    async def _execute(self, pending: OrderRecord) -> Placement:
        symbol = pending.symbol
        engine = self._engines[symbol]
        try:
            report = engine.submit(_engine_order(pending))
        except BaseException:  # refused by the engine (say, a level that would overflow): nothing happened
            if await self._undo_pending(pending.id, symbol, release=True):
                self._give_back_order_id(pending.id)
            raise
        now = self._clock()
        if report.triggered or self._trailing[symbol] or self._iceberg_seq[symbol] or pending.display_quantity:
            effects = self._effects(pending, report, now)
        else:  # the usual command, in fewer steps: no stop triggered, no iceberg or trailing stop to follow
            effects = self._plain_effects(pending, report, now)
        records, sequenced, trades, ops, placement, iceberg_seq = effects
        try:
            async with self._transaction() as uow:
                for record in records:
                    await _update(uow, record, now, record.sequence if record.id in sequenced else None)
                if trades:
                    await uow.record_trades(trades)
                if ops:
                    await uow.add_wallet_ops(ops)
        except BaseException as exc:
            await self._recover_symbol(symbol)
            await self._undo_pending(pending.id, symbol, release=True)
            if isinstance(exc, (TradebookError, OSError)):
                raise PersistenceError(f"order {pending.id} was not stored and is undone: {exc}") from exc
            raise
        for record in records:
            self._remember(record)
        if self._user_feeds:
            self._publish_user(records, trades)
        if iceberg_seq:
            icebergs = self._iceberg_seq[symbol]
            for order_id, sequence in iceberg_seq.items():
                if order_id in self._active:
                    icebergs[order_id] = sequence
        self._outbox[symbol].extend(ops)
        await self._drain_outbox(symbol)
        return placement

    def _plain_effects(self, pending: OrderRecord, report: Any, now: datetime) -> _Effects:
        """:meth:`_effects` of a command with no stop triggered, no iceberg and no trailing stop to follow."""
        symbol = pending.symbol
        sequence = self._next_sequence
        self._next_sequence += 1
        order = report.order
        taker = pending.replace(
            status=order.status, filled_quantity=order.filled_quantity, updated_at=now, sequence=sequence
        )
        if pending.type is _TRAILING:  # its stop price: from the last trade price (None before the first trade)
            taker = taker.replace(stop_price=order.stop_price)
        inst = self._instruments[symbol]
        trades: list[TradeRecord] = []
        ops: list[WalletOp] = []
        makers: dict[int, OrderRecord] = {}
        for trade in report.trades:
            maker = makers.get(trade.maker_order_id) or self._active[trade.maker_order_id]
            filled = maker.filled_quantity + trade.quantity
            makers[maker.id] = maker.replace(
                filled_quantity=filled, status=_FILLED if filled == maker.quantity else _PARTIAL, updated_at=now
            )
            record = self._trade_record(trade, taker, maker, now)
            trades.append(record)
            ops.append(self._op(symbol, self._settlement(inst, record, taker.side)))
        for cancelled in report.cancelled:
            maker = makers.get(cancelled.id) or self._active[cancelled.id]
            makers[maker.id] = maker.replace(status=_CANCELLED, updated_at=now)
            ops.append(self._op(symbol, Release(_ref(maker.id))))
        keep = _needed(taker, inst)
        if keep == 0 or (taker.side is Side.BUY and trades):
            ops.append(self._op(symbol, Release(_ref(taker.id), keep)))
        placement = Placement(taker, tuple(trades))
        return [taker, *makers.values()], {taker.id}, trades, ops, placement, _NO_ICEBERGS

    def _effects(self, pending: OrderRecord, report: Any, now: datetime) -> _Effects:
        """Every record, trade and wallet operation a placement's report implies.

        The report holds the order's own run and, in ``report.triggered``, the
        run of each stop its trades triggered (a cascade), in order. Each run's
        trades are settled as they came (a maker may be the placed order itself,
        resting, or a stop that ran earlier in the cascade); the releases come
        last, once every settlement has drawn on its reservation, and bring each
        order that ran down to what its final state still needs. New sequences
        go, in the engine's order, to whatever entered a book or the waiting
        stops in this command (the order, the stops that now rest, icebergs
        that showed a new slice), so that the stored sequences order each
        symbol's live orders as its engine does.
        """
        symbol = pending.symbol
        inst = self._instruments[symbol]
        engine = self._engines[symbol]
        book = engine.book(symbol)
        current: dict[int, OrderRecord] = {}
        trades: list[TradeRecord] = []
        ops: list[WalletOp] = []
        released: dict[int, None] = {}  # orders whose reservation may exceed their need, in order
        paid: set[int] = set()  # buyers that took liquidity: a fill better than their limit leaves money over
        runs: list[tuple[Any, list[TradeRecord]]] = []
        for run in (report, *report.triggered):
            order = run.order
            taker = current.get(order.id) or (pending if order.id == pending.id else self._active[order.id])
            own: list[TradeRecord] = []
            for trade in run.trades:
                maker = current.get(trade.maker_order_id) or self._active[trade.maker_order_id]
                filled = maker.filled_quantity + trade.quantity
                current[maker.id] = maker.replace(
                    filled_quantity=filled, status=_FILLED if filled == maker.quantity else _PARTIAL, updated_at=now
                )
                printed = self._trade_record(trade, taker, maker, now)
                own.append(printed)
                ops.append(self._op(symbol, self._settlement(inst, printed, taker.side)))
                taker = taker.replace(filled_quantity=taker.filled_quantity + trade.quantity)
            if own and taker.side is Side.BUY:
                paid.add(taker.id)
            current[taker.id] = taker.replace(updated_at=now)
            for cancelled in run.cancelled:
                maker = current.get(cancelled.id) or self._active[cancelled.id]
                current[maker.id] = maker.replace(status=_CANCELLED, updated_at=now)
                released[maker.id] = None
            released[taker.id] = None
            trades.extend(own)
            runs.append((run, own))
        # final states: an order that ran reads its status from the engine (it may have rested and then
        # traded again as a maker, or been cancelled by self-trade prevention later in the cascade)
        entered: list[tuple[int, int]] = []
        for run, _ in runs:
            order = run.order
            record = current[order.id]
            changes: dict[str, Any] = {"status": order.status}
            if record.type is _TRAILING:
                changes["stop_price"] = order.stop_price
            current[order.id] = record.replace(**changes)
            if order.status in ACTIVE_STATUSES:
                entered.append((order.sequence, order.id))
        if pending.id not in {order_id for _, order_id in entered}:
            current[pending.id] = current[pending.id].replace(sequence=self._take_sequence())
            sequenced = {pending.id}
        else:
            sequenced = set()
        iceberg_seq: dict[int, int] = {}
        for order_id, record in list(current.items()):
            if record.display_quantity is None:
                continue
            if record.status in _RESTING:
                resting = book.get_order(order_id)
                current[order_id] = record.replace(visible_quantity=resting.visible_quantity)
                iceberg_seq[order_id] = resting.sequence
                if resting.sequence != self._iceberg_seq[symbol].get(order_id) and order_id != pending.id:
                    entered.append((resting.sequence, order_id))  # a new slice: the back of its level
            else:
                current[order_id] = record.replace(visible_quantity=record.display_quantity * 0)
        for _, order_id in sorted(set(entered)):
            current[order_id] = current[order_id].replace(sequence=self._take_sequence())
            sequenced.add(order_id)
        if trades:
            self._follow_trailing(symbol, current, trades, now)
        for order_id in released:
            record = current[order_id]
            keep = _needed(record, inst)
            if keep == 0 or order_id in paid:
                ops.append(self._op(symbol, Release(_ref(order_id), keep)))
        triggered = tuple(Placement(current[run.order.id], tuple(own)) for run, own in runs[1:])
        placement = Placement(current[pending.id], tuple(runs[0][1]), triggered=triggered)
        records = [current[pending.id], *(r for i, r in current.items() if i != pending.id)]
        return records, sequenced, trades, ops, placement, iceberg_seq

    def _follow_trailing(
        self, symbol: str, current: dict[int, OrderRecord], trades: Sequence[TradeRecord], now: datetime
    ) -> None:
        """Move the stop price of each trailing stop still waiting after trades at these prices.

        The engine's rule: a SELL's reference is the highest trade price since
        it was accepted (a BUY's the lowest), and its stop is the reference
        less (plus) its offset; with no reference yet, the first trade sets it.
        """
        if not self._trailing[symbol]:
            return
        high = max(t.price for t in trades)
        low = min(t.price for t in trades)
        for order_id in self._trailing[symbol]:
            record = current.get(order_id) or self._active[order_id]
            if record.status is not _UNTRIGGERED:
                continue
            offset = record.trailing_offset
            assert offset is not None
            stop = record.stop_price
            if record.side is Side.SELL:
                ref = high if stop is None else max(stop + offset, high)
                moved = ref - offset
            else:
                ref = low if stop is None else min(stop - offset, low)
                moved = ref + offset
            if moved != stop:
                current[order_id] = record.replace(stop_price=moved, updated_at=now)

    def _take_sequence(self) -> int:
        sequence = self._next_sequence
        self._next_sequence += 1
        return sequence

    def _remember(self, record: OrderRecord) -> None:
        status = record.status
        live = status in ACTIVE_STATUSES
        if live:
            self._active[record.id] = record
        else:
            self._active.pop(record.id, None)
            if record.display_quantity is not None:
                self._iceberg_seq[record.symbol].pop(record.id, None)
        if record.expire_at is not None:
            if live:
                self._gtd[record.symbol].add(record.id)
            else:
                self._gtd[record.symbol].discard(record.id)
        if record.type is _TRAILING:
            if live and status is _UNTRIGGERED:
                self._trailing[record.symbol].add(record.id)
            else:
                self._trailing[record.symbol].discard(record.id)

    def _trade_record(self, trade: Any, taker: OrderRecord, maker: OrderRecord, now: datetime) -> TradeRecord:
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        buy, sell = (taker, maker) if taker.side is Side.BUY else (maker, taker)
        return TradeRecord(
            id=trade_id,
            symbol=taker.symbol,
            price=trade.price,
            quantity=trade.quantity,
            buy_order_id=buy.id,
            sell_order_id=sell.id,
            buyer_id=buy.user_id,
            seller_id=sell.user_id,
            taker_side=taker.side,
            created_at=now,
        )

    def _settlement(self, inst: Instrument, trade: TradeRecord, taker_side: Side) -> Settlement:
        buyer_rate = self._taker_fee if taker_side is Side.BUY else self._maker_fee
        seller_rate = self._taker_fee if taker_side is Side.SELL else self._maker_fee
        return Settlement(
            trade_id=trade.id,
            base=inst.base,
            quote=inst.quote,
            buyer_id=trade.buyer_id,
            seller_id=trade.seller_id,
            buy_ref=_ref(trade.buy_order_id),
            sell_ref=_ref(trade.sell_order_id),
            quantity=trade.quantity,
            notional=trade.notional,
            buyer_fee=trade.quantity * buyer_rate,
            seller_fee=trade.notional * seller_rate,
            fee_account=self._fee_account,
        )

    def _op(self, symbol: str, op: Settlement | Release) -> WalletOp:
        op_id = self._next_op_id
        self._next_op_id += 1
        return WalletOp(op_id, symbol, op)

    # -- cancelling -------------------------------------------------------------

    @in_money_context
    async def cancel_order(self, user_id: str, order_id: int) -> OrderRecord:
        """Cancel the user's live order (resting, or a stop waiting for its trigger) and release its funds.

        Raises :class:`~tradebook.OrderNotFoundError` for an unknown order or
        another user's, :class:`~tradebook.OrderConflictError` if it is no
        longer live (filled, cancelled, expired, rejected).
        """
        self._check_open()
        _check_user(user_id)
        order_id = _check_order_id(order_id)
        record = self._active.get(order_id) or await self.repository.get_order(order_id)
        if record is None or record.user_id != user_id or record.status is OrderStatus.PENDING:
            raise OrderNotFoundError(f"no order {order_id} for this user")
        symbol = record.symbol
        async with self._locks[symbol]:
            self._check_symbol(symbol)
            await self._drain_outbox(symbol)
            now = self._clock()
            if self._gtd[symbol]:
                await self._advance_locked(symbol, now)  # an order past its expire_at is EXPIRED, not cancelled
            current = self._active.get(order_id)
            if current is None:
                latest = await self.repository.get_order(order_id)
                status = (latest or record).status.value
                raise OrderConflictError(f"order {order_id} is {status} and cannot be cancelled")
            engine = self._engines[symbol]
            engine.cancel(symbol, order_id)
            iceberg = current.display_quantity is not None
            cancelled = current.replace(
                status=OrderStatus.CANCELLED,
                updated_at=now,
                visible_quantity=None if current.display_quantity is None else current.display_quantity * 0,
            )
            ops = [self._op(symbol, Release(_ref(order_id)))]
            try:
                async with self._transaction() as uow:
                    await uow.cancel_order(order_id, updated_at=now)
                    if iceberg:
                        await _update(uow, cancelled, now)
                    await uow.add_wallet_ops(ops)
            except BaseException as exc:
                await self._recover_symbol(symbol)
                if isinstance(exc, (TradebookError, OSError)) and not isinstance(exc, OrderConflictError):
                    raise PersistenceError(f"the cancel of order {order_id} was not stored: {exc}") from exc
                raise
            self._remember(cancelled)
            if self._user_feeds:
                self._publish_user((cancelled,), ())
            self._outbox[symbol].extend(ops)
            await self._drain_outbox(symbol)
            return cancelled

    # -- amending ---------------------------------------------------------------

    @in_money_context
    async def amend_order(
        self,
        user_id: str,
        order_id: int,
        *,
        quantity: Decimal | int | str | None = None,
        price: Decimal | int | str | None = None,
    ) -> Placement:
        """Change a resting limit order's total ``quantity`` and/or ``price``, by the engine's rules.

        Lowering the quantity keeps the order's time priority; raising it or
        changing the price sends it to the back of its (new) level; a price
        that crosses trades at once like a new taker (its trades, and the
        stops they trigger, are in the returned :class:`Placement`). The new
        quantity must exceed what is already filled. The reservation follows
        exactly: it grows first (a sell by the added quantity, a buy by the
        added cost at its limit) and is refused with
        :class:`~tradebook.InsufficientBalanceError` when the user cannot fund
        it, changing nothing; what is no longer needed is released.

        Raises :class:`~tradebook.OrderNotFoundError` for an unknown order or
        another user's, :class:`~tradebook.OrderConflictError` for an order
        that is not resting (filled, cancelled, a stop waiting for its
        trigger) or not a plain limit order (icebergs are not amended), and
        the validation errors of a placement for a bad quantity or price.
        """
        self._check_open()
        _check_user(user_id)
        order_id = _check_order_id(order_id)
        if quantity is None and price is None:
            raise InvalidRequestError("an amend needs a quantity, a price or both")
        record = self._active.get(order_id) or await self.repository.get_order(order_id)
        if record is None or record.user_id != user_id or record.status is OrderStatus.PENDING:
            raise OrderNotFoundError(f"no order {order_id} for this user")
        symbol = record.symbol
        inst = self._instruments[symbol]
        lots = None if quantity is None else inst.quantity_to_lots(quantity)
        ticks = None if price is None else inst.price_to_ticks(price)
        async with self._locks[symbol]:
            self._check_symbol(symbol)
            await self._drain_outbox(symbol)
            now = self._clock()
            if self._gtd[symbol]:
                await self._advance_locked(symbol, now)
            current = self._active.get(order_id)
            if current is None or current.status not in _RESTING:
                latest = current or await self.repository.get_order(order_id) or record
                raise OrderConflictError(f"order {order_id} is {latest.status.value} and cannot be amended")
            if current.type is not _LIMIT or current.display_quantity is not None:
                raise OrderConflictError(f"order {order_id} is not a plain LIMIT order and cannot be amended")
            new_quantity = current.quantity if lots is None else inst.lots_to_quantity(lots)
            new_price = current.price if ticks is None else inst.ticks_to_price(ticks)
            assert new_quantity is not None and new_price is not None
            if new_quantity <= current.filled_quantity:
                raise InvalidQuantityError(
                    f"quantity {new_quantity} must exceed what is already filled ({current.filled_quantity})"
                )
            check_limits(inst, inst.price_to_ticks(new_price), inst.quantity_to_lots(new_quantity))
            if new_quantity == current.quantity and new_price == current.price:
                return Placement(current)  # the same order: nothing to do
            amended = current.replace(quantity=new_quantity, price=new_price)
            asset = inst.base if current.side is Side.SELL else inst.quote
            growth = _needed(amended, inst) - _needed(current, inst)
            if growth > 0:
                more = getattr(self.wallet, "reserve_more", None)
                if more is None:
                    raise OrderConflictError("the wallet cannot grow a reservation, so this amend cannot be funded")
                await more(user_id, asset, growth, _ref(order_id))  # refused: nothing changed
            return await self._amend_locked(current, amended, now, growth)

    async def _amend_locked(
        self, current: OrderRecord, amended: OrderRecord, now: datetime, growth: Decimal
    ) -> Placement:
        symbol = current.symbol
        inst = self._instruments[symbol]
        engine = self._engines[symbol]
        order_id = current.id
        keeps_priority = amended.price == current.price and amended.quantity < current.quantity  # type: ignore[operator]
        try:
            report = engine.amend(
                symbol,
                order_id,
                quantity=None if amended.quantity == current.quantity else amended.quantity,
                price=None if amended.price == current.price else amended.price,
            )
        except BaseException:  # refused by the engine: give the growth back
            if growth > 0:
                self._outbox[symbol].append(self._op(symbol, Release(_ref(order_id), _needed(current, inst))))
                await self._drain_outbox(symbol)
            raise
        if keeps_priority:
            records: list[OrderRecord] = [amended.replace(updated_at=now)]
            sequenced: set[int] = set()
            trades: list[TradeRecord] = []
            ops: list[WalletOp] = []
            placement = Placement(records[0])
            iceberg_seq = _NO_ICEBERGS
        else:
            records, sequenced, trades, ops, placement, iceberg_seq = self._effects(amended, report, now)
        final = records[0]
        ops.append(self._op(symbol, Release(_ref(order_id), _needed(final, inst))))
        try:
            async with self._transaction() as uow:
                await uow.update_order(
                    order_id,
                    status=final.status,
                    filled_quantity=final.filled_quantity,
                    updated_at=now,
                    sequence=final.sequence if order_id in sequenced else None,
                    quantity=final.quantity,
                    price=final.price,
                )
                for record in records[1:]:
                    await _update(uow, record, now, record.sequence if record.id in sequenced else None)
                if trades:
                    await uow.record_trades(trades)
                await uow.add_wallet_ops(ops)
        except BaseException as exc:
            # the book is rebuilt as stored (the order as it was); the growth goes back
            await self._recover_symbol(symbol)
            self._outbox[symbol].append(self._op(symbol, Release(_ref(order_id), _needed(current, inst))))
            await self._drain_outbox(symbol)
            if isinstance(exc, (TradebookError, OSError)):
                raise PersistenceError(f"the amend of order {order_id} was not stored: {exc}") from exc
            raise
        for record in records:
            self._remember(record)
        if self._user_feeds:
            self._publish_user(records, trades)
        for changed_id, sequence in iceberg_seq.items():
            if changed_id in self._active:
                self._iceberg_seq[symbol][changed_id] = sequence
        self._outbox[symbol].extend(ops)
        await self._drain_outbox(symbol)
        return placement

    # -- live feeds ---------------------------------------------------------------

    def market_feed(self, symbol: str, *, max_queue: int = 1000) -> MarketFeed:
        """The symbol's market data as an async iterator (and async context manager); see :class:`MarketFeed`.

        The first item is the :class:`~tradebook.MarketSnapshot` of the book,
        then every :class:`~tradebook.MarketDataUpdate` from ``seq`` one more,
        in order, without a gap. The engine's subscriber callback only appends
        to the feed's buffer (at most ``max_queue`` updates): it never waits
        for a consumer. A consumer that lets the buffer fill gets a fresh
        snapshot instead of what it missed (``feed.drops`` counts those). Close
        it (``async with``, or ``feed.close()``) when done; closing the service
        ends every feed.
        """
        self._check_open()
        self._instrument(symbol)
        feed = MarketFeed(
            symbol, lambda: self._engines[symbol].market_snapshot(symbol), max_queue, self._market_feed_closed
        )
        feeds = self._market_feeds.setdefault(symbol, set())
        feeds.add(feed)
        if symbol not in self._md_unsubscribe:
            self._md_unsubscribe[symbol] = self._engines[symbol].subscribe(self._dispatch_market)
        return feed

    def market_snapshot(self, symbol: str) -> Any:
        """The symbol's :class:`~tradebook.MarketSnapshot` now (the visible book, consistent with update ``seq``)."""
        self._check_open()
        self._instrument(symbol)
        return self._engines[symbol].market_snapshot(symbol)

    def _dispatch_market(self, update: Any) -> None:
        """The engine's subscriber callback: buffer the update in each of the symbol's feeds, never waiting."""
        for feed in self._market_feeds.get(update.symbol, ()):
            feed._push(update)

    def _market_feed_closed(self, feed: MarketFeed) -> None:
        feeds = self._market_feeds.get(feed.symbol)
        if feeds is None:
            return
        feeds.discard(feed)
        if not feeds:  # nobody listens: the engine goes back to recording no market data
            del self._market_feeds[feed.symbol]
            self._md_unsubscribe.pop(feed.symbol)()

    def user_feed(self, user_id: str, *, max_queue: int = 1000) -> UserFeed:
        """The user's own order updates and trades as an async iterator; see :class:`UserFeed`.

        Each command, once stored, adds the state of every order of the user it
        changed (placed, filled, cancelled, triggered, expired, amended) as an
        :class:`OrderRecord`, then the user's trades of the command as
        :class:`TradeRecord`\\ s; never another user's. At most ``max_queue``
        items wait; an overflow yields :class:`~tradebook.oms.feeds.UserFeedResync`.
        """
        self._check_open()
        _check_user(user_id)
        feed = UserFeed(user_id, max_queue, self._user_feed_closed)
        self._user_feeds.setdefault(user_id, set()).add(feed)
        return feed

    def _user_feed_closed(self, feed: UserFeed) -> None:
        feeds = self._user_feeds.get(feed.user_id)
        if feeds is not None:
            feeds.discard(feed)
            if not feeds:
                del self._user_feeds[feed.user_id]

    def _publish_user(self, records: Iterable[OrderRecord], trades: Iterable[TradeRecord]) -> None:
        """Buffer a stored command's order states and trades in the feeds of the users they belong to."""
        feeds = self._user_feeds
        for record in records:
            for feed in feeds.get(record.user_id, ()):
                feed._push(record)
        for trade in trades:
            for user in {trade.buyer_id, trade.seller_id}:
                for feed in feeds.get(user, ()):
                    feed._push(trade)

    # -- the wallet outbox ------------------------------------------------------

    def _transaction(self) -> _Transaction:
        """A repository transaction that also records wallet operations applied since the last one."""
        return _Transaction(self)

    async def _flush_applied(self) -> None:
        if self._applied:
            async with self._transaction():
                pass

    async def _drain_outbox(self, symbol: str) -> int:
        """Apply the symbol's outstanding wallet operations in order; stop at the first failure."""
        queue = self._outbox[symbol]
        applied = 0
        while queue:
            op = queue[0]
            try:
                await self._apply(op.op)
            except WalletUnavailableError as exc:
                log.warning("wallet unavailable; %d wallet operation(s) of %s wait: %s", len(queue), symbol, exc)
                break
            except (TradebookError, OSError) as exc:
                # A refusal here is a bug or a wallet changed behind our back: keep the operation
                # (in order) for a retry and a human, but do not fail the command that was committed.
                log.error("wallet refused operation %s of %s (kept for retry): %r", op.id, symbol, exc)
                break
            queue.pop(0)
            self._applied.append(op.id)
            applied += 1
        return applied

    async def _apply(self, op: Settlement | Release) -> None:
        if isinstance(op, Settlement):
            await self.wallet.settle(op)
        elif op.keep == 0:
            await self.wallet.release(op.ref)
        else:
            held = await self.wallet.reserved(op.ref)
            if held > op.keep:
                await self.wallet.release(op.ref, held - op.keep)


class _Transaction:
    """The repository's transaction, plus marking applied wallet operations done inside it."""

    __slots__ = ("_applied", "_context", "_service")

    def __init__(self, service: OrderService) -> None:
        self._service = service
        self._applied: list[int] = []
        self._context: AbstractAsyncContextManager[Any] | None = None

    async def __aenter__(self) -> Any:
        service = self._service
        self._applied, service._applied = service._applied, []
        self._context = context = service.repository.transaction()
        uow = await context.__aenter__()
        if self._applied:
            try:
                await uow.mark_wallet_ops_done(self._applied)
            except BaseException as exc:
                await self.__aexit__(type(exc), exc, exc.__traceback__)
                raise
        return uow

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._context is not None
        try:
            await self._context.__aexit__(exc_type, exc, tb)
        except BaseException:
            self._restore()
            raise
        if exc_type is not None:
            self._restore()

    def _restore(self) -> None:
        if self._applied:
            self._service._applied[:0] = self._applied
            self._applied = []


@dataclass(slots=True)
class _Request:
    user_id: str
    inst: Instrument
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    post_only: bool
    client_order_id: str | None
    quantity: Decimal | None
    price: Decimal | None
    stop_price: Decimal | None = None
    trailing_offset: Decimal | None = None
    display_quantity: Decimal | None = None
    expire_at: int | None = None
    quote_quantity: Decimal | None = None


#: What one placement changes: the records to write (the placed order first), which of them take their new
#: ``sequence``, the trades, the wallet operations, the answer, and each live iceberg's engine sequence.
_Effects = tuple[list[OrderRecord], set[int], list[TradeRecord], list[WalletOp], Placement, dict[int, int]]
_NO_ICEBERGS: dict[int, int] = {}


def _ref(order_id: int) -> str:
    return str(order_id)


async def _update(uow: Any, record: OrderRecord, now: datetime, sequence: int | None = None) -> None:
    """``uow.update_order`` with the record's state; the new types' fields only for the orders that have them.

    A repository written before the new order types, whose ``update_order``
    takes no ``visible_quantity`` or ``stop_price``, goes on serving limit and
    market orders.
    """
    visible, stop = record.visible_quantity, record.stop_price
    if visible is None and stop is None:
        await uow.update_order(
            record.id, status=record.status, filled_quantity=record.filled_quantity, updated_at=now, sequence=sequence
        )
    else:
        await uow.update_order(
            record.id,
            status=record.status,
            filled_quantity=record.filled_quantity,
            updated_at=now,
            sequence=sequence,
            visible_quantity=visible,
            stop_price=stop,
        )


def _record(**fields: Any) -> OrderRecord:
    """``OrderRecord(**fields)`` with every field given, without the frozen dataclass's slow ``__init__``.

    It sets each field through ``object.__setattr__``: a third of a microsecond apiece, on every placement.
    """
    record = object.__new__(OrderRecord)
    record.__dict__.update(fields)
    return record


def _engine_order(record: OrderRecord) -> Any:
    """The engine's :class:`~tradebook.Order` for a pending record."""
    if (
        record.stop_price is None
        and record.trailing_offset is None
        and record.display_quantity is None
        and record.expire_at is None
        and record.quote_quantity is None
    ):
        return Order(
            record.id,
            record.side,
            record.price,
            record.quantity,  # type: ignore[arg-type]  # a plain order has one
            symbol=record.symbol,
            owner=record.user_id,
            type=record.type,
            time_in_force=record.time_in_force,
            post_only=record.post_only,
        )
    quantity: Any = record.quantity  # None for a market order sized by quote_quantity, as the engine takes it
    return Order(
        record.id,
        record.side,
        record.price,
        quantity,
        symbol=record.symbol,
        owner=record.user_id,
        type=record.type,
        time_in_force=record.time_in_force,
        post_only=record.post_only,
        stop_price=record.stop_price,
        trailing_offset=record.trailing_offset,
        display_quantity=record.display_quantity,
        expire_at=record.expire_at,
        quote_quantity=record.quote_quantity,
    )


def _needed(record: OrderRecord, inst: Instrument) -> Decimal:
    """What a live order's reservation must still hold (0 once it is not live)."""
    status = record.status
    if status is _UNTRIGGERED:
        quantity = record.quantity
        assert quantity is not None  # a stop is sized in base quantity
        if record.side is Side.SELL:
            return quantity
        if record.price is not None:  # a STOP_LIMIT: its limit price
            return record.price * quantity
        assert inst.max_price is not None  # a STOP or TRAILING_STOP BUY is refused without one
        return inst.max_price * quantity
    if status is not _OPEN and status is not _PARTIAL:
        return _ZERO
    if record.side is Side.SELL:
        return record.remaining_quantity
    assert record.price is not None
    return record.price * record.remaining_quantity


def _units(value: object, step: Decimal, what: str, step_name: str, error: type[InvalidOrderError]) -> int:
    """``value`` in whole ``step``\\ s (1 to 2**63-1), or ``error``."""
    return to_units(to_decimal(value, what, error), step, what, step_name, error)


def _quote_amount(inst: Instrument, value: object) -> Decimal:
    """A ``quote_quantity``: positive, on the grid of tick size times lot size (what one lot costs at one tick)."""
    step = inst.tick_size * inst.lot_size
    return from_units(_units(value, step, "quote_quantity", "tick size times lot size", InvalidQuantityError), step)


def _rate(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    rate = Decimal(value)
    if not rate.is_finite() or not 0 <= rate < 1:
        raise ValueError(f"{name} must be in [0, 1), not {value!r}")
    return rate


def _check_user(user_id: object) -> None:
    if not isinstance(user_id, str) or not 1 <= len(user_id) <= _MAX_ID_LENGTH or not user_id.isprintable():
        raise InvalidRequestError(f"user_id must be 1 to {_MAX_ID_LENGTH} printable characters, not {user_id!r}")


def _check_order_id(order_id: object) -> int:
    if isinstance(order_id, bool) or not isinstance(order_id, int) or not 1 <= order_id < 2**63:
        raise OrderNotFoundError(f"no order {order_id!r}")
    return order_id
