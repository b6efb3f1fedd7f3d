"""The new order types when things fail, and the service's clock (memory adapters).

A cascade or an expiry whose transaction fails changes nothing (the symbol's
engine is rebuilt from the repository, waiting stops and all); the background
expiry task expires what is due and survives its own failures; time never goes
back.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from _service_support import (
    BTC,
    DEPOSITS,
    D,
    FailingRepository,
    ManualClock,
    engine_state,
    repo_of,
    service_env,
)

from tradebook import Instrument, OrderStatus, PersistenceError
from tradebook.oms import OrderService

S = "BTC/USDT"
STOPS = Instrument(S, "0.01", "0.001", max_price="1000")
USDT0 = DEPOSITS["USDT"]


async def test_a_failed_commit_of_a_cascade_changes_nothing_and_the_stops_still_wait():
    repo = FailingRepository()
    async with service_env(instruments=(STOPS,), repo=repo) as env:
        svc = env.service
        await svc.place_order("carol", S, "BUY", "1", "100")
        await svc.place_order("carol", S, "BUY", "1", "99")
        stop = await svc.place_order("alice", S, "SELL", "1", type="STOP", stop_price="99")
        trail = await svc.place_order("alice", S, "SELL", "1", type="TRAILING_STOP", trailing_offset="5")
        ice = await svc.place_order("alice", S, "SELL", "2", "120", display_quantity="0.5")
        before, state = await env.snapshot(), engine_state(svc._engines[S], S)
        repo.fail_on = "record_trades"
        with pytest.raises(PersistenceError):
            await svc.place("bob", S, "SELL", "2", "99")  # would trade at 100 and 99 and trigger the stop
        assert await env.snapshot() == before
        assert engine_state(svc._engines[S], S) == state
        for order in (stop, trail):
            assert (await env.repo.get_order(order.id)).status is OrderStatus.UNTRIGGERED
        # and when it works, the stop triggers as it would have
        placed = await svc.place("bob", S, "SELL", "2", "99")
        assert [run.order.id for run in placed.triggered] == [stop.id]
        assert (await env.repo.get_order(ice.id)).visible_quantity == D("0.5")
        await env.check()


async def test_a_failed_commit_after_an_iceberg_refresh_restores_its_slice_and_place():
    repo = FailingRepository()
    async with service_env(repo=repo) as env:
        svc = env.service
        ice = await svc.place_order("alice", S, "SELL", "3", "100", display_quantity="1")
        await svc.place_order("carol", S, "SELL", "1", "100")
        state = engine_state(svc._engines[S], S)
        repo.fail_on = "update_order"
        with pytest.raises(PersistenceError):
            await svc.place("bob", S, "BUY", "1.2", "100")
        assert engine_state(svc._engines[S], S) == state
        placed = await svc.place("bob", S, "BUY", "1.2", "100")
        assert [(t.sell_order_id, t.quantity) for t in placed.trades] == [(ice.id, D(1)), (ice.id + 1, D("0.2"))]
        await env.check()


async def test_a_failed_expiry_is_a_persistence_error_and_the_orders_expire_on_the_next_tick():
    repo, clock = FailingRepository(), ManualClock()
    async with service_env(repo=repo, clock=clock) as env:
        svc = env.service
        order = await svc.place_order("alice", S, "BUY", "1", "90", time_in_force="GTD", expire_at=clock.ms(seconds=1))
        clock.advance(seconds=1)
        repo.fail_on = "update_order"
        with pytest.raises(PersistenceError, match="expiry"):
            await svc.advance_time()
        stored = await env.repo.get_order(order.id)
        assert stored.status is OrderStatus.OPEN and await env.wallet.inner.reserved(str(order.id)) == 90
        await env.check()  # the book holds it again, as the repository does
        (expired,) = await svc.advance_time()
        assert expired.id == order.id and await env.balance("alice", "USDT") == (USDT0, 0)
        await env.check()


async def test_a_placement_refused_because_an_expiry_could_not_be_stored_leaves_nothing():
    repo, clock = FailingRepository(), ManualClock()
    async with service_env(repo=repo, clock=clock) as env:
        await env.service.place_order("alice", S, "BUY", "1", "90", time_in_force="GTD", expire_at=clock.ms(seconds=1))
        clock.advance(seconds=5)
        before = await env.snapshot()
        repo.fail_on = "update_order"
        with pytest.raises(PersistenceError):
            await env.service.place("bob", S, "SELL", "1", "90")  # must not trade with the expired bid
        assert await env.snapshot() == before
        placed = await env.service.place("bob", S, "SELL", "1", "90")
        assert (placed.order.status, placed.trades) == (OrderStatus.OPEN, ())
        await env.check()


async def test_the_background_task_expires_gtd_orders_on_the_clock():
    clock = ManualClock()
    async with service_env(clock=clock, expiry_interval=0.01) as env:
        order = await env.service.place_order(
            "alice", S, "SELL", "1", "200", time_in_force="GTD", expire_at=clock.now + timedelta(seconds=3)
        )
        await asyncio.sleep(0.03)
        assert (await env.repo.get_order(order.id)).status is OrderStatus.OPEN
        clock.advance(seconds=3)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if (await env.repo.get_order(order.id)).status is OrderStatus.EXPIRED:
                break
        assert (await env.repo.get_order(order.id)).status is OrderStatus.EXPIRED
        assert await env.balance("alice", "BTC") == (DEPOSITS["BTC"], 0)
        await env.check()
    assert env.service._expiry_task is None  # close() stopped it


async def test_the_background_task_logs_a_failure_and_goes_on(caplog: pytest.LogCaptureFixture):
    repo, clock = FailingRepository(), ManualClock()
    async with service_env(repo=repo, clock=clock, expiry_interval=0.01) as env:
        order = await env.service.place_order("alice", S, "SELL", "1", "200", time_in_force="GTD", expire_at=0 + 1)
        assert order.status is OrderStatus.EXPIRED  # already due when placed
        order = await env.service.place_order(
            "alice", S, "SELL", "1", "200", time_in_force="GTD", expire_at=clock.ms(seconds=1)
        )
        repo.fail_on = "update_order"
        with caplog.at_level(logging.WARNING, logger="tradebook.oms"):
            clock.advance(seconds=1)
            for _ in range(200):
                await asyncio.sleep(0.01)
                if (await env.repo.get_order(order.id)).status is OrderStatus.EXPIRED:
                    break
        assert repo.failures == 1
        assert "could not expire GTD orders" in caplog.text
        assert (await env.repo.get_order(order.id)).status is OrderStatus.EXPIRED
        await env.check()


async def test_a_clock_that_goes_back_stops_the_engine_time_until_it_catches_up():
    clock = ManualClock()
    async with service_env(clock=clock) as env:
        svc = env.service
        order = await svc.place_order("alice", S, "BUY", "1", "90", time_in_force="GTD", expire_at=clock.ms(seconds=10))
        engine_time = svc._engines[S].time
        clock.advance(seconds=-60)
        assert await svc.advance_time() == []
        assert svc._engines[S].time == engine_time
        placed = await svc.place("bob", S, "SELL", "0.5", "90")  # commands still run
        assert placed.order.status is OrderStatus.FILLED
        assert await svc.advance_time(clock.now + timedelta(seconds=70)) == [
            (await env.repo.get_order(order.id))
        ]  # an explicit time
        await env.check()


async def test_advance_time_skips_a_symbol_closed_after_a_storage_failure():
    clock = ManualClock()
    async with service_env(clock=clock) as env:
        svc = env.service
        order = await svc.place_order("alice", S, "BUY", "1", "90", time_in_force="GTD", expire_at=clock.ms(seconds=1))
        svc._broken.add(S)
        clock.advance(seconds=2)
        assert await svc.advance_time() == []
        svc._broken.discard(S)
        assert [o.id for o in await svc.advance_time()] == [order.id]
        await env.check()


@pytest.mark.parametrize("interval", [0, -1, True, "1", float("inf"), float("nan")])
def test_expiry_interval_must_be_a_positive_number_of_seconds(interval: object):
    from tradebook.oms import MemoryOrderRepository, MemoryWallet

    with pytest.raises(ValueError, match="expiry_interval"):
        OrderService(MemoryOrderRepository(), MemoryWallet(), [BTC], expiry_interval=interval)  # type: ignore[arg-type]


async def test_advance_time_needs_a_started_service():
    async with service_env() as env:
        fresh = OrderService(env.repo, env.wallet, env.instruments)
        with pytest.raises(RuntimeError, match="not started"):
            await fresh.advance_time()


async def test_stops_waiting_at_one_price_trigger_in_the_order_they_were_accepted_after_a_restart_too():
    clock = ManualClock()
    async with service_env(instruments=(STOPS,), clock=clock) as env:
        svc = env.service
        await svc.place_order("carol", S, "BUY", "3", "95")
        first = await svc.place_order("alice", S, "SELL", "1", type="STOP", stop_price="96")
        second = await svc.place_order("bob", S, "SELL", "1", type="STOP", stop_price="96")
        await svc.close()
        env.service = OrderService(env.repo, env.wallet, env.instruments, clock=clock, expiry_interval=None)
        await env.service.start()
        await env.service.place_order("bob", S, "BUY", "0.1", "96")
        placed = await env.service.place("alice", S, "SELL", "0.1", "96")
        assert [(r.order.id, [(t.price, t.quantity) for t in r.trades]) for r in placed.triggered] == [
            (first.id, [(D(95), D(1))]),
            (second.id, [(D(95), D(1))]),
        ]
        assert len(repo_of(env.repo)._trades) == 3
        await env.check()


async def test_a_bug_in_the_adapter_during_an_expiry_is_raised_as_it_is():
    repo, clock = FailingRepository(), ManualClock()
    async with service_env(repo=repo, clock=clock) as env:
        await env.service.place_order("alice", S, "BUY", "1", "90", time_in_force="GTD", expire_at=clock.ms(seconds=1))
        clock.advance(seconds=1)
        repo.fail_on, repo.error = "update_order", RuntimeError("a bug in the adapter")
        with pytest.raises(RuntimeError, match="a bug"):
            await env.service.advance_time()
        assert len(await env.service.advance_time()) == 1
        await env.check()


async def test_a_gtd_iceberg_expires_with_nothing_shown():
    clock = ManualClock()
    async with service_env(clock=clock) as env:
        ice = await env.service.place_order(
            "alice", S, "SELL", "2", "100", display_quantity="0.5", time_in_force="GTD", expire_at=clock.ms(seconds=1)
        )
        await env.service.place_order("bob", S, "BUY", "0.2", "100")
        clock.advance(seconds=1)
        (expired,) = await env.service.advance_time()
        assert (expired.id, expired.visible_quantity, expired.filled_quantity) == (ice.id, D(0), D("0.2"))
        assert await env.repo.get_order(ice.id) == expired
        await env.check()


async def test_self_trade_prevention_cancels_resting_makers_in_a_cascade():
    """CANCEL_MAKER: a triggered stop that meets its owner's resting order removes it and goes on."""
    async with service_env(instruments=(STOPS,), self_trade_prevention="CANCEL_MAKER") as env:
        svc = env.service
        await svc.place_order("carol", S, "BUY", "1", "99")
        own = await svc.place_order("alice", S, "BUY", "1", "98")
        await svc.place_order("carol", S, "BUY", "1", "97")
        stop = await svc.place_order("alice", S, "SELL", "1", type="STOP", stop_price="99")
        placed = await svc.place("bob", S, "SELL", "1", "99")
        (run,) = placed.triggered
        assert [(t.price, t.buy_order_id) for t in run.trades] == [(D(97), own.id + 1)]
        assert (run.order.id, run.order.status) == (stop.id, OrderStatus.FILLED)
        assert (await env.repo.get_order(own.id)).status is OrderStatus.CANCELLED
        assert await env.balance("alice", "USDT") == (USDT0 + 97, 0)
        await env.check()


async def test_a_quote_sized_sell_skips_a_level_of_the_sellers_own_bids():
    async with service_env(self_trade_prevention="CANCEL_MAKER") as env:
        svc = env.service
        await svc.place_order("alice", S, "BUY", "1", "100")  # alice's own: cancelled, not sold to
        await svc.place_order("carol", S, "BUY", "2", "99")
        placed = await svc.place("alice", S, "SELL", None, type="MARKET", quote_quantity="99")
        assert [(t.price, t.quantity) for t in placed.trades] == [(D(99), D(1))]
        assert placed.order.status is OrderStatus.FILLED
        await env.check()


async def test_the_pending_record_has_every_field():
    """The service builds records without the dataclass's __init__ (for speed): none may be missing."""
    import dataclasses

    from tradebook.oms import OrderRecord

    async with service_env() as env:
        order = await env.service.place_order("alice", S, "BUY", "1", "90")
        assert set(vars(order)) == {f.name for f in dataclasses.fields(OrderRecord)}
        assert OrderRecord(**dataclasses.asdict(order)) == order
        pending = [args for name, args in env.wallet.calls if name == "reserve"]
        assert pending and (await env.repo.get_order(order.id)) == order


async def test_a_repository_written_before_the_new_order_types_still_serves_limit_and_market_orders():
    class OldUnitOfWork:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        async def update_order(self, order_id, *, status, filled_quantity, updated_at, sequence=None):
            await self.inner.update_order(
                order_id, status=status, filled_quantity=filled_quantity, updated_at=updated_at, sequence=sequence
            )

    class OldRepository(FailingRepository):
        def transaction(self):
            inner = super().transaction()

            class Wrapped:
                async def __aenter__(self):
                    return OldUnitOfWork(await inner.__aenter__())

                async def __aexit__(self, *exc):
                    return await inner.__aexit__(*exc)

            return Wrapped()

    async with service_env(repo=OldRepository()) as env:
        await env.service.place_order("alice", S, "SELL", "1", "100")
        placed = await env.service.place("bob", S, "BUY", "2", "100")
        assert placed.order.status is OrderStatus.PARTIALLY_FILLED
        await env.service.cancel_order("bob", placed.order.id)
        market = await env.service.place("bob", S, "BUY", "1", type="MARKET")
        assert market.order.status is OrderStatus.EXPIRED
        await env.check()


async def test_a_bug_in_the_background_task_is_logged_and_the_task_goes_on(caplog: pytest.LogCaptureFixture):
    clock = ManualClock()
    async with service_env(clock=clock, expiry_interval=0.01) as env:
        calls = []
        real = env.service.advance_time

        async def flaky(now=None):
            calls.append(now)
            if len(calls) == 1:
                raise RuntimeError("a bug")
            return await real(now)

        env.service.advance_time = flaky  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="tradebook.oms"):
            for _ in range(200):
                await asyncio.sleep(0.01)
                if len(calls) > 2:
                    break
        assert len(calls) > 2 and "expiring GTD orders failed" in caplog.text
        await env.check()
