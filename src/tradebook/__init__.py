"""tradebook: a fast, exact limit order book and matching engine for Python.

Everything public is importable from here. ``BACKEND`` tells whether the
compiled core (``"cython"``) or the pure-Python fallback (``"python"``) is live.
"""

from ._batch import ERROR_DUPLICATE, ERROR_INVALID, ERROR_NOT_FOUND, STATUS_CODES, BatchOp, BatchResult
from ._common import Depth, L2Delta, LevelSnapshot, MarketDataUpdate, TopOfBook
from ._compat import (
    BACKEND,
    BookSide,
    ExecutionReport,
    MatchingEngine,
    Order,
    OrderBook,
    PriceLevel,
    PriceTree,
    Trade,
)
from .enums import OrderStatus, OrderType, SelfTradePrevention, Side, TimeInForce
from .errors import (
    DuplicateOrderError,
    InsufficientBalanceError,
    InvalidInstrumentError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidQuantityError,
    InvalidRequestError,
    OrderConflictError,
    OrderNotFoundError,
    PersistenceError,
    SymbolMismatchError,
    TradebookError,
    UnknownSymbolError,
    WalletUnavailableError,
)
from .instrument import Instrument

__version__ = "0.1.0"

__all__ = [
    "BACKEND",
    "ERROR_DUPLICATE",
    "ERROR_INVALID",
    "ERROR_NOT_FOUND",
    "STATUS_CODES",
    "BatchOp",
    "BatchResult",
    "BookSide",
    "Depth",
    "DuplicateOrderError",
    "ExecutionReport",
    "InsufficientBalanceError",
    "Instrument",
    "InvalidInstrumentError",
    "InvalidOrderError",
    "InvalidPriceError",
    "InvalidQuantityError",
    "InvalidRequestError",
    "L2Delta",
    "LevelSnapshot",
    "MarketDataUpdate",
    "MatchingEngine",
    "Order",
    "OrderBook",
    "OrderConflictError",
    "OrderNotFoundError",
    "OrderStatus",
    "OrderType",
    "PersistenceError",
    "PriceLevel",
    "PriceTree",
    "SelfTradePrevention",
    "Side",
    "SymbolMismatchError",
    "TimeInForce",
    "TopOfBook",
    "Trade",
    "TradebookError",
    "UnknownSymbolError",
    "WalletUnavailableError",
    "__version__",
]


def __dir__() -> list[str]:
    """The public names only: not the private submodules the imports above leave behind."""
    return sorted({*__all__, "__doc__", "__file__", "__name__", "__package__", "__path__", "__spec__"})
