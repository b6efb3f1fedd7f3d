"""The SQLite order repository and its unit of work."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from ...enums import OrderStatus
from ...errors import (
    DuplicateOrderError,
    InvalidRequestError,
    OrderConflictError,
    OrderNotFoundError,
    PersistenceError,
)
from .._paging import page_of
from .._sql.columns import OP_COLUMNS, ORDER_COLUMN_COUNT, ORDER_COLUMNS, TRADE_COLUMNS
from .._sql.queries import Queries
from ..models import OrderQuery, OrderRecord, Page, TradeRecord, WalletOp
from .connection import (
    DEFAULT_BUSY_TIMEOUT,
    _begin,
    _commit,
    _Connection,
    _file_path,
    _rollback,
    _savepoint,
    _SharedWriter,
)
from .schema import CODEC, T, _checked_id, _storable_id, _text, _timestamp

_Q = Queries("?")
_INSERT_ORDER = f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({', '.join('?' * ORDER_COLUMN_COUNT)})"
_UPDATE_ORDER = (
    "UPDATE orders SET status = ?, filled_quantity = ?, updated_at = ?, sequence = COALESCE(?, sequence),"
    " visible_quantity = COALESCE(?, visible_quantity), stop_price = COALESCE(?, stop_price) WHERE id = ?"
)
_AMEND_ORDER = "UPDATE orders SET quantity = COALESCE(?, quantity), price = COALESCE(?, price) WHERE id = ?"
_INSERT_TRADE = f"INSERT INTO trades ({TRADE_COLUMNS}) VALUES ({', '.join('?' * 10)})"
_INSERT_OP = f"INSERT INTO wallet_ops ({OP_COLUMNS}) VALUES (?, ?, ?, ?)"


def _insert_all(conn: sqlite3.Connection, insert: str, rows: Sequence[Sequence[Any]], table: str, noun: str) -> None:
    """Insert ``rows`` all or none; the first id already taken (or repeated) raises DuplicateOrderError."""
    try:
        if len(rows) == 1:
            conn.execute(insert, rows[0])  # one statement is atomic by itself
        else:
            with _savepoint(conn):
                conn.executemany(insert, rows)
        return
    except sqlite3.IntegrityError:
        pass
    seen: set[object] = set()
    for row in rows:
        row_id = row[0]
        if row_id in seen or conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)).fetchone():
            raise DuplicateOrderError(f"{noun} id {row_id} already exists")
        seen.add(row_id)
    raise DuplicateOrderError(f"a {noun} id is already taken")  # pragma: no cover - the loop finds it


class SQLiteUnitOfWork:
    """The writes of one :meth:`SQLiteOrderRepository.transaction`, inside one SQLite transaction.

    Each method is atomic: one that raises has written nothing, and the
    transaction can go on. The unit is unusable once its block has ended.
    """

    def __init__(self, writer: _Connection) -> None:
        self._writer = writer
        self._finished = False
        self._begun = False

    async def _run(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if self._finished:
            raise RuntimeError("this unit of work has already committed or rolled back")
        if not self._begun:
            # BEGIN rides along with the first statement
            self._begun = True
            first = job

            def job(conn: sqlite3.Connection) -> T:
                _begin(conn)
                return first(conn)

        return await self._writer.run(job, error=PersistenceError)

    async def create_order(self, order: OrderRecord) -> None:
        """Insert a new order (see :meth:`UnitOfWork.create_order`)."""
        row = CODEC.order_row(order)

        def job(conn: sqlite3.Connection) -> None:
            try:  # one statement on the usual path; the constraints say when it is a duplicate
                conn.execute(_INSERT_ORDER, row)
                return
            except sqlite3.IntegrityError:
                pass  # the failed statement wrote nothing; the transaction goes on
            if conn.execute(_Q.order_exists, (order.id,)).fetchone() is not None:
                raise DuplicateOrderError(f"order id {order.id} already exists")
            raise DuplicateOrderError(
                f"user {order.user_id!r} already has an order with client_order_id {order.client_order_id!r}"
            )

        await self._run(job)

    async def update_order(
        self,
        order_id: int,
        *,
        status: OrderStatus,
        filled_quantity: Decimal,
        updated_at: datetime,
        sequence: int | None = None,
        visible_quantity: Decimal | None = None,
        stop_price: Decimal | None = None,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
    ) -> None:
        """Set an order's status and filled quantity (and the optional fields that are given)."""
        amended = None
        if quantity is not None or price is not None:  # an amend: the only command that changes them
            amended = (
                None if quantity is None else _text(quantity),
                None if price is None else _text(price),
                order_id,
            )
        values = (
            OrderStatus(status).value,
            _text(filled_quantity),
            _timestamp(updated_at),
            None if sequence is None else _checked_id(sequence, "sequence"),
            None if visible_quantity is None else _text(visible_quantity),
            None if stop_price is None else _text(stop_price),
        )

        def job(conn: sqlite3.Connection) -> None:
            cursor = None
            if _storable_id(order_id):
                cursor = conn.execute(_UPDATE_ORDER, (*values, order_id))
            if cursor is None or cursor.rowcount == 0:
                raise OrderNotFoundError(f"no order with id {order_id}")
            if amended is not None:
                conn.execute(_AMEND_ORDER, amended)

        await self._run(job)

    async def cancel_order(self, order_id: int, *, updated_at: datetime) -> None:
        """Mark an active order ``CANCELLED``."""
        stamp = _timestamp(updated_at)

        def job(conn: sqlite3.Connection) -> None:
            if not _storable_id(order_id):
                raise OrderNotFoundError(f"no order with id {order_id}")
            cursor = conn.execute(_Q.cancel_order, (stamp, order_id))
            if cursor.rowcount:
                return
            row = conn.execute(_Q.order_status, (order_id,)).fetchone()
            if not row:
                raise OrderNotFoundError(f"no order with id {order_id}")
            raise OrderConflictError(f"order {order_id} is {row[0]}, not active")

        await self._run(job)

    async def delete_order(self, order_id: int) -> None:
        """Remove a ``PENDING`` order that was never accepted (no-op if absent)."""

        def job(conn: sqlite3.Connection) -> None:
            if not _storable_id(order_id):
                return
            if conn.execute(_Q.delete_order, (order_id,)).rowcount:
                return
            row = conn.execute(_Q.order_status, (order_id,)).fetchone()
            if row:
                raise OrderConflictError(f"order {order_id} is {row[0]}; only PENDING orders are deleted")

        await self._run(job)

    async def record_trades(self, trades: Sequence[TradeRecord]) -> None:
        """Insert trades (ids unique); a duplicate raises :class:`~tradebook.DuplicateOrderError`."""
        rows = [CODEC.trade_row(trade) for trade in trades]

        if not rows:
            return

        def job(conn: sqlite3.Connection) -> None:
            _insert_all(conn, _INSERT_TRADE, rows, "trades", "trade")

        await self._run(job)

    async def add_wallet_ops(self, ops: Sequence[WalletOp]) -> None:
        """Queue wallet operations in the outbox (ids unique)."""
        rows = [CODEC.op_row(op) for op in ops]

        if not rows:
            return

        def job(conn: sqlite3.Connection) -> None:
            _insert_all(conn, _INSERT_OP, rows, "wallet_ops", "wallet operation")

        await self._run(job)

    async def mark_wallet_ops_done(self, op_ids: Sequence[int]) -> None:
        """Take applied operations out of the outbox (unknown ids are ignored)."""
        ids = [(op_id,) for op_id in op_ids if _storable_id(op_id)]

        if not ids:
            return

        def job(conn: sqlite3.Connection) -> None:
            for start in range(0, len(ids), 500):  # one statement per 500 ids: all of them or none
                chunk = [op_id for (op_id,) in ids[start : start + 500]]
                conn.execute(f"DELETE FROM wallet_ops WHERE id IN ({', '.join('?' * len(chunk))})", chunk)

        await self._run(job)


class SQLiteOrderRepository:
    """An :class:`~tradebook.oms.OrderRepository` in an SQLite file.

    Open with :meth:`open`, close with :meth:`close`. Transactions are
    serialised (within the process by a lock, across processes by SQLite's
    write lock, ``BEGIN IMMEDIATE``); reads go through a second connection and
    see only committed data. SQLite failures (I/O errors, a write lock held
    past the busy timeout) raise :class:`~tradebook.PersistenceError`.

    A :class:`SQLiteWallet` on the same file shares the writing connection
    and its lock, so calling it from inside an open repository transaction
    raises :class:`RuntimeError` (it could only wait for itself).
    """

    def __init__(self, path: str, shared: _SharedWriter, reader: _Connection) -> None:
        """Use :meth:`open`."""
        self._path = path
        self._shared = shared
        self._reader = reader
        self._closed = False

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    ) -> SQLiteOrderRepository:
        """Open (creating and migrating as needed) the repository in the SQLite file at ``path``."""
        text = _file_path(path)
        shared = await _SharedWriter.acquire(text, busy_timeout=busy_timeout, error=PersistenceError)
        try:
            reader = await _Connection.open(
                text, error=PersistenceError, busy_timeout=busy_timeout, reader=True, migrate=False
            )
        except BaseException:
            await shared.release()
            raise
        return cls(text, shared, reader)

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the repository is closed")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SQLiteUnitOfWork]:
        """A unit of work: it commits when the block ends normally and rolls back on an exception."""
        self._check_open()
        shared = self._shared
        async with shared.lock:
            shared.owner = asyncio.current_task()
            try:
                writer = shared.conn
                uow = SQLiteUnitOfWork(writer)
                try:
                    yield uow
                except BaseException:
                    uow._finished = True
                    if uow._begun:
                        with contextlib.suppress(PersistenceError, RuntimeError):
                            await writer.run(_rollback, shield=True, error=PersistenceError)
                    raise
                uow._finished = True
                if uow._begun:
                    await writer.run(_commit, shield=True, error=PersistenceError)
            finally:
                shared.owner = None

    async def _read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        return await self._reader.run(job)

    async def get_order(self, order_id: int) -> OrderRecord | None:
        """The order with this id, or ``None``."""
        if not _storable_id(order_id):
            self._check_open()
            return None

        def job(conn: sqlite3.Connection) -> OrderRecord | None:
            row = conn.execute(_Q.get_order, (order_id,)).fetchone()
            return None if row is None else CODEC.order(row)

        return await self._read(job)

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> OrderRecord | None:
        """The user's order with this client order id, or ``None``."""

        def job(conn: sqlite3.Connection) -> OrderRecord | None:
            row = conn.execute(_Q.get_order_by_client_id, (user_id, client_order_id)).fetchone()
            return None if row is None else CODEC.order(row)

        return await self._read(job)

    async def list_orders(self, user_id: str, query: OrderQuery = OrderQuery()) -> Page[OrderRecord]:  # noqa: B008
        """A user's orders matching ``query``, newest (highest id) first, one page at a time."""
        self._check_open()
        sql, params = _Q.list_orders(user_id, query, _bound)

        def job(conn: sqlite3.Connection) -> list[OrderRecord]:
            return [CODEC.order(row) for row in conn.execute(sql, params)]

        return page_of(await self._read(job), query.limit)

    async def active_orders(self, symbol: str) -> list[OrderRecord]:
        """The symbol's live orders (``OPEN``, ``PARTIALLY_FILLED``, ``UNTRIGGERED``) in ``sequence`` order."""

        def job(conn: sqlite3.Connection) -> list[OrderRecord]:
            return [CODEC.order(row) for row in conn.execute(_Q.active_orders, (symbol,))]

        return await self._read(job)

    async def pending_orders(self) -> list[OrderRecord]:
        """Orders still ``PENDING``, in id order."""

        def job(conn: sqlite3.Connection) -> list[OrderRecord]:
            return [CODEC.order(row) for row in conn.execute(_Q.pending_orders)]

        return await self._read(job)

    async def list_trades(
        self, *, symbol: str | None = None, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[TradeRecord]:
        """Trades, newest first, filtered by symbol and/or by a user on either side."""
        self._check_open()
        sql, params = _Q.list_trades(symbol, user_id, limit, cursor)

        def job(conn: sqlite3.Connection) -> list[TradeRecord]:
            return [CODEC.trade(row) for row in conn.execute(sql, params)]

        return page_of(await self._read(job), limit)

    async def pending_wallet_ops(self) -> list[WalletOp]:
        """Outbox operations not yet marked done, in id order."""

        def job(conn: sqlite3.Connection) -> list[WalletOp]:
            rows = conn.execute(f"SELECT {OP_COLUMNS} FROM wallet_ops ORDER BY id")
            return [WalletOp.from_payload(*row) for row in rows]

        return await self._read(job)

    async def last_ids(self) -> tuple[int, int, int, int]:
        """The largest order id, trade id, sequence and wallet-op id stored (0 when none)."""

        def job(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
            row = conn.execute(_Q.last_ids).fetchone()
            return (row[0], row[1], row[2], row[3])

        return await self._read(job)

    async def close(self) -> None:
        """Close both connections; idempotent. The repository is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._reader.close()
        finally:
            await self._shared.release()


def _bound(value: datetime, name: str) -> str:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidRequestError(f"{name} must be a timezone-aware datetime, not {value!r}")
    return _timestamp(value)
