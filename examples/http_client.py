"""Talk to tradebook's HTTP API as a client: bearer tokens, JSON orders with decimal strings, one error shape.

The server side is ``tradebook.http.create_app`` over an ``OrderService`` (what
``tradebook serve`` runs); here it runs in this process and the client reaches
it through httpx's ASGI transport, so no port is opened. Against a real server,
use ``httpx.AsyncClient(base_url="http://127.0.0.1:8000")`` and a token from
``tradebook token USER`` instead.

Needs the server extra and httpx: ``pip install "tradebook[server]" httpx``.
Run it with ``python examples/http_client.py``.
"""

from __future__ import annotations

import asyncio
import secrets
import sys

try:
    import httpx

    from tradebook.http import TokenAuthenticator, create_app
except ImportError as exc:
    sys.exit(f'this example needs the server extra and httpx: pip install "tradebook[server]" httpx ({exc})')

from tradebook import Instrument
from tradebook.oms import MemoryOrderRepository, MemoryWallet, OrderService


async def main() -> None:
    wallet = MemoryWallet()
    await wallet.deposit("alice", "BTC", "2")
    await wallet.deposit("bob", "USDT", "100000")
    auth = TokenAuthenticator(secrets.token_urlsafe(32))  # the server's secret: it signs and checks tokens

    async with OrderService(MemoryOrderRepository(), wallet, [Instrument("BTC/USDT", "0.01", "0.001")]) as service:
        app = create_app(service, authenticator=auth)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tradebook") as http:
            alice = {"Authorization": f"Bearer {auth.issue('alice', ttl=3600)}"}
            bob = {"Authorization": f"Bearer {auth.issue('bob', ttl=3600)}"}

            # Prices and quantities are decimal strings both ways, never JSON numbers.
            ask = {"symbol": "BTC/USDT", "side": "SELL", "quantity": "0.500", "price": "60000.00"}
            r = await http.post("/api/v1/orders", json=ask, headers=alice)
            print(f"POST /api/v1/orders -> {r.status_code} {r.headers['location']}: {r.json()['status']}")

            bid = {
                "symbol": "BTC/USDT",
                "side": "BUY",
                "quantity": "0.200",
                "price": "60010.00",
                "client_order_id": "b-1",
            }
            r = await http.post("/api/v1/orders", json=bid, headers=bob)
            print(f"bob buys: {r.status_code} {r.json()['status']}, filled {r.json()['filled_quantity']}")
            again = await http.post("/api/v1/orders", json=bid, headers=bob)  # a retry of the same client_order_id
            print(f"the retry: {again.status_code} (the original order, id {again.json()['id']}, nothing new)")

            r = await http.get("/api/v1/depth", params={"symbol": "BTC/USDT", "limit": 5}, headers=bob)
            print(f"GET /api/v1/depth -> {r.json()}")
            r = await http.get("/api/v1/trades", params={"symbol": "BTC/USDT", "mine": "true"}, headers=bob)
            print(f"bob's trades: {r.json()['trades']}")
            r = await http.get("/api/v1/balances", headers=bob)
            print(f"bob's balances: {r.json()}")

            # Every failure has the same shape, and its code maps to the HTTP status.
            for body, headers in (
                ({**ask, "price": "60000.005"}, alice),  # off the tick grid
                ({**bid, "quantity": "100", "client_order_id": None}, bob),  # more than bob can pay
                (ask, {"Authorization": "Bearer not-a-token"}),  # not authenticated
            ):
                r = await http.post("/api/v1/orders", json=body, headers=headers)
                print(f"{r.status_code}: {r.json()['error']['code']}")
            r = await http.get("/health")
            print(f"GET /health -> {r.status_code} {r.json()['status']}")


if __name__ == "__main__":
    asyncio.run(main())
