"""How SQLite stores the records (decimals and timestamps as text, checked 64-bit ids), and its migrations."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Generator, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import TypeVar

from .._sql import migrations
from .._sql.codecs import Codec
from .._sql.columns import INT64_MAX, INT64_MIN
from .._sql.migrations import Migration, Rows, Step

T = TypeVar("T")

_ZERO = Decimal(0)


# --------------------------------------------------------------------------- values


def _text(value: Decimal) -> str:
    """A decimal as the exact text SQLite stores (``Decimal(text) == value``, same exponent)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a Decimal, not {type(value).__name__}")


def _timestamp(value: datetime) -> str:
    """A timezone-aware datetime as ISO-8601 UTC text with microseconds (sorts like the instants)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"timestamp {value!r} must be timezone-aware")
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _datetime(text: str) -> datetime:
    """Stored timestamp text back as a timezone-aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _storable_id(value: int) -> bool:
    """Whether ``value`` fits an SQLite INTEGER (an id outside that range cannot be stored)."""
    return isinstance(value, int) and INT64_MIN <= value <= INT64_MAX


def _checked_id(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not _storable_id(value):
        raise ValueError(f"{what} {value} does not fit a signed 64-bit integer")
    return value


def _flag(value: bool) -> int:
    return 1 if value else 0


#: Records to rows and back, as SQLite stores them.
CODEC = Codec(
    decimal_out=_text,
    decimal_in=Decimal,
    time_out=_timestamp,
    time_in=_datetime,
    flag_out=_flag,
    flag_in=bool,
    id_out=_checked_id,
)


# --------------------------------------------------------------------------- migrations


def _migrations() -> tuple[Migration, ...]:
    """The shipped SQLite migrations in version order."""
    return migrations.load("sqlite")


def _split(script: str) -> Iterator[str]:
    """The script cut into single statements (``execute`` runs one at a time).

    ``executescript`` would commit the migration's transaction first, so the
    statements are run one by one inside it instead.
    """
    start = 0
    for match in re.finditer(";", script):
        candidate = script[start : match.end()]
        if sqlite3.complete_statement(candidate):
            yield candidate.strip()
            start = match.end()
    rest = script[start:]
    if rest.strip():
        yield rest.strip()  # comments only (a no-op), or an error SQLite reports


def _lock() -> Generator[Step, Rows, None]:
    # BEGIN IMMEDIATE takes the write lock before schema_migrations is read, so two
    # connections opening one file at once apply each migration once.
    yield ("BEGIN IMMEDIATE", None)
    yield (
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        None,
    )


def _record(migration: Migration) -> Step:
    return (
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        (migration.version, migration.name, _now()),
    )


def _apply_migrations(conn: sqlite3.Connection) -> list[int]:
    """Apply the migrations ``conn``'s file lacks, in one transaction; their versions."""
    steps = migrations.apply(_migrations(), lock=_lock, split=_split, record=_record, refuse_newer=True)
    try:
        done: list[int] = migrations.run(steps, lambda step: conn.execute(step[0], step[1] or ()).fetchall())
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return done
