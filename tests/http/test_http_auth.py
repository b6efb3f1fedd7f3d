"""Authentication and access: signed tokens, the trusted header, and that nobody reaches another user's things."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import pytest
from _http_support import SECRET, Api, assert_error, close_api, open_api

from tradebook.http import (
    AuthenticationError,
    ConfigError,
    TokenAuthenticator,
    TrustedHeaderAuthenticator,
    create_app,
    issue_token,
    load_secret,
    verify_token,
)
from tradebook.http.auth import TOKEN_VERSION, check_user_id

NOW = 1_700_000_000


def test_a_token_names_its_user_until_it_expires() -> None:
    token = issue_token("alice", SECRET, ttl=60, now=NOW)
    assert token.startswith(f"{TOKEN_VERSION}.")
    assert verify_token(token, SECRET, now=NOW) == "alice"
    assert verify_token(token, SECRET, now=NOW + 59) == "alice"
    with pytest.raises(AuthenticationError, match="expired"):
        verify_token(token, SECRET, now=NOW + 60)
    unicode_user = issue_token("Zoë 🚀", SECRET.encode(), now=NOW)
    assert verify_token(unicode_user, SECRET.encode(), now=NOW) == "Zoë 🚀"


def _resign(payload: str, key: str = SECRET) -> str:
    signature = hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "signature"),
        (lambda t: t.replace("YWxpY2U", "Ym9i"), "signature"),  # alice -> bob, same signature
        (lambda t: issue_token("alice", "another-secret-of-32-characters-xx", now=NOW), "signature"),
        (lambda t: "tb1.YWxpY2U", "malformed"),
        (lambda t: "tb2" + t[3:], "malformed"),
        (lambda t: t + ".extra", "malformed"),
        (lambda t: "x" * 2000, "malformed"),
        (lambda t: "tb1.Zé.1.x", "malformed"),
        (lambda t: _resign("tb1.!!!.1800000000"), "malformed"),  # signed, but not base64
        (lambda t: _resign("tb1.YWxpY2U.soon"), "malformed"),
        (lambda t: _resign(f"tb1.{base64.urlsafe_b64encode(b'a' * 200).decode()}.1800000000"), "malformed"),
    ],
)
def test_forged_or_malformed_tokens_are_refused(make: Any, reason: str) -> None:
    token = issue_token("alice", SECRET, now=NOW)
    with pytest.raises(AuthenticationError, match=reason):
        verify_token(make(token), SECRET, now=NOW)


def test_issuing_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="at least 32"):
        issue_token("alice", "short")
    with pytest.raises(ValueError, match="user id"):
        issue_token("", SECRET)
    with pytest.raises(ValueError, match="user id"):
        issue_token("a\nb", SECRET)
    with pytest.raises(ValueError, match="ttl"):
        issue_token("alice", SECRET, ttl=0)
    with pytest.raises(ValueError, match="ttl"):
        issue_token("alice", SECRET, ttl=True)
    with pytest.raises(ValueError, match="user id"):
        check_user_id("x" * 129)


def test_the_secret_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TB_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="set TB_TEST_SECRET"):
        load_secret("TB_TEST_SECRET")
    monkeypatch.setenv("TB_TEST_SECRET", "too short")
    with pytest.raises(ConfigError, match="too short"):
        load_secret("TB_TEST_SECRET")
    monkeypatch.setenv("TB_TEST_SECRET", SECRET)
    assert load_secret("TB_TEST_SECRET") == SECRET.encode()
    authenticator = TokenAuthenticator.from_env("TB_TEST_SECRET")
    assert verify_token(authenticator.issue("bob"), SECRET) == "bob"


async def test_bearer_header_forms(memory_api: Api) -> None:
    token = memory_api.auth.issue("alice")
    for header in (f"Bearer {token}", f"bearer {token}", f"BEARER  {token} "):
        response = await memory_api.client.get("/api/v1/balances", headers={"Authorization": header})
        assert response.status_code == 200, (header, response.text)
    for headers in ({}, {"Authorization": token}, {"Authorization": f"Basic {token}"}, {"Authorization": "Bearer"}):
        response = await memory_api.client.get("/api/v1/balances", headers=headers)
        assert_error(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"
    expired = issue_token("alice", SECRET, ttl=1, now=NOW)
    error = assert_error(
        await memory_api.client.get("/api/v1/balances", headers={"Authorization": f"Bearer {expired}"}),
        401,
        "unauthenticated",
    )
    assert "expired" in error["message"]


async def test_every_api_endpoint_needs_credentials_and_health_does_not(memory_api: Api) -> None:
    client = memory_api.client
    for method, path in (
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/orders"),
        ("GET", "/api/v1/orders/1"),
        ("DELETE", "/api/v1/orders/1"),
        ("GET", "/api/v1/depth?symbol=BTC/USDT"),
        ("GET", "/api/v1/trades"),
        ("GET", "/api/v1/balances"),
    ):
        assert_error(await client.request(method, path, json={}), 401, "unauthenticated")
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


def test_a_cached_token_still_expires() -> None:
    clock = [float(NOW)]
    authenticator = TokenAuthenticator(SECRET, clock=lambda: clock[0])
    token = authenticator.issue("alice", ttl=10)
    request = _request({"authorization": f"Bearer {token}"})
    import asyncio

    assert asyncio.run(authenticator.authenticate(request)) == "alice"
    assert asyncio.run(authenticator.authenticate(request)) == "alice"  # from the cache
    clock[0] += 10
    with pytest.raises(AuthenticationError, match="expired"):
        asyncio.run(authenticator.authenticate(request))


def test_the_token_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from tradebook.http import auth

    monkeypatch.setattr(auth, "_CACHE_SIZE", 3)
    authenticator = TokenAuthenticator(SECRET)

    async def run() -> None:
        for i in range(7):
            token = authenticator.issue(f"user{i}")
            assert await authenticator.authenticate(_request({"authorization": f"Bearer {token}"})) == f"user{i}"
            assert len(authenticator._verified) <= 3

    asyncio.run(run())


def _request(headers: dict[str, str]) -> Any:
    from starlette.requests import Request

    return Request({"type": "http", "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})


async def test_trusted_header_mode(tmp_path: Path) -> None:
    api, location = await open_api("memory", tmp_path)
    try:
        app = create_app(api.service, authenticator=TrustedHeaderAuthenticator(), metrics=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            placed = await client.post(
                "/api/v1/orders",
                json={"symbol": "BTC/USDT", "side": "BUY", "quantity": "1.000", "price": "1.00"},
                headers={"X-User-ID": "alice"},
            )
            assert placed.status_code == 201
            order_id = placed.json()["id"]
            assert (await client.get(f"/api/v1/orders/{order_id}", headers={"x-user-id": "alice"})).status_code == 200
            assert_error(
                await client.get(f"/api/v1/orders/{order_id}", headers={"X-User-ID": "bob"}), 404, "order_not_found"
            )
            assert_error(await client.get("/api/v1/balances"), 401, "unauthenticated")
            assert_error(await client.get("/api/v1/balances", headers={"X-User-ID": ""}), 401, "unauthenticated")
            # A bearer token means nothing in this mode.
            assert_error(await client.get("/api/v1/balances", headers=api.headers("alice")), 401, "unauthenticated")
            doc = (await client.get("/openapi.json")).json()
            assert doc["components"]["securitySchemes"]["tradebook"] == {
                "type": "apiKey",
                "in": "header",
                "name": "X-User-ID",
            }
        other = TrustedHeaderAuthenticator("X-Gateway-User")
        assert other.header == "X-Gateway-User"
        with pytest.raises(ValueError, match="header"):
            TrustedHeaderAuthenticator("bad header")
    finally:
        await close_api(api, location)


async def test_a_custom_authenticator_plugs_in(memory_api: Api) -> None:
    keys = {"k-alice": "alice"}

    class ApiKeys:
        async def authenticate(self, request: Any) -> str:
            user = keys.get(request.headers.get("x-api-key", ""))
            if user is None:
                raise AuthenticationError("unknown API key")
            return user

    app = create_app(memory_api.service, authenticator=ApiKeys(), metrics=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/api/v1/balances", headers={"X-API-Key": "k-alice"})).status_code == 200
        error = assert_error(
            await client.get("/api/v1/balances", headers={"X-API-Key": "nope"}), 401, "unauthenticated"
        )
        assert error["message"] == "unknown API key"


async def test_nobody_reads_lists_or_cancels_another_users_orders_or_balances(api: Api) -> None:
    """Alice's orders and balances, probed by bob and carol through every endpoint."""
    alice_orders = [
        await api.place("alice", side="BUY", quantity="1.000", price="100.00", client_order_id="mine-1"),
        await api.place("alice", symbol="ETH/USDT", side="SELL", quantity="2.000", price="3000.00"),
    ]
    await api.place("bob", side="BUY", quantity="0.500", price="99.00")
    for intruder in ("bob", "carol"):
        for order in alice_orders:
            assert_error(await api.get(intruder, f"/api/v1/orders/{order['id']}"), 404, "order_not_found")
            assert_error(await api.delete(intruder, f"/api/v1/orders/{order['id']}"), 404, "order_not_found")
        listed = (await api.get(intruder, "/api/v1/orders")).json()["orders"]
        assert not {o["id"] for o in listed} & {o["id"] for o in alice_orders}
        for params in ({"symbol": "BTC/USDT"}, {"status": "OPEN"}, {"side": "BUY"}, {"limit": 1000}):
            listed = (await api.get(intruder, "/api/v1/orders", **params)).json()["orders"]
            assert all(o["id"] not in {a["id"] for a in alice_orders} for o in listed)
        # Reusing alice's client order id gives the intruder an order of their own, not hers.
        mine = await api.place(intruder, side="BUY", quantity="0.001", price="1.00", client_order_id="mine-1")
        assert mine["id"] != alice_orders[0]["id"]
        balances = (await api.get(intruder, "/api/v1/balances")).json()["balances"]
        usdt = next(b for b in balances if b["asset"] == "USDT")
        assert usdt["reserved"] != "100.00"  # not alice's reservation
        mine_trades = (await api.get(intruder, "/api/v1/trades", mine="true")).json()["trades"]
        assert all(t["order_id"] not in {a["id"] for a in alice_orders} for t in mine_trades)
    for order in alice_orders:  # still alice's, still open
        current = (await api.get("alice", f"/api/v1/orders/{order['id']}")).json()
        assert current["status"] == "OPEN"
    alice = {b["asset"]: b for b in (await api.get("alice", "/api/v1/balances")).json()["balances"]}
    assert alice["USDT"]["reserved"] in ("100.00", "100.00000")
    assert alice["ETH"]["reserved"] in ("2.000", "2")
    # The balances endpoint takes no user parameter at all: the token decides.
    sneaky = (await api.client.get("/api/v1/balances?user_id=alice", headers=api.headers("carol"))).json()
    assert sneaky == (await api.get("carol", "/api/v1/balances")).json()
