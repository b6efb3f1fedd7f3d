"""Instrument limits that the engine enforces on every order it accepts (both backends)."""

from __future__ import annotations

from ._numeric import EXACT
from .errors import InvalidOrderError, InvalidPriceError, InvalidQuantityError
from .instrument import Instrument

__all__ = ["check_limits", "has_limits"]


def has_limits(inst: Instrument) -> bool:
    """True if the instrument sets any limit (so the hot path can skip the check)."""
    return any(
        v is not None for v in (inst.min_quantity, inst.max_quantity, inst.min_notional, inst.min_price, inst.max_price)
    )


def check_limits(inst: Instrument, ticks: int | None, lots: int | None) -> None:
    """Raise if ``lots`` (and ``ticks``, for a priced order) break the instrument's limits.

    ``lots`` None (a market order sized by a quote amount, or a stop price) checks the price alone.
    """
    if lots is not None:
        quantity = inst.lots_to_quantity(lots)
        if inst.min_quantity is not None and quantity < inst.min_quantity:
            raise InvalidQuantityError(f"quantity {quantity} is below the minimum {inst.min_quantity} of {inst.symbol}")
        if inst.max_quantity is not None and quantity > inst.max_quantity:
            raise InvalidQuantityError(f"quantity {quantity} is above the maximum {inst.max_quantity} of {inst.symbol}")
    if ticks is None:
        return
    price = inst.ticks_to_price(ticks)
    if inst.min_price is not None and price < inst.min_price:
        raise InvalidPriceError(f"price {price} is below the minimum {inst.min_price} of {inst.symbol}")
    if inst.max_price is not None and price > inst.max_price:
        raise InvalidPriceError(f"price {price} is above the maximum {inst.max_price} of {inst.symbol}")
    if inst.min_notional is not None and lots is not None:
        # exact: price and quantity have up to 19 digits each, more than the caller's context may keep (28 by
        # default), and that context may trap Inexact
        notional = EXACT.multiply(price, inst.lots_to_quantity(lots))
        if notional < inst.min_notional:
            raise InvalidOrderError(
                f"notional {notional} (price x quantity) is below the minimum {inst.min_notional} of {inst.symbol}"
            )
