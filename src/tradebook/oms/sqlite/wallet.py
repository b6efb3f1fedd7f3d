"""The SQLite ledger wallet."""

from __future__ import annotations

import decimal
import os
import sqlite3
from collections.abc import Callable
from decimal import Decimal

from ...errors import (
    InsufficientBalanceError,
    WalletUnavailableError,
)
from .._money import MONEY_CONTEXT, parse_amount
from ..models import Balance, Reservation, Settlement
from .connection import DEFAULT_BUSY_TIMEOUT, _begin, _commit, _file_path, _rollback, _SharedWriter
from .schema import _ZERO, T, _checked_id, _now

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
        value = parse_amount(amount)
        await self._write(lambda conn: _change_balance(conn, user_id, asset, available=value))

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Move ``amount`` of ``asset`` from available to reserved under ``ref``; see :meth:`WalletClient.reserve`."""
        value = parse_amount(amount)

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

    async def reserve_more(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Move ``amount`` more of ``asset`` into reservation ``ref`` (created if absent), or refuse changing nothing."""
        value = parse_amount(amount)

        def job(conn: sqlite3.Connection) -> Reservation:
            available, reserved = _get_balance(conn, user_id, asset) or (_ZERO, _ZERO)
            if available < value:
                raise InsufficientBalanceError(f"user {user_id!r} has {available} {asset} available, needs {value}")
            existing = _get_reservation(conn, ref)
            if existing is not None and (existing.user_id != user_id or existing.asset != asset):
                raise ValueError(f"reservation {ref!r} holds another user's or asset's funds")
            total = value if existing is None else existing.amount + value
            conn.execute(
                "INSERT INTO wallet_reservations (ref, user_id, asset, amount) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (ref) DO UPDATE SET amount = excluded.amount",
                (ref, user_id, asset, str(total)),
            )
            conn.execute(_UPSERT_BALANCE, (user_id, asset, str(available - value), str(reserved + value)))
            return Reservation(ref, user_id, asset, total)

        return await self._write(job)

    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        """Return ``amount`` (all when ``None``) of reservation ``ref`` to available; what was released."""

        def job(conn: sqlite3.Connection) -> Decimal:
            reservation = _get_reservation(conn, ref)
            if reservation is None:
                return _ZERO
            wanted = reservation.amount if amount is None else parse_amount(amount, allow_zero=True)
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
