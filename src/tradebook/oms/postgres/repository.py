"""The PostgreSQL order repository and its unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, suppress
from datetime import datetime
from decimal import Decimal
from functools import cache
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from ...enums import OrderStatus
from ...errors import (
    DuplicateOrderError,
    OrderConflictError,
    OrderNotFoundError,
    PersistenceError,
)
from .._paging import page_of
from .._sql.columns import OP_COLUMNS, ORDER_COLUMN_COUNT, ORDER_COLUMNS, TRADE_COLUMNS
from .._sql.queries import Queries
from ..models import OrderQuery, OrderRecord, Page, TradeRecord, WalletOp
from .connection import _check_sizes, _fetch, _mapped, _open_pool, _Pool
from .schema import CODEC, _Conn

_Q = Queries("%s")

# The statements a unit of work runs, as plain text: psycopg caches their conversion
# and prepares them on the server after a few uses.
_INSERT_ORDER = (
    f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({', '.join(['%s'] * ORDER_COLUMN_COUNT)}) ON CONFLICT DO NOTHING"
)
_UPDATE_ORDER = (
    "UPDATE orders SET status = %s, filled_quantity = %s, updated_at = %s, sequence = coalesce(%s::bigint, sequence),"
    " visible_quantity = coalesce(%s::numeric, visible_quantity), stop_price = coalesce(%s::numeric, stop_price)"
    " WHERE id = %s"
)
_AMEND_ORDER = (
    "UPDATE orders SET quantity = coalesce(%s::numeric, quantity), price = coalesce(%s::numeric, price) WHERE id = %s"
)
# Whole batches in one statement each. ON CONFLICT DO NOTHING also skips a repeat
# of an id within the batch; RETURNING tells which rows went in. A batch of up to
# _MAX_VALUES_ROWS rows is a multi-row VALUES (one prepared statement per size; its
# parameters are scalars, about ten times cheaper for psycopg to dump than arrays),
# a larger one unnest()s one array per column.
_MAX_VALUES_ROWS = 32
_TRADES = ("trades", TRADE_COLUMNS, "(" + ", ".join(["%s"] * 10) + ")")
_TRADE_ARRAYS = (
    "%s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::bigint[], %s::bigint[],"
    " %s::text[], %s::text[], %s::text[], %s::timestamptz[]"
)
_OPS = ("wallet_ops", OP_COLUMNS, "(%s, %s, %s, %s::jsonb)")
_OP_ARRAYS = "%s::bigint[], %s::text[], %s::text[], %s::jsonb[]"


@cache
def _insert_rows(table: str, columns: str, row: str, count: int) -> str:
    """``INSERT`` of ``count`` rows of ``row`` placeholders, refusing taken ids without failing."""
    return f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * count)} ON CONFLICT (id) DO NOTHING RETURNING id"


def _insert_arrays(table: str, columns: str, arrays: str) -> str:
    """``INSERT`` of the rows of one array per column (large batches)."""
    return f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) ON CONFLICT (id) DO NOTHING RETURNING id"


_INSERT_TRADE_ARRAYS = _insert_arrays(_TRADES[0], _TRADES[1], _TRADE_ARRAYS)
_INSERT_OP_ARRAYS = _insert_arrays(_OPS[0], _OPS[1], _OP_ARRAYS)
_BEGIN = b"BEGIN"
# Pipeline mode needs libpq 14 or later (the binary package bundles one); without it
# BEGIN takes a round trip of its own.
_PIPELINE = psycopg.AsyncPipeline.is_supported()
_ROLLBACK = b"ROLLBACK"


def _delete_ops(op_ids: set[int]) -> bytes:
    """``DELETE`` of outbox rows by id, the ids written inline (integers only) to go in one simple query."""
    return b"DELETE FROM wallet_ops WHERE id IN (" + ",".join(map(str, sorted(op_ids))).encode("ascii") + b")"


class PostgresUnitOfWork:
    """The writes of one transaction on one pooled connection (see :class:`~tradebook.oms.UnitOfWork`).

    Every method behaves like :class:`~tradebook.oms.MemoryUnitOfWork`'s; a
    duplicate, a missing order or a conflict raises without breaking the
    transaction, so the caller may go on or leave the block to roll back.

    Each method is one statement, hence one round trip: ``BEGIN`` goes out
    with the first one (a pipeline, with libpq 14 or later), and the deletion
    of the outbox entries marked done goes out with ``COMMIT`` (one simple
    query). A unit of work that wrote nothing costs no round trip at all.
    """

    def __init__(self, conn: _Conn) -> None:
        self._conn = conn
        self._cur = conn.cursor()
        self._begun = False
        self._done: set[int] = set()

    async def _execute(self, query: str, params: Sequence[Any]) -> psycopg.AsyncCursor[TupleRow]:
        """Run one statement of the transaction on the unit's cursor; the first one takes ``BEGIN`` along."""
        cur = self._cur
        if self._begun:
            await cur.execute(query, params)
            return cur
        self._begun = True
        if not _PIPELINE:
            await cur.execute(_BEGIN)
            await cur.execute(query, params)
            return cur
        async with self._conn.pipeline():
            await cur.execute(_BEGIN)
            await cur.execute(query, params)  # the cursor holds this one's result
        return cur

    async def _insert_all(
        self,
        target: tuple[str, str, str],
        arrays_query: str,
        rows: list[tuple[Any, ...]],
        noun: str,
    ) -> None:
        """Insert a batch in one statement, all of it or none of it (like the memory adapter).

        ``rows`` start with their id. When a row was refused (a taken id, or an
        id repeated in the batch), the rows this call did insert are taken out
        again and :class:`DuplicateOrderError` names the first refused id, in
        list order. No statement fails, so the transaction stays usable.
        """
        if not rows:
            return
        table, columns, row = target
        if len(rows) <= _MAX_VALUES_ROWS:
            cur = await self._execute(
                _insert_rows(table, columns, row, len(rows)), [value for r in rows for value in r]
            )
        else:
            cur = await self._execute(arrays_query, [list(column) for column in zip(*rows, strict=True)])
        inserted = {r[0] for r in await cur.fetchall()}
        if len(inserted) == len(rows):
            return
        seen: set[int] = set()
        refused = rows[0][0]
        for r in rows:
            if r[0] in seen or r[0] not in inserted:
                refused = r[0]
                break
            seen.add(r[0])
        if inserted:
            await self._execute(
                sql.SQL("DELETE FROM {} WHERE id = ANY(%s::bigint[])").format(sql.Identifier(table)).as_string(),
                (sorted(inserted),),
            )
        raise DuplicateOrderError(f"{noun} id {refused} already exists")

    async def create_order(self, order: OrderRecord) -> None:
        """Insert a new order; :class:`~tradebook.DuplicateOrderError` on a taken id or client order id."""
        with _mapped(PersistenceError, "could not store the order"):
            cur = await self._execute(_INSERT_ORDER, CODEC.order_row(order))
            if cur.rowcount == 1:
                return
            # The unique indexes refused the row; say which one.
            cur = await self._execute(_Q.order_exists, (order.id,))
            taken_id = await cur.fetchone() is not None
        if taken_id:
            raise DuplicateOrderError(f"order id {order.id} already exists")
        raise DuplicateOrderError(
            f"user {order.user_id!r} already has an order with client_order_id {order.client_order_id!r}"
        )

    async def _status(self, order_id: int) -> OrderStatus | None:
        cur = await self._execute(_Q.order_status, (order_id,))
        row = await cur.fetchone()
        return None if row is None else OrderStatus(row[0])

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
        params = (
            OrderStatus(status).value,
            filled_quantity,
            updated_at,
            sequence,
            visible_quantity,
            stop_price,
            order_id,
        )
        with _mapped(PersistenceError, f"could not update order {order_id}"):
            cur = await self._execute(_UPDATE_ORDER, params)
            if cur.rowcount and (quantity is not None or price is not None):  # an amend
                await self._execute(_AMEND_ORDER, (quantity, price, order_id))
        if cur.rowcount == 0:
            raise OrderNotFoundError(f"no order with id {order_id}")

    async def cancel_order(self, order_id: int, *, updated_at: datetime) -> None:
        """Mark an active order ``CANCELLED`` (not found / conflict otherwise)."""
        with _mapped(PersistenceError, f"could not cancel order {order_id}"):
            cur = await self._execute(_Q.cancel_order, (updated_at, order_id))
            if cur.rowcount == 1:
                return
            status = await self._status(order_id)
        if status is None:
            raise OrderNotFoundError(f"no order with id {order_id}")
        raise OrderConflictError(f"order {order_id} is {status.value}, not active")

    async def delete_order(self, order_id: int) -> None:
        """Remove a ``PENDING`` order (no-op if absent; conflict if it was accepted)."""
        with _mapped(PersistenceError, f"could not delete order {order_id}"):
            cur = await self._execute(_Q.delete_order, (order_id,))
            if cur.rowcount == 1:
                return
            status = await self._status(order_id)
        if status is not None:
            raise OrderConflictError(f"order {order_id} is {status.value}; only PENDING orders are deleted")

    async def record_trades(self, trades: Sequence[TradeRecord]) -> None:
        """Insert trades; :class:`~tradebook.DuplicateOrderError` on a taken trade id (then none is stored)."""
        rows = [CODEC.trade_row(trade) for trade in trades]
        with _mapped(PersistenceError, "could not store the trades"):
            await self._insert_all(_TRADES, _INSERT_TRADE_ARRAYS, rows, "trade")

    async def add_wallet_ops(self, ops: Sequence[WalletOp]) -> None:
        """Queue wallet operations in the outbox (payload as ``jsonb``); all of them or none."""
        rows = [CODEC.op_row(op) for op in ops]
        with _mapped(PersistenceError, "could not store the wallet operations"):
            await self._insert_all(_OPS, _INSERT_OP_ARRAYS, rows, "wallet operation")

    async def mark_wallet_ops_done(self, op_ids: Sequence[int]) -> None:
        """Take applied operations out of the outbox when the unit commits.

        Staged like the memory adapter's: until the commit, the operations
        still count as stored (adding one of their ids again is a duplicate).
        """
        self._done.update(int(op_id) for op_id in op_ids)

    async def _commit(self) -> None:
        conn = self._conn
        if not self._begun:
            if self._done:  # nothing else to commit: one autocommit statement
                await self._cur.execute(_delete_ops(self._done))
            return
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            # A statement failed (and the caller went on): PostgreSQL can only roll back.
            await self._cur.execute(_ROLLBACK)
            raise PersistenceError("a statement of the transaction failed; it was rolled back")
        if self._done:
            await self._cur.execute(_delete_ops(self._done) + b"; COMMIT")
        else:
            await conn.commit()

    async def _rollback(self) -> None:
        # Not conn.rollback(): that also deallocates the connection's prepared statements,
        # which survive a ROLLBACK (a refused duplicate would cost their re-preparation).
        if self._begun and self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await self._cur.execute(_ROLLBACK)


class _PostgresTransaction:
    """``async with repo.transaction() as uow``: one pooled connection from ``BEGIN`` to ``COMMIT``."""

    __slots__ = ("_conn", "_repo", "_uow")

    def __init__(self, repo: PostgresOrderRepository) -> None:
        self._repo = repo
        self._conn: _Conn | None = None
        self._uow: PostgresUnitOfWork | None = None

    async def __aenter__(self) -> PostgresUnitOfWork:
        self._repo._check_open()
        with _mapped(PersistenceError, "could not start a transaction"):
            self._conn = conn = await self._repo._pool.getconn()
        self._uow = uow = PostgresUnitOfWork(conn)
        return uow

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, uow = self._conn, self._uow
        assert conn is not None and uow is not None
        try:
            if exc_type is None:
                with _mapped(PersistenceError, "the transaction failed and was rolled back"):
                    await uow._commit()
            else:
                # On a broken connection the server rolled back already, and the pool replaces it.
                with suppress(psycopg.Error):
                    await uow._rollback()
        finally:
            # A connection still in a transaction or a query (a cancelled commit) is rolled back
            # or discarded by the pool.
            await self._repo._pool.putconn(conn)


class PostgresOrderRepository:
    """An :class:`~tradebook.oms.OrderRepository` in PostgreSQL; open it with :meth:`open`.

    Each transaction holds one pooled connection from ``BEGIN`` to ``COMMIT``;
    reads take a connection for one statement (autocommit) and see committed
    data only. Transactions and reads run side by side.
    """

    def __init__(self, pool: _Pool, schema: str) -> None:
        """Wrap an open pool whose connections use ``schema`` (prefer :meth:`open`)."""
        self._pool = pool
        #: The PostgreSQL schema the repository works in.
        self.schema = schema
        self._closed = False

    @classmethod
    async def open(
        cls, dsn: str, *, schema: str = "public", min_size: int = 1, max_size: int = 10
    ) -> PostgresOrderRepository:
        """Migrate ``schema`` (creating it if missing) and open a pool of ``min_size..max_size`` connections.

        Raises :class:`~tradebook.PersistenceError` when the database cannot be reached.
        """
        _check_sizes(min_size, max_size)
        with _mapped(PersistenceError, "cannot open the PostgreSQL order repository"):
            pool = await _open_pool(dsn, schema, min_size, max_size, "tradebook-orders")
        return cls(pool, schema)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the repository is closed")

    def transaction(self) -> AbstractAsyncContextManager[PostgresUnitOfWork]:
        """A unit of work on one connection; it commits when the block ends without an exception.

        Transactions run side by side, each on its own connection, isolated by
        PostgreSQL (READ COMMITTED); the service never has two of them write the
        same row.
        """
        return _PostgresTransaction(self)

    async def _fetch(self, query: sql.SQL | sql.Composed | str, params: Sequence[Any] = ()) -> list[TupleRow]:
        self._check_open()
        with _mapped(PersistenceError, "could not read from PostgreSQL"):
            return await _fetch(self._pool, query, params)

    async def get_order(self, order_id: int) -> OrderRecord | None:
        """The order with this id, or ``None``."""
        rows = await self._fetch(_Q.get_order, (order_id,))
        return CODEC.order(rows[0]) if rows else None

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> OrderRecord | None:
        """The user's order with this client order id, or ``None``."""
        rows = await self._fetch(_Q.get_order_by_client_id, (user_id, client_order_id))
        return CODEC.order(rows[0]) if rows else None

    async def list_orders(self, user_id: str, query: OrderQuery = OrderQuery()) -> Page[OrderRecord]:  # noqa: B008
        """A user's orders matching ``query``, newest (highest id) first."""
        self._check_open()
        statement, params = _Q.list_orders(user_id, query)
        return page_of([CODEC.order(row) for row in await self._fetch(statement, params)], query.limit)

    async def active_orders(self, symbol: str) -> list[OrderRecord]:
        """The symbol's live orders (``OPEN``, ``PARTIALLY_FILLED``, ``UNTRIGGERED``) in ``sequence`` order."""
        return [CODEC.order(row) for row in await self._fetch(_Q.active_orders, (symbol,))]

    async def pending_orders(self) -> list[OrderRecord]:
        """Orders still ``PENDING``, by id."""
        return [CODEC.order(row) for row in await self._fetch(_Q.pending_orders)]

    async def list_trades(
        self, *, symbol: str | None = None, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[TradeRecord]:
        """Trades newest first, by symbol and/or a user on either side."""
        self._check_open()
        statement, params = _Q.list_trades(symbol, user_id, limit, cursor)
        return page_of([CODEC.trade(row) for row in await self._fetch(statement, params)], limit)

    async def pending_wallet_ops(self) -> list[WalletOp]:
        """Outbox operations not yet marked done, in id order."""
        rows = await self._fetch("SELECT id, symbol, kind, payload::text FROM wallet_ops ORDER BY id")
        return [WalletOp.from_payload(row[0], row[1], row[2], row[3]) for row in rows]

    async def last_ids(self) -> tuple[int, int, int, int]:
        """The largest order id, trade id, sequence and wallet-op id stored (0 when none)."""
        rows = await self._fetch(_Q.last_ids)
        order_id, trade_id, sequence, op_id = rows[0]
        return int(order_id), int(trade_id), int(sequence), int(op_id)

    async def close(self) -> None:
        """Close the pool (idempotent); the repository is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()
