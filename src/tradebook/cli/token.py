"""``tradebook token``: print a signed bearer token for ``tradebook serve`` (the ``server`` extra)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._args import import_http, parse_ttl

__all__ = ["add_command"]


def _run(args: argparse.Namespace) -> int:
    http = import_http()
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


def add_command(commands: Any) -> None:
    """Add ``token`` to the ``tradebook`` command's subparsers."""
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
    token.set_defaults(run=_run)
