"""Opening the stores the order-management tests run on (shared by conftest and the crash driver)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Store:
    """A repository and a wallet over one storage, and how to open them again."""

    kind: str
    repository: Any
    wallet: Any
    location: dict[str, Any]

    async def reopen(self) -> None:
        """Close both and open them again on the same storage (what a restart does).

        The memory store has no storage beyond the objects, so it keeps them.
        """
        if self.kind == "memory":
            return
        await self.repository.close()
        await self.wallet.close()
        fresh = await open_store(self.kind, **self.location)
        self.repository, self.wallet = fresh.repository, fresh.wallet


async def open_store(kind: str, **location: Any) -> Store:
    """Open the repository and wallet of one adapter family."""
    if kind == "memory":
        from tradebook.oms import MemoryOrderRepository, MemoryWallet

        return Store(kind, MemoryOrderRepository(), MemoryWallet(), location)
    if kind == "sqlite":
        from tradebook.oms.sqlite import SQLiteOrderRepository, SQLiteWallet

        path = location["path"]
        return Store(kind, await SQLiteOrderRepository.open(path), await SQLiteWallet.open(path), location)
    if kind == "postgres":
        from tradebook.oms.postgres import PostgresOrderRepository, PostgresWallet

        dsn, schema = location["dsn"], location["schema"]
        repository = await PostgresOrderRepository.open(dsn, schema=schema)
        wallet = await PostgresWallet.open(dsn, schema=schema)
        return Store(kind, repository, wallet, location)
    raise ValueError(kind)
