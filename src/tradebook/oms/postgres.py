"""PostgreSQL adapters: an order repository and a ledger wallet on psycopg 3 with a connection pool.

Needs the ``postgres`` extra (``pip install "tradebook[postgres]"``). Both
classes open a :class:`psycopg_pool.AsyncConnectionPool` on one PostgreSQL
schema and behave exactly like the memory adapters (same results, same
exceptions)::

    repo = await PostgresOrderRepository.open("postgresql://app@db/trading", schema="tradebook")
    wallet = await PostgresWallet.open("postgresql://app@db/trading", schema="tradebook")
    async with repo.transaction() as uow:  # one pooled connection, one transaction
        await uow.create_order(order)
    await repo.close()
    await wallet.close()

Opening applies the versioned SQL migrations shipped in
``tradebook/oms/migrations/postgres/`` (recorded in ``schema_migrations``) under
a transaction-scoped advisory lock, so processes starting together apply each
migration once. One migration set holds the tables of both classes, so a
repository and a wallet may share a schema (or not).

Decimals are stored as ``NUMERIC`` (exact), timestamps as ``timestamptz`` (read
back in UTC). Lost connections and other operational failures surface as
:class:`~tradebook.PersistenceError` from the repository and
:class:`~tradebook.WalletUnavailableError` from the wallet, with the psycopg
error chained as the cause.

The module also has the helpers behind ``tradebook db``: :func:`migrate`,
:func:`migration_status`, :func:`refresh_statistics` and :func:`health_report`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from types import TracebackType
from typing import Any

try:
    import psycopg
    from psycopg import sql
    from psycopg.rows import TupleRow
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - exercised by the CLI tests in a subprocess-free way
    raise ModuleNotFoundError(
        'tradebook.oms.postgres needs the postgres extra: pip install "tradebook[postgres]"', name=exc.name
    ) from exc

from ..enums import OrderStatus, OrderType, Side, TimeInForce
from ..errors import (
    DuplicateOrderError,
    InsufficientBalanceError,
    OrderConflictError,
    OrderNotFoundError,
    PersistenceError,
    TradebookError,
    WalletUnavailableError,
)
from ._paging import check_limit, decode_cursor, encode_cursor
from .memory import _amount
from .models import Balance, OrderQuery, OrderRecord, Page, Reservation, Settlement, TradeRecord, WalletOp

__all__ = [
    "HealthReport",
    "IndexUsage",
    "Migration",
    "PostgresOrderRepository",
    "PostgresUnitOfWork",
    "PostgresWallet",
    "SlowStatement",
    "TableHealth",
    "health_report",
    "migrate",
    "migration_status",
    "migrations",
    "refresh_statistics",
]

_Conn = psycopg.AsyncConnection[TupleRow]
_Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]

_ZERO = Decimal(0)
# pg_advisory_xact_lock(int4, int4): a fixed class for tradebook migrations, and the schema.
_LOCK_CLASS = 0x7462  # "tb"
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ACTIVE = sql.SQL("status IN ('OPEN', 'PARTIALLY_FILLED')")

# -- migrations ------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file of ``tradebook/oms/migrations/postgres/``."""

    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """The shipped PostgreSQL migrations, in version order (read once from the package data)."""
    folder = resources.files("tradebook.oms").joinpath("migrations").joinpath("postgres")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match is not None:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"the PostgreSQL migrations are not numbered 1..n: {versions}")
    return tuple(found)


def _lock_key(schema: str) -> int:
    """The schema as a signed 32-bit advisory-lock key (schemas migrate independently)."""
    key = zlib.crc32(schema.encode("utf-8"))
    return key - (1 << 32) if key >= 1 << 31 else key


async def _schema_exists(conn: _Conn, schema: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    return await cur.fetchone() is not None


async def _table_exists(conn: _Conn, schema: str, table: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    )
    return await cur.fetchone() is not None


async def _apply_migrations(conn: _Conn, schema: str) -> list[int]:
    """Create the schema if missing and apply the migrations it lacks, in one transaction.

    A transaction-scoped advisory lock serialises concurrent callers: the
    second waits, then finds everything applied.
    """
    ident = sql.Identifier(schema)
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, _lock_key(schema)))
        # Checked, not IF NOT EXISTS: CREATE SCHEMA needs a privilege an existing schema does not.
        if not await _schema_exists(conn, schema):
            await conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
        await conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(ident))
        if not await _table_exists(conn, schema, "schema_migrations"):
            await conn.execute(
                "CREATE TABLE schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cur.fetchall()}
        for migration in migrations():
            if migration.version in done:
                continue
            # No parameters: sent as one simple query, so a file may hold many statements.
            await conn.execute(migration.sql.encode("utf-8"))
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name)
            )
            applied.append(migration.version)
    return applied


# -- errors and pools --------------------------------------------------------------


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


# -- the order repository ------------------------------------------------------------

_ORDER_COLUMNS = sql.SQL(
    "id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity, status,"
    " created_at, updated_at, client_order_id, post_only, sequence"
)
_TRADE_COLUMNS = sql.SQL(
    "id, symbol, price, quantity, buy_order_id, sell_order_id, buyer_id, seller_id, taker_side, created_at"
)


def _order(row: TupleRow) -> OrderRecord:
    return OrderRecord(
        id=row[0],
        user_id=row[1],
        symbol=row[2],
        side=Side(row[3]),
        type=OrderType(row[4]),
        time_in_force=TimeInForce(row[5]),
        price=row[6],
        quantity=row[7],
        filled_quantity=row[8],
        status=OrderStatus(row[9]),
        created_at=row[10],
        updated_at=row[11],
        client_order_id=row[12],
        post_only=row[13],
        sequence=row[14],
    )


def _trade(row: TupleRow) -> TradeRecord:
    return TradeRecord(
        id=row[0],
        symbol=row[1],
        price=row[2],
        quantity=row[3],
        buy_order_id=row[4],
        sell_order_id=row[5],
        buyer_id=row[6],
        seller_id=row[7],
        taker_side=Side(row[8]),
        created_at=row[9],
    )


def _page(rows: list[TupleRow], limit: int, build: Any) -> Page[Any]:
    items = [build(row) for row in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return Page(items, next_cursor)


def _list_orders_query(user_id: str, query: OrderQuery) -> tuple[sql.Composed, list[Any]]:
    """The statement and parameters of :meth:`PostgresOrderRepository.list_orders`.

    Status and side go in as literals (they are enum values): the planner then
    proves partial-index predicates (a user's open orders) even for a cached
    generic plan. Fetches one row past the page to know whether another follows.
    """
    limit = check_limit(query.limit)
    before = decode_cursor(query.cursor)
    where: list[sql.Composable] = [sql.SQL("user_id = %s")]
    params: list[Any] = [user_id]
    if before is not None:
        where.append(sql.SQL("id < %s"))
        params.append(before)
    if query.symbol is not None:
        where.append(sql.SQL("symbol = %s"))
        params.append(query.symbol)
    if query.status is not None:
        where.append(sql.SQL("status = {}").format(sql.Literal(OrderStatus(query.status).value)))
    if query.side is not None:
        where.append(sql.SQL("side = {}").format(sql.Literal(Side(query.side).value)))
    if query.since is not None:
        where.append(sql.SQL("created_at >= %s"))
        params.append(query.since)
    if query.until is not None:
        where.append(sql.SQL("created_at < %s"))
        params.append(query.until)
    statement = sql.SQL("SELECT {} FROM orders WHERE {} ORDER BY id DESC LIMIT {}").format(
        _ORDER_COLUMNS, sql.SQL(" AND ").join(where), sql.Literal(limit + 1)
    )
    return statement, params


# The statements a unit of work runs, as plain text: psycopg caches their conversion
# and prepares them on the server after a few uses.
_INSERT_ORDER = (
    "INSERT INTO orders (" + _ORDER_COLUMNS.as_string() + ")"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_ORDER_EXISTS = "SELECT 1 FROM orders WHERE id = %s"
_ORDER_STATUS = "SELECT status FROM orders WHERE id = %s"
_UPDATE_ORDER = (
    "UPDATE orders SET status = %s, filled_quantity = %s, updated_at = %s,"
    " sequence = coalesce(%s::bigint, sequence) WHERE id = %s"
)
_CANCEL_ORDER = "UPDATE orders SET status = 'CANCELLED', updated_at = %s WHERE id = %s AND " + _ACTIVE.as_string()
_DELETE_ORDER = "DELETE FROM orders WHERE id = %s AND status = 'PENDING'"
# Whole batches in one statement each. ON CONFLICT DO NOTHING also skips a repeat
# of an id within the batch; RETURNING tells which rows went in. A batch of up to
# _MAX_VALUES_ROWS rows is a multi-row VALUES (one prepared statement per size; its
# parameters are scalars, about ten times cheaper for psycopg to dump than arrays),
# a larger one unnest()s one array per column.
_MAX_VALUES_ROWS = 32
_TRADES = ("trades", _TRADE_COLUMNS.as_string(), "(" + ", ".join(["%s"] * 10) + ")")
_TRADE_ARRAYS = (
    "%s::bigint[], %s::text[], %s::numeric[], %s::numeric[], %s::bigint[], %s::bigint[],"
    " %s::text[], %s::text[], %s::text[], %s::timestamptz[]"
)
_OPS = ("wallet_ops", "id, symbol, kind, payload", "(%s, %s, %s, %s::jsonb)")
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
# The repository's reads.
_GET_ORDER = "SELECT " + _ORDER_COLUMNS.as_string() + " FROM orders WHERE id = %s"
_GET_ORDER_BY_CLIENT_ID = (
    "SELECT " + _ORDER_COLUMNS.as_string() + " FROM orders WHERE user_id = %s AND client_order_id = %s"
)
_ACTIVE_ORDERS = (
    "SELECT " + _ORDER_COLUMNS.as_string() + " FROM orders"
    " WHERE symbol = %s AND " + _ACTIVE.as_string() + " ORDER BY coalesce(sequence, 0), id"
)
_PENDING_ORDERS = "SELECT " + _ORDER_COLUMNS.as_string() + " FROM orders WHERE status = 'PENDING' ORDER BY id"


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
            cur = await self._execute(
                _INSERT_ORDER,
                (
                    order.id,
                    order.user_id,
                    order.symbol,
                    Side(order.side).value,
                    OrderType(order.type).value,
                    TimeInForce(order.time_in_force).value,
                    order.price,
                    order.quantity,
                    order.filled_quantity,
                    OrderStatus(order.status).value,
                    order.created_at,
                    order.updated_at,
                    order.client_order_id,
                    order.post_only,
                    order.sequence,
                ),
            )
            if cur.rowcount == 1:
                return
            # The unique indexes refused the row; say which one.
            cur = await self._execute(_ORDER_EXISTS, (order.id,))
            taken_id = await cur.fetchone() is not None
        if taken_id:
            raise DuplicateOrderError(f"order id {order.id} already exists")
        raise DuplicateOrderError(
            f"user {order.user_id!r} already has an order with client_order_id {order.client_order_id!r}"
        )

    async def _status(self, order_id: int) -> OrderStatus | None:
        cur = await self._execute(_ORDER_STATUS, (order_id,))
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
    ) -> None:
        """Set an order's status and filled quantity (and ``sequence`` when given)."""
        with _mapped(PersistenceError, f"could not update order {order_id}"):
            cur = await self._execute(
                _UPDATE_ORDER, (OrderStatus(status).value, filled_quantity, updated_at, sequence, order_id)
            )
        if cur.rowcount == 0:
            raise OrderNotFoundError(f"no order with id {order_id}")

    async def cancel_order(self, order_id: int, *, updated_at: datetime) -> None:
        """Mark an active order ``CANCELLED`` (not found / conflict otherwise)."""
        with _mapped(PersistenceError, f"could not cancel order {order_id}"):
            cur = await self._execute(_CANCEL_ORDER, (updated_at, order_id))
            if cur.rowcount == 1:
                return
            status = await self._status(order_id)
        if status is None:
            raise OrderNotFoundError(f"no order with id {order_id}")
        raise OrderConflictError(f"order {order_id} is {status.value}, not active")

    async def delete_order(self, order_id: int) -> None:
        """Remove a ``PENDING`` order (no-op if absent; conflict if it was accepted)."""
        with _mapped(PersistenceError, f"could not delete order {order_id}"):
            cur = await self._execute(_DELETE_ORDER, (order_id,))
            if cur.rowcount == 1:
                return
            status = await self._status(order_id)
        if status is not None:
            raise OrderConflictError(f"order {order_id} is {status.value}; only PENDING orders are deleted")

    async def record_trades(self, trades: Sequence[TradeRecord]) -> None:
        """Insert trades; :class:`~tradebook.DuplicateOrderError` on a taken trade id (then none is stored)."""
        rows = [
            (
                *(t.id, t.symbol, t.price, t.quantity, t.buy_order_id, t.sell_order_id, t.buyer_id, t.seller_id),
                *(Side(t.taker_side).value, t.created_at),
            )
            for t in trades
        ]
        with _mapped(PersistenceError, "could not store the trades"):
            await self._insert_all(_TRADES, _INSERT_TRADE_ARRAYS, rows, "trade")

    async def add_wallet_ops(self, ops: Sequence[WalletOp]) -> None:
        """Queue wallet operations in the outbox (payload as ``jsonb``); all of them or none."""
        rows = [(op.id, op.symbol, op.kind, op.payload()) for op in ops]
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
        rows = await self._fetch(_GET_ORDER, (order_id,))
        return _order(rows[0]) if rows else None

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> OrderRecord | None:
        """The user's order with this client order id, or ``None``."""
        rows = await self._fetch(_GET_ORDER_BY_CLIENT_ID, (user_id, client_order_id))
        return _order(rows[0]) if rows else None

    async def list_orders(self, user_id: str, query: OrderQuery = OrderQuery()) -> Page[OrderRecord]:  # noqa: B008
        """A user's orders matching ``query``, newest (highest id) first."""
        self._check_open()
        statement, params = _list_orders_query(user_id, query)
        return _page(await self._fetch(statement, params), query.limit, _order)

    async def active_orders(self, symbol: str) -> list[OrderRecord]:
        """The symbol's ``OPEN`` and ``PARTIALLY_FILLED`` orders in priority (``sequence``) order."""
        rows = await self._fetch(_ACTIVE_ORDERS, (symbol,))
        return [_order(row) for row in rows]

    async def pending_orders(self) -> list[OrderRecord]:
        """Orders still ``PENDING``, by id."""
        rows = await self._fetch(_PENDING_ORDERS)
        return [_order(row) for row in rows]

    async def list_trades(
        self, *, symbol: str | None = None, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[TradeRecord]:
        """Trades newest first, by symbol and/or a user on either side."""
        self._check_open()
        limit = check_limit(limit)
        before = decode_cursor(cursor)
        where: list[sql.Composable] = [sql.SQL("true")]
        params: list[Any] = []
        if before is not None:
            where.append(sql.SQL("id < %s"))
            params.append(before)
        if symbol is not None:
            where.append(sql.SQL("symbol = %s"))
            params.append(symbol)
        if user_id is not None:
            where.append(sql.SQL("(buyer_id = %s OR seller_id = %s)"))
            params += [user_id, user_id]
        statement = sql.SQL("SELECT {} FROM trades WHERE {} ORDER BY id DESC LIMIT {}").format(
            _TRADE_COLUMNS, sql.SQL(" AND ").join(where), sql.Literal(limit + 1)
        )
        return _page(await self._fetch(statement, params), limit, _trade)

    async def pending_wallet_ops(self) -> list[WalletOp]:
        """Outbox operations not yet marked done, in id order."""
        rows = await self._fetch("SELECT id, symbol, kind, payload::text FROM wallet_ops ORDER BY id")
        return [WalletOp.from_payload(row[0], row[1], row[2], row[3]) for row in rows]

    async def last_ids(self) -> tuple[int, int, int, int]:
        """The largest order id, trade id, sequence and wallet-op id stored (0 when none)."""
        rows = await self._fetch(
            "SELECT (SELECT coalesce(max(id), 0) FROM orders),"
            " (SELECT coalesce(max(id), 0) FROM trades),"
            " (SELECT coalesce(max(sequence), 0) FROM orders),"
            " (SELECT coalesce(max(id), 0) FROM wallet_ops)"
        )
        order_id, trade_id, sequence, op_id = rows[0]
        return int(order_id), int(trade_id), int(sequence), int(op_id)

    async def close(self) -> None:
        """Close the pool (idempotent); the repository is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()


# -- the wallet ----------------------------------------------------------------------


_DEPOSIT = (
    "INSERT INTO wallet_balances (user_id, asset, available, reserved) VALUES (%s, %s, %s, 0)"
    " ON CONFLICT (user_id, asset) DO UPDATE SET available = wallet_balances.available + excluded.available"
    " RETURNING available"
)
# The functions of migration 0003: each operation is one autocommit statement.
_RESERVE = "SELECT ok, held_user_id, held_asset, amount FROM tb_reserve(%s, %s, %s::numeric, %s)"
_RELEASE = "SELECT tb_release(%s, %s::numeric)"
_SETTLE = "SELECT tb_settle(%s::bigint, %s, %s, %s, %s, %s, %s, %s::numeric, %s::numeric, %s::numeric, %s::numeric, %s)"
_RESERVED = "SELECT amount FROM wallet_reservations WHERE ref = %s"
_BALANCES = "SELECT asset, available, reserved FROM wallet_balances WHERE user_id = %s ORDER BY asset"
_TOTALS = "SELECT asset, sum(available + reserved) FROM wallet_balances GROUP BY asset ORDER BY asset"
# SQLSTATEs tb_settle raises for a settlement it refuses (the statement rolls back).
_CANNOT_PAY, _CANNOT_DELIVER, _FEES_WITHOUT_ACCOUNT = "TB001", "TB002", "TB003"


class PostgresWallet:
    """A :class:`~tradebook.oms.WalletClient` ledger in PostgreSQL, with deposits for set-up.

    Matches :class:`~tradebook.oms.MemoryWallet` call for call. Each method is
    one statement in autocommit, hence one round trip and one transaction:
    reserve, release and settle call the server-side functions of migration
    0003 (``tb_reserve``, ``tb_release``, ``tb_settle``). Balances are changed
    by conditional or row-locking updates, so concurrent reserves never
    overdraw; settlements are recorded by trade id in the same transaction as
    their movements, so each applies once. Reservations are locked before
    balances, each in key order, so concurrent settlements cannot deadlock.
    """

    def __init__(self, pool: _Pool, schema: str) -> None:
        """Wrap an open pool whose connections use ``schema`` (prefer :meth:`open`)."""
        self._pool = pool
        #: The PostgreSQL schema the wallet works in.
        self.schema = schema
        self._closed = False

    @classmethod
    async def open(cls, dsn: str, *, schema: str = "public", min_size: int = 1, max_size: int = 10) -> PostgresWallet:
        """Migrate ``schema`` (creating it if missing) and open a pool of ``min_size..max_size`` connections.

        Raises :class:`~tradebook.WalletUnavailableError` when the database cannot be reached.
        """
        _check_sizes(min_size, max_size)
        with _mapped(WalletUnavailableError, "cannot open the PostgreSQL wallet"):
            pool = await _open_pool(dsn, schema, min_size, max_size, "tradebook-wallet")
        return cls(pool, schema)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the wallet is closed")

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[TupleRow]:
        self._check_open()
        with _mapped(WalletUnavailableError, "the wallet database failed"):
            return await _fetch(self._pool, query, params)

    async def deposit(self, user_id: str, asset: str, amount: Decimal | int | str) -> None:
        """Credit ``amount`` of ``asset`` to the user's available balance."""
        value = _amount(amount)
        await self._fetch(_DEPOSIT, (user_id, asset, value))

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Set ``amount`` aside under ``ref``; see :meth:`~tradebook.oms.WalletClient.reserve`.

        A refused reservation changes nothing (no empty balance row either).
        """
        value = _amount(amount)
        ((ok, held_user_id, held_asset, held),) = await self._fetch(_RESERVE, (user_id, asset, value, ref))
        if ok:
            return Reservation(ref, held_user_id, held_asset, held)
        raise InsufficientBalanceError(f"user {user_id!r} has {held} {asset} available, needs {value}")

    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        """Return part or all of reservation ``ref`` to available; returns what was released."""
        value: Decimal | None = None
        if amount is not None:
            try:
                value = _amount(amount, allow_zero=True)
            except (TypeError, ValueError):
                # Like the memory wallet: an unknown ref releases nothing, whatever the amount.
                if not await self._fetch(_RESERVED, (ref,)):
                    return _ZERO
                raise
        ((released,),) = await self._fetch(_RELEASE, (ref, value))
        return Decimal(released)

    async def reserved(self, ref: str) -> Decimal:
        """What reservation ``ref`` still holds (0 when unknown)."""
        rows = await self._fetch(_RESERVED, (ref,))
        return _ZERO if not rows else Decimal(rows[0][0])

    async def settle(self, settlement: Settlement) -> None:
        """Apply one trade's movements, once per ``trade_id``, in one transaction with the record of it."""
        s = settlement
        try:
            await self._fetch(
                _SETTLE,
                (
                    *(s.trade_id, s.base, s.quote, s.buyer_id, s.seller_id, s.buy_ref, s.sell_ref),
                    *(s.quantity, s.notional, s.buyer_fee, s.seller_fee, s.fee_account),
                ),
            )
        except psycopg.DatabaseError as exc:
            if exc.sqlstate == _CANNOT_PAY:
                raise InsufficientBalanceError(f"reservation {s.buy_ref!r} cannot pay {s.notional} {s.quote}") from None
            if exc.sqlstate == _CANNOT_DELIVER:
                raise InsufficientBalanceError(
                    f"reservation {s.sell_ref!r} cannot deliver {s.quantity} {s.base}"
                ) from None
            if exc.sqlstate == _FEES_WITHOUT_ACCOUNT:
                raise ValueError("a settlement with fees needs a fee_account") from None
            raise

    async def balances(self, user_id: str) -> dict[str, Balance]:
        """The user's balances by asset (assets never touched are absent)."""
        rows = await self._fetch(_BALANCES, (user_id,))
        return {row[0]: Balance(row[0], row[1], row[2]) for row in rows}

    async def totals(self) -> dict[str, Decimal]:
        """Every asset's total over all users (available plus reserved): conserved by trading."""
        rows = await self._fetch(_TOTALS)
        return {row[0]: row[1] for row in rows}

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self._pool.close()


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
    status: dict[int, tuple[int, str, datetime | None]] = {
        m.version: (m.version, m.name, recorded[m.version][1] if m.version in recorded else None) for m in migrations()
    }
    for version, (name, applied_at) in recorded.items():
        status.setdefault(version, (version, name, applied_at))
    return [status[v] for v in sorted(status)]


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


@dataclass(frozen=True)
class IndexUsage:
    """How often one index was scanned since the statistics were last reset."""

    table: str
    index: str
    scans: int
    size_bytes: int
    unique: bool


@dataclass(frozen=True)
class TableHealth:
    """A table's live and dead rows (a bloat estimate) and its size."""

    table: str
    live_rows: int
    dead_rows: int
    #: dead / (live + dead): the share of the heap that vacuum has yet to reclaim.
    dead_ratio: float
    table_bytes: int
    total_bytes: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None


@dataclass(frozen=True)
class SlowStatement:
    """One statement from ``pg_stat_statements``, slowest mean time first."""

    query: str
    calls: int
    mean_ms: float
    total_ms: float
    rows: int


@dataclass(frozen=True)
class HealthReport:
    """What :func:`health_report` found about one schema.

    ``unused_indexes`` are the indexes never scanned that do not enforce
    uniqueness (dropping one saves writes; unique ones are constraints).
    ``slow_statements`` is ``None`` when ``pg_stat_statements`` cannot be read,
    and ``statements_note`` says why.
    """

    schema: str
    server_version: str
    indexes: list[IndexUsage]
    unused_indexes: list[str]
    tables: list[TableHealth]
    slow_statements: list[SlowStatement] | None
    statements_note: str | None

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (timestamps as ISO-8601 text)."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        data: dict[str, Any] = plain(asdict(self))
        return data


_INDEX_USAGE = """
SELECT s.relname, s.indexrelname, s.idx_scan, pg_relation_size(s.indexrelid), i.indisunique
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname = %s
ORDER BY s.relname, s.indexrelname
"""
_TABLE_HEALTH = """
SELECT relname, n_live_tup, n_dead_tup, pg_relation_size(relid), pg_total_relation_size(relid),
       last_vacuum, last_autovacuum
FROM pg_stat_user_tables
WHERE schemaname = %s
ORDER BY relname
"""


async def _slow_statements(conn: _Conn, limit: int) -> tuple[list[SlowStatement] | None, str | None]:
    cur = await conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    )
    row = await cur.fetchone()
    if row is None:
        return None, (
            "pg_stat_statements is not available: add it to shared_preload_libraries and run "
            "CREATE EXTENSION pg_stat_statements to see the slowest statements"
        )
    view = sql.Identifier(row[0], "pg_stat_statements")
    # PostgreSQL 13 renamed total_time/mean_time to total_exec_time/mean_exec_time.
    new_names = conn.info.server_version >= 130000
    mean, total = ("mean_exec_time", "total_exec_time") if new_names else ("mean_time", "total_time")
    query = sql.SQL(
        "SELECT query, calls, {mean}, {total}, rows FROM {view}"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY {mean} DESC LIMIT %s"
    ).format(mean=sql.Identifier(mean), total=sql.Identifier(total), view=view)
    try:
        cur = await conn.execute(query, (limit,))
    except psycopg.DatabaseError as exc:
        if conn.broken:
            raise
        # Typically "must be loaded via shared_preload_libraries", or a missing privilege.
        return None, f"pg_stat_statements is installed but cannot be read: {_first_line(exc)}"
    statements = [
        SlowStatement(query=r[0] or "", calls=int(r[1]), mean_ms=float(r[2]), total_ms=float(r[3]), rows=int(r[4]))
        for r in await cur.fetchall()
    ]
    return statements, None


async def health_report(dsn: str, schema: str = "public", *, statements: int = 10) -> HealthReport:
    """Index usage, unused indexes, table bloat estimates and (when available) the slowest statements.

    Index scans and row counts come from the cumulative statistics views
    (``pg_stat_user_indexes``, ``pg_stat_user_tables``), which PostgreSQL
    updates with a short delay. The slowest ``statements`` come from
    ``pg_stat_statements`` when that extension is installed and loaded.
    """
    with _mapped(PersistenceError, "cannot read the PostgreSQL statistics"):
        async with await _connect(dsn) as conn:
            cur = await conn.execute(_INDEX_USAGE, (schema,))
            indexes = [
                IndexUsage(table=r[0], index=r[1], scans=int(r[2] or 0), size_bytes=int(r[3]), unique=bool(r[4]))
                for r in await cur.fetchall()
            ]
            cur = await conn.execute(_TABLE_HEALTH, (schema,))
            tables = []
            for r in await cur.fetchall():
                live, dead = int(r[1] or 0), int(r[2] or 0)
                tables.append(
                    TableHealth(
                        table=r[0],
                        live_rows=live,
                        dead_rows=dead,
                        dead_ratio=dead / (live + dead) if live + dead else 0.0,
                        table_bytes=int(r[3]),
                        total_bytes=int(r[4]),
                        last_vacuum=r[5],
                        last_autovacuum=r[6],
                    )
                )
            slow, note = await _slow_statements(conn, statements)
            version = str(conn.info.parameter_status("server_version") or conn.info.server_version)
    unused = [f"{i.table}.{i.index}" for i in indexes if i.scans == 0 and not i.unique]
    return HealthReport(schema, version, indexes, unused, tables, slow, note)
