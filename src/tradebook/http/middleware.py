"""The app's middleware, outermost first: request metrics, the access log, authentication, the body cap.

Each is a pure ASGI class with one job. Authentication and the body cap
answer errors themselves (401, 413, 400) in the API's error shape and report
them to the app's error hook, as the exception handlers do.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .auth import AuthenticationError, Authenticator
from .errors import error_response
from .metrics import Metrics
from .state import USER, ErrorHook

__all__ = ["AccessLog", "Authenticate", "BodyLimit", "RequestMetrics", "access_log"]

access_log = logging.getLogger("tradebook.http.access")


class _AfterEachRequest:
    """Base of the observers: runs the app, then :meth:`record` with the status sent and the time taken."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server sends when the app raises before it answers

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.record(scope, status, time.perf_counter() - start)

    def record(self, scope: Scope, status: int, seconds: float) -> None:
        raise NotImplementedError


class RequestMetrics(_AfterEachRequest):
    """Counts and times every request by method, route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    def record(self, scope: Scope, status: int, seconds: float) -> None:
        self.metrics.request(scope["method"], _route_template(scope), status, seconds)


class AccessLog(_AfterEachRequest):
    """One line per request on the ``tradebook.http.access`` logger, with its fields as extras."""

    def record(self, scope: Scope, status: int, seconds: float) -> None:
        method, path = scope["method"], scope["path"]
        extra = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "user_id": scope.get(USER),
        }
        access_log.info("%s %s %s", method, path, status, extra=extra)


def _route_template(scope: Scope) -> str:
    """The path template of the request's route (``/api/v1/orders/{order_id}``), for metric labels."""
    route = scope.get("route")
    if route is None:  # answered before routing (401, 413) or no route at all (404)
        router = getattr(scope.get("app"), "router", None)
        for candidate in getattr(router, "routes", ()):
            if candidate.matches(scope)[0] is not Match.NONE:
                route = candidate
                break
    return getattr(route, "path", None) or "unmatched"


def _declares_body(scope: Scope) -> bool:
    """True when the request says a body follows (a non-zero Content-Length, or chunked)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False


class Authenticate:
    """Identifies the caller of every ``/api/`` request from its headers alone: 401 before the body is read.

    The user id goes to ``scope[USER]``; the rest of the app reads it there.
    """

    def __init__(self, app: ASGIApp, *, authenticator: Authenticator, on_error: ErrorHook) -> None:
        self.app = app
        self.authenticator = authenticator
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        try:
            user_id = await self.authenticator.authenticate(Request(scope))
        except AuthenticationError as exc:
            headers = {"WWW-Authenticate": "Bearer"}
            if _declares_body(scope):  # left unread: close rather than read it to find the next request
                headers["Connection"] = "close"
            self.on_error(scope["method"], scope["path"], exc.code)
            await error_response(401, exc.code, str(exc), headers=headers)(scope, receive, send)
            return
        scope[USER] = user_id
        await self.app(scope, receive, send)


class BodyLimit:
    """Reads the whole body, up to ``max_body_bytes``, before the app runs: 413 past it, 400 for a bad length.

    The app then receives the body as one message.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, on_error: ErrorHook) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        result = await self._read(scope, receive)
        if isinstance(result, tuple):
            status, code, message = result
            self.on_error(scope["method"], scope["path"], code)
            await error_response(status, code, message)(scope, receive, send)
            return
        await self.app(scope, result, send)

    async def _read(self, scope: Scope, receive: Receive) -> Receive | tuple[int, str, str]:
        """A receive that replays the whole body, or the ``(status, code, message)`` of a refusal."""
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return 400, "invalid_request", "the Content-Length header is not a number"
            elif name == b"transfer-encoding":
                chunked = True
        limit = self.max_body_bytes
        too_large = 413, "payload_too_large", f"the request body exceeds the limit of {limit} bytes"
        if length is not None and length > limit:
            return too_large
        if not chunked and not length:
            return receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees what came and its answer goes nowhere
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay
