"""tradebook side by side with the other Python order books: one seeded workload, one run, one machine.

Usage::

    python benchmarks/report.py compare                 # full run: rewrites docs/performance.md's tables and the plots
    python benchmarks/report.py compare --quick --no-write   # tiny sizes, seconds: a smoke test (what CI runs)
    python benchmarks/report.py compare --only nanobook,order-book --no-scaling --no-write

(``python benchmarks/compare.py [options]`` still works: it runs ``report.py compare``.)

The workload is ``workloads.compare_data()``: the engine streams' book (the book workload's 200,000 limit
orders on BTC/USDT (tick 0.01, lot 0.001, about 2,000 price levels a side,
clustered near the top, log-normal sizes), moved 64 ticks out, plus a thin front
of 1-3 orders on each of the 64 ticks nearest the mid: 200,209 resting orders.
Every contestant gets exactly that book and then the same operations with the
same data (``peers/`` says which calls each library makes; ``peers/base.py`` times them):

* add: 10,000 new non-crossing limit orders from the book's own price distribution;
* cancel: 10,000 random resting orders (a different shuffled slice each batch);
* top: the best bid and ask prices, read 10,000 times;
* depth: the best ten levels of both sides, read 1,000 times;
* update + top (books): 2,000 adds, each followed by reading the best bid and ask;
* match (engines): ``workloads.matching_stream``'s 4,000 marketable orders
  a batch, each sweeping 1-5 levels of the thin front and filling completely, in
  chunks of 16 timed on their own, the refills between chunks untimed.

Method: each contestant runs in its own fresh process (no other library is
imported there, and none leaves garbage behind for another's collector),
builds the book untimed, runs ``gc.collect()``, then per operation one untimed
warm-up batch and ``--repeats`` timed batches (``time.perf_counter_ns``); the
figure is the median batch's time divided by its operations, the Python ``for``
loop that drives the calls included (the same loop for every library). GC stays
on. Between batches the book is put back untimed (adds removed, cancelled
orders added again), so every batch sees a book of the same size. After timing,
each operation's book is checked against the reference model (best ten levels
a side; for matching also the number of trades), so a fast wrong answer fails.

The scaling run measures tradebook's raw API on both backends as the book grows
from 1,000 to 1,000,000 resting orders (same generator, more orders).

Output: a markdown report on stdout; unless ``--no-write`` (or ``--quick``), the
generated part of ``docs/performance.md`` (between its ``compare:begin`` and
``compare:end`` markers), ``docs/assets/compare.json`` and the PNG plots in
``docs/assets/``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import workloads as wl
from common import ROOT, log
from common import environment as base_environment
from common import loadavg as base_loadavg
from peers import TABLE_BOOK, TABLE_ENGINE, dist_version, make

HERE = ROOT / "benchmarks"
PAGE = ROOT / "docs" / "performance.md"
ASSETS = ROOT / "docs" / "assets"
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"
BASELINE = "tradebook-cython-raw"
TIMES = "\u00d7"  # the multiplication sign, for ratios

OPS = {
    TABLE_BOOK: ("add", "cancel", "top", "depth", "update_top"),
    TABLE_ENGINE: ("add", "cancel", "top", "depth", "match"),
}
OP_LABELS = {
    "add": "add",
    "cancel": "cancel",
    "top": "best bid + ask",
    "depth": "depth(10)",
    "update_top": "add + best bid/ask",
    "match": "match (1-5 levels)",
}
ORDER = {  # row order of the tables
    TABLE_BOOK: [
        "tradebook-cython-raw",
        "tradebook-cython-decimal",
        "tradebook-python-raw",
        "tradebook-python-decimal",
        "sortedcontainers",
        "order-book",
        "nautilus-trader",
    ],
    TABLE_ENGINE: [
        "tradebook-cython-raw",
        "tradebook-cython-decimal",
        "tradebook-python-raw",
        "tradebook-python-decimal",
        "sortedcontainers",
        "lightmatchingengine",
        "nanobook",
        "pyorderbook",
        "matching-engine",
    ],
}
SCALING_OPS = ("add", "cancel", "top", "depth", "match")


@dataclass
class Config:
    n_deep: int
    repeats: int
    warmup: int
    batch: dict[str, int]
    takers: int  # marketable orders per matching batch
    scaling_sizes: list[int]
    scaling_repeats: int
    rounds: int = 1  # the comparison tables are run this many times over; each cell is the median round
    timeout: int = 1800
    extra: dict[str, Any] = field(default_factory=dict)


FULL = Config(
    n_deep=wl.N_ORDERS,
    repeats=7,
    warmup=1,
    batch={"add": 10_000, "cancel": 10_000, "top": 10_000, "depth": 1_000, "update_top": 2_000},
    takers=wl.MATCHING_BATCH,
    scaling_sizes=[1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000],
    scaling_repeats=7,
    rounds=3,
)
QUICK = Config(
    n_deep=2_000,
    repeats=3,
    warmup=1,
    batch={"add": 300, "cancel": 300, "top": 1_000, "depth": 200, "update_top": 200},
    takers=160,
    scaling_sizes=[1_000, 10_000],
    scaling_repeats=3,
    timeout=300,
)


# == measuring (in the worker process) ============================================================


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one contestant (or one scaling point) in this process; the parent reads the returned dict."""
    cfg = Config(**spec["config"])
    if gc.isenabled() is False:
        gc.enable()
    if spec["kind"] == "scaling":
        return scaling_worker(spec, cfg)
    c = make(spec["table"], spec["key"])
    out: dict[str, Any] = {
        "table": c.table,
        "key": c.key,
        "label": c.label,
        "version": c.version(),
        "api": c.api,
    }
    reason = c.unavailable()
    if reason is not None:
        out["status"] = reason
        return out
    with open(spec["data"], "rb") as fh:
        data: wl.CompareData = pickle.load(fh)
    gc.collect()
    started = time.perf_counter()
    out["results"] = c.run(data, cfg.batch, cfg.warmup, cfg.repeats, OPS[c.table])
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["status"] = "ran"
    return out


def scaling_worker(spec: dict[str, Any], cfg: Config) -> dict[str, Any]:
    with open(spec["data"], "rb") as fh:
        data: wl.CompareData = pickle.load(fh)
    backend = spec["backend"]
    results: dict[str, Any] = {}
    book = make(TABLE_BOOK, f"tradebook-{backend}-raw")
    engine = make(TABLE_ENGINE, f"tradebook-{backend}-raw")
    reason = book.unavailable() or engine.unavailable()
    if reason is not None:
        return {"backend": backend, "size": len(data.orders), "status": reason}
    results.update(book.run(data, cfg.batch, cfg.warmup, cfg.repeats, ("add", "cancel", "top", "depth")))
    book.build([])  # free the big book before the next is built
    results.update(engine.run(data, cfg.batch, cfg.warmup, cfg.repeats, ("match",)))
    return {"backend": backend, "size": len(data.orders), "status": "ran", "results": results}


# == orchestration (in the parent) =======================================================================


def spawn(spec: dict[str, Any], timeout: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as fh:
        out_path = fh.name
    spec = {**spec, "out": out_path}
    cmd = [sys.executable, str(HERE / "report.py"), "compare", "--worker", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return {"status": f"failed: the worker exited {done.returncode}: {' | '.join(tail)}"[:400]}
        return json.loads(Path(out_path).read_text())
    except subprocess.TimeoutExpired:
        return {"status": f"failed: did not finish in {timeout} s"}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(out_path)


def environment() -> dict[str, Any]:
    """The page's record of the machine and versions (``common.environment()`` plus every contestant's version)."""
    env = base_environment()
    packages = {"tradebook": env["tradebook_version"]}
    for dist in (
        "sortedcontainers",
        "order-book",
        "nautilus_trader",
        "lightmatchingengine",
        "nanobook",
        "matching-engine",
        "pyorderbook",
        "Cython",
        "matplotlib",
    ):
        packages[dist.replace("_", "-")] = dist_version(dist) or "not installed"
    return {
        "cpu": env["cpu"],
        "cpu_count": env["cpu_count"],
        "python": f"{env['implementation']} {env['python']}",
        "platform": env["platform"],
        "tradebook_backend": env["tradebook_backend"],
        "git_commit": env["git_commit"],
        "packages": packages,
        "gc": {"enabled": True, "threshold": list(env["gc_threshold"])},
        "time": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def loadavg() -> float | None:
    load = base_loadavg()
    return None if load is None else load[0]


def merge_rounds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from several rounds: per operation the median of the rounds' medians (all batches kept)."""
    row = dict(runs[0])
    if len(runs) == 1 or row.get("status") != "ran":
        return row
    merged: dict[str, Any] = {}
    for op in row.get("results") or {}:
        results = [r["results"].get(op) for r in runs if r.get("status") == "ran"]
        errors = [r for r in results if r is None or "error" in r]
        if errors:
            merged[op] = errors[0] or {"error": "missing in a round"}
            continue
        merged[op] = {
            **results[0],
            "median_ns": statistics.median(r["median_ns"] for r in results),
            "round_medians_ns": [round(r["median_ns"], 1) for r in results],
            "min_ns": min(r["min_ns"] for r in results),
            "max_ns": max(r["max_ns"] for r in results),
            "batches_ns": [x for r in results for x in r["batches_ns"]],
        }
    row["results"] = merged
    row["rounds"] = len(runs)
    return row


def run_all(args: argparse.Namespace, cfg: Config, tmp: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"environment": environment(), "load_start": loadavg()}
    started = time.perf_counter()
    only = {k.strip() for k in args.only.split(",")} if args.only else None
    spec_cfg = {k: v for k, v in vars(cfg).items()}

    tables: dict[str, list[dict[str, Any]]] = {TABLE_BOOK: [], TABLE_ENGINE: []}
    if not args.no_peers:
        match_batches = cfg.warmup + cfg.repeats
        n_adds = cfg.batch["add"] * (cfg.warmup + cfg.repeats)
        log(f"workload: {cfg.n_deep:,}-order deep book + thin front, {n_adds:,} adds, {match_batches} matching batches")
        data = wl.compare_data(cfg.n_deep, n_adds, match_batches, cfg.takers)
        report["workload"] = {
            "resting_orders": len(data.orders),
            "levels": [len(side) for side in wl.level_totals(data.orders)],
            "seed": wl.SEED,
            "matching_seed": data.stream.seed if data.stream else None,
            "trades_per_match": data.stream.summary()["trades_per_taker"] if data.stream else None,
        }
        path = tmp / "data.pkl"
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
        del data
        rounds: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for n in range(cfg.rounds):  # whole rounds, so a burst of load on the machine hits every library alike
            for table in (TABLE_BOOK, TABLE_ENGINE):
                for key in ORDER[table]:
                    if only is not None and key not in only and key != BASELINE:
                        continue
                    if n and rounds[table, key][0].get("status") != "ran":
                        continue  # not installed, not supported: once is enough
                    t0 = time.perf_counter()
                    spec = {"kind": "contestant", "table": table, "key": key, "data": str(path), "config": spec_cfg}
                    row = spawn(spec, cfg.timeout)
                    if "key" not in row:  # the worker itself failed: keep the row, say why
                        c = make(table, key)
                        row = {
                            "table": table,
                            "key": key,
                            "label": c.label,
                            "version": c.version(),
                            "api": c.api,
                            **row,
                        }
                    rounds.setdefault((table, key), []).append(row)
                    log(
                        f"[{n + 1}/{cfg.rounds}] {table:>6} {row['label']:<30} {row['status']:<8} "
                        f"({time.perf_counter() - t0:.0f} s)  "
                        + ", ".join(f"{op} {fmt_cell(r)}" for op, r in (row.get("results") or {}).items())
                    )
        for (table, _key), runs in rounds.items():
            tables[table].append(merge_rounds(runs))
    report["tables"] = tables

    scaling: list[dict[str, Any]] = []
    if not args.no_scaling:
        points = []
        for size in cfg.scaling_sizes:
            adds_batch = min(10_000, max(100, size // 10))
            repeats = max(cfg.scaling_repeats, min(41, 40_000 // adds_batch))
            point_cfg = {
                **spec_cfg,
                "repeats": repeats,
                "batch": {
                    "add": adds_batch,
                    "cancel": adds_batch,
                    "top": cfg.batch["top"],
                    "depth": cfg.batch["depth"],
                    "update_top": adds_batch,
                },
            }
            match_batches = cfg.warmup + cfg.scaling_repeats
            log(f"scaling: generating the {size:,}-order book ...")
            data = wl.compare_data(size, adds_batch * (cfg.warmup + repeats), match_batches, cfg.takers)
            path = tmp / f"scaling-{size}.pkl"
            with open(path, "wb") as fh:
                pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
            del data
            points.append((size, path, point_cfg))
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for n in range(cfg.rounds):
            for size, path, point_cfg in points:
                for backend in ("cython", "python"):
                    spec = {"kind": "scaling", "backend": backend, "data": str(path), "config": point_cfg}
                    row = spawn(spec, cfg.timeout)
                    row.setdefault("backend", backend)
                    row.setdefault("size", size)
                    runs.setdefault((backend, size), []).append(row)
                    shown = ", ".join(f"{op} {fmt_cell(r)}" for op, r in (row.get("results") or {}).items())
                    log(f"[{n + 1}/{cfg.rounds}] scaling {backend:>6} {row['size']:>9,}: {row['status']}  {shown}")
        scaling = [merge_rounds(rows) for rows in runs.values()]
    report["scaling"] = scaling
    report["method"] = {
        "repeats": cfg.repeats,
        "warmup": cfg.warmup,
        "batch": cfg.batch,
        "takers_per_batch": cfg.takers,
        "scaling_sizes": cfg.scaling_sizes,
        "timer": "time.perf_counter_ns",
        "gc": "on while timing; gc.collect() after each book is built",
        "isolation": "one fresh process per contestant and per scaling point",
        "rounds": cfg.rounds,
        "quick": args.quick,
    }
    report["load_end"] = loadavg()
    report["seconds"] = round(time.perf_counter() - started)
    return report


# == rendering ==============================================================================================


def fmt_ns(ns: float) -> str:
    if ns >= 1_000_000:
        return f"{ns / 1e6:,.2f} ms"
    if ns >= 10_000:
        return f"{ns / 1000:,.1f} µs"
    if ns >= 1_000:
        return f"{ns / 1000:,.2f} µs"
    return f"{ns:,.0f} ns"


def fmt_cell(res: dict[str, Any] | None) -> str:
    if res is None:
        return "-"
    if "error" in res:
        return f"FAILED ({res['error'][:80]})"
    return fmt_ns(res["median_ns"])


def ratio_of(row: dict[str, Any], base: dict[str, Any] | None, op: str) -> float | None:
    mine = (row.get("results") or {}).get(op)
    ref = ((base or {}).get("results") or {}).get(op)
    if not mine or not ref or "error" in mine or "error" in ref:
        return None
    return float(mine["median_ns"] / ref["median_ns"])


def cell(row: dict[str, Any], base: dict[str, Any] | None, op: str) -> str:
    if row.get("status") != "ran":
        return "—"
    if row["api"].get(op) is None:
        return "no API"
    res = row["results"].get(op)
    if res is None:
        return "—"
    if "error" in res:
        return "failed"
    ratio = ratio_of(row, base, op)
    shown = fmt_ns(res["median_ns"])
    if ratio is None or row["key"] == BASELINE:
        return f"**{shown}**" if row["key"] == BASELINE else shown
    return f"{shown} ({ratio:.2g}{TIMES})" if ratio < 10 else f"{shown} ({ratio:,.0f}{TIMES})"


def status_text(row: dict[str, Any]) -> str:
    status = row.get("status", "?")
    if status == "ran":
        errors = [op for op, r in (row.get("results") or {}).items() if "error" in r]
        return "ran" if not errors else f"ran; failed: {', '.join(errors)}"
    return status


def name_of(row: dict[str, Any]) -> str:
    version = row.get("version")
    if row["key"].startswith("tradebook"):
        return row["label"]
    return f"{row['label']} {version}" if version else row["label"]


def render_table(rows: list[dict[str, Any]], table: str) -> list[str]:
    """The table, then a line per library that did not run or failed somewhere (a status column
    of long reasons would crush the table on the page)."""
    ops = OPS[table]
    base = next((r for r in rows if r["key"] == BASELINE and r.get("status") == "ran"), None)
    out = [
        "| library | " + " | ".join(OP_LABELS[op] for op in ops) + " |",
        "|---|" + "---:|" * len(ops),
    ]
    notes = []
    for row in rows:
        status = status_text(row)
        if status != "ran":
            notes.append(f"- {name_of(row)}: {status}.")
        out.append(f"| {name_of(row)} | " + " | ".join(cell(row, base, op) for op in ops) + " |")
    if notes:
        out += ["", "Did not run, or failed somewhere:", "", *notes]
    return out


def behind(report: dict[str, Any]) -> list[str]:
    """Every (peer, operation) where a peer is faster than tradebook's compiled raw API."""
    lines = []
    for table, rows in report["tables"].items():
        base = next((r for r in rows if r["key"] == BASELINE and r.get("status") == "ran"), None)
        for row in rows:
            if row["key"].startswith("tradebook") or row.get("status") != "ran":
                continue
            for op in OPS[table]:
                ratio = ratio_of(row, base, op)
                if ratio is not None and ratio < 1.0:
                    mine = row["results"][op]["median_ns"]
                    ref = base["results"][op]["median_ns"]  # type: ignore[index]
                    lines.append(
                        f"- {table} table, **{OP_LABELS[op]}**: {name_of(row)} takes {fmt_ns(mine)}, "
                        f"tradebook compiled raw {fmt_ns(ref)}: tradebook is {1 / ratio:.2f}{TIMES} slower there "
                        f"(ratio {ratio:.2f})."
                    )
    return lines


def render(report: dict[str, Any], plots: dict[str, str]) -> str:
    env = report["environment"]
    method = report["method"]
    out: list[str] = []
    w = report.get("workload")
    out.append(
        f"_Generated by `python benchmarks/report.py compare{' --quick' if method['quick'] else ''}` on {env['time']} "
        f"in {report['seconds']} s; do not edit by hand._"
    )
    out.append("")
    if w:
        out.append(
            f"Book: {w['resting_orders']:,} resting orders, {w['levels'][0]:,} bid and {w['levels'][1]:,} ask levels "
            f"(seed {w['seed']}); matching: {w['trades_per_match']:.2f} trades per marketable order. "
            "Each cell is the median time per operation, then (in brackets) that time divided by tradebook's "
            "compiled raw API's (above 1: tradebook is faster)."
        )
        out.append("")
        for table, title in ((TABLE_BOOK, "Order books (no matching)"), (TABLE_ENGINE, "Matching engines")):
            out.append(f"### {title}")
            out.append("")
            out.extend(render_table(report["tables"][table], table))
            out.append("")
            if table in plots:
                out.append(f"![{title}: time per operation]({plots[table]})")
                out.append("")
        out.append("### Where tradebook is not ahead")
        out.append("")
        lines = behind(report)
        out.extend(
            lines
            or [
                "Nowhere in this run: tradebook's compiled raw API is faster than every peer on every operation "
                "the peer supports."
            ]
        )
        out.append("")
    if report["scaling"]:
        out.append("### Scaling: cost per operation as the book grows")
        out.append("")
        sizes = sorted({r["size"] for r in report["scaling"]})
        out.append("| resting orders | " + " | ".join(f"{s:,}" for s in sizes) + " |")
        out.append("|---|" + "---:|" * len(sizes) + "")
        for backend in ("cython", "python"):
            for op in SCALING_OPS:
                cells = []
                for size in sizes:
                    row = next((r for r in report["scaling"] if r["backend"] == backend and r["size"] == size), None)
                    res = (row or {}).get("results", {}).get(op) if row else None
                    cells.append(
                        fmt_cell(res) if row and row.get("status") == "ran" else (row or {}).get("status", "-")
                    )
                name = "compiled" if backend == "cython" else "pure"
                out.append(f"| {name}: {OP_LABELS[op]} | " + " | ".join(cells) + " |")
        out.append("")
        if "scaling" in plots:
            out.append(f"![Cost per operation against book size, both backends]({plots['scaling']})")
            out.append("")
    out.append("### Machine, versions, method")
    out.append("")
    load = [x for x in (report.get("load_start"), report.get("load_end")) if x is not None]
    out.append(
        f"- Machine: {env['cpu']}, {env['cpu_count']} logical CPUs (shared with other work; load average "
        + " -> ".join(f"{x:.2f}" for x in load)
        + f" at the start and end), {env['platform']}."
    )
    out.append(f"- Python: {env['python']}; tradebook commit {env['git_commit']}.")
    out.append("- Packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()) + ".")
    out.append(
        f"- Method: {method['isolation']}; each book built untimed, then `gc.collect()`; GC stays on while timing "
        f"(threshold {tuple(env['gc']['threshold'])}). Per operation one untimed warm-up batch, then "
        f"{method['repeats']} timed batches ({method['timer']}); a round's figure is the median batch's time per "
        f"operation, the Python loop included, and the tables run {method.get('rounds', 1)} whole round(s), "
        "each cell showing the median round. Batch sizes: "
        + ", ".join(f"{OP_LABELS[k]} {v:,}" for k, v in method["batch"].items())
        + f", match {method['takers_per_batch']:,} marketable orders (chunks of 16 timed, refills untimed). "
        "The book is put back between batches and checked against a reference model afterwards."
    )
    out.append("")
    # A list, not a table: six columns of code do not fit the page's column.
    for table, title in ((TABLE_BOOK, "order books"), (TABLE_ENGINE, "matching engines")):
        ops = OPS[table]
        out.append(f'??? note "Calls timed, per library: {title}"')
        out.append("")
        out.append("    tradebook's pure backend makes the same calls as its compiled one.")
        out.append("")
        for row in report["tables"].get(table, []):
            if row["key"].startswith("tradebook-python") or not row.get("api") or not any(row["api"].values()):
                continue
            out.append(f"    - **{name_of(row)}**")
            for op in ops:
                call = row["api"].get(op)
                out.append(f"        - {OP_LABELS[op]}: " + (f"`{call}`" if call else "no API"))
        out.append("")
    return "\n".join(out) + "\n"


# == plots ==============================================================================================

COLORS = {
    "tradebook-cython-raw": "#1f5fbf",
    "tradebook-cython-decimal": "#6b9be0",
    "tradebook-python-raw": "#3a9a5b",
    "tradebook-python-decimal": "#8fd19e",
    "sortedcontainers": "#888888",
    "order-book": "#d9822b",
    "nautilus-trader": "#b23a48",
    "lightmatchingengine": "#7a4fbf",
    "nanobook": "#c2a400",
    "pyorderbook": "#2b9fb0",
    "matching-engine": "#444444",
}


# The page's text column is about 690 CSS px wide (mkdocs-material at 1280 px). Figures are drawn
# that wide in inches at 100 "px" per inch and saved at twice that, so the browser halves them and
# a font of N points shows as about 1.4 N px: 10 pt labels are 14 px on the page.
PAGE_COLUMN_PX = 690
FIG_WIDTH_IN = PAGE_COLUMN_PX / 100
SAVE_DPI = 200
FONT_PT = 10  # tick labels, value labels, legends
TITLE_PT = 11


def _log_axis(axis: Any) -> None:
    """Decades only, labelled as times (10 ns, 1 µs, ...)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_ns(v).replace(".00", "").replace(".0 ", " ")))
    axis.set_minor_formatter(NullFormatter())


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table_figure(report: dict[str, Any], table: str) -> Any:
    """One panel per operation, stacked: each a bar per library on its own log scale (None: nothing ran)."""
    plt = _pyplot()
    rows = [r for r in report["tables"][table] if r.get("status") == "ran"]
    if not rows:
        return None
    ops = OPS[table]
    panel_in = 0.26 * len(rows) + 0.75
    fig, axes = plt.subplots(len(ops), 1, figsize=(FIG_WIDTH_IN, panel_in * len(ops) + 0.5), squeeze=False)
    names = [name_of(row) for row in rows]
    for ax, op in zip(axes[:, 0], ops, strict=True):
        values, colors, missing = [], [], []
        for row in rows:
            res = row["results"].get(op)
            ok = res is not None and "error" not in res
            values.append(res["median_ns"] if ok else math.nan)  # type: ignore[index]
            colors.append(COLORS.get(row["key"], "#999999"))
            missing.append("no API" if row["api"].get(op) is None else "failed")
        y = list(range(len(rows)))
        ax.barh(y, [v if not math.isnan(v) else 0 for v in values], color=colors, height=0.7)
        ax.set_xscale("log")
        ax.set_title(OP_LABELS[op], fontsize=TITLE_PT, loc="left", fontweight="bold")
        ax.set_yticks(y)
        ax.set_yticklabels(names, fontsize=FONT_PT)
        ax.invert_yaxis()
        finite = [v for v in values if not math.isnan(v)]
        if finite:
            ax.set_xlim(min(finite) / 2, max(finite) * 6)
        for yi, v, gap in zip(y, values, missing, strict=True):
            ax.text(
                v * 1.08 if not math.isnan(v) else ax.get_xlim()[0] * 1.1,
                yi,
                fmt_ns(v) if not math.isnan(v) else gap,
                va="center",
                fontsize=FONT_PT,
            )
        _log_axis(ax.xaxis)
        ax.tick_params(axis="x", labelsize=FONT_PT)
        ax.grid(axis="x", which="major", alpha=0.3)
    fig.supxlabel("time per operation, median (log scale; shorter is faster)", fontsize=FONT_PT)
    fig.tight_layout(h_pad=1.2)
    return fig


def scaling_figure(report: dict[str, Any]) -> Any:
    """Two panels, compiled above pure Python: a line per operation, time against book size."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter

    rows = [r for r in report["scaling"] if r.get("status") == "ran"]
    if not rows:
        return None
    fig, axes = plt.subplots(2, 1, figsize=(FIG_WIDTH_IN, 7.4), sharex=True, squeeze=False)
    op_colors = dict(zip(SCALING_OPS, ("#1f5fbf", "#d9822b", "#3a9a5b", "#b23a48", "#7a4fbf"), strict=False))
    for ax, backend in zip(axes[:, 0], ("cython", "python"), strict=True):
        for op in SCALING_OPS:
            pts = sorted(
                (r["size"], r["results"][op]["median_ns"])
                for r in rows
                if r["backend"] == backend and op in r["results"] and "error" not in r["results"][op]
            )
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    "-o",
                    color=op_colors[op],
                    label=OP_LABELS[op],
                    markersize=4,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axis(ax.yaxis)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v < 1e6 else f"{v / 1e6:g}M"))
        ax.set_title(
            "compiled core" if backend == "cython" else "pure Python", fontsize=TITLE_PT, loc="left", fontweight="bold"
        )
        ax.set_ylabel("time per operation", fontsize=FONT_PT)
        ax.tick_params(labelsize=FONT_PT)
        ax.grid(which="major", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=FONT_PT, ncol=3, loc="upper center", frameon=False)
    axes[1, 0].set_xlabel("resting orders in the book (log scale)", fontsize=FONT_PT)
    fig.tight_layout(rect=(0, 0, 1, 0.93), h_pad=1.5)
    return fig


def _save(fig: Any, path: Path) -> bool:
    if fig is None:
        return False
    fig.savefig(path, dpi=SAVE_DPI)
    _pyplot().close(fig)
    return True


def plot_table(report: dict[str, Any], table: str, path: Path) -> bool:
    return _save(table_figure(report, table), path)


def plot_scaling(report: dict[str, Any], path: Path) -> bool:
    return _save(scaling_figure(report), path)


def write_outputs(report: dict[str, Any]) -> str:
    ASSETS.mkdir(parents=True, exist_ok=True)
    plots: dict[str, str] = {}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log("matplotlib is not installed: no plots (pip install -e '.[bench]')")
    else:
        for table in (TABLE_BOOK, TABLE_ENGINE):
            if report.get("workload") and plot_table(report, table, ASSETS / f"compare-{table}.png"):
                plots[table] = f"assets/compare-{table}.png"
        if plot_scaling(report, ASSETS / "scaling.png"):
            plots["scaling"] = "assets/scaling.png"
    text = render(report, plots)
    page = PAGE.read_text()
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{PAGE} has no {BEGIN} ... {END} markers")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    PAGE.write_text(f"{head}{BEGIN}\n\n{text}\n{END}{tail}")
    (ASSETS / "compare.json").write_text(json.dumps(report, indent=1) + "\n")
    return text


# == the command ===============================================================================================


def run(args: argparse.Namespace) -> int:
    """``report.py compare``: measure (or ``--render`` a saved report), print the markdown, write the page."""
    if args.worker:
        spec = json.loads(args.worker)
        result = worker(spec)
        Path(spec["out"]).write_text(json.dumps(result))
        return 0

    if args.render:
        print(write_outputs(json.loads(Path(args.render).read_text())))
        return 0
    cfg = QUICK if args.quick else FULL
    if args.repeats:
        cfg.repeats = cfg.scaling_repeats = args.repeats
    if args.rounds:
        cfg.rounds = args.rounds
    write = args.write or not (args.no_write or args.quick)
    if not gc.isenabled():
        gc.enable()
    load = loadavg()
    if load is not None and load > 1.0:
        log(f"note: load average {load:.2f}: other work is running; figures will be noisy")
    with tempfile.TemporaryDirectory(prefix="tradebook-compare-") as tmp:
        report = run_all(args, cfg, Path(tmp))
    text = write_outputs(report) if write else render(report, {})
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    failed = [
        f"{row['key']} {op}"
        for rows in report["tables"].values()
        for row in rows
        if row["key"].startswith("tradebook")
        for op, res in (row.get("results") or {}).items()
        if "error" in res
    ]
    failed += [f"scaling {r['backend']} {r['size']}" for r in report["scaling"] if r.get("status") != "ran"]
    if failed:
        log("tradebook failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":  # the old command line, kept: python benchmarks/compare.py [options]
    import report

    sys.exit(report.main(["compare", *sys.argv[1:]]))
