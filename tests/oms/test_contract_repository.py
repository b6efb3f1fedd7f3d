"""The contract every :class:`~tradebook.oms.OrderRepository` adapter passes.

Each test runs on the ``store`` fixture (memory, SQLite, PostgreSQL), so the
adapters behave alike: same results, same exceptions, same paging. A host
application's own adapter can run this module too.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from _stores import Store

from tradebook import OrderStatus, OrderType, Side, TimeInForce
from tradebook.errors import (
    DuplicateOrderError,
    InvalidRequestError,
    OrderConflictError,
    OrderNotFoundError,
    TradebookError,
)
from tradebook.oms import (
    OrderQuery,
    OrderRecord,
    OrderRepository,
    Release,
    Settlement,
    TradeRecord,
    UnitOfWork,
    WalletClient,
    WalletOp,
)

D = Decimal
T0 = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
SYMBOL = "BTC/USDT"
OTHER = "ETH/USDT"


def order(
    order_id: int,
    *,
    user: str = "alice",
    symbol: str = SYMBOL,
    side: Side = Side.BUY,
    status: OrderStatus = OrderStatus.OPEN,
    price: Decimal | None = Decimal("100.5"),
    quantity: Decimal = Decimal("2"),
    filled: Decimal = Decimal("0"),
    created_at: datetime | None = None,
    client_order_id: str | None = None,
    sequence: int | None = None,
    **extra: Any,
) -> OrderRecord:
    """An order record; ``created_at`` defaults to ``T0`` plus ``order_id`` seconds."""
    stamp = created_at if created_at is not None else T0 + timedelta(seconds=order_id)
    return OrderRecord(
        id=order_id,
        user_id=user,
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        time_in_force=extra.pop("time_in_force", TimeInForce.GTC),
        price=price,
        quantity=quantity,
        filled_quantity=filled,
        status=status,
        created_at=stamp,
        updated_at=extra.pop("updated_at", stamp),
        client_order_id=client_order_id,
        sequence=sequence if sequence is not None or status is OrderStatus.PENDING else order_id,
        **extra,
    )


def trade(
    trade_id: int,
    *,
    symbol: str = SYMBOL,
    buyer: str = "alice",
    seller: str = "bob",
    price: Decimal = Decimal("100.5"),
    quantity: Decimal = Decimal("0.25"),
) -> TradeRecord:
    """A trade record between ``buyer`` and ``seller``."""
    return TradeRecord(
        id=trade_id,
        symbol=symbol,
        price=price,
        quantity=quantity,
        buy_order_id=1000 + trade_id,
        sell_order_id=2000 + trade_id,
        buyer_id=buyer,
        seller_id=seller,
        taker_side=Side.SELL if trade_id % 2 else Side.BUY,
        created_at=T0 + timedelta(milliseconds=trade_id),
    )


def settle_op(op_id: int, trade_id: int = 1) -> WalletOp:
    """An outbox entry carrying a settlement with fees."""
    return WalletOp(
        op_id,
        SYMBOL,
        Settlement(
            trade_id=trade_id,
            base="BTC",
            quote="USDT",
            buyer_id="alice",
            seller_id="bob",
            buy_ref="11",
            sell_ref="12",
            quantity=D("0.00000001"),
            notional=D("123456789012.12345678"),
            buyer_fee=D("0.000000001"),
            seller_fee=D("1.10"),
            fee_account="fees",
        ),
    )


def release_op(op_id: int, ref: str = "11", keep: Decimal = Decimal("0.50")) -> WalletOp:
    """An outbox entry carrying a release."""
    return WalletOp(op_id, SYMBOL, Release(ref=ref, keep=keep))


async def create(store: Store, *orders: OrderRecord) -> None:
    """Commit ``orders`` in one transaction."""
    async with store.repository.transaction() as uow:
        for o in orders:
            await uow.create_order(o)


async def ids(store: Store, user: str = "alice", **query: Any) -> list[int]:
    """The ids of the first page of ``list_orders``."""
    page = await store.repository.list_orders(user, OrderQuery(**query))
    return [o.id for o in page.items]


async def all_pages(store: Store, user: str = "alice", **query: Any) -> list[list[int]]:
    """Every page of ``list_orders`` as lists of ids, following the cursors."""
    pages: list[list[int]] = []
    cursor = None
    while True:
        page = await store.repository.list_orders(user, OrderQuery(cursor=cursor, **query))
        pages.append([o.id for o in page.items])
        if page.next_cursor is None:
            return pages
        assert isinstance(page.next_cursor, str)
        cursor = page.next_cursor


# -- shape ------------------------------------------------------------------------------------


async def test_the_adapters_fit_the_ports(store: Store) -> None:
    assert isinstance(store.repository, OrderRepository)
    assert isinstance(store.wallet, WalletClient)
    async with store.repository.transaction() as uow:
        assert isinstance(uow, UnitOfWork)


# -- create and get ---------------------------------------------------------------------------


async def test_create_then_get_returns_the_same_record(store: Store) -> None:
    limit = order(1, client_order_id="c-1", post_only=True, time_in_force=TimeInForce.GTC)
    market = order(2, price=None, status=OrderStatus.PENDING, side=Side.SELL, time_in_force=TimeInForce.IOC)
    await create(store, limit, market)
    assert await store.repository.get_order(1) == limit
    got = await store.repository.get_order(2)
    assert got == market
    assert got is not None
    assert got.price is None
    assert got.sequence is None
    assert got.type is OrderType.MARKET
    assert got.side is Side.SELL
    assert got.time_in_force is TimeInForce.IOC
    assert got.status is OrderStatus.PENDING
    assert (await store.repository.get_order(1)).post_only is True  # type: ignore[union-attr]
    assert await store.repository.get_order(3) is None


async def test_get_by_client_order_id(store: Store) -> None:
    mine = order(1, client_order_id="abc")
    await create(store, mine, order(2, client_order_id="xyz"), order(3))
    assert await store.repository.get_order_by_client_id("alice", "abc") == mine
    assert (await store.repository.get_order_by_client_id("alice", "xyz")).id == 2  # type: ignore[union-attr]
    assert await store.repository.get_order_by_client_id("bob", "abc") is None
    assert await store.repository.get_order_by_client_id("alice", "nope") is None


async def test_decimals_are_exact(store: Store) -> None:
    values = [
        D("0.00000001"),
        D("123456789012.12345678"),
        D("1.10"),
        D("100"),
        D("0.000"),
        D("99999999999999.99999999"),
    ]
    records = [
        order(i + 1, price=value, quantity=value if value else D("1"), filled=value) for i, value in enumerate(values)
    ]
    await create(store, *records)
    for record in records:
        got = await store.repository.get_order(record.id)
        assert got is not None
        # the same value and the same scale (trailing zeros kept)
        assert (str(got.price), str(got.quantity), str(got.filled_quantity)) == (
            str(record.price),
            str(record.quantity),
            str(record.filled_quantity),
        )
        assert type(got.price) is Decimal
        assert type(got.quantity) is Decimal


async def test_timestamps_are_timezone_aware_and_exact(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=plus_two)
    updated = datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=timezone.utc)
    await create(store, order(1, created_at=created, updated_at=updated))
    got = await store.repository.get_order(1)
    assert got is not None
    assert got.created_at == created
    assert got.updated_at == updated
    assert got.created_at.utcoffset() is not None
    assert got.created_at.astimezone(timezone.utc) == datetime(2024, 6, 30, 21, 59, 59, 999999, tzinfo=timezone.utc)
    assert got.updated_at.microsecond == 1


# -- duplicates -------------------------------------------------------------------------------


async def test_duplicate_order_id_is_refused(store: Store) -> None:
    first = order(1, client_order_id="a")
    await create(store, first)
    with pytest.raises(DuplicateOrderError) as info:
        await create(store, order(1, user="bob", client_order_id="b"))
    assert info.value.code == "duplicate_order"
    assert await store.repository.get_order(1) == first
    assert await store.repository.get_order_by_client_id("bob", "b") is None


async def test_duplicate_client_order_id_of_one_user_is_refused(store: Store) -> None:
    await create(store, order(1, client_order_id="same"))
    with pytest.raises(DuplicateOrderError):
        await create(store, order(2, client_order_id="same"))
    assert await store.repository.get_order(2) is None
    # another user may use the same client order id
    await create(store, order(3, user="bob", client_order_id="same"))
    assert (await store.repository.get_order_by_client_id("bob", "same")).id == 3  # type: ignore[union-attr]
    assert (await store.repository.get_order_by_client_id("alice", "same")).id == 1  # type: ignore[union-attr]


async def test_duplicates_within_one_transaction_are_refused(store: Store) -> None:
    async with store.repository.transaction() as uow:
        await uow.create_order(order(1, client_order_id="x"))
        with pytest.raises(DuplicateOrderError):
            await uow.create_order(order(1, client_order_id="y"))
        with pytest.raises(DuplicateOrderError):
            await uow.create_order(order(2, client_order_id="x"))
        # a refused write leaves the transaction usable
        await uow.create_order(order(3, client_order_id="z"))
    assert [o.id for o in (await store.repository.list_orders("alice")).items] == [3, 1]
    assert await store.repository.get_order_by_client_id("alice", "y") is None


async def test_many_orders_without_client_ids_coexist(store: Store) -> None:
    await create(store, *(order(i) for i in range(1, 6)))
    assert await ids(store) == [5, 4, 3, 2, 1]


# -- update, cancel, delete -------------------------------------------------------------------


async def test_update_order_with_and_without_sequence(store: Store) -> None:
    await create(store, order(1, status=OrderStatus.PENDING))
    later = T0 + timedelta(minutes=5)
    async with store.repository.transaction() as uow:
        await uow.update_order(1, status=OrderStatus.OPEN, filled_quantity=D("0"), updated_at=later, sequence=7)
    got = await store.repository.get_order(1)
    assert got is not None
    assert (got.status, got.filled_quantity, got.updated_at, got.sequence) == (OrderStatus.OPEN, D("0"), later, 7)
    last = later + timedelta(seconds=1)
    async with store.repository.transaction() as uow:
        await uow.update_order(1, status=OrderStatus.PARTIALLY_FILLED, filled_quantity=D("0.75"), updated_at=last)
    got = await store.repository.get_order(1)
    assert got is not None
    assert (got.status, str(got.filled_quantity), got.updated_at, got.sequence) == (
        OrderStatus.PARTIALLY_FILLED,
        "0.75",
        last,
        7,  # kept
    )
    assert got.created_at == order(1).created_at  # untouched
    assert got.quantity == D("2")


async def test_update_unknown_order_raises_not_found(store: Store) -> None:
    async with store.repository.transaction() as uow:
        with pytest.raises(OrderNotFoundError) as info:
            await uow.update_order(99, status=OrderStatus.OPEN, filled_quantity=D(0), updated_at=T0)
    assert info.value.code == "order_not_found"
    assert await store.repository.get_order(99) is None


@pytest.mark.parametrize("status", [OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED])
async def test_cancel_active_order(store: Store, status: OrderStatus) -> None:
    await create(store, order(1, status=status, filled=D("0.5") if status is OrderStatus.PARTIALLY_FILLED else D(0)))
    when = T0 + timedelta(hours=1)
    async with store.repository.transaction() as uow:
        await uow.cancel_order(1, updated_at=when)
    got = await store.repository.get_order(1)
    assert got is not None
    assert (got.status, got.updated_at) == (OrderStatus.CANCELLED, when)
    assert got.filled_quantity == (D("0.5") if status is OrderStatus.PARTIALLY_FILLED else D(0))
    assert await store.repository.active_orders(SYMBOL) == []


@pytest.mark.parametrize(
    "status",
    [OrderStatus.PENDING, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED],
)
async def test_cancel_inactive_order_is_a_conflict(store: Store, status: OrderStatus) -> None:
    original = order(1, status=status)
    await create(store, original)
    async with store.repository.transaction() as uow:
        with pytest.raises(OrderConflictError) as info:
            await uow.cancel_order(1, updated_at=T0 + timedelta(hours=1))
    assert info.value.code == "order_conflict"
    assert await store.repository.get_order(1) == original


async def test_cancel_unknown_order_raises_not_found(store: Store) -> None:
    async with store.repository.transaction() as uow:
        with pytest.raises(OrderNotFoundError):
            await uow.cancel_order(42, updated_at=T0)


async def test_delete_pending_order(store: Store) -> None:
    await create(store, order(1, status=OrderStatus.PENDING, client_order_id="c"), order(2, status=OrderStatus.PENDING))
    async with store.repository.transaction() as uow:
        await uow.delete_order(1)
        await uow.delete_order(77)  # absent: a no-op
    assert await store.repository.get_order(1) is None
    assert await store.repository.get_order_by_client_id("alice", "c") is None
    assert [o.id for o in await store.repository.pending_orders()] == [2]
    # the client order id is free again
    await create(store, order(3, client_order_id="c"))
    assert (await store.repository.get_order_by_client_id("alice", "c")).id == 3  # type: ignore[union-attr]


@pytest.mark.parametrize("status", [OrderStatus.OPEN, OrderStatus.FILLED, OrderStatus.CANCELLED])
async def test_delete_refuses_an_order_that_is_not_pending(store: Store, status: OrderStatus) -> None:
    original = order(1, status=status)
    await create(store, original)
    async with store.repository.transaction() as uow:
        with pytest.raises(OrderConflictError):
            await uow.delete_order(1)
    assert await store.repository.get_order(1) == original


# -- transactions -----------------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_an_exception_rolls_everything_back(store: Store) -> None:
    await create(store, order(1), order(2, status=OrderStatus.PENDING))
    async with store.repository.transaction() as uow:
        await uow.record_trades([trade(1)])
        await uow.add_wallet_ops([release_op(1)])
    before = await store.repository.last_ids()
    with pytest.raises(Boom):
        async with store.repository.transaction() as uow:
            await uow.create_order(order(3, client_order_id="gone"))
            await uow.update_order(1, status=OrderStatus.FILLED, filled_quantity=D(2), updated_at=T0, sequence=99)
            await uow.delete_order(2)
            await uow.record_trades([trade(2), trade(3)])
            await uow.add_wallet_ops([settle_op(2), release_op(3)])
            await uow.mark_wallet_ops_done([1])
            raise Boom
    repo = store.repository
    assert await repo.get_order(3) is None
    assert await repo.get_order_by_client_id("alice", "gone") is None
    assert await repo.get_order(1) == order(1)
    assert await repo.get_order(2) == order(2, status=OrderStatus.PENDING)
    assert [t.id for t in (await repo.list_trades()).items] == [1]
    assert await repo.pending_wallet_ops() == [release_op(1)]
    assert await repo.last_ids() == before == (2, 1, 1, 1)
    # and the repository still works
    await create(store, order(3))
    assert await ids(store) == [3, 2, 1]


async def test_a_transaction_commits_all_its_writes_together(store: Store) -> None:
    async with store.repository.transaction() as uow:
        await uow.create_order(order(1))
        await uow.record_trades([trade(1)])
        await uow.add_wallet_ops([settle_op(1)])
    assert await store.repository.get_order(1) == order(1)
    assert (await store.repository.list_trades()).items == [trade(1)]
    assert await store.repository.pending_wallet_ops() == [settle_op(1)]


async def test_readers_do_not_see_an_uncommitted_transaction(store: Store) -> None:
    repo = store.repository
    await create(store, order(1))
    written = asyncio.Event()
    proceed = asyncio.Event()

    async def writer() -> None:
        async with repo.transaction() as uow:
            await uow.create_order(order(2, client_order_id="new", status=OrderStatus.PENDING))
            await uow.update_order(1, status=OrderStatus.FILLED, filled_quantity=D(2), updated_at=T0)
            await uow.record_trades([trade(5)])
            await uow.add_wallet_ops([release_op(9)])
            written.set()
            await proceed.wait()

    task = asyncio.create_task(writer())
    await asyncio.wait_for(written.wait(), 10)
    assert await repo.get_order(2) is None
    assert await repo.get_order_by_client_id("alice", "new") is None
    assert (await repo.get_order(1)).status is OrderStatus.OPEN  # type: ignore[union-attr]
    assert await ids(store) == [1]
    assert await repo.pending_orders() == []
    assert [o.id for o in await repo.active_orders(SYMBOL)] == [1]
    assert (await repo.list_trades()).items == []
    assert await repo.pending_wallet_ops() == []
    assert await repo.last_ids() == (1, 0, 1, 0)
    proceed.set()
    await asyncio.wait_for(task, 10)
    assert (await repo.get_order(2)).client_order_id == "new"  # type: ignore[union-attr]
    assert (await repo.get_order(1)).status is OrderStatus.FILLED  # type: ignore[union-attr]
    assert await repo.last_ids() == (2, 5, 1, 9)


async def test_concurrent_transactions_all_commit_and_stay_isolated(store: Store) -> None:
    """Transactions may run side by side (the service never writes one row from two at once)."""
    repo = store.repository
    # four at once: each holds a pooled connection and reads through another one
    await create(store, *(order(n, filled=D(0)) for n in range(1, 5)))
    started = asyncio.Event()

    async def fill(n: int) -> None:
        async with repo.transaction() as uow:
            await uow.create_order(order(100 + n, user="bob"))
            await uow.update_order(n, status=OrderStatus.PARTIALLY_FILLED, filled_quantity=D("0.01"), updated_at=T0)
            await asyncio.sleep(0)
            started.set()
            # a read outside the transaction does not see its writes before the commit
            assert await repo.get_order(100 + n) is None

    await asyncio.gather(*(fill(n) for n in range(1, 5)))
    assert started.is_set()
    for n in range(1, 5):
        got = await repo.get_order(n)
        assert got is not None and got.filled_quantity == D("0.01")
    assert await ids(store, "bob", limit=100) == [104, 103, 102, 101]


# -- list_orders ------------------------------------------------------------------------------


async def seed_for_filters(store: Store) -> None:
    await create(
        store,
        order(1, symbol=SYMBOL, side=Side.BUY, status=OrderStatus.OPEN),
        order(2, symbol=OTHER, side=Side.SELL, status=OrderStatus.FILLED),
        order(3, symbol=SYMBOL, side=Side.SELL, status=OrderStatus.CANCELLED),
        order(4, symbol=OTHER, side=Side.BUY, status=OrderStatus.OPEN),
        order(5, symbol=SYMBOL, side=Side.BUY, status=OrderStatus.PARTIALLY_FILLED, filled=D(1)),
        order(6, symbol=SYMBOL, side=Side.SELL, status=OrderStatus.OPEN, user="bob"),
        order(7, symbol=SYMBOL, side=Side.BUY, status=OrderStatus.PENDING),
    )


async def test_list_orders_is_a_users_orders_newest_first(store: Store) -> None:
    await seed_for_filters(store)
    page = await store.repository.list_orders("alice")
    assert [o.id for o in page.items] == [7, 5, 4, 3, 2, 1]
    assert page.next_cursor is None
    assert page.items[0] == order(7, symbol=SYMBOL, side=Side.BUY, status=OrderStatus.PENDING)
    assert await ids(store, "bob") == [6]
    assert await ids(store, "nobody") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"symbol": SYMBOL}, [7, 5, 3, 1]),
        ({"symbol": OTHER}, [4, 2]),
        ({"symbol": "XRP/USDT"}, []),
        ({"status": OrderStatus.OPEN}, [4, 1]),
        ({"status": OrderStatus.PENDING}, [7]),
        ({"status": OrderStatus.EXPIRED}, []),
        ({"side": Side.SELL}, [3, 2]),
        ({"side": Side.BUY}, [7, 5, 4, 1]),
        ({"symbol": SYMBOL, "side": Side.BUY, "status": OrderStatus.OPEN}, [1]),
    ],
)
async def test_list_orders_filters(store: Store, query: dict[str, Any], expected: list[int]) -> None:
    await seed_for_filters(store)
    assert await ids(store, **query) == expected


async def test_list_orders_since_is_inclusive_and_until_exclusive(store: Store) -> None:
    await seed_for_filters(store)
    at = [T0 + timedelta(seconds=i) for i in range(9)]  # order i was created at at[i]
    assert await ids(store, since=at[3]) == [7, 5, 4, 3]
    assert await ids(store, until=at[3]) == [2, 1]
    assert await ids(store, since=at[2], until=at[5]) == [4, 3, 2]
    assert await ids(store, since=at[3] + timedelta(microseconds=1)) == [7, 5, 4]
    assert await ids(store, until=at[3] + timedelta(microseconds=1)) == [3, 2, 1]
    assert await ids(store, since=at[4], until=at[4]) == []
    # bounds in another time zone mean the same instants
    tokyo = timezone(timedelta(hours=9))
    assert await ids(store, since=at[2].astimezone(tokyo), until=at[5].astimezone(tokyo)) == [4, 3, 2]
    assert await ids(store, symbol=SYMBOL, since=at[2], until=at[8]) == [7, 5, 3]


async def test_list_orders_pages_without_duplicates_or_gaps(store: Store) -> None:
    await create(store, *(order(i) for i in range(1, 26)), *(order(i, user="bob") for i in range(26, 31)))
    pages = await all_pages(store, limit=10)
    assert pages == [list(range(25, 15, -1)), list(range(15, 5, -1)), list(range(5, 0, -1))]
    assert await all_pages(store, limit=5) == [list(range(n, n - 5, -1)) for n in (25, 20, 15, 10, 5)]
    assert await all_pages(store, limit=1000) == [list(range(25, 0, -1))]
    # a page that ends exactly at the last order has no next cursor
    page = await store.repository.list_orders("alice", OrderQuery(limit=25))
    assert page.next_cursor is None
    assert len(page.items) == 25


async def test_list_orders_pages_with_a_filter(store: Store) -> None:
    statuses = [OrderStatus.OPEN, OrderStatus.FILLED, OrderStatus.CANCELLED]
    await create(store, *(order(i, status=statuses[i % 3]) for i in range(1, 31)))
    pages = await all_pages(store, status=OrderStatus.FILLED, limit=4)
    assert pages == [[28, 25, 22, 19], [16, 13, 10, 7], [4, 1]]


async def test_list_orders_cursor_is_stable_while_new_orders_arrive(store: Store) -> None:
    await create(store, *(order(i) for i in range(1, 13)))
    first = await store.repository.list_orders("alice", OrderQuery(limit=5))
    assert [o.id for o in first.items] == [12, 11, 10, 9, 8]
    await create(store, *(order(i) for i in range(13, 20)))
    second = await store.repository.list_orders("alice", OrderQuery(limit=5, cursor=first.next_cursor))
    assert [o.id for o in second.items] == [7, 6, 5, 4, 3]
    third = await store.repository.list_orders("alice", OrderQuery(limit=5, cursor=second.next_cursor))
    assert [o.id for o in third.items] == [2, 1]
    assert third.next_cursor is None
    # the same cursor gives the same page again
    again = await store.repository.list_orders("alice", OrderQuery(limit=5, cursor=first.next_cursor))
    assert again == second


async def test_a_cursor_past_every_id_lists_from_the_top(store: Store) -> None:
    await create(store, order(1), order(2))
    assert await ids(store, cursor="9999999999999999999") == [2, 1]
    assert await ids(store, cursor="3") == [2, 1]
    assert await ids(store, cursor="2") == [1]
    assert await ids(store, cursor="1") == []
    assert await ids(store, cursor="0") == []


BAD_LIMITS = [0, -1, 1001, True, False, "5", 5.0, None]
BAD_CURSORS = ["", "abc", "-1", "1.5", " 1", "1 ", "١٢", "99999999999999999999", 12, b"12"]


@pytest.mark.parametrize("limit", BAD_LIMITS)
async def test_list_orders_refuses_a_bad_limit(store: Store, limit: Any) -> None:
    await create(store, order(1))
    with pytest.raises(InvalidRequestError) as info:
        await store.repository.list_orders("alice", OrderQuery(limit=limit))
    assert info.value.code == "invalid_request"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_list_orders_refuses_a_bad_cursor(store: Store, cursor: Any) -> None:
    await create(store, order(1))
    with pytest.raises(InvalidRequestError):
        await store.repository.list_orders("alice", OrderQuery(cursor=cursor))


async def test_list_limits_at_the_edges_are_accepted(store: Store) -> None:
    await create(store, order(1), order(2))
    assert [o.id for o in (await store.repository.list_orders("alice", OrderQuery(limit=1))).items] == [2]
    assert [o.id for o in (await store.repository.list_orders("alice", OrderQuery(limit=1000))).items] == [2, 1]
    assert [t.id for t in (await store.repository.list_trades(limit=1000)).items] == []


# -- active and pending orders ----------------------------------------------------------------


async def test_active_orders_in_sequence_order_and_only_active(store: Store) -> None:
    await create(
        store,
        order(1, sequence=30),
        order(2, sequence=10, status=OrderStatus.PARTIALLY_FILLED, filled=D("0.5")),
        order(3, sequence=20, side=Side.SELL, user="bob"),
        order(4, sequence=5, status=OrderStatus.FILLED, filled=D(2)),
        order(5, sequence=6, status=OrderStatus.CANCELLED),
        order(6, status=OrderStatus.PENDING),
        order(7, sequence=1, symbol=OTHER),
        order(8, sequence=40, status=OrderStatus.REJECTED),
        order(9, sequence=15),
    )
    active = await store.repository.active_orders(SYMBOL)
    assert [o.id for o in active] == [2, 9, 3, 1]
    assert all(o.is_active for o in active)
    assert active[0] == order(2, sequence=10, status=OrderStatus.PARTIALLY_FILLED, filled=D("0.5"))
    assert [o.id for o in await store.repository.active_orders(OTHER)] == [7]
    assert await store.repository.active_orders("XRP/USDT") == []
    async with store.repository.transaction() as uow:
        await uow.cancel_order(9, updated_at=T0)
        await uow.update_order(1, status=OrderStatus.FILLED, filled_quantity=D(2), updated_at=T0)
        await uow.update_order(6, status=OrderStatus.OPEN, filled_quantity=D(0), updated_at=T0, sequence=50)
    assert [o.id for o in await store.repository.active_orders(SYMBOL)] == [2, 3, 6]


async def test_pending_orders(store: Store) -> None:
    assert await store.repository.pending_orders() == []
    await create(
        store,
        order(3, status=OrderStatus.PENDING, symbol=OTHER),
        order(1, status=OrderStatus.PENDING, user="bob"),
        order(2),
        order(4, status=OrderStatus.PENDING),
        order(5, status=OrderStatus.REJECTED),
    )
    pending = await store.repository.pending_orders()
    assert [o.id for o in pending] == [1, 3, 4]
    assert pending[0] == order(1, status=OrderStatus.PENDING, user="bob")
    async with store.repository.transaction() as uow:
        await uow.update_order(3, status=OrderStatus.OPEN, filled_quantity=D(0), updated_at=T0, sequence=9)
        await uow.delete_order(4)
    assert [o.id for o in await store.repository.pending_orders()] == [1]


# -- trades -----------------------------------------------------------------------------------


async def seed_trades(store: Store) -> list[TradeRecord]:
    trades = [
        trade(1, buyer="alice", seller="bob"),
        trade(2, buyer="bob", seller="carol", symbol=OTHER),
        trade(3, buyer="carol", seller="alice"),
        trade(4, buyer="bob", seller="bob"),
        trade(5, buyer="alice", seller="carol", symbol=OTHER, price=D("0.00000001"), quantity=D("123456789012.1")),
        trade(6, buyer="carol", seller="bob"),
    ]
    async with store.repository.transaction() as uow:
        await uow.record_trades(trades[:2])
        await uow.record_trades([])
    async with store.repository.transaction() as uow:
        await uow.record_trades(trades[2:])
    return trades


async def test_record_and_list_trades(store: Store) -> None:
    trades = await seed_trades(store)
    page = await store.repository.list_trades()
    assert list(page.items) == trades[::-1]
    assert page.next_cursor is None
    got = page.items[1]
    assert (str(got.price), str(got.quantity)) == ("1E-8", "123456789012.1")
    assert got.created_at == T0 + timedelta(milliseconds=5)
    assert got.taker_side is Side.SELL


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"symbol": SYMBOL}, [6, 4, 3, 1]),
        ({"symbol": OTHER}, [5, 2]),
        ({"user_id": "alice"}, [5, 3, 1]),
        ({"user_id": "bob"}, [6, 4, 2, 1]),
        ({"user_id": "carol"}, [6, 5, 3, 2]),
        ({"user_id": "dave"}, []),
        ({"symbol": OTHER, "user_id": "alice"}, [5]),
        ({"symbol": SYMBOL, "user_id": "carol"}, [6, 3]),
    ],
)
async def test_list_trades_filters(store: Store, filters: dict[str, Any], expected: list[int]) -> None:
    await seed_trades(store)
    assert [t.id for t in (await store.repository.list_trades(**filters)).items] == expected


async def test_list_trades_pages(store: Store) -> None:
    async with store.repository.transaction() as uow:
        await uow.record_trades([trade(i, buyer="alice" if i % 2 else "bob", seller="carol") for i in range(1, 24)])
    seen: list[list[int]] = []
    cursor = None
    while True:
        page = await store.repository.list_trades(user_id="alice", limit=4, cursor=cursor)
        seen.append([t.id for t in page.items])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [[23, 21, 19, 17], [15, 13, 11, 9], [7, 5, 3, 1]]
    first = await store.repository.list_trades(limit=10)
    async with store.repository.transaction() as uow:
        await uow.record_trades([trade(24), trade(25)])
    second = await store.repository.list_trades(limit=10, cursor=first.next_cursor)
    assert [t.id for t in second.items] == list(range(13, 3, -1))


@pytest.mark.parametrize("limit", BAD_LIMITS)
async def test_list_trades_refuses_a_bad_limit(store: Store, limit: Any) -> None:
    with pytest.raises(InvalidRequestError):
        await store.repository.list_trades(limit=limit)


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_list_trades_refuses_a_bad_cursor(store: Store, cursor: Any) -> None:
    with pytest.raises(InvalidRequestError):
        await store.repository.list_trades(cursor=cursor)


async def test_duplicate_trade_ids_are_refused_and_the_batch_writes_nothing(store: Store) -> None:
    async with store.repository.transaction() as uow:
        await uow.record_trades([trade(1)])
    async with store.repository.transaction() as uow:
        with pytest.raises(DuplicateOrderError):
            await uow.record_trades([trade(2), trade(1)])
        with pytest.raises(DuplicateOrderError):
            await uow.record_trades([trade(3), trade(3)])
        await uow.record_trades([trade(4)])
    assert [t.id for t in (await store.repository.list_trades()).items] == [4, 1]


# -- the wallet outbox ------------------------------------------------------------------------


async def test_wallet_ops_round_trip_exactly_in_id_order(store: Store) -> None:
    ops = [settle_op(3, trade_id=7), release_op(1), release_op(2, ref="12", keep=D("0"))]
    async with store.repository.transaction() as uow:
        await uow.add_wallet_ops(ops[:2])
        await uow.add_wallet_ops(ops[2:])
    pending = await store.repository.pending_wallet_ops()
    assert pending == [ops[1], ops[2], ops[0]]
    settle = pending[2]
    assert settle.kind == "settle"
    assert settle.symbol == SYMBOL
    assert isinstance(settle.op, Settlement)
    assert settle.op == ops[0].op
    assert (str(settle.op.quantity), str(settle.op.notional), str(settle.op.buyer_fee), str(settle.op.seller_fee)) == (
        "1E-8",
        "123456789012.12345678",
        "1E-9",
        "1.10",
    )
    assert all(type(v) is Decimal for v in (settle.op.quantity, settle.op.notional, settle.op.buyer_fee))
    release = pending[0]
    assert release.kind == "release"
    assert isinstance(release.op, Release)
    assert (release.op.ref, str(release.op.keep)) == ("11", "0.50")


async def test_mark_wallet_ops_done(store: Store) -> None:
    async with store.repository.transaction() as uow:
        await uow.add_wallet_ops([release_op(i) for i in range(1, 6)])
    async with store.repository.transaction() as uow:
        await uow.mark_wallet_ops_done([2, 4, 99])
        await uow.mark_wallet_ops_done([])
    assert [op.id for op in await store.repository.pending_wallet_ops()] == [1, 3, 5]
    async with store.repository.transaction() as uow:
        await uow.add_wallet_ops([settle_op(6)])
        await uow.mark_wallet_ops_done([1, 6])  # added and done in one transaction
    assert [op.id for op in await store.repository.pending_wallet_ops()] == [3, 5]


async def test_duplicate_wallet_op_ids_are_refused(store: Store) -> None:
    async with store.repository.transaction() as uow:
        await uow.add_wallet_ops([release_op(1)])
    async with store.repository.transaction() as uow:
        with pytest.raises(DuplicateOrderError):
            await uow.add_wallet_ops([release_op(2), release_op(1)])
        with pytest.raises(DuplicateOrderError):
            await uow.add_wallet_ops([release_op(3), release_op(3)])
    assert [op.id for op in await store.repository.pending_wallet_ops()] == [1]


# -- ids, restarts, closing -------------------------------------------------------------------


async def test_last_ids(store: Store) -> None:
    assert await store.repository.last_ids() == (0, 0, 0, 0)
    await create(store, order(3, sequence=40), order(7, status=OrderStatus.PENDING), order(5, sequence=12))
    assert await store.repository.last_ids() == (7, 0, 40, 0)
    async with store.repository.transaction() as uow:
        await uow.record_trades([trade(11), trade(4)])
        await uow.add_wallet_ops([release_op(8), settle_op(2)])
    assert await store.repository.last_ids() == (7, 11, 40, 8)


async def test_everything_survives_a_reopen(store: Store) -> None:
    orders = [order(1, client_order_id="keep", price=D("123456789012.12345678")), order(2, status=OrderStatus.PENDING)]
    await create(store, *orders)
    async with store.repository.transaction() as uow:
        await uow.record_trades([trade(1), trade(2, symbol=OTHER)])
        await uow.add_wallet_ops([settle_op(1), release_op(2)])
        await uow.update_order(1, status=OrderStatus.PARTIALLY_FILLED, filled_quantity=D("0.00000001"), updated_at=T0)
    await store.wallet.deposit("alice", "USDT", D("1000.50"))
    await store.wallet.reserve("alice", "USDT", D("200.25"), "1")
    expected_order = orders[0].replace(
        status=OrderStatus.PARTIALLY_FILLED, filled_quantity=D("0.00000001"), updated_at=T0
    )

    await store.reopen()

    repo = store.repository
    assert await repo.get_order(1) == expected_order
    assert await repo.get_order_by_client_id("alice", "keep") == expected_order
    assert await repo.pending_orders() == [orders[1]]
    assert [o.id for o in await repo.active_orders(SYMBOL)] == [1]
    assert [t.id for t in (await repo.list_trades()).items] == [2, 1]
    assert await repo.pending_wallet_ops() == [settle_op(1), release_op(2)]
    assert await repo.last_ids() == (2, 2, 1, 2)
    balances = await store.wallet.balances("alice")
    assert (balances["USDT"].available, balances["USDT"].reserved) == (D("800.25"), D("200.25"))
    assert await store.wallet.reserved("1") == D("200.25")
    # and it keeps working
    await create(store, order(3))
    assert await ids(store) == [3, 2, 1]


async def test_close_is_idempotent_and_final(store: Store) -> None:
    await create(store, order(1))
    await store.repository.close()
    await store.repository.close()
    with pytest.raises(RuntimeError):
        await store.repository.get_order(1)
    with pytest.raises(RuntimeError):
        async with store.repository.transaction():
            pass


async def test_errors_are_tradebook_errors(store: Store) -> None:
    await create(store, order(1, status=OrderStatus.FILLED))
    async with store.repository.transaction() as uow:
        for call in (
            uow.create_order(order(1)),
            uow.cancel_order(1, updated_at=T0),
            uow.cancel_order(2, updated_at=T0),
        ):
            with pytest.raises(TradebookError):
                await call
