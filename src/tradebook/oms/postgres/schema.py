"""How PostgreSQL stores the records (as they are: ``NUMERIC``, ``timestamptz``), and its migrations."""

from __future__ import annotations

import zlib
from collections.abc import Generator
from decimal import Decimal

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from .._sql import migrations as _migrations
from .._sql.codecs import Codec
from .._sql.migrations import Migration, Rows, Step

__all__ = ["CODEC", "Migration", "migrations"]

_Conn = psycopg.AsyncConnection[TupleRow]

_ZERO = Decimal(0)
# pg_advisory_xact_lock(int4, int4): a fixed class for tradebook migrations, and the schema.
_LOCK_CLASS = 0x7462  # "tb"

#: Records to rows and back: psycopg adapts every value as it is.
CODEC = Codec()


def migrations() -> tuple[Migration, ...]:
    """The shipped PostgreSQL migrations, in version order (read once from the package data)."""
    return _migrations.load("postgres")


def _lock_key(schema: str) -> int:
    """The schema as a signed 32-bit advisory-lock key (schemas migrate independently)."""
    key = zlib.crc32(schema.encode("utf-8"))
    return key - (1 << 32) if key >= 1 << 31 else key


_TABLE_EXISTS = (
    "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s"
)


async def _table_exists(conn: _Conn, schema: str, table: str) -> bool:
    cur = await conn.execute(_TABLE_EXISTS, (schema, table))
    return await cur.fetchone() is not None


def _lock(schema: str) -> Generator[Step, Rows, None]:
    """Take the schema's advisory lock (the transaction holds it), create the schema and its ledger of migrations."""
    ident = sql.Identifier(schema)
    yield ("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, _lock_key(schema)))
    # Checked, not IF NOT EXISTS: CREATE SCHEMA needs a privilege an existing schema does not.
    if not (yield ("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))):
        yield (sql.SQL("CREATE SCHEMA {}").format(ident), None)
    yield (sql.SQL("SET LOCAL search_path TO {}").format(ident), None)
    if not (yield (_TABLE_EXISTS, (schema, "schema_migrations"))):
        yield (
            "CREATE TABLE schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())",
            None,
        )


def _split(script: str) -> list[bytes]:
    # No parameters: sent as one simple query, so a file may hold many statements.
    return [script.encode("utf-8")]


def _record(migration: Migration) -> Step:
    return ("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name))


async def _apply_migrations(conn: _Conn, schema: str) -> list[int]:
    """Create the schema if missing and apply the migrations it lacks, in one transaction.

    A transaction-scoped advisory lock serialises concurrent callers: the
    second waits, then finds everything applied.
    """

    async def execute(step: Step) -> Rows:
        cur = await conn.execute(step[0], step[1])
        return await cur.fetchall() if cur.description is not None else []

    steps = _migrations.apply(migrations(), lock=lambda: _lock(schema), split=_split, record=_record)
    async with conn.transaction():
        done: list[int] = await _migrations.run_async(steps, execute)
    return done
