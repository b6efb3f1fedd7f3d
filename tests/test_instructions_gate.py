"""The instruction-count gate (``benchmarks/instructions.py``, ``report.py instructions``).

The comparison, the toolchain check, the parsing and the baseline file are
tested without valgrind; one short real callgrind run checks that the harness
measures something sensible and repeatably (skipped where valgrind is absent).
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gate() -> ModuleType:
    """``benchmarks/instructions.py``, imported from the checkout."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return importlib.import_module("instructions")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_a_rise_above_three_percent_fails(gate: ModuleType) -> None:
    rows = gate.compare({"add_raw": 1000.0, "remove_raw": 1000.0}, {"add_raw": 1030.0, "remove_raw": 1030.5})
    assert [(r.op, r.verdict) for r in rows] == [("add_raw", "ok"), ("remove_raw", "RISE")]
    assert [r.op for r in gate.failed(rows)] == ["remove_raw"]
    assert rows[1].change == pytest.approx(0.0305)


def test_a_fall_beyond_three_percent_is_noted_not_failed(gate: ModuleType) -> None:
    rows = gate.compare({"add_raw": 1000.0}, {"add_raw": 900.0})
    assert rows[0].verdict == "fall"
    assert gate.failed(rows) == []
    assert "re-record" in gate.render(rows)


def test_new_and_missing_ops_do_not_fail(gate: ModuleType) -> None:
    rows = gate.compare({"old": 10.0}, {"new": 5.0})
    assert [(r.op, r.verdict) for r in rows] == [("old", "missing"), ("new", "new")]
    assert gate.failed(rows) == []


def test_the_table_shows_baseline_now_and_change(gate: ModuleType) -> None:
    text = gate.render(gate.compare({"depth_raw": 2000.0}, {"depth_raw": 2100.0}))
    assert "2,000.0" in text and "2,100.0" in text and "+5.00%" in text and "FAIL" in text


def test_per_op_is_the_difference_over_the_operations(gate: ModuleType) -> None:
    assert gate.per_op(1_000_000, 1_300_000, 300) == 1000.0
    with pytest.raises(ValueError):
        gate.per_op(1_000, 900, 10)
    with pytest.raises(ValueError):
        gate.per_op(1_000, 2_000, 0)


def test_the_collected_line_is_parsed(gate: ModuleType) -> None:
    stderr = "==12== Callgrind, a call-graph generating cache profiler\n==12== Events    : Ir\n==12== Collected : 123456789\n"
    assert gate.parse_collected(stderr) == 123_456_789
    with pytest.raises(RuntimeError, match="Collected"):
        gate.parse_collected("==12== valgrind: something went wrong\n")


def test_toolchain_differences_name_each_part(gate: ModuleType) -> None:
    recorded = {"python": "CPython 3.11.7 (GCC 12.2.0)", "cython": "3.3.1", "compiler": "gcc 12", "libc": "glibc 2.36"}
    assert gate.toolchain_differences(recorded, dict(recorded)) == []
    other = {**recorded, "cython": "3.4.0"}
    assert gate.toolchain_differences(recorded, other) == ["cython: baseline '3.3.1', now '3.4.0'"]


def test_the_toolchain_is_described(gate: ModuleType) -> None:
    tools = gate.toolchain()
    assert set(tools) == set(gate.TOOLCHAIN_KEYS)
    assert tools["python"].startswith(("CPython", "PyPy"))


def _fake_measure(counts: dict[str, float]) -> Any:
    def measure(op: str, data_path: Path, **_: Any) -> Any:
        return gate_module().Measurement(op, counts[op], 1000, 1, 2, 0, 0.0)

    return measure


def gate_module() -> ModuleType:
    return sys.modules["instructions"]


def _run(
    gate: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, counts: dict[str, float], *argv: str
) -> int:
    """``report.py instructions`` with measuring and the data file faked."""
    monkeypatch.setattr(gate, "measure", _fake_measure(counts))
    monkeypatch.setattr(gate, "write_data", lambda directory, *a: directory / "data")
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/valgrind")
    baseline = tmp_path / "instructions.json"
    ops = ",".join(counts)
    return int(gate.main(["--baseline", str(baseline), "--ops", ops, "--jobs", "1", *argv]))


def test_update_then_check_round_trip(
    gate: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = {"add_raw": 1000.0, "remove_raw": 700.0}
    assert _run(gate, monkeypatch, tmp_path, counts, "--update") == 0
    data = json.loads((tmp_path / "instructions.json").read_text())
    assert data["backends"]["cython"]["add_raw"]["instructions"] == 1000.0
    assert set(data["toolchain"]) == set(gate.TOOLCHAIN_KEYS)
    assert _run(gate, monkeypatch, tmp_path, counts, "--check") == 0

    assert _run(gate, monkeypatch, tmp_path, {"add_raw": 1040.0, "remove_raw": 700.0}, "--check") == 1
    out = capsys.readouterr().out
    assert "add_raw" in out and "report.py instructions --update" in out and "git commit" in out

    # without --check the table is printed but nothing fails
    assert _run(gate, monkeypatch, tmp_path, {"add_raw": 1040.0, "remove_raw": 700.0}) == 0


def test_a_different_toolchain_fails_the_check_unless_allowed(
    gate: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = {"add_raw": 1000.0}
    assert _run(gate, monkeypatch, tmp_path, counts, "--update") == 0
    path = tmp_path / "instructions.json"
    data = json.loads(path.read_text())
    data["toolchain"]["cython"] = "0.29.0"
    path.write_text(json.dumps(data))
    assert _run(gate, monkeypatch, tmp_path, counts, "--check") == 1
    assert "not comparable" in capsys.readouterr().err
    assert _run(gate, monkeypatch, tmp_path, counts, "--check", "--allow-different-toolchain") == 0
    # a partial re-record on another toolchain would mix counts: refused
    assert _run(gate, monkeypatch, tmp_path, counts, "--update") == 2


def test_the_committed_baseline_covers_every_op(gate: ModuleType) -> None:
    data = json.loads((ROOT / "benchmarks" / "instructions.json").read_text())
    assert set(data["toolchain"]) == set(gate.TOOLCHAIN_KEYS)
    assert set(data["backends"]["cython"]) == set(gate.available_ops())
    assert all(entry["instructions"] > 0 for entry in data["backends"]["cython"].values())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_a_real_callgrind_run_is_repeatable(gate: ModuleType, tmp_path: Path) -> None:
    """Two measurements of the same op on the same tree give the same count; a pass costs what a loop costs."""
    import tradebook

    backend = tradebook.BACKEND
    data = gate.write_data(tmp_path, backend, 0.05)
    first = gate.measure("best_raw", data, backend=backend, scale=0.05)
    second = gate.measure("best_raw", data, backend=backend, scale=0.05)
    assert first.ops == second.ops == 200
    assert 20 < first.instructions < 20_000
    assert second.instructions == pytest.approx(first.instructions, rel=1e-3)
