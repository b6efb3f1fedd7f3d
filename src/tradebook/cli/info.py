"""``tradebook info``: the version, which backend is live (and why), the Python and the platform."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Any

from .. import BACKEND, OrderBook, __version__, _compat

__all__ = ["add_command", "backend_lines"]


def backend_lines() -> list[str]:
    """Which implementation is live, where it was loaded from, and why."""
    module = sys.modules[OrderBook.__module__]
    lines = [
        f"backend: {BACKEND}",
        f"core module: {module.__name__} ({getattr(module, '__file__', None) or 'built in'})",
    ]
    forced = os.environ.get("TRADEBOOK_NO_EXTENSIONS")
    if forced:
        lines.append(f"TRADEBOOK_NO_EXTENSIONS={forced!r} forces the pure-Python backend")
    elif BACKEND == "python":
        lines.append(f"compiled core unavailable: {_compiled_core_error()}")
    return lines


def _compiled_core_error() -> str:
    if platform.python_implementation() != "CPython":
        return f"{platform.python_implementation()} always uses the pure-Python backend"
    if _compat.IMPORT_ERROR is None:
        return "unknown"
    return f"{_compat.IMPORT_ERROR} (reinstall with a C compiler; see docs/backends.md)"


def _run(args: argparse.Namespace) -> int:
    print(f"tradebook {__version__}")
    print(*backend_lines(), sep="\n")
    print(f"python: {platform.python_version()} ({platform.python_implementation()}) {sys.executable}")
    print(f"platform: {platform.platform()}")
    return 0


def add_command(commands: Any) -> None:
    """Add ``info`` to the ``tradebook`` command's subparsers."""
    info = commands.add_parser(
        "info",
        help="print the version, the live backend, python and platform",
        description="Print the tradebook version, the live backend (and why), the Python and the platform.",
    )
    info.set_defaults(run=_run)
