"""What only the SQLite adapters promise: WAL, migrations, error mapping, threads, durability."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tradebook import OrderStatus, OrderType, Side, TimeInForce
from tradebook.errors import OrderNotFoundError, PersistenceError, WalletUnavailableError
from tradebook.oms import OrderRecord
from tradebook.oms.sqlite import SQLiteOrderRepository, SQLiteWallet, migrate, migration_status

D = Decimal
T0 = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
VERSIONS = [version for version, _, _ in migration_status("/nonexistent/dir/never.db")]
TABLES = {"orders", "trades", "wallet_ops", "wallet_balances", "wallet_reservations", "wallet_settled_trades"}


def order(order_id: int, **changes: object) -> OrderRecord:
    record = OrderRecord(
        id=order_id,
        user_id="alice",
        symbol="BTC/USDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        price=D("100.10"),
        quantity=D("0.00000001"),
        filled_quantity=D(0),
        status=OrderStatus.OPEN,
        created_at=T0,
        updated_at=T0,
        sequence=order_id,
    )
    return record.replace(**changes)


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to inspect the file (autocommit)."""
    return sqlite3.connect(path, isolation_level=None)


def recorded_versions(path: Path) -> list[tuple[int, str]]:
    conn = raw(path)
    try:
        return conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "tradebook.db"


# -- pragmas and schema -----------------------------------------------------------------------


async def test_wal_mode_and_synchronous_normal(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    wallet = await SQLiteWallet.open(db)
    try:
        conn = raw(db)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        normal = 1
        assert wallet._shared is repo._shared  # one writing connection per file in a process
        assert await repo._shared.conn.run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == normal
        assert await repo._reader.run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == normal
        assert await repo._reader.run(lambda c: c.execute("PRAGMA query_only").fetchone()[0]) == 1
        # inline statements never wait; a call refused for a lock is redone on the thread with 5 s
        assert await repo._shared.conn.run(lambda c: c.execute("PRAGMA busy_timeout").fetchone()[0]) == 0
        assert repo._shared.conn._busy_ms == 5000
    finally:
        await repo.close()
        await wallet.close()


async def test_schema_tables_indexes_and_text_decimals(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    try:
        async with repo.transaction() as uow:
            await uow.create_order(order(1))
        conn = raw(db)
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert TABLES | {"schema_migrations"} <= names
        indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        expected = {
            "orders_user_id_idx",
            "orders_user_client_order_id_uq",
            "orders_active_idx",
            "orders_pending_idx",
            "trades_symbol_idx",
            "trades_buyer_idx",
            "trades_seller_idx",
        }
        assert expected <= indexes
        # decimals are exact text, never REAL
        assert conn.execute("SELECT typeof(price), price, quantity FROM orders").fetchone() == (
            "text",
            "100.10",
            "1E-8",
        )
        assert conn.execute("SELECT created_at FROM orders").fetchone()[0] == "2024-01-02T03:04:05.678901+00:00"
        for table in TABLES:
            types = {row[2].upper() for row in conn.execute(f"PRAGMA table_info({table})")}
            assert "REAL" not in types and "FLOAT" not in types, table

        def plan(sql: str, *params: object) -> str:
            return " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))

        assert "orders_user_id_idx" in plan("SELECT * FROM orders WHERE user_id = ? ORDER BY id DESC LIMIT 10", "a")
        active = "SELECT * FROM orders WHERE symbol = ? AND status IN ('OPEN', 'PARTIALLY_FILLED', 'UNTRIGGERED')"
        assert "orders_active_idx" in plan(active, "BTC/USDT")
        assert "orders_pending_idx" in plan("SELECT * FROM orders WHERE status = 'PENDING' ORDER BY id")
        conn.close()
    finally:
        await repo.close()


# -- migrations -------------------------------------------------------------------------------


async def test_migrations_are_recorded_and_applied_once(db: Path) -> None:
    assert VERSIONS[0] == 1
    assert sorted(set(VERSIONS)) == VERSIONS
    repo = await SQLiteOrderRepository.open(db)
    wallet = await SQLiteWallet.open(db)
    first = recorded_versions(db)
    assert [v for v, _ in first] == VERSIONS
    stamps = migration_status(db)
    await repo.close()
    await wallet.close()
    repo = await SQLiteOrderRepository.open(db)
    await repo.close()
    assert recorded_versions(db) == first
    assert migration_status(db) == stamps  # applied_at unchanged: nothing re-applied


async def test_a_wallet_alone_creates_every_table(db: Path) -> None:
    wallet = await SQLiteWallet.open(db)
    await wallet.close()
    conn = raw(db)
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert names >= TABLES


async def test_concurrent_opens_apply_each_migration_once(tmp_path: Path) -> None:
    # Several rounds on fresh files: switching a new file to WAL races between the openers.
    for round_ in range(30):
        path = tmp_path / f"round{round_}.db"
        opened = await asyncio.gather(
            *(SQLiteOrderRepository.open(path) for _ in range(4)), *(SQLiteWallet.open(path) for _ in range(4))
        )
        try:
            assert [v for v, _ in recorded_versions(path)] == VERSIONS
        finally:
            for x in opened:
                await x.close()


def test_concurrent_migrate_calls_apply_each_migration_once(tmp_path: Path) -> None:
    # Many rounds on fresh files: switching a new file to WAL races between the threads.
    for round_ in range(60):
        path = tmp_path / f"threads{round_}.db"
        results: list[list[int]] = []
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def worker(
            path: Path = path,
            results: list[list[int]] = results,
            errors: list[BaseException] = errors,
            start: threading.Barrier = start,
        ) -> None:
            start.wait()
            try:
                results.append(migrate(path))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(results, key=len) == [[]] * 7 + [VERSIONS]
        assert [v for v, _ in recorded_versions(path)] == VERSIONS


def test_migrate_and_migration_status(tmp_path: Path) -> None:
    path = tmp_path / "sub dir?#" / "x.db"
    path.parent.mkdir()
    status = migration_status(path)
    assert [(v, applied) for v, _, applied in status] == [(v, None) for v in VERSIONS]
    assert status[0][1] == "initial"
    assert not path.exists()  # status creates nothing
    before = datetime.now(timezone.utc)
    assert migrate(path) == VERSIONS
    assert migrate(str(path)) == []
    status = migration_status(str(path))
    assert [v for v, _, _ in status] == VERSIONS
    for _, _, applied in status:
        assert applied is not None
        assert applied.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= applied <= datetime.now(timezone.utc)


def test_migration_status_of_a_database_without_migrations(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    conn = raw(path)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    assert [applied for _, _, applied in migration_status(path)] == [None] * len(VERSIONS)


async def test_a_newer_schema_is_refused(db: Path) -> None:
    migrate(db)
    conn = raw(db)
    conn.execute("INSERT INTO schema_migrations VALUES (9999, 'from_the_future', '2030-01-01T00:00:00.000000+00:00')")
    conn.close()
    with pytest.raises(PersistenceError, match="newer than this tradebook knows"):
        await SQLiteOrderRepository.open(db)
    with pytest.raises(PersistenceError, match="9999"):
        migrate(db)
    status = migration_status(db)
    assert status[-1] == (9999, "from_the_future", datetime(2030, 1, 1, tzinfo=timezone.utc))


async def test_a_failed_migration_leaves_nothing_behind(db: Path) -> None:
    conn = raw(db)
    conn.execute("CREATE TABLE trades (x)")  # collides with the first migration
    conn.close()
    with pytest.raises(PersistenceError, match="already exists"):
        await SQLiteOrderRepository.open(db)
    conn = raw(db)
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "orders" not in names  # the migration's transaction was rolled back whole
    assert [applied for _, _, applied in migration_status(db)] == [None] * len(VERSIONS)


# -- bad files and paths ----------------------------------------------------------------------


async def test_a_file_that_is_not_a_database_gives_a_clear_error(db: Path) -> None:
    db.write_bytes(b"this is a text file, not a database\n" * 200)
    message = "is not an SQLite database"
    with pytest.raises(PersistenceError, match=message) as info:
        await SQLiteOrderRepository.open(db)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    with pytest.raises(WalletUnavailableError, match=message):
        await SQLiteWallet.open(db)
    with pytest.raises(PersistenceError, match=message):
        migrate(db)
    with pytest.raises(PersistenceError, match=message):
        migration_status(db)
    assert db.read_bytes().startswith(b"this is a text file")  # untouched


@pytest.mark.parametrize("path", [":memory:", ""])
async def test_in_memory_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="file path"):
        await SQLiteOrderRepository.open(path)
    with pytest.raises(ValueError, match="file path"):
        await SQLiteWallet.open(path)
    with pytest.raises(ValueError, match="file path"):
        migrate(path)


async def test_a_missing_directory_is_a_persistence_error(tmp_path: Path) -> None:
    with pytest.raises(PersistenceError, match="unable to open database file"):
        await SQLiteOrderRepository.open(tmp_path / "no" / "such" / "dir.db")


# -- errors while running ---------------------------------------------------------------------


async def test_a_write_lock_held_past_the_timeout_is_a_persistence_error(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db, busy_timeout=0.2)
    wallet = await SQLiteWallet.open(db, busy_timeout=0.2)
    try:
        async with repo.transaction() as uow:
            await uow.create_order(order(1))
        await wallet.deposit("alice", "USDT", D(100))
        other = raw(db)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(PersistenceError, match="database is locked") as info:
                async with repo.transaction() as uow:
                    await uow.create_order(order(2))
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            assert info.value.code == "persistence_error"
            with pytest.raises(WalletUnavailableError, match="database is locked"):
                await wallet.reserve("alice", "USDT", D(10), "r")
            # readers are not blocked by a writer (WAL)
            assert await repo.get_order(1) == order(1)
            assert (await wallet.balances("alice"))["USDT"].available == D(100)
        finally:
            other.execute("ROLLBACK")
            other.close()
        # and both work again once the lock is gone
        async with repo.transaction() as uow:
            await uow.create_order(order(2))
        assert (await wallet.reserve("alice", "USDT", D(10), "r")).amount == D(10)
        assert await wallet.reserved("r") == D(10)
        assert [o.id for o in (await repo.list_orders("alice")).items] == [2, 1]
    finally:
        await repo.close()
        await wallet.close()


async def test_a_broken_connection_is_a_persistence_error(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    try:
        await repo._reader.run(lambda c: c.close())
        with pytest.raises(PersistenceError, match="closed database") as info:
            await repo.get_order(1)
        assert isinstance(info.value.__cause__, sqlite3.ProgrammingError)
        await repo._shared.conn.run(lambda c: c.close())
        with pytest.raises(PersistenceError):
            async with repo.transaction() as uow:
                await uow.create_order(order(1))
    finally:
        await repo.close()


async def test_a_failed_commit_is_a_persistence_error_and_rolls_back(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    try:
        # a deferred foreign-key-like failure at COMMIT: a trigger that raises on a marker row
        conn = raw(db)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id)"
            " DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.close()
        await repo._shared.conn.run(lambda c: c.execute("PRAGMA foreign_keys = ON"))
        with pytest.raises(PersistenceError, match="FOREIGN KEY") as info:
            async with repo.transaction() as uow:
                await uow.create_order(order(1))
                await repo._shared.conn.run(lambda c: c.execute("INSERT INTO child VALUES (1, 42)"))
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
        assert await repo.get_order(1) is None
        async with repo.transaction() as uow:  # the connection is clean again
            await uow.create_order(order(1))
        assert await repo.get_order(1) == order(1)
    finally:
        await repo.close()


async def test_a_cancelled_transaction_rolls_back(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    try:
        inside = asyncio.Event()

        async def stuck() -> None:
            async with repo.transaction() as uow:
                await uow.create_order(order(1))
                inside.set()
                await asyncio.Event().wait()

        task = asyncio.create_task(stuck())
        await asyncio.wait_for(inside.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the rollback has run: the write lock is free for another process at once
        other = sqlite3.connect(db, isolation_level=None, timeout=0)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
        async with repo.transaction() as uow:
            await uow.create_order(order(2))
        assert await repo.get_order(1) is None
        assert await repo.get_order(2) == order(2)
    finally:
        await repo.close()


async def test_a_unit_of_work_is_unusable_after_its_block(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    try:
        async with repo.transaction() as uow:
            await uow.create_order(order(1))
        with pytest.raises(RuntimeError, match="already committed or rolled back"):
            await uow.create_order(order(2))
        assert await repo.get_order(2) is None
    finally:
        await repo.close()


async def test_ids_beyond_64_bits(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    try:
        huge = 2**63
        assert await repo.get_order(huge) is None
        async with repo.transaction() as uow:
            with pytest.raises(OrderNotFoundError):
                await uow.update_order(huge, status=OrderStatus.OPEN, filled_quantity=D(0), updated_at=T0)
            with pytest.raises(OrderNotFoundError):
                await uow.cancel_order(-huge - 1, updated_at=T0)
            await uow.delete_order(huge)
            with pytest.raises(ValueError, match="64-bit"):
                await uow.create_order(order(huge))
            await uow.create_order(order(huge - 1))
        assert (await repo.get_order(huge - 1)) == order(huge - 1)
        assert await repo.last_ids() == (huge - 1, 0, huge - 1, 0)
    finally:
        await repo.close()


async def test_naive_timestamps_are_refused(db: Path) -> None:
    from tradebook.errors import InvalidRequestError
    from tradebook.oms import OrderQuery

    repo = await SQLiteOrderRepository.open(db)
    try:
        async with repo.transaction() as uow:
            with pytest.raises(ValueError, match="timezone-aware"):
                await uow.create_order(order(1, created_at=datetime(2024, 1, 1)))
        with pytest.raises(InvalidRequestError):
            await repo.list_orders("alice", OrderQuery(since=datetime(2024, 1, 1)))
    finally:
        await repo.close()


# -- threads and closing ----------------------------------------------------------------------


def sqlite_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tradebook-sqlite")]


async def test_close_releases_the_threads(db: Path) -> None:
    before = set(sqlite_threads())
    repo = await SQLiteOrderRepository.open(db)
    wallet = await SQLiteWallet.open(db)
    await repo.get_order(1)
    await wallet.balances("alice")
    mine = set(sqlite_threads()) - before
    assert len(mine) == 2  # the file's shared writer (repository and wallet) and the repository's reader
    await repo.close()
    await wallet.balances("alice")
    await wallet.close()
    await wallet.close()
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in mine) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert not any(t.is_alive() for t in mine)
    with pytest.raises(RuntimeError, match="wallet is closed"):
        await wallet.balances("alice")


async def test_a_write_lock_held_by_another_process_is_waited_for_off_the_event_loop(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    held, release = threading.Event(), threading.Event()

    def other_process() -> None:  # another connection, as another process would have
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(10)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=other_process)
    holder.start()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not release.is_set():
            ticks += 1
            await asyncio.sleep(0.005)

    async def let_go() -> None:
        await asyncio.sleep(0.3)
        release.set()

    try:
        await asyncio.to_thread(held.wait, 10)
        tick_task, go_task = asyncio.create_task(ticker()), asyncio.create_task(let_go())
        async with repo.transaction() as uow:  # waits for the lock on the connection's thread
            await uow.create_order(order(1))
        await asyncio.gather(tick_task, go_task)
        assert ticks > 10, "the event loop was blocked while the write lock was held elsewhere"
        assert await repo.get_order(1) is not None
    finally:
        release.set()
        holder.join()
        await repo.close()


async def test_a_wallet_call_inside_a_repository_transaction_is_refused(db: Path) -> None:
    repo = await SQLiteOrderRepository.open(db)
    wallet = await SQLiteWallet.open(db)
    try:
        async with repo.transaction() as uow:
            await uow.create_order(order(1))
            with pytest.raises(RuntimeError, match="inside a repository transaction"):
                await wallet.balances("alice")
        assert await repo.get_order(1) is not None
        assert await wallet.balances("alice") == {}
    finally:
        await repo.close()
        await wallet.close()


# -- durability -------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime, timezone
    from decimal import Decimal
    from tradebook import OrderStatus, OrderType, Side, TimeInForce
    from tradebook.oms import OrderRecord
    from tradebook.oms.sqlite import SQLiteOrderRepository, SQLiteWallet

    async def main():
        repo = await SQLiteOrderRepository.open(sys.argv[1])
        wallet = await SQLiteWallet.open(sys.argv[1])
        now = datetime(2024, 1, 2, tzinfo=timezone.utc)
        record = OrderRecord(7, "alice", "BTC/USDT", Side.SELL, OrderType.LIMIT, TimeInForce.GTC,
                             Decimal("1.5"), Decimal("2"), Decimal(0), OrderStatus.OPEN, now, now, sequence=3)
        async with repo.transaction() as uow:
            await uow.create_order(record)
        await wallet.deposit("alice", "BTC", "2.5")
        await wallet.reserve("alice", "BTC", Decimal("2"), "7")
        print("committed", flush=True)
        await asyncio.sleep(120)

    asyncio.run(main())
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_committed_data_survives_sigkill(db: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        assert line == "committed\n", child.stderr.read() if child.stderr else ""
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -signal.SIGKILL
    repo = await SQLiteOrderRepository.open(db)
    wallet = await SQLiteWallet.open(db)
    try:
        got = await repo.get_order(7)
        assert got is not None
        assert (got.side, got.price, got.sequence) == (Side.SELL, D("1.5"), 3)
        assert [o.id for o in await repo.active_orders("BTC/USDT")] == [7]
        balance = (await wallet.balances("alice"))["BTC"]
        assert (balance.available, balance.reserved) == (D("0.5"), D(2))
        assert await wallet.reserved("7") == D(2)
    finally:
        await repo.close()
        await wallet.close()
