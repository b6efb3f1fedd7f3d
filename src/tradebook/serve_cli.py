"""Moved to :mod:`tradebook.cli.serve` and :mod:`tradebook.cli.token`; this name stays so existing imports work."""

from __future__ import annotations

from typing import Any

from .cli import serve, token
from .cli._args import parse_ttl

__all__ = ["add_server_commands", "parse_ttl"]


def add_server_commands(commands: Any) -> None:
    """Add ``serve`` and ``token`` to the ``tradebook`` command's subparsers."""
    serve.add_command(commands)
    token.add_command(commands)
