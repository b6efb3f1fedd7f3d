"""The ports a host application implements to plug in its own storage and balances.

Both are :class:`typing.Protocol`\\ s with ``async`` methods: any object with
these methods fits, no base class needed. The shipped adapters (memory, SQLite,
PostgreSQL) all pass one contract test suite (``tests/oms/test_contract_*.py``);
a custom adapter can run the same suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from ..enums import OrderStatus
from .models import Balance, OrderQuery, OrderRecord, Page, Reservation, Settlement, TradeRecord, WalletOp

__all__ = ["OrderRepository", "UnitOfWork", "WalletClient"]


@runtime_checkable
class UnitOfWork(Protocol):
    """The writes of one command; they commit together or not at all.

    Obtained from :meth:`OrderRepository.transaction`; leaving the ``async
    with`` block normally commits, leaving it with an exception rolls back.
    """

    async def create_order(self, order: OrderRecord) -> None:
        """Insert a new order.

        Raises :class:`~tradebook.DuplicateOrderError` if the id exists, or if
        the user already has an order with the same ``client_order_id``.
        """

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
        """Set an order's status and filled quantity, and each of the optional fields that is given.

        ``None`` leaves ``sequence``, ``visible_quantity`` (an iceberg's slice),
        ``stop_price`` (a trailing stop's, as its reference moves), ``quantity``
        and ``price`` (both changed by an amend only) as they are. Raises
        :class:`~tradebook.OrderNotFoundError` for an unknown id. A repository
        whose ``update_order`` takes no ``quantity`` and ``price`` serves every
        command but an amend.
        """

    async def cancel_order(self, order_id: int, *, updated_at: datetime) -> None:
        """Mark an active order (``OPEN``, ``PARTIALLY_FILLED`` or ``UNTRIGGERED``) ``CANCELLED``.

        Raises :class:`~tradebook.OrderNotFoundError` for an unknown id and
        :class:`~tradebook.OrderConflictError` if the order is not active.
        """

    async def delete_order(self, order_id: int) -> None:
        """Remove a ``PENDING`` order that was never accepted (no-op if absent)."""

    async def record_trades(self, trades: Sequence[TradeRecord]) -> None:
        """Insert trades (ids unique)."""

    async def add_wallet_ops(self, ops: Sequence[WalletOp]) -> None:
        """Queue wallet operations in the outbox, to be applied after the commit."""

    async def mark_wallet_ops_done(self, op_ids: Sequence[int]) -> None:
        """Take applied operations out of the outbox."""


@runtime_checkable
class OrderRepository(Protocol):
    """Where orders, trades and the wallet outbox live."""

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work: ``async with repo.transaction() as uow: ...``."""
        ...

    async def get_order(self, order_id: int) -> OrderRecord | None:
        """The order with this id, or ``None``."""

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> OrderRecord | None:
        """The user's order with this client order id, or ``None``."""

    async def list_orders(self, user_id: str, query: OrderQuery = OrderQuery()) -> Page[OrderRecord]:  # noqa: B008
        """A user's orders matching ``query``, newest first, one page at a time."""
        ...

    async def active_orders(self, symbol: str) -> list[OrderRecord]:
        """The symbol's live orders (``OPEN``, ``PARTIALLY_FILLED``, ``UNTRIGGERED``) in ``sequence`` order."""
        ...

    async def pending_orders(self) -> list[OrderRecord]:
        """Orders still ``PENDING`` (written but never accepted by the engine)."""
        ...

    async def list_trades(
        self, *, symbol: str | None = None, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[TradeRecord]:
        """Trades, newest first, filtered by symbol and/or by a user on either side."""
        ...

    async def pending_wallet_ops(self) -> list[WalletOp]:
        """Outbox operations not yet marked done, in id order."""
        ...

    async def last_ids(self) -> tuple[int, int, int, int]:
        """The largest order id, trade id, sequence and wallet-op id stored (0 when none)."""
        ...

    async def close(self) -> None:
        """Release connections; the repository is unusable afterwards."""


@runtime_checkable
class WalletClient(Protocol):
    """Balances: reserve funds for orders, release them, settle trades.

    Failures to reach the wallet raise :class:`~tradebook.WalletUnavailableError`;
    a reservation the user cannot afford raises
    :class:`~tradebook.InsufficientBalanceError` and reserves nothing.

    Optional, outside the protocol: ``async reserve_more(user_id, asset,
    amount, ref) -> Reservation`` moves ``amount`` more from available into
    reservation ``ref`` (or raises ``InsufficientBalanceError``, changing
    nothing). An amend that needs more funds calls it; on a wallet without it
    such an amend is refused. The shipped wallets have it.
    """

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Move ``amount`` of ``asset`` from available to reserved under ``ref``.

        Asking again with a ``ref`` that already holds funds returns that
        reservation unchanged (a retried call reserves nothing twice).
        """
        ...

    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        """Return ``amount`` (all when ``None``) of reservation ``ref`` to available.

        Returns what was released; an unknown ``ref`` releases nothing and returns 0.
        """
        ...

    async def reserved(self, ref: str) -> Decimal:
        """What reservation ``ref`` still holds (0 when unknown)."""
        ...

    async def settle(self, settlement: Settlement) -> None:
        """Apply one trade's movements; a ``trade_id`` already applied is a no-op."""

    async def balances(self, user_id: str) -> dict[str, Balance]:
        """The user's balances by asset (assets never touched are absent)."""
        ...
