"""Bad input of every kind is a clear 4xx in the one error shape; outages are 503; a bug is a logged 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _http_support import INSTRUMENTS, SECRET, Api, SwitchableWallet, assert_error, close_api, open_api

from tradebook import PersistenceError
from tradebook.http import TokenAuthenticator, create_app
from tradebook.oms import CircuitBreakerWallet, MemoryOrderRepository, MemoryWallet, OrderService

VALID = {"symbol": "BTC/USDT", "side": "BUY", "quantity": "1.000", "price": "100.00"}


async def post(api: Api, body: Any = None, *, content: bytes | None = None, **headers: str) -> httpx.Response:
    return await api.client.post(
        "/api/v1/orders", json=body, content=content, headers={**api.headers("alice"), **headers}
    )


async def asgi_call(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> int:
    """Drive the ASGI app by hand (for requests httpx will not send); return the status."""
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))
    assert set(body) == {"error"}
    status: int = sent[0]["status"]
    return status


async def test_malformed_json_is_400_invalid_json(memory_api: Api) -> None:
    for content in (b"{", b"", b"{'symbol': 1}", b"\xff\xfe", b'{"symbol": "BTC/USDT",}'):
        assert_error(
            await post(memory_api, content=content, **{"content-type": "application/json"}), 400, "invalid_json"
        )
    assert_error(await post(memory_api, content=b"not json at all"), 400, "invalid_json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([VALID], None),
        ("an order", None),
        ({**VALID, "price": 100.5}, "price"),  # a JSON number is never a decimal here
        ({**VALID, "quantity": 1}, "quantity"),
        (b'{"symbol": "BTC/USDT", "side": "BUY", "quantity": "1.000", "price": 1e400}', "price"),
        ({**VALID, "quantity": "1e3"}, "quantity"),
        ({**VALID, "quantity": "-1"}, "quantity"),
        ({**VALID, "quantity": " 1"}, "quantity"),
        ({**VALID, "quantity": "1."}, "quantity"),
        ({**VALID, "quantity": "NaN"}, "quantity"),
        ({**VALID, "price": "Infinity"}, "price"),
        ({**VALID, "price": "0x10"}, "price"),
        ({**VALID, "price": "1" * 60}, "price"),
        ({**VALID, "price": "١٢"}, "price"),  # Arabic-Indic digits are digits to Python, not to us
        ({**VALID, "side": "buy"}, "side"),
        ({**VALID, "side": None}, "side"),
        ({**VALID, "type": "ICEBERG"}, "type"),
        ({**VALID, "time_in_force": "DAY"}, "time_in_force"),
        ({**VALID, "type": "STOP", "stop_price": 99}, "stop_price"),
        ({**VALID, "type": "TRAILING_STOP", "trailing_offset": "-1"}, "trailing_offset"),
        ({**VALID, "display_quantity": 0.5}, "display_quantity"),
        ({**VALID, "quote_quantity": 100}, "quote_quantity"),
        ({**VALID, "expire_at": 1.5e12}, "expire_at"),
        ({**VALID, "expire_at": True}, "expire_at"),
        ({**VALID, "expire_at": "tomorrow"}, "expire_at"),
        ({**VALID, "expire_at": "1893456000000"}, "expire_at"),  # epoch milliseconds are a JSON integer
        ({**VALID, "expire_at": "2030-01-01T00:00:00"}, "expire_at"),  # no offset
        ({**VALID, "expire_at": "2030-02-30T00:00:00Z"}, "expire_at"),
        ({**VALID, "expire_at": "2030-01-01T00:00:00+05:75"}, "expire_at"),
        ({**VALID, "expire_at": "2030-01-01T00:00:00+24:00"}, "expire_at"),
        ({**VALID, "expire_at": "9999-12-31T23:59:59.9999999Z"}, "expire_at"),  # past the last datetime
        ({**VALID, "post_only": "true"}, "post_only"),
        ({**VALID, "post_only": 1}, "post_only"),
        ({**VALID, "symbol": 42}, "symbol"),
        ({**VALID, "symbol": ""}, "symbol"),
        ({**VALID, "client_order_id": "x" * 65}, "client_order_id"),
        ({**VALID, "client_order_id": "tab\there"}, "client_order_id"),
        ({**VALID, "client_order_id": "é"}, "client_order_id"),
        ({**VALID, "leverage": "100"}, "leverage"),  # unknown fields are refused
        ({k: v for k, v in VALID.items() if k != "side"}, "side"),
    ],
)
async def test_wrong_shapes_and_types_are_400_naming_the_field(memory_api: Api, body: Any, field: str | None) -> None:
    if isinstance(body, bytes):
        response = await post(memory_api, content=body, **{"content-type": "application/json"})
    else:
        response = await post(memory_api, body)
    error = assert_error(response, 400, "invalid_request")
    assert isinstance(error["details"], list) and error["details"]
    assert error["details"][0]["field"] == field
    assert error["details"][0]["location"] == ["body"]
    if field:
        assert error["message"].startswith(f"{field}: ")
    assert (await memory_api.get("alice", "/api/v1/orders")).json()["orders"] == []


async def test_deeply_nested_json_is_400(memory_api: Api) -> None:
    content = b"[" * 20_000 + b"]" * 20_000
    response = await post(memory_api, content=content, **{"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] in ("invalid_json", "invalid_request")


async def test_a_body_over_the_limit_is_413_declared_or_streamed(memory_api: Api) -> None:
    big = json.dumps({**VALID, "client_order_id": "x" * 70_000}).encode()
    assert_error(await post(memory_api, content=big, **{"content-type": "application/json"}), 413, "payload_too_large")

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(70):
            yield b" " * 1024

    response = await memory_api.client.post(
        "/api/v1/orders", content=stream(), headers={**memory_api.headers("alice"), "content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # it went chunked
    assert_error(response, 413, "payload_too_large")

    async def small() -> AsyncIterator[bytes]:
        text = json.dumps(VALID).encode()
        yield text[:10]
        yield text[10:]

    response = await memory_api.client.post("/api/v1/orders", content=small(), headers=memory_api.headers("alice"))
    assert response.status_code == 201, response.text


async def test_the_body_limit_is_configurable(tmp_path: Path) -> None:
    api, location = await open_api("memory", tmp_path, max_body_bytes=100)
    try:
        assert_error(await post(api, {**VALID, "client_order_id": "x" * 64}), 413, "payload_too_large")
        assert (await post(api, VALID)).status_code == 201
    finally:
        await close_api(api, location)


async def test_a_content_length_that_is_not_a_number_is_400(memory_api: Api) -> None:
    headers = [(b"authorization", memory_api.headers("alice")["Authorization"].encode()), (b"content-length", b"ten")]
    assert await asgi_call(memory_api.app, "POST", "/api/v1/orders", headers, [b"{}"]) == 400


async def test_a_client_that_leaves_mid_body_gets_no_order(memory_api: Api) -> None:
    headers = [
        (b"authorization", memory_api.headers("alice")["Authorization"].encode()),
        (b"transfer-encoding", b"chunked"),
    ]
    status = await asgi_call(memory_api.app, "POST", "/api/v1/orders", headers, [b'{"symbol": '])
    assert status == 400
    assert (await memory_api.get("alice", "/api/v1/orders")).json()["orders"] == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/orders", {"limit": 0}),
        ("/api/v1/orders", {"limit": 1001}),
        ("/api/v1/orders", {"limit": "ten"}),
        ("/api/v1/orders", {"limit": "1e3"}),
        ("/api/v1/orders", {"cursor": "9" * 40}),
        ("/api/v1/orders", {"status": "PENDING"}),
        ("/api/v1/orders", {"side": "buy"}),
        ("/api/v1/trades", {"mine": "perhaps"}),
        ("/api/v1/depth", {"symbol": "BTC/USDT", "limit": "-1"}),
        ("/api/v1/orders/12.5", {}),
        ("/api/v1/orders/" + "9" * 5000, {}),
    ],
)
async def test_bad_query_and_path_parameters_are_400(memory_api: Api, path: str, params: dict[str, Any]) -> None:
    assert_error(await memory_api.get("alice", path, **params), 400, "invalid_request")


async def test_unknown_routes_and_methods(memory_api: Api) -> None:
    assert_error(await memory_api.client.get("/nowhere"), 404, "not_found")
    assert_error(await memory_api.get("alice", "/api/v1/nowhere"), 404, "not_found")
    assert_error(await memory_api.client.get("/api/v1/nowhere"), 401, "unauthenticated")  # credentials first
    response = await memory_api.client.put("/api/v1/orders", json=VALID, headers=memory_api.headers("alice"))
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


async def test_wallet_down_is_503_and_the_breaker_shows_on_health(tmp_path: Path) -> None:
    switch: list[SwitchableWallet] = []

    def wrap(wallet: Any) -> Any:
        switch.append(SwitchableWallet(wallet))
        return CircuitBreakerWallet(switch[0], failure_threshold=2, reset_timeout=60)

    api, location = await open_api("memory", tmp_path, wrap_wallet=wrap)
    try:
        health = await api.client.get("/health")
        assert health.json()["status"] == "ok" and health.json()["wallet"] == "closed"
        switch[0].down = True
        assert_error(await post(api, VALID), 503, "wallet_unavailable")
        assert_error(await api.get("alice", "/api/v1/balances"), 503, "wallet_unavailable")
        error = assert_error(await post(api, VALID), 503, "wallet_unavailable")
        assert "breaker" in error["message"]
        health = await api.client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert health.json()["wallet"] == "open"
        assert (await api.get("alice", "/api/v1/orders")).json()["orders"] == []  # nothing left behind
    finally:
        await close_api(api, location)


async def test_a_storage_failure_is_503_persistence_error(memory_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise PersistenceError("the disk is full (test)")

    monkeypatch.setattr(memory_api.repository, "transaction", broken)
    assert_error(await post(memory_api, VALID), 503, "persistence_error")


async def test_an_unexpected_error_is_a_logged_500_that_leaks_nothing(
    memory_api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(*args: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(memory_api.service, "get_order", boom)
    transport = httpx.ASGITransport(app=memory_api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/v1/orders/1", headers=memory_api.headers("alice"))
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in error["message"]
    assert any("unexpected error" in r.getMessage() for r in caplog.records)


async def test_without_a_running_service_it_is_503(tmp_path: Path) -> None:
    started: list[OrderService] = []

    @asynccontextmanager
    async def open_service() -> AsyncIterator[OrderService]:
        async with OrderService(MemoryOrderRepository(), MemoryWallet(), INSTRUMENTS) as service:
            started.append(service)
            yield service

    auth = TokenAuthenticator(SECRET)
    app = create_app(open_service=open_service, authenticator=auth, metrics=False)
    headers = {"Authorization": f"Bearer {auth.issue('alice')}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert_error(await client.get("/api/v1/balances", headers=headers), 503, "service_unavailable")
        health = await client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "starting"
        async with app.router.lifespan_context(app):
            assert (await client.get("/api/v1/balances", headers=headers)).json() == {"balances": []}
            assert (await client.get("/health")).json()["status"] == "ok"
        assert (await client.get("/health")).json()["status"] == "stopping"
        assert_error(await client.get("/api/v1/balances", headers=headers), 503, "service_unavailable")
        async with app.router.lifespan_context(app):  # a second startup opens a new service
            assert (await client.get("/health")).json()["status"] == "ok"
    assert len(started) == 2


def test_create_app_checks_its_arguments() -> None:
    service = OrderService(MemoryOrderRepository(), MemoryWallet(), INSTRUMENTS)
    auth = TokenAuthenticator(SECRET)
    with pytest.raises(ValueError, match="either"):
        create_app(authenticator=auth)
    with pytest.raises(ValueError, match="either"):
        create_app(service, open_service=lambda: None, authenticator=auth)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="authenticate"):
        create_app(service, authenticator=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_body_bytes"):
        create_app(service, authenticator=auth, max_body_bytes=0)


async def test_the_openapi_document(memory_api: Api) -> None:
    doc = (await memory_api.client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert doc["components"]["securitySchemes"]["tradebook"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "tradebook token (`tradebook token USER`)",
    }
    order_in = schemas["OrderIn"]
    assert order_in["additionalProperties"] is False
    (quantity,) = [t for t in order_in["properties"]["quantity"]["anyOf"] if t["type"] == "string"]
    assert "pattern" in quantity  # a decimal string, or null for a market order sized by quote_quantity
    assert {"STOP", "STOP_LIMIT", "TRAILING_STOP"} <= set(order_in["properties"]["type"]["enum"])
    assert [t["type"] for t in order_in["properties"]["expire_at"]["anyOf"]] == ["integer", "string", "null"]
    order_out = schemas["OrderOut"]["properties"]
    assert "UNTRIGGERED" in order_out["status"]["enum"]
    assert {
        "stop_price",
        "trailing_offset",
        "display_quantity",
        "visible_quantity",
        "expire_at",
        "quote_quantity",
    } <= set(order_out)
    place = doc["paths"]["/api/v1/orders"]["post"]
    assert place["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderIn"}
    assert {"200", "201", "400", "401", "413", "422", "503"} <= set(place["responses"])
    assert place["security"] == [{"tradebook": []}]
    assert "security" not in doc["paths"]["/health"]["get"]
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path.startswith("/api/"):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorResponse"
                    }
    assert (await memory_api.client.get("/openapi.json")).json() == doc  # built once


async def test_the_fast_path_and_the_routes_answer_alike(tmp_path: Path) -> None:
    """Placing, getting and cancelling by id skip FastAPI by default; with fast_path=False the routes answer."""
    transcripts = []
    for fast in (True, False):
        api, location = await open_api("memory", tmp_path / str(fast), fast_path=fast)
        try:
            steps: list[httpx.Response] = [
                await post(api, {**VALID, "client_order_id": "a"}),
                await post(api, {**VALID, "client_order_id": "a"}),
                await post(api, content=b"{", **{"content-type": "application/json"}),
                await post(api, {**VALID, "price": 1}),
                await post(api, {**VALID, "symbol": "ETH/USDT", "quantity": "900000.000"}),
                await post(api, {**VALID, "symbol": "NOPE/USD"}),
                await api.get("alice", "/api/v1/orders/1"),
                await api.get("alice", "/api/v1/orders/001"),
                await api.get("bob", "/api/v1/orders/1"),
                await api.get("alice", "/api/v1/orders/0"),
                await api.get("alice", f"/api/v1/orders/{2**63}"),
                await api.get("alice", "/api/v1/orders/abc"),
                await api.delete("bob", "/api/v1/orders/1"),
                await api.delete("alice", "/api/v1/orders/1"),
                await api.delete("alice", "/api/v1/orders/1"),
                await api.client.put("/api/v1/orders/1", headers=api.headers("alice")),
                await api.client.post("/api/v1/orders/1", headers=api.headers("alice")),
            ]
            transcript = []
            for response in steps:
                body = response.json()
                for key in ("created_at", "updated_at"):
                    body.pop(key, None)
                transcript.append((response.status_code, body, response.headers.get("location")))
            rejected = {
                reason: api.metrics.registry.get_sample_value("tradebook_orders_rejected_total", {"reason": reason})
                for reason in ("invalid_json", "invalid_request", "insufficient_balance", "unknown_symbol")
            }
            transcripts.append((transcript, rejected))
        finally:
            await close_api(api, location)
    (fast_transcript, fast_rejected), (route_transcript, route_rejected) = transcripts
    statuses = [status for status, _, _ in fast_transcript]
    assert statuses == [201, 200, 400, 400, 422, 400, 200, 200, 404, 404, 404, 400, 404, 200, 409, 405, 405]
    assert fast_transcript == route_transcript
    assert (
        fast_rejected
        == route_rejected
        == {
            "invalid_json": 1,
            "invalid_request": 1,
            "insufficient_balance": 1,
            "unknown_symbol": 1,
        }
    )


def test_the_fast_path_serves_rows_of_the_route_table() -> None:
    """One definition of each route: the fast path takes method, pattern and endpoint from the router."""
    from tradebook.http.fastpath import FastPath
    from tradebook.http.routes import FAST_ENDPOINTS, router

    fast = [route for route in router.routes if getattr(route, "endpoint", None) in FAST_ENDPOINTS]
    assert {(method, route.path) for route in fast for method in route.methods} == {
        ("POST", "/api/v1/orders"),
        ("GET", "/api/v1/orders/{order_id}"),
        ("DELETE", "/api/v1/orders/{order_id}"),
    }
    listing = next(route for route in router.routes if getattr(route, "name", None) == "list_orders")
    with pytest.raises(TypeError, match="the fast path calls list_orders"):
        FastPath(None, routes=[listing], on_error=None)  # type: ignore[arg-type]


async def test_an_unexpected_error_on_the_fast_path_is_a_logged_500(
    memory_api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(memory_api.service, "place", boom)
    error = assert_error(await post(memory_api, VALID), 500, "internal_error")
    assert "secret" not in error["message"]
    assert any("unexpected error on POST /api/v1/orders" in r.getMessage() for r in caplog.records)
    value = memory_api.metrics.registry.get_sample_value
    assert value("tradebook_orders_rejected_total", {"reason": "internal_error"}) == 1
