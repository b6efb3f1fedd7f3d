"""The WebSocket feed /api/v1/ws through starlette's TestClient: channels, auth, limits, resync, close codes."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from _http_support import INSTRUMENTS, SECRET
from starlette.websockets import WebSocketDisconnect

with warnings.catch_warnings():
    # this starlette would rather drive its TestClient with httpx2; the httpx it has works for these tests
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tradebook.http import TokenAuthenticator, create_app
from tradebook.http.metrics import PrometheusMetrics
from tradebook.http.websocket import MAX_SUBSCRIPTIONS, websocket_routes
from tradebook.oms import MemoryOrderRepository, MemoryWallet, OrderService

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

S = "BTC/USDT"
AUTH = TokenAuthenticator(SECRET)


def make_client(**options: Any) -> TestClient:
    @asynccontextmanager
    async def open_service() -> AsyncIterator[OrderService]:
        wallet = MemoryWallet()
        for user in ("alice", "bob", "carol"):
            await wallet.deposit(user, "USDT", Decimal(1_000_000))
            await wallet.deposit(user, "BTC", Decimal(100))
        async with OrderService(MemoryOrderRepository(), wallet, INSTRUMENTS, expiry_interval=None) as service:
            yield service

    metrics = PrometheusMetrics()
    app = create_app(open_service=open_service, authenticator=AUTH, metrics=metrics, web_page=False, **options)
    client = TestClient(app)
    client.metrics = metrics  # type: ignore[attr-defined]
    return client


@pytest.fixture
def client() -> Iterator[TestClient]:
    with make_client() as c:
        yield c


def token(user: str) -> str:
    return AUTH.issue(user, ttl=3600)


def place(client: TestClient, user: str, side: str, quantity: str, price: str) -> dict[str, Any]:
    body = {"symbol": S, "side": side, "quantity": quantity, "price": price}
    response = client.post("/api/v1/orders", json=body, headers={"Authorization": f"Bearer {token(user)}"})
    assert response.status_code == 201, response.text
    return response.json()


def until(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = ws.receive_json()
        if message["type"] == kind:
            return message


def test_depth_orders_and_trades_snapshot_then_updates_in_seq_order(client: TestClient) -> None:
    place(client, "alice", "SELL", "1.000", "101.00")
    with client.websocket_connect("/api/v1/ws") as ws:
        for channel in ("depth", "orders", "trades"):
            ws.send_json({"op": "subscribe", "channel": channel, "symbol": S})
        messages = [ws.receive_json() for _ in range(5)]
        kinds = [(m["type"], m.get("channel")) for m in messages]
        assert kinds == [
            ("subscribed", "depth"),
            ("snapshot", "depth"),
            ("subscribed", "orders"),
            ("snapshot", "orders"),
            ("subscribed", "trades"),
        ]
        depth, orders = messages[1], messages[3]
        assert depth["asks"] == [["101.00", "1.000", 1]] and depth["bids"] == []
        assert orders["orders"][0]["price"] == "101.00" and orders["seq"] == depth["seq"]
        place(client, "bob", "BUY", "0.400", "101.00")
        place(client, "bob", "BUY", "1.000", "99.00")
        got = [ws.receive_json() for _ in range(5)]
        assert [(m["type"], m["channel"], m["seq"]) for m in got] == [
            ("update", "depth", depth["seq"] + 1),
            ("update", "orders", depth["seq"] + 1),
            ("trades", "trades", depth["seq"] + 1),
            ("update", "depth", depth["seq"] + 2),
            ("update", "orders", depth["seq"] + 2),
        ]
        assert got[0]["deltas"] == [{"side": "SELL", "price": "101.00", "quantity": "0.600"}]
        assert got[1]["events"][0]["kind"] == "EXECUTE"
        assert got[2]["trades"][0]["price"] == "101.00" and got[2]["trades"][0]["taker_side"] == "BUY"
        ws.send_json({"op": "unsubscribe", "channel": "orders", "symbol": S})
        assert ws.receive_json() == {"type": "unsubscribed", "channel": "orders", "symbol": S}
        ws.send_json({"op": "ping"})
        assert ws.receive_json() == {"type": "pong"}


def test_private_channel_with_a_token_in_the_url_sees_only_the_users_own(client: TestClient) -> None:
    with client.websocket_connect(f"/api/v1/ws?token={token('alice')}") as alice:
        assert alice.receive_json() == {"type": "authenticated", "user": "alice"}
        alice.send_json({"op": "subscribe", "channel": "private"})
        assert alice.receive_json()["type"] == "subscribed"
        place(client, "bob", "SELL", "1.000", "100.00")
        mine = place(client, "alice", "BUY", "0.500", "100.00")
        place(client, "carol", "BUY", "0.100", "90.00")
        order = until(alice, "order")
        assert order["order"]["id"] == mine["id"] and order["order"]["status"] == "FILLED"
        trade = until(alice, "trade")["trade"]
        assert (trade["side"], trade["role"], trade["order_id"]) == ("BUY", "taker", mine["id"])
        alice.send_json({"op": "ping"})
        assert alice.receive_json() == {"type": "pong"}  # nothing of bob's or carol's came in between


def test_auth_by_message_and_bad_tokens(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_json({"op": "subscribe", "channel": "private"})
        assert ws.receive_json()["code"] == "unauthorized"
        ws.send_json({"op": "auth", "token": token("bob")})
        assert ws.receive_json() == {"type": "authenticated", "user": "bob"}
        ws.send_json({"op": "subscribe", "channel": "private"})
        assert ws.receive_json()["type"] == "subscribed"
        ws.send_json({"op": "unsubscribe", "channel": "private"})
        assert ws.receive_json()["type"] == "unsubscribed"
        ws.send_json({"op": "auth", "token": "nope"})
        assert ws.receive_json()["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4001
    with client.websocket_connect("/api/v1/ws?token=bad") as ws:
        assert ws.receive_json()["code"] == "unauthorized"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4001


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("not json", "bad_request"),
        ("[1]", "bad_request"),
        ('{"op": "dance"}', "bad_request"),
        ('{"op": "subscribe", "channel": "news", "symbol": "BTC/USDT"}', "unknown_channel"),
        ('{"op": "subscribe", "channel": "depth", "symbol": "NOPE/USDT"}', "unknown_symbol"),
        ('{"op": "subscribe", "channel": "depth"}', "unknown_symbol"),
        ("x" * 5000, "bad_request"),
    ],
)
def test_bad_messages_are_errors_and_the_connection_stays(client: TestClient, message: str, code: str) -> None:
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_text(message)
        error = ws.receive_json()
        assert (error["type"], error["code"]) == ("error", code) and error["message"]
        ws.send_json({"op": "ping"})
        assert ws.receive_json() == {"type": "pong"}


def test_at_most_twenty_subscriptions() -> None:
    symbols = [f"C{i}/USDT" for i in range(8)]
    from tradebook import Instrument

    instruments = [Instrument(s, "0.01", "0.001") for s in symbols]

    @asynccontextmanager
    async def open_service() -> AsyncIterator[OrderService]:
        async with OrderService(MemoryOrderRepository(), MemoryWallet(), instruments, expiry_interval=None) as s:
            yield s

    app = create_app(open_service=open_service, authenticator=AUTH, metrics=False, web_page=False)
    with TestClient(app) as client, client.websocket_connect(f"/api/v1/ws?token={token('alice')}") as ws:
        ws.receive_json()
        count = 0
        for symbol in symbols:
            for channel in ("depth", "orders", "trades"):
                if count == MAX_SUBSCRIPTIONS:
                    break
                ws.send_json({"op": "subscribe", "channel": channel, "symbol": symbol})
                assert ws.receive_json()["type"] == "subscribed"
                if channel != "trades":
                    assert ws.receive_json()["type"] == "snapshot"
                count += 1
        ws.send_json({"op": "subscribe", "channel": "trades", "symbol": symbols[-1]})
        assert ws.receive_json()["code"] == "too_many_subscriptions"
        ws.send_json({"op": "subscribe", "channel": "private"})
        assert ws.receive_json()["code"] == "too_many_subscriptions"
        ws.send_json({"op": "subscribe", "channel": "depth", "symbol": symbols[0]})  # again: no new one
        assert ws.receive_json()["type"] == "subscribed"


def burst(client: TestClient, price: str) -> None:
    """One command that publishes two updates at once (a trade and the stop it triggers): 6 messages."""
    place(client, "alice", "SELL", "0.200", price)
    stop = {"symbol": S, "side": "BUY", "type": "STOP_LIMIT", "quantity": "0.100", "price": price, "stop_price": price}
    response = client.post("/api/v1/orders", json=stop, headers={"Authorization": f"Bearer {token('carol')}"})
    assert response.json()["status"] == "UNTRIGGERED", response.text
    place(client, "bob", "BUY", "0.100", price)


def test_an_overflow_resyncs_from_snapshots_and_the_third_closes_4008() -> None:
    with make_client(websocket_queue=4) as client, client.websocket_connect("/api/v1/ws") as ws:
        ws.send_json({"op": "subscribe", "channel": "depth", "symbol": S})
        ws.send_json({"op": "subscribe", "channel": "orders", "symbol": S})
        ws.send_json({"op": "subscribe", "channel": "trades", "symbol": S})
        for _ in range(5):
            ws.receive_json()
        burst(client, "110.00")
        seen = []
        while not seen or seen[-1]["type"] != "trades":
            seen.append(ws.receive_json())
        assert [m["channel"] for m in seen[-3:]] == ["depth", "orders", "trades"]
        assert all(m.get("resync") is True for m in seen[-3:]) and seen[-1]["trades"] == []
        assert seen[-3]["bids"] == [] and seen[-3]["asks"] == []
        assert seen[-1]["seq"] == seen[-3]["seq"]
        metrics = client.metrics.render()[0].decode()  # type: ignore[attr-defined]
        assert "tradebook_ws_drops_total 1.0" in metrics
        place(client, "alice", "SELL", "1.000", "200.00")
        update = until(ws, "update")
        assert update["seq"] == seen[-1]["seq"] + 1  # gap-free after the resync
        burst(client, "120.00")
        burst(client, "130.00")
        with pytest.raises(WebSocketDisconnect) as closed:
            while True:
                ws.receive_json()
        assert closed.value.code == 4008
        metrics = client.metrics.render()[0].decode()  # type: ignore[attr-defined]
        assert "tradebook_ws_closed_slow_total 1.0" in metrics
        assert "tradebook_ws_messages_sent_total" in metrics


def test_heartbeats() -> None:
    with make_client(websocket_heartbeat=0.05) as client, client.websocket_connect("/api/v1/ws") as ws:
        beat = ws.receive_json()
        assert beat["type"] == "heartbeat" and isinstance(beat["time"], int)


def test_connections_gauge(client: TestClient) -> None:
    with client.websocket_connect("/api/v1/ws") as ws:
        ws.send_json({"op": "ping"})
        ws.receive_json()
        assert "tradebook_ws_connections 1.0" in client.metrics.render()[0].decode()  # type: ignore[attr-defined]


@pytest.mark.parametrize(("option", "value"), [("heartbeat", 0), ("heartbeat", True), ("max_queue", 0)])
def test_bad_options(option: str, value: Any) -> None:
    with pytest.raises(ValueError):
        websocket_routes(**{option: value})
