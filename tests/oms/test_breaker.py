"""CircuitBreakerWallet: closed, open, half-open; thresholds, timeouts, what counts as a failure."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tradebook import InsufficientBalanceError, InvalidRequestError, WalletUnavailableError
from tradebook.oms import BreakerState, CircuitBreakerWallet, MemoryWallet, Settlement, WalletClient


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A wallet whose every call raises ``fail`` (when set) or answers; counts calls; can hang."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: BaseException | None = None
        self.hang: asyncio.Event | None = None

    async def _answer(self, name: str, value):
        self.calls.append(name)
        if self.hang is not None:
            await self.hang.wait()
        if self.fail is not None:
            raise self.fail
        return value

    async def reserve(self, user_id, asset, amount, ref):
        return await self._answer("reserve", (user_id, asset, amount, ref))

    async def release(self, ref, amount=None):
        return await self._answer("release", Decimal(1))

    async def reserved(self, ref):
        return await self._answer("reserved", Decimal(2))

    async def settle(self, settlement):
        return await self._answer("settle", None)

    async def balances(self, user_id):
        return await self._answer("balances", {})


def make(threshold: int = 3, reset: float = 10.0, timeout: float | None = None):
    inner, clock = Scripted(), Clock()
    breaker = CircuitBreakerWallet(
        inner, failure_threshold=threshold, reset_timeout=reset, call_timeout=timeout, clock=clock
    )
    changes: list[BreakerState] = []
    breaker.listeners.append(changes.append)
    return breaker, inner, clock, changes


async def fail_times(breaker, inner, n: int, error: BaseException | None = None) -> None:
    inner.fail = error or WalletUnavailableError("down")
    for _ in range(n):
        with pytest.raises(WalletUnavailableError):
            await breaker.balances("u")
    inner.fail = None


def test_a_breaker_is_a_wallet_client():
    assert isinstance(CircuitBreakerWallet(MemoryWallet()), WalletClient)


async def test_closed_until_the_threshold_of_consecutive_failures():
    breaker, inner, _, changes = make(threshold=3)
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    await fail_times(breaker, inner, 2)
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 2
    await fail_times(breaker, inner, 1)
    assert breaker.state is BreakerState.OPEN and breaker.failures == 3
    assert changes == [BreakerState.OPEN]
    assert inner.calls == ["balances"] * 3


async def test_a_success_resets_the_count():
    breaker, inner, _, changes = make(threshold=3)
    await fail_times(breaker, inner, 2)
    assert await breaker.balances("u") == {}
    assert breaker.failures == 0
    await fail_times(breaker, inner, 2)
    assert breaker.state is BreakerState.CLOSED
    assert changes == []


async def test_open_fails_fast_without_calling_through():
    breaker, inner, _, _ = make(threshold=1)
    await fail_times(breaker, inner, 1)
    calls = list(inner.calls)
    settlement = Settlement(1, "B", "Q", "b", "s", "1", "2", Decimal(1), Decimal(1))
    for call in (
        breaker.reserve("u", "USD", Decimal(1), "r"),
        breaker.release("r"),
        breaker.reserved("r"),
        breaker.settle(settlement),
        breaker.balances("u"),
    ):
        with pytest.raises(WalletUnavailableError, match="circuit breaker is open") as caught:
            await call
        assert caught.value.code == "wallet_unavailable"
    assert inner.calls == calls


async def test_half_open_after_the_reset_timeout_and_a_good_trial_closes_it():
    breaker, inner, clock, changes = make(threshold=2, reset=10.0)
    await fail_times(breaker, inner, 2)
    clock.now += 9.99
    assert breaker.state is BreakerState.OPEN
    clock.now += 0.01
    assert breaker.state is BreakerState.HALF_OPEN
    assert await breaker.reserved("r") == Decimal(2)
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


async def test_a_failed_trial_opens_it_again_for_a_full_timeout():
    breaker, inner, clock, changes = make(threshold=2, reset=10.0)
    await fail_times(breaker, inner, 2)
    clock.now += 10
    await fail_times(breaker, inner, 1)  # the trial
    assert breaker.state is BreakerState.OPEN
    clock.now += 5
    calls = len(inner.calls)
    with pytest.raises(WalletUnavailableError, match="open"):
        await breaker.balances("u")
    assert len(inner.calls) == calls
    clock.now += 5
    assert breaker.state is BreakerState.HALF_OPEN
    assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.OPEN]


async def test_one_trial_at_a_time_while_half_open():
    breaker, inner, clock, _ = make(threshold=1, reset=1.0)
    await fail_times(breaker, inner, 1)
    clock.now += 1
    inner.hang = asyncio.Event()
    trial = asyncio.ensure_future(breaker.balances("u"))
    await asyncio.sleep(0)
    assert inner.calls[-1] == "balances" and not trial.done()
    calls = len(inner.calls)
    with pytest.raises(WalletUnavailableError):
        await breaker.release("r")  # a second caller during the trial fails fast
    assert len(inner.calls) == calls
    inner.hang.set()
    assert await trial == {}
    assert breaker.state is BreakerState.CLOSED
    assert await breaker.release("r") == Decimal(1)


async def test_a_business_refusal_means_the_wallet_works():
    breaker, inner, clock, _ = make(threshold=2)
    await fail_times(breaker, inner, 1)
    inner.fail = InsufficientBalanceError("poor")
    with pytest.raises(InsufficientBalanceError):
        await breaker.reserve("u", "USD", Decimal(1), "r")
    assert breaker.failures == 0
    # as a trial it closes the breaker
    inner.fail = None
    await fail_times(breaker, inner, 2)
    clock.now += 10
    inner.fail = InvalidRequestError("bad")
    with pytest.raises(InvalidRequestError):
        await breaker.balances("u")
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("error", [OSError("refused"), ConnectionResetError("reset"), TimeoutError("slow")])
async def test_connection_errors_count_and_become_wallet_unavailable(error):
    breaker, inner, _, _ = make(threshold=2)
    inner.fail = error
    for _ in range(2):
        with pytest.raises(WalletUnavailableError) as caught:
            await breaker.balances("u")
        assert caught.value.__cause__ is error
    assert breaker.state is BreakerState.OPEN


async def test_a_call_that_outlasts_the_timeout_is_a_failure():
    breaker, inner, _, _ = make(threshold=1, timeout=0.01)
    inner.hang = asyncio.Event()
    with pytest.raises(WalletUnavailableError, match=r"no answer within 0\.01 s"):
        await breaker.balances("u")
    assert breaker.state is BreakerState.OPEN


async def test_a_fast_call_within_the_timeout_passes():
    breaker, _inner, _, _ = make(threshold=1, timeout=5.0)
    assert await breaker.reserve("u", "USD", Decimal(3), "r") == ("u", "USD", Decimal(3), "r")
    assert breaker.state is BreakerState.CLOSED


async def test_other_errors_pass_through_without_counting():
    breaker, inner, clock, _ = make(threshold=1)
    inner.fail = ValueError("a bug, not an outage")
    with pytest.raises(ValueError, match="a bug"):
        await breaker.balances("u")
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0
    # during a trial it frees the trial slot (the next call is a trial again)
    await fail_times(breaker, inner, 1)
    clock.now += 10
    inner.fail = KeyError("bug")
    with pytest.raises(KeyError):
        await breaker.balances("u")
    assert breaker.state is BreakerState.HALF_OPEN
    inner.fail = None
    assert await breaker.balances("u") == {}
    assert breaker.state is BreakerState.CLOSED


async def test_a_cancelled_trial_frees_the_trial_slot():
    breaker, inner, clock, _ = make(threshold=1, reset=1.0)
    await fail_times(breaker, inner, 1)
    clock.now += 1
    inner.hang = asyncio.Event()
    trial = asyncio.ensure_future(breaker.balances("u"))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    inner.hang = None
    assert await breaker.balances("u") == {}
    assert breaker.state is BreakerState.CLOSED


async def test_every_method_passes_through_to_the_wallet():
    wallet = MemoryWallet()
    await wallet.deposit("b", "Q", 100)
    await wallet.deposit("s", "B", 5)
    breaker = CircuitBreakerWallet(wallet)
    reservation = await breaker.reserve("b", "Q", Decimal(60), "1")
    assert reservation.amount == Decimal(60)
    await breaker.reserve("s", "B", Decimal(2), "2")
    assert await breaker.reserved("1") == Decimal(60)
    await breaker.settle(Settlement(1, "B", "Q", "b", "s", "1", "2", Decimal(2), Decimal(50)))
    assert await breaker.release("1") == Decimal(10)
    balances = await breaker.balances("b")
    assert (balances["Q"].available, balances["Q"].reserved, balances["B"].available) == (50, 0, 2)
    assert await wallet.totals() == {"Q": Decimal(100), "B": Decimal(5)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"failure_threshold": -1},
        {"failure_threshold": True},
        {"failure_threshold": 1.5},
        {"reset_timeout": 0},
        {"reset_timeout": -1.0},
        {"call_timeout": 0},
        {"call_timeout": -0.5},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        CircuitBreakerWallet(MemoryWallet(), **kwargs)


def test_defaults():
    breaker = CircuitBreakerWallet(MemoryWallet())
    assert (breaker.failure_threshold, breaker.reset_timeout, breaker.call_timeout) == (5, 10.0, 2.0)
    assert breaker.state is BreakerState.CLOSED
    assert CircuitBreakerWallet(MemoryWallet(), call_timeout=None).call_timeout is None
