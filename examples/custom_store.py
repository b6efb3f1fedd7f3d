"""Plug your own storage and balances into the order service: both ports implemented from scratch.

``OrderService`` talks to two ``typing.Protocol`` ports, so any object with the
right async methods fits; there is no base class to inherit. This script
implements both:

* ``JournalRepository`` (an ``OrderRepository``, with ``JournalUnitOfWork`` as
  its ``UnitOfWork``): state in dicts, and every committed transaction appended
  to a JSON-lines file as one line, so a restarted process replays the file and
  finds everything that was committed, and nothing that was not;
* ``AccountsWallet`` (a ``WalletClient``): an adapter over ``Accounts``, standing
  for the accounts system a host exchange already has (synchronous, its own
  idea of holds), adding what the service relies on: reservations found again
  by reference, and settlements applied once per trade id.

Then it runs the service on them, "crashes" (drops the service without closing
anything), opens the journal again in a new repository, and lets a new service
recover: the resting orders are back in the book in their original priority and
matching carries on.

Run it with ``python examples/custom_store.py`` once tradebook is installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradebook import (
    DuplicateOrderError,
    Instrument,
    InsufficientBalanceError,
    InvalidRequestError,
    OrderConflictError,
    OrderNotFoundError,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from tradebook.oms import (
    ACTIVE_STATUSES,
    Balance,
    OrderQuery,
    OrderRecord,
    OrderRepository,
    OrderService,
    Page,
    Reservation,
    Settlement,
    TradeRecord,
    UnitOfWork,
    WalletClient,
    WalletOp,
)

# == the repository ===========================================================================


def _order_to_json(o: OrderRecord) -> dict[str, Any]:
    out = asdict(o)
    for key in ("side", "type", "time_in_force", "status"):
        out[key] = out[key].value
    for key in ("price", "quantity", "filled_quantity"):
        out[key] = None if out[key] is None else str(out[key])
    out["created_at"], out["updated_at"] = o.created_at.isoformat(), o.updated_at.isoformat()
    return out


def _order_from_json(d: dict[str, Any]) -> OrderRecord:
    return OrderRecord(
        **{
            **d,
            "side": Side(d["side"]),
            "type": OrderType(d["type"]),
            "time_in_force": TimeInForce(d["time_in_force"]),
            "status": OrderStatus(d["status"]),
            "price": None if d["price"] is None else Decimal(d["price"]),
            "quantity": Decimal(d["quantity"]),
            "filled_quantity": Decimal(d["filled_quantity"]),
            "created_at": datetime.fromisoformat(d["created_at"]),
            "updated_at": datetime.fromisoformat(d["updated_at"]),
        }
    )


def _trade_to_json(t: TradeRecord) -> dict[str, Any]:
    out = asdict(t)
    out.update(price=str(t.price), quantity=str(t.quantity), taker_side=t.taker_side.value)
    out["created_at"] = t.created_at.isoformat()
    return out


def _trade_from_json(d: dict[str, Any]) -> TradeRecord:
    return TradeRecord(
        **{
            **d,
            "price": Decimal(d["price"]),
            "quantity": Decimal(d["quantity"]),
            "taker_side": Side(d["taker_side"]),
            "created_at": datetime.fromisoformat(d["created_at"]),
        }
    )


class JournalUnitOfWork:
    """The writes of one transaction, staged; the repository applies them all at commit, or none."""

    def __init__(self, repo: JournalRepository) -> None:
        self.repo = repo
        self.orders: dict[int, OrderRecord | None] = {}  # None: deleted
        self.trades: list[TradeRecord] = []
        self.ops: list[WalletOp] = []
        self.done: list[int] = []

    def _get(self, order_id: int) -> OrderRecord | None:
        return self.orders[order_id] if order_id in self.orders else self.repo.orders.get(order_id)

    async def create_order(self, order: OrderRecord) -> None:
        if self._get(order.id) is not None:
            raise DuplicateOrderError(f"order id {order.id} already exists")
        if order.client_order_id is not None:
            key = (order.user_id, order.client_order_id)
            taken = [o for o in (*self.repo.orders.values(), *self.orders.values()) if o is not None]
            if any((o.user_id, o.client_order_id) == key and self._get(o.id) is not None for o in taken):
                raise DuplicateOrderError(
                    f"user {order.user_id!r} already used client_order_id {order.client_order_id!r}"
                )
        self.orders[order.id] = order

    def _existing(self, order_id: int) -> OrderRecord:
        order = self._get(order_id)
        if order is None:
            raise OrderNotFoundError(f"no order with id {order_id}")
        return order

    async def update_order(
        self,
        order_id: int,
        *,
        status: OrderStatus,
        filled_quantity: Decimal,
        updated_at: datetime,
        sequence: int | None = None,
    ) -> None:
        order = self._existing(order_id)
        changes: dict[str, Any] = {"status": status, "filled_quantity": filled_quantity, "updated_at": updated_at}
        if sequence is not None:
            changes["sequence"] = sequence
        self.orders[order_id] = order.replace(**changes)

    async def cancel_order(self, order_id: int, *, updated_at: datetime) -> None:
        order = self._existing(order_id)
        if order.status not in ACTIVE_STATUSES:
            raise OrderConflictError(f"order {order_id} is {order.status.value}, not active")
        self.orders[order_id] = order.replace(status=OrderStatus.CANCELLED, updated_at=updated_at)

    async def delete_order(self, order_id: int) -> None:
        order = self._get(order_id)
        if order is not None and order.status is not OrderStatus.PENDING:
            raise OrderConflictError(f"order {order_id} is {order.status.value}: only a pending order can be deleted")
        if order is not None:
            self.orders[order_id] = None

    @staticmethod
    def _new_ids(ids: list[int], taken: set[int], what: str) -> None:
        """Refuse a batch that repeats an id, or reuses one: then none of it is staged."""
        if len(set(ids)) != len(ids) or taken.intersection(ids):
            raise DuplicateOrderError(f"{what} ids {ids} repeat or reuse an id")

    async def record_trades(self, trades: Sequence[TradeRecord]) -> None:
        self._new_ids([t.id for t in trades], {*self.repo.trades, *(t.id for t in self.trades)}, "trade")
        self.trades.extend(trades)

    async def add_wallet_ops(self, ops: Sequence[WalletOp]) -> None:
        self._new_ids([op.id for op in ops], {*self.repo.op_ids, *(op.id for op in self.ops)}, "wallet operation")
        self.ops.extend(ops)

    async def mark_wallet_ops_done(self, op_ids: Sequence[int]) -> None:
        self.done.extend(op_ids)


class JournalRepository:
    """Orders, trades and the wallet outbox in dicts, each commit appended to a JSON-lines journal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.orders: dict[int, OrderRecord] = {}
        self.trades: dict[int, TradeRecord] = {}
        self.ops: dict[int, WalletOp] = {}  # the outbox: applied operations leave it
        self.op_ids: set[int] = set()  # every operation id ever committed (ids are never reused)
        self.closed = False
        self.high = [0, 0, 0, 0]  # the largest order id, trade id, sequence, op id ever committed
        self._lock = asyncio.Lock()  # one transaction at a time: commits stay in journal order
        if path.exists():
            for line in path.read_text().splitlines():
                self._apply(json.loads(line))

    # -- committing and replaying ---------------------------------------------------------------

    def _apply(self, entry: dict[str, Any]) -> None:
        for order_id, data in entry["orders"]:
            if data is None:
                self.orders.pop(order_id, None)
            else:
                order = self.orders[order_id] = _order_from_json(data)
                self.high[0] = max(self.high[0], order.id)
                self.high[2] = max(self.high[2], order.sequence or 0)
        for data in entry["trades"]:
            trade = self.trades[data["id"]] = _trade_from_json(data)
            self.high[1] = max(self.high[1], trade.id)
        for op_id, symbol, kind, payload in entry["ops"]:
            self.ops[op_id] = WalletOp.from_payload(op_id, symbol, kind, payload)
            self.op_ids.add(op_id)
            self.high[3] = max(self.high[3], op_id)
        for op_id in entry["done"]:
            self.ops.pop(op_id, None)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the repository is closed")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[JournalUnitOfWork]:
        self._check_open()
        async with self._lock:
            uow = JournalUnitOfWork(self)
            yield uow  # an exception in the block skips the rest: nothing is written
            entry = {
                "orders": [[i, None if o is None else _order_to_json(o)] for i, o in uow.orders.items()],
                "trades": [_trade_to_json(t) for t in uow.trades],
                "ops": [[op.id, op.symbol, op.kind, op.payload()] for op in uow.ops],
                "done": uow.done,
            }
            with open(self.path, "a") as fh:  # one line per commit: the commit point
                fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._apply(entry)

    # -- queries ----------------------------------------------------------------------------------

    async def get_order(self, order_id: int) -> OrderRecord | None:
        self._check_open()
        return self.orders.get(order_id)

    async def get_order_by_client_id(self, user_id: str, client_order_id: str) -> OrderRecord | None:
        self._check_open()
        return next(
            (o for o in self.orders.values() if o.user_id == user_id and o.client_order_id == client_order_id), None
        )

    def _page(self, rows: list[Any], limit: object, cursor: object) -> Page[Any]:
        """Newest (highest id) first; the cursor is the last id shown, as text."""
        self._check_open()
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidRequestError(f"limit must be an integer from 1 to 1000, not {limit!r}")
        if cursor is not None and not (
            isinstance(cursor, str) and cursor.isascii() and cursor.isdigit() and len(cursor) <= 19
        ):
            raise InvalidRequestError(f"cursor {cursor!r} is not one this repository issued")
        rows = sorted((r for r in rows if cursor is None or r.id < int(cursor)), key=lambda r: r.id, reverse=True)
        more = len(rows) > limit
        return Page(rows[:limit], str(rows[limit - 1].id) if more else None)

    async def list_orders(self, user_id: str, query: OrderQuery = OrderQuery()) -> Page[OrderRecord]:  # noqa: B008
        rows = [
            o
            for o in self.orders.values()
            if o.user_id == user_id
            and query.symbol in (None, o.symbol)
            and query.status in (None, o.status)
            and query.side in (None, o.side)
            and (query.since is None or o.created_at >= query.since)
            and (query.until is None or o.created_at < query.until)
        ]
        return self._page(rows, query.limit, query.cursor)

    async def active_orders(self, symbol: str) -> list[OrderRecord]:
        self._check_open()
        active = [o for o in self.orders.values() if o.symbol == symbol and o.status in ACTIVE_STATUSES]
        return sorted(active, key=lambda o: (o.sequence or 0, o.id))

    async def pending_orders(self) -> list[OrderRecord]:
        self._check_open()
        return sorted((o for o in self.orders.values() if o.status is OrderStatus.PENDING), key=lambda o: o.id)

    async def list_trades(
        self, *, symbol: str | None = None, user_id: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> Page[TradeRecord]:
        rows = [
            t
            for t in self.trades.values()
            if symbol in (None, t.symbol) and (user_id is None or user_id in (t.buyer_id, t.seller_id))
        ]
        return self._page(rows, limit, cursor)

    async def pending_wallet_ops(self) -> list[WalletOp]:
        self._check_open()
        return [self.ops[i] for i in sorted(self.ops)]

    async def last_ids(self) -> tuple[int, int, int, int]:
        self._check_open()
        return self.high[0], self.high[1], self.high[2], self.high[3]

    async def close(self) -> None:
        self.closed = True  # the journal file itself is closed after every commit


# == the wallet ================================================================================


class Accounts:
    """Stands for the host's existing accounts system: balances and holds, synchronous, no idea of trades."""

    def __init__(self) -> None:
        self.free: dict[tuple[str, str], Decimal] = {}  # (user, asset) -> available
        self.holds: dict[str, tuple[str, str, Decimal]] = {}  # hold id -> (user, asset, amount)

    def credit(self, user: str, asset: str, amount: Decimal) -> None:
        self.free[user, asset] = self.free.get((user, asset), Decimal(0)) + amount

    def hold(self, hold_id: str, user: str, asset: str, amount: Decimal) -> bool:
        if self.free.get((user, asset), Decimal(0)) < amount:
            return False
        self.free[user, asset] -= amount
        self.holds[hold_id] = (user, asset, amount)
        return True

    def take_from_hold(self, hold_id: str, amount: Decimal) -> None:
        """Spend (``amount`` > 0 leaves the hold) part of a hold."""
        user, asset, held = self.holds[hold_id]
        self.holds[hold_id] = (user, asset, held - amount)

    def unhold(self, hold_id: str, amount: Decimal) -> None:
        user, asset, held = self.holds[hold_id]
        self.holds[hold_id] = (user, asset, held - amount)
        self.credit(user, asset, amount)


class AccountsWallet:
    """A ``WalletClient`` over :class:`Accounts`: order reservations are holds named by the order's ref."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.settled: set[int] = set()  # trade ids already applied: settling is idempotent

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise ValueError(f"a reservation must be a positive, finite Decimal, not {amount!r}")
        held = self.accounts.holds.get(ref)
        if held is not None and held[2] > 0:  # a retried reservation reserves nothing twice
            return Reservation(ref, held[0], held[1], held[2])
        if not self.accounts.hold(ref, user_id, asset, amount):
            raise InsufficientBalanceError(f"{user_id} cannot reserve {amount} {asset}")
        return Reservation(ref, user_id, asset, amount)

    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        held = self.accounts.holds.get(ref)
        if held is None:
            return Decimal(0)
        give = held[2] if amount is None else min(amount, held[2])
        if give > 0:
            self.accounts.unhold(ref, give)
        return give

    async def reserved(self, ref: str) -> Decimal:
        held = self.accounts.holds.get(ref)
        return Decimal(0) if held is None else held[2]

    async def settle(self, s: Settlement) -> None:
        if s.trade_id in self.settled:
            return
        if (s.buyer_fee or s.seller_fee) and s.fee_account is None:
            raise ValueError("a settlement with fees needs a fee account")
        acc = self.accounts
        buy, sell = acc.holds.get(s.buy_ref), acc.holds.get(s.sell_ref)
        # Check everything first: a settlement that cannot be paid changes nothing (and can come again).
        if buy is None or buy[1] != s.quote or buy[2] < s.notional:
            raise InsufficientBalanceError(f"reservation {s.buy_ref!r} cannot pay {s.notional} {s.quote}")
        if sell is None or sell[1] != s.base or sell[2] < s.quantity:
            raise InsufficientBalanceError(f"reservation {s.sell_ref!r} cannot deliver {s.quantity} {s.base}")
        acc.take_from_hold(s.buy_ref, s.notional)  # the buyer pays from its quote hold
        acc.take_from_hold(s.sell_ref, s.quantity)  # the seller delivers from its base hold
        acc.credit(s.buyer_id, s.base, s.quantity - s.buyer_fee)
        acc.credit(s.seller_id, s.quote, s.notional - s.seller_fee)
        if s.fee_account is not None:
            acc.credit(s.fee_account, s.base, s.buyer_fee)
            acc.credit(s.fee_account, s.quote, s.seller_fee)
        self.settled.add(s.trade_id)

    async def balances(self, user_id: str) -> dict[str, Balance]:
        out: dict[str, list[Decimal]] = {}
        for (user, asset), free in self.accounts.free.items():
            if user == user_id:
                out.setdefault(asset, [Decimal(0), Decimal(0)])[0] += free
        for user, asset, held in self.accounts.holds.values():
            if user == user_id:
                out.setdefault(asset, [Decimal(0), Decimal(0)])[1] += held
        return {asset: Balance(asset, free, held) for asset, (free, held) in sorted(out.items())}


# == using them ===================================================================================


def asks(service: OrderService) -> list[tuple[str, str]]:
    return [(str(level.price), str(level.quantity)) for level in service.depth("BTC/USDT", 3).asks]


async def main() -> None:
    btc = Instrument("BTC/USDT", tick_size="0.01", lot_size="0.001")
    accounts = Accounts()
    accounts.credit("alice", "BTC", Decimal("2"))
    accounts.credit("bob", "USDT", Decimal("100000"))
    wallet = AccountsWallet(accounts)

    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "orders.jsonl"
        repo = JournalRepository(journal)
        # Protocols are checked structurally: nothing was inherited.
        assert isinstance(repo, OrderRepository) and isinstance(wallet, WalletClient)
        async with repo.transaction() as uow:
            assert isinstance(uow, UnitOfWork)

        service = OrderService(repo, wallet, [btc])
        await service.start()
        for price in ("60000.00", "60010.00", "60020.00"):
            await service.place_order("alice", "BTC/USDT", "SELL", "0.5", price)
        bid = await service.place("bob", "BTC/USDT", "BUY", "0.7", "60010.00", client_order_id="bob-1")
        print(f"bob's order {bid.order.status.value}: {[(str(t.price), str(t.quantity)) for t in bid.trades]}")
        print(f"asks before the crash: {asks(service)}")
        # A crash: the service is dropped, nothing is closed. Only the journal and the wallet remain.
        del service, repo

        repo = JournalRepository(journal)
        async with OrderService(repo, wallet, [btc]) as service:
            print(f"journal: {len(journal.read_text().splitlines())} commits replayed")
            print(f"asks after the restart: {asks(service)}")
            again = await service.place("bob", "BTC/USDT", "BUY", "0.7", "60010.00", client_order_id="bob-1")
            print(f"bob's retry after the restart is a replay, not a new order: {again.replayed}")
            take = await service.place_order("bob", "BTC/USDT", "BUY", "0.6", "60020.00")
            print(f"bob buys 0.6 more: {take.status.value}")
            for user in ("alice", "bob"):
                shown = {a: (str(b.available), str(b.reserved)) for a, b in (await service.balances(user)).items()}
                print(f"{user}: {shown}  (available, reserved)")
            trades = await repo.list_trades(symbol="BTC/USDT")
            assert [t.id for t in trades.items] == [4, 3, 2, 1]


if __name__ == "__main__":
    asyncio.run(main())
