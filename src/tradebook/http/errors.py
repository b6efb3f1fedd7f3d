"""From errors to responses: every failure becomes ``{"error": {"code", "message", "details"}}``.

The status comes from the error's stable ``code`` (:data:`STATUS_BY_CODE`); the
library's own errors keep their codes (``insufficient_balance`` and so on), and
the HTTP layer adds a few of its own (``invalid_json``, ``unauthenticated``,
``payload_too_large``, ``not_found``, ``method_not_allowed``). Bad input of any
kind is a 4xx; a 500 (``internal_error``) means a bug, and is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import TradebookError
from .schemas import JSONResponse

__all__ = [
    "ERROR_RESPONSES",
    "STATUS_BY_CODE",
    "error_response",
    "install_error_handlers",
    "response_for",
    "status_for",
]

log = logging.getLogger("tradebook.http")

#: The HTTP status of each error code.
STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 400,
    "invalid_json": 400,
    "invalid_order": 400,
    "invalid_price": 400,
    "invalid_quantity": 400,
    "unknown_symbol": 400,
    "symbol_mismatch": 400,
    "unauthenticated": 401,
    "not_found": 404,
    "order_not_found": 404,
    "method_not_allowed": 405,
    "order_conflict": 409,
    "duplicate_order": 409,
    "payload_too_large": 413,
    "insufficient_balance": 422,
    "wallet_unavailable": 503,
    "persistence_error": 503,
    "service_unavailable": 503,
    "internal_error": 500,
}

_CODE_BY_HTTP_STATUS = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}

#: OpenAPI descriptions of the error statuses, for ``responses=``.
ERROR_RESPONSES: dict[int, str] = {
    400: "Malformed or invalid request (bad JSON, wrong types, unknown fields, off-grid or absurd numbers, "
    "unknown symbol): invalid_request, invalid_json, invalid_order, invalid_price, invalid_quantity, "
    "unknown_symbol",
    401: "No valid credentials: unauthenticated",
    404: "No such order for this user (another user's order is not found either): order_not_found",
    409: "The order can no longer be cancelled (filled, cancelled, expired, rejected): order_conflict",
    413: "The request body is larger than the server accepts: payload_too_large",
    422: "The wallet cannot reserve what the order needs: insufficient_balance",
    503: "The wallet or the database is unavailable, or the server is stopping; nothing was done: "
    "wallet_unavailable, persistence_error, service_unavailable",
}


def status_for(exc: TradebookError) -> int:
    """The HTTP status of a library error, from its code (validation errors 400, lookups 404 otherwise)."""
    status = STATUS_BY_CODE.get(exc.code)
    if status is not None:
        return status
    if isinstance(exc, ValueError):
        return 400
    if isinstance(exc, KeyError):
        return 404
    return 500


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    """The one JSON shape of every error."""
    return JSONResponse(
        {"error": {"code": code, "message": message, "details": details}}, status_code=status, headers=headers
    )


def _validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors, trimmed to what is JSON-safe and useful: where, what, and the kind."""
    details = []
    for err in errors:
        loc = [part if isinstance(part, (str, int)) else str(part) for part in err.get("loc", ())]
        details.append(
            {
                "field": ".".join(str(p) for p in loc[1:]) or None,
                "location": loc[:1],
                "message": err.get("msg"),
                "type": err.get("type"),
            }
        )
    return details


def response_for(exc: Exception, method: str, path: str) -> tuple[Response, str]:
    """The error response for ``exc`` raised while answering ``method path``, and its code.

    Library errors get the status of their code; request validation errors are
    400 (``invalid_json`` when the body is not JSON); Starlette's HTTP errors
    keep their status; anything else is a logged 500 that reveals nothing.
    """
    if isinstance(exc, TradebookError):
        status = status_for(exc)
        code = exc.code if status != 500 else "internal_error"
        if status >= 500:
            log.error("%s on %s %s: %s", exc.code, method, path, exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return error_response(status, code, str(exc), headers=headers), code
    if isinstance(exc, RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "invalid_json", "the request body is not valid JSON"), "invalid_json"
        details = _validation_details(errors)
        first = details[0] if details else {}
        where = first.get("field") or "request"
        message = f"{where}: {first.get('message', 'invalid')}"
        return error_response(400, "invalid_request", message, details), "invalid_request"
    if isinstance(exc, HTTPException):
        status = exc.status_code
        code = _CODE_BY_HTTP_STATUS.get(status, "invalid_request" if status < 500 else "internal_error")
        message = str(exc.detail) if exc.detail else code.replace("_", " ")
        headers = dict(exc.headers) if exc.headers else None
        return error_response(status, code, message, headers=headers), code
    log.error("unexpected error on %s %s", method, path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error; it has been logged"), "internal_error"


def install_error_handlers(
    app: FastAPI,
    on_error: Callable[[str, str, str], None] | None = None,
    allowed_methods: Callable[[Any], Sequence[str]] | None = None,
) -> None:
    """Make every error of ``app`` a JSON error response; ``on_error(method, path, code)`` sees each one.

    ``allowed_methods(scope)`` names every method of the requested resource, for
    the ``Allow`` header of a 405 (Starlette's says only the methods of the
    first route whose path matched, while a resource may have several routes).
    """

    async def handle(request: Request, exc: Exception) -> Response:
        response, code = response_for(exc, request.method, request.url.path)
        if code == "method_not_allowed" and allowed_methods is not None:
            response.headers["Allow"] = ", ".join(allowed_methods(request.scope))
        if on_error is not None:
            on_error(request.method, request.url.path, code)
        return response

    for kind in (TradebookError, RequestValidationError, HTTPException, Exception):
        app.add_exception_handler(kind, handle)
