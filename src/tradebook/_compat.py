"""Chooses the backend: the compiled core when it is built, else pure Python.

``TRADEBOOK_NO_EXTENSIONS`` set to any non-empty value, an interpreter other
than CPython, or a free-threaded CPython running without the GIL (the compiled
core relies on the GIL to keep each book's updates atomic) selects pure
Python. ``BACKEND`` says which one is live. Falling back on CPython for any
other reason (the core was not built: pip hides the install-time warning)
raises a ``RuntimeWarning`` once at import, so nobody runs slow by accident;
set ``TRADEBOOK_NO_EXTENSIONS=1`` to choose pure Python knowingly.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
from typing import TYPE_CHECKING

__all__ = ["BACKEND", "IMPORT_ERROR", "NO_EXTENSIONS"]

NO_EXTENSIONS = (
    bool(os.environ.get("TRADEBOOK_NO_EXTENSIONS"))
    or platform.python_implementation() != "CPython"
    or not getattr(sys, "_is_gil_enabled", lambda: True)()
)

if TYPE_CHECKING:
    from ._avl_py import PriceTree as PriceTree
    from ._book_py import BookSide as BookSide
    from ._book_py import Order as Order
    from ._book_py import OrderBook as OrderBook
    from ._book_py import PriceLevel as PriceLevel
    from ._engine_py import ExecutionReport as ExecutionReport
    from ._engine_py import MatchingEngine as MatchingEngine
    from ._engine_py import Trade as Trade

    BACKEND: str
    IMPORT_ERROR: ImportError | None
else:
    BACKEND = "python"
    IMPORT_ERROR = None  # why the compiled core did not load, for `tradebook info`
    if not NO_EXTENSIONS:
        try:
            from ._avl import PriceTree
            from ._book import BookSide, Order, OrderBook, PriceLevel
            from ._engine import ExecutionReport, MatchingEngine, Trade

            BACKEND = "cython"
        except ImportError as exc:  # not built: the pure twins below serve
            IMPORT_ERROR = exc
            warnings.warn(
                f"tradebook's compiled core is not available ({exc}); using the pure-Python backend, "
                "which is several times slower. Reinstall with a C compiler to build it, or set "
                "TRADEBOOK_NO_EXTENSIONS=1 to choose pure Python and silence this warning.",
                RuntimeWarning,
                stacklevel=2,
            )
    if BACKEND == "python":
        from ._avl_py import PriceTree  # noqa: F401
        from ._book_py import BookSide, Order, OrderBook, PriceLevel  # noqa: F401
        from ._engine_py import ExecutionReport, MatchingEngine, Trade  # noqa: F401
