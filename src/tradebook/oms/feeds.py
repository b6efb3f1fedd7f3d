"""Live feeds of the order service: a symbol's market data and a user's own orders and trades.

Both are async iterators over a bounded buffer that the matching path fills
without ever waiting: the engine's subscriber callback (or the service, once a
command is stored) appends and returns. A consumer that falls behind does not
slow anything down: when its buffer is full it is cleared and the consumer is
told to start again (a market feed yields a fresh :class:`~tradebook.MarketSnapshot`;
a user feed yields :class:`UserFeedResync`), counted in ``drops``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from .._common import MarketDataUpdate, MarketSnapshot
from .models import OrderRecord, TradeRecord

__all__ = ["MarketFeed", "UserFeed", "UserFeedResync"]

T = TypeVar("T")


class UserFeedResync:
    """What a :class:`UserFeed` yields after it dropped updates: re-read the user's orders and trades."""

    __slots__ = ("drops",)

    def __init__(self, drops: int) -> None:
        self.drops = drops

    def __repr__(self) -> str:
        return f"UserFeedResync(drops={self.drops})"


class _Feed(Generic[T]):
    """The bounded buffer, the wake-up and the life cycle both feeds share."""

    def __init__(self, max_queue: int, on_close: Callable[[Any], None]) -> None:
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ValueError(f"max_queue must be a positive integer, not {max_queue!r}")
        self.max_queue = max_queue
        #: How many times the buffer overflowed and was dropped (each one a resync).
        self.drops = 0
        self._items: deque[Any] = deque()
        self._wakeup = asyncio.Event()
        self._resync = False
        self._closed = False
        self._on_close = on_close

    def _push(self, item: Any) -> None:
        """Buffer ``item``; never waits (called on the matching path)."""
        if self._closed or self._resync:
            return  # a resync is due: what it would show is in the state the consumer reads next
        if len(self._items) >= self.max_queue:
            self._items.clear()
            self._resync = True
            self.drops += 1
        else:
            self._items.append(item)
        self._wakeup.set()

    def resync(self) -> None:
        """Drop what is buffered and start the consumer again (the service's book was rebuilt)."""
        if not self._closed:
            self._items.clear()
            self._resync = True
            self._wakeup.set()

    @property
    def closed(self) -> bool:
        """Whether the feed has ended (closed by its consumer or by the service)."""
        return self._closed

    def close(self) -> None:
        """End the feed: a waiting consumer's iteration stops."""
        if not self._closed:
            self._closed = True
            self._items.clear()
            self._wakeup.set()
            self._on_close(self)

    async def aclose(self) -> None:
        """:meth:`close`, awaitable (as async generators have it)."""
        self.close()

    def __aiter__(self) -> _Feed[T]:
        return self

    async def __aenter__(self) -> _Feed[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def _next_item(self) -> Any:
        """The next buffered item, waiting for one; ``StopAsyncIteration`` once closed."""
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            if self._resync:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._closed:
            raise StopAsyncIteration
        return self._items.popleft()


class MarketFeed(_Feed[MarketSnapshot | MarketDataUpdate]):
    """A symbol's market data: a :class:`~tradebook.MarketSnapshot`, then each update with ``seq`` one more.

    After an overflow (or a rebuild of the service's book) it yields a fresh
    snapshot and goes on from there; an update never repeats or skips a
    ``seq`` after the snapshot it follows. Obtain it from
    :meth:`OrderService.market_feed`.
    """

    def __init__(
        self, symbol: str, snapshot: Callable[[], MarketSnapshot], max_queue: int, on_close: Callable[[Any], None]
    ) -> None:
        super().__init__(max_queue, on_close)
        self.symbol = symbol
        self._snapshot = snapshot
        self._resync = True  # the first item is a snapshot
        self._last = -1

    def __aiter__(self) -> MarketFeed:
        return self

    async def __aenter__(self) -> MarketFeed:
        return self

    async def __anext__(self) -> MarketSnapshot | MarketDataUpdate:
        while True:
            if self._resync and not self._closed:
                # No await between the snapshot and the end of this step: every update the engine publishes
                # from here on is buffered after it, and those up to its seq are skipped below.
                self._resync = False
                self._items.clear()
                snap = self._snapshot()
                self._last = snap.seq
                return snap
            update = await self._next_item()
            if update is None:
                continue  # a resync was asked for while waiting
            if update.seq <= self._last:
                continue  # already in the snapshot
            if update.seq != self._last + 1:  # pragma: no cover - the engine numbers without gaps
                self._resync = True
                continue
            self._last = update.seq
            return update  # type: ignore[no-any-return]


class UserFeed(_Feed[OrderRecord | TradeRecord | UserFeedResync]):
    """A user's own order updates (the :class:`OrderRecord` after each change) and trades, in order.

    Never another user's. After an overflow it yields :class:`UserFeedResync`
    (re-read the orders and trades to catch up) and goes on. Obtain it from
    :meth:`OrderService.user_feed`.
    """

    def __init__(self, user_id: str, max_queue: int, on_close: Callable[[Any], None]) -> None:
        super().__init__(max_queue, on_close)
        self.user_id = user_id

    def __aiter__(self) -> UserFeed:
        return self

    async def __aenter__(self) -> UserFeed:
        return self

    async def __anext__(self) -> OrderRecord | TradeRecord | UserFeedResync:
        item = await self._next_item()
        if item is None:
            self._resync = False
            return UserFeedResync(self.drops)
        return item  # type: ignore[no-any-return]
