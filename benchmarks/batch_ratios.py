"""Throughput of ``MatchingEngine.execute_batch`` on the engine benchmark streams.

Usage: ``python benchmarks/batch_ratios.py [--batches N]``. The same mixed-flow
and matching-heavy streams as ``engine_ratios.py`` (engine_workload.py), turned
into batch rows ``(op, id, side, ticks, lots)`` once, untimed; every batch call
is timed whole (GC on) and its results are checked against the single-call
reference numbers (trade counts and the book's size). Reports commands/s and
marketable orders/s with their trades materialised as ``Trade`` objects.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import workloads as wl
from tradebook import BatchOp, TimeInForce


def mixed_rows(commands: list[tuple]) -> array:  # type: ignore[type-arg]
    flat: list[int] = []
    for kind, oid, side, ticks, lots, tif in commands:
        if kind == wl.NEW:
            op = BatchOp.IOC if tif is TimeInForce.IOC else BatchOp.LIMIT
            flat += (op, oid, side == "SELL" or getattr(side, "value", side) == "SELL", ticks, lots)
        elif kind == wl.CANCEL:
            flat += (BatchOp.CANCEL, oid, 0, 0, 0)
        else:
            flat += (BatchOp.AMEND, oid, 0, ticks or 0, lots or 0)
    return array("q", flat)


def taker_rows(takers: list[tuple]) -> array:  # type: ignore[type-arg]
    flat: list[int] = []
    for oid, side, ticks, lots, tif in takers:
        op = BatchOp.IOC if tif is TimeInForce.IOC else BatchOp.LIMIT
        flat += (op, oid, getattr(side, "value", side) == "SELL", ticks, lots)
    return array("q", flat)


def refill_rows(refills: list[tuple]) -> array:  # type: ignore[type-arg]
    return array(
        "q",
        [
            v
            for oid, side, ticks, lots in refills
            for v in (BatchOp.LIMIT, oid, getattr(side, "value", side) == "SELL", ticks, lots)
        ],
    )


def fresh_engine(module, orders):  # type: ignore[no-untyped-def]
    engine = module.MatchingEngine([wl.instrument()])
    engine.execute_batch(
        array(
            "q",
            [
                v
                for oid, side, ticks, lots in orders
                for v in (0, oid, getattr(side, "value", side) == "SELL", ticks, lots)
            ],
        )
    )
    return engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--backend", choices=["cython", "python"], default="cython")
    args = parser.parse_args()
    module = __import__("tradebook._engine" if args.backend == "cython" else "tradebook._engine_py", fromlist=["x"])

    mixed = wl.mixed_stream(n_batches=args.batches)
    engine = fresh_engine(module, mixed.orders)
    per_cmd = []
    for batch in mixed.batches:
        rows = mixed_rows(batch.commands)
        gc.collect()
        t0 = time.perf_counter_ns()
        result = engine.execute_batch(rows)
        per_cmd.append((time.perf_counter_ns() - t0) / batch.n_commands)
        assert len(result.trades) == batch.n_trades, (len(result.trades), batch.n_trades)
        assert len(engine.book()) == batch.orders_after
    engine.book()._check()
    mixed_ns = statistics.median(per_cmd[1:] or per_cmd)

    heavy = wl.matching_stream(n_batches=max(2, args.batches // 2))
    engine = fresh_engine(module, heavy.orders)
    per_taker = []
    for batch in heavy.batches:
        chunks = [(taker_rows(t), refill_rows(r), len(t)) for t, r in batch.commands]
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
        print(f"  target mixed >= 2,500,000/s: {'PASS' if 1e9 / mixed_ns >= 2.5e6 else 'FAIL'}")
        print(f"  target marketable >= 1,600,000/s: {'PASS' if 1e9 / taker_ns >= 1.6e6 else 'FAIL'}")


if __name__ == "__main__":
    main()
