"""The versioned SQL migrations: one file-name rule, one loader and one apply loop for both adapters.

``tradebook/oms/migrations/<dialect>/NNNN_name.sql``, numbered 1..n. The
apply loop is a generator of statements (as psycopg's own generators are),
so SQLite drives it synchronously and PostgreSQL with ``await``; the
dialect brings two hooks: ``lock`` (the statements that take the migration
lock and make ``schema_migrations``) and ``split`` (a file into what one
``execute`` runs).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from ...errors import PersistenceError

__all__ = ["Migration", "Rows", "Step", "apply", "load", "run", "run_async", "status"]

#: ``NNNN_lower_case_name.sql``
FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

#: A statement (text, bytes or a composed query) and its parameters (``None``: none, and sent as one simple query where that matters).
Step = tuple[Any, Sequence[Any] | None]
#: What a step gives back: its rows (none for a statement that returns none).
Rows = list[tuple[Any, ...]]
Steps = Generator[Step, Rows, Any]


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file of ``tradebook/oms/migrations/<dialect>/``."""

    version: int
    name: str
    sql: str


@cache
def load(dialect: str) -> tuple[Migration, ...]:
    """The migrations shipped for ``dialect`` (``"sqlite"``, ``"postgres"``), in version order."""
    folder = resources.files("tradebook.oms").joinpath("migrations").joinpath(dialect)
    found = [
        Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if (match := FILE_NAME.fullmatch(entry.name)) is not None
    ]
    if not found:
        raise RuntimeError(f"the {dialect} migrations are missing from the tradebook package")
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"the {dialect} migrations are not numbered 1..n: {versions}")
    return tuple(found)


def apply(
    known: Sequence[Migration],
    *,
    lock: Callable[[], Steps],
    split: Callable[[str], Iterable[str | bytes]],
    record: Callable[[Migration], Step],
    refuse_newer: bool = False,
) -> Generator[Step, Rows, list[int]]:
    """The steps that apply what the database lacks of ``known``; returns their versions.

    Runs inside one transaction that the caller opens and ends: ``lock()``
    first, so two processes migrating at once apply each migration once.
    With ``refuse_newer``, a database migrated by a newer tradebook raises
    :class:`~tradebook.PersistenceError`.
    """
    yield from lock()
    applied = {row[0] for row in (yield ("SELECT version FROM schema_migrations", None))}
    newest = known[-1].version
    if refuse_newer and applied and max(applied) > newest:
        raise PersistenceError(
            f"the database has schema version {max(applied)}, newer than this tradebook knows ({newest}): "
            "upgrade tradebook"
        )
    done = []
    for migration in known:
        if migration.version in applied:
            continue
        for statement in split(migration.sql):
            yield (statement, None)
        yield record(migration)
        done.append(migration.version)
    return done


def run(steps: Generator[Step, Rows, Any], execute: Callable[[Step], Rows]) -> Any:
    """Drive ``steps`` with a blocking ``execute``; what the generator returns."""
    try:
        step = next(steps)
        while True:
            step = steps.send(execute(step))
    except StopIteration as stop:
        return stop.value


async def run_async(steps: Generator[Step, Rows, Any], execute: Callable[[Step], Awaitable[Rows]]) -> Any:
    """Drive ``steps`` with an awaitable ``execute``; what the generator returns."""
    try:
        step = next(steps)
        while True:
            step = steps.send(await execute(step))
    except StopIteration as stop:
        return stop.value


def status(
    known: Sequence[Migration], recorded: Mapping[int, tuple[str, datetime]]
) -> list[tuple[int, str, datetime | None]]:
    """Every migration as ``(version, name, applied_at)`` (``None``: not applied), by version.

    Versions ``recorded`` in the database but unknown here (a newer tradebook
    migrated it) are listed too.
    """
    listed: dict[int, tuple[int, str, datetime | None]] = {
        m.version: (m.version, m.name, recorded[m.version][1] if m.version in recorded else None) for m in known
    }
    for version, (name, applied_at) in recorded.items():
        listed.setdefault(version, (version, name, applied_at))
    return [listed[v] for v in sorted(listed)]
