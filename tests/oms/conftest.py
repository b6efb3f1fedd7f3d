"""Fixtures for the order-management layer: one ``store`` per adapter family.

``store`` is parametrized over ``memory``, ``sqlite`` and ``postgres`` and
yields a :class:`Store` (a repository and a wallet on the same storage). The
PostgreSQL parameter needs ``TRADEBOOK_TEST_POSTGRES_DSN`` (for example
``postgresql://postgres@127.0.0.1:5432/test``); without it those cases skip,
unless ``TRADEBOOK_REQUIRE_POSTGRES`` is set, which turns the skip into a
failure (CI sets both). Each PostgreSQL case runs in a schema of its own that is
dropped afterwards.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _stores import Store, open_store

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


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh repository and wallet of each adapter family."""
    kind = request.param
    location = store_location(kind, tmp_path)
    opened = await open_store(kind, **location)
    try:
        yield opened
    finally:
        await opened.repository.close()
        await opened.wallet.close()
        if kind == "postgres":
            await drop_schema(location["dsn"], location["schema"])
