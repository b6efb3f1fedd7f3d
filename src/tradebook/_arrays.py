"""The numpy array form of a batch: ``COMMAND_DTYPE``, ``TRADE_DTYPE``, ``ArrayResult``.

numpy is imported on first use only, so the core imports without it. A
command row is 56 bytes, every int64 on an 8-byte boundary::

    offset  0  op         int8   a BatchOp code
            1  side       int8   0 BUY, 1 SELL
            2-7           reserved (zero)
            8  id         int64  the order id
           16  price      int64  ticks (ignored by MARKET and CANCEL; AMEND: 0 keeps it;
                                 STOP: the stop price; TRAILING_STOP: the offset)
           24  quantity   int64  lots (ignored by CANCEL; AMEND: 0 keeps it;
                                 MARKET_QUOTE: the budget in tick*lot units)
           32  stop       int64  STOP_LIMIT: the stop price in ticks
           40  display    int64  LIMIT or GTD: > 0 makes an iceberg showing this many lots
           48  expire_at  int64  GTD: the expiry in the engine's time unit

Rows of the plain ops (LIMIT without ``display``, IOC, FOK, MARKET, CANCEL,
AMEND) run in C; rows of the new order types, and every row while the book
holds waiting stops, run through the single-command calls (same results, a
Python call each). Fields may still be added at the end, so the row may grow: build arrays from ``COMMAND_DTYPE`` itself (for
example ``numpy.zeros(n, tradebook.COMMAND_DTYPE)``), never from a spelled-out
copy. A trade row is 48 bytes: ``trade_id``, ``maker_id``, ``taker_id``,
``price`` (ticks), ``lots`` (all int64) and ``maker_side`` (int8, 0 BUY, 1 SELL).
"""

from __future__ import annotations

from operator import index
from typing import Any, NamedTuple

from .errors import InvalidOrderError

__all__ = ["COMMAND_DTYPE", "TRADE_DTYPE", "ArrayResult", "check_book_ids", "check_commands"]  # noqa: F822 (module __getattr__)

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

COMMAND_ITEMSIZE = 56
TRADE_ITEMSIZE = 48

_dtypes: dict[str, Any] = {}


def _make_dtypes() -> dict[str, Any]:
    if not _dtypes:
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - the test extra has numpy
            raise ImportError("the array batch API needs numpy: pip install numpy") from None
        _dtypes["COMMAND_DTYPE"] = np.dtype(
            {
                "names": ["op", "side", "id", "price", "quantity", "stop", "display", "expire_at"],
                "formats": ["i1", "i1", "<i8", "<i8", "<i8", "<i8", "<i8", "<i8"],
                "offsets": [0, 1, 8, 16, 24, 32, 40, 48],
                "itemsize": COMMAND_ITEMSIZE,
            },
            align=True,
        )
        _dtypes["TRADE_DTYPE"] = np.dtype(
            {
                "names": ["trade_id", "maker_id", "taker_id", "price", "lots", "maker_side"],
                "formats": ["<i8", "<i8", "<i8", "<i8", "<i8", "i1"],
                "offsets": [0, 8, 16, 24, 32, 40],
                "itemsize": TRADE_ITEMSIZE,
            },
            align=True,
        )
        _dtypes["np"] = np
    return _dtypes


def __getattr__(name: str) -> Any:
    if name in ("COMMAND_DTYPE", "TRADE_DTYPE"):
        return _make_dtypes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ArrayResult(NamedTuple):
    """What :meth:`MatchingEngine.execute_array` did, as numpy arrays.

    ``statuses`` (int8) and ``lots`` (int64) hold one entry per command, as in
    :class:`BatchResult`; ``trades`` is one ``TRADE_DTYPE`` row per trade, in
    execution order. No Python object is made per command or per trade.
    """

    statuses: Any  # numpy.ndarray, int8
    lots: Any  # numpy.ndarray, int64
    trades: Any  # numpy.ndarray, TRADE_DTYPE


def check_commands(commands: Any) -> Any:
    """Return ``commands`` if it is a one-dimensional C-contiguous ``COMMAND_DTYPE`` array; raise otherwise."""
    d = _make_dtypes()
    np = d["np"]
    if not isinstance(commands, np.ndarray):
        raise InvalidOrderError(
            f"execute_array takes a numpy array of tradebook.COMMAND_DTYPE; got {type(commands).__name__}"
        )
    if commands.dtype != d["COMMAND_DTYPE"]:
        raise InvalidOrderError(f"execute_array needs dtype tradebook.COMMAND_DTYPE; got {commands.dtype}")
    if commands.ndim != 1:
        raise InvalidOrderError(f"execute_array needs a one-dimensional array; got shape {commands.shape}")
    if not commands.flags.c_contiguous or not commands.flags.aligned:
        raise InvalidOrderError("execute_array needs a C-contiguous, aligned array (numpy.ascontiguousarray)")
    return commands


def _is_int64_id(key: Any) -> bool:
    """True if the id equals an int in the int64 range (as the compiled book's int id map keeps it)."""
    if type(key) is int:
        return INT64_MIN <= key <= INT64_MAX
    if isinstance(key, (str, bytes, tuple)):
        return False
    try:
        value = index(key)
    except TypeError:
        try:
            value = int(key)
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            return False
        try:
            if value != key:
                return False
        except Exception:
            return False
    return INT64_MIN <= value <= INT64_MAX


def refuse_book_ids(symbol: Any) -> InvalidOrderError:
    """The error for a book that holds an id the trades' int64 columns cannot carry."""
    return InvalidOrderError(
        f"execute_array needs every order resting in {symbol} to have an int64 id (the trade columns are int64)"
    )


def check_book_ids(ids: Any, symbol: Any) -> None:
    """Raise unless every id in ``ids`` equals an int64 (pure backend: a scan of the book's id map)."""
    for key in ids:
        if not _is_int64_id(key):
            raise refuse_book_ids(symbol)


def _as_int(key: Any) -> int:
    try:
        return index(key)
    except TypeError:
        return int(key)


def result_from_batch(result: Any) -> ArrayResult:
    """A :class:`BatchResult` (``Trade`` objects) as an :class:`ArrayResult`."""
    np = _make_dtypes()["np"]
    return ArrayResult(
        np.frombuffer(result.statuses, np.int8).copy(),
        np.frombuffer(result.lots, np.int64).copy(),
        trade_table(result.trades),
    )


def trade_table(trades: list[Any]) -> Any:
    """``Trade`` objects as ``TRADE_DTYPE`` rows."""
    d = _make_dtypes()
    return d["np"].array(
        [
            (
                t.id,
                _as_int(t.maker_order_id),
                _as_int(t.taker_order_id),
                t.price_ticks,
                t.quantity_lots,
                0 if t.taker_side.value == "SELL" else 1,
            )
            for t in trades
        ],
        dtype=d["TRADE_DTYPE"],
    )


def as_rows(commands: Any) -> Any:
    """``COMMAND_DTYPE`` rows as the ``(n, 5)`` int64 rows ``execute_batch`` takes."""
    np = _make_dtypes()["np"]
    rows = np.empty((len(commands), 5), np.int64)
    for column, name in enumerate(("op", "id", "side", "price", "quantity")):
        rows[:, column] = commands[name]
    return rows


def via_batch(engine: Any, commands: Any, symbol: Any) -> ArrayResult:
    """``execute_array`` through ``execute_batch``: the pure backend, and any engine with subscribers."""
    return result_from_batch(engine.execute_batch(as_rows(commands), symbol=symbol))


def has_extended_rows(commands: Any) -> bool:
    """True if any row needs the general path: an op of the new order types, or an iceberg ``display``."""
    if not len(commands):
        return False
    return bool(((commands["op"] >= 6) & (commands["op"] <= 10)).any() or (commands["display"] != 0).any())


_TIF = ("GTC", "IOC", "FOK", "GTC")


def via_single(engine: Any, commands: Any, symbol: Any) -> ArrayResult:
    """``execute_array`` one row at a time through the single-command calls (rows of the new order types,
    or a book with waiting stops, whose triggers run between commands)."""
    from ._batch import ERROR_DUPLICATE, ERROR_INVALID, ERROR_NOT_FOUND
    from ._common import STATUS_CODES
    from .errors import DuplicateOrderError, OrderNotFoundError, TradebookError

    np = _make_dtypes()["np"]
    n = len(commands)
    statuses = np.zeros(n, np.int8)
    lots = np.zeros(n, np.int64)
    trades: list[Any] = []
    codes = {status: code for code, status in enumerate(STATUS_CODES)}
    for i, row in enumerate(commands.tolist()):
        op, side_code, order_id, price, quantity, stop, display, expire_at = row
        side = "SELL" if side_code == 1 else "BUY"
        try:
            if op == 4:
                lots[i] = engine.cancel_raw(symbol, order_id)
                statuses[i] = codes[STATUS_CODES[4]]
                continue
            if op == 5:
                report = engine.amend_raw(symbol, order_id, quantity=quantity or None, price=price or None)
            elif side_code not in (0, 1) or not 0 <= op <= 10 or (display and op not in (0, 10)):
                statuses[i] = ERROR_INVALID
                continue
            elif op <= 3:
                report = engine.submit_raw_typed(
                    order_id, side, None if op == 3 else price, quantity, symbol=symbol,
                    time_in_force=_TIF[op], display=display or None,
                )  # fmt: skip
            elif op == 6:
                report = engine.submit_raw_typed(order_id, side, None, quantity, symbol=symbol, stop_price=price)
            elif op == 7:
                report = engine.submit_raw_typed(order_id, side, None, quantity, symbol=symbol, trailing_offset=price)
            elif op == 8:
                report = engine.submit_raw_typed(order_id, side, None, None, symbol=symbol, quote=quantity)
            elif op == 9:
                report = engine.submit_raw_typed(order_id, side, price, quantity, symbol=symbol, stop_price=stop)
            else:
                report = engine.submit_raw_typed(
                    order_id, side, price, quantity, symbol=symbol, time_in_force="GTD",
                    expire_at=expire_at, display=display or None,
                )  # fmt: skip
        except OrderNotFoundError:
            statuses[i] = ERROR_NOT_FOUND
            continue
        except DuplicateOrderError:
            statuses[i] = ERROR_DUPLICATE
            continue
        except TradebookError:
            statuses[i] = ERROR_INVALID
            continue
        statuses[i] = codes[report.status]
        lots[i] = report.filled_lots
        trades.extend(report.trades)
        for triggered in report.triggered:
            trades.extend(triggered.trades)
    return ArrayResult(statuses, lots, trade_table(trades))
