"""A circuit breaker around any :class:`~tradebook.oms.WalletClient`.

When the wallet keeps failing, calling it on every order only adds latency and
load to something already down. The breaker counts consecutive failures
(:class:`~tradebook.WalletUnavailableError`, connection errors, timeouts);
at ``failure_threshold`` it *opens* and fails every call fast with
``WalletUnavailableError`` without calling through. After ``reset_timeout``
seconds it lets one trial call through (*half-open*): success closes it,
failure opens it again. Business refusals such as
:class:`~tradebook.InsufficientBalanceError` mean the wallet works: they count
as successes.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

from ..errors import TradebookError, WalletUnavailableError
from .models import Balance, Reservation, Settlement
from .ports import WalletClient

__all__ = ["BreakerState", "CircuitBreakerWallet"]

T = TypeVar("T")


class BreakerState(str, enum.Enum):
    """Where a circuit breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreakerWallet:
    """Wrap ``wallet`` so that a failing wallet is cut off and retried later.

    ``call_timeout`` bounds each call (seconds; ``None`` for no bound); a call
    that times out counts as a failure and raises ``WalletUnavailableError``.
    ``clock`` returns monotonic seconds (injectable for tests).

    >>> import asyncio
    >>> from tradebook.oms import MemoryWallet
    >>> breaker = CircuitBreakerWallet(MemoryWallet(), failure_threshold=3, reset_timeout=5.0)
    >>> breaker.state
    <BreakerState.CLOSED: 'closed'>
    """

    def __init__(
        self,
        wallet: WalletClient,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 10.0,
        call_timeout: float | None = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(failure_threshold, bool) or not isinstance(failure_threshold, int) or failure_threshold < 1:
            raise ValueError(f"failure_threshold must be a positive integer, not {failure_threshold!r}")
        if not reset_timeout > 0:
            raise ValueError(f"reset_timeout must be positive, not {reset_timeout!r}")
        if call_timeout is not None and not call_timeout > 0:
            raise ValueError(f"call_timeout must be positive or None, not {call_timeout!r}")
        self.wallet = wallet
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.call_timeout = call_timeout
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self.listeners: list[Callable[[BreakerState], None]] = []

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose timeout has passed reads as half-open)."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted so far."""
        return self._failures

    def _set_state(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            for listener in self.listeners:
                listener(state)

    async def _call(self, make_call: Callable[[], Awaitable[T]]) -> T:
        state = self.state
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._trial_running):
            raise WalletUnavailableError("wallet unavailable: the circuit breaker is open")
        trial = state is BreakerState.HALF_OPEN
        if trial:
            self._set_state(BreakerState.HALF_OPEN)
            self._trial_running = True
        try:
            if self.call_timeout is None:
                result = await make_call()
            else:
                result = await asyncio.wait_for(make_call(), self.call_timeout)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            self._failed()
            raise WalletUnavailableError(f"wallet unavailable: no answer within {self.call_timeout} s") from exc
        except WalletUnavailableError:
            self._failed()
            raise
        except TradebookError:
            self._succeeded()  # a refusal (say, insufficient balance): the wallet is up
            raise
        except (OSError, ConnectionError) as exc:
            self._failed()
            raise WalletUnavailableError(f"wallet unavailable: {exc}") from exc
        except BaseException:
            if trial:
                self._trial_running = False
            raise
        self._succeeded()
        return result

    def _failed(self) -> None:
        self._trial_running = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()
            self._set_state(BreakerState.OPEN)

    def _succeeded(self) -> None:
        self._trial_running = False
        self._failures = 0
        self._set_state(BreakerState.CLOSED)

    async def reserve(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """:meth:`WalletClient.reserve` through the breaker."""
        return await self._call(lambda: self.wallet.reserve(user_id, asset, amount, ref))

    async def reserve_more(self, user_id: str, asset: str, amount: Decimal, ref: str) -> Reservation:
        """The wrapped wallet's optional ``reserve_more`` (see :class:`WalletClient`) through the breaker."""
        more = getattr(self.wallet, "reserve_more", None)
        if more is None:
            raise NotImplementedError(f"{type(self.wallet).__name__} cannot grow a reservation")
        return await self._call(lambda: more(user_id, asset, amount, ref))

    async def release(self, ref: str, amount: Decimal | None = None) -> Decimal:
        """:meth:`WalletClient.release` through the breaker."""
        return await self._call(lambda: self.wallet.release(ref, amount))

    async def reserved(self, ref: str) -> Decimal:
        """:meth:`WalletClient.reserved` through the breaker."""
        return await self._call(lambda: self.wallet.reserved(ref))

    async def settle(self, settlement: Settlement) -> None:
        """:meth:`WalletClient.settle` through the breaker."""
        await self._call(lambda: self.wallet.settle(settlement))

    async def balances(self, user_id: str) -> dict[str, Balance]:
        """:meth:`WalletClient.balances` through the breaker."""
        return await self._call(lambda: self.wallet.balances(user_id))
