"""``tradebook serve`` and ``tradebook token``: the HTTP API from the command line.

Both need the ``server`` extra (``pip install "tradebook[server]"``); this module
imports it only when one of them runs, so the rest of the ``tradebook`` command
works without it.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

__all__ = ["add_server_commands", "parse_ttl"]

_SERVER_EXTRA = 'the HTTP server needs the server extra: pip install "tradebook[server]"'
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_ttl(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``15m``, ``12h`` or ``30d``."""
    match = re.fullmatch(r"\s*([0-9]{1,9})\s*([smhd]?)\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"not a positive duration such as 3600, 15m, 12h or 30d: {text!r}")
    return int(match.group(1)) * _TTL_UNITS[match.group(2)]


def _import_http() -> Any:
    try:
        import tradebook.http as http
    except ImportError as exc:
        # tradebook.http's own ImportError already names the extra to install; say it once.
        message = str(exc) if "tradebook[server]" in str(exc) else f"{_SERVER_EXTRA} ({exc})"
        print(f"tradebook: {message}", file=sys.stderr)
        return None
    return http


def _serve(args: argparse.Namespace) -> int:
    http = _import_http()
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


def _token(args: argparse.Namespace) -> int:
    http = _import_http()
    if http is None:
        return 2
    try:
        secret = http.load_secret(args.secret_env)
        token = http.issue_token(args.user, secret, ttl=args.ttl)
    except (http.ConfigError, ValueError) as exc:
        print(f"tradebook token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def add_server_commands(commands: Any) -> None:
    """Add ``serve`` and ``token`` to the ``tradebook`` command's subparsers."""
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
    serve.set_defaults(run=_serve)

    token = commands.add_parser(
        "token",
        help="print a signed bearer token for a user",
        description=(
            "Print a bearer token for USER, signed with HMAC-SHA256 with the secret in TRADEBOOK_AUTH_SECRET "
            "(or --secret-env), that 'tradebook serve' accepts until it expires. Send it as "
            "'Authorization: Bearer TOKEN'."
        ),
    )
    token.add_argument("user", metavar="USER", help="the user id the token names")
    token.add_argument(
        "--ttl", type=parse_ttl, default=86_400, metavar="DURATION", help="lifetime: 3600, 15m, 12h, 30d (default: 24h)"
    )
    token.add_argument(
        "--secret-env",
        metavar="NAME",
        default="TRADEBOOK_AUTH_SECRET",
        help="environment variable holding the secret (default: TRADEBOOK_AUTH_SECRET)",
    )
    token.set_defaults(run=_token)
