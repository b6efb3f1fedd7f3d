"""The live feed over WebSocket: ``GET /api/v1/ws`` (docs/http.md, "WebSocket").

Public channels per symbol (``depth``, ``orders``, ``trades``) read one
:class:`~tradebook.oms.MarketFeed` per symbol and connection; ``private``
reads the authenticated user's :class:`~tradebook.oms.UserFeed`. Everything a
connection sends goes through one bounded queue that a writer task drains: a
client that reads slowly fills its own queue and nothing else. On overflow the
queue is cleared and every subscribed public channel starts again from a fresh
snapshot (``"resync": true``); the third overflow within 10 s closes the
connection with code 4008.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .._common import MarketSnapshot
from ..errors import TradebookError
from ..oms.feeds import MarketFeed, UserFeed, UserFeedResync
from ..oms.models import OrderRecord, TradeRecord
from .schemas import order_json
from .state import API_PREFIX, AppState

__all__ = [
    "CLOSE_SLOW_CONSUMER",
    "CLOSE_UNAUTHORIZED",
    "MAX_SUBSCRIPTIONS",
    "WS_PATH",
    "websocket_routes",
]

WS_PATH = API_PREFIX + "/ws"
#: Close codes: a bad token; a client that overflowed its queue 3 times within 10 s.
CLOSE_UNAUTHORIZED, CLOSE_SLOW_CONSUMER = 4001, 4008
MAX_SUBSCRIPTIONS = 20
PUBLIC_CHANNELS = ("depth", "orders", "trades")
_SLOW_OVERFLOWS, _SLOW_WINDOW = 3, 10.0
_MAX_MESSAGE = 4096  # bytes of one client message


def websocket_routes(*, heartbeat: float = 15.0, max_queue: int = 1000) -> list[WebSocketRoute]:
    """The WebSocket route, with a heartbeat every ``heartbeat`` seconds and ``max_queue`` messages per connection."""
    if isinstance(heartbeat, bool) or not isinstance(heartbeat, (int, float)) or not 0 < heartbeat <= 3600:
        raise ValueError(f"heartbeat must be a number of seconds in (0, 3600], not {heartbeat!r}")
    if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
        raise ValueError(f"max_queue must be a positive integer, not {max_queue!r}")

    async def endpoint(websocket: WebSocket) -> None:
        await _Connection(websocket, websocket.app.state.tradebook, heartbeat, max_queue).run()

    return [WebSocketRoute(WS_PATH, endpoint, name="websocket")]


def _dec(value: Any) -> str:
    return format(value, "f")  # as the REST API writes decimals: never an exponent


def _side(side: Any) -> str:
    return str(getattr(side, "value", side))


def _levels(levels: Any) -> list[list[Any]]:
    return [[_dec(level.price), _dec(level.quantity), level.order_count] for level in levels]


def _order_event(event: Any, kind: bool) -> dict[str, Any]:
    out = {
        "order_id": event.order_id,
        "side": _side(event.side),
        "price": _dec(event.price),
        "quantity": _dec(event.quantity),
        "sequence": event.sequence,
    }
    return {"kind": event.kind, **out} if kind else out


def _snapshot_message(channel: str, symbol: str, snap: MarketSnapshot, resync: bool) -> dict[str, Any] | None:
    head: dict[str, Any] = {"channel": channel, "symbol": symbol, "seq": snap.seq, "time": snap.time}
    if channel == "depth":
        message = {"type": "snapshot", **head, "bids": _levels(snap.depth.bids), "asks": _levels(snap.depth.asks)}
    elif channel == "orders":
        message = {"type": "snapshot", **head, "orders": [_order_event(e, False) for e in snap.orders]}
    elif resync:  # trades have no state: a resync says only where the feed starts again
        message = {"type": "trades", **head, "trades": []}
    else:
        return None
    if resync:
        message["resync"] = True
    return message


def _update_message(channel: str, update: Any) -> dict[str, Any] | None:
    head = {"channel": channel, "symbol": update.symbol, "seq": update.seq, "time": update.time}
    if channel == "depth":
        deltas = [{"side": _side(d.side), "price": _dec(d.price), "quantity": _dec(d.quantity)} for d in update.deltas]
        return {"type": "update", **head, "deltas": deltas}
    if channel == "orders":
        return {"type": "update", **head, "events": [_order_event(e, True) for e in update.orders]}
    if not update.trades:
        return None
    trades = [
        {"id": t.id, "price": _dec(t.price), "quantity": _dec(t.quantity), "taker_side": _side(t.taker_side)}
        for t in update.trades
    ]
    return {"type": "trades", **head, "trades": trades}


def _private_trades(trade: TradeRecord, user_id: str) -> list[dict[str, Any]]:
    """The user's side(s) of a trade (both, if they were on both sides)."""
    out = []
    for side, order_id, owner in (
        ("BUY", trade.buy_order_id, trade.buyer_id),
        ("SELL", trade.sell_order_id, trade.seller_id),
    ):
        if owner == user_id:
            role = "taker" if _side(trade.taker_side) == side else "maker"
            body = {
                "id": trade.id,
                "symbol": trade.symbol,
                "price": _dec(trade.price),
                "quantity": _dec(trade.quantity),
                "side": side,
                "order_id": order_id,
                "role": role,
            }
            out.append({"type": "trade", "channel": "private", "trade": body})
    return out


class _Symbol:
    """One symbol's subscriptions on a connection: its feed, its pump task, and its channels' positions."""

    def __init__(self, feed: MarketFeed) -> None:
        self.feed = feed
        self.channels: dict[str, int] = {}  # channel -> the last seq it was sent
        self.task: asyncio.Task[None] | None = None
        self.resyncing = False
        self.started = False  # the pump has sent its first snapshot


class _Connection:
    def __init__(self, websocket: WebSocket, state: AppState, heartbeat: float, max_queue: int) -> None:
        self.ws = websocket
        self.state = state
        self.metrics = state.metrics
        self.heartbeat = heartbeat
        self.max_queue = max_queue
        self.queue: deque[str] = deque()
        self.wakeup = asyncio.Event()
        self.symbols: dict[str, _Symbol] = {}
        self.user_id: str | None = None
        self.private: UserFeed | None = None
        self.private_task: asyncio.Task[None] | None = None
        self.overflows: deque[float] = deque()
        self.close_code: int | None = None

    # -- life cycle ---------------------------------------------------------------

    async def run(self) -> None:
        try:
            self.state.service  # noqa: B018 - 503 before accepting while the service is not running
        except TradebookError:
            await self.ws.close(1013, "the service is not running")
            return
        await self.ws.accept()
        self.metrics.ws_connection(1)
        writer = asyncio.ensure_future(self._write())
        beat = asyncio.ensure_future(self._beat())
        try:
            token = self.ws.query_params.get("token")
            if token is not None:
                await self._authenticate(token)
            await self._read()
        except _Closed:
            pass
        finally:
            for task in (beat, writer):
                task.cancel()
            await asyncio.gather(beat, writer, return_exceptions=True)
            self._stop_feeds()
            self.metrics.ws_connection(-1)

    def _stop_feeds(self) -> None:
        for entry in self.symbols.values():
            entry.feed.close()
            if entry.task is not None:
                entry.task.cancel()
        self.symbols.clear()
        if self.private is not None:
            self.private.close()
        if self.private_task is not None:
            self.private_task.cancel()

    async def _read(self) -> None:
        while self.close_code is None:
            try:
                text = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                return
            await self._handle(text)

    def _service(self) -> Any:
        return self.state.service

    # -- sending --------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message``; never waits. An overflow starts the public channels again from snapshots."""
        if self.close_code is not None:
            return
        if len(self.queue) >= self.max_queue:
            self._overflow()
            return
        self.queue.append(json.dumps(message, separators=(",", ":")))
        self.wakeup.set()

    def _overflow(self) -> None:
        self.queue.clear()
        self.metrics.ws_drop()
        now = time.monotonic()
        self.overflows.append(now)
        while self.overflows and self.overflows[0] < now - _SLOW_WINDOW:
            self.overflows.popleft()
        if len(self.overflows) >= _SLOW_OVERFLOWS:
            self.close_code = CLOSE_SLOW_CONSUMER
            self.metrics.ws_closed_slow()
            self.wakeup.set()
            return
        for entry in self.symbols.values():
            entry.resyncing = True  # drop its updates until the fresh snapshot
            entry.feed.resync()

    async def _write(self) -> None:
        while True:
            while not self.queue and self.close_code is None:
                self.wakeup.clear()
                await self.wakeup.wait()
            if self.close_code is not None:  # a slow consumer: close; the reader then sees the disconnect
                self._stop_feeds()
                with contextlib.suppress(Exception):
                    await self.ws.close(self.close_code, "slow consumer")
                return
            try:
                await self.ws.send_text(self.queue.popleft())
            except (WebSocketDisconnect, RuntimeError, OSError):
                return  # the client went away: the reader sees it too
            self.metrics.ws_sent()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            self.send({"type": "heartbeat", "time": int(time.time() * 1000)})

    # -- client messages ------------------------------------------------------------

    def _error(self, code: str, message: str) -> None:
        self.send({"type": "error", "code": code, "message": message})

    async def _handle(self, text: str) -> None:
        if len(text) > _MAX_MESSAGE:
            self._error("bad_request", f"a message is at most {_MAX_MESSAGE} bytes")
            return
        try:
            message = json.loads(text)
        except ValueError:
            self._error("bad_request", "a message is a JSON object")
            return
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            self._error("bad_request", 'a message is a JSON object with an "op"')
            return
        op = message["op"]
        if op == "ping":
            self.send({"type": "pong"})
        elif op == "auth":
            token = message.get("token")
            await self._authenticate(token if isinstance(token, str) else "")
        elif op in ("subscribe", "unsubscribe"):
            channel, symbol = message.get("channel"), message.get("symbol")
            if channel == "private":
                self._private(op == "subscribe")
            elif channel not in PUBLIC_CHANNELS:
                self._error("unknown_channel", f"no channel {channel!r}: depth, orders, trades or private")
            elif not isinstance(symbol, str) or symbol not in self._service().instruments:
                self._error("unknown_symbol", f"unknown symbol {symbol!r}")
            elif op == "subscribe":
                self._subscribe(channel, symbol)
            else:
                self._unsubscribe(channel, symbol)
        else:
            self._error("bad_request", f"unknown op {op!r}: subscribe, unsubscribe, auth or ping")

    async def _authenticate(self, token: str) -> None:
        """Identify the user by ``token`` (as the HTTP API would); close with 4001 when it is refused."""
        headers = [(k, v) for k, v in self.ws.scope.get("headers", []) if k != b"authorization"]
        headers.append((b"authorization", f"Bearer {token}".encode("latin-1", "replace")))
        request = Request({"type": "http", "method": "GET", "path": WS_PATH, "headers": headers, "query_string": b""})
        try:
            user_id = await self.state.authenticator.authenticate(request)
        except TradebookError as exc:
            self._error("unauthorized", str(exc))
            await self._flush_and_close(CLOSE_UNAUTHORIZED)
        if self.user_id is not None and user_id != self.user_id and self.private is not None:
            self._private(False)  # another user: the first one's private updates stop
        self.user_id = user_id
        self.send({"type": "authenticated", "user": user_id})

    async def _flush_and_close(self, code: int) -> None:
        self._stop_feeds()
        while self.queue:
            with contextlib.suppress(Exception):
                await self.ws.send_text(self.queue.popleft())
        with contextlib.suppress(Exception):
            await self.ws.close(code)
        raise _Closed

    def _count(self) -> int:
        return sum(len(entry.channels) for entry in self.symbols.values()) + (self.private is not None)

    def _subscribe(self, channel: str, symbol: str) -> None:
        entry = self.symbols.get(symbol)
        if entry is not None and channel in entry.channels:
            self.send({"type": "subscribed", "channel": channel, "symbol": symbol})
            return
        if self._count() >= MAX_SUBSCRIPTIONS:
            self._error("too_many_subscriptions", f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
            return
        self.send({"type": "subscribed", "channel": channel, "symbol": symbol})
        service = self._service()
        if entry is None:
            entry = self.symbols[symbol] = _Symbol(service.market_feed(symbol))
            entry.channels[channel] = -1  # the pump's first item, a snapshot, starts it
            entry.task = asyncio.ensure_future(self._pump(symbol, entry))
        elif not entry.started:
            entry.channels[channel] = -1  # the pump's first snapshot serves it too
        else:
            # joins a running feed: its own snapshot now, then the feed's updates past it
            snap = service.market_snapshot(symbol)
            entry.channels[channel] = snap.seq
            message = _snapshot_message(channel, symbol, snap, False)
            if message is not None and not entry.resyncing:
                self.send(message)

    def _unsubscribe(self, channel: str, symbol: str) -> None:
        entry = self.symbols.get(symbol)
        if entry is not None and entry.channels.pop(channel, None) is not None and not entry.channels:
            entry.feed.close()
            if entry.task is not None:
                entry.task.cancel()
            del self.symbols[symbol]
        self.send({"type": "unsubscribed", "channel": channel, "symbol": symbol})

    def _private(self, subscribe: bool) -> None:
        if not subscribe:
            if self.private is not None:
                self.private.close()
                self.private = None
            if self.private_task is not None:
                self.private_task.cancel()
                self.private_task = None
            self.send({"type": "unsubscribed", "channel": "private", "symbol": None})
            return
        if self.user_id is None:
            self._error("unauthorized", 'the private channel needs a token: ?token= or {"op": "auth", "token": ...}')
            return
        if self.private is None:
            if self._count() >= MAX_SUBSCRIPTIONS:
                self._error("too_many_subscriptions", f"at most {MAX_SUBSCRIPTIONS} subscriptions per connection")
                return
            self.private = self._service().user_feed(self.user_id)
            self.private_task = asyncio.ensure_future(self._pump_private(self.private, self.user_id))
        self.send({"type": "subscribed", "channel": "private", "symbol": None})

    # -- pumps: feed -> connection queue ------------------------------------------------

    async def _pump(self, symbol: str, entry: _Symbol) -> None:
        async for item in entry.feed:
            if isinstance(item, MarketSnapshot):
                resync, entry.started, entry.resyncing = entry.started, True, False
                for channel in list(entry.channels):
                    entry.channels[channel] = item.seq
                    message = _snapshot_message(channel, symbol, item, resync)
                    if message is not None:
                        self.send(message)
                continue
            if entry.resyncing:
                continue
            for channel, last in list(entry.channels.items()):
                if item.seq <= last:
                    continue  # in the snapshot this channel started from
                entry.channels[channel] = item.seq
                message = _update_message(channel, item)
                if message is not None:
                    self.send(message)
                if entry.resyncing:  # that send overflowed: the rest waits for the snapshot
                    break

    async def _pump_private(self, feed: UserFeed, user_id: str) -> None:
        async for item in feed:
            if isinstance(item, OrderRecord):
                self.send({"type": "order", "channel": "private", "order": order_json(item)})
            elif isinstance(item, TradeRecord):
                for message in _private_trades(item, user_id):
                    self.send(message)
            elif isinstance(item, UserFeedResync):  # pragma: no branch - the only other item
                self.send({"type": "resync", "channel": "private"})


class _Closed(Exception):
    """The connection was closed while handling a message."""
