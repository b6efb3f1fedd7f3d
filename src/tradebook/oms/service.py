"""The async order service: validation, reservation, persistence, matching, settlement, recovery.

A placement goes through these steps, each symbol's commands one at a time
(an :class:`asyncio.Lock` per symbol; different symbols run in parallel):

1. validate the request against the instrument (nothing is touched on error);
2. idempotency: a repeat of ``(user_id, client_order_id)`` returns the
   original order and reserves nothing;
3. write the order as ``PENDING`` (so a crash from here on can be cleaned up);
4. reserve its funds in the wallet; if the wallet refuses or is down, delete
   the pending row and raise: nothing is left behind;
5. submit it to the symbol's :class:`~tradebook.MatchingEngine`;
6. in **one transaction**: the order's new state, every maker it touched, the
   trades, and the wallet operations they imply (settlements, releases) as an
   outbox; if this fails the symbol's book is rebuilt from the repository and
   the pending order is undone;
7. apply the wallet operations; they are idempotent (settlements by trade id,
   releases as targets), so recovery may apply them again safely.

On :meth:`OrderService.start` the service recovers: pending orders (never
accepted) are undone, outstanding wallet operations are applied, and every
book is rebuilt from the repository's active orders in their original
priority. A process killed at any point restarts with no accepted order or
trade lost or duplicated, and every asset's total unchanged.

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
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from types import TracebackType
from typing import Any

from .._common import Depth
from .._compat import MatchingEngine, Order
from .._limits import check_limits
from ..enums import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce, coerce_enum
from ..errors import (
    DuplicateOrderError,
    InsufficientBalanceError,
    InvalidOrderError,
    InvalidPriceError,
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


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Placement:
    """What :meth:`OrderService.place` returns.

    ``order`` is the order after matching; ``trades`` the trades it made (empty
    for a repeat); ``replayed`` is true when the request repeated an earlier
    ``client_order_id`` and ``order`` is that earlier order.
    """

    order: OrderRecord
    trades: Sequence[TradeRecord] = ()
    replayed: bool = False


@dataclass
class RecoveryReport:
    """What :meth:`OrderService.start` found and repaired."""

    pending_removed: list[int] = field(default_factory=list)
    wallet_ops_applied: int = 0
    wallet_ops_outstanding: int = 0
    orders_restored: dict[str, int] = field(default_factory=dict)


class OrderService:
    """Order management over a repository, a wallet and one engine book per symbol.

    ``instruments`` are the tradable symbols. ``clock`` returns aware UTC
    datetimes (injectable for tests and replays). Fees are rates on what each
    side receives (the buyer pays its fee in the base asset, the seller in the
    quote asset), credited to ``fee_account``; both default to zero.

    Market buys reserve exactly the quote amount they would pay if they swept
    the book as it stands (computed under the symbol's lock, so the book cannot
    move in between), leaving out the user's own resting orders when
    self-trade prevention is on; whatever is not spent is released at once.
    A market buy on an empty book expires without reserving anything.

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
        self._clock = clock
        self._engines: dict[str, Any] = {}
        self._locks = {symbol: asyncio.Lock() for symbol in self._instruments}
        self._active: dict[int, OrderRecord] = {}
        self._outbox: dict[str, list[WalletOp]] = {symbol: [] for symbol in self._instruments}
        self._applied: list[int] = []  # applied wallet ops not yet marked done in the repository
        self._inflight: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._next_order_id = self._next_trade_id = self._next_sequence = self._next_op_id = 1
        self._free_order_ids: set[int] = set()  # given back below _next_order_id, handed out first
        self._broken: set[str] = set()
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
        await self._flush_applied()
        self._started = True
        return report

    async def close(self) -> None:
        """Record applied wallet operations and stop taking commands (the ports stay open)."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            await self._flush_applied()

    def _check_open(self) -> None:
        if not self._started:
            raise RuntimeError("the service is not started: call await service.start() first")
        if self._closed:
            raise RuntimeError("the service is closed")

    async def _rebuild(self, symbol: str) -> int:
        """Replace the symbol's book with one built from the repository's active orders."""
        inst = self._instruments[symbol]
        engine = MatchingEngine([inst], self_trade_prevention=self._stp)
        book = engine.book(symbol)
        for order_id in [i for i, o in self._active.items() if o.symbol == symbol]:
            del self._active[order_id]
        restored = 0
        for record in await self.repository.active_orders(symbol):
            book.add_order(
                Order(
                    record.id, record.side, record.price, record.remaining_quantity, symbol=symbol, owner=record.user_id
                )
            )
            self._active[record.id] = record
            restored += 1
        self._engines[symbol] = engine
        return restored

    async def _recover_symbol(self, symbol: str) -> None:
        """After a failed write: rebuild the book from the repository, or stop serving the symbol."""
        try:
            await self._rebuild(symbol)
        except BaseException as exc:
            # The book may now hold effects the repository lacks: refuse commands until a restart.
            self._broken.add(symbol)
            log.error("could not rebuild %s after a failed write; it is closed until restart: %s", symbol, exc)

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
        quantity: Decimal | int | str,
        price: Decimal | int | str | None = None,
        *,
        type: OrderType | str = OrderType.LIMIT,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        post_only: bool = False,
        client_order_id: str | None = None,
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
        )
        return placement.order

    @in_money_context
    async def place(
        self,
        user_id: str,
        symbol: str,
        side: Side | str,
        quantity: Decimal | int | str,
        price: Decimal | int | str | None = None,
        *,
        type: OrderType | str = OrderType.LIMIT,
        time_in_force: TimeInForce | str = TimeInForce.GTC,
        post_only: bool = False,
        client_order_id: str | None = None,
    ) -> Placement:
        """Validate, reserve, persist, match and settle one order.

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
            user_id, symbol, side, quantity, price, type, time_in_force, post_only, client_order_id
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
        lots = inst.quantity_to_lots(quantity)  # type: ignore[arg-type]
        ticks: int | None
        if type_ is OrderType.LIMIT:
            if price is None:
                raise InvalidPriceError("a LIMIT order needs a price")
            ticks = inst.price_to_ticks(price)  # type: ignore[arg-type]
        else:
            if price is not None:
                raise InvalidPriceError("a MARKET order takes no price")
            ticks = None
        if post_only and (type_ is not OrderType.LIMIT or tif is not TimeInForce.GTC):
            raise InvalidOrderError("post_only applies to LIMIT GTC orders only")
        check_limits(inst, ticks, lots)
        return _Request(
            user_id=user_id,  # type: ignore[arg-type]
            inst=inst,
            side=side_,
            type=type_,
            time_in_force=tif,
            post_only=post_only,
            client_order_id=client_order_id,
            quantity=inst.lots_to_quantity(lots),
            price=None if ticks is None else inst.ticks_to_price(ticks),
        )

    async def _place_locked(self, req: _Request) -> Placement:
        symbol = req.inst.symbol
        async with self._locks[symbol]:
            self._check_symbol(symbol)
            await self._drain_outbox(symbol)
            now = self._clock()
            order_id = self._take_order_id()
            pending = OrderRecord(
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
        inst = req.inst
        if req.side is Side.SELL:
            return inst.base, req.quantity
        if req.price is not None:
            return inst.quote, req.price * req.quantity
        return inst.quote, self._market_buy_cost(req)

    def _market_buy_cost(self, req: _Request) -> Decimal:
        """What a market buy would pay sweeping the book as it stands (an upper bound)."""
        book = self._engines[req.inst.symbol].book(req.inst.symbol)
        skip_own = self._stp is not SelfTradePrevention.NONE
        left, cost = req.quantity, _ZERO
        for level in book.asks:
            price: Decimal = level.price
            for resting in level:
                if skip_own and resting.owner == req.user_id:
                    continue
                take: Decimal = min(left, resting.remaining_quantity)
                cost += take * price
                left -= take
                if not left:
                    return cost
        return cost

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
        order = Order(
            pending.id,
            pending.side,
            pending.price,
            pending.quantity,
            symbol=symbol,
            owner=pending.user_id,
            type=pending.type,
            time_in_force=pending.time_in_force,
            post_only=pending.post_only,
        )
        try:
            report = engine.submit(order)
        except BaseException:  # refused by the engine (say, a level that would overflow): nothing happened
            if await self._undo_pending(pending.id, symbol, release=True):
                self._give_back_order_id(pending.id)
            raise
        now = self._clock()
        sequence = self._next_sequence
        self._next_sequence += 1
        taker = pending.replace(
            status=report.order.status,
            filled_quantity=report.order.filled_quantity,
            updated_at=now,
            sequence=sequence,
        )
        inst = self._instruments[symbol]
        trades: list[TradeRecord] = []
        ops: list[WalletOp] = []
        makers: dict[int, OrderRecord] = {}
        for trade in report.trades:
            maker = makers.get(trade.maker_order_id) or self._active[trade.maker_order_id]
            filled = maker.filled_quantity + trade.quantity
            makers[maker.id] = maker.replace(
                filled_quantity=filled,
                status=OrderStatus.FILLED if filled == maker.quantity else OrderStatus.PARTIALLY_FILLED,
                updated_at=now,
            )
            record = self._trade_record(trade, taker, maker, now)
            trades.append(record)
            ops.append(self._op(symbol, self._settlement(inst, record, taker.side)))
        for cancelled in report.cancelled:
            maker = makers.get(cancelled.id) or self._active[cancelled.id]
            makers[maker.id] = maker.replace(status=OrderStatus.CANCELLED, updated_at=now)
            ops.append(self._op(symbol, Release(_ref(maker.id))))
        keep = _needed(taker)
        if keep == 0 or (taker.side is Side.BUY and trades):
            ops.append(self._op(symbol, Release(_ref(taker.id), keep)))
        try:
            async with self._transaction() as uow:
                await uow.update_order(
                    taker.id,
                    status=taker.status,
                    filled_quantity=taker.filled_quantity,
                    updated_at=now,
                    sequence=sequence,
                )
                for maker in makers.values():
                    await uow.update_order(
                        maker.id, status=maker.status, filled_quantity=maker.filled_quantity, updated_at=now
                    )
                if trades:
                    await uow.record_trades(trades)
                if ops:
                    await uow.add_wallet_ops(ops)
        except BaseException as exc:
            await self._recover_symbol(symbol)
            await self._undo_pending(taker.id, symbol, release=True)
            if isinstance(exc, (TradebookError, OSError)):
                raise PersistenceError(f"order {taker.id} was not stored and is undone: {exc}") from exc
            raise
        for maker in makers.values():
            self._remember(maker)
        self._remember(taker)
        self._outbox[symbol].extend(ops)
        await self._drain_outbox(symbol)
        return Placement(taker, tuple(trades))

    def _remember(self, record: OrderRecord) -> None:
        if record.status in ACTIVE_STATUSES:
            self._active[record.id] = record
        else:
            self._active.pop(record.id, None)

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
        """Cancel the user's active order and release its funds.

        Raises :class:`~tradebook.OrderNotFoundError` for an unknown order or
        another user's, :class:`~tradebook.OrderConflictError` if it is no
        longer active (filled, cancelled, expired, rejected).
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
            current = self._active.get(order_id)
            if current is None:
                latest = await self.repository.get_order(order_id)
                status = (latest or record).status.value
                raise OrderConflictError(f"order {order_id} is {status} and cannot be cancelled")
            engine = self._engines[symbol]
            engine.cancel(symbol, order_id)
            now = self._clock()
            cancelled = current.replace(status=OrderStatus.CANCELLED, updated_at=now)
            ops = [self._op(symbol, Release(_ref(order_id)))]
            try:
                async with self._transaction() as uow:
                    await uow.cancel_order(order_id, updated_at=now)
                    await uow.add_wallet_ops(ops)
            except BaseException as exc:
                await self._recover_symbol(symbol)
                if isinstance(exc, (TradebookError, OSError)) and not isinstance(exc, OrderConflictError):
                    raise PersistenceError(f"the cancel of order {order_id} was not stored: {exc}") from exc
                raise
            self._remember(cancelled)
            self._outbox[symbol].extend(ops)
            await self._drain_outbox(symbol)
            return cancelled

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


@dataclass(frozen=True)
class _Request:
    user_id: str
    inst: Instrument
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    post_only: bool
    client_order_id: str | None
    quantity: Decimal
    price: Decimal | None


def _ref(order_id: int) -> str:
    return str(order_id)


def _needed(record: OrderRecord) -> Decimal:
    """What an order's reservation must still hold: its resting remainder's cost."""
    if record.status not in ACTIVE_STATUSES:
        return _ZERO
    if record.side is Side.SELL:
        return record.remaining_quantity
    assert record.price is not None
    return record.price * record.remaining_quantity


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
