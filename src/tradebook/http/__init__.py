"""The HTTP API of the order service (the ``server`` extra: ``pip install "tradebook[server]"``).

:func:`create_app` builds an ASGI app (FastAPI) over an
:class:`~tradebook.oms.OrderService`; :func:`serve` runs it with uvicorn as
``tradebook serve`` does. Authentication is pluggable
(:class:`TokenAuthenticator`, the default, and :class:`TrustedHeaderAuthenticator`);
metrics need the ``metrics`` extra. See ``docs/http.md``.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
    import orjson  # noqa: F401
except ImportError as exc:
    raise ImportError(
        f'tradebook.http needs the server extra: pip install "tradebook[server]" (missing: {exc.name})',
        name=exc.name,
    ) from exc

from .app import API_PREFIX, DEFAULT_MAX_BODY_BYTES, ServiceUnavailableError, create_app
from .auth import (
    AuthenticationError,
    Authenticator,
    TokenAuthenticator,
    TrustedHeaderAuthenticator,
    issue_token,
    load_secret,
    verify_token,
)
from .errors import STATUS_BY_CODE, status_for
from .metrics import Metrics, PrometheusMetrics, create_metrics, prometheus_available
from .server import build_app, open_service, serve
from .settings import AccountConfig, ConfigError, ServerConfig, load_config, parse_account, parse_instrument

__all__ = [
    "API_PREFIX",
    "DEFAULT_MAX_BODY_BYTES",
    "STATUS_BY_CODE",
    "AccountConfig",
    "AuthenticationError",
    "Authenticator",
    "ConfigError",
    "Metrics",
    "PrometheusMetrics",
    "ServerConfig",
    "ServiceUnavailableError",
    "TokenAuthenticator",
    "TrustedHeaderAuthenticator",
    "build_app",
    "create_app",
    "create_metrics",
    "issue_token",
    "load_config",
    "load_secret",
    "open_service",
    "parse_account",
    "parse_instrument",
    "prometheus_available",
    "serve",
    "status_for",
    "verify_token",
]
