"""Exact conversions between public decimal values and the core's integer units.

Prices become integer ticks and quantities integer lots. Nothing here goes
through ``float``: a float input is taken at its exact binary value, so ``0.5``
is accepted on a 0.5 grid while ``0.1`` is rejected on a 0.01 grid (its exact
value is not a multiple of 0.01); pass a ``str`` or ``Decimal`` instead.
"""

from __future__ import annotations

from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation

from .errors import InvalidOrderError

INT64_MAX = (1 << 63) - 1

# Wide enough that quotients of any int64-sized result and any sane step are exact.
EXACT = Context(prec=200, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[InvalidOperation])

__all__ = ["INT64_MAX", "to_decimal", "to_units", "check_units"]


def to_decimal(value: object, what: str, error: type[InvalidOrderError]) -> Decimal:
    """Return ``value`` as a finite positive ``Decimal`` or raise ``error``.

    Accepts ``Decimal``, ``int``, ``str`` and ``float`` (at its exact value);
    rejects ``bool``, NaN, infinities, zero and negatives.
    """
    tp = type(value)
    d: Decimal
    if isinstance(value, Decimal):
        d = value
    elif tp is not bool and isinstance(value, (int, float)):
        d = Decimal(value)
    elif isinstance(value, str):
        try:
            d = Decimal(value)
        except InvalidOperation:
            raise error(f"{what} must be a decimal number; got {value!r}") from None
    else:
        raise error(f"{what} must be a Decimal, int or str; got {tp.__name__} {value!r}")
    if not d.is_finite():
        raise error(f"{what} must be finite; got {value!r}")
    if d <= 0:
        raise error(f"{what} must be positive; got {value!r}")
    return d


# Recent conversions: prices and sizes repeat, and one dict probe is several times
# cheaper than the exact division below (the pure backend converts every order
# here; the compiled core only what its integer fast path cannot). Equal values
# give equal results, so Decimal("1.0") and Decimal("1.00") may share an entry.
_UNITS: dict[tuple[Decimal, Decimal], int] = {}
_UNITS_SIZE = 1 << 16


def to_units(value: Decimal, step: Decimal, what: str, step_name: str, error: type[InvalidOrderError]) -> int:
    """Return ``value / step`` as an int in 1..INT64_MAX, or raise ``error``.

    ``value`` and ``step`` are finite positive decimals.
    """
    key = (value, step)
    units = _UNITS.get(key)
    if units is not None:
        return units
    units = _to_units(value, step, what, step_name, error)
    if len(_UNITS) >= _UNITS_SIZE:
        _UNITS.clear()  # cheap and bounded; the hot values come straight back
    _UNITS[key] = units
    return units


def _to_units(value: Decimal, step: Decimal, what: str, step_name: str, error: type[InvalidOrderError]) -> int:
    try:
        q, r = EXACT.divmod(value, step)
    except InvalidOperation:
        raise error(f"{what} {value} is out of range") from None
    if r:
        raise error(f"{what} {value} is not a multiple of the {step_name} {step}")
    return check_units(int(q), what, error, value)


def check_units(n: object, what: str, error: type[InvalidOrderError], shown: object = None) -> int:
    """Check a raw integer amount of ticks or lots: an ``int`` in 1..INT64_MAX."""
    if type(n) is not int:
        if isinstance(n, int) and not isinstance(n, bool):
            n = int(n)
        else:
            raise error(f"{what} in raw units must be an int; got {type(n).__name__} {n!r}")
    if n <= 0:
        raise error(f"{what} must be positive; got {n if shown is None else shown}")
    if n > INT64_MAX:
        raise error(f"{what} {n if shown is None else shown} is out of range (more than 2**63-1 units)")
    return n


def from_units(n: int, step: Decimal) -> Decimal:
    """Return ``n * step`` exactly."""
    return EXACT.multiply(step, Decimal(n))
