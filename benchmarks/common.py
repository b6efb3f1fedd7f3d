"""What every report shares: finding tradebook, logging, the environment record, number formats.

``report.py`` and the modules behind its subcommands import this first; it puts
the checkout's ``src`` on ``sys.path`` when tradebook is not installed, so every
report also runs from a plain checkout (the compiled core needs a build).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

try:
    import tradebook
except ImportError:  # a checkout without PYTHONPATH=src
    sys.path.insert(0, str(ROOT / "src"))
    import tradebook

__all__ = ["HERE", "ROOT", "environment", "fmt_ns", "fmt_rate", "loadavg", "log"]


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the report)."""
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, where the platform has them."""
    return os.getloadavg() if hasattr(os, "getloadavg") else None


def _git_commit() -> str | None:
    """The short commit, ``+dirty`` when ``src/`` has uncommitted changes (the figures are not of that commit alone)."""
    commit = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True, text=True, check=True
        ).stdout
        if status.strip():
            commit += "+dirty"
    return commit


def _cpu() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return cpu


def environment() -> dict[str, Any]:
    """Where and how the figures were taken: Python, machine, commit, backend, GC, load, time."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "git_commit": _git_commit(),
        "tradebook": str(Path(tradebook.__file__).parent),
        "tradebook_version": tradebook.__version__,
        "tradebook_backend": tradebook.BACKEND,
        "gc_enabled": gc.isenabled(),
        "gc_threshold": gc.get_threshold(),
        "load_average": loadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def fmt_ns(ns: float | None) -> str:
    """A time per operation for a terminal table: ``83 ns``, ``23.9 us``; ``-`` not measured, ``ERROR`` failed."""
    if ns is None:
        return "-"
    if ns == math.inf:
        return "ERROR"
    if ns >= 10_000:
        return f"{ns / 1000:,.1f} us"
    return f"{ns:,.0f} ns"


def fmt_rate(ns: float | None) -> str:
    """A time per operation as operations per second."""
    if ns is None:
        return "-"
    if ns == math.inf:
        return "ERROR"
    return f"{1e9 / ns:,.0f}/s"
