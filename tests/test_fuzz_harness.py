"""The fuzz target's saved inputs, replayed in the normal suite so a fixed bug stays fixed.

``fuzz/fuzz_core.py`` runs each input as a short command program against both
backends in lockstep (see docs/fuzzing.md). Here, without atheris:

* every seed in ``fuzz/corpus`` and every input in ``fuzz/regressions`` (inputs that
  once crashed or diverged, and pass since the fix) must run clean;
* every reproducer in ``fuzz/crashes`` (a bug still open) runs in a child process,
  since it may kill the interpreter; it is an expected failure until its fix lands,
  and then shows as XPASS: move it to ``fuzz/regressions``;
* the harness itself fails on a divergence (a check that it can fail at all).

A file named ``name__no-reentry__no-extreme.bin`` was found with those input
families switched off and is replayed the same way.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from _backends import NO_EXTENSIONS, _unavailable

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"


def _inputs(folder: str) -> list[Path]:
    return sorted(
        p for p in (FUZZ / folder).glob("*") if p.is_file() and not p.name.startswith(".") and p.suffix != ".md"
    )


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    if NO_EXTENSIONS:  # the harness compares the two backends: nothing to compare the pure one with
        _unavailable(None, skip=True)
    spec = importlib.util.spec_from_file_location("fuzz_core", FUZZ / "fuzz_core.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_core"] = module
    spec.loader.exec_module(module)
    try:
        module.load()
    except ImportError as exc:
        _unavailable(exc, skip=True)
    return module


@pytest.mark.parametrize("path", _inputs("corpus") + _inputs("regressions"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_saved_input_runs_clean(harness: ModuleType, path: Path) -> None:
    harness.run_one(path.read_bytes(), harness.config_for(str(path)))


@pytest.mark.parametrize("path", _inputs("crashes"), ids=lambda p: p.name)
def test_open_reproducer(harness: ModuleType, path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(FUZZ / "fuzz_core.py"), "--replay", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode:
        pytest.xfail(f"still open (exit {result.returncode}): {result.stderr.strip()[-300:]}")


def test_the_harness_reports_a_divergence(harness: ModuleType) -> None:
    pure = harness.BACKENDS[0]

    class Off(pure.MatchingEngine):  # type: ignore[misc, name-defined]
        @property
        def next_trade_id(self) -> int:
            return super().next_trade_id + 1

    saved = list(harness.BACKENDS)
    harness.BACKENDS[1:] = [SimpleNamespace(name="off", Order=pure.Order, OrderBook=pure.OrderBook, MatchingEngine=Off)]
    try:
        with pytest.raises(harness.Divergence, match="disagree"):
            harness.run_one(b"\x00\x03\x05")
    finally:
        harness.BACKENDS[:] = saved


def test_a_reproducer_name_carries_its_switches(harness: ModuleType) -> None:
    cfg = harness.config_for("fuzz/crashes/x__no-reentry__no-extreme.bin")
    assert (cfg.reentry, cfg.extreme, cfg.hostile, cfg.snapshots, cfg.batch) == (False, False, True, True, True)
