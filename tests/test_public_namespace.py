"""``dir(tradebook)`` shows what a user may use: the names in ``__all__`` and the module's dunders."""

from __future__ import annotations

import importlib

import tradebook


def test_dir_lists_the_public_names_and_nothing_else() -> None:
    listed = dir(tradebook)
    assert listed == sorted(listed)
    assert set(tradebook.__all__) <= set(listed)
    stray = [name for name in listed if name not in tradebook.__all__ and not name.startswith("__")]
    assert stray == []  # no `annotations` (a __future__ import), no `_compat`, `enums`, ...


def test_no_future_import_in_the_namespace() -> None:
    assert "annotations" not in vars(tradebook)


def test_every_listed_name_resolves() -> None:
    for name in dir(tradebook):
        getattr(tradebook, name)


def test_submodules_still_import_and_resolve() -> None:
    for module in ("tradebook.enums", "tradebook.errors", "tradebook.instrument", "tradebook.oms"):
        assert importlib.import_module(module).__name__ == module
    assert tradebook.errors.TradebookError is tradebook.TradebookError
