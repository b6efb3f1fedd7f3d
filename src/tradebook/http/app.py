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
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from .. import __version__
from ..oms.service import OrderService
from .auth import Authenticator, TrustedHeaderAuthenticator
from .errors import install_error_handlers
from .fastpath import FastPath
from .metrics import Metrics, create_metrics
from .middleware import AccessLog, Authenticate, BodyLimit, RequestMetrics
from .routes import FAST_ENDPOINTS, metrics_router, router
from .schemas import OrderIn
from .state import API_PREFIX, AppState, ServiceUnavailableError
from .web import web_routes
from .websocket import websocket_routes

__all__ = ["API_PREFIX", "DEFAULT_MAX_BODY_BYTES", "ServiceUnavailableError", "create_app"]

#: The default request body cap (64 KiB): an order is a few hundred bytes.
DEFAULT_MAX_BODY_BYTES = 64 * 1024

_DESCRIPTION = (
    "Order management over an exact limit order book. Prices, quantities and amounts are decimal "
    "strings both ways, never JSON numbers. Errors: "
    '{"error": {"code": ..., "message": ..., "details": ...}}.'
)


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
    web_page: bool = True,
    websocket_heartbeat: float = 15.0,
    websocket_queue: int = 1000,
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
    cancelling an order by its id) from the middleware stack
    (:mod:`~tradebook.http.fastpath`), calling the same endpoint functions as
    their routes without FastAPI's per-request machinery; the answers are the
    same, and the routes document them in the OpenAPI document.

    ``web_page`` serves the live web page at ``/`` (:mod:`~tradebook.http.web`).

    The live feed is the WebSocket ``/api/v1/ws`` (:mod:`~tradebook.http.websocket`): a heartbeat every
    ``websocket_heartbeat`` seconds, at most ``websocket_queue`` messages waiting per connection.
    """
    if (service is None) == (open_service is None):
        raise ValueError("pass either a started service or open_service, not both or neither")
    if not isinstance(authenticator, Authenticator):
        raise TypeError("authenticator must have an async authenticate(request) method")
    if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
        raise ValueError(f"max_body_bytes must be a positive integer, not {max_body_bytes!r}")
    recorder = metrics if isinstance(metrics, Metrics) else create_metrics(metrics)
    state = AppState(authenticator, recorder)
    if service is not None:
        state.attach(service)
    options: dict[str, Any] = {}
    if not opentelemetry and "telemetry" in inspect.signature(FastAPI).parameters:
        # FastAPI's native OpenTelemetry asks the global providers on every request; off unless wanted.
        options["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    # The routers' routes go in as they are (not include_router, which newer FastAPI keeps as one nested
    # route): the Allow header, the metrics' route labels and the fast path read this flat table.
    routes = [
        *router.routes,
        *(metrics_router.routes if recorder.enabled else ()),
        *websocket_routes(heartbeat=websocket_heartbeat, max_queue=websocket_queue),
        *(web_routes() if web_page else ()),
    ]
    app = FastAPI(
        **options,
        routes=routes,
        title=title,
        version=__version__,
        description=_DESCRIPTION,
        lifespan=_lifespan(state, open_service),
    )
    app.state.tradebook = state
    install_error_handlers(app, state.on_error, lambda scope: _allowed_methods(app, scope))
    # add_middleware wraps what is there: innermost first.
    if fast_path:
        fast_routes = [route for route in routes if isinstance(route, APIRoute) and route.endpoint in FAST_ENDPOINTS]
        app.add_middleware(FastPath, routes=fast_routes, on_error=state.on_error)
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes, on_error=state.on_error)
    app.add_middleware(Authenticate, authenticator=authenticator, on_error=state.on_error)
    if access_log_enabled:
        app.add_middleware(AccessLog)
    app.add_middleware(RequestMetrics, metrics=recorder)
    app.openapi = lambda: _openapi(app, authenticator)  # type: ignore[method-assign]
    return app


def _lifespan(
    state: AppState, open_service: Callable[[], AbstractAsyncContextManager[OrderService]] | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the service at startup and close it at shutdown, when the app owns it."""

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

    return lifespan


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
