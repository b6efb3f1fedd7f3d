"""``report.py instructions``: instructions per hot operation under callgrind, gated against a committed baseline.

Wall times on shared machines move by 2x under load; the number of
instructions a given binary executes on given inputs does not. For each
operation in ``OPS`` a child process builds a seeded 20,000-order book (from
``workloads.py``), runs a warm-up slice of the operation, then, in the measured
run only, ``count`` more operations and leaves with ``os._exit`` (no teardown).
Both runs go under ``valgrind --tool=callgrind``; the difference of their
totals, divided by the operations, is the figure: setup, imports, warm-up and
interpreter start-up cancel out, the Python loop that drives the calls stays in.

    python benchmarks/report.py instructions            # measure, print beside the baseline
    python benchmarks/report.py instructions --check    # CI: exit 1 on any rise above 3%
    python benchmarks/report.py instructions --update   # re-record benchmarks/instructions.json

The counts are comparable only for the same toolchain (Python, Cython,
compiler, C library): ``--check`` refuses to compare across a change unless
given ``--allow-different-toolchain``; re-record with ``--update`` instead.
"""

from __future__ import annotations

# Only what the child needs is imported here: its imports run under callgrind (twice an op).
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import argparse

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "instructions.json"
THRESHOLD = 0.03  # a rise above this fails --check; a fall beyond it suggests re-recording
BOOK_ORDERS = 20_000  # resting orders in every child's book
BATCH = 100  # commands per execute_batch call in the batch ops
TOOLCHAIN_KEYS = ("python", "cython", "compiler", "libc")

# -- the operations (run in the child) -----------------------------------------------------

# op -> (what one operation is, warm-up operations, measured operations)
OPS: dict[str, tuple[str, int, int]] = {
    "loop": ("an empty pass of the 4-tuple loop every op below uses (the floor they include)", 1_000, 4_000),
    "add_raw": ("OrderBook.add_raw of a new resting order (95% on an existing level)", 1_000, 3_000),
    "remove_raw": ("OrderBook.remove_raw of a random resting order", 1_000, 3_000),
    "best_raw": ("best_bid_raw or best_ask_raw (one read; the loop reads both)", 1_000, 4_000),
    "depth_raw": ("OrderBook.depth_raw(10): ten levels a side", 200, 1_000),
    "submit_raw": ("MatchingEngine.submit_raw of a marketable IOC limit, 1-20 lots from the touch", 1_000, 3_000),
    "submit_raw_market": ("MatchingEngine.submit_raw of a market order (price None), 1-20 lots", 1_000, 3_000),
    "add_order": ("OrderBook.add_order(Order(...)) with Decimal price and quantity, resting", 500, 1_500),
    "submit": ("MatchingEngine.submit(Order(...)) of a Decimal limit that rests", 500, 1_500),
    "best_bid": ("OrderBook.best_bid.price: the best bid as a Decimal", 1_000, 3_000),
    "batch_add": (f"execute_batch, per command: resting limits, {BATCH} a call", 1_000, 4_000),
    "batch_cancel": (f"execute_batch, per command: cancels of random resting orders, {BATCH} a call", 1_000, 4_000),
    "batch_submit": (f"execute_batch, per command: marketable IOC limits, {BATCH} a call", 1_000, 4_000),
    # the numpy path: measured where MatchingEngine.execute_array exists (and numpy is installed)
    "array_add": (f"execute_array, per command: resting limits, {BATCH} a call", 1_000, 4_000),
    "array_cancel": (f"execute_array, per command: cancels of random resting orders, {BATCH} a call", 1_000, 4_000),
    "array_submit": (f"execute_array, per command: marketable IOC limits, {BATCH} a call", 1_000, 4_000),
    # the new order types, each against its plain twin (the difference is the cost of the feature):
    # a ladder of asks, 2 lots a level, one level used up per operation
    "stop_trigger": (
        "a 1-lot IOC buy at the touch that triggers one waiting BUY stop, which buys the level's other lot",
        1_000,
        3_000,
    ),
    "stop_trigger_base": ("stop_trigger's plain twin: a 2-lot IOC buy at the touch, no stop", 1_000, 3_000),
    "iceberg_refresh": ("a 1-lot IOC buy that uses up an iceberg's 1-lot slice, which refreshes", 1_000, 3_000),
    "iceberg_refresh_base": ("iceberg_refresh's plain twin: a 1-lot IOC buy that fills a 1-lot order", 1_000, 3_000),
}
ARRAY_OPS = ("array_add", "array_cancel", "array_submit")
TYPED_OPS = ("stop_trigger", "stop_trigger_base", "iceberg_refresh", "iceberg_refresh_base")


def available_ops() -> list[str]:
    """The ops this tradebook has: the array ones need ``execute_array`` and numpy."""
    import importlib.util

    from tradebook import MatchingEngine

    has_arrays = hasattr(MatchingEngine, "execute_array") and importlib.util.find_spec("numpy") is not None
    has_types = hasattr(MatchingEngine, "submit_raw_typed")
    return [op for op in OPS if (has_arrays or op not in ARRAY_OPS) and (has_types or op not in TYPED_OPS)]


def prepare_data(book_orders: int = BOOK_ORDERS, total: int | None = None) -> dict[str, Any]:
    """Everything the children read, from ``workloads.py``'s seeded flow, as plain ints (``marshal``-able).

    Made once in the parent: generating it under callgrind would cost a child
    more than everything else it does. Sides are 0 (buy) and 1 (sell).
    """
    import random

    import workloads as wl

    total = total or max(warm + count for _, warm, count in OPS.values())
    work = wl.get_workload.__wrapped__(n_orders=book_orders, n_adds=total)
    rng = random.Random(wl.SEED + 7)
    takers = []  # alternate sides, 1-20 lots, priced through the whole book: each takes from the touch
    for i in range(total):
        sell = i % 2
        takers.append(
            (wl.NEW_ID0 + i, sell, wl.ticks_at(wl.BUY if sell else wl.SELL, wl.LEVEL_RANGE + 10), rng.randint(1, 20))
        )
    inst = wl.instrument()
    return {
        "instrument": (inst.symbol, str(inst.tick_size), str(inst.lot_size)),
        "orders": [(oid, int(side is wl.SELL), ticks, lots) for oid, side, ticks, lots in work.orders],
        "adds": [(oid, int(side is wl.SELL), ticks, lots) for oid, side, ticks, lots in work.adds],
        "cancel_ids": work.cancel_ids[:total],
        "takers": takers,
    }


def _prepare(op: str, total: int, data: dict[str, Any]) -> tuple[Callable[[list[Any]], None], list[Any], Any]:
    """Build the op's book and items (identical in both runs); the loop to run over items, and the engine if any."""
    from array import array

    from tradebook import BatchOp, Instrument, MatchingEngine, Order, OrderBook, Side, TimeInForce

    sides = (Side.BUY, Side.SELL)
    inst = Instrument(*data["instrument"])

    def typed(rows: list[Any]) -> list[Any]:
        return [(oid, sides[sell], ticks, lots) for oid, sell, ticks, lots in rows]

    def batch_rows(rows: list[Any], op: int) -> list[Any]:
        flat = array("q", [v for oid, sell, ticks, lots in rows for v in (op, oid, sell, ticks, lots)])
        return [flat[i : i + 5 * BATCH] for i in range(0, len(flat), 5 * BATCH)]  # one array per call

    engine: Any = None
    if op in ("add_raw", "remove_raw", "best_raw", "depth_raw", "add_order", "best_bid", "loop"):
        book = OrderBook(inst)
    else:
        engine = MatchingEngine()
        engine.add_instrument(inst)
        book = engine.book()
    add = book.add_raw
    for oid, side, ticks, lots in typed(data["orders"]):
        add(oid, side, ticks, lots)
    adds, takers = data["adds"][:total], data["takers"][:total]
    items: list[Any]
    run: Callable[[list[Any]], None]

    if op == "loop":
        items = typed(adds)

        def run(items: list[Any]) -> None:
            for _oid, _side, _ticks, _lots in items:
                pass

    elif op == "add_raw":
        items = typed(adds)

        def run(items: list[Any]) -> None:
            add = book.add_raw
            for oid, side, ticks, lots in items:
                add(oid, side, ticks, lots)

    elif op == "remove_raw":
        items = data["cancel_ids"][:total]

        def run(items: list[Any]) -> None:
            remove = book.remove_raw
            for oid in items:
                remove(oid)

    elif op == "best_raw":
        items = [None] * ((total + 1) // 2)  # two reads a pass

        def run(items: list[Any]) -> None:
            for _ in items:
                book.best_bid_raw  # noqa: B018  (a property: the read is the operation)
                book.best_ask_raw  # noqa: B018

    elif op == "depth_raw":
        items = [10] * total

        def run(items: list[Any]) -> None:
            depth = book.depth_raw
            for n in items:
                depth(n)

    elif op in ("submit_raw", "submit_raw_market"):
        market = op == "submit_raw_market"
        items = [(oid, side, None if market else ticks, lots) for oid, side, ticks, lots in typed(takers)]

        def run(items: list[Any]) -> None:
            submit, ioc = engine.submit_raw, TimeInForce.IOC
            for oid, side, ticks, lots in items:
                submit(oid, side, ticks, lots, time_in_force=ioc)

    elif op in ("add_order", "submit"):
        price, qty = inst.ticks_to_price, inst.lots_to_quantity
        items = [(oid, side, price(ticks), qty(lots)) for oid, side, ticks, lots in typed(adds)]

        def run(items: list[Any]) -> None:
            call = book.add_order if op == "add_order" else engine.submit
            for oid, side, price, qty in items:
                call(Order(oid, side, price, qty))

    elif op == "best_bid":
        items = [None] * total

        def run(items: list[Any]) -> None:
            for _ in items:
                book.best_bid.price  # noqa: B018  (the read is the operation)

    elif op in ("batch_add", "batch_cancel", "batch_submit"):
        if op == "batch_add":
            items = batch_rows(adds, BatchOp.LIMIT)
        elif op == "batch_cancel":
            items = batch_rows([(oid, 0, 0, 0) for oid in data["cancel_ids"][:total]], BatchOp.CANCEL)
        else:
            items = batch_rows(takers, BatchOp.IOC)

        def run(items: list[Any]) -> None:
            execute = engine.execute_batch
            for rows in items:
                execute(rows)

    elif op in ARRAY_OPS:
        import numpy as np

        from tradebook import COMMAND_DTYPE  # type: ignore[attr-defined]  # only where execute_array exists

        if op == "array_add":
            rows, code = adds, BatchOp.LIMIT
        elif op == "array_cancel":
            rows, code = [(oid, 0, 0, 0) for oid in data["cancel_ids"][:total]], BatchOp.CANCEL
        else:
            rows, code = takers, BatchOp.IOC
        table = np.zeros(len(rows), COMMAND_DTYPE)
        table["op"] = code
        table["id"], table["side"], table["price"], table["quantity"] = zip(*rows, strict=True)
        items = [table[i : i + BATCH] for i in range(0, len(table), BATCH)]

        def run(items: list[Any]) -> None:
            execute = engine.execute_array
            for rows in items:
                execute(rows)

    elif op in TYPED_OPS:
        engine, run, items = _typed_op(op, total, inst)

    else:
        raise SystemExit(f"unknown op {op!r}; known: {', '.join(OPS)}")
    return run, items, engine


def _typed_op(
    op: str, total: int, inst: Any, engine_cls: Any = None, order_cls: Any = None
) -> tuple[Any, Callable[[list[Any]], None], list[Any]]:
    """A fresh engine for an op of the new order types and its plain twin; the loop and its items.

    ``engine_cls`` / ``order_cls`` pick a backend (default: the package's); ``test_order_types.py`` times the same.
    """
    from tradebook import MatchingEngine, Order, Side, TimeInForce

    engine_cls = engine_cls or MatchingEngine
    Order = order_cls or Order
    engine = engine_cls([inst])
    base = 1_000_000
    for i in range(200):  # some bids, so that the book is not one-sided
        engine.submit_raw(900_000_000 + i, Side.BUY, base - 1 - i, 5)
    ioc = TimeInForce.IOC
    if op.startswith("stop_trigger"):
        for k in range(total):  # a ladder of asks: 2 lots a level
            engine.submit_raw(800_000_000 + k, Side.SELL, base + k, 2)
        if op == "stop_trigger":
            for k in range(total):  # one BUY stop at each level, waiting
                engine.submit_raw_typed(700_000_000 + k, Side.BUY, None, 1, stop_price=base + k)
        lots = 1 if op == "stop_trigger" else 2
        items = [(k, base + k, lots) for k in range(total)]
    else:
        if op == "iceberg_refresh":
            engine.submit(Order(800_000_000, "SELL", inst.ticks_to_price(base), inst.lots_to_quantity(total + 1),
                                display_quantity=inst.lots_to_quantity(1)))  # fmt: skip
        else:
            for k in range(total + 1):
                engine.submit_raw(800_000_000 + k, Side.SELL, base, 1)
        items = [(k, base, 1) for k in range(total)]

    def run(items: list[Any]) -> None:
        submit, buy = engine.submit_raw, Side.BUY
        for k, ticks, lots in items:
            submit(k, buy, ticks, lots, time_in_force=ioc)

    return engine, run, items


def child(op: str, warm: int, count: int, measured: bool, data_path: str) -> None:
    """What runs under callgrind: setup and warm-up always, ``count`` more operations if ``measured``."""
    import gc
    import marshal

    gc.disable()  # building tens of thousands of tuples would run the collector over and over
    with open(data_path, "rb") as fh:
        data = marshal.loads(fh.read())  # load(fh) would call fh.read() per byte
    run, items, engine = _prepare(op, warm + count, data)
    per_item = 2 if op == "best_raw" else BATCH if op.startswith(("batch_", "array_")) else 1
    split = warm // per_item
    warm_items, measured_items = items[:split], items[split:]
    del data
    gc.collect()
    gc.freeze()  # the setup's objects out of the collector's way
    gc.enable()  # and on, as in an application: young collections run in the loop
    trades0 = engine.next_trade_id if engine is not None else 0
    run(warm_items)
    if measured:
        run(measured_items)
    trades = (engine.next_trade_id - trades0) if engine is not None else 0
    import tradebook

    report = {"op": op, "ops": len(measured_items) * per_item, "trades": trades, "backend": tradebook.BACKEND}
    print(json.dumps(report), flush=True)
    os._exit(0)  # no interpreter teardown: freeing what the measured run added is not the operation


# -- measuring (in the parent) -----------------------------------------------------------------


def parse_collected(stderr: str) -> int:
    """The instruction total from callgrind's ``Collected : N`` line on stderr."""
    import re

    found = re.findall(r"^==\d+==\s+Collected\s*:\s*(\d+)\s*$", stderr, re.MULTILINE)
    if not found:
        raise RuntimeError("no 'Collected :' line in valgrind's output:\n" + stderr[-2000:])
    return int(found[-1])


def child_env(backend: str, pycache: Path) -> dict[str, str]:
    """A fixed, minimal environment: hash seed 0, bytecode read from ``pycache`` only, no stray variables."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPYCACHEPREFIX": str(pycache),
        "LC_ALL": "C",
        # numpy's BLAS starts worker threads that spin for a while: callgrind counts them too,
        # and the array ops' counts then moved by 30% between runs
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if "PYTHONPATH" in os.environ:  # a tradebook other than the installed one, chosen on purpose
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if backend == "python":
        env["TRADEBOOK_NO_EXTENSIONS"] = "1"
    return env


def valgrind_command(valgrind: str, argv: list[str]) -> list[str]:
    """``argv`` under callgrind counting instructions only, with no profile written."""
    return [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", "--dump-line=no", *argv]


class Measurement(NamedTuple):
    op: str
    instructions: float  # per operation
    ops: int
    base: int  # total of the setup-and-warm-up run
    full: int  # total of the run with the measured operations
    trades: int
    seconds: float


def measure(
    op: str, data_path: Path, *, backend: str = "cython", valgrind: str = "valgrind", scale: float = 1.0
) -> Measurement:
    """Run ``op``'s two children under callgrind; instructions per operation."""
    import subprocess
    import time

    _, warm, count = OPS[op]
    count = max(1, int(count * scale))
    started = time.perf_counter()
    totals: list[int] = []
    outputs: list[dict[str, Any]] = []
    env = child_env(backend, data_path.parent / "pycache")
    for measured in (0, 1):
        argv = [*child_command(), op, str(warm), str(count), str(measured), str(data_path)]
        proc = subprocess.run(
            valgrind_command(valgrind, argv), cwd=HERE.parent, env=env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{op}: the child failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        totals.append(parse_collected(proc.stderr))
        outputs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if outputs[-1]["backend"] != backend:  # a core that failed to import falls back to pure Python
            raise RuntimeError(f"{op}: asked for the {backend} backend, the child ran {outputs[-1]['backend']!r}")
    ops = outputs[1]["ops"]
    return Measurement(
        op,
        per_op(totals[0], totals[1], ops),
        ops,
        totals[0],
        totals[1],
        outputs[1]["trades"] - outputs[0]["trades"],
        time.perf_counter() - started,
    )


def child_command() -> list[str]:
    """The child's command line up to its arguments: this file imported as a module, so its bytecode is cached."""
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import instructions; instructions.main()"
    return [sys.executable, "-c", code, "--child"]


def write_data(directory: Path, backend: str = "cython", scale: float = 1.0, book_orders: int = BOOK_ORDERS) -> Path:
    """``prepare_data`` for every op at ``scale``, marshalled into ``directory``; the file's path.

    Also runs one short child of every op outside valgrind, writing bytecode to
    ``directory/pycache``: the measured children then read the same bytecode
    instead of compiling every module under callgrind.
    """
    import marshal
    import subprocess

    total = max(warm + max(1, int(count * scale)) for _, warm, count in OPS.values())
    path = directory / "instructions-data.marshal"
    path.write_bytes(marshal.dumps(prepare_data(book_orders, total)))
    env = {**child_env(backend, directory / "pycache"), "PYTHONDONTWRITEBYTECODE": ""}
    for op in available_ops():
        argv = [*child_command(), op, "1", "1", "1", str(path)]
        subprocess.run(argv, cwd=HERE.parent, env=env, check=True, capture_output=True)
    return path


def tree_fingerprint() -> tuple[tuple[str, int, int], ...]:
    """Size and mtime of every module of the tradebook that the children import (to see a rebuild mid-run)."""
    import importlib.util

    spec = importlib.util.find_spec("tradebook")
    if spec is None or spec.origin is None:
        return ()
    package = Path(spec.origin).parent
    return tuple(
        (str(path.relative_to(package)), stat.st_size, stat.st_mtime_ns)
        for path in sorted(package.rglob("*"))
        if path.suffix in (".py", ".so", ".pyd") and (stat := path.stat())
    )


def measure_stable(op: str, data_path: Path, tries: int = 3, **options: Any) -> Measurement:
    """``measure``, again if tradebook's files changed during the two runs (a rebuild between them skews the count)."""
    for _ in range(tries):
        before = tree_fingerprint()
        result = measure(op, data_path, **options)
        if tree_fingerprint() == before:
            return result
    raise RuntimeError(f"{op}: tradebook's files kept changing while it was measured; measure a quiet tree")


def per_op(base: int, full: int, ops: int) -> float:
    """Instructions per operation from the two totals."""
    if ops <= 0:
        raise ValueError("no measured operations")
    if full < base:
        raise ValueError(f"the measured run executed fewer instructions ({full:,}) than the setup run ({base:,})")
    return (full - base) / ops


# -- the toolchain the counts belong to ------------------------------------------------------


def _first_line(argv: list[str]) -> str:
    import subprocess

    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def toolchain(backend: str = "cython") -> dict[str, str]:
    """Python, Cython (that generated the compiled core's C), compiler and C library: counts depend on each."""
    import platform
    import re
    import sysconfig

    src = HERE.parent / "src" / "tradebook"
    cython = "none (pure backend)" if backend == "python" else "unknown"
    if backend != "python":
        header = src / "_book.c"
        if header.exists():
            match = re.match(r"/\* Generated by Cython (\S+)", header.read_text(errors="replace")[:200])
            cython = match.group(1) if match else "unknown"
        else:
            try:
                import Cython

                cython = Cython.__version__
            except ImportError:
                pass
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    libc = " ".join(platform.libc_ver()).strip() or "unknown"
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()} ({platform.python_compiler()})",
        "cython": cython,
        "compiler": _first_line([cc, "--version"]),
        "libc": libc,
    }


def toolchain_differences(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """One line per toolchain part whose version differs."""
    return [
        f"{key}: baseline {recorded.get(key, '?')!r}, now {current.get(key, '?')!r}"
        for key in TOOLCHAIN_KEYS
        if recorded.get(key) != current.get(key)
    ]


# -- comparing -------------------------------------------------------------------------------


class Row(NamedTuple):
    op: str
    baseline: float | None
    now: float | None
    change: float | None  # (now - baseline) / baseline
    verdict: str  # ok, RISE, fall, new, missing


def compare(baseline: Mapping[str, float], now: Mapping[str, float], threshold: float = THRESHOLD) -> list[Row]:
    """Per op: the baseline, the new count, the change and a verdict (RISE fails a check; fall, new do not)."""
    rows = []
    for op in [*baseline, *(op for op in now if op not in baseline)]:
        old, new = baseline.get(op), now.get(op)
        if old is None:
            rows.append(Row(op, None, new, None, "new"))
        elif new is None:
            rows.append(Row(op, old, None, None, "missing"))
        else:
            change = (new - old) / old if old else (0.0 if new == old else float("inf"))
            verdict = "RISE" if change > threshold else "fall" if change < -threshold else "ok"
            rows.append(Row(op, old, new, change, verdict))
    return rows


def failed(rows: Iterable[Row]) -> list[Row]:
    """The rows that fail a check: rises above the threshold."""
    return [row for row in rows if row.verdict == "RISE"]


def render(rows: Iterable[Row], threshold: float = THRESHOLD) -> str:
    """The comparison as a terminal table."""
    notes = {
        "ok": "",
        "RISE": f"FAIL: more than +{threshold:.0%}",
        "fall": f"below -{threshold:.0%}: re-record the baseline",
        "new": "not in the baseline: add it with --update",
        "missing": "in the baseline, not measured",
    }
    lines = [f"{'op':<20} {'baseline':>12} {'now':>12} {'change':>9}  verdict", "-" * 72]
    for r in rows:
        old = f"{r.baseline:,.1f}" if r.baseline is not None else "-"
        new = f"{r.now:,.1f}" if r.now is not None else "-"
        change = f"{r.change:+.2%}" if r.change is not None else "-"
        lines.append(f"{r.op:<20} {old:>12} {new:>12} {change:>9}  {r.verdict} {notes[r.verdict]}".rstrip())
    return "\n".join(lines)


def load_baseline(path: Path) -> dict[str, Any]:
    """The committed baseline, or an empty one."""
    if not path.exists():
        return {"toolchain": {}, "backends": {}}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def baseline_counts(data: Mapping[str, Any], backend: str) -> dict[str, float]:
    """``op -> instructions per operation`` for ``backend`` from a baseline file's data."""
    ops = data.get("backends", {}).get(backend, {})
    return {op: float(entry["instructions"]) for op, entry in ops.items()}


def write_baseline(
    path: Path, data: dict[str, Any], backend: str, results: list[Measurement], tools: dict[str, str]
) -> None:
    """Merge ``results`` into the baseline data for ``backend`` and write it."""
    if str(HERE) not in sys.path:  # imported from elsewhere (the tests)
        sys.path.insert(0, str(HERE))
    import common

    env = common.environment()
    data["toolchain"] = tools
    data["threshold"] = THRESHOLD
    data["recorded"] = {
        "by": "python benchmarks/report.py instructions --update",
        "git_commit": env["git_commit"],
        "time": env["time"],
        "cpu": env["cpu"],
        "valgrind": _first_line(["valgrind", "--version"]),
        "book_orders": BOOK_ORDERS,
        "ops": {op: OPS[op][0] for op in OPS},
    }
    ops = data.setdefault("backends", {}).setdefault(backend, {})
    for m in results:
        ops[m.op] = {"instructions": round(m.instructions, 1), "ops": m.ops, "trades": m.trades}
    data["backends"][backend] = {op: ops[op] for op in OPS if op in ops}
    path.write_text(json.dumps(data, indent=2) + "\n")


# -- the command -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The subcommand's options (``report.py instructions``)."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 if any op rose more than 3%% over the baseline")
    mode.add_argument("--update", action="store_true", help="re-record the baseline file (commit it with the reason)")
    parser.add_argument("--ops", help=f"comma-separated subset (default: all): {','.join(OPS)}")
    parser.add_argument("--backend", choices=("cython", "python"), default="cython")
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="default: benchmarks/instructions.json")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="ops measured at once (default: cores)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply each op's measured count (not with --update)"
    )
    parser.add_argument(
        "--allow-different-toolchain", action="store_true", help="compare even if Python/Cython/compiler/libc differ"
    )


def run(args: argparse.Namespace) -> int:
    """Measure, print the table, and check or update the baseline; the exit status."""
    import shutil
    import tempfile
    import time
    from concurrent.futures import ThreadPoolExecutor

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("report.py instructions: valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    ops = [op.strip() for op in args.ops.split(",")] if args.ops else available_ops()
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        print(f"unknown ops: {', '.join(unknown)}; known: {', '.join(OPS)}", file=sys.stderr)
        return 2
    if args.update and args.scale != 1.0:
        print("--update records at --scale 1 only", file=sys.stderr)
        return 2
    data = load_baseline(args.baseline)
    tools = toolchain(args.backend)
    differences = toolchain_differences(data.get("toolchain", {}), tools) if data.get("backends") else []
    if differences:
        banner = "!" * 72
        print(banner, file=sys.stderr)
        print("The baseline was recorded with another toolchain; its counts are not comparable:", file=sys.stderr)
        for line in differences:
            print("  " + line, file=sys.stderr)
        if args.update and args.ops:
            print("Re-record every op on this toolchain: --update without --ops.", file=sys.stderr)
            print(banner, file=sys.stderr)
            return 2
        if args.check and not args.allow_different_toolchain:
            print(
                "Re-record it on this toolchain (report.py instructions --update, commit with the reason),\n"
                "or compare anyway with --allow-different-toolchain.",
                file=sys.stderr,
            )
            print(banner, file=sys.stderr)
            return 1
        print(banner, file=sys.stderr)

    started = time.perf_counter()
    print(f"callgrind: {len(ops)} ops, {args.backend} backend, {args.jobs} at a time ...", file=sys.stderr, flush=True)

    def one(op: str) -> Measurement:
        m = measure_stable(op, data_path, backend=args.backend, valgrind=valgrind, scale=args.scale)
        print(f"  {op:<20} {m.instructions:>12,.1f}  ({m.ops} ops, {m.seconds:.1f} s)", file=sys.stderr, flush=True)
        return m

    with tempfile.TemporaryDirectory(prefix="tradebook-instructions-") as tmp:
        data_path = write_data(Path(tmp), args.backend, args.scale)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(one, ops))
    elapsed = time.perf_counter() - started

    old = baseline_counts(data, args.backend)
    if args.ops:
        old = {op: count for op, count in old.items() if op in ops}
    rows = compare(old, {m.op: m.instructions for m in results})
    print(
        f"\nInstructions per operation ({args.backend} backend, callgrind, {elapsed:.0f} s); baseline {args.baseline}"
    )
    print(render(rows))
    if args.update:
        write_baseline(args.baseline, data, args.backend, results, tools)
        print(f"\nwrote {args.baseline}: commit it with the reason for the change in the message")
        return 0
    if any(row.verdict == "fall" for row in rows):
        print("\nnote: some ops got cheaper by more than 3%: re-record the baseline (--update) to keep the gain")
    bad = failed(rows)
    if bad:
        print(
            f"\n{len(bad)} op(s) rose more than {THRESHOLD:.0%}: {', '.join(r.op for r in bad)}.\n"
            "If the rise is deliberate, re-record and commit the baseline with the reason in the message:\n"
            f"    python benchmarks/report.py instructions --update{' --backend python' if args.backend == 'python' else ''}\n"
            "    git commit -m '<why the count rose>' -- benchmarks/instructions.json"
        )
        return 1 if args.check else 0
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/instructions.py [options]``: the same as ``report.py instructions``; also the child."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        try:
            import tradebook  # noqa: F401
        except ImportError:  # a checkout without PYTHONPATH=src, as in common.py (not imported: it costs)
            sys.path.insert(0, str(HERE.parent / "src"))
        op, warm, count, measured, data_path = argv[1:6]
        child(op, int(warm), int(count), measured == "1", data_path)
        return 0  # pragma: no cover  (child() leaves with os._exit)
    import argparse

    parser = argparse.ArgumentParser(prog="instructions.py", description=(__doc__ or "").split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
