"""The new order types through the HTTP API, on every store: memory, SQLite and PostgreSQL.

Stops (waiting orders are listed as UNTRIGGERED, triggered by a trade, cancelled
with DELETE), icebergs (only the slice is in the depth), GTD with ``expire_at``
as epoch milliseconds or an RFC 3339 timestamp, market orders sized by
``quote_quantity``; every refusal in the one error shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _http_support import DEPOSITS, ETH, STORE_KINDS, Api, assert_error, close_api, open_api

from tradebook import Instrument

D = Decimal
#: BTC with a max_price: a STOP or TRAILING_STOP buy reserves max_price x quantity
BTC = Instrument("BTC/USDT", "0.01", "0.001", max_price="100000")
ORDERS = "/api/v1/orders"


@pytest.fixture(params=STORE_KINDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    opened, location = await open_api(request.param, tmp_path, instruments=(BTC, ETH))
    try:
        yield opened
    finally:
        await close_api(opened, location)


async def balance(api: Api, user: str, asset: str) -> tuple[Decimal, Decimal]:
    rows = (await api.get(user, "/api/v1/balances")).json()["balances"]
    row = next(r for r in rows if r["asset"] == asset)
    return D(row["available"]), D(row["reserved"])


async def order(api: Api, user: str, order_id: int) -> dict[str, Any]:
    response = await api.get(user, f"{ORDERS}/{order_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_stop_waits_as_untriggered_then_a_trade_triggers_it(api: Api) -> None:
    stop = await api.place("alice", side="SELL", type="STOP", quantity="1.000", stop_price="99.00")
    assert (stop["status"], stop["type"], stop["time_in_force"]) == ("UNTRIGGERED", "STOP", "GTC")
    assert (stop["stop_price"], stop["price"], stop["remaining_quantity"]) == ("99.00", None, "1.000")
    assert await balance(api, "alice", "BTC") == (DEPOSITS["BTC"] - 1, 1)
    listed = (await api.get("alice", ORDERS, status="UNTRIGGERED")).json()["orders"]
    assert [o["id"] for o in listed] == [stop["id"]]
    assert (await api.get("alice", "/api/v1/depth", symbol="BTC/USDT")).json()["asks"] == []

    await api.place("carol", side="BUY", quantity="2.000", price="99.00")
    await api.place("bob", side="SELL", quantity="0.500", price="99.00")  # a trade at 99 triggers the stop
    got = await order(api, "alice", stop["id"])
    assert (got["status"], got["filled_quantity"], got["remaining_quantity"]) == ("FILLED", "1.000", "0.000")
    assert await balance(api, "alice", "BTC") == (DEPOSITS["BTC"] - 1, 0)
    assert await balance(api, "alice", "USDT") == (DEPOSITS["USDT"] + 99, 0)
    trades = (await api.get("alice", "/api/v1/trades", mine="true")).json()["trades"]
    assert [(t["order_id"], t["liquidity"], t["price"]) for t in trades] == [(stop["id"], "TAKER", "99.00")]
    counted = api.metrics.registry.get_sample_value("tradebook_trades_total", {"symbol": "BTC/USDT"})
    assert counted == 2  # bob's trade and the stop's, both placed by bob's request


async def test_delete_cancels_a_waiting_stop_and_releases_its_reservation(api: Api) -> None:
    stop = await api.place("alice", side="BUY", type="STOP", quantity="0.500", stop_price="120.00")
    assert await balance(api, "alice", "USDT") == (DEPOSITS["USDT"] - 50000, 50000)  # max_price x quantity
    response = await api.delete("alice", f"{ORDERS}/{stop['id']}")
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    assert await balance(api, "alice", "USDT") == (DEPOSITS["USDT"], 0)
    assert_error(await api.delete("alice", f"{ORDERS}/{stop['id']}"), 409, "order_conflict")


async def test_a_stop_limit_and_a_trailing_stop(api: Api) -> None:
    limit = await api.place(
        "alice", side="BUY", type="STOP_LIMIT", quantity="1.000", price="105.00", stop_price="104.00"
    )
    assert (limit["status"], limit["price"], limit["stop_price"]) == ("UNTRIGGERED", "105.00", "104.00")
    assert await balance(api, "alice", "USDT") == (DEPOSITS["USDT"] - 105, 105)
    await api.place("carol", side="SELL", quantity="0.100", price="100.00")
    await api.place("bob", side="BUY", quantity="0.100", price="100.00")
    trail = await api.place("alice", side="SELL", type="TRAILING_STOP", quantity="1.000", trailing_offset="2.50")
    assert (trail["status"], trail["trailing_offset"], trail["stop_price"]) == ("UNTRIGGERED", "2.50", "97.50")


async def test_an_iceberg_shows_its_slice_only(api: Api) -> None:
    ice = await api.place("alice", side="SELL", quantity="3.000", price="100.00", display_quantity="1.000")
    assert (ice["display_quantity"], ice["visible_quantity"], ice["quantity"]) == ("1.000", "1.000", "3.000")
    depth = (await api.get("bob", "/api/v1/depth", symbol="BTC/USDT")).json()
    assert depth["asks"] == [{"price": "100.00", "quantity": "1.000", "orders": 1}]
    taken = await api.place("bob", side="BUY", quantity="1.500", price="100.00")
    assert (taken["status"], taken["filled_quantity"]) == ("FILLED", "1.500")
    got = await order(api, "alice", ice["id"])
    assert (got["filled_quantity"], got["visible_quantity"], got["remaining_quantity"]) == ("1.500", "0.500", "1.500")
    assert await balance(api, "alice", "BTC") == (DEPOSITS["BTC"] - 3, D("1.5"))
    cancelled = (await api.delete("alice", f"{ORDERS}/{ice['id']}")).json()
    assert (cancelled["status"], cancelled["visible_quantity"]) == ("CANCELLED", "0.000")
    assert await balance(api, "alice", "BTC") == (DEPOSITS["BTC"] - D("1.5"), 0)


@pytest.mark.parametrize(
    ("expire_at", "millis"),
    [
        (1893456000000, 1893456000000),
        ("2030-01-01T00:00:00Z", 1893456000000),
        ("2030-01-01T02:00:00.250+02:00", 1893456000250),
        ("2030-01-01t00:00:00.0001z", 1893456000001),  # rounded up to the millisecond
    ],
)
async def test_gtd_takes_epoch_milliseconds_or_rfc_3339_and_answers_rfc_3339(
    api: Api, expire_at: Any, millis: int
) -> None:
    placed = await api.place("alice", side="BUY", quantity="1.000", price="90.00", expire_at=expire_at)
    assert placed["time_in_force"] == "GTD"  # implied by expire_at
    expected = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=millis)
    assert placed["expire_at"] == expected.isoformat(timespec="milliseconds")
    assert placed["status"] == "OPEN"
    expired = await api.service.advance_time(expected)
    assert [o.id for o in expired] == [placed["id"]]
    assert (await order(api, "alice", placed["id"]))["status"] == "EXPIRED"
    assert await balance(api, "alice", "USDT") == (DEPOSITS["USDT"], 0)


async def test_a_gtd_order_already_past_expires_at_once(api: Api) -> None:
    placed = await api.place(
        "alice", side="BUY", quantity="1.000", price="90.00", time_in_force="GTD", expire_at="2001-01-01T00:00:00Z"
    )
    assert placed["status"] == "EXPIRED" and placed["expire_at"] == "2001-01-01T00:00:00.000+00:00"
    assert await balance(api, "alice", "USDT") == (DEPOSITS["USDT"], 0)


async def test_a_market_buy_sized_by_quote_quantity(api: Api) -> None:
    await api.place("carol", side="SELL", quantity="1.000", price="100.00")
    await api.place("carol", side="SELL", quantity="1.000", price="110.00")
    placed = await api.place("bob", side="BUY", type="MARKET", quote_quantity="155.00")
    assert (placed["quantity"], placed["remaining_quantity"], placed["quote_quantity"]) == (
        None,
        None,
        "155.00000",
    )  # the scale of tick x lot
    assert (placed["status"], placed["filled_quantity"], placed["time_in_force"]) == ("FILLED", "1.500", "IOC")
    assert await balance(api, "bob", "USDT") == (DEPOSITS["USDT"] - 155, 0)  # 100 + 0.5 x 110: the whole budget
    sold = await api.place("bob", side="SELL", type="MARKET", quote_quantity="50.00")
    assert sold["status"] == "EXPIRED" and sold["filled_quantity"] == "0.000"  # no bids


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"side": "SELL", "type": "STOP", "quantity": "1.000"}, "invalid_order"),  # no stop_price
        ({"side": "SELL", "quantity": "1.000", "price": "1.00", "stop_price": "1.00"}, "invalid_order"),
        ({"side": "SELL", "type": "STOP", "quantity": "1.000", "stop_price": "1.001"}, "invalid_price"),
        ({"side": "SELL", "type": "STOP", "quantity": "1.000", "price": "1.00", "stop_price": "1.00"}, "invalid_price"),
        ({"symbol": "ETH/USDT", "side": "BUY", "type": "STOP", "quantity": "1.000", "stop_price": "1.00"},
         "invalid_order"),  # no max_price to reserve against
        ({"side": "SELL", "type": "TRAILING_STOP", "quantity": "1.000"}, "invalid_order"),
        ({"side": "SELL", "quantity": "1.000", "price": "1.00", "display_quantity": "1.000"}, "invalid_quantity"),
        ({"side": "SELL", "type": "MARKET", "quantity": "1.000", "display_quantity": "0.100"}, "invalid_order"),
        ({"side": "SELL", "quantity": "1.000", "price": "1.00", "time_in_force": "GTD"}, "invalid_order"),
        ({"side": "SELL", "quantity": "1.000", "price": "1.00", "expire_at": -1}, "invalid_order"),
        ({"side": "SELL", "quantity": "1.000", "price": "1.00", "expire_at": 10**30}, "invalid_order"),
        ({"side": "SELL", "quantity": "1.000", "price": "1.00", "expire_at": "1969-12-31T23:59:59Z"}, "invalid_order"),
        ({"side": "SELL", "quantity": "1.000", "price": "1.00", "time_in_force": "IOC", "expire_at": 5},
         "invalid_order"),
        ({"side": "SELL", "type": "MARKET", "quantity": "1.000", "expire_at": 5}, "invalid_order"),
        ({"side": "BUY", "type": "MARKET", "quantity": "1.000", "quote_quantity": "10"}, "invalid_order"),
        ({"side": "BUY", "type": "MARKET", "quote_quantity": "10.000001"}, "invalid_quantity"),
        ({"side": "BUY", "type": "MARKET", "quote_quantity": "0"}, "invalid_quantity"),
        ({"side": "BUY", "type": "MARKET", "time_in_force": "FOK", "quote_quantity": "10"}, "invalid_order"),
        ({"side": "BUY", "price": "1.00", "quote_quantity": "10"}, "invalid_order"),
        ({"side": "BUY", "price": "1.00"}, "invalid_quantity"),  # neither quantity nor quote_quantity
    ],
)  # fmt: skip
async def test_bad_combinations_are_400_in_the_one_error_shape(api: Api, fields: dict[str, Any], code: str) -> None:
    response = await api.client.post(ORDERS, json={"symbol": "BTC/USDT", **fields}, headers=api.headers("alice"))
    assert_error(response, 400, code)
    assert (await api.get("alice", ORDERS)).json()["orders"] == []
    assert await balance(api, "alice", "USDT") == (DEPOSITS["USDT"], 0)
