"""The WebSocket feed of a real ``tradebook serve`` process on a free loopback port, with a real client.

A subscriber sees a snapshot, then every update in seq order without a gap while orders are placed over
HTTP (and the book it rebuilds from them is the server's); a user never sees another's private updates; a
consumer that stops reading is resynced (or closed 4008) while the others go on unhindered.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from _http_support import SECRET

from tradebook.http import issue_token

S = "BTC/USDT"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "TRADEBOOK_AUTH_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "tradebook", "serve", "--database", "memory", "--port", "0"]
    for user in ("alice", "bob", "carol"):
        command += ["--account", f"{user}:USDT=100000000,BTC=100000"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            match = re.search(r"running on http://127\.0\.0\.1:(\d+)", log_path.read_text())
            if match:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield f"127.0.0.1:{match.group(1)}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
            process.kill()
            process.wait()


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(user, SECRET)}"}


async def recv(ws: Any, timeout: float = 10) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def subscribe_depth(ws: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"op": "subscribe", "channel": "depth", "symbol": S}))
    assert (await recv(ws))["type"] == "subscribed"
    snapshot = await recv(ws)
    assert snapshot["type"] == "snapshot"
    return snapshot


def book_of(snapshot: dict[str, Any]) -> dict[tuple[str, str], Decimal]:
    book = {("BUY", p): Decimal(q) for p, q, _ in snapshot["bids"]}
    book.update({("SELL", p): Decimal(q) for p, q, _ in snapshot["asks"]})
    return book


def rest_book(depth: dict[str, Any]) -> dict[tuple[str, str], Decimal]:
    book = {("BUY", level["price"]): Decimal(level["quantity"]) for level in depth["bids"]}
    book.update({("SELL", level["price"]): Decimal(level["quantity"]) for level in depth["asks"]})
    return book


def apply(book: dict[tuple[str, str], Decimal], update: dict[str, Any]) -> None:
    for delta in update["deltas"]:
        key = (delta["side"], delta["price"])
        if Decimal(delta["quantity"]):
            book[key] = Decimal(delta["quantity"])
        else:
            book.pop(key, None)


async def test_snapshot_then_gap_free_updates_privacy_and_a_slow_consumer(server: str) -> None:
    url = f"ws://{server}/api/v1/ws"
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=30) as http:
        # a book before anyone listens: it is in the snapshot
        # (300 asks far from the flow's prices: the L3 snapshot the slow consumer keeps asking for is large)
        async def seed(i: int) -> None:
            body = {"symbol": S, "side": "SELL", "quantity": "0.010", "price": f"{1000 + i}.00"}
            assert (await http.post("/api/v1/orders", json=body, headers=bearer("carol"))).status_code == 201

        for chunk in range(0, 300, 20):
            await asyncio.gather(*(seed(i) for i in range(chunk, chunk + 20)))

        # the slow consumer: a tiny receive buffer, and it reads nothing until the end
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        host, port = server.split(":")
        raw.connect((host, int(port)))
        raw.setblocking(False)
        async with (
            websockets.connect(url) as watcher,
            websockets.connect(f"{url}?token={issue_token('alice', SECRET)}") as alice,
            websockets.connect(f"{url}?token={issue_token('bob', SECRET)}") as bob,
            websockets.connect(url, sock=raw, max_queue=1) as slow,
        ):
            snapshot = await subscribe_depth(watcher)
            assert len(snapshot["asks"]) == 300
            for ws, user in ((alice, "alice"), (bob, "bob")):
                assert await recv(ws) == {"type": "authenticated", "user": user}
                await ws.send(json.dumps({"op": "subscribe", "channel": "private"}))
                assert (await recv(ws))["type"] == "subscribed"
            for channel in ("depth", "orders", "trades"):
                await slow.send(json.dumps({"op": "subscribe", "channel": channel, "symbol": S}))

            # placements over HTTP, several at a time, while the watcher reads
            placed: list[int] = []

            async def place(user: str, side: str, price: str) -> None:
                body = {"symbol": S, "side": side, "quantity": "0.001", "price": price}
                response = await http.post("/api/v1/orders", json=body, headers=bearer(user))
                assert response.status_code == 201, response.text
                if user == "alice":
                    placed.append(response.json()["id"])

            async def flow(n: int) -> None:
                for i in range(n):
                    await asyncio.gather(
                        place("alice", "BUY", f"{100 + i % 50}.00"),
                        place("bob", "SELL", f"{150 + i % 50}.00"),
                        place("carol", "BUY", f"{150 + i % 50}.00"),  # crosses bob's ask: trades
                    )

            async def drops() -> float:
                text = (await http.get("/metrics")).text
                found = re.search(r"^tradebook_ws_drops_total (\S+)$", text, re.M)
                return 0.0 if found is None else float(found.group(1))

            async def spam() -> tuple[bool, int | None]:
                """The slow consumer asks for the L3 snapshot (hundreds of orders) again and again without
                reading: the kernel's megabytes of loopback buffers fill fast."""
                while await drops() < 1:
                    try:
                        for _ in range(50):
                            await slow.send(json.dumps({"op": "unsubscribe", "channel": "orders", "symbol": S}))
                            await slow.send(json.dumps({"op": "subscribe", "channel": "orders", "symbol": S}))
                    except websockets.ConnectionClosed as closed:  # already closed as slow
                        return True, None if closed.rcvd is None else closed.rcvd.code
                    await asyncio.sleep(0.05)
                return False, None

            book, last = book_of(snapshot), snapshot["seq"]
            updates = 0
            private: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}

            async def read_private(ws: Any, user: str) -> None:
                async for text in ws:
                    private[user].append(json.loads(text))

            alice_reading = asyncio.ensure_future(read_private(alice, "alice"))
            bob_reading = asyncio.ensure_future(read_private(bob, "bob"))
            placing = asyncio.ensure_future(flow(200))
            spamming = asyncio.ensure_future(spam())
            while not placing.done() or updates < 1:
                try:
                    message = await recv(watcher, timeout=2)
                except TimeoutError:
                    continue
                if message["type"] != "update":
                    continue
                assert message["seq"] == last + 1, f"a gap: {last} then {message['seq']}"
                last = message["seq"]
                updates += 1
                apply(book, message)
            await placing
            depth = (
                await http.get("/api/v1/depth", params={"symbol": S, "limit": 1000}, headers=bearer("carol"))
            ).json()
            # what is still in flight arrives in order too; then the watcher's book is the server's
            deadline = time.monotonic() + 10
            while book != rest_book(depth) and time.monotonic() < deadline:
                message = await recv(watcher)
                if message["type"] == "update":
                    assert message["seq"] == last + 1
                    last = message["seq"]
                    apply(book, message)
            assert book == rest_book(depth)
            assert updates > 500

            # privacy: alice saw her own orders (and trades) only; bob never saw one of alice's
            await asyncio.sleep(0.5)  # the last private messages arrive
            for task in (alice_reading, bob_reading):
                task.cancel()
            alice_ids = {m["order"]["id"] for m in private["alice"] if m["type"] == "order"}
            assert alice_ids == set(placed)
            bob_ids = {m["order"]["id"] for m in private["bob"] if m["type"] == "order"}
            assert all(m["trade"]["side"] == "SELL" for m in private["bob"] if m["type"] == "trade")
            assert bob_ids and not bob_ids & alice_ids

            closed_slow, close_code = await asyncio.wait_for(spamming, 120)
            assert await drops() >= 1

            # the slow consumer: resynced (a snapshot with "resync": true), or closed as slow (4008; a client
            # this far behind may lose the close frame with the data the server dropped when it hung up)
            resynced = False
            try:
                while not closed_slow:
                    message = await recv(slow, timeout=5)
                    if message.get("resync"):
                        resynced = True
                        break
            except websockets.ConnectionClosed as closed:
                close_code = None if closed.rcvd is None else closed.rcvd.code
                closed_slow = True
            if closed_slow:
                assert close_code in (None, 4008)
            assert resynced or closed_slow
        metrics = (await http.get("/metrics")).text
        dropped = re.search(r"^tradebook_ws_drops_total (\S+)$", metrics, re.M)
        assert dropped is not None and float(dropped.group(1)) >= 1
        if closed_slow:
            assert re.search(r"^tradebook_ws_closed_slow_total 1\.0$", metrics, re.M)
