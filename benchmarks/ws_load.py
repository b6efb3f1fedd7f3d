"""WebSocket load: many subscribers to one symbol's feed while HTTP placements run (``report.py ws``).

The script starts a real ``tradebook serve`` (memory store by default) on a
free loopback port, as ``report.py http`` does, and alternates phases of
``--duration`` seconds on the same server: placements with **no** subscriber,
and placements with ``--subscribers`` WebSocket connections (default 200) each
subscribed to one symbol's ``trades`` and ``depth`` channels. The phases run
ABBA (``--rounds 2``: none, subs, subs, none), so a book that grows over the
run favours neither side. Each phase's placements come from ``--clients``
keep-alive HTTP clients (default 32, as ``report.py http``), the same mix: 80%
placements (70% resting limit orders a few ticks off the mid, 30% crossing),
20% cancels of the client's own resting orders, all on the subscribed symbol,
so every placement and cancel is an update every subscriber must receive.

The subscribers run in a process of their own (asyncio, uvloop when
installed, the ``websockets`` client), so their CPU does not slow the HTTP
clients' event loop; on a 2-core machine all three processes share the cores.

**Delivery check.** Each subscriber checks its own stream: a ``depth``
snapshot, then updates with ``seq`` exactly one more each time; ``trades``
messages in increasing ``seq``; no ``resync``, no close from the server.
After the phase it must have every update up to the last one published, and
its ``trades`` seqs must be exactly the updates that had a trade (an
``EXECUTE`` on the reference connection below).

**Delivery latency.** The ``time`` field of an update is the engine's clock
(milliseconds, brought forward only when a command needs it), so it cannot
time delivery. Instead one extra *reference* connection subscribes to the
symbol's L3 ``orders`` channel, whose events carry order ids: an update with
an ``ADD`` of an order this run placed was caused by that placement, one with
a ``DELETE`` of an order it cancelled by that cancel. The latency of such an
update at a subscriber is its receive time there minus the time the HTTP
client *sent* the placement or cancel (one monotonic clock,
``CLOCK_MONOTONIC``, shared by every process on the machine): the whole way,
HTTP request, matching, fan-out to every connection and the client's receive.
Updates from crossing orders that filled completely name only the makers and
are not timed (the report gives the share of updates that were); they are
still checked for gaps and order.

    python benchmarks/report.py ws                          # 200 subscribers, 4 phases of 4 s, memory store
    python benchmarks/report.py ws --subscribers 50 --duration 2 --rounds 1

Targets (issue 14): placements/s with the subscribers within 10% of the figure
without (ratio >= 0.90), and p99 delivery under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import resource
import secrets
import statistics
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any

from http_load import RawConnection, _use_uvloop, drop_schema, percentile, start_server, stop_server

TARGET_RATIO = 0.90
TARGET_P99_MS = 50.0
MID_TICKS = 10_000
SYMBOL = "S0/USD"  # one of http_load.SYMBOLS: the server's config comes from there


def now() -> float:
    """The clock every process of the run shares."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# --------------------------------------------------------------------------- HTTP placements


async def drive_placements(
    port: int, tokens: list[str], duration: float, warmup: float, cancel_share: float, seed: int
) -> dict[str, Any]:
    """Place and cancel on ``SYMBOL`` for ``warmup + duration`` seconds; count what completed in the window."""
    connections = [await RawConnection.open("127.0.0.1", port, token) for token in tokens]
    start = now() + warmup
    end = start + duration
    sent: dict[str, dict[int, float]] = {"place": {}, "cancel": {}}  # accepted command -> its send time
    latencies: list[float] = []
    done = {"place": 0, "cancel": 0}
    statuses: dict[str, int] = {}

    async def client(index: int, conn: RawConnection) -> None:
        rng = random.Random(seed * 1_000 + index)
        resting: list[int] = []
        while (started := now()) < end:
            if resting and rng.random() < cancel_share:
                order_id = resting.pop(rng.randrange(len(resting)))
                status, _ = await conn.request("DELETE", f"/api/v1/orders/{order_id}")
                kind = "cancel"
                if status == 200:
                    sent[kind][order_id] = started
            else:
                side = rng.choice(("BUY", "SELL"))
                offset = rng.randint(1, 20) * (1 if rng.random() < 0.3 else -1)  # > 0: crossing
                ticks = MID_TICKS + offset if side == "BUY" else MID_TICKS - offset
                body = (
                    f'{{"symbol":"{SYMBOL}","side":"{side}","quantity":"{rng.randint(1, 2000) / 1000:.3f}",'
                    f'"price":"{ticks // 100}.{ticks % 100:02d}"}}'
                ).encode()
                status, payload = await conn.request("POST", "/api/v1/orders", body)
                kind = "place"
                if status == 201:
                    order = json.loads(payload)
                    sent[kind][order["id"]] = started
                    if order["status"] in ("OPEN", "PARTIALLY_FILLED"):
                        resting.append(order["id"])
            finished = now()
            key = f"{kind} {status}"
            statuses[key] = statuses.get(key, 0) + 1
            if start <= finished <= end:
                done[kind] += 1
                if kind == "place":
                    latencies.append(finished - started)

    await asyncio.gather(*(client(i, c) for i, c in enumerate(connections)))
    for conn in connections:
        await conn.close()
    return {
        "start": start,
        "duration": duration,
        "done": done,
        "latencies": latencies,
        "sent": sent,
        "statuses": statuses,
    }


# --------------------------------------------------------------------------- subscribers (their own process)


class Subscriber:
    """One WebSocket connection: subscribes, checks ``seq`` as it receives, keeps each update's receive time."""

    def __init__(self, channels: tuple[str, ...], reference: bool = False) -> None:
        self.channels = channels
        self.main = channels[-1]  # the channel with a snapshot and every update: depth (orders for the reference)
        self.reference = reference
        self.snapshot_seq: int | None = None
        self.last = -1
        self.received = array("d")  # receive time of update snapshot_seq + 1 + i
        self.trade_seqs = array("q")
        self.events: list[tuple[int, list[int], list[int], bool]] = []  # reference: seq, ADD ids, DELETE ids, EXECUTE?
        self.errors: list[str] = []
        self.ready = asyncio.Event()
        self.ws: Any = None
        self.closing = False

    def error(self, text: str) -> None:
        self.errors.append(text)
        self.ready.set()  # never leave the start waiting on a broken connection

    async def run(self, url: str, compression: str | None, loads: Any) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        try:
            async with connect(url, compression=compression, ping_interval=None, max_size=None) as ws:
                self.ws = ws
                for channel in self.channels:  # trades first: it then starts no later than depth's snapshot
                    await ws.send(json.dumps({"op": "subscribe", "channel": channel, "symbol": SYMBOL}))
                async for text in ws:
                    received = now()
                    message = loads(text)
                    kind, channel = message["type"], message.get("channel")
                    if message.get("resync"):
                        self.error(f"resync on {channel} at seq {message.get('seq')}")
                    elif channel == self.main and kind == "update":
                        seq = message["seq"]
                        if seq != self.last + 1:
                            self.error(f"{channel}: seq {seq} after {self.last}")
                        self.last = seq
                        self.received.append(received)
                        if self.reference:
                            adds, deletes, executed = [], [], False
                            for event in message["events"]:
                                if event["kind"] == "ADD":
                                    adds.append(event["order_id"])
                                elif event["kind"] == "DELETE":
                                    deletes.append(event["order_id"])
                                elif event["kind"] == "EXECUTE":
                                    executed = True
                            self.events.append((seq, adds, deletes, executed))
                    elif channel == "trades" and kind == "trades":
                        seq = message["seq"]
                        if self.trade_seqs and seq <= self.trade_seqs[-1]:
                            self.error(f"trades: seq {seq} after {self.trade_seqs[-1]}")
                        self.trade_seqs.append(seq)
                    elif channel == self.main and kind == "snapshot":
                        if self.snapshot_seq is not None:
                            self.error(f"a second {channel} snapshot at seq {message['seq']}")
                        self.snapshot_seq = self.last = message["seq"]
                        self.ready.set()
                    elif kind not in ("subscribed", "heartbeat"):
                        self.error(f"unexpected message {text[:200]!r}")
        except ConnectionClosed as exc:
            if not self.closing:
                self.error(f"closed by the server: {exc}")
        except OSError as exc:
            self.error(f"connection failed: {exc}")
        if not self.closing and not self.errors:
            self.error("the connection ended early")

    def result(self) -> dict[str, Any]:
        return {
            "snapshot_seq": self.snapshot_seq,
            "last": self.last,
            "received": self.received.tobytes(),
            "trade_seqs": self.trade_seqs.tobytes(),
            "errors": self.errors,
        }


async def _subscribers(port: int, count: int, compression: str | None, pipe: Any, drain_timeout: float) -> None:
    try:
        import orjson

        loads: Any = orjson.loads
    except ImportError:  # pragma: no cover - orjson comes with the server extra
        loads = json.loads
    url = f"ws://127.0.0.1:{port}/api/v1/ws"
    reference = Subscriber(("orders",), reference=True)
    subscribers = [Subscriber(("trades", "depth")) for _ in range(count)]
    everyone = [reference, *subscribers]
    tasks = []
    for batch in range(0, len(everyone), 50):  # connect in batches: the server's accept backlog is finite
        chunk = everyone[batch : batch + 50]
        tasks += [asyncio.ensure_future(s.run(url, compression, loads)) for s in chunk]
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in chunk)), 60)
    pipe.send("ready")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)  # "stop": the placements are over
    # drain: every subscriber has the reference's last update, and nothing new came for a while
    deadline = now() + drain_timeout
    quiet_since, last_seen = now(), reference.last
    while now() < deadline:
        await asyncio.sleep(0.05)
        if reference.last != last_seen:
            quiet_since, last_seen = now(), reference.last
        elif now() - quiet_since > 0.3 and all(s.last >= last_seen or s.errors for s in subscribers):
            break
    for s in everyone:
        s.closing = True
    await asyncio.gather(*(s.ws.close() for s in everyone if s.ws is not None), return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    pipe.send(
        {
            "reference": {**reference.result(), "events": reference.events},
            "subscribers": [s.result() for s in subscribers],
            "cpu": usage.ru_utime + usage.ru_stime,
        }
    )


def subscriber_main(port: int, count: int, compression: str | None, pipe: Any, drain_timeout: float) -> None:
    """The subscriber process: connect, say "ready", receive until "stop", drain, send back what was received."""
    _use_uvloop()
    asyncio.run(_subscribers(port, count, compression, pipe, drain_timeout))


# --------------------------------------------------------------------------- one phase, and the checks


def check_and_time(feed: dict[str, Any], placed: dict[str, Any]) -> dict[str, Any]:
    """Check every subscriber's stream against the reference; the delivery latencies of the attributable updates."""
    ref = feed["reference"]
    errors: list[str] = [f"reference: {e}" for e in ref["errors"]]
    final = ref["last"]
    first_of_phase = ref["snapshot_seq"]
    executed = [seq for seq, _, _, traded in ref["events"] if traded]
    # cause of each update: the send time of the placement it ADDs, or of the cancel it DELETEs
    cause: dict[int, float] = {}
    window_start = placed["start"]
    for seq, adds, deletes, _ in ref["events"]:
        sent_at = next((placed["sent"]["place"][i] for i in adds if i in placed["sent"]["place"]), None)
        if sent_at is None:
            sent_at = next((placed["sent"]["cancel"][i] for i in deletes if i in placed["sent"]["cancel"]), None)
        if sent_at is not None and sent_at >= window_start:
            cause[seq] = sent_at
    latencies: list[float] = []
    delivered = 0
    for n, sub in enumerate(feed["subscribers"]):
        errors += [f"subscriber {n}: {e}" for e in sub["errors"]]
        snap = sub["snapshot_seq"]
        if snap is None:
            errors.append(f"subscriber {n}: no snapshot")
            continue
        if snap > first_of_phase:
            errors.append(f"subscriber {n}: its snapshot (seq {snap}) is past the phase's start ({first_of_phase})")
        if sub["last"] != final:
            errors.append(f"subscriber {n}: last update {sub['last']}, the feed's last is {final}")
        trades = array("q")
        trades.frombytes(sub["trade_seqs"])
        expected = [seq for seq in executed if seq > snap]
        if list(trades) != expected:
            missing = sorted(set(expected) - set(trades))[:5]
            extra = sorted(set(trades) - set(expected))[:5]
            errors.append(
                f"subscriber {n}: trades differ from the updates with trades: missing {missing}, extra {extra}"
            )
        received = array("d")
        received.frombytes(sub["received"])
        delivered += len(received) + len(trades)
        for seq, sent_at in cause.items():
            index = seq - snap - 1
            if 0 <= index < len(received):
                latencies.append(received[index] - sent_at)
    updates = final - first_of_phase
    return {
        "errors": errors,
        "updates": updates,
        "trade_updates": len(executed),
        "timed_share": len(cause) / updates if updates else 0.0,
        "delivered": delivered,
        "delivery": sorted(latencies),
        "client_cpu": feed["cpu"],
    }


def run_phase(args: argparse.Namespace, port: int, tokens: list[str], subscribers: int, seed: int) -> dict[str, Any]:
    """One phase: (the subscribers connect,) the placements run, (the subscribers drain and report)."""
    process = pipe = None
    if subscribers:
        context = multiprocessing.get_context("spawn")
        pipe, child = context.Pipe()
        compression = "deflate" if args.compression else None
        process = context.Process(
            target=subscriber_main, args=(port, subscribers, compression, child, args.drain_timeout), daemon=True
        )
        process.start()
        if not pipe.poll(120):
            process.kill()
            raise SystemExit("the subscribers did not connect within 120 s")
        assert pipe.recv() == "ready"
    try:
        placed = asyncio.run(drive_placements(port, tokens, args.duration, args.warmup, args.cancel_share, seed))
        result: dict[str, Any] = {"subscribers": subscribers, **placed}
        if pipe is not None and process is not None:
            pipe.send("stop")
            if not pipe.poll(args.drain_timeout + 60):
                raise SystemExit("the subscribers did not report back")
            result.update(check_and_time(pipe.recv(), placed))
    finally:
        if process is not None:
            process.join(30)
            if process.is_alive():
                process.kill()
    result["per_second"] = result["done"]["place"] / args.duration
    return result


def phase_order(rounds: int) -> list[bool]:
    """ABBA...: False is a phase without subscribers, True one with them."""
    order: list[bool] = []
    for r in range(rounds):
        order += [False, True] if r % 2 == 0 else [True, False]
    return order


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, run the phases, stop it; every phase's figures and the totals."""
    users = [f"bench{i}" for i in range(args.clients)]
    env = dict(os.environ, TRADEBOOK_AUTH_SECRET=secrets.token_urlsafe(32))
    from tradebook.http.auth import issue_token

    tokens = [issue_token(u, env["TRADEBOOK_AUTH_SECRET"], ttl=3600) for u in users]
    args.access_log, args.no_metrics = False, False  # what start_server reads: as `report.py http` by default
    database = args.database
    args.database = "" if database == "sqlite" else database
    phases = []
    with tempfile.TemporaryDirectory() as tmp:
        process, port = start_server(args, Path(tmp), users, env)
        try:
            for i, with_subscribers in enumerate(phase_order(args.rounds)):
                phases.append(run_phase(args, port, tokens, args.subscribers if with_subscribers else 0, args.seed + i))
        finally:
            stop_server(process)
            if args.schema:
                drop_schema(database, args.schema)
            args.database = database
    server_cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    with_subs = [p for p in phases if p["subscribers"]]
    without = [p for p in phases if not p["subscribers"]]
    rate_with = statistics.mean(p["per_second"] for p in with_subs)
    rate_without = statistics.mean(p["per_second"] for p in without)
    latencies = sorted(x for p in with_subs for x in p["delivery"])
    return {
        "phases": phases,
        "rate_with": rate_with,
        "rate_without": rate_without,
        "ratio": rate_with / rate_without if rate_without else float("nan"),
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "max_ms": latencies[-1] * 1e3 if latencies else float("nan"),
        "samples": len(latencies),
        "errors": [e for p in with_subs for e in p["errors"]],
        "server_exit": process.returncode,
        "children_cpu": server_cpu.ru_utime + server_cpu.ru_stime,
    }


def run(args: argparse.Namespace) -> int:
    """``report.py ws``: the phases' table, the delivery check and the two targets; 1 if any update went missing."""
    from tradebook import BACKEND, __version__

    load = os.getloadavg()
    print(
        f"tradebook {__version__} ({BACKEND}), Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; database {args.database}; "
        f"{args.clients} HTTP clients ({1 - args.cancel_share:.0%} placements, {args.cancel_share:.0%} cancels, "
        f"all on {SYMBOL}); {args.subscribers} subscribers to its trades and depth "
        f"({'permessage-deflate' if args.compression else 'no compression'}); phases of {args.warmup:g} s warm-up "
        f"+ {args.duration:g} s, {'/'.join('subs' if s else 'none' for s in phase_order(args.rounds))}"
    )
    report = measure(args)
    print(
        f"{'phase':<6} {'subs':>5} {'place/s':>8} {'place p50':>9} {'p99 ms':>7} {'updates':>8} {'timed':>6} "
        f"{'messages':>9} {'deliv p50':>9} {'p99 ms':>7} {'max ms':>7} {'sub CPU s':>9} {'errors':>6}"
    )
    for i, p in enumerate(report["phases"]):
        lat = sorted(p["latencies"])
        line = (
            f"{i + 1:<6} {p['subscribers']:>5} {p['per_second']:>8,.0f} {statistics.median(lat) * 1e3 if lat else 0:>9.2f} "
            f"{percentile(lat, 0.99) * 1e3 if lat else 0:>7.2f}"
        )
        if p["subscribers"]:
            d = p["delivery"]
            line += (
                f" {p['updates']:>8,} {p['timed_share']:>6.0%} {p['delivered']:>9,} {percentile(d, 0.5) * 1e3:>9.2f} "
                f"{percentile(d, 0.99) * 1e3:>7.2f} {d[-1] * 1e3 if d else float('nan'):>7.2f} "
                f"{p['client_cpu']:>9.1f} {len(p['errors']):>6}"
            )
        print(line)
    for error in report["errors"][:20]:
        print(f"  {error}")
    if len(report["errors"]) > 20:
        print(f"  ... and {len(report['errors']) - 20} more")
    delivery_ok = not report["errors"]
    ratio_ok = report["ratio"] >= TARGET_RATIO
    p99_ok = report["p99_ms"] < TARGET_P99_MS
    print(
        f"delivery: {'every subscriber got every update, in order, no gap' if delivery_ok else 'FAILED'} "
        f"({report['samples']:,} timed deliveries)"
    )
    print(
        f"placements/s: {report['rate_without']:,.0f} without subscribers, {report['rate_with']:,.0f} with "
        f"{args.subscribers}: ratio {report['ratio']:.2f} (target >= {TARGET_RATIO:.2f}): {'PASS' if ratio_ok else 'FAIL'}"
    )
    print(
        f"delivery latency (HTTP send to subscriber receive): p50 {report['p50_ms']:.2f} ms, p99 {report['p99_ms']:.2f} ms, "
        f"max {report['max_ms']:.2f} ms (target p99 < {TARGET_P99_MS:.0f} ms): {'PASS' if p99_ok else 'FAIL'}"
    )
    print(
        f"CPU seconds of the server and subscriber processes: {report['children_cpu']:.1f}; server exit status {report['server_exit']}"
    )
    return 0 if delivery_ok else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``report.py ws``'s options."""
    parser.add_argument("--subscribers", type=int, default=200, help="WebSocket subscribers (default: 200)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive HTTP clients (default: 32)")
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per phase (default: 4)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds at each phase's start")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of phases, ABBA order (default: 2)")
    parser.add_argument("--cancel-share", type=float, default=0.2, help="share of cancels (default: 0.2)")
    parser.add_argument("--database", default="memory", help="memory (default), sqlite or postgresql://...")
    parser.add_argument("--compression", action="store_true", help="offer permessage-deflate, as browsers do")
    parser.add_argument(
        "--drain-timeout", type=float, default=20.0, help="seconds the subscribers may take to catch up"
    )
    parser.add_argument("--seed", type=int, default=7)
