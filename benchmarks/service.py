"""End-to-end placement throughput and latency through OrderService, per store.

Concurrent clients (coroutines) place a seeded mix of resting and crossing limit
orders on several symbols; every placement goes the whole way: validation,
idempotency lookup, pending row, reservation, matching, one transaction of
order updates, trades and wallet operations, and settlement. Reported: orders
per second over the whole run, and p50 / p99 latency of one placement as its
client sees it.

    python benchmarks/report.py service                    # memory and sqlite
    python benchmarks/report.py service --stores memory,sqlite,postgres \\
        --dsn postgresql://postgres@127.0.0.1:5432/test

Targets on the reference machine (2 cores): memory >= 20,000 orders/s,
SQLite >= 3,000/s, PostgreSQL >= 2,000/s, p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import tradebook
from tradebook import Instrument
from tradebook.oms import MemoryOrderRepository, MemoryWallet, OrderService

TARGETS = {"memory": 20_000, "sqlite": 3_000, "postgres": 2_000}
P99_TARGET_MS = 20.0


def make_instruments(count: int) -> list[Instrument]:
    return [Instrument(f"S{i}/USD", "0.01", "0.001") for i in range(count)]


def make_flow(n: int, instruments: list[Instrument], users: int, seed: int) -> list[tuple[Any, ...]]:
    """``n`` placements: 70% resting limits a few ticks off the mid, 30% crossing ones."""
    rng = random.Random(seed)
    flow = []
    for i in range(n):
        inst = rng.choice(instruments)
        side = rng.choice(("BUY", "SELL"))
        cross = rng.random() < 0.3
        offset = rng.randint(1, 20) * (1 if cross else -1)  # toward the other side when crossing
        ticks = 10_000 + offset if side == "BUY" else 10_000 - offset
        price = Decimal(ticks).scaleb(-2)
        quantity = Decimal(rng.randint(1, 2_000)).scaleb(-3)
        flow.append((f"user{i % users}", inst.symbol, side, quantity, price, f"c{i}"))
    return flow


async def open_store(kind: str, args: argparse.Namespace, workdir: Path) -> tuple[Any, Any, Any]:
    if kind == "memory":
        return MemoryOrderRepository(), MemoryWallet(), None
    if kind == "sqlite":
        from tradebook.oms.sqlite import SQLiteOrderRepository, SQLiteWallet

        path = str(workdir / f"bench-{uuid.uuid4().hex[:8]}.db")
        return await SQLiteOrderRepository.open(path), await SQLiteWallet.open(path), None
    if kind == "postgres":
        from tradebook.oms.postgres import PostgresOrderRepository, PostgresWallet

        if not args.dsn:
            raise SystemExit("--dsn (or TRADEBOOK_TEST_POSTGRES_DSN) is needed for the postgres store")
        schema = f"tbbench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        repo = await PostgresOrderRepository.open(args.dsn, schema=schema, max_size=args.pool)
        wallet = await PostgresWallet.open(args.dsn, schema=schema, max_size=args.pool)
        return repo, wallet, schema
    raise SystemExit(f"unknown store {kind!r}")


async def drop_schema(dsn: str, schema: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def run_store(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    instruments = make_instruments(args.symbols)
    n = args.orders or {"memory": 40_000, "sqlite": 8_000, "postgres": 6_000}[kind]
    flow = make_flow(n, instruments, args.users, args.seed)
    repo, wallet, schema = await open_store(kind, args, workdir)
    try:
        for u in range(args.users):
            await wallet.deposit(f"user{u}", "USD", Decimal(10) ** 12)
            for inst in instruments:
                await wallet.deposit(f"user{u}", inst.base, Decimal(10) ** 9)
        service = OrderService(repo, wallet, instruments)
        await service.start()
        latencies: list[float] = []
        position = 0

        async def client() -> None:
            nonlocal position
            clock = time.perf_counter
            while position < len(flow):
                user, symbol, side, quantity, price, coid = flow[position]
                position += 1
                started = clock()
                await service.place(user, symbol, side, quantity, price, client_order_id=coid)
                latencies.append(clock() - started)

        warm = min(len(flow) // 10, 500)  # warm the caches and the JIT-free paths
        flow, measured = flow[:warm], flow
        await asyncio.gather(*(client() for _ in range(args.clients)))
        flow, position, latencies = measured[warm:], 0, []
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.clients)))
        elapsed = time.perf_counter() - began
        await service.close()
        trades = 0
        for inst in instruments:
            page = await repo.list_trades(symbol=inst.symbol, limit=1)
            trades += page.items[0].id if page.items else 0
    finally:
        await repo.close()
        await wallet.close()
        if schema:
            await drop_schema(args.dsn, schema)
    latencies.sort()
    return {
        "store": kind,
        "orders": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
    }


def run(args: argparse.Namespace) -> int:
    """``report.py service``: one run per store, a table of throughput, latency and verdicts."""
    print(
        f"tradebook {tradebook.__version__} ({tradebook.BACKEND}), Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores; {args.clients} clients, {args.symbols} symbols, "
        f"{args.users} users, 70% resting / 30% crossing limit orders"
    )
    print(f"{'store':<10} {'orders':>8} {'orders/s':>10} {'target':>8} {'p50 ms':>8} {'p99 ms':>8}  verdict")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            r = asyncio.run(run_store(kind.strip(), args, Path(tmp)))
            ok = r["per_second"] >= TARGETS[r["store"]] and r["p99_ms"] < P99_TARGET_MS
            failed |= not ok
            print(
                f"{r['store']:<10} {r['orders']:>8} {r['per_second']:>10,.0f} {TARGETS[r['store']]:>8,} "
                f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}  {'PASS' if ok else 'FAIL'}"
            )
    return 0
