"""SQLite connections: opening a file in WAL mode, the inline connection, the shared writer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from ...errors import (
    PersistenceError,
    TradebookError,
)
from .._sql import migrations
from .schema import T, _apply_migrations, _datetime, _migrations

#: Seconds a connection waits for another one's write lock before giving up.
DEFAULT_BUSY_TIMEOUT = 5.0


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
    recorded: dict[int, tuple[str, datetime]] = {}
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
                        recorded[version] = (name, _datetime(applied_at))
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise PersistenceError(_describe(exc, text)) from exc
    return migrations.status(_migrations(), recorded)


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
