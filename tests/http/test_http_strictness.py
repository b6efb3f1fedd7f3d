"""Issue 10, items 6-9: credentials before the body, complete ``Allow`` headers, strict ids, JSON and tokens,
balances at the asset's scale, a MARKET order's time in force, and the CLI's hint without the server extra."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _http_support import SECRET, Api, assert_error, close_api, open_api

from tradebook import Instrument
from tradebook.cli import main
from tradebook.http import (
    AuthenticationError,
    ConfigError,
    ServerConfig,
    TokenAuthenticator,
    build_app,
    issue_token,
    load_config,
    load_secret,
    verify_token,
)
from tradebook.http.auth import check_secret
from tradebook.http.schemas import asset_scales, balances_json
from tradebook.oms.models import Balance

VALID = {"symbol": "BTC/USDT", "side": "BUY", "quantity": "0.010", "price": "100.00"}
NOW = 1_700_000_000


# -- item 6: 401 before the body is read -----------------------------------------------------------------------------


async def _call_with_a_stalled_body(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[list[dict[str, Any]], int]:
    """POST /api/v1/orders declaring 70,000 bytes, of which 1,000 come and the rest never do."""
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads == 1:
            return {"type": "http.request", "body": b"x" * 1000, "more_body": True}
        await asyncio.Event().wait()  # the client stalls
        raise AssertionError("unreachable")  # pragma: no cover

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/orders",
        "raw_path": b"/api/v1/orders",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", b"70000"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent, reads


async def test_an_anonymous_large_post_is_401_without_its_body_being_read(memory_api: Api) -> None:
    sent, reads = await _call_with_a_stalled_body(memory_api.app, [])
    assert sent[0]["status"] == 401 and reads == 0
    headers = dict(sent[0]["headers"])
    assert headers[b"www-authenticate"] == b"Bearer" and headers[b"connection"] == b"close"
    assert json.loads(sent[1]["body"])["error"]["code"] == "unauthenticated"
    forged = [(b"authorization", b"Bearer tb1.YWxpY2U.1.AAAA")]
    sent, reads = await _call_with_a_stalled_body(memory_api.app, forged)
    assert sent[0]["status"] == 401 and reads == 0


async def test_an_authenticated_large_post_is_still_413(memory_api: Api) -> None:
    auth = [(b"authorization", memory_api.headers("alice")["Authorization"].encode())]
    sent, _ = await _call_with_a_stalled_body(memory_api.app, auth)
    assert sent[0]["status"] == 413
    response = await memory_api.client.post("/api/v1/orders", content=b"{" * 70_000)  # anonymous, whole body
    assert_error(response, 401, "unauthenticated")


# -- item 7: Allow lists every method of the resource --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/orders", "GET, POST"),
        ("DELETE", "/api/v1/orders", "GET, POST"),
        ("PUT", "/api/v1/orders/5", "DELETE, GET, PATCH"),
        ("POST", "/api/v1/orders/5", "DELETE, GET, PATCH"),
        ("PUT", "/api/v1/orders/abc", "DELETE, GET, PATCH"),
        ("POST", "/api/v1/depth", "GET"),
        ("DELETE", "/api/v1/trades", "GET"),
        ("PUT", "/api/v1/balances", "GET"),
        ("POST", "/health", "GET"),
        ("POST", "/metrics", "GET"),
        ("POST", "/openapi.json", "GET, HEAD"),
        ("DELETE", "/docs", "GET, HEAD"),
    ],
)
@pytest.mark.parametrize("fast_path", [True, False])
async def test_405_allows_every_method_of_the_resource(
    tmp_path: Path, fast_path: bool, method: str, path: str, allow: str
) -> None:
    api, location = await open_api("memory", tmp_path, fast_path=fast_path)
    try:
        response = await api.client.request(method, path, headers=api.headers("alice"))
        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == allow
    finally:
        await close_api(api, location)


# -- item 8: strict ids, JSON objects and tokens --------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["1_0", "%20%201", "%201", "1%20", "+1", "%2B1", "%D9%A1", "%EF%BC%91", "0x10", "1e3", "--1", "1-"]
)
async def test_an_order_id_that_is_not_plain_digits_is_400(memory_api: Api, raw: str) -> None:
    for method in ("GET", "DELETE"):
        response = await memory_api.client.request(method, f"/api/v1/orders/{raw}", headers=memory_api.headers("alice"))
        error = assert_error(response, 400, "invalid_request")
        assert error["details"][0]["location"] == ["path"], error


async def test_plain_integer_ids_still_work(memory_api: Api) -> None:
    placed = await memory_api.place("alice", side="BUY", quantity="0.010", price="100.00")
    assert (await memory_api.get("alice", f"/api/v1/orders/{placed['id']}")).json()["id"] == placed["id"]
    assert (await memory_api.get("alice", f"/api/v1/orders/00{placed['id']}")).json()["id"] == placed["id"]
    assert_error(await memory_api.get("alice", "/api/v1/orders/-5"), 404, "order_not_found")
    assert_error(await memory_api.get("alice", "/api/v1/orders/1234"), 404, "order_not_found")


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize(
    "body",
    [
        b'{"symbol": "BTC/USDT", "side": "BUY", "quantity": "0.010", "price": "100.00", "price": "1.00"}',
        b'{"side": "SELL", "symbol": "BTC/USDT", "side": "BUY", "quantity": "0.010", "price": "100.00"}',
        b'{"symbol": "BTC/USDT", "side": "BUY", "quantity": "0.010", "price": "100.00", "post_only": true, '
        b'"post_only": false}',
    ],
)
async def test_a_json_object_with_a_repeated_key_is_400(tmp_path: Path, fast_path: bool, body: bytes) -> None:
    api, location = await open_api("memory", tmp_path, fast_path=fast_path)
    try:
        headers = {**api.headers("alice"), "content-type": "application/json"}
        response = await api.client.post("/api/v1/orders", content=body, headers=headers)
        error = assert_error(response, 400, "invalid_request")
        assert "more than once" in error["message"] and error["details"][0]["type"] == "duplicate_key"
        assert (await api.get("alice", "/api/v1/orders")).json()["orders"] == []
        balances = (await api.get("alice", "/api/v1/balances")).json()["balances"]
        assert all(Decimal(b["reserved"]) == 0 for b in balances)
    finally:
        await close_api(api, location)


def test_a_verifier_refuses_tokens_that_live_longer_than_its_maximum() -> None:
    auth = TokenAuthenticator(SECRET, clock=lambda: NOW, max_lifetime=3600)
    assert auth.max_lifetime == 3600
    ok = issue_token("alice", SECRET, ttl=3600, now=NOW)
    assert verify_token(ok, SECRET, now=NOW, max_lifetime=3600) == "alice"
    forever = issue_token("alice", SECRET, ttl=10 * 365 * 86_400, now=NOW)
    with pytest.raises(AuthenticationError, match="longer than this server accepts"):
        verify_token(forever, SECRET, now=NOW, max_lifetime=3600)
    assert verify_token(forever, SECRET, now=NOW) == "alice"  # no maximum asked for
    huge = _signed(f"tb1.YWxpY2U.{10**30}")  # the secret's holder may sign any expiry
    with pytest.raises(AuthenticationError, match="longer than"):
        verify_token(huge, SECRET, now=NOW, max_lifetime=30 * 86_400)
    with pytest.raises(ValueError, match="max_lifetime"):
        auth.issue("alice", ttl=7200)
    with pytest.raises(ValueError, match="max_lifetime"):
        TokenAuthenticator(SECRET, max_lifetime=0)
    with pytest.raises(ValueError, match="max_lifetime"):
        verify_token(ok, SECRET, max_lifetime=True)
    unlimited = TokenAuthenticator(SECRET, clock=lambda: NOW, max_lifetime=None)
    assert unlimited.issue("alice", ttl=365 * 86_400)


def _signed(payload: str) -> str:
    import base64
    import hashlib
    import hmac

    signature = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


async def test_serve_enforces_its_maximum_token_lifetime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADEBOOK_AUTH_SECRET", SECRET)
    path = tmp_path / "c.toml"
    path.write_text("[auth]\nmax_token_lifetime = 3600\n")
    assert load_config(path).max_token_lifetime == 3600
    assert ServerConfig().max_token_lifetime == 30 * 86_400
    with pytest.raises(ConfigError, match="max_token_lifetime"):
        ServerConfig(max_token_lifetime=0)
    import httpx

    app = build_app(ServerConfig(database="memory", max_token_lifetime=3600))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        short = {"Authorization": f"Bearer {issue_token('alice', SECRET, ttl=3600)}"}
        assert (await client.get("/api/v1/balances", headers=short)).status_code == 200
        long = {"Authorization": f"Bearer {issue_token('alice', SECRET, ttl=10**6)}"}
        assert_error(await client.get("/api/v1/balances", headers=long), 401, "unauthenticated")
        default_long = {"Authorization": f"Bearer {issue_token('alice', SECRET, ttl=31 * 86_400)}"}
        assert_error(await client.get("/api/v1/balances", headers=default_long), 401, "unauthenticated")


def test_the_serve_flag_for_the_maximum_token_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    import tradebook.http

    monkeypatch.setenv("TRADEBOOK_AUTH_SECRET", SECRET)
    configs: list[ServerConfig] = []
    monkeypatch.setattr(tradebook.http, "serve", lambda config: configs.append(config) or 0)
    assert main(["serve", "--max-token-lifetime", "12h"]) == 0
    assert configs[0].max_token_lifetime == 12 * 3600


@pytest.mark.parametrize(
    "weak",
    [
        " " * 32,
        "a" * 32,
        "x" * 64,
        "ab" * 16,
        "0123456789abcdef" * 2,
        "password" * 4,
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    ],
)
def test_low_entropy_secrets_are_refused(weak: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="too weak"):
        check_secret(weak)
    with pytest.raises(ValueError, match="too weak"):
        TokenAuthenticator(weak)
    with pytest.raises(ValueError, match="too weak"):
        issue_token("alice", weak)
    monkeypatch.setenv("TRADEBOOK_AUTH_SECRET", weak)
    with pytest.raises(ConfigError, match="TRADEBOOK_AUTH_SECRET is too weak"):
        load_secret()


def test_random_secrets_are_accepted() -> None:
    for _ in range(200):
        assert check_secret(secrets.token_urlsafe(32))
        assert check_secret(secrets.token_hex(16))
    assert check_secret(SECRET.encode()) == SECRET.encode()


def test_serve_refuses_a_low_entropy_secret_at_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tradebook.http

    configs: list[ServerConfig] = []
    monkeypatch.setattr(tradebook.http, "serve", lambda config: configs.append(config) or 0)
    monkeypatch.setenv("TRADEBOOK_AUTH_SECRET", " " * 32)
    assert main(["serve"]) == 2
    assert "TRADEBOOK_AUTH_SECRET is too weak" in capsys.readouterr().err
    monkeypatch.setenv("TRADEBOOK_AUTH_SECRET", "z" * 40)
    assert main(["serve"]) == 2
    assert main(["token", "alice"]) == 2
    assert "too weak" in capsys.readouterr().err
    assert configs == []


# -- item 9: balances at the asset's scale, a MARKET order's time in force, the hint once ------------------------


async def test_balances_are_always_at_the_assets_scale(api: Api) -> None:
    def balances(user: str) -> Any:
        return api.get(user, "/api/v1/balances")

    before = {b["asset"]: b for b in (await balances("alice")).json()["balances"]}
    # BTC/USDT and ETH/USDT: lots of 0.001, ticks of 0.01, so BTC and ETH have 3 places, USDT 5 (price x quantity).
    assert before["BTC"] == {"asset": "BTC", "available": "10.000", "reserved": "0.000", "total": "10.000"}
    assert before["USDT"] == {
        "asset": "USDT",
        "available": "1000000.00000",
        "reserved": "0.00000",
        "total": "1000000.00000",
    }
    await api.place("alice", side="SELL", quantity="1.500", price="100.00")
    await api.place("bob", side="BUY", quantity="1.000", price="100.00")
    alice = {b["asset"]: b for b in (await balances("alice")).json()["balances"]}
    assert alice["BTC"] == {"asset": "BTC", "available": "8.500", "reserved": "0.500", "total": "9.000"}
    assert alice["USDT"]["available"] == "1000100.00000" and alice["USDT"]["reserved"] == "0.00000"
    bob = {b["asset"]: b for b in (await balances("bob")).json()["balances"]}
    assert bob["BTC"]["available"] == "11.000" and bob["USDT"]["available"] == "999900.00000"


def test_balance_rows_never_round_and_stay_consistent() -> None:
    scales = asset_scales([Instrument("BTC/USDT", "0.01", "0.001"), Instrument("USDT/EUR", "0.0001", "0.1")])
    assert scales == {"BTC": 3, "USDT": 5, "EUR": 5}
    rows = balances_json(
        {
            "BTC": Balance("BTC", Decimal("8.49999"), Decimal("0")),  # a fee took more places than a lot
            "USDT": Balance("USDT", Decimal("10"), Decimal("0.5")),
            "XYZ": Balance("XYZ", Decimal("7"), Decimal("0")),  # no instrument trades it
        },
        scales,
    )["balances"]
    assert rows == [
        {"asset": "BTC", "available": "8.49999", "reserved": "0.00000", "total": "8.49999"},
        {"asset": "USDT", "available": "10.00000", "reserved": "0.50000", "total": "10.50000"},
        {"asset": "XYZ", "available": "7", "reserved": "0", "total": "7"},
    ]


async def test_a_market_order_is_ioc_not_gtc(api: Api) -> None:
    await api.place("alice", side="SELL", quantity="1.000", price="200.00")
    market = await api.place("bob", side="BUY", type="MARKET", quantity="0.400")
    assert market["time_in_force"] == "IOC" and market["status"] == "FILLED"
    fok = await api.place("bob", side="BUY", type="MARKET", quantity="0.100", time_in_force="FOK")
    assert fok["time_in_force"] == "FOK" and fok["status"] == "FILLED"
    refused = await api.place("bob", 400, side="BUY", type="MARKET", quantity="0.100", time_in_force="GTC")
    assert refused["error"]["code"] == "invalid_order" and "IOC" in refused["error"]["message"]
    limit = await api.place("bob", side="BUY", quantity="0.100", price="1.00")
    assert limit["time_in_force"] == "GTC"
    # A MARKET order placed through the library with its default time in force reads IOC too.
    placed = await api.service.place("bob", "BTC/USDT", "BUY", "0.100", type="MARKET")
    got = (await api.get("bob", f"/api/v1/orders/{placed.order.id}")).json()
    assert got["type"] == "MARKET" and got["time_in_force"] == "IOC"


def test_serve_without_the_server_extra_gives_its_hint_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [m for m in sys.modules if m == "tradebook.http" or m.startswith("tradebook.http.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("tradebook[server]") == 1 and err.count("server extra") == 1, err
