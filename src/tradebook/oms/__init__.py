"""Order management: an async :class:`OrderService` over pluggable ports.

The service validates orders, reserves balances in a :class:`WalletClient`,
persists through an :class:`OrderRepository`, matches in a
:class:`~tradebook.MatchingEngine` and settles trades, all asynchronously.
Adapters: memory (here), SQLite (:mod:`tradebook.oms.sqlite`, standard library
only) and PostgreSQL (:mod:`tradebook.oms.postgres`, the ``postgres`` extra).
"""

from __future__ import annotations

from .breaker import BreakerState, CircuitBreakerWallet
from .feeds import MarketFeed, UserFeed, UserFeedResync
from .memory import MemoryOrderRepository, MemoryUnitOfWork, MemoryWallet
from .models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Balance,
    OrderQuery,
    OrderRecord,
    Page,
    Release,
    Reservation,
    Settlement,
    TradeRecord,
    WalletOp,
)
from .ports import OrderRepository, UnitOfWork, WalletClient
from .service import OrderService, Placement, RecoveryReport

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "Balance",
    "BreakerState",
    "CircuitBreakerWallet",
    "MarketFeed",
    "MemoryOrderRepository",
    "MemoryUnitOfWork",
    "MemoryWallet",
    "OrderQuery",
    "OrderRecord",
    "OrderRepository",
    "OrderService",
    "Page",
    "Placement",
    "RecoveryReport",
    "Release",
    "Reservation",
    "Settlement",
    "TradeRecord",
    "UnitOfWork",
    "UserFeed",
    "UserFeedResync",
    "WalletClient",
    "WalletOp",
]
