"""What several commands share: argument types and the lazy import of the ``server`` extra."""

from __future__ import annotations

import argparse
import re
import sys
from types import ModuleType

__all__ = ["count", "import_http", "parse_ttl", "positive_int"]

_SERVER_EXTRA = 'the HTTP server needs the server extra: pip install "tradebook[server]"'
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return _integer(text, 1, "must be at least 1")


def count(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return _integer(text, 0, "must be 0 or more")


def _integer(text: str, low: int, below: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{below}: {value}")
    return value


def parse_ttl(text: str) -> int:
    """Seconds from ``90``, ``90s``, ``15m``, ``12h`` or ``30d``."""
    match = re.fullmatch(r"\s*([0-9]{1,9})\s*([smhd]?)\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"not a positive duration such as 3600, 15m, 12h or 30d: {text!r}")
    return int(match.group(1)) * _TTL_UNITS[match.group(2)]


def import_http() -> ModuleType | None:
    """:mod:`tradebook.http`, or ``None`` after saying on stderr which extra to install."""
    try:
        import tradebook.http as http
    except ImportError as exc:
        # tradebook.http's own ImportError already names the extra to install; say it once.
        message = str(exc) if "tradebook[server]" in str(exc) else f"{_SERVER_EXTRA} ({exc})"
        print(f"tradebook: {message}", file=sys.stderr)
        return None
    return http
