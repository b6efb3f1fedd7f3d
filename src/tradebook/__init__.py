"""tradebook: a fast, exact limit order book and matching engine for Python.

Everything public is importable from here. ``BACKEND`` tells whether the
compiled core (``"cython"``) or the pure-Python fallback (``"python"``) is live.
"""

from typing import Any

from ._arrays import ArrayResult
from ._batch import ERROR_DUPLICATE, ERROR_INVALID, ERROR_NOT_FOUND, STATUS_CODES, BatchOp, BatchResult
from ._common import Depth, L2Delta, LevelSnapshot, MarketDataUpdate, MarketSnapshot, OrderEvent, TopOfBook
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
    "COMMAND_DTYPE",
    "ERROR_DUPLICATE",
    "ERROR_INVALID",
    "ERROR_NOT_FOUND",
    "STATUS_CODES",
    "TRADE_DTYPE",
    "ArrayResult",
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
    "MarketSnapshot",
    "MatchingEngine",
    "Order",
    "OrderBook",
    "OrderConflictError",
    "OrderEvent",
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


COMMAND_DTYPE: Any
"""The numpy structured dtype of an ``execute_array`` command row: ``op``, ``side``, ``id``, ``price``, ``quantity``.

32 bytes a row (see :class:`ArrayResult` and the batch reference for the layout); made,
and numpy imported, on first use. It grows as new order types add fields.
"""

TRADE_DTYPE: Any
"""The numpy structured dtype of an ``execute_array`` trade row.

``trade_id``, ``maker_id``, ``taker_id``, ``price`` (ticks), ``lots`` (int64) and
``maker_side`` (int8, 0 BUY, 1 SELL): 48 bytes a row; made on first use.
"""


def __getattr__(name: str) -> Any:
    """``COMMAND_DTYPE`` and ``TRADE_DTYPE`` are numpy dtypes, made (and numpy imported) on first use."""
    if name in ("COMMAND_DTYPE", "TRADE_DTYPE"):
        from . import _arrays

        return getattr(_arrays, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names only: not the private submodules the imports above leave behind."""
    return sorted({*__all__, "__doc__", "__file__", "__name__", "__package__", "__path__", "__spec__"})
