"""Order ids stay dense: a refused placement gives its id back, unless a late release could still free funds under it.

The store-parametrized cases run on every adapter family (memory, SQLite and,
with ``TRADEBOOK_TEST_POSTGRES_DSN``, PostgreSQL); the concurrency and
wallet-failure cases use the memory adapters and the test wallet's controls.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from _service_support import BTC, ETH, SpyWallet, check_invariants, service_env
from _stores import Store

from tradebook import (
    Instrument,
    InsufficientBalanceError,
    InvalidPriceError,
    InvalidQuantityError,
    OrderStatus,
    WalletUnavailableError,
)
from tradebook.oms import OrderService

D = Decimal
S = BTC.symbol
BIG = Instrument("BIG/USD", "1", "1")


async def _started(store: Store, instruments: tuple[Instrument, ...] = (BTC, BIG)) -> OrderService:
    service = OrderService(store.repository, store.wallet, instruments)
    await service.start()
    return service


async def _fund(store: Store) -> None:
    await store.wallet.deposit("alice", "USDT", D("1000"))
    await store.wallet.deposit("bob", "USDT", D("1000"))
    for user in ("alice", "bob"):
        await store.wallet.deposit(user, "USD", D(2**64))


async def _insufficient(service: OrderService) -> None:
    with pytest.raises(InsufficientBalanceError):
        await service.place("bob", S, "BUY", "1", "5000")  # 5000 USDT: bob has 1000


async def _invalid(service: OrderService) -> None:
    with pytest.raises(InvalidPriceError):
        await service.place("bob", S, "BUY", "1", "100.001")  # off the 0.01 tick


async def _engine_refuses(service: OrderService) -> None:
    # a level whose total would pass 2**63-1 lots: the engine raises after the pending row
    # was written and the funds reserved; both are undone and the release applied
    with pytest.raises(InvalidQuantityError):
        await service.place("bob", BIG.symbol, "BUY", 2**62, 1)


REFUSALS = {"insufficient_balance": _insufficient, "invalid": _invalid, "engine_refuses": _engine_refuses}


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
async def test_a_refused_placement_does_not_consume_an_id(store: Store, refusal: str) -> None:
    await _fund(store)
    service = await _started(store)
    first = await service.place_order("alice", BIG.symbol, "BUY", 2**62, 1)  # rests: the overflow's other half
    await REFUSALS[refusal](service)
    second = await service.place_order("alice", S, "BUY", "1", "100")
    assert (first.id, second.id) == (1, 2)
    await REFUSALS[refusal](service)
    await REFUSALS[refusal](service)
    third = await service.place_order("alice", S, "BUY", "1", "101")
    assert third.id == 3
    assert await store.wallet.reserved("3") == D("101")
    # nothing of the refused ones is left: no row, no reservation, no queued wallet operation
    assert [o.id for o in (await service.list_orders("bob")).items] == []
    assert await store.repository.pending_wallet_ops() == []
    await service.close()
    await store.reopen()
    again = await _started(store)
    fourth = await again.place_order("alice", S, "BUY", "1", "102")
    assert fourth.id == 4
    await again.close()


async def test_a_replayed_client_order_id_does_not_consume_an_id(store: Store) -> None:
    await _fund(store)
    service = await _started(store)
    first = await service.place("alice", S, "BUY", "1", "100", client_order_id="c-1")
    replay = await service.place("alice", S, "BUY", "1", "100", client_order_id="c-1")
    assert replay.replayed and replay.order.id == first.order.id == 1
    second = await service.place_order("alice", S, "BUY", "1", "100")
    assert second.id == 2
    await service.close()


async def test_an_id_refused_while_another_symbol_took_the_next_goes_to_the_next_order() -> None:
    """Symbols place in parallel: the refused id is below one in use, so it is handed out next."""
    async with service_env(instruments=(BTC, ETH)) as env:
        gate = env.wallet.gate("bob")
        held = asyncio.create_task(env.service.place("bob", S, "BUY", "1000", "1000"))  # id 1: bob cannot pay
        await env.wallet.waiting["bob"].wait()
        other = await env.service.place_order("alice", ETH.symbol, "BUY", "1", "100")  # id 2, meanwhile
        gate.set()
        with pytest.raises(InsufficientBalanceError):
            await held
        nxt = await env.service.place_order("alice", S, "BUY", "1", "100")
        after = await env.service.place_order("alice", S, "BUY", "1", "100")
        assert (other.id, nxt.id, after.id) == (2, 1, 3)
        await check_invariants(env)


class _ReservesThenTimesOut(SpyWallet):
    """A wallet whose next reserve is applied but whose answer is lost (a timeout)."""

    lose_next = False

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Any:
        reservation = await super().reserve(user_id, asset, amount, ref)
        if self.lose_next:
            self.lose_next = False
            self.down.add("release")  # and the release that undoes it waits in the outbox
            raise WalletUnavailableError("the answer was lost")
        return reservation


async def test_an_id_whose_release_may_still_run_is_never_handed_out_again() -> None:
    """Reusing it would let the late release free the next order's funds."""
    wallet = _ReservesThenTimesOut()
    async with service_env(wallet=wallet) as env:
        wallet.lose_next = True
        with pytest.raises(WalletUnavailableError):
            await env.service.place("bob", S, "BUY", "1", "100")  # id 1, reserved, release queued
        assert await env.ledger.reserved("1") == D("100")
        wallet.down.clear()
        nxt = await env.service.place_order("bob", S, "BUY", "1", "90")  # drains the release first
        assert nxt.id == 2
        assert await env.ledger.reserved("1") == 0
        assert await env.ledger.reserved("2") == D("90")
        await check_invariants(env)


async def test_an_id_the_wallet_failed_on_is_not_reused() -> None:
    """The wallet did not answer the reservation: it may hold funds under the id, so the id stays burnt."""
    wallet = SpyWallet()
    async with service_env(wallet=wallet) as env:
        wallet.down.add("reserve")
        with pytest.raises(WalletUnavailableError):
            await env.service.place("bob", S, "BUY", "1", "100")
        wallet.down.clear()
        nxt = await env.service.place_order("bob", S, "BUY", "1", "100")
        assert nxt.id == 2  # the wallet may have reserved under "1": never reused
        placed = await env.service.place_order("alice", S, "SELL", "1", "100")
        assert placed.status is OrderStatus.FILLED
        await check_invariants(env)
