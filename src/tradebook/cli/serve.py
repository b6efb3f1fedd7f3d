"""``tradebook serve``: the HTTP API over an order service, configured by a file and flags.

It needs the ``server`` extra (``pip install "tradebook[server]"``), imported
only when the command runs, so the rest of the ``tradebook`` command works
without it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._args import import_http, parse_ttl

__all__ = ["add_command", "parse_ttl"]


def _run(args: argparse.Namespace) -> int:
    http = import_http()
    if http is None:
        return 2
    try:
        config = http.load_config(args.config) if args.config else http.ServerConfig()
        instruments = tuple(http.parse_instrument(text) for text in args.instrument or ())
        accounts = tuple(http.parse_account(text) for text in args.account or ())
        config = config.replace(
            host=args.host,
            port=args.port,
            database=args.database,
            schema=args.schema,
            auth_mode=args.auth,
            secret_env=args.secret_env,
            user_header=args.user_header,
            max_body_bytes=args.max_body_bytes,
            log_level=args.log_level,
            shutdown_timeout=args.shutdown_timeout,
            header_timeout=args.header_timeout,
            max_connections=args.max_connections,
            max_token_lifetime=args.max_token_lifetime,
            metrics=False if args.no_metrics else None,
            access_log=False if args.no_access_log else None,
            wallet_breaker=False if args.no_wallet_breaker else None,
            instruments=instruments or None,
            accounts=(config.accounts + accounts) if accounts else None,
        )
        if config.auth_mode == "token":
            http.load_secret(config.secret_env)  # fail now, with the fix in the message
    except (http.ConfigError, OSError) as exc:
        print(f"tradebook serve: {exc}", file=sys.stderr)
        return 2
    return int(http.serve(config))


def add_command(commands: Any) -> None:
    """Add ``serve`` to the ``tradebook`` command's subparsers."""
    serve = commands.add_parser(
        "serve",
        help="run the HTTP order-management API (SQLite by default)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Run the HTTP API over an order service with uvicorn. Orders, trades and balances live in a SQLite\n"
            "file in the working directory (tradebook.db) unless --database names another file or a\n"
            "postgresql:// URL (the postgres extra); 'memory' keeps everything in memory. On start the service\n"
            "recovers from the database. SIGINT or SIGTERM stop it gracefully: the listener closes, in-flight\n"
            "requests finish, then the service and the database close. Logs are JSON lines on stderr.\n\n"
            "Authentication is a signed bearer token (see 'tradebook token'; the secret comes from the\n"
            "environment variable TRADEBOOK_AUTH_SECRET, at least 32 characters) unless --auth trusted-header\n"
            "takes the user id from a header set by an authenticating gateway in front of this server."
        ),
        epilog=(
            "configuration file (TOML, or JSON with the same structure); flags override it:\n\n"
            "  [server]     host, port, database, schema, max_body_bytes, metrics, access_log,\n"
            "               log_level, shutdown_timeout, header_timeout, max_connections\n"
            '  [auth]       mode = "token" | "trusted-header", secret_env, user_header,\n'
            "               max_token_lifetime (seconds)\n"
            "  [fees]       maker_fee_rate, taker_fee_rate (decimal strings), fee_account\n"
            "  [wallet]     breaker (true/false), breaker_threshold, breaker_reset,\n"
            "               timeout (seconds per call to a PostgreSQL wallet)\n"
            "  [[instruments]]  symbol, tick_size, lot_size, and optionally min_quantity, max_quantity,\n"
            "                   min_notional, min_price, max_price (decimals as strings)\n"
            '  [[accounts]]     user, balances = { ASSET = "amount", ... } (credited once per asset)\n\n'
            "example:\n"
            "  export TRADEBOOK_AUTH_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')\n"
            "  tradebook serve --instrument BTC/USDT:0.01:0.001 --account alice:USDT=100000 "
            "--account bob:BTC=10\n"
            '  curl -H "Authorization: Bearer $(tradebook token alice)" localhost:8000/api/v1/balances\n\n'
            "See docs/http.md for the endpoints, errors and metrics."
        ),
    )
    serve.add_argument("--config", metavar="FILE", help="a .toml or .json configuration file")
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default: 8000)")
    serve.add_argument(
        "--database",
        metavar="URL",
        help="SQLite file (or sqlite:///path), postgresql://user@host/db, or 'memory' (default: tradebook.db)",
    )
    serve.add_argument("--schema", help="PostgreSQL schema (default: public)")
    serve.add_argument(
        "--instrument",
        action="append",
        metavar="SYMBOL:TICK:LOT",
        help="a tradable instrument, such as BTC/USDT:0.01:0.001; repeat for more; replaces the file's "
        "(default when none is configured: BTC/USDT:0.01:0.001)",
    )
    serve.add_argument(
        "--account",
        action="append",
        metavar="USER:ASSET=AMOUNT[,...]",
        help="a demo account credited with these balances when it holds none of an asset; repeat for more",
    )
    serve.add_argument(
        "--auth", choices=("token", "trusted-header"), help="how callers are identified (default: token)"
    )
    serve.add_argument(
        "--secret-env",
        metavar="NAME",
        help="environment variable holding the token secret (default: TRADEBOOK_AUTH_SECRET)",
    )
    serve.add_argument("--user-header", metavar="NAME", help="the trusted header with the user id (default: X-User-ID)")
    serve.add_argument("--max-body-bytes", type=int, metavar="N", help="larger request bodies get 413 (default: 65536)")
    serve.add_argument("--no-metrics", action="store_true", help="no Prometheus metrics and no /metrics")
    serve.add_argument("--no-access-log", action="store_true", help="no log line per request")
    serve.add_argument("--no-wallet-breaker", action="store_true", help="call the wallet without a circuit breaker")
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error", "critical"), help="(default: info)")
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        metavar="SECONDS",
        help="how long in-flight requests may take to finish after SIGTERM (default: 30)",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection that has not sent a whole request head within this time of opening or of its "
        "previous response (default: 10)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="connections served at once; one beyond gets /health or 503, then is closed (default: 1000)",
    )
    serve.add_argument(
        "--max-token-lifetime",
        type=parse_ttl,
        metavar="DURATION",
        help="refuse tokens that expire later than this from now: 3600, 15m, 12h, 30d (default: 30d)",
    )
    serve.set_defaults(run=_run)
