"""Opening the stores the order-management tests run on, and the test PostgreSQL's helpers.

Shared by tests/oms/conftest.py, the test modules, the crash driver and the
HTTP tests; import from here, never ``from conftest`` (each test directory has
a conftest.py of its own).
"""

from __future__ import annotations

import itertools
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tradebook.oms.stores import DatabaseTarget, open_stores, parse_database_url


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
    """Open the repository and wallet of one adapter family, as ``tradebook serve`` does (:func:`open_stores`)."""
    repository, wallet = await open_stores(_target(kind, location))
    return Store(kind, repository, wallet, location)


def _target(kind: str, location: dict[str, Any]) -> DatabaseTarget:
    if kind == "memory":
        return parse_database_url("memory")
    if kind == "sqlite":
        return parse_database_url(location["path"])
    if kind == "postgres":
        return parse_database_url(location["dsn"], location["schema"])
    raise ValueError(kind)


POSTGRES_DSN = os.environ.get("TRADEBOOK_TEST_POSTGRES_DSN", "")
REQUIRE_POSTGRES = bool(os.environ.get("TRADEBOOK_REQUIRE_POSTGRES"))
STORE_KINDS = ("memory", "sqlite", "postgres")
_schema_numbers = itertools.count(1)


def postgres_dsn_or_skip() -> str:
    """The test PostgreSQL's address; skips (or fails, when required) without one."""
    if POSTGRES_DSN:
        return POSTGRES_DSN
    reason = "TRADEBOOK_TEST_POSTGRES_DSN is not set: no PostgreSQL to test against"
    if REQUIRE_POSTGRES:
        pytest.fail(f"{reason}, and TRADEBOOK_REQUIRE_POSTGRES demands one")
    pytest.skip(reason)


def new_schema_name() -> str:
    """A schema name no other test run uses."""
    return f"tbtest_{os.getpid()}_{next(_schema_numbers)}_{uuid.uuid4().hex[:8]}"


async def drop_schema(dsn: str, schema: str) -> None:
    """Drop a test schema and everything in it."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def store_location(kind: str, tmp_path: Path) -> dict[str, Any]:
    """Where a new store of this kind lives (skips postgres without a DSN)."""
    if kind == "sqlite":
        return {"path": str(tmp_path / "tradebook.db")}
    if kind == "postgres":
        return {"dsn": postgres_dsn_or_skip(), "schema": new_schema_name()}
    return {}
