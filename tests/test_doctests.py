"""The examples in the docstrings run (and the compiled twins' class examples behave the same)."""

from __future__ import annotations

import doctest
import importlib

import pytest

import tradebook
from tradebook import Instrument

PURE_MODULES = [
    "tradebook",
    "tradebook.instrument",
    "tradebook._avl_py",
    "tradebook._book_py",
    "tradebook._numeric",
    "tradebook._common",
    "tradebook.enums",
    "tradebook.errors",
]
WITH_EXAMPLES = {"tradebook.instrument", "tradebook._avl_py", "tradebook._book_py"}


@pytest.mark.parametrize("name", PURE_MODULES)
def test_module_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} lost its docstring examples"


@pytest.mark.parametrize("cls_name", ["PriceTree", "Order", "OrderBook"])
def test_class_examples_on_each_backend(backend, cls_name):
    """The pure classes' examples, run against this backend's classes."""
    from tradebook import _avl_py, _book_py

    pure = getattr(_avl_py if cls_name == "PriceTree" else _book_py, cls_name)
    parser = doctest.DocTestParser()
    globs = {
        "Instrument": Instrument,
        "Order": backend.Order,
        "OrderBook": backend.OrderBook,
        "PriceTree": backend.PriceTree,
        "tradebook": tradebook,
    }
    test = parser.get_doctest(pure.__doc__ or "", globs, f"{backend.name}.{cls_name}", None, 0)
    assert test.examples, f"{cls_name} has no example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0
