"""What the HTTP API tests share: the app over a store, clients with tokens, the error check.

A module of its own, not conftest.py: tests/, tests/oms and tests/http each
have a conftest.py, and ``from conftest import ...`` would reach whichever one
pytest imported first.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tradebook import Instrument, WalletUnavailableError
from tradebook.http import TokenAuthenticator, create_app
from tradebook.http.metrics import PrometheusMetrics
from tradebook.oms import OrderService

_OMS_TESTS = Path(__file__).resolve().parent.parent / "oms"
if str(_OMS_TESTS) not in sys.path:
    sys.path.append(str(_OMS_TESTS))

from _stores import drop_schema, new_schema_name, open_store, postgres_dsn_or_skip, store_location  # noqa: E402, F401

SECRET = "tests-secret-0123456789-0123456789-abcdef"
BTC = Instrument("BTC/USDT", "0.01", "0.001", max_quantity="1000")
ETH = Instrument("ETH/USDT", "0.01", "0.001")
INSTRUMENTS = (BTC, ETH)
USERS = ("alice", "bob", "carol")
DEPOSITS = {"BTC": Decimal(10), "ETH": Decimal(100), "USDT": Decimal(1_000_000)}
STORE_KINDS = ("memory", "sqlite", "postgres")


@dataclass
class Api:
    """An app over a started service, an httpx client on it, and a token per user."""

    kind: str
    client: httpx.AsyncClient
    service: OrderService
    wallet: Any
    repository: Any
    auth: TokenAuthenticator
    metrics: PrometheusMetrics
    app: Any
    _headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        """The Authorization header of ``user``."""
        if user not in self._headers:
            self._headers[user] = {"Authorization": f"Bearer {self.auth.issue(user, ttl=3600)}"}
        return self._headers[user]

    async def place(self, user: str, expect: int | None = 201, **fields: Any) -> dict[str, Any]:
        """POST an order (BTC/USDT limit by default); check the status; return the JSON body."""
        body = {"symbol": "BTC/USDT", **fields}
        response = await self.client.post("/api/v1/orders", json=body, headers=self.headers(user))
        if expect is not None:
            assert response.status_code == expect, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, user: str, path: str, **params: Any) -> httpx.Response:
        """GET ``path`` as ``user``."""
        return await self.client.get(path, params=params, headers=self.headers(user))

    async def delete(self, user: str, path: str) -> httpx.Response:
        """DELETE ``path`` as ``user``."""
        return await self.client.delete(path, headers=self.headers(user))


async def open_api(
    kind: str,
    tmp_path: Path,
    *,
    wrap_wallet: Callable[[Any], Any] | None = None,
    instruments: tuple[Instrument, ...] = INSTRUMENTS,
    **app_options: Any,
) -> tuple[Api, dict[str, Any]]:
    """Open a store of ``kind``, fund the users, start a service and put an app in front of it.

    ``wrap_wallet`` puts something between the service and the store's wallet
    (a circuit breaker, a wallet that fails on demand).
    """
    location = store_location(kind, tmp_path)
    store = await open_store(kind, **location)
    for user in USERS:
        for asset, amount in DEPOSITS.items():
            await store.wallet.deposit(user, asset, amount)
    wallet = store.wallet if wrap_wallet is None else wrap_wallet(store.wallet)
    service = OrderService(store.repository, wallet, instruments)
    await service.start()
    auth = TokenAuthenticator(SECRET)
    metrics = PrometheusMetrics()
    app = create_app(service, authenticator=auth, metrics=metrics, **app_options)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    api = Api(kind, client, service, store.wallet, store.repository, auth, metrics, app)
    return api, location


async def close_api(api: Api, location: dict[str, Any]) -> None:
    """Close what :func:`open_api` opened (and drop a PostgreSQL schema)."""
    await api.client.aclose()
    await api.service.close()
    await api.repository.close()
    await api.wallet.close()
    if api.kind == "postgres":
        await drop_schema(location["dsn"], location["schema"])


class SwitchableWallet:
    """A wallet that answers normally until switched off, then raises WalletUnavailableError."""

    def __init__(self, wallet: Any) -> None:
        self.wallet = wallet
        self.down = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.wallet, name)
        if name in ("close", "deposit"):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise WalletUnavailableError("the wallet is down (test)")
            return await target(*args, **kwargs)

        return call


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the one error shape with this status and code; returns the error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error
