"""Database URLs: :func:`parse_database_url` reads one, :func:`open_stores` opens the stores it names.

The one parser behind ``tradebook serve --database``, ``tradebook db
--database`` and the tests. It accepts:

- ``memory`` (or ``memory://``): the in-memory repository and wallet;
- ``postgresql://...`` (or ``postgres://...``): PostgreSQL, the ``postgres`` extra;
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``: an SQLite file;
- a path without a scheme (``tradebook.db``, ``/var/lib/tb.db``): an SQLite file too.

Any other scheme (``mysql://...``) is an error, never a file name.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any

__all__ = ["POSTGRES_EXTRA_HINT", "DatabaseTarget", "import_postgres", "open_stores", "parse_database_url", "redact"]

POSTGRES_EXTRA_HINT = 'PostgreSQL needs the postgres extra: pip install "tradebook[postgres]"'

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PASSWORD = re.compile(r"(://[^:/@]*):[^@/]*@")


def redact(url: str) -> str:
    """``url`` without its password (for logs and messages).

    >>> redact("postgresql://app:s3cret@db/trading")
    'postgresql://app:***@db/trading'
    """
    return _PASSWORD.sub(r"\1:***@", url)


@dataclass(frozen=True)
class DatabaseTarget:
    """What a database URL names: ``kind`` (``memory``, ``sqlite``, ``postgresql``) and where."""

    kind: str
    location: str  # the DSN, the SQLite file path, or "" for memory
    schema: str | None = None  # PostgreSQL only

    @property
    def display(self) -> str:
        """The target for humans, without a password."""
        if self.kind == "memory":
            return "memory (nothing is kept after the process ends)"
        if self.kind == "sqlite":
            return f"SQLite {self.location}"
        return f'PostgreSQL {redact(self.location)}, schema "{self.schema}"'


def parse_database_url(url: str, schema: str | None = None) -> DatabaseTarget:
    """The :class:`DatabaseTarget` ``url`` names (``schema``: PostgreSQL's, default ``public``); :class:`ValueError` if none.

    >>> parse_database_url("sqlite:///data/tb.db").location
    'data/tb.db'
    >>> parse_database_url("postgres://app@db/trading", "tb").schema
    'tb'
    >>> parse_database_url("memory").kind
    'memory'
    """
    text = url.strip()
    if not text:
        raise ValueError("the database URL is empty")
    match = _SCHEME.match(text)
    scheme = match[1].lower() if match else None
    if scheme in ("postgresql", "postgres"):
        return DatabaseTarget("postgresql", text, schema or "public")
    if schema is not None:
        raise ValueError("--schema applies to PostgreSQL only; an SQLite database has one namespace")
    if text == "memory" or text.lower() == "memory://":
        return DatabaseTarget("memory", "")
    if match is None:
        return DatabaseTarget("sqlite", text)  # a plain path, as the docs promise
    if scheme == "sqlite":
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute.db
        path = text[len(match[0]) :]
        if not path.startswith("/") or path == "/":
            raise ValueError(f"an SQLite URL has three slashes and a path (sqlite:///file.db), not {url!r}")
        return DatabaseTarget("sqlite", path[1:])
    raise ValueError(
        f"unsupported database URL scheme {scheme!r}: use postgresql://, sqlite:///, memory or a file path"
    )


def import_postgres() -> ModuleType:
    """:mod:`tradebook.oms.postgres`; an :class:`ImportError` naming the extra when it is not installed."""
    try:
        return importlib.import_module(f"{__package__}.postgres")
    except ImportError as exc:
        raise ImportError(f"{POSTGRES_EXTRA_HINT} ({exc})", name=exc.name) from exc


async def open_stores(url: str | DatabaseTarget) -> tuple[Any, Any]:
    """Open the ``(repository, wallet)`` pair over the database ``url`` names (migrating it); close both after.

    If the wallet fails to open, the repository is closed before the error
    propagates.
    """
    target = parse_database_url(url) if isinstance(url, str) else url
    if target.kind == "memory":
        from .memory import MemoryOrderRepository, MemoryWallet

        return MemoryOrderRepository(), MemoryWallet()
    if target.kind == "postgresql":
        postgres = import_postgres()
        open_repository = partial(postgres.PostgresOrderRepository.open, target.location, schema=target.schema)
        open_wallet = partial(postgres.PostgresWallet.open, target.location, schema=target.schema)
    else:
        from . import sqlite

        open_repository = partial(sqlite.SQLiteOrderRepository.open, target.location)
        open_wallet = partial(sqlite.SQLiteWallet.open, target.location)
    repository = await open_repository()
    try:
        wallet = await open_wallet()
    except BaseException:
        await repository.close()
        raise
    return repository, wallet
