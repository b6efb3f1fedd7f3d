"""Loading the two implementations, shared by tests/conftest.py and the test modules.

A module of its own (not conftest.py): tests/oms and tests/http have conftest
files too, and ``from conftest import ...`` would reach whichever one pytest
imported first.
"""

from __future__ import annotations

import importlib
import os
import types

import pytest

BACKEND_NAMES = ("python", "cython")
REQUIRE_EXTENSIONS = bool(os.environ.get("TRADEBOOK_REQUIRE_EXTENSIONS"))
NO_EXTENSIONS = bool(os.environ.get("TRADEBOOK_NO_EXTENSIONS"))

_MODULES = {"python": ("tradebook._avl_py", "tradebook._book_py"), "cython": ("tradebook._avl", "tradebook._book")}
_ENGINE_MODULES = {"python": "tradebook._engine_py", "cython": "tradebook._engine"}


def load_backend(name: str) -> types.SimpleNamespace:
    """Import one implementation and return its classes; raises ``ImportError`` if it is not built."""
    avl_name, book_name = _MODULES[name]
    avl = importlib.import_module(avl_name)
    book = importlib.import_module(book_name)
    return types.SimpleNamespace(
        name=name,
        Order=book.Order,
        OrderBook=book.OrderBook,
        PriceLevel=book.PriceLevel,
        BookSide=book.BookSide,
        PriceTree=avl.PriceTree,
        avl_module=avl,
        book_module=book,
        **_engine_attributes(name),
    )


def _engine_attributes(name: str) -> dict[str, object]:
    """The engine classes of one implementation (None each, with ``engine_error``, if it does not import)."""
    try:
        engine = importlib.import_module(_ENGINE_MODULES[name])
    except ImportError as exc:
        return {
            "MatchingEngine": None,
            "Trade": None,
            "ExecutionReport": None,
            "engine_module": None,
            "engine_error": exc,
        }
    return {
        "MatchingEngine": engine.MatchingEngine,
        "Trade": engine.Trade,
        "ExecutionReport": engine.ExecutionReport,
        "engine_module": engine,
        "engine_error": None,
    }


def available_backends() -> dict[str, types.SimpleNamespace]:
    """Every implementation that imports here (the pure one always does).

    With ``TRADEBOOK_REQUIRE_EXTENSIONS`` set, a missing compiled core fails the caller.
    """
    out = {"python": load_backend("python")}
    if NO_EXTENSIONS:
        _unavailable(None, skip=False)
        return out
    try:
        out["cython"] = load_backend("cython")
    except ImportError as exc:
        _unavailable(exc, skip=False)
    return out


def _unavailable(exc: Exception | None, *, skip: bool) -> None:
    """Fail when the compiled core is required; otherwise skip (if ``skip``) with the reason."""
    if REQUIRE_EXTENSIONS:
        if exc is None:
            pytest.fail("TRADEBOOK_REQUIRE_EXTENSIONS and TRADEBOOK_NO_EXTENSIONS are both set")
        pytest.fail(f"TRADEBOOK_REQUIRE_EXTENSIONS is set but the compiled core cannot be imported: {exc!r}")
    if skip:
        if exc is None:
            pytest.skip("TRADEBOOK_NO_EXTENSIONS is set: the compiled core is not tested")
        pytest.skip(f"compiled core not built ({exc}); build it with `pip install -e .` and a C compiler")


def need_engine(backend: types.SimpleNamespace) -> types.SimpleNamespace:
    """``backend`` if its matching engine imports; otherwise skip (or fail under TRADEBOOK_REQUIRE_EXTENSIONS)."""
    if backend.MatchingEngine is None:
        _unavailable(backend.engine_error, skip=True)
    return backend
