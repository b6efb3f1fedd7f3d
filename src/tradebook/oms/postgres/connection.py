"""PostgreSQL connections: error mapping, pools, one-statement reads, and the ``tradebook db`` helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from ...errors import (
    PersistenceError,
    TradebookError,
)
from .._sql.migrations import status
from .schema import _apply_migrations, _Conn, _table_exists, migrations

# -- errors and pools --------------------------------------------------------------

_Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _mapped:
    """Turn psycopg operational failures (connection lost, pool timeout, ...) into ``error``.

    A class rather than a generator-based context manager: it wraps every call.
    """

    __slots__ = ("_error", "_what")

    def __init__(self, error: type[TradebookError], what: str) -> None:
        self._error = error
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, psycopg.OperationalError):
            raise self._error(f"{self._what}: {_first_line(exc)}") from exc


async def _connect(dsn: str) -> _Conn:
    """One autocommit connection reading timestamps in UTC (for migrations and the operations helpers)."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        await conn.execute("SET TIME ZONE 'UTC'")
    except BaseException:
        await conn.close()
        raise
    return conn


async def _open_pool(dsn: str, schema: str, min_size: int, max_size: int, name: str) -> _Pool:
    """Migrate ``schema``, then open a pool whose connections use it (autocommit, UTC)."""
    async with await _connect(dsn) as conn:
        await _apply_migrations(conn, schema)
    session = sql.SQL("SET search_path TO {}; SET TIME ZONE 'UTC'").format(sql.Identifier(schema))

    async def configure(conn: _Conn) -> None:
        await conn.execute(session)

    pool: _Pool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        configure=configure,
        open=False,
        name=name,
    )
    try:
        await pool.open(wait=True)
    except BaseException:
        await pool.close()
        raise
    return pool


async def _fetch(
    pool: _Pool, query: sql.SQL | sql.Composed | str | bytes, params: Sequence[Any] = ()
) -> list[TupleRow]:
    """Run one autocommit statement on a pooled connection and return its rows.

    Takes the connection with ``getconn``/``putconn`` rather than the pool's
    context manager: an autocommit statement has no transaction to end, and a
    connection returned in the middle of a query (a cancelled call) is
    discarded by the pool.
    """
    conn = await pool.getconn()
    try:
        cur = await conn.execute(query, params)
        return await cur.fetchall()
    finally:
        await pool.putconn(conn)


def _check_sizes(min_size: int, max_size: int) -> None:
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise ValueError(f"min_size must be a non-negative integer, not {min_size!r}")
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < max(min_size, 1):
        raise ValueError(f"max_size must be an integer of at least max(min_size, 1), not {max_size!r}")


# -- operations: tradebook db ...  ---------------------------------------------------


async def migrate(dsn: str, schema: str = "public") -> list[int]:
    """Apply the migrations ``schema`` lacks (creating it if missing); return the versions applied.

    Safe to run from several processes at once. Raises
    :class:`~tradebook.PersistenceError` when the database cannot be reached.
    """
    with _mapped(PersistenceError, "cannot migrate PostgreSQL"):
        async with await _connect(dsn) as conn:
            return await _apply_migrations(conn, schema)


async def migration_status(dsn: str, schema: str = "public") -> list[tuple[int, str, datetime | None]]:
    """Every migration as ``(version, name, applied_at)``; ``applied_at`` is ``None`` when not applied.

    Read-only: an absent schema lists every migration as not applied. Versions
    recorded in the database but unknown to this tradebook are listed too.
    """
    with _mapped(PersistenceError, "cannot read the PostgreSQL migration status"):
        async with await _connect(dsn) as conn:
            recorded: dict[int, tuple[str, datetime]] = {}
            if await _table_exists(conn, schema, "schema_migrations"):
                cur = await conn.execute(
                    sql.SQL("SELECT version, name, applied_at FROM {} ORDER BY version").format(
                        sql.Identifier(schema, "schema_migrations")
                    )
                )
                recorded = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
    return status(migrations(), recorded)


async def refresh_statistics(dsn: str, schema: str = "public") -> int:
    """Refresh the 24-hour trading statistics (concurrently: readers are not blocked); return its row count.

    Raises :class:`~tradebook.PersistenceError` when the database cannot be
    reached or ``schema`` is not migrated.
    """
    with _mapped(PersistenceError, "cannot refresh the trading statistics"):
        async with await _connect(dsn) as conn:
            if not await _table_exists(conn, schema, "trading_stats_24h"):
                raise PersistenceError(
                    f"schema {schema!r} has no trading statistics: run `tradebook db migrate` on it first"
                )
            await conn.execute(sql.SQL("SELECT {}()").format(sql.Identifier(schema, "refresh_trading_stats")))
            cur = await conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "trading_stats_24h"))
            )
            row = await cur.fetchone()
    return int(row[0]) if row is not None else 0
