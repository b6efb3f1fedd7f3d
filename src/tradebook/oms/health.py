"""PostgreSQL health report behind ``tradebook db health``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ..errors import PersistenceError
from .postgres.connection import _connect, _first_line, _mapped
from .postgres.schema import _Conn


@dataclass(frozen=True)
class IndexUsage:
    """How often one index was scanned since the statistics were last reset."""

    table: str
    index: str
    scans: int
    size_bytes: int
    unique: bool


@dataclass(frozen=True)
class TableHealth:
    """A table's live and dead rows (a bloat estimate) and its size."""

    table: str
    live_rows: int
    dead_rows: int
    #: dead / (live + dead): the share of the heap that vacuum has yet to reclaim.
    dead_ratio: float
    table_bytes: int
    total_bytes: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None


@dataclass(frozen=True)
class SlowStatement:
    """One statement from ``pg_stat_statements``, slowest mean time first."""

    query: str
    calls: int
    mean_ms: float
    total_ms: float
    rows: int


@dataclass(frozen=True)
class HealthReport:
    """What :func:`health_report` found about one schema.

    ``unused_indexes`` are the indexes never scanned that do not enforce
    uniqueness (dropping one saves writes; unique ones are constraints).
    ``slow_statements`` is ``None`` when ``pg_stat_statements`` cannot be read,
    and ``statements_note`` says why.
    """

    schema: str
    server_version: str
    indexes: list[IndexUsage]
    unused_indexes: list[str]
    tables: list[TableHealth]
    slow_statements: list[SlowStatement] | None
    statements_note: str | None

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (timestamps as ISO-8601 text)."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        data: dict[str, Any] = plain(asdict(self))
        return data


_INDEX_USAGE = """
SELECT s.relname, s.indexrelname, s.idx_scan, pg_relation_size(s.indexrelid), i.indisunique
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.schemaname = %s
ORDER BY s.relname, s.indexrelname
"""
_TABLE_HEALTH = """
SELECT relname, n_live_tup, n_dead_tup, pg_relation_size(relid), pg_total_relation_size(relid),
       last_vacuum, last_autovacuum
FROM pg_stat_user_tables
WHERE schemaname = %s
ORDER BY relname
"""


async def _slow_statements(conn: _Conn, limit: int) -> tuple[list[SlowStatement] | None, str | None]:
    cur = await conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    )
    row = await cur.fetchone()
    if row is None:
        return None, (
            "pg_stat_statements is not available: add it to shared_preload_libraries and run "
            "CREATE EXTENSION pg_stat_statements to see the slowest statements"
        )
    view = sql.Identifier(row[0], "pg_stat_statements")
    # PostgreSQL 13 renamed total_time/mean_time to total_exec_time/mean_exec_time.
    new_names = conn.info.server_version >= 130000
    mean, total = ("mean_exec_time", "total_exec_time") if new_names else ("mean_time", "total_time")
    query = sql.SQL(
        "SELECT query, calls, {mean}, {total}, rows FROM {view}"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY {mean} DESC LIMIT %s"
    ).format(mean=sql.Identifier(mean), total=sql.Identifier(total), view=view)
    try:
        cur = await conn.execute(query, (limit,))
    except psycopg.DatabaseError as exc:
        if conn.broken:
            raise
        # Typically "must be loaded via shared_preload_libraries", or a missing privilege.
        return None, f"pg_stat_statements is installed but cannot be read: {_first_line(exc)}"
    statements = [
        SlowStatement(query=r[0] or "", calls=int(r[1]), mean_ms=float(r[2]), total_ms=float(r[3]), rows=int(r[4]))
        for r in await cur.fetchall()
    ]
    return statements, None


async def health_report(dsn: str, schema: str = "public", *, statements: int = 10) -> HealthReport:
    """Index usage, unused indexes, table bloat estimates and (when available) the slowest statements.

    Index scans and row counts come from the cumulative statistics views
    (``pg_stat_user_indexes``, ``pg_stat_user_tables``), which PostgreSQL
    updates with a short delay. The slowest ``statements`` come from
    ``pg_stat_statements`` when that extension is installed and loaded.
    """
    with _mapped(PersistenceError, "cannot read the PostgreSQL statistics"):
        async with await _connect(dsn) as conn:
            cur = await conn.execute(_INDEX_USAGE, (schema,))
            indexes = [
                IndexUsage(table=r[0], index=r[1], scans=int(r[2] or 0), size_bytes=int(r[3]), unique=bool(r[4]))
                for r in await cur.fetchall()
            ]
            cur = await conn.execute(_TABLE_HEALTH, (schema,))
            tables = []
            for r in await cur.fetchall():
                live, dead = int(r[1] or 0), int(r[2] or 0)
                tables.append(
                    TableHealth(
                        table=r[0],
                        live_rows=live,
                        dead_rows=dead,
                        dead_ratio=dead / (live + dead) if live + dead else 0.0,
                        table_bytes=int(r[3]),
                        total_bytes=int(r[4]),
                        last_vacuum=r[5],
                        last_autovacuum=r[6],
                    )
                )
            slow, note = await _slow_statements(conn, statements)
            version = str(conn.info.parameter_status("server_version") or conn.info.server_version)
    unused = [f"{i.table}.{i.index}" for i in indexes if i.scans == 0 and not i.unique]
    return HealthReport(schema, version, indexes, unused, tables, slow, note)
