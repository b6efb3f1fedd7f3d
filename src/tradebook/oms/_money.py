"""The decimal context every money computation of the order layer runs in, and the check of an amount."""

from __future__ import annotations

import decimal
import functools
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

__all__ = ["MONEY_CONTEXT", "in_money_context", "parse_amount"]

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


def parse_amount(value: object, *, allow_zero: bool = False) -> Decimal:
    """A wallet amount (``Decimal``, ``int`` or ``str``) as a positive finite ``Decimal``, or zero when allowed."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise TypeError(f"an amount must be a Decimal, int or str, not {type(value).__name__}")
    try:
        result = Decimal(value)
    except ArithmeticError:
        raise ValueError(f"amount {value!r} is not a number") from None
    if not result.is_finite() or result < 0 or (result == 0 and not allow_zero):
        raise ValueError(f"amount {value!r} must be a positive finite number")
    return result
