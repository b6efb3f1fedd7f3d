"""The PostgreSQL ledger wallet (server-side functions of migration 0003)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from ...errors import (
    InsufficientBalanceError,
    WalletUnavailableError,
)
from .._money import parse_amount
from ..models import Balance, Reservation, Settlement
from .connection import _check_sizes, _fetch, _mapped, _open_pool, _Pool
from .schema import _ZERO

# -- the wallet ----------------------------------------------------------------------


_DEPOSIT = (
    "INSERT INTO wallet_balances (user_id, asset, available, reserved) VALUES (%s, %s, %s, 0)"
    " ON CONFLICT (user_id, asset) DO UPDATE SET available = wallet_balances.available + excluded.available"
    " RETURNING available"
)
# The functions of migration 0003: each operation is one autocommit statement.
_RESERVE = "SELECT ok, held_user_id, held_asset, amount FROM tb_reserve(%s, %s, %s::numeric, %s)"
# One statement (one transaction): the balance gives up the amount only if it holds it, and only then does
# the reservation grow (or appear); no row comes back when the user lacks the amount.
_RESERVE_MORE = (
    "WITH b AS (UPDATE wallet_balances SET available = available - %s, reserved = reserved + %s"
    " WHERE user_id = %s AND asset = %s AND available >= %s RETURNING user_id)"
    " INSERT INTO wallet_reservations (ref, user_id, asset, amount) SELECT %s, %s, %s, %s::numeric FROM b"
    " ON CONFLICT (ref) DO UPDATE SET amount = wallet_reservations.amount + excluded.amount"
    " WHERE wallet_reservations.user_id = excluded.user_id AND wallet_reservations.asset = excluded.asset"
    " RETURNING amount"
)
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
        value = parse_amount(amount)
        await self._fetch(_DEPOSIT, (user_id, asset, value))

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Set ``amount`` aside under ``ref``; see :meth:`~tradebook.oms.WalletClient.reserve`.

        A refused reservation changes nothing (no empty balance row either).
        """
        value = parse_amount(amount)
        ((ok, held_user_id, held_asset, held),) = await self._fetch(_RESERVE, (user_id, asset, value, ref))
        if ok:
            return Reservation(ref, held_user_id, held_asset, held)
        raise InsufficientBalanceError(f"user {user_id!r} has {held} {asset} available, needs {value}")

    async def reserve_more(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """Move ``amount`` more of ``asset`` into reservation ``ref`` (created if absent), or refuse changing nothing."""
        value = parse_amount(amount)
        rows = await self._fetch(_RESERVE_MORE, (value, value, user_id, asset, value, ref, user_id, asset, value))
        if rows:
            return Reservation(ref, user_id, asset, Decimal(rows[0][0]))
        balances = await self.balances(user_id)
        held = balances[asset].available if asset in balances else _ZERO
        raise InsufficientBalanceError(f"user {user_id!r} has {held} {asset} available, needs {value}")

    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        """Return part or all of reservation ``ref`` to available; returns what was released."""
        value: Decimal | None = None
        if amount is not None:
            try:
                value = parse_amount(amount, allow_zero=True)
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
