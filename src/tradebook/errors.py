"""The exceptions tradebook raises, each with a stable machine-readable ``code``.

Every error derives from :class:`TradebookError`. Validation errors also derive
from :class:`ValueError`, lookup errors from :class:`KeyError`, so code that
already catches the built-in families keeps working. A call that raises leaves
the book (or engine) exactly as it was.
"""

from __future__ import annotations

__all__ = [
    "DuplicateOrderError",
    "InsufficientBalanceError",
    "InvalidInstrumentError",
    "InvalidOrderError",
    "InvalidPriceError",
    "InvalidQuantityError",
    "InvalidRequestError",
    "OrderConflictError",
    "OrderNotFoundError",
    "PersistenceError",
    "SymbolMismatchError",
    "TradebookError",
    "UnknownSymbolError",
    "WalletUnavailableError",
]


class TradebookError(Exception):
    """Base class of every tradebook error; ``code`` is a stable snake-case id."""

    code: str = "tradebook_error"

    def __str__(self) -> str:
        # KeyError quotes its message; our errors carry sentences, so keep them plain.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class InvalidOrderError(TradebookError, ValueError):
    """An order (or a command on one) is malformed or not allowed."""

    code = "invalid_order"


class InvalidPriceError(InvalidOrderError):
    """A price is missing, not a number, off the tick grid, non-positive or out of range."""

    code = "invalid_price"


class InvalidQuantityError(InvalidOrderError):
    """A quantity is not a number, off the lot grid, non-positive or out of range."""

    code = "invalid_quantity"


class SymbolMismatchError(InvalidOrderError):
    """An order names a symbol other than the book's."""

    code = "symbol_mismatch"


class InvalidInstrumentError(TradebookError, ValueError):
    """An instrument definition is invalid (tick or lot size, symbol, limits)."""

    code = "invalid_instrument"


class DuplicateOrderError(TradebookError):
    """An order with this id is already resting in the book."""

    code = "duplicate_order"


class OrderNotFoundError(TradebookError, KeyError):
    """No resting order has this id."""

    code = "order_not_found"


class UnknownSymbolError(TradebookError, KeyError):
    """No instrument with this symbol is known."""

    code = "unknown_symbol"


class OrderConflictError(TradebookError):
    """The order's state does not allow the command (say, cancelling a filled order)."""

    code = "order_conflict"


class InsufficientBalanceError(TradebookError):
    """The wallet cannot reserve the funds an order needs; nothing was reserved."""

    code = "insufficient_balance"


class WalletUnavailableError(TradebookError):
    """The wallet did not answer (down, timed out, or its circuit breaker is open)."""

    code = "wallet_unavailable"


class PersistenceError(TradebookError):
    """The repository failed to store a command's effects; the command was undone."""

    code = "persistence_error"


class InvalidRequestError(TradebookError, ValueError):
    """A request is malformed beyond one order's fields (a bad cursor, page size, user id)."""

    code = "invalid_request"
