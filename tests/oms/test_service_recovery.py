"""OrderService life cycle, recovery on start (memory store), and failed writes.

Recovery here reuses the same MemoryOrderRepository and MemoryWallet objects
(what a restart over a durable store sees); the cross-adapter crash tests with
real processes live elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from _service_support import BTC, DEPOSITS, D, FailingRepository, book_queues, repo_of, service_env

from tradebook import OrderConflictError, OrderStatus, OrderType, PersistenceError, Side, TimeInForce
from tradebook.oms import OrderQuery, OrderRecord, OrderService, RecoveryReport

S, E = "BTC/USDT", "ETH/USDT"
USDT0, BTC0 = DEPOSITS["USDT"], DEPOSITS["BTC"]


@pytest.fixture
async def env():
    async with service_env() as e:
        yield e
        await e.check()


async def restart(env, **options) -> RecoveryReport:
    """Close the service and start a new one over the same repository and wallet."""
    await env.service.close()
    env.service = OrderService(env.repo, env.wallet, env.instruments, **options)
    return await env.service.start()


async def place_mix(env) -> None:
    svc = env.service
    await svc.place_order("alice", S, "SELL", "1", "101")
    await svc.place_order("carol", S, "SELL", "2", "101")
    await svc.place_order("alice", S, "SELL", "0.5", "102.5")
    await svc.place_order("bob", S, "BUY", "1.5", "101")  # fills alice, half of carol
    await svc.place_order("bob", S, "BUY", "1", "99")
    await svc.place_order("carol", S, "BUY", "2", "99")
    await svc.place_order("alice", S, "BUY", "1", "98")
    await svc.place_order("bob", E, "SELL", "3", "20")
    await svc.place_order("carol", E, "BUY", "1", "19.5")
    cancelled = await svc.place_order("carol", E, "BUY", "1", "19")
    await svc.cancel_order("carol", cancelled.id)
    await svc.place_order("alice", S, "BUY", "1", "90", time_in_force="IOC")


# -- life cycle --------------------------------------------------------------------


async def test_calls_before_start_raise_runtime_error():
    async with service_env() as env:
        fresh = OrderService(env.repo, env.wallet, env.instruments)
        calls = [
            lambda: fresh.place("bob", S, "BUY", "1", "100"),
            lambda: fresh.place_order("bob", S, "BUY", "1", "100"),
            lambda: fresh.cancel_order("bob", 1),
            lambda: fresh.get_order("bob", 1),
            lambda: fresh.list_orders("bob"),
            lambda: fresh.list_trades(),
            lambda: fresh.balances("bob"),
        ]
        for call in calls:
            with pytest.raises(RuntimeError, match="not started"):
                await call()
        with pytest.raises(RuntimeError, match="not started"):
            fresh.depth(S)
        assert env.wallet.calls == []


async def test_start_twice_is_an_error(env):
    with pytest.raises(RuntimeError, match="already started"):
        await env.service.start()


async def test_close_is_idempotent_and_closes_for_business(env):
    await env.service.place_order("bob", S, "BUY", "1", "100")
    await env.service.close()
    await env.service.close()
    with pytest.raises(RuntimeError, match="closed"):
        await env.service.place("bob", S, "BUY", "1", "100")
    with pytest.raises(RuntimeError, match="closed"):
        env.service.depth(S)
    with pytest.raises(RuntimeError, match="closed"):
        await env.service.cancel_order("bob", 1)
    with pytest.raises(RuntimeError, match="already started"):
        await env.service.start()
    await restart(env)  # the ports stay open: a new service carries on


async def test_close_before_start_is_harmless():
    async with service_env() as env:
        fresh = OrderService(env.repo, env.wallet, env.instruments)
        await fresh.close()
        await fresh.close()


async def test_async_with_starts_and_closes():
    async with service_env() as env:
        await env.service.close()
        async with OrderService(env.repo, env.wallet, env.instruments) as svc:
            order = await svc.place_order("bob", S, "BUY", "1", "100")
            assert order.status is OrderStatus.OPEN
        with pytest.raises(RuntimeError):
            await svc.get_order("bob", order.id)


async def test_start_on_an_empty_store_reports_nothing():
    async with service_env() as env:
        report = await restart(env)
        assert report == RecoveryReport(orders_restored={S: 0, E: 0})


# -- rebuilding books --------------------------------------------------------------


async def test_restart_rebuilds_every_book_with_its_priorities(env):
    await place_mix(env)
    depth = {s: env.service.depth(s, 1000) for s in (S, E)}
    queues = {s: book_queues(env.service, s) for s in (S, E)}
    balances = (await env.snapshot())["balances"]
    report = await restart(env)
    assert report.orders_restored == {S: 5, E: 2}
    assert report.pending_removed == [] and report.wallet_ops_outstanding == 0
    assert {s: env.service.depth(s, 1000) for s in (S, E)} == depth
    assert {s: book_queues(env.service, s) for s in (S, E)} == queues
    assert (await env.snapshot())["balances"] == balances


async def test_the_first_order_of_a_level_fills_first_after_a_restart(env):
    first = await env.service.place_order("alice", S, "SELL", "2", "100")
    second = await env.service.place_order("carol", S, "SELL", "1", "100")
    third = await env.service.place_order("alice", S, "SELL", "1", "100")
    await env.service.place_order("bob", S, "BUY", "1", "100")  # first is now partly filled
    await restart(env)
    assert book_queues(env.service, S) == [(Side.SELL, D("100"), [first.id, second.id, third.id])]
    placed = await env.service.place("bob", S, "BUY", "2.5", "100")
    assert [(t.sell_order_id, t.quantity) for t in placed.trades] == [
        (first.id, D("1")),
        (second.id, D("1")),
        (third.id, D("0.5")),
    ]
    got = await env.service.get_order("alice", first.id)
    assert (got.status, got.filled_quantity) == (OrderStatus.FILLED, D("2"))


async def test_ids_and_sequences_continue_after_a_restart(env):
    await place_mix(env)
    last = await repo_of(env.repo).last_ids()
    await restart(env)
    await env.service.place_order("alice", S, "SELL", "1", "100")
    placed = await env.service.place("bob", S, "BUY", "1", "100")
    assert placed.order.id == last[0] + 2
    assert placed.trades[0].id == last[1] + 1
    assert placed.order.sequence == last[2] + 2


async def test_recovered_orders_trade_and_cancel_normally(env):
    ask = await env.service.place_order("alice", S, "SELL", "2", "100")
    bid = await env.service.place_order("carol", S, "BUY", "1", "95")
    await restart(env)
    placed = await env.service.place("bob", S, "BUY", "1", "100")
    assert placed.trades[0].sell_order_id == ask.id
    assert (await env.service.cancel_order("carol", bid.id)).status is OrderStatus.CANCELLED
    assert await env.balance("alice", "USDT") == (USDT0 + 100, 0)
    assert await env.balance("carol", "USDT") == (USDT0, 0)


async def test_a_pending_order_left_in_the_repository_is_removed_and_released(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    for order_id, reserve in ((7, True), (8, False)):  # 8 crashed before its reservation
        pending = OrderRecord(
            id=order_id,
            user_id="bob",
            symbol=S,
            side=Side.BUY,
            type=OrderType.LIMIT,
            time_in_force=TimeInForce.GTC,
            price=D("100"),
            quantity=D("2"),
            filled_quantity=D("0"),
            status=OrderStatus.PENDING,
            created_at=now,
            updated_at=now,
            client_order_id=f"crash-{order_id}",
        )
        async with env.repo.transaction() as uow:
            await uow.create_order(pending)
        if reserve:
            await env.ledger.reserve("bob", "USDT", D("200"), str(order_id))
    assert await env.balance("bob", "USDT") == (USDT0 - 200, D("200"))
    report = await restart(env)
    assert report.pending_removed == [7, 8]
    assert await env.repo.get_order(7) is None and await env.repo.get_order(8) is None
    assert await env.repo.pending_orders() == []
    assert await env.balance("bob", "USDT") == (USDT0, 0)
    assert book_queues(env.service, S) == [(Side.SELL, D("100"), [1])]
    # the client order id is free again, and new ids do not collide with the removed ones
    placed = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="crash-7")
    assert placed.replayed is False and placed.order.id == 9


async def test_a_restart_with_fewer_instruments_still_settles_the_others_trades(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    await env.service.place_order("bob", E, "SELL", "1", "20")
    env.wallet.down = {"settle"}
    await env.service.place_order("carol", E, "BUY", "1", "20")  # its settlement waits in the outbox
    env.wallet.down = set()
    await env.service.close()
    only_btc = OrderService(env.repo, env.wallet, [BTC])
    report = await only_btc.start()
    # the ETH trade happened: its wallet operations are owed whatever the service trades now
    assert report.orders_restored == {S: 1}
    assert (report.wallet_ops_applied, report.wallet_ops_outstanding) == (2, 0)
    assert await env.balance("carol", "ETH") == (DEPOSITS["ETH"] + 1, 0)
    env.service = only_btc
    report = await restart(env)  # both instruments again: nothing is applied twice
    assert report.wallet_ops_applied == 0
    assert await env.balance("carol", "ETH") == (DEPOSITS["ETH"] + 1, 0)
    assert await env.repo.pending_wallet_ops() == []


# -- failed writes -----------------------------------------------------------------


async def test_a_placement_whose_commit_fails_leaves_the_book_and_the_wallet_as_they_were():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        a = await env.service.place_order("alice", S, "SELL", "1", "100")
        c = await env.service.place_order("carol", S, "SELL", "1", "100")
        await env.service.place_order("carol", S, "SELL", "1", "101")
        await env.service.place_order("alice", S, "BUY", "1", "99")
        before = await env.snapshot()
        repo.fail_on = "update_order"  # the transaction with the trades and order updates
        with pytest.raises(PersistenceError) as caught:
            await env.service.place("bob", S, "BUY", "2.5", "101", client_order_id="fails")
        assert caught.value.code == "persistence_error"
        assert isinstance(caught.value.__cause__, OSError)
        assert repo.failures == 1
        assert await env.snapshot() == before
        assert (await env.service.list_orders("bob")).items == []
        # the book is intact, priorities too: the same order now fills a, then c, then 101
        placed = await env.service.place("bob", S, "BUY", "2.5", "101", client_order_id="fails")
        assert placed.replayed is False
        assert [t.sell_order_id for t in placed.trades] == [a.id, c.id, c.id + 1]
        assert await env.balance("bob", "USDT") == (USDT0 - D("250.5"), 0)
        await env.check()


async def test_a_failed_commit_of_a_resting_order_leaves_nothing():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        before = await env.snapshot()
        repo.fail_on = "update_order"
        with pytest.raises(PersistenceError):
            await env.service.place("bob", S, "SELL", "1", "100")
        assert await env.snapshot() == before
        await env.check()


async def test_a_failed_write_of_the_pending_row_is_a_persistence_error():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        before = await env.snapshot()
        repo.fail_on = "create_order"
        with pytest.raises(PersistenceError):
            await env.service.place("bob", S, "BUY", "1", "100")
        assert await env.snapshot() == before
        assert env.wallet.called("reserve") == []
        await env.check()


async def test_a_symbol_whose_book_cannot_be_rebuilt_is_closed_until_restart():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        ask = await env.service.place_order("alice", S, "SELL", "1", "100")
        repo.fail_on = "update_order"
        repo.fail_active_orders = True
        with pytest.raises(PersistenceError):
            await env.service.place("bob", S, "BUY", "1", "100")
        repo.fail_active_orders = False
        with pytest.raises(PersistenceError, match="restart"):
            await env.service.place("bob", S, "BUY", "1", "100")
        with pytest.raises(PersistenceError, match="restart"):
            await env.service.cancel_order("alice", ask.id)
        # other symbols carry on
        assert (await env.service.place_order("bob", E, "BUY", "1", "10")).status is OrderStatus.OPEN
        assert await env.balance("bob", "USDT") == (USDT0 - 10, D("10"))
        # the undone taker left nothing; a restart rebuilds the symbol from the repository
        await restart(env)
        assert book_queues(env.service, S) == [(Side.SELL, D("100"), [ask.id])]
        placed = await env.service.place("bob", S, "BUY", "1", "100")
        assert placed.order.status is OrderStatus.FILLED
        await env.check()


async def test_list_orders_after_recovery_matches_before(env):
    await place_mix(env)
    before = {u: (await env.service.list_orders(u, OrderQuery(limit=1000))).items for u in env.users}
    await restart(env)
    after = {u: (await env.service.list_orders(u, OrderQuery(limit=1000))).items for u in env.users}
    assert after == before


async def test_an_unexpected_error_in_the_commit_propagates_as_is_and_still_leaves_nothing():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        await env.service.place_order("alice", S, "SELL", "1", "100")
        before = await env.snapshot()
        repo.fail_on, repo.error = "update_order", RuntimeError("a bug in the adapter")
        with pytest.raises(RuntimeError, match="a bug"):
            await env.service.place("bob", S, "BUY", "1", "100")
        assert await env.snapshot() == before
        await env.check()


async def test_a_conflict_reported_by_the_repository_during_a_cancel_stays_a_conflict():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        order = await env.service.place_order("bob", S, "BUY", "1", "100")
        before = await env.snapshot()
        repo.raise_in, repo.error = "cancel_order", OrderConflictError("changed under us")
        with pytest.raises(OrderConflictError, match="changed under us"):
            await env.service.cancel_order("bob", order.id)
        assert await env.snapshot() == before
        assert (await env.service.cancel_order("bob", order.id)).status is OrderStatus.CANCELLED
        await env.check()


async def test_a_failure_to_mark_applied_operations_done_fails_that_command_only():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        await env.service.place_order("alice", S, "SELL", "1", "100")
        await env.service.place_order("bob", S, "BUY", "1", "100")  # two operations applied, not yet marked done
        assert len(await env.repo.pending_wallet_ops()) == 2
        before = await env.snapshot()
        repo.raise_in = "mark_wallet_ops_done"
        with pytest.raises(PersistenceError):
            await env.service.place("carol", S, "BUY", "1", "99")
        assert await env.snapshot() == before
        assert len(await env.repo.pending_wallet_ops()) == 2
        # the next transaction marks them done after all
        await env.service.place_order("carol", S, "BUY", "1", "99")
        assert await env.repo.pending_wallet_ops() == []
        await env.check()
