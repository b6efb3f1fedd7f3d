"""Fixtures for the benchmark suite.

``backend`` is parametrized over ``"python"`` (``tradebook._book_py``,
``tradebook._engine_py``) and ``"cython"`` (the compiled ``tradebook._book``,
``tradebook._engine``; skipped, with the import error, when it is not built) and
yields ``scenarios.load_backend``'s namespace (``name``, ``Order``,
``OrderBook``, ``MatchingEngine``, ``Trade``). Tests that compare against the
sortedcontainers baselines parametrize it indirectly with
``"sortedcontainers"`` as a third value.

Run: ``PYTHONPATH=src pytest benchmarks`` (timings) or
``pytest benchmarks --benchmark-disable -q`` (smoke: each case once, checked).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

try:
    import tradebook
except ImportError:  # a checkout without PYTHONPATH=src: use the source tree next to us
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    import tradebook

import workloads as wl
from scenarios import backend_unavailable, load_backend


def pytest_report_header() -> list[str]:
    """Say which tradebook is measured and whether its compiled core is there."""
    reason = backend_unavailable("cython")
    return [
        f"tradebook {tradebook.__version__} from {Path(tradebook.__file__).parent}",
        "compiled backend: " + ("available" if reason is None else f"NOT available ({reason})"),
    ]


@pytest.fixture(params=["python", "cython"])
def backend(request: pytest.FixtureRequest) -> SimpleNamespace:
    """The implementation under test (see the module docstring)."""
    reason = backend_unavailable(request.param)
    if reason is not None:
        pytest.skip(f"{reason} (build it with `pip install -e .` or `python setup.py build_ext --inplace`)")
    return load_backend(request.param)


@pytest.fixture(scope="session")
def workload() -> wl.Workload:
    """The seeded 200,000-order workload (generated once per session)."""
    return wl.get_workload()
