"""The API's routes: one :class:`~fastapi.APIRouter`; each endpoint a plain function of its parameters.

:data:`FAST_ENDPOINTS` names the endpoints the fast path (:mod:`.fastpath`)
may call directly, with the same arguments FastAPI would give them.
"""

from __future__ import annotations

import json
import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator, ValidationError
from starlette.responses import PlainTextResponse, Response

from .. import BACKEND, __version__
from ..enums import OrderStatus, Side
from ..errors import InvalidOrderError
from ..oms.breaker import BreakerState, CircuitBreakerWallet
from ..oms.models import OrderQuery
from .errors import ERROR_RESPONSES
from .schemas import (
    AmendIn,
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
from .state import API_PREFIX, ORDERS, USER, AppState

__all__ = ["FAST_ENDPOINTS", "metrics_router", "router"]

# A path id is ASCII decimal digits with an optional minus sign: no "_", "+", spaces or other scripts' digits,
# all of which int() would take.
_ORDER_ID = re.compile(r"-?[0-9]+")


def _strict_id(value: object) -> object:
    if isinstance(value, str) and _ORDER_ID.fullmatch(value) is None:
        raise ValueError("an order id is an integer written with the digits 0-9 only")
    return value


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


def _state(request: Request) -> AppState:
    """The app's shared state (what ``create_app`` left in ``app.state.tradebook``)."""
    state: AppState = request.app.state.tradebook
    return state


def _user(request: Request) -> str:
    """The caller, as the authentication middleware identified them."""
    user_id: str = request.scope[USER]
    return user_id


# Endpoints take the request itself rather than FastAPI dependencies for the state and the user: resolving
# dependencies costs about 15 us a request, and the fast path calls these same functions with a Request.
OrderId = Annotated[int, BeforeValidator(_strict_id)]
SymbolFilter = Annotated[str | None, Query(min_length=1, max_length=64)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=32, description="next_cursor of a page")]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": ERROR_RESPONSES[status]} for status in statuses}


router = APIRouter()


@router.post(
    ORDERS,
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
    body = await request.body()
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
    elif time_in_force is None:
        time_in_force = "GTC" if order.expire_at is None else "GTD"
    state = _state(request)
    start = time.perf_counter()
    placement = await state.service.place(
        _user(request),
        order.symbol,
        order.side,
        order.quantity,
        order.price,
        type=order.type,
        time_in_force=time_in_force,
        post_only=order.post_only,
        client_order_id=order.client_order_id,
        stop_price=order.stop_price,
        trailing_offset=order.trailing_offset,
        display_quantity=order.display_quantity,
        expire_at=order.expire_at,
        quote_quantity=order.quote_quantity,
    )
    content = order_json(placement.order)
    if placement.replayed:
        return JSONResponse(content, status_code=200)
    state.metrics.placed(placement, time.perf_counter() - start)
    return JSONResponse(content, status_code=201, headers={"Location": f"{ORDERS}/{placement.order.id}"})


@router.get(
    ORDERS,
    response_model=OrderPage,
    summary="List your orders, newest first",
    responses=_errors(400, 401, 503),
    tags=["orders"],
)
async def list_orders(
    request: Request,
    symbol: SymbolFilter = None,
    status: StatusName | None = None,
    side: SideName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
    cursor: Cursor = None,
) -> JSONResponse:
    """The caller's orders, filtered; follow ``next_cursor`` for older ones."""
    query = OrderQuery(
        symbol=symbol,
        status=None if status is None else OrderStatus(status),
        side=None if side is None else Side(side),
        limit=limit,
        cursor=cursor,
    )
    page = await _state(request).service.list_orders(_user(request), query)
    return JSONResponse({"orders": [order_json(o) for o in page.items], "next_cursor": page.next_cursor})


@router.get(
    ORDERS + "/{order_id}",
    response_model=OrderOut,
    summary="Get one of your orders",
    responses=_errors(400, 401, 404, 503),
    tags=["orders"],
)
async def get_order(order_id: OrderId, request: Request) -> JSONResponse:
    """The order; another user's order is 404, as is an unknown one."""
    return JSONResponse(order_json(await _state(request).service.get_order(_user(request), order_id)))


@router.delete(
    ORDERS + "/{order_id}",
    response_model=OrderOut,
    summary="Cancel one of your orders",
    responses=_errors(400, 401, 404, 409, 503),
    tags=["orders"],
)
async def cancel_order(order_id: OrderId, request: Request) -> JSONResponse:
    """Cancel the order and release its funds; 409 when it is already filled, cancelled or expired."""
    state = _state(request)
    start = time.perf_counter()
    record = await state.service.cancel_order(_user(request), order_id)
    state.metrics.cancelled(record.symbol, time.perf_counter() - start)
    return JSONResponse(order_json(record))


@router.patch(
    ORDERS + "/{order_id}",
    response_model=OrderOut,
    summary="Amend one of your resting limit orders (quantity and/or price)",
    responses=_errors(400, 401, 404, 409, 413, 422, 503),
    tags=["orders"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AmendIn"}}},
        }
    },
)
async def amend_order(order_id: OrderId, request: Request) -> JSONResponse:
    """Change the order by the engine's priority rules; the order as it stands after any trades it made.

    422 ``insufficient_balance`` (nothing changed) when a larger quantity or a higher buy price cannot be
    funded; 409 when the order is not a resting plain limit order.
    """
    body = await request.body()
    try:
        amend = AmendIn.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
    json.loads(body, object_pairs_hook=_refuse_duplicate_keys)
    state = _state(request)
    placement = await state.service.amend_order(_user(request), order_id, quantity=amend.quantity, price=amend.price)
    return JSONResponse(order_json(placement.order))


@router.get(
    API_PREFIX + "/depth",
    response_model=DepthOut,
    summary="A symbol's book, aggregated by price",
    responses=_errors(400, 401, 503),
    tags=["market data"],
)
async def depth(
    request: Request,
    symbol: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=1000, description="Levels per side")] = 20,
) -> JSONResponse:
    """Bids best first, asks best first, ``limit`` levels each."""
    return JSONResponse(depth_json(symbol, _state(request).service.depth(symbol, limit)))


@router.get(
    API_PREFIX + "/trades",
    response_model=TradePage,
    summary="Recent trades, newest first",
    responses=_errors(400, 401, 503),
    tags=["market data"],
)
async def trades(
    request: Request,
    symbol: SymbolFilter = None,
    mine: Annotated[bool, Query(description="Only your trades, with your side, order id and liquidity")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Cursor = None,
) -> JSONResponse:
    """Trades of a symbol (or all symbols); never shows who traded, except your own side with ``mine``."""
    user_id = _user(request) if mine else None
    page = await _state(request).service.list_trades(symbol=symbol, user_id=user_id, limit=limit, cursor=cursor)
    items = [trade_json(t, user_id) for t in page.items]
    return JSONResponse({"trades": items, "next_cursor": page.next_cursor})


@router.get(
    API_PREFIX + "/balances",
    response_model=BalancesOut,
    summary="Your balances",
    responses=_errors(401, 503),
    tags=["account"],
)
async def balances(request: Request) -> JSONResponse:
    """Available and reserved amounts of each asset the caller holds."""
    service = _state(request).service
    scales = asset_scales(service.instruments.values())
    return JSONResponse(balances_json(await service.balances(_user(request)), scales))


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}}, tags=["operations"])
async def health(request: Request) -> JSONResponse:
    """200 while serving (``degraded`` when the wallet's breaker is not closed), 503 otherwise."""
    state = _state(request)
    service = state.current
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


#: ``/metrics``, included only when the app records metrics.
metrics_router = APIRouter()


@metrics_router.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    content, media_type = _state(request).metrics.render()
    return Response(content, media_type=media_type)


#: The busiest endpoints, which :mod:`.fastpath` answers without FastAPI's per-request machinery.
FAST_ENDPOINTS = (place_order, get_order, cancel_order)
