"""Running the API: the service's life cycle over the configured stores, JSON logs, uvicorn.

:func:`serve` is what ``tradebook serve`` calls. It opens the repository and
the wallet (SQLite file, PostgreSQL URL, or ``memory``), wraps the wallet in a
:class:`~tradebook.oms.CircuitBreakerWallet`, starts an
:class:`~tradebook.oms.OrderService` (which recovers from the database), credits
demo accounts, and serves with uvicorn until SIGINT or SIGTERM. Shutdown is
graceful: the listener closes, in-flight requests finish (up to
``shutdown_timeout`` seconds), then the service, the wallet and the repository
close, leaving the database consistent.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI

from .. import BACKEND, __version__
from ..oms.breaker import CircuitBreakerWallet
from ..oms.service import OrderService
from ..oms.stores import open_stores, redact
from .app import create_app
from .auth import Authenticator, TokenAuthenticator, TrustedHeaderAuthenticator
from .connections import guarded_protocol
from .metrics import create_metrics
from .settings import ServerConfig

__all__ = ["JsonFormatter", "build_app", "configure_logging", "make_authenticator", "open_service", "redact", "serve"]

log = logging.getLogger("tradebook.http")

# LogRecord attributes that are not "extra" fields (plus uvicorn's colour duplicate of the message).
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, any extra fields, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "info", stream: Any = None) -> None:
    """Send the ``tradebook`` and ``uvicorn`` loggers to ``stream`` (stderr) as JSON lines at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("tradebook", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = [handler] if name in ("tradebook", "uvicorn") else []
        logger.setLevel(level.upper())
        logger.propagate = name not in ("tradebook", "uvicorn")


async def _fund(wallet: Any, config: ServerConfig) -> None:
    """Credit each demo account's assets it holds none of (so a restart does not credit them again)."""
    for account in config.accounts:
        held = await wallet.balances(account.user_id)
        for asset, amount in account.balances.items():
            if asset not in held:
                await wallet.deposit(account.user_id, asset, amount)
                log.info(
                    "credited demo account %s with %s %s",
                    account.user_id,
                    amount,
                    asset,
                    extra={"user_id": account.user_id, "asset": asset, "amount": str(amount)},
                )


@asynccontextmanager
async def open_service(config: ServerConfig) -> AsyncIterator[OrderService]:
    """Open the stores, start the service (recovering from them), credit demo accounts; close it all after."""
    repository, wallet = await open_stores(config.database_target)
    try:
        await _fund(wallet, config)
        client: Any = wallet
        if config.wallet_breaker:
            client = CircuitBreakerWallet(
                wallet,
                failure_threshold=config.breaker_threshold,
                reset_timeout=config.breaker_reset,
                # A PostgreSQL wallet is across a network: bound each call. SQLite and memory wallets run
                # on the event loop itself, where a timeout could interrupt nothing and costs a task per call.
                call_timeout=config.wallet_timeout if config.is_postgres else None,
            )
        service = OrderService(
            repository,
            client,
            config.tradable,
            maker_fee_rate=config.maker_fee_rate,
            taker_fee_rate=config.taker_fee_rate,
            fee_account=config.fee_account,
        )
        report = await service.start()
        log.info(
            "order service started",
            extra={
                "database": redact(config.database),
                "instruments": [inst.symbol for inst in config.tradable],
                "orders_restored": report.orders_restored,
                "pending_removed": len(report.pending_removed),
                "wallet_ops_applied": report.wallet_ops_applied,
                "backend": BACKEND,
                "version": __version__,
            },
        )
        try:
            yield service
        finally:
            await service.close()
            log.info("order service closed")
    finally:
        await wallet.close()
        await repository.close()
        log.info("database closed", extra={"database": redact(config.database)})


def make_authenticator(config: ServerConfig) -> Authenticator:
    """The authenticator ``config`` asks for (the token secret is read from the environment now)."""
    if config.auth_mode == "trusted-header":
        log.warning(
            "trusted-header authentication: any caller that can reach this server can act as any user",
            extra={"header": config.user_header},
        )
        return TrustedHeaderAuthenticator(config.user_header)
    return TokenAuthenticator.from_env(config.secret_env, max_lifetime=config.max_token_lifetime)


def build_app(config: ServerConfig, authenticator: Authenticator | None = None) -> FastAPI:
    """The app ``tradebook serve`` runs: it opens the service at startup and closes it at shutdown."""
    return create_app(
        open_service=lambda: open_service(config),
        authenticator=authenticator or make_authenticator(config),
        metrics=create_metrics(config.metrics),
        max_body_bytes=config.max_body_bytes,
        access_log_enabled=config.access_log,
        websocket_heartbeat=config.heartbeat,
    )


def serve(config: ServerConfig) -> int:
    """Serve ``config`` with uvicorn until SIGINT or SIGTERM; return the exit code."""
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    configure_logging(config.log_level)
    app = build_app(config)
    protocol = guarded_protocol(
        AutoHTTPProtocol, header_timeout=config.header_timeout, max_connections=config.max_connections
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            http=protocol,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=math.ceil(config.shutdown_timeout),
            server_header=False,
            proxy_headers=False,  # nothing here reads the client address or scheme
        )
    )
    server.run()
    # uvicorn reports a failed startup (say, the port is taken) by returning without serving.
    return 0 if server.started else 1
