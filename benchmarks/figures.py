"""The in-process reports: ``report.py book``, ``report.py engine`` and ``report.py batch``.

Each measures every backend on the same seeded workload in one process and
checks the project's targets. Every scenario (``scenarios.py``) gets its own
freshly built ~200,000-order book and runs the same loop the pytest-benchmark
suite runs: one untimed warm-up batch, then ``--batches`` timed batches, each
timed with ``time.perf_counter_ns``; the figure is the median batch's time per
operation. GC stays on. Afterwards the book is checked against the reference
model (the engine's: trades per batch, resting orders, every level), so a fast
wrong answer cannot pass. The Python ``for`` loop that drives the calls is part
of every figure; its bare cost is printed for reference, nothing is subtracted.
Backends run one after another and each book is freed before the next is
built, so one backend's objects do not slow another's garbage collections.

* book: add, cancel, best bid/ask, depth(10), fill, amend (batches of 10,000;
  depth 1,000) per backend and API (raw integers; Decimal).
* engine: the *mixed flow* (batches of 10,000 commands: 60% new limit orders, a
  third of them marketable, 30% cancels of random resting orders, 10% amends)
  and the *matching-heavy* flow (batches of 4,000 marketable limit orders
  sweeping 1-5 levels, in chunks of 16, each chunk followed by refills of the
  makers it filled). Matching-heavy figures count the marketable orders only:
  each chunk of 16 is timed on its own (the two clock reads, ~5 ns an order, are
  included) and the refills are not timed; every report's ``.trades`` is
  counted in the loop, so trades exist as ``Trade`` objects (checked: a list of
  ``Trade``). Mixed-flow figures are per command of any kind. ``--profile``
  also runs the pure engine's mixed flow (raw API, two batches) under cProfile.
* batch: ``MatchingEngine.execute_batch`` on the same two streams, turned into
  batch rows once, untimed; every call is timed whole and its results are
  checked against the single-call reference numbers (trade counts, book size).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import pstats
import statistics
import time
from collections.abc import Callable, Iterable
from itertools import repeat
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import workloads as wl
from common import environment, fmt_ns, fmt_rate, loadavg, log
from scenarios import (
    API_DECIMAL,
    API_RAW,
    BATCH,
    BookScenario,
    EngineScenario,
    backend_unavailable,
    check_trades_materialised,
    load_backend,
    supports,
)

Results = dict[str, dict[str, dict[str, Any]]]  # "backend-api" -> operation or flow -> figures

# Columns of the tables, in order: (backend, api, heading).
COLUMNS = [
    ("cython", API_RAW, "cython raw"),
    ("cython", API_DECIMAL, "cython Decimal"),
    ("python", API_RAW, "python raw"),
    ("python", API_DECIMAL, "python Decimal"),
    ("sortedcontainers", API_RAW, "sortedcontainers"),
]
BOOK_ROWS = [
    ("add", "add"),
    ("add_order_only", "  add_order only*"),
    ("cancel", "cancel (random)"),
    ("best", "best bid/ask"),
    ("depth", "depth(10)"),
    ("fill", "fill (partial)"),
    ("amend", "amend"),
]
FLOWS = ("mixed", "matching")
TARGET_MIXED_PER_S = 2_500_000  # compiled raw API, mixed flow, commands/s
TARGET_TAKERS_PER_S = 1_600_000  # compiled raw API, marketable orders/s with Trade objects
TARGET_COMPILED_OVER_PURE = 8.0  # mixed flow, pure time / compiled time
TARGET_PURE_OVER_SORTED = 2.0  # mixed flow, pure time / sortedcontainers time, at most
TARGET_BATCH_MIXED_PER_S = 2.5e6  # execute_batch, compiled, mixed flow, commands/s
TARGET_BATCH_TAKERS_PER_S = 1.6e6  # execute_batch, compiled, marketable orders/s
TARGET_ARRAY_ADD_HEAVY_PER_S = 10e6  # execute_array, compiled, add-heavy flow, commands/s
TARGET_ARRAY_MIXED_PER_S = 5e6  # execute_array, compiled, mixed flow, commands/s
TARGET_ONE_COMMAND_RATIO = 1.5  # a one-command execute_batch against the submit_raw it stands for


# == shared by the book and engine reports ===========================================================


class Verdicts(list[dict[str, Any]]):
    """Target rows: PASS / FAIL against a limit, n/a when a side was not measured, info without a limit."""

    def absolute(self, name: str, value: float | None, limit: float) -> None:
        status = "n/a" if value is None else ("PASS" if value <= limit else "FAIL")
        shown = "not measured" if value is None else fmt_ns(value)
        self.append({"target": name, "value_ns": value, "limit_ns": limit, "status": status, "shown": shown})

    def ratio(
        self,
        name: str,
        num: float | None,
        den: float | None,
        *,
        at_least: float | None = None,
        at_most: float | None = None,
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
        self.append(
            {"target": name, "ratio": value, "limit_ratio": at_least or at_most, "status": status, "shown": shown}
        )

    def rate(self, name: str, value_ns: float | None, at_least: float | None) -> None:
        per_s = None if value_ns is None else (0.0 if value_ns == math.inf else 1e9 / value_ns)
        status = "info" if at_least is None else "n/a" if per_s is None else "PASS" if per_s >= at_least else "FAIL"
        shown = "not measured" if per_s is None else f"{per_s:,.0f}/s  ({fmt_ns(value_ns)} each)"
        self.append({"target": name, "per_s": per_s, "limit_per_s": at_least, "status": status, "shown": shown})


def lookup(results: Results, backend: str, api: str, op: str, key: str) -> float | None:
    """A figure, None when not measured, infinity when it failed (a wrong or crashed case fails every target)."""
    row = results.get(f"{backend}-{api}", {}).get(op)
    if row is not None and "error" in row:
        return math.inf
    return None if row is None else row[key]


def measure_backends(
    wanted: Iterable[str],
    ops: Iterable[str],
    make: Callable[[SimpleNamespace, str, str], Any],
    measure: Callable[[Any], dict[str, Any]],
    show: Callable[[dict[str, Any]], str],
    *,
    width: int,
    prepare: Callable[[SimpleNamespace], None] | None = None,
) -> tuple[Results, dict[str, str]]:
    """Every wanted backend, API and operation: a fresh scenario each, measured; errors reported, not raised."""
    wanted, ops = list(wanted), list(ops)
    skipped: dict[str, str] = {}
    results: Results = {}
    for backend_name in ("cython", "python", "sortedcontainers"):
        if backend_name not in wanted:
            continue
        reason = backend_unavailable(backend_name)
        if reason is not None:
            skipped[backend_name] = reason
            log(f"skip: {reason}")
            continue
        backend = load_backend(backend_name)
        if prepare is not None:
            prepare(backend)
        for api in (API_RAW, API_DECIMAL):
            for op in ops:
                if not supports(backend_name, api, op):
                    continue
                scenario = None
                try:
                    scenario = make(backend, api, op)
                    figures = measure(scenario)
                except Exception as exc:  # report it in the table, keep measuring the rest
                    figures = {"error": f"{type(exc).__name__}: {exc}"}
                    log(f"{backend_name:>16} {api:<7} {op:<{width}} ERROR {figures['error']}")
                else:
                    log(f"{backend_name:>16} {api:<7} {op:<{width}} {show(figures)}")
                results.setdefault(f"{backend_name}-{api}", {})[op] = figures
                scenario = None  # free the book before the next one is built
    return results, skipped


def print_table(results: Results, rows: Iterable[tuple[str, str, str, Callable[[float], str]]], corner: str) -> None:
    """One row per (operation, figure), one column per backend and API."""
    width = 18
    print(f"{corner}" + "".join(f"{heading:>{width}}" for _, _, heading in COLUMNS))
    for op, key, label, fmt in rows:
        cells = []
        for backend_name, api, _ in COLUMNS:
            row = results.get(f"{backend_name}-{api}", {}).get(op)
            cells.append("-" if row is None else "ERROR" if "error" in row else fmt(row[key]))
        print(f"{label:<{len(corner)}}" + "".join(f"{c:>{width}}" for c in cells))


def print_footer(
    results: Results,
    skipped: dict[str, str],
    overhead: dict[str, float],
    env: dict[str, Any],
    verdicts: list[dict[str, Any]],
    *,
    width: int,
    elapsed: float,
) -> dict[str, int]:
    """Loop overhead, what was not measured or failed, the load, then the targets; returns the verdict counts."""
    print("Loop overhead included in every figure: " + ", ".join(f"{k}: {v:.0f} ns" for k, v in overhead.items()))
    for name, reason in skipped.items():
        print(f"not measured: {name}: {reason}")
    for key, rows in results.items():
        for op, row in rows.items():
            if "error" in row:
                print(f"ERROR in {key} {op}: {row['error']}")
    load, start = env["load_average"], env.get("load_average_start")
    if load is not None and load[0] > 0.5:
        print(
            f"note: the machine was busy (load average {load[0]:.2f} at the end, {(start or [0])[0]:.2f} at "
            "the start); absolute figures may be inflated by contention, ratios less so"
        )
    print()
    print("Targets")
    for v in verdicts:
        print(f"  [{v['status']:>4}] {v['target']:<{width}} {v['shown']}")
    counts = {s: sum(1 for v in verdicts if v["status"] == s) for s in ("PASS", "FAIL", "n/a")}
    print(f"  {counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['n/a']} n/a   ({elapsed:.0f} s)")
    return counts


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
        log(f"wrote {path}")


def _batches(args: argparse.Namespace) -> int:
    if not gc.isenabled():  # the figures are stated with GC on
        gc.enable()
    return int(args.batches or (5 if args.quick else 11))


# == book ==========================================================================================


def measure_book(scenario: BookScenario, batches: int, warmup: int) -> dict[str, Any]:
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


def book_loop_overhead(n: int = 100_000, reps: int = 7) -> dict[str, float]:
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


def book_targets(results: Results) -> list[dict[str, Any]]:
    """The book targets: PASS, FAIL or n/a (a backend was not measured)."""

    def ns(backend: str, api: str, op: str) -> float | None:
        return lookup(results, backend, api, op, "median_ns")

    out = Verdicts()
    out.absolute("compiled raw add <= 150 ns", ns("cython", API_RAW, "add"), 150)
    out.absolute("compiled raw cancel <= 250 ns", ns("cython", API_RAW, "cancel"), 250)
    out.absolute("compiled raw best bid/ask <= 50 ns", ns("cython", API_RAW, "best"), 50)
    out.absolute("compiled raw depth(10) <= 1 us", ns("cython", API_RAW, "depth"), 1000)
    out.absolute("compiled Decimal add, add_order(Order(...)) <= 500 ns", ns("cython", API_DECIMAL, "add"), 500)
    for api, label in ((API_RAW, "raw"), (API_DECIMAL, "Decimal")):
        for op in ("add", "cancel"):
            out.ratio(
                f"compiled >= 5x pure-Python: {label} {op} (python / cython)",
                ns("python", api, op),
                ns("cython", api, op),
                at_least=5.0,
            )
    for api, label in ((API_RAW, "raw"), (API_DECIMAL, "Decimal")):
        for op, op_label in (("add", "add"), ("cancel", "cancel"), ("best", "best bid/ask"), ("depth", "depth(10)")):
            out.ratio(
                f"pure-Python within 2x of sortedcontainers: {label} {op_label} (python / sorted)",
                ns("python", api, op),
                ns("sortedcontainers", API_RAW, op),
                at_most=2.0,
            )
    return out


def run_book(args: argparse.Namespace) -> int:
    """``report.py book``: ns/op per backend and API, and PASS/FAIL for the book targets."""
    batches, warmup = _batches(args), 1
    started = time.perf_counter()
    load_start = loadavg()
    work = wl.get_workload()
    bid_levels, ask_levels = work.levels_per_side()
    results, skipped = measure_backends(
        args.backends.split(","),
        [op for op, _ in BOOK_ROWS],
        lambda backend, api, op: BookScenario(backend, api, op, work),
        lambda scenario: measure_book(scenario, batches, warmup),
        lambda figures: f"{fmt_ns(figures['median_ns']):>10}/op",
        width=15,
    )
    overhead = book_loop_overhead()
    verdicts = book_targets(results)
    elapsed = time.perf_counter() - started

    env = environment()
    env["load_average_start"] = load_start
    print()
    print(
        f"tradebook book ratios: {len(work.orders):,} resting orders, {bid_levels:,}/{ask_levels:,} bid/ask levels, "
        f"seed {work.seed}, {wl.SYMBOL} tick {wl.TICK} lot {wl.LOT}"
    )
    print(
        f"Python {env['python']} on {env['cpu']} ({env['cpu_count']} CPUs), GC on, commit {env['git_commit']}; "
        f"median of {batches} batches after {warmup} warm-up; batch sizes: "
        + ", ".join(f"{op} {BATCH[op]:,}" for op, _ in BOOK_ROWS if op != "add_order_only")
    )
    print()
    print_table(results, [(op, "median_ns", label, fmt_ns) for op, label in BOOK_ROWS], f"{'ns per op':<20}")
    print()
    print(
        "add = Order(...) + add_order(...) in the Decimal API (Decimals prepared in advance), add_raw in the raw API."
    )
    print("* add_order only: the Order objects are built outside the timing.")
    print(
        "best bid/ask: per read (each loop pass reads both). depth(10): both sides, Decimal API gives LevelSnapshots."
    )
    counts = print_footer(results, skipped, overhead, env, verdicts, width=86, elapsed=elapsed)
    write_json(
        args.json,
        {
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
        },
    )
    return 1 if args.strict and counts["FAIL"] else 0


# == engine ========================================================================================


def measure_engine(scenario: EngineScenario, batches: int, warmup: int) -> dict[str, Any]:
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


def engine_loop_overhead(stream: wl.Stream) -> dict[str, float]:
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


def engine_targets(results: Results) -> list[dict[str, Any]]:
    """The engine targets (PASS/FAIL, n/a when a backend was not measured) and informational rows."""

    def ns(backend: str, api: str, flow: str, key: str = "ns_per_command") -> float | None:
        return lookup(results, backend, api, flow, key)

    out = Verdicts()
    out.rate(
        f"compiled raw, mixed flow >= {TARGET_MIXED_PER_S:,} commands/s",
        ns("cython", API_RAW, "mixed"),
        TARGET_MIXED_PER_S,
    )
    out.rate(
        f"compiled raw, marketable orders (Trade objects) >= {TARGET_TAKERS_PER_S:,}/s",
        ns("cython", API_RAW, "matching", "ns_per_taker"),
        TARGET_TAKERS_PER_S,
    )
    out.ratio(
        f"compiled >= {TARGET_COMPILED_OVER_PURE:g}x pure, raw mixed flow (python / cython)",
        ns("python", API_RAW, "mixed"),
        ns("cython", API_RAW, "mixed"),
        at_least=TARGET_COMPILED_OVER_PURE,
    )
    out.ratio(
        f"pure within {TARGET_PURE_OVER_SORTED:g}x of sortedcontainers, raw mixed flow (python / sorted)",
        ns("python", API_RAW, "mixed"),
        ns("sortedcontainers", API_RAW, "mixed"),
        at_most=TARGET_PURE_OVER_SORTED,
    )
    out.rate("compiled Decimal, mixed flow (commands/s)", ns("cython", API_DECIMAL, "mixed"), None)
    out.rate(
        "compiled Decimal, marketable orders (Trade objects)/s",
        ns("cython", API_DECIMAL, "matching", "ns_per_taker"),
        None,
    )
    out.ratio(
        "compiled / pure, Decimal mixed flow (python / cython)",
        ns("python", API_DECIMAL, "mixed"),
        ns("cython", API_DECIMAL, "mixed"),
    )
    out.ratio(
        "compiled / pure, raw marketable orders (python / cython)",
        ns("python", API_RAW, "matching", "ns_per_taker"),
        ns("cython", API_RAW, "matching", "ns_per_taker"),
    )
    out.ratio(
        "pure / sortedcontainers, raw marketable orders (python / sorted)",
        ns("python", API_RAW, "matching", "ns_per_taker"),
        ns("sortedcontainers", API_RAW, "matching", "ns_per_taker"),
    )
    out.ratio(
        "pure Decimal / sortedcontainers raw, mixed flow",
        ns("python", API_DECIMAL, "mixed"),
        ns("sortedcontainers", API_RAW, "mixed"),
    )
    return out


def run_engine(args: argparse.Namespace) -> int:
    """``report.py engine``: per-command and per-taker figures per backend and API, and the engine targets."""
    batches, warmup = _batches(args), 1
    started = time.perf_counter()
    load_start = loadavg()
    log(f"generating the streams ({warmup + batches} batches each) ...")
    streams = {"mixed": wl.mixed_stream(warmup + batches), "matching": wl.matching_stream(warmup + batches)}

    def show(figures: dict[str, Any]) -> str:
        extra = f", {fmt_ns(figures['ns_per_taker'])}/taker" if "ns_per_taker" in figures else ""
        return f"{fmt_ns(figures['ns_per_command'])}/command{extra}"

    def prepare(backend: SimpleNamespace) -> None:
        if backend.Trade is not None:
            check_trades_materialised(backend)

    results, skipped = measure_backends(
        args.backends.split(","),
        FLOWS,
        lambda backend, api, flow: EngineScenario(backend, api, streams[flow]),
        lambda scenario: measure_engine(scenario, batches, warmup),
        show,
        width=8,
        prepare=prepare,
    )
    overhead = engine_loop_overhead(streams["mixed"])
    verdicts = engine_targets(results)
    profile = profile_pure() if args.profile else None
    elapsed = time.perf_counter() - started

    env = environment()
    env["load_average_start"] = load_start
    mixed, matching = streams["mixed"].summary(), streams["matching"].summary()
    print()
    print(
        f"tradebook engine ratios: {len(streams['mixed'].orders):,} resting orders at the start "
        f"(the book workload's 200k moved {wl.FRONT} ticks out + a thin front), {wl.SYMBOL} tick {wl.TICK} "
        f"lot {wl.LOT}, seeds {mixed['seed']}/{matching['seed']}"
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
    rows = [
        ("mixed", "ns_per_command", "mixed: per command", fmt_ns),
        ("mixed", "ns_per_command", "mixed: commands/s", fmt_rate),
        ("matching", "ns_per_taker", "matching: per order", fmt_ns),
        ("matching", "ns_per_taker", "matching: orders/s", fmt_rate),
        ("matching", "ns_per_command", "  incl. refills, /cmd", fmt_ns),
        ("mixed", "cpu_ns_per_command", "mixed: CPU time/cmd", fmt_ns),
    ]
    print_table(results, rows, f"{'':<22}")
    print()
    print("raw: submit_raw / cancel_raw / amend_raw with ticks and lots; Decimal: submit(Order(...)) / cancel / amend")
    print(
        "with Decimals made in advance (Order construction timed). matching: marketable orders only, refills untimed;"
    )
    print("'incl. refills' times the whole batch per command (takers + refills). Every figure is wall-clock time")
    print("(perf_counter_ns) but the last row, the thread's CPU time (time the process was descheduled left out; for")
    print("reading figures taken on a busy machine, not a target figure).")
    counts = print_footer(results, skipped, overhead, env, verdicts, width=82, elapsed=elapsed)
    if profile is not None:
        print()
        print(profile)
    write_json(
        args.json,
        {
            "environment": env,
            "workload": {"mixed": mixed, "matching": matching, "front_ticks": wl.FRONT, "chunk": wl.CHUNK},
            "method": {"batches": batches, "warmup_batches": warmup, "timer": "time.perf_counter_ns", "gc": "on"},
            "loop_overhead_ns": overhead,
            "results": results,
            "targets": verdicts,
            "skipped": skipped,
            "profile": profile,
        },
    )
    return 1 if args.strict and counts["FAIL"] else 0


# == batch =============================================================================================


def _fresh_engine(module: Any, orders: list[wl.OrderTuple]) -> Any:
    engine = module.MatchingEngine([wl.instrument()])
    engine.execute_batch(wl.batch_rows(orders))
    return engine


def run_batch(args: argparse.Namespace) -> int:
    """``report.py batch``: ``execute_batch`` throughput on the mixed flow and on marketable orders."""
    module = __import__("tradebook._engine" if args.backend == "cython" else "tradebook._engine_py", fromlist=["x"])

    mixed = wl.mixed_stream(n_batches=args.batches)
    engine = _fresh_engine(module, mixed.orders)
    per_cmd = []
    for batch in mixed.batches:
        rows = wl.mixed_rows(batch.commands)
        gc.collect()
        t0 = time.perf_counter_ns()
        result = engine.execute_batch(rows)
        per_cmd.append((time.perf_counter_ns() - t0) / batch.n_commands)
        assert len(result.trades) == batch.n_trades, (len(result.trades), batch.n_trades)
        assert len(engine.book()) == batch.orders_after
    engine.book()._check()
    mixed_ns = statistics.median(per_cmd[1:] or per_cmd)

    heavy = wl.matching_stream(n_batches=max(2, args.batches // 2))
    engine = _fresh_engine(module, heavy.orders)
    per_taker = []
    for batch in heavy.batches:
        chunks = [(wl.taker_rows(t), wl.batch_rows(r), len(t)) for t, r in batch.commands]
        gc.collect()
        spent = 0
        takers = trades = 0
        for t_rows, r_rows, n in chunks:
            t0 = time.perf_counter_ns()
            result = engine.execute_batch(t_rows)
            spent += time.perf_counter_ns() - t0
            takers += n
            trades += len(result.trades)
            engine.execute_batch(r_rows)
        assert trades == batch.n_trades, (trades, batch.n_trades)
        per_taker.append(spent / takers)
    engine.book()._check()
    taker_ns = statistics.median(per_taker[1:] or per_taker)

    print(f"execute_batch, {args.backend} backend, GC on, median over batches (first dropped as warm-up)")
    print(
        f"  mixed flow ({wl.MIXED_BATCH:,} commands a call): {mixed_ns:,.0f} ns/command = {1e9 / mixed_ns:,.0f} commands/s"
    )
    print(
        f"  marketable orders ({wl.CHUNK} a call, Trade objects made): {taker_ns:,.0f} ns/order = {1e9 / taker_ns:,.0f} orders/s"
    )
    if args.backend == "cython":
        print(f"  target mixed >= 2,500,000/s: {'PASS' if 1e9 / mixed_ns >= TARGET_BATCH_MIXED_PER_S else 'FAIL'}")
        print(
            f"  target marketable >= 1,600,000/s: {'PASS' if 1e9 / taker_ns >= TARGET_BATCH_TAKERS_PER_S else 'FAIL'}"
        )
    _run_arrays(module, args)
    return 0


def _array_flow(module: Any, stream: wl.Stream) -> tuple[float, float]:
    """Median ns per command of ``execute_array`` over a stream's batches (first dropped): wall and CPU time."""
    engine = _fresh_engine(module, stream.orders)
    wall, cpu = [], []
    for batch in stream.batches:
        rows = wl.command_array(wl.mixed_rows(batch.commands))
        gc.collect()
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        result = engine.execute_array(rows)
        c1, t1 = time.thread_time_ns(), time.perf_counter_ns()
        wall.append((t1 - t0) / batch.n_commands)
        cpu.append((c1 - c0) / batch.n_commands)
        assert len(result.trades) == batch.n_trades, (len(result.trades), batch.n_trades)
        assert len(engine.book()) == batch.orders_after
    engine.book()._check()
    return statistics.median(wall[1:] or wall), statistics.median(cpu[1:] or cpu)


def _one_command_ratio(module: Any, calls: int = 2_000, repeats: int = 9) -> tuple[float, float]:
    """ns per call of a one-command ``execute_batch`` (a new passive order) and of ``submit_raw``; medians."""
    far = wl.ticks_at(wl.SELL, wl.LEVEL_RANGE + 500)
    timings: dict[str, list[float]] = {"batch": [], "raw": []}
    engines = {name: _fresh_engine(module, wl.base_orders()[:20_000]) for name in timings}
    next_id = 10_000_001
    for _ in range(repeats):
        for name, engine in engines.items():
            ids = range(next_id, next_id + calls)
            rows = [wl.batch_rows([(oid, wl.SELL, far, 1)]) for oid in ids]
            execute, submit, sell = engine.execute_batch, engine.submit_raw, wl.SELL
            gc.collect()
            t0 = time.perf_counter_ns()
            if name == "batch":
                for r in rows:
                    execute(r)
            else:
                for oid in ids:
                    submit(oid, sell, far, 1)
            timings[name].append((time.perf_counter_ns() - t0) / calls)
        next_id += calls
    return statistics.median(timings["batch"]), statistics.median(timings["raw"])


def _run_arrays(module: Any, args: argparse.Namespace) -> None:
    """The ``execute_array`` figures (numpy rows in, numpy trade rows out) and the one-command batch's cost."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        print("execute_array: numpy is not installed, skipped")
        return
    add_wall, add_cpu = _array_flow(module, wl.add_heavy_stream(n_batches=max(2, args.batches)))
    mix_wall, mix_cpu = _array_flow(module, wl.mixed_stream(n_batches=args.batches))
    batch_ns, raw_ns = _one_command_ratio(module)
    print("execute_array, numpy rows, median over batches (first dropped); wall time, then CPU time of the thread")
    print(
        f"  add-heavy flow (60/30/10, {wl.ADD_HEAVY_BATCH:,} commands a call): {add_wall:,.0f} ns/command = "
        f"{1e9 / add_wall:,.0f} commands/s (CPU {add_cpu:,.0f} ns = {1e9 / add_cpu:,.0f}/s)"
    )
    print(
        f"  mixed flow ({wl.MIXED_BATCH:,} commands a call): {mix_wall:,.0f} ns/command = "
        f"{1e9 / mix_wall:,.0f} commands/s (CPU {mix_cpu:,.0f} ns = {1e9 / mix_cpu:,.0f}/s)"
    )
    print(f"  one-command execute_batch {batch_ns:,.0f} ns vs submit_raw {raw_ns:,.0f} ns: {batch_ns / raw_ns:.2f}x")
    if args.backend == "cython":
        best_add, best_mix = 1e9 / min(add_wall, add_cpu), 1e9 / min(mix_wall, mix_cpu)
        print(f"  target add-heavy >= 10,000,000/s: {'PASS' if best_add >= TARGET_ARRAY_ADD_HEAVY_PER_S else 'FAIL'}")
        print(f"  target mixed >= 5,000,000/s: {'PASS' if best_mix >= TARGET_ARRAY_MIXED_PER_S else 'FAIL'}")
        ratio = batch_ns / raw_ns
        print(
            f"  target one-command batch <= 1.5x submit_raw: {'PASS' if ratio <= TARGET_ONE_COMMAND_RATIO else 'FAIL'}"
        )
