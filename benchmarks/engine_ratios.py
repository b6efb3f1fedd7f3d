"""Measure the matching engine on every backend in one process and check the project's engine targets.

Usage::

    PYTHONPATH=src python benchmarks/engine_ratios.py [--quick] [--json out.json] [--profile] [--strict]

The streams are ``engine_workload.py``'s (one seed for every backend): the
*mixed flow* (batches of 10,000 commands: 60% new limit orders, a third of them
marketable, 30% cancels of random resting orders, 10% amends) and the
*matching-heavy* flow (batches of 4,000 marketable limit orders sweeping 1-5
levels, in chunks of 16, each chunk followed by refills of the makers it filled).
For each backend (compiled ``cython`` if built, pure ``python``, the plain
``sortedcontainers`` matcher) and API (raw integers; Decimal, with ``Order(...)``
construction timed and the Decimals made in advance) a freshly built 200,209-order
book runs one untimed warm-up batch and then ``--batches`` timed batches, each
timed with ``time.perf_counter_ns``; figures are the median batch's. GC stays
on. Afterwards the trades per batch, the resting-order count and every level are
checked against the generator's reference run, so a fast wrong engine cannot pass.

Matching-heavy figures count the marketable orders only: each chunk of 16 is
timed on its own (the two clock reads, ~5 ns an order, are included) and the
refills between chunks are not timed; every report's ``.trades`` is counted in
the loop, so trades exist as ``Trade`` objects (checked: a list of ``Trade``).
Mixed-flow figures are per command of any kind. The Python loop that drives the
calls (unpacking a tuple, dispatching on its kind) is part of every figure; its
bare cost is printed for reference, nothing is subtracted.

``--profile`` also runs the pure engine's mixed flow (raw API, two batches)
under cProfile and prints the 15 functions with the most own time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import tradebook
except ImportError:  # running from a checkout without PYTHONPATH=src
    sys.path.insert(0, str(HERE.parent / "src"))
    import tradebook

import workloads as wl  # noqa: E402
from scenarios import (  # noqa: E402
    API_DECIMAL,
    API_RAW,
    EngineScenario,
    backend_unavailable,
    check_trades_materialised,
    load_backend,
    supports,
)

COLUMNS = [
    ("cython", API_RAW, "cython raw"),
    ("cython", API_DECIMAL, "cython Decimal"),
    ("python", API_RAW, "python raw"),
    ("python", API_DECIMAL, "python Decimal"),
    ("sortedcontainers", API_RAW, "sortedcontainers"),
]
FLOWS = ("mixed", "matching")
TARGET_MIXED_PER_S = 2_500_000  # compiled raw API, mixed flow, commands/s
TARGET_TAKERS_PER_S = 1_600_000  # compiled raw API, marketable orders/s with Trade objects
TARGET_COMPILED_OVER_PURE = 8.0  # mixed flow, pure time / compiled time
TARGET_PURE_OVER_SORTED = 2.0  # mixed flow, pure time / sortedcontainers time, at most


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure(scenario: EngineScenario, batches: int, warmup: int) -> dict[str, Any]:
    """Warm up, then time ``batches`` batches; per-command (and per-taker) figures in ns."""
    run = scenario.run
    for _ in range(warmup):
        run(scenario.setup())
    clock, cpu = time.perf_counter_ns, time.thread_time_ns
    per_command: list[float] = []
    cpu_per_command: list[float] = []
    per_taker: list[float] = []
    for _ in range(batches):
        info = scenario.stream.batches[scenario.batches]
        arg = scenario.setup()
        c0 = cpu()
        t0 = clock()
        result = run(arg)
        t1 = clock()
        c1 = cpu()
        per_command.append((t1 - t0) / info.n_commands)
        cpu_per_command.append((c1 - c0) / info.n_commands)
        if isinstance(result, tuple):  # matching-heavy: (trades, ns spent in the marketable orders)
            per_taker.append(result[1] / info.n_takers)
    scenario.check()
    out: dict[str, Any] = {
        "ns_per_command": statistics.median(per_command),
        "batches_ns_per_command": [round(x, 1) for x in per_command],
        "cpu_ns_per_command": statistics.median(cpu_per_command),
        "commands_per_batch": scenario.stream.batches[0].n_commands,
        "trades_per_batch": statistics.mean(b.n_trades for b in scenario.stream.batches[: scenario.batches]),
    }
    if per_taker:
        out["ns_per_taker"] = statistics.median(per_taker)
        out["batches_ns_per_taker"] = [round(x, 1) for x in per_taker]
        out["takers_per_batch"] = scenario.stream.batches[0].n_takers
    return out


def loop_overhead(stream: wl.Stream) -> dict[str, float]:
    """What the bare driving loops cost per iteration (tuple unpacking and dispatch; no calls)."""
    cmds = stream.batches[0].commands

    def mixed() -> None:
        n = c = 0
        for kind, _oid, _side, _price, _qty, _tif in cmds:
            if kind == 0:
                n += 1
            elif kind == 1:
                c += 1

    clock = time.perf_counter_ns

    def clocks() -> None:
        for _ in range(10_000):
            t0 = clock()
            clock() - t0

    out = {}
    for name, fn, n in (("mixed loop + dispatch", mixed, len(cmds)), ("two clock reads", clocks, 10_000)):
        times = []
        for _ in range(7):
            t0 = time.perf_counter_ns()
            fn()
            times.append((time.perf_counter_ns() - t0) / n)
        out[name] = statistics.median(times)
    return out


def profile_pure(batches: int = 2) -> str:
    """cProfile of the pure engine on the mixed flow (raw API): top 15 by own time."""
    stream = wl.mixed_stream(max(batches, 2))
    scenario = EngineScenario(load_backend("python"), API_RAW, stream)
    args = [scenario.setup() for _ in range(batches)]
    profiler = cProfile.Profile()
    profiler.enable()
    for arg in args:
        scenario.run(arg)
    profiler.disable()
    scenario.check()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    commands = sum(b.n_commands for b in stream.batches[:batches])
    return f"cProfile: pure engine, mixed flow, raw API, {commands:,} commands, GC on\n" + out.getvalue()


def fmt_ns(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns == math.inf:
        return "ERROR"
    if ns >= 10_000:
        return f"{ns / 1000:,.1f} us"
    return f"{ns:,.0f} ns"


def fmt_rate(ns: float | None) -> str:
    if ns is None:
        return "-"
    if ns == math.inf:
        return "ERROR"
    return f"{1e9 / ns:,.0f}/s"


def targets(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The engine targets (PASS/FAIL, n/a when a backend was not measured) and informational rows."""

    def ns(backend: str, api: str, flow: str, key: str = "ns_per_command") -> float | None:
        row = results.get(f"{backend}-{api}", {}).get(flow)
        if row is not None and "error" in row:
            return math.inf
        return None if row is None else row[key]

    out: list[dict[str, Any]] = []

    def rate(name: str, value_ns: float | None, at_least: float | None) -> None:
        per_s = None if value_ns is None else (0.0 if value_ns == math.inf else 1e9 / value_ns)
        status = "info" if at_least is None else "n/a" if per_s is None else "PASS" if per_s >= at_least else "FAIL"
        shown = "not measured" if per_s is None else f"{per_s:,.0f}/s  ({fmt_ns(value_ns)} each)"
        out.append({"target": name, "per_s": per_s, "limit_per_s": at_least, "status": status, "shown": shown})

    def ratio(
        name: str, num: float | None, den: float | None, *, at_least: float | None = None, at_most: float | None = None
    ) -> None:
        value = None if num is None or den is None else num / den
        if value is None:
            status = "n/a"
        elif at_least is not None:
            status = "PASS" if value >= at_least else "FAIL"
        elif at_most is not None:
            status = "PASS" if value <= at_most else "FAIL"
        else:
            status = "info"
        shown = "not measured" if value is None else f"{value:.2f}x  ({fmt_ns(num)} / {fmt_ns(den)})"
        out.append(
            {"target": name, "ratio": value, "limit_ratio": at_least or at_most, "status": status, "shown": shown}
        )

    rate(
        f"compiled raw, mixed flow >= {TARGET_MIXED_PER_S:,} commands/s",
        ns("cython", API_RAW, "mixed"),
        TARGET_MIXED_PER_S,
    )
    rate(
        f"compiled raw, marketable orders (Trade objects) >= {TARGET_TAKERS_PER_S:,}/s",
        ns("cython", API_RAW, "matching", "ns_per_taker"),
        TARGET_TAKERS_PER_S,
    )
    ratio(
        f"compiled >= {TARGET_COMPILED_OVER_PURE:g}x pure, raw mixed flow (python / cython)",
        ns("python", API_RAW, "mixed"),
        ns("cython", API_RAW, "mixed"),
        at_least=TARGET_COMPILED_OVER_PURE,
    )
    ratio(
        f"pure within {TARGET_PURE_OVER_SORTED:g}x of sortedcontainers, raw mixed flow (python / sorted)",
        ns("python", API_RAW, "mixed"),
        ns("sortedcontainers", API_RAW, "mixed"),
        at_most=TARGET_PURE_OVER_SORTED,
    )
    rate("compiled Decimal, mixed flow (commands/s)", ns("cython", API_DECIMAL, "mixed"), None)
    rate(
        "compiled Decimal, marketable orders (Trade objects)/s",
        ns("cython", API_DECIMAL, "matching", "ns_per_taker"),
        None,
    )
    ratio(
        "compiled / pure, Decimal mixed flow (python / cython)",
        ns("python", API_DECIMAL, "mixed"),
        ns("cython", API_DECIMAL, "mixed"),
    )
    ratio(
        "compiled / pure, raw marketable orders (python / cython)",
        ns("python", API_RAW, "matching", "ns_per_taker"),
        ns("cython", API_RAW, "matching", "ns_per_taker"),
    )
    ratio(
        "pure / sortedcontainers, raw marketable orders (python / sorted)",
        ns("python", API_RAW, "matching", "ns_per_taker"),
        ns("sortedcontainers", API_RAW, "matching", "ns_per_taker"),
    )
    ratio(
        "pure Decimal / sortedcontainers raw, mixed flow",
        ns("python", API_DECIMAL, "mixed"),
        ns("sortedcontainers", API_RAW, "mixed"),
    )
    return out


def environment() -> dict[str, Any]:
    commit = None
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "git_commit": commit,
        "tradebook": str(Path(tradebook.__file__).parent),
        "gc_enabled": gc.isenabled(),
        "gc_threshold": gc.get_threshold(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 timed batches per figure instead of 11")
    parser.add_argument("--batches", type=int, default=None, help="timed batches per figure (default 11, quick 5)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure and verdict as JSON")
    parser.add_argument("--profile", action="store_true", help="cProfile the pure engine's mixed flow, top 15")
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
    log(f"generating the streams ({warmup + batches} batches each) ...")
    streams = {"mixed": wl.mixed_stream(warmup + batches), "matching": wl.matching_stream(warmup + batches)}
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
        if backend.Trade is not None:
            check_trades_materialised(backend)
        for api in (API_RAW, API_DECIMAL):
            if not supports(backend_name, api, "mixed"):
                continue
            for flow in FLOWS:
                scenario = None
                try:
                    scenario = EngineScenario(backend, api, streams[flow])
                    figures = measure(scenario, batches, warmup)
                except Exception as exc:  # report it in the table, keep measuring the rest
                    figures = {"error": f"{type(exc).__name__}: {exc}"}
                    log(f"{backend_name:>16} {api:<7} {flow:<8} ERROR {figures['error']}")
                else:
                    extra = f", {fmt_ns(figures['ns_per_taker'])}/taker" if "ns_per_taker" in figures else ""
                    log(f"{backend_name:>16} {api:<7} {flow:<8} {fmt_ns(figures['ns_per_command'])}/command{extra}")
                results.setdefault(f"{backend_name}-{api}", {})[flow] = figures
                scenario = None  # free the book before the next one is built
    overhead = loop_overhead(streams["mixed"])
    verdicts = targets(results)
    profile = profile_pure() if args.profile else None
    elapsed = time.perf_counter() - started

    env = environment()
    env["load_average_start"] = load_start
    mixed, matching = streams["mixed"].summary(), streams["matching"].summary()
    print()
    print(
        f"tradebook engine ratios: {len(streams['mixed'].orders):,} resting orders at the start "
        f"(workload.py's 200k moved {wl.FRONT} ticks out + a thin front), {wl.SYMBOL} tick {wl.TICK} lot {wl.LOT}, seeds {mixed['seed']}/{matching['seed']}"
    )
    print(
        f"Python {env['python']} on {env['cpu']} ({env['cpu_count']} CPUs), GC on, commit {env['git_commit']}; "
        f"median of {batches} batches after {warmup} warm-up"
    )
    print(
        f"mixed flow: {wl.MIXED_BATCH:,} commands a batch, {mixed['trades_per_command']:.2f} trades a command, "
        f"{mixed['trades_per_taker']:.2f} a marketable order; book {mixed['orders_start']:,} -> "
        f"{mixed['orders_min']:,}..{mixed['orders_max']:,} orders"
    )
    print(
        f"matching-heavy: {wl.MATCHING_BATCH:,} marketable orders a batch (1-5 levels each), "
        f"{matching['trades_per_taker']:.2f} trades each, "
        f"{matching['refills'] / matching['takers']:.2f} refills each (not timed)"
    )
    print()
    width = 18
    rows = [
        ("mixed", "ns_per_command", "mixed: per command", fmt_ns),
        ("mixed", "ns_per_command", "mixed: commands/s", fmt_rate),
        ("matching", "ns_per_taker", "matching: per order", fmt_ns),
        ("matching", "ns_per_taker", "matching: orders/s", fmt_rate),
        ("matching", "ns_per_command", "  incl. refills, /cmd", fmt_ns),
        ("mixed", "cpu_ns_per_command", "mixed: CPU time/cmd", fmt_ns),
    ]
    print(f"{'':<22}" + "".join(f"{heading:>{width}}" for _, _, heading in COLUMNS))
    for flow, key, label, fmt in rows:
        cells = []
        for backend_name, api, _ in COLUMNS:
            row = results.get(f"{backend_name}-{api}", {}).get(flow)
            cells.append("-" if row is None else "ERROR" if "error" in row else fmt(row[key]))
        print(f"{label:<22}" + "".join(f"{c:>{width}}" for c in cells))
    print()
    print("raw: submit_raw / cancel_raw / amend_raw with ticks and lots; Decimal: submit(Order(...)) / cancel / amend")
    print(
        "with Decimals made in advance (Order construction timed). matching: marketable orders only, refills untimed;"
    )
    print("'incl. refills' times the whole batch per command (takers + refills). Every figure is wall-clock time")
    print("(perf_counter_ns) but the last row, the thread's CPU time (time the process was descheduled left out; for")
    print("reading figures taken on a busy machine, not a target figure).")
    print("Loop overhead included in every figure: " + ", ".join(f"{k}: {v:.0f} ns" for k, v in overhead.items()))
    for name, reason in skipped.items():
        print(f"not measured: {name}: {reason}")
    for key, flows in results.items():
        for flow, row in flows.items():
            if "error" in row:
                print(f"ERROR in {key} {flow}: {row['error']}")
    load = env["load_average"]
    if load is not None and load[0] > 0.5:
        print(
            f"note: the machine was busy (load average {load[0]:.2f} at the end, {(load_start or [0])[0]:.2f} at "
            "the start); absolute figures may be inflated by contention, ratios less so"
        )
    print()
    print("Targets")
    for v in verdicts:
        print(f"  [{v['status']:>4}] {v['target']:<82} {v['shown']}")
    counts = {s: sum(1 for v in verdicts if v["status"] == s) for s in ("PASS", "FAIL", "n/a")}
    print(f"  {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['n/a']} n/a   ({elapsed:.0f} s)")
    if profile is not None:
        print()
        print(profile)

    if args.json:
        data = {
            "environment": env,
            "workload": {"mixed": mixed, "matching": matching, "front_ticks": wl.FRONT, "chunk": wl.CHUNK},
            "method": {"batches": batches, "warmup_batches": warmup, "timer": "time.perf_counter_ns", "gc": "on"},
            "loop_overhead_ns": overhead,
            "results": results,
            "targets": verdicts,
            "skipped": skipped,
            "profile": profile,
        }
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 1 if args.strict and counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
