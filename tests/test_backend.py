"""The backend selector: ``tradebook.BACKEND`` and the ``TRADEBOOK_NO_EXTENSIONS`` switch."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import tradebook
from tradebook import _compat

SRC = str(Path(tradebook.__file__).resolve().parent.parent)


def _run(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TRADEBOOK_")}
    environ["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [environ.get("PYTHONPATH")])])
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout.strip()


def test_backend_is_one_of_the_two():
    assert tradebook.BACKEND in ("python", "cython")
    assert tradebook.BACKEND == _compat.BACKEND


def test_public_names_come_from_the_live_backend():
    if tradebook.BACKEND == "python":
        from tradebook import _avl_py as avl
        from tradebook import _book_py as book
    else:
        from tradebook import _avl as avl  # type: ignore[no-redef]
        from tradebook import _book as book  # type: ignore[no-redef]
    assert tradebook.OrderBook is book.OrderBook
    assert tradebook.Order is book.Order
    assert tradebook.PriceLevel is book.PriceLevel
    assert tradebook.BookSide is book.BookSide
    assert tradebook.PriceTree is avl.PriceTree


@pytest.mark.skipif(not os.environ.get("TRADEBOOK_REQUIRE_EXTENSIONS"), reason="TRADEBOOK_REQUIRE_EXTENSIONS not set")
def test_compiled_core_is_live_when_required():
    if os.environ.get("TRADEBOOK_NO_EXTENSIONS"):
        pytest.fail("TRADEBOOK_REQUIRE_EXTENSIONS and TRADEBOOK_NO_EXTENSIONS are both set")
    from tradebook import _avl, _book  # type: ignore[attr-defined]

    assert tradebook.BACKEND == "cython"
    assert tradebook.OrderBook is _book.OrderBook
    assert tradebook.Order is _book.Order
    assert tradebook.PriceTree is _avl.PriceTree
    # a compiled class is not defined by Python source (Cython 3 functions may carry a
    # ``__code__`` for introspection, but they are not Python functions)
    assert not isinstance(tradebook.OrderBook.add_raw, types.FunctionType)
    assert _book.__file__.endswith((".so", ".pyd"))


@pytest.mark.parametrize("value", ["1", "yes", "0"])
def test_no_extensions_forces_python(value):
    # Any non-empty value counts, even "0".
    assert _run("import tradebook; print(tradebook.BACKEND)", TRADEBOOK_NO_EXTENSIONS=value) == "python"


def test_no_extensions_uses_the_pure_classes():
    code = (
        "import tradebook, tradebook._book_py as b, tradebook._avl_py as a; "
        "print(tradebook.OrderBook is b.OrderBook and tradebook.Order is b.Order and tradebook.PriceTree is a.PriceTree)"
    )
    assert _run(code, TRADEBOOK_NO_EXTENSIONS="1") == "True"


def test_empty_no_extensions_does_not_force_python():
    # an empty value is the same as no value at all
    unset = _run("import tradebook; print(tradebook.BACKEND)")
    assert _run("import tradebook; print(tradebook.BACKEND)", TRADEBOOK_NO_EXTENSIONS="") == unset
    assert unset in ("python", "cython")


def test_an_unplanned_fallback_warns_at_import():
    # pip hides the install-time warning, so a missing compiled core also warns at import
    code = (
        "import sys, warnings; sys.modules['tradebook._avl'] = None\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import tradebook\n"
        "print(tradebook.BACKEND, [w.category.__name__ for w in caught if 'compiled core' in str(w.message)])"
    )
    assert _run(code) == "python ['RuntimeWarning']"


def test_a_chosen_fallback_is_silent():
    code = "import warnings; warnings.simplefilter('error')\nimport tradebook\nprint(tradebook.BACKEND)"
    assert _run(code, TRADEBOOK_NO_EXTENSIONS="1") == "python"
