"""The benchmark reports, one command: ``python benchmarks/report.py {book,...,compare,instructions} [options]``.

* ``book``: the order book's operations on every backend and API in one
  process, and the book targets (``figures.run_book``).
* ``engine``: the matching engine's mixed and matching-heavy flows, and the
  engine targets (``figures.run_engine``).
* ``batch``: ``MatchingEngine.execute_batch`` on the same streams
  (``figures.run_batch``).
* ``service``: placements through ``OrderService`` per store (``service.py``).
* ``http``: a real ``tradebook serve`` under concurrent keep-alive clients
  (``http_load.py``).
* ``ws``: a real ``tradebook serve`` with 200 WebSocket subscribers to one
  symbol while HTTP placements run: delivery check, latency, and what the feed
  costs the placement rate (``ws_load.py``).
* ``compare``: tradebook beside the other Python order books, each in its own
  process, and the scaling run; writes ``docs/performance.md``'s tables and
  plots (``compare.py``).
* ``instructions``: instructions per hot operation under callgrind, checked
  against ``instructions.json`` (``--check``: CI's gate) or re-recorded
  (``--update``) (``instructions.py``).

The pytest-benchmark suites (``pytest benchmarks``) time the same scenarios;
this command prints the figures the team reports, with their targets. Each
subcommand's module is imported only when it runs, so a measuring process holds
nothing it does not need (``compare`` runs every contestant in a fresh process).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

import common  # noqa: F401  (first: puts the checkout's src/ on sys.path when tradebook is not installed)

# subcommand -> (module, function) that runs it
COMMANDS = {
    "book": ("figures", "run_book"),
    "engine": ("figures", "run_engine"),
    "batch": ("figures", "run_batch"),
    "service": ("service", "run"),
    "http": ("http_load", "run"),
    "ws": ("ws_load", "run"),
    "compare": ("compare", "run"),
    "instructions": ("instructions", "run"),
}


def _ratio_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="5 timed batches per figure instead of 11")
    parser.add_argument("--batches", type=int, default=None, help="timed batches per figure (default 11, quick 5)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure and verdict as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target FAILs")
    parser.add_argument(
        "--backends", default="cython,python,sortedcontainers", help="comma-separated subset to measure"
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subparser per report."""
    parser = argparse.ArgumentParser(prog="report.py", description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")

    book = sub.add_parser("book", help="order book operations, every backend and API, and the book targets")
    _ratio_options(book)

    engine = sub.add_parser("engine", help="matching engine flows, every backend and API, and the engine targets")
    _ratio_options(engine)
    engine.add_argument("--profile", action="store_true", help="cProfile the pure engine's mixed flow, top 15")

    batch = sub.add_parser(
        "batch", help="MatchingEngine.execute_batch and execute_array throughput on the engine streams"
    )
    batch.add_argument("--batches", type=int, default=6, help="mixed-flow batches (matching-heavy: half)")
    batch.add_argument("--backend", choices=["cython", "python"], default="cython")

    service = sub.add_parser("service", help="placements through OrderService, per store")
    service.add_argument("--stores", default="memory,sqlite", help="comma-separated: memory, sqlite, postgres")
    service.add_argument("--orders", type=int, default=0, help="placements per store (default: per store)")
    service.add_argument("--clients", type=int, default=16, help="concurrent clients")
    service.add_argument("--symbols", type=int, default=4)
    service.add_argument("--users", type=int, default=32)
    service.add_argument("--pool", type=int, default=8, help="PostgreSQL pool size")
    service.add_argument("--seed", type=int, default=7)
    service.add_argument("--dsn", default=os.environ.get("TRADEBOOK_TEST_POSTGRES_DSN", ""))

    http = sub.add_parser("http", help="a real `tradebook serve` under concurrent keep-alive clients")
    http.add_argument("--requests", type=int, default=20_000, help="measured requests in all (default: 20000)")
    http.add_argument("--warmup", type=int, default=1_000, help="unmeasured requests first (default: 1000)")
    http.add_argument("--clients", type=int, default=32, help="concurrent keep-alive clients (default: 32)")
    http.add_argument("--processes", type=int, default=1, help="client processes (default: 1)")
    http.add_argument("--cancel-share", type=float, default=0.2, help="share of cancels (default: 0.2)")
    http.add_argument("--client", choices=("raw", "httpx"), default="raw", help="client implementation")
    http.add_argument("--database", default="", help="default: a fresh SQLite file; or memory, postgresql://...")
    http.add_argument("--access-log", action="store_true", help="keep the server's per-request log on")
    http.add_argument("--no-metrics", action="store_true", help="run the server without metrics")
    http.add_argument("--seed", type=int, default=7)

    ws = sub.add_parser("ws", help="WebSocket subscribers to one symbol while HTTP placements run")
    importlib.import_module("ws_load").add_arguments(ws)

    compare = sub.add_parser("compare", help="tradebook beside the other Python order books; writes the docs page")
    compare.add_argument("--quick", action="store_true", help="tiny sizes, a few repeats: a smoke test in seconds")
    compare.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md and plots")
    compare.add_argument("--write", action="store_true", help="write the page and plots even with --quick")
    compare.add_argument("--only", help="comma-separated contestant keys (tradebook's compiled raw always runs)")
    compare.add_argument("--no-peers", action="store_true", help="skip the comparison tables")
    compare.add_argument("--no-scaling", action="store_true", help="skip the scaling run")
    compare.add_argument("--repeats", type=int, help="timed batches per figure")
    compare.add_argument("--rounds", type=int, help="run the comparison tables this many times (median round)")
    compare.add_argument("--json", metavar="PATH", help="also write the raw report as JSON")
    compare.add_argument(
        "--render", metavar="JSON", help="no measuring: rewrite the page and plots from a saved report"
    )
    compare.add_argument("--worker", help=argparse.SUPPRESS)

    instructions = sub.add_parser("instructions", help="instructions per operation under callgrind, against a baseline")
    importlib.import_module("instructions").add_arguments(instructions)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the subcommand's report; its exit status."""
    args = build_parser().parse_args(argv)
    module, function = COMMANDS[args.command]
    return int(getattr(importlib.import_module(module), function)(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
