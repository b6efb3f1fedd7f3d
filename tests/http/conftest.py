"""Fixtures of the HTTP API tests: an in-process app over each store, clients with tokens.

``api`` is parametrized over ``memory``, ``sqlite`` and ``postgres`` (the same
stores as the order-management tests, opened by ``tests/oms/_stores.py``;
PostgreSQL cases run in a schema of their own, dropped afterwards, and skip
without ``TRADEBOOK_TEST_POSTGRES_DSN`` unless ``TRADEBOOK_REQUIRE_POSTGRES``
is set). ``memory_api`` is the memory store alone, for tests about the HTTP
layer itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _http_support import STORE_KINDS, Api, close_api, open_api


@pytest.fixture(params=STORE_KINDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """The API over each store: memory, SQLite, PostgreSQL."""
    opened, location = await open_api(request.param, tmp_path)
    try:
        yield opened
    finally:
        await close_api(opened, location)


@pytest.fixture
async def memory_api(tmp_path: Path) -> AsyncIterator[Api]:
    """The API over the memory store."""
    opened, location = await open_api("memory", tmp_path)
    try:
        yield opened
    finally:
        await close_api(opened, location)
