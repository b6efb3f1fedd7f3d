"""Moved to :mod:`tradebook.cli.serve`; this name stays so existing imports keep working."""

from .cli.serve import add_server_commands, parse_ttl

__all__ = ["add_server_commands", "parse_ttl"]
