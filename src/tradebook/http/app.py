"""The ASGI application: :func:`create_app` puts the HTTP API in front of an :class:`OrderService`.

Every ``/api/`` request is authenticated first (401 before anything else is
looked at), its body is capped (413 past ``max_body_bytes``), and every failure
leaves as ``{"error": {"code", "message", "details"}}`` with the status its code
maps to (:mod:`tradebook.http.errors`). ``GET /health`` and ``GET /metrics``
need no credentials: expose ``/metrics`` to your scraper only.

Either hand over a started service (you own its life cycle)::

    app = create_app(service, authenticator=TokenAuthenticator.from_env())

or a factory that the app opens at startup and closes at shutdown (what
``tradebook serve`` does)::

    app = create_app(open_service=lambda: my_service_context(), authenticator=...)
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import BeforeValidator, ValidationError
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import BACKEND, __version__
from ..enums import OrderStatus, Side
from ..errors import InvalidOrderError, TradebookError
from ..oms.breaker import BreakerState, CircuitBreakerWallet
from ..oms.models import OrderQuery
from ..oms.service import OrderService
from .auth import AuthenticationError, Authenticator, TrustedHeaderAuthenticator
from .errors import ERROR_RESPONSES, error_response, install_error_handlers, response_for
from .metrics import Metrics, create_metrics
from .schemas import (
    BalancesOut,
    DepthOut,
    ErrorResponse,
    HealthOut,
    JSONResponse,
    OrderIn,
    OrderOut,
    OrderPage,
    SideName,
    StatusName,
    TradePage,
    asset_scales,
    balances_json,
    depth_json,
    order_json,
    trade_json,
)

__all__ = ["API_PREFIX", "DEFAULT_MAX_BODY_BYTES", "ServiceUnavailableError", "create_app"]

#: Where the versioned API lives.
API_PREFIX = "/api/v1"
#: The default request body cap (64 KiB): an order is a few hundred bytes.
DEFAULT_MAX_BODY_BYTES = 64 * 1024

_USER = "tradebook.user_id"
_ORDERS = API_PREFIX + "/orders"

access_log = logging.getLogger("tradebook.http.access")

# A path id is ASCII decimal digits with an optional minus sign: no "_", "+", spaces or other scripts' digits,
# all of which int() would take.
_ORDER_ID = re.compile(r"-?[0-9]+")


def _strict_id(value: object) -> object:
    if isinstance(value, str) and _ORDER_ID.fullmatch(value) is None:
        raise ValueError("an order id is an integer written with the digits 0-9 only")
    return value


OrderId = Annotated[int, BeforeValidator(_strict_id)]


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: the object, or 400 when a key appears twice."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:  # pragma: no branch - a repeated key exists
            if key in seen:
                message = f"the key {key!r} appears more than once in the JSON object"
                raise RequestValidationError([{"type": "duplicate_key", "loc": ("body", key), "msg": message}])
            seen.add(key)
    return result


class ServiceUnavailableError(TradebookError):
    """The app has no running service (it is starting or stopping): HTTP 503."""

    code = "service_unavailable"


class _State:
    """What the handlers share: the service (once started), the authenticator and the metrics."""

    def __init__(self, service: OrderService | None, authenticator: Authenticator, metrics: Metrics) -> None:
        self._service = service
        self.authenticator = authenticator
        self.metrics = metrics
        self.stopping = False

    @property
    def service(self) -> OrderService:
        service = self._service
        if service is None or self.stopping:
            raise ServiceUnavailableError("the service is not running (starting up or shutting down)")
        return service

    def attach(self, service: OrderService) -> None:
        self._service = service
        self.metrics.bind(service)


class _Orders:
    """The order endpoints' work, shared by the FastAPI routes and the fast path of :class:`_Edge`."""

    def __init__(self, state: _State) -> None:
        self.state = state

    async def place(self, user_id: str, body: bytes) -> JSONResponse:
        """``POST /api/v1/orders`` with this body."""
        # pydantic parses the JSON itself, strictly: a JSON number is not a decimal string.
        try:
            order = OrderIn.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
        # pydantic keeps the last of repeated keys; a body that says two things is refused instead. The body is
        # a valid flat object by now, so this second parse is small and bounded.
        json.loads(body, object_pairs_hook=_refuse_duplicate_keys)
        time_in_force = order.time_in_force
        if order.type == "MARKET":
            if time_in_force == "GTC":
                raise InvalidOrderError("a MARKET order never rests: its time_in_force is IOC (the default) or FOK")
            time_in_force = time_in_force or "IOC"
        service = self.state.service
        start = time.perf_counter()
        placement = await service.place(
            user_id,
            order.symbol,
            order.side,
            order.quantity,
            order.price,
            type=order.type,
            time_in_force=time_in_force or "GTC",
            post_only=order.post_only,
            client_order_id=order.client_order_id,
        )
        content = order_json(placement.order)
        if placement.replayed:
            return JSONResponse(content, status_code=200)
        self.state.metrics.placed(placement, time.perf_counter() - start)
        return JSONResponse(content, status_code=201, headers={"Location": f"{_ORDERS}/{placement.order.id}"})

    async def get(self, user_id: str, order_id: int) -> JSONResponse:
        """``GET /api/v1/orders/{order_id}``."""
        return JSONResponse(order_json(await self.state.service.get_order(user_id, order_id)))

    async def cancel(self, user_id: str, order_id: int) -> JSONResponse:
        """``DELETE /api/v1/orders/{order_id}``."""
        start = time.perf_counter()
        record = await self.state.service.cancel_order(user_id, order_id)
        self.state.metrics.cancelled(record.symbol, time.perf_counter() - start)
        return JSONResponse(order_json(record))


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": ERROR_RESPONSES[status]} for status in statuses}


def create_app(
    service: OrderService | None = None,
    *,
    authenticator: Authenticator,
    open_service: Callable[[], AbstractAsyncContextManager[OrderService]] | None = None,
    metrics: Metrics | bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    access_log_enabled: bool = False,
    opentelemetry: bool = False,
    fast_path: bool = True,
    title: str = "tradebook",
) -> FastAPI:
    """The HTTP API over ``service`` (started, owned by the caller) or over what ``open_service`` opens.

    ``metrics`` is a :class:`~tradebook.http.metrics.Metrics`, or a bool for
    :func:`~tradebook.http.metrics.create_metrics` (off, or on when
    ``prometheus_client`` is installed). ``access_log_enabled`` logs one line
    per request on the ``tradebook.http.access`` logger. ``opentelemetry`` keeps
    FastAPI's native OpenTelemetry instrumentation (where the installed FastAPI
    has it) on; it is off by default, as it costs time on every request.

    ``fast_path`` answers the busiest endpoints (placing, getting and
    cancelling an order by its id) straight from the outermost middleware,
    without FastAPI's per-request machinery; their FastAPI routes give the
    same answers and document them in the OpenAPI document.
    """
    if (service is None) == (open_service is None):
        raise ValueError("pass either a started service or open_service, not both or neither")
    if not isinstance(authenticator, Authenticator):
        raise TypeError("authenticator must have an async authenticate(request) method")
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be a positive integer, not {max_body_bytes!r}")
    recorder = metrics if isinstance(metrics, Metrics) else create_metrics(metrics)
    state = _State(None, authenticator, recorder)
    if service is not None:
        state.attach(service)
    orders = _Orders(state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if open_service is None:
            yield
            return
        async with open_service() as opened:
            state.attach(opened)
            state.stopping = False
            try:
                yield
            finally:
                state.stopping = True  # until the service is closed; a later startup opens a new one

    options: dict[str, Any] = {}
    if not opentelemetry and "telemetry" in inspect.signature(FastAPI).parameters:
        # FastAPI's native OpenTelemetry asks the global providers on every request; off unless wanted.
        options["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        **options,
        title=title,
        version=__version__,
        description=(
            "Order management over an exact limit order book. Prices, quantities and amounts are decimal "
            "strings both ways, never JSON numbers. Errors: "
            '{"error": {"code": ..., "message": ..., "details": ...}}.'
        ),
        lifespan=lifespan,
    )
    app.state.tradebook = state

    def on_error(method: str, path: str, code: str) -> None:
        if method == "POST" and path == _ORDERS:
            recorder.rejected(code)

    install_error_handlers(app, on_error, lambda scope: _allowed_methods(app, scope))
    app.add_middleware(
        _Edge,
        state=state,
        max_body_bytes=max_body_bytes,
        log_requests=access_log_enabled,
        orders=orders if fast_path else None,
        on_error=on_error,
    )

    @app.post(
        _ORDERS,
        status_code=201,
        response_model=OrderOut,
        summary="Place an order",
        responses={
            200: {"model": OrderOut, "description": "A repeat of an earlier client_order_id: the original order"},
            **_errors(400, 401, 413, 422, 503),
        },
        tags=["orders"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrderIn"}}},
            }
        },
    )
    async def place_order(request: Request) -> JSONResponse:
        """Validate, reserve, match and settle one order; 201 with the order as it stands after matching."""
        return await orders.place(request.scope[_USER], await request.body())

    @app.get(
        _ORDERS,
        response_model=OrderPage,
        summary="List your orders, newest first",
        responses=_errors(400, 401, 503),
        tags=["orders"],
    )
    async def list_orders(
        request: Request,
        symbol: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        status: StatusName | None = None,
        side: SideName | None = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
        cursor: Annotated[str | None, Query(min_length=1, max_length=32, description="next_cursor of a page")] = None,
    ) -> JSONResponse:
        """The caller's orders, filtered; follow ``next_cursor`` for older ones."""
        query = OrderQuery(
            symbol=symbol,
            status=None if status is None else OrderStatus(status),
            side=None if side is None else Side(side),
            limit=limit,
            cursor=cursor,
        )
        page = await state.service.list_orders(request.scope[_USER], query)
        return JSONResponse({"orders": [order_json(o) for o in page.items], "next_cursor": page.next_cursor})

    @app.get(
        _ORDERS + "/{order_id}",
        response_model=OrderOut,
        summary="Get one of your orders",
        responses=_errors(400, 401, 404, 503),
        tags=["orders"],
    )
    async def get_order(order_id: OrderId, request: Request) -> JSONResponse:
        """The order; another user's order is 404, as is an unknown one."""
        return await orders.get(request.scope[_USER], order_id)

    @app.delete(
        _ORDERS + "/{order_id}",
        response_model=OrderOut,
        summary="Cancel one of your orders",
        responses=_errors(400, 401, 404, 409, 503),
        tags=["orders"],
    )
    async def cancel_order(order_id: OrderId, request: Request) -> JSONResponse:
        """Cancel the order and release its funds; 409 when it is already filled, cancelled or expired."""
        return await orders.cancel(request.scope[_USER], order_id)

    @app.get(
        API_PREFIX + "/depth",
        response_model=DepthOut,
        summary="A symbol's book, aggregated by price",
        responses=_errors(400, 401, 503),
        tags=["market data"],
    )
    async def depth(
        symbol: Annotated[str, Query(min_length=1, max_length=64)],
        limit: Annotated[int, Query(ge=1, le=1000, description="Levels per side")] = 20,
    ) -> JSONResponse:
        """Bids best first, asks best first, ``limit`` levels each."""
        return JSONResponse(depth_json(symbol, state.service.depth(symbol, limit)))

    @app.get(
        API_PREFIX + "/trades",
        response_model=TradePage,
        summary="Recent trades, newest first",
        responses=_errors(400, 401, 503),
        tags=["market data"],
    )
    async def trades(
        request: Request,
        symbol: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        mine: Annotated[bool, Query(description="Only your trades, with your side, order id and liquidity")] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    ) -> JSONResponse:
        """Trades of a symbol (or all symbols); never shows who traded, except your own side with ``mine``."""
        user_id: str | None = request.scope[_USER] if mine else None
        page = await state.service.list_trades(symbol=symbol, user_id=user_id, limit=limit, cursor=cursor)
        items = [trade_json(t, user_id) for t in page.items]
        return JSONResponse({"trades": items, "next_cursor": page.next_cursor})

    @app.get(
        API_PREFIX + "/balances",
        response_model=BalancesOut,
        summary="Your balances",
        responses=_errors(401, 503),
        tags=["account"],
    )
    async def balances(request: Request) -> JSONResponse:
        """Available and reserved amounts of each asset the caller holds."""
        service = state.service
        scales = asset_scales(service.instruments.values())
        return JSONResponse(balances_json(await service.balances(request.scope[_USER]), scales))

    @app.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, tags=["operations"])
    async def health() -> JSONResponse:
        """200 while serving (``degraded`` when the wallet's breaker is not closed), 503 otherwise."""
        service = state._service
        status: Literal["ok", "degraded", "starting", "stopping"] = "ok"
        wallet: str | None = None
        if state.stopping:
            status = "stopping"
        elif service is None:
            status = "starting"
        elif isinstance(service.wallet, CircuitBreakerWallet):
            breaker = service.wallet.state
            wallet = breaker.value
            if breaker is not BreakerState.CLOSED:
                status = "degraded"
        body = {"status": status, "version": __version__, "backend": BACKEND, "wallet": wallet}
        return JSONResponse(body, status_code=200 if status in ("ok", "degraded") else 503)

    if recorder.enabled:

        @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
        async def metrics_endpoint() -> Response:
            """Prometheus metrics (text exposition format)."""
            content, media_type = recorder.render()
            return Response(content, media_type=media_type)

    app.openapi = lambda: _openapi(app, authenticator)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI, authenticator: Authenticator) -> dict[str, Any]:
    """The OpenAPI document, with the security scheme and without FastAPI's unused 422 validation entries."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    if isinstance(authenticator, TrustedHeaderAuthenticator):
        scheme: dict[str, Any] = {"type": "apiKey", "in": "header", "name": authenticator.header}
    else:
        scheme = {"type": "http", "scheme": "bearer", "description": "tradebook token (`tradebook token USER`)"}
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})["tradebook"] = scheme
    schemas = components.setdefault("schemas", {})
    schemas["OrderIn"] = OrderIn.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            entry = responses.get("422")
            if entry is not None and "HTTPValidationError" in str(entry):
                del responses["422"]
            if path.startswith(API_PREFIX):
                operation["security"] = [{"tradebook": []}]
    app.openapi_schema = schema
    return schema


def _allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at the request's path (RFC 9110's ``Allow``), sorted."""
    methods: set[str] = set()
    for route in app.router.routes:
        if route.matches(scope)[0] is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


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


_ORDER_PREFIX = _ORDERS + "/"


def _declares_body(scope: Scope) -> bool:
    """True when the request says a body follows (a non-zero Content-Length, or chunked)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"0", b"")):
            return True
    return False


class _Edge:
    """Outermost request handling: body cap, authentication of ``/api/``, metrics, the access log.

    With ``orders``, it also answers the busiest endpoints itself (the fast
    path), with the same code and the same error translation as their routes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: _State,
        max_body_bytes: int,
        log_requests: bool,
        orders: _Orders | None,
        on_error: Callable[[str, str, str], None],
    ) -> None:
        self.app = app
        self.state = state
        self.max_body_bytes = max_body_bytes
        self.log_requests = log_requests
        self.orders = orders
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        user_id: str | None = None
        template: str | None = None
        method: str = scope["method"]
        path: str = scope["path"]

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            problem: Response | None = None
            body = b""
            if path.startswith("/api/"):
                # Credentials first, from the headers alone: an anonymous client gets 401 before one byte of
                # its body is read, whatever else is wrong with the request.
                try:
                    user_id = await self.state.authenticator.authenticate(Request(scope))
                except AuthenticationError as exc:
                    headers = {"WWW-Authenticate": "Bearer"}
                    if _declares_body(scope):  # left unread: close rather than read it to find the next request
                        headers["Connection"] = "close"
                    problem = error_response(401, exc.code, str(exc), headers=headers)
                else:
                    scope[_USER] = user_id
            if problem is None:
                receive, body, problem = await self._read_body(scope, receive)
            if problem is not None:
                if method == "POST" and path == _ORDERS:
                    self.state.metrics.rejected(
                        "payload_too_large" if problem.status_code == 413 else "unauthenticated"
                    )
                await problem(scope, receive, send_status)
                return
            if user_id is not None and self.orders is not None:
                template = await self._fast(method, path, user_id, body, scope, receive, send_status)
                if template is not None:
                    return
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - start
            self.state.metrics.request(method, template or _route_template(scope), status, elapsed)
            if self.log_requests:
                access_log.info(
                    "%s %s %s",
                    method,
                    path,
                    status,
                    extra={
                        "method": method,
                        "path": path,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "user_id": user_id,
                    },
                )

    async def _fast(
        self, method: str, path: str, user_id: str, body: bytes, scope: Scope, receive: Receive, send: Send
    ) -> str | None:
        """Answer a busy endpoint directly; its route template, or ``None`` to leave it to the app."""
        orders = self.orders
        assert orders is not None
        call: Any
        if path == _ORDERS:
            if method != "POST":
                return None
            template, call = _ORDERS, orders.place(user_id, body)
        elif path.startswith(_ORDER_PREFIX):
            text = path[len(_ORDER_PREFIX) :]
            # Plain decimal ids only; anything else goes to the route, which explains what is wrong.
            if not (text.isascii() and text.isdigit() and len(text) <= 19) or method not in ("GET", "DELETE"):
                return None
            order_id = int(text)
            template = _ORDER_PREFIX + "{order_id}"
            call = orders.get(user_id, order_id) if method == "GET" else orders.cancel(user_id, order_id)
        else:
            return None
        try:
            response: Response = await call
        except Exception as exc:
            response, code = response_for(exc, method, path)
            self.on_error(method, path, code)
        await response(scope, receive, send)
        return template

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[Receive, bytes, Response | None]:
        """Read the whole body up to the cap: a receive that replays it, the body, or a 4xx response."""
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    problem = error_response(400, "invalid_request", "the Content-Length header is not a number")
                    return receive, b"", problem
            elif name == b"transfer-encoding":
                chunked = True
        limit = self.max_body_bytes
        too_large = f"the request body exceeds the limit of {limit} bytes"
        if length is not None and length > limit:
            return receive, b"", error_response(413, "payload_too_large", too_large)
        if not chunked and not length:
            return receive, b"", None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees what came and its answer goes nowhere
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return receive, b"", error_response(413, "payload_too_large", too_large)
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

        return replay, body, None
