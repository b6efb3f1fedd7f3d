"""The API's endpoints end to end, on every store: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from _http_support import DEPOSITS, Api, assert_error

ORDER_FIELDS = {
    "id",
    "client_order_id",
    "symbol",
    "side",
    "type",
    "time_in_force",
    "post_only",
    "status",
    "price",
    "quantity",
    "filled_quantity",
    "remaining_quantity",
    "stop_price",
    "trailing_offset",
    "display_quantity",
    "visible_quantity",
    "expire_at",
    "quote_quantity",
    "created_at",
    "updated_at",
}


async def balances(api: Api, user: str) -> dict[str, dict[str, str]]:
    response = await api.get(user, "/api/v1/balances")
    assert response.status_code == 200, response.text
    return {b["asset"]: b for b in response.json()["balances"]}


async def test_place_is_201_with_the_order_and_every_decimal_a_string(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/orders",
        json={"symbol": "BTC/USDT", "side": "BUY", "quantity": "0.250", "price": "60000.00", "client_order_id": "c-1"},
        headers=api.headers("alice"),
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert set(order) == ORDER_FIELDS
    assert response.headers["location"] == f"/api/v1/orders/{order['id']}"
    assert order["client_order_id"] == "c-1"
    assert (order["symbol"], order["side"], order["type"], order["time_in_force"]) == (
        "BTC/USDT",
        "BUY",
        "LIMIT",
        "GTC",
    )
    assert order["status"] == "OPEN" and order["post_only"] is False
    assert (order["price"], order["quantity"], order["filled_quantity"]) == ("60000.00", "0.250", "0.000")
    assert order["remaining_quantity"] == "0.250"
    assert order["created_at"].endswith("+00:00") and order["updated_at"] >= order["created_at"]
    for name in ("price", "quantity", "filled_quantity", "remaining_quantity"):
        assert isinstance(order[name], str)
    usdt = (await balances(api, "alice"))["USDT"]
    assert Decimal(usdt["reserved"]) == Decimal("15000")
    assert Decimal(usdt["available"]) == DEPOSITS["USDT"] - 15000


async def test_a_repeated_client_order_id_is_200_with_the_original_order_and_reserves_nothing(api: Api) -> None:
    first = await api.place("alice", side="BUY", quantity="1.000", price="100.00", client_order_id="once")
    before = await balances(api, "alice")
    again = await api.place("alice", expect=200, side="BUY", quantity="2.000", price="90.00", client_order_id="once")
    assert again == first
    assert await balances(api, "alice") == before
    # The same client order id of another user is another order.
    other = await api.place("bob", side="BUY", quantity="1.000", price="100.00", client_order_id="once")
    assert other["id"] != first["id"]


async def test_get_order_is_the_callers_only(api: Api) -> None:
    order = await api.place("alice", side="SELL", quantity="1.000", price="70000.00")
    mine = await api.get("alice", f"/api/v1/orders/{order['id']}")
    assert mine.status_code == 200 and mine.json() == order
    assert_error(await api.get("bob", f"/api/v1/orders/{order['id']}"), 404, "order_not_found")
    assert_error(await api.get("alice", "/api/v1/orders/999999"), 404, "order_not_found")
    assert_error(await api.get("alice", "/api/v1/orders/0"), 404, "order_not_found")
    assert_error(await api.get("alice", f"/api/v1/orders/{2**70}"), 404, "order_not_found")
    assert_error(await api.get("alice", "/api/v1/orders/abc"), 400, "invalid_request")


async def test_list_orders_newest_first_with_filters_and_a_cursor(api: Api) -> None:
    placed = [
        await api.place("alice", symbol=symbol, side=side, quantity="0.010", price=price)
        for symbol, side, price in (
            ("BTC/USDT", "BUY", "100.00"),
            ("ETH/USDT", "SELL", "5000.00"),
            ("BTC/USDT", "SELL", "90000.00"),
            ("ETH/USDT", "BUY", "10.00"),
            ("BTC/USDT", "BUY", "101.00"),
        )
    ]
    await api.place("bob", side="BUY", quantity="0.010", price="102.00")  # not alice's
    cancelled = await api.delete("alice", f"/api/v1/orders/{placed[0]['id']}")
    assert cancelled.status_code == 200

    seen, cursor = [], None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = await api.get("alice", "/api/v1/orders", **params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"orders", "next_cursor"} and len(body["orders"]) <= 2
        seen += [o["id"] for o in body["orders"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [o["id"] for o in reversed(placed)]

    by = {}
    for name, params in {
        "btc": {"symbol": "BTC/USDT"},
        "sells": {"side": "SELL"},
        "open btc buys": {"symbol": "BTC/USDT", "side": "BUY", "status": "OPEN"},
        "cancelled": {"status": "CANCELLED"},
    }.items():
        response = await api.get("alice", "/api/v1/orders", **params)
        assert response.status_code == 200, response.text
        by[name] = [o["id"] for o in response.json()["orders"]]
    ids = [o["id"] for o in placed]
    assert by["btc"] == [ids[4], ids[2], ids[0]]
    assert by["sells"] == [ids[2], ids[1]]
    assert by["open btc buys"] == [ids[4]]
    assert by["cancelled"] == [ids[0]]
    assert_error(await api.get("alice", "/api/v1/orders", symbol="DOGE/USDT"), 400, "unknown_symbol")
    assert_error(await api.get("alice", "/api/v1/orders", cursor="not-a-cursor"), 400, "invalid_request")


async def test_cancel_releases_funds_then_a_second_cancel_is_409(api: Api) -> None:
    order = await api.place("alice", side="BUY", quantity="1.000", price="1000.00")
    assert Decimal((await balances(api, "alice"))["USDT"]["reserved"]) == 1000
    response = await api.delete("alice", f"/api/v1/orders/{order['id']}")
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["id"] == order["id"] and cancelled["status"] == "CANCELLED"
    assert cancelled["remaining_quantity"] == "1.000"
    assert Decimal((await balances(api, "alice"))["USDT"]["reserved"]) == 0
    again = assert_error(await api.delete("alice", f"/api/v1/orders/{order['id']}"), 409, "order_conflict")
    assert "CANCELLED" in again["message"]
    assert_error(await api.delete("alice", "/api/v1/orders/424242"), 404, "order_not_found")


async def test_a_fill_trades_settles_and_shows_in_depth_trades_and_balances(api: Api) -> None:
    ask = await api.place("alice", side="SELL", quantity="1.500", price="50000.00")
    bid = await api.place("bob", side="BUY", quantity="0.500", price="50100.00")
    assert bid["status"] == "FILLED" and bid["filled_quantity"] == "0.500"
    maker = (await api.get("alice", f"/api/v1/orders/{ask['id']}")).json()
    assert maker["status"] == "PARTIALLY_FILLED" and maker["remaining_quantity"] == "1.000"
    assert_error(await api.delete("bob", f"/api/v1/orders/{bid['id']}"), 409, "order_conflict")

    depth = await api.get("carol", "/api/v1/depth", symbol="BTC/USDT", limit=5)
    assert depth.status_code == 200
    assert depth.json() == {
        "symbol": "BTC/USDT",
        "bids": [],
        "asks": [{"price": "50000.00", "quantity": "1.000", "orders": 1}],
    }

    public = (await api.get("carol", "/api/v1/trades", symbol="BTC/USDT")).json()
    assert public["next_cursor"] is None and len(public["trades"]) == 1
    trade = public["trades"][0]
    assert trade["price"] == "50000.00" and trade["quantity"] == "0.500" and trade["taker_side"] == "BUY"
    assert "bob" not in str(public) and "alice" not in str(public)  # who traded is nobody else's business
    assert not {"side", "order_id", "liquidity"} & set(trade)
    bobs = (await api.get("bob", "/api/v1/trades", mine="true")).json()["trades"]
    assert [(t["side"], t["order_id"], t["liquidity"]) for t in bobs] == [("BUY", bid["id"], "TAKER")]
    alices = (await api.get("alice", "/api/v1/trades", symbol="BTC/USDT", mine="true")).json()["trades"]
    assert [(t["side"], t["order_id"], t["liquidity"]) for t in alices] == [("SELL", ask["id"], "MAKER")]
    assert (await api.get("carol", "/api/v1/trades", mine="true")).json()["trades"] == []

    bob, alice = await balances(api, "bob"), await balances(api, "alice")
    assert Decimal(bob["BTC"]["available"]) == DEPOSITS["BTC"] + Decimal("0.5")
    assert Decimal(bob["USDT"]["total"]) == DEPOSITS["USDT"] - 25000
    assert Decimal(bob["USDT"]["reserved"]) == 0  # the price improvement came back at once
    assert Decimal(alice["USDT"]["available"]) == DEPOSITS["USDT"] + 25000
    assert Decimal(alice["BTC"]["reserved"]) == 1
    assert Decimal(alice["BTC"]["total"]) == DEPOSITS["BTC"] - Decimal("0.5")


async def test_trades_paginate_newest_first(api: Api) -> None:
    await api.place("alice", side="SELL", quantity="0.003", price="100.00")
    for _ in range(3):
        await api.place("bob", side="BUY", quantity="0.001", price="100.00")
    first = (await api.get("bob", "/api/v1/trades", symbol="BTC/USDT", limit=2)).json()
    assert len(first["trades"]) == 2 and first["next_cursor"]
    rest = (await api.get("bob", "/api/v1/trades", symbol="BTC/USDT", limit=2, cursor=first["next_cursor"])).json()
    ids = [t["id"] for t in first["trades"] + rest["trades"]]
    assert len(ids) == 3 and ids == sorted(ids, reverse=True) and rest["next_cursor"] is None


async def test_market_ioc_fok_and_post_only(api: Api) -> None:
    await api.place("alice", side="SELL", quantity="1.000", price="200.00")
    market = await api.place("bob", side="BUY", type="MARKET", quantity="0.400")
    assert market["type"] == "MARKET" and market["price"] is None and market["status"] == "FILLED"
    ioc = await api.place("bob", side="BUY", quantity="2.000", price="200.00", time_in_force="IOC")
    assert ioc["status"] == "EXPIRED" and ioc["filled_quantity"] == "0.600"
    fok = await api.place("bob", side="BUY", quantity="1.000", price="300.00", time_in_force="FOK")
    assert fok["filled_quantity"] == "0.000" and fok["status"] in ("EXPIRED", "REJECTED")
    await api.place("alice", side="SELL", quantity="1.000", price="250.00")
    post = await api.place("bob", side="BUY", quantity="1.000", price="260.00", post_only=True)
    assert post["post_only"] is True and post["filled_quantity"] == "0.000" and post["status"] != "OPEN"
    assert Decimal((await balances(api, "bob"))["USDT"]["reserved"]) == 0


async def test_insufficient_balance_is_422_and_leaves_nothing_behind(api: Api) -> None:
    before = await balances(api, "carol")
    error = assert_error(
        await api.client.post(
            "/api/v1/orders",
            json={"symbol": "BTC/USDT", "side": "BUY", "quantity": "100.000", "price": "60000.00"},
            headers=api.headers("carol"),
        ),
        422,
        "insufficient_balance",
    )
    assert error["details"] is None
    assert await balances(api, "carol") == before
    assert (await api.get("carol", "/api/v1/orders")).json() == {"orders": [], "next_cursor": None}
    assert_error(
        await api.client.post(
            "/api/v1/orders",
            json={"symbol": "ETH/USDT", "side": "SELL", "quantity": "100.001", "price": "1.00"},
            headers=api.headers("carol"),
        ),
        422,
        "insufficient_balance",
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"symbol": "DOGE/USDT"}, "unknown_symbol"),
        ({"price": "100.001"}, "invalid_price"),
        ({"quantity": "0.0001"}, "invalid_quantity"),
        ({"quantity": "0"}, "invalid_quantity"),
        ({"price": "0"}, "invalid_price"),
        ({"quantity": "1000.001"}, "invalid_quantity"),  # above the instrument's maximum
        ({"price": None}, "invalid_price"),  # a LIMIT order needs one
        ({"type": "MARKET"}, "invalid_price"),  # a MARKET order takes none
        ({"post_only": True, "time_in_force": "IOC"}, "invalid_order"),
        ({"price": "999999999999999999999999"}, "invalid_price"),  # beyond any 64-bit tick count
        ({"quantity": "999999999999999999999999.999"}, "invalid_quantity"),
    ],
)
async def test_invalid_orders_are_400_with_the_librarys_code(api: Api, fields: dict[str, object], code: str) -> None:
    body = {"symbol": "BTC/USDT", "side": "BUY", "quantity": "1.000", "price": "100.00", **fields}
    response = await api.client.post("/api/v1/orders", json=body, headers=api.headers("alice"))
    assert_error(response, 400, code)
    assert (await api.get("alice", "/api/v1/orders")).json()["orders"] == []


async def test_depth_and_trades_of_an_unknown_symbol_are_400(api: Api) -> None:
    assert_error(await api.get("alice", "/api/v1/depth", symbol="NOPE/USD"), 400, "unknown_symbol")
    assert_error(await api.get("alice", "/api/v1/trades", symbol="NOPE/USD"), 400, "unknown_symbol")
    assert_error(await api.get("alice", "/api/v1/depth"), 400, "invalid_request")  # symbol is required
    assert_error(await api.get("alice", "/api/v1/depth", symbol="BTC/USDT", limit=0), 400, "invalid_request")
    assert_error(await api.get("alice", "/api/v1/trades", limit=1001), 400, "invalid_request")
