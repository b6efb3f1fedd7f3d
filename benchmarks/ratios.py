"""Measure every backend on the same workload in one process and check the project's targets.

Usage::

    PYTHONPATH=src python benchmarks/ratios.py [--quick] [--json out.json] [--strict]

For each backend (compiled ``cython`` if built, pure ``python``, the plain
``sortedcontainers`` baseline) and each API (raw integers, Decimal), every
operation gets its own freshly built 200,000-order book (``workload.py``, one
seed for all) and runs the same loop ``scenarios.py`` gives the pytest-benchmark
suite: one untimed warm-up batch, then ``--batches`` timed batches (10,000 ops;
depth 1,000), each timed with ``time.perf_counter_ns``. The figure is the median
batch's time per operation; GC stays on; the book is checked against a reference
model afterwards, so a fast wrong answer cannot pass. Per-op times include the
cost of the Python ``for`` loop that drives the calls (printed separately for
reference; nothing is subtracted).

Backends run one after another and each book is freed before the next is built,
so one backend's objects do not slow another's garbage collections.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from itertools import repeat
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
try:
    import tradebook  # noqa: F401
except ImportError:  # running from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(HERE.parent / "src"))

import workloads as wl  # noqa: E402
from scenarios import API_DECIMAL, API_RAW, BATCH, BookScenario, backend_unavailable, load_backend, supports  # noqa: E402

# Columns of the table, in order: (backend, api, heading).
COLUMNS = [
    ("cython", API_RAW, "cython raw"),
    ("cython", API_DECIMAL, "cython Decimal"),
    ("python", API_RAW, "python raw"),
    ("python", API_DECIMAL, "python Decimal"),
    ("sortedcontainers", API_RAW, "sortedcontainers"),
]
ROWS = [
    ("add", "add"),
    ("add_order_only", "  add_order only*"),
    ("cancel", "cancel (random)"),
    ("best", "best bid/ask"),
    ("depth", "depth(10)"),
    ("fill", "fill (partial)"),
    ("amend", "amend"),
]


def measure(scenario: BookScenario, batches: int, warmup: int) -> dict[str, Any]:
    """Time ``batches`` batches after ``warmup`` untimed ones; return per-op figures in ns."""
    run = scenario.run
    for _ in range(warmup):
        run(scenario.setup())
    per_op: list[float] = []
    result = None
    for _ in range(batches):
        arg = scenario.setup()
        t0 = time.perf_counter_ns()
        result = run(arg)
        t1 = time.perf_counter_ns()
        per_op.append((t1 - t0) / scenario.ops_per_batch)
    if result != scenario.expected_result():
        raise AssertionError(f"{scenario.name} returned {result!r}, expected {scenario.expected_result()!r}")
    scenario.check()
    return {
        "median_ns": statistics.median(per_op),
        "min_ns": min(per_op),
        "max_ns": max(per_op),
        "batches_ns_per_op": [round(x, 1) for x in per_op],
        "ops_per_batch": scenario.ops_per_batch,
        "batches": batches,
        "warmup_batches": warmup,
    }


def loop_overhead(n: int = 100_000, reps: int = 7) -> dict[str, float]:
    """What the bare Python loops the scenarios use cost per iteration (for reference)."""
    rows = [(i, wl.BUY, i, i) for i in range(n)]
    ids = list(range(n))

    def unpack4() -> None:
        for _a, _b, _c, _d in rows:
            pass

    def plain() -> None:
        for _a in ids:
            pass

    def counted() -> None:
        for _ in repeat(None, n):
            pass

    out = {}
    for name, fn in (
        ("for a, b, c, d in rows", unpack4),
        ("for x in ids", plain),
        ("for _ in repeat(None, n)", counted),
    ):
        times = []
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            fn()
            times.append((time.perf_counter_ns() - t0) / n)
        out[name] = statistics.median(times)
    return out


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns == math.inf:
        return "ERROR"
    if ns >= 10_000:
        return f"{ns / 1000:,.1f} us"
    return f"{ns:,.0f} ns"


def targets(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Evaluate the project's stated targets: PASS, FAIL or n/a (a backend was not measured)."""

    def ns(backend: str, api: str, op: str) -> float | None:
        row = results.get(f"{backend}-{api}", {}).get(op)
        if row is not None and "error" in row:
            return math.inf  # a wrong or crashed operation fails every target it enters
        return None if row is None else row["median_ns"]

    out: list[dict[str, Any]] = []

    def absolute(name: str, value: float | None, limit: float) -> None:
        status = "n/a" if value is None else ("PASS" if value <= limit else "FAIL")
        shown = "not measured" if value is None else fmt_ns(value)
        out.append({"target": name, "value_ns": value, "limit_ns": limit, "status": status, "shown": shown})

    def ratio(
        name: str, num: float | None, den: float | None, *, at_least: float | None = None, at_most: float | None = None
    ) -> None:
        value = None if num is None or den is None else num / den
        if value is None:
            status = "n/a"
        elif at_least is not None:
            status = "PASS" if value >= at_least else "FAIL"
        else:
            assert at_most is not None
            status = "PASS" if value <= at_most else "FAIL"
        shown = "not measured" if value is None else f"{value:.2f}x  ({fmt_ns(num)} / {fmt_ns(den)})"
        out.append(
            {"target": name, "ratio": value, "limit_ratio": at_least or at_most, "status": status, "shown": shown}
        )

    absolute("compiled raw add <= 150 ns", ns("cython", API_RAW, "add"), 150)
    absolute("compiled raw cancel <= 250 ns", ns("cython", API_RAW, "cancel"), 250)
    absolute("compiled raw best bid/ask <= 50 ns", ns("cython", API_RAW, "best"), 50)
    absolute("compiled raw depth(10) <= 1 us", ns("cython", API_RAW, "depth"), 1000)
    absolute("compiled Decimal add, add_order(Order(...)) <= 500 ns", ns("cython", API_DECIMAL, "add"), 500)
    for api, label in ((API_RAW, "raw"), (API_DECIMAL, "Decimal")):
        for op in ("add", "cancel"):
            ratio(
                f"compiled >= 5x pure-Python: {label} {op} (python / cython)",
                ns("python", api, op),
                ns("cython", api, op),
                at_least=5.0,
            )
    for api, label in ((API_RAW, "raw"), (API_DECIMAL, "Decimal")):
        for op, op_label in (("add", "add"), ("cancel", "cancel"), ("best", "best bid/ask"), ("depth", "depth(10)")):
            ratio(
                f"pure-Python within 2x of sortedcontainers: {label} {op_label} (python / sorted)",
                ns("python", api, op),
                ns("sortedcontainers", API_RAW, op),
                at_most=2.0,
            )
    return out


def environment() -> dict[str, Any]:
    commit = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if status.strip():
            commit += "+dirty"  # src/ has uncommitted changes: the figures are not of that commit alone
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "git_commit": commit,
        "gc_enabled": gc.isenabled(),
        "gc_threshold": gc.get_threshold(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 timed batches per figure instead of 11")
    parser.add_argument("--batches", type=int, default=None, help="timed batches per figure (default 11, quick 5)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure and verdict as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target FAILs")
    parser.add_argument(
        "--backends", default="cython,python,sortedcontainers", help="comma-separated subset to measure"
    )
    args = parser.parse_args(argv)
    batches = args.batches or (5 if args.quick else 11)
    warmup = 1
    if not gc.isenabled():  # the figures are stated with GC on
        gc.enable()

    started = time.perf_counter()
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    work = wl.get_workload()
    bid_levels, ask_levels = work.levels_per_side()
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    skipped: dict[str, str] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for backend_name in ("cython", "python", "sortedcontainers"):
        if backend_name not in wanted:
            continue
        reason = backend_unavailable(backend_name)
        if reason is not None:
            skipped[backend_name] = reason
            log(f"skip: {reason}")
            continue
        backend = load_backend(backend_name)
        for api in (API_RAW, API_DECIMAL):
            for op, _ in ROWS:
                if not supports(backend_name, api, op):
                    continue
                try:
                    scenario = BookScenario(backend, api, op, work)
                    figures = measure(scenario, batches, warmup)
                except Exception as exc:  # report it in the table, keep measuring the rest
                    figures = {"error": f"{type(exc).__name__}: {exc}"}
                    log(f"{backend_name:>16} {api:<7} {op:<15} ERROR {figures['error']}")
                else:
                    log(f"{backend_name:>16} {api:<7} {op:<15} {fmt_ns(figures['median_ns']):>10}/op")
                results.setdefault(f"{backend_name}-{api}", {})[op] = figures
                scenario = None  # free the book before the next one is built
    overhead = loop_overhead()
    verdicts = targets(results)
    elapsed = time.perf_counter() - started

    env = environment()
    env["load_average_start"] = load_start
    print()
    print(
        f"tradebook ratios: {len(work.orders):,} resting orders, {bid_levels:,}/{ask_levels:,} bid/ask levels, "
        f"seed {work.seed}, {wl.SYMBOL} tick {wl.TICK} lot {wl.LOT}"
    )
    print(
        f"Python {env['python']} on {env['cpu']} ({env['cpu_count']} CPUs), GC on, commit {env['git_commit']}; "
        f"median of {batches} batches after {warmup} warm-up; batch sizes: "
        + ", ".join(f"{op} {BATCH[op]:,}" for op, _ in ROWS if op != "add_order_only")
    )
    print()
    width = 18
    print(f"{'ns per op':<20}" + "".join(f"{heading:>{width}}" for _, _, heading in COLUMNS))
    for op, label in ROWS:
        cells = []
        for backend_name, api, _ in COLUMNS:
            row = results.get(f"{backend_name}-{api}", {}).get(op)
            cells.append("-" if row is None else "ERROR" if "error" in row else fmt_ns(row["median_ns"]))
        print(f"{label:<20}" + "".join(f"{c:>{width}}" for c in cells))
    print()
    print(
        "add = Order(...) + add_order(...) in the Decimal API (Decimals prepared in advance), add_raw in the raw API."
    )
    print("* add_order only: the Order objects are built outside the timing.")
    print(
        "best bid/ask: per read (each loop pass reads both). depth(10): both sides, Decimal API gives LevelSnapshots."
    )
    print("Loop overhead included in every figure: " + ", ".join(f"{k}: {v:.0f} ns" for k, v in overhead.items()))
    for name, reason in skipped.items():
        print(f"not measured: {name}: {reason}")
    for key, rows in results.items():
        for op, row in rows.items():
            if "error" in row:
                print(f"ERROR in {key} {op}: {row['error']}")
    load = env["load_average"]
    if load is not None and load[0] > 0.5:
        print(
            f"note: the machine was busy (load average {load[0]:.2f} at the end); figures may be inflated by contention"
        )
    print()
    print("Targets")
    for v in verdicts:
        print(f"  [{v['status']:>4}] {v['target']:<86} {v['shown']}")
    counts = {s: sum(1 for v in verdicts if v["status"] == s) for s in ("PASS", "FAIL", "n/a")}
    print(f"  {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['n/a']} n/a   ({elapsed:.0f} s)")

    if args.json:
        data = {
            "environment": env,
            "workload": {
                "seed": work.seed,
                "orders": len(work.orders),
                "levels": {"bids": bid_levels, "asks": ask_levels},
                "symbol": wl.SYMBOL,
                "tick": wl.TICK,
                "lot": wl.LOT,
                "mid_ticks": wl.MID_TICKS,
                "level_scale_ticks": wl.LEVEL_SCALE,
                "new_level_share_of_adds": wl.NEW_LEVEL_SHARE,
            },
            "method": {"batches": batches, "warmup_batches": warmup, "timer": "time.perf_counter_ns", "gc": "on"},
            "loop_overhead_ns": overhead,
            "results": results,
            "targets": verdicts,
            "skipped": skipped,
        }
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 1 if args.strict and counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
