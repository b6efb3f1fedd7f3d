"""Prometheus metrics of the API and the order service (the ``metrics`` extra).

:func:`create_metrics` returns a :class:`PrometheusMetrics` on a registry of its
own (never the process-wide default, so several apps and test cases do not
collide), or a :class:`Metrics` that records nothing when ``prometheus_client``
is not installed or metrics are switched off; the API then has no ``/metrics``.

What is exported (all names start with ``tradebook_``):

============================================  =========  ==========================================
name                                          type       labels
============================================  =========  ==========================================
``orders_placed_total``                       counter    symbol, side, type
``orders_rejected_total``                     counter    reason (the error code)
``orders_cancelled_total``                    counter    symbol
``trades_total``                              counter    symbol
``traded_volume_total``                       counter    symbol (base asset units)
``traded_notional_total``                     counter    symbol (quote asset units)
``matching_latency_seconds``                  histogram  operation (place, cancel), symbol
``http_request_duration_seconds``             histogram  method, route
``http_requests_total``                       counter    method, route, status
``book_levels`` / ``book_orders``             gauge      symbol, side (top ``depth_levels`` levels)
``book_quantity`` / ``book_best_price``       gauge      symbol, side
``wallet_breaker_state``                      gauge      (0 closed, 1 half-open, 2 open)
``wallet_breaker_transitions_total``          counter    state
``info``                                      gauge      version, backend
============================================  =========  ==========================================

Volumes and prices are exported as floats: Prometheus stores nothing else.
They are for dashboards, never for accounting.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from typing import Any

from .. import BACKEND, __version__
from ..oms.breaker import BreakerState, CircuitBreakerWallet
from ..oms.service import OrderService, Placement

__all__ = ["BREAKER_STATE_VALUES", "Metrics", "PrometheusMetrics", "create_metrics", "prometheus_available"]

log = logging.getLogger("tradebook.http")

#: The number ``wallet_breaker_state`` reports for each state.
BREAKER_STATE_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def prometheus_available() -> bool:
    """True when ``prometheus_client`` can be imported."""
    try:
        importlib.import_module("prometheus_client")
    except ImportError:
        return False
    return True


class Metrics:
    """The events the API reports; this base records nothing (metrics off or unavailable)."""

    enabled = False

    def bind(self, service: OrderService) -> None:
        """Observe ``service`` (its books and its wallet's breaker) from now on."""

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered."""

    def placed(self, placement: Placement, seconds: float) -> None:
        """One order placed (not a replay), with the trades it made."""

    def rejected(self, reason: str) -> None:
        """One placement refused, by error code."""

    def cancelled(self, symbol: str, seconds: float) -> None:
        """One order cancelled."""

    def ws_connection(self, change: int) -> None:
        """A WebSocket connection opened (+1) or closed (-1)."""

    def ws_sent(self) -> None:
        """One WebSocket message sent."""

    def ws_drop(self) -> None:
        """One WebSocket connection's queue overflowed (a resync)."""

    def ws_closed_slow(self) -> None:
        """One WebSocket connection closed as a slow consumer (4008)."""

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        raise RuntimeError("metrics are disabled")


class PrometheusMetrics(Metrics):
    """Metrics recorded with ``prometheus_client`` on ``registry`` (a new one by default)."""

    enabled = True

    def __init__(self, registry: Any = None, *, depth_levels: int = 1000) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        self.depth_levels = depth_levels
        self._service: OrderService | None = None
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        reg = self.registry
        self._placed = Counter("tradebook_orders_placed", "Orders placed", ["symbol", "side", "type"], registry=reg)
        self._rejected = Counter(
            "tradebook_orders_rejected", "Placements refused, by error code", ["reason"], registry=reg
        )
        self._cancelled = Counter(
            "tradebook_orders_cancelled", "Orders cancelled through the API", ["symbol"], registry=reg
        )
        self._trades = Counter("tradebook_trades", "Trades", ["symbol"], registry=reg)
        self._volume = Counter("tradebook_traded_volume", "Traded quantity (base asset)", ["symbol"], registry=reg)
        self._notional = Counter("tradebook_traded_notional", "Traded notional (quote asset)", ["symbol"], registry=reg)
        self._matching = Histogram(
            "tradebook_matching_latency_seconds",
            "Time the order service takes per command: validation, reservation, persistence, matching, settlement",
            ["operation", "symbol"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self._latency = Histogram(
            "tradebook_http_request_duration_seconds",
            "HTTP request latency, from the first byte read to the response sent",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self._requests = Counter(
            "tradebook_http_requests", "HTTP requests answered", ["method", "route", "status"], registry=reg
        )
        self._transitions = Counter(
            "tradebook_wallet_breaker_transitions", "Wallet circuit breaker state changes", ["state"], registry=reg
        )
        self._ws_connections = Gauge("tradebook_ws_connections", "Open WebSocket connections", registry=reg)
        self._ws_sent = Counter("tradebook_ws_messages_sent", "WebSocket messages sent", registry=reg)
        self._ws_drops = Counter(
            "tradebook_ws_drops", "WebSocket queue overflows (each one a resync from snapshots)", registry=reg
        )
        self._ws_closed_slow = Counter(
            "tradebook_ws_closed_slow", "WebSocket connections closed as slow consumers (4008)", registry=reg
        )
        info = Gauge("tradebook_info", "The serving tradebook", ["version", "backend"], registry=reg)
        info.labels(__version__, BACKEND).set(1)
        reg.register(_StateCollector(self))

    def bind(self, service: OrderService) -> None:
        """Observe ``service``'s books and, if its wallet is a circuit breaker, the breaker."""
        self._service = service
        wallet = service.wallet
        if isinstance(wallet, CircuitBreakerWallet):
            for state in BreakerState:  # every series from the start, so rate() sees the first transition
                self._transitions.labels(state.value)
            wallet.listeners.append(self._breaker_changed)

    def _breaker_changed(self, state: BreakerState) -> None:
        self._transitions.labels(state.value).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered (the lookup costs more than the update)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count the request and observe its latency."""
        self._child(self._latency, method, route).observe(seconds)
        self._child(self._requests, method, route, str(status)).inc()

    def placed(self, placement: Placement, seconds: float) -> None:
        """Count the order and its trades; observe the service's latency."""
        order = placement.order
        symbol = order.symbol
        self._child(self._placed, symbol, order.side.value, order.type.value).inc()
        self._child(self._matching, "place", symbol).observe(seconds)
        trades = placement.all_trades if placement.triggered else placement.trades  # the stops' trades count too
        if trades:
            volume = sum(t.quantity for t in trades)
            notional = sum(t.price * t.quantity for t in trades)
            self._trades.labels(symbol).inc(len(trades))
            self._volume.labels(symbol).inc(float(volume))
            self._notional.labels(symbol).inc(float(notional))

    def rejected(self, reason: str) -> None:
        """Count one refused placement."""
        self._rejected.labels(reason).inc()

    def cancelled(self, symbol: str, seconds: float) -> None:
        """Count one cancel and observe its latency."""
        self._child(self._cancelled, symbol).inc()
        self._child(self._matching, "cancel", symbol).observe(seconds)

    def ws_connection(self, change: int) -> None:
        self._ws_connections.inc(change)

    def ws_sent(self) -> None:
        self._ws_sent.inc()

    def ws_drop(self) -> None:
        self._ws_drops.inc()

    def ws_closed_slow(self) -> None:
        self._ws_closed_slow.inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of everything."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _collect_state(self) -> Iterable[Any]:
        """Book depth and breaker gauges, read at scrape time."""
        from prometheus_client.core import GaugeMetricFamily

        service = self._service
        if service is None:
            return []
        levels = GaugeMetricFamily(
            "tradebook_book_levels", "Price levels in the book (top levels only)", labels=["symbol", "side"]
        )
        orders = GaugeMetricFamily("tradebook_book_orders", "Resting orders on those levels", labels=["symbol", "side"])
        quantity = GaugeMetricFamily(
            "tradebook_book_quantity", "Resting quantity on those levels", labels=["symbol", "side"]
        )
        best = GaugeMetricFamily("tradebook_book_best_price", "Best bid and best ask", labels=["symbol", "side"])
        out: list[Any] = [levels, orders, quantity, best]
        try:
            for symbol in service.instruments:
                depth = service.depth(symbol, self.depth_levels)
                for side, book_side in (("bid", depth.bids), ("ask", depth.asks)):
                    levels.add_metric([symbol, side], len(book_side))
                    orders.add_metric([symbol, side], sum(level[2] for level in book_side))
                    quantity.add_metric([symbol, side], float(sum(level[1] for level in book_side)))
                    if book_side:
                        best.add_metric([symbol, side], float(book_side[0][0]))
        except RuntimeError:  # the service is not started yet, or closed already
            out = []
        wallet = service.wallet
        if isinstance(wallet, CircuitBreakerWallet):
            state = GaugeMetricFamily(
                "tradebook_wallet_breaker_state", "Wallet circuit breaker: 0 closed, 1 half-open, 2 open"
            )
            state.add_metric([], BREAKER_STATE_VALUES[wallet.state])
            out.append(state)
        return out


class _StateCollector:
    """Adapts :meth:`PrometheusMetrics._collect_state` to the registry's collector protocol."""

    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Any]:
        return self._metrics._collect_state()


def create_metrics(enabled: bool = True, registry: Any = None) -> Metrics:
    """:class:`PrometheusMetrics` if ``enabled`` and ``prometheus_client`` is installed, else a no-op."""
    if not enabled:
        return Metrics()
    if not prometheus_available():
        log.warning('metrics are off: prometheus_client is not installed (pip install "tradebook[metrics]")')
        return Metrics()
    return PrometheusMetrics(registry)
