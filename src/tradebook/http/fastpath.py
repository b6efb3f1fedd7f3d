"""The fast path: the busiest routes answered from the middleware stack, without FastAPI's per-request work.

It takes its routes from the app's own route table (method, path pattern,
endpoint) and calls the same endpoint function the route would, with the
arguments FastAPI would pass: the integer path parameters and the
``request``. A request it cannot serve as simply (a path parameter that
is not plain digits, another method) goes on to the app, which validates and
explains. On ``benchmarks/http_load.py`` it saves about a third of the
server's CPU per request (see docs/http.md).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import response_for
from .state import USER, ErrorHook

__all__ = ["FastPath"]

_MAX_DIGITS = 19  # an int64 id; longer ones go to the route, which says what is wrong


class _FastRoute:
    """One route as the fast path serves it: its pattern, its endpoint and what the endpoint takes."""

    def __init__(self, route: APIRoute) -> None:
        self.route = route
        self.endpoint = route.endpoint
        self.pattern: re.Pattern[str] = route.path_regex
        hints = typing.get_type_hints(route.endpoint)
        takes = set(inspect.signature(route.endpoint).parameters)
        path_params = set(route.param_convertors)
        if takes - path_params != {"request"} or any(hints.get(name) is not int for name in path_params):
            raise TypeError(
                f"the fast path calls {route.endpoint.__name__} with int path parameters and the request only; "
                f"it takes {sorted(takes)}"
            )

    def arguments(self, path: str) -> dict[str, Any] | None:
        """The path parameters of ``path`` as ints, or ``None`` when it is not this route's or not plain digits."""
        match = self.pattern.match(path)
        if match is None:
            return None
        arguments: dict[str, Any] = {}
        for name, text in match.groupdict().items():
            if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
                return None
            arguments[name] = int(text)
        return arguments


class FastPath:
    """Answers ``routes`` for authenticated callers by calling their endpoints directly."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[APIRoute], on_error: ErrorHook) -> None:
        self.app = app
        self.on_error = on_error
        self.by_method: dict[str, list[_FastRoute]] = {}
        for route in routes:
            fast = _FastRoute(route)
            for method in route.methods or ():
                self.by_method.setdefault(method, []).append(fast)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if USER in scope:  # only /api/ requests have one, once authenticated
            method: str = scope["method"]
            path: str = scope["path"]
            for fast in self.by_method.get(method, ()):
                arguments = fast.arguments(path)
                if arguments is not None:
                    await self._answer(fast, arguments, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(
        self, fast: _FastRoute, arguments: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        scope["route"] = fast.route  # for the metrics' route label, as the router would set it
        try:
            response: Response = await fast.endpoint(request=Request(scope, receive), **arguments)
        except Exception as exc:
            method, path = scope["method"], scope["path"]
            response, code = response_for(exc, method, path)
            self.on_error(method, path, code)
        await response(scope, receive, send)
