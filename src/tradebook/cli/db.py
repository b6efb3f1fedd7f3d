"""``tradebook db``: migrate, inspect and maintain an order-management database.

::

    tradebook db migrate       --database URL [--schema NAME]
    tradebook db status        --database URL [--schema NAME] [--json]
    tradebook db refresh-stats --database URL [--schema NAME]          (PostgreSQL)
    tradebook db health        --database URL [--schema NAME] [--json] (PostgreSQL)

``URL`` is read by :func:`tradebook.oms.stores.parse_database_url`: PostgreSQL
or SQLite (``memory`` keeps nothing to maintain and is refused). Without ``--database`` the ``TRADEBOOK_DATABASE_URL``
environment variable is used (it keeps a password out of the process list).
Exit status: 0 on success, 1 when the database fails (unreachable, not
migrated, the ``postgres`` extra missing), 2 on a usage error (including a
PostgreSQL-only command on SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Coroutine, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import TradebookError
from ..oms.stores import POSTGRES_EXTRA_HINT, DatabaseTarget, import_postgres, parse_database_url
from ._args import count

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["POSTGRES_EXTRA_HINT", "DatabaseTarget", "add_command", "parse_database_url", "run_db_command"]

ENV_DATABASE = "TRADEBOOK_DATABASE_URL"
T = TypeVar("T")


class CommandError(Exception):
    """A failure the command reports in one line, with its exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# -- running -----------------------------------------------------------------------


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion; psycopg's async mode needs a selector loop on Windows."""
    if sys.platform == "win32":  # pragma: no cover - not exercised on the CI machines
        loop = asyncio.SelectorEventLoop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
    return asyncio.run(coro)


def _postgres() -> ModuleType:
    """:mod:`tradebook.oms.postgres`, or a one-line error when the extra is missing."""
    try:
        return import_postgres()
    except ImportError:
        raise CommandError(POSTGRES_EXTRA_HINT) from None


def _sqlite() -> ModuleType:
    from ..oms import sqlite

    return sqlite


def _postgres_only(target: DatabaseTarget, command: str, what: str) -> None:
    if target.kind != "postgresql":
        raise CommandError(
            f"{command} is a PostgreSQL feature ({what}); {target.location} is an SQLite database", status=2
        )


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] | None = None) -> list[str]:
    """Rows as aligned text columns (the ``right`` column indexes right-aligned)."""
    right = right or set()
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = [
            f"{cell:>{w}}" if i in right else f"{cell:<{w}}"
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in rows)]


# -- the commands ------------------------------------------------------------------


def _migrate(args: argparse.Namespace, target: DatabaseTarget) -> int:
    if target.kind == "postgresql":
        pg = _postgres()
        applied: list[int] = _run(pg.migrate(target.location, target.schema))
        status: list[tuple[int, str, datetime | None]] = _run(pg.migration_status(target.location, target.schema))
    else:
        sqlite = _sqlite()
        applied = sqlite.migrate(target.location)
        status = sqlite.migration_status(target.location)
    names = {version: name for version, name, _ in status}
    print(target.display)
    if applied:
        listed = ", ".join(f"{v:04d} {names.get(v, '?')}" for v in applied)
        print(f"applied {len(applied)} migration{'s' if len(applied) != 1 else ''}: {listed}")
    else:
        print(f"already up to date ({len(status)} migration{'s' if len(status) != 1 else ''} applied)")
    return 0


def _status(args: argparse.Namespace, target: DatabaseTarget) -> int:
    if target.kind == "postgresql":
        status: list[tuple[int, str, datetime | None]] = _run(
            _postgres().migration_status(target.location, target.schema)
        )
    else:
        status = _sqlite().migration_status(target.location)
    pending = [version for version, _, applied_at in status if applied_at is None]
    if args.json:
        _print_json(
            {
                "backend": target.kind,
                "database": target.display,
                "schema": target.schema,
                "migrations": [
                    {"version": version, "name": name, "applied_at": _when(applied_at)}
                    for version, name, applied_at in status
                ],
                "pending": pending,
                "up_to_date": not pending,
            }
        )
        return 0
    print(target.display)
    rows = [(f"{v:04d}", name, _when(at) or "not applied") for v, name, at in status]
    print(*_table(("version", "name", "applied at"), rows), sep="\n")
    applied = len(status) - len(pending)
    verdict = "up to date" if not pending else f"{len(pending)} pending: run `tradebook db migrate`"
    print(f"{applied} of {len(status)} applied; {verdict}")
    return 0


def _refresh_stats(args: argparse.Namespace, target: DatabaseTarget) -> int:
    _postgres_only(target, "refresh-stats", "a materialized view refreshed concurrently")
    symbols: int = _run(_postgres().refresh_statistics(target.location, target.schema))
    print(target.display)
    print(f"refreshed trading_stats_24h: {symbols} symbol{'s' if symbols != 1 else ''} traded in the last 24 hours")
    return 0


def _health(args: argparse.Namespace, target: DatabaseTarget) -> int:
    _postgres_only(target, "health", "it reads PostgreSQL's statistics views")
    report = _run(_postgres().health_report(target.location, target.schema, statements=args.top))
    if args.json:
        _print_json({"backend": target.kind, "database": target.display, **report.to_dict()})
        return 0
    print(f"{target.display}; server {report.server_version}")
    print()
    print("indexes (scans since the statistics were last reset):")
    index_rows = [
        (i.table, i.index, str(i.scans), _size(i.size_bytes), "yes" if i.unique else "") for i in report.indexes
    ]
    print(
        *("  " + line for line in _table(("table", "index", "scans", "size", "unique"), index_rows, {2, 3})), sep="\n"
    )
    print()
    unused = ", ".join(report.unused_indexes) if report.unused_indexes else "none"
    print(f"unused indexes (never scanned, not unique): {unused}")
    print()
    print("tables (dead rows: a bloat estimate until vacuum reclaims them):")
    table_rows = [
        (t.table, str(t.live_rows), str(t.dead_rows), f"{t.dead_ratio:.1%}", _size(t.table_bytes), _size(t.total_bytes))
        for t in report.tables
    ]
    header = ("table", "live rows", "dead rows", "dead", "heap", "with indexes")
    print(*("  " + line for line in _table(header, table_rows, {1, 2, 3, 4, 5})), sep="\n")
    print()
    if report.slow_statements is None:
        print(f"slowest statements: {report.statements_note}")
    elif not report.slow_statements:
        print("slowest statements: none recorded yet")
    else:
        print("slowest statements (mean time, pg_stat_statements):")
        for s in report.slow_statements:
            query = " ".join(s.query.split())
            query = query if len(query) <= 100 else query[:97] + "..."
            print(f"  {s.mean_ms:10.3f} ms x {s.calls:<8} {query}")
    return 0


_COMMANDS = {"migrate": _migrate, "status": _status, "refresh-stats": _refresh_stats, "health": _health}


def run_db_command(args: argparse.Namespace) -> int:
    """Run the ``tradebook db`` action ``args`` names; report failures in one line; return the exit status."""
    action: str = args.db_action
    prog = f"tradebook db {action}"
    try:
        if not args.database:
            raise CommandError(f"--database is required (or set {ENV_DATABASE})", status=2)
        try:
            target = parse_database_url(args.database, args.schema)
        except ValueError as exc:
            raise CommandError(str(exc), status=2) from None
        if target.kind == "memory":
            raise CommandError("the memory store keeps nothing to migrate or inspect; name a database", status=2)
        return _COMMANDS[action](args, target)
    except CommandError as exc:
        return _fail(prog, str(exc), exc.status)
    except TradebookError as exc:
        return _fail(prog, str(exc), 1)
    except Exception as exc:
        # psycopg errors that are not connection failures (say, a missing privilege): one line too.
        if type(exc).__module__.split(".")[0] not in ("psycopg", "psycopg_pool"):
            raise
        detail = str(exc).strip()
        return _fail(prog, f"{type(exc).__name__}: {detail.splitlines()[0] if detail else 'no detail'}", 1)


def _fail(prog: str, message: str, status: int) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``db`` and its actions on the ``tradebook`` sub-command parsers; return the ``db`` parser.

    Each action sets ``run`` to :func:`run_db_command`, so ``args.run(args)``
    runs it and returns the exit status.
    """
    db = commands.add_parser(
        "db",
        help="migrate, inspect and maintain an order-management database (PostgreSQL or SQLite)",
        description=(
            "Migrate, inspect and maintain the database of the order-management layer. "
            "--database takes postgresql://user@host:port/dbname (or postgres://...), "
            "sqlite:///relative/path.db, sqlite:////absolute/path.db or a plain SQLite file path; "
            f"without it, ${ENV_DATABASE} is used. Exit status: 0 success, 1 database failure, 2 usage error."
        ),
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database",
        metavar="URL",
        default=os.environ.get(ENV_DATABASE),
        help=f"postgresql://..., sqlite:///path.db or a file path (default: ${ENV_DATABASE})",
    )
    common.add_argument(
        "--schema",
        metavar="NAME",
        default=None,
        help="PostgreSQL schema to work in, created by migrate if missing (default: public)",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")

    actions = db.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate",
        parents=[common],
        help="apply the migrations the database lacks (creating the file or schema)",
        description=(
            "Apply the versioned SQL migrations the database lacks, in order, and record them in "
            "schema_migrations. Safe to run while the service runs and from several processes at once "
            "(PostgreSQL takes an advisory lock; SQLite an exclusive transaction). Opening a repository "
            "or wallet does the same; this command is for deploy scripts."
        ),
    )
    status = actions.add_parser(
        "status",
        parents=[common, as_json],
        help="list the migrations, applied (when) or pending",
        description="List every migration with the time it was applied, or 'not applied'. Changes nothing.",
    )
    refresh = actions.add_parser(
        "refresh-stats",
        parents=[common],
        help="refresh the 24-hour trading statistics (PostgreSQL)",
        description=(
            "Recompute the trading_stats_24h materialized view (per symbol: trade count, volume, notional, "
            "open/high/low/close over the 24 hours before now) with REFRESH MATERIALIZED VIEW CONCURRENTLY, "
            "so readers are not blocked. Run it periodically (cron, pg_cron). PostgreSQL only."
        ),
    )
    health = actions.add_parser(
        "health",
        parents=[common, as_json],
        help="index usage, unused indexes, table bloat and the slowest statements (PostgreSQL)",
        description=(
            "Report index scans per index and the indexes never scanned (unique ones excepted), each "
            "table's live and dead rows (a bloat estimate) and size, and the slowest statements when the "
            "pg_stat_statements extension is installed and loaded. Reads statistics only. PostgreSQL only."
        ),
    )
    health.add_argument(
        "--top", type=count, default=10, metavar="N", help="how many of the slowest statements to list (default: 10)"
    )
    for parser in (migrate, status, refresh, health):
        parser.set_defaults(run=run_db_command)
    return db
