"""In-memory adapters: an order repository and a ledger wallet.

For tests, simulations and backtests: everything lives in dicts and is gone
when the process ends. Both are safe for any number of coroutines on one event
loop; neither is thread-safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from ..enums import OrderStatus
from ..errors import DuplicateOrderError, InsufficientBalanceError, OrderConflictError, OrderNotFoundError
from ._money import in_money_context, parse_amount
from ._paging import check_limit, decode_cursor, page_of
from .models import (
    ACTIVE_STATUSES,
    Balance,
    OrderQuery,
    OrderRecord,
    Page,
    Reservation,
    Settlement,
    TradeRecord,
    WalletOp,
)

__all__ = ["MemoryOrderRepository", "MemoryUnitOfWork", "MemoryWallet"]

_ZERO = Decimal(0)


class MemoryUnitOfWork:
    """Staged writes of one transaction over a :class:`MemoryOrderRepository`.

    Writes are checked against the committed state plus what this unit has
    staged, and reach the repository only at commit, all at once.
    """

    def __init__(self, repo: MemoryOrderRepository) -> None:
        self._repo = repo
        self._orders: dict[int, OrderRecord | None] = {}  # None: deleted
        self._trades: dict[int, TradeRecord] = {}
        self._ops: dict[int, WalletOp] = {}
        self._done: set[int] = set()

    def _current(self, order_id: int) -> OrderRecord | None:
        if order_id in self._orders:
            return self._orders[order_id]
        return self._repo._orders.get(order_id)

    def _client_id_taken(self, user_id: str, client_order_id: str) -> bool:
        for staged in self._orders.values():
            if staged is not None and staged.user_id == user_id and staged.client_order_id == client_order_id:
                return True
        committed = self._repo._by_client_id.get((user_id, client_order_id))
        return committed is not None and self._orders.get(committed, self._repo._orders.get(committed)) is not None

    async def create_order(self, order: OrderRecord) -> None:
        """Stage a new order (see :meth:`UnitOfWork.create_order`)."""
        if self._current(order.id) is not None:
            raise DuplicateOrderError(f"order id {order.id} already exists")
        if order.client_order_id is not None and self._client_id_taken(order.user_id, order.client_order_id):
            raise DuplicateOrderError(
                f"user {order.user_id!r} already has an order with client_order_id {order.client_order_id!r}"
            )
        self._orders[order.id] = order

    def _existing(self, order_id: int) -> OrderRecord:
        order = self._current(order_id)
        if order is None:
            raise OrderNotFoundError(f"no order with id {order_id}")
        return order

    async def update_order(
        self,
        order_id: int,
        *,
        status: OrderStatus,
        filled_quantity: Decimal,
        updated_at: datetime,
        sequence: int | None = None,
        visible_quantity: Decimal | None = None,
        stop_price: Decimal | None = None,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
    ) -> None:
        """Stage a status and fill change (and the optional fields that are given)."""
        order = self._existing(order_id)
        changes: dict[str, object] = {"status": status, "filled_quantity": filled_quantity, "updated_at": updated_at}
        if sequence is not None:
            changes["sequence"] = sequence
        if visible_quantity is not None:
            changes["visible_quantity"] = visible_quantity
        if stop_price is not None:
            changes["stop_price"] = stop_price
        if quantity is not None:
            changes["quantity"] = quantity
        if price is not None:
            changes["price"] = price
        self._orders[order_id] = order.replace(**changes)

    async def cancel_order(self, order_id: int, *, updated_at: datetime) -> None:
        """Stage a cancel of an active order."""
        order = self._existing(order_id)
        if order.status not in ACTIVE_STATUSES:
            raise OrderConflictError(f"order {order_id} is {order.status.value}, not active")
        self._orders[order_id] = order.replace(status=OrderStatus.CANCELLED, updated_at=updated_at)

    async def delete_order(self, order_id: int) -> None:
        """Stage the removal of a pending order."""
        order = self._current(order_id)
        if order is None:
            return
        if order.status is not OrderStatus.PENDING:
            raise OrderConflictError(f"order {order_id} is {order.status.value}; only PENDING orders are deleted")
        self._orders[order_id] = None

    async def record_trades(self, trades: Sequence[TradeRecord]) -> None:
        """Stage trades (all of them, or none when one id is taken)."""
        staged: dict[int, TradeRecord] = {}
        for trade in trades:
            if trade.id in self._repo._trades or trade.id in self._trades or trade.id in staged:
                raise DuplicateOrderError(f"trade id {trade.id} already exists")
            staged[trade.id] = trade
        self._trades.update(staged)

    async def add_wallet_ops(self, ops: Sequence[WalletOp]) -> None:
        """Stage outbox entries (all of them, or none when one id is taken)."""
        staged: dict[int, WalletOp] = {}
        for op in ops:
            if op.id in self._repo._ops or op.id in self._ops or op.id in staged:
                raise DuplicateOrderError(f"wallet operation id {op.id} already exists")
            staged[op.id] = op
        self._ops.update(staged)

    async def mark_wallet_ops_done(self, op_ids: Sequence[int]) -> None:
        """Stage the removal of applied outbox entries."""
        self._done.update(op_ids)

    def _commit(self) -> None:
        repo = self._repo
        for order_id, order in self._orders.items():
            old = repo._orders.get(order_id)
            if old is not None and old.client_order_id is not None:
                repo._by_client_id.pop((old.user_id, old.client_order_id), None)
            if order is None:
                repo._orders.pop(order_id, None)
                continue
            repo._orders[order_id] = order
            if order.client_order_id is not None:
                repo._by_client_id[(order.user_id, order.client_order_id)] = order_id
        repo._trades.update(self._trades)
        repo._ops.update(self._ops)
        for op_id in self._done:
            repo._ops.pop(op_id, None)


class _MemoryTransaction:
    """``async with repo.transaction() as uow``: holds the repository's lock, commits on success."""

    __slots__ = ("_repo", "_uow")

    def __init__(self, repo: MemoryOrderRepository) -> None:
        self._repo = repo
        self._uow = MemoryUnitOfWork(repo)

    async def __aenter__(self) -> MemoryUnitOfWork:
        await self._repo._lock.acquire()
        return self._uow

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                self._uow._commit()
        finally:
            self._repo._lock.release()


class MemoryOrderRepository:
    """An :class:`~tradebook.oms.OrderRepository` in dicts.

    Transactions are serialised by an :class:`asyncio.Lock`; readers see only
    committed data.
    """

    def __init__(self) -> None:
        self._orders: dict[int, OrderRecord] = {}
        self._by_client_id: dict[tuple[str, str], int] = {}
        self._trades: dict[int, TradeRecord] = {}
        self._ops: dict[int, WalletOp] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    def transaction(self) -> _MemoryTransaction:
        """A unit of work; it commits when the block ends without an exception."""
        self._check_open()
        return _MemoryTransaction(self)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the repository is closed")

    async def get_order(self, order_id: int) -> OrderRecord | None:
        """The order with this id, or ``None``."""
        self._check_open()
        return self._orders.get(order_id)

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> OrderRecord | None:
        """The user's order with this client order id, or ``None``."""
        self._check_open()
        order_id = self._by_client_id.get((user_id, client_order_id))
        return None if order_id is None else self._orders.get(order_id)

    async def list_orders(self, user_id: str, query: OrderQuery = OrderQuery()) -> Page[OrderRecord]:  # noqa: B008
        """A user's orders matching ``query``, newest (highest id) first."""
        self._check_open()
        limit = check_limit(query.limit)
        before = decode_cursor(query.cursor)
        found = []
        for order in self._orders.values():
            if order.user_id != user_id or (before is not None and order.id >= before):
                continue
            if query.symbol is not None and order.symbol != query.symbol:
                continue
            if query.status is not None and order.status is not query.status:
                continue
            if query.side is not None and order.side is not query.side:
                continue
            if query.since is not None and order.created_at < query.since:
                continue
            if query.until is not None and order.created_at >= query.until:
                continue
            found.append(order)
        found.sort(key=lambda o: o.id, reverse=True)
        return page_of(found, limit)

    async def active_orders(self, symbol: str) -> list[OrderRecord]:
        """The symbol's live orders (resting or waiting for a trigger) in ``sequence`` order."""
        self._check_open()
        active = [o for o in self._orders.values() if o.symbol == symbol and o.status in ACTIVE_STATUSES]
        active.sort(key=lambda o: (o.sequence or 0, o.id))
        return active

    async def pending_orders(self) -> list[OrderRecord]:
        """Orders still ``PENDING``."""
        self._check_open()
        return sorted((o for o in self._orders.values() if o.status is OrderStatus.PENDING), key=lambda o: o.id)

    async def list_trades(
        self, *, symbol: str | None = None, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[TradeRecord]:
        """Trades newest first, by symbol and/or a user on either side."""
        self._check_open()
        limit = check_limit(limit)
        before = decode_cursor(cursor)
        found = [
            t
            for t in self._trades.values()
            if (before is None or t.id < before)
            and (symbol is None or t.symbol == symbol)
            and (user_id is None or user_id in (t.buyer_id, t.seller_id))
        ]
        found.sort(key=lambda t: t.id, reverse=True)
        return page_of(found, limit)

    async def pending_wallet_ops(self) -> list[WalletOp]:
        """Outbox entries not yet done, in id order."""
        self._check_open()
        return [self._ops[k] for k in sorted(self._ops)]

    async def last_ids(self) -> tuple[int, int, int, int]:
        """Largest order id, trade id, sequence and wallet-op id (0 when none)."""
        self._check_open()
        return (
            max(self._orders, default=0),
            max(self._trades, default=0),
            max((o.sequence or 0 for o in self._orders.values()), default=0),
            max(self._ops, default=0),
        )

    async def close(self) -> None:
        """Mark the repository closed."""
        self._closed = True


class _Account:
    __slots__ = ("available", "reserved")

    def __init__(self) -> None:
        self.available = _ZERO
        self.reserved = _ZERO


class MemoryWallet:
    """A :class:`~tradebook.oms.WalletClient` ledger in memory, with deposits for set-up.

    Tracks available and reserved funds per user and asset, reservations by
    reference, and the trade ids it has settled (so a settlement replayed by
    recovery is applied once).
    """

    def __init__(self) -> None:
        self._accounts: dict[tuple[str, str], _Account] = {}
        self._reservations: dict[str, Reservation] = {}
        self._settled: set[int] = set()

    def _account(self, user_id: str, asset: str) -> _Account:
        account = self._accounts.get((user_id, asset))
        if account is None:
            account = self._accounts[(user_id, asset)] = _Account()
        return account

    @in_money_context
    async def deposit(self, user_id: str, asset: str, amount: Decimal | int | str) -> None:
        """Credit ``amount`` of ``asset`` to the user's available balance."""
        value = parse_amount(amount)
        self._account(user_id, asset).available += value

    @in_money_context
    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Set ``amount`` aside under ``ref``; see :meth:`WalletClient.reserve`."""
        value = parse_amount(amount)
        existing = self._reservations.get(ref)
        if existing is not None:
            return existing
        account = self._accounts.get((user_id, asset))  # a refused reservation leaves no empty account behind
        if account is None or account.available < value:
            held = _ZERO if account is None else account.available
            raise InsufficientBalanceError(f"user {user_id!r} has {held} {asset} available, needs {value}")
        account.available -= value
        account.reserved += value
        reservation = self._reservations[ref] = Reservation(ref, user_id, asset, value)
        return reservation

    @in_money_context
    async def reserve_more(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Add ``amount`` to reservation ``ref``; see :meth:`WalletClient.reserve_more`."""
        value = parse_amount(amount)
        account = self._accounts.get((user_id, asset))
        if account is None or account.available < value:
            held = _ZERO if account is None else account.available
            raise InsufficientBalanceError(f"user {user_id!r} has {held} {asset} available, needs {value}")
        existing = self._reservations.get(ref)
        if existing is not None and (existing.user_id != user_id or existing.asset != asset):
            raise ValueError(f"reservation {ref!r} holds another user's or asset's funds")
        account.available -= value
        account.reserved += value
        total = value if existing is None else existing.amount + value
        reservation = self._reservations[ref] = Reservation(ref, user_id, asset, total)
        return reservation

    @in_money_context
    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        """Return part or all of reservation ``ref`` to available."""
        reservation = self._reservations.get(ref)
        if reservation is None:
            return _ZERO
        value = reservation.amount if amount is None else min(parse_amount(amount, allow_zero=True), reservation.amount)
        account = self._account(reservation.user_id, reservation.asset)
        account.reserved -= value
        account.available += value
        self._shrink(reservation, value)
        return value

    def _shrink(self, reservation: Reservation, value: Decimal) -> None:
        left = reservation.amount - value
        if left == 0:
            del self._reservations[reservation.ref]
        else:
            self._reservations[reservation.ref] = Reservation(
                reservation.ref, reservation.user_id, reservation.asset, left
            )

    async def reserved(self, ref: str) -> Decimal:
        """What reservation ``ref`` holds."""
        reservation = self._reservations.get(ref)
        return _ZERO if reservation is None else reservation.amount

    @in_money_context
    async def settle(self, settlement: Settlement) -> None:
        """Apply one trade's movements (once per trade id)."""
        s = settlement
        if s.trade_id in self._settled:
            return
        buy = self._reservations.get(s.buy_ref)
        sell = self._reservations.get(s.sell_ref)
        if buy is None or buy.amount < s.notional or buy.asset != s.quote:
            raise InsufficientBalanceError(f"reservation {s.buy_ref!r} cannot pay {s.notional} {s.quote}")
        if sell is None or sell.amount < s.quantity or sell.asset != s.base:
            raise InsufficientBalanceError(f"reservation {s.sell_ref!r} cannot deliver {s.quantity} {s.base}")
        fee_account = s.fee_account
        if (s.buyer_fee or s.seller_fee) and fee_account is None:
            raise ValueError("a settlement with fees needs a fee_account")
        self._account(buy.user_id, s.quote).reserved -= s.notional
        self._shrink(buy, s.notional)
        self._account(sell.user_id, s.base).reserved -= s.quantity
        self._shrink(sell, s.quantity)
        self._account(s.buyer_id, s.base).available += s.quantity - s.buyer_fee
        self._account(s.seller_id, s.quote).available += s.notional - s.seller_fee
        if fee_account is not None:
            self._account(fee_account, s.base).available += s.buyer_fee
            self._account(fee_account, s.quote).available += s.seller_fee
        self._settled.add(s.trade_id)

    async def balances(self, user_id: str) -> dict[str, Balance]:
        """The user's balances by asset."""
        return {
            asset: Balance(asset, account.available, account.reserved)
            for (user, asset), account in sorted(self._accounts.items())
            if user == user_id
        }

    @in_money_context
    async def totals(self) -> dict[str, Decimal]:
        """Every asset's total over all users (available plus reserved): conserved by trading."""
        totals: dict[str, Decimal] = {}
        for (_, asset), account in self._accounts.items():
            totals[asset] = totals.get(asset, _ZERO) + account.available + account.reserved
        return totals

    async def close(self) -> None:
        """Nothing to release; here for symmetry with the SQL wallets."""
