"""OrderService and its wallet: insufficient balance, a wallet that is down, the circuit breaker, the outbox."""

from __future__ import annotations

import pytest
from _service_support import DEPOSITS, D, SpyWallet, service_env

from tradebook import InsufficientBalanceError, OrderStatus, WalletUnavailableError
from tradebook.oms import BreakerState, CircuitBreakerWallet, OrderService, Release

S, E = "BTC/USDT", "ETH/USDT"
USDT0, BTC0 = DEPOSITS["USDT"], DEPOSITS["BTC"]


@pytest.fixture
async def env():
    async with service_env() as e:
        yield e
        await e.check()


async def seed_book(env) -> None:
    await env.service.place_order("alice", S, "SELL", "1", "100")
    await env.service.place_order("carol", S, "BUY", "1", "90")


# -- insufficient balance ----------------------------------------------------------


@pytest.mark.parametrize(
    ("deposits", "side", "quantity", "price"),
    [
        ({"USDT": D("99.99")}, "BUY", "1", "100"),
        ({"BTC": D("0.999")}, "SELL", "1", "100"),
        ({}, "BUY", "0.001", "0.01"),
        ({"USDT": D("1000")}, "SELL", "1", "100"),  # has quote, needs base
    ],
)
async def test_insufficient_balance_leaves_nothing_behind(deposits, side, quantity, price):
    async with service_env(deposits=None) as env:
        for asset, amount in deposits.items():
            await env.ledger.deposit("bob", asset, amount)
        await env.ledger.deposit("alice", "BTC", 5)
        await env.ledger.deposit("carol", "USDT", 500)
        env.initial_totals = await env.ledger.totals()
        await seed_book(env)
        before = await env.snapshot()
        with pytest.raises(InsufficientBalanceError) as caught:
            await env.service.place("bob", S, side, quantity, price, client_order_id="c1")
        assert caught.value.code == "insufficient_balance"
        assert not isinstance(caught.value, WalletUnavailableError)
        assert await env.snapshot() == before
        assert (await env.service.list_orders("bob")).items == []
        # the client order id is still free: a funded retry is a new order, not a replay
        await env.ledger.deposit("bob", "USDT" if side == "BUY" else "BTC", 1000)
        env.initial_totals = await env.ledger.totals()
        retry = await env.service.place("bob", S, side, quantity, price, client_order_id="c1")
        assert retry.replayed is False and retry.order.status is not OrderStatus.PENDING
        await env.check()


async def test_exactly_enough_balance_is_enough():
    async with service_env(deposits={"USDT": D("100.5"), "BTC": D("0.5")}) as env:
        buy = await env.service.place_order("bob", S, "BUY", "1", "100.5")
        sell = await env.service.place_order("bob", S, "SELL", "0.5", "101")
        assert buy.status is sell.status is OrderStatus.OPEN
        assert await env.balance("bob", "USDT") == (0, D("100.5"))
        assert await env.balance("bob", "BTC") == (0, D("0.5"))
        await env.check()


async def test_funds_held_by_open_orders_cannot_be_spent_twice():
    async with service_env(deposits={"USDT": D("150")}) as env:
        await env.service.place_order("bob", S, "BUY", "1", "100")
        with pytest.raises(InsufficientBalanceError):
            await env.service.place_order("bob", S, "BUY", "1", "50.01")
        await env.service.place_order("bob", S, "BUY", "1", "50")
        assert await env.balance("bob", "USDT") == (0, D("150"))
        await env.check()


# -- the wallet is down ------------------------------------------------------------


async def test_wallet_down_for_reservations_leaves_nothing_behind(env):
    await seed_book(env)
    before = await env.snapshot()
    env.wallet.down = {"reserve"}
    with pytest.raises(WalletUnavailableError) as caught:
        await env.service.place("bob", S, "BUY", "1", "100", client_order_id="w1")
    assert caught.value.code == "wallet_unavailable"
    assert not isinstance(caught.value, InsufficientBalanceError)
    assert await env.snapshot() == before
    assert (await env.service.list_orders("bob")).items == []
    env.wallet.down = set()
    retry = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="w1")
    assert retry.replayed is False and retry.order.status is OrderStatus.FILLED
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)


async def test_wallet_down_entirely_leaves_no_order_row():
    async with service_env() as env:
        await seed_book(env)
        env.wallet.down = {"reserve", "release"}
        with pytest.raises(WalletUnavailableError):
            await env.service.place("bob", S, "BUY", "1", "100", client_order_id="w1")
        assert (await env.service.list_orders("bob")).items == []


async def test_wallet_down_entirely_reserves_nothing_and_a_retry_places_the_order(env):
    await seed_book(env)
    before = await env.snapshot()
    env.wallet.down = {"reserve", "release"}
    with pytest.raises(WalletUnavailableError):
        await env.service.place("bob", S, "BUY", "1", "100", client_order_id="w1")
    after = await env.snapshot()
    for key in ("reservations", "balances", "books", "trades"):
        assert after[key] == before[key]
    # a retry while the wallet is still down fails the same way and places nothing
    with pytest.raises(WalletUnavailableError):
        await env.service.place("bob", S, "BUY", "1", "100", client_order_id="w1")
    assert (await env.snapshot())["books"] == before["books"]
    env.wallet.down = set()
    retry = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="w1")
    assert retry.replayed is False
    assert retry.order.status is OrderStatus.FILLED
    assert [o.id for o in (await env.service.list_orders("bob")).items] == [retry.order.id]
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)
    again = await env.service.place("bob", S, "BUY", "1", "100", client_order_id="w1")
    assert again.replayed is True and again.order.id == retry.order.id


async def test_a_release_owed_after_a_wallet_outage_is_applied_at_start(env):
    env.wallet.down = {"reserve", "release"}
    with pytest.raises(WalletUnavailableError):
        await env.service.place("bob", S, "BUY", "1", "100", client_order_id="w1")
    assert (await env.service.list_orders("bob")).items == []  # no row, only the owed release
    assert [op.op for op in await env.repo.pending_wallet_ops()] == [Release("1")]
    env.wallet.down = set()
    await env.service.close()
    second = OrderService(env.repo, env.wallet, env.instruments)
    report = await second.start()
    assert (report.pending_removed, report.wallet_ops_applied) == ([], 1)
    env.service = second
    assert await env.repo.pending_wallet_ops() == []
    # the id of the undone order is not handed out again
    placed = await second.place("bob", S, "BUY", "1", "90", client_order_id="w1")
    assert placed.order.id == 2


# -- the circuit breaker in front of the wallet --------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def breaker_env(**kwargs):
    spy = SpyWallet()
    clock = FakeClock()
    breaker = CircuitBreakerWallet(spy, clock=clock, call_timeout=None, **kwargs)
    return service_env(wallet=breaker), spy, breaker, clock


async def test_an_open_breaker_fails_fast_without_calling_the_wallet():
    ctx, spy, breaker, clock = await breaker_env(failure_threshold=1, reset_timeout=30.0)
    async with ctx as env:
        await seed_book(env)
        spy.down = {"balances"}
        with pytest.raises(WalletUnavailableError):
            await breaker.balances("bob")  # one failure opens it
        spy.down = set()
        assert breaker.state is BreakerState.OPEN
        attempts = dict(spy.attempts)
        before = await env.snapshot()
        with pytest.raises(WalletUnavailableError, match="circuit breaker is open"):
            await env.service.place("bob", S, "BUY", "1", "100")
        assert dict(spy.attempts) == attempts, "the open breaker called the wallet"
        after = await env.snapshot()
        for key in ("reservations", "balances", "books", "depth", "trades"):
            assert after[key] == before[key]
        # once the reset timeout passes, a trial goes through and closes it
        clock.now += 30
        assert breaker.state is BreakerState.HALF_OPEN
        placed = await env.service.place("bob", S, "SELL", "1", "101")
        assert placed.order.status is OrderStatus.OPEN and breaker.state is BreakerState.CLOSED


async def test_an_open_breaker_leaves_no_order_row():
    ctx, spy, breaker, _clock = await breaker_env(failure_threshold=1, reset_timeout=30.0)
    async with ctx as env:
        spy.down = {"balances"}
        with pytest.raises(WalletUnavailableError):
            await breaker.balances("bob")
        with pytest.raises(WalletUnavailableError):
            await env.service.place("bob", S, "BUY", "1", "100")
        assert (await env.service.list_orders("bob")).items == []


async def test_the_breaker_opens_on_a_wallet_that_keeps_failing_and_closes_when_it_is_back():
    ctx, spy, breaker, clock = await breaker_env(failure_threshold=3, reset_timeout=10.0)
    async with ctx as env:
        spy.down = {"reserve"}
        for _ in range(3):  # reserve fails, the release of the undo succeeds: the count restarts each time
            with pytest.raises(WalletUnavailableError):
                await env.service.place("bob", S, "BUY", "1", "100")
        assert breaker.state is BreakerState.CLOSED
        spy.down = {"reserve", "balances"}
        for _ in range(2):
            with pytest.raises(WalletUnavailableError):
                await env.service.balances("bob")
        with pytest.raises(WalletUnavailableError):
            await env.service.place("bob", S, "SELL", "1", "100")
        assert breaker.state is BreakerState.OPEN
        spy.down = set()
        calls = len(spy.calls)
        with pytest.raises(WalletUnavailableError):
            await env.service.balances("bob")
        assert len(spy.calls) == calls
        clock.now += 10
        assert (await env.service.balances("bob"))["USDT"].available == USDT0
        assert breaker.state is BreakerState.CLOSED


# -- the outbox: wallet operations recorded with the trades, applied after the commit --


async def test_a_failed_settlement_does_not_fail_the_placement_and_is_retried_on_the_next_command(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    env.wallet.down = {"settle"}
    placed = await env.service.place("bob", S, "BUY", "2", "105")
    assert placed.order.status is OrderStatus.PARTIALLY_FILLED and len(placed.trades) == 1
    assert (await env.repo.get_order(placed.order.id)).filled_quantity == D("1")
    # nothing moved yet: the settlement, and bob's price-improvement release behind it, wait
    assert await env.balance("bob", "USDT") == (USDT0 - 210, D("210"))
    assert await env.balance("alice", "BTC") == (BTC0 - 1, D("1"))
    assert [op.kind for op in await env.repo.pending_wallet_ops()] == ["settle", "release"]
    env.wallet.down = set()
    # a query does not apply them; a command on another symbol does not either
    await env.service.get_order("bob", placed.order.id)
    await env.service.place_order("carol", E, "BUY", "1", "10")
    assert await env.balance("bob", "USDT") == (USDT0 - 210, D("210"))
    # the next command on the symbol applies them first, in order
    await env.service.place_order("carol", S, "BUY", "1", "90")
    assert await env.balance("bob", "USDT") == (USDT0 - 100 - 105, D("105"))
    assert await env.balance("bob", "BTC") == (BTC0 + 1, 0)
    assert await env.balance("alice", "BTC") == (BTC0 - 1, 0)
    assert await env.balance("alice", "USDT") == (USDT0 + 100, 0)
    settles = [args[0].trade_id for args in env.wallet.called("settle")]
    assert settles == [placed.trades[0].id]
    await env.service.close()
    assert await env.repo.pending_wallet_ops() == []


async def test_a_cancel_also_applies_the_symbols_waiting_operations(env):
    await env.service.place_order("alice", S, "SELL", "1", "100")
    env.wallet.down = {"settle"}
    bob = await env.service.place_order("bob", S, "BUY", "3", "100")
    env.wallet.down = set()
    await env.service.cancel_order("bob", bob.id)
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)
    assert await env.balance("bob", "BTC") == (BTC0 + 1, 0)


async def test_waiting_operations_are_applied_at_start_exactly_once():
    wallet = SpyWallet()
    async with service_env(wallet=wallet) as env:
        await env.service.place_order("alice", S, "SELL", "1", "100")
        wallet.down = {"settle"}
        placed = await env.service.place("bob", S, "BUY", "1", "100")
        assert placed.order.status is OrderStatus.FILLED
    assert len(await env.repo.pending_wallet_ops()) == 2
    wallet.down = set()
    second = OrderService(env.repo, wallet, env.instruments)
    report = await second.start()
    assert (report.wallet_ops_applied, report.wallet_ops_outstanding) == (2, 0)
    assert await env.repo.pending_wallet_ops() == []  # marked done during start
    env.service = second
    assert await env.balance("bob", "BTC") == (BTC0 + 1, 0)
    assert await env.balance("bob", "USDT") == (USDT0 - 100, 0)
    assert await env.balance("alice", "USDT") == (USDT0 + 100, 0)
    await env.check()
    await second.close()
    third = OrderService(env.repo, wallet, env.instruments)
    assert (await third.start()).wallet_ops_applied == 0
    assert [args[0].trade_id for args in wallet.called("settle")] == [placed.trades[0].id]
    await third.close()


async def test_operations_applied_but_not_yet_marked_done_are_harmless_to_apply_again():
    """A crash between applying operations and recording that: recovery applies them again."""
    wallet = SpyWallet()
    async with service_env(wallet=wallet) as env:
        await env.service.place_order("alice", S, "SELL", "1", "100")
        await env.service.place_order("bob", S, "BUY", "2", "105")  # settles and releases at once
        assert len(await env.repo.pending_wallet_ops()) == 2  # applied, not yet marked done
        before = await env.snapshot()
        second = OrderService(env.repo, wallet, env.instruments)  # the first one "crashed"
        report = await second.start()
        assert report.wallet_ops_applied == 2
        env.service = second
        after = await env.snapshot()
        assert after["balances"] == before["balances"] and after["reservations"] == before["reservations"]
        assert await env.balance("bob", "USDT") == (USDT0 - 100 - 105, D("105"))
        await env.check()


async def test_a_wallet_still_down_at_start_leaves_the_operations_outstanding():
    wallet = SpyWallet()
    async with service_env(wallet=wallet) as env:
        await env.service.place_order("alice", S, "SELL", "1", "100")
        wallet.down = {"settle"}
        await env.service.place_order("bob", S, "BUY", "1", "100")
    second = OrderService(env.repo, wallet, env.instruments)
    report = await second.start()
    assert (report.wallet_ops_applied, report.wallet_ops_outstanding) == (0, 2)
    wallet.down = set()
    env.service = second
    await second.place_order("carol", S, "BUY", "1", "1")
    assert await env.balance("bob", "BTC") == (BTC0 + 1, 0)
    await env.check()
    await second.close()
    assert await env.repo.pending_wallet_ops() == []
