"""SQLite adapters: an order repository and a ledger wallet in one file, standard library only.

::

    repo = await SQLiteOrderRepository.open("tradebook.db")
    wallet = await SQLiteWallet.open("tradebook.db")  # the same file is fine

Both behave exactly like the memory adapters. How they run (statements inline
on the event loop, one shared writer per file, WAL) is in docs/guides/adapters.md.
"""

from __future__ import annotations

from .connection import DEFAULT_BUSY_TIMEOUT, migrate, migration_status
from .repository import SQLiteOrderRepository, SQLiteUnitOfWork
from .wallet import SQLiteWallet

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "SQLiteOrderRepository",
    "SQLiteUnitOfWork",
    "SQLiteWallet",
    "migrate",
    "migration_status",
]
