"""SQLite adapters: an order repository and a ledger wallet in one file, standard library only.

:class:`SQLiteOrderRepository` and :class:`SQLiteWallet` behave exactly like
:class:`~tradebook.oms.MemoryOrderRepository` and
:class:`~tradebook.oms.MemoryWallet`, but keep everything in an SQLite file, so
a restarted process finds its orders, trades, outbox and balances again::

    repo = await SQLiteOrderRepository.open("tradebook.db")
    wallet = await SQLiteWallet.open("tradebook.db")  # the same file is fine
    ...
    await wallet.close()
    await repo.close()

The file runs in WAL mode with ``synchronous=NORMAL``: a committed transaction
survives the process being killed (only a power cut may lose the last few).
Statements run on the event loop's thread: in WAL mode a write or a commit
takes microseconds (no fsync per commit), much less than a trip to a worker
thread and back, which measured as the bottleneck (about 1,000 placements/s
through threads against about 3,000 inline). The one case where SQLite would
wait, a write lock held by another process, is detected at once (no busy
timeout inline) and that call is redone on the connection's own thread with
the busy timeout, so the event loop never blocks on a lock. WAL checkpoints
run inline at commit (SQLite's automatic ones, about every 4 MB written).
Within a process, a repository and a wallet on one file share one writing
connection and its lock, so their writes queue instead of colliding; the
repository reads through a second connection, so readers only ever see
committed data. The schema is versioned: the
SQL files under ``tradebook/oms/migrations/sqlite/`` are applied in order when
either class opens a file (or by :func:`migrate`), each once, and recorded in
``schema_migrations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import functools
import os
import re
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from ..enums import OrderStatus, OrderType, Side, TimeInForce
from ..errors import (
    DuplicateOrderError,
    InsufficientBalanceError,
    InvalidRequestError,
    OrderConflictError,
    OrderNotFoundError,
    PersistenceError,
    TradebookError,
    WalletUnavailableError,
)
from ._money import MONEY_CONTEXT
from ._paging import check_limit, decode_cursor, page_of
from .memory import _amount
from .models import Balance, OrderQuery, OrderRecord, Page, Reservation, Settlement, TradeRecord, WalletOp

__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "SQLiteOrderRepository",
    "SQLiteUnitOfWork",
    "SQLiteWallet",
    "migrate",
    "migration_status",
]

T = TypeVar("T")

#: Seconds a connection waits for another one's write lock before giving up.
DEFAULT_BUSY_TIMEOUT = 5.0

_ZERO = Decimal(0)
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_ACTIVE_SQL = "('OPEN', 'PARTIALLY_FILLED')"


# --------------------------------------------------------------------------- values


def _text(value: Decimal) -> str:
    """A decimal as the exact text SQLite stores (``Decimal(text) == value``, same exponent)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a Decimal, not {type(value).__name__}")


def _timestamp(value: datetime) -> str:
    """A timezone-aware datetime as ISO-8601 UTC text with microseconds (sorts like the instants)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"timestamp {value!r} must be timezone-aware")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _datetime(text: str) -> datetime:
    """Stored timestamp text back as a timezone-aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _storable_id(value: int) -> bool:
    """Whether ``value`` fits an SQLite INTEGER (an id outside that range cannot be stored)."""
    return isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX


def _checked_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not _storable_id(value):
        raise ValueError(f"{what} {value} does not fit a signed 64-bit integer")
    return value


_ORDER_COLUMNS = (
    "id, user_id, symbol, side, type, time_in_force, price, quantity, filled_quantity, status,"
    " created_at, updated_at, client_order_id, post_only, sequence"
)
_TRADE_COLUMNS = "id, symbol, price, quantity, buy_order_id, sell_order_id, buyer_id, seller_id, taker_side, created_at"


def _order_row(order: OrderRecord) -> tuple[object, ...]:
    return (
        _checked_id(order.id, "order id"),
        order.user_id,
        order.symbol,
        Side(order.side).value,
        OrderType(order.type).value,
        TimeInForce(order.time_in_force).value,
        None if order.price is None else _text(order.price),
        _text(order.quantity),
        _text(order.filled_quantity),
        OrderStatus(order.status).value,
        _timestamp(order.created_at),
        _timestamp(order.updated_at),
        order.client_order_id,
        1 if order.post_only else 0,
        None if order.sequence is None else _checked_id(order.sequence, "sequence"),
    )


def _order(row: Sequence[Any]) -> OrderRecord:
    return OrderRecord(
        id=row[0],
        user_id=row[1],
        symbol=row[2],
        side=Side(row[3]),
        type=OrderType(row[4]),
        time_in_force=TimeInForce(row[5]),
        price=None if row[6] is None else Decimal(row[6]),
        quantity=Decimal(row[7]),
        filled_quantity=Decimal(row[8]),
        status=OrderStatus(row[9]),
        created_at=_datetime(row[10]),
        updated_at=_datetime(row[11]),
        client_order_id=row[12],
        post_only=bool(row[13]),
        sequence=row[14],
    )


def _trade_row(trade: TradeRecord) -> tuple[object, ...]:
    return (
        _checked_id(trade.id, "trade id"),
        trade.symbol,
        _text(trade.price),
        _text(trade.quantity),
        _checked_id(trade.buy_order_id, "buy order id"),
        _checked_id(trade.sell_order_id, "sell order id"),
        trade.buyer_id,
        trade.seller_id,
        Side(trade.taker_side).value,
        _timestamp(trade.created_at),
    )


def _trade(row: Sequence[Any]) -> TradeRecord:
    return TradeRecord(
        id=row[0],
        symbol=row[1],
        price=Decimal(row[2]),
        quantity=Decimal(row[3]),
        buy_order_id=row[4],
        sell_order_id=row[5],
        buyer_id=row[6],
        seller_id=row[7],
        taker_side=Side(row[8]),
        created_at=_datetime(row[9]),
    )


# --------------------------------------------------------------------------- migrations


@dataclass(frozen=True)
class _Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The script cut into single statements (``execute`` runs one at a time).

        ``executescript`` would commit the migration's transaction first, so the
        statements are run one by one inside it instead.
        """
        statements: list[str] = []
        start = 0
        for match in re.finditer(";", self.sql):
            candidate = self.sql[start : match.end()]
            if sqlite3.complete_statement(candidate):
                statements.append(candidate.strip())
                start = match.end()
        rest = self.sql[start:]
        if rest.strip():
            statements.append(rest.strip())  # comments only (a no-op), or an error SQLite reports
        return statements


_MIGRATION_FILE = re.compile(r"(\d{4})_(\w+)\.sql")

_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


@functools.cache
def _migrations() -> tuple[_Migration, ...]:
    """The shipped migrations in version order."""
    folder = resources.files("tradebook.oms") / "migrations" / "sqlite"
    found: dict[int, _Migration] = {}
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two SQLite migrations have version {version}")
        found[version] = _Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    if not found:
        raise RuntimeError("the SQLite migrations are missing from the tradebook package")
    return tuple(found[v] for v in sorted(found))


def _apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations ``conn``'s file lacks, in one transaction; their versions.

    ``BEGIN IMMEDIATE`` takes the write lock before ``schema_migrations`` is
    read, so two connections opening one file at once apply each migration once.
    """
    known = _migrations()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SCHEMA_MIGRATIONS)
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        newest = known[-1].version
        if applied and max(applied) > newest:
            raise PersistenceError(
                f"the database has schema version {max(applied)}, newer than this tradebook knows ({newest}): "
                "upgrade tradebook"
            )
        done = []
        for migration in known:
            if migration.version in applied:
                continue
            for statement in migration.statements():
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, _now()),
            )
            done.append(migration.version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done


def _file_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text; in-memory and temporary databases are refused (each connection would get its own)."""
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"an SQLite path must be text, not {type(text).__name__}")
    if text in ("", ":memory:") or text.startswith("file::memory:"):
        raise ValueError("the SQLite adapters need a file path; use the memory adapters for an in-memory store")
    return text


def _is_busy(exc: sqlite3.Error) -> bool:
    """True for "database is locked/busy": another connection holds the lock."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
    text = str(exc)
    return "locked" in text or "busy" in text


def _describe(exc: sqlite3.Error, path: str) -> str:
    detail = str(exc) or type(exc).__name__
    if "file is not a database" in detail:
        return f"{path} is not an SQLite database (or it is encrypted or corrupt): {detail}"
    return f"SQLite error on {path}: {detail}"


def _enable_wal(conn: sqlite3.Connection, busy_timeout: float) -> str:
    """Switch the file to WAL (a no-op when it already is); the journal mode it ends in.

    Changing the journal mode needs an exclusive lock, and SQLite reports
    "database is locked" at once, without its busy handler, when another
    connection is opening the same new file at that moment: so retry until
    the busy timeout.
    """
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while mode != "wal":
        try:
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            continue
        break
    return mode


def _connect(path: str, busy_timeout: float, *, reader: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, ``synchronous=NORMAL``."""
    # check_same_thread off: an inline connection is used on the event loop's thread and, to
    # wait out a lock held by another process, on its own thread; never both at once.
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if reader:
            conn.execute("PRAGMA query_only = ON")
        else:
            mode = _enable_wal(conn, busy_timeout)
            if mode != "wal":
                raise PersistenceError(f"{path} cannot use write-ahead logging (journal mode stays {mode!r})")
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> list[int]:
    """Bring the SQLite file at ``path`` (created if absent) to the newest schema; the versions applied.

    Synchronous, for command-line tools; opening a repository or a wallet does
    the same. Safe to run while other processes use the file. Raises
    :class:`~tradebook.PersistenceError` when the file cannot be migrated.
    """
    text = _file_path(path)
    try:
        conn = _connect(text, busy_timeout, reader=False)
        try:
            return _apply_migrations(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise PersistenceError(_describe(exc, text)) from exc


def migration_status(
    path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> list[tuple[int, str, datetime | None]]:
    """Each migration's ``(version, name, applied_at)``, ``applied_at`` ``None`` when not applied.

    Reads without changing anything (an absent file is not created). Versions
    recorded in the file but unknown to this tradebook (a newer one migrated it)
    are listed too. Raises :class:`~tradebook.PersistenceError` when the file
    cannot be read.
    """
    text = _file_path(path)
    known = _migrations()
    recorded: dict[int, tuple[str, str]] = {}
    if os.path.exists(text):
        try:
            conn = sqlite3.connect(Path(text).resolve().as_uri() + "?mode=ro", timeout=busy_timeout, uri=True)
            try:
                table = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
                ).fetchone()
                if table is not None:
                    for version, name, applied_at in conn.execute(
                        "SELECT version, name, applied_at FROM schema_migrations"
                    ):
                        recorded[version] = (name, applied_at)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise PersistenceError(_describe(exc, text)) from exc
    status: list[tuple[int, str, datetime | None]] = []
    for migration in known:
        entry = recorded.pop(migration.version, None)
        status.append((migration.version, migration.name, None if entry is None else _datetime(entry[1])))
    for version in sorted(recorded):
        name, applied_at = recorded[version]
        status.append((version, name, _datetime(applied_at)))
    return status


# --------------------------------------------------------------------------- connections


class _Connection:
    """One ``sqlite3`` connection, used inline on the event loop, with a thread for waiting on locks.

    Work that goes to the thread queues up there in the order it is submitted, so work submitted
    after a rollback (say, the next ``BEGIN``) runs after it even when the
    coroutine that asked for the rollback was cancelled.
    """

    def __init__(self, path: str, error: type[TradebookError]) -> None:
        self.path = path
        self._error = error
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tradebook-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._inline = False
        self._busy_ms = 0

    @classmethod
    async def open(
        cls,
        path: str,
        *,
        error: type[TradebookError],
        busy_timeout: float,
        reader: bool,
        migrate: bool,
        inline: bool = True,
    ) -> _Connection:
        """Connect on the connection's thread (applying migrations when asked)."""
        self = cls(path, error)

        def connect() -> sqlite3.Connection:
            conn = _connect(path, busy_timeout, reader=reader)
            if migrate:
                try:
                    _apply_migrations(conn)
                except BaseException:
                    conn.close()
                    raise
            return conn

        try:
            self._conn = await self._submit(connect, shield=True)
        except BaseException:
            await self.close()
            raise
        if inline:
            # Statements run on the event loop's thread: in WAL mode with synchronous=NORMAL a
            # write or a commit takes microseconds, far less than a trip to a thread and back.
            # Only a write lock held by another process makes SQLite wait: with no busy timeout
            # it says so at once, and that call is redone on the thread, where waiting is fine.
            self._busy_ms = int(busy_timeout * 1000)
            self._conn.execute("PRAGMA busy_timeout = 0")
            self._inline = True
        return self

    async def _submit(
        self, job: Callable[[], T], *, shield: bool = False, error: type[TradebookError] | None = None
    ) -> T:
        future = asyncio.get_running_loop().run_in_executor(self._executor, job)
        try:
            # A shielded job runs to its end even if the caller is cancelled meanwhile.
            return await (asyncio.shield(future) if shield else future)
        except sqlite3.Error as exc:
            raise (error or self._error)(_describe(exc, self.path)) from exc

    async def run(
        self,
        job: Callable[[sqlite3.Connection], T],
        *,
        shield: bool = False,
        error: type[TradebookError] | None = None,
    ) -> T:
        """Run ``job(connection)`` (inline, or on the thread to wait for a lock held elsewhere).

        ``sqlite3`` errors come back as ``error`` (or the owner's type).
        """
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"the SQLite connection to {self.path} is closed")
        if not self._inline:
            return await self._submit(lambda: job(conn), shield=shield, error=error)
        try:
            return job(conn)
        except sqlite3.Error as exc:
            if not _is_busy(exc):
                raise (error or self._error)(_describe(exc, self.path)) from exc
        # Another process holds the write lock. The job failed at its first statement (BEGIN
        # IMMEDIATE takes the lock before anything is written), so it can run again: on the
        # thread, with the busy timeout.
        busy_ms = self._busy_ms

        def waiting() -> T:
            conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            try:
                return job(conn)
            finally:
                conn.execute("PRAGMA busy_timeout = 0")

        return await self._submit(waiting, shield=shield, error=error)

    async def close(self) -> None:
        """Close the connection (after the work already queued) and let the thread go; idempotent."""
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                with contextlib.suppress(self._error):
                    await self._submit(conn.close, shield=True)
        finally:
            self._executor.shutdown(wait=False)


class _SharedWriter:
    """The one writing connection per database file (and event loop) in this process.

    A repository and a wallet on the same file share it, and its lock: two
    writing connections would make SQLite's write lock bounce between them, and
    the loser of each collision sleeps in SQLite's busy handler (milliseconds)
    while the event loop could have queued its work right behind the winner's.
    """

    def __init__(self, key: str, loop_writers: dict[str, _SharedWriter], conn: _Connection) -> None:
        self.key = key
        self.conn = conn
        self.lock = asyncio.Lock()
        self.owner: asyncio.Task[Any] | None = None  # the task inside a repository transaction
        self._loop_writers = loop_writers
        self._refs = 0

    @classmethod
    async def acquire(cls, path: str, *, busy_timeout: float, error: type[TradebookError]) -> _SharedWriter:
        """The file's shared writer, opened (and the file migrated) by the first user."""
        loop_writers = _WRITERS.setdefault(asyncio.get_running_loop(), {})
        key = os.path.realpath(path)
        shared = loop_writers.get(key)
        if shared is None:
            conn = await _Connection.open(path, error=error, busy_timeout=busy_timeout, reader=False, migrate=True)
            shared = loop_writers.get(key)  # another coroutine may have opened it meanwhile
            if shared is None:
                shared = loop_writers[key] = cls(key, loop_writers, conn)
            else:
                await conn.close()
        shared._refs += 1
        return shared

    async def release(self) -> None:
        """Give the writer back; the last user closes it."""
        self._refs -= 1
        if self._refs == 0:
            if self._loop_writers.get(self.key) is self:
                del self._loop_writers[self.key]
            await self.conn.close()

    def check_not_inside_transaction(self) -> None:
        """Refuse a wallet call from inside a repository transaction on the same file (it would wait forever)."""
        task = asyncio.current_task()
        if task is not None and self.owner is task:
            raise RuntimeError(
                "the SQLite wallet cannot be called inside a repository transaction on the same file: "
                "finish the transaction first"
            )


# Per event loop (an asyncio.Lock belongs to one loop); entries go when their loop does.
_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SharedWriter]] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """Make several statements one step inside the open transaction: all of them or none."""
    conn.execute("SAVEPOINT tradebook_step")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO tradebook_step")
        conn.execute("RELEASE tradebook_step")
        raise
    conn.execute("RELEASE tradebook_step")


def _begin(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # left open by an earlier failure; never let it leak into this one
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")


def _commit(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


# --------------------------------------------------------------------------- repository


_INSERT_ORDER = f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES ({', '.join('?' * 15)})"
_INSERT_TRADE = f"INSERT INTO trades ({_TRADE_COLUMNS}) VALUES ({', '.join('?' * 10)})"
_INSERT_OP = "INSERT INTO wallet_ops (id, symbol, kind, payload) VALUES (?, ?, ?, ?)"


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
        row = _order_row(order)

        def job(conn: sqlite3.Connection) -> None:
            try:  # one statement on the usual path; the constraints say when it is a duplicate
                conn.execute(_INSERT_ORDER, row)
                return
            except sqlite3.IntegrityError:
                pass  # the failed statement wrote nothing; the transaction goes on
            if conn.execute("SELECT 1 FROM orders WHERE id = ?", (order.id,)).fetchone() is not None:
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
    ) -> None:
        """Set an order's status and filled quantity (and its ``sequence`` when given)."""
        values = (
            OrderStatus(status).value,
            _text(filled_quantity),
            _timestamp(updated_at),
            None if sequence is None else _checked_id(sequence, "sequence"),
        )

        def job(conn: sqlite3.Connection) -> None:
            cursor = None
            if _storable_id(order_id):
                cursor = conn.execute(
                    "UPDATE orders SET status = ?, filled_quantity = ?, updated_at = ?,"
                    " sequence = COALESCE(?, sequence) WHERE id = ?",
                    (*values, order_id),
                )
            if cursor is None or cursor.rowcount == 0:
                raise OrderNotFoundError(f"no order with id {order_id}")

        await self._run(job)

    async def cancel_order(self, order_id: int, *, updated_at: datetime) -> None:
        """Mark an active order ``CANCELLED``."""
        stamp = _timestamp(updated_at)

        def job(conn: sqlite3.Connection) -> None:
            if not _storable_id(order_id):
                raise OrderNotFoundError(f"no order with id {order_id}")
            cursor = conn.execute(
                "UPDATE orders SET status = 'CANCELLED', updated_at = ?"
                " WHERE id = ? AND status IN ('OPEN', 'PARTIALLY_FILLED')",
                (stamp, order_id),
            )
            if cursor.rowcount:
                return
            row = conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
            if not row:
                raise OrderNotFoundError(f"no order with id {order_id}")
            raise OrderConflictError(f"order {order_id} is {row[0]}, not active")

        await self._run(job)

    async def delete_order(self, order_id: int) -> None:
        """Remove a ``PENDING`` order that was never accepted (no-op if absent)."""

        def job(conn: sqlite3.Connection) -> None:
            if not _storable_id(order_id):
                return
            if conn.execute("DELETE FROM orders WHERE id = ? AND status = 'PENDING'", (order_id,)).rowcount:
                return
            row = conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
            if row:
                raise OrderConflictError(f"order {order_id} is {row[0]}; only PENDING orders are deleted")

        await self._run(job)

    async def record_trades(self, trades: Sequence[TradeRecord]) -> None:
        """Insert trades (ids unique); a duplicate raises :class:`~tradebook.DuplicateOrderError`."""
        rows = [_trade_row(trade) for trade in trades]

        if not rows:
            return

        def job(conn: sqlite3.Connection) -> None:
            _insert_all(conn, _INSERT_TRADE, rows, "trades", "trade")

        await self._run(job)

    async def add_wallet_ops(self, ops: Sequence[WalletOp]) -> None:
        """Queue wallet operations in the outbox (ids unique)."""
        rows = [(_checked_id(op.id, "wallet operation id"), op.symbol, op.kind, op.payload()) for op in ops]

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
            row = conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = ?", (order_id,)).fetchone()
            return None if row is None else _order(row)

        return await self._read(job)

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> OrderRecord | None:
        """The user's order with this client order id, or ``None``."""

        def job(conn: sqlite3.Connection) -> OrderRecord | None:
            row = conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE user_id = ? AND client_order_id = ?",
                (user_id, client_order_id),
            ).fetchone()
            return None if row is None else _order(row)

        return await self._read(job)

    async def list_orders(self, user_id: str, query: OrderQuery = OrderQuery()) -> Page[OrderRecord]:  # noqa: B008
        """A user's orders matching ``query``, newest (highest id) first, one page at a time."""
        self._check_open()
        limit = check_limit(query.limit)
        before = decode_cursor(query.cursor)
        clauses = ["user_id = ?"]
        params: list[object] = [user_id]
        if before is not None and before <= _INT64_MAX:  # a larger cursor is below no stored id
            clauses.append("id < ?")
            params.append(before)
        if query.symbol is not None:
            clauses.append("symbol = ?")
            params.append(query.symbol)
        if query.status is not None:
            clauses.append("status = ?")
            params.append(OrderStatus(query.status).value)
        if query.side is not None:
            clauses.append("side = ?")
            params.append(Side(query.side).value)
        if query.since is not None:
            clauses.append("created_at >= ?")
            params.append(_bound(query.since, "since"))
        if query.until is not None:
            clauses.append("created_at < ?")
            params.append(_bound(query.until, "until"))
        sql = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE {' AND '.join(clauses)} ORDER BY id DESC LIMIT ?"
        params.append(limit + 1)

        def job(conn: sqlite3.Connection) -> list[OrderRecord]:
            return [_order(row) for row in conn.execute(sql, params)]

        return page_of(await self._read(job), limit)

    async def active_orders(self, symbol: str) -> list[OrderRecord]:
        """The symbol's ``OPEN`` and ``PARTIALLY_FILLED`` orders in priority (``sequence``) order."""

        def job(conn: sqlite3.Connection) -> list[OrderRecord]:
            rows = conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE symbol = ? AND status IN {_ACTIVE_SQL}"
                " ORDER BY COALESCE(sequence, 0), id",
                (symbol,),
            )
            return [_order(row) for row in rows]

        return await self._read(job)

    async def pending_orders(self) -> list[OrderRecord]:
        """Orders still ``PENDING``, in id order."""

        def job(conn: sqlite3.Connection) -> list[OrderRecord]:
            rows = conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status = 'PENDING' ORDER BY id")
            return [_order(row) for row in rows]

        return await self._read(job)

    async def list_trades(
        self, *, symbol: str | None = None, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[TradeRecord]:
        """Trades, newest first, filtered by symbol and/or by a user on either side."""
        self._check_open()
        limit = check_limit(limit)
        before = decode_cursor(cursor)
        clauses = []
        params: list[object] = []
        if before is not None and before <= _INT64_MAX:
            clauses.append("id < ?")
            params.append(before)
        if symbol is not None:
            clauses.append("symbol = ?")
            params.append(symbol)
        if user_id is not None:
            clauses.append("(buyer_id = ? OR seller_id = ?)")
            params.extend((user_id, user_id))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_TRADE_COLUMNS} FROM trades {where} ORDER BY id DESC LIMIT ?"
        params.append(limit + 1)

        def job(conn: sqlite3.Connection) -> list[TradeRecord]:
            return [_trade(row) for row in conn.execute(sql, params)]

        return page_of(await self._read(job), limit)

    async def pending_wallet_ops(self) -> list[WalletOp]:
        """Outbox operations not yet marked done, in id order."""

        def job(conn: sqlite3.Connection) -> list[WalletOp]:
            rows = conn.execute("SELECT id, symbol, kind, payload FROM wallet_ops ORDER BY id")
            return [WalletOp.from_payload(*row) for row in rows]

        return await self._read(job)

    async def last_ids(self) -> tuple[int, int, int, int]:
        """The largest order id, trade id, sequence and wallet-op id stored (0 when none)."""

        def job(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
            row = conn.execute(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM orders), (SELECT COALESCE(MAX(id), 0) FROM trades),"
                " (SELECT COALESCE(MAX(sequence), 0) FROM orders), (SELECT COALESCE(MAX(id), 0) FROM wallet_ops)"
            ).fetchone()
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


# --------------------------------------------------------------------------- wallet


def _get_balance(conn: sqlite3.Connection, user_id: str, asset: str) -> tuple[Decimal, Decimal] | None:
    row = conn.execute(
        "SELECT available, reserved FROM wallet_balances WHERE user_id = ? AND asset = ?", (user_id, asset)
    ).fetchone()
    return None if row is None else (Decimal(row[0]), Decimal(row[1]))


def _change_balance(
    conn: sqlite3.Connection, user_id: str, asset: str, available: Decimal = _ZERO, reserved: Decimal = _ZERO
) -> None:
    """Add ``available`` and ``reserved`` (either may be negative) to an account, creating it at zero."""
    old_available, old_reserved = _get_balance(conn, user_id, asset) or (_ZERO, _ZERO)
    conn.execute(
        "INSERT INTO wallet_balances (user_id, asset, available, reserved) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (user_id, asset) DO UPDATE SET available = excluded.available, reserved = excluded.reserved",
        (user_id, asset, str(old_available + available), str(old_reserved + reserved)),
    )


def _change_balances(conn: sqlite3.Connection, deltas: dict[tuple[str, str], list[Decimal]]) -> None:
    """Add ``[available, reserved]`` deltas to several accounts: one read and one write call for all."""
    keys = list(deltas)
    where = " OR ".join(["(user_id = ? AND asset = ?)"] * len(keys))
    params = [part for key in keys for part in key]
    current = {
        (user, asset): (Decimal(available), Decimal(reserved))
        for user, asset, available, reserved in conn.execute(
            f"SELECT user_id, asset, available, reserved FROM wallet_balances WHERE {where}", params
        )
    }
    rows = []
    for key, (available, reserved) in deltas.items():
        old_available, old_reserved = current.get(key, (_ZERO, _ZERO))
        rows.append((*key, str(old_available + available), str(old_reserved + reserved)))
    conn.executemany(_UPSERT_BALANCE, rows)


_UPSERT_BALANCE = (
    "INSERT INTO wallet_balances (user_id, asset, available, reserved) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (user_id, asset) DO UPDATE SET available = excluded.available, reserved = excluded.reserved"
)


def _get_reservation(conn: sqlite3.Connection, ref: str) -> Reservation | None:
    row = conn.execute("SELECT ref, user_id, asset, amount FROM wallet_reservations WHERE ref = ?", (ref,)).fetchone()
    return None if row is None else Reservation(row[0], row[1], row[2], Decimal(row[3]))


def _shrink(conn: sqlite3.Connection, reservation: Reservation, value: Decimal) -> None:
    left = reservation.amount - value
    if left == 0:
        conn.execute("DELETE FROM wallet_reservations WHERE ref = ?", (reservation.ref,))
    else:
        conn.execute("UPDATE wallet_reservations SET amount = ? WHERE ref = ?", (str(left), reservation.ref))


class SQLiteWallet:
    """A :class:`~tradebook.oms.WalletClient` ledger in an SQLite file, with deposits for set-up.

    Same behaviour as :class:`~tradebook.oms.MemoryWallet`; each operation is
    one SQLite transaction (``BEGIN IMMEDIATE``), so concurrent reserves, from
    coroutines or from other processes, never overdraw. Decimal arithmetic runs
    in the ledger's own 80-digit context (exact whatever the caller's context),
    as the memory ledger's does. SQLite failures raise
    :class:`~tradebook.WalletUnavailableError`. See
    :class:`SQLiteOrderRepository` about sharing a file with a repository.
    """

    def __init__(self, path: str, shared: _SharedWriter) -> None:
        """Use :meth:`open`."""
        self._path = path
        self._shared = shared
        self._closed = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> SQLiteWallet:
        """Open (creating and migrating as needed) the wallet in the SQLite file at ``path``."""
        text = _file_path(path)
        shared = await _SharedWriter.acquire(text, busy_timeout=busy_timeout, error=WalletUnavailableError)
        return cls(text, shared)

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the wallet is closed")

    async def _read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        shared = self._shared
        shared.check_not_inside_transaction()
        async with shared.lock:
            return await shared.conn.run(job, error=WalletUnavailableError)

    async def _write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``job`` in one transaction on the shared writer, in the ledger's exact decimal context."""
        self._check_open()
        context = MONEY_CONTEXT  # exact whatever the caller's context

        def transaction(conn: sqlite3.Connection) -> T:
            with decimal.localcontext(context):
                _begin(conn)
                try:
                    result = job(conn)
                except BaseException:
                    _rollback(conn)
                    raise
                _commit(conn)
                return result

        shared = self._shared
        shared.check_not_inside_transaction()
        async with shared.lock:
            return await shared.conn.run(transaction, error=WalletUnavailableError)

    async def deposit(self, user_id: str, asset: str, amount: Decimal | int | str) -> None:
        """Credit ``amount`` of ``asset`` to the user's available balance."""
        value = _amount(amount)
        await self._write(lambda conn: _change_balance(conn, user_id, asset, available=value))

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Move ``amount`` of ``asset`` from available to reserved under ``ref``; see :meth:`WalletClient.reserve`."""
        value = _amount(amount)

        def job(conn: sqlite3.Connection) -> Reservation:
            available, reserved = _get_balance(conn, user_id, asset) or (_ZERO, _ZERO)
            if available >= value:
                try:  # the usual case, a new ref: no lookup first
                    conn.execute(
                        "INSERT INTO wallet_reservations (ref, user_id, asset, amount) VALUES (?, ?, ?, ?)",
                        (ref, user_id, asset, str(value)),
                    )
                except sqlite3.IntegrityError:
                    pass  # the ref holds funds already: fall through to return it
                else:
                    conn.execute(_UPSERT_BALANCE, (user_id, asset, str(available - value), str(reserved + value)))
                    return Reservation(ref, user_id, asset, value)
            existing = _get_reservation(conn, ref)
            if existing is not None:
                return existing
            raise InsufficientBalanceError(f"user {user_id!r} has {available} {asset} available, needs {value}")

        return await self._write(job)

    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        """Return ``amount`` (all when ``None``) of reservation ``ref`` to available; what was released."""

        def job(conn: sqlite3.Connection) -> Decimal:
            reservation = _get_reservation(conn, ref)
            if reservation is None:
                return _ZERO
            wanted = reservation.amount if amount is None else _amount(amount, allow_zero=True)
            value = min(wanted, reservation.amount)
            _change_balance(conn, reservation.user_id, reservation.asset, available=value, reserved=-value)
            _shrink(conn, reservation, value)
            return value

        return await self._write(job)

    async def reserved(self, ref: str) -> Decimal:
        """What reservation ``ref`` still holds (0 when unknown)."""
        reservation = await self._read(lambda conn: _get_reservation(conn, ref))
        return _ZERO if reservation is None else reservation.amount

    async def settle(self, settlement: Settlement) -> None:
        """Apply one trade's movements; a ``trade_id`` already applied is a no-op."""
        s = settlement
        trade_id = _checked_id(s.trade_id, "trade id")

        def job(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM wallet_settled_trades WHERE trade_id = ?", (trade_id,)).fetchone():
                return
            found = {
                row[0]: Reservation(row[0], row[1], row[2], Decimal(row[3]))
                for row in conn.execute(
                    "SELECT ref, user_id, asset, amount FROM wallet_reservations WHERE ref IN (?, ?)",
                    (s.buy_ref, s.sell_ref),
                )
            }
            buy = found.get(s.buy_ref)
            sell = found.get(s.sell_ref)
            if buy is None or buy.amount < s.notional or buy.asset != s.quote:
                raise InsufficientBalanceError(f"reservation {s.buy_ref!r} cannot pay {s.notional} {s.quote}")
            if sell is None or sell.amount < s.quantity or sell.asset != s.base:
                raise InsufficientBalanceError(f"reservation {s.sell_ref!r} cannot deliver {s.quantity} {s.base}")
            if (s.buyer_fee or s.seller_fee) and s.fee_account is None:
                raise ValueError("a settlement with fees needs a fee_account")
            deltas: dict[tuple[str, str], list[Decimal]] = {}

            def add(user: str, asset: str, available: Decimal = _ZERO, reserved: Decimal = _ZERO) -> None:
                delta = deltas.setdefault((user, asset), [_ZERO, _ZERO])
                delta[0] += available
                delta[1] += reserved

            add(buy.user_id, s.quote, reserved=-s.notional)
            add(sell.user_id, s.base, reserved=-s.quantity)
            add(s.buyer_id, s.base, available=s.quantity - s.buyer_fee)
            add(s.seller_id, s.quote, available=s.notional - s.seller_fee)
            if s.fee_account is not None:
                add(s.fee_account, s.base, available=s.buyer_fee)
                add(s.fee_account, s.quote, available=s.seller_fee)
            _change_balances(conn, deltas)
            _shrink(conn, buy, s.notional)
            _shrink(conn, sell, s.quantity)
            conn.execute("INSERT INTO wallet_settled_trades (trade_id, settled_at) VALUES (?, ?)", (trade_id, _now()))

        await self._write(job)

    async def balances(self, user_id: str) -> dict[str, Balance]:
        """The user's balances by asset (assets never touched are absent)."""

        def job(conn: sqlite3.Connection) -> dict[str, Balance]:
            rows = conn.execute(
                "SELECT asset, available, reserved FROM wallet_balances WHERE user_id = ? ORDER BY asset", (user_id,)
            )
            return {asset: Balance(asset, Decimal(available), Decimal(reserved)) for asset, available, reserved in rows}

        return await self._read(job)

    async def totals(self) -> dict[str, Decimal]:
        """Every asset's total over all users (available plus reserved): conserved by trading."""
        context = MONEY_CONTEXT  # exact whatever the caller's context

        def job(conn: sqlite3.Connection) -> dict[str, Decimal]:
            totals: dict[str, Decimal] = {}
            with decimal.localcontext(context):
                for asset, available, reserved in conn.execute(
                    "SELECT asset, available, reserved FROM wallet_balances"
                ):
                    totals[asset] = totals.get(asset, _ZERO) + Decimal(available) + Decimal(reserved)
            return totals

        return await self._read(job)

    async def close(self) -> None:
        """Close the connection; idempotent. The wallet is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        await self._shared.release()
