"""Connection guards for uvicorn: a deadline for each request head, and a cap on connections.

uvicorn closes a keep-alive connection that stays idle after a response
(``timeout_keep_alive``), but a connection that never sends a request, or sends
part of its headers and stalls, stays open for good; and its
``limit_concurrency`` answers 503 to everything past the limit, health checks
included. :func:`guarded_protocol` makes a subclass of uvicorn's HTTP protocol
(httptools or h11, whichever uvicorn would use) that:

* closes a connection that has not completed a request head within
  ``header_timeout`` seconds of opening, or of its previous response (an
  absolute deadline: trickling bytes does not extend it);
* serves at most ``max_connections`` connections normally. A connection beyond
  them gets exactly one answer and is then closed: ``GET /health`` is
  answered by the app as usual (so a load balancer still sees the server
  alive while it is full), anything else gets 503 ``service_unavailable``
  with ``Retry-After``. Such a connection is under the same head deadline.

``tradebook serve`` installs it with uvicorn's ``http=`` option.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response

__all__ = ["guarded_protocol"]

_HEALTH = "/health"


def _one_answer(app: ASGIApp) -> ASGIApp:
    """The app for a connection beyond the cap: ``/health`` as usual, 503 otherwise; then close."""

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_and_close(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        if scope["type"] == "http" and scope["path"] == _HEALTH:
            await app(scope, receive, send_and_close)
            return
        response = error_response(
            503,
            "service_unavailable",
            "the server is at its connection limit; try again shortly",
            headers={"Retry-After": "1"},
        )
        await response(scope, receive, send_and_close)

    return answer


def guarded_protocol(base: type[asyncio.Protocol], *, header_timeout: float, max_connections: int) -> type[Any]:
    """A subclass of uvicorn's HTTP protocol ``base`` with a request-head deadline and a connection cap.

    The cap is shared by the connections of the class returned: make one per server.
    """
    if not header_timeout > 0:
        raise ValueError(f"header_timeout must be positive, not {header_timeout!r}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, not {max_connections!r}")
    admitted: set[asyncio.Protocol] = set()
    proto: Any = base  # uvicorn's protocols are not typed for subclassing

    class GuardedProtocol(proto):  # type: ignore[misc]
        _head_timer: asyncio.TimerHandle | None = None
        _waiting_after: Any = None  # the request cycle that was current when the deadline was armed

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(admitted) < max_connections:
                admitted.add(self)
            else:
                self.app = _one_answer(getattr(self, "app"))  # noqa: B009 - untyped base
            self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            admitted.discard(self)
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # uvicorn makes a new request cycle when a request's head is complete.
            if self._head_timer is not None and self.cycle is not self._waiting_after:
                self._disarm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Waiting for the next request (unless a pipelined one has already started).
            cycle = self.cycle
            if not self.transport.is_closing() and (cycle is None or cycle.response_complete):
                self._arm_head_deadline()

        def _arm_head_deadline(self) -> None:
            self._disarm_head_deadline()
            self._waiting_after = self.cycle
            self._head_timer = self.loop.call_later(header_timeout, self._head_deadline_passed)

        def _disarm_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_deadline_passed(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol
