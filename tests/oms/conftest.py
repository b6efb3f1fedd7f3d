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

import pytest
from _stores import (
    STORE_KINDS,
    Store,
    drop_schema,
    open_store,
    store_location,
)


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
