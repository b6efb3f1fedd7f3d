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

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _stores import (
    STORE_KINDS,
    Store,
    drop_schema,
    new_schema_name,
    open_store,
    postgres_dsn_or_skip,
    store_location,
)

if TYPE_CHECKING:
    from tradebook.oms.postgres import PostgresOrderRepository, PostgresWallet


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


# -- PostgreSQL: a schema of its own and the adapters on it (the PostgreSQL test modules) -----


@pytest.fixture
async def pg() -> AsyncIterator[tuple[str, str]]:
    """A DSN and a fresh schema name; the schema is dropped afterwards."""
    dsn = postgres_dsn_or_skip()
    schema = new_schema_name()
    try:
        yield dsn, schema
    finally:
        await drop_schema(dsn, schema)


@pytest.fixture
async def repo(pg: tuple[str, str]) -> AsyncIterator[PostgresOrderRepository]:
    """A PostgreSQL order repository on ``pg``'s schema."""
    from tradebook.oms.postgres import PostgresOrderRepository

    repository = await PostgresOrderRepository.open(pg[0], schema=pg[1])
    try:
        yield repository
    finally:
        await repository.close()


@pytest.fixture
async def wallet(pg: tuple[str, str]) -> AsyncIterator[PostgresWallet]:
    """A PostgreSQL wallet on ``pg``'s schema."""
    from tradebook.oms.postgres import PostgresWallet

    opened = await PostgresWallet.open(pg[0], schema=pg[1])
    try:
        yield opened
    finally:
        await opened.close()
