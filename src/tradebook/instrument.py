"""``Instrument``: a tradable symbol with its tick and lot grid and its limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ._numeric import from_units, to_decimal, to_units
from .errors import InvalidInstrumentError, InvalidPriceError, InvalidQuantityError

__all__ = ["Instrument"]

Number = Decimal | int | str | float


class Instrument:
    """A symbol ``"BASE/QUOTE"`` with its tick size, lot size and optional limits.

    Prices are whole multiples of ``tick_size`` and quantities whole multiples of
    ``lot_size``; inside the core they are integers (ticks and lots).

    >>> btc = Instrument("BTC/USDT", "0.01", "0.001")
    >>> btc.base, btc.quote, btc.tick_size
    ('BTC', 'USDT', Decimal('0.01'))
    >>> btc.price_to_ticks("101.25")
    10125
    >>> btc.lots_to_quantity(1500)
    Decimal('1.500')
    """

    __slots__ = (
        "_symbol",
        "_base",
        "_quote",
        "_tick",
        "_lot",
        "_min_quantity",
        "_max_quantity",
        "_min_notional",
        "_min_price",
        "_max_price",
        "_price_cache",
        "_quantity_cache",
    )

    def __init__(
        self,
        symbol: str,
        tick_size: Number,
        lot_size: Number,
        *,
        min_quantity: Number | None = None,
        max_quantity: Number | None = None,
        min_notional: Number | None = None,
        min_price: Number | None = None,
        max_price: Number | None = None,
    ) -> None:
        if not isinstance(symbol, str):
            raise InvalidInstrumentError(f"symbol must be a str of the form BASE/QUOTE; got {symbol!r}")
        base, sep, quote = symbol.partition("/")
        if not sep or not base or not quote or "/" in quote or symbol != symbol.strip() or " " in symbol:
            raise InvalidInstrumentError(f"symbol must have the form BASE/QUOTE; got {symbol!r}")
        self._price_cache: dict[int, Decimal] = {}
        self._quantity_cache: dict[int, Decimal] = {}
        self._symbol = symbol
        self._base = base
        self._quote = quote
        self._tick = _positive(tick_size, "tick_size")
        self._lot = _positive(lot_size, "lot_size")
        self._min_quantity = self._on_grid(min_quantity, "min_quantity", self._lot, "lot size")
        self._max_quantity = self._on_grid(max_quantity, "max_quantity", self._lot, "lot size")
        self._min_price = self._on_grid(min_price, "min_price", self._tick, "tick size")
        self._max_price = self._on_grid(max_price, "max_price", self._tick, "tick size")
        self._min_notional = None if min_notional is None else _positive(min_notional, "min_notional")
        for low, high, name in (
            (self._min_quantity, self._max_quantity, "quantity"),
            (self._min_price, self._max_price, "price"),
        ):
            if low is not None and high is not None and low > high:
                raise InvalidInstrumentError(f"min_{name} {low} exceeds max_{name} {high}")

    @staticmethod
    def _on_grid(value: Number | None, name: str, step: Decimal, step_name: str) -> Decimal | None:
        if value is None:
            return None
        d = _positive(value, name)
        try:
            to_units(d, step, name, step_name, InvalidPriceError)
        except InvalidPriceError as exc:
            raise InvalidInstrumentError(str(exc)) from None
        return d

    # -- read-only attributes -------------------------------------------------

    @property
    def symbol(self) -> str:
        """The symbol, ``"BASE/QUOTE"``."""
        return self._symbol

    @property
    def base(self) -> str:
        """The base asset (what is bought and sold)."""
        return self._base

    @property
    def quote(self) -> str:
        """The quote asset (what prices are in)."""
        return self._quote

    @property
    def tick_size(self) -> Decimal:
        """The price grid step."""
        return self._tick

    @property
    def lot_size(self) -> Decimal:
        """The quantity grid step."""
        return self._lot

    @property
    def min_quantity(self) -> Decimal | None:
        """Smallest order quantity, or None."""
        return self._min_quantity

    @property
    def max_quantity(self) -> Decimal | None:
        """Largest order quantity, or None."""
        return self._max_quantity

    @property
    def min_notional(self) -> Decimal | None:
        """Smallest price x quantity of a limit order, or None."""
        return self._min_notional

    @property
    def min_price(self) -> Decimal | None:
        """Lowest limit price, or None."""
        return self._min_price

    @property
    def max_price(self) -> Decimal | None:
        """Highest limit price, or None."""
        return self._max_price

    # -- conversions ----------------------------------------------------------

    def price_to_ticks(self, price: Number) -> int:
        """Return ``price`` in integer ticks; raises ``InvalidPriceError`` if off the grid."""
        return to_units(
            to_decimal(price, "price", InvalidPriceError), self._tick, "price", "tick size", InvalidPriceError
        )

    def quantity_to_lots(self, quantity: Number) -> int:
        """Return ``quantity`` in integer lots; raises ``InvalidQuantityError`` if off the grid."""
        return to_units(
            to_decimal(quantity, "quantity", InvalidQuantityError),
            self._lot,
            "quantity",
            "lot size",
            InvalidQuantityError,
        )

    def ticks_to_price(self, ticks: int) -> Decimal:
        """Return the ``Decimal`` price of ``ticks``."""
        # Books revisit the same prices all the time: remember recent conversions.
        price = self._price_cache.get(ticks)
        if price is None:
            price = from_units(ticks, self._tick)
            _remember(self._price_cache, ticks, price)
        return price

    def lots_to_quantity(self, lots: int) -> Decimal:
        """Return the ``Decimal`` quantity of ``lots``."""
        quantity = self._quantity_cache.get(lots)
        if quantity is None:
            quantity = from_units(lots, self._lot)
            _remember(self._quantity_cache, lots, quantity)
        return quantity

    # -- value semantics ------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data; ``Instrument.from_dict`` rebuilds an equal instrument."""
        out: dict[str, Any] = {"symbol": self._symbol, "tick_size": str(self._tick), "lot_size": str(self._lot)}
        for name in ("min_quantity", "max_quantity", "min_notional", "min_price", "max_price"):
            value = getattr(self, "_" + name)
            if value is not None:
                out[name] = str(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instrument:
        """Rebuild an instrument from ``to_dict()`` data."""
        if not isinstance(data, dict) or "symbol" not in data:
            raise InvalidInstrumentError(f"instrument data must be a dict with a symbol; got {data!r}")
        kwargs = {k: v for k, v in data.items() if k not in ("symbol", "tick_size", "lot_size")}
        try:
            return cls(data["symbol"], data["tick_size"], data["lot_size"], **kwargs)
        except (KeyError, TypeError) as exc:
            raise InvalidInstrumentError(f"bad instrument data {data!r}: {exc}") from None

    def _key(self) -> tuple[Any, ...]:
        return (
            self._symbol,
            self._tick,
            self._lot,
            self._min_quantity,
            self._max_quantity,
            self._min_notional,
            self._min_price,
            self._max_price,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instrument):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        names = ("min_quantity", "max_quantity", "min_notional", "min_price", "max_price")
        extra = "".join(f", {k}={getattr(self, k)!r}" for k in names if getattr(self, k) is not None)
        return f"Instrument({self._symbol!r}, tick_size={self._tick!r}, lot_size={self._lot!r}{extra})"


_CACHE_SIZE = 1 << 16


def _remember(cache: dict[int, Decimal], key: int, value: Decimal) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()  # cheap and bounded; the hot keys come straight back
    cache[key] = value


def _positive(value: object, name: str) -> Decimal:
    try:
        return to_decimal(value, name, InvalidPriceError)
    except InvalidPriceError as exc:
        raise InvalidInstrumentError(str(exc)) from None
