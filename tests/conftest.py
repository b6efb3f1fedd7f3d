"""Shared fixtures: the ``backend`` fixture that runs every core test on both implementations.

The compiled core (``tradebook._avl`` / ``tradebook._book``) is optional: when it
cannot be imported its parameter is skipped, unless ``TRADEBOOK_REQUIRE_EXTENSIONS``
is set, in which case the missing extension fails the run. ``TRADEBOOK_NO_EXTENSIONS``
skips the compiled parameter too (it means "do not use the extensions").
"""

from __future__ import annotations

import os
import types

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

from _backends import (  # noqa: E402
    BACKEND_NAMES,
    NO_EXTENSIONS,
    _unavailable,
    available_backends,
    load_backend,
    need_engine,
)

__all__ = ["available_backends", "load_backend"]


@pytest.fixture(scope="session", params=BACKEND_NAMES, ids=BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    """The classes of one implementation: ``Order``, ``OrderBook``, ``PriceTree``, ``PriceLevel``, ``BookSide``."""
    name = request.param
    if name == "cython" and NO_EXTENSIONS:
        _unavailable(None, skip=True)
    try:
        return load_backend(name)
    except ImportError as exc:
        _unavailable(exc, skip=True)
        raise  # not reached: _unavailable fails or skips


@pytest.fixture
def engine_backend(backend: types.SimpleNamespace) -> types.SimpleNamespace:
    """``backend``, for tests of its ``MatchingEngine``: skipped (failed under TRADEBOOK_REQUIRE_EXTENSIONS) if that does not import."""
    return need_engine(backend)


@pytest.fixture
def btc():
    """A typical crypto instrument: price grid 0.01, quantity grid 0.001."""
    from tradebook import Instrument

    return Instrument("BTC/USDT", "0.01", "0.001")


@pytest.fixture
def book(backend, btc):
    """An empty BTC/USDT book of the current backend."""
    return backend.OrderBook(btc)
