"""Public import paths survive layout changes: every name a user imported before still imports from there.

The lists are the ``__all__`` of each module as it stood before the layout of issue 11
(shared SQL layer, CLI package, HTTP in small modules, core split). A module may export
more; it may not lose one of these, nor move it elsewhere.
"""

from __future__ import annotations

import importlib

import pytest

BEFORE = {
    "tradebook": [
        "BACKEND", "BatchOp", "BatchResult", "BookSide", "Depth", "DuplicateOrderError", "ERROR_DUPLICATE",
        "ERROR_INVALID", "ERROR_NOT_FOUND", "ExecutionReport", "Instrument", "InsufficientBalanceError",
        "InvalidInstrumentError", "InvalidOrderError", "InvalidPriceError", "InvalidQuantityError",
        "InvalidRequestError", "L2Delta", "LevelSnapshot", "MarketDataUpdate", "MatchingEngine", "Order", "OrderBook",
        "OrderConflictError", "OrderNotFoundError", "OrderStatus", "OrderType", "PersistenceError", "PriceLevel",
        "PriceTree", "STATUS_CODES", "SelfTradePrevention", "Side", "SymbolMismatchError", "TimeInForce", "TopOfBook",
        "Trade", "TradebookError", "UnknownSymbolError", "WalletUnavailableError", "__version__",
    ],
    "tradebook.enums": ["OrderStatus", "OrderType", "SelfTradePrevention", "Side", "TimeInForce"],
    "tradebook.errors": [
        "DuplicateOrderError", "InsufficientBalanceError", "InvalidInstrumentError", "InvalidOrderError",
        "InvalidPriceError", "InvalidQuantityError", "InvalidRequestError", "OrderConflictError", "OrderNotFoundError",
        "PersistenceError", "SymbolMismatchError", "TradebookError", "UnknownSymbolError", "WalletUnavailableError",
    ],
    "tradebook.instrument": ["Instrument"],
    "tradebook.cli": ["main"],
    "tradebook.oms": [
        "ACTIVE_STATUSES", "Balance", "BreakerState", "CircuitBreakerWallet", "MemoryOrderRepository",
        "MemoryUnitOfWork", "MemoryWallet", "OrderQuery", "OrderRecord", "OrderRepository", "OrderService", "Page",
        "Placement", "RecoveryReport", "Release", "Reservation", "Settlement", "TERMINAL_STATUSES", "TradeRecord",
        "UnitOfWork", "WalletClient", "WalletOp",
    ],
    "tradebook.oms.memory": ["MemoryOrderRepository", "MemoryUnitOfWork", "MemoryWallet"],
    "tradebook.oms.sqlite": ["SQLiteOrderRepository", "SQLiteUnitOfWork", "SQLiteWallet", "migrate", "migration_status"],
    "tradebook.oms.postgres": [
        "PostgresOrderRepository", "PostgresUnitOfWork", "PostgresWallet", "migrate", "migration_status",
    ],
    "tradebook.http": [
        "API_PREFIX", "AccountConfig", "AuthenticationError", "Authenticator", "ConfigError",
        "DEFAULT_MAX_BODY_BYTES", "Metrics", "PrometheusMetrics", "STATUS_BY_CODE", "ServerConfig",
        "ServiceUnavailableError", "TokenAuthenticator", "TrustedHeaderAuthenticator", "build_app", "create_app",
        "create_metrics", "issue_token", "load_config", "load_secret", "open_service", "parse_account",
        "parse_instrument", "prometheus_available", "serve", "status_for", "verify_token",
    ],
}  # fmt: skip

CASES = [(module, name) for module, names in BEFORE.items() for name in names]


@pytest.mark.parametrize(("module", "name"), CASES, ids=[f"{m}.{n}" for m, n in CASES])
def test_a_public_name_still_imports_from_where_it_was(module: str, name: str) -> None:
    mod = importlib.import_module(module)
    assert hasattr(mod, name), f"from {module} import {name} no longer works"


@pytest.mark.parametrize("module", ["tradebook", "tradebook.oms", "tradebook.http"])
def test_the_package_still_lists_every_name_it_listed(module: str) -> None:
    exported = set(importlib.import_module(module).__all__)
    missing = sorted(set(BEFORE[module]) - exported)
    assert not missing, f"{module}.__all__ lost {missing}"
