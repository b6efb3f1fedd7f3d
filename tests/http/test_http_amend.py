"""PATCH /api/v1/orders/{id}: amend a resting limit order, on every store."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from _http_support import Api, assert_error


async def patch(api: Api, user: str, order_id: int | str, body: Any, **kwargs: Any) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        kwargs["content"] = body
        headers = {**api.headers(user), "Content-Type": "application/json"}
    else:
        kwargs["json"] = body
        headers = api.headers(user)
    return await api.client.patch(f"/api/v1/orders/{order_id}", headers=headers, **kwargs)


async def reserved(api: Api, user: str, asset: str) -> Decimal:
    response = await api.get(user, "/api/v1/balances")
    return Decimal(next(b["reserved"] for b in response.json()["balances"] if b["asset"] == asset))


async def test_amend_quantity_and_price_moves_the_reservation(api: Api) -> None:
    order = await api.place("alice", side="BUY", quantity="1.000", price="1000.00")
    response = await patch(api, "alice", order["id"], {"quantity": "2.000"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["quantity"], body["price"], body["status"]) == (order["id"], "2.000", "1000.00", "OPEN")
    assert await reserved(api, "alice", "USDT") == 2000
    response = await patch(api, "alice", order["id"], {"price": "900.00", "quantity": "0.500"})
    assert response.status_code == 200, response.text
    assert await reserved(api, "alice", "USDT") == 450
    stored = (await api.get("alice", f"/api/v1/orders/{order['id']}")).json()
    assert (stored["quantity"], stored["price"]) == ("0.500", "900.00")
    depth = (await api.get("alice", "/api/v1/depth", symbol="BTC/USDT")).json()
    assert [level["price"] for level in depth["bids"]] == ["900.00"]


async def test_a_crossing_amend_trades(api: Api) -> None:
    await api.place("bob", side="SELL", quantity="1.000", price="1000.00")
    order = await api.place("alice", side="BUY", quantity="1.000", price="990.00")
    response = await patch(api, "alice", order["id"], {"price": "1000.00"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "FILLED"
    trades = (await api.get("alice", "/api/v1/trades", symbol="BTC/USDT")).json()["trades"]
    assert [t["price"] for t in trades] == ["1000.00"]


async def test_refusals(api: Api) -> None:
    order = await api.place("alice", side="BUY", quantity="1.000", price="1000.00")
    before = await reserved(api, "alice", "USDT")
    assert_error(
        await patch(api, "alice", order["id"], {"quantity": "600.000", "price": "2000.00"}), 422, "insufficient_balance"
    )
    assert await reserved(api, "alice", "USDT") == before
    assert_error(await patch(api, "bob", order["id"], {"quantity": "2.000"}), 404, "order_not_found")
    assert_error(await patch(api, "alice", 424242, {"quantity": "2.000"}), 404, "order_not_found")
    assert_error(await patch(api, "alice", order["id"], {}), 400, "invalid_request")
    assert_error(await patch(api, "alice", order["id"], {"price": "1000.001"}), 400, "invalid_price")
    assert_error(await patch(api, "alice", order["id"], {"quantity": 2}), 400, "invalid_request")
    assert_error(await patch(api, "alice", order["id"], {"side": "SELL"}), 400, "invalid_request")
    assert_error(await patch(api, "alice", order["id"], '{"price": "1.00", "price": "2.00"}'), 400, "invalid_request")
    await api.delete("alice", f"/api/v1/orders/{order['id']}")
    assert_error(await patch(api, "alice", order["id"], {"quantity": "2.000"}), 409, "order_conflict")
    response = await api.client.patch(f"/api/v1/orders/{order['id']}", json={"quantity": "1.000"})
    assert response.status_code == 401
