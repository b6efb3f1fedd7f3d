"""The decimal context every money computation of the order layer runs in."""

from __future__ import annotations

import decimal
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["MONEY_CONTEXT", "in_money_context"]

#: Exact for any amount a 64-bit grid can express, whatever the caller's context:
#: price x quantity alone can need 38 significant digits (two 19-digit integers of
#: ticks and lots), sums of them more; the default context keeps 28.
MONEY_CONTEXT = decimal.Context(prec=80, traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


def in_money_context(method: _F) -> _F:
    """Run an async method under :data:`MONEY_CONTEXT` (the context is per task, so this is safe)."""

    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        with decimal.localcontext(MONEY_CONTEXT):
            return await method(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
