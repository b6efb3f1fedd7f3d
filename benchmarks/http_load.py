"""Load benchmark of the HTTP API: a real ``tradebook serve`` on loopback, concurrent keep-alive clients.

The script starts the server itself (a subprocess on a free loopback port, a
fresh SQLite file by default), funds one account per client, and sends a
bounded number of requests: a seeded mix of placements (70% resting limit
orders a few ticks off the mid, 30% crossing ones) and cancels of the client's
own resting orders. Each client keeps one HTTP/1.1 connection alive. It prints
placements per second over the measured run and p50/p99 latency per request
kind as the client sees it, then stops the server with SIGTERM.

The clients speak HTTP/1.1 over raw asyncio streams (uvloop when installed):
an ``httpx`` client costs several times more CPU per request, and on a 2-core
machine the load generator shares the CPUs with the server. ``--client httpx``
measures with httpx instead; ``--processes`` spreads the clients over several
processes.

    python benchmarks/report.py http                       # 20,000 requests, SQLite
    python benchmarks/report.py http --requests 5000 --database memory
    python benchmarks/report.py http --database postgresql://postgres@127.0.0.1:5432/test

(``python benchmarks/http_load.py [options]`` still works: it runs ``report.py http``.)

Target on the reference machine (2 cores), SQLite: at least 1,500 placements/s with p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import re
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_PER_SECOND = 1_500
TARGET_P99_MS = 50.0
SYMBOLS = ("S0/USD", "S1/USD", "S2/USD", "S3/USD")
MID_TICKS = 10_000


# --------------------------------------------------------------------------- the server


def start_server(args: argparse.Namespace, workdir: Path, users: list[str], env: dict[str, str]) -> tuple[Any, int]:
    """Start ``tradebook serve`` on a free loopback port; return the process and the port."""
    config = {
        "instruments": [{"symbol": s, "tick_size": "0.01", "lot_size": "0.001"} for s in SYMBOLS],
        "accounts": [
            {"user": u, "balances": {"USD": "1000000000000", **{s.split("/")[0]: "1000000000" for s in SYMBOLS}}}
            for u in users
        ],
    }
    config_path = workdir / "bench.json"
    config_path.write_text(json.dumps(config))
    database = args.database or str(workdir / "bench.db")
    args.schema = None
    command = [
        sys.executable, "-m", "tradebook", "serve", "--config", str(config_path), "--database", database,
        "--port", "0", "--log-level", "info",
    ]  # fmt: skip
    if database.startswith("postgres"):
        args.schema = f"tbhttp_{os.getpid()}_{secrets.token_hex(4)}"  # dropped by drop_schema() afterwards
        command += ["--schema", args.schema]
    if not args.access_log:
        command.append("--no-access-log")
    if args.no_metrics:
        command.append("--no-metrics")
    log_path = workdir / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()  # the server has its own descriptor
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(rb"running on http://127\.0\.0\.1:(\d+)", log_path.read_bytes())
        if match:
            return process, int(match.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the server did not start:\n{log_path.read_text()}")


def drop_schema(dsn: str, schema: str) -> None:
    """Drop the PostgreSQL schema a run made."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def stop_server(process: Any) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- a minimal keep-alive client


class RawConnection:
    """HTTP/1.1 over one asyncio stream: write a request, read the status, headers and body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, token: str) -> None:
        self.reader, self.writer = reader, writer
        self.head = f"Host: {host}\r\nAuthorization: Bearer {token}\r\n".encode()

    @classmethod
    async def open(cls, host: str, port: int, token: str) -> RawConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, f"{host}:{port}", token)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if body is None:
            self.writer.write(f"{method} {path} HTTP/1.1\r\n".encode() + self.head + b"\r\n")
        else:
            self.writer.write(
                f"{method} {path} HTTP/1.1\r\n".encode()
                + self.head
                + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        length = int(match.group(1)) if match else 0
        return status, await self.reader.readexactly(length) if length else b""

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


class HttpxConnection:
    """The same calls through an ``httpx.AsyncClient`` (keep-alive, one connection)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    async def open(cls, host: str, port: int, token: str) -> HttpxConnection:
        import httpx

        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        headers = {"Authorization": f"Bearer {token}"}
        return cls(httpx.AsyncClient(base_url=f"http://{host}:{port}", headers=headers, limits=limits))

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else None
        response = await self.client.request(method, path, content=body, headers=headers)
        return response.status_code, response.content

    async def close(self) -> None:
        await self.client.aclose()


# --------------------------------------------------------------------------- the workload


async def run_clients(
    port: int, tokens: list[str], requests: int, warmup: int, cancel_share: float, seed: int, kind: str
) -> dict[str, Any]:
    """Drive ``len(tokens)`` clients; return raw latencies and the measured window."""
    opener = RawConnection if kind == "raw" else HttpxConnection
    connections = [await opener.open("127.0.0.1", port, token) for token in tokens]
    latencies: dict[str, list[float]] = {"place": [], "cancel": []}
    statuses: dict[str, int] = {}
    budget = {"left": warmup + requests}
    window: dict[str, float] = {}

    async def client(index: int, conn: Any) -> None:
        rng = random.Random(seed * 1_000 + index)
        resting: list[int] = []
        clock = time.perf_counter
        while budget["left"] > 0:
            budget["left"] -= 1
            measuring = budget["left"] < requests
            if measuring and "start" not in window:
                window["start"] = clock()
            if resting and rng.random() < cancel_share:
                order_id = resting.pop(rng.randrange(len(resting)))
                started = clock()
                status, _ = await conn.request("DELETE", f"/api/v1/orders/{order_id}")
                kind_ = "cancel"
            else:
                side = rng.choice(("BUY", "SELL"))
                cross = rng.random() < 0.3
                offset = rng.randint(1, 20) * (1 if cross else -1)
                ticks = MID_TICKS + offset if side == "BUY" else MID_TICKS - offset
                body = (
                    f'{{"symbol":"{rng.choice(SYMBOLS)}","side":"{side}","quantity":"{rng.randint(1, 2000) / 1000:.3f}",'
                    f'"price":"{ticks // 100}.{ticks % 100:02d}"}}'
                ).encode()
                started = clock()
                status, payload = await conn.request("POST", "/api/v1/orders", body)
                kind_ = "place"
                if status == 201:
                    order = json.loads(payload)
                    if order["status"] in ("OPEN", "PARTIALLY_FILLED"):
                        resting.append(order["id"])
            elapsed = clock() - started
            key = f"{kind_} {status}"
            statuses[key] = statuses.get(key, 0) + 1
            if measuring:
                latencies[kind_].append(elapsed)
        window["end"] = clock()

    await asyncio.gather(*(client(i, c) for i, c in enumerate(connections)))
    for conn in connections:
        await conn.close()
    return {"latencies": latencies, "start": window["start"], "end": window["end"], "statuses": statuses}


def _process_main(payload: dict[str, Any]) -> dict[str, Any]:
    _use_uvloop()
    return asyncio.run(run_clients(**payload))


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def run(args: argparse.Namespace) -> int:
    """``report.py http``: start the server, drive the clients, print throughput, latency and the verdict."""
    if args.processes < 1 or args.clients < args.processes:
        raise SystemExit("need at least one client per process")

    users = [f"bench{i}" for i in range(args.clients)]
    env = dict(os.environ, TRADEBOOK_AUTH_SECRET=secrets.token_urlsafe(32))
    from tradebook import BACKEND, __version__
    from tradebook.http.auth import issue_token

    tokens = [issue_token(u, env["TRADEBOOK_AUTH_SECRET"], ttl=3600) for u in users]
    print(
        f"tradebook {__version__} ({BACKEND}), Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"{args.requests:,} requests ({1 - args.cancel_share:.0%} placements, {args.cancel_share:.0%} cancels) "
        f"from {args.clients} keep-alive clients in {args.processes} process(es), {args.client} client, "
        f"database {args.database or 'sqlite (fresh file)'}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        process, port = start_server(args, Path(tmp), users, env)
        try:
            per_process = [tokens[i :: args.processes] for i in range(args.processes)]
            payloads = [
                {
                    "port": port,
                    "tokens": chunk,
                    "requests": args.requests // args.processes,
                    "warmup": args.warmup // args.processes,
                    "cancel_share": args.cancel_share,
                    "seed": args.seed + i,
                    "kind": args.client,
                }
                for i, chunk in enumerate(per_process)
            ]
            if args.processes == 1:
                results = [_process_main(payloads[0])]
            else:
                with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
                    results = pool.map(_process_main, payloads)
        finally:
            stop_server(process)
            if args.schema:
                drop_schema(args.database, args.schema)
        server_exit = process.returncode
    usage_self = resource.getrusage(resource.RUSAGE_SELF)
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the server (and client processes)
    place = sorted(x for r in results for x in r["latencies"]["place"])
    cancel = sorted(x for r in results for x in r["latencies"]["cancel"])
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        for key, count in r["statuses"].items():
            statuses[key] = statuses.get(key, 0) + count
    placements_per_second = len(place) / elapsed
    p99 = percentile(place, 0.99) * 1e3
    print(
        f"measured: {len(place) + len(cancel):,} requests in {elapsed:.2f} s = {(len(place) + len(cancel)) / elapsed:,.0f} requests/s"
    )
    print(f"{'kind':<8} {'count':>7} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in (("place", place), ("cancel", cancel)):
        if values:
            print(
                f"{name:<8} {len(values):>7,} {len(values) / elapsed:>8,.0f} {statistics.median(values) * 1e3:>8.2f} "
                f"{percentile(values, 0.99) * 1e3:>8.2f} {values[-1] * 1e3:>8.2f}"
            )
    print(
        f"CPU seconds over the whole run (incl. start-up and warm-up): this process (clients) "
        f"{usage_self.ru_utime + usage_self.ru_stime:.1f}, child processes (server"
        f"{' and clients' if args.processes > 1 else ''}) {usage_children.ru_utime + usage_children.ru_stime:.1f}"
    )
    print("responses (incl. warm-up): " + ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items())))
    ok = placements_per_second >= TARGET_PER_SECOND and p99 < TARGET_P99_MS
    sqlite = not args.database or not (args.database == "memory" or args.database.startswith("postgres"))
    verdict = ("PASS" if ok else "FAIL") if sqlite else "the target is for SQLite"
    print(
        f"placements/s {placements_per_second:,.0f} (target {TARGET_PER_SECOND:,}), p99 {p99:.2f} ms "
        f"(target < {TARGET_P99_MS:.0f} ms): {verdict}; server exit status {server_exit}"
    )
    return 0


if __name__ == "__main__":  # the old command line, kept: python benchmarks/http_load.py [options]
    import report

    sys.exit(report.main(["http", *sys.argv[1:]]))
