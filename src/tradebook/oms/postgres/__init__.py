"""PostgreSQL adapters: an order repository and a ledger wallet on psycopg 3 with a connection pool.

Needs the ``postgres`` extra::

    repo = await PostgresOrderRepository.open("postgresql://app@db/trading", schema="tradebook")
    wallet = await PostgresWallet.open("postgresql://app@db/trading", schema="tradebook")

Both behave exactly like the memory adapters. Schemas, migrations and error
mapping are described in docs/guides/adapters.md; the health report behind
``tradebook db health`` lives in :mod:`tradebook.oms.health` (also importable from here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised by the CLI tests in a subprocess-free way
    raise ModuleNotFoundError(
        'tradebook.oms.postgres needs the postgres extra: pip install "tradebook[postgres]"', name=exc.name
    ) from exc

from .connection import migrate, migration_status, refresh_statistics
from .repository import PostgresOrderRepository, PostgresUnitOfWork
from .schema import Migration, migrations
from .wallet import PostgresWallet

if TYPE_CHECKING:
    from ..health import HealthReport, IndexUsage, SlowStatement, TableHealth, health_report

__all__ = [
    "HealthReport",
    "IndexUsage",
    "Migration",
    "PostgresOrderRepository",
    "PostgresUnitOfWork",
    "PostgresWallet",
    "SlowStatement",
    "TableHealth",
    "health_report",
    "migrate",
    "migration_status",
    "migrations",
    "refresh_statistics",
]

_HEALTH = frozenset({"HealthReport", "IndexUsage", "SlowStatement", "TableHealth", "health_report"})


def __getattr__(name: str) -> Any:
    # The health report moved to tradebook.oms.health, which imports this package:
    # its names are served from there on first use, not imported in a cycle.
    if name in _HEALTH:
        from .. import health

        return getattr(health, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
