"""Prometheus metrics: what /metrics exports, registries of their own, and running without the extras."""

from __future__ import annotations

import importlib
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from _http_support import SECRET, Api, SwitchableWallet, assert_error, close_api, open_api
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tradebook.http import TokenAuthenticator, create_app
from tradebook.http.metrics import Metrics, PrometheusMetrics, create_metrics, prometheus_available
from tradebook.oms import CircuitBreakerWallet

ROOT = Path(__file__).resolve().parents[2]


async def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_orders_trades_rejections_latency_and_books(memory_api: Api) -> None:
    api = memory_api
    await api.place("alice", side="SELL", quantity="2.000", price="100.00")
    await api.place("alice", side="SELL", quantity="1.000", price="101.00")
    await api.place("bob", side="BUY", quantity="0.500", price="100.00", client_order_id="b")
    await api.place("bob", expect=200, side="BUY", quantity="0.500", price="100.00", client_order_id="b")  # replay
    resting = await api.place("carol", side="BUY", quantity="0.250", price="99.00")
    await api.delete("carol", f"/api/v1/orders/{resting['id']}")
    await api.place("carol", side="BUY", quantity="0.100", price="98.50")
    await api.place("carol", expect=422, side="BUY", quantity="999.000", price="99000.00")
    await api.place("carol", expect=400, side="BUY", quantity=1, price="1.00")
    await api.place("carol", expect=400, symbol="NOPE/USD", side="BUY", quantity="1", price="1")
    await api.client.post("/api/v1/orders", json={})  # no credentials
    await api.client.post("/api/v1/orders", content=b"x" * 70_000, headers=api.headers("carol"))

    s = await scrape(api)
    assert value(s, "tradebook_orders_placed_total", symbol="BTC/USDT", side="SELL", type="LIMIT") == 2
    assert value(s, "tradebook_orders_placed_total", symbol="BTC/USDT", side="BUY", type="LIMIT") == 3
    for reason, count in (
        ("insufficient_balance", 1),
        ("invalid_request", 1),
        ("unknown_symbol", 1),
        ("unauthenticated", 1),
        ("payload_too_large", 1),
    ):
        assert value(s, "tradebook_orders_rejected_total", reason=reason) == count, reason
    assert value(s, "tradebook_orders_cancelled_total", symbol="BTC/USDT") == 1
    assert value(s, "tradebook_trades_total", symbol="BTC/USDT") == 1
    assert value(s, "tradebook_traded_volume_total", symbol="BTC/USDT") == 0.5
    assert value(s, "tradebook_traded_notional_total", symbol="BTC/USDT") == 50.0
    assert value(s, "tradebook_matching_latency_seconds_count", operation="place", symbol="BTC/USDT") == 5
    assert value(s, "tradebook_matching_latency_seconds_count", operation="cancel", symbol="BTC/USDT") == 1
    route = {"method": "POST", "route": "/api/v1/orders"}
    assert value(s, "tradebook_http_request_duration_seconds_count", **route) == 11
    assert value(s, "tradebook_http_requests_total", status="201", **route) == 5
    assert value(s, "tradebook_http_requests_total", status="413", **route) == 1
    by_id = {"method": "DELETE", "route": "/api/v1/orders/{order_id}", "status": "200"}
    assert value(s, "tradebook_http_requests_total", **by_id) == 1
    assert value(s, "tradebook_book_levels", symbol="BTC/USDT", side="ask") == 2
    assert value(s, "tradebook_book_levels", symbol="BTC/USDT", side="bid") == 1
    assert value(s, "tradebook_book_orders", symbol="BTC/USDT", side="ask") == 2
    assert value(s, "tradebook_book_quantity", symbol="BTC/USDT", side="ask") == 2.5
    assert value(s, "tradebook_book_best_price", symbol="BTC/USDT", side="ask") == 100.0
    assert value(s, "tradebook_book_best_price", symbol="BTC/USDT", side="bid") == 98.5
    assert ("tradebook_book_best_price", (("side", "bid"), ("symbol", "ETH/USDT"))) not in s  # empty side
    assert value(s, "tradebook_book_levels", symbol="ETH/USDT", side="bid") == 0
    assert any(name == "tradebook_info" for name, _ in s)
    assert not any(name.startswith("tradebook_wallet_breaker") for name, _ in s)  # no breaker here
    later = await scrape(api)
    assert value(later, "tradebook_http_requests_total", method="GET", route="/metrics", status="200") == 1


async def test_the_wallet_breaker_state_and_its_transitions(tmp_path: Path) -> None:
    switches: list[SwitchableWallet] = []

    def wrap(wallet: Any) -> Any:
        switches.append(SwitchableWallet(wallet))
        return CircuitBreakerWallet(switches[0], failure_threshold=1, reset_timeout=3600)

    api, location = await open_api("memory", tmp_path, wrap_wallet=wrap)
    try:
        assert value(await scrape(api), "tradebook_wallet_breaker_state") == 0
        switches[0].down = True
        await api.place("alice", expect=503, side="BUY", quantity="1.000", price="1.00")
        s = await scrape(api)
        assert value(s, "tradebook_wallet_breaker_state") == 2
        assert value(s, "tradebook_wallet_breaker_transitions_total", state="open") == 1
        assert value(s, "tradebook_orders_rejected_total", reason="wallet_unavailable") == 1
    finally:
        await close_api(api, location)


async def test_every_app_has_a_registry_of_its_own(memory_api: Api) -> None:
    second = create_app(memory_api.service, authenticator=TokenAuthenticator(SECRET))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as client:
        await memory_api.place("alice", side="BUY", quantity="1.000", price="1.00")
        other = await client.get("/metrics")
    assert "tradebook_orders_placed_total{" not in other.text
    assert 'tradebook_orders_placed_total{side="BUY"' in (await memory_api.client.get("/metrics")).text
    assert REGISTRY.get_sample_value("tradebook_orders_placed_total", {"symbol": "BTC/USDT"}) is None


async def test_metrics_switched_off(memory_api: Api) -> None:
    app = create_app(memory_api.service, authenticator=TokenAuthenticator(SECRET), metrics=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert_error(await client.get("/metrics"), 404, "not_found")
        response = await client.get("/api/v1/balances", headers=memory_api.headers("alice"))
        assert response.status_code == 200
        assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


def test_without_prometheus_client_metrics_are_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert prometheus_available()
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # what an import of a missing package does
    assert not prometheus_available()
    with caplog.at_level(logging.WARNING, logger="tradebook.http"):
        metrics = create_metrics(True)
    assert type(metrics) is Metrics and not metrics.enabled
    assert 'pip install "tradebook[metrics]"' in caplog.text
    with pytest.raises(RuntimeError, match="disabled"):
        metrics.render()
    assert type(create_metrics(False)) is Metrics


async def test_an_app_without_prometheus_client_has_no_metrics_endpoint(
    memory_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    app = create_app(memory_api.service, authenticator=TokenAuthenticator(SECRET))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert_error(await client.get("/metrics"), 404, "not_found")
        placed = await client.post(
            "/api/v1/orders",
            json={"symbol": "BTC/USDT", "side": "BUY", "quantity": "1.000", "price": "1.00"},
            headers=memory_api.headers("alice"),
        )
        assert placed.status_code == 201


def test_a_metrics_object_before_its_service_starts() -> None:
    metrics = PrometheusMetrics()
    text = metrics.render()[0].decode()
    assert "tradebook_info" in text and "tradebook_book_levels" not in text


def test_importing_tradebook_http_without_fastapi_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "tradebook.http" or m.startswith("tradebook.http.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(ImportError, match=r'pip install "tradebook\[server\]"'):
        importlib.import_module("tradebook.http")


def test_the_core_and_the_cli_work_without_the_extras(tmp_path: Path) -> None:
    blocker = (
        "import sys; [sys.modules.__setitem__(m, None) for m in ('fastapi', 'uvicorn', 'prometheus_client', 'orjson')]"
    )
    code = (
        f"{blocker}; import tradebook, tradebook.oms, tradebook.cli; "
        "print(tradebook.BACKEND, tradebook.cli.main(['serve', '--database', 'memory']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "2"  # serve's exit code without the extra
    assert 'pip install "tradebook[server]"' in result.stderr
