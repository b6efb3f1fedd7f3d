"""What the app's middleware and routes share: the service (once started), the authenticator, the metrics."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import TradebookError
from ..oms.service import OrderService
from .auth import Authenticator
from .metrics import Metrics

__all__ = ["API_PREFIX", "ORDERS", "USER", "AppState", "ErrorHook", "ServiceUnavailableError"]

#: Where the versioned API lives, and its order collection.
API_PREFIX = "/api/v1"
ORDERS = API_PREFIX + "/orders"
#: The ASGI scope key under which the authentication middleware leaves the caller's user id.
USER = "tradebook.user_id"

#: Called with ``(method, path, code)`` for every error response the app gives.
ErrorHook = Callable[[str, str, str], None]


class ServiceUnavailableError(TradebookError):
    """The app has no running service (it is starting or stopping): HTTP 503."""

    code = "service_unavailable"


class AppState:
    """The app's service (once started), authenticator and metrics; ``app.state.tradebook``."""

    def __init__(self, authenticator: Authenticator, metrics: Metrics) -> None:
        self.current: OrderService | None = None
        self.authenticator = authenticator
        self.metrics = metrics
        self.stopping = False

    @property
    def service(self) -> OrderService:
        """The running service; :class:`ServiceUnavailableError` while starting or stopping."""
        service = self.current
        if service is None or self.stopping:
            raise ServiceUnavailableError("the service is not running (starting up or shutting down)")
        return service

    def attach(self, service: OrderService) -> None:
        """Serve ``service`` from now on."""
        self.current = service
        self.metrics.bind(service)

    def on_error(self, method: str, path: str, code: str) -> None:
        """Count a refused placement by its error code (the :data:`ErrorHook` of the app)."""
        if method == "POST" and path == ORDERS:
            self.metrics.rejected(code)
