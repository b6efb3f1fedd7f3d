"""The ``tradebook`` command: one module per sub-command, wired here.

``demo`` (:mod:`.demo`) replays seeded order flow into a book; ``info``
(:mod:`.info`) says which backend is live and why; ``db`` (:mod:`.db`)
migrates and inspects an order-management database; ``serve`` (:mod:`.serve`)
runs the HTTP API and ``token`` (:mod:`.token`) prints a bearer token for it
(both need the ``server`` extra); ``--version`` prints the version.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__
from . import db, demo, info, serve, token

# What lived here before the split into modules stays importable from here.
from .demo import ADD as ADD
from .demo import AMEND_PRICE as AMEND_PRICE
from .demo import AMEND_QTY as AMEND_QTY
from .demo import CANCEL as CANCEL
from .demo import FILL as FILL
from .demo import LOT_SIZE as LOT_SIZE
from .demo import MID_PRICE as MID_PRICE
from .demo import TICK_SIZE as TICK_SIZE
from .demo import format_ladder as format_ladder
from .demo import generate_flow, replay
from .info import backend_lines as backend_lines

__all__ = ["generate_flow", "main", "replay"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tradebook`` command."""
    parser = argparse.ArgumentParser(
        prog="tradebook",
        description="tradebook: a fast, exact limit order book for Python (Cython core, pure-Python fallback).",
    )
    parser.add_argument("--version", action="version", version=f"tradebook {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (demo, info, db, serve, token):
        command.add_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tradebook`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.run(args))
