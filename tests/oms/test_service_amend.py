"""OrderService.amend_order: the engine's priority rules, exact reservations, refusals that change nothing.

The store-parametrized cases run on every adapter family (memory, SQLite and,
with TRADEBOOK_TEST_POSTGRES_DSN, PostgreSQL), restarting the service on the
same storage to show the amend was stored.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from _service_support import DEPOSITS, D, FailingRepository, book_queues, service_env
from _stores import Store

from tradebook import (
    Instrument,
    InsufficientBalanceError,
    InvalidPriceError,
    InvalidQuantityError,
    InvalidRequestError,
    LevelSnapshot,
    OrderConflictError,
    OrderNotFoundError,
    OrderStatus,
    PersistenceError,
)
from tradebook.oms import MemoryOrderRepository, OrderService

S = "BTC/USDT"
USDT0, BTC0 = DEPOSITS["USDT"], DEPOSITS["BTC"]


@pytest.fixture
async def env():
    async with service_env() as e:
        yield e
        await e.check()


async def test_lowering_the_quantity_keeps_priority_and_releases_exactly(env):
    a = await env.service.place_order("alice", S, "BUY", "2", "100")
    b = await env.service.place_order("bob", S, "BUY", "1", "100")
    amended = await env.service.amend_order("alice", a.id, quantity="1.5")
    assert amended.order.quantity == D("1.5") and amended.order.sequence == a.sequence
    assert book_queues(env.service, S)[0][2] == [a.id, b.id]
    assert await env.balance("alice", "USDT") == (USDT0 - 150, D("150"))
    assert (await env.repo.get_order(a.id)).quantity == D("1.5")


async def test_raising_the_quantity_goes_to_the_back_and_reserves_the_growth(env):
    a = await env.service.place_order("alice", S, "SELL", "2", "100")
    b = await env.service.place_order("bob", S, "SELL", "1", "100")
    amended = await env.service.amend_order("alice", a.id, quantity="3")
    assert amended.order.sequence > b.sequence
    assert book_queues(env.service, S)[0][2] == [b.id, a.id]
    assert await env.balance("alice", "BTC") == (BTC0 - 3, D("3"))
    placed = await env.service.place("carol", S, "BUY", "2", "100")
    assert [t.sell_order_id for t in placed.trades] == [b.id, a.id]


async def test_a_new_price_moves_the_order_and_its_reservation(env):
    a = await env.service.place_order("alice", S, "BUY", "2", "100")
    await env.service.amend_order("alice", a.id, price="90")
    assert env.service.depth(S).bids == [LevelSnapshot(D("90"), D("2"), 1)]
    assert await env.balance("alice", "USDT") == (USDT0 - 180, D("180"))
    await env.service.amend_order("alice", a.id, price="95.5", quantity="3")
    assert await env.balance("alice", "USDT") == (USDT0 - D("286.5"), D("286.5"))
    record = await env.repo.get_order(a.id)
    assert (record.price, record.quantity) == (D("95.5"), D("3"))


async def test_a_price_that_crosses_trades_at_the_makers_price_and_releases_the_surplus(env):
    await env.service.place_order("bob", S, "SELL", "1", "101")
    a = await env.service.place_order("alice", S, "BUY", "2", "100")
    amended = await env.service.amend_order("alice", a.id, price="102")
    assert [(t.price, t.quantity) for t in amended.trades] == [(D("101"), D("1"))]
    assert amended.order.status is OrderStatus.PARTIALLY_FILLED and amended.order.price == D("102")
    assert env.service.depth(S).bids == [LevelSnapshot(D("102"), D("1"), 1)]
    assert await env.balance("alice", "USDT") == (USDT0 - 101 - 102, D("102"))
    assert await env.balance("alice", "BTC") == (BTC0 + 1, 0)
    assert await env.balance("bob", "USDT") == (USDT0 + 101, 0)


async def test_a_crossing_amend_that_fills_completely(env):
    await env.service.place_order("bob", S, "SELL", "2", "101")
    a = await env.service.place_order("alice", S, "BUY", "2", "100")
    amended = await env.service.amend_order("alice", a.id, price="101")
    assert amended.order.status is OrderStatus.FILLED
    assert await env.balance("alice", "USDT") == (USDT0 - 202, 0)
    with pytest.raises(OrderConflictError):
        await env.service.amend_order("alice", a.id, quantity="3")


async def test_an_unfundable_growth_is_refused_and_changes_nothing(env):
    a = await env.service.place_order("alice", S, "BUY", "1", "100")
    other = await env.service.place_order("bob", S, "BUY", "1", "100")
    before = await env.snapshot()
    queues = book_queues(env.service, S)
    with pytest.raises(InsufficientBalanceError):
        await env.service.amend_order("alice", a.id, quantity="2000")
    with pytest.raises(InsufficientBalanceError):
        await env.service.amend_order("alice", a.id, price="200000")
    assert await env.snapshot() == before and book_queues(env.service, S) == queues
    assert other.id in queues[0][2]


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({}, InvalidRequestError),
        ({"quantity": "0.0001"}, InvalidQuantityError),
        ({"price": "100.001"}, InvalidPriceError),
        ({"quantity": "-1"}, InvalidQuantityError),
    ],
)
async def test_bad_values_are_refused(env, changes, error):
    a = await env.service.place_order("alice", S, "BUY", "1", "100")
    before = await env.snapshot()
    with pytest.raises(error):
        await env.service.amend_order("alice", a.id, **changes)
    assert await env.snapshot() == before


async def test_the_quantity_must_exceed_what_is_filled(env):
    a = await env.service.place_order("alice", S, "SELL", "2", "100")
    await env.service.place_order("bob", S, "BUY", "1", "100")
    with pytest.raises(InvalidQuantityError):
        await env.service.amend_order("alice", a.id, quantity="1")
    amended = await env.service.amend_order("alice", a.id, quantity="1.5")
    assert amended.order.status is OrderStatus.PARTIALLY_FILLED
    assert await env.balance("alice", "BTC") == (BTC0 - D("1.5"), D("0.5"))


async def test_the_same_values_change_nothing(env):
    a = await env.service.place_order("alice", S, "BUY", "1", "100")
    amended = await env.service.amend_order("alice", a.id, quantity="1", price="100")
    assert amended.order == a and amended.trades == ()


async def test_another_users_order_and_unknown_ids_are_not_found(env):
    a = await env.service.place_order("alice", S, "BUY", "1", "100")
    for user, order_id in (("bob", a.id), ("alice", 999), ("alice", 0)):
        with pytest.raises(OrderNotFoundError):
            await env.service.amend_order(user, order_id, quantity="2")


async def test_cancelled_orders_icebergs_and_stops_are_conflicts(env):
    a = await env.service.place_order("alice", S, "BUY", "1", "100")
    await env.service.cancel_order("alice", a.id)
    iceberg = await env.service.place_order("alice", S, "BUY", "2", "99", display_quantity="1")
    market = await env.service.place_order("bob", S, "SELL", "0.5", "120")
    for order_id in (a.id, iceberg.id, market.id):
        if order_id == market.id:
            await env.service.cancel_order("bob", order_id)
        with pytest.raises(OrderConflictError):
            await env.service.amend_order("bob" if order_id == market.id else "alice", order_id, quantity="3")


async def test_a_wallet_without_reserve_more_refuses_only_growth():
    class Plain:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            if name == "reserve_more":
                raise AttributeError(name)
            return getattr(self.inner, name)

    from tradebook.oms import MemoryWallet

    inner = MemoryWallet()
    async with service_env(wallet=Plain(inner)) as env:
        a = await env.service.place_order("alice", S, "BUY", "2", "100")
        with pytest.raises(OrderConflictError):
            await env.service.amend_order("alice", a.id, quantity="3")
        await env.service.amend_order("alice", a.id, quantity="1")
        assert await env.balance("alice", "USDT") == (USDT0 - 100, D("100"))


async def test_a_failed_write_leaves_the_order_and_its_reservation_as_they_were():
    repo = FailingRepository(MemoryOrderRepository())
    async with service_env(repo=repo) as env:
        a = await env.service.place_order("alice", S, "BUY", "1", "100")
        before = await env.snapshot()
        repo.fail_on = "update_order"
        with pytest.raises(PersistenceError):
            await env.service.amend_order("alice", a.id, quantity="2", price="101")
        repo.fail_on = None
        assert await env.snapshot() == before
        assert env.service.depth(S).bids == [LevelSnapshot(D("100"), D("1"), 1)]


# -- every store: stored, and rebuilt as amended after a restart -----------------------------------------

BTC = Instrument(S, "0.01", "0.001")


async def test_an_amend_is_stored_on_every_store(store: Store) -> None:
    for user in ("alice", "bob", "carol"):
        await store.wallet.deposit(user, "USDT", D("10000"))
        await store.wallet.deposit(user, "BTC", D("10"))
    service = OrderService(store.repository, store.wallet, [BTC], expiry_interval=None)
    await service.start()
    a = await service.place_order("alice", S, "BUY", "2", "100")
    b = await service.place_order("bob", S, "BUY", "1", "100")
    await service.amend_order("alice", a.id, quantity="3")  # to the back, 100 more reserved
    assert await store.wallet.reserved(str(a.id)) == D("300")
    with pytest.raises(InsufficientBalanceError):
        await service.amend_order("alice", a.id, quantity="1000")
    assert await store.wallet.reserved(str(a.id)) == D("300")
    await service.amend_order("alice", a.id, quantity="2.5")  # keeps its (new) place, 50 released
    assert await store.wallet.reserved(str(a.id)) == D("250")
    await service.close()
    await store.reopen()
    again = OrderService(store.repository, store.wallet, [BTC], expiry_interval=None)
    await again.start()
    assert book_queues(again, S)[0][2] == [b.id, a.id]
    record = await again.get_order("alice", a.id)
    assert (record.quantity, record.price) == (D("2.5"), D("100"))
    await again.place_order("carol", S, "SELL", "3", "100")
    assert (await again.get_order("alice", a.id)).filled_quantity == D("2")
    balance = (await store.wallet.balances("alice"))["USDT"]
    assert (balance.available, balance.reserved) == (D("10000") - 250, D("50"))
    await again.close()


async def test_reserve_more_refuses_without_funds_on_every_store(store: Store) -> None:
    await store.wallet.deposit("alice", "USDT", D("100"))
    await store.wallet.reserve("alice", "USDT", D("40"), "r")
    held = await store.wallet.reserve_more("alice", "USDT", D("50"), "r")
    assert held.amount == D("90")
    with pytest.raises(InsufficientBalanceError):
        await store.wallet.reserve_more("alice", "USDT", D("11"), "r")
    assert await store.wallet.reserved("r") == D("90")
    fresh = await store.wallet.reserve_more("alice", "USDT", D("10"), "s")
    assert fresh.amount == D("10")
    balance = (await store.wallet.balances("alice"))["USDT"]
    assert (balance.available, balance.reserved) == (D(0), D("100"))
    assert isinstance(held.amount, Decimal)


async def test_the_breaker_passes_reserve_more_through_or_says_it_cannot():
    from tradebook.oms import CircuitBreakerWallet, MemoryWallet

    inner = MemoryWallet()
    await inner.deposit("alice", "USDT", "10")
    breaker = CircuitBreakerWallet(inner)
    assert (await breaker.reserve_more("alice", "USDT", D("4"), "r")).amount == D("4")

    class Bare:
        pass

    with pytest.raises(NotImplementedError):
        await CircuitBreakerWallet(Bare()).reserve_more("alice", "USDT", D("1"), "r")  # type: ignore[arg-type]
